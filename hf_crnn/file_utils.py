# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Crash-safe saving (files are written to a staging folder and moved into place only once all are complete), and the
checks that turn a damaged checkpoint or word list into one clear error naming the file.
"""

import codecs
import contextlib
import json
import os
import shutil
import struct
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
        file_mode = 0o666 & ~_current_umask()
        for root, _, files in os.walk(staging):
            target_root = os.path.join(save_directory, os.path.relpath(root, staging))
            os.makedirs(target_root, exist_ok=True)
            for name in files:
                target = os.path.join(target_root, name)
                os.replace(os.path.join(root, name), target)
                # Some writers (safetensors, `tempfile`) create files 0600; saved files follow the umask like any
                # other file, so another user can read the checkpoint.
                os.chmod(target, file_mode)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _current_umask() -> int:
    """The process umask. Linux reports it in /proc; elsewhere it is read by setting it and putting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


# ---- checking checkpoints before loading them ----------------------------------------------------------------------

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_WEIGHTS_FILE = "pytorch_model.bin"
PROCESSOR_CONFIG_FILE = "processor_config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
VOCAB_FILE = "vocab.json"
# What each loader reads from a checkpoint folder; the weights entry stands for single-file or sharded safetensors.
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE)
TOKENIZER_FILES = (TOKENIZER_CONFIG_FILE, VOCAB_FILE)
PROCESSOR_FILES = (PROCESSOR_CONFIG_FILE, *TOKENIZER_FILES)
# A safetensors header larger than this is damage, not a header (real ones are a few kB to a few MB).
_MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024


def looks_like_local_path(name: str) -> bool:
    """
    Whether `name` can only be meant as a local folder: an absolute or `./`, `../`, `~` path, one with a backslash,
    a trailing slash or more than two parts (a Hub repo id is `name` or `namespace/name`), or `namespace/name`
    whose first part is a folder here (`checkpoints/crnn-synt-en`, a typo of a local checkpoint).
    """
    if os.path.isabs(name) or name in (".", "..") or name.startswith(("./", "../", "~")) or "\\" in name:
        return True
    parts = name.split("/")
    return name.endswith("/") or len(parts) > 2 or (len(parts) == 2 and os.path.isdir(parts[0]))


def check_local_checkpoint(
    name_or_path: str | os.PathLike, files: tuple[str, ...], subfolder: str = "", bare_names_are_paths: bool = False
) -> None:
    """
    Checks a local checkpoint before anything loads it, so damage gives one error naming the file instead of a
    traceback from deep inside a loader (or a silent fallback, like a tokenizer without `vocab.json`).

    When `name_or_path` is a folder, each of `files` must be present and intact: JSON files must parse to an object,
    `vocab.json` must map tokens to integer ids, and the safetensors weights (one file or the shards of an index)
    must have a readable header and exactly the size it describes. A name that can only be a local path
    ([`looks_like_local_path`], or any name without `/` when `bare_names_are_paths`) but is no folder fails at once
    rather than going to the Hub. Other names (Hub repo ids) are left to the loaders.

    Raises:
        `OSError`: `"<file>: <what is wrong>"`, or `"<path>: no such folder"`.
    """
    path = os.path.expanduser(os.fspath(name_or_path))
    if not os.path.isdir(path):
        if looks_like_local_path(path) or (bare_names_are_paths and "/" not in path):
            what = "a file, not a checkpoint folder" if os.path.isfile(path) else "no such folder"
            hint = "" if "/" in path or os.path.isfile(path) else " (a Hub model is named namespace/name)"
            raise OSError(f"{path}: {what}{hint}")
        return
    folder = os.path.join(path, subfolder) if subfolder else path
    if not os.path.isdir(folder):
        raise OSError(f"{folder}: no such folder")
    for name in files:
        if name == WEIGHTS_FILE:
            _check_weights(folder)
        else:
            _check_json_file(os.path.join(folder, name))


def _check_weights(folder: str) -> None:
    single = os.path.join(folder, WEIGHTS_FILE)
    index = os.path.join(folder, WEIGHTS_INDEX_FILE)
    if os.path.exists(single):
        check_safetensors_file(single)
    elif os.path.exists(index):
        weight_map = _check_json_file(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise OSError(f"{index}: has no `weight_map` naming the weight shards")
        for shard in sorted(set(weight_map.values())):
            check_safetensors_file(os.path.join(folder, shard))
    elif not os.path.exists(os.path.join(folder, PYTORCH_WEIGHTS_FILE)):
        raise OSError(f"{single}: missing; the checkpoint has no weights")


def _check_json_file(path: str) -> dict:
    """The JSON object in `path`, or an `OSError` saying what is wrong with the file."""
    if not os.path.isfile(path):
        raise OSError(f"{path}: missing; the checkpoint is incomplete")
    with open(path, "rb") as handle:
        data = handle.read()
    if not data.strip():
        raise OSError(f"{path}: empty file; the checkpoint is damaged")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise OSError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); the file is damaged"
        ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise OSError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); the file is damaged "
            "or truncated"
        ) from None
    if not isinstance(value, dict):
        raise OSError(f"{path}: expected a JSON object, found a JSON {type(value).__name__}")
    if os.path.basename(path) == VOCAB_FILE:
        if not value:
            raise OSError(f"{path}: the vocabulary is empty")
        not_ids = [token for token, index in value.items() if not isinstance(index, int) or isinstance(index, bool)]
        if not_ids:
            raise OSError(f"{path}: token {not_ids[0]!r} maps to {value[not_ids[0]]!r}, not to an integer id")
    return value


def check_safetensors_file(path: str | os.PathLike) -> None:
    """
    Checks that `path` is a whole safetensors file: an 8-byte header length, a JSON header, and exactly the tensor
    bytes the header describes (a truncated download or copy is caught here, not as `SafetensorError`).

    Raises:
        `OSError`: naming the file and what is wrong with it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OSError(f"{path}: missing; the checkpoint is incomplete")
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise OSError(f"{path}: truncated ({size} bytes, too short for a safetensors header)")
        (header_size,) = struct.unpack("<Q", prefix)
        if header_size > _MAX_SAFETENSORS_HEADER_BYTES:
            raise OSError(f"{path}: not a safetensors file (its first 8 bytes are not a header length)")
        if 8 + header_size > size:
            raise OSError(f"{path}: truncated ({size} bytes, shorter than its {header_size}-byte header)")
        header_bytes = handle.read(header_size)
    try:
        header = json.loads(header_bytes.decode("utf-8"))
        tensor_bytes = max(
            (int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"), default=0
        )
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise OSError(f"{path}: the safetensors header is damaged (not a JSON table of tensors)") from None
    expected = 8 + header_size + tensor_bytes
    if size < expected:
        raise OSError(f"{path}: truncated ({size} bytes; its header describes {expected})")
    if size > expected:
        raise OSError(f"{path}: damaged ({size} bytes; its header describes {expected})")


# ---- word lists ----------------------------------------------------------------------------------------------------

# Byte-order marks that fix a word list's encoding; without one, the file must be UTF-8.
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_word_list_file(path: str | os.PathLike, what: str = "lexicon") -> list[str]:
    """
    Reads a word list, one word per line: UTF-8 with or without a byte-order mark, or UTF-16 with one (what
    Windows editors write as "Unicode"). Surrounding whitespace is stripped and empty lines skipped.

    Args:
        path: The file.
        what (`str`): What the file is, for error messages (`"lexicon"`).

    Raises:
        `ValueError`: naming the file (and the line, for a decoding error or a binary file) when it cannot be read,
        is not text in those encodings, or holds no word.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ValueError(f"Cannot read the {what} file {path}: {error.strerror or error}") from None
    encoding = next((name for bom, name in _BYTE_ORDER_MARKS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].decode(encoding, errors="replace").count("\n") + 1
        hint = "" if encoding != "utf-8" else " (save it as UTF-8, or UTF-16 with a byte-order mark)"
        raise ValueError(
            f"The {what} file {path}, line {line}: not {encoding.upper().replace('-SIG', '')} text "
            f"(byte 0x{data[error.start]:02x}){hint}."
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        number = text.count("\n", 0, text.index("\x00")) + 1
        raise ValueError(
            f"The {what} file {path}, line {number}: holds a NUL character; it is a binary file, or UTF-16 "
            "without a byte-order mark (save it as UTF-8)."
        )
    words = [word for word in (line.strip() for line in text.split("\n")) if word]
    if not words:
        raise ValueError(f"The {what} file {path} holds no words (it is empty or blank).")
    return words
