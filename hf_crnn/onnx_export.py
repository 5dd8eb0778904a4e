# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
ONNX export of [`CRNNForTextRecognition`], validated against PyTorch, and a small onnxruntime runner.

`export_onnx(model, path)` writes a graph with two inputs and two outputs, batch and width both dynamic:

| name | shape | dtype | meaning |
|---|---|---|---|
| `pixel_values` (input) | `(B, C, H, W)` | float32 | images as the image processor returns them, right-padded |
| `image_widths` (input) | `(B,)` | int64 | valid width of each image (`W` for an unpadded image) |
| `logits` (output) | `(B, T, V)` | float32 | raw frame scores, exactly the PyTorch model's on valid frames |
| `frame_lengths` (output) | `(B,)` | int64 | valid frames of each image; decode only `logits[b, : frame_lengths[b]]` |

Padding is handled as in PyTorch (columns past each width zeroed after every convolution and pooling), so an image
gives the same logits alone or padded in a batch. The core model runs its BiLSTMs on packed sequences, which do not
export; the graph uses [`PaddedBidirectionalLSTM`] instead, which computes the same valid frames from a padded batch.
Batch norm is folded into the convolutions (exact to float rounding).

The export uses PyTorch's TorchScript-based exporter (`dynamo=False`), which needs only the `onnx` package; the
parity check and [`CRNNOnnxRuntimeModel`] need `onnxruntime`. Neither is imported by `import hf_crnn`.

Shapes: `B` batch, `C` channels, `H` height, `W` width (pixels), `T` frames, `V` vocabulary.
"""

from __future__ import annotations

import copy
import os
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .fast_inference import CPUOptimizedCRNN, PaddedBidirectionalLSTM, fold_batch_norm
from .modeling_crnn import CRNNForTextRecognition, CRNNTextRecognitionOutput, _zero_padding_columns

ONNX_INPUT_NAMES = ("pixel_values", "image_widths")
ONNX_OUTPUT_NAMES = ("logits", "frame_lengths")
DEFAULT_OPSET_VERSION = 17
PARITY_TOLERANCE = 1e-4
"""Largest |ONNX logit - PyTorch logit| on valid frames that `export_onnx` accepts."""


class ONNXValidationError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model (logits or frame lengths differ)."""


def _require(module_name: str, purpose: str):
    try:
        return __import__(module_name)
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs the `{module_name}` package: pip install {module_name} (or hf-crnn[test])."
        ) from error


class CRNNForONNXExport(nn.Module):
    """
    The computation of [`CRNNForTextRecognition`] as one traceable function of `(pixel_values, image_widths)`.

    The core model skips its padding masks on unpadded batches and checks its inputs with Python `if`s, which a
    trace would freeze for the example input; here the masked path always runs (it is exact on unpadded images too)
    and there is no data-dependent branch, so the graph holds for every batch size and width.

    Args:
        model ([`CRNNForTextRecognition`]): The float32 model to take the weights from; it is copied, not changed.
    """

    def __init__(self, model: CRNNForTextRecognition):
        super().__init__()
        model = copy.deepcopy(model).to("cpu").eval()
        self.height_pooling = model.config.height_pooling
        self.conv_layers = model.crnn.conv_layers
        for layer in self.conv_layers:
            fold_batch_norm(layer)
        self.lstm_layers = nn.ModuleList(PaddedBidirectionalLSTM(layer) for layer in model.crnn.lstm_layers)
        self.classifier = model.classifier

    def forward(
        self, pixel_values: torch.FloatTensor, image_widths: torch.LongTensor
    ) -> tuple[torch.FloatTensor, torch.LongTensor]:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(B, C, H, W)`): Normalised, right-padded images.
            image_widths (`torch.LongTensor` of shape `(B,)`): Valid width of each image.

        Returns:
            `(logits, frame_lengths)`: `(B, T, V)` float32 frame scores and the `(B,)` valid frames per image.
        """
        widths = image_widths
        hidden_states = _zero_padding_columns(pixel_values, widths)
        for layer in self.conv_layers:
            hidden_states, widths = layer(hidden_states, widths)
        if self.height_pooling == "avg":
            hidden_states = hidden_states.mean(dim=2)
        elif self.height_pooling == "max":
            hidden_states = hidden_states.amax(dim=2)
        else:
            hidden_states = hidden_states.squeeze(2)
        features = hidden_states.transpose(1, 2)  # (B, C, T) -> (B, T, C)
        for lstm_layer in self.lstm_layers:
            features = lstm_layer(features, widths)
        return self.classifier(features), widths


def _check_exportable(model) -> None:
    if isinstance(model, CPUOptimizedCRNN):
        raise ValueError(
            f"This model was optimized with optimize_for_cpu ({model.fast_path!r}); export the original float32 "
            "model instead (the ONNX graph gets its own batch-norm folding and padded LSTMs)."
        )
    if not isinstance(model, CRNNForTextRecognition):
        raise ValueError(f"export_onnx expects a CRNNForTextRecognition, got {type(model).__name__}.")
    if model.dtype != torch.float32:
        raise ValueError(
            f"export_onnx expects a float32 model, got {model.dtype}; export the float32 checkpoint (ONNX runtimes "
            "apply their own reduced-precision conversions)."
        )


def example_inputs(model: CRNNForTextRecognition, widths: Sequence[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """
    Random normalised images of the given valid widths, right-padded to the widest, with their `image_widths`.

    Values past each width are random too (not zeros): the graph must mask them itself, as the model does.

    Returns:
        `{"pixel_values": (B, C, H, max(widths)) float32, "image_widths": (B,) int64}`.
    """
    generator = torch.Generator().manual_seed(seed)
    config = model.config
    pixel_values = torch.randn(
        len(widths), config.num_channels, config.image_height, max(widths), generator=generator
    ).clamp_(-1, 1)
    return {"pixel_values": pixel_values, "image_widths": torch.tensor(list(widths), dtype=torch.long)}


def _export_widths(model: CRNNForTextRecognition) -> list[int]:
    """Valid widths of the example batch the graph is traced with: 100 pixels (the paper's) and a padded image."""
    width = max(100, 2 * model.crnn.minimum_width)
    return [width, width - width // 4]


def _validation_widths(model: CRNNForTextRecognition) -> list[int]:
    """Widths unlike the export example's (other batch size, padded width and padding) for the parity check."""
    width, narrowest = _export_widths(model)[0], model.crnn.minimum_width
    return [width + 60, width - 23, narrowest]


@dataclass(frozen=True)
class ONNXExportResult:
    """
    What [`export_onnx`] wrote.

    Args:
        path (`Path`): The ONNX file.
        opset_version (`int`): Its ONNX opset.
        max_abs_logit_difference (`float` or `None`): Largest |ONNX - PyTorch| logit on valid frames over the
            validation batch; `None` when validation was skipped.
    """

    path: Path
    opset_version: int
    max_abs_logit_difference: float | None


def export_onnx(
    model: CRNNForTextRecognition,
    path: str | os.PathLike,
    opset_version: int = DEFAULT_OPSET_VERSION,
    validate: bool = True,
    atol: float = PARITY_TOLERANCE,
) -> ONNXExportResult:
    """
    Exports a CRNN to ONNX with dynamic batch size and width, checks it with onnxruntime, and saves it atomically.

    The graph is written to a temporary file beside `path`, validated there (when `validate`), and only then renamed
    to `path`: an interrupted or failed export leaves the previous file (or none), never a partial or wrong one.

    Args:
        model ([`CRNNForTextRecognition`]): A float32 model (any device; it is copied to the CPU, not changed).
        path (`str` or `os.PathLike`): Where to write the `.onnx` file; its folder is created if needed.
        opset_version (`int`, *optional*, defaults to 17): ONNX opset of the graph.
        validate (`bool`, *optional*, defaults to `True`): Run the graph with onnxruntime on a padded batch whose
            size and widths differ from the export's example input, and compare with the PyTorch model.
        atol (`float`, *optional*, defaults to 1e-4): Largest accepted |ONNX - PyTorch| logit on valid frames.

    Returns:
        [`ONNXExportResult`] with the path and the measured largest logit difference.

    Raises:
        `ValueError`: `model` is not a float32 `CRNNForTextRecognition` (or was optimized for CPU already).
        [`ONNXValidationError`]: The graph's logits or frame lengths do not match PyTorch's; nothing is written.
        `ImportError`: `onnx` (export) or `onnxruntime` (validation) is not installed.

    Example:

    ```python
    >>> from hf_crnn.onnx_export import CRNNOnnxRuntimeModel, export_onnx
    >>> export_onnx(model, "crnn.onnx")
    >>> onnx_model = CRNNOnnxRuntimeModel("crnn.onnx")
    >>> outputs = onnx_model(**processor(images=["word.png"]))   # logits, frame_lengths as torch tensors
    >>> processor.batch_decode(outputs.logits, outputs.frame_lengths)
    ```
    """
    _check_exportable(model)
    onnx = _require("onnx", "ONNX export")
    if validate:
        _require("onnxruntime", "Validating the ONNX export")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the path of the .onnx file to write.")
    path.parent.mkdir(parents=True, exist_ok=True)

    exportable = CRNNForONNXExport(model).eval()
    example = example_inputs(model, _export_widths(model))
    # A fresh name beside the target (same file system, so the rename is atomic), created by the exporter itself so
    # that the file gets the usual permissions (mkstemp's would be owner-only).
    temporary = str(path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # Expected and harmless here: nn.LSTM's shape checks and the LSTM "batch size" note are trace-time
            # Python checks (the graph is validated below at another batch size and width), and torch marks the
            # TorchScript exporter as legacy. Anything else still shows.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.modules\.rnn")
            warnings.filterwarnings("ignore", message=r".*LSTM.*batch.?size", category=UserWarning)
            for legacy_note in (r".*legacy TorchScript-based ONNX export", r"The feature will be removed"):
                warnings.filterwarnings("ignore", message=legacy_note, category=DeprecationWarning)
            torch.onnx.export(
                exportable,
                (example["pixel_values"], example["image_widths"]),
                temporary,
                input_names=list(ONNX_INPUT_NAMES),
                output_names=list(ONNX_OUTPUT_NAMES),
                dynamic_axes={
                    "pixel_values": {0: "batch", 3: "width"},
                    "image_widths": {0: "batch"},
                    "logits": {0: "batch", 1: "frames"},
                    "frame_lengths": {0: "batch"},
                },
                opset_version=opset_version,
                dynamo=False,
            )
        onnx.checker.check_model(temporary)
        max_difference = None
        if validate:
            max_difference = validate_onnx(temporary, model, atol=atol)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return ONNXExportResult(path=path, opset_version=opset_version, max_abs_logit_difference=max_difference)


def validate_onnx(
    onnx_path: str | os.PathLike,
    model: CRNNForTextRecognition,
    atol: float = PARITY_TOLERANCE,
    widths: Sequence[int] | None = None,
) -> float:
    """
    Compares an exported graph with the PyTorch model on a right-padded batch of random images.

    Args:
        onnx_path (`str` or `os.PathLike`): The exported graph.
        model ([`CRNNForTextRecognition`]): The model it was exported from.
        atol (`float`, *optional*, defaults to 1e-4): Largest accepted |ONNX - PyTorch| logit on valid frames.
        widths (`Sequence[int]`, *optional*): Valid widths of the batch's images; frames past each image's length
            are ignored. Default: 160, 77 and the model's narrowest width (for the paper's network), which differ
            from the batch the graph was traced with (2 images, 100 pixels wide) in batch size and width.

    Returns:
        `float`: the largest |ONNX - PyTorch| logit over all valid frames.

    Raises:
        [`ONNXValidationError`]: frame lengths differ, or some valid logit differs by more than `atol`.
    """
    widths = list(widths) if widths is not None else _validation_widths(model)
    inputs = example_inputs(model, widths, seed=1)
    model_on_cpu = model if model.device.type == "cpu" else copy.deepcopy(model).to("cpu")
    was_training = model_on_cpu.training
    model_on_cpu.eval()
    try:
        with torch.no_grad():
            expected = model_on_cpu(**inputs)
    finally:
        model_on_cpu.train(was_training)
    actual = CRNNOnnxRuntimeModel(onnx_path)(**inputs)

    if not torch.equal(actual.frame_lengths, expected.frame_lengths):
        raise ONNXValidationError(
            f"The ONNX graph gives frame lengths {actual.frame_lengths.tolist()} where PyTorch gives "
            f"{expected.frame_lengths.tolist()} (image widths {widths})."
        )
    max_difference, worst_image = 0.0, 0
    for index, length in enumerate(expected.frame_lengths.tolist()):
        difference = (actual.logits[index, :length] - expected.logits[index, :length]).abs().max().item()
        if not difference <= max_difference:  # also catches NaN
            max_difference, worst_image = difference, index
    if not max_difference <= atol:
        raise ONNXValidationError(
            f"The ONNX graph's logits differ from PyTorch's by up to {max_difference:.3g} on valid frames (image "
            f"{worst_image} of width {widths[worst_image]} in a padded batch of widths {widths}), more than the "
            f"tolerance {atol:g}."
        )
    return max_difference


class CRNNOnnxRuntimeModel:
    """
    An exported CRNN run with onnxruntime, called like the PyTorch model.

    Args:
        path_or_session (`str`, `os.PathLike` or `onnxruntime.InferenceSession`): The `.onnx` file (or a session).
        providers (`Sequence[str]`, *optional*, defaults to `("CPUExecutionProvider",)`): onnxruntime providers.
        num_threads (`int`, *optional*): Intra-op threads (onnxruntime's default: one per physical core).

    Example:

    ```python
    >>> onnx_model = CRNNOnnxRuntimeModel("crnn.onnx")
    >>> batch = processor(images=images)
    >>> [result.text for result in onnx_model.greedy_decode(**batch, vocab=processor.tokenizer.get_vocab())]
    ```
    """

    def __init__(
        self,
        path_or_session,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        num_threads: int | None = None,
    ):
        onnxruntime = _require("onnxruntime", "Running an exported CRNN")
        if isinstance(path_or_session, onnxruntime.InferenceSession):
            self.session = path_or_session
        else:
            options = onnxruntime.SessionOptions()
            if num_threads is not None:
                options.intra_op_num_threads = num_threads
            self.session = onnxruntime.InferenceSession(os.fspath(path_or_session), options, providers=list(providers))
        names = (
            tuple(i.name for i in self.session.get_inputs()),
            tuple(o.name for o in self.session.get_outputs()),
        )
        if names != (ONNX_INPUT_NAMES, ONNX_OUTPUT_NAMES):
            raise ValueError(
                f"Expected a graph with inputs {ONNX_INPUT_NAMES} and outputs {ONNX_OUTPUT_NAMES} (as export_onnx "
                f"writes), got inputs {names[0]} and outputs {names[1]}."
            )

    def __call__(
        self, pixel_values, image_widths=None, **unused_processor_outputs
    ) -> CRNNTextRecognitionOutput:
        """
        Args:
            pixel_values (`torch.Tensor` or `np.ndarray` of shape `(B, C, H, W)`): Images as the processor returns.
            image_widths (`torch.Tensor` or `np.ndarray` of shape `(B,)`, *optional*): Valid widths; default `W`.
            unused_processor_outputs: Other processor outputs (e.g. `labels`), accepted and ignored so that
                `onnx_model(**processor(images=..., text=...))` works.

        Returns:
            [`CRNNTextRecognitionOutput`] with `logits` `(B, T, V)` float32 and `frame_lengths` `(B,)` int64 as torch
            tensors (no loss), ready for `processor.batch_decode(outputs.logits, outputs.frame_lengths)`.
        """
        pixel_values = _as_numpy(pixel_values, np.float32)
        if pixel_values.ndim != 4:
            raise ValueError(f"`pixel_values` must have shape (B, C, H, W), got {pixel_values.shape}.")
        if image_widths is None:
            image_widths = np.full(pixel_values.shape[0], pixel_values.shape[-1], dtype=np.int64)
        image_widths = _as_numpy(image_widths, np.int64)
        if image_widths.shape != (pixel_values.shape[0],):
            raise ValueError(
                f"`image_widths` must have shape ({pixel_values.shape[0]},), got {image_widths.shape}."
            )
        if ((image_widths < 1) | (image_widths > pixel_values.shape[-1])).any():
            raise ValueError(
                f"`image_widths` must lie in [1, {pixel_values.shape[-1]}] (the padded width), got "
                f"{image_widths.tolist()}."
            )
        logits, frame_lengths = self.session.run(
            list(ONNX_OUTPUT_NAMES), {"pixel_values": pixel_values, "image_widths": image_widths}
        )
        return CRNNTextRecognitionOutput(
            logits=torch.from_numpy(logits), frame_lengths=torch.from_numpy(frame_lengths)
        )

    def greedy_decode(self, pixel_values, image_widths=None, *, vocab, blank_id: int = 0, **unused_processor_outputs):
        """
        Runs the graph and decodes it greedily (best path) with [`hf_crnn.decoding.ctc_decode`].

        Args:
            pixel_values, image_widths: See [`CRNNOnnxRuntimeModel.__call__`].
            vocab (`Mapping[str, int]` or `Sequence[str]`): The tokenizer's vocabulary (`tokenizer.get_vocab()`).
            blank_id (`int`, *optional*, defaults to 0): The CTC blank's id.

        Returns:
            `list[CTCDecoding]`, one per image, with `text`, `score` and `char_frames`.
        """
        from .decoding import ctc_decode

        outputs = self(pixel_values, image_widths)
        return ctc_decode(
            outputs.logits.log_softmax(-1), outputs.frame_lengths, method="greedy", vocab=vocab, blank_id=blank_id
        )


def _as_numpy(values, dtype) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.ascontiguousarray(values, dtype=dtype)


__all__ = [
    "CRNNForONNXExport",
    "CRNNOnnxRuntimeModel",
    "DEFAULT_OPSET_VERSION",
    "ONNXExportResult",
    "ONNXValidationError",
    "ONNX_INPUT_NAMES",
    "ONNX_OUTPUT_NAMES",
    "PARITY_TOLERANCE",
    "example_inputs",
    "export_onnx",
    "validate_onnx",
]
