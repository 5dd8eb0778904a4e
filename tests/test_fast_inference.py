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
        warnings.filterwarnings("ignore", message='mode="int8_bf16" on a CPU without native bf16')
        calibration_data = calibration_batches() if mode in fast_inference.INT8_MODES else None
        return optimize_for_cpu(model, mode, calibration_data=calibration_data)


# ---- building blocks ---------------------------------------------------------------------------------------------


def test_reverse_within_lengths_index_reverses_valid_frames_only():
    index = reverse_within_lengths_index(torch.tensor([3, 1, 4]), 4)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]
    # Its own inverse: gathering twice restores the order.
    assert torch.equal(index.gather(1, index), torch.arange(4).expand(3, 4))


def test_gather_frames_picks_whole_frames_per_row():
    """`_gather_frames` (one `index_select` over flattened frames) is `features[b, index[b, t]]`, also on a
    transposed, non-contiguous input."""
    torch.manual_seed(0)
    index = reverse_within_lengths_index(torch.tensor([5, 2, 7]), 7)
    for features in (torch.randn(3, 7, 4), torch.randn(3, 4, 7).transpose(1, 2)):
        expected = torch.stack([features[row, index[row]] for row in range(3)])
        assert torch.equal(fast_inference._gather_frames(features, index), expected)


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


@pytest.mark.parametrize("mode", ["bf16", "int8", "int8_bf16"])
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


@pytest.mark.parametrize("mode", ["bf16", "int8", "int8_bf16"])
def test_reduced_precision_is_padding_invariant(fast_model_source, mode):
    fast = build(fast_model_source, mode)
    batch = padded_batch(seed=7)
    # Convolution features are elementwise the same computation padded or not (int8: integer arithmetic with fixed,
    # calibrated scales), so they match to rounding; any padding leaking into valid columns shows here.
    conv_tolerance = {"atol": 1e-6, "rtol": 0} if mode != "bf16" else {"atol": 1e-6, "rtol": 2**-7}  # 1 bf16 ulp
    with torch.no_grad():
        together = fast(**batch, output_hidden_states=True)
        for index, width in enumerate(WIDTHS):
            image = batch["pixel_values"][index : index + 1, :, :, :width]
            alone = fast(pixel_values=image, output_hidden_states=True)
            length = int(together.frame_lengths[index])
            conv_features = together.hidden_states[0][index, :length]
            torch.testing.assert_close(conv_features, alone.hidden_states[0][0], **conv_tolerance)
            # The LSTMs are not batch-independent: dynamic int8 quantizes each batch's activations with that batch's
            # own range, and bf16 kernels round differently per batch size.
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


@pytest.mark.parametrize("mode", ["fp32", "bf16", "int8", "int8_bf16"])
def test_pipeline_runs_on_fast_models(fast_model_source, processor, mode):
    images = [render_word(word) for word in ("hello", "world", "crnn", "a", "transformers")]
    reference = pipeline("text-recognition", model=fast_model_source, processor=processor, device="cpu")
    expected = reference(images, batch_size=2)
    if mode in fast_inference.INT8_MODES:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="on a CPU without native bf16")
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
        for mode in ("bf16", "int8", "int8_bf16"):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="on a CPU without native bf16")  # tested on its own
                fast = optimize_for_cpu(model, mode, calibration_data=[inputs] if "int8" in mode else None)
            assert processor.batch_decode(*fast(**inputs).to_tuple()) == fp32_texts, mode


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("mode, slower_than", [("bf16", "fp32"), ("int8_bf16", "int8")])
def test_bf16_modes_warn_on_cpus_without_native_bf16(model, monkeypatch, native, mode, slower_than):
    monkeypatch.setattr(fast_inference, "cpu_has_native_bf16", lambda: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimize_for_cpu(model, mode, calibration_data=calibration_batches(1) if "int8" in mode else None)
        optimize_for_cpu(model, "fp32")
        optimize_for_cpu(model, "int8", calibration_data=calibration_batches(1))
    messages = [str(warning.message) for warning in caught if "native bf16" in str(warning.message)]
    assert len(messages) == (0 if native else 1)
    if messages:
        assert f'mode="{mode}" on a CPU' in messages[0]
        assert f'several times slower than mode="{slower_than}"' in messages[0]


def test_int8_bf16_runs_int8_convolutions_and_bf16_recurrent_layers(fast_model_source):
    mixed, int8 = build(fast_model_source, "int8_bf16"), build(fast_model_source, "int8")
    assert mixed.fast_path == "int8_bf16" and mixed.dtype == torch.float32  # takes float32 pixels, as int8 does
    for fast in (mixed, int8):
        assert all(isinstance(layer, fast_inference.QuantizedCRNNConvLayer) for layer in fast.crnn.conv_layers)
    for layer in mixed.crnn.lstm_layers:
        assert type(layer.forward_lstm) is torch.nn.LSTM and layer.forward_lstm.weight_ih_l0.dtype == torch.bfloat16
    assert mixed.classifier.weight.dtype == torch.bfloat16
    # int8 keeps its dynamically quantized recurrent layers (no float weights to cast).
    assert type(int8.crnn.lstm_layers[0].forward_lstm) is not torch.nn.LSTM
    with torch.no_grad():
        outputs = mixed(**padded_batch(seed=7), output_hidden_states=True)
    assert outputs.hidden_states[0].dtype == torch.bfloat16  # the conv stack hands bf16 features to the LSTMs
    assert outputs.logits.dtype == torch.float32
    with pytest.raises(RuntimeError, match="int8 weights packed"):
        mixed.save_pretrained("unused")


def test_cpu_has_native_bf16_reads_torch_capabilities(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_bf16": False}, raising=False)
    assert fast_inference.cpu_has_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True}, raising=False)
    assert fast_inference.cpu_has_native_bf16() is True


SAPPHIRE_RAPIDS = {
    "cpu_name": "Intel Xeon", "avx2": True, "avx512_f": True, "avx512_vnni": True, "avx512_bf16": True,
    "amx_bf16": True, "amx_int8": True, "avx_vnni": False,
}


@pytest.mark.parametrize("variable", fast_inference.ONEDNN_ISA_VARIABLES)
def test_a_onednn_isa_cap_hides_the_features_above_it(monkeypatch, variable):
    """Capped at AVX512-VNNI (a Cascade Lake), an AMX machine reports what oneDNN may still use, and says why."""
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: SAPPHIRE_RAPIDS, raising=False)
    for name in fast_inference.ONEDNN_ISA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    uncapped = fast_inference.describe_cpu()
    assert fast_inference.cpu_has_native_bf16() is True
    assert "bf16 native; int8 AMX" in uncapped and "capped" not in uncapped
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {**SAPPHIRE_RAPIDS, "avx512_bf16": False, "amx_bf16": False})
    assert "bf16 emulated (no AVX512-BF16/AMX)" in fast_inference.describe_cpu()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: SAPPHIRE_RAPIDS)

    monkeypatch.setenv(variable, "AVX512_CORE_VNNI")
    assert fast_inference.onednn_isa_limit() == "AVX512_CORE_VNNI"
    assert fast_inference.cpu_has_native_bf16() is False
    _, features = fast_inference.cpu_features()
    assert [name for name, present in features.items() if present] == ["avx2", "avx512_f", "avx512_vnni"]
    described = fast_inference.describe_cpu()
    assert "bf16 emulated; int8 VNNI; flags: avx2 avx512_f avx512_vnni;" in described
    assert described.endswith("oneDNN capped at AVX512_CORE_VNNI by the environment)")

    monkeypatch.setenv(variable, "avx2")  # oneDNN reads the names in any case
    assert "bf16 emulated; int8 no VNNI; flags: avx2; oneDNN capped at avx2" in fast_inference.describe_cpu()


@pytest.mark.parametrize("limit", ["AVX512_CORE_AMX", "ALL", "SVE_256"])
def test_a_onednn_isa_cap_at_or_above_the_cpu_hides_nothing(monkeypatch, limit):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: SAPPHIRE_RAPIDS, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", limit)
    assert fast_inference.cpu_has_native_bf16() is True
    assert all(present == SAPPHIRE_RAPIDS[name] for name, present in fast_inference.cpu_features()[1].items())
    assert "bf16 native; int8 AMX" in fast_inference.describe_cpu()


def test_a_cap_that_hides_nothing_still_says_the_cpu_lacks_bf16(monkeypatch):
    """The CPU, not the cap, is the reason here: the description and the warning say so."""
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"cpu_name": "AMD EPYC", "avx2": True}, raising=False)
    for limit in ("ALL", "AVX512_CORE_BF16"):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", limit)
        assert fast_inference.cpu_has_native_bf16() is False
        assert "bf16 emulated (no AVX512-BF16/AMX)" in fast_inference.describe_cpu()
        assert fast_inference.why_bf16_is_emulated() == "no AVX512-BF16, AMX or ARM BF16"


def test_the_bf16_warning_says_when_a_onednn_cap_makes_bf16_emulated(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: SAPPHIRE_RAPIDS, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert fast_inference.why_bf16_is_emulated() == "oneDNN capped at AVX2 by the environment"
    with pytest.warns(UserWarning, match=r'mode="bf16" on a CPU without native bf16 \(oneDNN capped at AVX2 by the env'):
        fast_inference.optimize_for_cpu(CRNNForTextRecognition(tiny_config()).eval(), "bf16")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert fast_inference.why_bf16_is_emulated() == "no AVX512-BF16, AMX or ARM BF16"


# ---- errors ------------------------------------------------------------------------------------------------------


def test_unknown_mode_is_a_value_error(model):
    modes = r"\('fp32', 'bf16', 'int8', 'int8_bf16', 'onnxruntime', 'auto'\)"
    with pytest.raises(ValueError, match=rf"`mode` must be one of {modes}, got 'fp16'"):
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


# ---- mode="auto" -------------------------------------------------------------------------------------------------


def greedy_predictions(model, batches) -> list[tuple[int, ...]]:
    return fast_inference._predictions(model, list(fast_inference._labelled_calibration_batches(batches)))


@pytest.fixture
def fixed_speeds(monkeypatch):
    """Replaces "auto"'s timing with fixed images/s per mode (no timed unit tests), and says bf16 is native."""
    speeds = {"default": 100.0, "fp32": 110.0, "bf16": 300.0, "int8": 500.0, "int8_bf16": 450.0, "onnxruntime": 120.0}
    monkeypatch.setattr(
        fast_inference, "_images_per_second", lambda models, batches, rounds: {name: speeds[name] for name in models}
    )
    monkeypatch.setattr(fast_inference, "cpu_has_native_bf16", lambda: True)
    return speeds


def break_int8(monkeypatch):
    """Makes the int8 candidates read every frame as label 5: they change predictions (an injected bad candidate)."""
    build = fast_inference._build

    def fake_build(model, mode, calibration_data=None):
        built = build(model, mode, calibration_data)
        if mode in fast_inference.INT8_MODES:
            features_dtype = torch.bfloat16 if mode == "int8_bf16" else torch.float32
            built.classifier = torch.nn.Linear(
                model.config.hidden_size * 2, model.config.vocab_size, dtype=features_dtype
            )
            with torch.no_grad():
                built.classifier.weight.zero_()
                built.classifier.bias.fill_(0.0)
                built.classifier.bias[5] = 10.0
        return built

    monkeypatch.setattr(fast_inference, "_build", fake_build)


def test_auto_returns_a_working_model_that_agrees_with_fp32_and_reports_why(fast_model_source):
    batches = calibration_batches(3)
    fast = optimize_for_cpu(fast_model_source, "auto", calibration_data=batches)
    report = fast.optimization_report
    assert isinstance(fast, CPUOptimizedCRNN) and fast.fast_path == report.chosen
    assert report.chosen in fast_inference.AUTO_CANDIDATES
    assert [candidate.mode for candidate in report.candidates] == ["fp32", "bf16", "int8", "int8_bf16"]  # preference
    assert [c.mode for c in report.candidates if c.status == "chosen"] == [report.chosen]
    for candidate in report.candidates:
        assert candidate.reason
        if candidate.status in ("chosen", "accepted", "rejected"):
            assert candidate.changed is not None and candidate.images_per_second > 0 or candidate.status == "rejected"
    assert report.num_images == 3 * len(WIDTHS) and not report.labelled and report.fp32_word_accuracy is None
    assert report.cpu and isinstance(report.cpu_features, dict) and report.threads >= 1
    if fast_inference.cpu_has_native_bf16() is False:
        for candidate in report.candidates[1::2]:  # bf16 and int8_bf16
            assert candidate.status == "skipped" and "no native bf16" in candidate.reason
    summary = report.summary()
    assert f'chose "{report.chosen}"' in summary and "fp32" in summary and report.cpu in summary
    # Accepted on the calibration images within 0.2 points: with 9 images that means no prediction changed.
    assert greedy_predictions(fast, batches) == greedy_predictions(fast_model_source, batches)
    with torch.no_grad():
        outputs = fast(**padded_batch(seed=7))
    assert outputs.logits.dtype == torch.float32 and torch.isfinite(outputs.logits).all()


def test_auto_rejects_a_candidate_that_changes_predictions(fast_model_source, monkeypatch, fixed_speeds):
    break_int8(monkeypatch)
    fast = optimize_for_cpu(fast_model_source, "auto", calibration_data=calibration_batches())
    report = fast.optimization_report
    int8 = next(c for c in report.candidates if c.mode == "int8")
    assert int8.status == "rejected" and int8.changed > 0 and "beyond the 0.2 pt tolerance" in int8.reason
    assert report.chosen == fast.fast_path == "bf16"  # the fastest accepted one (int8 would be faster)
    assert "300.0 img/s (3.00x)" in report.summary()


def test_auto_tolerance_zero_accepts_only_unchanged_predictions(fast_model_source, monkeypatch, fixed_speeds):
    # A candidate that changes the first image of each batch passes a 100-point tolerance and fails 0.
    batches = calibration_batches()
    reference = greedy_predictions(fast_model_source, batches)
    build = fast_inference._build

    def one_change(model, mode, calibration_data=None):
        built = build(model, mode, calibration_data)
        if mode in fast_inference.INT8_MODES:
            forward = built.forward

            def changed_forward(*args, **kwargs):
                outputs = forward(*args, **kwargs)
                outputs.logits = outputs.logits.clone()
                outputs.logits[0] = 0.0
                outputs.logits[0, :, 7] = 10.0  # the batch's first image reads "one label 7"
                return outputs

            built.forward = changed_forward
        return built

    monkeypatch.setattr(fast_inference, "_build", one_change)
    assert reference[0] != (7,)
    loose = optimize_for_cpu(fast_model_source, "auto", calibration_data=batches, accuracy_tolerance=100)
    assert loose.optimization_report.chosen == "int8"
    strict = optimize_for_cpu(fast_model_source, "auto", calibration_data=batches, accuracy_tolerance=0)
    assert strict.optimization_report.chosen == "bf16"
    int8 = next(c for c in strict.optimization_report.candidates if c.mode == "int8")
    assert int8.status == "rejected" and int8.changed >= 1 and "beyond the 0 pt tolerance" in int8.reason


def test_auto_compares_word_accuracy_when_calibration_data_has_labels(fast_model_source, monkeypatch, fixed_speeds):
    break_int8(monkeypatch)
    batches = calibration_batches()
    reference = greedy_predictions(fast_model_source, batches)
    # Labels are the fp32 predictions, except that image 0 is labelled what the broken int8 reads (label 5): fp32
    # gets 5 of 6 right, int8 at most 1 of 6.
    labelled, row = [], 0
    for batch in batches:
        texts = [list(reference[row + index]) or [9] for index in range(len(WIDTHS))]
        if row == 0:
            texts[0] = [5]
        width = max(len(text) for text in texts)
        labels = torch.tensor([text + [-100] * (width - len(text)) for text in texts])
        labelled.append({**batch, "labels": labels})
        row += len(WIDTHS)
    report = optimize_for_cpu(fast_model_source, "auto", calibration_data=labelled).optimization_report
    assert report.labelled and report.fp32_word_accuracy is not None
    int8 = next(c for c in report.candidates if c.mode == "int8")
    assert int8.status == "rejected" and int8.word_accuracy < report.fp32_word_accuracy
    assert "word accuracy" in int8.reason and "pt against fp32" in int8.reason
    assert report.chosen == "bf16"


def test_auto_prefers_the_more_exact_path_on_near_ties(fast_model_source, fixed_speeds):
    fixed_speeds.update(fp32=200.0, bf16=210.0, int8=215.0, int8_bf16=218.0)  # under AUTO_MIN_GAIN (1.1x) apart
    report = optimize_for_cpu(fast_model_source, "auto", calibration_data=calibration_batches()).optimization_report
    assert report.chosen == "fp32" and "less than 1.1x as fast" in report.reason
    fixed_speeds.update(int8=400.0)
    report = optimize_for_cpu(fast_model_source, "auto", calibration_data=calibration_batches()).optimization_report
    assert report.chosen == "int8"


def test_auto_skips_bf16_without_native_support(fast_model_source, monkeypatch, fixed_speeds):
    monkeypatch.setattr(fast_inference, "cpu_has_native_bf16", lambda: False)
    report = optimize_for_cpu(fast_model_source, "auto", calibration_data=calibration_batches()).optimization_report
    for mode in fast_inference.BF16_MODES:
        candidate = next(c for c in report.candidates if c.mode == mode)
        assert candidate.status == "skipped" and candidate.images_per_second is None
    assert report.chosen == "int8"


def test_auto_chooses_int8_bf16_where_it_is_fastest(fast_model_source, fixed_speeds):
    fixed_speeds.update(int8_bf16=700.0)  # as measured with native bf16: 1.4-1.5x int8
    report = optimize_for_cpu(fast_model_source, "auto", calibration_data=calibration_batches()).optimization_report
    assert report.chosen == "int8_bf16" and "int8 5.00x" in report.reason


def test_auto_errors(model):
    with pytest.raises(ValueError, match='mode="auto" needs `calibration_data`'):
        optimize_for_cpu(model, "auto")
    with pytest.raises(ValueError, match="`candidates` must be modes among"):
        optimize_for_cpu(model, "auto", calibration_data=calibration_batches(), candidates=("fp16",))
    with pytest.raises(ValueError, match="`accuracy_tolerance` must be >= 0"):
        optimize_for_cpu(model, "auto", calibration_data=calibration_batches(), accuracy_tolerance=-1)


def test_onnxruntime_mode_matches_the_model(fast_model_source):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    fast = optimize_for_cpu(fast_model_source, "onnxruntime")
    batch = padded_batch(seed=3)
    with torch.no_grad():
        expected = fast_model_source(**batch)
        actual = fast(**batch)
    assert fast.fast_path == "onnxruntime" and torch.equal(actual.frame_lengths, expected.frame_lengths)
    torch.testing.assert_close(
        valid_frames(actual.logits, actual.frame_lengths),
        valid_frames(expected.logits, expected.frame_lengths),
        atol=FP32_ATOL,
        rtol=0,
    )


def test_pipeline_optimize_argument_routes_through_auto(fast_model_source, processor, monkeypatch):
    calls = []
    optimize = fast_inference.optimize_for_cpu

    def spy(model, mode="fp32", **kwargs):
        calls.append(mode)
        return optimize(model, mode, **kwargs)

    monkeypatch.setattr(fast_inference, "optimize_for_cpu", spy)
    images = [render_word(word) for word in ("hello", "world", "crnn", "a", "transformers")]
    expected = pipeline("text-recognition", model=fast_model_source, processor=processor, device="cpu")(images)
    reader = pipeline(
        "text-recognition",
        model=fast_model_source,
        processor=processor,
        device="cpu",
        optimize="auto",
        calibration_data=images,  # images: the pipeline runs them through its processor
    )
    assert calls == ["auto"]
    assert isinstance(reader.model, CPUOptimizedCRNN) and reader.optimization_report.num_images == len(images)
    assert reader.model.fast_path == reader.optimization_report.chosen
    actual = reader(images)
    assert [r[0]["generated_text"] for r in actual] == [r[0]["generated_text"] for r in expected]


def test_cli_fast_flag_routes_through_auto(tmp_path, capsys, checkpoint_dir, monkeypatch):
    from hf_crnn import cli

    paths = []
    for index, word in enumerate(("hello", "world", "crnn")):
        paths.append(tmp_path / f"{index}.png")
        render_word(word).save(paths[-1])
    modes = []
    optimize = fast_inference.optimize_for_cpu
    monkeypatch.setattr(
        fast_inference, "optimize_for_cpu", lambda model, mode, **kwargs: modes.append(mode) or optimize(model, mode, **kwargs)
    )
    code = cli.main(["recognize", *map(str, paths), "--model", str(checkpoint_dir), "--format", "tsv"])
    plain = capsys.readouterr()
    code_fast = cli.main(["recognize", *map(str, paths), "--model", str(checkpoint_dir), "--format", "tsv", "--fast"])
    fast = capsys.readouterr()
    assert code == code_fast == 0 and modes == ["auto"]
    assert 'hf-crnn: --fast: optimize_for_cpu "auto" chose' in fast.err and "calibration image" in fast.err
    plain_texts = [line.split("\t")[1] for line in plain.out.splitlines()[1:]]
    fast_texts = [line.split("\t")[1] for line in fast.out.splitlines()[1:]]
    assert fast_texts == plain_texts and len(fast_texts) == 3
    assert cli.main(["recognize", str(paths[0]), "--model", str(checkpoint_dir), "--fast", "--device", "cuda"]) == 2
    assert "--fast optimizes for the CPU" in capsys.readouterr().err


def test_stage_benchmark_splits_each_mode_at_the_first_bilstm(capsys, checkpoint_dir, word_images, tmp_path, monkeypatch):
    """benchmarks/bench_stages.py on a tiny checkpoint: one row per mode whose stages add up, and the CPU line."""
    from conftest import load_script

    bench_stages = load_script("benchmarks/bench_stages.py")
    (tmp_path / "crops").mkdir()
    for index, image in enumerate(word_images):
        image.save(tmp_path / "crops" / f"{index}.png")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")  # only reported: oneDNN read it long before
    code = bench_stages.main([
        "--model", str(checkpoint_dir), "--data", str(tmp_path / "crops"), "--calibration_dir", str(tmp_path / "crops"),
        "--modes", "none", "fp32", "int8", "--batch_size", "2", "--rounds", "1",
    ])
    out = capsys.readouterr().out
    assert code == 0 and "first 5 images" in out and "oneDNN capped at AVX512_CORE_VNNI" in out
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ") and "---" not in line}
    assert list(rows) == ["mode", "none", "fp32", "int8"]
    for mode in ("none", "fp32", "int8"):
        convolutions, rest, whole = (float(value) for value in rows[mode].strip("| ").split(" | ")[1:])
        assert convolutions > 0 and rest > 0 and abs(convolutions + rest - whole) <= 0.01 * whole + 0.002
    with pytest.raises(SystemExit):
        bench_stages.main(["--model", str(checkpoint_dir), "--modes", "onnxruntime"])
