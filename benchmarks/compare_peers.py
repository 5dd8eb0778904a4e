# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
CRNN against peer recognizers on the same crops, under the same protocol, in the same run.

    python benchmarks/compare_peers.py --model_name_or_path checkpoints/crnn-synth-en
    python benchmarks/compare_peers.py --model_name_or_path ... --data path/to/IIIT5K --ppocr_model path/to/pp-ocrv5

Recognizers:

* **CRNN** (this package): lexicon-free greedy decoding, through `hf_crnn.evaluation.predict`.
* **Tesseract 5** (`apt-get install -y tesseract-ocr`): the LSTM engine with its English model, single-word mode
  (`--psm 8`), driven through its command line: all crops of a set go in one call (a list file), so the model is
  loaded once, as a library user would. Crops go in as they are (grayscale); `--tesseract_height` and
  `--tesseract_margin` resize them and add a margin of their border colour. On 200 synthetic held-out-font words
  neither helped (native size: 83.0% protocol accuracy; height 48: 84.0%, 64: 83.0%; a 25% margin: 64-69%), so
  the default leaves the crops alone.
* **PP-OCRv5 mobile rec** (`transformers`' `PPOCRV5MobileRecForTextRecognition`, a CTC recognizer): needs its
  weights in a local folder (`--ppocr_model`; `PaddlePaddle/PP-OCRv5_mobile_rec_safetensors` on the Hub, which this
  script never downloads) and torchvision (its image processor). Without them the row says why it was skipped.

Evaluation sets: the built-in synthetic words in fonts held out of training (`--num_samples`, default 500), every
set given with `--data` (anything `hf_crnn.benchmark_datasets.load_evaluation_dataset` reads), and every benchmark
folder (a crops folder with a ground-truth file, or an LMDB) found under `../shared` (`--shared_dir`): real crops
placed there are evaluated automatically, never trained on.

Every recognizer gets the same decoded images (file reading is not timed) and the same `--threads` CPU threads;
images/s is wall time of its whole recognition call. Scores come from `hf_crnn.evaluation.score_predictions`:
protocol accuracy (case-insensitive, `0-9a-z` only), exact accuracy, CER and N.E.D. on the normalised strings.
Results are printed and saved as `peers.json` and `peers.md` in `--output_dir`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_crnn.benchmark_datasets import (  # noqa: E402
    DEFAULT_SYNTHETIC_SEED,
    SYNTHETIC_SOURCE,
    dataset_display_name,
    expand_sources,
    find_gt_file,
    load_evaluation_dataset,
)
from hf_crnn.evaluation import (  # noqa: E402
    lexicon_free_decoding,
    load_model_and_processor,
    markdown_table,
    predict,
    score_predictions,
)
from hf_crnn.lmdb_dataset import LMDB_DATA_FILE  # noqa: E402

PPOCR_HUB_ID = "PaddlePaddle/PP-OCRv5_mobile_rec_safetensors"
TESSERACT_INSTALL_HINT = "apt-get install -y tesseract-ocr"
TABLE_HEADER = ("Dataset", "Recognizer", "Images", "Protocol acc.", "Exact acc.", "CER", "N.E.D.", "Images/s")


class RecognizerUnavailable(Exception):
    """A recognizer cannot run here; the message says why (shown in its table row)."""


class Recognizer:
    """A word recognizer: `load()` once (raising `RecognizerUnavailable` when it cannot run), then `recognize`."""

    name = "recognizer"

    def load(self) -> None:
        """Prepares the recognizer; raises `RecognizerUnavailable` with the reason when it cannot run here."""

    def recognize(self, images: Sequence[Image.Image]) -> tuple[list[str], list[float]]:
        """Texts and confidences (probabilities in [0, 1]) of the word crops, in order."""
        raise NotImplementedError


class CRNNRecognizer(Recognizer):
    """A CRNN checkpoint, lexicon-free greedy decoding."""

    def __init__(self, model_name_or_path: str, batch_size: int = 32, device: str = "cpu"):
        self.model_name_or_path, self.batch_size, self.device = model_name_or_path, batch_size, device
        self.name = f"CRNN ({model_name_or_path})"
        self.decoding = lexicon_free_decoding()

    def load(self) -> None:
        if not os.path.isdir(self.model_name_or_path):
            raise RecognizerUnavailable(f"checkpoint folder {self.model_name_or_path} not found")
        self.model, self.processor = load_model_and_processor(self.model_name_or_path, self.device)

    def recognize(self, images):
        predictions, _ = predict(self.model, self.processor, images, [self.decoding], self.batch_size)
        result = predictions[self.decoding.name]
        return result.texts, result.confidences


class TesseractRecognizer(Recognizer):
    """
    Tesseract's LSTM engine through its command line, single-word page segmentation (`--psm 8`).

    Args:
        height (`int`): Crops are resized (keeping the aspect ratio) to this height before recognition; 0 keeps them.
        margin (`float`): Border added on every side, as a fraction of the (resized) height, in the crop's own
            border colour (Tesseract finds text more reliably with some background around it).
        whitelist (`str`, *optional*): Only these characters may be output (`tessedit_char_whitelist`).
        threads (`int`): OpenMP threads Tesseract may use (`OMP_THREAD_LIMIT`).
        language (`str`): Tesseract language model.
    """

    def __init__(self, height: int = 0, margin: float = 0.0, whitelist: str | None = None, threads: int = 1,
                 language: str = "eng"):
        self.height, self.margin, self.whitelist, self.threads, self.language = height, margin, whitelist, threads, language
        self.name = "Tesseract"

    def load(self) -> None:
        executable = shutil.which("tesseract")
        if executable is None:
            raise RecognizerUnavailable(f"Tesseract is not installed ({TESSERACT_INSTALL_HINT})")
        version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
        first_line = (version.stdout or version.stderr).strip().splitlines()[0] if (version.stdout or version.stderr) else ""
        self.executable = executable
        self.name = f"{first_line.capitalize() or 'Tesseract'} (LSTM, {self.language}, --psm 8)"

    def prepare(self, image: Image.Image) -> Image.Image:
        """The crop as Tesseract gets it: grayscale, resized to `height`, with a margin of its border colour."""
        image = image.convert("L")
        if self.height:
            width = max(1, round(image.width * self.height / image.height))
            image = image.resize((width, self.height), Image.Resampling.BICUBIC)
        pad = round(self.margin * image.height)
        if pad:
            border = [image.getpixel((x, y)) for x in (0, image.width - 1) for y in (0, image.height - 1)]
            image = ImageOps.expand(image, border=pad, fill=sorted(border)[len(border) // 2])
        return image

    def recognize(self, images):
        with tempfile.TemporaryDirectory(prefix="hf-crnn-tesseract-") as folder:
            paths = []
            for index, image in enumerate(images):
                path = os.path.join(folder, f"{index:06d}.png")
                self.prepare(image).save(path)
                paths.append(path)
            list_file = os.path.join(folder, "images.txt")
            with open(list_file, "w", encoding="utf-8") as handle:
                handle.writelines(f"{path}\n" for path in paths)
            command = [self.executable, list_file, "stdout", "--psm", "8", "-l", self.language]
            if self.whitelist:
                command += ["-c", f"tessedit_char_whitelist={self.whitelist}"]
            environment = {**os.environ, "OMP_THREAD_LIMIT": str(self.threads)}
            completed = subprocess.run(
                [*command, "tsv"], capture_output=True, text=True, env=environment, check=False
            )
        if completed.returncode != 0:
            raise RuntimeError(f"tesseract failed ({completed.returncode}): {completed.stderr.strip()[-500:]}")
        return parse_tesseract_tsv(completed.stdout, len(images))


def parse_tesseract_tsv(tsv: str, num_pages: int) -> tuple[list[str], list[float]]:
    """
    Per page (image) of Tesseract's TSV output: the words joined by spaces, and their mean confidence / 100.

    Word rows have `level` 5; `page_num` counts the images of a list file from 1. A page without words reads as `""`
    with confidence 0.
    """
    words: list[list[str]] = [[] for _ in range(num_pages)]
    confidences: list[list[float]] = [[] for _ in range(num_pages)]
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        page = int(row["page_num"]) - 1
        if not 0 <= page < num_pages:
            raise ValueError(f"Tesseract reported page {page + 1} for {num_pages} images.")
        words[page].append(row["text"].strip())
        if float(row["conf"]) >= 0:
            confidences[page].append(float(row["conf"]) / 100)
    texts = [" ".join(page_words) for page_words in words]
    scores = [sum(page) / len(page) if page else 0.0 for page in confidences]
    return texts, scores


class PPOCRRecognizer(Recognizer):
    """transformers' PP-OCRv5 mobile text recognizer (CTC), from a local folder of its weights."""

    def __init__(self, model_path: str | None, batch_size: int = 16):
        self.model_path, self.batch_size = model_path, batch_size
        self.name = "PP-OCRv5 mobile rec (transformers)"

    def load(self) -> None:
        if not self.model_path:
            raise RecognizerUnavailable(
                f"no local weights: pass --ppocr_model PATH (a local copy of {PPOCR_HUB_ID}); they cannot be "
                "downloaded here (no Hub access)"
            )
        try:
            from transformers import AutoModelForTextRecognition
            from transformers.models.auto.image_processing_auto import AutoImageProcessor

            self.image_processor = AutoImageProcessor.from_pretrained(self.model_path, local_files_only=True)
            self.model = AutoModelForTextRecognition.from_pretrained(self.model_path, local_files_only=True).eval()
        except Exception as error:  # missing files, torchvision missing, wrong model type: all mean "cannot run"
            raise RecognizerUnavailable(f"cannot load {self.model_path}: {type(error).__name__}: {error}") from error

    def recognize(self, images):
        # Its processor resizes a batch to the widest aspect ratio: batch crops of similar shape together.
        order = sorted(range(len(images)), key=lambda i: images[i].width / images[i].height)
        texts, scores = [""] * len(images), [0.0] * len(images)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            inputs = self.image_processor(images=[images[row].convert("RGB") for row in rows], return_tensors="pt")
            with torch.inference_mode():
                outputs = self.model(pixel_values=inputs["pixel_values"])
            for row, result in zip(rows, self.image_processor.post_process_text_recognition(outputs)):
                texts[row], scores[row] = result["text"], float(result["score"])
        return texts, scores


# ---- harness --------------------------------------------------------------------------------------------------------


def discover_benchmarks(shared_dir: str | os.PathLike, max_depth: int = 3) -> list[str]:
    """Benchmark folders under `shared_dir`: crops folders with a ground-truth file, and LMDB databases."""
    root = Path(shared_dir)
    if not root.is_dir():
        return []
    found = []
    for folder, subfolders, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name != "hooks")
        if depth >= max_depth:
            subfolders[:] = []
        if depth and (LMDB_DATA_FILE in files or find_gt_file(folder) is not None):
            found.append(folder)
            subfolders[:] = []  # a benchmark's own subfolders (lexicons, crops) are not benchmarks
    return found


def compare(recognizers: Sequence[Recognizer], evaluation_sets: Sequence[tuple[str, object]]) -> list[dict]:
    """
    Runs every available recognizer on every set (`(name, dataset)` with `image` and `text`).

    Returns:
        One row per (set, recognizer): `dataset`, `recognizer`, and either the `score_predictions` metrics or
        `skipped` (the reason).
    """
    unavailable = {}
    for recognizer in recognizers:
        try:
            recognizer.load()
        except RecognizerUnavailable as reason:
            unavailable[id(recognizer)] = str(reason)
            print(f"Skipping {recognizer.name}: {reason}", file=sys.stderr)
    rows = []
    for dataset_name, dataset in evaluation_sets:
        images = [image.convert("RGB") for image in dataset["image"]]  # decoded once, the same for every recognizer
        references = list(dataset["text"])
        for recognizer in recognizers:
            row = {"dataset": dataset_name, "recognizer": recognizer.name}
            if id(recognizer) in unavailable:
                rows.append({**row, "skipped": unavailable[id(recognizer)]})
                continue
            started = time.perf_counter()
            texts, confidences = recognizer.recognize(images)
            seconds = time.perf_counter() - started
            rows.append({**row, **score_predictions(texts, references, confidences, seconds)})
    return rows


def format_rows(rows: Sequence[dict]) -> list[list[str]]:
    table = []
    for row in rows:
        if "skipped" in row:
            table.append([row["dataset"], f"{row['recognizer']}: skipped (see notes)", *["—"] * 6])
            continue
        table.append(
            [
                row["dataset"],
                row["recognizer"],
                str(row["num_samples"]),
                f"{100 * row['protocol_accuracy']:.2f}%",
                f"{100 * row['exact_accuracy']:.2f}%",
                f"{row['cer']:.4f}",
                f"{row['ned']:.4f}",
                f"{row['images_per_second']:,.1f}",
            ]
        )
    return table


@dataclass
class CompareArguments:
    model_name_or_path: str = field(
        default=str(REPO_ROOT / "checkpoints" / "crnn-synth-en"), metadata={"help": "CRNN checkpoint folder."}
    )
    data: list[str] = field(default_factory=list, metadata={"help": "Extra evaluation sets (paths)."})
    num_samples: int = field(default=500, metadata={"help": "Synthetic held-out-font words (0: none)."})
    synthetic_seed: int = field(default=DEFAULT_SYNTHETIC_SEED, metadata={"help": "Seed of the synthetic words."})
    max_samples: int | None = field(default=None, metadata={"help": "First N images of each --data set."})
    shared_dir: str = field(default=str(REPO_ROOT.parent / "shared"), metadata={"help": "Scanned for real crops."})
    ppocr_model: str | None = field(default=None, metadata={"help": f"Local folder with {PPOCR_HUB_ID}."})
    tesseract_height: int = field(default=0, metadata={"help": "Height crops are resized to for Tesseract (0: keep)."})
    tesseract_margin: float = field(default=0.0, metadata={"help": "Margin added for Tesseract, fraction of height."})
    tesseract_whitelist: str | None = field(default=None, metadata={"help": "Characters Tesseract may output."})
    threads: int = field(default=1, metadata={"help": "CPU threads for every recognizer."})
    batch_size: int = field(default=32, metadata={"help": "CRNN batch size."})
    output_dir: str = field(default="benchmark_results/peers", metadata={"help": "Where peers.json/.md go."})


def main(argv: Sequence[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(CompareArguments).parse_args_into_dataclasses(args=argv)
    torch.set_num_threads(args.threads)
    sources = ([SYNTHETIC_SOURCE] if args.num_samples else []) + expand_sources(args.data)
    shared = discover_benchmarks(args.shared_dir)
    print(f"Real benchmark sets under {args.shared_dir}: {shared or 'none'}", file=sys.stderr)
    evaluation_sets = []
    for source in sources + [path for path in shared if path not in args.data]:
        dataset = load_evaluation_dataset(
            source,
            max_samples=args.max_samples if source != SYNTHETIC_SOURCE else None,
            num_synthetic_samples=args.num_samples or 1,
            synthetic_seed=args.synthetic_seed,
            synthetic_lexicon_size=0,
        )
        name = f"synthetic held-out fonts (seed {args.synthetic_seed})" if source == SYNTHETIC_SOURCE else dataset_display_name(source)
        evaluation_sets.append((name, dataset))
    recognizers = [
        CRNNRecognizer(args.model_name_or_path, args.batch_size),
        TesseractRecognizer(
            height=args.tesseract_height,
            margin=args.tesseract_margin,
            whitelist=args.tesseract_whitelist,
            threads=args.threads,
        ),
        PPOCRRecognizer(args.ppocr_model),
    ]
    rows = compare(recognizers, evaluation_sets)

    command = " ".join(["python benchmarks/compare_peers.py", *(argv if argv is not None else sys.argv[1:])])
    skipped = [f"{row['recognizer']}: skipped, {row['skipped']}." for row in rows if "skipped" in row]
    notes = list(dict.fromkeys(skipped))
    if not shared:
        notes.append(f"No real crops under {args.shared_dir} yet; synthetic held-out-font words only.")
    header = (
        f"Command: `{command}`; {args.threads} CPU thread(s) per recognizer; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}."
    )
    markdown = "\n".join(
        [
            header,
            "",
            markdown_table(TABLE_HEADER, format_rows(rows)),
            *(["", *[f"- {note}" for note in notes]] if notes else []),
            "",
        ]
    )
    print(markdown)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "peers.md").write_text(markdown, encoding="utf-8")
    with open(output_dir / "peers.json", "w", encoding="utf-8") as handle:
        json.dump({"command": command, "arguments": asdict(args), "rows": rows, "notes": notes}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
