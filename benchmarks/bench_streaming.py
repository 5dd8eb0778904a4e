# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Memory of the text-recognition pipeline over a long stream of images (not a timed test).

    python benchmarks/bench_streaming.py [--model checkpoints/crnn-real-en] [--num_images 20000] [--batch_size 32]

Generates word crops one at a time (black words on white, random widths) and feeds them to the pipeline through a
generator, so the input is never held in memory; reads the results as they come and prints the process's resident
memory (RSS) every `--report_every` images, with its growth since the first report. The pipeline reads a bounded
look-ahead (`lookahead_batches * batch_size` images), so RSS should stay flat (target: under 50 MB of growth after
the first 2,000 images).
"""

import argparse
import os
import platform
import random
import sys
import time

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import torch
from transformers import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import hf_crnn  # noqa: E402, F401  (registers the "text-recognition" task)
from hf_crnn.fast_inference import describe_cpu  # noqa: E402

WORDS = (
    "the of and to in is was for on that with by at from his her an be as this are which or it had not but have "
    "recognition network pipeline stream memory batch width hugging face transformers lexicon confidence"
).split()
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc), else the peak from `resource`."""
    try:
        with open("/proc/self/statm", encoding="utf-8") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_images(count: int, seed: int = 0):
    """Yields `count` word crops (1-3 words, height 32-48 px), made one at a time."""
    rng = random.Random(seed)
    fonts = {}
    for _ in range(count):
        height = rng.randint(32, 48)
        font = fonts.get(height)
        if font is None:
            font = fonts[height] = (
                PIL.ImageFont.truetype(FONT, int(height * 0.7)) if os.path.exists(FONT)
                else PIL.ImageFont.load_default()
            )
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        left, top, right, bottom = font.getbbox(text)
        image = PIL.Image.new("L", (right - left + 12, height), 255)
        PIL.ImageDraw.Draw(image).text((6 - left, (height - (bottom - top)) // 2 - top), text, font=font, fill=0)
        yield image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "checkpoints", "crnn-real-en"))
    parser.add_argument("--num_images", type=int, default=20000)
    parser.add_argument("--report_every", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    reader = pipeline("text-recognition", model=args.model, device="cpu")
    start_rss, started = rss_mb(), time.perf_counter()
    rows, first_report = [], None
    results = reader(generate_images(args.num_images), batch_size=args.batch_size)
    for count, result in enumerate(results, start=1):
        assert result[0]["generated_text"] is not None
        if count % args.report_every == 0 or count == args.num_images:
            rss = rss_mb()
            first_report = rss if first_report is None else first_report
            elapsed = time.perf_counter() - started
            rows.append((count, rss, rss - first_report, count / elapsed))

    print(f"Streaming {args.num_images:,} generated images through `pipeline(generator, batch_size="
          f"{args.batch_size})` with {os.path.relpath(args.model, ROOT)}")
    print(f"CPU: {describe_cpu()}, {torch.get_num_threads()} torch thread(s); "
          f"Python {platform.python_version()}, torch {torch.__version__}; RSS before the first image {start_rss:.0f} MB")
    print()
    print("| images read | RSS (MB) | growth since the first report (MB) | images/s so far |")
    print("|---:|---:|---:|---:|")
    for count, rss, growth, speed in rows:
        print(f"| {count:,} | {rss:.0f} | {growth:+.1f} | {speed:.0f} |")
    growth = rows[-1][2] if rows else 0.0
    print()
    print(f"Growth after the first report: {growth:+.1f} MB (target: under 50 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
