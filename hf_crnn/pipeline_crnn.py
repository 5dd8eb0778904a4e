# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Text-recognition pipeline for CRNN checkpoints ("image-to-text" through remote code, "text-recognition" locally)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import PIL.Image
import torch
from transformers import Pipeline

from .image_processing_crnn import load_image

DEFAULT_WINDOW_OVERLAP = 128


@dataclass
class _Piece:
    """What one forward row reads: a whole input image, or one window of a long line resized to the model height."""

    input_index: int
    image: PIL.Image.Image
    resized_width: int
    window_start: int = 0  # left edge of the window in the resized line, in pixels


def frame_stride(config) -> int:
    """Pixels between consecutive output frames: the product of the max-pools' width strides (4 for the paper)."""
    return math.prod(stride[1] for stride in config.pool_stride if stride is not None)


def plan_windows(width: int, window_width: int, overlap: int, stride: int) -> list[int]:
    """
    Left edges of overlapping windows that cover a line `width` pixels wide (at the model's height).

    Every window is `window_width` wide (rounded down to a multiple of `stride`) except the last, which ends at the
    line's end and may be up to `stride - 1` pixels narrower; neighbours share at least `overlap` pixels (rounded up to
    a multiple of `stride`). Left edges are multiples of `stride`, so window frame `t` is exactly line frame
    `t + start // stride`: the frames of all windows lie on the grid of frames of the whole line.

    Args:
        width (`int`): Width of the line in pixels.
        window_width (`int`): Widest window, in pixels.
        overlap (`int`): Least number of pixels neighbouring windows share.
        stride (`int`): The model's frame stride in pixels (see [`frame_stride`]).

    Returns:
        `list[int]`: the windows' left edges, increasing, starting at 0 (`[0]` when the line fits in one window).
    """
    window_width = window_width // stride * stride
    overlap = -(-overlap // stride) * stride
    if overlap < 0 or overlap >= window_width:
        raise ValueError(
            f"The window overlap ({overlap} pixels, a multiple of the frame stride {stride}) must be at least 0 and "
            f"smaller than the window width ({window_width} pixels, the image processor's `max_width`)."
        )
    if width <= window_width:
        return [0]
    starts = list(range(0, width - window_width, window_width - overlap))
    # The last window ends at the line's end; its edge rounds up to the frame grid, so it is at most as wide as the
    # others and still overlaps its neighbour by >= `overlap` (both gaps are multiples of the stride).
    starts.append(-(-(width - window_width) // stride) * stride)
    return starts


def merge_window_log_probs(window_log_probs: Sequence[torch.Tensor], frame_offsets: Sequence[int]) -> torch.Tensor:
    """
    Stitches the frame scores of overlapping windows of one line into the scores of the whole line.

    Window `k` covers line frames `[frame_offsets[k], frame_offsets[k] + T_k)`. Where two windows overlap, the frames
    before the middle of the overlap come from the left window and the rest from the right one: each window's half
    nearest its own edge, where its context is cut off, is dropped.

    Args:
        window_log_probs (sequence of `torch.Tensor` of shape `(T_k, V)`): Valid frames of each window, left to right.
        frame_offsets (sequence of `int`): Line frame of each window's first frame (its left edge / frame stride).

    Returns:
        `torch.Tensor` of shape `(frame_offsets[-1] + T_last, V)`.
    """
    if len(window_log_probs) != len(frame_offsets) or not window_log_probs:
        raise ValueError("Need one frame offset per window, and at least one window.")
    pieces, start = [], 0
    for index, (log_probs, offset) in enumerate(zip(window_log_probs, frame_offsets)):
        end = offset + log_probs.shape[0]
        if index + 1 < len(frame_offsets):
            next_offset = frame_offsets[index + 1]
            if not offset <= next_offset <= end:
                raise ValueError(f"Window {index + 1} (frame {next_offset}) does not overlap window {index}.")
            end = (next_offset + end) // 2
        if start < offset:
            raise ValueError(f"Window {index} starts at frame {offset}, after the seam at frame {start}.")
        pieces.append(log_probs[start - offset : end - offset])
        start = end
    return torch.cat(pieces)


class CRNNTextRecognitionPipeline(Pipeline):
    """
    Reads the text of word or line crops.

    `pipe(image)` returns `[{"generated_text": str, "score": float}]`; `pipe([image, ...])` returns one such list per
    image, in input order. Images are sorted by their resized width and batched `batch_size` at a time with others of
    similar width, so little compute goes to padding; padding never changes a result.

    Long lines: with an image processor in `"keep_aspect_ratio"` mode, an image whose width at the model's height
    would exceed the processor's `max_width` is not squeezed to it but read at its own aspect ratio, in overlapping
    windows of `max_width` pixels run as a batch. The windows' frame scores are stitched into the frame scores of the
    whole line (each seam keeps the half of the overlap farthest from each window's edge) and decoded once, so a
    character cut by a window edge is read from the window that sees it whole and is never read twice.

    Call options:
        batch_size (`int`): Images (or windows) per forward pass (default: the pipeline's `batch_size`, else 1).
        output_char_offsets (`bool`): Add `char_offsets` to the best hypothesis: per character its `char`, `score`,
            the `frame` it is emitted at and that frame's centre `x` in the original image's pixels.
        split_long_lines (`bool`, defaults to `True`): Read long lines in windows as above; `False` squeezes them
            to `max_width` (the image processor's own behaviour).
        window_overlap (`int`, defaults to 128): Pixels (at the model's height) that neighbouring windows share,
            rounded up to a multiple of the frame stride; 128 is 32 frames, 16 on each side of a seam.
        sort_by_width (`bool`, defaults to `True`): Batch images of similar widths together; `False` batches them
            in input order (same results, more padding).
        lexicon, beam_width, top_k, method, delta, ...: Decoding options of `CRNNProcessor.batch_decode`; with
            `top_k=k` each image gets its k best hypotheses, best first. A lexicon result also carries
            `lexicon_fallback` (no lexicon word was close enough). The processor's default lexicon, if it has
            one, applies when no `lexicon` is given.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError("The text-recognition pipeline needs the checkpoint's CRNNProcessor.")

    def save_pretrained(self, save_directory, **kwargs):
        """Saves model and processor; the model's own save ships this pipeline's code for "image-to-text"."""
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory, **kwargs)

    def _sanitize_parameters(
        self,
        output_char_offsets=None,
        split_long_lines=None,
        window_overlap=None,
        sort_by_width=None,
        **decoding_options,
    ):
        preprocess_params = {}
        if split_long_lines is not None:
            preprocess_params["split_long_lines"] = split_long_lines
        if window_overlap is not None:
            preprocess_params["window_overlap"] = window_overlap
        if sort_by_width is not None:
            preprocess_params["sort_by_width"] = sort_by_width
        postprocess_params = dict(decoding_options)
        if output_char_offsets is not None:
            postprocess_params["output_char_offsets"] = output_char_offsets
        return preprocess_params, {}, postprocess_params

    def __call__(self, inputs, batch_size: int | None = None, **kwargs):
        single = not isinstance(inputs, (list, tuple))
        images = [inputs] if single else list(inputs)
        if not images:
            return []
        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        # Options given when the pipeline was built apply unless the call overrides them.
        preprocess_params = {**self._preprocess_params, **preprocess_params}
        forward_params = {**self._forward_params, **forward_params}
        postprocess_params = {**self._postprocess_params, **postprocess_params}
        split_long_lines = preprocess_params.get("split_long_lines", True)
        window_overlap = preprocess_params.get("window_overlap", DEFAULT_WINDOW_OVERLAP)
        sort_by_width = preprocess_params.get("sort_by_width", True)
        batch_size = batch_size or self._batch_size or 1

        image_processor = self.processor.image_processor
        loaded = []
        for index, image in enumerate(images):
            try:
                loaded.append(load_image(image, image_processor.num_channels))
            except ValueError as error:
                raise ValueError(f"Input {index}: {error}") from error
        pieces = []
        for index, image in enumerate(loaded):
            pieces.extend(self._pieces(index, image, split_long_lines, window_overlap))

        # Forward passes over pieces of similar width; keep each piece's valid frames as log-probabilities.
        order = range(len(pieces))
        if sort_by_width:
            order = sorted(order, key=lambda i: pieces[i].resized_width)
        order = list(order)
        piece_log_probs = [None] * len(pieces)
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            model_inputs = self.preprocess([pieces[i].image for i in indices])
            model_outputs = self.forward(model_inputs, **forward_params)
            log_probs = torch.log_softmax(model_outputs["logits"].float(), dim=-1)
            for row, (index, length) in enumerate(zip(indices, model_outputs["frame_lengths"].tolist())):
                piece_log_probs[index] = log_probs[row, :length]

        # Each input's frame scores: its one piece, or its windows stitched together.
        stride = frame_stride(self.model.config)
        input_log_probs = [[] for _ in loaded]
        input_offsets = [[] for _ in loaded]
        for piece, log_probs in zip(pieces, piece_log_probs):
            input_log_probs[piece.input_index].append(log_probs)
            input_offsets[piece.input_index].append(piece.window_start // stride)
        merged = [merge_window_log_probs(lp, offsets) for lp, offsets in zip(input_log_probs, input_offsets)]

        # Decode batch_size inputs at a time, in the order they ran so padded frame counts stay similar.
        input_order = list(dict.fromkeys(pieces[i].input_index for i in order))
        # Per-image arguments follow their images through the reordering: each decode batch gets its own slice.
        per_image = {}
        lexicon = postprocess_params.get("lexicon")
        if isinstance(lexicon, (list, tuple)) and lexicon and not isinstance(lexicon[0], str):
            if len(lexicon) != len(loaded):
                raise ValueError(f"Got {len(lexicon)} per-image lexicons for {len(loaded)} images.")
            per_image["lexicon"] = list(lexicon)
        results = [None] * len(loaded)
        for start in range(0, len(input_order), batch_size):
            indices = input_order[start : start + batch_size]
            frame_lengths = torch.tensor([merged[i].shape[0] for i in indices])
            logits = torch.nn.utils.rnn.pad_sequence([merged[i] for i in indices], batch_first=True)
            model_outputs = {"logits": logits, "frame_lengths": frame_lengths}
            original_widths = [loaded[i].width for i in indices]
            batch_params = dict(postprocess_params)
            batch_params.update({name: [values[i] for i in indices] for name, values in per_image.items()})
            for index, result in zip(indices, self.postprocess(model_outputs, original_widths, **batch_params)):
                results[index] = result
        return results[0] if single else results

    def _pieces(self, input_index: int, image: PIL.Image.Image, split_long_lines: bool, window_overlap: int):
        """The piece(s) one input is read as: the image itself, or windows of a line too long for `max_width`."""
        image_processor = self.processor.image_processor
        resized_width = image_processor.target_width(image.width, image.height)
        if not split_long_lines or image_processor.resize_mode != "keep_aspect_ratio":
            return [_Piece(input_index, image, resized_width)]
        height = image_processor.image_height
        line_width = round(image.width * height / image.height)
        if line_width <= image_processor.max_width:
            return [_Piece(input_index, image, resized_width)]
        stride = frame_stride(self.model.config)
        starts = plan_windows(line_width, image_processor.max_width, window_overlap, stride)
        window_width = image_processor.max_width // stride * stride
        # Resize once, then crop: the image processor leaves crops alone, as they already have the model's height
        # and a width within [min_width, max_width].
        line = image.resize((line_width, height), resample=image_processor.resample)
        return [
            _Piece(input_index, line.crop((start, 0, min(start + window_width, line_width), height)),
                   min(window_width, line_width - start), start)
            for start in starts
        ]

    def preprocess(self, images, **kwargs):
        return self.processor.image_processor(images, return_tensors="pt")

    def _forward(self, model_inputs):
        pixel_values = model_inputs["pixel_values"].to(self.model.dtype)
        outputs = self.model(pixel_values=pixel_values, image_widths=model_inputs["image_widths"])
        return {"logits": outputs.logits, "frame_lengths": outputs.frame_lengths}

    def postprocess(self, model_outputs, original_widths=None, output_char_offsets: bool = False, **decoding_options):
        decoded = self.processor.batch_decode(
            model_outputs["logits"],
            model_outputs["frame_lengths"],
            output_scores=True,
            output_char_offsets=output_char_offsets,
            **decoding_options,
        )
        frame_lengths = model_outputs["frame_lengths"].tolist()
        results = []
        for row, item in enumerate(decoded):
            hypotheses = item.get("nbest", [item])
            result = [{"generated_text": h["text"], "score": h["score"]} for h in hypotheses]
            if "lexicon_fallback" in item:
                result[0]["lexicon_fallback"] = item["lexicon_fallback"]
            if output_char_offsets:
                # Frames tile the image evenly: frame f is centred at x = (f + 0.5) * width / frames.
                pixels_per_frame = original_widths[row] / max(frame_lengths[row], 1) if original_widths else 0.0
                result[0]["char_offsets"] = [
                    dict(offset, x=round((offset["frame"] + 0.5) * pixels_per_frame, 1))
                    for offset in item["char_offsets"]
                ]
            results.append(result)
        return results


__all__ = ["CRNNTextRecognitionPipeline", "frame_stride", "merge_window_log_probs", "plan_windows"]
