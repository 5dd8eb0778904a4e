# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""What saving and a CPU training run leave behind: file modes that follow the umask, and no spurious warnings."""

import contextlib
import os
import stat
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from conftest import render_word, tiny_config
from transformers.testing_utils import CaptureLogger

from hf_crnn import CRNNForTextRecognition
from hf_crnn.data_collator import CRNNDataCollator
from hf_crnn.training import CRNNTrainer, CRNNTrainingArguments

WORDS = ["hello", "world", "crnn", "text"]


@contextlib.contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def file_modes(folder: Path) -> dict[str, int]:
    """`{relative path: permission bits}` of every file under `folder`."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    return {str(path.relative_to(folder)): stat.S_IMODE(path.stat().st_mode) for path in files}


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_saved_files_follow_the_umask(tmp_path, model, processor, mask):
    with umask(mask):
        model.save_pretrained(tmp_path / "checkpoint")
        processor.save_pretrained(tmp_path / "checkpoint")
    modes = file_modes(tmp_path / "checkpoint")
    assert "model.safetensors" in modes and "vocab.json" in modes
    assert modes == dict.fromkeys(modes, 0o666 & ~mask)


def _train_one_step(output_dir: Path, processor, **argument_overrides) -> CRNNTrainer:
    torch.manual_seed(0)
    args = CRNNTrainingArguments(
        output_dir=str(output_dir),
        max_steps=1,
        per_device_train_batch_size=2,
        save_strategy="steps",
        save_steps=1,
        train_sampling_strategy="sequential",
        report_to="none",
        disable_tqdm=True,
        **argument_overrides,
    )
    trainer = CRNNTrainer(
        model=CRNNForTextRecognition(tiny_config()),
        args=args,
        train_dataset=[{"image": render_word(word), "text": word} for word in WORDS],
        data_collator=CRNNDataCollator(processor),
        processing_class=processor,
    )
    trainer.train()
    return trainer


def test_trainer_checkpoint_files_are_readable_by_others(tmp_path, processor):
    with umask(0o022):
        _train_one_step(tmp_path / "out", processor)
    checkpoint = tmp_path / "out" / "checkpoint-1"
    modes = file_modes(checkpoint)
    assert "model.safetensors" in modes and "optimizer.pt" in modes
    assert modes == dict.fromkeys(modes, 0o644)


@pytest.mark.skipif(torch.cuda.is_available(), reason="pinning is the right default with CUDA")
def test_cpu_training_prints_neither_the_pin_memory_nor_the_pad_token_warning(tmp_path, processor):
    assert CRNNTrainingArguments(output_dir=str(tmp_path)).dataloader_pin_memory is False
    trainer_logger = transformers.utils.logging.get_logger("transformers.trainer_utils")
    with warnings.catch_warnings(record=True) as caught, CaptureLogger(trainer_logger) as logs:
        warnings.simplefilter("always")
        trainer = _train_one_step(tmp_path / "out", processor)
    assert not [warning for warning in caught if "pin_memory" in str(warning.message)]
    assert "PAD/BOS/EOS" not in logs.out
    assert trainer.model.config.pad_token_id == processor.tokenizer.pad_token_id == 0  # the CTC blank


def test_pin_memory_can_still_be_asked_for(tmp_path):
    assert CRNNTrainingArguments(output_dir=str(tmp_path), dataloader_pin_memory=True).dataloader_pin_memory is True
