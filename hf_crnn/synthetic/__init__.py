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
Synthetic word images: the project's built-in training and evaluation data (no downloads).

Words come from a word list (the system `/usr/share/dict/words` when present, else the list shipped in
`hf_crnn/data/words.txt`), numbers, words mixed with digits and random strings (`text`). Each text is rasterised
with PIL in one of the TrueType/OpenType fonts found on the machine (`fonts`), then cropped to a fixed height
through a single perspective transform (rotation, perspective, horizontal stretch and padding in one resampling
step) and composited (`render`): over a flat colour with illumination gradients, noise and blur in the `"clean"`
style; in the `"scene"` style also with neighbouring glyph fragments, curved baselines, outline and shadow layers,
natural-image textures and colours (`backgrounds`) and camera/detector degradations (`degrade`, albumentations).

Every sample is a pure function of `(seed, index)` and of the fonts, word list (and, for the scene style, background
textures) in use, so the same seed gives the same images on a machine with the same files, and sample `i` does not
depend on how many samples were drawn before it, which keeps multi-process generation reproducible
(`dataset`).

Fonts are split by family into a training set and a held-out evaluation set (`split_fonts`: the families named in
`HELD_OUT_FONT_FAMILIES` are held out, all others train), so that evaluation measures generalisation to unseen
typefaces rather than to unseen words only.
"""

from .backgrounds import (
    BACKGROUND_DIRS_ENV_VAR,
    BACKGROUND_EXTENSIONS,
    DEFAULT_BACKGROUND_DIRS,
    BackgroundSource,
    find_backgrounds,
    read_gimp_pattern,
)
from .dataset import (
    SyntheticTextGenerator,
    make_mixed_iterable_dataset,
    make_synthetic_dataset,
    make_synthetic_iterable_dataset,
    synthetic_features,
)
from .degrade import SceneDegradation, curve_coverage
from .fonts import (
    DEFAULT_FONT_DIRS,
    FONT_DIRS_ENV_VAR,
    FONT_EXTENSIONS,
    FONT_SPLITS,
    HELD_OUT_FONT_FAMILIES,
    FontInfo,
    find_fonts,
    select_fonts,
    split_fonts,
    training_fonts,
)
from .render import RENDER_STYLES, RenderConfig, SceneConfig, render_scene_text, render_text
from .text import (
    BUILTIN_WORD_LIST,
    CLEAN_TEXT_MIX,
    DEFAULT_CHARSET,
    SCENE_TEXT_MIX,
    SYSTEM_WORD_LIST,
    TextSampler,
    default_word_list,
    load_word_list,
)


__all__ = [
    "BACKGROUND_DIRS_ENV_VAR",
    "BACKGROUND_EXTENSIONS",
    "BUILTIN_WORD_LIST",
    "CLEAN_TEXT_MIX",
    "DEFAULT_BACKGROUND_DIRS",
    "DEFAULT_CHARSET",
    "DEFAULT_FONT_DIRS",
    "FONT_DIRS_ENV_VAR",
    "FONT_EXTENSIONS",
    "FONT_SPLITS",
    "HELD_OUT_FONT_FAMILIES",
    "RENDER_STYLES",
    "SCENE_TEXT_MIX",
    "SYSTEM_WORD_LIST",
    "BackgroundSource",
    "FontInfo",
    "RenderConfig",
    "SceneConfig",
    "SceneDegradation",
    "SyntheticTextGenerator",
    "TextSampler",
    "curve_coverage",
    "default_word_list",
    "find_backgrounds",
    "find_fonts",
    "load_word_list",
    "make_synthetic_dataset",
    "make_mixed_iterable_dataset",
    "make_synthetic_iterable_dataset",
    "read_gimp_pattern",
    "render_scene_text",
    "render_text",
    "select_fonts",
    "split_fonts",
    "synthetic_features",
    "training_fonts",
]
