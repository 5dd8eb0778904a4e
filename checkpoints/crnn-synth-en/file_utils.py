# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Crash-safe saving: files are written to a staging folder and moved into place only once all are complete."""

import contextlib
import os
import shutil
import tempfile

# Arguments of `push_to_hub` that callers pass through `save_pretrained(..., push_to_hub=True, **kwargs)`.
HUB_KWARGS = ("repo_id", "token", "private", "commit_message", "commit_description", "create_pr", "revision")


def pop_hub_kwargs(kwargs: dict) -> dict:
    """Removes and returns the `push_to_hub` arguments from a `save_pretrained` kwargs dict."""
    return {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}


@contextlib.contextmanager
def staged_directory(save_directory: str | os.PathLike):
    """
    Yields a staging folder beside `save_directory`; on success moves every file written there into
    `save_directory` (each with an atomic `os.replace`), on error deletes it and leaves `save_directory` untouched.

    Files already in `save_directory` that are not rewritten are kept, so a model and its processor can be saved
    into one folder one after the other.
    """
    save_directory = os.path.abspath(os.fspath(save_directory))
    if os.path.isfile(save_directory):
        raise ValueError(f"Provided path ({save_directory}) should be a directory, not a file.")
    parent = os.path.dirname(save_directory)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(save_directory)}.partial-", dir=parent)
    try:
        yield staging
        os.makedirs(save_directory, exist_ok=True)
        for root, _, files in os.walk(staging):
            target_root = os.path.join(save_directory, os.path.relpath(root, staging))
            os.makedirs(target_root, exist_ok=True)
            for name in files:
                os.replace(os.path.join(root, name), os.path.join(target_root, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
