# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""ONNX export: parity with PyTorch at batch sizes and widths other than the traced ones, decoding, CLI, errors."""

import subprocess
import sys

import pytest
import torch
from conftest import render_word
from test_fast_inference import trained_like_model

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hf_crnn import CRNNForTextRecognition  # noqa: E402
from hf_crnn import cli, onnx_export  # noqa: E402
from hf_crnn.decoding import ctc_decode  # noqa: E402
from hf_crnn.fast_inference import optimize_for_cpu  # noqa: E402
from hf_crnn.onnx_export import (  # noqa: E402
    PARITY_TOLERANCE,
    CRNNOnnxRuntimeModel,
    ONNXValidationError,
    example_inputs,
    export_onnx,
    validate_onnx,
)

# The graph is traced with 2 images 100 pixels wide; these differ in batch size, padded width and padding.
CHECK_WIDTHS = {"one image, narrow": [52], "five images, wide and padded": [252, 180, 100, 37, 4]}


@pytest.fixture(scope="module")
def source_model():
    # Real batch-norm statistics, so the folded graph has something to get wrong, and trained-like logits.
    return trained_like_model()


@pytest.fixture(scope="module")
def exported(source_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "crnn.onnx"
    result = export_onnx(source_model, path)
    assert result.path == path and path.is_file()
    assert result.max_abs_logit_difference is not None and result.max_abs_logit_difference <= PARITY_TOLERANCE
    return path


@pytest.mark.parametrize("widths", CHECK_WIDTHS.values(), ids=CHECK_WIDTHS.keys())
def test_onnxruntime_matches_pytorch_at_other_batch_sizes_and_widths(source_model, exported, widths):
    inputs = example_inputs(source_model, widths, seed=3)
    with torch.no_grad():
        expected = source_model(**inputs)
    actual = CRNNOnnxRuntimeModel(exported)(**inputs)
    assert actual.logits.shape == expected.logits.shape
    assert torch.equal(actual.frame_lengths, expected.frame_lengths)
    for index, length in enumerate(expected.frame_lengths.tolist()):
        difference = (actual.logits[index, :length] - expected.logits[index, :length]).abs().max().item()
        assert difference < PARITY_TOLERANCE, (widths[index], difference)


def test_decoding_onnxruntime_outputs_equals_decoding_pytorch_outputs(source_model, exported, processor):
    words = ["hello", "world", "crnn", "a", "transformers"]
    batch = processor(images=[render_word(word) for word in words], text=words)
    onnx_model = CRNNOnnxRuntimeModel(exported)
    with torch.no_grad():
        expected = source_model(pixel_values=batch["pixel_values"], image_widths=batch["image_widths"])
    actual = onnx_model(**batch)  # labels are accepted and ignored
    expected_texts = processor.batch_decode(expected.logits, expected.frame_lengths)
    assert processor.batch_decode(actual.logits, actual.frame_lengths) == expected_texts
    vocab = processor.tokenizer.get_vocab()
    decoded = onnx_model.greedy_decode(batch["pixel_values"], batch["image_widths"], vocab=vocab)
    reference = ctc_decode(expected.logits.log_softmax(-1), expected.frame_lengths, method="greedy", vocab=vocab)
    assert [d.ids for d in decoded] == [r.ids for r in reference]
    assert [d.text for d in decoded] == [r.text for r in reference]
    assert [d.char_frames for d in decoded] == [r.char_frames for r in reference]
    assert [d.score for d in decoded] == pytest.approx([r.score for r in reference], abs=1e-3)


def test_unpadded_input_without_image_widths(source_model, exported):
    pixel_values = example_inputs(source_model, [88, 88], seed=4)["pixel_values"]
    with torch.no_grad():
        expected = source_model(pixel_values=pixel_values)
    actual = CRNNOnnxRuntimeModel(exported, num_threads=1)(pixel_values.numpy())
    torch.testing.assert_close(actual.logits, expected.logits, atol=PARITY_TOLERANCE, rtol=0)
    assert actual.frame_lengths.tolist() == expected.frame_lengths.tolist()


def test_validation_catches_a_graph_of_other_weights(source_model, exported):
    other = CRNNForTextRecognition(source_model.config).eval()
    with pytest.raises(ONNXValidationError, match="logits differ from PyTorch's by up to .* more than the tolerance"):
        validate_onnx(exported, other)


def test_failed_validation_writes_nothing_and_keeps_the_previous_file(source_model, tmp_path, monkeypatch):
    target = tmp_path / "crnn.onnx"
    target.write_bytes(b"previous export")
    # A broken export: batch norm dropped instead of folded into the convolutions.
    monkeypatch.setattr(onnx_export, "fold_batch_norm", lambda layer: setattr(layer, "batch_norm", None))
    with pytest.raises(ONNXValidationError, match="more than the tolerance 0.0001"):
        export_onnx(source_model, target)
    assert target.read_bytes() == b"previous export"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["crnn.onnx"]  # no temporary file left behind


def test_export_errors(source_model, tmp_path):
    with pytest.raises(ValueError, match="optimized with optimize_for_cpu"):
        export_onnx(optimize_for_cpu(source_model, "fp32"), tmp_path / "fast.onnx")
    with pytest.raises(ValueError, match="expects a CRNNForTextRecognition, got CRNNModel"):
        export_onnx(source_model.crnn, tmp_path / "base.onnx")
    with pytest.raises(ValueError, match="is a folder"):
        export_onnx(source_model, tmp_path)
    with pytest.raises(ValueError, match="Expected a graph with inputs"):
        CRNNOnnxRuntimeModel(_other_graph(tmp_path / "other.onnx"))


def test_runner_input_errors(exported):
    onnx_model = CRNNOnnxRuntimeModel(exported)
    with pytest.raises(ValueError, match=r"must have shape \(B, C, H, W\)"):
        onnx_model(torch.zeros(32, 100))
    with pytest.raises(ValueError, match=r"`image_widths` must have shape \(2,\)"):
        onnx_model(torch.zeros(2, 1, 32, 100), torch.tensor([100]))
    with pytest.raises(ValueError, match=r"must lie in \[1, 100\]"):
        onnx_model(torch.zeros(2, 1, 32, 100), torch.tensor([100, 101]))


def _other_graph(path):
    """An ONNX graph with other input and output names."""
    torch.onnx.export(
        torch.nn.Identity(), (torch.zeros(1),), path, input_names=["x"], output_names=["y"], dynamo=False
    )
    return path


def test_cli_round_trip(checkpoint_dir, tmp_path, capsys, processor):
    output = tmp_path / "exported" / "crnn.onnx"
    code = cli.main(["export-onnx", "--model", str(checkpoint_dir), "--output", str(output), "--opset", "14"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote {output} (opset 14; validated with onnxruntime" in captured.out
    import onnx

    assert onnx.load(output).opset_import[0].version == 14
    model = CRNNForTextRecognition.from_pretrained(checkpoint_dir).eval()
    inputs = example_inputs(model, [140, 61], seed=5)
    with torch.no_grad():
        expected = model(**inputs)
    actual = CRNNOnnxRuntimeModel(output)(**inputs)
    assert torch.equal(actual.frame_lengths, expected.frame_lengths)
    for index, length in enumerate(expected.frame_lengths.tolist()):
        torch.testing.assert_close(actual.logits[index, :length], expected.logits[index, :length], atol=1e-4, rtol=0)


def test_cli_no_validate_and_errors(checkpoint_dir, tmp_path, capsys):
    output = tmp_path / "crnn.onnx"
    assert cli.main(["export-onnx", "--model", str(checkpoint_dir), "--output", str(output), "--no-validate"]) == 0
    assert "not validated" in capsys.readouterr().out and output.is_file()

    code = cli.main(["export-onnx", "--model", str(tmp_path / "missing"), "--output", str(output)])
    assert code == cli.EXIT_USAGE
    assert "cannot load the model" in capsys.readouterr().err

    code = cli.main(["export-onnx", "--model", str(checkpoint_dir), "--output", str(tmp_path)])
    assert code == cli.EXIT_USAGE
    assert "is a folder" in capsys.readouterr().err


def test_importing_hf_crnn_does_not_import_onnx():
    code = (
        "import sys, hf_crnn, hf_crnn.cli, hf_crnn.onnx_export; "
        "print('onnx' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
