# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Character-level CTC tokenizer for CRNN."""

import json
import os
from dataclasses import dataclass, field

import numpy as np
from transformers import PreTrainedTokenizer
from transformers.utils import logging

from .file_utils import TOKENIZER_FILES, VOCAB_FILE, check_local_checkpoint

logger = logging.get_logger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}
LOWERCASE_ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyz"
UNKNOWN_CHARACTER_POLICIES = ("error", "drop", "unk")


@dataclass
class CTCCollapsed:
    """
    One CTC-collapsed frame sequence.

    Args:
        ids (`list[int]`): Label ids after merging repeated frames and dropping blanks.
        char_frames (`list[int]`): For each id, the first frame that emitted it.
        char_end_frames (`list[int]`): For each id, one past the last frame of its run.
    """

    ids: list[int]
    char_frames: list[int] = field(default_factory=list)
    char_end_frames: list[int] = field(default_factory=list)


def ctc_collapse(frame_ids, blank_id: int = 0) -> CTCCollapsed:
    """
    Best-path CTC collapse of one sequence of frame ids: merge repeats, then drop blanks.

    Args:
        frame_ids (`Sequence[int]`, `np.ndarray` or `torch.Tensor` of shape `(T,)`): Per-frame argmax ids of the
            valid frames only.
        blank_id (`int`): The CTC blank.
    """
    frame_ids = np.asarray(frame_ids, dtype=np.int64).reshape(-1)
    if frame_ids.size == 0:
        return CTCCollapsed(ids=[])
    run_starts = np.flatnonzero(np.concatenate(([True], frame_ids[1:] != frame_ids[:-1])))
    run_ends = np.append(run_starts[1:], frame_ids.size)
    keep = frame_ids[run_starts] != blank_id
    return CTCCollapsed(
        ids=frame_ids[run_starts[keep]].tolist(),
        char_frames=run_starts[keep].tolist(),
        char_end_frames=run_ends[keep].tolist(),
    )


class CRNNTokenizer(PreTrainedTokenizer):
    """
    Character-level CTC tokenizer: one id per character, the CTC blank at id 0.

    Args:
        vocab_file (`str`, *optional*):
            `vocab.json` mapping each token to its id. Either this or `characters` is needed.
        characters (`str` or `list[str]`, *optional*):
            The alphabet, in id order after the blank (and before `unk_token` when the policy is `"unk"`). Defaults
            to the 36 lowercase alphanumerics of the paper's models when neither argument is given.
        do_lower_case (`bool`, *optional*):
            Lower-case labels before encoding. Defaults to `True` when the vocabulary has no uppercase character
            (the paper's 36-character lowercase models, which must read "Hello" as "hello"), else `False`.
        unknown_character_policy (`str`, *optional*, defaults to `"error"`):
            What to do with label characters outside the vocabulary: `"error"` raises a `ValueError` naming the
            label and the character, `"drop"` removes them with a warning, `"unk"` maps them to `unk_token` with
            a warning (the vocabulary must then hold `unk_token`).
        blank_token (`str`, *optional*, defaults to `"<blank>"`): The CTC blank (id 0).
        unk_token (`str`, *optional*, defaults to `"<unk>"`): Token for unknown characters under the `"unk"` policy.

    Example:

    ```python
    >>> from hf_crnn import CRNNTokenizer

    >>> tokenizer = CRNNTokenizer(characters="0123456789abcdefghijklmnopqrstuvwxyz", do_lower_case=True)
    >>> tokenizer("Hello").input_ids
    [18, 15, 22, 22, 25]
    >>> tokenizer.decode([18, 15, 22, 22, 25])
    'hello'
    ```
    """

    vocab_files_names = VOCAB_FILES_NAMES

    def __init__(
        self,
        vocab_file: str | None = None,
        characters: str | list[str] | None = None,
        do_lower_case: bool | None = None,
        unknown_character_policy: str = "error",
        blank_token: str = "<blank>",
        unk_token: str = "<unk>",
        **kwargs,
    ):
        # Reloaded configs hand special tokens back as `AddedToken`s.
        blank_token, unk_token = str(blank_token), str(unk_token)
        if unknown_character_policy not in UNKNOWN_CHARACTER_POLICIES:
            raise ValueError(
                f"`unknown_character_policy` must be one of {UNKNOWN_CHARACTER_POLICIES}, got "
                f"{unknown_character_policy!r}."
            )
        if vocab_file is None and characters is None and kwargs.get("name_or_path"):
            # Loaded from a checkpoint that lacks vocab.json: the built-in alphabet would read with the wrong
            # characters whenever the checkpoint's differs, so this is an error, not a fallback. (A ValueError:
            # `from_pretrained` replaces any OSError raised here with a generic message.)
            raise ValueError(f"{kwargs['name_or_path']}: has no {VOCAB_FILE}; the tokenizer's vocabulary is missing")
        if vocab_file is not None:
            with open(vocab_file, encoding="utf-8") as handle:
                self.encoder = {token: int(index) for token, index in json.load(handle).items()}
        else:
            if characters is None:
                characters = LOWERCASE_ALPHANUMERIC
            characters = list(characters)
            if len(set(characters)) != len(characters):
                raise ValueError("`characters` holds duplicates; each character needs exactly one id.")
            tokens = [blank_token, *characters]
            if unknown_character_policy == "unk":
                tokens.append(unk_token)
            self.encoder = {token: index for index, token in enumerate(tokens)}
        if self.encoder.get(blank_token) != 0:
            raise ValueError(f"The blank token {blank_token!r} must have id 0 in the vocabulary.")
        if unknown_character_policy == "unk" and unk_token not in self.encoder:
            raise ValueError(f'The "unk" policy needs {unk_token!r} in the vocabulary.')
        self.decoder = {index: token for token, index in self.encoder.items()}
        if do_lower_case is None:
            special = (blank_token, unk_token)
            do_lower_case = not any(t != t.lower() for t in self.encoder if t not in special)
        self.do_lower_case = do_lower_case
        self.unknown_character_policy = unknown_character_policy
        self.blank_token = blank_token
        # Labels are plain text: "<blank>" written in a label is five characters, not the blank.
        kwargs.setdefault("split_special_tokens", True)
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        kwargs.pop("pad_token", None)  # always the blank; a saved config repeats it
        super().__init__(
            pad_token=blank_token,
            unk_token=unk_token if unk_token in self.encoder else None,
            do_lower_case=do_lower_case,
            unknown_character_policy=unknown_character_policy,
            blank_token=blank_token,
            **kwargs,
        )
        # Loading-time flags that from_pretrained passes in; they describe one load, not the tokenizer.
        for key in ("is_local", "local_files_only", "model_specific_special_tokens"):
            self.init_kwargs.pop(key, None)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        # Damaged or missing files in a local folder are reported by name (`OSError`) before anything loads them.
        check_local_checkpoint(pretrained_model_name_or_path, TOKENIZER_FILES, subfolder=kwargs.get("subfolder") or "")
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    @property
    def blank_token_id(self) -> int:
        return 0

    @property
    def characters(self) -> list[str]:
        """The vocabulary's characters in id order, without the blank and the unknown token."""
        special = {self.blank_token, self.unk_token}
        return [self.decoder[i] for i in range(len(self.decoder)) if self.decoder[i] not in special]

    def get_vocab(self) -> dict[str, int]:
        return dict(self.encoder, **self.added_tokens_encoder)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        if self.do_lower_case:
            text = text.lower()
        tokens = []
        for character in text:
            if character in self.encoder:
                tokens.append(character)
            elif self.unknown_character_policy == "error":
                raise ValueError(
                    f"Label {text!r} holds the character {character!r} (U+{ord(character):04X}), which is not in the "
                    f"vocabulary; fix the label, or set unknown_character_policy='drop' or 'unk'."
                )
            else:
                logger.warning(
                    f"Label {text!r}: character {character!r} is not in the vocabulary; "
                    + ("dropped." if self.unknown_character_policy == "drop" else f"mapped to {self.unk_token!r}.")
                )
                if self.unknown_character_policy == "unk":
                    tokens.append(self.unk_token)
        return tokens

    def _convert_token_to_id(self, token: str) -> int:
        return self.encoder[token]

    def _convert_id_to_token(self, index: int) -> str:
        return self.decoder[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(token for token in tokens if token != self.blank_token)

    def ctc_decode(
        self, frame_ids, frame_scores=None, output_char_offsets: bool = False
    ) -> str | tuple[str, list[dict]]:
        """
        Decodes the per-frame ids of one image (argmax over its valid frames) with the CTC best-path rule.

        For whole batches of logits, `CRNNProcessor.batch_decode` (vectorised, with beam and lexicon search) is
        the faster route; this is the id-level counterpart, like `Wav2Vec2CTCTokenizer.decode`.

        Args:
            frame_ids (`Sequence[int]` or array of shape `(T,)`): Per-frame ids of the valid frames.
            frame_scores (`Sequence[float]` or array of shape `(T,)`, *optional*): Each frame's probability for
                its id; gives a `score` per character (its best frame) and per word (the path probability).
            output_char_offsets (`bool`): Also return, per character, `{"char", "start_frame", "end_frame"}`
                (and `score` when `frame_scores` are given).

        Returns:
            The text, or `(text, offsets)` with `output_char_offsets`; with `frame_scores` and
            `output_char_offsets`, `(text, offsets, word_score)`.
        """
        collapsed = ctc_collapse(frame_ids, self.blank_token_id)
        text = self.decode(collapsed.ids)
        if not output_char_offsets:
            return text
        offsets = [
            {"char": self.decoder[i], "start_frame": start, "end_frame": end}
            for i, start, end in zip(collapsed.ids, collapsed.char_frames, collapsed.char_end_frames)
        ]
        if frame_scores is None:
            return text, offsets
        frame_scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
        if frame_scores.shape != np.asarray(frame_ids).reshape(-1).shape:
            raise ValueError("`frame_scores` needs one probability per frame id.")
        for offset in offsets:
            offset["score"] = float(frame_scores[offset["start_frame"] : offset["end_frame"]].max())
        return text, offsets, float(np.prod(frame_scores))

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        if not os.path.isdir(save_directory):
            raise ValueError(f"Vocabulary path ({save_directory}) should be a directory.")
        vocab_file = os.path.join(
            save_directory, (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        )
        with open(vocab_file, "w", encoding="utf-8") as handle:
            json.dump(self.encoder, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
        return (vocab_file,)


__all__ = ["CRNNTokenizer", "CTCCollapsed", "ctc_collapse", "LOWERCASE_ALPHANUMERIC"]
