#!/usr/bin/env python
# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Train and/or evaluate a CRNN text recognizer with `transformers.Trainer`.

With no dataset argument it trains on synthetic word images rendered on this machine (no download):

    python examples/run_text_recognition.py --output_dir runs/crnn --do_train --do_eval --max_steps 2000

Other sources (one per split; see docs/training.md):

    --train_dir DIR         a crops folder (images + labels.tsv or gt.txt, the layout `hf-crnn evaluate` reads), an
                            imagefolder (images + metadata.jsonl/metadata.csv with file_name and text), a dataset
                            saved with `save_to_disk`, or a scene-text LMDB database (tree): detected from the files;
                            several folders joined with ':' are concatenated
    --train_file FILE       parquet / csv / json(l) files (globs allowed); image paths are cast to images
    --dataset_name NAME     a dataset on the Hugging Face Hub (or a `datasets` builder name)
    --streaming             read it as an `IterableDataset` (needs --max_steps)

Distributed: `torchrun --nproc_per_node=2 examples/run_text_recognition.py ...` (DDP; gloo on CPU).
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from dataclasses import dataclass, field

import datasets
import torch
import transformers
from transformers import HfArgumentParser, set_seed

import hf_crnn  # noqa: F401  (registers CRNN with the Auto classes)
from hf_crnn import (
    LOWERCASE_ALPHANUMERIC,
    CRNNConfig,
    CRNNForTextRecognition,
    CRNNImageProcessor,
    CRNNProcessor,
    CRNNTokenizer,
)
from hf_crnn.augmentation import AUGMENTATION_PRESETS, make_augmentation
from hf_crnn.benchmark_datasets import find_gt_file, load_crops_folder
from hf_crnn.data_collator import CRNNDataCollator, add_length_column
from hf_crnn.image_processing_crnn import RESIZE_MODES
from hf_crnn.lmdb_dataset import LMDB_DATA_FILE, load_lmdb_dataset
from hf_crnn.metrics import make_compute_metrics, preprocess_logits_for_metrics
from hf_crnn.synthetic import (
    RENDER_STYLES,
    default_word_list,
    make_mixed_iterable_dataset,
    make_synthetic_dataset,
    make_synthetic_iterable_dataset,
    select_fonts,
    training_fonts,
)
from hf_crnn.training import (
    ADADELTA,
    INVALID_LABEL_POLICIES,
    MODEL_PRESETS,
    CRNNTrainer,
    CRNNTrainingArguments,
    LabelChecker,
    TextRecognitionTransform,
    adadelta_kwargs,
    build_config,
    filter_invalid_labels,
    frames_per_width,
    human_duration,
    last_complete_checkpoint,
    synthetic_charset,
)

logger = logging.getLogger(__name__)

FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".arrow": "arrow"}


@dataclass
class ModelArguments:
    """Which model to train or evaluate, and the processor that goes with it."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A CRNN checkpoint (folder or Hub id) to fine-tune or evaluate. Default: a new model."},
    )
    config_name: str | None = field(
        default=None,
        metadata={
            "help": f"Architecture of a new model: a preset ({', '.join(MODEL_PRESETS)}; default crnn-paper, the "
            "paper's network) or a path to a CRNN config.json."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": 'Config fields to override, as JSON (\'{"hidden_size": 128, "conv_dim": [16, 32, 64, 64, 128, '
            "128, 128]}') or key=value pairs (hidden_size=128,classifier_dropout=0.1)."
        },
    )
    characters: str | None = field(
        default=None,
        metadata={"help": f"Vocabulary of a new model, in id order after the blank. Default: {LOWERCASE_ALPHANUMERIC}."},
    )
    do_lower_case: bool | None = field(
        default=None,
        metadata={"help": "Lower-case labels before encoding. Default: yes when the vocabulary has no upper case."},
    )
    unknown_character_policy: str = field(
        default="error",
        metadata={
            "help": "Label characters outside the vocabulary: 'error' (such labels are filtered or refused, see "
            "--invalid_labels), 'drop' (the characters are removed) or 'unk' (mapped to <unk>)."
        },
    )
    resize_mode: str = field(
        default="keep_aspect_ratio",
        metadata={"help": f"Image resizing of a new processor: one of {RESIZE_MODES} (fixed: the paper's 100x32)."},
    )
    fixed_width: int = field(default=100, metadata={"help": "Width in resize_mode=fixed."})
    max_width: int = field(
        default=400,
        metadata={"help": "Widest resized image in keep_aspect_ratio mode (wider ones are squeezed, never cut)."},
    )
    image_height: int | None = field(
        default=None,
        metadata={
            "help": "With --model_name_or_path: fine-tune at this input height instead of the checkpoint's (e.g. 32 "
            "for a 64-pixel checkpoint: about 4x less compute per word). The convolutions and LSTMs do not depend on "
            "the height, which the network pools away, so every weight carries over."
        },
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded models and datasets are cached."})
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of a Hub model."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: the saved one or HF_TOKEN)."})


@dataclass
class DataArguments:
    """What to train and evaluate on. With no dataset argument: synthetic words rendered on the fly."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "A dataset on the Hub, or a `datasets` builder name (imagefolder, parquet)."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_dir: str | None = field(
        default=None,
        metadata={
            "help": "Training data folder: a crops folder (images + labels.tsv or gt.txt), an imagefolder (images + "
            "metadata.jsonl or metadata.csv with file_name and text), a dataset saved with save_to_disk, or an LMDB "
            "database (or a tree of them). Several folders joined with ':' are concatenated."
        },
    )
    validation_dir: str | None = field(default=None, metadata={"help": "Validation data folder (as --train_dir)."})
    train_file: str | None = field(
        default=None, metadata={"help": "Training data file(s): parquet, csv or json(l); globs allowed."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation data file(s)."})
    train_split_name: str = field(default="train", metadata={"help": "Split used for training."})
    validation_split_name: str = field(
        default="validation", metadata={"help": "Split used for evaluation ('test' is tried when it is missing)."}
    )
    train_val_split: float | None = field(
        default=None,
        metadata={"help": "Fraction of the training data held out for evaluation when no validation data is given."},
    )
    augmentation: str = field(
        default="none",
        metadata={
            "help": f"Training-image augmentation, one of {AUGMENTATION_PRESETS}: 'real' applies camera and detector "
            "degradations (hf_crnn.augmentation, needs albumentations: pip install 'hf-crnn[train]')."
        },
    )
    image_column_name: str = field(default="image", metadata={"help": "Column holding the images (or their paths)."})
    text_column_name: str = field(default="text", metadata={"help": "Column holding the label texts."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set (debugging)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the evaluation set."})
    streaming: bool = field(
        default=False, metadata={"help": "Read the data as an IterableDataset (no full download; needs --max_steps)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for rendering synthetic data and reading image sizes."}
    )
    invalid_labels: str = field(
        default="filter",
        metadata={
            "help": "Labels the vocabulary cannot encode, or that need more CTC frames than their image gives: "
            f"one of {INVALID_LABEL_POLICIES} ('filter' skips them and logs how many, 'error' stops)."
        },
    )
    synthetic_train_samples: int = field(
        default=20_000, metadata={"help": "Synthetic training images (rendered once, cached as Arrow files)."}
    )
    synthetic_eval_samples: int = field(
        default=1_000, metadata={"help": "Synthetic evaluation images, in fonts held out of training."}
    )
    synthetic_seed: int = field(default=0, metadata={"help": "Seed of the synthetic training set (eval: seed + 1)."})
    synthetic_lowercase: bool = field(default=False, metadata={"help": "Render lower-case texts only."})
    synthetic_min_length: int = field(default=1, metadata={"help": "Shortest synthetic text."})
    synthetic_max_length: int = field(default=16, metadata={"help": "Longest synthetic text."})
    synthetic_word_probability: float = field(
        default=0.7, metadata={"help": "Share of dictionary words (the rest: random strings over the vocabulary)."}
    )
    synthetic_word_list: str | None = field(
        default=None, metadata={"help": "Word list file (default: /usr/share/dict/words, else the shipped list)."}
    )
    synthetic_extra_font_dirs: str | None = field(
        default=None,
        metadata={
            "help": "Folders of additional training fonts, separated by os.pathsep (':'). The held-out evaluation "
            "fonts stay the split of the system fonts; an extra font of a held-out family is an error."
        },
    )
    synthetic_cache_dir: str | None = field(
        default=None, metadata={"help": "`datasets` cache folder for the rendered synthetic images."}
    )
    synthetic_style: str = field(
        default="clean",
        metadata={
            "help": f"Synthetic rendering, one of {RENDER_STYLES}: 'clean' (flat colours; the documented evaluation "
            "sets) or 'scene' (natural-image textures, outlines, shadows, curves, camera degradations)."
        },
    )
    synthetic_mix_samples: int = field(
        default=0,
        metadata={
            "help": "With --train_dir/--train_file/--dataset_name: also train on this many synthetic images "
            "(rendered once and cached, in the training fonts, --synthetic_style), mixed with the real data."
        },
    )
    synthetic_mix_probability: float = field(
        default=0.0,
        metadata={
            "help": "With local or Hub training data: interleave it, reshuffled and repeated without end, with an "
            "endless synthetic stream rendered on the fly by the DataLoader workers (training fonts, "
            "--synthetic_style); each training image is synthetic with this probability. For long runs on "
            "many cores, where --synthetic_mix_samples would be rendered up front. Needs --max_steps."
        },
    )

    def __post_init__(self):
        if self.train_dir and self.train_file:
            raise ValueError("Give either --train_dir or --train_file, not both.")
        if self.dataset_name and (self.train_dir or self.train_file):
            raise ValueError("Give either --dataset_name or local data (--train_dir / --train_file), not both.")
        if self.invalid_labels not in INVALID_LABEL_POLICIES:
            raise ValueError(f"--invalid_labels must be one of {INVALID_LABEL_POLICIES}, got {self.invalid_labels!r}.")
        if self.synthetic_style not in RENDER_STYLES:
            raise ValueError(f"--synthetic_style must be one of {RENDER_STYLES}, got {self.synthetic_style!r}.")
        if self.synthetic_mix_samples < 0 or (self.synthetic_mix_samples and self.streaming):
            raise ValueError("--synthetic_mix_samples must be >= 0, and cannot be combined with --streaming.")
        if not 0.0 <= self.synthetic_mix_probability < 1.0:
            raise ValueError(f"--synthetic_mix_probability must be in [0, 1), got {self.synthetic_mix_probability}.")
        if self.synthetic_mix_probability and (self.synthetic_mix_samples or self.streaming):
            raise ValueError(
                "--synthetic_mix_probability cannot be combined with --synthetic_mix_samples or --streaming (it "
                "streams the real data itself)."
            )
        if self.augmentation not in AUGMENTATION_PRESETS:
            raise ValueError(f"--augmentation must be one of {AUGMENTATION_PRESETS}, got {self.augmentation!r}.")
        if self.train_val_split is not None and not 0.0 < self.train_val_split < 1.0:
            raise ValueError(f"--train_val_split must be in (0, 1), got {self.train_val_split}.")

    @property
    def is_synthetic(self) -> bool:
        return not (self.dataset_name or self.train_dir or self.train_file or self.validation_dir or self.validation_file)


# ---------------------------------------------------------------------------------------------------------------------
# Data loading
# ---------------------------------------------------------------------------------------------------------------------


def _pick_split(splits, names: list[str], source: str):
    """The first of `names` present in `splits`; a source with a single split gives that one, whatever its name."""
    for name in names:
        if name in splits:
            return splits[name]
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise ValueError(f"{source} has the splits {sorted(splits)}; none of them is named {' or '.join(names)}.")


def _holds_lmdb(folder: str) -> bool:
    return any(LMDB_DATA_FILE in files for _, _, files in os.walk(folder))


def _as_splits(dataset, streaming: bool) -> dict:
    """A `Dataset` or `DatasetDict` as `{split: dataset}`, made iterable when streaming."""
    splits = dict(dataset) if isinstance(dataset, (datasets.DatasetDict, dict)) else {"train": dataset}
    if streaming:
        splits = {name: split.to_iterable_dataset() for name, split in splits.items()}
    return splits


def load_local_source(folder: str | None, files: str | None, data_args: DataArguments, cache_dir: str | None) -> dict:
    """
    `{split: dataset}` from a local folder (a crops folder with its ground-truth file, saved with `save_to_disk`, an
    LMDB database tree, or an imagefolder, whose split subfolders become splits), from several such folders joined
    with `os.pathsep` (their splits concatenated), or from data files (parquet, csv, json).
    """
    if folder and os.pathsep in folder:
        return concatenate_sources(
            [load_local_source(part, None, data_args, cache_dir) for part in folder.split(os.pathsep) if part], folder
        )
    streaming = data_args.streaming
    if files:
        extension = os.path.splitext(files)[1].lower()
        if extension not in FILE_BUILDERS:
            raise ValueError(f"Data file {files!r}: unsupported extension; use one of {sorted(FILE_BUILDERS)}.")
        return dict(datasets.load_dataset(FILE_BUILDERS[extension], data_files=files, streaming=streaming, cache_dir=cache_dir))
    if not os.path.isdir(folder):
        raise ValueError(f"Data folder {folder!r} does not exist.")
    if any(os.path.isfile(os.path.join(folder, name)) for name in ("dataset_dict.json", "state.json")):
        return _as_splits(datasets.load_from_disk(folder), streaming)
    if find_gt_file(folder) is not None:
        crops = load_crops_folder(folder)
        return _as_splits(crops.select_columns(["image", "text"]), streaming)
    if _holds_lmdb(folder):
        lmdb = load_lmdb_dataset(folder, num_proc=data_args.preprocessing_num_workers, cache_dir=cache_dir)
        return _as_splits(lmdb, streaming)
    return dict(datasets.load_dataset("imagefolder", data_dir=folder, streaming=streaming, cache_dir=cache_dir))


def concatenate_sources(sources: list[dict], name: str) -> dict:
    """The splits of several sources, each concatenated over the sources that have it, on the columns they share."""
    splits = sorted({split for source in sources for split in source})
    if not splits:
        raise ValueError(f"No data in {name!r}.")
    combined = {}
    for split in splits:
        parts = [source[split] for source in sources if split in source]
        columns = [set(part.column_names or ()) for part in parts]  # a stream may not declare its columns
        shared = [column for column in parts[0].column_names or () if all(column in names for names in columns)]
        if shared:
            parts = [part.select_columns(shared) for part in parts]
        combined[split] = datasets.concatenate_datasets(parts)
    return combined


def load_raw_datasets(
    data_args: DataArguments, model_args: ModelArguments, tokenizer, do_train: bool, do_eval: bool, num_workers: int = 0
):
    """
    Returns `{"train": ..., "validation": ...}` (as asked for) with raw image and text columns. `num_workers` (the
    DataLoader's) sets the shards of a stream that renders synthetic images on the fly.
    """
    if data_args.is_synthetic:
        return load_synthetic_datasets(data_args, tokenizer, do_train, do_eval)
    cache_dir = model_args.cache_dir
    if data_args.dataset_name:
        source_name = data_args.dataset_name
        train_source = dict(
            datasets.load_dataset(
                data_args.dataset_name,
                data_args.dataset_config_name,
                streaming=data_args.streaming,
                cache_dir=cache_dir,
                token=model_args.token,
            )
        )
    elif data_args.train_dir or data_args.train_file:
        source_name = data_args.train_dir or data_args.train_file
        train_source = load_local_source(data_args.train_dir, data_args.train_file, data_args, cache_dir)
    else:
        source_name, train_source = None, {}

    splits = {}
    if do_train:
        if not train_source:
            raise ValueError("--do_train needs training data: --train_dir, --train_file or --dataset_name.")
        splits["train"] = _pick_split(train_source, [data_args.train_split_name], source_name)
    validation_names = [data_args.validation_split_name, "test"]
    has_validation = bool(
        data_args.validation_dir or data_args.validation_file or any(name in train_source for name in validation_names)
    )
    if data_args.train_val_split and train_source and not data_args.streaming and not has_validation:
        # The same seeded split with or without --do_train / --do_eval: a checkpoint is evaluated on what it never saw.
        training = _pick_split(train_source, [data_args.train_split_name], source_name)
        held_out = training.train_test_split(test_size=data_args.train_val_split, seed=0)
        splits["validation"] = held_out["test"]
        if do_train:
            splits["train"] = held_out["train"]
    if do_eval and "validation" not in splits:
        if data_args.validation_dir or data_args.validation_file:
            source_name = data_args.validation_dir or data_args.validation_file
            source = load_local_source(data_args.validation_dir, data_args.validation_file, data_args, cache_dir)
            splits["validation"] = _pick_split(source, validation_names, source_name)
        elif has_validation:
            splits["validation"] = next(train_source[name] for name in validation_names if name in train_source)
        else:
            raise ValueError(
                "--do_eval needs validation data: --validation_dir, --validation_file, a dataset with a "
                f"{data_args.validation_split_name!r} or 'test' split, or --train_val_split (not with --streaming)."
            )
    if not do_eval:
        splits.pop("validation", None)
    if do_train and data_args.synthetic_mix_samples:
        splits["train"] = mix_in_synthetic(splits["train"], data_args, tokenizer)
    if do_train and data_args.synthetic_mix_probability:
        splits["train"] = stream_with_synthetic(splits["train"], data_args, tokenizer, num_shards=max(1, num_workers))
    return splits


def synthetic_options(data_args: DataArguments, tokenizer) -> dict:
    """The text and rendering arguments of the synthetic generator, from the command line."""
    return dict(
        charset=synthetic_charset(tokenizer),
        lowercase=data_args.synthetic_lowercase,
        min_len=data_args.synthetic_min_length,
        max_len=data_args.synthetic_max_length,
        word_list=data_args.synthetic_word_list,
        word_probability=data_args.synthetic_word_probability,
        style=data_args.synthetic_style,
    )


def mix_in_synthetic(real, data_args: DataArguments, tokenizer):
    """The real training split plus `--synthetic_mix_samples` synthetic images in the training fonts (image, text)."""
    synthetic = make_synthetic_dataset(
        data_args.synthetic_mix_samples,
        seed=data_args.synthetic_seed,
        fonts=synthetic_training_fonts(data_args, tokenizer),
        num_proc=data_args.preprocessing_num_workers,
        cache_dir=data_args.synthetic_cache_dir,
        **synthetic_options(data_args, tokenizer),
    )
    image_column, text_column = data_args.image_column_name, data_args.text_column_name
    real = _cast_image_column(real, image_column).select_columns([image_column, text_column])
    synthetic = synthetic.select_columns(["image", "text"]).rename_columns({"image": image_column, "text": text_column})
    return datasets.concatenate_datasets([real, synthetic.cast(real.features)])


def stream_with_synthetic(real, data_args: DataArguments, tokenizer, num_shards: int):
    """The real training split, repeated and reshuffled, interleaved with synthetic images rendered on the fly."""
    image_column = data_args.image_column_name
    return make_mixed_iterable_dataset(
        _cast_image_column(real, image_column),
        data_args.synthetic_mix_probability,
        num_shards=num_shards,
        mix_seed=data_args.synthetic_seed,
        image_column=image_column,
        text_column=data_args.text_column_name,
        seed=data_args.synthetic_seed,
        fonts=synthetic_training_fonts(data_args, tokenizer),
        **synthetic_options(data_args, tokenizer),
    )


def load_synthetic_datasets(data_args: DataArguments, tokenizer, do_train: bool, do_eval: bool) -> dict:
    """Synthetic words: training in the training fonts, evaluation in the fonts held out of training."""
    options = synthetic_options(data_args, tokenizer)
    splits = {}
    if do_train:
        train_fonts = synthetic_training_fonts(data_args, tokenizer)
        if data_args.streaming:
            splits["train"] = make_synthetic_iterable_dataset(
                seed=data_args.synthetic_seed, fonts=train_fonts, **options
            )
        else:
            splits["train"] = make_synthetic_dataset(
                data_args.synthetic_train_samples,
                seed=data_args.synthetic_seed,
                fonts=train_fonts,
                num_proc=data_args.preprocessing_num_workers,
                cache_dir=data_args.synthetic_cache_dir,
                **options,
            )
    if do_eval:
        # A different seed as well as different fonts, so evaluation images are never training images.
        splits["validation"] = make_synthetic_dataset(
            data_args.synthetic_eval_samples,
            seed=data_args.synthetic_seed + 1,
            fonts="eval",
            num_proc=data_args.preprocessing_num_workers,
            cache_dir=data_args.synthetic_cache_dir,
            **options,
        )
    return splits


def synthetic_training_fonts(data_args: DataArguments, tokenizer) -> list:
    """The training side of the font split, plus the fonts under --synthetic_extra_font_dirs."""
    extra_dirs = data_args.synthetic_extra_font_dirs.split(os.pathsep) if data_args.synthetic_extra_font_dirs else None
    return training_fonts(extra_dirs, charset=synthetic_charset(tokenizer))


def describe_data(data_args: DataArguments, tokenizer) -> tuple[str, str]:
    """(training data, evaluation data) in words, for the logs and the model card."""
    if not data_args.is_synthetic:
        train = data_args.dataset_name or data_args.train_dir or data_args.train_file
        validation = data_args.validation_dir or data_args.validation_file or f"{train} ({data_args.validation_split_name})"
        if data_args.train_val_split and not (data_args.validation_dir or data_args.validation_file):
            validation = f"a seeded {data_args.train_val_split:.0%} held out of {train}"
            train = f"{train} (the other {1 - data_args.train_val_split:.0%})"
        if data_args.synthetic_mix_probability:
            train = (
                f"{train}, repeated and interleaved with an endless stream of synthetic word images "
                f"(hf_crnn.synthetic, {data_args.synthetic_style} style, seed {data_args.synthetic_seed}, training "
                f"fonts; {data_args.synthetic_mix_probability:.0%} of the training images)"
            )
        if data_args.synthetic_mix_samples:
            train = (
                f"{train}, mixed with {data_args.synthetic_mix_samples:,} synthetic word images (hf_crnn.synthetic, "
                f"{data_args.synthetic_style} style, seed {data_args.synthetic_seed}, training fonts)"
            )
        if data_args.augmentation != "none":
            train += f"; training images augmented on the fly (--augmentation {data_args.augmentation})"
        return str(train), str(validation)

    def families(fonts) -> str:
        return ", ".join(sorted({font.family for font in fonts}))

    texts = (
        f"{data_args.synthetic_word_probability:.0%} words from "
        f"{data_args.synthetic_word_list or default_word_list()}, the rest random strings; "
        f"{data_args.synthetic_min_length}-{data_args.synthetic_max_length} characters"
        + (", lower case" if data_args.synthetic_lowercase else "")
    )
    amount = "an endless stream of" if data_args.streaming else f"{data_args.synthetic_train_samples:,}"
    train = (
        f"{amount} synthetic word images (hf_crnn.synthetic, seed {data_args.synthetic_seed}; {texts}) in the "
        f"training fonts: {families(synthetic_training_fonts(data_args, tokenizer))}"
    )
    validation = (
        f"{data_args.synthetic_eval_samples:,} synthetic word images (seed {data_args.synthetic_seed + 1}) in fonts "
        f"held out of training: {families(select_fonts('eval', charset=synthetic_charset(tokenizer)))}"
    )
    return train, validation


# ---------------------------------------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------------------------------------


def _cast_image_column(dataset, image_column: str):
    """Image paths (csv/json/parquet of file names) become decoded images."""
    features = getattr(dataset, "features", None)
    if features is not None and isinstance(features.get(image_column), datasets.Value):
        dataset = dataset.cast_column(image_column, datasets.Image())
    return dataset


def _check_columns(dataset, data_args: DataArguments, split: str) -> None:
    columns = dataset.column_names
    if columns is None:  # a stream without declared features: checked when the first batch is drawn
        return
    for argument, column in (("image", data_args.image_column_name), ("text", data_args.text_column_name)):
        if column not in columns:
            raise ValueError(
                f"The {split} data has no {column!r} column (--{argument}_column_name); its columns are {columns}."
            )


def _stream_columns(dataset) -> list[str]:
    return list(dataset.column_names or next(iter(dataset)).keys())


def prepare_split(dataset, split: str, data_args: DataArguments, processor, checker: LabelChecker, max_samples):
    """Truncates, checks labels and attaches the lazy preprocessing to one split."""
    image_column, text_column = data_args.image_column_name, data_args.text_column_name
    _check_columns(dataset, data_args, split)
    dataset = _cast_image_column(dataset, image_column)
    augmentation = make_augmentation(data_args.augmentation) if split == "train" else None
    if isinstance(dataset, datasets.IterableDataset):
        if max_samples is not None:
            dataset = dataset.take(max_samples)
        transform = TextRecognitionTransform(
            processor,
            image_column,
            text_column,
            label_checker=checker,
            invalid_labels=data_args.invalid_labels,
            augmentation=augmentation,
        )
        return dataset.map(transform, batched=True, batch_size=64, remove_columns=_stream_columns(dataset))

    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    length_column = "length"
    if length_column in dataset.column_names:
        # Recomputed: a stored column may come from another resize mode or image height.
        dataset = dataset.remove_columns(length_column)
    dataset = add_length_column(
        dataset,
        image_processor=processor.image_processor,
        image_column=image_column,
        length_column_name=length_column,
        num_proc=data_args.preprocessing_num_workers,
    )
    dataset = filter_invalid_labels(dataset, checker, text_column, length_column, data_args.invalid_labels, split)
    if len(dataset) == 0:
        raise ValueError(f"No {split} example is left after removing the labels that cannot be trained on.")
    return dataset.with_transform(
        TextRecognitionTransform(
            processor,
            image_column,
            text_column,
            label_checker=checker if augmentation else None,  # only to keep augmentations from breaking labels
            augmentation=augmentation,
        )
    )


# ---------------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------------


def build_processor(model_args: ModelArguments) -> tuple[CRNNProcessor, CRNNConfig]:
    """A new tokenizer, the config of a new model (its vocabulary size taken from the tokenizer) and the processor."""
    tokenizer = CRNNTokenizer(
        characters=model_args.characters or LOWERCASE_ALPHANUMERIC,
        do_lower_case=model_args.do_lower_case,
        unknown_character_policy=model_args.unknown_character_policy,
    )
    config = build_config(
        model_args.config_name,
        model_args.config_overrides,
        vocab_size=tokenizer.vocab_size,
        blank_token_id=tokenizer.blank_token_id,
    )
    image_processor = CRNNImageProcessor(
        image_height=config.image_height,
        num_channels=config.num_channels,
        resize_mode=model_args.resize_mode,
        fixed_width=model_args.fixed_width,
        max_width=model_args.max_width,
    )
    return CRNNProcessor(image_processor, tokenizer), config


def change_input_height(config: CRNNConfig, image_processor: CRNNImageProcessor, height: int) -> CRNNConfig:
    """
    A checkpoint's config at another input height (validated anew), and its image processor changed to match: its
    edge padding, a multiple of the old height (EasyOCR's), scales with it.
    """
    if height == config.image_height:
        return config
    new_config = CRNNConfig(**{**config.to_dict(), "image_height": height})
    if image_processor.edge_padding_multiple is not None:
        image_processor.edge_padding_multiple = max(
            1, round(image_processor.edge_padding_multiple * height / image_processor.image_height)
        )
    image_processor.image_height = height
    return new_config


def trainer_batch_size(args: CRNNTrainingArguments) -> int:
    """Images per optimiser step, over all processes."""
    return args.per_device_train_batch_size * max(args.world_size, 1) * args.gradient_accumulation_steps


def describe_hardware(args: CRNNTrainingArguments) -> str:
    """What trained: e.g. "2 processes x 1 CPU thread" under torchrun, "4 CPU threads", or the GPU's name."""
    if torch.cuda.is_available() and not args.use_cpu:
        device = torch.cuda.get_device_name()
    else:
        threads = torch.get_num_threads()
        device = f"{threads} CPU thread{'s' if threads != 1 else ''}"
    return f"{args.world_size} processes x {device}" if args.world_size > 1 else device


def optimizer_description(args: CRNNTrainingArguments) -> str:
    if args.optim == ADADELTA:
        kwargs = adadelta_kwargs(args)
        optimizer = f"Adadelta (rho {kwargs['rho']}, eps {kwargs['eps']}), lr {args.learning_rate}"
    else:
        name = getattr(args.optim, "value", args.optim)  # an `OptimizerNames` enum after TrainingArguments' checks
        optimizer = f"{name}, peak lr {args.learning_rate}, weight decay {args.weight_decay}"
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    warmup = args.warmup_steps
    warmup = f"{int(warmup)} steps" if warmup >= 1 else f"{warmup:.0%} of the steps"
    return f"{optimizer}; {schedule} schedule, warmup {warmup}; gradient clipping {args.max_grad_norm}"


def main(args: list[str] | None = None):
    parser = HfArgumentParser((ModelArguments, DataArguments, CRNNTrainingArguments))
    argv = sys.argv[1:] if args is None else list(args)
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    command = "python examples/run_text_recognition.py " + shlex.join(argv)
    if training_args.world_size > 1:
        command = f"torchrun --nproc_per_node={training_args.world_size} examples/run_text_recognition.py " + shlex.join(argv)

    # Logging, as in the transformers examples: INFO on the main process, warnings elsewhere.
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    for name in (__name__, "hf_crnn"):
        logging.getLogger(name).setLevel(log_level)
    # `datasets` logs every cache hit at INFO: keep its warnings only.
    datasets.utils.logging.set_verbosity(max(log_level, logging.WARNING))
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning(
        f"Process rank: {training_args.local_process_index}, device: {training_args.device}, "
        f"n_gpu: {training_args.n_gpu}, distributed training: {training_args.parallel_mode.value == 'distributed'}, "
        f"bf16: {training_args.bf16}, CPU threads: {torch.get_num_threads()}"
    )
    logger.info(f"Training/evaluation parameters {training_args}")

    if not (training_args.do_train or training_args.do_eval):
        raise ValueError("Nothing to do: pass --do_train and/or --do_eval.")
    endless = data_args.streaming or data_args.synthetic_mix_probability
    if endless and training_args.do_train and training_args.max_steps <= 0:
        raise ValueError(
            "--streaming and --synthetic_mix_probability train on an IterableDataset, whose length is unknown: set "
            "--max_steps."
        )

    # Resume from the last checkpoint in output_dir unless told otherwise.
    last_checkpoint = None
    if training_args.do_train and os.path.isdir(training_args.output_dir) and not training_args.overwrite_output_dir:
        last_checkpoint = last_complete_checkpoint(training_args.output_dir)
        if last_checkpoint is not None and training_args.resume_from_checkpoint is None:
            logger.info(
                f"Checkpoint detected, resuming training at {last_checkpoint}. To train from scratch instead, use "
                "--overwrite_output_dir or another --output_dir."
            )
    set_seed(training_args.seed)

    # Model and processor: a checkpoint's, or new ones.
    if model_args.model_name_or_path:
        hub_kwargs = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token)
        processor = CRNNProcessor.from_pretrained(model_args.model_name_or_path, **hub_kwargs)
        config = CRNNConfig.from_pretrained(model_args.model_name_or_path, **hub_kwargs)
        if model_args.image_height is not None:
            config = change_input_height(config, processor.image_processor, model_args.image_height)
        model = CRNNForTextRecognition.from_pretrained(model_args.model_name_or_path, config=config, **hub_kwargs)
        if model_args.config_overrides:
            raise ValueError("--config_overrides applies to new models only, not to --model_name_or_path.")
    else:
        if model_args.image_height is not None:
            raise ValueError("--image_height changes a checkpoint's input height; a new model takes --config_overrides.")
        processor, config = build_processor(model_args)
        model = CRNNForTextRecognition(config)
    tokenizer = processor.tokenizer
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"The model has {model.config.vocab_size} output classes but the tokenizer {tokenizer.vocab_size} ids."
        )
    num_parameters = sum(parameter.numel() for parameter in model.parameters())
    logger.info(f"Model: {num_parameters:,} parameters; vocabulary: {''.join(tokenizer.characters)!r}")

    # Data: raw splits -> label checks -> lazy preprocessing.
    with training_args.main_process_first(desc="loading and checking the data"):
        raw = load_raw_datasets(
            data_args,
            model_args,
            tokenizer,
            training_args.do_train,
            training_args.do_eval,
            num_workers=training_args.dataloader_num_workers,
        )
        image_processor = processor.image_processor
        widest = max(image_processor.max_width, image_processor.fixed_width)
        checker = LabelChecker(tokenizer, frames_per_width(model, widest))
        prepared = {
            split: prepare_split(
                dataset,
                split,
                data_args,
                processor,
                checker,
                data_args.max_train_samples if split == "train" else data_args.max_eval_samples,
            )
            for split, dataset in raw.items()
        }
    train_dataset, eval_dataset = prepared.get("train"), prepared.get("validation")
    train_data, eval_data = describe_data(data_args, tokenizer)
    if train_dataset is not None:
        logger.info(f"Training data: {train_data}")
    if eval_dataset is not None:
        logger.info(f"Evaluation data: {eval_data}")

    config_summary = model_args.model_name_or_path or (model_args.config_name or "crnn-paper")
    if model_args.config_overrides:
        config_summary += f" with {model_args.config_overrides}"
    if model_args.image_height is not None:
        config_summary += f" at --image_height {model_args.image_height}"
    trainer = CRNNTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=CRNNDataCollator(pad_width_multiple=image_processor.pad_width_multiple),
        processing_class=processor,
        compute_metrics=make_compute_metrics(processor) if training_args.do_eval else None,
        # Greedy frame ids instead of full logits: evaluation gathers (N, T) ints, not (N, T, V) floats.
        preprocess_logits_for_metrics=preprocess_logits_for_metrics if training_args.do_eval else None,
        model_card_kwargs={
            "description": f"A CRNN trained with `examples/run_text_recognition.py` of hf-crnn on {train_data}.",
            "training": {
                "Command": f"`{command}`",
                "Model": f"{config_summary} ({num_parameters:,} parameters)",
                "Training data": train_data,
                "Optimiser": optimizer_description(training_args),
                "Batch size": trainer_batch_size(training_args),
                "Precision": "bf16 autocast" if training_args.bf16 else "fp32",
            },
            "datasets": [data_args.dataset_name] if data_args.dataset_name else None,
        },
    )

    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint or last_checkpoint
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()  # the model and the processor: a checkpoint the pipeline loads as it is
        metrics = train_result.metrics
        if not isinstance(train_dataset, datasets.IterableDataset):
            metrics["train_samples"] = len(train_dataset)
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        if isinstance(train_dataset, datasets.IterableDataset):  # an endless stream has no epochs
            amount_trained = f"{trainer.state.global_step * trainer_batch_size(training_args):,} images"
        else:
            amount_trained = f"{trainer.state.epoch:.2f} epochs"
        trainer.model_card_kwargs["training"].update(
            {
                "Steps": f"{trainer.state.global_step:,} ({amount_trained})",
                "Training time": f"{human_duration(metrics['train_runtime'])} on {describe_hardware(training_args)} "
                f"({metrics['train_samples_per_second']:.1f} images/s)",
            }
        )

    if training_args.do_eval:
        metrics = trainer.evaluate()
        if not isinstance(eval_dataset, datasets.IterableDataset):
            metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        trainer.model_card_kwargs["eval_results"] = [
            {
                "dataset_name": eval_data if data_args.is_synthetic else str(eval_data),
                "dataset_type": "synthetic" if data_args.is_synthetic else str(eval_data).lower(),
                "metric_type": metric_type,
                "metric_name": metric_name,
                "metric_value": round(float(metrics[f"eval_{key}"]), 4),
            }
            for key, metric_type, metric_name in (
                ("word_accuracy", "accuracy", "word accuracy"),
                ("cer", "cer", "character error rate"),
            )
            if f"eval_{key}" in metrics
        ]

    if training_args.do_train:
        if training_args.push_to_hub:
            trainer.push_to_hub()  # saves model + processor and writes the CRNN model card first
        else:
            trainer.create_model_card()
    return trainer


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # Ctrl-C: one line saying where training picks up again, instead of a traceback through Trainer.
        import json

        cli_args = sys.argv[1:]
        output_dir = None
        if len(cli_args) == 1 and cli_args[0].endswith(".json"):
            with open(cli_args[0], encoding="utf-8") as handle:
                output_dir = json.load(handle).get("output_dir")
        for index, arg in enumerate(cli_args):
            name, equals, value = arg.partition("=")
            if name in ("--output_dir", "--output-dir"):
                output_dir = value if equals else (cli_args[index + 1] if index + 1 < len(cli_args) else None)
        checkpoint = last_complete_checkpoint(output_dir) if output_dir and os.path.isdir(output_dir) else None
        if checkpoint is not None:
            message = f"run the same command again to resume from {checkpoint}"
        else:
            message = f"no checkpoint was saved in {output_dir} yet: running the same command again starts afresh"
        print(f"Interrupted: {message}.", file=sys.stderr)
        sys.exit(130)  # the shell's code for a SIGINT
