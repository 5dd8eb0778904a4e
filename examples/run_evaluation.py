#!/usr/bin/env python
# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Evaluate a CRNN checkpoint on scene-text recognition sets: lexicon-free, with per-image lexicons and with a large
global lexicon; writes results.json, results.md, per-dataset mistakes CSVs and accuracy plots.

    python examples/run_evaluation.py --model_name_or_path checkpoints/crnn-real-en \
        --datasets synthetic path/to/IIIT5K path/to/IC13_857 --output_dir evaluation_results

`--model_name_or_path` defaults to the shipped checkpoint `checkpoints/crnn-real-en`. The same as
`hf-crnn evaluate ...`; `--help` lists every argument, docs/evaluation.md explains the output.
"""

import sys

from hf_crnn.evaluation import main

if __name__ == "__main__":
    sys.exit(main(prog="python examples/run_evaluation.py"))
