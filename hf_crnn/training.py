# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Training CRNN with `transformers.Trainer`: the pieces `examples/run_text_recognition.py` is built from.

- [`MODEL_PRESETS`] and [`build_config`]: the paper's network (`"crnn-paper"`) and a small, CPU-friendly variant
  (`"crnn-small"`), with JSON overrides.
- [`CRNNTrainingArguments`]: `TrainingArguments` with CRNN defaults (raw columns kept for the lazy transform,
  `label_names=["labels"]`, grouping by width, no unused-parameter search under DDP) and `optim="adadelta"`, the
  paper's optimiser, next to every optimiser `Trainer` knows.
- [`CRNNTrainer`]: `Trainer` that builds Adadelta, reads the width column for length grouping without running the
  image transform, and writes a CRNN model card (`hf_crnn.model_card`) instead of the generic one.
- [`TextRecognitionTransform`]: the lazy `with_transform` preprocessing (image -> `pixel_values`, text -> `labels`).
- [`filter_invalid_labels`] / [`LabelChecker`]: drop (or refuse) labels the vocabulary cannot encode and labels
  that need more CTC frames than their image gives, before training starts.

This module is part of the hf_crnn package only; it is not shipped with checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import SchedulerType, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import sort_checkpoints

from .configuration_crnn import CRNNConfig
from .image_processing_crnn import load_image

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------------------
# Model presets
# ---------------------------------------------------------------------------------------------------------------------

MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # Shi, Bai & Yao (2015) as released in crnn.pytorch: 8.3M parameters, the `CRNNConfig` defaults.
    "crnn-paper": {},
    # The paper's layout (same poolings, so the same 4 pixels per frame) with a quarter of the channels, batch norm
    # after every convolution (it removes the long all-blank plateau CTC training starts with) and 128 LSTM units:
    # about 16x fewer multiply-adds than the paper's network, which is what makes training on a CPU practical.
    "crnn-small": {
        "conv_dim": [16, 32, 64, 64, 128, 128, 128],
        "conv_bias": [False] * 7,
        "conv_batch_norm": [True] * 7,
        "hidden_size": 128,
        "lstm_projection_dim": 128,
    },
}
DEFAULT_PRESET = "crnn-paper"


def parse_config_overrides(overrides: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """
    Parses `--config_overrides`: a JSON object (`'{"hidden_size": 128, "conv_dim": [16, 32, 64, 64, 128, 128, 128]}'`)
    or the comma-separated `key=value` form of the transformers examples (`"hidden_size=128,classifier_dropout=0.1"`,
    values read as JSON when they parse, else as strings; lists need the JSON form).
    """
    if overrides is None or overrides == "":
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    text = overrides.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"`config_overrides` is not valid JSON ({error}): {overrides!r}") from error
        return parsed
    parsed = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ValueError(
                f"`config_overrides` must be a JSON object or `key=value` pairs separated by commas; got {item!r} in "
                f"{overrides!r}."
            )
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value.strip()
    return parsed


def build_config(
    config_name: str | None = None, overrides: str | Mapping[str, Any] | None = None, **fixed: Any
) -> CRNNConfig:
    """
    Builds a fresh [`CRNNConfig`] from a preset name (see [`MODEL_PRESETS`]) or a config file/folder, then applies
    `overrides` and `fixed` (e.g. `vocab_size` from the tokenizer, which always wins).

    Args:
        config_name (`str`, *optional*): A key of `MODEL_PRESETS`, a `config.json` path or a folder holding one.
            Defaults to `"crnn-paper"`.
        overrides (`str` or `dict`, *optional*): See [`parse_config_overrides`].
        **fixed: Fields that must take these values whatever the preset and overrides say.
    """
    config_name = config_name or DEFAULT_PRESET
    overrides = parse_config_overrides(overrides)
    unknown = set(overrides) - set(CRNNConfig().to_dict())
    if unknown:
        raise ValueError(f"`config_overrides` names unknown CRNNConfig field(s): {sorted(unknown)}.")
    if config_name in MODEL_PRESETS:
        base = dict(MODEL_PRESETS[config_name])
    elif os.path.exists(config_name):
        base = CRNNConfig.from_pretrained(config_name).to_diff_dict()
    else:
        raise ValueError(
            f"`config_name` must be one of {sorted(MODEL_PRESETS)} or a path to a CRNN config, got {config_name!r}."
        )
    return CRNNConfig(**{**base, **overrides, **fixed})


# ---------------------------------------------------------------------------------------------------------------------
# Training arguments
# ---------------------------------------------------------------------------------------------------------------------

ADADELTA = "adadelta"
# The paper: "ADADELTA ... with the decay rate rho set to 0.9"; crnn.pytorch trains it at lr 1.0 with no schedule.
ADADELTA_DEFAULTS = {"rho": 0.9, "eps": 1e-6}
# Share of the training steps over which "warmup_stable_decay" decays, unless `lr_scheduler_kwargs` names
# `num_decay_steps`: a cosine over the whole run lowers the rate before CTC has left its all-blank plateau.
WSD_DECAY_FRACTION = 0.2
_OPTIMIZER_DEFAULTS = {
    # optimiser -> (learning rate, LR schedule, warmup): what converged fastest side by side (docs/training.md).
    ADADELTA: (1.0, "constant", 0.0),
    "adamw": (2e-3, SchedulerType.WARMUP_STABLE_DECAY.value, 0.05),
}


@dataclass
class CRNNTrainingArguments(TrainingArguments):
    """
    [`TrainingArguments`] with defaults that fit CRNN training, plus `optim="adadelta"`.

    Changed defaults (each can still be set on the command line):

    - `remove_unused_columns=False`: the lazy transform needs the raw `image`/`text` columns the model does not take;
    - `label_names=["labels"]`, so evaluation hands labels to `compute_metrics` and predictions keep `frame_lengths`;
    - `train_sampling_strategy="group_by_length"` with `length_column_name="length"` (the processed image width),
      so a batch holds images of similar widths and wastes little compute on padding;
    - `ddp_find_unused_parameters=False`: every CRNN parameter takes part in every forward pass, so DDP need not
      search the graph for unused ones each step;
    - `dataloader_pin_memory` only when CUDA is available: pinning does nothing on CPU but make PyTorch warn;
    - `learning_rate`, `lr_scheduler_type`, `warmup_steps` follow the optimiser when not given: AdamW warms up to
      2e-3 over 5% of the steps, holds it and decays it (cosine) over the last 20% (`warmup_stable_decay`; set
      `--lr_scheduler_kwargs '{"num_decay_steps": N}'` to change); Adadelta runs at a constant 1.0 (the paper's).
    """

    optim: str = field(
        default="adamw_torch",
        metadata={
            "help": "The optimiser: 'adadelta' (the paper's, rho 0.9; tune with --optim_args 'rho=0.9,eps=1e-6') "
            "or any optimiser Trainer supports (adamw_torch, adamw_torch_fused, sgd, ...)."
        },
    )
    learning_rate: float | None = field(
        default=None, metadata={"help": "Peak learning rate. Default: 1.0 for adadelta, 2e-3 otherwise."}
    )
    lr_scheduler_type: str | None = field(
        default=None,
        metadata={"help": "LR schedule. Default: 'constant' for adadelta, 'warmup_stable_decay' (last 20%%) otherwise."},
    )
    warmup_steps: float | None = field(
        default=None,
        metadata={"help": "Warmup steps (int) or ratio of the total (float < 1). Default: 0 for adadelta, 0.05 else."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep False: the lazy preprocessing reads the raw image and text columns."},
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "'group_by_length' (default) batches images of similar widths; or 'random', 'sequential'."},
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False, metadata={"help": "CRNN uses every parameter in every step: no need to search for unused ones."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train from scratch even if `output_dir` holds checkpoints (default: resume from the last)."},
    )
    dataloader_pin_memory: bool | None = field(
        default=None,
        metadata={"help": "Pin batches in page-locked memory. Default: only when CUDA is available (useless on CPU)."},
    )
    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Stop training once this many minutes have passed, evaluating and saving first as at a normal "
            "end (so --load_best_model_at_end still works): for machines lent for a fixed time. The learning-rate "
            "schedule still spans --max_steps, so choose --max_steps to fit and let this only catch an overrun."
        },
    )

    def __post_init__(self):
        self.optim = str(getattr(self.optim, "value", self.optim))
        if self.dataloader_pin_memory is None:
            # Without CUDA, PyTorch warns on every DataLoader that asks for pinned memory.
            self.dataloader_pin_memory = torch.cuda.is_available()
        use_adadelta = self.optim == ADADELTA
        learning_rate, scheduler, warmup = _OPTIMIZER_DEFAULTS[ADADELTA if use_adadelta else "adamw"]
        if self.learning_rate is None:
            self.learning_rate = learning_rate
        if self.lr_scheduler_type is None:
            self.lr_scheduler_type = scheduler
        if self.warmup_steps is None:
            self.warmup_steps = warmup
        if self.label_names is None:
            self.label_names = ["labels"]
        if self.max_train_minutes is not None and not self.max_train_minutes > 0:
            raise ValueError(f"`max_train_minutes` must be positive, got {self.max_train_minutes}.")
        if use_adadelta:
            # `TrainingArguments` only accepts the optimisers it builds itself; validate with a stand-in, then put
            # ours back: `CRNNTrainer.get_optimizer_cls_and_kwargs` builds it.
            self.optim = "adamw_torch"
            super().__post_init__()
            self.optim = ADADELTA
        else:
            super().__post_init__()


def adadelta_kwargs(args: TrainingArguments) -> dict[str, float]:
    """Adadelta's keyword arguments: `lr`, `weight_decay`, and `rho`/`eps` (paper defaults, or `--optim_args`)."""
    kwargs = dict(ADADELTA_DEFAULTS)
    for item in filter(None, (args.optim_args or "").replace(" ", "").split(",")):
        key, _, value = item.partition("=")
        if key not in ADADELTA_DEFAULTS:
            raise ValueError(f"Adadelta takes `optim_args` {sorted(ADADELTA_DEFAULTS)}, got {key!r}.")
        kwargs[key] = float(value)
    return {"lr": args.learning_rate, "weight_decay": args.weight_decay, **kwargs}


# ---------------------------------------------------------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------------------------------------------------------


def read_column(dataset, column: str) -> list:
    """
    The values of one column of a `datasets.Dataset`, without its formatting transform.

    `dataset[column]` on a dataset with a `with_transform` runs the transform (here: decoding and resizing every
    image) for each value; the raw Arrow column of the selected rows is what length grouping needs.
    """
    return dataset.with_format(None).select_columns([column])[:][column]


class TrainingTimeLimitCallback(TrainerCallback):
    """Ends training at the first step after `minutes` of training, with an evaluation and a save if any are set up."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60.0
        self.started = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is None or time.monotonic() - self.started < self.seconds:
            return control
        minutes = self.seconds / 60
        logger.warning(f"Stopping at step {state.global_step}: the {minutes:g}-minute training limit is reached.")
        control.should_training_stop = True
        control.should_evaluate = args.eval_strategy != "no"
        control.should_save = args.save_strategy != "no"
        return control


class CRNNTrainer(Trainer):
    """
    [`Trainer`] for CRNN.

    - `optim="adadelta"` builds `torch.optim.Adadelta` (see [`CRNNTrainingArguments`]);
    - length grouping reads the `length_column_name` column directly instead of through the dataset's transform;
    - `max_train_minutes` in the arguments ends training on time ([`TrainingTimeLimitCallback`]);
    - `create_model_card` (called by `push_to_hub`) writes the CRNN card of `hf_crnn.model_card`, with the
      `model_card_kwargs` given here (training details, evaluation results).

    Args:
        model_card_kwargs (`dict`, *optional*): Passed to `hf_crnn.model_card.write_model_card`.
        *args, **kwargs: Those of [`Trainer`].
    """

    def __init__(self, *args, model_card_kwargs: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_card_kwargs = dict(model_card_kwargs or {})
        max_minutes = getattr(self.args, "max_train_minutes", None)
        if max_minutes is not None:
            self.add_callback(TrainingTimeLimitCallback(max_minutes))

    @staticmethod
    def get_optimizer_cls_and_kwargs(args: TrainingArguments, model=None) -> tuple[Any, Any]:
        if args.optim == ADADELTA:
            return torch.optim.Adadelta, adadelta_kwargs(args)
        return Trainer.get_optimizer_cls_and_kwargs(args, model)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """Trainer's scheduler; `warmup_stable_decay` decays over the last `WSD_DECAY_FRACTION` unless told how long."""
        if self.lr_scheduler is not None or self.args.lr_scheduler_type != SchedulerType.WARMUP_STABLE_DECAY:
            return super().create_scheduler(num_training_steps, optimizer)
        given = self.args.lr_scheduler_kwargs
        decay_steps = round(WSD_DECAY_FRACTION * num_training_steps)
        self.args.lr_scheduler_kwargs = {"num_decay_steps": decay_steps, **(given or {})}
        try:
            return super().create_scheduler(num_training_steps, optimizer)
        finally:
            self.args.lr_scheduler_kwargs = given  # the arguments stay as given (they are saved with checkpoints)

    def evaluation_loop(self, *args, **kwargs):
        self._use_main_process_buffers()
        return super().evaluation_loop(*args, **kwargs)

    def _use_main_process_buffers(self) -> None:
        """Give every process the main process's buffers (BatchNorm running statistics) before evaluating.

        DDP broadcasts buffers from rank 0 only at the start of each training forward, so after the last step each
        rank holds statistics updated by its own last batch. Without this, each rank would evaluate a slightly
        different model, and none of them would be exactly the model that rank 0 saves.
        """
        if self.args.world_size <= 1 or not torch.distributed.is_initialized():
            return
        for buffer in self.model.buffers():
            torch.distributed.broadcast(buffer.data, src=0)

    def _length_grouped_sampler(self, dataset, batch_size: int, generator=None) -> LengthGroupedSampler | None:
        import datasets

        if (
            self.args.train_sampling_strategy != "group_by_length"
            or not isinstance(dataset, datasets.Dataset)
            or self.args.length_column_name not in dataset.column_names
        ):
            return None
        lengths = read_column(dataset, self.args.length_column_name)
        return LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = train_dataset if train_dataset is not None else self.train_dataset
        batch_size = self.args.train_batch_size * self.args.gradient_accumulation_steps
        sampler = self._length_grouped_sampler(train_dataset, batch_size)
        return sampler if sampler is not None else super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        generator = torch.Generator().manual_seed(self.args.data_seed if self.args.data_seed is not None else self.args.seed)
        sampler = self._length_grouped_sampler(eval_dataset, self.args.eval_batch_size, generator)
        return sampler if sampler is not None else super()._get_eval_sampler(eval_dataset)

    def create_model_card(self, **kwargs) -> None:
        """Writes the CRNN model card (`hf_crnn.model_card`) to `output_dir/README.md`."""
        if not self.is_world_process_zero():
            return
        from .model_card import write_model_card

        card_kwargs = dict(self.model_card_kwargs)
        if kwargs.get("model_name"):
            card_kwargs.setdefault("model_name", kwargs["model_name"])
        if kwargs.get("tags"):
            card_kwargs.setdefault("tags", kwargs["tags"])
        card_kwargs.setdefault("repo_id", self.args.hub_model_id)
        write_model_card(self.args.output_dir, self.accelerator.unwrap_model(self.model), self.processing_class, **card_kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class TextRecognitionTransform:
    """
    The lazy preprocessing of a text-recognition dataset, for `dataset.with_transform(...)` (map-style) or
    `dataset.map(..., batched=True)` (streaming): each batch of raw examples becomes, per example, `pixel_values`
    `(C, H, W_i)` (unpadded: [`CRNNDataCollator`] pads per batch), `image_widths` and `labels` (ids, no padding).

    Nothing is materialised: images are decoded and resized when a batch is drawn, every epoch.

    Args:
        processor (`CRNNProcessor`): Its image processor and tokenizer do the work.
        image_column (`str`): Column of the images (PIL images, paths, or `datasets` image dicts).
        text_column (`str`): Column of the label texts.
        label_checker ([`LabelChecker`], *optional*): Each label is checked against the image it is trained with;
            where augmentation narrowed an image below the CTC frames its label needs, the original image is used.
            Examples that still fail are dropped from the batch (`invalid_labels="filter"`, counted and the first
            few logged) or raise (`"error"`): that is for streams, whose labels cannot be checked before training.
            Map-style datasets are filtered up front by [`filter_invalid_labels`] (`with_transform` must keep every
            row), so there it only guards the augmentation.
        invalid_labels (`str`, *optional*, defaults to `"filter"`): See `label_checker`.
        augmentation (`Callable[[PIL.Image.Image], PIL.Image.Image]`, *optional*): Applied to each decoded image
            before resizing (training splits only; e.g. [`~hf_crnn.augmentation.RealCropAugmentation`]).
    """

    processor: Any
    image_column: str = "image"
    text_column: str = "text"
    label_checker: LabelChecker | None = None
    invalid_labels: str = "filter"
    augmentation: Callable[[Any], Any] | None = None

    def __post_init__(self):
        if self.invalid_labels not in INVALID_LABEL_POLICIES:
            raise ValueError(f"`invalid_labels` must be one of {INVALID_LABEL_POLICIES}, got {self.invalid_labels!r}.")
        self.skipped = Counter()

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        image_processor = self.processor.image_processor
        images = [_decode_image(image, image_processor.num_channels) for image in batch[self.image_column]]
        texts = [str(text) for text in batch[self.text_column]] if self.text_column in batch else None
        if self.label_checker is not None and texts is not None:
            images, texts = self._trainable(images, texts)
            if not images:
                return {"pixel_values": [], "image_widths": [], "labels": []}
        elif self.augmentation is not None:
            images = [self.augmentation(image) for image in images]
        features = image_processor(images, return_tensors="np")
        widths = features["image_widths"].tolist()
        output = {
            "pixel_values": [pixels[..., :width] for pixels, width in zip(features["pixel_values"], widths)],
            "image_widths": widths,
        }
        if texts is not None:
            output["labels"] = self.processor.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return output

    def _problems(self, images: list, texts: list[str]) -> list[str | None]:
        image_processor = self.processor.image_processor
        widths = [image_processor.target_width(image.width, image.height) for image in images]
        return self.label_checker.problems(texts, widths)

    def _trainable(self, images: list, texts: list[str]) -> tuple[list, list[str]]:
        """
        The examples whose labels fit the images they are trained with: each augmented image, or the original one
        where augmentation narrowed it below the CTC frames its label needs (CTC would have no alignment); the
        others are dropped and counted (or raise, with `invalid_labels="error"`).
        """
        chosen = [self.augmentation(image) for image in images] if self.augmentation is not None else list(images)
        problems = self._problems(chosen, texts)
        retry = [index for index, problem in enumerate(problems) if problem and chosen[index] is not images[index]]
        if retry:
            retried = self._problems([images[index] for index in retry], [texts[index] for index in retry])
            for index, problem in zip(retry, retried):
                chosen[index], problems[index] = images[index], problem
        keep = []
        for index, problem in enumerate(problems):
            if problem is None:
                keep.append(index)
                continue
            if self.invalid_labels == "error":
                raise ValueError(f"Label {texts[index]!r} cannot be trained on: {_PROBLEMS[problem]}.")
            self.skipped[problem] += 1
            if sum(self.skipped.values()) <= 10:
                logger.warning(f"Skipping streamed example {texts[index]!r}: {_PROBLEMS[problem]}.")
        return [chosen[index] for index in keep], [texts[index] for index in keep]


def _decode_image(image, num_channels: int):
    if isinstance(image, dict):  # a `datasets` Image feature stored with decode=False
        from .data_collator import _open_image

        image = _open_image(image)
    return load_image(image, num_channels)


# ---------------------------------------------------------------------------------------------------------------------
# Label checks
# ---------------------------------------------------------------------------------------------------------------------

INVALID_LABEL_POLICIES = ("filter", "error")
_PROBLEMS = {
    "unencodable": "it holds characters outside the vocabulary",
    "too_long": "it needs more CTC frames than its image gives",
}


def ctc_frames_needed(label_ids: Sequence[int]) -> int:
    """Frames CTC needs for a label: one per character plus a blank between repeated neighbours."""
    return len(label_ids) + sum(first == second for first, second in zip(label_ids, label_ids[1:]))


@dataclass
class LabelChecker:
    """
    Says whether a label can be trained on: its characters must be encodable (under the tokenizer's
    `unknown_character_policy`: with `"drop"` or `"unk"` every character is) and it must fit the frames its image
    gives (`model.get_frame_lengths(processed_width)`), else CTC has no valid alignment and the model raises.

    Picklable (plain data), so `dataset.filter(..., num_proc=N)` can use it.

    Args:
        tokenizer (`CRNNTokenizer`): The tokenizer labels are encoded with.
        frames_per_width (`list[int]`): `frames_per_width[w]` = frames of a `w`-pixel-wide image.
    """

    tokenizer: Any
    frames_per_width: list[int]

    def __post_init__(self):
        self._vocabulary = self.tokenizer.get_vocab()

    def problem(self, text: str, width: int) -> str | None:
        """`None` for a usable label, else the reason: `"unencodable"` or `"too_long"`."""
        text = str(text)
        if self.tokenizer.unknown_character_policy == "error":
            characters = text.lower() if self.tokenizer.do_lower_case else text
            if not set(characters) <= self._vocabulary.keys():
                return "unencodable"
            ids = [self._vocabulary[character] for character in characters]
        else:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        width = min(int(width), len(self.frames_per_width) - 1)
        return "too_long" if ctc_frames_needed(ids) > self.frames_per_width[width] else None

    def problems(self, texts: Sequence[str], widths: Sequence[int]) -> list[str | None]:
        return [self.problem(text, width) for text, width in zip(texts, widths)]


def frames_per_width(model, max_width: int) -> list[int]:
    """`[model.get_frame_lengths(w) for w in range(max_width + 1)]`, with 0 frames for widths the network rejects."""
    widths = torch.arange(max_width + 1)
    frames = model.get_frame_lengths(widths).clamp(min=0)
    minimum = model.crnn.minimum_width if hasattr(model, "crnn") else model.minimum_width
    frames[:minimum] = 0
    return frames.tolist()


def filter_invalid_labels(
    dataset,
    checker: LabelChecker,
    text_column: str,
    length_column: str,
    policy: str = "filter",
    split: str = "train",
    num_proc: int | None = None,
):
    """
    Removes the examples [`LabelChecker`] rejects, logging how many and why (`policy="filter"`), or raises a
    `ValueError` that counts and shows them (`policy="error"`). Reads only the text and length columns: no image is
    decoded.

    Returns:
        The filtered `datasets.Dataset` (an indices mapping over the same Arrow data).
    """
    if policy not in INVALID_LABEL_POLICIES:
        raise ValueError(f"`invalid_labels` must be one of {INVALID_LABEL_POLICIES}, got {policy!r}.")
    texts = read_column(dataset, text_column)
    widths = read_column(dataset, length_column)
    problems = checker.problems(texts, widths)
    counts = Counter(problem for problem in problems if problem is not None)
    if not counts:
        return dataset
    examples = [(text, problem) for text, problem in zip(texts, problems) if problem is not None][:5]
    summary = (
        f"{sum(counts.values())} of {len(problems)} {split} labels cannot be trained on: "
        f"{counts['unencodable']} hold characters outside the vocabulary, {counts['too_long']} need more CTC frames "
        f"than their image gives (e.g. {examples})"
    )
    if policy == "error":
        raise ValueError(
            summary + ". Fix the data, use a wider resize (--resize_mode keep_aspect_ratio, --max_width), a "
            "tokenizer with those characters (--characters) or --invalid_labels filter."
        )
    logger.warning(summary + "; they are skipped (--invalid_labels error to fail instead).")
    keep = [index for index, problem in enumerate(problems) if problem is None]
    return dataset.select(keep)


def synthetic_charset(tokenizer) -> str:
    """Characters synthetic texts may use so the tokenizer encodes them all: its own, plus upper case if it folds."""
    characters = "".join(tokenizer.characters)
    if tokenizer.do_lower_case:
        characters += "".join(c.upper() for c in characters if c.upper() != c and len(c.upper()) == 1)
    return characters


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """
    The newest `checkpoint-N` folder of `output_dir` that was saved to the end, or `None`.

    The Trainer makes a checkpoint's folder before it saves into it and writes `trainer_state.json` last (the weights
    land there only once complete: `staged_directory`). A run killed while saving leaves a folder without it, which
    `transformers.trainer_utils.get_last_checkpoint` would still pick, and resuming from it fails ("Can't find a
    valid checkpoint"). Such folders are passed over, with a warning.
    """
    for checkpoint in reversed(sort_checkpoints(os.fspath(output_dir))):
        if os.path.isfile(os.path.join(checkpoint, TRAINER_STATE_NAME)):
            return checkpoint
        logger.warning(f"Skipping {checkpoint}: its saving did not finish (no {TRAINER_STATE_NAME}).")
    return None


def human_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


__all__ = [
    "ADADELTA",
    "CRNNTrainer",
    "CRNNTrainingArguments",
    "DEFAULT_PRESET",
    "LabelChecker",
    "MODEL_PRESETS",
    "TextRecognitionTransform",
    "build_config",
    "ctc_frames_needed",
    "filter_invalid_labels",
    "frames_per_width",
    "last_complete_checkpoint",
    "parse_config_overrides",
    "read_column",
    "synthetic_charset",
]
