# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Text-recognition pipeline for CRNN checkpoints ("image-to-text" through remote code, "text-recognition" locally)."""

import importlib
import math
import types
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass, field

import numpy as np
import PIL.Image
import torch
from torch.utils.data import DataLoader
from transformers import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

from .decoding import _is_per_image
from .image_processing_crnn import load_image
from .language_model import normalize_word

DEFAULT_WINDOW_OVERLAP = 128
# Batches of images read ahead and sorted by width together; bounds memory whatever the input's length. Real crops
# vary in width more than 8 batches sort well, and a cascade's fallback re-reads each window's unsure inputs (a
# quarter) together: on 1,500 ICDAR 2015 training crops (`int8_bf16`, one thread, batch 32) `crnn-real-en-fast` read
# 0.74 ms per image with 8 batches, 0.62 with 32 (0.53 sorting the whole list at once), and the shipped cascade 1.16 /
# 0.95 (0.87 with 64); `benchmarks/bench_cascade.py` measures it. Memory: docs/performance.md.
DEFAULT_LOOKAHEAD_BATCHES = 32
# Images smaller than this cannot hold a legible character: they read as empty text with confidence 0 and an
# `unreadable` reason instead of whatever the network guesses from a few stretched pixels.
MIN_READABLE_HEIGHT = 4  # pixels of the original image
# An image whose grey levels all lie within this many of each other has no contrast, so no text: a blank or uniform
# crop.
# Networks guess a character on such crops (the shipped one read a blank white crop as "j"); real word crops have far
# more (the least of 6,468 IIIT5K and ICDAR 2015 training crops spans 30 levels).
MIN_CONTRAST = 8
# Call options that hold one value per input image; they follow their images through sorting and batching.
PER_IMAGE_OPTIONS = ("lexicon",)
# With a `fallback_pipeline`, readings less confident than this are read again by it (a cascade). Chosen for the
# shipped pair, crnn-real-en-fast then crnn-real-en with its language model, on crops held out of their training
# (docs/performance.md); the same value as the language model's greedy cutoff.
DEFAULT_FALLBACK_THRESHOLD = 0.9
# A first reading that spells a known word (by default one the fallback's language model was built from) is read again
# only below this lower confidence: its least sure character is then more likely right than wrong, and a misreading
# seldom spells another dictionary word. On the same held-out crops, 26 of the fast checkpoint's unsure readings
# spelled a word at 0.5 or more: 25 were right, and the fallback would have mended none and spoiled 3. The cascade read
# 273 crops instead of 270 and re-read 93 instead of 119; 0 to 0.5 read 273-274, 0.6-0.8 271 (docs/performance.md).
DEFAULT_FALLBACK_WORD_THRESHOLD = 0.5
# The beam width a cascade's fallback searches with its language model (`CRNNCascade`, `hf-crnn recognize`; pass it in
# `fallback_options` here). On the same held-out crops the accurate checkpoint read as many words with widths 3, 4, 10
# and 20 (2 fewer with 2), and a beam of 3 costs half the search of the default 10 on the crops a cascade re-reads.
DEFAULT_FALLBACK_BEAM_WIDTH = 3
# Decoding options that choose how a reading is searched for. A cascade's fallback takes them from `fallback_options`
# when those name any, else from the call; a call with a lexicon keeps its own, so re-read inputs are lexicon words too.
SEARCH_OPTIONS = ("method", "beam_width", "language_model")
# A crop at least this many times as tall as it is wide is read upright and turned a quarter turn each way, and the
# most confident of the three readings is kept (`rotate_tall`): squeezed to the model's height, a vertical sign or a
# rotated word is unreadable, while an upright tall crop (a single character) keeps its upright reading when that is
# the surest. PaddleOCR turns its crops from the same ratio. Measured on crops held out of training: docs/decoding.md.
TALL_ASPECT_RATIO = 1.5
# Degrees counter-clockwise (PIL's `Image.rotate` convention) a tall crop is also read turned by.
QUARTER_TURNS = (90, 270)
_TRANSPOSE = {90: PIL.Image.Transpose.ROTATE_90, 270: PIL.Image.Transpose.ROTATE_270}


@dataclass
class _Piece:
    """What one forward row reads: a whole input image, or one window of a long line, resized.

    `pixels` is `(H, W, C)` uint8 at the model's height (`CRNNImageProcessor.resize_image`), a quarter of the memory
    of normalised floats while it waits in the read-ahead; `image_width` its valid width in the model input.
    """

    pixels: np.ndarray
    image_width: int
    window_start: int = 0  # left edge of the window in the resized line, in pixels
    rotation: int = 0  # degrees counter-clockwise the input was turned to be read (see `reading_rotations`)


@dataclass
class _Input:
    """One input image as read ahead: its pieces (none when it is too small to read) and its original size."""

    original_width: int
    pieces: list[_Piece] = field(default_factory=list)
    unreadable: str | None = None  # why it is not read, when it is not
    image: object = None  # the input as given, kept only for a fallback to read again
    original_height: int = 0

    def length_along(self, rotation: int) -> int:
        """The input's length in pixels along its text when read turned by `rotation` degrees."""
        return self.original_height if rotation in QUARTER_TURNS else self.original_width


@dataclass
class _Call:
    """One call's reading options, as `get_iterator` takes them apart."""

    batch_size: int
    lookahead: int  # forward rows read ahead and sorted together
    sort_by_width: bool
    preprocess: dict  # how inputs are cut into pieces (`split_long_lines`, `window_overlap`)
    forward: dict
    postprocess: dict  # decoding options shared by every input
    per_image: dict[str, list]  # options with one value per input, in input order

    def per_image_values(self, first_index: int, positions) -> dict[str, list]:
        """The per-image options of the inputs at `positions` of the window that starts at input `first_index`."""
        return {
            name: [values[first_index + position] for position in positions] for name, values in self.per_image.items()
        }


def _as_is(item):
    """DataLoader `collate_fn` that leaves each preprocessed input untouched (no tensor conversion)."""
    return item


def reading_rotations(width: int, height: int, rotate_tall: bool = True) -> tuple[int, ...]:
    """
    The orientations an image of `width` x `height` pixels is read in, in degrees counter-clockwise: `(0,)`, or
    `(0, 90, 270)` for a tall one (height at least `TALL_ASPECT_RATIO` times the width) when `rotate_tall`.
    """
    if rotate_tall and height >= TALL_ASPECT_RATIO * width:
        return (0, *QUARTER_TURNS)
    return (0,)


def rotated(image: PIL.Image.Image, rotation: int) -> PIL.Image.Image:
    """`image` turned `rotation` degrees counter-clockwise (0, 90 or 270), without resampling."""
    return image if rotation == 0 else image.transpose(_TRANSPOSE[rotation])


def most_confident(confidences: Sequence[float]) -> int:
    """Index of the highest confidence; of equal ones the first, so an upright reading (listed first) wins ties."""
    return max(range(len(confidences)), key=lambda index: (confidences[index], -index))


def frame_stride(config) -> int:
    """Pixels between consecutive output frames: the product of the max-pools' width strides (4 for the paper)."""
    return math.prod(stride[1] for stride in config.pool_stride if stride is not None)


def plan_windows(width: int, window_width: int, overlap: int, stride: int) -> list[int]:
    """
    Left edges of overlapping windows that cover a line `width` pixels wide (at the model's height).

    Every window is `window_width` wide (rounded down to a multiple of `stride`) except the last, which ends at the
    line's end and may be up to `stride - 1` pixels narrower; neighbours share at least `overlap` pixels (rounded up to
    a multiple of `stride`). Left edges are multiples of `stride`, so window frame `t` is exactly line frame
    `t + start // stride`: the frames of all windows lie on the grid of frames of the whole line.

    Args:
        width (`int`): Width of the line in pixels.
        window_width (`int`): Widest window, in pixels.
        overlap (`int`): Least number of pixels neighbouring windows share.
        stride (`int`): The model's frame stride in pixels (see [`frame_stride`]).

    Returns:
        `list[int]`: the windows' left edges, increasing, starting at 0 (`[0]` when the line fits in one window).
    """
    window_width = window_width // stride * stride
    overlap = -(-overlap // stride) * stride
    if overlap < 0 or overlap >= window_width:
        raise ValueError(
            f"The window overlap ({overlap} pixels, a multiple of the frame stride {stride}) must be at least 0 and "
            f"smaller than the window width ({window_width} pixels, the image processor's `max_width`)."
        )
    if width <= window_width:
        return [0]
    starts = list(range(0, width - window_width, window_width - overlap))
    # The last window ends at the line's end; its edge rounds up to the frame grid, so it is at most as wide as the
    # others and still overlaps its neighbour by >= `overlap` (both gaps are multiples of the stride).
    starts.append(-(-(width - window_width) // stride) * stride)
    return starts


def merge_window_log_probs(window_log_probs: Sequence[torch.Tensor], frame_offsets: Sequence[int]) -> torch.Tensor:
    """
    Stitches the frame scores of overlapping windows of one line into the scores of the whole line.

    Window `k` covers line frames `[frame_offsets[k], frame_offsets[k] + T_k)`. Where two windows overlap, the frames
    before the middle of the overlap come from the left window and the rest from the right one: each window's half
    nearest its own edge, where its context is cut off, is dropped.

    Args:
        window_log_probs (sequence of `torch.Tensor` of shape `(T_k, V)`): Valid frames of each window, left to right.
        frame_offsets (sequence of `int`): Line frame of each window's first frame (its left edge / frame stride).

    Returns:
        `torch.Tensor` of shape `(frame_offsets[-1] + T_last, V)`.
    """
    if len(window_log_probs) != len(frame_offsets) or not window_log_probs:
        raise ValueError("Need one frame offset per window, and at least one window.")
    pieces, start = [], 0
    for index, (log_probs, offset) in enumerate(zip(window_log_probs, frame_offsets)):
        end = offset + log_probs.shape[0]
        if index + 1 < len(frame_offsets):
            next_offset = frame_offsets[index + 1]
            if not offset <= next_offset <= end:
                raise ValueError(f"Window {index + 1} (frame {next_offset}) does not overlap window {index}.")
            end = (next_offset + end) // 2
        if start < offset:
            raise ValueError(f"Window {index} starts at frame {offset}, after the seam at frame {start}.")
        pieces.append(log_probs[start - offset : end - offset])
        start = end
    return torch.cat(pieces)


class CRNNTextRecognitionPipeline(Pipeline):
    """
    Reads the text of word or line crops.

    `pipe(image)` returns `[result]`; `pipe([image, ...])` returns one such list per image, in input order; a
    generator, other iterator or `torch` dataset of images (e.g. `KeyDataset(dataset, "image")`) returns an iterator
    that yields them in input order as they are read. Each `result` is a dict with

    - `generated_text` (`str`): the text read (empty when nothing was read);
    - `confidence` (`float` in `[0, 1]`): how likely the text is right, comparable across words of any length and
      images of any width (see `hf_crnn.decoding.word_confidence`); reject reads below a threshold with it;
    - `log_likelihood` (`float`): the decoding's raw natural-log score: greedy, the best path's log-probability
      over all frames; beam, the prefix mass kept; lexicon, the word's exact CTC log-probability. It falls with the
      image's width and the text's length, so it ranks hypotheses of one image, not reads of different images;
    - `score` (`float`): `exp(log_likelihood)`, kept for backward compatibility;
    - `unreadable` (`str`, only when set): why the image was not read (too small to hold a character); its text is
      empty and its confidence 0;
    - `rotation` (`int`, only for tall inputs read turned as well, see `rotate_tall`): the degrees counter-clockwise
      the image was turned for the reading kept: 0 (upright), 90 or 270.

    Images are read ahead `lookahead_batches * batch_size` at a time (and no more, so memory stays flat over any
    number of inputs), sorted by their resized width within that window and batched `batch_size` at a time with
    others of similar width, so little compute goes to padding; padding never changes a result.

    Long lines: with an image processor in `"keep_aspect_ratio"` mode, an image whose width at the model's height
    would exceed the processor's `max_width` is not squeezed to it but read at its own aspect ratio, in overlapping
    windows of `max_width` pixels run as a batch. The windows' frame scores are stitched into the frame scores of the
    whole line (each seam keeps the half of the overlap farthest from each window's edge) and decoded once, so a
    character cut by a window edge is read from the window that sees it whole and is never read twice.

    Call options:
        batch_size (`int`): Images (or windows) per forward pass (default: the pipeline's `batch_size`, else 1).
        num_workers (`int`): DataLoader worker processes that load and preprocess images (default 0: in-process).
        output_char_offsets (`bool`): Add `char_offsets` to the best hypothesis: per character its `char`, `score`,
            the `frame` it is emitted at and that frame's centre `x` in the original image's pixels.
        split_long_lines (`bool`, defaults to `True`): Read long lines in windows as above; `False` squeezes them
            to `max_width` (the image processor's own behaviour).
        window_overlap (`int`, defaults to 128): Pixels (at the model's height) that neighbouring windows share,
            rounded up to a multiple of the frame stride; 128 is 32 frames, 16 on each side of a seam.
        sort_by_width (`bool`, defaults to `True`): Batch images of similar widths together; `False` batches them
            in input order (same results, more padding).
        lookahead_batches (`int`, defaults to 32): Batches read ahead and sorted by width together (more: less
            padding and fuller fallback batches, more memory; fewer: sooner first results on a stream).
        rotate_tall (`bool`, defaults to `True`): Read a crop at least 1.5 times as tall as it is wide
            (`TALL_ASPECT_RATIO`) upright and turned a quarter turn each way, and keep the most confident reading
            (the upright one on a tie): vertical signs and rotated words then read, and upright tall crops (single
            characters) keep their upright reading when it is the surest. `False` reads every crop upright.
        lexicon, beam_width, top_k, method, delta, ...: Decoding options of `CRNNProcessor.batch_decode`; with
            `top_k=k` each image gets its k best hypotheses, best first. `lexicon` may hold one lexicon per image
            (a list of word lists, as many as the images, none empty); each follows its image through sorting and
            batching.
            A lexicon result also carries `lexicon_fallback` (no lexicon word was close enough). The processor's
            default lexicon, if it has one, applies when no `lexicon` is given. `language_model=True` decodes by
            beam search fused with the checkpoint's character language model (`language_model.json`; a path or a
            `CharNgramLanguageModel` also works); see `hf_crnn.language_model`.

    A cascade: with `fallback_pipeline=` another text-recognition pipeline (typically a larger, more accurate
    checkpoint; not to be confused with the lexicon decoding's call option `fallback`), the inputs this one reads with
    a `confidence` below `fallback_threshold` (default 0.9) are read again by it, except that a lexicon-free reading
    spelling a known word (letters and digits, two or more, any case) is read again only below
    `fallback_word_threshold` (default 0.5; `None`: like any other). The known words are `fallback_known_words`, by
    default the words of the language model `fallback_options` name, if any. The fallback cuts long lines as the call
    says (`split_long_lines`, `window_overlap`) and decodes with the call's decoding options (so every result has the
    `char_offsets`, `top_k` hypotheses or lexicon words asked for; a per-image lexicon follows its image) updated by
    `fallback_options`, e.g. `{"language_model": True, "beam_width": 3}`, the shipped pair's setting. A call with a
    lexicon keeps its own search for the inputs read again, so `fallback_options`' `language_model` and beam then do
    not apply (see `fallback_call_options`). The inputs to read again are gathered over each read-ahead window and
    read as one list, so the fallback batches them by width too. Every result then carries `read_by` (`"model"` or
    `"fallback"`).
    Also settable on an existing pipeline with `set_fallback`.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(
        self,
        *args,
        optimize=None,
        calibration_data=None,
        fallback_pipeline=None,
        fallback_threshold=DEFAULT_FALLBACK_THRESHOLD,
        fallback_options=None,
        fallback_word_threshold=DEFAULT_FALLBACK_WORD_THRESHOLD,
        fallback_known_words=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError("The text-recognition pipeline needs the checkpoint's CRNNProcessor.")
        self.optimization_report = None
        self.fallback_pipeline = None
        self.set_fallback(
            fallback_pipeline, fallback_threshold, fallback_options, fallback_word_threshold, fallback_known_words
        )
        if optimize:
            self.optimize_for_cpu(optimize, calibration_data)

    def set_fallback(
        self,
        pipeline,
        threshold=DEFAULT_FALLBACK_THRESHOLD,
        options=None,
        word_threshold=DEFAULT_FALLBACK_WORD_THRESHOLD,
        known_words=None,
    ):
        """
        Makes this pipeline the first stage of a cascade (see the class docstring): `pipeline` (a text-recognition
        pipeline, or None for no cascade) reads again the inputs read with a confidence below `threshold`, decoding
        with the call's options updated by `options` (see `fallback_call_options`). `options` are tried on the
        fallback at once, so one it cannot read with raises a `ValueError` here, not at the first re-read.

        A lexicon-free reading that spells one of `known_words` is read again only below `word_threshold` (`None`:
        like any other); `known_words` defaults to the words of the language model `options` name (none without
        one). See [`reads_again`].
        """
        # Any pipeline: loaded as remote code, each checkpoint's pipeline class is a class of its own.
        if pipeline is not None and not isinstance(pipeline, Pipeline):
            raise ValueError(
                "`fallback_pipeline` must be a text-recognition pipeline of a CRNN checkpoint, got "
                f"{type(pipeline).__name__}."
            )
        if pipeline is self:
            raise ValueError("A pipeline cannot be its own fallback.")
        check_fallback_threshold(threshold)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"`fallback_options` must be a dict of decoding options, got {type(options).__name__}.")
        check_fallback_word_threshold(word_threshold)
        language_model = None
        if pipeline is not None and options:
            _check_fallback_options(pipeline, options)
            language_model = pipeline.processor.resolve_language_model(options.get("language_model"))
        self.fallback_pipeline, self.fallback_threshold = pipeline, threshold
        self.fallback_options = dict(options or {})
        self.fallback_word_threshold = word_threshold
        self.fallback_known_words = cascade_known_words(known_words, language_model)

    def fallback_call_options(self, call_options: dict) -> dict:
        """
        The options the fallback reads again with, given the options a call decodes this pipeline's reading with
        (`output_char_offsets`, `top_k`, a lexicon (per image: the re-read inputs' own), ...): those, updated by
        `fallback_options`. The search (`SEARCH_OPTIONS`: `method`, `beam_width`, `language_model`) comes from
        `fallback_options` when they name any of it, else from the call; but a call with a lexicon keeps its own
        search, so the inputs read again decode against that lexicon as well (a language model does not decode
        against one).
        """
        fallback_options = dict(self.fallback_options)
        if call_options.get("lexicon") is not None:
            fallback_options = {name: value for name, value in fallback_options.items() if name not in SEARCH_OPTIONS}
        elif any(name in fallback_options for name in SEARCH_OPTIONS):
            call_options = {name: value for name, value in call_options.items() if name not in SEARCH_OPTIONS}
        return {**call_options, **fallback_options}

    def optimize_for_cpu(self, mode="auto", calibration_data=None):
        """
        Replaces the model with `hf_crnn.fast_inference.optimize_for_cpu(model, mode, ...)` (CPU only; what the
        `optimize=` and `calibration_data=` pipeline arguments do). `"auto"` (or `True`) picks the fastest path
        within 0.2 points of fp32 word accuracy on `calibration_data` (processor batches, or images: paths, PIL
        images, arrays) and returns its report, also kept as `optimization_report`.
        """
        try:  # imported by name: remote code ships without the fast paths, and transformers' scan for the files a
            # checkpoint's code imports would then ask for fast_inference.py
            fast_inference = importlib.import_module(".fast_inference", __package__)
        except ImportError as error:
            raise ValueError("`optimize` needs the hf_crnn package installed (pip install hf-crnn).") from error
        self.model, self.optimization_report = fast_inference.optimize_for_pipeline(
            self.model, self.processor, mode, calibration_data
        )
        return self.optimization_report

    def save_pretrained(self, save_directory, **kwargs):
        """Saves model and processor; the model's own save ships this pipeline's code for "image-to-text"."""
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory, **kwargs)

    def _sanitize_parameters(
        self,
        output_char_offsets=None,
        split_long_lines=None,
        window_overlap=None,
        sort_by_width=None,
        lookahead_batches=None,
        rotate_tall=None,
        **decoding_options,
    ):
        preprocess_params = {}
        if rotate_tall is not None:
            if not isinstance(rotate_tall, bool):
                raise ValueError(f"`rotate_tall` must be True or False, got {rotate_tall!r}.")
            preprocess_params["rotate_tall"] = rotate_tall
        if split_long_lines is not None:
            preprocess_params["split_long_lines"] = split_long_lines
        if window_overlap is not None:
            preprocess_params["window_overlap"] = window_overlap
        # Options of the read-ahead and batching (`get_iterator`), not of `preprocess` itself.
        if sort_by_width is not None:
            preprocess_params["sort_by_width"] = sort_by_width
        if lookahead_batches is not None:
            if isinstance(lookahead_batches, bool) or not isinstance(lookahead_batches, int) or lookahead_batches < 1:
                raise ValueError(f"`lookahead_batches` must be an int >= 1, got {lookahead_batches!r}.")
            preprocess_params["lookahead_batches"] = lookahead_batches
        postprocess_params = dict(decoding_options)
        if output_char_offsets is not None:
            postprocess_params["output_char_offsets"] = output_char_offsets
        return preprocess_params, {}, postprocess_params

    def __call__(self, inputs, **kwargs):
        """`pipe(image)`, `pipe(list_of_images)` (a list back) or `pipe(generator_or_dataset)` (an iterator back)."""
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        elif isinstance(inputs, Iterator) and not isinstance(inputs, types.GeneratorType):
            inputs = (item for item in inputs)  # transformers streams generators; so any other iterator streams
        if isinstance(inputs, list) and not inputs:
            return []
        if not isinstance(inputs, (list, types.GeneratorType, torch.utils.data.Dataset)):
            # One image goes the way of a list of one, so a long line's windows are batched with `batch_size`.
            return super().__call__([inputs], **kwargs)[0]
        return super().__call__(inputs, **kwargs)

    def get_iterator(
        self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params, postprocess_params
    ):
        """
        What `Pipeline.__call__` runs for a list, generator or dataset: an iterator of one result list per input, in
        input order, that reads the inputs only as far as it has to (`lookahead_batches * batch_size` ahead).
        """
        preprocess_params = dict(preprocess_params)
        sort_by_width = preprocess_params.pop("sort_by_width", True)
        lookahead = preprocess_params.pop("lookahead_batches", DEFAULT_LOOKAHEAD_BATCHES) * batch_size
        postprocess_params = dict(postprocess_params)
        per_image = {
            name: list(postprocess_params.pop(name))
            for name in PER_IMAGE_OPTIONS
            if _is_per_image(postprocess_params.get(name))
        }
        for name, values in per_image.items():
            for index, value in enumerate(values):
                if value is None or (isinstance(value, (list, tuple)) and not value):
                    raise ValueError(
                        f"The per-image {name} of input {index} is empty: give every input words of its own, or read "
                        f"those without one in a call without a {name}."
                    )
        if isinstance(inputs, Sized):  # a stream's count is checked as it is read
            for name, values in per_image.items():
                if len(values) != len(inputs):
                    raise ValueError(f"Got {len(values)} per-image {name}s for {len(inputs)} images.")
        call = _Call(batch_size, lookahead, sort_by_width, preprocess_params, forward_params, postprocess_params,
                     per_image)
        return self._read(self._preprocessed(inputs, num_workers, preprocess_params), call)

    def _preprocessed(self, inputs, num_workers: int, preprocess_params) -> Iterator["_Input"]:
        """`self.preprocess` of each input, in order, through transformers' pipeline datasets and a `DataLoader`
        (so `num_workers` processes can load images); errors name the input's index."""
        if isinstance(inputs, Sized):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:
            dataset = PipelineIterator(inputs, self.preprocess, preprocess_params)
            num_workers = min(num_workers, 1)  # each worker would read the whole iterable
        loader = iter(DataLoader(dataset, batch_size=None, num_workers=num_workers, collate_fn=_as_is))
        index = 0
        while True:
            try:
                item = next(loader)
            except StopIteration:
                return
            except ValueError as error:
                raise ValueError(f"Input {index}: {error}") from error
            yield item
            index += 1

    def _read(self, preprocessed, call: _Call):
        """Reads the inputs in windows of about `call.lookahead` forward rows; yields each input's results in order."""
        window, rows, first_index = [], 0, 0
        for item in preprocessed:
            window.append(item)
            rows += len(item.pieces)
            if rows >= call.lookahead or len(window) >= call.lookahead:
                yield from self._read_window(window, first_index, call)
                first_index += len(window)
                window, rows = [], 0
        if window:
            yield from self._read_window(window, first_index, call)
            first_index += len(window)
        for name, values in call.per_image.items():
            if len(values) != first_index:
                raise ValueError(f"Got {len(values)} per-image {name}s for {first_index} images.")

    def _read_window(self, inputs, first_index, call: _Call):
        """Forward passes over the pieces of `inputs` (input `first_index` onwards) grouped by width, then one
        decode per `call.batch_size` inputs; returns the inputs' result lists in order."""
        for name, values in call.per_image.items():  # a stream's count is known only as it is read
            if first_index + len(inputs) > len(values):
                raise ValueError(f"Got {len(values)} per-image {name}s for more images than that.")
        batch_size = call.batch_size
        pieces = [(position, piece) for position, item in enumerate(inputs) for piece in item.pieces]
        order = list(range(len(pieces)))
        if call.sort_by_width:
            order.sort(key=lambda index: pieces[index][1].image_width)
        piece_log_probs = [None] * len(pieces)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            model_outputs = self.forward(self._collate([pieces[row][1] for row in rows]), **call.forward)
            log_probs = torch.log_softmax(model_outputs["logits"].float(), dim=-1)
            for batch_row, (row, length) in enumerate(zip(rows, model_outputs["frame_lengths"].tolist())):
                piece_log_probs[row] = log_probs[batch_row, :length]

        # The frame scores of each reading, (input position, rotation): its one piece, or its windows stitched.
        stride = frame_stride(self.model.config)
        window_log_probs, window_offsets = {}, {}
        for (position, piece), log_probs in zip(pieces, piece_log_probs):
            reading = (position, piece.rotation)
            window_log_probs.setdefault(reading, []).append(log_probs)
            window_offsets.setdefault(reading, []).append(piece.window_start // stride)

        # Decode batch_size readings at a time, in the order they ran so padded frame counts stay similar. Per-image
        # options follow their images: each decode batch gets the values of its own inputs.
        decoded = {}
        reading_order = list(dict.fromkeys((pieces[index][0], pieces[index][1].rotation) for index in order))
        for start in range(0, len(reading_order), batch_size):
            readings = reading_order[start : start + batch_size]
            merged = [merge_window_log_probs(window_log_probs[key], window_offsets[key]) for key in readings]
            model_outputs = {
                "logits": torch.nn.utils.rnn.pad_sequence(merged, batch_first=True),
                "frame_lengths": torch.tensor([log_probs.shape[0] for log_probs in merged]),
            }
            positions = [position for position, _ in readings]
            batch_params = {**call.postprocess, **call.per_image_values(first_index, positions)}
            lengths = [inputs[position].length_along(rotation) for position, rotation in readings]
            for reading, result in zip(readings, self.postprocess(model_outputs, lengths, **batch_params)):
                decoded[reading] = result

        results = [None] * len(inputs)
        for position, item in enumerate(inputs):
            if item.unreadable is not None:
                results[position] = [_unreadable_result(item.unreadable)]
                continue
            rotations = list(dict.fromkeys(piece.rotation for piece in item.pieces))
            readings = [decoded[(position, rotation)] for rotation in rotations]
            best = most_confident([reading[0]["confidence"] for reading in readings])
            results[position] = readings[best]
            if len(rotations) > 1:  # a tall input, read turned as well
                for hypothesis in readings[best]:
                    hypothesis["rotation"] = rotations[best]
        if self.fallback_pipeline is not None:
            self._read_unsure_again(inputs, results, first_index, call)
        return results

    def _read_unsure_again(self, inputs, results, first_index, call: _Call) -> None:
        """The cascade's second stage, in place: the fallback's results for the inputs `reads_again` picks (as one
        list, so it batches them by width), `read_by` on every result. The fallback cuts long lines as this call does,
        and decodes with `fallback_call_options`."""
        unsure = [
            position
            for position, (item, result) in enumerate(zip(inputs, results))
            if item.image is not None and self._reads_again(result[0])
        ]
        for result in results:
            for hypothesis in result:
                hypothesis["read_by"] = "model"
        if not unsure:
            return
        images = [inputs[position].image for position in unsure]
        call_options = {**call.postprocess, **call.per_image_values(first_index, unsure)}
        options = {**call.preprocess, **self.fallback_call_options(call_options)}
        reread = self.fallback_pipeline(images, batch_size=call.batch_size, **options)
        for position, result in zip(unsure, reread):
            results[position] = [dict(hypothesis, read_by="fallback") for hypothesis in result]

    def _reads_again(self, best: dict) -> bool:
        """Whether the fallback reads again the input this pipeline read as `best` (see [`reads_again`])."""
        # A lexicon reading (it has `lexicon_fallback`) is a word by construction: spelling a known one says nothing.
        word_threshold = None if "lexicon_fallback" in best else self.fallback_word_threshold
        return reads_again(
            best["generated_text"], best["confidence"], self.fallback_threshold, word_threshold,
            self.fallback_known_words,
        )

    def _collate(self, pieces: Sequence[_Piece]) -> dict:
        """One model batch of pieces: normalised and right-padded together, as the image processor makes a batch."""
        batch = self.processor.image_processor.batch_resized(
            [(piece.pixels, piece.image_width) for piece in pieces], return_tensors="pt"
        )
        return {"pixel_values": batch["pixel_values"], "image_widths": batch["image_widths"]}

    def preprocess(
        self,
        image,
        split_long_lines: bool = True,
        window_overlap: int = DEFAULT_WINDOW_OVERLAP,
        rotate_tall: bool = True,
    ):
        """Loads one input and preprocesses the piece(s) it is read as (see [`_Input`])."""
        image_processor = self.processor.image_processor
        # A fallback gets the input as given: it may read more channels than this pipeline's processor keeps.
        given = image if self.fallback_pipeline is not None else None
        image = load_image(image, image_processor.num_channels)
        # A sliver too narrow to read upright may still read turned (both turns have the same size).
        readable = {}
        for rotation in reading_rotations(image.width, image.height, rotate_tall):
            turned = rotated(image, rotation)
            if self._too_small(turned.width, turned.height) is None:
                readable[rotation] = turned
        unreadable = (None if readable else self._too_small(image.width, image.height)) or _blank(image)
        if unreadable is not None:
            return _Input(image.width, unreadable=unreadable, original_height=image.height)
        pieces = []
        for rotation, turned in readable.items():
            for crop, window_start in self._crops(turned, split_long_lines, window_overlap):
                pixels, image_width = image_processor.resize_image(crop)
                pieces.append(_Piece(pixels, image_width, window_start, rotation))
        return _Input(image.width, pieces, image=given, original_height=image.height)

    def _too_small(self, width: int, height: int) -> str | None:
        """Why an image of `width` x `height` pixels holds no legible character, or None when it may."""
        image_height, stride = self.processor.image_processor.image_height, frame_stride(self.model.config)
        width_at_model_height = width * image_height / height
        if height >= MIN_READABLE_HEIGHT and width_at_model_height >= stride:
            return None
        return (
            f"too small to read: {width}x{height} pixels (a character needs a height of at least "
            f"{MIN_READABLE_HEIGHT} pixels, and a width of at least {stride} pixels (one frame) once resized to "
            f"the model's height of {image_height})"
        )

    def _crops(self, image, split_long_lines: bool, window_overlap: int) -> list[tuple]:
        """`(image, window_start)` per piece one input is read as: the image itself, or windows of a line too long
        for `max_width`, resized to the model's height."""
        image_processor = self.processor.image_processor
        if not split_long_lines or image_processor.resize_mode != "keep_aspect_ratio":
            return [(image, 0)]
        height = image_processor.image_height
        line_width = round(image.width * height / image.height)
        if line_width <= image_processor.max_width:
            return [(image, 0)]
        stride = frame_stride(self.model.config)
        starts = plan_windows(line_width, image_processor.max_width, window_overlap, stride)
        window_width = image_processor.max_width // stride * stride
        # Resize once, then crop: the image processor leaves crops alone, as they already have the model's height
        # and a width within [min_width, max_width].
        line = image.resize((line_width, height), resample=image_processor.resample)
        return [(line.crop((start, 0, min(start + window_width, line_width), height)), start) for start in starts]

    def _forward(self, model_inputs):
        pixel_values = model_inputs["pixel_values"].to(self.model.dtype)
        outputs = self.model(pixel_values=pixel_values, image_widths=model_inputs["image_widths"])
        return {"logits": outputs.logits, "frame_lengths": outputs.frame_lengths}

    def postprocess(self, model_outputs, original_widths=None, output_char_offsets: bool = False, **decoding_options):
        decoded = self.processor.batch_decode(
            model_outputs["logits"],
            model_outputs["frame_lengths"],
            output_scores=True,
            output_char_offsets=output_char_offsets,
            **decoding_options,
        )
        frame_lengths = model_outputs["frame_lengths"].tolist()
        results = []
        for row, item in enumerate(decoded):
            hypotheses = item.get("nbest", [item])
            result = [
                {
                    "generated_text": h["text"],
                    "confidence": h["confidence"],
                    "log_likelihood": h["log_likelihood"],
                    "score": h["score"],
                }
                for h in hypotheses
            ]
            if "lexicon_fallback" in item:
                result[0]["lexicon_fallback"] = item["lexicon_fallback"]
            if output_char_offsets:
                # Frames tile the image evenly: frame f is centred at x = (f + 0.5) * width / frames.
                pixels_per_frame = original_widths[row] / max(frame_lengths[row], 1) if original_widths else 0.0
                result[0]["char_offsets"] = [
                    dict(offset, x=round((offset["frame"] + 0.5) * pixels_per_frame, 1))
                    for offset in item["char_offsets"]
                ]
            results.append(result)
        return results


def check_fallback_threshold(threshold, name: str = "fallback threshold") -> None:
    """Raises a `ValueError` naming `name` unless `threshold` is a confidence in [0, 1] (a cascade's threshold)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"The {name} must be a confidence in [0, 1], got {threshold!r}.")


def check_fallback_word_threshold(word_threshold) -> None:
    """`check_fallback_threshold` for a cascade's known-word threshold, which may also be `None` (no such rule)."""
    if word_threshold is not None:
        check_fallback_threshold(word_threshold, "fallback word threshold")


def known_word_set(words) -> frozenset[str]:
    """
    `words` as a cascade matches first readings against them (see [`reads_again`]): each word's letters and digits,
    lowercased (as a language model keeps its words, `hf_crnn.language_model.normalize_word`), words of fewer than
    two of them left out: a single letter is in every dictionary, so spelling one says nothing.

    Raises:
        `ValueError`: `words` is one string rather than a collection of words, or holds something else than strings.
    """
    if isinstance(words, (str, bytes)):
        raise ValueError("The known words must be a collection of words, not one string.")
    words = list(words)
    if not all(isinstance(word, str) for word in words):
        raise ValueError("The known words must all be strings.")
    return frozenset(word for word in map(normalize_word, words) if len(word) >= 2)


def cascade_known_words(known_words, language_model) -> frozenset[str]:
    """A cascade's known words: `known_words` (any words) as [`known_word_set`] makes them, or when `None` the words
    the fallback's `language_model` was built from (none without one)."""
    if known_words is None:
        known_words = language_model.words if language_model is not None else ()
    return known_word_set(known_words)


def reads_again(
    text: str,
    confidence: float,
    threshold: float,
    word_threshold: float | None = None,
    known_words: frozenset[str] = frozenset(),
) -> bool:
    """
    Whether a cascade's fallback reads an input again, given the first stage's best `text` and its `confidence`:
    when the confidence is below `threshold`, unless the text spells one of `known_words` (from [`known_word_set`];
    letters and digits only, any case) and its confidence is at least `word_threshold` (`None`: no such exception).
    """
    if confidence >= threshold:
        return False
    if word_threshold is None or confidence < word_threshold or not text.isalnum():
        return True
    return normalize_word(text) not in known_words


def _check_fallback_options(pipeline, options: dict) -> None:
    """
    Raises a `ValueError` naming the problem when `pipeline` (a cascade's fallback) cannot read with `options`: they
    decode one blank frame through its own processor, so a misspelt option, a language model it does not have or an
    unreadable lexicon shows when the cascade is set up, not at its first re-read.
    """
    if any(_is_per_image(options.get(name)) for name in PER_IMAGE_OPTIONS):
        raise ValueError(
            "`fallback_options` cannot hold per-image values: pass them in the call, where they follow the inputs "
            "that are read again."
        )
    try:
        _, _, decoding_options = pipeline._sanitize_parameters(**options)
        blank_frame = torch.zeros(1, 1, pipeline.model.config.vocab_size)
        pipeline.processor.batch_decode(blank_frame, [1], output_scores=True, **decoding_options)
    except (ValueError, TypeError, AttributeError) as error:  # AttributeError: not a CRNN pipeline
        raise ValueError(f"`fallback_options` {options!r}: {error}") from error


def _blank(image) -> str | None:
    """Why `image` holds no text when all its grey levels lie within `MIN_CONTRAST` of each other, else None."""
    low, high = image.convert("L").getextrema()
    if high - low >= MIN_CONTRAST:
        return None
    return f"blank: all pixels lie within {high - low} grey levels of each other (no contrast, so no text)"


def _unreadable_result(reason: str) -> dict:
    """The result of an image that is not read: empty text, confidence 0, and the reason."""
    return {"generated_text": "", "confidence": 0.0, "log_likelihood": None, "score": 0.0, "unreadable": reason}


__all__ = [
    "CRNNTextRecognitionPipeline",
    "cascade_known_words",
    "check_fallback_word_threshold",
    "frame_stride",
    "known_word_set",
    "merge_window_log_probs",
    "most_confident",
    "plan_windows",
    "reading_rotations",
    "reads_again",
    "rotated",
]
