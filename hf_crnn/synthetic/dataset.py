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
Sample generation and the `datasets` builders: `SyntheticTextGenerator` (index-addressable samples),
`make_synthetic_dataset` (map-style, Arrow on disk) and `make_synthetic_iterable_dataset` (endless stream).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict

from .backgrounds import BackgroundSource
from .degrade import SceneDegradation
from .fonts import FontInfo, select_fonts
from .render import RENDER_STYLES, RenderConfig, SceneConfig, render_scene_text, render_text
from .text import CLEAN_TEXT_MIX, DEFAULT_CHARSET, SCENE_TEXT_MIX, TextSampler


class SyntheticTextGenerator:
    """Endless, index-addressable source of synthetic word images.

    `generator[i]` is a pure function of `(seed, i)` (given the fonts and word list), so samples can be produced in
    any order and by any number of workers. Each sample is a dict with:

    - `image` (`PIL.Image.Image`): RGB, height `render_config.image_height`;
    - `text` (`str`): the label, exactly the characters drawn;
    - `width` (`int`): image width in pixels; at the default height of 32 this is the width the CRNN image
      processor feeds the model, hence the length to group batches by;
    - `text_length` (`int`): number of characters of `text`;
    - `font` (`str`): file name of the font used.

    Args:
        seed (`int`, *optional*, defaults to 0): Seed of the stream.
        fonts (`str` or sequence, *optional*, defaults to `"train"`):
            `"train"`, `"eval"` (fonts held out of training, see `split_fonts`), `"all"`, or explicit font files.
        charset (`str`, *optional*, defaults to `DEFAULT_CHARSET`): Characters the texts may contain.
        lowercase (`bool`, *optional*, defaults to `False`):
            Lowercase every text. Otherwise words appear as listed, lowercased, UPPERCASED or Capitalised at random.
        min_len (`int`, *optional*, defaults to 1): Shortest text, in characters.
        max_len (`int`, *optional*, defaults to 16): Longest text, in characters.
        word_list (`str`, `os.PathLike` or sequence of `str`, *optional*):
            Words to draw, or a file of them (see `load_word_list`, whose default is used when not given). Words
            with characters outside `charset` or a length outside `[min_len, max_len]` are skipped.
        word_probability (`float`, *optional*):
            Probability that a sample is a word from the list. Defaults to 0.7 in the `"clean"` style (the rest:
            random strings over `charset`) and to 0.6 in the `"scene"` style (then 15% numbers, 10% words or letters
            mixed with digits, 15% random strings; see `SCENE_TEXT_MIX`).
        render_config (`RenderConfig`, *optional*): Appearance settings (geometry and photometry, both styles).
        font_dirs (*optional*): Where to look for fonts, see `find_fonts`.
        style (`str`, *optional*, defaults to `"clean"`): `"clean"` (flat colours; the documented evaluation sets)
            or `"scene"` (neighbouring glyph fragments, curves, outline and shadow layers, natural backgrounds and
            colours, camera and detector degradations; see `SceneConfig`).
        scene_config (`SceneConfig`, *optional*): Settings of the `"scene"` style.
        background_dirs (*optional*): Folders of background textures for the `"scene"` style, see
            `find_backgrounds`; generated textures are used when none is found.
    """

    def __init__(
        self,
        seed: int = 0,
        fonts: str | Sequence[str | os.PathLike | FontInfo] = "train",
        charset: str = DEFAULT_CHARSET,
        lowercase: bool = False,
        min_len: int = 1,
        max_len: int = 16,
        word_list: str | os.PathLike | Sequence[str] | None = None,
        word_probability: float | None = None,
        render_config: RenderConfig | None = None,
        font_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        style: str = "clean",
        scene_config: SceneConfig | None = None,
        background_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    ):
        if not isinstance(seed, int):
            raise ValueError(f"`seed` must be an int, got {type(seed).__name__}.")
        if style not in RENDER_STYLES:
            raise ValueError(f"`style` must be one of {RENDER_STYLES}, got {style!r}.")
        self.seed = seed
        self.style = style
        mix = CLEAN_TEXT_MIX if style == "clean" else SCENE_TEXT_MIX
        if word_probability is not None:
            mix = {**mix, "word_probability": word_probability}
        self.text_sampler = TextSampler(
            charset=charset, lowercase=lowercase, min_len=min_len, max_len=max_len, word_list=word_list, **mix
        )
        self.render_config = render_config or RenderConfig()
        self.fonts = select_fonts(fonts, font_dirs=font_dirs, charset=self.text_sampler.charset)
        self.scene_config = self.backgrounds = self.degradation = None
        if style == "scene":
            self.scene_config = scene_config or SceneConfig()
            self.backgrounds = BackgroundSource(background_dirs)
            self.degradation = SceneDegradation(self.scene_config.degradation_strength, self.render_config.image_height)

    # The text settings, read from the sampler (kept as attributes of the generator for existing callers).
    charset = property(lambda self: self.text_sampler.charset)
    lowercase = property(lambda self: self.text_sampler.lowercase)
    words = property(lambda self: self.text_sampler.words)
    word_probability = property(lambda self: self.text_sampler.word_probability)
    min_len = property(lambda self: self.text_sampler.min_len)
    max_len = property(lambda self: self.text_sampler.max_len)

    def __getitem__(self, index: int) -> dict:
        if not isinstance(index, int) or index < 0:
            raise IndexError(f"Sample indices are non-negative ints, got {index!r}.")
        # String seeds are hashed with SHA-512 by `random.Random`: independent streams per (seed, index), identical
        # across processes, platforms and PYTHONHASHSEED values.
        rng = random.Random(f"hf-crnn-synthetic:{self.seed}:{index}")
        text = self.text_sampler(rng)
        font = rng.choice(self.fonts)
        if self.style == "clean":
            image = render_text(text, font, rng, self.render_config)
        else:
            scene = self.scene_config
            context = self.text_sampler.context(rng) if rng.random() < scene.neighbour_probability else ("", "")
            image = render_scene_text(
                text, font, rng, self.render_config, scene, self.backgrounds, self.degradation, context
            )
        return {"image": image, "text": text, "width": image.width, "text_length": len(text), "font": font.name}

    def __iter__(self) -> Iterator[dict]:
        return self.iterate()

    def iterate(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[dict]:
        """Yield samples `start, start + step, ...` up to `stop` (excluded), or forever when `stop` is None."""
        index = start
        while stop is None or index < stop:
            yield self[index]
            index += step

    def fingerprint(self) -> str:
        """Hash of everything that determines the samples (settings, font files and words)."""
        state = {
            "version": 1,
            "seed": self.seed,
            "charset": self.charset,
            "lowercase": self.lowercase,
            "lengths": [self.min_len, self.max_len],
            "word_probability": self.word_probability,
            "render_config": asdict(self.render_config),
            "fonts": [[font.path, os.path.getsize(font.path)] for font in self.fonts],
            "words": hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest(),
        }
        if self.style != "clean":  # clean fingerprints stay those of earlier versions, so caches are reused
            text_mix = {name: getattr(self.text_sampler, name) for name in ("number_probability", "mixed_probability")}
            state.update(
                style=self.style,
                scene_config=asdict(self.scene_config),
                text_mix=text_mix,
                backgrounds=self.backgrounds.fingerprint(),
            )
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def synthetic_features():
    """The `datasets.Features` of the synthetic datasets."""
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "text": datasets.Value("string"),
            "width": datasets.Value("int32"),
            "text_length": datasets.Value("int32"),
            "font": datasets.Value("string"),
        }
    )


def _generate_range(generator: SyntheticTextGenerator, ranges: list[tuple[int, int]]) -> Iterator[dict]:
    for start, stop in ranges:
        yield from generator.iterate(start, stop)


def _generate_stream(generator: SyntheticTextGenerator, shard_ids: list[int], num_shards: int) -> Iterator[dict]:
    # Shard k yields samples k, k + num_shards, ...: the union over shards is the sequence 0, 1, 2, ... whatever the
    # number of DataLoader workers the shards end up on. `datasets` calls this once per shard (see `_generate_mixed`).
    for shard_id in shard_ids:
        yield from generator.iterate(start=shard_id, step=num_shards)


def _generate_mixed(
    generator: SyntheticTextGenerator,
    real,
    image_column: str,
    text_column: str,
    synthetic_probability: float,
    seed: int,
    shard_ids: list[int],
    num_shards: int,
) -> Iterator[dict]:
    # `datasets` calls this once per shard (it splits the `shard_ids` list) and reads a process's shards one after the
    # other, so with endless shards each DataLoader worker must get exactly one.
    for shard_id in shard_ids:
        yield from _mixed_shard(
            generator, real, image_column, text_column, synthetic_probability, seed, shard_id, num_shards
        )


def _mixed_shard(generator, real, image_column, text_column, synthetic_probability, seed, shard_id, num_shards):
    # Shard k draws synthetic samples k, k + num_shards, ... and real rows k, k + num_shards, ..., the real ones
    # reshuffled on every pass, so the shards together cover every real row once per pass.
    rng = random.Random(f"mixed-{seed}-{shard_id}")
    synthetic = generator.iterate(start=shard_id, step=num_shards)
    rows = list(range(shard_id, len(real), num_shards)) or list(range(len(real)))
    pending: list[int] = []
    while True:
        if rng.random() < synthetic_probability:
            sample = next(synthetic)
            yield {image_column: sample["image"], text_column: sample["text"]}
            continue
        if not pending:
            pending = rows.copy()
            rng.shuffle(pending)
        row = real[pending.pop()]
        yield {image_column: row[image_column], text_column: row[text_column]}


def make_mixed_iterable_dataset(
    real,
    synthetic_probability: float,
    num_shards: int = 1,
    mix_seed: int = 0,
    image_column: str = "image",
    text_column: str = "text",
    **generator_options,
):
    """Build an endless `datasets.IterableDataset` of real images interleaved with synthetic ones rendered on the fly.

    Each sample is synthetic with probability `synthetic_probability`, else the next row of `real`, which repeats
    without end, reshuffled on each pass. `datasets.interleave_datasets` cannot do this without `features` on the
    synthetic stream, which would PNG-encode and decode every rendered image.

    Args:
        real (`datasets.Dataset`): Map-style dataset with `image_column` (decoded to `PIL.Image.Image`) and
            `text_column`; other columns are not read.
        synthetic_probability (`float`): Share of synthetic samples, in [0, 1).
        num_shards (`int`, *optional*, defaults to 1): Number of shards, the real rows split between them: give the
            number of `DataLoader` workers (1 without workers). `datasets` reads the shards a process is given one
            after the other, and each is endless, so a process given several reads only the first: the real rows
            of the others would never appear.
        mix_seed (`int`, *optional*, defaults to 0): Seed of the real/synthetic draws and of the real rows' order.
        image_column (`str`, *optional*, defaults to `"image"`), text_column (`str`, *optional*, defaults to
            `"text"`): The columns of `real`; the stream yields these two, synthetic samples under the same names.
        generator_options: The arguments of `SyntheticTextGenerator` (`seed`, `fonts`, `style`, ...).

    Returns:
        `datasets.IterableDataset` with `features` unset; its images are `PIL.Image.Image`.
    """
    import datasets

    if not 0.0 <= synthetic_probability < 1.0:
        raise ValueError(f"`synthetic_probability` must be in [0, 1), got {synthetic_probability!r}.")
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"`num_shards` must be a positive int, got {num_shards!r}.")
    if len(real) == 0:
        raise ValueError("`real` is empty: there are no real images to mix with the synthetic ones.")
    missing = [column for column in (image_column, text_column) if column not in real.column_names]
    if missing:
        raise ValueError(f"`real` has no column {missing[0]!r}; its columns are {real.column_names}.")
    generator = SyntheticTextGenerator(**generator_options)
    return datasets.IterableDataset.from_generator(
        _generate_mixed,
        gen_kwargs={
            "generator": generator,
            "real": real.select_columns([image_column, text_column]),
            "image_column": image_column,
            "text_column": text_column,
            "synthetic_probability": synthetic_probability,
            "seed": mix_seed,
            "shard_ids": list(range(num_shards)),
            "num_shards": num_shards,
        },
    )


def make_synthetic_dataset(
    num_samples: int,
    num_proc: int | None = None,
    cache_dir: str | None = None,
    **generator_options,
):
    """Build a map-style `datasets.Dataset` of `num_samples` synthetic word images.

    Samples are written to Arrow files in the `datasets` cache as they are generated (never all in memory), and a
    second call with the same arguments, fonts and word list reuses those files. Sample `i` is `generator[i]` for
    `SyntheticTextGenerator(seed, fonts, ...)`, whatever `num_proc`.

    Args:
        num_samples (`int`): Number of images.
        num_proc (`int`, *optional*): Processes to render with (each gets a contiguous range of indices).
        cache_dir (`str`, *optional*): `datasets` cache folder.
        generator_options: The arguments of `SyntheticTextGenerator` (`seed`, `fonts`, `style`, ...).

    Returns:
        `datasets.Dataset` with columns `image` (`Image`), `text`, `width`, `text_length` and `font`; use
        `length_column_name="width"` to let `Trainer` group batches by width.
    """
    import datasets

    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}.")
    generator = SyntheticTextGenerator(**generator_options)
    num_shards = max(1, min(num_proc or 1, num_samples))
    bounds = [num_samples * shard // num_shards for shard in range(num_shards + 1)]
    return datasets.Dataset.from_generator(
        _generate_range,
        features=synthetic_features(),
        gen_kwargs={"generator": generator, "ranges": list(zip(bounds[:-1], bounds[1:]))},
        num_proc=num_proc if num_shards > 1 else None,
        cache_dir=cache_dir,
        fingerprint=f"synthetic-{generator.fingerprint()}-{num_samples}",
    )


def make_synthetic_iterable_dataset(
    num_shards: int = 1,
    **generator_options,
):
    """Build an endless `datasets.IterableDataset` of synthetic word images, rendered on the fly.

    Use it for training streams (`Trainer` then needs `max_steps`). Its samples are those of `make_synthetic_dataset`
    with the same arguments: with one shard, in the same order.

    Args:
        num_shards (`int`, *optional*, defaults to 1):
            Number of shards; a `DataLoader` with `num_workers` workers renders in parallel when `num_shards` is a
            multiple of `num_workers`. Shard `k` yields samples `k, k + num_shards, ...` forever, so a single process
            iterating a multi-shard stream only ever sees shard 0.
        generator_options: The arguments of `SyntheticTextGenerator` (`seed`, `fonts`, `style`, ...).

    Returns:
        `datasets.IterableDataset` with the columns of `make_synthetic_dataset` (`image` as `PIL.Image.Image`);
        its `features` are left unset, see the comment below.
    """
    import datasets

    if not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"`num_shards` must be a positive int, got {num_shards!r}.")
    generator = SyntheticTextGenerator(**generator_options)
    # No `features=`: with them, `datasets` would PNG-encode and decode every image on the fly, which more than
    # halves the throughput (about 940 vs 2500 images/s on one core); the examples are already plain Python objects.
    return datasets.IterableDataset.from_generator(
        _generate_stream,
        gen_kwargs={"generator": generator, "shard_ids": list(range(num_shards)), "num_shards": num_shards},
    )
