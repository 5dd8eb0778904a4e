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
Fonts for the synthetic word images: discovery (every installed font that draws the whole charset) and the named
train/held-out split by family (`HELD_OUT_FONT_FAMILIES`), so that evaluation measures generalisation to unseen
typefaces rather than to unseen words only.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from .text import DEFAULT_CHARSET


logger = logging.getLogger(__name__)

DEFAULT_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
"""Folders searched (recursively) for fonts when none are given and `HF_CRNN_FONT_DIRS` is unset."""

FONT_DIRS_ENV_VAR = "HF_CRNN_FONT_DIRS"
"""Environment variable overriding `DEFAULT_FONT_DIRS`: folders separated by `os.pathsep`."""

FONT_EXTENSIONS = (".ttf", ".otf", ".ttc")

FONT_SPLITS = ("train", "eval", "all")

# The font families held out of training for evaluation (`fonts="eval"`), by name: typefaces the model never sees,
# and the same ones on every machine that has them. Every family not named here is a training family. These are the
# five the demo checkpoint was evaluated on; fonts-dejavu-core alone provides two (DejaVu Sans Mono, DejaVu Serif),
# fonts-liberation and fonts-urw-base35 the others.
HELD_OUT_FONT_FAMILIES = ("C059", "DejaVu Sans Mono", "DejaVu Serif", "Liberation Mono", "Nimbus Sans")

# Families whose letters are not meant for running text: math fonts draw letters for formulas (and DejaVu Math TeX
# Gyre, installed with fonts-dejavu-core, would also leak the held-out-able DejaVu Serif design into training);
# symbol/dingbat/emoji/icon fonts usually fail the glyph-coverage check, except those that put their pictures on the
# ASCII code points, like URW's Dingbats clone D050000L (fonts-urw-base35).
_EXCLUDED_FAMILY_WORDS = ("math", "symbol", "dingbat", "emoji", "icon", "d050000l")

# Code point of plane 15's private use area: no font maps it, so it renders as the font's ".notdef" glyph, the
# reference against which `_missing_characters` detects characters a font does not cover.
_UNMAPPED_CHARACTER = "\U000f0000"

# The basic layout engine is enough for Latin text, is several times faster than raqm for short words and, unlike
# raqm, does not depend on an optional system library whose version could change the rendered pixels.
_LAYOUT_ENGINE = ImageFont.Layout.BASIC

@dataclass(frozen=True, order=True)
class FontInfo:
    """A font file usable for rendering.

    Attributes:
        family (`str`): Family name reported by the font (e.g. `"DejaVu Sans"`); the unit of the train/eval split.
        style (`str`): Style name reported by the font (e.g. `"Bold Oblique"`).
        path (`str`): Absolute path of the font file.
    """

    family: str
    style: str
    path: str

    @property
    def name(self) -> str:
        """File name of the font, as stored in the `font` column of the synthetic datasets."""
        return os.path.basename(self.path)


def resolve_dirs(
    dirs: str | os.PathLike | Sequence[str | os.PathLike] | None, env_var: str, defaults: Sequence[str]
) -> tuple[str, ...]:
    """Absolute folders from `dirs` (one or several); when None, from `env_var` (`os.pathsep`-separated), else
    `defaults`."""
    if dirs is None:
        from_env = os.environ.get(env_var)
        dirs = from_env.split(os.pathsep) if from_env else defaults
    elif isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    return tuple(os.path.abspath(os.path.expanduser(os.fspath(folder))) for folder in dirs if folder)


def find_files(dirs: Sequence[str], extensions: tuple[str, ...]) -> set[str]:
    """Real paths of the files under `dirs` (recursively) whose names end with one of `extensions` (any case)."""
    paths = set()
    for folder in dirs:
        for path in glob.glob(os.path.join(glob.escape(folder), "**", "*"), recursive=True):
            if path.lower().endswith(extensions) and os.path.isfile(path):
                paths.add(os.path.realpath(path))
    return paths


def _font_dirs_or_default(font_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None) -> tuple[str, ...]:
    return resolve_dirs(font_dirs, FONT_DIRS_ENV_VAR, DEFAULT_FONT_DIRS)


def _glyph_signature(font: ImageFont.FreeTypeFont, character: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(character)
    return mask.size, bytes(mask)


def _missing_characters(font: ImageFont.FreeTypeFont, characters: str) -> str:
    """Characters of `characters` that `font` draws as its ".notdef" glyph or as nothing at all."""
    notdef = _glyph_signature(font, _UNMAPPED_CHARACTER)
    missing = []
    for character in dict.fromkeys(characters):
        if character.isspace():
            continue
        size, pixels = _glyph_signature(font, character)
        if (size, pixels) == notdef or 0 in size or not any(pixels):
            missing.append(character)
    return "".join(missing)


@functools.lru_cache(maxsize=32)
def _discover_fonts(font_dirs: tuple[str, ...], charset: str) -> tuple[FontInfo, ...]:
    fonts = {}
    for path in sorted(find_files(font_dirs, FONT_EXTENSIONS)):
        try:
            font = ImageFont.truetype(path, size=24, layout_engine=_LAYOUT_ENGINE)
        except OSError as error:  # corrupt file, bitmap-only font, unsupported format...
            logger.debug("Skipping font %s: %s", path, error)
            continue
        missing = _missing_characters(font, charset)
        if missing:
            # Symbol, dingbat and non-Latin fonts end up here: rendering with them would draw boxes or the wrong
            # glyphs under a correct-looking label.
            logger.debug("Skipping font %s: no glyph for %r", path, missing)
            continue
        family, style = font.getname()
        family, style = family or Path(path).stem, style or "Regular"
        if any(word in family.lower() for word in _EXCLUDED_FAMILY_WORDS):
            logger.debug("Skipping font %s: family %r is not a text family", path, family)
            continue
        # The same face is often installed twice (e.g. a .ttf and an .otf build); keep the first path only.
        fonts.setdefault((family, style), FontInfo(family=family, style=style, path=path))
    return tuple(sorted(fonts.values()))


def find_fonts(
    font_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None = None, charset: str = DEFAULT_CHARSET
) -> list[FontInfo]:
    """Find the fonts that can render every character of `charset`.

    Font files (`.ttf`, `.otf`, `.ttc`) are searched recursively under `font_dirs`; a font is kept only if it has a
    real glyph for every non-space character of `charset`, which filters out symbol, dingbat and other-script fonts.

    Args:
        font_dirs (`str`, `os.PathLike` or a sequence of them, *optional*):
            Folders to search. Defaults to the folders in the `HF_CRNN_FONT_DIRS` environment variable (separated by
            `os.pathsep`) or, when it is unset, to `DEFAULT_FONT_DIRS` (the system font folders).
        charset (`str`, *optional*, defaults to `DEFAULT_CHARSET`):
            Characters every returned font must cover.

    Returns:
        `list[FontInfo]`: the usable fonts, sorted by family, style and path; one entry per (family, style).
    """
    return list(_discover_fonts(_font_dirs_or_default(font_dirs), charset))


def split_fonts(
    fonts: Sequence[FontInfo], held_out_families: Sequence[str] | None = None
) -> tuple[list[FontInfo], list[FontInfo]]:
    """Split fonts into training and held-out evaluation fonts by family name: an explicit, stable rule.

    Fonts whose family is one of `held_out_families` (default [`HELD_OUT_FONT_FAMILIES`]) are held out for
    evaluation; every other family is a training family. Whole families go to one side, so evaluation fonts are
    typefaces the model never saw, and installing fonts of other families only widens training: the held-out side
    changes only when a font of a named family is installed or removed.

    Args:
        fonts (`Sequence[FontInfo]`): Fonts to split, e.g. from `find_fonts`.
        held_out_families (`Sequence[str]`, *optional*): Family names to hold out, as `FontInfo.family` reports
            them. Defaults to `HELD_OUT_FONT_FAMILIES`.

    Returns:
        `tuple[list[FontInfo], list[FontInfo]]`: `(train_fonts, eval_fonts)`, disjoint and sorted; either may be
        empty (`select_fonts` says so when the side asked for is).
    """
    held_out = set(HELD_OUT_FONT_FAMILIES if held_out_families is None else held_out_families)
    fonts = sorted(set(fonts))
    train_fonts = [font for font in fonts if font.family not in held_out]
    eval_fonts = [font for font in fonts if font.family in held_out]
    return train_fonts, eval_fonts


def select_fonts(
    fonts: str | Sequence[str | os.PathLike | FontInfo] = "train",
    font_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    charset: str = DEFAULT_CHARSET,
    held_out_families: Sequence[str] | None = None,
) -> list[FontInfo]:
    """Resolve a font selection into a list of fonts.

    Args:
        fonts (`str` or sequence, *optional*, defaults to `"train"`):
            `"train"` or `"eval"` for a side of `split_fonts`, `"all"` for every font found, or an explicit sequence
            of font files (paths or `FontInfo`); explicit files are used as they are, without coverage check.
        font_dirs, charset: See `find_fonts`.
        held_out_families: See `split_fonts`.

    Returns:
        `list[FontInfo]`: at least one font.

    Raises:
        `ValueError`: for an unknown split name, or when no usable font is found (for `"train"`: none outside the
        held-out families; for `"eval"`: none of a held-out family).
    """
    if isinstance(fonts, str):
        if fonts not in FONT_SPLITS:
            raise ValueError(f"`fonts` must be one of {FONT_SPLITS} or a sequence of font files, got {fonts!r}.")
        found = find_fonts(font_dirs, charset)
        if not found:
            raise ValueError(
                f"No font covering the charset {charset!r} was found under {list(_font_dirs_or_default(font_dirs))}. "
                "Install fonts (e.g. the Debian package fonts-dejavu-core), point the HF_CRNN_FONT_DIRS environment "
                "variable at a folder of .ttf/.otf files, or pass font files explicitly."
            )
        if fonts == "all":
            return found
        held_out = HELD_OUT_FONT_FAMILIES if held_out_families is None else tuple(held_out_families)
        train_fonts, eval_fonts = split_fonts(found, held_out)
        selected = train_fonts if fonts == "train" else eval_fonts
        if not selected:
            side = "outside" if fonts == "train" else "of"
            raise ValueError(
                f"No font {side} the held-out evaluation families {list(held_out)} was found under "
                f"{list(_font_dirs_or_default(font_dirs))} (installed: {sorted({font.family for font in found})}). "
                "Install fonts (the Debian package fonts-dejavu-core gives both sides: DejaVu Sans for training, "
                "DejaVu Serif and DejaVu Sans Mono held out), or pass font files explicitly."
            )
        return selected

    selected = []
    for font in fonts:
        if not isinstance(font, FontInfo):
            path = os.path.abspath(os.fspath(font))
            try:
                family, style = ImageFont.truetype(path, size=24).getname()
            except OSError as error:
                raise ValueError(f"Cannot load font file {path!r}: {error}") from error
            font = FontInfo(family=family or Path(path).stem, style=style or "Regular", path=path)
        selected.append(font)
    if not selected:
        raise ValueError("`fonts` is an empty sequence; give at least one font file.")
    return selected


def training_fonts(
    extra_font_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    font_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    charset: str = DEFAULT_CHARSET,
    held_out_families: Sequence[str] | None = None,
) -> list[FontInfo]:
    """The training side of the font split, widened with the fonts found under `extra_font_dirs`.

    The held-out evaluation fonts stay what `select_fonts("eval")` gives (the split of the fonts under `font_dirs`
    only), so more training fonts can be added without moving the evaluation set. Keep the extra folders outside
    `font_dirs` (the system font folders by default): fonts installed there would enter the split itself.

    Args:
        extra_font_dirs (`str`, `os.PathLike` or a sequence of them, *optional*):
            Folders of additional training fonts, searched like `find_fonts` (fonts lacking a glyph of `charset` are
            skipped). `None` gives `select_fonts("train")` unchanged.
        font_dirs, charset, held_out_families: See `select_fonts`.

    Returns:
        `list[FontInfo]`: the training fonts, then the extra fonts not already among them (by family and style).

    Raises:
        `ValueError`: when an extra folder holds no usable font, or an extra font belongs to a held-out family (an
        evaluation typeface would leak into training).
    """
    if extra_font_dirs is None:
        return select_fonts("train", font_dirs=font_dirs, charset=charset, held_out_families=held_out_families)
    train_fonts, _ = split_fonts(select_fonts("all", font_dirs=font_dirs, charset=charset), held_out_families)
    extra_dirs = _font_dirs_or_default(extra_font_dirs)
    extra_fonts = find_fonts(extra_dirs, charset)
    if not extra_fonts:
        raise ValueError(
            f"No font covering the charset {charset!r} was found under the extra font folders {extra_dirs}."
        )
    held_out = set(HELD_OUT_FONT_FAMILIES if held_out_families is None else held_out_families)
    leaked = sorted({font.family for font in extra_fonts} & held_out)
    if leaked:
        raise ValueError(
            f"The extra training fonts under {extra_dirs} include the held-out evaluation families {leaked}; "
            "remove them so that evaluation stays on typefaces never seen in training."
        )
    known = {(font.family, font.style) for font in train_fonts}
    return train_fonts + [font for font in extra_fonts if (font.family, font.style) not in known]


@functools.lru_cache(maxsize=1024)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size=size, layout_engine=_LAYOUT_ENGINE)


@functools.lru_cache(maxsize=1024)
def _cap_top(path: str, size: int) -> int:
    # Offset of the top of a capital (negative, y grows downwards) from the baseline.
    return _load_font(path, size).getbbox("H", anchor="ls")[1]

