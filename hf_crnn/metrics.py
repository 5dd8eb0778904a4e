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
Text-recognition metrics, and their glue to `transformers.Trainer` and `evaluate`.

- **word accuracy**: fraction of predictions equal to their reference, character for character;
- **normalized word accuracy**: the scene-text benchmark protocol (IIIT5K, SVT, IC13, IC15, SVTP, CUTE80 as scored by
  e.g. clovaai/deep-text-recognition-benchmark): both strings are lowercased and stripped of every character outside
  `[0-9a-z]` before comparing, so `"Hello!"` matches `"hello"`;
- **character error rate (CER)**: total edit distance divided by the total number of reference characters (a
  corpus-level ratio, as in `jiwer` and `evaluate`'s `cer`; it can exceed 1);
- **normalized edit distance (N.E.D.)**: the ICDAR 2019 definition (ArT / LSVT / ReCTS), the mean over samples of
  `edit_distance(pred, gt) / max(len(gt), len(pred))`, in [0, 1], 0 for an empty pair; ICDAR ranks by its
  complement `1 - N.E.D.`, reported here as `one_minus_ned`.

Edit distances are Levenshtein distances (unit-cost insertions, deletions and substitutions) computed with
`rapidfuzz`, with a pure-Python fallback when it is not installed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence

import numpy as np

from .data_collator import LABEL_PAD_TOKEN_ID


try:
    from rapidfuzz.distance import Levenshtein as _rapidfuzz_levenshtein
except ImportError:  # rapidfuzz is an optional dependency: fall back to a slower pure-Python distance
    _rapidfuzz_levenshtein = None

logger = logging.getLogger(__name__)

EVALUATE_MODULE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate_metrics", "text_recognition")
"""Folder of the local `evaluate` module: `evaluate.load(EVALUATE_MODULE_PATH)` works offline."""

METRIC_NAMES = ("word_accuracy", "normalized_word_accuracy", "cer", "ned", "one_minus_ned")

_NON_ALPHANUMERIC = re.compile(r"[^0-9a-z]")


def normalize_text(text: str) -> str:
    """The benchmark protocol's normalisation: lowercase, then drop every character outside `[0-9a-z]`.

    Example: `normalize_text("Hello, World!") == "helloworld"`.
    """
    return _NON_ALPHANUMERIC.sub("", text.lower())


def edit_distance(prediction: str, reference: str) -> int:
    """Levenshtein distance between two strings (unit-cost insertion, deletion and substitution)."""
    if _rapidfuzz_levenshtein is not None:
        return _rapidfuzz_levenshtein.distance(prediction, reference)
    previous = list(range(len(reference) + 1))
    for i, predicted_character in enumerate(prediction, start=1):
        current = [i]
        for j, reference_character in enumerate(reference, start=1):
            substitution = previous[j - 1] + (predicted_character != reference_character)
            current.append(min(previous[j] + 1, current[j - 1] + 1, substitution))
        previous = current
    return previous[-1]


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(predictions, str) or isinstance(references, str):
        raise ValueError("`predictions` and `references` must be sequences of strings, not single strings.")
    if len(predictions) != len(references):
        raise ValueError(
            f"Got {len(predictions)} predictions but {len(references)} references; they must pair up one to one."
        )
    if len(predictions) == 0:
        raise ValueError("Metrics need at least one (prediction, reference) pair, got none.")
    for name, texts in (("predictions", predictions), ("references", references)):
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"`{name}[{index}]` must be a str, got {type(text).__name__}: {text!r}.")


def word_accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of predictions exactly equal to their reference (case- and symbol-sensitive)."""
    _check_pairs(predictions, references)
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def normalized_word_accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Word accuracy after `normalize_text` (case-insensitive, alphanumeric only): the benchmark protocol."""
    _check_pairs(predictions, references)
    return sum(normalize_text(p) == normalize_text(r) for p, r in zip(predictions, references)) / len(references)


def character_error_rate(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Total edit distance over the total number of reference characters.

    When every reference is empty the ratio is undefined; it is then 0.0 if every prediction is empty too, else 1.0.
    """
    _check_pairs(predictions, references)
    errors = sum(edit_distance(p, r) for p, r in zip(predictions, references))
    reference_characters = sum(len(r) for r in references)
    if reference_characters == 0:
        return float(errors > 0)
    return errors / reference_characters


def normalized_edit_distance(predictions: Sequence[str], references: Sequence[str]) -> float:
    """ICDAR 2019 N.E.D.: mean over samples of `edit_distance(pred, gt) / max(len(gt), len(pred))` (0 if both empty).

    Lower is better; the ICDAR score is `1 - normalized_edit_distance(...)`.
    """
    _check_pairs(predictions, references)
    total = 0.0
    for prediction, reference in zip(predictions, references):
        longest = max(len(prediction), len(reference))
        if longest:
            total += edit_distance(prediction, reference) / longest
    return total / len(references)


def compute_text_recognition_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """All the metrics of this module at once.

    Args:
        predictions (`Sequence[str]`): Recognised texts.
        references (`Sequence[str]`): Ground-truth texts, one per prediction.

    Returns:
        `dict[str, float]` with keys `word_accuracy`, `normalized_word_accuracy` (benchmark protocol), `cer`, `ned`
        (ICDAR 2019 N.E.D., lower is better) and `one_minus_ned` (ICDAR's score, higher is better). `cer` and `ned`
        are computed on the texts as given; normalise them first (e.g. with `normalize_text`) for protocol values.

    Example:

    ```python
    >>> compute_text_recognition_metrics(["hello", "wrld"], ["Hello", "world"])
    {'word_accuracy': 0.0, 'normalized_word_accuracy': 0.5, 'cer': 0.2, 'ned': 0.2, 'one_minus_ned': 0.8}
    ```
    """
    ned = normalized_edit_distance(predictions, references)
    return {
        "word_accuracy": word_accuracy(predictions, references),
        "normalized_word_accuracy": normalized_word_accuracy(predictions, references),
        "cer": character_error_rate(predictions, references),
        "ned": ned,
        "one_minus_ned": 1.0 - ned,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Trainer glue
# ---------------------------------------------------------------------------------------------------------------------


def _split_predictions(predictions) -> tuple[np.ndarray, np.ndarray | None]:
    """Split `EvalPrediction.predictions` into (scores or frame ids, frame lengths or None)."""
    if isinstance(predictions, (tuple, list)):
        arrays = [np.asarray(array) for array in predictions]
        if not arrays or arrays[0].ndim not in (2, 3):
            shapes = [array.shape for array in arrays]
            raise ValueError(
                "Expected predictions (logits of shape (N, T, V) or frame ids of shape (N, T)) optionally followed by "
                f"frame lengths of shape (N,); got arrays of shapes {shapes}."
            )
        # Model outputs beyond (logits, frame_lengths), e.g. hidden states, are not needed for decoding.
        frame_lengths = arrays[1] if len(arrays) > 1 and arrays[1].ndim == 1 else None
        return arrays[0], frame_lengths
    return np.asarray(predictions), None


def _infer_frame_lengths(predictions: np.ndarray) -> np.ndarray:
    # Without frame lengths, only the -100 frames `Trainer` appends when concatenating batches of different widths
    # can be recognised as padding (frames of narrow images padded inside a batch cannot: pass frame lengths).
    padding = predictions == LABEL_PAD_TOKEN_ID
    if predictions.ndim == 3:
        padding = padding.all(axis=-1)
    return (~padding).sum(axis=1)


def decode_label_ids(tokenizer, label_ids) -> list[str]:
    """Decode label ids of shape `(N, L)`, right-padded with -100, into texts (no CTC collapsing)."""
    return [tokenizer.decode([int(i) for i in row if i != LABEL_PAD_TOKEN_ID]) for row in np.asarray(label_ids)]


def make_compute_metrics(processor, **decoding_options) -> Callable[..., dict[str, float]]:
    """Build the `compute_metrics` function `transformers.Trainer` calls after evaluation.

    The returned function decodes the model outputs with the processor's CTC decoding
    (`processor.batch_decode(logits, frame_lengths=..., **decoding_options)`), decodes the labels with
    `processor.tokenizer`, and returns `compute_text_recognition_metrics`. Without `decoding_options` decoding is
    greedy (`method="greedy"`), even for a processor that carries a default lexicon: training curves should measure
    the network, not the lexicon.

    `Trainer` hands over `EvalPrediction(predictions, label_ids)` where `predictions` is the model output without
    its loss, as numpy arrays concatenated over batches: `(logits (N, T, V), frame_lengths (N,))`, with `logits`
    padded with -100 along `T` where batches had different widths. Frame lengths are used to ignore every padded
    frame; if they are missing, trailing all -100 frames are treated as padding. Predictions may also be greedy
    frame ids `(N, T)` from `preprocess_logits_for_metrics` (much less memory than full logits).

    Args:
        processor (`CRNNProcessor`): Processor whose decoding and tokenizer to use.
        decoding_options: Keyword arguments for `processor.batch_decode`, e.g. `beam_width=10` or
            `lexicon=words` (ignored for frame ids, which are always decoded greedily).

    Returns:
        `Callable[[EvalPrediction], dict[str, float]]`.
    """
    tokenizer = processor.tokenizer
    decoding_options = decoding_options or {"method": "greedy"}

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions, label_ids = eval_prediction[0], eval_prediction[1]
        if label_ids is None:
            raise ValueError("compute_metrics needs labels: evaluate on a dataset with texts (labels).")
        scores, frame_lengths = _split_predictions(predictions)
        if frame_lengths is None:
            frame_lengths = _infer_frame_lengths(scores)
        if scores.ndim == 3:
            texts = processor.batch_decode(scores, frame_lengths=frame_lengths, **decoding_options)
        else:
            texts = [tokenizer.ctc_decode(ids[:length]) for ids, length in zip(scores, frame_lengths)]
        return compute_text_recognition_metrics(list(texts), decode_label_ids(tokenizer, label_ids))

    return compute_metrics


def preprocess_logits_for_metrics(logits, labels=None):
    """`Trainer(preprocess_logits_for_metrics=...)` hook: keep greedy frame ids instead of full logits.

    Evaluation then stores `(N, T)` ids instead of `(N, T, V)` float scores; `make_compute_metrics` decodes them with
    greedy CTC decoding (so beam or lexicon decoding options cannot be used with this hook).

    Args:
        logits (`torch.Tensor` or `tuple`): The model output without loss, `(logits, frame_lengths, ...)`.
        labels: Unused; part of the hook's signature.

    Returns:
        `(frame_ids, frame_lengths)`, or just `frame_ids` when no frame lengths were given. `frame_ids` keeps the
        frame axis it was given: under DDP, `Trainer` pads logits to the longest frame count of all processes before
        this hook and then gathers them, which needs the same shape on every process.
    """
    if isinstance(logits, (tuple, list)):
        frame_lengths = logits[1] if len(logits) > 1 else None
        logits = logits[0]
    else:
        frame_lengths = None
    frame_ids = logits.argmax(dim=-1)
    return frame_ids if frame_lengths is None else (frame_ids, frame_lengths)


# ---------------------------------------------------------------------------------------------------------------------
# evaluate glue
# ---------------------------------------------------------------------------------------------------------------------


class _TextRecognitionMetric:
    """Stand-in with the `compute`/`add_batch` interface of an `evaluate` metric, used when `evaluate` is missing."""

    name = "text_recognition"

    def __init__(self):
        self._predictions, self._references = [], []

    def add_batch(self, *, predictions: Sequence[str], references: Sequence[str]) -> None:
        self._predictions.extend(predictions)
        self._references.extend(references)

    def add(self, *, prediction: str, reference: str) -> None:
        self.add_batch(predictions=[prediction], references=[reference])

    def compute(self, *, predictions: Sequence[str] | None = None, references: Sequence[str] | None = None):
        if predictions is not None or references is not None:
            self.add_batch(predictions=predictions or [], references=references or [])
        try:
            return compute_text_recognition_metrics(self._predictions, self._references)
        finally:
            self._predictions, self._references = [], []


def load_metric():
    """Load the text-recognition metric: the local `evaluate` module if `evaluate` works, else a plain stand-in.

    Both have `compute(predictions=..., references=...)` and `add_batch(...)`, and return the dict of
    `compute_text_recognition_metrics`. Nothing is downloaded: the module is loaded from `EVALUATE_MODULE_PATH`.
    """
    try:
        import evaluate

        return evaluate.load(EVALUATE_MODULE_PATH)
    except Exception as error:  # evaluate missing or broken (e.g. version mismatch): the plain functions still work
        logger.info("Using the plain text-recognition metric (evaluate unavailable: %s).", error)
        return _TextRecognitionMetric()
