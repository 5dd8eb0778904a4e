# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Weight averaging of checkpoints (`hf_crnn.model_averaging`, `examples/average_checkpoints.py`)."""

from pathlib import Path

import pytest
import torch
from conftest import load_script, tiny_config

from hf_crnn import CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer
from hf_crnn.model_averaging import average_checkpoints, average_state_dicts


average_checkpoints_script = load_script("examples/average_checkpoints.py")


def save_checkpoint(folder: Path, seed: int, image_height: int = 32, **config_overrides) -> Path:
    torch.manual_seed(seed)
    model = CRNNForTextRecognition(tiny_config(**config_overrides))
    with torch.no_grad():  # distinct batch-norm statistics, so they are averaged too
        for layer in model.crnn.conv_layers:
            if layer.batch_norm is not None:
                layer.batch_norm.running_mean.uniform_(-1, 1)
                layer.batch_norm.running_var.uniform_(0.5, 2)
    model.save_pretrained(folder)
    image_processor = CRNNImageProcessor(image_height=image_height, resize_mode="keep_aspect_ratio")
    CRNNProcessor(image_processor, CRNNTokenizer(do_lower_case=True)).save_pretrained(folder)
    return folder


@pytest.fixture
def two_checkpoints(tmp_path):
    return save_checkpoint(tmp_path / "a", seed=0), save_checkpoint(tmp_path / "b", seed=1)


def test_average_state_dicts_weights_float_tensors_and_keeps_counters():
    first = {"weight": torch.tensor([0.0, 2.0]), "half": torch.tensor([1.0], dtype=torch.float16),
             "num_batches_tracked": torch.tensor(7)}
    second = {"weight": torch.tensor([4.0, 6.0]), "half": torch.tensor([3.0], dtype=torch.float16),
              "num_batches_tracked": torch.tensor(9)}
    uniform = average_state_dicts([first, second])
    assert uniform["weight"].tolist() == [2.0, 4.0]
    assert uniform["half"].dtype == torch.float16 and uniform["half"].item() == 2.0
    assert uniform["num_batches_tracked"].item() == 7  # an integer counter is not averaged
    weighted = average_state_dicts([first, second], weights=[3, 1])  # normalised to 0.75 / 0.25
    assert weighted["weight"].tolist() == [1.0, 3.0]


@pytest.mark.parametrize(
    "state_dicts, weights, message",
    [
        ([{"w": torch.zeros(2)}], None, "at least two state dicts"),
        ([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}], None, "other tensors"),
        ([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}], None, r"'w' has shape \(3,\) in state dict 1"),
        ([{"w": torch.zeros(2)}] * 2, [1.0], "Got 1 weights for 2"),
        ([{"w": torch.zeros(2)}] * 2, [1.0, -1.0], "non-negative"),
        ([{"w": torch.zeros(2)}] * 2, [0.0, 0.0], "positive sum"),
        ([{"w": torch.zeros(2)}] * 2, [1.0, float("nan")], "non-negative"),
    ],
)
def test_average_state_dicts_errors(state_dicts, weights, message):
    with pytest.raises(ValueError, match=message):
        average_state_dicts(state_dicts, weights)


def test_average_checkpoints_averages_every_float_tensor(two_checkpoints):
    model, processor = average_checkpoints(two_checkpoints)
    assert not model.training and processor.image_processor.image_height == 32
    first, second = (CRNNForTextRecognition.from_pretrained(path).state_dict() for path in two_checkpoints)
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (first[key] + second[key]) / 2)
        else:
            assert torch.equal(tensor, first[key])
    for key in ("classifier.weight", "crnn.conv_layers.2.batch_norm.running_mean"):  # a real average, not a copy
        assert not torch.equal(first[key], second[key])


def test_averaging_a_checkpoint_with_itself_reads_as_it_does(two_checkpoints, word_images):
    path = two_checkpoints[0]
    model, processor = average_checkpoints([path, path])
    original = CRNNForTextRecognition.from_pretrained(path).eval()
    inputs = processor(images=word_images)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, original(**inputs).logits, rtol=0, atol=0)


def test_checkpoints_that_read_differently_are_refused(tmp_path, two_checkpoints):
    first = two_checkpoints[0]
    taller = save_checkpoint(tmp_path / "taller", seed=2, image_height=64)
    with pytest.raises(ValueError, match=r"reads images differently .*image_height"):
        average_checkpoints([first, taller])
    wider = save_checkpoint(tmp_path / "wider", seed=3, hidden_size=12)
    with pytest.raises(ValueError, match=r"another architecture .*hidden_size"):
        average_checkpoints([first, wider])
    cased = save_checkpoint(tmp_path / "cased", seed=4)
    tokenizer = CRNNTokenizer(characters="0123456789abcdefghijklmnopqrstuvwxyZ")
    CRNNProcessor(CRNNImageProcessor(resize_mode="keep_aspect_ratio"), tokenizer).save_pretrained(cased)
    with pytest.raises(ValueError, match="another vocabulary"):
        average_checkpoints([first, cased])
    with pytest.raises(ValueError, match="at least two checkpoints"):
        average_checkpoints([first])


def test_script_writes_a_loadable_checkpoint_and_refuses_a_non_empty_folder(tmp_path, two_checkpoints, word_images):
    output = tmp_path / "soup"
    args = ["--checkpoints", *map(str, two_checkpoints), "--output_dir", str(output), "--weights", "1", "3"]
    average_checkpoints_script.main(args)
    soup = CRNNForTextRecognition.from_pretrained(output)
    processor = CRNNProcessor.from_pretrained(output)
    first, second = (CRNNForTextRecognition.from_pretrained(path).state_dict() for path in two_checkpoints)
    key = "classifier.weight"
    torch.testing.assert_close(soup.state_dict()[key], 0.25 * first[key] + 0.75 * second[key])
    assert processor(images=word_images)["pixel_values"].shape[2] == 32
    assert not list(tmp_path.glob(".soup*"))  # no staging folder left behind
    with pytest.raises(ValueError, match="is not empty; pass --overwrite_output_dir"):
        average_checkpoints_script.main(args)
    average_checkpoints_script.main(args + ["--overwrite_output_dir"])


def test_script_leaves_nothing_behind_when_saving_fails(tmp_path, two_checkpoints, monkeypatch):
    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(CRNNProcessor, "save_pretrained", fail)  # after the model was written
    output = tmp_path / "soup"
    with pytest.raises(OSError, match="disk full"):
        average_checkpoints_script.main(["--checkpoints", *map(str, two_checkpoints), "--output_dir", str(output)])
    assert not output.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "b"]  # no staging folder either
