# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
`--help` of every entry point, in a fresh process: each script of examples/, benchmarks/ and conversion/ (and module
of hf_crnn) that runs as `__main__`, and every `hf-crnn` subcommand. They are discovered, not listed, so a new
script or subcommand is covered without touching this file. (`python examples/run_text_recognition.py --help`
once crashed on a `%` in a help string: argparse formats help text with `%`.)
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hf_crnn import cli

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT_FOLDERS = ("examples", "benchmarks", "conversion")
PACKAGE = "hf_crnn"
# At the start of a line: a docstring that mentions the guard does not make a module a script.
MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)
# Imports torch and transformers on a busy 2-core machine; far more than --help ever needs.
TIMEOUT_SECONDS = 300


def _has_main_guard(path: Path) -> bool:
    return MAIN_GUARD.search(path.read_text(encoding="utf-8")) is not None


def _scripts() -> list[list[str]]:
    """`python <script>` for each script of the script folders, `python -m <module>` for the package's."""
    commands = [
        [str(path.relative_to(REPO_ROOT))]
        for folder in SCRIPT_FOLDERS
        for path in sorted((REPO_ROOT / folder).glob("*.py"))
        if _has_main_guard(path)
    ]
    commands += [
        ["-m", f"{PACKAGE}.{path.stem}"]
        for path in sorted((REPO_ROOT / PACKAGE).glob("*.py"))
        if _has_main_guard(path)
    ]
    return commands


def _subcommands() -> list[list[str]]:
    """`hf-crnn`, each of its subcommands, and `convert --source NAME` for each converter."""
    parser = cli.build_parser()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    commands = [[]] + [[name] for name in subparsers.choices]
    commands += [["convert", "--source", source] for source in sorted(cli.CONVERTERS)]
    return [["-m", f"{PACKAGE}.cli", *command] for command in commands]


def _id(command: list[str]) -> str:
    return " ".join(command).replace("-m hf_crnn.cli", "hf-crnn")


# `python -m hf_crnn.cli` is both a package script and bare `hf-crnn`: run it once.
ENTRY_POINTS = _scripts() + [command for command in _subcommands() if command not in _scripts()]


def test_discovery_finds_the_known_entry_points():
    ids = {_id(command) for command in ENTRY_POINTS}
    assert {"examples/run_text_recognition.py", "hf-crnn recognize", "hf-crnn convert --source easyocr"} <= ids
    assert any(name.startswith("benchmarks/") for name in ids) and any(name.startswith("conversion/") for name in ids)
    assert "conversion/common.py" not in ids  # mentions the guard in a docstring only


@pytest.mark.parametrize("command", ENTRY_POINTS, ids=_id)
def test_help_exits_0_and_prints_usage(command):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, *command, "--help"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage:" in result.stdout.lower(), result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
