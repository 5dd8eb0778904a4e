# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Trains a character n-gram language model on a word list and writes it into a checkpoint as `language_model.json`,
where `processor.batch_decode(..., language_model=True)`, `pipeline(..., language_model=True)`,
`hf-crnn recognize --language-model checkpoint` and `hf-crnn evaluate --language_model checkpoint` find it.

    python examples/build_language_model.py --word_list /usr/share/dict/words --checkpoint checkpoints/crnn-real-en \
        --source "Debian wamerican 2020.12.07-2 (SCOWL)"

See docs/training.md, "Character language model", for how the default weight and bonus were chosen.
"""

import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_crnn.language_model import (
    DEFAULT_LENGTH_BONUS,
    DEFAULT_ORDER,
    DEFAULT_WEIGHT,
    LANGUAGE_MODEL_FILE,
    CharNgramLanguageModel,
)


@dataclass
class LanguageModelArguments:
    word_list: str = field(metadata={"help": "Training words, one per line (e.g. /usr/share/dict/words)."})
    checkpoint: str | None = field(
        default=None, metadata={"help": f"Checkpoint folder to write {LANGUAGE_MODEL_FILE} into."}
    )
    output_file: str | None = field(default=None, metadata={"help": "Or write the model to this file instead."})
    order: int = field(default=DEFAULT_ORDER, metadata={"help": "n of the character n-grams."})
    weight: float = field(default=DEFAULT_WEIGHT, metadata={"help": "Weight of the language model in beam search."})
    length_bonus: float = field(default=DEFAULT_LENGTH_BONUS, metadata={"help": "Bonus per scored character."})
    source: str | None = field(default=None, metadata={"help": "Where the words come from (default: the path)."})

    def __post_init__(self):
        if (self.checkpoint is None) == (self.output_file is None):
            raise ValueError("Pass exactly one of --checkpoint and --output_file.")
        if self.checkpoint is not None and not os.path.isfile(os.path.join(self.checkpoint, "config.json")):
            raise ValueError(f"--checkpoint {self.checkpoint} is not a checkpoint folder (no config.json).")


def main(argv=None) -> int:
    parser = HfArgumentParser(LanguageModelArguments)
    try:
        (args,) = parser.parse_args_into_dataclasses(args=argv)
        language_model = CharNgramLanguageModel.from_word_list(
            args.word_list, order=args.order, weight=args.weight, length_bonus=args.length_bonus, source=args.source
        )
    except ValueError as error:
        print(f"build_language_model.py: error: {error}", file=sys.stderr)
        return 2
    path = args.output_file or os.path.join(args.checkpoint, LANGUAGE_MODEL_FILE)
    language_model.save(path)
    print(f"Wrote {language_model} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
