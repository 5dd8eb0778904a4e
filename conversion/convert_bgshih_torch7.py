# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Converts bgshih/crnn's Torch7 model (`crnn_demo_model.t7`, or a `snapshot_*.t7` of your own training with
model/crnn_demo/config.lua) to a complete hf_crnn checkpoint.

UNVERIFIED. No original .t7 file and no Torch7 runtime were available when this converter was written, so it has
never been run on the published model nor compared with Torch7's outputs. The mapping below follows the published
Lua source (model/crnn_demo/config.lua, src/LstmLayer.lua, src/BiRnnJoin.lua, src/utilities.lua) and the parameter
order meijieru/crnn.pytorch's tool/convert_t7.py relied on when it produced crnn.pth from this very model. It is
tested only against a PyTorch transcription of that Lua code, through a synthetic .t7 file. Check a converted model
with `--test_image demo.png --expected_text available` (bgshih/crnn's data/demo.png) before trusting it; the
meijieru/crnn.pytorch converter, whose crnn.pth is this model already converted, is the checked route.

What the file holds. bgshih/crnn saves `modelState(model)`: the Lua table `{parameters = model:parameters(),
bnVars = {running_mean, running_var of each batch norm}}`, read here with the `torchfile` package
(`pip install torchfile`; it parses the Torch7 serialisation format and runs no code). The tensors are positional;
conversion/key_mapping.py's `BGSHIH_PARAMETER_SLOTS` and `BGSHIH_BATCH_NORM_SLOTS` name each position.

Layers. The network is the one meijieru/crnn.pytorch ported (hf_crnn's default `CRNNConfig()`): seven cudnn
convolutions (weights (out, in, kH, kW), as in PyTorch), `nn.SpatialBatchNormalization` after the 3rd, 5th and 7th
(eps 1e-5), `cudnn.SpatialMaxPooling(2, 2, 1, 2, 1, 0)` = PyTorch `MaxPool2d((2, 2), (2, 1), (0, 1))`, then two
bidirectional LSTMs, each an `nn.LstmLayer` per direction joined by an `nn.BiRnnJoin`.

LSTM gate layout. bgshih's `nn.LstmLayer` is its own nngraph LSTM (adapted from char-rnn), not a Torch7 library
module: `i2h = Linear(nIn, 4H)`, `h2h = Linear(H, 4H)`, their sum split into four H-row blocks in the order
input gate, forget gate, output gate (all sigmoid), then the cell input (tanh); `c = f * c_prev + i * g`,
`h = o * tanh(c)`, zero initial states, the backward layer running from the last frame to the first. That is
PyTorch's LSTM with its blocks ordered (i, f, g, o): the rows are reordered from (i, f, o, g), each Linear's bias
becomes PyTorch's `bias_ih` / `bias_hh`, and (as PyTorch adds both biases) the result is exact.

BiRnnJoin. `output = fwdProj(h_fwd) + bwdProj(h_bwd)` with two `Linear(H, nOut)`: PyTorch's bidirectional output is
`[h_fwd, h_bwd]`, so the pair becomes one `Linear(2H, nOut)` with the two weights side by side and the biases summed.
The first join is hf_crnn's projection, the second (nClasses + 1 outputs, blank at 0) its classifier; the Torch7
model's final LogSoftMax is left out (hf_crnn returns raw scores; greedy decoding is unchanged).

Batch norm. Besides each running mean, `bnVars` holds `running_var` in the current src/utilities.lua, but
`running_std` in bgshih/crnn's first commit, written for Torch7 nn before its 2016 change, where that buffer is a
running average of 1 / sqrt(var + eps). Which one the published crnn_demo_model.t7 holds is not recorded. The
default, `--batch_norm_statistic running_var`, matches the current code, and meijieru's tool/convert_t7.lua, which
produced crnn.pth, reads `running_var` from the model it loaded; `--batch_norm_statistic running_std` turns the other
kind back into variances (var = running_std^-2 - eps, as nn's own upgrade code does). If the demo image does not
read `available`, try the other one.

Preprocessing. bgshih's loadAndResizeImage: `image.rgb2y` (Y = 0.299 R + 0.587 G + 0.114 B, as PIL's "L"), then
`image.scale(img, 100, 32)` (Torch's bilinear), bytes fed to `(x - 128) / 128`. The image processor reproduces the
normalisation exactly (mean = std = 128/255) and the resize approximately: PIL's BILINEAR filters when downscaling,
Torch's image.scale does not, so inputs differ slightly from the original's.

    python conversion/convert_bgshih_torch7.py --checkpoint crnn_demo_model.t7 --output_dir crnn-bgshih \\
        --test_image demo.png --expected_text available
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python conversion/convert_bgshih_torch7.py`: make `conversion` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from transformers.image_utils import PILImageResampling

from conversion.common import Source, build_argument_parser, run_converter, save_conversion
from conversion.convert_meijieru_crnn import model_from_state_dict
from conversion.key_mapping import BGSHIH_BATCH_NORM_SLOTS, BGSHIH_PARAMETER_SLOTS, CheckpointMismatchError
from hf_crnn import CRNNForTextRecognition

SOURCE = Source(
    name="bgshih/crnn (Torch7)",
    url="https://github.com/bgshih/crnn",
    license="mit",
    license_name="MIT",
    original_file="crnn_demo_model.t7",
    download="linked from the source's README (Dropbox: "
    "https://www.dropbox.com/s/tx6cnzkpg99iryi/crnn_demo_model.t7?dl=0)",
    training_data="The source's model/crnn_demo/config.lua trains on Synth90k (MJSynth) word images, 36 "
    "case-insensitive alphanumeric classes plus the CTC blank.",
    alphabet="0123456789abcdefghijklmnopqrstuvwxyz",
    resample=PILImageResampling.BILINEAR,
    image_mean=128 / 255,
    image_std=128 / 255,
    preprocessing="PIL `convert('{pil_mode}')` (the source's `image.rgb2y` weights), resized to {width} x {height} "
    "with PIL BILINEAR (the source uses Torch's unfiltered bilinear `image.scale`: close, not identical), then "
    "`(x - 128) / 128` on 0-255 values, as the source's model does",
    script="convert_bgshih_torch7.py",
    tag="crnn-torch7",
    notes=(
        (
            "**Unverified conversion.** The Torch7 to PyTorch mapping follows bgshih/crnn's published Lua source and "
            "was never checked against Torch7's own outputs on the original file. meijieru/crnn.pytorch's "
            "`crnn.pth` is the same model converted by its authors and is the checked alternative."
        ),
    ),
)

# Torch7 LstmLayer blocks (input, forget, output, cell) -> PyTorch nn.LSTM blocks (input, forget, cell, output).
TORCH7_TO_PYTORCH_GATES = (0, 1, 3, 2)
# What a snapshot's second batch-norm statistic holds (see the module docstring, "Batch norm").
BATCH_NORM_STATISTICS = ("running_var", "running_std")
TORCH7_BATCH_NORM_EPS = 1e-5  # nn.SpatialBatchNormalization's default; config.lua sets none


def _torch7_positions_by_key() -> dict[str, list[str]]:
    positions: dict[str, list[str]] = {}
    for name, slots in (("parameters", BGSHIH_PARAMETER_SLOTS), ("bnVars", BGSHIH_BATCH_NORM_SLOTS)):
        for index, (slot, key, _) in enumerate(slots, start=1):  # 1-based, as Lua counts
            positions.setdefault(key, []).append(f"{name}[{index}] {slot}")
    return positions


_TORCH7_POSITIONS = _torch7_positions_by_key()


def torch7_key_label(key: str) -> str:
    """Names a meijieru-layout key together with the Torch7 snapshot position(s) it is made from."""
    positions = _TORCH7_POSITIONS.get(key)
    return f"{key!r} (Torch7 {' + '.join(positions)})" if positions else repr(key)


def _lua_array(table) -> list | None:
    """The values of a Lua table keyed 1..n, in order; `None` if it is not such a table."""
    if not isinstance(table, Mapping) or set(table) != set(range(1, len(table) + 1)):
        return None
    return [table[index] for index in range(1, len(table) + 1)]


def read_torch7_snapshot(path: str | os.PathLike) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """
    Reads a bgshih/crnn snapshot `{parameters = {...}, bnVars = {...}}` with `torchfile` (which runs no code).

    Returns:
        `(parameters, bn_vars)`: two lists of float32 tensors in the file's order.

    Raises:
        ValueError: if torchfile is not installed, the file is missing or not a Torch7 file, or it does not hold
            such a table.
    """
    try:
        import torchfile
    except ImportError as error:
        raise ValueError("Reading Torch7 .t7 files needs the torchfile package: pip install torchfile") from error
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Checkpoint file not found: {path}")
    try:
        # Without the list heuristic: with NumPy 2, torchfile 0.1.0's conversion of array-holding tables to lists
        # compares each array with the table and fails. Tables come back as dicts keyed 1..n instead.
        snapshot = torchfile.load(path, use_list_heuristic=False)
    except (torchfile.T7ReaderException, struct.error, ValueError, EOFError, OSError, TypeError) as error:
        raise ValueError(f"Cannot read {path} as a Torch7 file: {error}") from error

    def field(name: str):
        if isinstance(snapshot, Mapping):
            for key in (name, name.encode()):
                if key in snapshot:
                    return _lua_array(snapshot[key])
        return None

    parameters, bn_vars = field("parameters"), field("bnVars")
    if parameters is None or bn_vars is None:
        raise ValueError(
            f"{path} is not a bgshih/crnn snapshot: expected the table {{parameters = ..., bnVars = ...}} that "
            "src/utilities.lua's modelState() saves (crnn_demo_model.t7, snapshot_*.t7)."
        )

    def as_tensors(values: list, name: str) -> list[torch.Tensor]:
        tensors = []
        for position, value in enumerate(values, start=1):
            if not isinstance(value, np.ndarray):
                kind = type(value).__name__
                raise ValueError(f"{path}: {name}[{position}] holds a {kind}, not a tensor.")  # noqa: TRY004
            tensors.append(torch.from_numpy(np.array(value, dtype=np.float32)))  # copies the strided view
        return tensors

    return as_tensors(parameters, "parameters"), as_tensors(bn_vars, "bnVars")


def _reorder_gates(tensor: torch.Tensor, slot: str) -> torch.Tensor:
    if tensor.dim() == 0 or tensor.shape[0] % 4:
        raise CheckpointMismatchError(
            f"Torch7 {slot} has shape {tuple(tensor.shape)}: an LstmLayer Linear needs 4 * nHidden rows."
        )
    blocks = tensor.chunk(4, dim=0)
    return torch.cat([blocks[index] for index in TORCH7_TO_PYTORCH_GATES], dim=0)


def _merge_join(key: str, halves: Mapping[str, tuple[str, torch.Tensor]]) -> torch.Tensor:
    (forward_slot, forward), (backward_slot, backward) = halves["join_forward"], halves["join_backward"]
    if forward.shape != backward.shape:
        raise CheckpointMismatchError(
            f"Torch7 {forward_slot} {tuple(forward.shape)} and {backward_slot} {tuple(backward.shape)} must have "
            "the same shape: a BiRnnJoin joins two Linear(nHidden, nOut)."
        )
    if key.endswith(".weight"):
        return torch.cat([forward, backward], dim=1)  # one Linear over PyTorch's [h_forward, h_backward]
    return forward + backward


def _variance(tensor: torch.Tensor, slot: str, batch_norm_statistic: str) -> torch.Tensor:
    if batch_norm_statistic == "running_var":
        return tensor
    if not bool((tensor > 0).all()):
        raise CheckpointMismatchError(
            f"Torch7 {slot} holds values <= 0, so it is not a running_std (1 / sqrt(var + eps)): try "
            "--batch_norm_statistic running_var."
        )
    return tensor.pow(-2) - TORCH7_BATCH_NORM_EPS  # what Torch7 nn's BatchNormalization:read() does on upgrade


def meijieru_state_dict_from_snapshot(
    parameters: Sequence[torch.Tensor], bn_vars: Sequence[torch.Tensor], batch_norm_statistic: str = "running_var"
) -> dict[str, torch.Tensor]:
    """
    Turns the positional Torch7 tensors into a state dict of meijieru/crnn.pytorch's `CRNN` (the PyTorch port of the
    same network): names from `BGSHIH_*_SLOTS`, LSTM gate blocks reordered, BiRnnJoin pairs merged, batch-norm
    `running_std`s (with `batch_norm_statistic="running_std"`) turned into variances.

    Raises:
        CheckpointMismatchError: if the lists do not have one tensor per slot, or a tensor cannot be transformed.
    """
    if batch_norm_statistic not in BATCH_NORM_STATISTICS:
        raise ValueError(f"batch_norm_statistic must be one of {BATCH_NORM_STATISTICS}, got {batch_norm_statistic!r}.")
    for values, slots, name in (
        (parameters, BGSHIH_PARAMETER_SLOTS, "parameters"),
        (bn_vars, BGSHIH_BATCH_NORM_SLOTS, "bnVars"),
    ):
        if len(values) != len(slots):
            raise CheckpointMismatchError(
                f"This checkpoint does not fit the {SOURCE.name} layout: its {name} list has {len(values)} tensors, "
                f"the crnn_demo network has {len(slots)} (two convolution/batch-norm stacks and two BiLSTMs)."
            )
    state_dict: dict[str, torch.Tensor] = {}
    join_halves: dict[str, dict[str, tuple[str, torch.Tensor]]] = {}
    slots = BGSHIH_PARAMETER_SLOTS + BGSHIH_BATCH_NORM_SLOTS
    for (slot, key, transform), tensor in zip(slots, [*parameters, *bn_vars]):
        if transform is None:
            state_dict[key] = tensor
        elif transform == "lstm_gates":
            state_dict[key] = _reorder_gates(tensor, slot)
        elif transform == "batch_norm_variance":
            state_dict[key] = _variance(tensor, slot, batch_norm_statistic)
        else:
            join_halves.setdefault(key, {})[transform] = (slot, tensor)
    for key, halves in join_halves.items():
        state_dict[key] = _merge_join(key, halves)
    return state_dict


def model_from_snapshot(
    parameters: Sequence[torch.Tensor], bn_vars: Sequence[torch.Tensor], batch_norm_statistic: str = "running_var"
) -> CRNNForTextRecognition:
    """The hf_crnn model holding a bgshih/crnn snapshot's weights, every tensor's shape checked."""
    state_dict = meijieru_state_dict_from_snapshot(parameters, bn_vars, batch_norm_statistic)
    return model_from_state_dict(state_dict, source_name=SOURCE.name, key_label=torch7_key_label)


def main(argv: Sequence[str] | None = None) -> Path:
    """Runs the conversion; returns the output folder. Raises `ValueError` on a file that does not fit."""
    parser = build_argument_parser(SOURCE, __doc__)
    parser.add_argument(
        "--batch_norm_statistic",
        choices=BATCH_NORM_STATISTICS,
        default="running_var",
        help="What the snapshot's bnVars hold besides the means: running_var (bgshih/crnn's current code) or "
        "running_std, 1 / sqrt(var + eps) (its first release, Torch7 nn before 2016).",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    model = model_from_snapshot(*read_torch7_snapshot(args.checkpoint), args.batch_norm_statistic)
    return save_conversion(SOURCE, args, argv, model)


if __name__ == "__main__":
    run_converter(main)
