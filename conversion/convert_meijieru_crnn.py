# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Converts a meijieru/crnn.pytorch checkpoint to a complete hf_crnn checkpoint.

The published `crnn.pth` (https://github.com/meijieru/crnn.pytorch, MIT) is `CRNN(imgH=32, nc=1, nclass=37, nh=256)`
from models/crnn.py, itself converted from bgshih/crnn's Torch7 demo model. Its network is hf_crnn's default
`CRNNConfig()`; the converter reads `nc`, `nh` and `nclass` from the weights, so a state dict of your own training of
the same `CRNN` class converts too (plain, saved from `nn.DataParallel` with a `module.` prefix, or wrapped as
`{"state_dict": ...}` / `{"model": ...}`). Give `--alphabet` the characters it was trained with, in order. The
`leakyRelu=True` variant cannot be told apart from its weights and is not supported (hf_crnn has only ReLU).

Preprocessing as in the source's demo.py: grayscale, resize to 100 x 32 with PIL BILINEAR, ToTensor, sub(0.5).div(0.5).

    python conversion/convert_meijieru_crnn.py --checkpoint crnn.pth --output_dir crnn-meijieru \\
        [--test_image demo.png --expected_text available] [--push_to_hub you/crnn-meijieru]
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python conversion/convert_meijieru_crnn.py`: make `conversion` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from transformers.image_utils import PILImageResampling

from conversion.common import (
    Source,
    build_argument_parser,
    build_model,
    load_pytorch_state_dict,
    run_converter,
    save_conversion,
)
from conversion.key_mapping import MEIJIERU_MODULE_MAP, KeyLabel, required_shape, strip_prefix
from hf_crnn import CRNNConfig, CRNNForTextRecognition

SOURCE = Source(
    name="meijieru/crnn.pytorch",
    url="https://github.com/meijieru/crnn.pytorch",
    license="mit",
    license_name="MIT",
    original_file="crnn.pth",
    download="linked from the source's README (Dropbox: https://www.dropbox.com/s/dboqjk20qjkpta3/crnn.pth?dl=0, "
    "or Baidu Netdisk)",
    training_data="The published crnn.pth is bgshih/crnn's Torch7 demo model converted to PyTorch by the source's "
    "tool/convert_t7.py; bgshih/crnn's demo configuration trains on Synth90k (MJSynth) word images, 36 "
    "case-insensitive alphanumeric classes plus the CTC blank.",
    alphabet="0123456789abcdefghijklmnopqrstuvwxyz",
    resample=PILImageResampling.BILINEAR,
    preprocessing="PIL `convert('{pil_mode}')`, resized to {width} x {height} with PIL BILINEAR, scaled to "
    "[0, 1], then `(x - 0.5) / 0.5`, as in the source's demo.py",
    script="convert_meijieru_crnn.py",
    tag="crnn-pytorch",
)

# models/crnn.py hard-codes everything but the input channels, LSTM units and classes: kernels, padding and channels
# of its 7 convolutions, batch norm after conv2/4/6, and pooling0-3 (2x2, 2x2, then (2, 2) windows with stride (2, 1)
# and one column of padding), so a 32-pixel-high input ends one row high (`height_pooling="none"`).
MEIJIERU_ARCHITECTURE = {
    "image_height": 32,
    "conv_dim": [64, 128, 256, 256, 512, 512, 512],
    "conv_kernel": [3, 3, 3, 3, 3, 3, 2],
    "conv_padding": [1, 1, 1, 1, 1, 1, 0],
    "conv_bias": [True] * 7,
    "conv_batch_norm": [False, False, True, False, True, False, True],
    "pool_kernel": [[2, 2], [2, 2], None, [2, 2], None, [2, 2], None],
    "pool_stride": [[2, 2], [2, 2], None, [2, 1], None, [2, 1], None],
    "pool_padding": [[0, 0], [0, 0], None, [0, 1], None, [0, 1], None],
    "height_pooling": "none",
    "hidden_act": "relu",
    "num_hidden_layers": 2,
    "project_last_lstm": False,  # the second BiLSTM's Linear is the classifier
    "blank_token_id": 0,
}


def config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], source_name: str = SOURCE.name, key_label: KeyLabel = repr
) -> CRNNConfig:
    """The hf_crnn config of a `CRNN(imgH=32, nc, nclass, nh)`, with `nc`, `nh` and `nclass` read from its weights."""

    def shape(key: str, ndim: int) -> tuple[int, ...]:
        return required_shape(state_dict, key, ndim, source_name=source_name, key_label=key_label)

    num_channels = shape("cnn.conv0.weight", 4)[1]
    hidden_size = shape("rnn.0.rnn.weight_hh_l0", 2)[1]
    projection_dim = shape("rnn.0.embedding.weight", 2)[0]
    num_classes = shape("rnn.1.embedding.weight", 2)[0]
    return CRNNConfig(
        **MEIJIERU_ARCHITECTURE,
        num_channels=num_channels,
        hidden_size=hidden_size,
        lstm_projection_dim=projection_dim,
        vocab_size=num_classes,
    )


def model_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], source_name: str = SOURCE.name, key_label: KeyLabel = repr
) -> CRNNForTextRecognition:
    """
    The hf_crnn model holding the weights of a meijieru-layout state dict, every key and shape checked.
    `source_name` and `key_label` let a converter that first builds such a state dict (bgshih's Torch7 model) word
    the errors in its own terms.
    """
    state_dict = strip_prefix(state_dict)
    config = config_from_state_dict(state_dict, source_name, key_label)
    return build_model(config, state_dict, MEIJIERU_MODULE_MAP, source_name, key_label)


def main(argv: Sequence[str] | None = None) -> Path:
    """Runs the conversion; returns the output folder. Raises `ValueError` on a checkpoint that does not fit."""
    parser = build_argument_parser(SOURCE, __doc__)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    model = model_from_state_dict(load_pytorch_state_dict(args.checkpoint))
    return save_conversion(SOURCE, args, argv, model)


if __name__ == "__main__":
    run_converter(main)
