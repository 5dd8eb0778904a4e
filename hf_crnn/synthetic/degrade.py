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
Geometric and camera degradations of the `"scene"` style: curved baselines (here) and, through albumentations
(`hf_crnn.augmentation.RealCropAugmentation`, the augmentation of real training crops), loose and tight crops,
perspective and shear, blur, motion blur, low resolution, sensor noise, contrast changes, JPEG artefacts and
inverted polarity.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image


def curve_coverage(coverage: np.ndarray, rng: random.Random, max_curve: float) -> np.ndarray:
    """Bend the text of a `(H, W)` ink-coverage array along an arc (a random bulge up or down).

    The text is first shrunk vertically by twice the displacement, so that the bent text stays inside the image
    (a curve must not cut glyphs the label still names).
    """
    import cv2

    height, width = coverage.shape
    amplitude = rng.uniform(0.3, 1.0) * max_curve * height * rng.choice((-1.0, 1.0))
    if abs(amplitude) < 0.5:  # under half a pixel: nothing to bend
        return coverage
    xs = np.arange(width, dtype=np.float32)
    # A parabola through the middle: displacement 0 at the centre column, +-amplitude at the ends, then centred on
    # zero so both directions fit in the shrunk band.
    bend = amplitude * ((2.0 * xs / max(width - 1, 1) - 1.0) ** 2 - 0.5)
    squeeze = height / max(height - 2.0 * abs(amplitude), 1.0)
    center = (height - 1) / 2.0
    ys = np.arange(height, dtype=np.float32)[:, None]
    map_y = (center + (ys - center - bend[None, :]) * squeeze).astype(np.float32)
    map_x = np.broadcast_to(xs[None, :], (height, width)).astype(np.float32)
    return cv2.remap(coverage, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class SceneDegradation:
    """Camera and detector degradations of a rendered word, reproducible from a `random.Random`.

    Wraps `RealCropAugmentation` (albumentations) and reseeds it from `rng` for every image, so that the result is
    a pure function of the image and the `rng` state, then scales the result back to `image_height` (cropping and
    padding change the size) without going under `min_width`.

    Args:
        strength (`float`): See `RealCropAugmentation`; 0 returns images unchanged.
        image_height (`int`): Height of the returned images.
    """

    def __init__(self, strength: float = 1.0, image_height: int = 32):
        from ..augmentation import RealCropAugmentation

        self.strength = strength
        self.image_height = image_height
        self.augmentation = RealCropAugmentation(strength=strength, seed=0) if strength > 0 else None

    def __call__(self, image: Image.Image, rng: random.Random, min_width: int = 1) -> Image.Image:
        if self.augmentation is None:
            return image
        self.augmentation.transform.set_random_seed(rng.getrandbits(32))
        degraded = self.augmentation(image)
        if degraded.height != self.image_height or degraded.width < min_width:
            width = round(degraded.width * self.image_height / degraded.height)
            degraded = degraded.resize((max(width, min_width), self.image_height), Image.Resampling.BILINEAR)
        return degraded
