# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Inference throughput of hf_crnn's CRNN and of its opt-in CPU fast paths against a plain torch.nn CRNN.

Paths, all timed in one process and interleaved (every round times every path on one workload before moving on, in
a rotating order) so that machine noise hits them alike:

    plain          the reference: the paper's CRNN written directly with torch.nn (weights copied from ours; same
                   logits), no padding masks
    hf_crnn        our CRNNForTextRecognition as it ships (the default path)
    channels_last  hf_crnn with `model.to(memory_format=torch.channels_last)` and nothing else
    fp32           optimize_for_cpu(model, "fp32"): batch norm folded, channels-last, unpacked padded BiLSTMs
    bf16           optimize_for_cpu(model, "bf16")
    int8           optimize_for_cpu(model, "int8"): static int8 convolutions, dynamic int8 LSTMs and linear layers
    int8_bf16      optimize_for_cpu(model, "int8_bf16"): int8's convolutions, LSTMs and classifier in bf16
    auto           optimize_for_cpu(model, "auto"): the fastest of fp32/bf16/int8/int8_bf16 within 0.2 points of
                   fp32, measured on the calibration words (its report, with how long it took, is printed)
    onnxruntime    export_onnx(model) run by onnxruntime's CPU provider
    compile        torch.compile(hf_crnn) (not in the default set: it compiles for a minute or more per shape)

Speed is measured on the paper's network (CRNNConfig(), random weights: speed does not depend on their values) on
32x100 inputs at each batch size, and on a fixed set of images with widths drawn from 40..250 that are sorted by
width and batched like the pipeline does (each batch right-padded to its widest image, with `image_widths`; the
plain reference just runs the padded batch). Times cover the forward pass only (the greedy-decoding time of one batch
is printed separately). Peak memory is how far the peak resident set rises above the resident set before one
forward pass (after a warm-up, freed heap returned to the system first; onnxruntime measured on a session without
its memory arena, which would otherwise keep the memory of earlier runs).

Word accuracy, when a trained checkpoint is given (`--model`, default checkpoints/crnn-synth-en when that folder
exists), is measured with that checkpoint on a fixed evaluation set: synthetic words (hf_crnn.synthetic) rendered in
the fonts held out of training, with a fixed seed; int8 is calibrated on other synthetic words in training fonts.
Greedy decoding, benchmark-protocol normalisation (case-insensitive, alphanumeric). Each path's change is in points
against the hf_crnn fp32 model on the same images; the plain reference has no padding masks and is not evaluated.

    python benchmarks/bench_inference.py                      # everything, about 5 min on an idle 2-core machine
    python benchmarks/bench_inference.py --quick              # smoke run: small batches, one round, 48 words
    python benchmarks/bench_inference.py --paths plain hf_crnn compile --batch-sizes 32
    python benchmarks/bench_inference.py --model path/to/checkpoint --json results.json
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers.utils import logging as transformers_logging

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_crnn import CRNNConfig, CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer  # noqa: E402
from hf_crnn.benchmark_datasets import DEFAULT_SYNTHETIC_SEED  # noqa: E402
from hf_crnn.decoding import ctc_greedy_decode  # noqa: E402
from hf_crnn.fast_inference import INT8_MODES, describe_cpu, optimize_for_cpu  # noqa: E402
from hf_crnn.metrics import normalized_word_accuracy  # noqa: E402

DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "crnn-synth-en"
REFERENCE, DEFAULT_PATH = "plain", "hf_crnn"
PATH_DESCRIPTIONS = {
    "plain": "plain torch.nn (reference)",
    "hf_crnn": "hf_crnn (default)",
    "channels_last": "hf_crnn + channels-last only",
    "fp32": 'optimize_for_cpu "fp32"',
    "bf16": 'optimize_for_cpu "bf16"',
    "int8": 'optimize_for_cpu "int8"',
    "int8_bf16": 'optimize_for_cpu "int8_bf16"',
    "auto": 'optimize_for_cpu "auto"',
    "onnxruntime": "ONNX + onnxruntime",
    "compile": "torch.compile(hf_crnn)",
}
DEFAULT_PATHS = ("plain", "hf_crnn", "channels_last", "fp32", "bf16", "int8", "int8_bf16", "auto", "onnxruntime")
MIXED_WIDTH_RANGE = (40, 250)
CALIBRATION_SEED = 7  # training fonts, another seed than the evaluation words
# After the first round, paths this many times slower than the reference on a workload are not timed again: their
# verdict does not depend on the noise, and (emulated bf16 above all) they would take most of the run.
SLOW_PATH_FACTOR = 3.0


class PlainCRNN(nn.Module):
    """The paper's CRNN written directly with torch.nn (crnn.pytorch style), no masking or HF wrapping."""

    def __init__(self, num_classes: int = 37, hidden: int = 256):
        super().__init__()
        channels = [1, 64, 128, 256, 256, 512, 512, 512]
        kernels = [3, 3, 3, 3, 3, 3, 2]
        paddings = [1, 1, 1, 1, 1, 1, 0]
        pools = {0: ((2, 2), (2, 2), (0, 0)), 1: ((2, 2), (2, 2), (0, 0)), 3: ((2, 2), (2, 1), (0, 1)), 5: ((2, 2), (2, 1), (0, 1))}
        layers = []
        for i in range(7):
            layers.append(nn.Conv2d(channels[i], channels[i + 1], kernels[i], 1, paddings[i]))
            if i in (2, 4, 6):
                layers.append(nn.BatchNorm2d(channels[i + 1]))
            layers.append(nn.ReLU(inplace=True))
            if i in pools:
                layers.append(nn.MaxPool2d(*pools[i]))
        self.cnn = nn.Sequential(*layers)
        self.lstm1 = nn.LSTM(512, hidden, bidirectional=True, batch_first=True)
        self.proj1 = nn.Linear(2 * hidden, hidden)
        self.lstm2 = nn.LSTM(hidden, hidden, bidirectional=True, batch_first=True)
        self.classifier = nn.Linear(2 * hidden, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.cnn(images).squeeze(2).transpose(1, 2)
        features = self.proj1(self.lstm1(features)[0])
        return self.classifier(self.lstm2(features)[0])

    def load_from(self, model: CRNNForTextRecognition) -> "PlainCRNN":
        convs = [m for m in self.cnn if isinstance(m, nn.Conv2d)]
        norms = iter(m for m in self.cnn if isinstance(m, nn.BatchNorm2d))
        for conv, layer in zip(convs, model.crnn.conv_layers):
            conv.load_state_dict(layer.conv.state_dict())
            if layer.batch_norm is not None:
                next(norms).load_state_dict(layer.batch_norm.state_dict())
        self.lstm1.load_state_dict(model.crnn.lstm_layers[0].lstm.state_dict())
        self.proj1.load_state_dict(model.crnn.lstm_layers[0].projection.state_dict())
        self.lstm2.load_state_dict(model.crnn.lstm_layers[1].lstm.state_dict())
        self.classifier.load_state_dict(model.classifier.state_dict())
        return self


# ---- inputs ------------------------------------------------------------------------------------------------------


@dataclass
class Workload:
    """Batches timed as one unit: `pixel_values` `(B, 1, 32, W)` and `image_widths` `(B,)` (or `None`) each."""

    name: str
    batches: list[dict]
    num_images: int


def fixed_width_workload(batch_size: int) -> Workload:
    generator = torch.Generator().manual_seed(batch_size)
    pixel_values = torch.rand(batch_size, 1, 32, 100, generator=generator) * 2 - 1
    return Workload(f"32x100, batch {batch_size}", [{"pixel_values": pixel_values, "image_widths": None}], batch_size)


def bucket_by_width(pixel_values: torch.Tensor, image_widths: torch.Tensor, batch_size: int) -> list[dict]:
    """Sorts a padded batch by valid width and cuts it into batches padded only to their widest image (x4)."""
    order = torch.argsort(image_widths, stable=True)
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        widths = image_widths[chunk]
        padded_width = min(pixel_values.shape[-1], -(-int(widths.max()) // 4) * 4)
        batches.append({"pixel_values": pixel_values[chunk, :, :, :padded_width].contiguous(), "image_widths": widths})
    return batches


def mixed_width_workload(num_images: int, batch_size: int, seed: int = 0) -> Workload:
    """Random images of widths drawn uniformly from `MIXED_WIDTH_RANGE`, zero-padded as the image processor does."""
    generator = torch.Generator().manual_seed(seed)
    widths = torch.randint(MIXED_WIDTH_RANGE[0], MIXED_WIDTH_RANGE[1] + 1, (num_images,), generator=generator)
    pixel_values = torch.rand(num_images, 1, 32, int(widths.max()), generator=generator) * 2 - 1
    valid_columns = torch.arange(pixel_values.shape[-1])[None, :] < widths[:, None]  # (N, W)
    pixel_values *= valid_columns[:, None, None, :].to(pixel_values.dtype)
    name = f"widths {MIXED_WIDTH_RANGE[0]}-{MIXED_WIDTH_RANGE[1]}, batch {batch_size}"
    return Workload(name, bucket_by_width(pixel_values, widths, batch_size), num_images)


def synthetic_words(
    num_samples: int, seed: int, fonts: str, processor, batch_size: int
) -> tuple[list[dict], list[str]]:
    """Synthetic word images as width-bucketed processor batches, and their texts (in the batches' order)."""
    from hf_crnn.synthetic import SyntheticTextGenerator

    generator = SyntheticTextGenerator(seed=seed, fonts=fonts)
    samples = [generator[index] for index in range(num_samples)]
    encoded = processor(images=[sample["image"] for sample in samples])
    batches = bucket_by_width(encoded["pixel_values"], encoded["image_widths"], batch_size)
    order = torch.argsort(encoded["image_widths"], stable=True).tolist()
    return batches, [samples[index]["text"] for index in order]


# ---- paths -------------------------------------------------------------------------------------------------------


def build_paths(
    model: CRNNForTextRecognition, names, calibration_batches: list[dict], onnx_path: str, label: str = ""
) -> dict:
    """
    `{name: run}` for the requested paths, built from `model` (left unchanged). `run(batch)` takes a workload batch
    and returns `(logits, frame_lengths)`: `(B, T, V)` and `(B,)`. The "auto" path prints its report.
    """
    runs = {}
    for name in names:
        if name == "plain":
            plain = PlainCRNN().load_from(model).eval()
            runs[name] = lambda batch, plain=plain: _all_frames(plain(batch["pixel_values"]))
        elif name == "hf_crnn":
            runs[name] = _model_run(model)
        elif name == "channels_last":
            runs[name] = _model_run(copy.deepcopy(model).to(memory_format=torch.channels_last))
        elif name in ("fp32", "bf16", "int8", "int8_bf16"):
            calibration_data = calibration_batches if name in INT8_MODES else None
            with warnings.catch_warnings():  # the report says whether bf16 is native; no need to warn as well
                warnings.filterwarnings("ignore", message=r'mode="\w+" on a CPU without native bf16')
                runs[name] = _model_run(optimize_for_cpu(model, name, calibration_data=calibration_data))
        elif name == "auto":
            auto = optimize_for_cpu(model, "auto", calibration_data=calibration_batches)
            print(f"[{label}] " + auto.optimization_report.summary().replace("\n", f"\n[{label}] "), flush=True)
            runs[name] = _model_run(auto)
        elif name == "onnxruntime":
            runs[name] = onnxruntime_run(model, onnx_path)
        elif name == "compile":
            # The model's input checks are graph breaks by design (data-dependent); dynamo's notes on them would
            # drown the report.
            torch._logging.set_logs(dynamo=logging.ERROR)
            runs[name] = _model_run(torch.compile(model))
    return runs


def _model_run(model) -> Callable:
    def run(batch):
        outputs = model(**batch)
        return outputs.logits, outputs.frame_lengths

    return run


def _all_frames(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return logits, torch.full((logits.shape[0],), logits.shape[1])


def onnxruntime_run(model, path: str, memory_arena: bool = True) -> Callable:
    import onnxruntime

    from hf_crnn.onnx_export import CRNNOnnxRuntimeModel, export_onnx

    if not os.path.exists(path):
        export_onnx(model, path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as many as torch uses, for a like-for-like comparison
    options.enable_cpu_mem_arena = memory_arena
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    onnx_model = CRNNOnnxRuntimeModel(session)

    def run(batch):
        outputs = onnx_model(batch["pixel_values"], batch["image_widths"])
        return outputs.logits, outputs.frame_lengths

    return run


def run_workload(run: Callable, workload: Workload) -> None:
    for batch in workload.batches:
        run(batch)


def images_per_second(run: Callable, workload: Workload, min_seconds: float) -> float:
    iterations, start = 0, time.perf_counter()
    while True:
        run_workload(run, workload)
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return iterations * workload.num_images / elapsed


# ---- memory ------------------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Resets the peak resident set (VmHWM) to the current one (Linux >= 4.0); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _release_free_heap() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed memory; give it back so it is not reused unseen
    except (OSError, AttributeError):
        pass


def forward_peak_mb(run: Callable, workload: Workload) -> float | None:
    """How many MB the peak resident set rises over one pass of the workload (after a warm-up); None off Linux."""
    _release_free_heap()
    if not _reset_peak_rss():
        return None
    before = _status_kb("VmRSS")
    run_workload(run, workload)
    return (_status_kb("VmHWM") - before) / 1024


# ---- accuracy ----------------------------------------------------------------------------------------------------


def evaluate_word_accuracy(runs: dict, batches: list[dict], texts: list[str], processor) -> dict:
    """`{path: (normalised word accuracy, predictions)}` with greedy decoding, for each path in `runs`."""
    results = {}
    with torch.inference_mode():
        for name, run in runs.items():
            predictions = []
            for batch in batches:
                predictions += processor.batch_decode(*run(batch))
            results[name] = (normalized_word_accuracy(predictions, texts), predictions)
    return results


# ---- report ------------------------------------------------------------------------------------------------------


def load_average() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def markdown_table(rows: list[dict], workloads: list[Workload], memory_batches: list[int]) -> str:
    memory_header = "forward peak MB (batch " + " / ".join(map(str, memory_batches)) + ")"
    header = ["path", *(workload.name for workload in workloads), memory_header, "word acc. (Δ vs hf_crnn fp32)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [PATH_DESCRIPTIONS[row["path"]]]
        for workload in workloads:
            speed = row["images_per_s"].get(workload.name)
            if speed is None:
                cells.append("—")
                continue
            ratio = row["ratio"][workload.name]
            marker = " †" if row["timed_once"].get(workload.name) else ""
            cells.append(f"{speed:.1f} img/s ({ratio:.2f}×){marker}")
        memory = [row["peak_mb"].get(str(batch)) for batch in memory_batches]
        cells.append(" / ".join("n/a" if value is None else f"{value:.0f}" for value in memory))
        cells.append(row.get("accuracy_cell", "—"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_cells(accuracy: dict) -> dict:
    baseline, baseline_predictions = accuracy[DEFAULT_PATH]
    cells = {DEFAULT_PATH: f"{100 * baseline:.2f}%"}
    for name, (value, predictions) in accuracy.items():
        if name != DEFAULT_PATH:
            changed = sum(a != b for a, b in zip(predictions, baseline_predictions))
            cells[name] = f"{100 * (value - baseline):+.2f} pt ({changed} changed)"
    return cells


# ---- main --------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: batches 1 and 8, one round, 48 eval words")
    parser.add_argument("--paths", nargs="+", choices=list(PATH_DESCRIPTIONS), default=None,
                        help=f"paths to time ({' '.join(DEFAULT_PATHS)}); plain and hf_crnn are always included")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="32x100 batch sizes (1 32 128)")
    parser.add_argument("--mixed-images", type=int, default=None, help="images in the mixed-width set (128)")
    parser.add_argument("--mixed-batch-size", type=int, default=None, help="batch size of the mixed-width set (32)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (3)")
    parser.add_argument("--seconds", type=float, default=None, help="minimum seconds per timing (0.5)")
    parser.add_argument("--threads", type=int, default=None, help="torch and onnxruntime threads (torch's default)")
    default_checkpoint = DEFAULT_CHECKPOINT.relative_to(REPO_ROOT)
    parser.add_argument("--model", default=None,
                        help=f"trained checkpoint for the accuracy column ({default_checkpoint} if it exists)")
    parser.add_argument("--eval-samples", type=int, default=None, help="evaluation words (500)")
    parser.add_argument("--calibration-samples", type=int, default=None, help="int8 calibration words (128)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "batch_sizes": [1, 8] if quick else [1, 32, 128],
        "mixed_images": 16 if quick else 128,
        "mixed_batch_size": 8 if quick else 32,
        "rounds": 1 if quick else 3,
        "seconds": 0.2 if quick else 0.5,
        "eval_samples": 48 if quick else 500,
        "calibration_samples": 16 if quick else 128,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    requested = args.paths or list(DEFAULT_PATHS)
    args.paths = [REFERENCE, DEFAULT_PATH] + [name for name in requested if name not in (REFERENCE, DEFAULT_PATH)]
    if args.model is None and DEFAULT_CHECKPOINT.is_dir():
        args.model = str(DEFAULT_CHECKPOINT)
    return args


def logit_differences(runs: dict, model: CRNNForTextRecognition) -> str:
    """Each path's largest |logit - hf_crnn logit| on valid frames (the plain reference on an unpadded batch only)."""
    with torch.inference_mode():
        unpadded = fixed_width_workload(2).batches[0]
        differences = [f"plain (unpadded) {(runs[REFERENCE](unpadded)[0] - model(**unpadded).logits).abs().max():.1e}"]
        padded = mixed_width_workload(4, 4, seed=1).batches[0]
        expected, lengths = _model_run(model)(padded)
        for name in runs:
            if name != REFERENCE:  # no padding masks: it differs on padded images by design
                logits, _ = runs[name](padded)
                difference = max((logits[i, :n] - expected[i, :n]).abs().max() for i, n in enumerate(lengths.tolist()))
                differences.append(f"{name} {difference:.1e}")
    return ", ".join(differences)


def measure_memory(runs: dict, workloads: list[Workload], model, onnx_path: str) -> dict:
    """`{path: {batch size: MB}}` on the (already warmed-up) fixed-width workloads."""
    peak_mb = {name: {} for name in runs}
    memory_runs = dict(runs)
    if "onnxruntime" in runs:
        memory_runs["onnxruntime"] = onnxruntime_run(model, onnx_path, memory_arena=False)
    with torch.inference_mode():
        for name, run in memory_runs.items():
            for workload in workloads:
                if name == "onnxruntime":
                    run_workload(run, workload)  # the arena-less session's own warm-up
                peak_mb[name][str(workload.num_images)] = forward_peak_mb(run, workload)
    return peak_mb


def time_paths(runs: dict, workloads: list[Workload], rounds: int, seconds: float) -> dict:
    """`{path: {workload: [images/s per round]}}`, interleaved: each round times every path on a workload in turn."""
    speeds = {name: {workload.name: [] for workload in workloads} for name in runs}
    names = list(runs)
    with torch.inference_mode():
        for round_index in range(rounds):
            for workload in workloads:
                first = round_index % len(names)  # rotate, so that no path always runs right after the same one
                for name in names[first:] + names[:first]:
                    measured, reference = speeds[name][workload.name], speeds[REFERENCE][workload.name]
                    if round_index > 0 and measured[0] * SLOW_PATH_FACTOR < reference[0]:
                        continue
                    measured.append(images_per_second(runs[name], workload, seconds))
    return speeds


def greedy_decoding_ms(model: CRNNForTextRecognition, repeats: int = 20) -> float:
    with torch.inference_mode():
        log_probs = model(**fixed_width_workload(32).batches[0]).logits.log_softmax(-1)
    start = time.perf_counter()
    for _ in range(repeats):
        ctc_greedy_decode(log_probs)
    return (time.perf_counter() - start) / repeats * 1000


def accuracy_column(args, names, work_dir: str) -> tuple[dict, dict, str]:
    """`(cells, accuracies, note)`: the table's accuracy cell and the word accuracy of each evaluated path."""
    if args.model is None:
        note = (
            f"word accuracy skipped: no trained checkpoint ({DEFAULT_CHECKPOINT.relative_to(REPO_ROOT)} does not "
            "exist; pass --model DIR)"
        )
        return {}, {}, note
    trained = CRNNForTextRecognition.from_pretrained(args.model).eval()
    processor = CRNNProcessor.from_pretrained(args.model)
    eval_batches, texts = synthetic_words(args.eval_samples, DEFAULT_SYNTHETIC_SEED, "eval", processor, 64)
    calibration, _ = synthetic_words(args.calibration_samples, CALIBRATION_SEED, "train", processor, 32)
    evaluated = [name for name in names if name not in (REFERENCE, "compile")]
    runs = build_paths(trained, evaluated, calibration, os.path.join(work_dir, "crnn-trained.onnx"), label="trained")
    accuracy = evaluate_word_accuracy(runs, eval_batches, texts, processor)
    note = (
        f"word accuracy: {args.model} on {args.eval_samples} synthetic words in held-out fonts (seed "
        f"{DEFAULT_SYNTHETIC_SEED}), greedy decoding, normalised; int8 calibrated on {args.calibration_samples} "
        "words in training fonts"
    )
    return accuracy_cells(accuracy), {name: value for name, (value, _) in accuracy.items()}, note


def main(argv=None) -> int:
    args = parse_args(argv)
    transformers_logging.disable_progress_bar()  # "Loading weights" bars would tear the report
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {describe_cpu()}")
    print(f"load average at start (1/5/15 min): {load_average()}")

    torch.manual_seed(0)
    model = CRNNForTextRecognition(CRNNConfig()).eval()  # the paper's network; random weights are fine for speed
    default_processor = CRNNProcessor(CRNNImageProcessor(resize_mode="keep_aspect_ratio"), CRNNTokenizer())
    calibration, _ = synthetic_words(
        args.calibration_samples, CALIBRATION_SEED, "train", default_processor, args.mixed_batch_size
    )
    fixed_workloads = [fixed_width_workload(batch_size) for batch_size in args.batch_sizes]
    workloads = fixed_workloads + [mixed_width_workload(args.mixed_images, args.mixed_batch_size)]

    with tempfile.TemporaryDirectory(prefix="bench-inference-") as work_dir:
        onnx_path = os.path.join(work_dir, "crnn-paper.onnx")
        runs = build_paths(model, args.paths, calibration, onnx_path, label="speed model")
        print("max |logit - hf_crnn logit| on valid frames: " + logit_differences(runs, model))
        with torch.inference_mode():  # warm-up: first-call costs and compilation stay out of memory and timings
            for run in runs.values():
                for workload in workloads:
                    run_workload(run, workload)
        peak_mb = measure_memory(runs, fixed_workloads, model, onnx_path)
        speeds = time_paths(runs, workloads, args.rounds, args.seconds)
        decode_ms = greedy_decoding_ms(model)
        accuracy_cells_by_path, word_accuracy, accuracy_note = accuracy_column(args, list(runs), work_dir)

    rows = []
    for name in runs:
        row = {"path": name, "images_per_s": {}, "ratio": {}, "timed_once": {}, "peak_mb": peak_mb[name]}
        for workload in workloads:
            speed = statistics.median(speeds[name][workload.name])
            row["images_per_s"][workload.name] = round(speed, 1)
            row["ratio"][workload.name] = round(speed / statistics.median(speeds[REFERENCE][workload.name]), 3)
            row["timed_once"][workload.name] = args.rounds > 1 and len(speeds[name][workload.name]) == 1
        if args.model is not None:
            row["accuracy_cell"] = accuracy_cells_by_path.get(name, "n/a")
            row["word_accuracy"] = word_accuracy.get(name)
        rows.append(row)

    print()
    print(markdown_table(rows, workloads, args.batch_sizes))
    print()
    timed_once_note = f" † timed in the first round only (over {SLOW_PATH_FACTOR:g}× slower than the reference)."
    print(
        f"Median of {args.rounds} interleaved round(s) of >= {args.seconds} s each; ratios against the plain "
        "torch.nn reference in the same run." + (timed_once_note if args.rounds > 1 else "")
    )
    print(f"Greedy decoding of a batch of 32 (26 frames, not in the timings): {decode_ms:.2f} ms.")
    print(accuracy_note + ".")
    print(f"load average at end (1/5/15 min): {load_average()}; total {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as handle:
            results = {"args": vars(args), "rows": rows, "decode_ms": decode_ms, "accuracy": accuracy_note}
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
