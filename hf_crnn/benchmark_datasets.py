# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Loaders for scene-text recognition evaluation sets, all returning a `datasets.Dataset` with the columns

    image    (datasets.Image)            the word crop
    text     (string)                    its label, as written in the ground truth (case and punctuation kept)
    lexicon  (list of strings, optional) the image's own lexicon (IIIT5K / SVT / IC03 "50"-style), when there is one
    path     (string, optional)          where the sample came from (crop path, or LMDB key), for error analysis

Layouts read:

* **a folder of crops plus a ground-truth file** (`load_crops_folder`): IIIT5K / SVT / IC13 / IC15 style. The
  ground-truth file is one of `GT_FILE_NAMES` in the folder (or any file passed as `gt_file`), in one of the
  `GT_FORMATS`:

      icdar   word_1.png, "Tiredness"            ICDAR 2013/2015 (label in double quotes, \\" escapes a quote)
      tsv     word_1.png<TAB>Tiredness[<TAB>lexicon]
      csv     word_1.png,Tiredness[,lexicon]     optionally with a header naming the columns (file_name,text,...)
      space   word_1.png Tiredness               path, whitespace, then the label (which may contain spaces)

  A lexicon cell holds words separated by commas and/or whitespace. Per-image lexicon files are read from a
  `lexicon_dir` (or a `lexicons/`, `lexicon/` or `lex/` folder beside the crops): `<image stem>.txt` with words
  separated by newlines, commas or spaces.
* **clovaai / crnn LMDB evaluation sets** (`load_lmdb_benchmark`, through `hf_crnn.lmdb_dataset`).
* **the built-in synthetic words in held-out fonts** (`load_synthetic_benchmark`), with 50-word per-image lexicons
  built like the benchmarks' (the label plus distractors). `write_synthetic_crops` writes them as a crops folder
  (`write_crops_folder`: PNGs, an ICDAR-style `gt.txt`, `lexicons/<stem>.txt`), read back like a real benchmark.
* **any `datasets` dataset** with an image column and a text column (`save_to_disk` folders, parquet files,
  `imagefolder` folders with a `metadata.csv`/`metadata.jsonl`, or a Hub name when online).

`load_evaluation_dataset(source)` picks the right loader for a path or name.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .cli import IMAGE_EXTENSIONS
from .lmdb_dataset import find_lmdb_databases, load_lmdb_dataset
from .metrics import normalize_text

logger = logging.getLogger(__name__)

GT_FILE_NAMES = (
    "gt.txt", "gt.tsv", "gt.csv", "labels.txt", "labels.tsv", "labels.csv", "test_gt.txt", "annotations.txt",
)
"""Ground-truth file names looked for in a crops folder, in this order."""

GT_FORMATS = ("auto", "icdar", "tsv", "csv", "space")
LEXICON_DIR_NAMES = ("lexicons", "lexicon", "lex")
"""Folders beside the crops searched for per-image lexicon files `<image stem>.txt`."""

SYNTHETIC_SOURCE = "synthetic"
"""The `source` naming the built-in synthetic held-out-font words in `load_evaluation_dataset`."""
DEFAULT_SYNTHETIC_SEED = 20151
"""Seed of the synthetic evaluation words: distinct from the seeds the examples train and validate with."""
DEFAULT_SYNTHETIC_LEXICON_SIZE = 50

# Column names recognised when a dataset does not say which column holds what (first match wins).
IMAGE_COLUMN_NAMES = ("image", "img", "jpg", "png", "pixel_values")
TEXT_COLUMN_NAMES = ("text", "label", "word", "transcription", "gt", "ground_truth")
PATH_COLUMN_NAMES = ("file_name", "filename", "path", "image_path", "file", "name", "image")
LEXICON_COLUMN = "lexicon"

# `name, "label"`: the ICDAR word-recognition ground truth. The label is everything between the first and last quote.
_ICDAR_LINE = re.compile(r'^\s*(?P<path>[^,"]+?)\s*,\s*"(?P<text>.*)"\s*$')
_WORD_SEPARATORS = re.compile(r"[,\s]+")
_ICDAR_ESCAPE = re.compile(r'\\(["\\])')
SYNTHETIC_MANIFEST = "synthetic.json"
"""File marking a crops folder written by `write_synthetic_crops` (it may be rewritten; other folders never are)."""


@dataclass
class GroundTruthEntry:
    """One line of a ground-truth file: image path (as written, relative to the crops folder), label, lexicon."""

    path: str
    text: str
    lexicon: list[str] | None = None


def split_words(text: str) -> list[str]:
    """Words of a lexicon cell or file: separated by commas and/or whitespace, empty pieces dropped."""
    return [word for word in _WORD_SEPARATORS.split(text) if word]


def _looks_like_image_path(text: str) -> bool:
    return text.strip().lower().endswith(IMAGE_EXTENSIONS)


def _is_csv_header(fields: Sequence[str]) -> bool:
    names = {field.strip().lower() for field in fields}
    return bool(names & set(PATH_COLUMN_NAMES)) and bool(names & set(TEXT_COLUMN_NAMES))


def detect_gt_format(path: str | os.PathLike, first_line: str) -> str:
    """The `GT_FORMATS` entry a ground-truth file is written in, from its extension and first line."""
    suffix = Path(path).suffix.lower()
    if suffix == ".tsv" or "\t" in first_line:
        return "tsv"
    if _ICDAR_LINE.match(first_line):
        return "icdar"
    if suffix == ".csv":
        return "csv"
    fields = next(csv.reader([first_line]))
    if len(fields) >= 2 and (_looks_like_image_path(fields[0]) or _is_csv_header(fields)):
        return "csv"
    return "space"


def _unquote(text: str) -> str:
    """A label with one pair of surrounding double quotes removed (`"word"` -> `word`)."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def parse_gt_file(path: str | os.PathLike, gt_format: str = "auto") -> list[GroundTruthEntry]:
    """
    Reads a word-recognition ground-truth file (see the module docstring for the formats).

    Args:
        path: The file (UTF-8; a byte-order mark, as in the ICDAR 2015 files, is ignored).
        gt_format (`str`, defaults to `"auto"`): One of `GT_FORMATS`; `"auto"` detects it from the first line.

    Returns:
        `list[GroundTruthEntry]` in file order; blank lines are skipped.

    Raises:
        `ValueError`: for an unknown format, an empty file, or a line that does not parse (naming file and line).
    """
    if gt_format not in GT_FORMATS:
        raise ValueError(f"`gt_format` must be one of {GT_FORMATS}, got {gt_format!r}.")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = [(number, line.rstrip("\r\n")) for number, line in enumerate(handle, start=1) if line.strip()]
    if not lines:
        raise ValueError(f"The ground-truth file {os.fspath(path)!r} is empty.")
    if gt_format == "auto":
        gt_format = detect_gt_format(path, lines[0][1])

    split = _split_csv_lines if gt_format == "csv" else _split_text_lines
    entries = []
    for number, image_path, text, lexicon in split(lines, gt_format, os.fspath(path)):
        if not image_path:
            raise ValueError(f"{os.fspath(path)}:{number}: empty image path.")
        entries.append(GroundTruthEntry(image_path, text, split_words(lexicon) if lexicon is not None else None))
    return entries


_SplitLine = tuple[int, str, str, "str | None"]  # (line number, image path, label, lexicon cell or None)


def _split_csv_lines(lines: list[tuple[int, str]], gt_format: str, source: str) -> list[_SplitLine]:
    """CSV lines: positional `path, label[, lexicon]`, or columns named by a header line."""
    rows = list(csv.reader((line for _, line in lines), skipinitialspace=True))
    numbers = [number for number, _ in lines]
    columns = {"path": 0, "text": 1, "lexicon": 2}
    if _is_csv_header(rows[0]):
        header = [name.strip().lower() for name in rows[0]]
        columns = {
            "path": next(header.index(name) for name in PATH_COLUMN_NAMES if name in header),
            "text": next(header.index(name) for name in TEXT_COLUMN_NAMES if name in header),
            "lexicon": header.index(LEXICON_COLUMN) if LEXICON_COLUMN in header else None,
        }
        rows, numbers = rows[1:], numbers[1:]
    split_lines = []
    for number, row in zip(numbers, rows):
        if len(row) <= max(columns["path"], columns["text"]):
            raise ValueError(f"{source}:{number}: expected at least 2 comma-separated fields, got {row}.")
        lexicon_column = columns["lexicon"]
        lexicon = row[lexicon_column] if lexicon_column is not None and lexicon_column < len(row) else None
        split_lines.append((number, row[columns["path"]].strip(), row[columns["text"]], lexicon))
    return split_lines


def _split_text_lines(lines: list[tuple[int, str]], gt_format: str, source: str) -> list[_SplitLine]:
    """`icdar`, `tsv` and `space` lines."""
    split_lines = []
    for number, line in lines:
        if gt_format == "icdar":
            match = _ICDAR_LINE.match(line)
            if match is None:
                raise ValueError(f'{source}:{number}: expected `name, "label"`, got {line!r}.')
            text = _ICDAR_ESCAPE.sub(r"\1", match["text"])  # \" and \\ escapes
            split_lines.append((number, match["path"], text, None))
            continue
        fields = line.split("\t") if gt_format == "tsv" else line.strip().split(None, 1)
        if len(fields) < 2:
            separator = "a tab" if gt_format == "tsv" else "whitespace"
            raise ValueError(f"{source}:{number}: expected `path`, {separator}, `label`; got {line!r}.")
        lexicon = fields[2] if gt_format == "tsv" and len(fields) > 2 else None
        split_lines.append((number, fields[0].strip(), _unquote(fields[1].strip()), lexicon))
    return split_lines


def find_gt_file(folder: str | os.PathLike) -> Path | None:
    """The first of `GT_FILE_NAMES` present in `folder`, or None."""
    for name in GT_FILE_NAMES:
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    return None


def _find_lexicon_dir(folder: Path) -> Path | None:
    for name in LEXICON_DIR_NAMES:
        if (folder / name).is_dir():
            return folder / name
    return None


def load_crops_folder(
    path: str | os.PathLike,
    gt_file: str | os.PathLike | None = None,
    gt_format: str = "auto",
    lexicon_dir: str | os.PathLike | None = None,
    max_samples: int | None = None,
):
    """
    A folder of word crops and its ground-truth file as a `datasets.Dataset`.

    Args:
        path: The crops folder, or the ground-truth file itself (its folder is then the crops folder).
        gt_file (*optional*): The ground-truth file; default the first of `GT_FILE_NAMES` in the folder. Image paths
            in it are relative to the crops folder (or absolute).
        gt_format (`str`, defaults to `"auto"`): One of `GT_FORMATS`.
        lexicon_dir (*optional*): Folder of per-image lexicon files `<image stem>.txt`; default a `lexicons/`,
            `lexicon/` or `lex/` folder beside the crops, if any. Used for images whose line has no lexicon cell.
        max_samples (`int`, *optional*): Keep the first `max_samples` lines only.

    Returns:
        `datasets.Dataset` with `image`, `text`, `path` (as written in the ground truth) and, when any image has
        one, `lexicon` (empty for images without).

    Raises:
        `ValueError`: no ground-truth file, unparsable lines, or images that do not exist (the first few named).
    """
    import datasets

    path = Path(path)
    if path.is_file():
        gt_file, folder = path, path.parent
    elif path.is_dir():
        folder = path
        gt_file = Path(gt_file) if gt_file is not None else find_gt_file(folder)
        if gt_file is None:
            raise ValueError(f"No ground-truth file in {str(folder)!r}: expected one of {list(GT_FILE_NAMES)}.")
    else:
        raise ValueError(f"Crops folder {str(path)!r} does not exist.")

    entries = parse_gt_file(gt_file, gt_format)[:max_samples]
    image_paths = [str(folder / entry.path) for entry in entries]
    missing = [entry.path for entry, image_path in zip(entries, image_paths) if not os.path.isfile(image_path)]
    if missing:
        raise ValueError(
            f"{len(missing)} image(s) listed in {str(gt_file)!r} do not exist under {str(folder)!r}, "
            f"e.g. {missing[:3]}."
        )

    lexicon_dir = Path(lexicon_dir) if lexicon_dir is not None else _find_lexicon_dir(folder)
    if lexicon_dir is not None and not lexicon_dir.is_dir():
        raise ValueError(f"Lexicon folder {str(lexicon_dir)!r} does not exist.")
    lexicons = []
    for entry in entries:
        lexicon = entry.lexicon
        if lexicon is None and lexicon_dir is not None:
            lexicon_file = lexicon_dir / f"{Path(entry.path).stem}.txt"
            if lexicon_file.is_file():
                lexicon = split_words(lexicon_file.read_text(encoding="utf-8-sig"))
        lexicons.append(lexicon)

    columns = {"image": image_paths, "text": [entry.text for entry in entries], "path": [e.path for e in entries]}
    features = {"image": datasets.Image(), "text": datasets.Value("string"), "path": datasets.Value("string")}
    if any(lexicon is not None for lexicon in lexicons):
        without = sum(lexicon is None for lexicon in lexicons)
        if without:
            logger.warning("%d of %d images in %s have no lexicon.", without, len(entries), gt_file)
        columns[LEXICON_COLUMN] = [lexicon or [] for lexicon in lexicons]
        features[LEXICON_COLUMN] = datasets.Sequence(datasets.Value("string"))
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


def load_lmdb_benchmark(path: str | os.PathLike, max_samples: int | None = None, cache_dir: str | None = None):
    """
    A clovaai / crnn LMDB evaluation set (`image-%09d`, `label-%09d`, `num-samples`), or a folder of them, read with
    `hf_crnn.lmdb_dataset.load_lmdb_dataset`; a `path` column names each sample's database and key.

    Requires the `lmdb` package (`pip install lmdb`).
    """
    dataset = load_lmdb_dataset(path, max_samples=max_samples, cache_dir=cache_dir)
    keys = [
        f"{source}/image-{index:09d}" if source != "." else f"image-{index:09d}"
        for source, index in zip(dataset["source"], dataset["lmdb_index"])
    ]
    return dataset.add_column("path", keys)


def synthetic_lexicons(labels: Sequence[str], words: Sequence[str], size: int, seed: int) -> list[list[str]]:
    """
    Per-image lexicons in the style of the benchmarks' 50-word lexicons: each image's label plus `size - 1` other
    words drawn (reproducibly, from `seed` and the image's index) from `words`, in random order. Distractors never
    match the label under the benchmark protocol.
    """
    if size < 1:
        raise ValueError(f"The lexicon size must be at least 1, got {size}.")
    # Only words a 36-character model can spell (`wamerican` also lists "Brie's", "café", ...), like the labels.
    words = [word for word in words if normalize_text(word) == word.lower()]
    lexicons = []
    for index, label in enumerate(labels):
        rng = random.Random(f"hf-crnn-eval-lexicon:{seed}:{index}")
        target = normalize_text(label)
        distractors: list[str] = []
        seen = {target}
        # Bounded tries: a tiny word list may not hold `size - 1` distinct distractors.
        for _ in range(20 * size):
            if len(distractors) == size - 1:
                break
            word = rng.choice(words)
            if normalize_text(word) not in seen:
                seen.add(normalize_text(word))
                distractors.append(word)
        lexicon = [label, *distractors]
        rng.shuffle(lexicon)
        lexicons.append(lexicon)
    return lexicons


def held_out_font_families() -> list[str]:
    """The font families the synthetic benchmark renders in: those `hf_crnn.synthetic` holds out of training
    (`fonts="eval"`) among the fonts installed here. The split depends on which families are installed, so a report
    should name them: a checkpoint trained on a machine with other fonts may have been trained on some of these."""
    from .synthetic import select_fonts

    return sorted({font.family for font in select_fonts("eval")})


def load_synthetic_benchmark(
    num_samples: int = 500,
    seed: int = DEFAULT_SYNTHETIC_SEED,
    lexicon_size: int | None = DEFAULT_SYNTHETIC_LEXICON_SIZE,
    cache_dir: str | None = None,
):
    """
    The built-in synthetic words (`hf_crnn.synthetic`) rendered in the fonts held out of training
    (`fonts="eval"`), with a `lexicon_size`-word lexicon per image (`None` or 0: no lexicon column).

    Returns:
        `datasets.Dataset` with `image`, `text`, `path` (`"synthetic/<index>"`), `font`, and `lexicon`.
    """
    from .synthetic import load_word_list, make_synthetic_dataset

    dataset = make_synthetic_dataset(num_samples, seed=seed, fonts="eval", cache_dir=cache_dir)
    dataset = dataset.add_column("path", [f"{SYNTHETIC_SOURCE}/{index}" for index in range(len(dataset))])
    if lexicon_size:
        lexicons = synthetic_lexicons(dataset["text"], load_word_list(), lexicon_size, seed)
        dataset = dataset.add_column(LEXICON_COLUMN, lexicons)
    return dataset


def icdar_line(path: str, text: str) -> str:
    """One ICDAR ground-truth line, `path, "label"`, with `\\` and `"` in the label escaped (as `parse_gt_file`
    reads them back)."""
    if "," in path or '"' in path or "\n" in path or "\n" in text or "\r" in text:
        raise ValueError(f"Cannot write {path!r} / {text!r} as an ICDAR ground-truth line (comma, quote or newline).")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'{path}, "{escaped}"\n'


def write_crops_folder(dataset, folder: str | os.PathLike) -> Path:
    """
    Writes a dataset (`image`, `text`, optional `lexicon`) as a benchmark crops folder, the layout
    `load_crops_folder` reads: `word_<n>.png` (n from 1), an ICDAR-style `gt.txt` (`word_1.png, "label"`), and, when
    there are lexicons, `lexicons/word_<n>.txt` (one word per line; images with an empty lexicon get no file).

    Args:
        dataset: A `datasets.Dataset` (or any sequence of such dicts).
        folder: Where to write; created if missing. Existing files of the same names are overwritten.

    Returns:
        The path of the ground-truth file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lexicon_dir = folder / LEXICON_DIR_NAMES[0]
    lines = []
    for number, sample in enumerate(dataset, start=1):
        name = f"word_{number}.png"
        sample["image"].save(folder / name)
        lines.append(icdar_line(name, sample["text"]))
        if sample.get(LEXICON_COLUMN):
            lexicon_dir.mkdir(exist_ok=True)
            (lexicon_dir / f"word_{number}.txt").write_text("\n".join(sample[LEXICON_COLUMN]) + "\n", encoding="utf-8")
    if not lines:
        raise ValueError("Cannot write an empty dataset as a crops folder.")
    gt_file = folder / GT_FILE_NAMES[0]
    gt_file.write_text("".join(lines), encoding="utf-8")
    return gt_file


def write_synthetic_crops(
    folder: str | os.PathLike,
    num_samples: int = 500,
    seed: int = DEFAULT_SYNTHETIC_SEED,
    lexicon_size: int | None = DEFAULT_SYNTHETIC_LEXICON_SIZE,
    cache_dir: str | None = None,
) -> Path:
    """
    Writes the synthetic held-out-font benchmark (`load_synthetic_benchmark`) as a crops folder
    (`write_crops_folder`), so it is read back through the same loader as a real benchmark, and every recognizer
    of a comparison reads the same PNG files. A `synthetic.json` in the folder records how it was made.

    The folder must be new, empty, or one this function wrote before. A folder written with the same arguments,
    fonts and word list (the generator's fingerprint) is kept as it is; one written otherwise is replaced.

    Returns:
        The folder.

    Raises:
        `ValueError`: the folder holds other files.
    """
    import shutil

    from .synthetic import SyntheticTextGenerator

    folder = Path(folder)
    manifest = {
        "source": SYNTHETIC_SOURCE,
        "fonts": "eval",
        "num_samples": num_samples,
        "seed": seed,
        "lexicon_size": lexicon_size or 0,
        "font_families": held_out_font_families(),
        "generator_fingerprint": SyntheticTextGenerator(seed=seed, fonts="eval").fingerprint(),
    }
    manifest_file = folder / SYNTHETIC_MANIFEST
    if folder.exists():
        if not folder.is_dir():
            raise ValueError(f"{str(folder)!r} exists and is not a folder: cannot write the synthetic crops there.")
        if manifest_file.is_file():
            written = json.loads(manifest_file.read_text(encoding="utf-8"))
            if {key: written.get(key) for key in manifest} == manifest and find_gt_file(folder) is not None:
                return folder
            shutil.rmtree(folder)
        elif any(folder.iterdir()):
            raise ValueError(
                f"{str(folder)!r} is not empty and was not written by write_synthetic_crops (no {SYNTHETIC_MANIFEST}): "
                "choose a new or empty folder for the synthetic crops."
            )
    dataset = load_synthetic_benchmark(num_samples, seed, lexicon_size, cache_dir=cache_dir)
    write_crops_folder(dataset, folder)
    manifest["font_files"] = sorted(set(dataset["font"]))
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder


def _pick_column(dataset, requested: str | None, candidates: Sequence[str], what: str, required: bool = True):
    import datasets

    names = dataset.column_names
    if requested is not None:
        if requested not in names:
            raise ValueError(f"The dataset has no {what} column {requested!r}; its columns are {names}.")
        return requested
    if what == "image":
        # Any column typed as an image wins over name guessing.
        typed = [name for name, feature in dataset.features.items() if isinstance(feature, datasets.Image)]
        if typed:
            return typed[0]
    found = next((name for name in candidates if name in names), None)
    if found is None and required:
        raise ValueError(
            f"Cannot tell which column holds the {what}: none of {list(candidates)} in the dataset's columns {names}. "
            f"Name it with --{what}_column."
        )
    return found


def standardize_columns(dataset, image_column=None, text_column=None, lexicon_column=None):
    """Renames a dataset's image, label and (optional) lexicon columns to `image`, `text` and `lexicon`."""
    import datasets

    image = _pick_column(dataset, image_column, IMAGE_COLUMN_NAMES, "image")
    text = _pick_column(dataset, text_column, TEXT_COLUMN_NAMES, "text")
    lexicon = _pick_column(dataset, lexicon_column, (LEXICON_COLUMN,), "lexicon", required=False)
    pairs = ((image, "image"), (text, "text"), (lexicon, LEXICON_COLUMN))
    renames = {old: new for old, new in pairs if old and old != new}
    # A column already named like a target of the renaming (e.g. an unused `text` when labels are in `label`) goes.
    clashing = [new for old, new in renames.items() if new in dataset.column_names and new not in renames]
    dataset = dataset.remove_columns(clashing).rename_columns(renames)
    if not isinstance(dataset.features["image"], datasets.Image):
        dataset = dataset.cast_column("image", datasets.Image())
    return dataset


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def _holds_lmdb(folder: Path) -> bool:
    try:
        return bool(find_lmdb_databases(folder))
    except ValueError:
        return False


def expand_sources(sources: Sequence[str]) -> list[str]:
    """
    The evaluation sets named by `sources`: a folder holding several LMDB databases (clovaai's
    `data_lmdb_release/evaluation`: IIIT5k_3000, SVT, IC03_860, ...) stands for each of them, since benchmarks are
    reported one by one; every other source is kept as it is.
    """
    expanded = []
    for source in sources:
        path = Path(source)
        databases = find_lmdb_databases(path) if path.is_dir() and _holds_lmdb(path) else []
        expanded += databases if len(databases) > 1 else [source]
    return expanded


def _select_split(dataset, split: str | None, source: str):
    import datasets

    if not isinstance(dataset, datasets.DatasetDict):
        return dataset
    if split is None:
        if len(dataset) != 1:
            raise ValueError(f"{source!r} has the splits {list(dataset)}; choose one with --split.")
        split = next(iter(dataset))
    if split not in dataset:
        raise ValueError(f"{source!r} has no split {split!r}; its splits are {list(dataset)}.")
    return dataset[split]


def synthetic_display_name(seed: int = DEFAULT_SYNTHETIC_SEED) -> str:
    """The name of the synthetic held-out-font set in result tables."""
    return f"{SYNTHETIC_SOURCE} (held-out fonts, seed {seed})"


def dataset_display_name(source: str) -> str:
    """A short name for a dataset source: the folder or file name, or `synthetic`."""
    if source == SYNTHETIC_SOURCE:
        return SYNTHETIC_SOURCE
    name = Path(source.rstrip("/\\")).name
    return Path(name).stem if Path(name).suffix in (".parquet", ".arrow", ".txt", ".tsv", ".csv") else name or source


def load_evaluation_dataset(
    source: str,
    *,
    split: str | None = None,
    image_column: str | None = None,
    text_column: str | None = None,
    lexicon_column: str | None = None,
    gt_format: str = "auto",
    lexicon_dir: str | None = None,
    max_samples: int | None = None,
    num_synthetic_samples: int = 500,
    synthetic_seed: int = DEFAULT_SYNTHETIC_SEED,
    synthetic_lexicon_size: int | None = DEFAULT_SYNTHETIC_LEXICON_SIZE,
    synthetic_crops_dir: str | os.PathLike | None = None,
    cache_dir: str | None = None,
):
    """
    Loads any supported evaluation set as a `datasets.Dataset` with `image`, `text` (+ `lexicon`, `path`).

    `source` is, checked in this order:

    1. `"synthetic"`: `num_synthetic_samples` synthetic words in held-out fonts (`load_synthetic_benchmark`); with
       `synthetic_crops_dir`, they are first written there as a crops folder (`write_synthetic_crops`) and read
       back with `load_crops_folder`, like a real benchmark;
    2. a `datasets.save_to_disk` folder (a `DatasetDict` needs `split` unless it has one split);
    3. a folder holding LMDB database(s) (`load_lmdb_benchmark`);
    4. a crops folder with a ground-truth file, or the ground-truth file itself (`load_crops_folder`);
    5. a `.parquet` / `.arrow` file, or a folder of `.parquet` files;
    6. an `imagefolder` folder (images plus `metadata.csv` / `metadata.jsonl` with a label column);
    7. otherwise a dataset name for `datasets.load_dataset` (needs Hub access).

    Columns are then renamed to `image`, `text`, `lexicon` (`image_column`, `text_column`, `lexicon_column` name
    them when the usual names are not used), and the first `max_samples` rows are kept.
    """
    import datasets

    if max_samples is not None and max_samples < 1:
        raise ValueError(f"`max_samples` must be positive, got {max_samples}.")
    path = Path(source)
    if source == SYNTHETIC_SOURCE:
        count = min(num_synthetic_samples, max_samples) if max_samples else num_synthetic_samples
        if synthetic_crops_dir is not None:
            write_synthetic_crops(synthetic_crops_dir, count, synthetic_seed, synthetic_lexicon_size, cache_dir)
            dataset = load_crops_folder(synthetic_crops_dir)
        else:
            dataset = load_synthetic_benchmark(count, synthetic_seed, synthetic_lexicon_size, cache_dir=cache_dir)
    elif path.is_dir() and _is_saved_dataset(path):
        dataset = _select_split(datasets.load_from_disk(str(path)), split, source)
    elif path.is_dir() and _holds_lmdb(path):
        dataset = load_lmdb_benchmark(path, max_samples, cache_dir)
    elif (path.is_dir() and find_gt_file(path)) or (path.is_file() and path.suffix.lower() in (".txt", ".tsv", ".csv")):
        dataset = load_crops_folder(path, gt_format=gt_format, lexicon_dir=lexicon_dir, max_samples=max_samples)
    elif path.is_file() and path.suffix.lower() in (".parquet", ".arrow"):
        loader = datasets.Dataset.from_parquet if path.suffix.lower() == ".parquet" else datasets.Dataset.from_file
        dataset = loader(str(path), **({"cache_dir": cache_dir} if loader is datasets.Dataset.from_parquet else {}))
    elif path.is_dir() and glob.glob(str(path / "*.parquet")):
        dataset = datasets.Dataset.from_parquet(sorted(glob.glob(str(path / "*.parquet"))), cache_dir=cache_dir)
    elif path.is_dir() and any((path / name).is_file() for name in ("metadata.csv", "metadata.jsonl")):
        dataset = _select_split(
            datasets.load_dataset("imagefolder", data_dir=str(path), cache_dir=cache_dir), split, source
        )
    elif path.exists():
        raise ValueError(
            f"Do not know how to read {source!r}: expected a crops folder with one of {list(GT_FILE_NAMES)}, an LMDB "
            "folder (data.mdb), a save_to_disk folder, parquet/arrow file(s), or an imagefolder with metadata.csv."
        )
    else:
        dataset = _select_split(datasets.load_dataset(source, split=split, cache_dir=cache_dir), split, source)

    dataset = standardize_columns(dataset, image_column, text_column, lexicon_column)
    if max_samples is not None and len(dataset) > max_samples:
        dataset = dataset.select(range(max_samples))
    if len(dataset) == 0:
        raise ValueError(f"The evaluation set {source!r} is empty.")
    return dataset


__all__ = [
    "DEFAULT_SYNTHETIC_LEXICON_SIZE",
    "DEFAULT_SYNTHETIC_SEED",
    "GT_FILE_NAMES",
    "GT_FORMATS",
    "SYNTHETIC_MANIFEST",
    "SYNTHETIC_SOURCE",
    "GroundTruthEntry",
    "dataset_display_name",
    "detect_gt_format",
    "expand_sources",
    "find_gt_file",
    "held_out_font_families",
    "icdar_line",
    "load_crops_folder",
    "load_evaluation_dataset",
    "load_lmdb_benchmark",
    "load_synthetic_benchmark",
    "parse_gt_file",
    "split_words",
    "standardize_columns",
    "synthetic_display_name",
    "synthetic_lexicons",
    "write_crops_folder",
    "write_synthetic_crops",
]
