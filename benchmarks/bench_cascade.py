# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Per-image time of the two-checkpoint cascade through the pipeline, at several read-ahead lengths, next to
`hf_crnn.recognition.CRNNCascade` over the whole list and the fast checkpoint alone (a benchmark, not a timed test).

    python benchmarks/bench_cascade.py [--data ../shared/data/real/ic15_train] [--num_images 1500] \
        [--optimize int8_bf16] [--lookahead_batches 8 32 64] [--rounds 3] [--threads 1]

The defaults are the shipped pair (`crnn-real-en-fast` greedy, re-read by `crnn-real-en` with its language model in a
beam of 3 below confidence 0.9, or 0.5 for a reading that spells a word of the language model) on ICDAR 2015
*training* crops: never point `--data` at an evaluation set to tune anything. int8 modes are calibrated on the first
64 crops of `--calibration_dir` (IIIT5K's training crops). Every reader first reads the images once untimed (so
kernels for every batch shape exist), then once per round, the rounds interleaving the readers so a change of machine
load reaches all of them. The table gives each reader's median
milliseconds per image, every round's, and how many images the fallback read again; the cascade rows must agree on
the texts, or the script says where they differ.
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

import hf_crnn  # noqa: E402, F401  (registers the "text-recognition" task)
from hf_crnn.cli import collect_image_paths  # noqa: E402
from hf_crnn.fast_inference import FAST_PATH_MODES, describe_cpu  # noqa: E402
from hf_crnn.image_processing_crnn import load_image  # noqa: E402
from hf_crnn.language_model import CHECKPOINT_LANGUAGE_MODEL, language_model_option  # noqa: E402
from hf_crnn.pipeline_crnn import (  # noqa: E402
    DEFAULT_FALLBACK_BEAM_WIDTH,
    DEFAULT_FALLBACK_THRESHOLD,
    DEFAULT_FALLBACK_WORD_THRESHOLD,
    DEFAULT_LOOKAHEAD_BATCHES,
)
from hf_crnn.recognition import CRNNCascade, lexicon_free_decoding, predict  # noqa: E402

SHARED_REAL = os.path.join(ROOT, "..", "shared", "data", "real")
CALIBRATION_IMAGES = 64


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "checkpoints", "crnn-real-en-fast"))
    parser.add_argument("--fallback_model", default=os.path.join(ROOT, "checkpoints", "crnn-real-en"))
    parser.add_argument(
        "--language_model", default=CHECKPOINT_LANGUAGE_MODEL,
        help="the fallback's language model: 'checkpoint' (its own language_model.json), a file, or 'none' (greedy)",
    )
    parser.add_argument("--data", default=os.path.join(SHARED_REAL, "ic15_train"), help="a folder of training crops")
    parser.add_argument("--num_images", type=int, default=1500, help="the first N images of --data")
    parser.add_argument("--optimize", default="int8_bf16", choices=("none", *FAST_PATH_MODES), help="both stages")
    parser.add_argument("--calibration_dir", default=os.path.join(SHARED_REAL, "iiit5k_train"))
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lookahead_batches", type=int, nargs="+", default=[8, DEFAULT_LOOKAHEAD_BATCHES, 64])
    parser.add_argument("--threshold", type=float, default=DEFAULT_FALLBACK_THRESHOLD)
    parser.add_argument(
        "--word_threshold", type=float, default=DEFAULT_FALLBACK_WORD_THRESHOLD,
        help="the threshold of fast readings that spell a word of the language model (1: the same as any other)",
    )
    parser.add_argument("--beam_width", type=int, default=DEFAULT_FALLBACK_BEAM_WIDTH)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    for name in ("num_images", "batch_size", "beam_width", "rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if min(args.lookahead_batches) < 1:
        parser.error("--lookahead_batches must be at least 1")
    return args


def read_images(folder: str, count: int) -> list:
    paths = collect_image_paths([folder])[:count]
    if not paths:
        raise SystemExit(f"bench_cascade.py: no images in {folder}")
    return [load_image(path, 1) for path in paths]


def build_readers(args, images) -> dict:
    """`{row name: () -> (texts, how many images the fallback read again, or None)}` for every reader."""
    from transformers import pipeline

    fast = pipeline("text-recognition", model=args.model, device="cpu")
    accurate = pipeline("text-recognition", model=args.fallback_model, device="cpu")
    if args.optimize != "none":
        calibration = read_images(args.calibration_dir, CALIBRATION_IMAGES)
        fast.optimize_for_cpu(args.optimize, calibration)
        accurate.optimize_for_cpu(args.optimize, calibration)
    language_model = None if args.language_model == "none" else language_model_option(args.language_model)
    fallback_options = {}
    if language_model is not None:
        fallback_options = {"language_model": language_model, "beam_width": args.beam_width}
    cascade_pipeline = pipeline(
        "text-recognition", model=fast.model, processor=fast.processor, device="cpu", fallback_pipeline=accurate,
        fallback_threshold=args.threshold, fallback_options=fallback_options,
        fallback_word_threshold=args.word_threshold,
    )
    cascade = CRNNCascade(
        fast.model, fast.processor, accurate.model, accurate.processor, args.threshold,
        fallback_language_model=language_model, batch_size=args.batch_size, fallback_beam_width=args.beam_width,
        word_threshold=args.word_threshold,
    )
    greedy = lexicon_free_decoding()

    def read_with(reader, lookahead):
        def read():
            results = reader(images, batch_size=args.batch_size, lookahead_batches=lookahead)
            texts = [result[0]["generated_text"] for result in results]
            if reader is not cascade_pipeline:
                return texts, None
            return texts, sum(result[0]["read_by"] == "fallback" for result in results)
        return read

    def fast_whole_list():
        predictions, _ = predict(fast.model, fast.processor, images, [greedy], args.batch_size)
        return predictions[greedy.name].texts, None

    def cascade_whole_list():
        predictions = cascade.predict(images)
        return predictions.texts, len(predictions.reread)

    readers = {f"fast, pipeline, lookahead_batches={n}": read_with(fast, n) for n in args.lookahead_batches}
    readers["fast, `predict` (whole list)"] = fast_whole_list
    readers.update({f"cascade, pipeline, lookahead_batches={n}": read_with(cascade_pipeline, n)
                    for n in args.lookahead_batches})
    readers["cascade, `CRNNCascade` (whole list)"] = cascade_whole_list
    return readers


def run(readers: dict, rounds: int) -> dict:
    """Each reader once untimed, then once per round (rounds interleaved): `{name: (seconds, texts, reread)}`."""
    outputs = {name: read() for name, read in readers.items()}
    seconds = {name: [] for name in readers}
    for _ in range(rounds):
        for name, read in readers.items():
            started = time.perf_counter()
            read()
            seconds[name].append(time.perf_counter() - started)
    return {name: (seconds[name], *outputs[name]) for name in readers}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    images = read_images(args.data, args.num_images)
    readers = build_readers(args, images)
    results = run(readers, args.rounds)

    print(f"{len(images):,} images of {os.path.relpath(args.data, ROOT)}, batch {args.batch_size}, both stages "
          f"{args.optimize}; fallback below {args.threshold:g} (words of the language model below "
          f"{args.word_threshold:g}), language model {args.language_model} (beam {args.beam_width})")
    print(f"CPU: {describe_cpu()}, {torch.get_num_threads()} torch thread(s); "
          f"Python {platform.python_version()}, torch {torch.__version__}; {args.rounds} round(s)")
    print()
    print("| reader | ms per image (median) | each round | read again |")
    print("| --- | ---: | --- | ---: |")
    for name, (seconds, _, reread) in results.items():
        per_image = [1000 * value / len(images) for value in seconds]
        rounds = ", ".join(f"{value:.3f}" for value in per_image)
        print(f"| {name} | {statistics.median(per_image):.3f} | {rounds} | {'' if reread is None else reread} |")
    cascade_texts = {name: texts for name, (_, texts, reread) in results.items() if reread is not None}
    first_name, first_texts = next(iter(cascade_texts.items()))
    differing = [name for name, texts in cascade_texts.items() if texts != first_texts]
    print()
    if differing:
        print(f"Cascade rows reading other texts than '{first_name}': {', '.join(differing)}")
        return 1
    print("Every cascade row read the same texts.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
