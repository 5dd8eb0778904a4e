# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Opt-in CPU fast paths for CRNN inference.

`optimize_for_cpu(model, mode)` returns an inference-only copy of a [`CRNNForTextRecognition`] that reads the same
inputs and returns the same outputs (float32 logits, `frame_lengths`), so it drops into `pipeline(...)`,
`processor.batch_decode` and evaluation code unchanged:

    - `"fp32"`: exact to float rounding (about 1e-7 on the paper's network). Batch norm folded into the
      convolutions, convolution weights (hence activations) in channels-last layout, which oneDNN convolutions and
      max-pooling run faster than NCHW, and padded batches run their BiLSTMs without packed sequences (see
      [`PaddedBidirectionalLSTM`]).
    - `"bf16"`: `"fp32"` with every weight and activation in bfloat16. Logits come back as float32. Only worth it on
      CPUs with native bf16 (AVX512-BF16 or AMX); elsewhere oneDNN emulates it and it is several times *slower*
      than fp32.
    - `"int8"`: `"fp32"` with the convolution stack statically quantized to int8 (per-channel weights, activation
      ranges calibrated on `calibration_data`; each convolution fused with its batch norm and ReLU) and the LSTMs and
      linear layers dynamically quantized to int8. Runs on any x86 CPU through FBGEMM/oneDNN (VNNI when present).

docs/performance.md has the measured speed, memory and accuracy of each mode against a plain `torch.nn` CRNN
(`benchmarks/bench_inference.py`), and of the paths that are not modes: channels-last alone (most of `"fp32"`'s
gain), `torch.compile` (no gain over eager on CPU for this network, after a compile of a minute or more per input
shape), and ONNX Runtime ([`hf_crnn.onnx_export`]).

Shapes: `B` batch, `C` channels, `H` height, `W` width (pixels), `T` frames, `D` features, `V` vocabulary.
"""

import copy
import itertools
import warnings
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .modeling_crnn import CRNNBidirectionalLSTM, CRNNConvLayer, CRNNForTextRecognition, _width_mask

FAST_PATH_MODES = ("fp32", "bf16", "int8")
# CPU features (as `torch.cpu.get_capabilities()` names them) that compute bf16 natively: x86 AVX512-BF16 and AMX,
# ARM's BF16 and SVE-BF16. Without one of them oneDNN emulates bf16, several times slower than fp32.
_NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU computes bf16 natively; `None` when torch cannot tell (no `torch.cpu.get_capabilities`)."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:
        return None
    capabilities = get_capabilities()
    return any(bool(capabilities.get(feature, False)) for feature in _NATIVE_BF16_FEATURES)


def reverse_within_lengths_index(lengths: torch.LongTensor, num_frames: int) -> torch.LongTensor:
    """
    `(B, T)` gather index that reverses the first `lengths[b]` frames of row `b` and leaves its padding in place.

    The permutation is its own inverse: gathering twice with it restores the original order.
    """
    frames = torch.arange(num_frames, device=lengths.device)[None, :]
    lengths = lengths[:, None].to(frames.device)
    return torch.where(frames < lengths, lengths - 1 - frames, frames)


def _gather_frames(features: torch.Tensor, index: torch.LongTensor) -> torch.Tensor:
    """`features[b, index[b, t], :]` for a `(B, T, D)` tensor and a `(B, T)` index."""
    return features.gather(1, index[:, :, None].expand(-1, -1, features.shape[-1]))


class PaddedBidirectionalLSTM(nn.Module):
    """
    Drop-in replacement for [`CRNNBidirectionalLSTM`] that is exact on right-padded batches without packed sequences.

    Packing is what makes padding harmless in the core model, but on CPU a packed LSTM runs about twice as slowly as
    a padded one (oneDNN has no packed kernel) and it does not export to ONNX. The two directions are split instead:
    the forward LSTM reads frames left to right, so the padding after a sequence cannot reach its valid outputs; the
    backward LSTM reads each sequence reversed *within its own length* (padding left at the end), so it too starts at
    the sequence's last valid frame. Valid frames match the packed computation to float rounding, and padding frames
    are zeroed, as `pad_packed_sequence` leaves them.

    Args:
        layer ([`CRNNBidirectionalLSTM`]): The layer whose weights (and projection) to take over.
    """

    def __init__(self, layer: CRNNBidirectionalLSTM):
        super().__init__()
        bidirectional = layer.lstm
        if not bidirectional.bidirectional or bidirectional.num_layers != 1 or not bidirectional.batch_first:
            raise ValueError("Expected a single-layer, batch-first, bidirectional nn.LSTM.")
        self.forward_lstm, self.backward_lstm = (
            nn.LSTM(bidirectional.input_size, bidirectional.hidden_size, batch_first=True, bias=bidirectional.bias)
            for _ in range(2)
        )
        with torch.no_grad():
            for name, _ in self.forward_lstm.named_parameters():
                getattr(self.forward_lstm, name).copy_(getattr(bidirectional, name))
                getattr(self.backward_lstm, name).copy_(getattr(bidirectional, f"{name}_reverse"))
        self.projection = layer.projection

    def forward(self, features: torch.Tensor, frame_lengths: torch.LongTensor | None = None) -> torch.Tensor:
        """
        Args:
            features (`torch.Tensor` of shape `(B, T, D_in)`): Frame features, right-padded.
            frame_lengths (`torch.LongTensor` of shape `(B,)`, *optional*): Valid frames per sequence; `None` means
                all `T`.

        Returns:
            `torch.Tensor` of shape `(B, T, D_out)`, zero on padding frames.
        """
        num_frames = features.shape[1]
        forward_output, _ = self.forward_lstm(features)
        if frame_lengths is None:
            # Unpadded: reversing within the lengths is a plain flip, which needs no index tensor.
            backward_output, _ = self.backward_lstm(features.flip(1))
            return self._project(torch.cat([forward_output, backward_output.flip(1)], dim=-1))
        reverse = reverse_within_lengths_index(frame_lengths, num_frames)
        backward_output, _ = self.backward_lstm(_gather_frames(features, reverse))
        output = torch.cat([forward_output, _gather_frames(backward_output, reverse)], dim=-1)
        output = output * _width_mask(frame_lengths.to(output.device), num_frames)[:, :, None].to(output.dtype)
        return self._project(output)

    def _project(self, output: torch.Tensor) -> torch.Tensor:
        if self.projection is not None:
            output = self.projection(output)
        return output


def fold_batch_norm(layer: CRNNConvLayer) -> None:
    """
    Folds a conv layer's (eval-mode) batch norm into its convolution, in place: `bn(conv(x)) == conv'(x)`.

    Saves one pass over the largest activations; the result differs from the unfolded layer by float rounding.
    """
    batch_norm, conv = layer.batch_norm, layer.conv
    if batch_norm is None:
        return
    with torch.no_grad():
        scale = batch_norm.weight / torch.sqrt(batch_norm.running_var + batch_norm.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(batch_norm.running_mean)
        folded_bias = (bias - batch_norm.running_mean) * scale + batch_norm.bias
        conv.weight.mul_(scale[:, None, None, None])
        conv.bias = nn.Parameter(folded_bias)
    layer.batch_norm = None


class QuantizedCRNNConvLayer(CRNNConvLayer):
    """
    A [`CRNNConvLayer`] for eager-mode static int8 quantization: convolution (batch norm folded) and ReLU fused
    into one `ConvReLU2d`, then the max-pool, which runs on quantized tensors as it is.

    Padding columns are zeroed with an in-place `masked_fill_`, which on a quantized tensor writes its zero point
    (the representation of 0.0) and keeps its channels-last layout; as in the float layer, those zeros stand for the
    convolution's zero padding and, activations being >= 0, for the max-pool's -inf padding.

    Args:
        layer ([`CRNNConvLayer`]): The float layer to take over (ReLU activation only).
        quantize_input (`bool`): This is the first layer: quantize its float input.
        dequantize_output (`bool`): This is the last layer: return float features.
    """

    def __init__(self, layer: CRNNConvLayer, quantize_input: bool, dequantize_output: bool):
        # CRNNConvLayer.__init__ builds fresh modules from a config; this layer takes over existing ones instead.
        nn.Module.__init__(self)
        from torch.ao.nn.intrinsic import ConvReLU2d
        from torch.ao.quantization import DeQuantStub, QuantStub

        if not isinstance(layer.activation, nn.ReLU):
            raise ValueError(f"int8 quantization fuses convolutions with ReLU; this model uses {layer.activation}.")
        fold_batch_norm(layer)
        # The quantized conv module that replaces ConvReLU2d on conversion exposes no float geometry, so keep it.
        self._conv_kernel_width = layer.conv.kernel_size[1]
        self._conv_padding_width = layer.conv.padding[1]
        self.conv = ConvReLU2d(layer.conv, nn.ReLU())
        self.batch_norm = None
        self.activation = None
        self.pool = layer.pool
        self.quant = QuantStub() if quantize_input else None
        self.dequant = DeQuantStub() if dequantize_output else None

    def _conv_output_widths(self, widths):
        return widths + 2 * self._conv_padding_width - self._conv_kernel_width + 1

    @staticmethod
    def _zero_padding_columns_(hidden_states: torch.Tensor, widths: torch.LongTensor) -> torch.Tensor:
        padding = ~_width_mask(widths, hidden_states.shape[-1])
        return hidden_states.masked_fill_(padding[:, None, None, :], 0.0)

    def forward(
        self, hidden_states: torch.Tensor, widths: torch.LongTensor | None = None
    ) -> tuple[torch.Tensor, torch.LongTensor | None]:
        """Same contract as [`CRNNConvLayer.forward`]; quantized tensors in between the first and last layer."""
        if self.quant is not None:
            hidden_states = self.quant(hidden_states)
        hidden_states = self.conv(hidden_states)
        if widths is not None:
            widths = self._conv_output_widths(widths)
            hidden_states = self._zero_padding_columns_(hidden_states, widths)
        if self.pool is not None:
            hidden_states = self.pool(hidden_states)
            if widths is not None:
                widths = self._pool_output_widths(widths)
                hidden_states = self._zero_padding_columns_(hidden_states, widths)
        if self.dequant is not None:
            hidden_states = self.dequant(hidden_states)
        return hidden_states, widths


class CPUOptimizedCRNN(CRNNForTextRecognition):
    """
    Inference-only CRNN built by [`optimize_for_cpu`]; see the module docstring for what each mode changes.

    It takes the inputs of [`CRNNForTextRecognition`] (float `pixel_values` of any dtype are cast as needed) and
    returns float32 logits. It cannot be trained or saved (batch norm is folded and int8 weights are packed): save
    the original model instead.

    Attributes:
        fast_path (`str`): The mode it was built with, one of `FAST_PATH_MODES`.
    """

    fast_path: str = "fp32"

    @property
    def device(self) -> torch.device:
        """Where the weights are; the CPU for int8 models, whose packed weights are neither parameters nor buffers."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype inputs are computed in (int8 models take float32 inputs and quantize them internally)."""
        return torch.bfloat16 if self.fast_path == "bf16" else torch.float32

    def forward(self, pixel_values, image_widths=None, labels=None, output_hidden_states=None, return_dict=None, **kwargs):
        """See [`CRNNForTextRecognition.forward`]; `logits` are always float32."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if isinstance(pixel_values, torch.Tensor) and pixel_values.is_floating_point():
            pixel_values = pixel_values.to(self.dtype)
        outputs = super().forward(
            pixel_values,
            image_widths=image_widths,
            labels=labels,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        outputs.logits = outputs.logits.float()
        return outputs if return_dict else outputs.to_tuple()

    def train(self, mode: bool = True):
        """Only `train(False)` (what `eval()` calls) is allowed: folded batch norm and int8 weights cannot learn."""
        if mode:
            raise ValueError(
                f"This CRNN was optimized for CPU inference ({self.fast_path!r}) and cannot be put in training mode; "
                "train the original model and call optimize_for_cpu again afterwards."
            )
        return super().train(False)

    def save_pretrained(self, *args, **kwargs):
        raise RuntimeError(
            f"This CRNN was optimized for CPU inference ({self.fast_path!r}: batch norm folded"
            f"{', int8 weights packed' if self.fast_path == 'int8' else ''}) and cannot be saved as a checkpoint; save "
            "the original model and call optimize_for_cpu after loading it."
        )

    def push_to_hub(self, *args, **kwargs):
        self.save_pretrained()


def _calibration_batches(calibration_data) -> Iterable[tuple[torch.Tensor, torch.LongTensor | None]]:
    if isinstance(calibration_data, (torch.Tensor, Mapping)):
        calibration_data = [calibration_data]
    for batch in calibration_data:
        if isinstance(batch, torch.Tensor):
            yield batch, None
        elif isinstance(batch, Mapping) and "pixel_values" in batch:
            image_widths = batch.get("image_widths")
            image_widths = None if image_widths is None else torch.as_tensor(image_widths)
            yield torch.as_tensor(batch["pixel_values"]), image_widths
        else:
            raise ValueError(
                "`calibration_data` must hold `pixel_values` tensors or mappings with `pixel_values` (and "
                f"`image_widths`), as the processor returns; got {type(batch).__name__}."
            )


def _quantize_int8(model: CPUOptimizedCRNN, calibration_data) -> None:
    """Static int8 conv stack calibrated on `calibration_data`, dynamic int8 LSTMs and linear layers, in place."""
    if calibration_data is None:
        raise ValueError(
            'mode="int8" needs `calibration_data`: a few batches of representative images as the processor returns '
            "them (e.g. [processor(images=words) for words in chunks]), to set the activations' int8 ranges."
        )
    from torch.ao import quantization

    engine = torch.backends.quantized.engine
    conv_layers = model.crnn.conv_layers
    last = len(conv_layers) - 1
    for index, layer in enumerate(conv_layers):
        conv_layers[index] = QuantizedCRNNConvLayer(layer, quantize_input=index == 0, dequantize_output=index == last)
        conv_layers[index].qconfig = quantization.get_default_qconfig(engine)
        quantization.prepare(conv_layers[index], inplace=True)

    num_images = 0
    with torch.inference_mode():
        for pixel_values, image_widths in _calibration_batches(calibration_data):
            model(pixel_values=pixel_values, image_widths=image_widths)
            num_images += pixel_values.shape[0]
    if num_images == 0:
        raise ValueError("`calibration_data` holds no images.")

    for layer in conv_layers:
        quantization.convert(layer, inplace=True)
    quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear}, dtype=torch.qint8, inplace=True)


def optimize_for_cpu(
    model: CRNNForTextRecognition, mode: str = "fp32", *, calibration_data=None
) -> CPUOptimizedCRNN:
    """
    Builds a faster, inference-only copy of a CRNN for CPU; `model` itself is left unchanged.

    Args:
        model ([`CRNNForTextRecognition`]): A float32 model (on the CPU).
        mode (`str`, *optional*, defaults to `"fp32"`): `"fp32"` (exact), `"bf16"` or `"int8"`; see the module
            docstring and docs/performance.md for what each does, its speed and its accuracy.
        calibration_data (*optional*, needed for `"int8"`): Batches of representative images, each a
            `pixel_values` tensor `(B, C, H, W)` or a mapping with `pixel_values` and optionally `image_widths` (what
            the processor returns); a few hundred images of typical widths are enough.

    Returns:
        [`CPUOptimizedCRNN`]: takes and returns what the model does (logits as float32); pass it to `pipeline(...,
        model=optimized, processor=processor)` or call it directly.

    Example:

    ```python
    >>> from hf_crnn.fast_inference import optimize_for_cpu
    >>> fast = optimize_for_cpu(model, "int8", calibration_data=[processor(images=chunk) for chunk in chunks])
    >>> reader = pipeline("text-recognition", model=fast, processor=processor)
    ```
    """
    if mode not in FAST_PATH_MODES:
        raise ValueError(f"`mode` must be one of {FAST_PATH_MODES}, got {mode!r}.")
    if isinstance(model, CPUOptimizedCRNN):
        raise ValueError(f"This model is already optimized ({model.fast_path!r}); pass the original model.")
    if not isinstance(model, CRNNForTextRecognition):
        raise ValueError(f"Expected a CRNNForTextRecognition, got {type(model).__name__}.")
    if model.device.type != "cpu" or model.dtype != torch.float32:
        raise ValueError(
            f"optimize_for_cpu takes a float32 model on the CPU, got {model.dtype} on {model.device}. On a GPU, "
            "use model.to(torch.bfloat16) (or float16) directly."
        )

    # A copy of the config: the optimized model must not share mutable state with the one it was built from.
    optimized = CPUOptimizedCRNN(copy.deepcopy(model.config))
    optimized.load_state_dict(model.state_dict())
    optimized.fast_path = mode
    optimized.eval()
    for index, layer in enumerate(optimized.crnn.lstm_layers):
        optimized.crnn.lstm_layers[index] = PaddedBidirectionalLSTM(layer)
    if mode == "int8":
        with warnings.catch_warnings():
            # torch.ao.quantization's eager API is deprecated in favour of torchao, which this package does not
            # depend on; it still ships, works and is tested with torch 2.13.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\.")
            _quantize_int8(optimized, calibration_data)
    else:
        for layer in optimized.crnn.conv_layers:
            fold_batch_norm(layer)
        # Channels-last weights make oneDNN produce channels-last activations from the first convolution on (a
        # 1-channel input is both layouts), and the (B, C, 1, T) output then transposes to (B, T, C) without a copy.
        optimized.to(memory_format=torch.channels_last)
        if mode == "bf16":
            if cpu_has_native_bf16() is False:
                warnings.warn(
                    'mode="bf16" on a CPU without native bf16 (no AVX512-BF16, AMX or ARM BF16): oneDNN emulates it '
                    'and it runs several times slower than mode="fp32"; see docs/performance.md.',
                    UserWarning,
                    stacklevel=2,
                )
            optimized.to(torch.bfloat16)
    # Inference only: without gradients, a call outside `torch.no_grad()` records no autograd graph either.
    optimized.requires_grad_(False)
    return optimized


__all__ = [
    "FAST_PATH_MODES",
    "CPUOptimizedCRNN",
    "cpu_has_native_bf16",
    "PaddedBidirectionalLSTM",
    "QuantizedCRNNConvLayer",
    "fold_batch_norm",
    "optimize_for_cpu",
    "reverse_within_lengths_index",
]
