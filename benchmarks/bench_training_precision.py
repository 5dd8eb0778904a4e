# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
fp32 against bf16-autocast training steps on the CPU, side by side (not a timed test); prints a Markdown table.

    python benchmarks/bench_training_precision.py [--threads 1] [--rounds 3] [--steps 3] [--batch_size 32]

A step is what `Trainer` does per batch: forward, CTC loss (fp32 inside the model), backward and an AdamW update.
The two precisions alternate in `--rounds` rounds of `--steps` steps each on the same model and batch; the table
gives the median images/s of each and their ratio, for the paper's network (32x100 inputs, random weights) and, when
the folder exists, the shipped `checkpoints/crnn-real-en` (64x192 inputs). bf16 pays only on CPUs with native bf16
(AMX / AVX512-BF16); elsewhere it is emulated and slower.
"""

import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hf_crnn import CRNNConfig, CRNNForTextRecognition  # noqa: E402
from hf_crnn.fast_inference import cpu_features  # noqa: E402

REAL_CHECKPOINT = os.path.join(ROOT, "checkpoints", "crnn-real-en")


def training_step(model, optimizer, batch: dict, bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def images_per_second(model, height: int, width: int, args) -> dict[bool, float]:
    """Median images/s of fp32 (False) and bf16 (True) training steps, interleaved."""
    generator = torch.Generator().manual_seed(0)
    batch = {
        "pixel_values": torch.randn(args.batch_size, 1, height, width, generator=generator),
        "image_widths": torch.full((args.batch_size,), width),
        "labels": torch.randint(1, model.config.vocab_size, (args.batch_size, 8), generator=generator),
    }
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    speeds = {False: [], True: []}
    for bf16 in speeds:  # warm-up: kernels are compiled on first use
        training_step(model, optimizer, batch, bf16)
    for _ in range(args.rounds):
        for bf16 in speeds:
            start = time.perf_counter()
            for _ in range(args.steps):
                training_step(model, optimizer, batch, bf16)
            speeds[bf16].append(args.batch_size * args.steps / (time.perf_counter() - start))
    return {bf16: statistics.median(values) for bf16, values in speeds.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="training steps per round and precision")
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name, features = cpu_features()
    native = [feature for feature, present in features.items() if present and "bf16" in feature]
    print(f"CPU: {name}; native bf16: {', '.join(native) or 'none'}; {torch.get_num_threads()} thread(s); "
          f"torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}\n")
    print("| network, input | fp32 img/s | bf16 autocast img/s | bf16 / fp32 |")
    print("| --- | ---: | ---: | ---: |")
    networks = [("the paper's network, 32x100", lambda: CRNNForTextRecognition(CRNNConfig()), 32, 100)]
    if os.path.isdir(REAL_CHECKPOINT):
        networks.append(("crnn-real-en, 64x192", lambda: CRNNForTextRecognition.from_pretrained(REAL_CHECKPOINT), 64, 192))
    for label, build, height, width in networks:
        speed = images_per_second(build(), height, width, args)
        print(f"| {label} | {speed[False]:.1f} | {speed[True]:.1f} | {speed[True] / speed[False]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
