# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Ctrl-C during `examples/run_text_recognition.py` training: one line saying where it resumes, no traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_CONFIG_KWARGS, render_word

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "examples" / "run_text_recognition.py"

# Runs the script as `__main__`, with a real SIGINT delivered to the process as soon as training starts.
DRIVER = """
import os, runpy, signal, sys, time
import transformers

def interrupted_train(self, *args, **kwargs):
    # A shell's background job starts with SIGINT ignored, so Python would not raise KeyboardInterrupt: restore it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)  # the signal arrives here, as it would in the middle of a training step

transformers.Trainer.train = interrupted_train
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture
def train_dir(tmp_path) -> Path:
    folder = tmp_path / "train"
    folder.mkdir()
    rows = []
    for index, word in enumerate(["hello", "world", "crnn", "text"]):
        render_word(word).save(folder / f"{index}.png")
        rows.append(json.dumps({"file_name": f"{index}.png", "text": word}))
    (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.parametrize("has_checkpoint", [True, False], ids=["with checkpoint", "before the first checkpoint"])
def test_ctrl_c_prints_one_line_saying_where_training_resumes(tmp_path, train_dir, has_checkpoint):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    if has_checkpoint:
        (output_dir / "checkpoint-20").mkdir()
        (output_dir / "checkpoint-20" / "trainer_state.json").write_text("{}")  # saved to the end: resumable
    command = [
        sys.executable, "-c", DRIVER, str(SCRIPT), f"--output_dir={output_dir}", "--do_train",
        "--train_dir", str(train_dir), "--config_overrides", json.dumps(TINY_CONFIG_KWARGS),
        "--max_steps", "1", "--report_to", "none",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 130, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr[-3000:]
    last_line = result.stderr.strip().splitlines()[-1]
    if has_checkpoint:
        assert last_line == f"Interrupted: run the same command again to resume from {output_dir / 'checkpoint-20'}."
    else:
        assert last_line.startswith("Interrupted: no checkpoint was saved in") and str(output_dir) in last_line
