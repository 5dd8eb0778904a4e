# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""CRNN model configuration."""

from transformers import PreTrainedConfig

# The paper's network (Shi, Bai & Yao 2015, Table 4) as released in crnn.pytorch: 7 convolutions, batch norm after the
# 3rd, 5th and 7th, two 2x2 poolings, then two poolings that halve the height only (stride (2, 1)) and pad the width by
# one so a 100-pixel-wide image still yields 26 frames.
_PAPER_CONV_DIM = (64, 128, 256, 256, 512, 512, 512)
_PAPER_CONV_KERNEL = (3, 3, 3, 3, 3, 3, 2)
_PAPER_CONV_PADDING = (1, 1, 1, 1, 1, 1, 0)
_PAPER_CONV_BIAS = (True,) * 7
_PAPER_CONV_BATCH_NORM = (False, False, True, False, True, False, True)
_PAPER_POOL_KERNEL = ((2, 2), (2, 2), None, (2, 2), None, (2, 2), None)
_PAPER_POOL_STRIDE = ((2, 2), (2, 2), None, (2, 1), None, (2, 1), None)
_PAPER_POOL_PADDING = ((0, 0), (0, 0), None, (0, 1), None, (0, 1), None)

_CUSTOM_IMAGE_TO_TEXT_PIPELINE = {
    "impl": "pipeline_crnn.CRNNTextRecognitionPipeline",
    "pt": ["AutoModelForTextRecognition"],
    "type": "image",
}


def default_custom_pipelines() -> dict:
    """The `custom_pipelines` entry that routes `pipeline("image-to-text", ...)` to the checkpoint's own pipeline."""
    return {"image-to-text": {**_CUSTOM_IMAGE_TO_TEXT_PIPELINE, "pt": list(_CUSTOM_IMAGE_TO_TEXT_PIPELINE["pt"])}}


_HEIGHT_POOLING = ("none", "avg", "max")
_CTC_REDUCTIONS = ("mean", "sum", "none")
_NON_NEGATIVE_ACTIVATIONS = ("relu", "relu6")


def _as_pair(value):
    if value is None:
        return None
    if isinstance(value, int):
        return [value, value]
    return [int(v) for v in value]


class CRNNConfig(PreTrainedConfig):
    r"""
    Configuration of a CRNN text recognizer ([`CRNNModel`], [`CRNNForTextRecognition`]).

    The defaults reproduce the network of *An End-to-End Trainable Neural Network for Image-based Sequence Recognition
    and Its Application to Scene Text Recognition* (Shi, Bai & Yao, 2015) as released in crnn.pytorch: 32-pixel-high
    grayscale input, 8.33M parameters for 37 classes, 26 frames for a 100-pixel-wide image. Every shape choice is a
    field, so other CRNN variants (clovaai's VGG, small models) load without code changes.

    Convolutional stage: layer `i` is `Conv2d(conv_dim[i-1], conv_dim[i], conv_kernel[i], padding=conv_padding[i],
    bias=conv_bias[i])`, then `BatchNorm2d` if `conv_batch_norm[i]`, then `hidden_act`, then
    `MaxPool2d(pool_kernel[i], pool_stride[i], pool_padding[i])` unless `pool_kernel[i]` is `None`. Pool sizes are
    `[height, width]` pairs (an int means both).

    Args:
        num_channels (`int`, *optional*, defaults to 1):
            Input image channels: 1 (grayscale) or 3 (RGB).
        image_height (`int`, *optional*, defaults to 32):
            Height every image is resized to.
        conv_dim (`list[int]`): Output channels of each convolution.
        conv_kernel (`list[int]`): Square kernel size of each convolution.
        conv_padding (`list[int]`): Zero padding of each convolution (both sides, both axes).
        conv_bias (`list[bool]`): Whether each convolution has a bias.
        conv_batch_norm (`list[bool]`): Whether each convolution is followed by batch normalisation.
        pool_kernel (`list[list[int] | None]`): Max-pool window after each convolution, `None` for no pooling.
        pool_stride (`list[list[int] | None]`): Max-pool stride (defaults to the window).
        pool_padding (`list[list[int] | None]`): Max-pool padding (defaults to 0).
        height_pooling (`str`, *optional*, defaults to `"none"`):
            How the feature map's remaining height becomes one frame column: `"none"` requires the convolutional
            stage to reduce `image_height` to exactly 1 (the paper), `"avg"` or `"max"` pool over it (clovaai uses
            `"avg"`).
        hidden_act (`str`, *optional*, defaults to `"relu"`): Activation after each convolution.
        batch_norm_eps (`float`, *optional*, defaults to 1e-5): Batch-norm epsilon.
        batch_norm_momentum (`float`, *optional*, defaults to 0.1): Batch-norm running-average momentum.
        hidden_size (`int`, *optional*, defaults to 256): LSTM units per direction.
        num_hidden_layers (`int`, *optional*, defaults to 2): Number of bidirectional LSTM layers.
        lstm_projection_dim (`int`, *optional*, defaults to 256):
            Size of the linear projection of the `2 * hidden_size` BiLSTM output between LSTM layers.
        project_last_lstm (`bool`, *optional*, defaults to `False`):
            Whether the last BiLSTM layer is projected as well before the classifier (clovaai) or feeds the
            classifier directly (the paper, whose last projection *is* the classifier).
        vocab_size (`int`, *optional*, defaults to 37): Output classes, CTC blank included.
        blank_token_id (`int`, *optional*, defaults to 0): Id of the CTC blank.
        pad_token_id (`int`, *optional*): Defaults to `blank_token_id`, the tokenizer's pad token, so that Trainer
            finds the model config and the tokenizer in agreement (it warns and rewrites the config otherwise).
        classifier_dropout (`float`, *optional*, defaults to 0.0): Dropout before the classifier.
        ctc_loss_reduction (`str`, *optional*, defaults to `"mean"`):
            Reduction of `torch.nn.functional.ctc_loss`: `"mean"` (per-target-length mean over the batch), `"sum"`
            or `"none"`.
        ctc_zero_infinity (`bool`, *optional*, defaults to `False`):
            Zero infinite losses (impossible alignments). Labels that cannot fit their frames raise an error
            before the loss anyway.

    Example:

    ```python
    >>> from hf_crnn import CRNNConfig, CRNNForTextRecognition

    >>> config = CRNNConfig()  # the paper's network
    >>> model = CRNNForTextRecognition(config)
    >>> model.get_frame_lengths(100)
    26
    ```
    """

    model_type = "crnn"

    num_channels: int = 1
    image_height: int = 32
    conv_dim: list[int] | tuple[int, ...] = _PAPER_CONV_DIM
    conv_kernel: list[int] | tuple[int, ...] = _PAPER_CONV_KERNEL
    conv_padding: list[int] | tuple[int, ...] = _PAPER_CONV_PADDING
    conv_bias: list[bool] | tuple[bool, ...] = _PAPER_CONV_BIAS
    conv_batch_norm: list[bool] | tuple[bool, ...] = _PAPER_CONV_BATCH_NORM
    pool_kernel: list | tuple = _PAPER_POOL_KERNEL
    pool_stride: list | tuple = _PAPER_POOL_STRIDE
    pool_padding: list | tuple = _PAPER_POOL_PADDING
    height_pooling: str = "none"
    hidden_act: str = "relu"
    batch_norm_eps: float = 1e-5
    batch_norm_momentum: float = 0.1
    hidden_size: int = 256
    num_hidden_layers: int = 2
    lstm_projection_dim: int = 256
    project_last_lstm: bool = False
    vocab_size: int = 37
    blank_token_id: int = 0
    classifier_dropout: float | int = 0.0
    ctc_loss_reduction: str = "mean"
    ctc_zero_infinity: bool = False
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        # JSON round trips turn tuples into lists; normalise so a saved and reloaded config compares equal.
        self.conv_dim = [int(v) for v in self.conv_dim]
        self.conv_kernel = [int(v) for v in self.conv_kernel]
        self.conv_padding = [int(v) for v in self.conv_padding]
        self.conv_bias = [bool(v) for v in self.conv_bias]
        self.conv_batch_norm = [bool(v) for v in self.conv_batch_norm]
        self.pool_kernel = [_as_pair(v) for v in self.pool_kernel]
        self.pool_stride = [_as_pair(s) if s is not None else k for s, k in zip(self.pool_stride, self.pool_kernel)]
        self.pool_padding = [
            _as_pair(p) if p is not None else ([0, 0] if k is not None else None)
            for p, k in zip(self.pool_padding, self.pool_kernel)
        ]
        if self.pad_token_id is None:
            self.pad_token_id = self.blank_token_id  # CRNNTokenizer pads with the blank
        super().__post_init__(**kwargs)
        if not getattr(self, "custom_pipelines", None):
            # transformers 5 rewrites "image-to-text" to the chat pipeline unless the config names its own.
            self.custom_pipelines = default_custom_pipelines()
        self._validate_crnn()

    def _validate_crnn(self):
        num_layers = len(self.conv_dim)
        per_layer = {
            "conv_kernel": self.conv_kernel,
            "conv_padding": self.conv_padding,
            "conv_bias": self.conv_bias,
            "conv_batch_norm": self.conv_batch_norm,
            "pool_kernel": self.pool_kernel,
            "pool_stride": self.pool_stride,
            "pool_padding": self.pool_padding,
        }
        for name, values in per_layer.items():
            if len(values) != num_layers:
                raise ValueError(
                    f"`{name}` has {len(values)} entries but `conv_dim` has {num_layers}: every convolution needs one."
                )
        if self.num_channels not in (1, 3):
            raise ValueError(f"`num_channels` must be 1 (grayscale) or 3 (RGB), got {self.num_channels}.")
        if self.height_pooling not in _HEIGHT_POOLING:
            raise ValueError(f"`height_pooling` must be one of {_HEIGHT_POOLING}, got {self.height_pooling!r}.")
        if self.ctc_loss_reduction not in _CTC_REDUCTIONS:
            raise ValueError(
                f"`ctc_loss_reduction` must be one of {_CTC_REDUCTIONS}, got {self.ctc_loss_reduction!r}."
            )
        if not 0 <= self.blank_token_id < self.vocab_size:
            raise ValueError(f"`blank_token_id` ({self.blank_token_id}) must lie in [0, vocab_size={self.vocab_size}).")
        if self.num_hidden_layers < 1 or self.hidden_size < 1:
            raise ValueError("`num_hidden_layers` and `hidden_size` must be positive.")
        if self.hidden_act not in _NON_NEGATIVE_ACTIVATIONS:
            # Padding invariance relies on activations >= 0: masked zeros then act as max-pool padding.
            raise ValueError(f"`hidden_act` must be one of {_NON_NEGATIVE_ACTIVATIONS}, got {self.hidden_act!r}.")
        feature_height = self.feature_height
        if feature_height < 1:
            raise ValueError(
                f"The convolutional stage reduces `image_height={self.image_height}` to {feature_height} rows; "
                "use a taller input or fewer poolings."
            )
        if self.height_pooling == "none" and feature_height != 1:
            raise ValueError(
                f"The convolutional stage reduces `image_height={self.image_height}` to {feature_height} rows, but "
                '`height_pooling="none"` needs exactly 1; set `height_pooling="avg"` or `"max"`.'
            )

    @property
    def feature_height(self) -> int:
        """Rows left after the convolutional stage for an `image_height`-pixel-high input."""
        height = self.image_height
        for kernel, padding, pool_kernel, pool_stride, pool_padding in zip(
            self.conv_kernel, self.conv_padding, self.pool_kernel, self.pool_stride, self.pool_padding
        ):
            height = height + 2 * padding - kernel + 1
            if pool_kernel is not None:
                height = (height + 2 * pool_padding[0] - pool_kernel[0]) // pool_stride[0] + 1
        return height

    @property
    def output_hidden_size(self) -> int:
        """Size of the frame features [`CRNNModel`] returns."""
        return self.lstm_projection_dim if self.project_last_lstm else 2 * self.hidden_size


__all__ = ["CRNNConfig"]
