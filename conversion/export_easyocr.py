# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Writes an hf_crnn checkpoint of EasyOCR's recognizer layout back as EasyOCR custom-recognizer files.

The inverse of `convert_easyocr.py`: a checkpoint of the None-VGG-BiLSTM-CTC layout (`english_g2` converted, or
fine-tuned after conversion) becomes the three files EasyOCR 1.7's `Reader(..., recog_network=NAME)` loads for a
user-defined model (`easyocr/easyocr.py` and `recognition.get_recognizer`):

- `NAME.pth`: the state dict in EasyOCR's keys, each behind `module.` (EasyOCR strips the first 7 characters of
  every key on CPU and loads into `nn.DataParallel` on GPU, so the prefix is required), float32, plain tensors
  (readable with `torch.load(weights_only=True)`);
- `NAME.yaml`: `character_list` (class ids 1, 2, ... in order; id 0 is the CTC blank), `network_params`
  (`input_channel`, `output_channel`, `hidden_size`), `imgH` and `lang_list`;
- `NAME.py`: the network module EasyOCR imports (`importlib.import_module(NAME)`), whose `Model(input_channel,
  output_channel, hidden_size, num_class)` builds the layout the weights were saved from (this project's own code).

Copy `NAME.pth` into EasyOCR's model folder (`~/.EasyOCR/model` by default) and `NAME.yaml` / `NAME.py` into its
user-network folder (`~/.EasyOCR/user_network`), then `easyocr.Reader(["en"], recog_network=NAME)`.

    hf-crnn export --format easyocr --model crnn-easyocr-en --output_dir easyocr-export [--name custom_crnn]
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python conversion/export_easyocr.py`: make `conversion` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import yaml

from conversion.common import _probe_image, save_directory_atomically
from conversion.convert_clovaai_benchmark import CLOVAAI_ARCHITECTURE, clovaai_config
from conversion.key_mapping import CLOVAAI_MODULE_MAP, DATA_PARALLEL_PREFIX, export_state_dict
from hf_crnn import CRNNConfig, CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer

SOURCE_NAME = "EasyOCR (clovaai None-VGG-BiLSTM-CTC)"
DEFAULT_NAME = "custom_crnn"
DEFAULT_LANG_LIST = ("en",)
# Logits of the written network and of the hf_crnn model on a probe image must agree this closely.
EXPORT_TOLERANCE = 1e-4
# Config fields that decide the network; the rest (CTC loss options, dropout) do not change inference.
ARCHITECTURE_FIELDS = (
    *CLOVAAI_ARCHITECTURE,
    "conv_dim",
    "lstm_projection_dim",
    "batch_norm_eps",
)

# The network module EasyOCR imports for a custom recognizer. Its module and parameter names are the key layout of
# the exported weights (EasyOCR's generation-2 `Model`, i.e. clovaai's None-VGG-BiLSTM-CTC); the code is ours.
NETWORK_MODULE = '''\
"""
CRNN text recognizer (VGG - 2 x BiLSTM - CTC) for EasyOCR's custom recognizer option, written by hf-crnn's
`hf-crnn export --format easyocr` (Apache-2.0). EasyOCR builds `Model(num_class=..., **network_params)` from the
matching .yaml and loads the .pth weights into it.

Input `(B, input_channel, imgH, W)` in [-1, 1]; output `(B, T, num_class)` raw scores (CTC blank at class 0), with
T = W / 4 - 1 frames.
"""

import torch
from torch import nn


class BidirectionalLSTM(nn.Module):
    """A bidirectional LSTM over frames `(B, T, input_size)` and a Linear from its 2 * hidden_size outputs."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(2 * hidden_size, output_size)

    def forward(self, frames):
        outputs, _ = self.rnn(frames)
        return self.linear(outputs)


class VGGFeatureExtractor(nn.Module):
    """Seven convolutions of output_channel / 8, / 4, / 2, / 2, 1, 1, 1 times output_channel channels."""

    def __init__(self, input_channel, output_channel):
        super().__init__()
        widths = [output_channel // 8, output_channel // 4, output_channel // 2, output_channel]

        def conv(in_channels, out_channels, kernel_size=3, padding=1, bias=True):
            return nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=padding, bias=bias)

        # The Sequential's indices are the weights' key names, so every ReLU and pooling keeps its place.
        self.ConvNet = nn.Sequential(
            conv(input_channel, widths[0]), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            conv(widths[0], widths[1]), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            conv(widths[1], widths[2]), nn.ReLU(inplace=True),
            conv(widths[2], widths[2]), nn.ReLU(inplace=True), nn.MaxPool2d((2, 1), (2, 1)),
            conv(widths[2], widths[3], bias=False), nn.BatchNorm2d(widths[3]), nn.ReLU(inplace=True),
            conv(widths[3], widths[3], bias=False), nn.BatchNorm2d(widths[3]), nn.ReLU(inplace=True),
            nn.MaxPool2d((2, 1), (2, 1)),
            conv(widths[3], widths[3], kernel_size=2, padding=0), nn.ReLU(inplace=True),
        )

    def forward(self, images):
        return self.ConvNet(images)


class Model(nn.Module):
    def __init__(self, input_channel, output_channel, hidden_size, num_class):
        super().__init__()
        self.FeatureExtraction = VGGFeatureExtractor(input_channel, output_channel)
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))  # averages the feature map's remaining rows
        self.SequenceModeling = nn.Sequential(
            BidirectionalLSTM(output_channel, hidden_size, hidden_size),
            BidirectionalLSTM(hidden_size, hidden_size, hidden_size),
        )
        self.Prediction = nn.Linear(hidden_size, num_class)

    def forward(self, input, text=None):
        """`text` is unused: EasyOCR passes it to every recognizer; CTC models ignore it."""
        features = self.FeatureExtraction(input)  # (B, C, H', T)
        frames = self.AdaptiveAvgPool(features.permute(0, 3, 1, 2)).squeeze(3)  # (B, T, C)
        return self.Prediction(self.SequenceModeling(frames).contiguous())
'''


def expected_config(config: CRNNConfig) -> CRNNConfig:
    """The config of EasyOCR's `Model(input_channel, output_channel, hidden_size, num_class)` with `config`'s sizes."""
    # EasyOCR's Model projects both BiLSTMs back to hidden_size.
    return clovaai_config(
        config.num_channels,
        config.image_height,
        config.conv_dim[-1],
        config.hidden_size,
        projection_dim=config.hidden_size,
        num_classes=config.vocab_size,
    )


def check_easyocr_layout(config: CRNNConfig) -> None:
    """
    Raises a `ValueError` naming every config field that keeps `config` from being EasyOCR's recognizer network.
    """
    if len(config.conv_dim) != 7:
        raise ValueError(
            f"This checkpoint is not of EasyOCR's recognizer layout: it has {len(config.conv_dim)} convolutions, "
            "EasyOCR's VGG has 7. Only checkpoints converted with `hf-crnn convert --source easyocr` (or "
            "--source clovaai), or fine-tuned from one, can be exported."
        )
    expected = expected_config(config)
    differences = [
        f"{name}={getattr(config, name)!r} (EasyOCR needs {getattr(expected, name)!r})"
        for name in ARCHITECTURE_FIELDS
        if getattr(config, name) != getattr(expected, name)
    ]
    if config.num_channels != 1:
        # EasyOCR always feeds its recognizer one grayscale channel (recognition.ListDataset / NormalizePAD).
        differences.append(f"num_channels={config.num_channels} (EasyOCR feeds grayscale: 1)")
    if config.conv_dim[-1] % 8:
        differences.append(f"conv_dim[-1]={config.conv_dim[-1]} (EasyOCR's output_channel must divide by 8)")
    if differences:
        raise ValueError(
            "This checkpoint is not of EasyOCR's recognizer layout (clovaai None-VGG-BiLSTM-CTC): "
            + "; ".join(differences)
            + ". Only checkpoints converted with `hf-crnn convert --source easyocr` (or --source clovaai), or "
            "fine-tuned from one, can be exported."
        )


def character_list(tokenizer: CRNNTokenizer, vocab_size: int) -> str:
    """
    The characters of class ids 1 .. vocab_size - 1, as EasyOCR's `character_list` (its CTC blank is id 0).

    Raises:
        ValueError: if the vocabulary does not match the classifier, the blank is not id 0, or a token is not a
            single character (an `<unk>` token has no EasyOCR equivalent).
    """
    id_to_token = {index: token for token, index in tokenizer.get_vocab().items()}
    if sorted(id_to_token) != list(range(vocab_size)):
        raise ValueError(
            f"The tokenizer's {len(id_to_token)} ids do not match the model's {vocab_size} classes (ids 0.."
            f"{vocab_size - 1}): the checkpoint's tokenizer does not belong to its model."
        )
    if tokenizer.blank_token_id != 0:
        raise ValueError(f"EasyOCR's CTC blank is class 0, but this tokenizer's is {tokenizer.blank_token_id}.")
    tokens = [id_to_token[index] for index in range(1, vocab_size)]
    multi = [token for token in tokens if len(token) != 1]
    if multi:
        raise ValueError(
            f"EasyOCR's character_list has one character per class, but this vocabulary holds the token(s) {multi}."
        )
    return "".join(tokens)


def easyocr_yaml(config: CRNNConfig, characters: str, lang_list: Sequence[str]) -> str:
    """The user-network .yaml EasyOCR reads (`yaml.load(..., FullLoader)`) for the exported model."""
    document = {
        "lang_list": list(lang_list),
        "character_list": characters,
        "network_params": {
            "input_channel": config.num_channels,
            "output_channel": config.conv_dim[-1],
            "hidden_size": config.hidden_size,
        },
        "imgH": config.image_height,
    }
    # allow_unicode keeps characters such as the euro sign readable; PyYAML quotes whatever needs it (%, ', ", \).
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=4096)


def load_network_module(path: str | os.PathLike, module_name: str):
    """Imports a written network module from its file, as EasyOCR does from its user-network folder."""
    spec = importlib.util.spec_from_file_location(module_name, os.fspath(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_exported(folder: Path, name: str, model: CRNNForTextRecognition, image_processor: CRNNImageProcessor):
    """
    Builds the written network from the written files, loads the written weights (strict) and compares its logits
    with `model`'s on a probe image; raises `RuntimeError` when they differ by more than `EXPORT_TOLERANCE`.
    """
    with open(folder / f"{name}.yaml", encoding="utf-8") as handle:
        settings = yaml.safe_load(handle)
    network = load_network_module(folder / f"{name}.py", name).Model(
        num_class=len(settings["character_list"]) + 1, **settings["network_params"]
    )
    state_dict = torch.load(folder / f"{name}.pth", map_location="cpu", weights_only=True)
    network.load_state_dict({key[len(DATA_PARALLEL_PREFIX) :]: value for key, value in state_dict.items()})
    network.eval()
    pixel_values = image_processor(images=[_probe_image()], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = model(pixel_values=pixel_values.to(model.dtype)).logits.float()
        actual = network(pixel_values)
    difference = (expected - actual).abs().max().item()
    if expected.shape != actual.shape or not difference <= EXPORT_TOLERANCE:
        raise RuntimeError(
            f"The exported EasyOCR network does not reproduce the model (max logit difference {difference:.3g}, "
            f"shapes {tuple(expected.shape)} and {tuple(actual.shape)}); nothing was written."
        )


def export_easyocr(
    model_name_or_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    name: str = DEFAULT_NAME,
    lang_list: Sequence[str] = DEFAULT_LANG_LIST,
    overwrite: bool = False,
) -> Path:
    """
    Writes `NAME.pth`, `NAME.yaml` and `NAME.py` for EasyOCR into `output_dir` (atomically), after checking that the
    written network reproduces the model's logits.

    Args:
        model_name_or_path: An hf_crnn checkpoint folder (or Hub id) of EasyOCR's recognizer layout.
        output_dir: Folder to write; refused if it is not empty, unless `overwrite`.
        name: The `recog_network` name EasyOCR will know the model by: a Python module name, since EasyOCR imports
            `NAME.py`.
        lang_list: EasyOCR languages the model may be used with (the yaml's `lang_list`).

    Returns:
        The output folder.

    Raises:
        ValueError: for a checkpoint that is not of EasyOCR's layout (naming the fields that differ), a vocabulary
            EasyOCR cannot hold, or a `name` that is not a usable module name.
    """
    if not name.isidentifier() or keyword.iskeyword(name) or name == "easyocr":
        raise ValueError(
            f"--name {name!r} must be a Python module name other than 'easyocr': EasyOCR imports the network as "
            "`import NAME` from its user-network folder."
        )
    if not lang_list:
        raise ValueError("lang_list needs at least one EasyOCR language code (e.g. 'en').")
    model = CRNNForTextRecognition.from_pretrained(model_name_or_path).eval()
    check_easyocr_layout(model.config)
    processor = CRNNProcessor.from_pretrained(model_name_or_path)
    characters = character_list(processor.tokenizer, model.config.vocab_size)
    weights = export_state_dict(
        model.state_dict(), CLOVAAI_MODULE_MAP, source_name=SOURCE_NAME, prefix=DATA_PARALLEL_PREFIX
    )

    def write(folder: Path) -> None:
        torch.save(weights, folder / f"{name}.pth")
        (folder / f"{name}.yaml").write_text(easyocr_yaml(model.config, characters, lang_list), encoding="utf-8")
        (folder / f"{name}.py").write_text(NETWORK_MODULE, encoding="utf-8")
        check_exported(folder, name, model, processor.image_processor)

    return save_directory_atomically(output_dir, write, overwrite)


def main(argv: Sequence[str] | None = None) -> int:
    """`python conversion/export_easyocr.py ARGS` runs `hf-crnn export --format easyocr ARGS`: one argument list,
    the command line's (`--help` shows it)."""
    from hf_crnn.cli import main as cli_main

    return cli_main(["export", "--format", "easyocr", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
