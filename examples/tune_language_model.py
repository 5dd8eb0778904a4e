#!/usr/bin/env python
# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Chooses the character language model's weight, length bonus, greedy-confidence cutoff and n for a checkpoint on
validation crops: runs the model once per set, decodes with every setting, and prints the words read correctly
(protocol accuracy) per setting beside greedy decoding.

    python examples/tune_language_model.py --model_name_or_path checkpoints/crnn-real-en \
        --datasets outputs/heldout-iiit5k_train outputs/heldout-ic15_train --word_list /usr/share/dict/words \
        --orders 5 6 7 --weights 0.2 0.3 0.4 0.5 --length_bonuses 0.5 1.0 1.5 --greedy_confidence_cutoffs none 0.9

Tune on crops held out of training, never on the test sets you report. `--output_file` writes the chosen setting
(the most words read; ties go to the setting listed first) as a language model file, e.g. into a checkpoint as
`language_model.json`. docs/training.md, "Character language model", shows the grid behind the shipped one.
"""

import itertools
import sys
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser

from hf_crnn.benchmark_datasets import load_evaluation_dataset
from hf_crnn.decoding import DEFAULT_BEAM_WIDTH
from hf_crnn.evaluation import (
    DEFAULT_CHECKPOINT,
    language_model_decoding,
    lexicon_free_decoding,
    load_model_and_processor,
    predict,
    resolve_checkpoint,
    score_predictions,
)
from hf_crnn.file_utils import read_word_list_file
from hf_crnn.language_model import (
    DEFAULT_GREEDY_CONFIDENCE_CUTOFF,
    DEFAULT_LENGTH_BONUS,
    DEFAULT_ORDER,
    DEFAULT_WEIGHT,
    CharNgramLanguageModel,
)


@dataclass
class TuningArguments:
    datasets: list[str] = field(metadata={"help": "Validation sets (crops folders, ...; see hf-crnn evaluate)."})
    word_list: str = field(metadata={"help": "Words to train the language model on, one per line."})
    model_name_or_path: str = field(default=DEFAULT_CHECKPOINT, metadata={"help": "Checkpoint to tune for."})
    orders: list[int] = field(default_factory=lambda: [DEFAULT_ORDER], metadata={"help": "n values to try."})
    weights: list[float] = field(default_factory=lambda: [DEFAULT_WEIGHT], metadata={"help": "Weights to try."})
    length_bonuses: list[float] = field(
        default_factory=lambda: [DEFAULT_LENGTH_BONUS], metadata={"help": "Length bonuses to try."}
    )
    greedy_confidence_cutoffs: list[str] = field(
        default_factory=lambda: [str(DEFAULT_GREEDY_CONFIDENCE_CUTOFF)],
        metadata={"help": "Greedy-confidence cutoffs to try ('none': search every image)."},
    )
    beam_width: int = field(default=DEFAULT_BEAM_WIDTH, metadata={"help": "Beam width of the fused search."})
    source: str | None = field(default=None, metadata={"help": "Where the words come from (for --output_file)."})
    output_file: str | None = field(default=None, metadata={"help": "Write the best setting's model here."})
    num_threads: int | None = field(default=None, metadata={"help": "torch CPU threads."})


def main(argv=None) -> int:
    (args,) = HfArgumentParser(TuningArguments).parse_args_into_dataclasses(args=argv)
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    cutoffs = [None if cutoff.lower() == "none" else float(cutoff) for cutoff in args.greedy_confidence_cutoffs]
    words = read_word_list_file(args.word_list, what="language model word list")
    model, processor = load_model_and_processor(resolve_checkpoint(args.model_name_or_path), "cpu")
    decodings = [lexicon_free_decoding()]
    settings = {}
    for order in args.orders:
        counted = CharNgramLanguageModel(words, order=order, source=args.source or args.word_list)
        for weight, bonus, cutoff in itertools.product(args.weights, args.length_bonuses, cutoffs):
            tuned = counted.with_fusion(weight=weight, length_bonus=bonus, greedy_confidence_cutoff=cutoff)
            decoding = language_model_decoding(tuned, args.beam_width)
            decoding.name = f"n={order}, weight {weight}, bonus {bonus}, cutoff {cutoff}"
            decodings.append(decoding)
            settings[decoding.name] = tuned
    correct = dict.fromkeys((decoding.name for decoding in decodings), 0)
    total = 0
    for source in args.datasets:
        dataset = load_evaluation_dataset(source)
        labels = list(dataset["text"])
        predictions, _ = predict(model, processor, list(dataset["image"]), decodings)
        for name, prediction in predictions.items():
            correct[name] += round(score_predictions(prediction.texts, labels)["protocol_accuracy"] * len(labels))
        total += len(labels)
    print(f"| decoding | correct of {total} | protocol accuracy |\n| --- | ---: | ---: |")
    for name, count in correct.items():
        print(f"| {name} | {count} | {100 * count / total:.2f}% |")
    best = max(settings, key=lambda name: correct[name])  # max keeps the first of equals
    print(f"Best: {best} ({correct[best]} against greedy's {correct[decodings[0].name]})")
    if args.output_file is not None:
        settings[best].save(args.output_file)
        print(f"Wrote {settings[best]} to {args.output_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
