# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Explicit key maps from the published CRNN layouts to hf_crnn, and the one function that applies and checks them.

A key map here is data: it pairs every *module* of a source network that holds parameters with the hf_crnn module
that holds the same tensors. Both sides build those modules from the same `torch.nn` classes (`Conv2d`,
`BatchNorm2d`, `LSTM`, `Linear`), so the parameter names inside a module (`weight`, `bias`, `running_mean`,
`weight_ih_l0_reverse`, ...) are identical and the module map fixes every key. [`rename_state_dict`] then checks the
renamed checkpoint against the complete state dict of the hf_crnn model built for it: every key present, none
extra, every shape equal. It raises a [`CheckpointMismatchError`] (a `ValueError`) naming the first key that does
not fit, so a checkpoint of another layout is refused instead of being loaded half-way.

hf_crnn's keys (docs/API_CONTRACT.md):

    crnn.conv_layers.{i}.conv.{weight,bias}
    crnn.conv_layers.{i}.batch_norm.{weight,bias,running_mean,running_var,num_batches_tracked}
    crnn.lstm_layers.{j}.lstm.{weight_ih_l0,weight_hh_l0,bias_ih_l0,bias_hh_l0}{,_reverse}
    crnn.lstm_layers.{j}.projection.{weight,bias}
    classifier.{weight,bias}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

# nn.DataParallel and DistributedDataParallel save their wrapped module's keys behind this prefix.
DATA_PARALLEL_PREFIX = "module."

# Buffers a checkpoint may lack. `BatchNorm2d.num_batches_tracked` appeared in PyTorch 0.4.1, after crnn.pth was
# published; it only counts training steps (used when `momentum=None`), so the fresh model's zero is the right value.
OPTIONAL_BUFFERS = ("num_batches_tracked",)

# meijieru/crnn.pytorch, models/crnn.py: `CRNN(imgH=32, nc, nclass, nh)`.
#   cnn = Sequential(conv0, relu0, pooling0, conv1, relu1, pooling1, conv2, batchnorm2, relu2, conv3, relu3, pooling2,
#                    conv4, batchnorm4, relu4, conv5, relu5, pooling3, conv6, batchnorm6, relu6)   (modules by name)
#   rnn = Sequential(BidirectionalLSTM(512, nh, nh), BidirectionalLSTM(nh, nh, nclass)),
#         each with `rnn` = LSTM(nIn, nh, bidirectional=True) and `embedding` = Linear(2 * nh, nOut).
MEIJIERU_MODULE_MAP: dict[str, str] = {
    "cnn.conv0": "crnn.conv_layers.0.conv",
    "cnn.conv1": "crnn.conv_layers.1.conv",
    "cnn.conv2": "crnn.conv_layers.2.conv",
    "cnn.batchnorm2": "crnn.conv_layers.2.batch_norm",
    "cnn.conv3": "crnn.conv_layers.3.conv",
    "cnn.conv4": "crnn.conv_layers.4.conv",
    "cnn.batchnorm4": "crnn.conv_layers.4.batch_norm",
    "cnn.conv5": "crnn.conv_layers.5.conv",
    "cnn.conv6": "crnn.conv_layers.6.conv",
    "cnn.batchnorm6": "crnn.conv_layers.6.batch_norm",
    "rnn.0.rnn": "crnn.lstm_layers.0.lstm",
    # The first BiLSTM's output Linear is hf_crnn's projection between the two BiLSTM layers ...
    "rnn.0.embedding": "crnn.lstm_layers.0.projection",
    "rnn.1.rnn": "crnn.lstm_layers.1.lstm",
    # ... and the second one's, which outputs `nclass` scores per frame, is the classifier.
    "rnn.1.embedding": "classifier",
}

# clovaai/deep-text-recognition-benchmark, model.py `Model` as None-VGG-BiLSTM-CTC. `FeatureExtraction.ConvNet` is an
# unnamed Sequential, so its indices count the parameter-free modules too (ReLU, MaxPool2d), noted on each line.
CLOVAAI_MODULE_MAP: dict[str, str] = {
    "FeatureExtraction.ConvNet.0": "crnn.conv_layers.0.conv",  # Conv2d(in, c/8, 3, 1, 1); 1 ReLU; 2 MaxPool 2x2
    "FeatureExtraction.ConvNet.3": "crnn.conv_layers.1.conv",  # Conv2d(c/8, c/4, 3, 1, 1); 4 ReLU; 5 MaxPool 2x2
    "FeatureExtraction.ConvNet.6": "crnn.conv_layers.2.conv",  # Conv2d(c/4, c/2, 3, 1, 1); 7 ReLU
    "FeatureExtraction.ConvNet.8": "crnn.conv_layers.3.conv",  # Conv2d(c/2, c/2, 3, 1, 1); 9 ReLU; 10 MaxPool (2, 1)
    "FeatureExtraction.ConvNet.11": "crnn.conv_layers.4.conv",  # Conv2d(c/2, c, 3, 1, 1, bias=False)
    "FeatureExtraction.ConvNet.12": "crnn.conv_layers.4.batch_norm",  # BatchNorm2d(c); 13 ReLU
    "FeatureExtraction.ConvNet.14": "crnn.conv_layers.5.conv",  # Conv2d(c, c, 3, 1, 1, bias=False)
    "FeatureExtraction.ConvNet.15": "crnn.conv_layers.5.batch_norm",  # BatchNorm2d(c); 16 ReLU; 17 MaxPool (2, 1)
    "FeatureExtraction.ConvNet.18": "crnn.conv_layers.6.conv",  # Conv2d(c, c, 2, 1, 0); 19 ReLU
    # Each BidirectionalLSTM has `rnn` = LSTM(in, hidden, bidirectional=True, batch_first=True) and
    # `linear` = Linear(2 * hidden, hidden): both layers are projected (hf_crnn's project_last_lstm=True).
    "SequenceModeling.0.rnn": "crnn.lstm_layers.0.lstm",
    "SequenceModeling.0.linear": "crnn.lstm_layers.0.projection",
    "SequenceModeling.1.rnn": "crnn.lstm_layers.1.lstm",
    "SequenceModeling.1.linear": "crnn.lstm_layers.1.projection",
    "Prediction": "classifier",  # Linear(hidden, num_class)
}

# bgshih/crnn (Torch7), model/crnn_demo/config.lua. Its snapshots are not keyed: `modelState(model)` saves
# `{parameters = model:parameters(), bnVars = {running_mean, running_var of each SpatialBatchNormalization}}`, two
# lists in module order. Each slot below is (Torch7 position name, the key it becomes in the meijieru layout -- the
# PyTorch port of the same network, whose map above then takes it to hf_crnn --, how the tensor changes):
#   None            the tensor is used as it is;
#   "lstm_gates"    an `nn.LstmLayer` Linear of 4 * nHidden rows in Torch7's gate order, reordered to PyTorch's;
#   "join_forward" / "join_backward"
#                   one of the two Linears of `nn.BiRnnJoin` (output = fwdProj(h_fwd) + bwdProj(h_bwd)); the pair
#                   becomes one Linear over PyTorch's concatenated [h_fwd, h_bwd]: weights side by side, biases summed;
#   "batch_norm_variance"
#                   the second statistic of a batch norm: its running variance, or, in snapshots saved by the first
#                   release of bgshih/crnn (Torch7 nn before its 2016 change), `running_std`, a running average of
#                   1 / sqrt(var + eps) that the converter turns back into a variance when told to.
# Torch7 numbers the convolutions 1-7 (`convRelu(i)`), with batch norm after the 3rd, 5th and 7th. Within each
# `nn.LstmLayer` the nngraph unit lists its input-to-hidden Linear before its hidden-to-hidden one, and `nn.BiRnnJoin`
# its forward Linear before its backward one: the order meijieru/crnn.pytorch's tool/convert_t7.py relied on when
# it produced crnn.pth from this model.
BGSHIH_PARAMETER_SLOTS: tuple[tuple[str, str, str | None], ...] = (
    ("conv1.weight", "cnn.conv0.weight", None),
    ("conv1.bias", "cnn.conv0.bias", None),
    ("conv2.weight", "cnn.conv1.weight", None),
    ("conv2.bias", "cnn.conv1.bias", None),
    ("conv3.weight", "cnn.conv2.weight", None),
    ("conv3.bias", "cnn.conv2.bias", None),
    ("bn3.weight", "cnn.batchnorm2.weight", None),
    ("bn3.bias", "cnn.batchnorm2.bias", None),
    ("conv4.weight", "cnn.conv3.weight", None),
    ("conv4.bias", "cnn.conv3.bias", None),
    ("conv5.weight", "cnn.conv4.weight", None),
    ("conv5.bias", "cnn.conv4.bias", None),
    ("bn5.weight", "cnn.batchnorm4.weight", None),
    ("bn5.bias", "cnn.batchnorm4.bias", None),
    ("conv6.weight", "cnn.conv5.weight", None),
    ("conv6.bias", "cnn.conv5.bias", None),
    ("conv7.weight", "cnn.conv6.weight", None),
    ("conv7.bias", "cnn.conv6.bias", None),
    ("bn7.weight", "cnn.batchnorm6.weight", None),
    ("bn7.bias", "cnn.batchnorm6.bias", None),
    # bidirectionalLSTM(512, 256, 256): forward LstmLayer, backward LstmLayer, BiRnnJoin.
    ("blstm1.forward.i2h.weight", "rnn.0.rnn.weight_ih_l0", "lstm_gates"),
    ("blstm1.forward.i2h.bias", "rnn.0.rnn.bias_ih_l0", "lstm_gates"),
    ("blstm1.forward.h2h.weight", "rnn.0.rnn.weight_hh_l0", "lstm_gates"),
    ("blstm1.forward.h2h.bias", "rnn.0.rnn.bias_hh_l0", "lstm_gates"),
    ("blstm1.backward.i2h.weight", "rnn.0.rnn.weight_ih_l0_reverse", "lstm_gates"),
    ("blstm1.backward.i2h.bias", "rnn.0.rnn.bias_ih_l0_reverse", "lstm_gates"),
    ("blstm1.backward.h2h.weight", "rnn.0.rnn.weight_hh_l0_reverse", "lstm_gates"),
    ("blstm1.backward.h2h.bias", "rnn.0.rnn.bias_hh_l0_reverse", "lstm_gates"),
    ("blstm1.join.forward.weight", "rnn.0.embedding.weight", "join_forward"),
    ("blstm1.join.forward.bias", "rnn.0.embedding.bias", "join_forward"),
    ("blstm1.join.backward.weight", "rnn.0.embedding.weight", "join_backward"),
    ("blstm1.join.backward.bias", "rnn.0.embedding.bias", "join_backward"),
    # bidirectionalLSTM(256, 256, nClasses + 1): the same, its join giving the class scores.
    ("blstm2.forward.i2h.weight", "rnn.1.rnn.weight_ih_l0", "lstm_gates"),
    ("blstm2.forward.i2h.bias", "rnn.1.rnn.bias_ih_l0", "lstm_gates"),
    ("blstm2.forward.h2h.weight", "rnn.1.rnn.weight_hh_l0", "lstm_gates"),
    ("blstm2.forward.h2h.bias", "rnn.1.rnn.bias_hh_l0", "lstm_gates"),
    ("blstm2.backward.i2h.weight", "rnn.1.rnn.weight_ih_l0_reverse", "lstm_gates"),
    ("blstm2.backward.i2h.bias", "rnn.1.rnn.bias_ih_l0_reverse", "lstm_gates"),
    ("blstm2.backward.h2h.weight", "rnn.1.rnn.weight_hh_l0_reverse", "lstm_gates"),
    ("blstm2.backward.h2h.bias", "rnn.1.rnn.bias_hh_l0_reverse", "lstm_gates"),
    ("blstm2.join.forward.weight", "rnn.1.embedding.weight", "join_forward"),
    ("blstm2.join.forward.bias", "rnn.1.embedding.bias", "join_forward"),
    ("blstm2.join.backward.weight", "rnn.1.embedding.weight", "join_backward"),
    ("blstm2.join.backward.bias", "rnn.1.embedding.bias", "join_backward"),
)
BGSHIH_BATCH_NORM_SLOTS: tuple[tuple[str, str, str | None], ...] = (
    ("bn3.running_mean", "cnn.batchnorm2.running_mean", None),
    ("bn3.running_var", "cnn.batchnorm2.running_var", "batch_norm_variance"),
    ("bn5.running_mean", "cnn.batchnorm4.running_mean", None),
    ("bn5.running_var", "cnn.batchnorm4.running_var", "batch_norm_variance"),
    ("bn7.running_mean", "cnn.batchnorm6.running_mean", None),
    ("bn7.running_var", "cnn.batchnorm6.running_var", "batch_norm_variance"),
)


class CheckpointMismatchError(ValueError):
    """A checkpoint's keys or shapes do not fit the layout it is being converted as."""


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = DATA_PARALLEL_PREFIX) -> dict:
    """
    Removes `prefix` from the keys when *every* key carries it (checkpoints saved from `nn.DataParallel`).

    A checkpoint where only some keys carry it is returned unchanged: its odd keys are then reported by
    [`rename_state_dict`] instead of being silently merged.
    """
    if state_dict and all(key.startswith(prefix) for key in state_dict):
        return {key[len(prefix) :]: value for key, value in state_dict.items()}
    return dict(state_dict)


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


# How a source key is written in error messages; a converter whose source has no key names (Torch7) passes its own.
KeyLabel = Callable[[str], str]


def required_shape(
    state_dict: Mapping[str, torch.Tensor],
    key: str,
    ndim: int,
    *,
    source_name: str,
    key_label: KeyLabel = repr,
) -> tuple[int, ...]:
    """
    The shape of `state_dict[key]`, for reading a size the source network was built with (channels, LSTM units,
    classes) before the full check.

    Raises:
        CheckpointMismatchError: if `key` is missing, is not a tensor or does not have `ndim` dimensions.
    """
    value = state_dict.get(key)
    if value is None:
        # Most often a checkpoint of another layout: show what it holds instead.
        found = f" (its first key is {key_label(next(iter(state_dict)))})" if state_dict else " (it is empty)"
        raise CheckpointMismatchError(
            f"This checkpoint does not fit the {source_name} layout: missing key {key_label(key)}{found}."
        )
    if not isinstance(value, torch.Tensor):
        raise CheckpointMismatchError(
            f"This checkpoint does not fit the {source_name} layout: key {key_label(key)} holds a "
            f"{type(value).__name__}, not a tensor."
        )
    if value.dim() != ndim:
        raise CheckpointMismatchError(
            f"This checkpoint does not fit the {source_name} layout: key {key_label(key)} has shape "
            f"{_shape(value)}, expected {ndim} dimensions."
        )
    return _shape(value)


def rename_state_dict(
    source_state_dict: Mapping[str, torch.Tensor],
    module_map: Mapping[str, str],
    target_state_dict: Mapping[str, torch.Tensor],
    *,
    source_name: str,
    optional_buffers: tuple[str, ...] = OPTIONAL_BUFFERS,
    key_label: KeyLabel = repr,
) -> dict[str, torch.Tensor]:
    """
    Renames a source checkpoint's keys with `module_map` and checks the result against `target_state_dict`.

    Args:
        source_state_dict: The source checkpoint's tensors. A `module.` prefix on every key is stripped first.
        module_map: Source module path -> hf_crnn module path (e.g. [`MEIJIERU_MODULE_MAP`]); a key
            `<module>.<parameter>` becomes `<module_map[module]>.<parameter>`.
        target_state_dict: The complete state dict of the hf_crnn model the checkpoint is converted into; it fixes
            the expected keys and shapes, and supplies the values of `optional_buffers` the source lacks.
        source_name: Names the source layout in error messages (e.g. `"meijieru/crnn.pytorch"`).
        optional_buffers: Parameter names (last key component) the source may lack.
        key_label: Writes a source key in error messages (default: quoted as it is).

    Returns:
        `dict[str, torch.Tensor]` with exactly the keys of `target_state_dict`, ready for a strict `load_state_dict`.

    Raises:
        CheckpointMismatchError: naming the first source key that is unexpected or has the wrong shape, else the first
            missing key (by its source name), with both shapes; further problems are counted in the message.
    """
    source_state_dict = strip_prefix(source_state_dict)
    inverse_map = invert_module_map(module_map)

    converted: dict[str, torch.Tensor] = {}
    matched_targets: set[str] = set()  # matched by name, whether or not the shape fits
    problems: list[str] = []
    for key, value in source_state_dict.items():
        if not isinstance(value, torch.Tensor):
            problems.append(f"key {key_label(key)} holds a {type(value).__name__}, not a tensor")
            continue
        module, _, parameter = key.rpartition(".")
        target_module = module_map.get(module)
        target_key = f"{target_module}.{parameter}" if target_module is not None else None
        if target_key is None or target_key not in target_state_dict:
            problems.append(
                f"unexpected key {key_label(key)} (shape {_shape(value)}): the {source_name} network has no such "
                "parameter"
            )
            continue
        matched_targets.add(target_key)
        expected = target_state_dict[target_key]
        if value.shape != expected.shape:
            problems.append(
                f"key {key_label(key)} has shape {_shape(value)} but hf_crnn's {target_key!r} needs {_shape(expected)}"
            )
            continue
        converted[target_key] = value

    for target_key, expected in target_state_dict.items():
        if target_key in matched_targets:
            continue
        if target_key.rpartition(".")[2] in optional_buffers:
            converted[target_key] = expected.clone()
            continue
        module, _, parameter = target_key.rpartition(".")
        source_module = inverse_map.get(module)
        source_key = key_label(f"{source_module}.{parameter}") if source_module is not None else "(none)"
        problems.append(f"missing key {source_key} (hf_crnn's {target_key!r}, shape {_shape(expected)})")

    if problems:
        more = f" ({len(problems) - 1} more problem(s) after this one)" if len(problems) > 1 else ""
        raise CheckpointMismatchError(f"This checkpoint does not fit the {source_name} layout: {problems[0]}{more}.")
    return converted


def invert_module_map(module_map: Mapping[str, str]) -> dict[str, str]:
    """
    hf_crnn module path -> source module path: the inverse of a `*_MODULE_MAP`, for writing checkpoints back in the
    source's layout. The maps are one-to-one by construction; a map that is not is refused.
    """
    inverse = {target: source for source, target in module_map.items()}
    if len(inverse) != len(module_map):
        raise ValueError("The module map is not one-to-one: two source modules map to the same hf_crnn module.")
    return inverse


def export_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    module_map: Mapping[str, str],
    *,
    source_name: str,
    prefix: str = "",
) -> dict[str, torch.Tensor]:
    """
    Renames an hf_crnn state dict to a source's keys: the inverse of [`rename_state_dict`] with the same map.

    Args:
        state_dict: The complete state dict of an hf_crnn model of the source's layout.
        module_map: The source -> hf_crnn map the converter uses (e.g. [`CLOVAAI_MODULE_MAP`]); it is inverted.
        source_name: Names the source layout in error messages.
        prefix: Prepended to every key (`DATA_PARALLEL_PREFIX` for sources that save from `nn.DataParallel`).

    Returns:
        `dict[str, torch.Tensor]` in the model's key order, tensors float32 and contiguous (hf_crnn may keep
        convolution weights channels-last; the source's loaders expect plain tensors).

    Raises:
        CheckpointMismatchError: naming the first hf_crnn key whose module has no place in the source's layout.
    """
    inverse_map = invert_module_map(module_map)
    exported: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        module, _, parameter = key.rpartition(".")
        source_module = inverse_map.get(module)
        if source_module is None:
            raise CheckpointMismatchError(
                f"This model does not fit the {source_name} layout: hf_crnn's {key!r} (shape {_shape(value)}) has no "
                "counterpart in that network."
            )
        if value.is_floating_point():
            value = value.float()
        exported[f"{prefix}{source_module}.{parameter}"] = value.detach().clone(memory_format=torch.contiguous_format)
    return exported


__all__ = [
    "BGSHIH_BATCH_NORM_SLOTS",
    "BGSHIH_PARAMETER_SLOTS",
    "CLOVAAI_MODULE_MAP",
    "DATA_PARALLEL_PREFIX",
    "MEIJIERU_MODULE_MAP",
    "OPTIONAL_BUFFERS",
    "CheckpointMismatchError",
    "KeyLabel",
    "export_state_dict",
    "invert_module_map",
    "rename_state_dict",
    "required_shape",
    "strip_prefix",
]
