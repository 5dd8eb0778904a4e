# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Training-time augmentation of real word crops, built on albumentations (`pip install "hf-crnn[train]"`).

Real crops from a few thousand photographs are too few to fine-tune on for long without overfitting; each epoch
sees them again through the degradations a camera and a text detector add: perspective and small rotations (loose
detector boxes, oblique views), tight or loose cropping, blur and motion blur, low resolution, sensor noise, JPEG
artefacts, lighting and contrast changes, and inverted polarity.

```python
>>> from hf_crnn.augmentation import RealCropAugmentation
>>> augment = RealCropAugmentation(seed=0)
>>> augmented = augment(pil_image)  # a PIL image of the same mode, its size may change slightly
```
"""

from __future__ import annotations

import numpy as np
import PIL.Image

AUGMENTATION_PRESETS = ("none", "real")


def _require_albumentations():
    try:
        import albumentations
        import cv2
    except ImportError as error:  # an optional dependency: say how to get it
        raise ImportError(
            "Augmentation needs albumentations: pip install 'hf-crnn[train]' (or pip install albumentations)."
        ) from error
    return albumentations, cv2


class RealCropAugmentation:
    """
    Random camera and detector degradations for word crops: a `Callable[[PIL.Image.Image], PIL.Image.Image]` for
    [`TextRecognitionTransform`] or [`augment_dataset`].

    Args:
        strength (`float`, *optional*, defaults to 1.0): Scales how often each degradation is applied (0 turns
            them all off; 1 is the preset tuned on a validation split carved from the training crops).
        seed (`int`, *optional*): Seed of the random draws (default: fresh randomness).
    """

    def __init__(self, strength: float = 1.0, seed: int | None = None):
        if not 0.0 <= strength <= 2.0:
            raise ValueError(f"`strength` must be in [0, 2], got {strength}.")
        albumentations, cv2 = _require_albumentations()
        A = albumentations

        def p(probability: float) -> float:
            return min(1.0, probability * strength)

        replicate = dict(border_mode=cv2.BORDER_REPLICATE)
        self.transform = A.Compose(
            [
                # Loose or tight detector boxes: grow by up to 10% or cut up to 4% of each side.
                A.CropAndPad(percent=(-0.04, 0.10), keep_size=False, p=p(0.3), **replicate),
                A.Perspective(scale=(0.02, 0.06), keep_size=True, p=p(0.25), **replicate),
                A.Affine(rotate=(-4, 4), shear=(-12, 12), scale=(0.92, 1.05), p=p(0.3), **replicate),
                A.OneOf(
                    [
                        A.GaussianBlur(blur_limit=(3, 5)),
                        A.MotionBlur(blur_limit=(3, 7)),
                        A.Downscale(scale_range=(0.35, 0.7)),
                    ],
                    p=p(0.3),
                ),
                A.GaussNoise(std_range=(0.02, 0.08), p=p(0.2)),
                A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.4, p=p(0.4)),
                A.ImageCompression(quality_range=(30, 90), p=p(0.2)),
                A.InvertImg(p=p(0.1)),
            ],
            seed=seed,
        )

    def __call__(self, image: PIL.Image.Image) -> PIL.Image.Image:
        if not isinstance(image, PIL.Image.Image):
            raise ValueError(f"RealCropAugmentation takes PIL images, got {type(image).__name__}.")
        mode = image.mode if image.mode in ("L", "RGB") else "RGB"
        pixels = np.asarray(image.convert(mode))
        augmented = self.transform(image=pixels)["image"]
        return PIL.Image.fromarray(np.ascontiguousarray(augmented), mode=mode)


def make_augmentation(name: str, seed: int | None = None):
    """The augmentation called `name` (one of `AUGMENTATION_PRESETS`), or None for `"none"`."""
    if name not in AUGMENTATION_PRESETS:
        raise ValueError(f"Unknown augmentation {name!r}: use one of {AUGMENTATION_PRESETS}.")
    return None if name == "none" else RealCropAugmentation(seed=seed)
