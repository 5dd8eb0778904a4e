# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""PyTorch CRNN: a VGG-style convolutional stage, a stack of bidirectional LSTMs and a CTC classifier.

Shapes used throughout: `B` batch, `C` channels, `H` height, `W` width (pixels), `T` frames, `V` vocabulary.
"""

import math
import os
import shutil
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_crnn import CRNNConfig, default_custom_pipelines
from .file_utils import MODEL_FILES, check_local_checkpoint, pop_hub_kwargs, staged_directory

# What a saved checkpoint's `auto_map` names, so a process without hf_crnn loads it with trust_remote_code=True.
_AUTO_MAP = {
    "AutoConfig": "configuration_crnn.CRNNConfig",
    "AutoModel": "modeling_crnn.CRNNModel",
    "AutoModelForTextRecognition": "modeling_crnn.CRNNForTextRecognition",
}
# Code a checkpoint ships so that `trust_remote_code=True` loads the model, the processor and the pipeline.
_CHECKPOINT_CODE_FILES = (
    "configuration_crnn.py",
    "modeling_crnn.py",
    "file_utils.py",
    "pipeline_crnn.py",
    "image_processing_crnn.py",
    "tokenization_crnn.py",
    "processing_crnn.py",
    "decoding.py",
    "language_model.py",
)
_INPLACE_ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "relu6": lambda: nn.ReLU6(inplace=True)}


@dataclass
class CRNNModelOutput(ModelOutput):
    """
    Output of [`CRNNModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(B, T, D)`):
            Frame features after the BiLSTM stack, `D = config.output_hidden_size`. Frames at or past
            `frame_lengths` come from padding and carry no meaning.
        frame_lengths (`torch.LongTensor` of shape `(B,)`):
            Number of valid frames of each image, derived from its unpadded width.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The convolutional frame features `(B, T, conv_dim[-1])` followed by the output of each BiLSTM layer.
    """

    last_hidden_state: torch.FloatTensor | None = None
    frame_lengths: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class CRNNTextRecognitionOutput(ModelOutput):
    """
    Output of [`CRNNForTextRecognition`].

    Args:
        loss (`torch.FloatTensor` of shape `()` or `(B,)`, *optional*, returned when `labels` are given):
            CTC loss, computed in float32 whatever the model's dtype, reduced as `config.ctc_loss_reduction` says.
        logits (`torch.FloatTensor` of shape `(B, T, V)`):
            Unnormalised per-frame class scores (no softmax), blank at `config.blank_token_id`.
        frame_lengths (`torch.LongTensor` of shape `(B,)`):
            Number of valid frames of each image; decode only `logits[i, : frame_lengths[i]]`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            See [`CRNNModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    frame_lengths: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


def _width_mask(widths: torch.LongTensor, width: int) -> torch.BoolTensor:
    """`(B, width)` mask that is True on the first `widths[b]` columns of row `b`."""
    return torch.arange(width, device=widths.device)[None, :] < widths[:, None]


def _zero_padding_columns(hidden_states: torch.Tensor, widths: torch.LongTensor) -> torch.Tensor:
    """Zeroes the columns of a `(B, C, H, W)` map at or beyond each image's valid width."""
    mask = _width_mask(widths, hidden_states.shape[-1])
    return hidden_states * mask[:, None, None, :].to(hidden_states.dtype)


class CRNNConvLayer(nn.Module):
    """Convolution -> optional batch norm -> activation -> optional max-pool."""

    def __init__(self, config: CRNNConfig, layer_id: int):
        super().__init__()
        in_channels = config.num_channels if layer_id == 0 else config.conv_dim[layer_id - 1]
        self.conv = nn.Conv2d(
            in_channels,
            config.conv_dim[layer_id],
            kernel_size=config.conv_kernel[layer_id],
            padding=config.conv_padding[layer_id],
            bias=config.conv_bias[layer_id],
        )
        self.batch_norm = (
            nn.BatchNorm2d(
                config.conv_dim[layer_id], eps=config.batch_norm_eps, momentum=config.batch_norm_momentum
            )
            if config.conv_batch_norm[layer_id]
            else None
        )
        # In place: at batch 128 a 32x100 input's first feature map is 100 MB, and a second copy halves throughput.
        self.activation = _INPLACE_ACTIVATIONS[config.hidden_act]()
        pool_kernel = config.pool_kernel[layer_id]
        self.pool = (
            nn.MaxPool2d(pool_kernel, stride=config.pool_stride[layer_id], padding=config.pool_padding[layer_id])
            if pool_kernel is not None
            else None
        )

    def _conv_output_widths(self, widths):
        return widths + 2 * self.conv.padding[1] - self.conv.kernel_size[1] + 1

    def _pool_output_widths(self, widths):
        return (widths + 2 * self.pool.padding[1] - self.pool.kernel_size[1]) // self.pool.stride[1] + 1

    def output_widths(self, widths):
        """Valid output width(s) for valid input width(s) (an int or a LongTensor)."""
        widths = self._conv_output_widths(widths)
        return self._pool_output_widths(widths) if self.pool is not None else widths

    def forward(
        self, hidden_states: torch.Tensor, widths: torch.LongTensor | None = None
    ) -> tuple[torch.Tensor, torch.LongTensor | None]:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(B, C_in, H, W)`): Input map, zero beyond the valid widths.
            widths (`torch.LongTensor` of shape `(B,)`, *optional*):
                Valid input widths. When given, columns past each image's valid width are zeroed after the
                activation and after pooling, so a padded image computes exactly what it computes alone: zeros
                match the convolution's zero padding, and (activations being >= 0) the max-pool's -inf padding.

        Returns:
            `(hidden_states, widths)`: the `(B, C_out, H', W')` map and its valid widths (or `None`).
        """
        hidden_states = self.conv(hidden_states)
        if self.batch_norm is not None:
            hidden_states = self.batch_norm(hidden_states)
        hidden_states = self.activation(hidden_states)
        if widths is None:
            if self.pool is not None:
                hidden_states = self.pool(hidden_states)
            return hidden_states, None

        widths = self._conv_output_widths(widths)
        hidden_states = _zero_padding_columns(hidden_states, widths)
        if self.pool is not None:
            hidden_states = self.pool(hidden_states)
            widths = self._pool_output_widths(widths)
            hidden_states = _zero_padding_columns(hidden_states, widths)
        return hidden_states, widths


class CRNNBidirectionalLSTM(nn.Module):
    """One bidirectional LSTM layer, optionally followed by a linear projection of its `2 * hidden_size` output."""

    def __init__(self, config: CRNNConfig, input_size: int, project: bool):
        super().__init__()
        self.lstm = nn.LSTM(input_size, config.hidden_size, bidirectional=True, batch_first=True)
        self.projection = nn.Linear(2 * config.hidden_size, config.lstm_projection_dim) if project else None

    def forward(self, features: torch.Tensor, frame_lengths: torch.LongTensor | None = None) -> torch.Tensor:
        """
        Args:
            features (`torch.Tensor` of shape `(B, T, D_in)`): Frame features.
            frame_lengths (`torch.LongTensor` of shape `(B,)`, *optional*):
                Valid frames per sequence. When given, the LSTM runs on packed sequences so the backward direction
                starts at each sequence's own last frame, not at the padding.

        Returns:
            `torch.Tensor` of shape `(B, T, D_out)`.
        """
        if frame_lengths is None:
            features, _ = self.lstm(features)
        else:
            total_length = features.shape[1]
            packed = pack_padded_sequence(features, frame_lengths.cpu(), batch_first=True, enforce_sorted=False)
            features, _ = self.lstm(packed)
            features, _ = pad_packed_sequence(features, batch_first=True, total_length=total_length)
        if self.projection is not None:
            features = self.projection(features)
        return features


class CRNNPreTrainedModel(PreTrainedModel):
    config_class = CRNNConfig
    config: CRNNConfig
    base_model_prefix = "crnn"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    # Checkpointing would re-run batch norm in training mode during backward and update its running statistics
    # twice; CRNN activations are small enough that it would not pay off anyway.
    supports_gradient_checkpointing = False
    # The CTC loss is a mean over the batch, not a sum to be divided by `num_items_in_batch`. Saying so stops Trainer
    # from passing that count and from multiplying the loss by the number of DDP processes, which doubled both the
    # reported loss and the gradients under 2 processes.
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.LSTM):
            # PyTorch's own LSTM initialisation, which CRNN implementations have always trained with.
            bound = 1.0 / math.sqrt(module.hidden_size)
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.in_features)
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.uniform_(module.bias, -bound, bound)

    def post_init(self):
        super().post_init()
        self.use_channels_last()

    def use_channels_last(self) -> "CRNNPreTrainedModel":
        """
        Stores the convolution weights channels-last (NHWC), which oneDNN's CPU convolutions and max-pooling run
        1.1-1.4x faster than NCHW on this network (`benchmarks/bench_inference.py`); values are unchanged. New models
        and `from_pretrained` apply it; `model.to(...)` and `load_state_dict` keep it.
        """
        return self.to(memory_format=torch.channels_last)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # A damaged or missing file in a local folder is reported by name (an `OSError`), before transformers
        # fails on it with a traceback (a truncated model.safetensors gives `SafetensorError: incomplete metadata`).
        name_or_path = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        if isinstance(name_or_path, (str, os.PathLike)):
            files = MODEL_FILES if kwargs.get("config") is None else MODEL_FILES[1:]
            check_local_checkpoint(name_or_path, files, subfolder=kwargs.get("subfolder") or "")
        loaded = super().from_pretrained(*args, **kwargs)
        # Loading replaces the parameters with new (NCHW) tensors.
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.use_channels_last()
        return loaded

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        """
        Saves weights (safetensors), config and the code files that make the folder self-contained: `auto_map`
        plus `configuration_crnn.py`, `modeling_crnn.py` and the pipeline module, so `AutoModel*`, and
        `pipeline("image-to-text", trust_remote_code=True)` load it without hf_crnn installed. Files are written to
        a staging folder first and moved into place only when complete.
        """
        hub_kwargs = pop_hub_kwargs(kwargs)
        self.config.auto_map = dict(_AUTO_MAP)
        self.config.custom_pipelines = default_custom_pipelines()
        with staged_directory(save_directory) as staging:
            super().save_pretrained(staging, *args, **kwargs)
            # Copied by name rather than imported: importing the pipeline here would make the modeling code depend
            # on it, and transformers < 5.17 resolves only one level of relative imports in remote code.
            code_directory = os.path.dirname(os.path.abspath(__file__))
            for name in _CHECKPOINT_CODE_FILES:
                if os.path.exists(os.path.join(code_directory, name)):
                    shutil.copy(os.path.join(code_directory, name), os.path.join(staging, name))
        if push_to_hub:
            repo_id = hub_kwargs.pop("repo_id", os.path.basename(os.path.abspath(save_directory)))
            self.push_to_hub(repo_id, **hub_kwargs)

    def get_frame_lengths(self, widths: int | torch.LongTensor) -> int | torch.LongTensor:
        """
        Number of frames the model produces for images of the given pixel width(s).

        Args:
            widths (`int` or `torch.LongTensor` of any shape): Image widths in pixels.

        Returns:
            The same type and shape: frames per width (26 for 100 pixels with the paper's network).
        """
        base_model = getattr(self, self.base_model_prefix, self)
        for layer in base_model.conv_layers:
            widths = layer.output_widths(widths)
        return widths


class CRNNModel(CRNNPreTrainedModel):
    """
    The CRNN without its classifier: image -> convolutional feature columns -> BiLSTM frame features.
    """

    def __init__(self, config: CRNNConfig):
        super().__init__(config)
        self.conv_layers = nn.ModuleList(CRNNConvLayer(config, i) for i in range(len(config.conv_dim)))
        lstm_layers = []
        input_size = config.conv_dim[-1]
        for i in range(config.num_hidden_layers):
            project = i < config.num_hidden_layers - 1 or config.project_last_lstm
            lstm_layers.append(CRNNBidirectionalLSTM(config, input_size, project))
            input_size = config.lstm_projection_dim if project else 2 * config.hidden_size
        self.lstm_layers = nn.ModuleList(lstm_layers)
        self.post_init()

    @property
    def minimum_width(self) -> int:
        """Narrowest input (pixels) for which no convolution or pooling runs out of columns."""
        if not hasattr(self, "_minimum_width"):
            width = 1
            while not self._keeps_columns(width):
                width += 1
            self._minimum_width = width
        return self._minimum_width

    def _keeps_columns(self, width: int) -> bool:
        for layer in self.conv_layers:
            width = layer._conv_output_widths(width)
            if width < 1:
                return False
            if layer.pool is not None:
                width = layer._pool_output_widths(width)
                if width < 1:
                    return False
        return True

    def _check_inputs(self, pixel_values: torch.Tensor, image_widths: torch.LongTensor | None) -> None:
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() != 4:
            shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)
            raise ValueError(f"`pixel_values` must be a 4-D tensor (batch, channels, height, width), got {shape}.")
        if not pixel_values.is_floating_point():
            raise ValueError(
                f"`pixel_values` must be a floating-point tensor (normalised by the image processor), got "
                f"{pixel_values.dtype}."
            )
        _, channels, height, width = pixel_values.shape
        if channels != self.config.num_channels:
            raise ValueError(
                f"The model expects {self.config.num_channels}-channel images but `pixel_values` has {channels}."
            )
        if height != self.config.image_height:
            raise ValueError(
                f"The model expects images {self.config.image_height} pixels high but `pixel_values` is {height} "
                "high; resize with the model's image processor."
            )
        if width < self.minimum_width:
            raise ValueError(
                f"Images {width} pixels wide are too narrow: this model needs at least {self.minimum_width}."
            )
        if image_widths is not None:
            if image_widths.shape != (pixel_values.shape[0],):
                raise ValueError(
                    f"`image_widths` must have shape ({pixel_values.shape[0]},), got {tuple(image_widths.shape)}."
                )
            if image_widths.is_floating_point():
                raise ValueError(f"`image_widths` must hold integers, got {image_widths.dtype}.")
            if bool(((image_widths < self.minimum_width) | (image_widths > width)).any()):
                raise ValueError(
                    f"`image_widths` must lie in [{self.minimum_width}, {width}] (the model's narrowest input, the "
                    f"padded width), got {image_widths.tolist()}."
                )

    def _pool_height(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """
        The last feature map `(B, C, H', W')` pooled over its height (`config.height_pooling`) into frame features
        `(B, T=W', C)`.

        The reduction follows the map's memory layout: a channels-last map (memory order `B, H', W', C`) is reduced
        as a `(B, W', H', C)` view, whose channels stay innermost, 2-4x faster on a CPU than `mean(dim=2)` across its
        strides, with the same values. A map one row high (the paper's network) is only viewed as frames: reducing
        over a single row still costs a pass over the map.
        """
        if hidden_states.shape[2] == 1:
            return hidden_states[:, :, 0].transpose(1, 2)
        reduce = torch.mean if self.config.height_pooling == "avg" else torch.amax
        if hidden_states.is_contiguous(memory_format=torch.channels_last):
            return reduce(hidden_states.permute(0, 3, 2, 1), dim=2)  # (B, W', H', C): C innermost in memory
        return reduce(hidden_states, dim=2).transpose(1, 2)

    def forward(
        self,
        pixel_values: torch.FloatTensor,
        image_widths: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CRNNModelOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, C, H, W)`):
                Images normalised by [`CRNNImageProcessor`], right-padded to a common width.
            image_widths (`torch.LongTensor` of shape `(B,)`, *optional*):
                Unpadded width of each image. Padding then changes nothing: each image's valid frames equal what
                the image gives alone. `None` means every image fills the full width.
            output_hidden_states (`bool`, *optional*): Also return the intermediate frame features.
            return_dict (`bool`, *optional*): Return a [`CRNNModelOutput`] instead of a tuple.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self._check_inputs(pixel_values, image_widths)
        batch_size, _, _, width = pixel_values.shape

        # Masking costs a little, so only padded batches pay for it.
        widths = None
        if image_widths is not None and bool((image_widths < width).any()):
            widths = image_widths.to(pixel_values.device)
            pixel_values = _zero_padding_columns(pixel_values, widths)

        hidden_states = pixel_values
        for layer in self.conv_layers:
            hidden_states, widths = layer(hidden_states, widths)

        features = self._pool_height(hidden_states)

        num_frames = features.shape[1]
        if widths is None:
            frame_lengths = torch.full((batch_size,), num_frames, dtype=torch.long, device=features.device)
        else:
            frame_lengths = widths

        all_hidden_states = (features,) if output_hidden_states else None
        for lstm_layer in self.lstm_layers:
            features = lstm_layer(features, frame_lengths if widths is not None else None)
            if output_hidden_states:
                all_hidden_states += (features,)

        if not return_dict:
            return tuple(v for v in (features, frame_lengths, all_hidden_states) if v is not None)
        return CRNNModelOutput(
            last_hidden_state=features, frame_lengths=frame_lengths, hidden_states=all_hidden_states
        )


def _check_labels(labels: torch.LongTensor, frame_lengths: torch.LongTensor, config: CRNNConfig) -> torch.BoolTensor:
    """Validates CTC labels against the vocabulary and the frames available; returns the `(B, L)` label mask."""
    if labels.dim() != 2 or labels.shape[0] != frame_lengths.shape[0]:
        raise ValueError(
            f"`labels` must have shape (batch={frame_lengths.shape[0]}, max_label_length), got {tuple(labels.shape)}."
        )
    if labels.is_floating_point():
        raise ValueError(f"`labels` must hold integer ids, got {labels.dtype}.")
    labels_mask = labels >= 0
    valid_ids = labels[labels_mask]
    if bool(((valid_ids >= config.vocab_size) | (valid_ids == config.blank_token_id)).any()):
        bad = valid_ids[(valid_ids >= config.vocab_size) | (valid_ids == config.blank_token_id)][0].item()
        raise ValueError(
            f"`labels` holds id {bad}, which is the CTC blank or outside the vocabulary [0, {config.vocab_size}); "
            "pad labels with -100."
        )
    # CTC needs one frame per character plus a blank between repeated characters.
    repeats = ((labels[:, 1:] == labels[:, :-1]) & labels_mask[:, 1:]).sum(-1)
    needed = labels_mask.sum(-1) + repeats
    too_long = needed > frame_lengths.to(needed.device)
    if bool(too_long.any()):
        index = int(too_long.nonzero()[0, 0])
        raise ValueError(
            f"Label {index} needs {int(needed[index])} frames ({int(labels_mask[index].sum())} characters, "
            f"{int(repeats[index])} repeats) but its image gives only {int(frame_lengths[index])}; use a wider "
            "image or a shorter label."
        )
    return labels_mask


def ctc_loss_from_logits(
    logits: torch.Tensor, frame_lengths: torch.LongTensor, labels: torch.LongTensor, config: CRNNConfig
) -> torch.Tensor:
    """
    CTC loss in float32.

    Args:
        logits (`torch.Tensor` of shape `(B, T, V)`): Unnormalised frame scores, any float dtype.
        frame_lengths (`torch.LongTensor` of shape `(B,)`): Valid frames per image.
        labels (`torch.LongTensor` of shape `(B, L)`): Label ids, right-padded with -100 (any negative id).
        config ([`CRNNConfig`]): Supplies the blank id, reduction and `zero_infinity`.
    """
    labels_mask = _check_labels(labels, frame_lengths, config)
    target_lengths = labels_mask.sum(-1)
    flattened_targets = labels.masked_select(labels_mask)
    # (T, B, V) as ctc_loss wants; fp32 log-softmax keeps half-precision training stable.
    log_probs = nn.functional.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)
    with torch.backends.cudnn.flags(enabled=False):
        return nn.functional.ctc_loss(
            log_probs,
            flattened_targets,
            frame_lengths,
            target_lengths,
            blank=config.blank_token_id,
            reduction=config.ctc_loss_reduction,
            zero_infinity=config.ctc_zero_infinity,
        )


class CRNNForTextRecognition(CRNNPreTrainedModel):
    """
    CRNN with its per-frame classifier, trained with CTC: image -> `(B, T, V)` logits.

    Example:

    ```python
    >>> import torch
    >>> from hf_crnn import CRNNConfig, CRNNForTextRecognition

    >>> model = CRNNForTextRecognition(CRNNConfig())
    >>> outputs = model(torch.randn(2, 1, 32, 100), labels=torch.tensor([[5, 6, 7], [8, 9, -100]]))
    >>> outputs.logits.shape, outputs.loss.shape
    (torch.Size([2, 26, 37]), torch.Size([]))
    ```
    """

    def __init__(self, config: CRNNConfig):
        super().__init__(config)
        self.crnn = CRNNModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.output_hidden_size, config.vocab_size)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.FloatTensor,
        image_widths: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CRNNTextRecognitionOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, C, H, W)`): See [`CRNNModel.forward`].
            image_widths (`torch.LongTensor` of shape `(B,)`, *optional*): See [`CRNNModel.forward`].
            labels (`torch.LongTensor` of shape `(B, L)`, *optional*):
                Label ids (no blank), right-padded with -100. A label that needs more frames than its image gives
                (its length plus its repeated neighbours) raises a `ValueError`.
            output_hidden_states (`bool`, *optional*): Also return the intermediate frame features.
            return_dict (`bool`, *optional*): Return a [`CRNNTextRecognitionOutput`] instead of a tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.crnn(
            pixel_values, image_widths=image_widths, output_hidden_states=output_hidden_states, return_dict=True
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))

        loss = None
        if labels is not None:
            loss = ctc_loss_from_logits(logits, outputs.frame_lengths, labels.to(logits.device), self.config)

        if not return_dict:
            output = (logits, outputs.frame_lengths)
            if outputs.hidden_states is not None:
                output += (outputs.hidden_states,)
            return ((loss,) + output) if loss is not None else output
        return CRNNTextRecognitionOutput(
            loss=loss, logits=logits, frame_lengths=outputs.frame_lengths, hidden_states=outputs.hidden_states
        )


__all__ = [
    "CRNNPreTrainedModel",
    "CRNNModel",
    "CRNNForTextRecognition",
    "CRNNModelOutput",
    "CRNNTextRecognitionOutput",
    "ctc_loss_from_logits",
]
