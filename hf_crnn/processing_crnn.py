# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Processor joining the CRNN image processor and CTC tokenizer: images + labels in, text out."""

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .file_utils import staged_directory
from .tokenization_crnn import ctc_collapse


def _to_log_probs(logits) -> torch.Tensor:
    """`(B, T, V)` logits (tensor or array, any float dtype) -> float32 log-probabilities on the CPU."""
    if isinstance(logits, np.ndarray):
        logits = torch.from_numpy(logits)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        shape = tuple(logits.shape) if hasattr(logits, "shape") else type(logits).__name__
        raise ValueError(f"`logits` must have shape (batch, frames, vocab), got {shape}.")
    return torch.log_softmax(logits.detach().to("cpu", torch.float32), dim=-1)


def _to_lengths(frame_lengths, batch_size: int, num_frames: int) -> torch.LongTensor:
    if frame_lengths is None:
        return torch.full((batch_size,), num_frames, dtype=torch.long)
    lengths = torch.as_tensor(np.asarray(frame_lengths.cpu() if isinstance(frame_lengths, torch.Tensor) else frame_lengths)).long()
    if lengths.shape != (batch_size,) or bool(((lengths < 0) | (lengths > num_frames)).any()):
        raise ValueError(f"`frame_lengths` must be {batch_size} values in [0, {num_frames}], got {lengths.tolist()}.")
    return lengths


class CRNNProcessor(ProcessorMixin):
    r"""
    Wraps a [`CRNNImageProcessor`] and a [`CRNNTokenizer`].

    `processor(images=..., text=...)` gives model inputs (`pixel_values`, `image_widths`, and `labels` right-padded
    with -100); `processor.batch_decode(logits, frame_lengths)` turns model outputs back into text.

    Args:
        image_processor ([`CRNNImageProcessor`]): Prepares images.
        tokenizer ([`CRNNTokenizer`]): Encodes labels and maps ids back to characters.
    """

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer, **kwargs)

    def __call__(self, images=None, text=None, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """
        Args:
            images: Image(s) for [`CRNNImageProcessor`].
            text (`str` or `list[str]`, *optional*): Label(s), one per image.
            return_tensors (`str`, *optional*, defaults to `"pt"`): `"pt"` or `"np"`.
            **kwargs: Passed to the image processor.

        Returns:
            `BatchFeature` with `pixel_values` `(B, C, H, W)` and `image_widths` `(B,)` when images are given, and
            `labels` `(B, L)` (int64, -100 padded) when text is given.
        """
        if images is None and text is None:
            raise ValueError("Pass `images`, `text` or both.")
        data = {}
        if images is not None:
            data.update(self.image_processor(images, return_tensors="np", **kwargs))
        if text is not None:
            data["labels"] = self.encode_labels(text)
            if images is not None and len(data["labels"]) != len(data["pixel_values"]):
                raise ValueError(f"Got {len(data['pixel_values'])} images but {len(data['labels'])} labels.")
        return BatchFeature(data=data, tensor_type=return_tensors)

    def encode_labels(self, text: str | list[str]) -> np.ndarray:
        """Encodes label text(s) into a `(B, L)` int64 array right-padded with -100."""
        texts = [text] if isinstance(text, str) else list(text)
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("Labels must be strings.")
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        labels = np.full((len(ids), max((len(i) for i in ids), default=0)), -100, dtype=np.int64)
        for row, label_ids in enumerate(ids):
            labels[row, : len(label_ids)] = label_ids
        return labels

    def batch_decode(self, logits, frame_lengths=None, output_char_offsets: bool = False, **kwargs):
        """
        Greedy (best-path) CTC decoding of model outputs.

        Args:
            logits (`torch.Tensor` or `np.ndarray` of shape `(B, T, V)`): Model logits (or log-probabilities).
            frame_lengths (`(B,)` ints, *optional*): Valid frames per image (`outputs.frame_lengths`); padding
                frames beyond them are ignored. Defaults to all `T` frames.
            output_char_offsets (`bool`, *optional*): Also return per-character frame spans.

        Returns:
            `list[str]` by default; with `output_char_offsets=True`, a list of dicts with `text`, `score` (best-path
            probability) and `char_offsets` (`char`, `start_frame`, `end_frame`, `score`).
        """
        if kwargs:
            raise ValueError(f"Unknown decoding option(s): {sorted(kwargs)}.")
        log_probs = _to_log_probs(logits)
        lengths = _to_lengths(frame_lengths, log_probs.shape[0], log_probs.shape[1])
        best_log_probs, best_ids = log_probs.max(dim=-1)
        results = []
        for row in range(log_probs.shape[0]):
            length = int(lengths[row])
            collapsed = ctc_collapse(best_ids[row, :length], self.tokenizer.blank_token_id)
            text = self.tokenizer.decode(collapsed.ids)
            if not output_char_offsets:
                results.append(text)
                continue
            frame_probs = best_log_probs[row, :length].exp()
            offsets = [
                {
                    "char": self.tokenizer.convert_ids_to_tokens(i),
                    "start_frame": start,
                    "end_frame": end,
                    "score": float(frame_probs[start:end].max()),
                }
                for i, start, end in zip(collapsed.ids, collapsed.char_frames, collapsed.char_end_frames)
            ]
            score = float(best_log_probs[row, :length].sum().exp())
            results.append({"text": text, "score": score, "char_offsets": offsets})
        return results

    def decode(self, logits, frame_length=None, **kwargs):
        """Decodes the `(T, V)` logits of one image; see [`~CRNNProcessor.batch_decode`]."""
        lengths = None if frame_length is None else [int(frame_length)]
        return self.batch_decode(logits[None], lengths, **kwargs)[0]

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        if push_to_hub:
            kwargs.setdefault("repo_id", str(save_directory).rstrip("/").split("/")[-1])
        with staged_directory(save_directory) as staging:
            return super().save_pretrained(staging, push_to_hub=push_to_hub, **kwargs)

    @property
    def model_input_names(self):
        return self.image_processor.model_input_names


__all__ = ["CRNNProcessor"]
