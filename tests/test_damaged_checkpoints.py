# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Damaged, missing and mistyped checkpoints: one line naming the file, from the CLI and from `from_pretrained`."""

import shutil

import pytest
import transformers
from conftest import render_word
from transformers import AutoModelForTextRecognition, AutoProcessor, AutoTokenizer

from hf_crnn import CRNNForTextRecognition, CRNNProcessor, CRNNTokenizer, cli
from hf_crnn import tokenization_crnn

MODEL_FILES = ("model.safetensors", "config.json")
PROCESSOR_FILES = ("vocab.json", "processor_config.json", "tokenizer_config.json")


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def delete(path):
    path.unlink()


def overwrite_with_binary(path):
    path.write_bytes(b"\xff\xfe\x00\x01 not what was saved")


DAMAGES = {"truncated": truncate, "missing": delete, "binary": overwrite_with_binary}


@pytest.fixture
def damaged_checkpoint(request, tmp_path, checkpoint_dir):
    """A copy of the tiny checkpoint with one file damaged: `(folder, file name)`."""
    name, damage = request.param
    folder = tmp_path / "damaged"
    shutil.copytree(checkpoint_dir, folder)
    DAMAGES[damage](folder / name)
    return folder, name


CASES = [(name, damage) for name in MODEL_FILES + PROCESSOR_FILES for damage in DAMAGES]
CASE_IDS = [f"{name}-{damage}" for name, damage in CASES]


@pytest.mark.parametrize("damaged_checkpoint", CASES, ids=CASE_IDS, indirect=True)
def test_cli_names_the_damaged_file_in_one_line(capsys, tmp_path, damaged_checkpoint):
    folder, name = damaged_checkpoint
    image = tmp_path / "word.png"
    render_word("hello").save(image)
    capsys.readouterr()  # the fixture's saving output
    code = cli.main(["recognize", str(image), "--model", str(folder)])
    captured = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("hf-crnn: error: ") and str(folder / name) in lines[0]


@pytest.mark.parametrize("damaged_checkpoint", CASES, ids=CASE_IDS, indirect=True)
def test_from_pretrained_raises_naming_the_damaged_file(damaged_checkpoint):
    folder, name = damaged_checkpoint
    load = AutoModelForTextRecognition.from_pretrained if name in MODEL_FILES else AutoProcessor.from_pretrained
    # AutoModel* and AutoProcessor read config.json and processor_config.json themselves, before any CRNN code runs
    # (test_auto_classes_name_a_damaged_config covers what they say).
    if name == "config.json":
        load = CRNNForTextRecognition.from_pretrained
    elif name == "processor_config.json":
        load = CRNNProcessor.from_pretrained
    with pytest.raises((OSError, ValueError)) as error_info:
        load(str(folder))
    assert str(folder / name) in str(error_info.value)
    assert "\n" not in str(error_info.value)


def test_auto_classes_name_a_damaged_config(tmp_path, checkpoint_dir):
    """transformers' own message for a truncated config.json names it; keep it that way."""
    folder = tmp_path / "damaged"
    shutil.copytree(checkpoint_dir, folder)
    truncate(folder / "config.json")
    with pytest.raises(OSError, match="config.json"):
        AutoModelForTextRecognition.from_pretrained(str(folder))


def test_missing_vocab_is_an_error_not_the_builtin_alphabet(tmp_path, checkpoint_dir):
    folder = tmp_path / "no-vocab"
    shutil.copytree(checkpoint_dir, folder)
    (folder / "vocab.json").unlink()
    with pytest.raises(OSError, match="vocab.json"):
        AutoTokenizer.from_pretrained(str(folder))
    with pytest.raises(OSError, match="vocab.json"):
        CRNNProcessor.from_pretrained(str(folder))


def test_tokenizer_without_vocab_file_fails_even_past_the_folder_check(monkeypatch, tmp_path, checkpoint_dir):
    """For Hub checkpoints nothing is checked up front: the tokenizer itself refuses to fall back."""
    folder = tmp_path / "no-vocab"
    shutil.copytree(checkpoint_dir, folder)
    (folder / "vocab.json").unlink()
    monkeypatch.setattr(tokenization_crnn, "check_local_checkpoint", lambda *args, **kwargs: None)
    with pytest.raises(ValueError, match="has no vocab.json"):
        CRNNTokenizer.from_pretrained(str(folder))
    assert CRNNTokenizer().vocab_size == 37  # a tokenizer built in code still gets the default alphabet


def _no_hub(*args, **kwargs):
    raise AssertionError("a local path was looked up on the Hub")


@pytest.mark.parametrize("typo", ["checkpoints/crnn-synth-en-typo", "./crnn-tiny-typo", "crnn-tiny-typo"])
def test_mistyped_local_path_fails_at_once(capsys, monkeypatch, tmp_path, checkpoint_dir, typo):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    monkeypatch.setattr(transformers.utils.hub, "hf_hub_download", _no_hub)
    image = tmp_path / "word.png"
    render_word("hello").save(image)
    capsys.readouterr()  # the fixture's saving output
    code = cli.main(["recognize", str(image), "--model", typo])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and f"{typo}: no such folder" in err and len(err.strip().splitlines()) == 1

    if "/" in typo:  # a bare name may be a Hub id for from_pretrained; the CLI treats it as a folder
        with pytest.raises(OSError, match="no such folder"):
            CRNNForTextRecognition.from_pretrained(typo)
        with pytest.raises(OSError, match="no such folder"):
            CRNNProcessor.from_pretrained(typo)


def test_a_sound_checkpoint_still_loads(checkpoint_dir):
    assert isinstance(AutoModelForTextRecognition.from_pretrained(str(checkpoint_dir)), CRNNForTextRecognition)
    assert isinstance(AutoProcessor.from_pretrained(str(checkpoint_dir)), CRNNProcessor)
