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
Glyph rendering: a text is rasterised as an ink-coverage mask, cropped to the image height through one perspective
transform (rotation, perspective, stretch, padding), and composited. The `"clean"` style composites it over a flat
colour with an illumination gradient, noise and blur. The `"scene"` style adds what photographed words show:
glyph fragments of neighbouring text at the crop edges, curved baselines, outline and shadow layers, textures and
colours from natural images as background, then camera and detector degradations (`degrade.py`).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from .backgrounds import BackgroundSource
from .degrade import SceneDegradation, curve_coverage
from .fonts import FontInfo, _cap_top, _load_font


RENDER_STYLES = ("clean", "scene")
"""`"clean"`: flat backgrounds, the original synthetic style (and the documented evaluation protocol's);
`"scene"`: the clean geometry plus the layers and degradations of `SceneConfig`."""


@dataclass(frozen=True)
class RenderConfig:
    """Appearance of the synthetic word images. Ranges are `(low, high)`, sampled uniformly per image.

    Args:
        image_height (`int`, defaults to 32): Height of every image, in pixels.
        font_size_range (`tuple[int, int]`, defaults to `(14, 30)`):
            Size (pixels per em) the text is rasterised at before being resampled to `image_height`: small sizes
            give soft, upsampled-looking text, large ones crisp text. Even sizes only, to bound the font cache.
        text_height_range (`tuple[float, float]`, defaults to `(0.6, 0.95)`):
            Fraction of the image height taken by the line box (top of the capitals to the bottom of the
            descenders, or the ink if it reaches further); the rest is vertical padding, split randomly.
        horizontal_padding_range (`tuple[float, float]`, defaults to `(0.0, 0.4)`):
            Padding on each side, in units of the image height.
        max_rotation (`float`, defaults to 3.0): Largest rotation of the text, in degrees (either direction). The
            crop grows to keep the rotated text inside it, as an axis-aligned detection box would.
        max_perspective (`float`, defaults to 0.08):
            Largest outward displacement of each corner of the crop, in units of the crop height; different
            displacements give a perspective (keystone) distortion. Outward only, so the text is never cut.
        aspect_ratio_range (`tuple[float, float]`, defaults to `(0.8, 1.25)`): Horizontal stretch of the text.
        min_pixels_per_character (`float`, defaults to 5.0):
            Minimum image width per character (counting repeated neighbours twice, since CTC needs a blank between
            them). The default CRNN emits one frame per 4 pixels and CTC needs at least one frame per label symbol,
            so narrower images (e.g. `"illicit"` in a condensed font) would have no valid alignment.
        min_contrast (`float`, defaults to 0.3):
            Minimum difference between the text and background luminance (ITU-R 601, as in PIL's `convert("L")`,
            which is what a grayscale model sees), on a 0-1 scale.
        gradient_probability (`float`, defaults to 0.5): Probability of an illumination gradient.
        max_gradient (`float`, defaults to 0.35): Largest darkening at the dark end of the gradient (multiplicative).
        noise_std_range (`tuple[float, float]`, defaults to `(0.0, 0.05)`): Std of the Gaussian pixel noise, 0-1 scale.
        blur_probability (`float`, defaults to 0.4): Probability of a Gaussian blur.
        blur_radius_range (`tuple[float, float]`, defaults to `(0.3, 1.0)`): Radius of that blur, in pixels.
    """

    image_height: int = 32
    font_size_range: tuple[int, int] = (14, 30)
    text_height_range: tuple[float, float] = (0.6, 0.95)
    horizontal_padding_range: tuple[float, float] = (0.0, 0.4)
    max_rotation: float = 3.0
    max_perspective: float = 0.08
    aspect_ratio_range: tuple[float, float] = (0.8, 1.25)
    min_pixels_per_character: float = 5.0
    min_contrast: float = 0.3
    gradient_probability: float = 0.5
    max_gradient: float = 0.35
    noise_std_range: tuple[float, float] = (0.0, 0.05)
    blur_probability: float = 0.4
    blur_radius_range: tuple[float, float] = (0.3, 1.0)

    def __post_init__(self):
        if self.image_height < 8:
            raise ValueError(f"`image_height` must be at least 8 pixels, got {self.image_height}.")
        ranges = {
            "font_size_range": (self.font_size_range, 4, None),
            "text_height_range": (self.text_height_range, 0.05, 1.0),
            "horizontal_padding_range": (self.horizontal_padding_range, 0.0, None),
            "aspect_ratio_range": (self.aspect_ratio_range, 0.1, None),
            "noise_std_range": (self.noise_std_range, 0.0, 1.0),
            "blur_radius_range": (self.blur_radius_range, 0.0, None),
        }
        for name, (value, minimum, maximum) in ranges.items():
            if len(value) != 2 or not minimum <= value[0] <= value[1] or (maximum is not None and value[1] > maximum):
                bounds = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
                raise ValueError(f"`{name}` must be a (low, high) pair with low <= high, both {bounds}; got {value}.")
        for name in ("gradient_probability", "blur_probability", "min_contrast", "max_gradient"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], got {getattr(self, name)}.")
        if not 0.0 <= self.max_rotation <= 45.0:
            raise ValueError(f"`max_rotation` must be in [0, 45] degrees, got {self.max_rotation}.")
        if not 0.0 <= self.max_perspective <= 1.0:
            raise ValueError(f"`max_perspective` must be in [0, 1], got {self.max_perspective}.")
        if self.min_pixels_per_character < 0:
            raise ValueError(f"`min_pixels_per_character` must be >= 0, got {self.min_pixels_per_character}.")


@dataclass(frozen=True)
class SceneConfig:
    """The extra layers of the `"scene"` style, on top of a `RenderConfig`'s geometry and photometry.

    Args:
        neighbour_probability (`float`, defaults to 0.4): Probability that other text continues on either side of
            the word (1-3 characters, sometimes after a space), so that a loose crop shows fragments of it at its
            edges, as crops from a detector do. The label stays the word alone.
        curve_probability (`float`, defaults to 0.15): Probability of a curved (arched) baseline.
        max_curve (`float`, defaults to 0.15): Largest vertical displacement of the curve, in image heights; the
            text is shrunk vertically so that it stays inside the image.
        outline_probability (`float`, defaults to 0.15): Probability of a border (outline) of another colour.
        shadow_probability (`float`, defaults to 0.2): Probability of a drop shadow.
        texture_probability (`float`, defaults to 0.85): Probability of a textured background (a natural-image
            texture when backgrounds are available, a generated one otherwise) rather than a flat colour.
        texture_contrast_range (`tuple[float, float]`, defaults to `(0.15, 0.6)`): Contrast kept of the texture
            (1: as photographed); lower values keep the word legible on busy textures.
        degradation_strength (`float`, defaults to 0.7): Strength of the camera and detector degradations
            (`RealCropAugmentation`: loose/tight crops, perspective, shear, blur, motion blur, low resolution, noise,
            contrast, JPEG, inversion); 0 turns them off.
    """

    neighbour_probability: float = 0.4
    curve_probability: float = 0.15
    max_curve: float = 0.15
    outline_probability: float = 0.15
    shadow_probability: float = 0.2
    texture_probability: float = 0.85
    texture_contrast_range: tuple[float, float] = (0.15, 0.6)
    degradation_strength: float = 0.7

    def __post_init__(self):
        for name in (
            "neighbour_probability",
            "curve_probability",
            "outline_probability",
            "shadow_probability",
            "texture_probability",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], got {getattr(self, name)}.")
        if not 0.0 <= self.max_curve <= 0.3:
            raise ValueError(f"`max_curve` must be in [0, 0.3] image heights, got {self.max_curve}.")
        low, high = self.texture_contrast_range
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(
                f"`texture_contrast_range` must be (low, high) with 0 <= low <= high <= 1, got {(low, high)}."
            )
        if not 0.0 <= self.degradation_strength <= 2.0:
            raise ValueError(f"`degradation_strength` must be in [0, 2], got {self.degradation_strength}.")


def _luminance(rgb: Sequence[float]) -> float:
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0


def _pick_colors(rng: random.Random, min_contrast: float) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Random (text, background) RGB colours whose luminances differ by at least `min_contrast`."""
    background = tuple(rng.randrange(256) for _ in range(3))
    text = _contrasting_color(rng, background, min_contrast, lambda: tuple(rng.randrange(256) for _ in range(3)))
    return text, background


def _contrasting_color(rng, background, min_contrast, draw_color, attempts: int = 16):
    """A colour from `draw_color()` whose luminance differs from `background`'s by `min_contrast`, by rejection
    sampling."""
    for _ in range(attempts):
        text = draw_color()
        if abs(_luminance(text) - _luminance(background)) >= min_contrast:
            return text
    # Rejection sampling failed (mid-grey backgrounds leave little room): fall back to the extreme that contrasts
    # most, which always satisfies min_contrast <= 0.5 and is the best possible otherwise.
    return (0, 0, 0) if _luminance(background) >= 0.5 else (255, 255, 255)


def _ctc_min_width(text: str, pixels_per_character: float) -> int:
    repeats = sum(first == second for first, second in zip(text, text[1:]))
    return math.ceil(pixels_per_character * (len(text) + repeats))


def _text_coverage(
    text: str, path: str, rng: random.Random, config: RenderConfig, context: tuple[str, str] = ("", "")
) -> Image.Image:
    """Steps 1-4 of the rendering: the ink coverage (mode "L", 255 = ink) of `text` at the final size.

    `context` is text drawn before and after `text` on the same line; the crop is placed around `text` alone, so
    only what falls inside its padding shows, as glyph fragments at the edges.
    """
    height = config.image_height
    prefix, suffix = context

    # 1. Rasterise the text as an ink-coverage mask on a small canvas, at a random font size close to the output
    #    size: the final resampling then up- or down-scales a little, which varies stroke sharpness the way crops of
    #    different resolutions do, at no extra cost.
    low_size, high_size = config.font_size_range
    font_size = low_size + 2 * rng.randint(0, (high_size - low_size) // 2)
    face = _load_font(path, font_size)
    line = prefix + text + suffix
    ink_left, ink_top, ink_right, ink_bottom = face.getbbox(line, anchor="ls")
    mask = Image.new("L", (ink_right - ink_left + 2, ink_bottom - ink_top + 2), 0)
    ImageDraw.Draw(mask).text((1 - ink_left, 1 - ink_top), line, font=face, fill=255, anchor="ls")

    # 2. The line box of `text`, in mask coordinates: from the top of the capitals (or the ink, if higher) to the
    #    bottom of the descenders (or the ink). Scaling the line box rather than the ink to the image height keeps
    #    x-height letters at their usual size: a tight crop of "ace" would otherwise look like "ACE".
    if prefix or suffix:
        offset = face.getlength(prefix)
        text_left, text_top, text_right, text_bottom = face.getbbox(text, anchor="ls")
        line_left, line_right = 1 - ink_left + offset + text_left, 1 - ink_left + offset + text_right
    else:
        text_top, text_bottom = ink_top, ink_bottom
        line_left, line_right = 1, ink_right - ink_left + 1
    line_top = min(text_top, _cap_top(path, font_size)) - ink_top + 1
    line_bottom = max(text_bottom, face.getmetrics()[1]) - ink_top + 1
    line_width, line_height = line_right - line_left, line_bottom - line_top
    center_x, center_y = (line_left + line_right) / 2, (line_top + line_bottom) / 2

    # 3. The crop, in a frame aligned with the rotated text: the axis-aligned box of the rotated line box (what a
    #    detector would return), plus random padding, plus outward corner jitter for perspective.
    angle = math.radians(rng.uniform(-config.max_rotation, config.max_rotation))
    cos, sin = math.cos(angle), abs(math.sin(angle))
    box_width = line_width * cos + line_height * sin
    box_height = line_width * sin + line_height * cos
    crop_height = box_height / rng.uniform(*config.text_height_range)
    top = (crop_height - box_height) * rng.random() + box_height / 2
    bottom = crop_height - top
    left_padding = crop_height * rng.uniform(*config.horizontal_padding_range)
    right_padding = crop_height * rng.uniform(*config.horizontal_padding_range)
    jitter = config.max_perspective * crop_height
    if prefix or suffix:
        # Show only fragments of the neighbours: the crop may reach past the gap by a third of a glyph at most, or
        # the image would show whole characters that the label does not name.
        reach = 0.35 * 0.5 * font_size + jitter
        if prefix:
            gap = line_left - (1 - ink_left + face.getbbox(prefix, anchor="ls")[2])
            left_padding = min(left_padding, max(0.0, gap + reach - jitter))
        if suffix:
            suffix_left = 1 - ink_left + face.getlength(prefix + text) + face.getbbox(suffix, anchor="ls")[0]
            right_padding = min(right_padding, max(0.0, suffix_left - line_right + reach - jitter))
    left = box_width / 2 + left_padding
    right = box_width / 2 + right_padding
    corners = [  # (x, y) relative to the text centre, in the order PIL's QUAD transform expects
        (-left - jitter * rng.random(), -top - jitter * rng.random()),  # upper left
        (-left - jitter * rng.random(), bottom + jitter * rng.random()),  # lower left
        (right + jitter * rng.random(), bottom + jitter * rng.random()),  # lower right
        (right + jitter * rng.random(), -top - jitter * rng.random()),  # upper right
    ]
    rotation_cos, rotation_sin = math.cos(angle), math.sin(angle)
    quad = []
    for x, y in corners:
        quad += [center_x + x * rotation_cos - y * rotation_sin, center_y + x * rotation_sin + y * rotation_cos]

    # 4. One resampling step maps that quadrilateral onto the output rectangle. Ink outside the mask reads as 0 (no
    #    ink), so the crop may safely extend beyond the mask.
    width = round((left + right) / crop_height * height * rng.uniform(*config.aspect_ratio_range))
    width = max(width, _ctc_min_width(text, config.min_pixels_per_character), height // 2)
    return mask.transform((width, height), Image.Transform.QUAD, quad, resample=Image.Resampling.BILINEAR)


def _illumination_gradient(image: np.ndarray, rng: random.Random, max_gradient: float) -> np.ndarray:
    height, width = image.shape[:2]
    direction = rng.uniform(0.0, 2.0 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xs * math.cos(direction) + ys * math.sin(direction)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    return image * (1.0 - rng.uniform(0.0, max_gradient) * ramp)[..., None]


def _to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))  # (H, W, 3) uint8: RGB


def render_text(
    text: str, font: FontInfo | str | os.PathLike, rng: random.Random, config: RenderConfig | None = None
) -> Image.Image:
    """Render one word image in the `"clean"` style.

    Args:
        text (`str`): The text to draw (one line).
        font (`FontInfo`, `str` or `os.PathLike`): The font (file) to draw it with.
        rng (`random.Random`): Source of all the randomness of the image; the same state gives the same image.
        config (`RenderConfig`, *optional*): Appearance settings; defaults to `RenderConfig()`.

    Returns:
        `PIL.Image.Image`: an RGB image of height `config.image_height` and a width that follows the text.
    """
    if not text or text.isspace():
        raise ValueError(f"Cannot render an empty text, got {text!r}.")
    config = config or RenderConfig()
    path = font.path if isinstance(font, FontInfo) else os.fspath(font)
    coverage = _text_coverage(text, path, rng, config)

    # 5. Colours, illumination and noise, in float32 at the final size (cheap: a few thousand pixels).
    np_rng = np.random.default_rng(rng.getrandbits(64))
    text_color, background_color = _pick_colors(rng, config.min_contrast)
    alpha = np.asarray(coverage, dtype=np.float32)[..., None] / 255.0
    image = (1.0 - alpha) * np.asarray(background_color, np.float32) + alpha * np.asarray(text_color, np.float32)
    return _illumination_noise_and_blur(image, rng, np_rng, config)


def _illumination_noise_and_blur(
    image: np.ndarray, rng: random.Random, np_rng: np.random.Generator, config: RenderConfig
) -> Image.Image:
    """The photometric end of both styles: an illumination gradient, Gaussian noise and blur, per `config`."""
    if rng.random() < config.gradient_probability:
        image = _illumination_gradient(image, rng, config.max_gradient)
    noise_std = rng.uniform(*config.noise_std_range)
    if noise_std > 0:
        image += np_rng.normal(0.0, 255.0 * noise_std, size=image.shape).astype(np.float32)
    result = _to_image(image)

    if rng.random() < config.blur_probability:
        result = result.filter(ImageFilter.GaussianBlur(rng.uniform(*config.blur_radius_range)))
    return result


def render_scene_text(
    text: str,
    font: FontInfo | str | os.PathLike,
    rng: random.Random,
    config: RenderConfig | None = None,
    scene: SceneConfig | None = None,
    backgrounds: BackgroundSource | None = None,
    degradation: SceneDegradation | None = None,
    context: tuple[str, str] = ("", ""),
) -> Image.Image:
    """Render one word image in the `"scene"` style: the clean geometry, then curve, natural-image background and
    colours, shadow and outline layers, the clean photometry, and camera/detector degradations.

    Args:
        text, font, rng, config: See `render_text`.
        scene (`SceneConfig`, *optional*): The extra layers; defaults to `SceneConfig()`.
        backgrounds (`BackgroundSource`, *optional*): Textures and colours; defaults to `BackgroundSource()` (the
            default background folders, or generated textures when they are empty).
        degradation (`SceneDegradation`, *optional*): Defaults to one of strength `scene.degradation_strength`.
        context (`tuple[str, str]`, *optional*): Text drawn before and after `text` (not part of the label), whose
            glyphs may show as fragments at the crop edges.

    Returns:
        `PIL.Image.Image`: an RGB image of height `config.image_height`.
    """
    import cv2

    if not text or text.isspace():
        raise ValueError(f"Cannot render an empty text, got {text!r}.")
    config = config or RenderConfig()
    scene = scene or SceneConfig()
    backgrounds = backgrounds or BackgroundSource()
    degradation = degradation or SceneDegradation(scene.degradation_strength, config.image_height)
    path = font.path if isinstance(font, FontInfo) else os.fspath(font)
    coverage = np.asarray(_text_coverage(text, path, rng, config, context), dtype=np.float32) / 255.0
    if rng.random() < scene.curve_probability:
        coverage = curve_coverage(coverage, rng, scene.max_curve)
    height, width = coverage.shape
    np_rng = np.random.default_rng(rng.getrandbits(64))

    # Background: a natural texture, its contrast lowered and tinted towards a natural colour, or a flat colour.
    base_color = np.asarray(backgrounds.color(rng), np.float32)
    if rng.random() < scene.texture_probability:
        texture = backgrounds.texture(rng, width, height)
        mean = texture.mean(axis=(0, 1))
        image = mean + (texture - mean) * rng.uniform(*scene.texture_contrast_range)
        tint = rng.uniform(0.0, 0.5)
        image = (1.0 - tint) * image + tint * base_color
    else:
        image = np.broadcast_to(base_color, (height, width, 3)).copy()

    # Text colour: a natural colour that contrasts with the background where the ink is.
    #    A busy background needs more contrast: the luminance spread under the text is added to `min_contrast`.
    weights = coverage / max(float(coverage.sum()), 1e-6)
    under_text = (image * weights[..., None]).sum(axis=(0, 1))
    luminance = image @ np.float32([0.299, 0.587, 0.114]) / 255.0
    spread = math.sqrt(max(float((weights * (luminance - _luminance(under_text)) ** 2).sum()), 0.0))
    min_contrast = min(0.6, config.min_contrast + 2.0 * spread)
    text_color = _contrasting_color(rng, under_text, min_contrast, lambda: backgrounds.color(rng))
    text_color = np.asarray(text_color, np.float32)

    if rng.random() < scene.shadow_probability:
        shift = np.float32([[1, 0, rng.uniform(-2.0, 2.0)], [0, 1, rng.uniform(0.5, 2.5)]])
        shadow = cv2.warpAffine(coverage, shift, (width, height))
        shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(0.3, 1.5))
        image = image * (1.0 - rng.uniform(0.4, 0.9) * shadow[..., None])  # a darker copy behind the text
    if rng.random() < scene.outline_probability:
        size = 2 * rng.randint(1, 2) + 1
        border = cv2.dilate(coverage, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))[..., None]
        border_color = _contrasting_color(rng, text_color, config.min_contrast, lambda: backgrounds.color(rng))
        image = (1.0 - border) * image + border * np.asarray(border_color, np.float32)
    alpha = coverage[..., None]
    image = ((1.0 - alpha) * image + alpha * text_color).astype(np.float32)

    result = _illumination_noise_and_blur(image, rng, np_rng, config)
    degraded = degradation(result, rng, min_width=_ctc_min_width(text, config.min_pixels_per_character))
    # Darkening, contrast loss and a dark gradient can stack up until the word is gone, and an image without its
    # text is a wrong label: below a floor of contrast, keep the undegraded image, stretched to full contrast.
    if _contrast_spread(degraded) >= _MIN_SCENE_SPREAD:
        return degraded
    return ImageOps.autocontrast(result, cutoff=1)


# Smallest spread (95th minus 5th percentile of the grey levels) of a scene image: under it the word is barely
# visible, even to a person.
_MIN_SCENE_SPREAD = 40


def _contrast_spread(image: Image.Image) -> float:
    low, high = np.percentile(np.asarray(image.convert("L")), (5, 95))
    return float(high - low)
