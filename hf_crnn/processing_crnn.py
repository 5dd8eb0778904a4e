# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Processor joining the CRNN image processor and CTC tokenizer: images + labels in, text out."""

import inspect
import os
import shutil
from collections.abc import Mapping

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.utils import cached_file

from .decoding import Lexicon, ctc_decode, load_lexicon, read_word_list
from .file_utils import PROCESSOR_FILES, check_local_checkpoint, pop_hub_kwargs, staged_directory
from .language_model import (
    LANGUAGE_MODEL_FILE,
    CharNgramLanguageModel,
    is_saved_language_model,
    load_language_model,
)

LEXICON_FILE = "lexicon.txt"
# Options of `decoding.ctc_decode` that `batch_decode` passes through as they are.
_DECODING_OPTIONS = frozenset(inspect.signature(ctc_decode).parameters) - {
    "log_probs", "lengths", "blank_id", "vocab", "lexicon", "top_k", "return_char_frames"
}


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
    if isinstance(frame_lengths, torch.Tensor):
        frame_lengths = frame_lengths.cpu()
    lengths = torch.as_tensor(np.asarray(frame_lengths)).long()
    if lengths.shape != (batch_size,) or bool(((lengths < 0) | (lengths > num_frames)).any()):
        raise ValueError(f"`frame_lengths` must be {batch_size} values in [0, {num_frames}], got {lengths.tolist()}.")
    return lengths


def _scores(hypothesis) -> dict:
    """`text`, `confidence`, `log_likelihood` and `score` of one decoded hypothesis."""
    return {
        "text": hypothesis.text,
        # A hypothesis that cannot be aligned to the frames (only possible for a forced lexicon word) gets 0.
        "confidence": hypothesis.confidence or 0.0,
        "log_likelihood": hypothesis.score,
        "score": hypothesis.probability,
    }


class CRNNProcessor(ProcessorMixin):
    r"""
    Wraps a [`CRNNImageProcessor`] and a [`CRNNTokenizer`], plus an optional default lexicon.

    `processor(images=..., text=...)` gives model inputs (`pixel_values`, `image_widths`, and `labels` right-padded
    with -100); `processor.batch_decode(logits, frame_lengths, ...)` turns model outputs back into text with greedy,
    beam or lexicon decoding (see `hf_crnn.decoding`).

    Args:
        image_processor ([`CRNNImageProcessor`]): Prepares images.
        tokenizer ([`CRNNTokenizer`]): Encodes labels and maps ids back to characters.
        lexicon (`list[str]` or path, *optional*): A default lexicon, used by `batch_decode` (and so the pipeline)
            when a call names none. Saved beside the processor as `lexicon.txt`, so a checkpoint can ship it.
        language_model ([`~hf_crnn.language_model.CharNgramLanguageModel`] or path, *optional*): The character
            language model that `batch_decode(..., language_model=True)` fuses into beam search. Saved beside the
            processor as `language_model.json`, so a checkpoint can ship it.
    """

    def __init__(self, image_processor=None, tokenizer=None, lexicon=None, language_model=None, **kwargs):
        if isinstance(lexicon, (str, os.PathLike)):
            lexicon = read_word_list(lexicon)
        self.lexicon = list(lexicon) if lexicon is not None else None
        self._prepared_lexicon = None
        self.language_model = language_model
        super().__init__(image_processor, tokenizer, **kwargs)

    @property
    def language_model(self) -> CharNgramLanguageModel | None:
        """The processor's character language model (read from its file on first access), or `None`."""
        if isinstance(self._language_model, (str, os.PathLike)):
            self._language_model = load_language_model(self._language_model)
        return self._language_model

    @property
    def has_language_model(self) -> bool:
        """Whether the processor has a language model, without reading its file."""
        return self._language_model is not None

    @language_model.setter
    def language_model(self, language_model):
        if language_model is not None and not isinstance(language_model, (CharNgramLanguageModel, str, os.PathLike)):
            raise ValueError(
                f"`language_model` must be a CharNgramLanguageModel or a path, got {type(language_model).__name__}."
            )
        # A path is read on first use: building the model takes seconds, and most callers decode greedily.
        self._language_model = language_model

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

    def default_lexicon(self) -> Lexicon | None:
        """The default lexicon prepared for decoding (built once, on first use), or `None`."""
        if self.lexicon is None:
            return None
        if self._prepared_lexicon is None:
            self._prepared_lexicon = load_lexicon(
                self.lexicon, self.tokenizer.get_vocab(), blank_id=self.tokenizer.blank_token_id
            )
        return self._prepared_lexicon

    def batch_decode(
        self,
        logits,
        frame_lengths=None,
        *,
        lexicon=None,
        top_k: int = 1,
        output_scores: bool = False,
        output_char_offsets: bool = False,
        **decoding_options,
    ):
        """
        Decodes model outputs: greedy (best path) by default, CTC prefix beam search with `beam_width`, the paper's
        lexicon search with `lexicon` (or the processor's default lexicon), trie-constrained beam search with both.

        Args:
            logits (`torch.Tensor` or `np.ndarray` of shape `(B, T, V)`, or the model's output): Model logits (or
                log-probabilities). Passing the whole model output (`processor.batch_decode(outputs)`) also takes
                its `frame_lengths`, the safe way to decode a padded batch.
            frame_lengths (`(B,)` ints, *optional*): Valid frames per image (`outputs.frame_lengths`); padding
                frames beyond them are ignored. Defaults to the output's `frame_lengths`, else all `T` frames;
                the frames of a padded image's padding hold no text, so decoding them can add characters.
            lexicon (*optional*): A list of words, a word-list file (one word per line), a prepared
                `hf_crnn.decoding.Lexicon`, or one of those per image. Defaults to the processor's lexicon unless
                `method` is `"greedy"` or `"beam"`.
            top_k (`int`, defaults to 1): Return the `top_k` best hypotheses per image (`nbest`).
            output_scores (`bool`): Return dicts with `text`, `confidence` (how likely the text is right, in
                `[0, 1]`, comparable across images and lengths: the probability of its least sure character, 0 for
                empty text; see `hf_crnn.decoding.word_confidence`), `log_likelihood` (the decoding's natural-log
                score: greedy, the best path's; beam, the prefix mass kept; lexicon, the word's exact CTC
                log-probability) and `score` (`exp(log_likelihood)`, kept for backward compatibility).
            output_char_offsets (`bool`): Also return per character `{"char", "frame", "score"}`: the frame it is
                emitted at and its highest frame probability.
            **decoding_options: `method`, `beam_width`, `delta`, `exhaustive_max_words`, `fallback`,
                `oov_penalty`, `min_char_prob`, `max_chars_per_frame`, `lowercase`; see `hf_crnn.decoding.ctc_decode`.
                And `language_model`: `True` for the processor's own (a shipped `language_model.json`), a
                [`~hf_crnn.language_model.CharNgramLanguageModel`], or a path (a saved model or a word list): beam
                search fused with it (the default lexicon is then not applied).

        Returns:
            `list[str]`, or with `output_scores`, `output_char_offsets` or `top_k > 1` a list of dicts with `text`,
            `confidence`, `log_likelihood`, `score`, and as asked `char_offsets`, `nbest` (`[{"text",
            "confidence", "log_likelihood", "score"}]`, best first) and
            `lexicon_fallback` (True when no lexicon word was close enough and the answer fell back).
        """
        unknown = set(decoding_options) - _DECODING_OPTIONS
        if unknown:
            raise ValueError(f"Unknown decoding option(s): {sorted(unknown)}; valid: {sorted(_DECODING_OPTIONS)}.")
        if isinstance(logits, Mapping):  # a ModelOutput (or dict) with `logits` and usually `frame_lengths`
            if frame_lengths is None:
                frame_lengths = logits.get("frame_lengths")
            if "logits" not in logits:
                raise ValueError(f"A model output to decode needs `logits`; got keys {sorted(logits)}.")
            logits = logits["logits"]
        log_probs = _to_log_probs(logits)
        lengths = _to_lengths(frame_lengths, log_probs.shape[0], log_probs.shape[1])
        language_model = self.resolve_language_model(decoding_options.pop("language_model", None))
        if language_model is not None:
            decoding_options["language_model"] = language_model
        elif lexicon is None and decoding_options.get("method") not in ("greedy", "beam"):
            lexicon = self.default_lexicon()
        with_scores = output_scores or output_char_offsets or top_k > 1
        decodings = ctc_decode(
            log_probs,
            lengths,
            blank_id=self.tokenizer.blank_token_id,
            vocab=self.tokenizer.get_vocab(),
            lexicon=lexicon,
            top_k=top_k,
            return_char_frames=with_scores,  # the characters' probabilities give each hypothesis its confidence
            **decoding_options,
        )
        if not with_scores:
            return [decoding.text for decoding in decodings]
        results = []
        for decoding in decodings:
            result = _scores(decoding.best)
            if output_char_offsets:
                result["char_offsets"] = [
                    {"char": char, "frame": frame, "score": score}
                    for char, frame, score in zip(
                        self.tokenizer.convert_ids_to_tokens(decoding.ids), decoding.char_frames, decoding.char_scores
                    )
                ]
            if top_k > 1:
                result["nbest"] = [_scores(hypothesis) for hypothesis in decoding.nbest]
            if lexicon is not None:
                result["lexicon_fallback"] = decoding.lexicon_fallback
            results.append(result)
        return results

    def decode(self, logits, frame_length=None, **kwargs):
        """Decodes the `(T, V)` logits of one image; see [`~CRNNProcessor.batch_decode`]."""
        lengths = None if frame_length is None else [int(frame_length)]
        return self.batch_decode(logits[None], lengths, **kwargs)[0]

    def to_dict(self):
        output = super().to_dict()
        output.pop("lexicon", None)  # saved as lexicon.txt, not inlined in the JSON
        output.pop("language_model", None)  # saved as language_model.json
        return output

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Saves tokenizer, image processor, processor config, `lexicon.txt` and `language_model.json`, all moved into
        place at once."""
        hub_kwargs = pop_hub_kwargs(kwargs)
        with staged_directory(save_directory) as staging:
            super().save_pretrained(staging, **kwargs)
            if self.lexicon is not None:
                with open(os.path.join(staging, LEXICON_FILE), "w", encoding="utf-8") as handle:
                    handle.writelines(f"{word}\n" for word in self.lexicon)
            language_model = self._language_model
            if isinstance(language_model, (str, os.PathLike)) and is_saved_language_model(language_model):
                # A saved model not yet used (a loaded checkpoint's own): copied as it is, not built to be written back.
                shutil.copyfile(language_model, os.path.join(staging, LANGUAGE_MODEL_FILE))
            elif language_model is not None:
                self.language_model.save(os.path.join(staging, LANGUAGE_MODEL_FILE))
        if push_to_hub:
            repo_id = hub_kwargs.pop("repo_id", os.path.basename(os.path.abspath(save_directory)))
            self.push_to_hub(repo_id, **hub_kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        # Damaged or missing files in a local folder are reported by name (`OSError`) before anything loads them.
        # The tokenizer checks its own files again when it loads, but ProcessorMixin parses tokenizer_config.json
        # itself before that, so they are checked here too.
        check_local_checkpoint(pretrained_model_name_or_path, PROCESSOR_FILES, subfolder=kwargs.get("subfolder") or "")
        download_kwargs = ("cache_dir", "force_download", "local_files_only", "token", "revision")
        for name, file_name in (("lexicon", LEXICON_FILE), ("language_model", LANGUAGE_MODEL_FILE)):
            if name not in kwargs:
                kwargs[name] = cached_file(
                    pretrained_model_name_or_path,
                    file_name,
                    _raise_exceptions_for_missing_entries=False,
                    _raise_exceptions_for_connection_errors=False,
                    subfolder=kwargs.get("subfolder") or "",
                    **{key: kwargs[key] for key in download_kwargs if key in kwargs},
                )
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def resolve_language_model(self, language_model) -> CharNgramLanguageModel | None:
        """
        What a `language_model` decoding option means (`batch_decode`, the pipeline, `hf-crnn recognize` and
        `hf-crnn evaluate` all go through here): `True` is the processor's own, a path a saved model or a word list
        (loaded once per file version), a `CharNgramLanguageModel` itself; `None` or `False` none.

        Raises:
            `ValueError`: `True` without a language model, or a path that is not a readable file.
        """
        if language_model is None or language_model is False:
            return None
        if language_model is True:
            if self.language_model is None:
                raise ValueError(
                    "language_model=True asks for the processor's language model, but it has none: the checkpoint "
                    f"ships no {LANGUAGE_MODEL_FILE}. Pass a CharNgramLanguageModel or a word-list path instead."
                )
            return self.language_model
        if isinstance(language_model, (str, os.PathLike)):
            return load_language_model(language_model)
        return language_model  # ctc_decode checks its type

    @property
    def model_input_names(self):
        return self.image_processor.model_input_names


__all__ = ["CRNNProcessor", "LANGUAGE_MODEL_FILE", "LEXICON_FILE"]
