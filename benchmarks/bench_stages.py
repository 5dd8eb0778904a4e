# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Where a checkpoint's forward pass spends its time on this CPU, per fast path: the convolution stack (with the height
pooling) against the rest (BiLSTMs and classifier), in milliseconds per image (a benchmark, not a timed test).

    python benchmarks/bench_stages.py [--model checkpoints/crnn-real-en-fast] [--data ../shared/data/real/ic15_train] \
        [--num_images 640] [--modes fp32 int8 int8_bf16] [--rounds 3] [--threads 1]

The images are sorted by width and batched as the pipeline batches them (`--batch_size`, default 32); preprocessing
and decoding are not timed. int8 modes are calibrated on the first 64 crops of `--calibration_dir` (IIIT5K's training
crops). Each mode first reads the batches once untimed (so kernels for every batch shape exist), then once per round,
the rounds interleaving the modes; the table gives medians. The split is taken by a hook at the first BiLSTM.

oneDNN runs the convolutions and the bf16 LSTMs, and picks its instructions from the CPU's: on a CPU with AMX it
uses AMX. `ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI` (or `AVX512_CORE_BF16`, `AVX2`) in front of the command holds it
below that, to see what a CPU without AMX (or without native bf16) would do; the CPU line says when it is capped.
FBGEMM (the dynamic int8 LSTMs of `"int8"`) ignores the cap.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hf_crnn import CRNNForTextRecognition, CRNNProcessor  # noqa: E402
from hf_crnn.cli import collect_image_paths  # noqa: E402
from hf_crnn.fast_inference import FAST_PATH_MODES, INT8_MODES, describe_cpu, optimize_for_cpu  # noqa: E402
from hf_crnn.image_processing_crnn import load_image  # noqa: E402

SHARED_REAL = os.path.join(ROOT, "..", "shared", "data", "real")
CALIBRATION_IMAGES = 64
# "onnxruntime" runs one opaque graph: no split to take; "auto" is one of the others.
STAGE_MODES = tuple(mode for mode in FAST_PATH_MODES if mode not in ("onnxruntime", "auto"))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "checkpoints", "crnn-real-en-fast"))
    parser.add_argument("--data", default=os.path.join(SHARED_REAL, "ic15_train"), help="a folder of word crops")
    parser.add_argument("--num_images", type=int, default=640, help="the first N images of --data")
    parser.add_argument("--modes", nargs="+", default=["fp32", "int8", "int8_bf16"], choices=("none", *STAGE_MODES))
    parser.add_argument("--calibration_dir", default=os.path.join(SHARED_REAL, "iiit5k_train"))
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    for name in ("num_images", "batch_size", "rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def read_batches(folder: str, count: int, processor: CRNNProcessor, batch_size: int) -> list[dict]:
    """The first `count` images of `folder`, sorted by resized width, as processor batches of `batch_size`."""
    paths = collect_image_paths([folder])[:count]
    if not paths:
        raise SystemExit(f"bench_stages.py: no images in {folder}")
    images = [load_image(path, processor.image_processor.num_channels) for path in paths]
    target_width = processor.image_processor.target_width
    images.sort(key=lambda image: target_width(image.width, image.height))
    return [processor(images=images[start : start + batch_size]) for start in range(0, len(images), batch_size)]


class StageTimer:
    """Times one model's passes over `batches`: the whole forward pass, and up to its first BiLSTM (a hook)."""

    def __init__(self, model, batches: list[dict]):
        self.model, self.batches = model, batches
        self.num_images = sum(batch["pixel_values"].shape[0] for batch in batches)
        self._reached_lstm = 0.0
        model.crnn.lstm_layers[0].register_forward_pre_hook(self._mark)

    def _mark(self, module, inputs):
        self._reached_lstm = time.perf_counter()

    def __call__(self) -> tuple[float, float]:
        """`(convolution-stack seconds, whole-forward seconds)` of one pass over the batches."""
        convolutions = whole = 0.0
        with torch.inference_mode():
            for batch in self.batches:
                started = time.perf_counter()
                self.model(pixel_values=batch["pixel_values"], image_widths=batch["image_widths"])
                ended = time.perf_counter()
                convolutions += self._reached_lstm - started
                whole += ended - started
        return convolutions, whole


def build(model, mode: str, calibration):
    if mode == "none":
        return model
    return optimize_for_cpu(model, mode, calibration_data=calibration if mode in INT8_MODES else None)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = CRNNForTextRecognition.from_pretrained(args.model).eval()
    processor = CRNNProcessor.from_pretrained(args.model)
    batches = read_batches(args.data, args.num_images, processor, args.batch_size)
    calibration = None
    if any(mode in INT8_MODES for mode in args.modes):
        calibration = read_batches(args.calibration_dir, CALIBRATION_IMAGES, processor, args.batch_size)
    timers = {mode: StageTimer(build(model, mode, calibration), batches) for mode in args.modes}

    for timer in timers.values():
        timer()  # untimed: kernels for every batch shape
    measured = {mode: [] for mode in timers}
    for _ in range(args.rounds):
        for mode, timer in timers.items():
            measured[mode].append(timer())

    num_images = next(iter(timers.values())).num_images
    print(f"{os.path.relpath(args.model, ROOT)} on the first {num_images:,} images of "
          f"{os.path.relpath(args.data, ROOT)}, sorted by width, batch {args.batch_size}; median of {args.rounds} "
          f"round(s)")
    print(f"CPU: {describe_cpu()}, {torch.get_num_threads()} torch thread(s); Python {platform.python_version()}, "
          f"torch {torch.__version__}")
    print()
    print("| mode | convolutions, ms per image | BiLSTMs + classifier | whole forward pass |")
    print("| --- | ---: | ---: | ---: |")
    for mode, rounds in measured.items():
        convolutions = statistics.median(1000 * conv / num_images for conv, _ in rounds)
        whole = statistics.median(1000 * total / num_images for _, total in rounds)
        rest = statistics.median(1000 * (total - conv) / num_images for conv, total in rounds)
        print(f"| {mode} | {convolutions:.3f} | {rest:.3f} | {whole:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
