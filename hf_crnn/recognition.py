# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Reading lists of word crops: one forward pass per width-sorted batch, decoded several ways at once (`predict`), and
the two-checkpoint cascade (`CRNNCascade`, `read_again_below`).

**The cascade.** A small, fast checkpoint reads every image greedily; the images it reads with a confidence below
`threshold` (`hf_crnn.decoding.word_confidence`, the same confidence the pipeline returns) are read again by a larger,
more accurate checkpoint, typically with its character language model. Most crops of a set are easy, and the fast
reading of an easy crop is as good as the accurate one, so the cascade reads about as well as the accurate
checkpoint at close to the fast one's cost. The re-read images are collected over the whole list and sorted by
width before they are batched, so the accurate checkpoint runs on full batches (a batch of a few images costs
several times as much per image on a CPU).

    from transformers import AutoModelForTextRecognition, AutoProcessor
    from hf_crnn.recognition import CRNNCascade

    fast, accurate = "checkpoints/crnn-real-en-fast", "checkpoints/crnn-real-en"
    cascade = CRNNCascade(
        AutoModelForTextRecognition.from_pretrained(fast).eval(), AutoProcessor.from_pretrained(fast),
        AutoModelForTextRecognition.from_pretrained(accurate).eval(), AutoProcessor.from_pretrained(accurate),
        fallback_language_model=True,
    )
    cascade(["word1.png", "word2.png"])  # [{"generated_text": ..., "confidence": ..., "read_by": "model"}, ...]
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .decoding import DEFAULT_BEAM_WIDTH, Lexicon, _check_positive_int
from .image_processing_crnn import load_image
# The pipeline's cascade (the same defaults and check) and its reading of tall crops.
from .pipeline_crnn import (
    DEFAULT_FALLBACK_BEAM_WIDTH,
    DEFAULT_FALLBACK_THRESHOLD,
    DEFAULT_FALLBACK_WORD_THRESHOLD,
    cascade_known_words,
    check_fallback_threshold,
    check_fallback_word_threshold,
    most_confident,
    reading_rotations,
    reads_again,
    rotated,
)

PER_IMAGE_LEXICON = "per-image lexicon"


@dataclass
class Decoding:
    """One way of decoding the model's outputs: a row of the results table.

    Attributes:
        name: Row label, e.g. `"lexicon-free (greedy)"`.
        options: Keyword arguments for `processor.batch_decode`.
        lexicon: The prepared global lexicon, if any.
        per_image: Decode each image against its own `lexicon` column entry.
    """

    name: str
    options: dict
    lexicon: Lexicon | None = None
    per_image: bool = False

    @property
    def uses_lexicon(self) -> bool:
        return self.per_image or self.lexicon is not None


def lexicon_free_decoding(beam_width: int | None = None) -> Decoding:
    """Greedy decoding, or prefix beam search of `beam_width`. The method is named explicitly so that a default
    lexicon shipped with the checkpoint (`lexicon.txt`) is not applied to the lexicon-free row."""
    if beam_width is None or beam_width == 1:
        return Decoding("lexicon-free (greedy)", {"method": "greedy"})
    return Decoding(f"lexicon-free (beam {beam_width})", {"method": "beam", "beam_width": beam_width})


def language_model_decoding(language_model, beam_width: int | None = None) -> Decoding:
    """Prefix beam search (`beam_width`, default 10) fused with a character language model; no lexicon."""
    beam_width = beam_width or DEFAULT_BEAM_WIDTH
    return Decoding(
        f"lexicon-free (beam {beam_width} + char LM)",
        {"method": "beam", "beam_width": beam_width, "language_model": language_model},
    )


def per_image_lexicon_decoding(delta: int = 3) -> Decoding:
    return Decoding(PER_IMAGE_LEXICON, {"method": "lexicon", "delta": delta}, per_image=True)


@dataclass
class Predictions:
    """One decoding's output over a list of images, and the seconds its decoding took."""

    texts: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    decoding_seconds: float = 0.0
    reread: list[int] | None = None  # a cascade's: indices of the images its fallback read again


def _decode(processor, logits, frame_lengths, decoding: Decoding, lexicons) -> list[dict]:
    """`processor.batch_decode` of one batch with one decoding; `lexicons` are the batch's per-image lexicons."""
    if not decoding.per_image:
        lexicon = {"lexicon": decoding.lexicon} if decoding.lexicon is not None else {}
        return processor.batch_decode(logits, frame_lengths, output_scores=True, **decoding.options, **lexicon)
    # Images without a lexicon of their own fall back to greedy decoding (and are counted in the report).
    results: list[dict | None] = [None] * len(lexicons)
    with_lexicon = [row for row, lexicon in enumerate(lexicons) if lexicon]
    without = [row for row, lexicon in enumerate(lexicons) if not lexicon]
    per_row_options = (
        (with_lexicon, {**decoding.options, "lexicon": [lexicons[row] for row in with_lexicon]}),
        (without, {"method": "greedy"}),
    )
    with warnings.catch_warnings():
        # Benchmark lexicons may hold words the model cannot spell; one warning per image would drown the output.
        warnings.filterwarnings("ignore", message="Lexicon: skipped")
        for rows, options in per_row_options:
            if rows:
                decoded = processor.batch_decode(logits[rows], frame_lengths[rows], output_scores=True, **options)
                for row, result in zip(rows, decoded):
                    results[row] = result
    return results


def predict(
    model,
    processor,
    images,
    decodings: Sequence[Decoding],
    batch_size: int = 32,
    lexicons=None,
    rotate_tall: bool = True,
):
    """
    Runs the model once over `images` and decodes its outputs with every decoding.

    Images are batched by resized width (like the pipeline), so little compute goes to padding.

    Args:
        images (`list[PIL.Image.Image]`): Decoded images.
        decodings: The decodings to apply.
        lexicons (*optional*): Per-image word lists (needed by a per-image decoding).
        rotate_tall (`bool`, defaults to `True`): Read an image at least `TALL_ASPECT_RATIO` (1.5) times as tall as
            it is wide upright and turned a quarter turn each way, and keep, per decoding, the most confident
            reading, as the pipeline's `rotate_tall` does.

    Returns:
        `(predictions, model_seconds)`: `{decoding name: Predictions}` in image order, and the seconds spent on
        preprocessing and forward passes (shared by all decodings).
    """
    if any(decoding.per_image for decoding in decodings) and lexicons is None:
        raise ValueError("A per-image lexicon decoding needs `lexicons`, one (possibly empty) list per image.")
    readings = [
        (row, rotation)
        for row, image in enumerate(images)
        for rotation in reading_rotations(image.width, image.height, rotate_tall)
    ]
    if len(readings) == len(images):
        return _predict_readings(model, processor, images, decodings, batch_size, lexicons)
    turned = [rotated(images[row], rotation) for row, rotation in readings]
    turned_lexicons = [lexicons[row] for row, _ in readings] if lexicons is not None else None
    per_reading, model_seconds = _predict_readings(model, processor, turned, decodings, batch_size, turned_lexicons)
    readings_of_image = [[] for _ in images]
    for index, (row, _) in enumerate(readings):
        readings_of_image[row].append(index)
    predictions = {}
    for name, read in per_reading.items():
        kept = [indices[most_confident([read.confidences[i] for i in indices])] for indices in readings_of_image]
        predictions[name] = Predictions(
            [read.texts[i] for i in kept], [read.confidences[i] for i in kept], read.decoding_seconds
        )
    return predictions, model_seconds


def _predict_readings(model, processor, images, decodings: Sequence[Decoding], batch_size: int, lexicons):
    """[`predict`] of images read as they are: one reading per image."""
    image_processor = processor.image_processor
    widths = [image_processor.target_width(image.width, image.height) for image in images]
    order = sorted(range(len(images)), key=widths.__getitem__)
    texts = {decoding.name: [None] * len(images) for decoding in decodings}
    confidences = {decoding.name: [0.0] * len(images) for decoding in decodings}
    decoding_seconds = dict.fromkeys(texts, 0.0)
    model_seconds = 0.0
    device, dtype = model.device, model.dtype  # properties that search the modules: once, not per batch
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        started = time.perf_counter()
        inputs = processor(images=[images[row] for row in rows], return_tensors="pt")
        with torch.inference_mode():
            outputs = model(
                pixel_values=inputs["pixel_values"].to(device, dtype),
                image_widths=inputs["image_widths"].to(device),
            )
        logits, frame_lengths = outputs.logits.float().cpu(), outputs.frame_lengths.cpu()  # .cpu() waits for CUDA
        model_seconds += time.perf_counter() - started
        batch_lexicons = [lexicons[row] for row in rows] if lexicons is not None else None
        for decoding in decodings:
            started = time.perf_counter()
            results = _decode(processor, logits, frame_lengths, decoding, batch_lexicons)
            decoding_seconds[decoding.name] += time.perf_counter() - started
            for row, result in zip(rows, results):
                texts[decoding.name][row] = result["text"]
                confidences[decoding.name][row] = float(result["confidence"])
    predictions = {
        name: Predictions(texts[name], confidences[name], decoding_seconds[name]) for name in texts
    }
    return predictions, model_seconds


def read_again_below(
    predictions: Predictions,
    images,
    model,
    processor,
    decoding: Decoding,
    threshold: float = DEFAULT_FALLBACK_THRESHOLD,
    batch_size: int = 32,
    rotate_tall: bool = True,
    word_threshold: float | None = None,
    known_words: frozenset[str] = frozenset(),
) -> Predictions:
    """
    The cascade's second stage: reads again, with `model` and `decoding`, the images whose reading in `predictions`
    has a confidence below `threshold` (below `word_threshold` for a reading that spells one of `known_words`; see
    `hf_crnn.pipeline_crnn.reads_again`), and returns the merged predictions.

    Args:
        predictions ([`Predictions`]): The first stage's readings of `images` (texts and confidences in order).
        images (`list[PIL.Image.Image]`): The images read.
        model, processor: The fallback checkpoint (any input size: it preprocesses the images itself).
        decoding ([`Decoding`]): How the fallback decodes (lexicon-free or one global lexicon; not per image).
        threshold (`float` in `[0, 1]`): Readings with a confidence below it are read again (0: none, 1: nearly all).
        batch_size (`int`): Images per forward pass of the fallback.
        rotate_tall (`bool`): Tall images are read turned as well (see [`predict`]).
        word_threshold (`float` in `[0, 1]`, *optional*): The threshold of readings that spell a known word (`None`:
            the same as any other).
        known_words (`frozenset[str]`): Those words, as `hf_crnn.pipeline_crnn.known_word_set` makes them.

    Returns:
        [`Predictions`]: the fallback's text and confidence for the re-read images, the first stage's for the
        others; `decoding_seconds` adds the whole second stage (preprocessing, forward passes, decoding) to the
        first stage's decoding time, and `reread` lists the re-read images' indices.
    """
    check_fallback_threshold(threshold)
    check_fallback_word_threshold(word_threshold)
    if not isinstance(known_words, frozenset):
        raise ValueError(f"`known_words` must be a frozenset from known_word_set, got {type(known_words).__name__}.")
    if decoding.per_image:
        raise ValueError("The cascade's fallback decodes without per-image lexicons; pass a lexicon-free decoding.")
    if len(predictions.confidences) != len(images):
        raise ValueError(f"Got {len(predictions.confidences)} predictions for {len(images)} images.")
    rows = [
        row
        for row, (text, confidence) in enumerate(zip(predictions.texts, predictions.confidences))
        if reads_again(text, confidence, threshold, word_threshold, known_words)
    ]
    texts, confidences = list(predictions.texts), list(predictions.confidences)
    started = time.perf_counter()
    if rows:
        unsure = [images[row] for row in rows]
        reread, _ = predict(model, processor, unsure, [decoding], batch_size, rotate_tall=rotate_tall)
        for row, text, confidence in zip(rows, reread[decoding.name].texts, reread[decoding.name].confidences):
            texts[row], confidences[row] = text, confidence
    seconds = time.perf_counter() - started
    return Predictions(texts, confidences, predictions.decoding_seconds + seconds, reread=rows)


class CRNNCascade:
    """
    Reads word crops with a fast checkpoint and reads again, with a more accurate one, those it is unsure of (see
    the module docstring).

    Args:
        model, processor: The fast checkpoint, read greedily (an `optimize_for_cpu` model works too).
        fallback_model, fallback_processor: The accurate checkpoint.
        threshold (`float`, defaults to `DEFAULT_FALLBACK_THRESHOLD`): Fast readings less confident than this are
            read again.
        fallback_language_model (*optional*): The fallback decodes by beam search fused with this character
            language model (`True` for the fallback checkpoint's own `language_model.json`, a path, or a
            `CharNgramLanguageModel`); `None` decodes greedily.
        fallback_beam_width (`int`, defaults to `DEFAULT_FALLBACK_BEAM_WIDTH`, 3): The beam of that search (chosen
            on held-out crops; see `hf_crnn.pipeline_crnn`).
        batch_size (`int`, defaults to 32): Images per forward pass, in both stages.
        decoding ([`Decoding`], *optional*): How the fast checkpoint decodes (default greedy; lexicon-free).
        rotate_tall (`bool`, defaults to `True`): Both stages read tall images turned as well (see [`predict`]).
        word_threshold (`float`, defaults to `DEFAULT_FALLBACK_WORD_THRESHOLD`, 0.5): A fast reading that spells one
            of `known_words` is read again only below this confidence (`None`: below `threshold`, like any other).
        known_words (`Iterable[str]`, *optional*): Those words; by default the fallback language model's words
            (none without one).
    """

    def __init__(
        self,
        model,
        processor,
        fallback_model,
        fallback_processor,
        threshold: float = DEFAULT_FALLBACK_THRESHOLD,
        fallback_language_model=None,
        batch_size: int = 32,
        decoding: Decoding | None = None,
        fallback_beam_width: int = DEFAULT_FALLBACK_BEAM_WIDTH,
        rotate_tall: bool = True,
        word_threshold: float | None = DEFAULT_FALLBACK_WORD_THRESHOLD,
        known_words=None,
    ):
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("fallback_beam_width", fallback_beam_width)
        check_fallback_threshold(threshold)
        check_fallback_word_threshold(word_threshold)
        if decoding is not None and decoding.uses_lexicon:
            raise ValueError("The cascade's first stage decodes lexicon-free: its confidence decides what is re-read.")
        self.model, self.processor = model, processor
        self.fallback_model, self.fallback_processor = fallback_model, fallback_processor
        self.threshold, self.batch_size, self.rotate_tall = threshold, batch_size, rotate_tall
        self.decoding = decoding or lexicon_free_decoding()
        self.fallback_decoding = lexicon_free_decoding()
        language_model = fallback_processor.resolve_language_model(fallback_language_model)
        if language_model is not None:
            self.fallback_decoding = language_model_decoding(language_model, fallback_beam_width)
        self.word_threshold, self.known_words = word_threshold, cascade_known_words(known_words, language_model)

    @property
    def name(self) -> str:
        """What the cascade does, in words (a row label of `hf-crnn evaluate`)."""
        fallback = os.path.basename(os.path.normpath(getattr(self.fallback_model, "name_or_path", "") or "fallback"))
        below = f"below {self.threshold:g}"
        if self.word_threshold is not None and self.known_words and self.word_threshold < self.threshold:
            below += f" (known words below {self.word_threshold:g})"
        return f"cascade: {self.decoding.name}, {below} → {fallback} {self.fallback_decoding.name}"

    def read_again(self, predictions: Predictions, images) -> Predictions:
        """The second stage alone, over the first stage's `predictions` of `images` (see [`read_again_below`])."""
        return read_again_below(
            predictions, images, self.fallback_model, self.fallback_processor, self.fallback_decoding, self.threshold,
            self.batch_size, self.rotate_tall, self.word_threshold, self.known_words,
        )

    def predict(self, images) -> Predictions:
        """Both stages over decoded images (`list[PIL.Image.Image]`); `reread` lists the images read again."""
        first, _ = predict(
            self.model, self.processor, images, [self.decoding], self.batch_size, rotate_tall=self.rotate_tall
        )
        return self.read_again(first[self.decoding.name], images)

    def __call__(self, images) -> list[dict]:
        """
        Reads `images` (PIL images, arrays or paths, as `hf_crnn.load_image` takes them).

        Returns:
            `list[dict]`, one per image in order: `generated_text`, `confidence` (of the stage that read it, as the
            pipeline returns it) and `read_by` (`"model"` or `"fallback"`).
        """
        processors = (self.processor, self.fallback_processor)
        num_channels = max(processor.image_processor.num_channels for processor in processors)
        images = [load_image(image, num_channels) for image in images]
        predictions = self.predict(images)
        reread = set(predictions.reread or ())
        return [
            {"generated_text": text, "confidence": confidence, "read_by": "fallback" if row in reread else "model"}
            for row, (text, confidence) in enumerate(zip(predictions.texts, predictions.confidences))
        ]


__all__ = [
    "CRNNCascade",
    "DEFAULT_FALLBACK_BEAM_WIDTH",
    "DEFAULT_FALLBACK_THRESHOLD",
    "DEFAULT_FALLBACK_WORD_THRESHOLD",
    "PER_IMAGE_LEXICON",
    "Decoding",
    "Predictions",
    "language_model_decoding",
    "lexicon_free_decoding",
    "per_image_lexicon_decoding",
    "predict",
    "read_again_below",
]
