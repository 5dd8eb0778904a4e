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
Convert scene-text LMDB database(s) (MJSynth, SynthText, clovaai benchmark sets) to a `datasets` folder.

    pip install lmdb
    python examples/lmdb_to_datasets.py \
        --lmdb_path data_lmdb_release/evaluation/IIIT5k_3000 \
        --output_dir data/iiit5k --num_proc 4

The output loads with `datasets.load_from_disk(output_dir)` and has the columns `image` (original encoded bytes),
`text`, `width`, `height`, `source`, `lmdb_index`, and `length` (the processed width, for
`TrainingArguments(train_sampling_strategy="group_by_length", length_column_name="length")`).
"""

import logging
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_crnn.data_collator import add_length_column
from hf_crnn.lmdb_dataset import load_lmdb_dataset


logger = logging.getLogger(__name__)


@dataclass
class ConversionArguments:
    """Arguments of the LMDB -> `datasets` conversion."""

    lmdb_path: str = field(
        metadata={"help": "An LMDB database folder (with data.mdb), or a folder tree of them to concatenate."}
    )
    output_dir: str = field(metadata={"help": "Where to `save_to_disk` the dataset."})
    max_samples: int | None = field(
        default=None, metadata={"help": "Convert at most this many samples per database (for quick subsets)."}
    )
    max_label_length: int | None = field(
        default=None, metadata={"help": "Drop samples with longer labels (clovaai's batch_max_length, e.g. 25)."}
    )
    skip_invalid: bool = field(
        default=True, metadata={"help": "Skip unreadable images and missing labels instead of failing."}
    )
    image_height: int = field(
        default=32, metadata={"help": "Height images are resized to for the `length` column (aspect kept)."}
    )
    length_column_name: str = field(
        default="length", metadata={"help": "Name of the processed-width column; empty to leave it out."}
    )
    num_proc: int | None = field(default=None, metadata={"help": "Processes for reading and writing."})
    max_shard_size: str = field(default="500MB", metadata={"help": "Largest Arrow file of the saved dataset."})
    cache_dir: str | None = field(default=None, metadata={"help": "`datasets` cache folder for intermediate files."})


def main(argv=None):
    parser = HfArgumentParser(ConversionArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)

    dataset = load_lmdb_dataset(
        args.lmdb_path,
        max_samples=args.max_samples,
        max_label_length=args.max_label_length,
        skip_invalid=args.skip_invalid,
        num_proc=args.num_proc,
        cache_dir=args.cache_dir,
    )
    if args.length_column_name:
        dataset = add_length_column(
            dataset, image_height=args.image_height, length_column_name=args.length_column_name
        )
    dataset.save_to_disk(args.output_dir, max_shard_size=args.max_shard_size, num_proc=args.num_proc)
    logger.info("Saved %d samples from %s to %s", len(dataset), args.lmdb_path, args.output_dir)
    return dataset


if __name__ == "__main__":
    main(sys.argv[1:])
