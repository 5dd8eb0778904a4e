# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Converts a clovaai/deep-text-recognition-benchmark None-VGG-BiLSTM-CTC checkpoint to a complete hf_crnn checkpoint.

The published `None-VGG-BiLSTM-CTC.pth` (https://github.com/clovaai/deep-text-recognition-benchmark, Apache-2.0) is
model.py's `Model` with `--Transformation None --FeatureExtraction VGG --SequenceModeling BiLSTM --Prediction CTC`,
saved from `nn.DataParallel` (keys start with `module.`). In hf_crnn terms: a VGG stage whose 5th and 6th
convolutions have no bias and are batch-normalised, 2x2 / 2x2 / (2, 1) / (2, 1) max-pools without padding (a
100-pixel-wide image gives 24 frames), average pooling of the remaining height, and two BiLSTM layers that are both
projected back to `hidden_size` before the classifier.

The converter reads the input channels (`--rgb` models have 3), `--output_channel`, `--hidden_size` and the number of
classes from the weights, so checkpoints of your own training with this layout convert too; give `--alphabet` (their
`--character`, e.g. 94 characters for `--sensitive` models), and `--image_height` / `--image_width` if you trained
with other `--imgH` / `--imgW`. Only the `--PAD`-free preprocessing (a plain resize) is reproduced.

Preprocessing as in the source's AlignCollate / ResizeNormalize: grayscale (RGB for `--rgb` models), resize to
100 x 32 with PIL BICUBIC, ToTensor, sub(0.5).div(0.5).

    python conversion/convert_clovaai_benchmark.py --checkpoint None-VGG-BiLSTM-CTC.pth --output_dir crnn-clovaai \\
        [--test_image demo_1.png --expected_text available] [--push_to_hub you/crnn-clovaai]
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python conversion/convert_clovaai_benchmark.py`: make `conversion` importable
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
from conversion.key_mapping import CLOVAAI_MODULE_MAP, required_shape, strip_prefix
from hf_crnn import CRNNConfig, CRNNForTextRecognition

SOURCE = Source(
    name="clovaai/deep-text-recognition-benchmark",
    url="https://github.com/clovaai/deep-text-recognition-benchmark",
    license="apache-2.0",
    license_name="Apache-2.0",
    original_file="None-VGG-BiLSTM-CTC.pth",
    download="in the pretrained-model folder linked from the source's README "
    "(https://drive.google.com/drive/folders/15WPsuPJDCzhp2SvYZLRj8mAlT3zmoAMW)",
    training_data="The source's README trains its CRNN on MJSynth (MJ) and SynthText (ST) "
    "(`--select_data MJ-ST --batch_ratio 0.5-0.5`), case-insensitive: labels are lower-cased and limited to "
    "`0-9a-z`.",
    alphabet="0123456789abcdefghijklmnopqrstuvwxyz",
    resample=PILImageResampling.BICUBIC,
    preprocessing="PIL `convert('{pil_mode}')`, resized to {width} x {height} with PIL BICUBIC, scaled to "
    "[0, 1], then `(x - 0.5) / 0.5`, as in the source's ResizeNormalize",
    script="convert_clovaai_benchmark.py",
    tag="deep-text-recognition-benchmark",
)

# modules/feature_extraction.py VGG_FeatureExtractor: its pools are MaxPool2d(2, 2), MaxPool2d(2, 2) and two
# MaxPool2d((2, 1), (2, 1)), all unpadded; model.py then averages the remaining height (AdaptiveAvgPool2d((None, 1))
# after a permute), which is hf_crnn's height_pooling="avg".
CLOVAAI_ARCHITECTURE = {
    "conv_kernel": [3, 3, 3, 3, 3, 3, 2],
    "conv_padding": [1, 1, 1, 1, 1, 1, 0],
    "conv_bias": [True, True, True, True, False, False, True],
    "conv_batch_norm": [False, False, False, False, True, True, False],
    "pool_kernel": [[2, 2], [2, 2], None, [2, 1], None, [2, 1], None],
    "pool_stride": [[2, 2], [2, 2], None, [2, 1], None, [2, 1], None],
    "pool_padding": [[0, 0], [0, 0], None, [0, 0], None, [0, 0], None],
    "height_pooling": "avg",
    "hidden_act": "relu",
    "num_hidden_layers": 2,
    "project_last_lstm": True,  # both BidirectionalLSTMs end in a Linear; `Prediction` is the classifier
    "blank_token_id": 0,  # the source's '[CTCblank]'
}


def config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], image_height: int = 32, source_name: str = SOURCE.name
) -> CRNNConfig:
    """The hf_crnn config of a None-VGG-BiLSTM-CTC `Model`, its sizes read from the weights."""
    num_channels = required_shape(state_dict, "FeatureExtraction.ConvNet.0.weight", 4, source_name=source_name)[1]
    output_channel = required_shape(state_dict, "FeatureExtraction.ConvNet.18.weight", 4, source_name=source_name)[0]
    hidden_size = required_shape(state_dict, "SequenceModeling.0.rnn.weight_hh_l0", 2, source_name=source_name)[1]
    projection_dim = required_shape(state_dict, "SequenceModeling.0.linear.weight", 2, source_name=source_name)[0]
    num_classes = required_shape(state_dict, "Prediction.weight", 2, source_name=source_name)[0]
    return clovaai_config(num_channels, image_height, output_channel, hidden_size, projection_dim, num_classes)


def clovaai_config(
    num_channels: int, image_height: int, output_channel: int, hidden_size: int, projection_dim: int, num_classes: int
) -> CRNNConfig:
    """The hf_crnn config of clovaai's `Model` (None-VGG-BiLSTM-CTC) with these sizes."""
    return CRNNConfig(
        **CLOVAAI_ARCHITECTURE,
        num_channels=num_channels,
        image_height=image_height,
        # VGG_FeatureExtractor(input_channel, output_channel) uses output_channel / 8, / 4, / 2 and itself.
        conv_dim=[output_channel // 8, output_channel // 4, output_channel // 2, output_channel // 2]
        + [output_channel] * 3,
        hidden_size=hidden_size,
        lstm_projection_dim=projection_dim,
        vocab_size=num_classes,
    )


def model_from_state_dict(state_dict: Mapping[str, torch.Tensor], image_height: int = 32) -> CRNNForTextRecognition:
    """The hf_crnn model holding the weights of a None-VGG-BiLSTM-CTC state dict (every key and shape checked)."""
    state_dict = strip_prefix(state_dict)
    config = config_from_state_dict(state_dict, image_height)
    return build_model(config, state_dict, CLOVAAI_MODULE_MAP, SOURCE.name)


def main(argv: Sequence[str] | None = None) -> Path:
    """Runs the conversion; returns the output folder. Raises `ValueError` on a checkpoint that does not fit."""
    parser = build_argument_parser(SOURCE, __doc__)
    parser.add_argument(
        "--image_height", type=int, default=32, help="Height images are resized to: the source's --imgH (32)."
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    model = model_from_state_dict(load_pytorch_state_dict(args.checkpoint), args.image_height)
    return save_conversion(SOURCE, args, argv, model)


if __name__ == "__main__":
    run_converter(main)
