# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""The opt-in CPU fast paths of `hf_crnn.fast_inference`: exactness of fp32, bounded error of bf16/int8, errors."""

import warnings

import pytest
import torch
from conftest import render_word, tiny_config
from transformers import pipeline

from hf_crnn import CRNNForTextRecognition, fast_inference
from hf_crnn.fast_inference import (
    CPUOptimizedCRNN,
    PaddedBidirectionalLSTM,
    fold_batch_norm,
    optimize_for_cpu,
    reverse_within_lengths_index,
)
from hf_crnn.modeling_crnn import CRNNBidirectionalLSTM

# fp32 only reorders float arithmetic (folded batch norm, channels-last, unpacked LSTMs).
FP32_ATOL = 1e-4
# bf16 keeps 8 mantissa bits and int8 256 levels per tensor; through 7 convolutions and 2 BiLSTMs that costs a few
# percent of the logits' range (measured: about 1% on these models). Scaled by the range so the bound means the same
# for any model; a broken path (wrong padding, wrong direction) is off by the order of the range itself.
REDUCED_PRECISION_RELATIVE_TOLERANCE = 0.05
# Frames whose fp32 top-2 margin exceeds the error bound cannot change their argmax, so this is a check that the
# errors are spread like rounding noise, not concentrated on a few frames.
MIN_ARGMAX_AGREEMENT = 0.95
WIDTHS = (120, 64, 37)  # a right-padded batch: valid widths of each image, padded to 120


def trained_like_model() -> CRNNForTextRecognition:
    """
    A tiny CRNN in eval mode with non-trivial batch-norm statistics and affine parameters (so folding has something
    to fold) and a sharpened classifier (logits spread over several units, as after training). Also used by
    test_onnx.py.
    """
    torch.manual_seed(0)
    model = CRNNForTextRecognition(tiny_config())
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in model.crnn.conv_layers:
            norm = layer.batch_norm
            if norm is None:
                continue
            size = norm.num_features
            norm.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
            norm.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.weight.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.bias.copy_(torch.rand(size, generator=generator) * 0.4 - 0.2)
        model.classifier.weight.mul_(20.0)
    return model.eval()


@pytest.fixture
def fast_model_source():
    return trained_like_model()


def padded_batch(widths=WIDTHS, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random images right-padded to the widest; the padding holds junk, which the model must mask itself."""
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.rand(len(widths), 1, 32, max(widths), generator=generator) * 2 - 1
    return {"pixel_values": pixel_values, "image_widths": torch.tensor(widths)}


def calibration_batches(count: int = 2) -> list[dict[str, torch.Tensor]]:
    return [padded_batch(seed=100 + index) for index in range(count)]


def valid_frames(logits: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """`(N, V)`: the logits of every valid frame of a `(B, T, V)` batch."""
    return torch.cat([logits[index, :length] for index, length in enumerate(frame_lengths.tolist())])


def build(model, mode):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message='mode="bf16" on a CPU without native bf16')  # tested on its own
        return optimize_for_cpu(model, mode, calibration_data=calibration_batches() if mode == "int8" else None)


# ---- building blocks ---------------------------------------------------------------------------------------------


def test_reverse_within_lengths_index_reverses_valid_frames_only():
    index = reverse_within_lengths_index(torch.tensor([3, 1, 4]), 4)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]
    # Its own inverse: gathering twice restores the order.
    assert torch.equal(index.gather(1, index), torch.arange(4).expand(3, 4))


@pytest.mark.parametrize("project", [True, False])
def test_padded_bidirectional_lstm_matches_packed_lstm(config, project):
    torch.manual_seed(0)
    packed = CRNNBidirectionalLSTM(config, input_size=6, project=project).eval()
    padded = PaddedBidirectionalLSTM(packed).eval()
    features = torch.randn(3, 7, 6)
    lengths = torch.tensor([7, 4, 1])
    with torch.no_grad():
        expected = packed(features, lengths)
        actual = padded(features, lengths)
        # Unpadded input (no lengths) takes the flip path.
        torch.testing.assert_close(padded(features), packed(features), atol=1e-6, rtol=0)
    # Padding frames too: both layers zero them before the projection (whose bias then shows there).
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=0)
    if not project:
        assert not actual[1, 4:].any() and not actual[2, 1:].any()


def test_padded_bidirectional_lstm_rejects_other_lstms(config):
    layer = CRNNBidirectionalLSTM(config, input_size=6, project=False)
    layer.lstm = torch.nn.LSTM(6, 8, batch_first=True)  # one direction only
    with pytest.raises(ValueError, match="bidirectional"):
        PaddedBidirectionalLSTM(layer)


def test_fold_batch_norm_matches_conv_then_batch_norm(fast_model_source):
    layer = next(layer for layer in fast_model_source.crnn.conv_layers if layer.batch_norm is not None)
    inputs = torch.randn(2, layer.conv.in_channels, 8, 12)
    with torch.no_grad():
        expected = layer.batch_norm(layer.conv(inputs))
        fold_batch_norm(layer)
        assert layer.batch_norm is None
        torch.testing.assert_close(layer.conv(inputs), expected, atol=1e-5, rtol=1e-5)


# ---- fp32: exact -------------------------------------------------------------------------------------------------


def test_fp32_matches_the_model_on_valid_frames_of_a_padded_batch(fast_model_source):
    fast = optimize_for_cpu(fast_model_source, "fp32")
    batch = padded_batch()
    labels = torch.tensor([[5, 6, 7], [8, 9, -100], [10, -100, -100]])
    with torch.no_grad():
        expected = fast_model_source(**batch, labels=labels)
        actual = fast(**batch, labels=labels)
    assert torch.equal(actual.frame_lengths, expected.frame_lengths)
    assert actual.logits.dtype == torch.float32 and actual.logits.shape == expected.logits.shape
    torch.testing.assert_close(
        valid_frames(actual.logits, actual.frame_lengths),
        valid_frames(expected.logits, expected.frame_lengths),
        atol=FP32_ATOL,
        rtol=0,
    )
    torch.testing.assert_close(actual.loss, expected.loss, atol=FP32_ATOL, rtol=1e-5)


def test_fp32_is_padding_invariant(fast_model_source):
    """Each image alone (cropped to its width) gives what it gives padded in the batch."""
    fast = optimize_for_cpu(fast_model_source, "fp32")
    batch = padded_batch()
    with torch.no_grad():
        together = fast(**batch)
        for index, width in enumerate(WIDTHS):
            alone = fast(pixel_values=batch["pixel_values"][index : index + 1, :, :, :width])
            length = int(together.frame_lengths[index])
            assert alone.logits.shape[1] == length
            torch.testing.assert_close(together.logits[index, :length], alone.logits[0], atol=FP32_ATOL, rtol=0)


def test_fp32_unpadded_batch_and_tuple_outputs(fast_model_source):
    fast = optimize_for_cpu(fast_model_source, "fp32")
    pixel_values = padded_batch()["pixel_values"]
    with torch.no_grad():
        expected = fast_model_source(pixel_values=pixel_values)
        logits, frame_lengths = fast(pixel_values=pixel_values, return_dict=False)
    assert torch.equal(frame_lengths, expected.frame_lengths)
    torch.testing.assert_close(logits, expected.logits, atol=FP32_ATOL, rtol=0)


def test_optimizing_leaves_the_original_model_unchanged(fast_model_source):
    before = {name: tensor.clone() for name, tensor in fast_model_source.state_dict().items()}
    fast_model_source.train()
    build(fast_model_source, "int8")
    optimize_for_cpu(fast_model_source, "fp32")
    assert fast_model_source.training  # still trainable, still in the mode it was in
    after = fast_model_source.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(layer.batch_norm is not None for layer in fast_model_source.crnn.conv_layers[2::2])


def test_fast_model_records_no_autograd_graph(fast_model_source):
    fast = optimize_for_cpu(fast_model_source, "fp32")
    assert not fast.training
    assert not fast(**padded_batch()).logits.requires_grad  # no torch.no_grad() here on purpose


# ---- bf16 and int8: bounded error --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_reduced_precision_stays_close_to_fp32(fast_model_source, mode):
    fast = build(fast_model_source, mode)
    batch = padded_batch(seed=7)  # not one of the calibration batches
    with torch.no_grad():
        expected = fast_model_source(**batch)
        actual = fast(**batch)
    assert actual.logits.dtype == torch.float32
    assert torch.equal(actual.frame_lengths, expected.frame_lengths)
    expected_frames = valid_frames(expected.logits, expected.frame_lengths)
    actual_frames = valid_frames(actual.logits, actual.frame_lengths)
    logit_range = (expected_frames.max() - expected_frames.min()).item()
    assert logit_range > 5.0  # the sharpened classifier gives trained-like logits, so the bound below is not vacuous
    max_error = (actual_frames - expected_frames).abs().max().item()
    assert max_error <= REDUCED_PRECISION_RELATIVE_TOLERANCE * logit_range, (mode, max_error, logit_range)
    argmax_agreement = (actual_frames.argmax(-1) == expected_frames.argmax(-1)).float().mean().item()
    assert argmax_agreement >= MIN_ARGMAX_AGREEMENT, (mode, argmax_agreement)


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_reduced_precision_is_padding_invariant(fast_model_source, mode):
    fast = build(fast_model_source, mode)
    batch = padded_batch(seed=7)
    # Convolution features are elementwise the same computation padded or not (int8: integer arithmetic with fixed,
    # calibrated scales), so they match to rounding; any padding leaking into valid columns shows here.
    conv_tolerance = {"atol": 1e-6, "rtol": 0} if mode == "int8" else {"atol": 1e-6, "rtol": 2**-7}  # 1 bf16 ulp
    with torch.no_grad():
        together = fast(**batch, output_hidden_states=True)
        for index, width in enumerate(WIDTHS):
            image = batch["pixel_values"][index : index + 1, :, :, :width]
            alone = fast(pixel_values=image, output_hidden_states=True)
            length = int(together.frame_lengths[index])
            conv_features = together.hidden_states[0][index, :length]
            torch.testing.assert_close(conv_features, alone.hidden_states[0][0], **conv_tolerance)
            # The LSTMs are not batch-independent: int8 quantizes each batch's activations with that batch's own
            # range, and bf16 kernels round differently per batch size.
            logit_range = (alone.logits.max() - alone.logits.min()).item()
            error = (together.logits[index, :length] - alone.logits[0]).abs().max().item()
            assert error <= REDUCED_PRECISION_RELATIVE_TOLERANCE * logit_range, (mode, index, error)


def test_int8_accepts_processor_outputs_and_tensors_as_calibration_data(fast_model_source, processor):
    words = [render_word(word) for word in ("hello", "world", "crnn")]
    from_processor = optimize_for_cpu(fast_model_source, "int8", calibration_data=processor(images=words))
    from_tensors = optimize_for_cpu(fast_model_source, "int8", calibration_data=[torch.rand(4, 1, 32, 80) * 2 - 1])
    batch = processor(images=words)
    with torch.no_grad():
        expected = fast_model_source(**batch).logits
        for fast in (from_processor, from_tensors):
            assert fast.fast_path == "int8"
            logits = fast(**batch).logits
            assert logits.shape == expected.shape and torch.isfinite(logits).all()


@pytest.mark.parametrize("mode", ["fp32", "bf16", "int8"])
def test_pipeline_runs_on_fast_models(fast_model_source, processor, mode):
    images = [render_word(word) for word in ("hello", "world", "crnn", "a", "transformers")]
    reference = pipeline("text-recognition", model=fast_model_source, processor=processor, device="cpu")
    expected = reference(images, batch_size=2)
    if mode == "int8":
        fast = optimize_for_cpu(fast_model_source, mode, calibration_data=processor(images=images))
    else:
        fast = build(fast_model_source, mode)
    actual = pipeline("text-recognition", model=fast, processor=processor, device="cpu")(images, batch_size=2)
    assert len(actual) == len(images)
    if mode == "fp32":
        assert [result[0]["generated_text"] for result in actual] == [r[0]["generated_text"] for r in expected]
        for result, reference_result in zip(actual, expected, strict=True):
            assert result[0]["score"] == pytest.approx(reference_result[0]["score"], rel=1e-3)


@pytest.mark.slow
def test_reduced_precision_reads_the_same_words_as_fp32_on_a_trained_model(processor):
    """A tiny model overfit to six rendered words (~10 s): bf16 and int8 must still read every word as fp32 does."""
    words = ["hello", "world", "ocr", "text", "ctc", "a"]
    batch = processor(images=[render_word(word) for word in words], text=words)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains several times faster on one thread than on a busy two
    try:
        torch.manual_seed(0)
        model = CRNNForTextRecognition(
            tiny_config(conv_dim=[16, 32, 32, 32, 32, 32, 32], hidden_size=32, lstm_projection_dim=32)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
        # Train until the words are read, then as long again: a model that only just reads them would leave
        # reduced precision no margin, and the test would depend on float rounding, not on the fast paths.
        learned_at = None
        for step in range(600):
            model.train()
            loss = model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if learned_at is None and step % 20 == 19:
                model.eval()
                with torch.no_grad():
                    outputs = model(pixel_values=batch["pixel_values"], image_widths=batch["image_widths"])
                if processor.batch_decode(outputs.logits, outputs.frame_lengths) == words:
                    learned_at = step
            if learned_at is not None and step >= 2 * learned_at:
                break
    finally:
        torch.set_num_threads(threads)
    model.eval()
    inputs = {"pixel_values": batch["pixel_values"], "image_widths": batch["image_widths"]}
    with torch.no_grad():
        fp32_texts = processor.batch_decode(*model(**inputs).to_tuple())
        assert fp32_texts == words, "the fixture model did not learn its words"
        for mode in ("bf16", "int8"):
            if mode == "int8":
                fast = optimize_for_cpu(model, mode, calibration_data=[inputs])
            else:
                fast = build(model, mode)
            assert processor.batch_decode(*fast(**inputs).to_tuple()) == fp32_texts, mode


@pytest.mark.parametrize("native", [True, False])
def test_bf16_warns_on_cpus_without_native_bf16(model, monkeypatch, native):
    monkeypatch.setattr(fast_inference, "cpu_has_native_bf16", lambda: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimize_for_cpu(model, "bf16")
        optimize_for_cpu(model, "fp32")
    messages = [str(warning.message) for warning in caught if "native bf16" in str(warning.message)]
    assert len(messages) == (0 if native else 1)
    if messages:
        assert "several times slower than mode=\"fp32\"" in messages[0]


def test_cpu_has_native_bf16_reads_torch_capabilities(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_bf16": False}, raising=False)
    assert fast_inference.cpu_has_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True}, raising=False)
    assert fast_inference.cpu_has_native_bf16() is True


# ---- errors ------------------------------------------------------------------------------------------------------


def test_unknown_mode_is_a_value_error(model):
    with pytest.raises(ValueError, match=r"`mode` must be one of \('fp32', 'bf16', 'int8'\), got 'fp16'"):
        optimize_for_cpu(model, "fp16")


def test_fast_models_cannot_be_trained_or_saved(model, tmp_path):
    fast = optimize_for_cpu(model, "fp32")
    with pytest.raises(ValueError, match="cannot be put in training mode; train the original model"):
        fast.train()
    fast.eval()  # train(False) stays allowed
    with pytest.raises(RuntimeError, match="cannot be saved"):
        fast.save_pretrained(tmp_path / "fast")
    assert not (tmp_path / "fast").exists()


@pytest.mark.parametrize(
    "calibration_data, message",
    [
        (None, 'mode="int8" needs `calibration_data`'),
        ([], "holds no images"),
        (["not a batch"], "must hold `pixel_values` tensors or mappings"),
    ],
)
def test_int8_calibration_errors(model, calibration_data, message):
    with pytest.raises(ValueError, match=message):
        optimize_for_cpu(model, "int8", calibration_data=calibration_data)


def test_bad_models_are_value_errors(model):
    fast = optimize_for_cpu(model, "fp32")
    assert isinstance(fast, CPUOptimizedCRNN)
    with pytest.raises(ValueError, match="already optimized"):
        optimize_for_cpu(fast, "fp32")
    with pytest.raises(ValueError, match="Expected a CRNNForTextRecognition, got CRNNModel"):
        optimize_for_cpu(model.crnn, "fp32")
    with pytest.raises(ValueError, match="takes a float32 model on the CPU, got torch.bfloat16"):
        optimize_for_cpu(model.to(torch.bfloat16), "fp32")
