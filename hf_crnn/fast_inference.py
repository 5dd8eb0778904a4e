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
      CPUs with AMX (3.5x fp32 on `crnn-real-en-fast`); with AVX512-BF16 alone it measured slower than fp32
      (oneDNN capped at `AVX512_CORE_BF16` on an AMX machine), and without native bf16 oneDNN emulates it, several
      times *slower* than fp32.
    - `"int8"`: `"fp32"` with the convolution stack statically quantized to int8 (per-channel weights, activation
      ranges calibrated on `calibration_data`; each convolution fused with its batch norm and ReLU) and the LSTMs and
      linear layers dynamically quantized to int8. Runs on any x86 CPU through FBGEMM/oneDNN (VNNI or AMX when
      present: the convolutions take 2.4x as long without AMX, 7x on AVX2 alone).
    - `"int8_bf16"`: `"int8"`'s convolution stack, with the LSTMs and the classifier in bfloat16 instead of dynamic
      int8. On CPUs with AMX the recurrent layers run about twice as fast in bf16 as in dynamic int8, which
      re-quantizes every time step's input; this is then the fastest mode (1.4-1.6x `"int8"` at batch 32 on
      `crnn-real-en-fast`). Elsewhere it is slower than `"int8"`: 1.7x as slow with AVX512-BF16 alone, and several
      times as slow where bf16 is emulated. `"auto"` measures which is faster.
    - `"onnxruntime"`: the graph of [`hf_crnn.onnx_export.export_onnx`] run by onnxruntime's CPU provider, exact to
      float rounding (needs `onnx` and `onnxruntime`; the export takes seconds).
    - `"auto"`: builds the candidates this CPU runs natively (the bf16 modes only with AVX512-BF16/AMX), measures on
      `calibration_data` how often each agrees with the fp32 model (word accuracy too when the batches carry
      `labels`) and how fast it runs, and returns the fastest one within `accuracy_tolerance` points of fp32 word
      accuracy, with an [`AutoOptimizationReport`] of what it measured and why it chose as it did.

docs/performance.md has the measured speed, memory and accuracy of each mode against a plain `torch.nn` CRNN
(`benchmarks/bench_inference.py`), and of the paths that are not modes: channels-last alone (most of `"fp32"`'s
gain), `torch.compile` (no gain over eager on CPU for this network, after a compile of a minute or more per input
shape), and ONNX Runtime ([`hf_crnn.onnx_export`]).

Shapes: `B` batch, `C` channels, `H` height, `W` width (pixels), `T` frames, `D` features, `V` vocabulary.
"""

import copy
import itertools
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from .decoding import ctc_greedy_decode
from .modeling_crnn import (
    CRNNBidirectionalLSTM,
    CRNNConvLayer,
    CRNNForTextRecognition,
    CRNNTextRecognitionOutput,
    _width_mask,
    _zero_padding_columns,
    ctc_loss_from_logits,
)

FAST_PATH_MODES = ("fp32", "bf16", "int8", "int8_bf16", "onnxruntime", "auto")
# The modes that run their recurrent layers in bf16, slow where the CPU emulates it.
BF16_MODES = ("bf16", "int8_bf16")
# The modes whose convolutions are int8, calibrated on `calibration_data`.
INT8_MODES = ("int8", "int8_bf16")
# What `mode="auto"` tries by default, in order of preference (most exact first): a later candidate is chosen over
# an earlier accepted one only when it is at least `AUTO_MIN_GAIN` times as fast, so noise cannot flip near-ties.
# onnxruntime is opt-in (`candidates=`): exporting the paper's network takes ~5 s, more than the rest of "auto".
AUTO_CANDIDATES = ("fp32", "bf16", "int8", "int8_bf16")
_AUTO_PREFERENCE = ("fp32", "onnxruntime", "bf16", "int8", "int8_bf16")
AUTO_MIN_GAIN = 1.1
AUTO_ACCURACY_TOLERANCE = 0.2  # points of word accuracy
AUTO_TIMING_IMAGES = 32
AUTO_TIMING_ROUNDS = 3
# CPU features reported by "auto" (as `torch.cpu.get_capabilities()` names them).
_REPORTED_CPU_FEATURES = ("avx2", "avx512_f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni", "amx_int8")
_INT8_DOT_PRODUCT_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8")
# CPU features (as `torch.cpu.get_capabilities()` names them) that compute bf16 natively: x86 AVX512-BF16 and AMX,
# ARM's BF16 and SVE-BF16. Without one of them oneDNN emulates bf16, several times slower than fp32.
_NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")
# oneDNN runs the convolutions (fp32, bf16 and int8) and the bf16 LSTMs. Its dispatcher can be held below the CPU's own
# instructions by an environment variable (read once, at oneDNN's first use), e.g. to measure on an AMX machine what a
# CPU without AMX or native bf16 would do; `torch.cpu.get_capabilities()` still reports the CPU itself. FBGEMM (the
# dynamic int8 LSTMs) and ONNX Runtime ignore it.
ONEDNN_ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# The x86 caps below AMX, as oneDNN names them (lower case), and the reported features its kernels may still use
# under each. A cap not listed here (AMX levels, "ALL", other architectures) hides none.
_ONEDNN_ISA_FEATURES = {
    "sse41": (),
    "avx": (),
    "avx2": ("avx2",),
    "avx2_vnni": ("avx2", "avx_vnni"),
    "avx2_vnni_2": ("avx2", "avx_vnni"),
    "avx512_core": ("avx2", "avx512_f"),
    "avx512_core_vnni": ("avx2", "avx512_f", "avx512_vnni"),
    "avx512_core_bf16": ("avx2", "avx512_f", "avx512_vnni", "avx512_bf16"),
    "avx512_core_fp16": ("avx2", "avx512_f", "avx512_vnni", "avx512_bf16"),
    "avx10_1_512": ("avx2", "avx512_f", "avx512_vnni", "avx512_bf16"),
}


def onednn_isa_limit() -> str | None:
    """The cap on oneDNN's instructions set in the environment (`ONEDNN_MAX_CPU_ISA`, or its older name
    `DNNL_MAX_CPU_ISA`), as written; `None` when neither is set."""
    for variable in ONEDNN_ISA_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return None


def _onednn_cap_features() -> tuple[str, ...] | None:
    """The reported features oneDNN may still use under the environment's cap; `None` when no cap hides any."""
    limit = onednn_isa_limit()
    return _ONEDNN_ISA_FEATURES.get(limit.lower()) if limit else None


def _usable_by_onednn(feature: str) -> bool:
    """Whether oneDNN may use a CPU feature under the environment's cap (any feature when there is none)."""
    allowed = _onednn_cap_features()
    return allowed is None or feature in allowed


def _bf16_hidden_by_cap() -> bool:
    """Whether the environment's oneDNN cap, rather than the CPU, is what rules out native bf16."""
    allowed = _onednn_cap_features()
    return allowed is not None and not any(feature in allowed for feature in _NATIVE_BF16_FEATURES)


def why_bf16_is_emulated() -> str:
    """Why oneDNN emulates bf16 here, in a few words (for when [`cpu_has_native_bf16`] is `False`)."""
    if _bf16_hidden_by_cap():
        return f"oneDNN capped at {onednn_isa_limit()} by the environment"
    return "no AVX512-BF16, AMX or ARM BF16"


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU computes bf16 natively, as oneDNN may use it (`False` under a `ONEDNN_MAX_CPU_ISA` cap below
    AVX512-BF16); `None` when torch cannot tell (no `torch.cpu.get_capabilities`)."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:
        return None
    capabilities = get_capabilities()
    return any(
        bool(capabilities.get(feature, False)) and _usable_by_onednn(feature) for feature in _NATIVE_BF16_FEATURES
    )


def reverse_within_lengths_index(lengths: torch.LongTensor, num_frames: int) -> torch.LongTensor:
    """
    `(B, T)` gather index that reverses the first `lengths[b]` frames of row `b` and leaves its padding in place.

    The permutation is its own inverse: gathering twice with it restores the original order.
    """
    frames = torch.arange(num_frames, device=lengths.device)[None, :]
    lengths = lengths[:, None].to(frames.device)
    return torch.where(frames < lengths, lengths - 1 - frames, frames)


def _gather_frames(features: torch.Tensor, index: torch.LongTensor) -> torch.Tensor:
    """`features[b, index[b, t], :]` for a `(B, T, D)` tensor and a `(B, T)` index.

    Whole frames are picked from the flattened `(B * T, D)` rows by one `index_select`: 10-20x faster on a CPU than
    `gather` with the index expanded to every feature (which also reads a 64-bit index per value)."""
    batch_size, num_frames, _ = features.shape
    rows = index + torch.arange(batch_size, device=index.device)[:, None] * num_frames
    frames = features.reshape(batch_size * num_frames, -1).index_select(0, rows.reshape(-1))
    return frames.view(batch_size, num_frames, -1)


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

    Padding columns: a convolution or max-pool with `p` columns of width padding reads, for its valid outputs, at
    most `p` columns past the valid width (and a stride only reads less), so only those are zeroed before it, by an
    in-place `index_put_` of one column per image and padding column, which on a quantized tensor writes its zero
    point (the representation of 0.0). As in the float layer, those zeros stand for the convolution's zero padding
    and, activations being >= 0, for the max-pool's -inf padding. Columns further right are left as they are: only
    padding outputs read them. The last layer zeroes every padding column of its (small, float) output, so what
    leaves the convolutions is what the float layers return. Zeroing whole tails with `masked_fill_` cost 8% of the
    int8 forward pass (it is slow on quantized tensors); this costs about a tenth of that.

    Args:
        layer ([`CRNNConvLayer`]): The float layer to take over (ReLU activation only).
        quantize_input (`bool`): This is the first layer: quantize its float input.
        dequantize_output (`bool`): This is the last layer: return float features.
        output_dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): The last layer's float features are
            returned in this dtype (bfloat16 for recurrent layers computed in bf16).
    """

    def __init__(
        self,
        layer: CRNNConvLayer,
        quantize_input: bool,
        dequantize_output: bool,
        output_dtype: torch.dtype = torch.float32,
    ):
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
        self.output_dtype = output_dtype

    def _conv_output_widths(self, widths):
        return widths + 2 * self._conv_padding_width - self._conv_kernel_width + 1

    @staticmethod
    def _zero_past_widths(hidden_states: torch.Tensor, widths: torch.LongTensor, count: int) -> torch.Tensor:
        """
        A quantized map with the `count` columns right after each image's valid width zeroed in place (those inside
        the map). A float map, as during calibration, gets every padding column zeroed instead, so the observers
        see the activations of the float layers: valid columns, and conv outputs over zero padding.
        """
        if not hidden_states.is_quantized:
            return _zero_padding_columns(hidden_states, widths)
        if count > 0:
            columns = widths[:, None] + torch.arange(count, device=widths.device)[None, :]
            rows = torch.arange(widths.shape[0], device=widths.device)[:, None].expand_as(columns)
            inside = columns < hidden_states.shape[-1]
            hidden_states[rows[inside], :, :, columns[inside]] = 0.0
        return hidden_states

    def forward(
        self, hidden_states: torch.Tensor, widths: torch.LongTensor | None = None
    ) -> tuple[torch.Tensor, torch.LongTensor | None]:
        """
        As [`CRNNConvLayer.forward`], except that the input's columns past the valid widths may hold anything (an
        int8 layer leaves them so). Quantized tensors in between the first and last layer; the last returns float
        features, zero past the valid widths.
        """
        if self.quant is not None:
            hidden_states = self.quant(hidden_states)
        if widths is not None:
            hidden_states = self._zero_past_widths(hidden_states, widths, self._conv_padding_width)
        hidden_states = self.conv(hidden_states)
        if widths is not None:
            widths = self._conv_output_widths(widths)
        if self.pool is not None:
            if widths is not None:
                hidden_states = self._zero_past_widths(hidden_states, widths, self.pool.padding[1])
            hidden_states = self.pool(hidden_states)
            if widths is not None:
                widths = self._pool_output_widths(widths)
        if self.dequant is not None:
            hidden_states = self.dequant(hidden_states).to(self.output_dtype)
            if widths is not None:
                hidden_states = _zero_padding_columns(hidden_states, widths)
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
        if self.fast_path in INT8_MODES:  # without searching every module for a tensor, on each call (~0.3 ms)
            return torch.device("cpu")
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
            f"{', int8 weights packed' if self.fast_path in INT8_MODES else ''}) and cannot be saved as a checkpoint; "
            "save the original model and call optimize_for_cpu after loading it."
        )

    def push_to_hub(self, *args, **kwargs):
        self.save_pretrained()


class OnnxRuntimeCRNN(CPUOptimizedCRNN):
    """
    A [`CPUOptimizedCRNN`] whose forward pass runs the model's ONNX graph ([`hf_crnn.onnx_export.export_onnx`]) on
    onnxruntime's CPU provider, built by `optimize_for_cpu(model, "onnxruntime")`. Same inputs and outputs (a loss
    too, given `labels`); no hidden states.
    """

    fast_path: str = "onnxruntime"

    def attach_session(self, model: CRNNForTextRecognition) -> None:
        """Exports `model` to a temporary file, loads it into an onnxruntime session (as many threads as torch)."""
        from .onnx_export import CRNNOnnxRuntimeModel, _require, export_onnx

        onnxruntime = _require("onnxruntime", 'optimize_for_cpu(model, "onnxruntime")')
        with tempfile.TemporaryDirectory(prefix="hf-crnn-onnx-") as folder:
            path = os.path.join(folder, "crnn.onnx")
            export_onnx(model, path, validate=False)  # its agreement is measured by "auto", and tested
            with open(path, "rb") as handle:
                graph = handle.read()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.onnx_model = CRNNOnnxRuntimeModel(session)

    def forward(self, pixel_values, image_widths=None, labels=None, output_hidden_states=None, return_dict=None, **kwargs):
        """See [`CRNNForTextRecognition.forward`]; `output_hidden_states` is not supported."""
        if output_hidden_states:
            raise ValueError('The "onnxruntime" fast path returns no hidden states; use the PyTorch model for them.')
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        onnx_outputs = self.onnx_model(pixel_values.float(), image_widths)
        logits, frame_lengths = onnx_outputs.logits, onnx_outputs.frame_lengths
        # Built with its loss: a ModelOutput field set after construction would be missing from `to_tuple()`.
        loss = None if labels is None else ctc_loss_from_logits(logits, frame_lengths, labels, self.config)
        outputs = CRNNTextRecognitionOutput(loss=loss, logits=logits, frame_lengths=frame_lengths)
        return outputs if return_dict else outputs.to_tuple()


def _calibration_batches(calibration_data) -> Iterable[tuple[torch.Tensor, torch.LongTensor | None]]:
    for pixel_values, image_widths, _ in _labelled_calibration_batches(calibration_data):
        yield pixel_values, image_widths


def _labelled_calibration_batches(calibration_data):
    """`(pixel_values, image_widths or None, labels or None)` per batch of `calibration_data`."""
    if isinstance(calibration_data, (torch.Tensor, Mapping)):
        calibration_data = [calibration_data]
    for batch in calibration_data:
        if isinstance(batch, torch.Tensor):
            yield batch, None, None
        elif isinstance(batch, Mapping) and "pixel_values" in batch:
            image_widths, labels = batch.get("image_widths"), batch.get("labels")
            image_widths = None if image_widths is None else torch.as_tensor(image_widths)
            labels = None if labels is None else torch.as_tensor(labels)
            yield torch.as_tensor(batch["pixel_values"]), image_widths, labels
        else:
            raise ValueError(
                "`calibration_data` must hold `pixel_values` tensors or mappings with `pixel_values` (and "
                f"`image_widths`), as the processor returns; got {type(batch).__name__}."
            )


def _quantize_int8(model: CPUOptimizedCRNN, calibration_data, recurrent_dtype: torch.dtype | None = None) -> None:
    """
    Static int8 conv stack calibrated on `calibration_data`, in place. The LSTMs and linear layers after it are
    dynamically quantized to int8, or, given a `recurrent_dtype`, cast to it (the conv stack then returns it too).
    """
    if calibration_data is None:
        raise ValueError(
            f'mode="{model.fast_path}" needs `calibration_data`: a few batches of representative images as the '
            "processor returns them (e.g. [processor(images=words) for words in chunks]), to set the activations' int8 ranges."
        )
    from torch.ao import quantization

    engine = torch.backends.quantized.engine
    if recurrent_dtype is not None:  # before calibrating: the observed conv stack already returns this dtype
        model.crnn.lstm_layers.to(recurrent_dtype)
        model.classifier.to(recurrent_dtype)
    conv_layers = model.crnn.conv_layers
    last = len(conv_layers) - 1
    for index, layer in enumerate(conv_layers):
        conv_layers[index] = QuantizedCRNNConvLayer(
            layer,
            quantize_input=index == 0,
            dequantize_output=index == last,
            output_dtype=recurrent_dtype or torch.float32,
        )
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
    if recurrent_dtype is None:
        quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear}, dtype=torch.qint8, inplace=True)


def optimize_for_cpu(
    model: CRNNForTextRecognition,
    mode: str = "fp32",
    *,
    calibration_data=None,
    accuracy_tolerance: float = AUTO_ACCURACY_TOLERANCE,
    candidates: Iterable[str] | None = None,
) -> CPUOptimizedCRNN:
    """
    Builds a faster, inference-only copy of a CRNN for CPU; `model` itself is left unchanged.

    Args:
        model ([`CRNNForTextRecognition`]): A float32 model (on the CPU).
        mode (`str`, *optional*, defaults to `"fp32"`): `"fp32"` (exact), `"bf16"`, `"int8"`, `"int8_bf16"`,
            `"onnxruntime"` (exact), or `"auto"`: the fastest of `candidates` within `accuracy_tolerance` of fp32,
            measured on `calibration_data`; see the module docstring and docs/performance.md for what each does, its
            speed and its accuracy.
        calibration_data (*optional*, needed for `"int8"`, `"int8_bf16"` and `"auto"`): Batches of representative
            images, each a `pixel_values` tensor `(B, C, H, W)` or a mapping with `pixel_values` and optionally
            `image_widths` and `labels` (what the processor returns); a few hundred images of typical widths are
            enough. With `labels` in every batch, `"auto"` compares word accuracy; without, it bounds the accuracy
            change by the predictions that change.
        accuracy_tolerance (`float`, *optional*, defaults to 0.2): `"auto"` only: the largest loss of word accuracy
            on `calibration_data`, in points, that a candidate may cost against the fp32 model. Without labels a
            candidate may change at most this share of the predictions (each could be a word lost); 0 accepts only
            candidates that change no prediction.
        candidates (*optional*, defaults to `AUTO_CANDIDATES` = `("fp32", "bf16", "int8", "int8_bf16")`): `"auto"`
            only: the modes to consider; add `"onnxruntime"` to try it as well (its export takes seconds).

    Returns:
        [`CPUOptimizedCRNN`]: takes and returns what the model does (logits as float32); pass it to `pipeline(...,
        model=optimized, processor=processor)` or call it directly. With `"auto"`, its `fast_path` is the mode
        chosen and its `optimization_report` an [`AutoOptimizationReport`] (`print(report.summary())`).

    Example:

    ```python
    >>> from hf_crnn.fast_inference import optimize_for_cpu
    >>> fast = optimize_for_cpu(model, "int8", calibration_data=[processor(images=chunk) for chunk in chunks])
    >>> fast = optimize_for_cpu(model, "auto", calibration_data=[processor(images=c, text=t) for c, t in chunks])
    >>> print(fast.optimization_report.summary())
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
    if mode == "auto":
        return _optimize_auto(model, calibration_data, accuracy_tolerance, candidates)
    return _build(model, mode, calibration_data)


def _build(model: CRNNForTextRecognition, mode: str, calibration_data=None) -> CPUOptimizedCRNN:
    # A copy of the config: the optimized model must not share mutable state with the one it was built from.
    optimized = (OnnxRuntimeCRNN if mode == "onnxruntime" else CPUOptimizedCRNN)(copy.deepcopy(model.config))
    optimized.load_state_dict(model.state_dict())
    optimized.fast_path = mode
    optimized.eval()
    if mode == "onnxruntime":
        optimized.attach_session(model)
        optimized.requires_grad_(False)
        return optimized
    for index, layer in enumerate(optimized.crnn.lstm_layers):
        optimized.crnn.lstm_layers[index] = PaddedBidirectionalLSTM(layer)
    if mode in BF16_MODES and cpu_has_native_bf16() is False:
        slower_than = "fp32" if mode == "bf16" else "int8"
        warnings.warn(
            f'mode="{mode}" on a CPU without native bf16 ({why_bf16_is_emulated()}): oneDNN emulates it and it '
            f'runs several times slower than mode="{slower_than}"; see docs/performance.md.',
            UserWarning,
            stacklevel=3,
        )
    if mode in INT8_MODES:
        with warnings.catch_warnings():
            # torch.ao.quantization's eager API is deprecated in favour of torchao, which this package does not
            # depend on; it still ships, works and is tested with torch 2.13.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\.")
            _quantize_int8(optimized, calibration_data, torch.bfloat16 if mode == "int8_bf16" else None)
    else:
        for layer in optimized.crnn.conv_layers:
            fold_batch_norm(layer)
        # Channels-last weights make oneDNN produce channels-last activations from the first convolution on (a
        # 1-channel input is both layouts), and the (B, C, 1, T) output then transposes to (B, T, C) without a copy.
        optimized.to(memory_format=torch.channels_last)
        if mode == "bf16":
            optimized.to(torch.bfloat16)
    # Inference only: without gradients, a call outside `torch.no_grad()` records no autograd graph either.
    optimized.requires_grad_(False)
    return optimized


# ---- mode="auto" -------------------------------------------------------------------------------------------------


@dataclass
class FastPathCandidate:
    """
    What `optimize_for_cpu(model, "auto")` measured for one mode.

    Attributes:
        mode (`str`): The fast path.
        status (`str`): `"chosen"`, `"accepted"` (within the tolerance, not the fastest), `"rejected"` (changes
            accuracy too much) or `"skipped"` (not built: not native on this CPU, not installed, or failed).
        reason (`str`): Why, in words.
        images_per_second (`float`, *optional*): Median throughput on the timing batches.
        speedup (`float`, *optional*): Against the default (unoptimized) model timed in the same rounds.
        changed (`int`, *optional*): Calibration images whose greedy prediction differs from the fp32 model's.
        word_accuracy (`float`, *optional*): On the calibration images, when they carry labels (0-1).
    """

    mode: str
    status: str
    reason: str
    images_per_second: float | None = None
    speedup: float | None = None
    changed: int | None = None
    word_accuracy: float | None = None


@dataclass
class AutoOptimizationReport:
    """
    What `optimize_for_cpu(model, "auto")` chose and why; attached to the model it returns as
    `optimization_report`.

    Attributes:
        chosen (`str`): The mode of the returned model.
        reason (`str`): Why it was chosen, in words.
        candidates (`list[FastPathCandidate]`): Every mode considered, in order of preference (most exact first).
        cpu (`str`): CPU name. cpu_features (`dict[str, bool]`): the bf16/int8-relevant features torch reports.
        native_bf16 (`bool`, *optional*). threads (`int`): torch threads during the measurement.
        num_images (`int`): Calibration images compared. labelled (`bool`): Whether they carried labels.
        fp32_word_accuracy (`float`, *optional*): The fp32 model's word accuracy on them, when labelled.
        default_images_per_second (`float`): The unoptimized model on the timing batches.
        timing_images (`int`): Images per timing round. accuracy_tolerance (`float`): In points.
        seconds (`float`): How long "auto" took in all.
    """

    chosen: str
    reason: str
    candidates: list[FastPathCandidate]
    cpu: str
    cpu_features: dict[str, bool]
    native_bf16: bool | None
    threads: int
    num_images: int
    labelled: bool
    fp32_word_accuracy: float | None
    default_images_per_second: float
    timing_images: int
    accuracy_tolerance: float
    seconds: float = 0.0
    details: dict = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for people: the choice, the reason, then one line per candidate."""
        features = ", ".join(name for name, present in self.cpu_features.items() if present) or "none reported"
        lines = [
            f'optimize_for_cpu "auto" chose "{self.chosen}": {self.reason}',
            f"CPU: {self.cpu} ({features}); {self.threads} thread(s); measured on {self.num_images} calibration "
            f"image(s){' with labels' if self.labelled else ''}, timed on {self.timing_images}, in "
            f"{self.seconds:.1f} s; default model {self.default_images_per_second:.1f} img/s",
        ]
        for candidate in self.candidates:
            measured = []
            if candidate.images_per_second is not None:
                measured.append(f"{candidate.images_per_second:.1f} img/s ({candidate.speedup:.2f}x)")
            if candidate.changed is not None:
                measured.append(f"{candidate.changed}/{self.num_images} predictions changed")
            if candidate.word_accuracy is not None:
                measured.append(f"word accuracy {100 * candidate.word_accuracy:.2f}%")
            lines.append(
                f"  {candidate.mode}: {candidate.status}"
                + (f" ({', '.join(measured)})" if measured else "")
                + f": {candidate.reason}"
            )
        return "\n".join(lines)


def cpu_features() -> tuple[str, dict[str, bool]]:
    """
    `(CPU name, {feature: present})` for the bf16 and int8 features "auto" looks at (empty when unknown). A feature
    counts as present when the CPU has it and oneDNN may use it: a `ONEDNN_MAX_CPU_ISA` cap clears those above it.
    """
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    capabilities = get_capabilities() if get_capabilities is not None else {}
    name = capabilities.get("cpu_name") or platform.processor() or platform.machine()
    return str(name), {
        feature: bool(capabilities.get(feature, False)) and _usable_by_onednn(feature)
        for feature in _REPORTED_CPU_FEATURES
        if capabilities
    }


def describe_cpu() -> str:
    """
    One line naming the CPU and what decides its fast paths' speed, for benchmark tables: e.g. `"Intel Xeon [Intel(R)
    Xeon(R) ...] (2 CPUs; bf16 native; int8 AMX; flags: avx2 avx512_f ...)"`, with any `ONEDNN_MAX_CPU_ISA` cap.
    """
    name, features = cpu_features()
    model_name = _proc_cpuinfo_model_name()
    native_bf16 = cpu_has_native_bf16()
    limit = onednn_isa_limit()
    bf16 = "unknown" if native_bf16 is None else "native" if native_bf16 else "emulated"
    if native_bf16 is False and not _bf16_hidden_by_cap():  # a cap that is the reason is named at the end
        bf16 += " (no AVX512-BF16/AMX)"
    int8 = (
        "AMX" if features.get("amx_int8")
        else "VNNI" if any(features.get(feature) for feature in _INT8_DOT_PRODUCT_FEATURES)
        else "no VNNI"
    )
    flags = " ".join(feature for feature, present in features.items() if present) or "none reported"
    cap = f"; oneDNN capped at {limit} by the environment" if limit else ""
    return (
        f"{name}{f' [{model_name}]' if model_name and model_name != name else ''} ({os.cpu_count()} CPUs; bf16 "
        f"{bf16}; int8 {int8}; flags: {flags}{cap})"
    )


def _proc_cpuinfo_model_name() -> str | None:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _predictions(model, batches) -> list[tuple[int, ...]]:
    predictions = []
    with torch.inference_mode():
        for pixel_values, image_widths, _ in batches:
            outputs = model(pixel_values=pixel_values, image_widths=image_widths)
            log_probs = outputs.logits.float().log_softmax(-1)
            hypotheses = ctc_greedy_decode(log_probs, outputs.frame_lengths, model.config.blank_token_id)
            predictions += [tuple(hypothesis.ids) for hypothesis in hypotheses]
    return predictions


def _images_per_second(models: dict, batches, rounds: int) -> dict[str, float]:
    """Median images/s of each model over `rounds` interleaved passes over `batches` (rotating order)."""
    names, seconds = list(models), {name: [] for name in models}
    num_images = sum(pixel_values.shape[0] for pixel_values, _, _ in batches)
    with torch.inference_mode():
        for round_index in range(rounds):
            first = round_index % len(names)
            for name in names[first:] + names[:first]:
                start = time.perf_counter()
                for pixel_values, image_widths, _ in batches:
                    models[name](pixel_values=pixel_values, image_widths=image_widths)
                seconds[name].append(time.perf_counter() - start)
    return {name: num_images / statistics.median(values) for name, values in seconds.items()}


def _optimize_auto(model, calibration_data, accuracy_tolerance: float, candidates) -> CPUOptimizedCRNN:
    started = time.perf_counter()
    if calibration_data is None:
        raise ValueError(
            'mode="auto" needs `calibration_data`: batches of representative images as the processor returns them '
            "(with `text=` for labels, e.g. [processor(images=words, text=texts) for ...]); it measures each "
            "candidate's agreement with the fp32 model and its speed on them."
        )
    if not accuracy_tolerance >= 0:
        raise ValueError(f"`accuracy_tolerance` must be >= 0 (points of word accuracy), got {accuracy_tolerance}.")
    candidates = tuple(AUTO_CANDIDATES if candidates is None else candidates)
    unknown = [mode for mode in candidates if mode not in _AUTO_PREFERENCE]
    if unknown or not candidates:
        raise ValueError(f"`candidates` must be modes among {_AUTO_PREFERENCE}, got {candidates!r}.")
    batches = list(_labelled_calibration_batches(calibration_data))
    num_images = sum(pixel_values.shape[0] for pixel_values, _, _ in batches)
    if num_images == 0:
        raise ValueError("`calibration_data` holds no images.")
    labelled = all(labels is not None for _, _, labels in batches)
    int8_calibration = [{"pixel_values": pixel_values, "image_widths": widths} for pixel_values, widths, _ in batches]
    targets = None
    if labelled:
        targets = [tuple(label for label in row if label >= 0) for _, _, labels in batches for row in labels.tolist()]
    timing_batches, timing_images = [], 0
    for batch in batches:  # the first batches, up to AUTO_TIMING_IMAGES images (at least one batch)
        if timing_batches and timing_images + batch[0].shape[0] > AUTO_TIMING_IMAGES:
            break
        timing_batches.append(batch)
        timing_images += batch[0].shape[0]

    cpu, features = cpu_features()
    native_bf16 = cpu_has_native_bf16()
    has_int8_dot_product = any(features.get(name) for name in _INT8_DOT_PRODUCT_FEATURES)
    was_training = model.training
    model.eval()
    try:
        reference = _predictions(model, batches)
        built, results, correct = {}, {}, {}
        for mode in (mode for mode in _AUTO_PREFERENCE if mode in candidates):
            if mode in BF16_MODES and not native_bf16:
                why = f"no native bf16 ({why_bf16_is_emulated()}): oneDNN would emulate it, several times slower"
                if native_bf16 is None:
                    why = "torch cannot tell whether this CPU has native bf16; emulated bf16 is several times slower"
                results[mode] = FastPathCandidate(mode, "skipped", why)
                continue
            try:
                built[mode] = _build(model, mode, calibration_data=int8_calibration if mode in INT8_MODES else None)
            except (ImportError, ValueError, RuntimeError) as error:
                results[mode] = FastPathCandidate(mode, "skipped", f"could not be built: {error}")
                continue
            predictions = _predictions(built[mode], batches)
            changed = sum(a != b for a, b in zip(predictions, reference))
            results[mode] = FastPathCandidate(mode, "accepted", "", changed=changed)
            if labelled:
                correct[mode] = sum(p == t for p, t in zip(predictions, targets))
                results[mode].word_accuracy = correct[mode] / num_images
        reference_correct = sum(p == t for p, t in zip(reference, targets)) if labelled else None
        # Integers on both sides, so a tolerance of 0 means exactly "no word lost" / "no prediction changed".
        for mode, result in results.items():
            if result.status == "skipped":
                continue
            if labelled:
                lost = reference_correct - correct[mode]
                accepted = lost * 100 <= accuracy_tolerance * num_images
                result.reason = (
                    f"word accuracy {-100 * lost / num_images:+.2f} pt against fp32 ({'within' if accepted else 'beyond'}"
                    f" the {accuracy_tolerance:g} pt tolerance)"
                )
            else:
                accepted = result.changed * 100 <= accuracy_tolerance * num_images
                result.reason = (
                    f"{result.changed} of {num_images} predictions differ from fp32, so word accuracy may change by "
                    f"up to {100 * result.changed / num_images:.2f} pt ({'within' if accepted else 'beyond'} the "
                    f"{accuracy_tolerance:g} pt tolerance; pass labelled calibration data to measure it)"
                )
            if mode in INT8_MODES:
                result.reason += f"; VNNI/AMX int8 instructions: {'yes' if has_int8_dot_product else 'no'}"
            if not accepted:
                result.status = "rejected"
                built.pop(mode)
        speeds = _images_per_second({"default": model, **built}, timing_batches, AUTO_TIMING_ROUNDS)
    finally:
        model.train(was_training)

    chosen = None
    for mode, result in results.items():
        if mode not in built:
            continue
        result.images_per_second = round(speeds[mode], 1)
        result.speedup = round(speeds[mode] / speeds["default"], 2)
        if chosen is None or speeds[mode] >= AUTO_MIN_GAIN * speeds[chosen]:
            chosen = mode
    if chosen is None:  # every candidate was skipped or rejected (fp32 itself was not a candidate): build it
        chosen = "fp32"
        built[chosen] = _build(model, chosen)
        reason = "no candidate was accepted; fp32 (exact) is the fallback"
        results.setdefault(chosen, FastPathCandidate(chosen, "accepted", "fallback: exact to float rounding"))
    else:
        faster_than = [m for m in built if m != chosen and results[m].images_per_second is not None]
        reason = f"the fastest accepted candidate ({results[chosen].speedup:.2f}x the default model"
        if faster_than:
            reason += "; " + ", ".join(f"{m} {results[m].speedup:.2f}x" for m in faster_than)
        reason += f"), {results[chosen].reason}"
        slower_preferred = [m for m in built if m != chosen and speeds[m] > speeds[chosen]]
        if slower_preferred:  # only possible through the margin rule
            reason += (
                f"; preferred over the less exact {', '.join(slower_preferred)}, which was less than "
                f"{AUTO_MIN_GAIN:g}x as fast"
            )
    results[chosen].status = "chosen"
    chosen_model = built[chosen]
    chosen_model.optimization_report = AutoOptimizationReport(
        chosen=chosen,
        reason=reason,
        candidates=list(results.values()),
        cpu=cpu,
        cpu_features=features,
        native_bf16=native_bf16,
        threads=torch.get_num_threads(),
        num_images=num_images,
        labelled=labelled,
        fp32_word_accuracy=None if not labelled else reference_correct / num_images,
        default_images_per_second=round(speeds["default"], 1),
        timing_images=timing_images,
        accuracy_tolerance=accuracy_tolerance,
        seconds=time.perf_counter() - started,
        details={"int8_dot_product_instructions": has_int8_dot_product},
    )
    return chosen_model


def calibration_batches_from_images(processor, images, texts=None, batch_size: int = 32) -> list[dict]:
    """
    `calibration_data` for [`optimize_for_cpu`] from images (paths, PIL images, arrays; and their `texts` for
    labels): run through `processor`, sorted by width and cut into batches of `batch_size`, each padded only to its
    widest image, as the pipeline batches them.
    """
    images = list(images)
    if not images:
        raise ValueError("No calibration images.")
    if texts is not None and len(texts) != len(images):
        raise ValueError(f"Got {len(texts)} texts for {len(images)} calibration images.")
    encoded = processor(images=images, text=None if texts is None else list(texts))
    widths = torch.as_tensor(encoded["image_widths"])
    order = torch.argsort(widths, stable=True)
    multiple = processor.image_processor.pad_width_multiple  # each batch is padded as the processor pads one
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        padded_width = min(encoded["pixel_values"].shape[-1], -(-int(widths[rows].max()) // multiple) * multiple)
        batch = {"pixel_values": encoded["pixel_values"][rows, :, :, :padded_width], "image_widths": widths[rows]}
        if texts is not None:
            batch["labels"] = encoded["labels"][rows]
        batches.append(batch)
    return batches


def optimize_for_pipeline(model, processor, mode="auto", calibration_data=None):
    """
    What `pipeline("text-recognition", ..., optimize=mode, calibration_data=...)` runs: `(optimized model, report or
    None)`. `mode=True` means `"auto"`; `calibration_data` may also be a list of images (paths, PIL images, arrays),
    which `processor` turns into batches ([`calibration_batches_from_images`]).
    """
    mode = "auto" if mode is True else mode
    if calibration_data is not None:
        items = calibration_data if isinstance(calibration_data, (list, tuple)) else None
        if items and not isinstance(items[0], (Mapping, torch.Tensor)):
            calibration_data = calibration_batches_from_images(processor, items)
    optimized = optimize_for_cpu(model, mode, calibration_data=calibration_data)
    return optimized, getattr(optimized, "optimization_report", None)


__all__ = [
    "AUTO_CANDIDATES",
    "BF16_MODES",
    "INT8_MODES",
    "AutoOptimizationReport",
    "FAST_PATH_MODES",
    "FastPathCandidate",
    "OnnxRuntimeCRNN",
    "calibration_batches_from_images",
    "cpu_features",
    "optimize_for_pipeline",
    "CPUOptimizedCRNN",
    "cpu_has_native_bf16",
    "describe_cpu",
    "onednn_isa_limit",
    "why_bf16_is_emulated",
    "PaddedBidirectionalLSTM",
    "QuantizedCRNNConvLayer",
    "fold_batch_norm",
    "optimize_for_cpu",
    "reverse_within_lengths_index",
]
