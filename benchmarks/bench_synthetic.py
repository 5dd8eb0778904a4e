#!/usr/bin/env python
# Copyright 2025 The hf-crnn Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
Throughput of the synthetic word-image generator, in one process (one core), printed as a Markdown table.

    python benchmarks/bench_synthetic.py --num_images 2000

Rows: rendering alone (several text settings, the "clean" and the "scene" style, the latter with the background
textures of the default folder and with generated ones), rendering plus PNG encoding (what building a map-style dataset
costs per image), `make_synthetic_dataset` end to end (Arrow files written), iterating
`make_synthetic_iterable_dataset`, and rendering plus batching with `CRNNDataCollator` (what a training loop fed by
the stream pays per image).
"""

import argparse
import io
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable


# One core: keep numpy / torch from spreading small ops over threads.
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from hf_crnn.fast_inference import cpu_features  # noqa: E402
from hf_crnn.synthetic import (  # noqa: E402
    SyntheticTextGenerator,
    make_synthetic_dataset,
    make_synthetic_iterable_dataset,
)


def images_per_second(run: Callable[[int], None], num_images: int, repeats: int) -> tuple[float, float]:
    """Median `(per CPU second, per wall-clock second)` throughput of `run(num_images)` over `repeats` runs.

    CPU time is what one core delivers even on a machine busy with other jobs, where wall-clock rates fluctuate.
    """
    run(min(num_images, 50))  # font cache, imports, lazy initialisation
    cpu_rates, wall_rates = [], []
    for _ in range(repeats):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        run(num_images)
        cpu_rates.append(num_images / (time.process_time() - cpu_start))
        wall_rates.append(num_images / (time.perf_counter() - wall_start))
    return statistics.median(cpu_rates), statistics.median(wall_rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_images", type=int, default=2000, help="Images per timed run.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per row (the median is reported).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    datasets.disable_progress_bars()

    generator = SyntheticTextGenerator(seed=args.seed)
    widths = [generator[i]["width"] for i in range(500)]

    def render_with(**kwargs) -> Callable[[int], None]:
        source = SyntheticTextGenerator(seed=args.seed, **kwargs)
        return lambda n: [source[i] for i in range(n)]

    empty_dir = tempfile.TemporaryDirectory()  # no textures: the scene style's generated fallback

    def render_and_encode(n: int) -> None:
        for i in range(n):
            generator[i]["image"].save(io.BytesIO(), format="PNG")

    def build_dataset(n: int) -> None:
        with tempfile.TemporaryDirectory() as cache_dir:
            make_synthetic_dataset(n, seed=args.seed, cache_dir=cache_dir)

    def iterate_stream(n: int) -> None:
        for _, _ in zip(make_synthetic_iterable_dataset(seed=args.seed), range(n)):
            pass

    rows = [
        ("render, default (70% words, 30% random strings)", render_with()),
        ("render, words only, lowercase", render_with(word_probability=1.0, lowercase=True)),
        ("render, random strings of 10-16 characters", render_with(word_probability=0.0, min_len=10, max_len=16)),
        ("render, held-out eval fonts", render_with(fonts="eval")),
        ("render, scene style, textures of the default folder", render_with(style="scene")),
        ("render, scene style, generated textures", render_with(style="scene", background_dirs=empty_dir.name)),
        ("render + PNG encode", render_and_encode),
        ("make_synthetic_dataset (Arrow on disk)", build_dataset),
        ("make_synthetic_iterable_dataset, iterate", iterate_stream),
    ]
    try:
        from hf_crnn import CRNNImageProcessor, CRNNProcessor, CRNNTokenizer
        from hf_crnn.data_collator import CRNNDataCollator

        processor = CRNNProcessor(
            CRNNImageProcessor(resize_mode="keep_aspect_ratio"), CRNNTokenizer(do_lower_case=True)
        )
        collator = CRNNDataCollator(processor)

        def render_and_collate(n: int, batch_size: int = 64) -> None:
            for start in range(0, n, batch_size):
                collator([generator[i] for i in range(start, min(n, start + batch_size))])

        rows.append(("render + CRNNDataCollator (batches of 64)", render_and_collate))
    except ImportError as error:  # the core package is not there: benchmark the data side alone
        print(f"(skipping the collator row: {error})")

    print(
        f"CPU: {cpu_features()[0]}; load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}; "
        f"Python {platform.python_version()}, {platform.processor() or platform.machine()}, 1 process, "
        f"{args.num_images} images per run, median of {args.repeats}; {len(generator.fonts)} training fonts; "
        f"image height 32, width mean {np.mean(widths):.0f} px (min {min(widths)}, max {max(widths)})"
    )
    print()
    print("| what | images / CPU s | images / wall s |")
    print("| --- | ---: | ---: |")
    for name, run in rows:
        cpu_rate, wall_rate = images_per_second(run, args.num_images, args.repeats)
        print(f"| {name} | {cpu_rate:,.0f} | {wall_rate:,.0f} |", flush=True)
    print(f"\nload average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
