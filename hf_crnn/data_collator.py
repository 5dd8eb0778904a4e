# Copyright 2025 The hf-crnn Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
Batching for CRNN training: `CRNNDataCollator`, width-based length columns for `Trainer`'s length grouping, and
training-only image augmentation.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch


LABEL_PAD_TOKEN_ID = -100
"""Label padding value: what `CRNNForTextRecognition` (and `Trainer`) treat as "no label"."""

DEFAULT_IMAGE_HEIGHT = 32

Augmentation = Callable[[PIL.Image.Image], PIL.Image.Image]


def _open_image(image: Any) -> Any:
    """Decode `datasets` image dicts (`Image(decode=False)`) and paths to PIL; pass anything else through."""
    if isinstance(image, dict):
        if image.get("bytes") is not None:
            return PIL.Image.open(io.BytesIO(image["bytes"]))
        if image.get("path"):
            return PIL.Image.open(image["path"])
        raise ValueError(f"Image dict without `bytes` or `path`: {sorted(image)}.")
    if isinstance(image, (str, os.PathLike)):
        return PIL.Image.open(image)
    return image


def _apply_augmentation(augmentation: Augmentation, images: Sequence[Any]) -> list[Any]:
    augmented = []
    for image in images:
        image = _open_image(image)
        if not isinstance(image, PIL.Image.Image):
            raise ValueError(
                f"Augmentations take PIL images, got {type(image).__name__}; keep the dataset's `Image` feature "
                "decoding to PIL (the default) or augment before converting images to arrays."
            )
        augmented.append(augmentation(image))
    return augmented


def _as_tensor(value: Any, name: str, index: int, dtype: torch.dtype) -> torch.Tensor:
    try:
        return torch.as_tensor(np.asarray(value), dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Example {index}: cannot convert `{name}` to a tensor ({error}).") from error


def pad_labels(labels: Sequence[Sequence[int] | None]) -> torch.LongTensor:
    """Right-pad label id sequences with -100 into a `(B, L)` LongTensor (existing -100 entries are dropped first)."""
    rows = [[int(i) for i in np.asarray(row).reshape(-1) if i != LABEL_PAD_TOKEN_ID] for row in labels]
    batch = torch.full((len(rows), max((len(row) for row in rows), default=0)), LABEL_PAD_TOKEN_ID, dtype=torch.long)
    for index, row in enumerate(rows):
        batch[index, : len(row)] = torch.tensor(row, dtype=torch.long)
    return batch


@dataclass
class CRNNDataCollator:
    """Collate CRNN examples into a padded batch.

    Two kinds of examples are accepted (all examples of a batch must be of the same kind):

    - **raw**: `{"image": <PIL image, array, path or datasets image dict>, "text": str}`; the images (augmented first,
      when training with an `augmentation`) and texts go through `processor` (`CRNNProcessor`: its image processor
      and tokenizer). `text` may be absent from every example (inference): the batch then has no `labels`.
    - **pre-processed**: `{"pixel_values": (C, H, W), "labels": (L,) ids, "image_widths": int (optional)}`, as
      produced by `dataset.map` with the processor (arrays, tensors or nested lists). `image_widths` is the valid
      width when `pixel_values` is itself right-padded; it defaults to `W`.

    Images are right-padded with `padding_value` (0, the value `CRNNImageProcessor` pads with, i.e. mid-grey after
    its default normalisation) to the batch's largest valid width rounded up to a multiple of `pad_width_multiple`;
    the model masks the padding using `image_widths`. Labels are right-padded with -100.

    Args:
        processor (`CRNNProcessor`, *optional*): Needed for raw examples.
        augmentation (`Callable[[PIL.Image.Image], PIL.Image.Image]`, *optional*):
            Applied to each raw image before processing, only while `training` is True. `Trainer` uses one collator
            for training and evaluation, so with `Trainer` attach augmentation to the training dataset instead, with
            `augment_dataset`, which keeps evaluation clean.
        training (`bool`, *optional*, defaults to True): Whether `augmentation` is applied; see `train()`/`eval()`.
        pad_width_multiple (`int`, *optional*, defaults to 4): The padded width is a multiple of this.
        padding_value (`float`, *optional*, defaults to 0.0): Value of padded pixels (pre-processed examples).
        image_column (`str`, *optional*, defaults to `"image"`): Key of the image in raw examples.
        text_column (`str`, *optional*, defaults to `"text"`): Key of the label text in raw examples.

    Returns from `__call__`: `dict` with `pixel_values` `(B, C, H, W)` float32, `image_widths` `(B,)` int64 and, when
    the examples have labels, `labels` `(B, L)` int64.

    Example:

    ```python
    >>> collator = CRNNDataCollator(processor)
    >>> batch = collator([{"image": image_1, "text": "hello"}, {"image": image_2, "text": "hi"}])
    >>> batch["labels"]  # ids of "hello" and "hi", padded with -100
    ```
    """

    processor: Any = None
    augmentation: Augmentation | None = None
    training: bool = True
    pad_width_multiple: int = 4
    padding_value: float = 0.0
    image_column: str = "image"
    text_column: str = "text"

    def __post_init__(self):
        if not isinstance(self.pad_width_multiple, int) or self.pad_width_multiple < 1:
            raise ValueError(f"`pad_width_multiple` must be a positive int, got {self.pad_width_multiple!r}.")
        if self.augmentation is not None and not callable(self.augmentation):
            raise ValueError(f"`augmentation` must be callable, got {type(self.augmentation).__name__}.")

    def train(self, mode: bool = True) -> CRNNDataCollator:
        """Turn augmentation on (`mode=True`) or off; returns the collator, like `torch.nn.Module.train`."""
        self.training = mode
        return self

    def eval(self) -> CRNNDataCollator:
        """Turn augmentation off; returns the collator."""
        return self.train(False)

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if len(features) == 0:
            raise ValueError("Cannot collate an empty list of examples.")
        if all("pixel_values" in feature for feature in features):
            batch = self._collate_processed(features)
        elif all(self.image_column in feature for feature in features):
            batch = self._collate_raw(features)
        else:
            keys = sorted({key for feature in features for key in feature})
            raise ValueError(
                f"Examples must all have `pixel_values` (pre-processed) or all have {self.image_column!r} (raw); got "
                f"keys {keys}. With Trainer, raw examples need `remove_unused_columns=False`."
            )
        batch["pixel_values"] = self._pad_width(batch["pixel_values"])
        return batch

    def _labels_or_none(self, features: Sequence[dict[str, Any]], key: str) -> list | None:
        present = [feature.get(key) is not None for feature in features]
        if not any(present):
            return None
        if not all(present):
            raise ValueError(f"Either every example or none must have {key!r}; {present.count(False)} lack it.")
        return [feature[key] for feature in features]

    def _collate_raw(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if self.processor is None:
            raise ValueError(
                "Raw examples (images and texts) need a processor: CRNNDataCollator(processor=CRNNProcessor(...))."
            )
        images = [feature[self.image_column] for feature in features]
        images = (
            _apply_augmentation(self.augmentation, images)
            if self.training and self.augmentation is not None
            else [_open_image(image) for image in images]
        )
        texts = self._labels_or_none(features, self.text_column)
        encoded = self.processor(images=images, text=texts, return_tensors="pt")
        batch = {
            "pixel_values": encoded["pixel_values"].to(torch.float32),
            "image_widths": encoded["image_widths"].to(torch.long),
        }
        if texts is not None:
            batch["labels"] = encoded["labels"].to(torch.long)
        return batch

    def _collate_processed(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if self.training and self.augmentation is not None:
            raise ValueError(
                "`augmentation` works on raw images, but these examples are already pre-processed (`pixel_values`): "
                "augment before processing, or call `collator.eval()` / drop the augmentation."
            )
        images, widths = [], []
        for index, feature in enumerate(features):
            image = _as_tensor(feature["pixel_values"], "pixel_values", index, torch.float32)
            if image.dim() == 4 and image.shape[0] == 1:  # a processor output for a single image keeps its batch axis
                image = image[0]
            if image.dim() != 3:
                raise ValueError(
                    f"Example {index}: `pixel_values` must have shape (C, H, W), got {tuple(image.shape)}."
                )
            width = feature.get("image_widths")
            width = image.shape[-1] if width is None else int(np.asarray(width).reshape(-1)[0])
            if not 0 < width <= image.shape[-1]:
                raise ValueError(f"Example {index}: `image_widths` {width} is not in [1, {image.shape[-1]}].")
            images.append(image)
            widths.append(width)
        if len({image.shape[:2] for image in images}) > 1:
            shapes = sorted({tuple(image.shape[:2]) for image in images})
            raise ValueError(f"All images of a batch need the same channels and height (C, H), got {shapes}.")

        channels, height = images[0].shape[:2]
        # Only the valid columns are copied: padding that came with an example (from a batched `map`) is dropped.
        pixel_values = torch.full(
            (len(images), channels, height, max(widths)), self.padding_value, dtype=torch.float32
        )
        for index, (image, width) in enumerate(zip(images, widths)):
            pixel_values[index, :, :, :width] = image[:, :, :width]
        batch = {"pixel_values": pixel_values, "image_widths": torch.tensor(widths, dtype=torch.long)}
        labels = self._labels_or_none(features, "labels")
        if labels is not None:
            batch["labels"] = pad_labels(labels)
        return batch

    def _pad_width(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Right-pad `(B, C, H, W)` so that `W` is a multiple of `pad_width_multiple`."""
        width = pixel_values.shape[-1]
        extra = math.ceil(width / self.pad_width_multiple) * self.pad_width_multiple - width
        if extra == 0:
            return pixel_values
        return torch.nn.functional.pad(pixel_values, (0, extra), value=self.padding_value)


# ---------------------------------------------------------------------------------------------------------------------
# Length grouping
# ---------------------------------------------------------------------------------------------------------------------


def processed_width(width: int, height: int, image_processor=None, image_height: int = DEFAULT_IMAGE_HEIGHT) -> int:
    """Width an image of `width` x `height` pixels has once processed, i.e. its length for batching.

    Uses `image_processor.target_width` when an image processor is given (so "fixed" and "keep_aspect_ratio"
    modes, and their width limits, are honoured); otherwise scales to `image_height` keeping the aspect ratio.
    """
    if width < 1 or height < 1:
        raise ValueError(f"Image sizes must be positive, got {width} x {height}.")
    if image_processor is not None:
        return int(image_processor.target_width(width, height))
    return max(1, round(width * image_height / height))


def _image_size(image: Any) -> tuple[int, int]:
    if isinstance(image, PIL.Image.Image):
        return image.size
    # `PIL.Image.open` only parses the header here: sizes come without decoding any pixel.
    with _open_image(image) as opened:
        return opened.size


def add_length_column(
    dataset,
    image_processor=None,
    image_height: int = DEFAULT_IMAGE_HEIGHT,
    image_column: str = "image",
    length_column_name: str = "length",
    num_proc: int | None = None,
):
    """Add the processed width of every image as a column, for `Trainer`'s length grouping.

    With `TrainingArguments(train_sampling_strategy="group_by_length", length_column_name=length_column_name)`,
    `Trainer` then batches images of similar widths together, wasting little compute on padding. Image sizes are
    read from the `width`/`height` columns when the dataset has both, else from the image file headers (no pixel
    decoding).

    Args:
        dataset (`datasets.Dataset`): Dataset with an image column.
        image_processor (`CRNNImageProcessor`, *optional*): The processor whose resizing to mimic.
        image_height (`int`, *optional*, defaults to 32): Target height when no image processor is given.
        image_column (`str`, *optional*, defaults to `"image"`): The image column.
        length_column_name (`str`, *optional*, defaults to `"length"`): Name of the new column.
        num_proc (`int`, *optional*): Processes for reading image headers.

    Returns:
        `datasets.Dataset`: `dataset` with the extra int32 column.
    """
    import datasets

    if length_column_name in dataset.column_names:
        raise ValueError(f"The dataset already has a {length_column_name!r} column.")

    def lengths_of(sizes: list[tuple[int, int]]) -> list[int]:
        return [processed_width(width, height, image_processor, image_height) for width, height in sizes]

    if {"width", "height"} <= set(dataset.column_names):
        return dataset.add_column(
            length_column_name, lengths_of(zip(dataset["width"], dataset["height"]))
        ).cast_column(length_column_name, datasets.Value("int32"))

    if image_column not in dataset.column_names:
        raise ValueError(f"The dataset has no {image_column!r} column; its columns are {dataset.column_names}.")
    headers = dataset.select_columns([image_column])
    if isinstance(headers.features[image_column], datasets.Image):
        headers = headers.cast_column(image_column, datasets.Image(decode=False))
    lengths = headers.map(
        lambda images: {length_column_name: lengths_of([_image_size(image) for image in images])},
        input_columns=[image_column],
        batched=True,
        remove_columns=[image_column],
        features=datasets.Features({length_column_name: datasets.Value("int32")}),
        num_proc=num_proc,
        desc="Reading image sizes",
    )
    return datasets.concatenate_datasets([dataset, lengths], axis=1)


# ---------------------------------------------------------------------------------------------------------------------
# Training-only augmentation for Trainer
# ---------------------------------------------------------------------------------------------------------------------


def augment_dataset(dataset, augmentation: Augmentation, image_column: str = "image"):
    """Apply `augmentation` to every image of `dataset` on the fly (at access time, never stored).

    `Trainer` shares its data collator between training and evaluation, so this is how to augment the training set
    only: `trainer = Trainer(train_dataset=augment_dataset(train_dataset, augmentation), eval_dataset=eval_dataset,
    data_collator=CRNNDataCollator(processor), ...)`. Each access draws a new augmentation.

    Args:
        dataset (`datasets.Dataset` or `datasets.IterableDataset`): Dataset with a (decoded) image column.
        augmentation (`Callable[[PIL.Image.Image], PIL.Image.Image]`): The augmentation.
        image_column (`str`, *optional*, defaults to `"image"`): The image column.

    Returns:
        The same kind of dataset, augmented (`with_transform` for a `Dataset`, a lazy `map` for an `IterableDataset`).
    """
    import datasets

    if not callable(augmentation):
        raise ValueError(f"`augmentation` must be callable, got {type(augmentation).__name__}.")

    def transform(batch: dict[str, list]) -> dict[str, list]:
        # `Trainer` also reads single columns (e.g. lengths for grouping) through the transform: leave those alone.
        if image_column in batch:
            batch[image_column] = _apply_augmentation(augmentation, batch[image_column])
        return batch

    if isinstance(dataset, datasets.IterableDataset):
        return dataset.map(transform, batched=True, batch_size=64)
    if image_column not in dataset.column_names:
        raise ValueError(f"The dataset has no {image_column!r} column; its columns are {dataset.column_names}.")
    return dataset.with_transform(transform)
