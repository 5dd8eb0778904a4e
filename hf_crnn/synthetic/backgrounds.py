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
Backgrounds and colours of the `"scene"` style, from natural images without text.

Textures are read from background folders (PNG/JPEG photos, or GIMP `.pat` patterns): by default
`~/.local/share/hf-crnn/backgrounds` (or the folders in `HF_CRNN_BACKGROUND_DIRS`, separated by `:`). The photo
patterns of Debian's `gimp-data` package (wood, stone, paper, fabric, water, sky, plants...) are a good set; see
docs/data.md for the install command. Without any texture, backgrounds are generated (smooth noise and colour
gradients) and colours drawn uniformly, so everything runs on a bare machine.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import random
import struct
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .fonts import find_files, resolve_dirs

logger = logging.getLogger(__name__)

DEFAULT_BACKGROUND_DIRS = ("~/.local/share/hf-crnn/backgrounds",)
"""Folders searched (recursively) for background textures when none are given and `HF_CRNN_BACKGROUND_DIRS` is
unset."""

BACKGROUND_DIRS_ENV_VAR = "HF_CRNN_BACKGROUND_DIRS"

BACKGROUND_EXTENSIONS = (".png", ".jpg", ".jpeg", ".pat")

# Textures are kept at most this large (longest side): a background is a crop of a few dozen pixels, and small
# arrays keep every worker's memory low.
_MAX_TEXTURE_SIDE = 512


def read_gimp_pattern(path: str | os.PathLike) -> Image.Image:
    """Read a GIMP pattern (`.pat`: a big-endian header with the size, depth and name, then raw pixels).

    Raises:
        `ValueError`: when the file is not a GIMP pattern.
    """
    with open(path, "rb") as file:
        data = file.read()
    if len(data) < 24 or data[20:24] != b"GPAT":
        raise ValueError(f"{os.fspath(path)!r} is not a GIMP pattern (.pat) file.")
    header_size, _version, width, height, depth = struct.unpack(">5I", data[:20])
    modes = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
    if depth not in modes or len(data) < header_size + width * height * depth:
        raise ValueError(f"{os.fspath(path)!r}: unsupported or truncated GIMP pattern (depth {depth}).")
    pixels = data[header_size : header_size + width * height * depth]
    return Image.frombytes(modes[depth], (width, height), pixels)


def _background_dirs_or_default(background_dirs) -> tuple[str, ...]:
    return resolve_dirs(background_dirs, BACKGROUND_DIRS_ENV_VAR, DEFAULT_BACKGROUND_DIRS)


def find_backgrounds(background_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> list[str]:
    """Texture files (`.png`, `.jpg`, `.jpeg`, `.pat`) under `background_dirs`, sorted; missing folders are skipped.

    Defaults to the folders in `HF_CRNN_BACKGROUND_DIRS` (separated by `os.pathsep`) or `DEFAULT_BACKGROUND_DIRS`.
    Use photos without text: a background with letters would show characters that are not in the label.
    """
    return sorted(find_files(_background_dirs_or_default(background_dirs), BACKGROUND_EXTENSIONS))


@functools.lru_cache(maxsize=8)
def _load_textures(paths: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    textures = []
    for path in paths:
        try:
            image = read_gimp_pattern(path) if path.lower().endswith(".pat") else Image.open(path)
            image = image.convert("RGB")
        except (OSError, ValueError) as error:
            logger.warning("Skipping background %s: %s", path, error)
            continue
        image.thumbnail((_MAX_TEXTURE_SIDE, _MAX_TEXTURE_SIDE))
        if min(image.size) >= 8:
            textures.append(np.asarray(image, dtype=np.float32))
    return tuple(textures)


class BackgroundSource:
    """Backgrounds and colours for the `"scene"` style, drawn from a `random.Random`.

    Args:
        background_dirs (`str`, `os.PathLike` or a sequence of them, *optional*): Folders of texture images, see
            `find_backgrounds`. With none found, backgrounds are generated and colours drawn uniformly.
    """

    def __init__(self, background_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None = None):
        self.paths = find_backgrounds(background_dirs)
        self.textures = _load_textures(tuple(self.paths))
        if not self.textures:
            logger.info(
                "No background texture under %s: using generated textures.",
                list(_background_dirs_or_default(background_dirs)),
            )

    def fingerprint(self) -> str:
        """Hash of the texture files (paths and sizes), part of the samples' identity."""
        state = "\n".join(f"{path}:{os.path.getsize(path)}" for path in self.paths)
        return hashlib.sha256(state.encode("utf-8")).hexdigest()[:16]

    def color(self, rng: random.Random) -> tuple[int, int, int]:
        """A colour: a pixel of a natural texture (the colours of real surfaces), else uniform RGB."""
        if not self.textures:
            return tuple(rng.randrange(256) for _ in range(3))
        texture = rng.choice(self.textures)
        pixel = texture[rng.randrange(texture.shape[0]), rng.randrange(texture.shape[1])]
        return tuple(int(value) for value in pixel)

    def texture(self, rng: random.Random, width: int, height: int) -> np.ndarray:
        """A `(height, width, 3)` float32 texture in [0, 255]: a scaled, rotated, wrapped crop of a natural texture,
        or a generated one (smooth noise between two colours) when there is none."""
        import cv2

        if not self.textures:
            return self._generated(rng, width, height)
        texture = rng.choice(self.textures)
        # Output pixel (x, y) reads texture pixel M @ (x, y, 1): a random scale (zoom), angle and offset; the
        # patterns tile seamlessly, so wrapping at the borders leaves no seam on most of them.
        scale = rng.uniform(0.15, 0.8) * min(texture.shape[:2]) / height  # the crop spans 15-80% of the texture
        angle = rng.uniform(0, 2 * math.pi) if rng.random() < 0.3 else 0.0
        cos, sin = scale * math.cos(angle), scale * math.sin(angle)
        offset_x, offset_y = rng.uniform(0, texture.shape[1]), rng.uniform(0, texture.shape[0])
        matrix = np.array([[cos, -sin, offset_x], [sin, cos, offset_y]], dtype=np.float32)
        return cv2.warpAffine(
            texture,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_WRAP,
        )

    @staticmethod
    def _generated(rng: random.Random, width: int, height: int) -> np.ndarray:
        import cv2

        # Smooth noise: a coarse random grid upsampled bicubically, mixing two random colours.
        grid = np.random.default_rng(rng.getrandbits(64)).random((rng.randint(2, 6), rng.randint(2, 12)))
        weight = cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        first, second = (np.asarray([rng.randrange(256) for _ in range(3)], np.float32) for _ in range(2))
        return np.clip(first + np.clip(weight, 0, 1)[..., None] * (second - first), 0, 255)
