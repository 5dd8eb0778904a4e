# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
What every converter shares: the command line, safe loading of PyTorch checkpoints, building the hf_crnn model,
tokenizer and image processor, the model card, and the atomic save (plus an optional push to the Hub).

A converter script describes its source with a [`Source`], turns the source checkpoint into an hf_crnn config and
state dict (the only source-specific part), and hands the model and processor to [`save_converted_checkpoint`].
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import shlex
import shutil
import sys
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers.image_utils import PILImageResampling

from hf_crnn import CRNNConfig, CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer
from hf_crnn.hub import push_checkpoint_to_hub, save_checkpoint

from .key_mapping import KeyLabel, rename_state_dict

# Where training scripts commonly nest the model's state dict inside a bigger checkpoint dict, in the order tried.
STATE_DICT_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
# Paths in the recorded conversion command are cut to their file names: a model card should not publish local paths.
_PATH_OPTIONS = ("--checkpoint", "--output_dir", "--test_image")


@dataclass(frozen=True)
class Source:
    """
    A published CRNN implementation and how its checkpoints are preprocessed and decoded.

    Args:
        name: `owner/repo` of the source, as written in messages and the model card.
        url: The source repository.
        license: Hub licence identifier of the source (the weights' terms follow the code's licence).
        license_name: Human-readable licence name.
        original_file: File name of the published checkpoint.
        download: Where that checkpoint is published (plain text for the model card).
        training_data: What the published checkpoint was trained on, as the source states it.
        alphabet: The characters after the CTC blank (id 0), in the source's id order.
        resample: The PIL filter of the source's resize to `image_width` x 32.
        image_mean, image_std: Normalisation after scaling pixels to [0, 1].
        preprocessing: One line describing the source's preprocessing, for the model card; `{pil_mode}`, `{width}`
            and `{height}` are filled in from the image processor.
        notes: Extra model-card lines (limits, unverified parts).
        image_processor_kwargs: [`CRNNImageProcessor`] arguments that replace the default fixed-width resize
            (e.g. EasyOCR's aspect-preserving resize to its 64-pixel height).
        script: The converter's file name, for the recorded command.
        tag: A Hub tag naming the source.
    """

    name: str
    url: str
    license: str
    license_name: str
    original_file: str
    download: str
    training_data: str
    alphabet: str
    resample: PILImageResampling
    preprocessing: str
    script: str
    tag: str
    image_mean: float = 0.5
    image_std: float = 0.5
    notes: tuple[str, ...] = field(default_factory=tuple)
    image_processor_kwargs: Mapping[str, object] = field(default_factory=dict)


# ---- command line --------------------------------------------------------------------------------------------------


def build_argument_parser(
    source: Source, description: str, checkpoint_help: str | None = None
) -> argparse.ArgumentParser:
    """
    The arguments every converter takes; a script adds its own (e.g. `--image_height`) to the returned parser.
    With `checkpoint_help`, `--checkpoint` is optional (the script finds the file itself when it is not given).
    """
    parser = argparse.ArgumentParser(
        prog=f"python conversion/{source.script}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        required=checkpoint_help is None,
        help=checkpoint_help or f"The {source.name} checkpoint ({source.original_file}).",
    )
    parser.add_argument("--output_dir", required=True, help="Folder to write the hf_crnn checkpoint to.")
    parser.add_argument(
        "--alphabet",
        default=source.alphabet,
        help="Characters of class ids 1, 2, ... (id 0 is the CTC blank), in the order the checkpoint was trained "
        # argparse %-formats help strings: an alphabet with '%' (EasyOCR's) must be escaped.
        f"with. Default: the published model's {source.alphabet!r}.".replace("%", "%%"),
    )
    parser.add_argument(
        "--image_width", type=int, default=100, help="Width images are resized to (the sources use 100)."
    )
    parser.add_argument(
        "--test_image",
        action="append",
        default=[],
        help="An image to recognise with the converted model before it is moved into place (repeatable).",
    )
    parser.add_argument(
        "--expected_text",
        action="append",
        default=[],
        help="The text expected for each --test_image, in order; a mismatch aborts without writing --output_dir.",
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace --output_dir if it is not empty.")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", help="Also upload the checkpoint to this Hub repo.")
    return parser


def recorded_command(source: Source, argv: Sequence[str]) -> str:
    """The conversion command as run, with path arguments cut to their file names, for the model card."""
    parts = ["python", f"conversion/{source.script}"]
    argv = list(argv)
    index = 0
    while index < len(argv):
        token = argv[index]
        option, equals, value = token.partition("=")
        if option in _PATH_OPTIONS and equals:
            parts.append(f"{option}={os.path.basename(value.rstrip(os.sep))}")
        elif token in _PATH_OPTIONS and index + 1 < len(argv):
            parts += [token, os.path.basename(argv[index + 1].rstrip(os.sep))]
            index += 1
        else:
            parts.append(token)
        index += 1
    return shlex.join(parts)


# ---- loading -------------------------------------------------------------------------------------------------------


def load_pytorch_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """
    Loads a PyTorch checkpoint with `torch.load(..., weights_only=True)` and returns its state dict.

    Accepts a plain state dict (`torch.save(model.state_dict(), path)`) or a dict wrapping one under one of
    `STATE_DICT_WRAPPER_KEYS` (`{"state_dict": ...}`, `{"model": ...}`, ..., nested at most twice).

    Raises:
        ValueError: for a missing file, a file that is not a checkpoint, a pickle holding anything but tensors and
            plain containers (refused unread: unpickling arbitrary objects can run arbitrary code), or a checkpoint
            holding no state dict.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Checkpoint file not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"Refusing to load {path}: torch.load(weights_only=True) cannot read it as plain tensors ({reason}). "
            "Checkpoints that pickle other objects (a whole nn.Module, custom classes) are not unpickled, since that "
            "can run arbitrary code; load it where you trust it and save `model.state_dict()` instead."
        ) from error
    return unwrap_state_dict(checkpoint, path)


def unwrap_state_dict(checkpoint, path: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """Finds the state dict in a loaded checkpoint: the object itself, or under a `STATE_DICT_WRAPPER_KEYS` key."""
    for _ in range(3):
        if not isinstance(checkpoint, Mapping):
            break
        wrapper = next((key for key in STATE_DICT_WRAPPER_KEYS if isinstance(checkpoint.get(key), Mapping)), None)
        if wrapper is None:
            if checkpoint and all(isinstance(key, str) for key in checkpoint):
                return dict(checkpoint)
            break
        checkpoint = checkpoint[wrapper]
    raise ValueError(
        f"{path} holds no state dict: expected a mapping of parameter names to tensors, or a dict holding one under "
        f"{' / '.join(repr(key) for key in STATE_DICT_WRAPPER_KEYS)}; got {type(checkpoint).__name__}."
    )


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- model and processor -------------------------------------------------------------------------------------------


def build_model(
    config: CRNNConfig,
    source_state_dict: Mapping[str, torch.Tensor],
    module_map: Mapping[str, str],
    source_name: str,
    key_label: KeyLabel = repr,
) -> CRNNForTextRecognition:
    """Builds the hf_crnn model for `config` and loads the renamed, fully checked source weights into it (eval mode)."""
    model = CRNNForTextRecognition(config)
    state_dict = rename_state_dict(
        source_state_dict, module_map, model.state_dict(), source_name=source_name, key_label=key_label
    )
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def build_processor(
    source: Source, alphabet: str, vocab_size: int, *, num_channels: int, image_height: int, image_width: int
) -> CRNNProcessor:
    """
    The tokenizer (blank at id 0, then `alphabet`) and the image processor reproducing the source's preprocessing:
    grayscale (or RGB), resized to `image_width` x `image_height` with the source's filter, normalised with its
    mean and std.

    Raises:
        ValueError: if `alphabet` plus the blank does not give the model's `vocab_size` classes.
    """
    if len(alphabet) + 1 != vocab_size:
        raise ValueError(
            f"The alphabet has {len(alphabet)} characters, so with the CTC blank the model would need "
            f"{len(alphabet) + 1} classes, but the checkpoint's classifier has {vocab_size}: pass the --alphabet the "
            "checkpoint was trained with (in its id order)."
        )
    # The sources fold labels to lower case exactly when their alphabet has no upper-case letters.
    tokenizer = CRNNTokenizer(characters=alphabet, do_lower_case=not any(char.isupper() for char in alphabet))
    image_processor_kwargs = {
        "image_height": image_height,
        "num_channels": num_channels,
        "resize_mode": "fixed",
        "fixed_width": image_width,
        "resample": source.resample,
        "image_mean": source.image_mean,
        "image_std": source.image_std,
        **source.image_processor_kwargs,
    }
    image_processor = CRNNImageProcessor(**image_processor_kwargs)
    return CRNNProcessor(image_processor, tokenizer)


# ---- model card ----------------------------------------------------------------------------------------------------


def model_card_kwargs(
    source: Source, checkpoint: str | os.PathLike, command: str, model_name: str, processor: CRNNProcessor
) -> dict:
    """Arguments of `hf_crnn.model_card.create_model_card` stating the checkpoint's provenance."""
    image_processor = processor.image_processor
    preprocessing = source.preprocessing.format(
        pil_mode="L" if image_processor.num_channels == 1 else "RGB",
        width=image_processor.fixed_width,
        height=image_processor.image_height,
    )
    rows = [
        ("Source", f"[{source.name}]({source.url})"),
        ("Source licence", source.license_name),
        ("Published checkpoint", f"`{source.original_file}`, {source.download}"),
        ("Converted file", f"`{os.path.basename(os.fspath(checkpoint))}` (sha256 `{file_sha256(checkpoint)}`)"),
        ("Conversion command", f"`{command}` (hf-crnn `conversion/`)"),
        ("Preprocessing", preprocessing),
    ]
    table = "\n".join(["| | |", "| --- | --- |", *(f"| {name} | {value} |" for name, value in rows)])
    description = "\n\n".join(
        [
            (
                f"CRNN converted from a **{source.name}** checkpoint to hf_crnn, with its weights unchanged. The "
                "original code and weights are the work of their authors and are distributed under their licence "
                f"({source.license_name})."
            ),
            table,
            *source.notes,
        ]
    )
    return {
        "model_name": model_name,
        "license": source.license,
        "description": description,
        "training": source.training_data,
        "tags": ["converted", source.tag],
    }


# ---- saving --------------------------------------------------------------------------------------------------------


def _probe_image(width: int = 120, height: int = 36) -> np.ndarray:
    """A fixed, non-trivial grayscale image (gradient with vertical bars) to compare the saved model with the source."""
    gradient = np.linspace(0, 255, width)[None, :].repeat(height, axis=0)
    bars = (np.arange(width)[None, :] // 7 % 2) * 96
    return np.clip(gradient * 0.6 + bars, 0, 255).astype(np.uint8)


def recognise(model: CRNNForTextRecognition, processor: CRNNProcessor, images) -> list[str]:
    """Greedy CTC transcription of `images` (paths, PIL images or arrays)."""
    inputs = processor(images=list(images), return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    return processor.batch_decode(outputs.logits, outputs.frame_lengths, method="greedy")


def _check_saved_checkpoint(
    folder: Path,
    model: CRNNForTextRecognition,
    processor: CRNNProcessor,
    test_images: Sequence[str],
    expected_texts: Sequence[str],
) -> None:
    """Reloads the saved folder and checks it computes what the converted model computes, and reads the test images."""
    reloaded_model = CRNNForTextRecognition.from_pretrained(folder).eval()
    reloaded_processor = CRNNProcessor.from_pretrained(folder)
    probe = _probe_image()
    inputs = processor(images=[probe], return_tensors="pt")
    reloaded_inputs = reloaded_processor(images=[probe], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
        reloaded_logits = reloaded_model(**reloaded_inputs).logits
    if not torch.equal(inputs["pixel_values"], reloaded_inputs["pixel_values"]) or not torch.equal(
        logits, reloaded_logits
    ):
        raise RuntimeError(f"The checkpoint saved in {folder} does not reproduce the converted model's outputs.")

    if test_images:
        texts = recognise(reloaded_model, reloaded_processor, test_images)
        for index, (image, text) in enumerate(zip(test_images, texts)):
            expected = expected_texts[index] if expected_texts else None
            status = (
                "" if expected is None else ("  (as expected)" if text == expected else f"  (expected {expected!r})")
            )
            print(f"{image}: {text!r}{status}")
        if expected_texts and list(texts) != list(expected_texts):
            raise ValueError(
                "The converted model does not read the test images as expected; nothing was written to the output "
                "folder. Check --alphabet and that the checkpoint is of this source's layout."
            )


def save_directory_atomically(output_dir: str | os.PathLike, write: Callable[[Path], None], overwrite: bool) -> Path:
    """
    Calls `write(staging)` on a fresh folder beside `output_dir`, then renames it to `output_dir`.

    Readers see no checkpoint or a complete one: a failure inside `write` removes the staging folder and leaves
    `output_dir` as it was. With `overwrite`, an existing `output_dir` is moved aside first and deleted only once the
    new one is in place (renamed back if that rename fails).

    Raises:
        ValueError: if `output_dir` is a file, or a non-empty folder and `overwrite` is not set.
    """
    output_dir = Path(output_dir).absolute()
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output_dir {output_dir} is a file, not a folder.")
    replacing = output_dir.is_dir() and any(output_dir.iterdir())
    if replacing and not overwrite:
        raise ValueError(f"--output_dir {output_dir} is not empty; pass --overwrite to replace it.")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # Same parent folder, so the final rename stays on one file system and is atomic.
    staging = output_dir.parent / f".{output_dir.name}.converting-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        write(staging)
        if not replacing:
            os.replace(staging, output_dir)  # also replaces an existing empty folder
            return output_dir
        previous = output_dir.parent / f".{output_dir.name}.replaced-{uuid.uuid4().hex[:8]}"
        os.rename(output_dir, previous)
        try:
            os.rename(staging, output_dir)
        except OSError:
            os.rename(previous, output_dir)
            raise
        shutil.rmtree(previous, ignore_errors=True)
        return output_dir
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_converted_checkpoint(
    source: Source,
    args: argparse.Namespace,
    argv: Sequence[str],
    model: CRNNForTextRecognition,
    processor: CRNNProcessor,
) -> Path:
    """
    Writes model (safetensors), config, tokenizer, image processor and model card to `args.output_dir` atomically,
    after checking that the saved folder reloads to the same outputs and reads `args.test_image` as expected; then
    pushes it to `args.push_to_hub` if given.

    Returns:
        The absolute path of the written checkpoint folder.
    """
    if args.expected_text and len(args.expected_text) != len(args.test_image):
        raise ValueError(
            f"Got {len(args.test_image)} --test_image but {len(args.expected_text)} --expected_text: give one text "
            "per image, or none."
        )
    model_name = args.push_to_hub.split("/")[-1] if args.push_to_hub else Path(args.output_dir).absolute().name
    card_kwargs = model_card_kwargs(source, args.checkpoint, recorded_command(source, argv), model_name, processor)

    def write(folder: Path) -> None:
        save_checkpoint(model, processor, folder, repo_id=args.push_to_hub, **card_kwargs)
        _check_saved_checkpoint(folder, model, processor, args.test_image, args.expected_text)

    output_dir = save_directory_atomically(args.output_dir, write, args.overwrite)
    num_parameters = sum(parameter.numel() for parameter in model.parameters())
    print(f"Saved the hf_crnn checkpoint converted from {source.name} ({num_parameters:,} parameters) to {output_dir}")
    if args.push_to_hub:
        commit = push_checkpoint_to_hub(model, processor, args.push_to_hub, **card_kwargs)
        print(f"Pushed to {commit.repo_url}")
    return output_dir


def save_conversion(source: Source, args: argparse.Namespace, argv: Sequence[str], model: CRNNForTextRecognition) -> Path:
    """
    The last step of every converter: the processor for `model` (the source's alphabet from `args.alphabet`, its
    input channels and height from the model's config, `args.image_width`), then [`save_converted_checkpoint`].
    """
    processor = build_processor(
        source,
        args.alphabet,
        model.config.vocab_size,
        num_channels=model.config.num_channels,
        image_height=model.config.image_height,
        image_width=args.image_width,
    )
    return save_converted_checkpoint(source, args, argv, model, processor)


def run_converter(main) -> None:
    """`if __name__ == "__main__":` of a converter: a checkpoint that does not fit ends with its message, no traceback."""
    try:
        main()
    except ValueError as error:
        sys.exit(f"error: {error}")


__all__ = [
    "STATE_DICT_WRAPPER_KEYS",
    "Source",
    "build_argument_parser",
    "build_model",
    "build_processor",
    "file_sha256",
    "load_pytorch_state_dict",
    "model_card_kwargs",
    "recognise",
    "recorded_command",
    "run_converter",
    "save_conversion",
    "save_converted_checkpoint",
    "save_directory_atomically",
    "unwrap_state_dict",
]
