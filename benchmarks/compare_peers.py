# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
CRNN against peer recognizers on the same crops, under the same protocol, in the same run.

    python benchmarks/compare_peers.py --model_name_or_path checkpoints/crnn-synth-en
    python benchmarks/compare_peers.py --model_name_or_path ... --data path/to/IIIT5K --ppocr_model path/to/pp-ocrv5

Recognizers:

* **CRNN** (this package): lexicon-free greedy decoding, through `hf_crnn.evaluation.predict`.
* **Tesseract 5** (`apt-get install -y tesseract-ocr`): the LSTM engine with its English model, single-word mode
  (`--psm 8`), through `tesserocr` when installed (model loaded once, one API call per crop), else its command line
  with all crops of a set in one call (a list file, so the model is loaded once there too); `--tesseract_backend`
  forces one. Crops go in as they are (grayscale); `--tesseract_height` and `--tesseract_margin` resize them and
  add a margin of their border colour. On 300 synthetic held-out-font words neither helped (as they are: 80.33%
  protocol accuracy; height 48: 81.00%, 64: 79.33%; a 25% margin: 67.33%), so the default leaves the crops alone.
* **PP-OCRv5 mobile rec** (`transformers`' `PPOCRV5MobileRecForTextRecognition`, a CTC recognizer): needs its
  weights in a local folder (`--ppocr_model`) or already in the Hugging Face cache
  (`PaddlePaddle/PP-OCRv5_mobile_rec_safetensors`; this script never downloads), and torchvision (its image
  processor). Without them the row says why it was skipped.

Evaluation sets: the built-in synthetic words in fonts held out of training (`--num_samples`, default 500), every
set given with `--data` (anything `hf_crnn.benchmark_datasets.load_evaluation_dataset` reads), and every benchmark
folder (a crops folder with a ground-truth file, or an LMDB) found under `../shared` (`--shared_dir`): real crops
placed there are evaluated automatically, never trained on. `--synthetic_crops_dir` writes the synthetic words as
a crops folder first and reads them back from it (the same folder `hf-crnn evaluate --synthetic_crops_dir` writes).

Every recognizer gets the same decoded images (file reading is not timed) and the same `--threads` CPU threads;
images/s is wall time of its whole recognition call. Scores come from `hf_crnn.evaluation.score_predictions`:
protocol accuracy (case-insensitive, `0-9a-z` only), exact accuracy, CER and N.E.D. on the normalised strings.
Results are printed and saved as `peers.json` and `peers.md` in `--output_dir`.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import shlex
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
    DEFAULT_SYNTHETIC_LEXICON_SIZE,
    DEFAULT_SYNTHETIC_SEED,
    SYNTHETIC_SOURCE,
    dataset_display_name,
    expand_sources,
    find_gt_file,
    held_out_font_families,
    load_evaluation_dataset,
    synthetic_display_name,
)
from hf_crnn.evaluation import (  # noqa: E402
    DEFAULT_CHECKPOINT,
    describe_machine_load,
    lexicon_free_decoding,
    load_model_and_processor,
    machine_load,
    markdown_table,
    predict,
    resolve_checkpoint,
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
        try:
            path = resolve_checkpoint(self.model_name_or_path)
        except ValueError as error:
            raise RecognizerUnavailable(str(error)) from None
        if not os.path.isdir(path):
            raise RecognizerUnavailable(f"checkpoint folder {path} not found")
        self.model, self.processor = load_model_and_processor(path, self.device)

    def recognize(self, images):
        predictions, _ = predict(self.model, self.processor, images, [self.decoding], self.batch_size)
        result = predictions[self.decoding.name]
        return result.texts, result.confidences


TESSERACT_BACKENDS = ("auto", "tesserocr", "cli")


def find_tessdata(executable: str | None = None) -> str | None:
    """Tesseract's model folder: `$TESSDATA_PREFIX`, else the one `tesseract --list-langs` names, else Debian's
    `/usr/share/tesseract-ocr/<version>/tessdata`; None when none is found."""
    if os.environ.get("TESSDATA_PREFIX"):
        return os.environ["TESSDATA_PREFIX"]
    if executable:
        listed = subprocess.run([executable, "--list-langs"], capture_output=True, text=True, check=False)
        match = re.search(r'"([^"]+)"', listed.stdout + listed.stderr)
        if match and os.path.isdir(match[1]):
            return match[1]
    folders = sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"))
    return folders[-1] if folders else None


class TesseractRecognizer(Recognizer):
    """
    Tesseract's LSTM engine, single-word page segmentation (`--psm 8`), through `tesserocr` (its C++ API, model
    loaded once, one call per crop) when that is installed, else its command line (all crops in one call through a
    list file, so the model is loaded once there too).

    Args:
        height (`int`): Crops are resized (keeping the aspect ratio) to this height before recognition; 0 keeps them.
        margin (`float`): Border added on every side, as a fraction of the (resized) height, in the crop's own
            border colour (Tesseract finds text more reliably with some background around it).
        whitelist (`str`, *optional*): Only these characters may be output (`tessedit_char_whitelist`).
        threads (`int`): OpenMP threads the command line may use (`OMP_THREAD_LIMIT`). Through tesserocr, the
            process's own `OMP_THREAD_LIMIT` applies (the PyPI wheels' Tesseract has no OpenMP: one thread).
        language (`str`): Tesseract language model.
        backend (`str`): `"tesserocr"`, `"cli"`, or `"auto"` (tesserocr when importable, else the command line).
    """

    def __init__(self, height: int = 0, margin: float = 0.0, whitelist: str | None = None, threads: int = 1,
                 language: str = "eng", backend: str = "auto"):
        if backend not in TESSERACT_BACKENDS:
            raise ValueError(f"The Tesseract backend must be one of {TESSERACT_BACKENDS}, got {backend!r}.")
        self.height, self.margin, self.whitelist = height, margin, whitelist
        self.threads, self.language, self.backend = threads, language, backend
        self.name = "Tesseract"
        self.api = None

    def load(self) -> None:
        reasons = []
        if self.backend in ("auto", "tesserocr"):
            try:
                return self._load_tesserocr()
            except RecognizerUnavailable as reason:
                if self.backend == "tesserocr":
                    raise
                reasons.append(str(reason))
        try:
            self._load_cli()
        except RecognizerUnavailable as reason:
            raise RecognizerUnavailable("; ".join([*reasons, str(reason)])) from None

    def _load_cli(self) -> None:
        executable = shutil.which("tesseract")
        if executable is None:
            raise RecognizerUnavailable(f"Tesseract is not installed ({TESSERACT_INSTALL_HINT})")
        version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
        output = (version.stdout or version.stderr).strip()
        first_line = output.splitlines()[0] if output else ""
        self.executable, self.api = executable, None
        self.name = f"{first_line.capitalize() or 'Tesseract'} (LSTM, {self.language}, --psm 8, command line)"

    def _load_tesserocr(self) -> None:
        try:
            import tesserocr
        except ImportError:
            raise RecognizerUnavailable("tesserocr is not installed (pip install tesserocr)") from None
        tessdata = find_tessdata(shutil.which("tesseract"))
        if tessdata is None:
            raise RecognizerUnavailable(f"no tessdata folder with Tesseract's models ({TESSERACT_INSTALL_HINT})")
        try:
            api = tesserocr.PyTessBaseAPI(
                path=tessdata.rstrip("/") + "/", lang=self.language, psm=tesserocr.PSM.SINGLE_WORD,
                oem=tesserocr.OEM.LSTM_ONLY,
            )
        except RuntimeError as error:  # no model for the language in that folder
            raise RecognizerUnavailable(f"tesserocr cannot load {self.language!r} from {tessdata}: {error}") from None
        if self.whitelist:
            api.SetVariable("tessedit_char_whitelist", self.whitelist)
        self.api = api
        version = tesserocr.tesseract_version().split()[1]
        self.name = f"Tesseract {version} (LSTM, {self.language}, --psm 8, tesserocr)"

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
        if self.api is not None:
            return self._recognize_tesserocr(images)
        return self._recognize_cli(images)

    def _recognize_tesserocr(self, images):
        texts, confidences = [], []
        for image in images:
            self.api.SetImage(self.prepare(image))
            words = self.api.GetUTF8Text().split()
            word_confidences = [c for c in self.api.AllWordConfidences() if c >= 0]
            texts.append(" ".join(words))
            mean = sum(word_confidences) / len(word_confidences) / 100 if words and word_confidences else 0.0
            confidences.append(mean)
        return texts, confidences

    def _recognize_cli(self, images):
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
    """
    transformers' PP-OCRv5 mobile text recognizer (CTC), from a local folder of its weights, or from the Hugging
    Face cache when `PaddlePaddle/PP-OCRv5_mobile_rec_safetensors` was downloaded there before (never downloaded
    here: `local_files_only=True`).
    """

    def __init__(self, model_path: str | None, batch_size: int = 16):
        self.model_path, self.batch_size = model_path, batch_size
        self.name = "PP-OCRv5 mobile rec (transformers)"

    def load(self) -> None:
        from transformers import AutoModelForTextRecognition
        from transformers.models.auto.image_processing_auto import AutoImageProcessor

        if self.model_path and not os.path.isdir(self.model_path):
            raise RecognizerUnavailable(f"--ppocr_model folder {self.model_path} not found")
        source = self.model_path or PPOCR_HUB_ID
        try:
            self.model = AutoModelForTextRecognition.from_pretrained(source, local_files_only=True).eval()
        except (OSError, ValueError) as error:
            if self.model_path:
                raise RecognizerUnavailable(f"cannot load {source}: {type(error).__name__}: {error}") from None
            raise RecognizerUnavailable(
                f"no local weights: {PPOCR_HUB_ID} is not in the Hugging Face cache and no --ppocr_model PATH was "
                "given; this script never downloads them (fetch them where the Hub is reachable, then pass the folder)"
            ) from None
        try:
            self.image_processor = AutoImageProcessor.from_pretrained(source, local_files_only=True)
        except ImportError as error:  # its image processor is torchvision-based
            raise RecognizerUnavailable(f"its image processor needs torchvision ({error})") from None
        except (OSError, ValueError) as error:
            raise RecognizerUnavailable(f"cannot load the image processor of {source}: {error}") from None

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
            try:
                texts, confidences = recognizer.recognize(images)
            except RuntimeError as error:  # e.g. the tesseract process failing on a set: keep the other rows
                rows.append({**row, "skipped": f"failed on this set: {error}"})
                continue
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
    """Arguments of `benchmarks/compare_peers.py`."""

    model_name_or_path: str = field(
        default=DEFAULT_CHECKPOINT,
        metadata={"help": f"CRNN checkpoint folder (default the shipped {DEFAULT_CHECKPOINT})."},
    )
    data: list[str] = field(default_factory=list, metadata={"help": "Extra evaluation sets (paths)."})
    num_samples: int = field(default=500, metadata={"help": "Synthetic held-out-font words (0: none)."})
    synthetic_seed: int = field(default=DEFAULT_SYNTHETIC_SEED, metadata={"help": "Seed of the synthetic words."})
    synthetic_crops_dir: str | None = field(
        default=None,
        metadata={"help": "Write the synthetic words there as a crops folder (gt.txt) and read them back from it."},
    )
    max_samples: int | None = field(default=None, metadata={"help": "First N images of each --data set."})
    shared_dir: str = field(default=str(REPO_ROOT.parent / "shared"), metadata={"help": "Scanned for real crops."})
    ppocr_model: str | None = field(
        default=None, metadata={"help": f"Local folder with {PPOCR_HUB_ID} (default: the HF cache; never downloaded)."}
    )
    tesseract_height: int = field(default=0, metadata={"help": "Height crops are resized to for Tesseract (0: keep)."})
    tesseract_margin: float = field(default=0.0, metadata={"help": "Margin added for Tesseract, fraction of height."})
    tesseract_whitelist: str | None = field(default=None, metadata={"help": "Characters Tesseract may output."})
    tesseract_backend: str = field(
        default="auto", metadata={"help": f"One of {TESSERACT_BACKENDS}; auto: tesserocr when installed, else the CLI."}
    )
    threads: int = field(default=1, metadata={"help": "CPU threads for every recognizer."})
    batch_size: int = field(default=32, metadata={"help": "CRNN batch size."})
    output_dir: str = field(default="benchmark_results/peers", metadata={"help": "Where peers.json/.md go."})

    def __post_init__(self):
        if self.num_samples < 0:
            raise ValueError(f"--num_samples must not be negative, got {self.num_samples}.")
        for name in ("threads", "batch_size", "max_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1, got {value}.")
        if self.tesseract_backend not in TESSERACT_BACKENDS:
            raise ValueError(
                f"--tesseract_backend must be one of {TESSERACT_BACKENDS}, got {self.tesseract_backend!r}."
            )
        if self.synthetic_crops_dir is not None and not self.num_samples:
            raise ValueError("--synthetic_crops_dir needs synthetic words (--num_samples > 0).")


def load_sets(args: CompareArguments) -> tuple[list[tuple[str, object]], list[str]]:
    """The `(name, dataset)` pairs to compare on, and the real benchmark folders found under `--shared_dir`."""
    sources = ([SYNTHETIC_SOURCE] if args.num_samples else []) + expand_sources(args.data)
    shared = discover_benchmarks(args.shared_dir)
    print(f"Real benchmark sets under {args.shared_dir}: {shared or 'none'}", file=sys.stderr)
    given = {os.path.realpath(source) for source in sources}
    evaluation_sets = []
    for source in sources + [path for path in shared if os.path.realpath(path) not in given]:
        dataset = load_evaluation_dataset(
            source,
            max_samples=args.max_samples if source != SYNTHETIC_SOURCE else None,
            num_synthetic_samples=args.num_samples or 1,
            synthetic_seed=args.synthetic_seed,
            # Lexicons are not used here, but a crops folder shared with `hf-crnn evaluate` must be the same set.
            synthetic_lexicon_size=DEFAULT_SYNTHETIC_LEXICON_SIZE if args.synthetic_crops_dir else 0,
            synthetic_crops_dir=args.synthetic_crops_dir,
        )
        synthetic = source == SYNTHETIC_SOURCE
        name = synthetic_display_name(args.synthetic_seed) if synthetic else dataset_display_name(source)
        evaluation_sets.append((name, dataset))
    return evaluation_sets, shared


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the comparison; returns the exit code (2: bad arguments or data)."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        (args,) = HfArgumentParser(CompareArguments).parse_args_into_dataclasses(args=argv)
        torch.set_num_threads(args.threads)
        load_at_start = machine_load()
        evaluation_sets, shared = load_sets(args)
    except (ValueError, OSError) as error:
        print(f"compare_peers.py: error: {error}", file=sys.stderr)
        return 2
    recognizers = [
        CRNNRecognizer(args.model_name_or_path, args.batch_size),
        TesseractRecognizer(
            height=args.tesseract_height,
            margin=args.tesseract_margin,
            whitelist=args.tesseract_whitelist,
            threads=args.threads,
            backend=args.tesseract_backend,
        ),
        PPOCRRecognizer(args.ppocr_model),
    ]
    rows = compare(recognizers, evaluation_sets)
    load = {"start": load_at_start, "end": machine_load()}

    command = shlex.join(["python", "benchmarks/compare_peers.py", *argv])
    skipped = [f"{row['recognizer']}: skipped, {row['skipped']}." for row in rows if "skipped" in row]
    notes = list(dict.fromkeys(skipped))
    if args.num_samples:
        families = ", ".join(held_out_font_families())
        notes.append(f"Synthetic words in the font families held out of training here: {families}.")
    if args.synthetic_crops_dir and args.num_samples:
        notes.append(f"Synthetic words written to and read back from the crops folder {args.synthetic_crops_dir}.")
    if not shared:
        notes.append(f"No real crops under {args.shared_dir} yet; synthetic held-out-font words only.")
    header = (
        f"Command: `{command}`; {args.threads} CPU thread(s) per recognizer; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}."
    )
    if describe_machine_load(load):
        header += f" {describe_machine_load(load)}."
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
        results = {"command": command, "arguments": asdict(args), "machine_load": load, "rows": rows, "notes": notes}
        json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
