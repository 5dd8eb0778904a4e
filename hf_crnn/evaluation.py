# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Evaluates a CRNN checkpoint on scene-text recognition sets, the way the literature reports them.

    hf-crnn evaluate --model_name_or_path checkpoints/crnn-real-en --datasets synthetic path/to/IIIT5K ...
    python examples/run_evaluation.py --model_name_or_path ... (the same)

For every dataset (see `hf_crnn.benchmark_datasets.load_evaluation_dataset` for what can be read) the model runs
once, and its outputs are decoded several ways:

* **lexicon-free**: greedy (best path) CTC decoding, or prefix beam search with `--beam_width`;
* **per-image lexicon**: the paper's lexicon-based transcription over each image's own lexicon (IIIT5K-50 style),
  when the dataset has a `lexicon` column;
* **global lexicon(s)**: the same over one large word list for every image, by default Debian's `wamerican`
  (`/usr/share/dict/words`, 104,334 words; `--global_lexicons none` to skip).

Each decoding is scored (`score_predictions`) with

* **protocol accuracy**: word accuracy under the standard scene-text protocol (IIIT5K, SVT, IC13, ... as scored by
  e.g. clovaai/deep-text-recognition-benchmark): case-insensitive, only the 36 characters `0-9a-z` kept
  (`hf_crnn.metrics.normalize_text`);
* **exact accuracy**: prediction equal to the label character for character (case and punctuation count);
* **CER** (total edits / total label characters) and **N.E.D.** (ICDAR 2019 normalized edit distance), both on the
  protocol-normalised strings (raw-string values are in the JSON as `cer_exact`, `ned_exact`);
* **mean confidence** (each result's `confidence`: how likely its text is right, see
  `hf_crnn.decoding.word_confidence`), **ECE** (expected calibration error of that confidence: the gap between
  confidence and accuracy, averaged over 10 equal-width confidence bins weighted by their images) and **images/s**
  (image preprocessing + forward pass + that decoding, from decoded images in memory; reading and decoding image
  files is not counted);
* **accuracy against rejection**: the accuracy of the reads kept when the least confident 0%, 10%, ..., 90% are
  rejected (`accuracy_by_rejection`), in the JSON, in a table per dataset in the Markdown, and plotted.

Written to `--output_dir`: `results.json` (everything, including the curves below), `results.md` (the table),
and per dataset `mistakes_<dataset>.csv` (every protocol error: decoding, index, path, label, prediction,
confidence, edit distance; most confident first) and `accuracy_<dataset>.png` (accuracy against label length and
against a confidence threshold, with the share of images kept).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import platform
import re
import shlex
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from .benchmark_datasets import (
    DEFAULT_SYNTHETIC_LEXICON_SIZE,
    DEFAULT_SYNTHETIC_SEED,
    GT_FORMATS,
    LEXICON_COLUMN,
    SYNTHETIC_SOURCE,
    dataset_display_name,
    expand_sources,
    held_out_font_families,
    load_evaluation_dataset,
    synthetic_display_name,
)
from .decoding import load_lexicon
from .language_model import CHECKPOINT_LANGUAGE_MODEL, LANGUAGE_MODEL_FILE, language_model_option
from .metrics import compute_text_recognition_metrics, edit_distance, normalize_text
from .pipeline_crnn import TALL_ASPECT_RATIO
from .recognition import (  # re-exported: evaluation's API before recognition.py existed
    DEFAULT_FALLBACK_BEAM_WIDTH,
    DEFAULT_FALLBACK_THRESHOLD,
    DEFAULT_FALLBACK_WORD_THRESHOLD,
    CRNNCascade,
    Decoding,
    Predictions,
    language_model_decoding,
    lexicon_free_decoding,
    per_image_lexicon_decoding,
    predict,
)

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = os.path.join("checkpoints", "crnn-real-en")
"""The shipped checkpoint, relative to the working directory or to the repository root (an editable install)."""
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GLOBAL_LEXICON = "/usr/share/dict/words"
NO_LEXICON = "none"
CONFIDENCE_THRESHOLDS = tuple(round(step / 20, 2) for step in range(20))  # 0.00, 0.05, ..., 0.95
REJECTION_RATES = tuple(round(step / 10, 1) for step in range(10))  # 0.0, 0.1, ..., 0.9 of the images rejected
CALIBRATION_BINS = 10
# Images decoded into memory at a time: enough to sort by width into well-filled batches, little enough for any set.
CHUNK_SIZE = 1024
RESULTS_JSON, RESULTS_MARKDOWN = "results.json", "results.md"
MISTAKES_CSV, ACCURACY_PLOT = "mistakes_{}.csv", "accuracy_{}.png"
MISTAKE_FIELDS = ("decoding", "index", "path", "label", "prediction", "confidence", "edit_distance")


@dataclass
class CascadeArguments:
    """The cascade options of `hf-crnn evaluate` and `benchmarks/compare_peers.py` (see `hf_crnn.recognition`)."""

    fallback_model: str | None = field(
        default=None,
        metadata={
            "help": "Add a cascade: the evaluated CRNN reads first (lexicon-free), and this checkpoint reads again "
            "the images read with a confidence below --fallback_threshold (compare_peers.py: in the same --optimize "
            "mode), decoding with --language_model when given (the fallback's own for 'checkpoint'), else greedily. "
            "Its images/s count both stages. See hf_crnn.recognition."
        },
    )
    fallback_threshold: float = field(
        default=DEFAULT_FALLBACK_THRESHOLD, metadata={"help": "The cascade's confidence threshold, in [0, 1]."}
    )
    fallback_beam_width: int = field(
        default=DEFAULT_FALLBACK_BEAM_WIDTH,
        metadata={"help": "The beam of the fallback's search with --language_model (not --beam_width's)."},
    )
    fallback_word_threshold: float = field(
        default=DEFAULT_FALLBACK_WORD_THRESHOLD,
        metadata={
            "help": "A first reading that spells a word of the fallback's --language_model is read again only below "
            "this confidence, in [0, 1]; 1 (or anything from --fallback_threshold up) reads it like any other."
        },
    )

    def __post_init__(self):
        for name in ("fallback_threshold", "fallback_word_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name} must be in [0, 1], got {getattr(self, name)}.")
        if self.fallback_beam_width < 1:
            raise ValueError(f"--fallback_beam_width must be >= 1, got {self.fallback_beam_width}.")


@dataclass
class _EvaluationOptions:
    """`EvaluationArguments` without the cascade's: a base listed before `CascadeArguments` in `--help`."""

    model_name_or_path: str = field(
        default=DEFAULT_CHECKPOINT,
        metadata={"help": f"Checkpoint folder (or Hub id when online); default the shipped {DEFAULT_CHECKPOINT}."},
    )
    datasets: list[str] = field(
        default_factory=lambda: [SYNTHETIC_SOURCE],
        metadata={
            "help": "Evaluation sets: 'synthetic' (built-in words in held-out fonts), crops folders with a gt file, "
            "gt files, LMDB folders, save_to_disk folders, parquet files, imagefolder folders, or Hub names."
        },
    )
    split: str | None = field(default=None, metadata={"help": "Split to use from a DatasetDict."})
    image_column: str | None = field(default=None, metadata={"help": "Image column (default: guessed)."})
    text_column: str | None = field(default=None, metadata={"help": "Label column (default: text/label/word...)."})
    lexicon_column: str | None = field(default=None, metadata={"help": "Per-image lexicon column (default: lexicon)."})
    gt_format: str = field(default="auto", metadata={"help": f"Ground-truth file format: {', '.join(GT_FORMATS)}."})
    lexicon_dir: str | None = field(default=None, metadata={"help": "Folder of per-image lexicons <image stem>.txt."})
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate the first N images of each set."})
    num_synthetic_samples: int = field(default=500, metadata={"help": "Images in the 'synthetic' set."})
    synthetic_seed: int = field(default=DEFAULT_SYNTHETIC_SEED, metadata={"help": "Seed of the 'synthetic' set."})
    synthetic_lexicon_size: int = field(
        default=DEFAULT_SYNTHETIC_LEXICON_SIZE,
        metadata={"help": "Words per image in the 'synthetic' set's lexicons (label + distractors; 0: none)."},
    )
    synthetic_crops_dir: str | None = field(
        default=None,
        metadata={
            "help": "Write the 'synthetic' set there as a crops folder (PNGs, gt.txt, lexicons/) and evaluate it from "
            "there, through the same loader as a real benchmark (a new or empty folder, or one written before)."
        },
    )
    global_lexicons: list[str] = field(
        default_factory=lambda: [DEFAULT_GLOBAL_LEXICON],
        metadata={"help": f"Word lists (one word per line) used for every image; '{NO_LEXICON}' for none."},
    )
    beam_width: int | None = field(default=None, metadata={"help": "Lexicon-free beam search (default: greedy)."})
    language_model: str | None = field(
        default=None,
        metadata={
            "help": f"Add a lexicon-free row decoded by beam search fused with a character language model: "
            f"'{CHECKPOINT_LANGUAGE_MODEL}' for the checkpoint's own ({LANGUAGE_MODEL_FILE}), or a path (a saved "
            "language model .json, or a word list to train one on)."
        },
    )
    lexicon_delta: int = field(default=3, metadata={"help": "Edit-distance radius of the large-lexicon search."})
    batch_size: int = field(default=32, metadata={"help": "Images per forward pass."})
    rotate_tall: bool = field(
        default=True,
        metadata={
            "help": f"Read crops at least {TALL_ASPECT_RATIO:g} times as tall as wide upright and turned a quarter "
            "turn each way, and keep the most confident reading (as the pipeline does); --rotate_tall False reads "
            "every crop upright."
        },
    )
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N, or auto (cuda when available)."})
    num_threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's)."})
    output_dir: str = field(default="evaluation_results", metadata={"help": "Where the report files go."})
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache (synthetic, LMDB Arrow files)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow checkpoint code other than hf_crnn's."})


@dataclass
class EvaluationArguments(CascadeArguments, _EvaluationOptions):
    """Arguments of `hf-crnn evaluate` / `examples/run_evaluation.py`. A dataclass takes its bases' fields from the last
    base first, so `--help` lists the cascade's options after the others."""

    def __post_init__(self):
        super().__post_init__()
        for name in ("batch_size", "num_synthetic_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        for name in ("max_samples", "beam_width", "num_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1, got {value}.")
        if self.lexicon_delta < 0 or self.synthetic_lexicon_size < 0:
            raise ValueError("--lexicon_delta and --synthetic_lexicon_size must not be negative.")
        if self.gt_format not in GT_FORMATS:
            raise ValueError(f"--gt_format must be one of {GT_FORMATS}, got {self.gt_format!r}.")
        if not self.datasets:
            raise ValueError("--datasets needs at least one dataset.")
        if self.synthetic_crops_dir is not None and SYNTHETIC_SOURCE not in self.datasets:
            raise ValueError(f"--synthetic_crops_dir writes the '{SYNTHETIC_SOURCE}' set: add it to --datasets.")


# ---- decodings -----------------------------------------------------------------------------------------------------


def resolve_language_model(name: str, processor):
    """A `--language_model` value: `"checkpoint"` for the checkpoint's own, else a file path (see
    `CRNNProcessor.resolve_language_model`, which raises a `ValueError` naming the problem)."""
    return processor.resolve_language_model(language_model_option(name))


def global_lexicon_decodings(paths: Sequence[str], processor, delta: int = 3) -> tuple[list[Decoding], list[str]]:
    """
    One decoding per word-list file, each prepared once for the model's vocabulary.

    Returns:
        `(decodings, notes)`: notes say which lists were missing (the rows are then left out) or how many words
        could not be spelled with the model's characters.
    """
    decodings, notes = [], []
    for path in paths:
        if path.lower() == NO_LEXICON:
            continue
        if not os.path.isfile(path):
            hint = " (Debian: apt-get install -y wamerican)" if path == DEFAULT_GLOBAL_LEXICON else ""
            notes.append(f"Global lexicon {path} is missing{hint}: its rows are left out.")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skipped words are reported in the notes instead
            lexicon = load_lexicon(
                path, processor.tokenizer.get_vocab(), blank_id=processor.tokenizer.blank_token_id
            )
        name = f"global lexicon {path} ({len(lexicon):,} words)"
        if lexicon.skipped:
            notes.append(
                f"{path}: {len(lexicon.skipped):,} entries use characters outside the model's vocabulary and are "
                f"not in the lexicon (e.g. {lexicon.skipped[:3]}); {len(lexicon):,} distinct words remain."
            )
        decodings.append(Decoding(name, {"method": "lexicon", "delta": delta}, lexicon=lexicon))
    return decodings, notes


# ---- scoring --------------------------------------------------------------------------------------------------------


def score_predictions(
    predictions: Sequence[str],
    references: Sequence[str],
    confidences: Sequence[float] | None = None,
    seconds: float | None = None,
) -> dict[str, float | int | None]:
    """
    The metrics of one decoding over one dataset.

    Args:
        predictions, references: Recognised texts and labels, paired.
        confidences (*optional*): Probability of each prediction, for `mean_confidence`.
        seconds (*optional*): Time the predictions took, for `images_per_second`.

    Returns:
        `dict` with `num_samples`, `protocol_accuracy` (case-insensitive, `0-9a-z` only), `exact_accuracy`, `cer`
        and `ned` (on protocol-normalised strings), `cer_exact` and `ned_exact` (on the raw strings),
        `mean_confidence` and `images_per_second` (None when not given).
    """
    raw = compute_text_recognition_metrics(list(predictions), list(references))
    normalized = compute_text_recognition_metrics(
        [normalize_text(text) for text in predictions], [normalize_text(text) for text in references]
    )
    if confidences is not None and len(confidences) != len(predictions):
        raise ValueError(f"Got {len(confidences)} confidences for {len(predictions)} predictions.")
    return {
        "num_samples": len(references),
        "protocol_accuracy": raw["normalized_word_accuracy"],
        "exact_accuracy": raw["word_accuracy"],
        "cer": normalized["cer"],
        "ned": normalized["ned"],
        "cer_exact": raw["cer"],
        "ned_exact": raw["ned"],
        "mean_confidence": sum(confidences) / len(confidences) if confidences is not None else None,
        "images_per_second": len(references) / seconds if seconds else None,
    }


def sample_records(
    references: Sequence[str],
    predictions: Sequence[str],
    confidences: Sequence[float],
    paths: Sequence[str] | None = None,
) -> list[dict]:
    """Per-sample outcome under the protocol: index, path, label, prediction, confidence, edit distance (between the
    normalised strings), `correct`, and `length` (characters of the normalised label)."""
    records = []
    for index, (reference, prediction, confidence) in enumerate(zip(references, predictions, confidences)):
        label, predicted = normalize_text(reference), normalize_text(prediction)
        records.append(
            {
                "index": index,
                "path": paths[index] if paths is not None else str(index),
                "label": reference,
                "prediction": prediction,
                "confidence": float(confidence),
                "edit_distance": edit_distance(predicted, label),
                "correct": predicted == label,
                "length": len(label),
            }
        )
    return records


def accuracy_by_length(records: Sequence[dict]) -> list[dict]:
    """Protocol accuracy per normalised label length: `[{"length", "num_samples", "accuracy"}]`, by length."""
    by_length: dict[int, list[bool]] = {}
    for record in records:
        by_length.setdefault(record["length"], []).append(record["correct"])
    return [
        {"length": length, "num_samples": len(outcomes), "accuracy": sum(outcomes) / len(outcomes)}
        for length, outcomes in sorted(by_length.items())
    ]


def accuracy_by_rejection(records: Sequence[dict], rates: Sequence[float] = REJECTION_RATES) -> list[dict]:
    """
    Accuracy of the predictions kept when the least confident share `rate` of them is rejected:
    `[{"rejected" (the rate), "num_kept", "accuracy" (None when none is kept)}]`. Ties in confidence are broken by
    index, so the curve is deterministic; a confidence that ranks right above wrong reads gives a rising curve.
    """
    ranked = sorted(records, key=lambda record: (-record["confidence"], record["index"]))
    curve = []
    for rate in rates:
        kept = ranked[: len(ranked) - math.floor(rate * len(ranked) + 1e-9)]
        curve.append(
            {
                "rejected": rate,
                "num_kept": len(kept),
                "accuracy": sum(record["correct"] for record in kept) / len(kept) if kept else None,
            }
        )
    return curve


def expected_calibration_error(records: Sequence[dict], num_bins: int = CALIBRATION_BINS) -> float | None:
    """
    Expected calibration error of the records' confidences: the records are put in `num_bins` equal-width
    confidence bins ([0, 0.1), ..., [0.9, 1]); the result is the mean over bins, weighted by their share of the
    records, of |mean confidence - accuracy|. 0 for a calibrated confidence; None without records.
    """
    if not records:
        return None
    bins: dict[int, list[dict]] = {}
    for record in records:
        bins.setdefault(min(int(record["confidence"] * num_bins), num_bins - 1), []).append(record)
    return sum(
        abs(sum(r["confidence"] for r in members) - sum(r["correct"] for r in members)) for members in bins.values()
    ) / len(records)


def accuracy_by_confidence(records: Sequence[dict], thresholds: Sequence[float] = CONFIDENCE_THRESHOLDS) -> list[dict]:
    """
    Accuracy of the predictions kept when those below a confidence threshold are rejected:
    `[{"threshold", "coverage" (share kept), "accuracy" (None when none is kept)}]`.
    """
    curve = []
    for threshold in thresholds:
        kept = [record["correct"] for record in records if record["confidence"] >= threshold]
        curve.append(
            {
                "threshold": threshold,
                "coverage": len(kept) / len(records) if records else 0.0,
                "accuracy": sum(kept) / len(kept) if kept else None,
            }
        )
    return curve


# ---- inference ------------------------------------------------------------------------------------------------------


def resolve_checkpoint(model_name_or_path: str) -> str:
    """
    The folder or Hub id to load: `model_name_or_path` itself, except that the default `DEFAULT_CHECKPOINT` is
    also looked for under the repository root when the working directory has none.

    Raises:
        `ValueError`: the default checkpoint is in neither place (it has not been trained or downloaded yet).
    """
    if model_name_or_path != DEFAULT_CHECKPOINT or os.path.isdir(model_name_or_path):
        return model_name_or_path
    in_repository = REPO_ROOT / DEFAULT_CHECKPOINT
    if in_repository.is_dir():
        return str(in_repository)
    places = " and ".join(dict.fromkeys([os.getcwd(), str(REPO_ROOT)]))
    raise ValueError(
        f"The default checkpoint {DEFAULT_CHECKPOINT} does not exist (looked in {places}): pass "
        "--model_name_or_path with a checkpoint folder."
    )


def load_model_and_processor(model_name_or_path: str, device: str = "auto", trust_remote_code: bool = False):
    """The checkpoint's model (in eval mode, on `device`) and processor, through the Auto classes
    (`model_name_or_path` goes through `resolve_checkpoint`)."""
    from transformers import AutoModelForTextRecognition, AutoProcessor

    model_name_or_path = resolve_checkpoint(model_name_or_path)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForTextRecognition.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    return model.to(device).eval(), processor


# ---- datasets -------------------------------------------------------------------------------------------------------


@dataclass
class DatasetReport:
    """Everything measured on one dataset."""

    name: str
    source: str
    num_samples: int
    rows: list[dict]  # one per decoding: {"decoding", "lexicon_size", "lexicon_coverage", **score_predictions}
    records: dict[str, list[dict]]  # decoding name -> sample_records
    notes: list[str] = field(default_factory=list)

    def curves(self) -> dict:
        return {
            name: {
                "accuracy_by_length": accuracy_by_length(records),
                "accuracy_by_confidence": accuracy_by_confidence(records),
                "accuracy_by_rejection": accuracy_by_rejection(records),
            }
            for name, records in self.records.items()
        }


def build_report(
    name: str,
    source: str,
    references: Sequence[str],
    predictions: dict[str, Predictions],
    decodings: Sequence[Decoding],
    model_seconds: float = 0.0,
    paths: Sequence[str] | None = None,
    lexicons: Sequence[Sequence[str]] | None = None,
) -> DatasetReport:
    """
    Scores the predictions of each decoding (`score_predictions`, plus the share of labels found in the lexicon)
    and collects the per-sample records. `images_per_second` counts `model_seconds` plus the decoding's own time.
    """
    rows, records, notes = [], {}, []
    normalized_references = [normalize_text(reference) for reference in references]
    for decoding in decodings:
        prediction = predictions[decoding.name]
        seconds = model_seconds + prediction.decoding_seconds
        row = {"decoding": decoding.name, "lexicon_size": None, "lexicon_coverage": None}
        row.update(score_predictions(prediction.texts, references, prediction.confidences, seconds or None))
        if decoding.per_image:
            have = [bool(lexicon) for lexicon in lexicons]
            row["lexicon_size"] = sum(len(lexicon) for lexicon in lexicons) / max(sum(have), 1)
            row["lexicon_coverage"] = sum(
                label in {normalize_text(word) for word in lexicon}
                for label, lexicon in zip(normalized_references, lexicons)
            ) / len(references)
            if not all(have):
                missing = len(have) - sum(have)
                notes.append(f"{missing} image(s) have no lexicon: decoded greedily in '{decoding.name}'.")
        elif decoding.lexicon is not None:
            words = {normalize_text(word) for word in decoding.lexicon.words}
            row["lexicon_size"] = len(decoding.lexicon)
            row["lexicon_coverage"] = sum(label in words for label in normalized_references) / len(references)
        records[decoding.name] = sample_records(references, prediction.texts, prediction.confidences, paths)
        row["ece"] = expected_calibration_error(records[decoding.name])
        rows.append(row)
    return DatasetReport(name, source, len(references), rows, records, notes)


def evaluate_dataset(
    model,
    processor,
    dataset,
    decodings: Sequence[Decoding],
    name: str,
    source: str,
    batch_size: int = 32,
    cascade: CRNNCascade | None = None,
    rotate_tall: bool = True,
):
    """Runs `predict` over a standardised dataset (`image`, `text`, optional `lexicon`, `path`) chunk by chunk and
    returns its `DatasetReport`. Decodings needing per-image lexicons are dropped when the dataset has none. With a
    `cascade` (whose first stage is `model` and one of `decodings`), its fallback reads again the images that
    decoding is unsure of, as one more row. `rotate_tall`: tall crops are read turned as well (see `predict`)."""
    references = list(dataset["text"])
    paths = list(dataset["path"]) if "path" in dataset.column_names else None
    lexicons = None
    if LEXICON_COLUMN in dataset.column_names:
        lexicons = [list(lexicon or []) for lexicon in dataset[LEXICON_COLUMN]]
        lexicons = lexicons if any(lexicons) else None  # an all-empty column is no lexicon
    decodings = [decoding for decoding in decodings if lexicons is not None or not decoding.per_image]
    merged = {decoding.name: Predictions() for decoding in decodings}
    if cascade is not None:
        merged[cascade.name] = Predictions(reread=[])
    model_seconds = 0.0
    for start in range(0, len(dataset), CHUNK_SIZE):
        stop = min(start + CHUNK_SIZE, len(dataset))
        images = list(dataset.select_columns(["image"]).select(range(start, stop))["image"])
        chunk, seconds = predict(
            model, processor, images, decodings, batch_size, lexicons[start:stop] if lexicons is not None else None,
            rotate_tall,
        )
        model_seconds += seconds
        if cascade is not None:
            chunk[cascade.name] = cascade.read_again(chunk[cascade.decoding.name], images)
            chunk[cascade.name].reread = [start + row for row in chunk[cascade.name].reread]
        for name_, predictions in chunk.items():
            merged[name_].texts += predictions.texts
            merged[name_].confidences += predictions.confidences
            merged[name_].decoding_seconds += predictions.decoding_seconds
            if predictions.reread is not None:
                merged[name_].reread += predictions.reread
    report_decodings = list(decodings)
    if cascade is not None:
        report_decodings.append(Decoding(cascade.name, {}))
    report = build_report(name, source, references, merged, report_decodings, model_seconds, paths, lexicons)
    if cascade is not None:
        reread = len(merged[cascade.name].reread)
        report.notes.append(
            f"'{cascade.name}': {reread} of {len(references)} images ({reread / max(len(references), 1):.1%}) read "
            "again by the fallback; its images/s count both stages."
        )
    return report


# ---- outputs --------------------------------------------------------------------------------------------------------

TABLE_HEADER = (
    "Dataset", "Decoding", "Images", "Protocol acc.", "Exact acc.", "CER", "N.E.D.", "Mean conf.", "ECE",
    "Label in lexicon", "Images/s",
)
REJECTION_TABLE_RATES = (0.0, 0.1, 0.2, 0.3, 0.5)  # the columns of the Markdown's accuracy-against-rejection tables


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _number(value, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table_row(dataset: str, row: dict) -> list[str]:
    """A results row formatted for `TABLE_HEADER`."""
    speed = row.get("images_per_second")
    return [
        dataset,
        row["decoding"],
        str(row["num_samples"]),
        _percent(row["protocol_accuracy"]),
        _percent(row["exact_accuracy"]),
        _number(row["cer"]),
        _number(row["ned"]),
        _number(row["mean_confidence"], 3),
        _number(row.get("ece"), 3),
        _percent(row.get("lexicon_coverage")),
        "—" if speed is None else f"{speed:,.0f}",
    ]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table; numeric-looking columns are right-aligned."""
    def numeric(column: int) -> bool:
        return all(re.fullmatch(r"[—\d.,%]+", str(row[column])) for row in rows) if rows else False

    cells = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    align = ["---:" if numeric(column) else "---" for column in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def write_mistakes_csv(report: DatasetReport, path: str | os.PathLike) -> int:
    """Writes every protocol error of every decoding, most confident first within a decoding; returns the count."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MISTAKE_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for decoding, records in report.records.items():
            mistakes = sorted((r for r in records if not r["correct"]), key=lambda r: (-r["confidence"], r["index"]))
            for record in mistakes:
                writer.writerow({**record, "decoding": decoding, "confidence": f"{record['confidence']:.6g}"})
                count += 1
    return count


@dataclass
class _Panel:
    """One chart of the accuracy plot: lines (`{label: (xs, ys)}`, ys in [0, 1]) and optional grey count bars."""

    title: str
    xlabel: str
    ylabel: str
    series: dict
    bars: tuple[list, list] | None = None  # (xs, counts), drawn on their own axis ("images")


def _accuracy_panels(report: DatasetReport) -> list[_Panel]:
    curves = report.curves()
    length_series = {
        name: ([p["length"] for p in c["accuracy_by_length"]], [p["accuracy"] for p in c["accuracy_by_length"]])
        for name, c in curves.items()
    }
    threshold_series = {}
    for name, c in curves.items():
        kept = [p for p in c["accuracy_by_confidence"] if p["accuracy"] is not None]
        threshold_series[f"{name}: accuracy"] = ([p["threshold"] for p in kept], [p["accuracy"] for p in kept])
        points = c["accuracy_by_confidence"]
        threshold_series[f"{name}: share kept"] = ([p["threshold"] for p in points], [p["coverage"] for p in points])
    counts = next(iter(curves.values()))["accuracy_by_length"] if curves else []
    return [
        _Panel(
            f"{report.name}: protocol accuracy by label length",
            "label length (characters of 0-9a-z); grey bars: images",
            "accuracy",
            length_series,
            bars=([p["length"] for p in counts], [p["num_samples"] for p in counts]),
        ),
        _Panel(
            "rejecting predictions below a confidence threshold",
            "confidence threshold",
            "accuracy of the kept (solid) / share kept (dashed)",
            threshold_series,
        ),
    ]


def plot_accuracy(report: DatasetReport, path: str | os.PathLike) -> str:
    """Draws accuracy against label length (with the number of images per length) and, per decoding, the accuracy
    and share of images kept when predictions below a confidence threshold are rejected. Uses matplotlib when
    installed, else a plain PIL drawing. Returns the backend used (`"matplotlib"` or `"pil"`)."""
    panels = _accuracy_panels(report)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plot_with_pil(panels, path)
        return "pil"
    figure, axes = plt.subplots(1, len(panels), figsize=(13, 4.8))
    for axis, panel in zip(axes, panels):
        for index, (label, (xs, ys)) in enumerate(panel.series.items()):
            dashed = label.endswith("share kept")
            color = f"C{index // 2}" if panel.bars is None else f"C{index}"  # a decoding's two curves share a colour
            axis.plot(xs, ys, "--" if dashed else "-", marker="o", markersize=3, color=color, label=label)
        axis.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel, ylim=(-0.02, 1.02))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
        if panel.bars is not None:
            twin = axis.twinx()
            twin.bar(*panel.bars, color="0.85", zorder=0)
            twin.set_ylabel("images")
            axis.set_zorder(twin.get_zorder() + 1)
            axis.patch.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return "matplotlib"


_PIL_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))


def _x_ticks(values: Sequence[float]) -> list[float]:
    """Tick positions: every integer (thinned to at most 16) for integer data, else multiples of a round step
    (0.1, 0.2, 0.5, 1, 2, 5, ...) giving at most 6 ticks."""
    low, high = min(values), max(values)
    if all(float(value).is_integer() for value in values):
        step = max(1, math.ceil((high - low + 1) / 16))
        return list(range(int(low), int(high) + 1, step))
    span = max(high - low, 1e-9)
    step = next(
        base * 10.0**exponent
        for exponent in range(math.floor(math.log10(span)) - 1, math.floor(math.log10(span)) + 2)
        for base in (1, 2, 5)
        if span / (base * 10.0**exponent) <= 5
    )
    first = math.ceil(low / step - 1e-9)
    return [round(index * step, 10) for index in range(first, math.floor(high / step + 1e-9) + 1)]


def _plot_with_pil(panels: Sequence[_Panel], path) -> None:
    """The charts with PIL only (no matplotlib): axes, ticks, 0-1 grid, grey count bars, one polyline per series
    (dashed for the shares kept, in the colour of their decoding), a legend."""
    from PIL import Image, ImageDraw

    panel_width, height, margin = 600, 440, 55
    legend_lines = max(len(panel.series) for panel in panels)
    image = Image.new("RGB", (panel_width * len(panels), height + 14 * legend_lines), "white")
    draw = ImageDraw.Draw(image)
    for number, panel in enumerate(panels):
        left, right, top, bottom = number * panel_width + margin, (number + 1) * panel_width - 45, 30, height - 90
        all_x = [x for xs, _ in panel.series.values() for x in xs] + (list(panel.bars[0]) if panel.bars else [])
        all_x = all_x or [0, 1]
        x_min, x_max = min(all_x), max(all_x)
        pad = 0.5 if panel.bars else 0.0  # bars need half a step of room at both ends
        x_min, x_max = x_min - pad, max(x_max + pad, x_min + 1e-9)

        def to_pixel(x, y, left=left, right=right, top=top, bottom=bottom, x_min=x_min, x_max=x_max):
            return (left + (x - x_min) / (x_max - x_min) * (right - left), bottom - y * (bottom - top))

        draw.text((left, 8), panel.title, fill="black")
        if panel.bars:
            most = max(panel.bars[1]) or 1
            half = 0.4 * (right - left) / (x_max - x_min)
            for x, count in zip(*panel.bars):  # the tallest bar at 90% of the height, under the 1.0 grid line
                x_pixel, y_pixel = to_pixel(x, 0.9 * count / most)
                draw.rectangle((x_pixel - half, y_pixel, x_pixel + half, bottom), fill=(222, 222, 222))
            draw.text((right + 4, to_pixel(x_min, 0.9)[1] - 6), f"{most}", fill=(120, 120, 120))
            draw.text((right + 4, bottom - 10), "0", fill=(120, 120, 120))
            draw.text((right + 4, (top + bottom) // 2), "images", fill=(120, 120, 120))
        draw.rectangle((left, top, right, bottom), outline="black")
        for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
            _, y = to_pixel(x_min, tick)
            draw.line((left, y, right, y), fill=(210, 210, 210))
            draw.text((left - 35, y - 6), f"{tick:.2f}", fill="black")
        for tick in _x_ticks(all_x):
            x, _ = to_pixel(tick, 0)
            draw.line((x, bottom, x, bottom + 4), fill="black")
            draw.text((x - 8, bottom + 6), f"{tick:g}", fill="black")
        draw.text((left, bottom + 22), panel.xlabel, fill="black")
        draw.text((left, bottom + 36), f"y: {panel.ylabel}", fill="black")
        for index, (label, (xs, ys)) in enumerate(panel.series.items()):
            dashed = label.endswith("share kept")
            color = _PIL_COLORS[(index // 2 if panel.bars is None else index) % len(_PIL_COLORS)]
            points = [to_pixel(x, y) for x, y in zip(xs, ys)]
            for segment, (start, end) in enumerate(zip(points, points[1:])):
                if not dashed or segment % 2 == 0:
                    draw.line((start, end), fill=color, width=2)
            for x, y in points:
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)
            style = "dashed" if dashed else "solid"
            draw.text((left, bottom + 56 + 14 * index), f"{label} ({style})", fill=color)
    image.save(path)


def _file_slug(name: str, taken: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "dataset"
    candidate, suffix = slug, 2
    while candidate in taken:
        candidate, suffix = f"{slug}_{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def write_reports(reports: Sequence[DatasetReport], output_dir: str | os.PathLike, metadata: dict) -> dict:
    """Writes `results.json`, `results.md`, and per dataset the mistakes CSV and accuracy plot. Returns the JSON
    content."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    results = {**metadata, "datasets": []}
    for report in reports:
        slug = _file_slug(dataset_display_name(report.source), taken)
        mistakes_file, plot_file = MISTAKES_CSV.format(slug), ACCURACY_PLOT.format(slug)
        num_mistakes = write_mistakes_csv(report, output_dir / mistakes_file)
        backend = plot_accuracy(report, output_dir / plot_file)
        results["datasets"].append(
            {
                "name": report.name,
                "source": report.source,
                "num_samples": report.num_samples,
                "rows": report.rows,
                "curves": report.curves(),
                "notes": report.notes,
                "files": {"mistakes": mistakes_file, "plot": plot_file, "plot_backend": backend},
                "num_mistakes": num_mistakes,
            }
        )
    with open(output_dir / RESULTS_JSON, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, ensure_ascii=False)
    (output_dir / RESULTS_MARKDOWN).write_text(results_markdown(results), encoding="utf-8")
    return results


def describe_machine_load(load: dict | None) -> str:
    """`{"start": machine_load(), "end": machine_load()}` in words, or `""` when unknown."""
    start, end = (load or {}).get("start"), (load or {}).get("end")
    if not start or not end:
        return ""
    return (
        f"Machine load (1-minute average): {start['load_average_1min']} at the start, {end['load_average_1min']} at "
        f"the end, on {start['cpu_count']} CPU(s)"
    )


def rejection_markdown(dataset: dict) -> list[str]:
    """Markdown lines of one dataset's accuracy when the least confident reads are rejected, one row per decoding."""
    header = ["Decoding", "ECE", *[f"{rate:.0%} rejected" for rate in REJECTION_TABLE_RATES]]
    ece = {row["decoding"]: row.get("ece") for row in dataset["rows"]}
    rows = []
    for name, curves in dataset["curves"].items():
        by_rate = {point["rejected"]: point["accuracy"] for point in curves.get("accuracy_by_rejection", [])}
        rows.append([name, _number(ece.get(name), 3), *[_percent(by_rate.get(rate)) for rate in REJECTION_TABLE_RATES]])
    return [
        f"Accuracy of the kept reads when the least confident are rejected, {dataset['name']}:",
        "",
        markdown_table(header, rows),
    ]


def results_markdown(results: dict) -> str:
    """The Markdown report of a `results.json` content: what was run, the table, and the notes."""
    rows = [table_row(dataset["name"], row) for dataset in results["datasets"] for row in dataset["rows"]]
    notes = list(results.get("notes", [])) + [
        f"{dataset['name']}: {note}" for dataset in results["datasets"] for note in dataset["notes"]
    ]
    load = describe_machine_load(results.get("machine_load"))
    lines = [
        f"# Evaluation of `{results['model']}`",
        "",
        f"- Run: `{results['command']}` on {results['created']}",
        f"- Device: {results['device']} ({results['torch_threads']} torch thread(s)), {results['platform']}",
        *([f"- {load}"] if load else []),
        (
            "- Protocol accuracy: case-insensitive, only `0-9a-z` kept (the benchmark protocol); exact accuracy: as "
            "written. CER and N.E.D. on protocol-normalised strings. Images/s: preprocessing + forward + that decoding."
        ),
        "",
        markdown_table(TABLE_HEADER, rows),
    ]
    for dataset in results["datasets"]:
        lines += ["", *rejection_markdown(dataset)]
    if notes:
        lines += ["", "Notes:", "", *[f"- {note}" for note in notes]]
    files = [f"`{d['files']['mistakes']}`, `{d['files']['plot']}`" for d in results["datasets"]]
    lines += ["", f"Mistakes and plots: {'; '.join(files)}.", ""]
    return "\n".join(lines)


# ---- entry point ----------------------------------------------------------------------------------------------------


def machine_load() -> dict | None:
    """The 1-minute load average and the CPU count (speeds on a busy machine are indicative only); None where the
    platform has no load average."""
    try:
        return {"load_average_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()}
    except (AttributeError, OSError):
        return None


def evaluate(args: EvaluationArguments, command: str | None = None) -> dict:
    """Runs the evaluation `args` describe, writes the report files, prints the table, returns `results.json`."""
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    load_at_start = machine_load()
    model_path = resolve_checkpoint(args.model_name_or_path)
    model, processor = load_model_and_processor(model_path, args.device, args.trust_remote_code)
    global_decodings, notes = global_lexicon_decodings(args.global_lexicons, processor, args.lexicon_delta)
    if args.rotate_tall:
        notes.append(
            f"Crops at least {TALL_ASPECT_RATIO:g} times as tall as wide were read upright and turned a quarter turn "
            "each way, keeping the most confident reading (--rotate_tall False reads them upright only)."
        )
    decodings = [lexicon_free_decoding(args.beam_width)]
    if args.language_model is not None:
        language_model = resolve_language_model(args.language_model, processor)
        decodings.append(language_model_decoding(language_model, args.beam_width))
    cascade = None
    if args.fallback_model is not None:
        fallback_model, fallback_processor = load_model_and_processor(
            args.fallback_model, args.device, args.trust_remote_code
        )
        fallback_language_model = None
        if args.language_model is not None:
            fallback_language_model = resolve_language_model(args.language_model, fallback_processor)
        cascade = CRNNCascade(
            model, processor, fallback_model, fallback_processor, args.fallback_threshold, fallback_language_model,
            args.batch_size, decoding=decodings[0], fallback_beam_width=args.fallback_beam_width,
            rotate_tall=args.rotate_tall, word_threshold=args.fallback_word_threshold,
        )
    decodings += [per_image_lexicon_decoding(args.lexicon_delta), *global_decodings]
    reports = []
    for source in expand_sources(args.datasets):
        dataset = load_evaluation_dataset(
            source,
            split=args.split,
            image_column=args.image_column,
            text_column=args.text_column,
            lexicon_column=args.lexicon_column,
            gt_format=args.gt_format,
            lexicon_dir=args.lexicon_dir,
            max_samples=args.max_samples,
            num_synthetic_samples=args.num_synthetic_samples,
            synthetic_seed=args.synthetic_seed,
            synthetic_lexicon_size=args.synthetic_lexicon_size,
            synthetic_crops_dir=args.synthetic_crops_dir,
            cache_dir=args.cache_dir,
        )
        name = dataset_display_name(source)
        if source == SYNTHETIC_SOURCE:
            name = synthetic_display_name(args.synthetic_seed)
            families = ", ".join(held_out_font_families())
            notes.append(f"{name}: {len(dataset)} words in the font families held out of training here: {families}.")
            if args.synthetic_crops_dir is not None:
                notes.append(f"{name}: written to and read back from the crops folder {args.synthetic_crops_dir}.")
        logger.info("Evaluating on %s (%d images)", name, len(dataset))
        reports.append(
            evaluate_dataset(
                model, processor, dataset, decodings, name, source, args.batch_size, cascade, args.rotate_tall
            )
        )
    metadata = {
        "model": model_path,
        "fallback_model": args.fallback_model,
        "command": command or "hf-crnn evaluate",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(model.device),
        "torch_threads": torch.get_num_threads(),
        "machine_load": {"start": load_at_start, "end": machine_load()},
        "platform": f"Python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}",
        "arguments": asdict(args),
        "notes": notes,
    }
    results = write_reports(reports, args.output_dir, metadata)
    print(results_markdown(results))
    print(f"Wrote {RESULTS_JSON}, {RESULTS_MARKDOWN}, mistakes CSVs and plots to {args.output_dir}")
    return results


def main(argv: Sequence[str] | None = None, prog: str = "hf-crnn evaluate") -> int:
    """
    `hf-crnn evaluate ARGS` / `python examples/run_evaluation.py ARGS`. Returns the exit code (2: bad input).

    `prog` names the command in `--help`, in error messages and in the command line the reports record.
    """
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(
        EvaluationArguments,
        prog=prog,
        description="Evaluates a CRNN checkpoint: protocol and exact word accuracy, CER, N.E.D., confidence and "
        "speed, lexicon-free and with lexicons; see docs/evaluation.md.",
    )
    try:
        (args,) = parser.parse_args_into_dataclasses(args=argv)
        evaluate(args, command=" ".join([prog, shlex.join(argv)]).strip())
    except (ValueError, OSError) as error:  # bad arguments or data, a checkpoint or file that cannot be read
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "CONFIDENCE_THRESHOLDS",
    "CascadeArguments",
    "DEFAULT_CHECKPOINT",
    "DEFAULT_GLOBAL_LEXICON",
    "DatasetReport",
    "Decoding",
    "EvaluationArguments",
    "Predictions",
    "accuracy_by_confidence",
    "accuracy_by_length",
    "accuracy_by_rejection",
    "build_report",
    "describe_machine_load",
    "evaluate",
    "evaluate_dataset",
    "expected_calibration_error",
    "global_lexicon_decodings",
    "language_model_decoding",
    "lexicon_free_decoding",
    "load_model_and_processor",
    "machine_load",
    "main",
    "markdown_table",
    "per_image_lexicon_decoding",
    "plot_accuracy",
    "predict",
    "rejection_markdown",
    "resolve_checkpoint",
    "resolve_language_model",
    "results_markdown",
    "sample_records",
    "score_predictions",
    "table_row",
    "write_reports",
]
