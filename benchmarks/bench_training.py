#!/usr/bin/env python
# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Training throughput: our `Trainer` path against a plain PyTorch training loop, same model, same batches.

Both paths train the paper's CRNN (`CRNNConfig()`, 8.3M parameters) on the same pre-made batches of synthetic word
images (64 per batch, 32 x 100 pixels, the paper's fixed resize), with the same work per step: forward with CTC
loss, backward, gradient clipping at 1.0, AdamW, a cosine LR schedule. The Trainer path is what
`examples/run_text_recognition.py` runs: `CRNNTrainer` + `CRNNTrainingArguments` (sequential sampling so the batches
are the pre-made ones) + `CRNNDataCollator` padding the pre-processed examples. The paths alternate, round after
round, in one process, so machine load affects both alike; steady-state throughput is measured between the ends of
the steps after `--warmup` steps (Trainer set-up, which happens once per run, is excluded).

    python benchmarks/bench_training.py [--steps 10] [--rounds 3] [--threads 1] [--bf16]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import torch
import transformers
from transformers import TrainerCallback, get_cosine_schedule_with_warmup

from hf_crnn import CRNNConfig, CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer
from hf_crnn.data_collator import CRNNDataCollator
from hf_crnn.synthetic import SyntheticTextGenerator
from hf_crnn.training import CRNNTrainer, CRNNTrainingArguments

BATCH_SIZE = 64
LEARNING_RATE = 1e-3
MAX_GRAD_NORM = 1.0


def make_examples(num_examples: int) -> list[dict]:
    """Pre-processed examples (`pixel_values` (1, 32, 100), `image_widths`, `labels`), rendered once."""
    generator = SyntheticTextGenerator(seed=0, fonts="all", lowercase=True, min_len=3, max_len=10)
    processor = CRNNProcessor(CRNNImageProcessor(resize_mode="fixed"), CRNNTokenizer())
    samples = [generator[i] for i in range(num_examples)]
    encoded = processor(images=[s["image"] for s in samples], text=[s["text"] for s in samples], return_tensors="pt")
    return [
        {
            "pixel_values": encoded["pixel_values"][i],
            "image_widths": int(encoded["image_widths"][i]),
            "labels": encoded["labels"][i][encoded["labels"][i] >= 0],
        }
        for i in range(num_examples)
    ]


class StepTimes(TrainerCallback):
    """Wall-clock time at the end of every optimisation step."""

    def __init__(self):
        self.times = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def throughput(step_ends: list[float], warmup: int) -> float:
    """Images per second between the end of step `warmup` and the end of the last step."""
    steps = len(step_ends) - warmup
    return steps * BATCH_SIZE / (step_ends[-1] - step_ends[warmup - 1])


def run_trainer(model, examples, steps: int, warmup: int, output_dir: str, bf16: bool) -> float:
    args = CRNNTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=BATCH_SIZE,
        max_steps=steps,
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        max_grad_norm=MAX_GRAD_NORM,
        train_sampling_strategy="sequential",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
        bf16=bf16,
        use_cpu=True,
    )
    timer = StepTimes()
    trainer = CRNNTrainer(
        model=model, args=args, train_dataset=examples, data_collator=CRNNDataCollator(), callbacks=[timer]
    )
    trainer.train()
    return throughput(timer.times, warmup)


def run_plain(model, batches, steps: int, warmup: int, bf16: bool) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    scheduler = get_cosine_schedule_with_warmup(optimizer, 0, steps)
    step_ends = []
    for batch in batches[:steps]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step_ends.append(time.perf_counter())
    return throughput(step_ends, warmup)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="optimisation steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="steps excluded from the timing")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two paths")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast in both paths")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()

    examples = make_examples(args.steps * BATCH_SIZE)
    collator = CRNNDataCollator()
    batches = [collator(examples[i : i + BATCH_SIZE]) for i in range(0, len(examples), BATCH_SIZE)]
    torch.manual_seed(0)
    trainer_model = CRNNForTextRecognition(CRNNConfig())
    plain_model = CRNNForTextRecognition(CRNNConfig())
    plain_model.load_state_dict(trainer_model.state_dict())

    results = {"Trainer (CRNNTrainer + CRNNDataCollator)": [], "plain PyTorch loop": []}
    with tempfile.TemporaryDirectory() as output_dir:
        for round_index in range(args.rounds):
            trainer_speed = run_trainer(trainer_model, examples, args.steps, args.warmup, output_dir, args.bf16)
            plain_speed = run_plain(plain_model, batches, args.steps, args.warmup, args.bf16)
            results["Trainer (CRNNTrainer + CRNNDataCollator)"].append(trainer_speed)
            results["plain PyTorch loop"].append(plain_speed)
            print(f"round {round_index + 1}: Trainer {trainer_speed:.1f} images/s, plain {plain_speed:.1f} images/s")

    plain = statistics.median(results["plain PyTorch loop"])
    print(
        f"\nCRNN paper config (8.3M parameters), batch {BATCH_SIZE}, 32x100 images, "
        f"{'bf16 autocast' if args.bf16 else 'fp32'}, {torch.get_num_threads()} CPU thread(s), torch "
        f"{torch.__version__}, transformers {transformers.__version__}, {platform.machine()}; median of "
        f"{args.rounds} alternating rounds of {args.steps - args.warmup} timed steps\n"
    )
    print("| path | images/s (median) | all rounds | vs plain loop |")
    print("| --- | ---: | --- | ---: |")
    for name, speeds in results.items():
        median = statistics.median(speeds)
        rounds = ", ".join(f"{speed:.1f}" for speed in speeds)
        print(f"| {name} | {median:.1f} | {rounds} | {median / plain:.2f}x |")


if __name__ == "__main__":
    main()
