# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Image processor for CRNN: any image -> fixed-height, normalised, right-padded batch plus valid widths."""

import os
from collections.abc import Sequence

import numpy as np
import PIL.Image
import PIL.ImageOps
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor
from transformers.image_utils import PILImageResampling
from transformers.utils import TensorType, is_torch_available

if is_torch_available():
    import torch

RESIZE_MODES = ("fixed", "keep_aspect_ratio")
_CHANNEL_COUNTS = (1, 2, 3, 4)  # gray, gray+alpha, RGB, RGBA


def _pil_to_uint8(image: PIL.Image.Image, num_channels: int) -> PIL.Image.Image:
    """Converts a PIL image of any mode to 8-bit "L" (num_channels=1) or "RGB" (3); alpha is composited on white."""
    target_mode = "L" if num_channels == 1 else "RGB"
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return _array_to_pil(np.asarray(image), num_channels, source=f"PIL mode {image.mode}")
    if image.mode == "F":
        # PIL's own conversions ("L" -> "F") keep the 0-255 scale; [0, 1] floats are taken as they are.
        array = np.asarray(image, dtype=np.float32)
        if array.size and array.max() > 1.0:
            array = array / 255.0
        return _array_to_pil(array, num_channels, source="PIL mode F")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = PIL.Image.alpha_composite(background, rgba)
    if image.mode not in ("L", "RGB"):
        # "1", "CMYK", "YCbCr", "LAB", "HSV", ... all convert to RGB; not all convert to L directly.
        image = image.convert("RGB")
    return image.convert(target_mode) if image.mode != target_mode else image


def _array_to_uint8(array: np.ndarray, source: str) -> np.ndarray:
    """Scales an integer, boolean or [0, 1] float array to uint8, refusing values it cannot interpret."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"Image ({source}) holds NaN or infinite values.")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"Float images must hold values in [0, 1]; this one ({source}) spans [{low:.3g}, {high:.3g}]. "
                "Pass uint8 arrays for 0-255 data."
            )
        return np.round(array * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 65535:
            raise ValueError(f"Integer image ({source}) spans [{low}, {high}], outside 8- or 16-bit range.")
        if array.dtype == np.uint16 or high > 255:
            return (array.astype(np.uint32) // 257).astype(np.uint8)  # 16-bit: 65535 -> 255
        return array.astype(np.uint8)
    raise ValueError(f"Unsupported image dtype {array.dtype} ({source}).")


def _array_to_pil(
    array: np.ndarray, num_channels: int, source: str, channels_first: bool | None = None
) -> PIL.Image.Image:
    """
    Converts a `(H, W)`, `(H, W, C)` or `(C, H, W)` array to an 8-bit PIL image.

    `channels_first=None` infers the layout: channels come first when the first axis has 1-4 entries and the last
    does not.
    """
    if array.ndim == 3:
        first_is_channels = array.shape[0] in _CHANNEL_COUNTS and array.shape[-1] not in _CHANNEL_COUNTS
        if channels_first if channels_first is not None else first_is_channels:
            array = np.moveaxis(array, 0, -1)
        if array.shape[-1] not in _CHANNEL_COUNTS:
            raise ValueError(f"Image ({source}) has shape {array.shape}: expected 1, 2, 3 or 4 channels.")
        if array.shape[-1] == 1:
            array = array[..., 0]
    elif array.ndim != 2:
        raise ValueError(f"Image ({source}) must be 2-D (H, W) or 3-D (H, W, C) / (C, H, W), got shape {array.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"Image ({source}) is empty: {array.shape[1]} x {array.shape[0]} pixels.")
    array = _array_to_uint8(np.ascontiguousarray(array), source)
    return _pil_to_uint8(PIL.Image.fromarray(array), num_channels)  # infers L, LA, RGB or RGBA from the shape


def load_image(image, num_channels: int = 1) -> PIL.Image.Image:
    """
    Loads one image of any supported kind as an 8-bit PIL image with `num_channels` channels (1: "L", 3: "RGB").

    Args:
        image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str` or `os.PathLike`):
            A PIL image of any mode; an array `(H, W)`, `(H, W, C)` or `(C, H, W)` (uint8, uint16, bool, or float in
            [0, 1]); a tensor (channels first when ambiguous); or an image file path.

    Raises:
        ValueError: for a missing, unreadable or corrupt file, an empty image, or values it cannot interpret.
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            with PIL.Image.open(path) as opened:
                opened.load()  # decode now so truncated files fail here, not later
                image = PIL.ImageOps.exif_transpose(opened)
        except FileNotFoundError:
            raise ValueError(f"Image file not found: {path}") from None
        except (PIL.UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(f"Cannot read image file {path}: it is corrupt or not an image ({error}).") from error
    if isinstance(image, PIL.Image.Image):
        if image.width == 0 or image.height == 0:
            raise ValueError(f"Image is empty: {image.width} x {image.height} pixels.")
        return _pil_to_uint8(image, num_channels)
    if is_torch_available() and isinstance(image, torch.Tensor):
        # Tensors follow torch's channels-first convention whenever the first axis can be channels.
        channels_first = image.ndim == 3 and image.shape[0] in _CHANNEL_COUNTS
        return _array_to_pil(image.detach().cpu().numpy(), num_channels, "torch tensor", channels_first)
    if isinstance(image, np.ndarray):
        return _array_to_pil(image, num_channels, "numpy array")
    raise ValueError(
        f"Unsupported image type {type(image).__name__}: pass a PIL image, numpy array, torch tensor or file path."
    )


class CRNNImageProcessor(BaseImageProcessor):
    r"""
    Turns text-line crops into CRNN inputs: grayscale (or RGB), resized to `image_height`, scaled to [0, 1],
    normalised with `image_mean`/`image_std` (the paper's [-1, 1] by default), right-padded with zeros to a common
    width that is a multiple of `pad_width_multiple`.

    Args:
        image_height (`int`, *optional*, defaults to 32): Output height.
        num_channels (`int`, *optional*, defaults to 1): 1 for grayscale, 3 for RGB.
        resize_mode (`str`, *optional*, defaults to `"fixed"`):
            `"fixed"`: every image becomes `fixed_width` x `image_height` (the paper's 100 x 32).
            `"keep_aspect_ratio"`: height `image_height`, width scaled to keep the aspect ratio, clamped to
            [`min_width`, `max_width`] (wider images are squeezed, never cut).
        fixed_width (`int`, *optional*, defaults to 100): Width in `"fixed"` mode.
        min_width (`int`, *optional*, defaults to 16): Narrowest width in `"keep_aspect_ratio"` mode.
        max_width (`int`, *optional*, defaults to 800): Widest width in `"keep_aspect_ratio"` mode.
        resample (`PILImageResampling`, *optional*, defaults to `BILINEAR`): Resampling filter.
        image_mean (`float` or `list[float]`, *optional*, defaults to 0.5): Mean(s) subtracted after scaling.
        image_std (`float` or `list[float]`, *optional*, defaults to 0.5): Std(s) divided by after that.
        pad_width_multiple (`int`, *optional*, defaults to 4): The padded batch width is a multiple of this.
        edge_padding_multiple (`int`, *optional*):
            When set, each resized image is first right-padded to the next multiple of this width by repeating its
            last pixel column, and that padding counts as image content (it is part of `image_widths`). This is the
            preprocessing of models trained that way (EasyOCR pads each crop to a multiple of its 64-pixel height
            with its border column); narrow images are then widened by padding, not stretched to `min_width`. It
            depends on the image alone, so batching still never changes a result.

    Returns from `__call__`: a `BatchFeature` with `pixel_values` `(B, C, image_height, W_max)` float32 and
    `image_widths` `(B,)` int64, the width of each image before padding.
    """

    model_input_names = ["pixel_values", "image_widths"]

    def __init__(
        self,
        image_height: int = 32,
        num_channels: int = 1,
        resize_mode: str = "fixed",
        fixed_width: int = 100,
        min_width: int = 16,
        max_width: int = 800,
        resample: PILImageResampling | int = PILImageResampling.BILINEAR,
        image_mean: float | list[float] = 0.5,
        image_std: float | list[float] = 0.5,
        pad_width_multiple: int = 4,
        edge_padding_multiple: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"`resize_mode` must be one of {RESIZE_MODES}, got {resize_mode!r}.")
        if num_channels not in (1, 3):
            raise ValueError(f"`num_channels` must be 1 or 3, got {num_channels}.")
        if not 0 < min_width <= max_width:
            raise ValueError(f"Need 0 < min_width <= max_width, got {min_width} and {max_width}.")
        if min(image_height, fixed_width, pad_width_multiple) < 1:
            raise ValueError("`image_height`, `fixed_width` and `pad_width_multiple` must be positive.")
        valid_multiple = isinstance(edge_padding_multiple, int) and not isinstance(edge_padding_multiple, bool)
        if edge_padding_multiple is not None and not (valid_multiple and edge_padding_multiple >= 1):
            raise ValueError(f"`edge_padding_multiple` must be a positive int or None, got {edge_padding_multiple!r}.")
        self.image_height = image_height
        self.num_channels = num_channels
        self.resize_mode = resize_mode
        self.fixed_width = fixed_width
        self.min_width = min_width
        self.max_width = max_width
        self.resample = PILImageResampling(resample)
        self.image_mean = image_mean
        self.image_std = image_std
        self.pad_width_multiple = pad_width_multiple
        self.edge_padding_multiple = edge_padding_multiple

    def resized_width(self, width: int, height: int) -> int:
        """Width an image of `width` x `height` pixels is resized to (before any edge padding)."""
        if self.resize_mode == "fixed":
            return self.fixed_width
        scaled = round(width * self.image_height / height)
        return int(min(max(scaled, self.min_width), self.max_width))

    def target_width(self, width: int, height: int) -> int:
        """Valid width of an image of `width` x `height` pixels in the model input (its `image_widths` entry)."""
        resized = self.resized_width(width, height)
        if self.edge_padding_multiple is None:
            return resized
        return -(-resized // self.edge_padding_multiple) * self.edge_padding_multiple

    def _per_channel(self, values: float | Sequence[float], name: str) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if values.size == 1:
            values = np.repeat(values, self.num_channels)
        if values.size != self.num_channels:
            raise ValueError(f"`{name}` needs 1 or {self.num_channels} values, got {values.size}.")
        return values.reshape(1, self.num_channels, 1, 1)

    def preprocess(
        self,
        images,
        return_tensors: str | TensorType | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            images: One image or a list of images, each a PIL image (any mode), numpy array, torch tensor or file
                path (see [`load_image`]).
            return_tensors (`str`, *optional*, defaults to `"pt"`): `"pt"`, `"np"` or `None` (numpy).
            **kwargs: Any constructor argument, overriding it for this call (e.g. `resize_mode="fixed"`).
        """
        processor = self
        if kwargs:
            unknown = set(kwargs) - set(self.to_dict())
            if unknown:
                raise ValueError(f"Unknown image processor argument(s): {sorted(unknown)}.")
            processor = type(self)(**{**self.to_dict(), **kwargs})
        return processor._preprocess_batch(images, return_tensors)

    def _preprocess_batch(self, images, return_tensors) -> BatchFeature:
        if not isinstance(images, (list, tuple)):
            images = [images]
        return self.batch_resized([self.resize_image(image) for image in images], return_tensors)

    def resize_image(self, image) -> tuple[np.ndarray, int]:
        """
        The per-image half of preprocessing (what a data loader's workers can do): one image, in any form
        [`load_image`] takes, resized to the model's height.

        Returns:
            `(pixels, image_width)`: the `(image_height, w, num_channels)` uint8 pixels, and the image's valid width in
            the model input (`target_width`: `w`, or more with edge padding). [`batch_resized`] makes a batch of them.
        """
        image = load_image(image, self.num_channels)
        width = self.resized_width(image.width, image.height)
        pixels = np.asarray(image.resize((width, self.image_height), resample=self.resample))
        return pixels.reshape(self.image_height, width, self.num_channels), self.target_width(image.width, image.height)

    def batch_resized(self, resized: Sequence[tuple[np.ndarray, int]], return_tensors=None) -> BatchFeature:
        """
        The batch half of preprocessing: images from [`resize_image`], edge-padded to their valid widths, normalised
        and right-padded with zeros to a common width, as `__call__` returns them.
        """
        if len(resized) == 0:
            raise ValueError("No images were given.")
        widths = np.array([width for _, width in resized], dtype=np.int64)
        multiple = self.pad_width_multiple
        batch_width = int(-(-widths.max() // multiple) * multiple)

        batch = np.zeros((len(resized), self.image_height, batch_width, self.num_channels), dtype=np.uint8)
        for index, (image, _) in enumerate(resized):
            width = image.shape[1]
            batch[index, :, :width] = image
            # Edge padding (counted in `image_widths`): the last column repeated, as np.pad(mode="edge") would.
            batch[index, :, width : widths[index]] = image[:, -1:]
        # Normalised in place in the (B, H, W, C) layout, then viewed as (B, C, H, W): fewer passes over the batch.
        pixel_values = batch.astype(np.float32)
        pixel_values *= np.float32(1 / 255)
        pixel_values -= self._per_channel(self.image_mean, "image_mean").reshape(1, 1, 1, self.num_channels)
        pixel_values /= self._per_channel(self.image_std, "image_std").reshape(1, 1, 1, self.num_channels)
        # Padding is 0 after normalisation; the model ignores it anyway when given `image_widths`.
        for index, width in enumerate(widths.tolist()):
            pixel_values[index, :, width:] = 0.0
        pixel_values = np.ascontiguousarray(pixel_values.transpose(0, 3, 1, 2))  # a view when there is one channel

        tensor_type = None if return_tensors in (None, "np") else return_tensors
        data = {"pixel_values": pixel_values, "image_widths": widths}
        return BatchFeature(data=data, tensor_type=tensor_type if tensor_type is not None else "np")

    def to_dict(self):
        output = super().to_dict()
        output["resample"] = int(self.resample)
        return output


__all__ = ["CRNNImageProcessor", "load_image"]
