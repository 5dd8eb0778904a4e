# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Weight averaging of CRNN checkpoints fine-tuned from one start ("model soups", Wortsman et al., ICML 2022).

Models fine-tuned from the same weights usually stay in one basin of the loss, where the average of their weights
reads at least as well as each of them, at the cost of one model. `average_checkpoints` averages every floating-point
tensor (weights, biases, batch-norm running statistics) of checkpoints that share an architecture *and* an input
pipeline: averaging models that read differently preprocessed images (another height, another vocabulary) gives a
model that reads neither, so it is refused. Which checkpoints to average is a choice to make on validation data.

    model, processor = average_checkpoints(["runs/a", "runs/b"])
    model.save_pretrained("runs/soup"); processor.save_pretrained("runs/soup")

`examples/average_checkpoints.py` does the same from the command line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch

from .modeling_crnn import CRNNForTextRecognition
from .processing_crnn import CRNNProcessor

# Config entries that say where or how a checkpoint was saved, not what it computes.
_CONFIG_BOOKKEEPING = frozenset({"_name_or_path", "transformers_version", "dtype", "torch_dtype", "architectures"})


def average_state_dicts(
    state_dicts: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """
    The weighted average of state dicts with the same keys and shapes.

    Floating-point tensors are averaged in float32 and returned in their own dtype; other tensors (batch norm's
    `num_batches_tracked` counters) are taken from the first state dict.

    Args:
        state_dicts: Two or more state dicts.
        weights (*optional*): One non-negative weight per state dict (normalised to sum to 1); default uniform.

    Raises:
        `ValueError`: fewer than two state dicts, bad weights, or keys / shapes that differ (the first one named).
    """
    if len(state_dicts) < 2:
        raise ValueError(f"Averaging needs at least two state dicts, got {len(state_dicts)}.")
    weights = _normalized_weights(weights, len(state_dicts))
    first = state_dicts[0]
    for index, state_dict in enumerate(state_dicts[1:], start=1):
        if state_dict.keys() != first.keys():
            difference = sorted(state_dict.keys() ^ first.keys())
            raise ValueError(f"State dict {index} has other tensors than state dict 0: {difference[:5]}.")
        for key, tensor in state_dict.items():
            if tensor.shape != first[key].shape:
                raise ValueError(
                    f"{key!r} has shape {tuple(tensor.shape)} in state dict {index} and {tuple(first[key].shape)} in "
                    "state dict 0: not the same architecture."
                )
    averaged = {}
    for key, tensor in first.items():
        if not tensor.is_floating_point():
            averaged[key] = tensor.clone()
            continue
        total = sum(weight * state_dict[key].float() for weight, state_dict in zip(weights, state_dicts))
        averaged[key] = total.to(tensor.dtype)
    return averaged


def _normalized_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    weights = [float(weight) for weight in weights]
    if len(weights) != count:
        raise ValueError(f"Got {len(weights)} weights for {count} checkpoints.")
    if any(not weight >= 0 for weight in weights) or not sum(weights) > 0:
        raise ValueError(f"Weights must be non-negative numbers with a positive sum, got {weights}.")
    total = sum(weights)
    return [weight / total for weight in weights]


def _differences(first: Mapping, other: Mapping, ignore: frozenset = frozenset()) -> list[str]:
    keys = (first.keys() | other.keys()) - ignore
    return sorted(key for key in keys if first.get(key) != other.get(key))


def average_checkpoints(
    paths: Sequence[str | os.PathLike], weights: Sequence[float] | None = None
) -> tuple[CRNNForTextRecognition, CRNNProcessor]:
    """
    Loads CRNN checkpoints and returns `(model, processor)`: their weighted weight average (in eval mode) and the
    processor they share.

    Args:
        paths: Two or more checkpoint folders (or Hub ids) with a model and a processor each.
        weights (*optional*): One non-negative weight per checkpoint; default uniform.

    Raises:
        `ValueError`: the checkpoints differ in architecture (config) or in how they read images and labels
        (image processor settings or vocabulary), naming what differs.
    """
    if len(paths) < 2:
        raise ValueError(f"Averaging needs at least two checkpoints, got {len(paths)}.")
    models = [CRNNForTextRecognition.from_pretrained(path) for path in paths]
    processors = [CRNNProcessor.from_pretrained(path) for path in paths]
    first_config = models[0].config.to_dict()
    first_image_processor = processors[0].image_processor.to_dict()
    first_vocab = processors[0].tokenizer.get_vocab()
    for path, model, processor in zip(paths[1:], models[1:], processors[1:]):
        differs = _differences(first_config, model.config.to_dict(), _CONFIG_BOOKKEEPING)
        if differs:
            raise ValueError(f"{path} has another architecture than {paths[0]}: its config differs in {differs}.")
        differs = _differences(first_image_processor, processor.image_processor.to_dict())
        if differs:
            raise ValueError(
                f"{path} reads images differently from {paths[0]} (image processor: {differs}); a weight average "
                "of models trained on different inputs reads neither."
            )
        if processor.tokenizer.get_vocab() != first_vocab:
            raise ValueError(f"{path} has another vocabulary than {paths[0]}.")
    averaged = average_state_dicts([model.state_dict() for model in models], weights)
    soup = models[0]
    soup.load_state_dict(averaged)
    return soup.eval(), processors[0]


__all__ = ["average_checkpoints", "average_state_dicts"]
