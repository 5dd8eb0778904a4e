#!/usr/bin/env python
# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Average the weights of CRNN checkpoints fine-tuned from one start into one checkpoint ("model soup").

    python examples/average_checkpoints.py --checkpoints runs/a runs/b --output_dir runs/soup
    python examples/run_text_recognition.py --model_name_or_path runs/soup --do_eval ...   # choose on validation data

The checkpoints must share their architecture and their processor (image height, resizing, vocabulary); see
`hf_crnn.model_averaging`. The output is a normal checkpoint (model and processor), written atomically.
"""

import logging
import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_crnn.file_utils import staged_directory
from hf_crnn.model_averaging import average_checkpoints

logger = logging.getLogger(__name__)


@dataclass
class AveragingArguments:
    """Arguments of the checkpoint averaging."""

    checkpoints: list[str] = field(metadata={"help": "Two or more checkpoint folders (or Hub ids) to average."})
    output_dir: str = field(metadata={"help": "Where to save the averaged model and its processor."})
    weights: list[float] | None = field(
        default=None, metadata={"help": "One non-negative weight per checkpoint (normalised); default uniform."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into --output_dir even if it already holds files."}
    )


def main(argv=None):
    parser = HfArgumentParser(AveragingArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if os.path.isdir(args.output_dir) and os.listdir(args.output_dir) and not args.overwrite_output_dir:
        raise ValueError(f"--output_dir {args.output_dir} is not empty; pass --overwrite_output_dir to write into it.")
    model, processor = average_checkpoints(args.checkpoints, args.weights)
    with staged_directory(args.output_dir) as staging:  # the model and its processor land together, or neither
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
    weights = args.weights or [1] * len(args.checkpoints)
    parts = ", ".join(f"{weight:g} x {path}" for weight, path in zip(weights, args.checkpoints))
    logger.info("Saved the average of %s to %s", parts, args.output_dir)
    return model


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        sys.exit(f"average_checkpoints.py: error: {error}")
