# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""CTC decoding for CRNN: greedy (best path), prefix beam search, exact sequence scoring and the paper's
lexicon-based transcription (Shi, Bai & Yao 2015, section 2.3), plus a lexicon-constrained beam search.

Everything here is a pure function of per-frame log-probabilities; no model code. Shapes used throughout:

* `log_probs`: `(B, T, V)` float tensor, already `log_softmax`-ed over `V` (batch, frames, vocabulary).
* `lengths`:   `(B,)` integer tensor of valid frames per image (`None`: all `T`); frames past an image's length are
  padding and never looked at.
* `blank_id`:  the CTC blank's index in `V`.

Results carry label ids (the tokenizer maps them to text); the lexicon functions, and [`ctc_decode`] when given a
`vocab`, also fill in the text. Every hypothesis has a `score`, a natural-log probability that is never above the
true `log p(ids | frames)`: greedy gives the probability of the single best path, beam search the probability mass it
kept (exact when nothing was pruned), lexicon decoding the exact CTC probability.

This file is shipped as remote code next to checkpoints, so it imports only stdlib, numpy and torch at top level;
rapidfuzz (fast edit distances for large lexicons) is optional and replaced by a vectorised numpy fallback.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .file_utils import read_word_list_file
from .language_model import CharNgramLanguageModel

try:  # Optional: ~10x faster edit distances for large lexicons. Inside `try` so remote-code import checks skip it.
    from rapidfuzz import process as _rapidfuzz_process
    from rapidfuzz.distance import Levenshtein as _rapidfuzz_levenshtein
except ImportError:
    _rapidfuzz_process = None
    _rapidfuzz_levenshtein = None


__all__ = [
    "DECODING_METHODS",
    "DEFAULT_BEAM_WIDTH",
    "DEFAULT_VOCAB",
    "CTCDecoding",
    "CTCHypothesis",
    "Lexicon",
    "ctc_beam_search",
    "ctc_decode",
    "ctc_force_align",
    "ctc_greedy_decode",
    "ctc_lexicon_beam_search",
    "ctc_lexicon_decode",
    "ctc_sequence_log_probs",
    "load_lexicon",
    "read_word_list",
    "word_confidence",
]

# The CRNNTokenizer default: blank at id 0, then digits and lowercase letters (vocab_size 37).
DEFAULT_VOCAB: tuple[str, ...] = ("<blank>",) + tuple("0123456789abcdefghijklmnopqrstuvwxyz")
DECODING_METHODS = ("greedy", "beam", "lexicon", "lexicon_beam")
DEFAULT_BEAM_WIDTH = 10

_NEG_INF = float("-inf")
# Largest |logsumexp - 0| over a valid frame that still counts as log-softmax normalised.
_NORMALISATION_TOLERANCE = {torch.float16: 0.1, torch.bfloat16: 0.1}
_DEFAULT_NORMALISATION_TOLERANCE = 1e-3
# Relative slack when comparing an upper bound with an exact fp32 CTC score, so rounding never prunes the best word.
_BOUND_SLACK = 1e-4
# Probabilities below this are clamped to it inside the upper bounds: keeps them finite (and still bounds).
_TINY_PROB = 1e-300


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


def word_confidence(
    char_scores: Sequence[float],
    log_likelihood: float | None = None,
    best_path_log_likelihood: float | None = None,
) -> float:
    """
    The confidence of a transcription: the probability of its least sure character, where a character's
    probability is its highest frame probability over the frames it occupies (`CTCHypothesis.char_scores`); 0 for
    an empty transcription (nothing was read, so there is nothing to accept). A hypothesis other than the model's own
    best path (a lexicon word, a beam search alternative) is also scaled by how much less likely it is than that
    path, `min(1, exp(log_likelihood - best_path_log_likelihood))`: its alignment can hide a character it leaves out
    in blank frames, which its characters' probabilities alone would not show.

    Why the minimum of the characters' probabilities and not the path probability (`exp(score)`): a word is right
    only if every character is, and one doubtful character is what a wrong read has; the path probability instead
    multiplies every frame, blanks included, so it falls with the image's width and the word's length (a correct
    20000-pixel-wide line scored 0.00015) and ranks a short guess on a blank crop above a long correct word.
    Measured on real crops (IIIT5K and ICDAR 2015 *training* sets, 6,468 words, EasyOCR's real weights and the
    shipped synthetic-only model): it separates right from wrong reads better than the path probability (ROC AUC
    0.910 / 0.922 against 0.900 / 0.887), its mean over correct reads does not move with the word's length, and it
    is calibrated in domain (expected calibration error 0.031 on IIIT5K train for the real-trained model; models
    are overconfident on data unlike their training data). Adding the blank frames' probabilities did not separate
    better: noise crops have confident blank frames too.

    Args:
        char_scores (`Sequence[float]`): Per character, a probability in `[0, 1]`.
        log_likelihood (`float`, *optional*): The hypothesis' natural-log score (`CTCHypothesis.score`).
        best_path_log_likelihood (`float`, *optional*): The log-probability of the image's best path (the sum over
            its valid frames of each frame's highest log-probability).

    Returns:
        `float` in `[0, 1]`.
    """
    if not len(char_scores):
        return 0.0
    confidence = min(1.0, float(min(char_scores)))  # exp() of a log-probability can round just above 1
    if log_likelihood is not None and best_path_log_likelihood is not None:
        confidence *= math.exp(min(0.0, log_likelihood - best_path_log_likelihood))
    return confidence


@dataclass
class CTCHypothesis:
    """
    One transcription hypothesis of one image.

    Attributes:
        ids (`list[int]`): Collapsed label ids (no blanks, no CTC repeats), in vocabulary space.
        score (`float`): Natural-log probability of `ids` given the frames; never above the true CTC
            `log p(ids | frames)`. Greedy: log-prob of the best path; beam search: log-prob mass of the
            prefix kept by the beam (exact when nothing was pruned); lexicon decoding: exact `log p(ids | frames)`.
        char_frames (`list[int]`, *optional*): Per character, the first frame it is emitted at. Greedy always
            fills it (it is free); the other methods on `return_char_frames=True` (from a Viterbi forced alignment).
        char_scores (`list[float]`, *optional*): Per character, a probability in `[0, 1]`: the highest
            probability of that character over the frames it occupies. The maximum, not the mean: a character
            spanning several frames is as certain as its surest frame, and the flanking transition frames would
            otherwise drag a sure character down. Filled together with `char_frames`.
        text (`str`, *optional*): The text, when the producer knew the vocabulary; for lexicon words the
            lexicon's own spelling (original case).
        lexicon_index (`int`, *optional*): Index of the word in `Lexicon.words` when the hypothesis is a lexicon word.
        best_path_score (`float`, *optional*): Log-probability of the image's best path, for `confidence` (set by
            [`ctc_decode`] for every method).
    """

    ids: list[int]
    score: float
    char_frames: list[int] | None = None
    char_scores: list[float] | None = None
    text: str | None = None
    lexicon_index: int | None = None
    best_path_score: float | None = None

    @property
    def probability(self) -> float:
        """`exp(score)`, a probability in `[0, 1]` (for greedy: the probability of the best path). It falls with the
        number of frames and characters, so it ranks hypotheses of one image, not reads of different images."""
        return math.exp(self.score)

    @property
    def confidence(self) -> float | None:
        """How likely `ids` is right, in `[0, 1]`, comparable across images and lengths: see [`word_confidence`].
        None until `char_scores` are known (greedy always; other methods with `return_char_frames=True`)."""
        if self.char_scores is None and self.ids:
            return None
        return word_confidence(self.char_scores or [], self.score, self.best_path_score)


@dataclass
class CTCDecoding:
    """
    The decoding of one image: an n-best list, best first, and whether the lexicon had to fall back.

    `text`, `ids`, `score`, `confidence`, `char_frames` and `char_scores` are those of `nbest[0]`.

    Attributes:
        nbest (`list[CTCHypothesis]`): At least one hypothesis, at most `top_k`, best first.
        lexicon_fallback (`bool`): True when the lexicon could not be applied as asked. `method="lexicon"`: no
            lexicon word within `delta` edits of the greedy transcription fits the frames, so the result comes
            from the nearest lexicon words by edit distance (`fallback="nearest"`) or is the lexicon-free greedy
            result (`fallback="greedy"`, or when no lexicon word fits the frames at all).
            `method="lexicon_beam"`: the best hypothesis is not a lexicon word (with `oov_penalty`, an
            out-of-lexicon output won; without, no lexicon word survived the beam and the result is the greedy
            transcription).
            Always False for `greedy` and `beam`.
    """

    nbest: list[CTCHypothesis]
    lexicon_fallback: bool = False

    @property
    def best(self) -> CTCHypothesis:
        return self.nbest[0]

    @property
    def text(self) -> str | None:
        return self.nbest[0].text

    @property
    def ids(self) -> list[int]:
        return self.nbest[0].ids

    @property
    def score(self) -> float:
        return self.nbest[0].score

    @property
    def probability(self) -> float:
        return self.nbest[0].probability

    @property
    def confidence(self) -> float | None:
        return self.nbest[0].confidence

    @property
    def char_frames(self) -> list[int] | None:
        return self.nbest[0].char_frames

    @property
    def char_scores(self) -> list[float] | None:
        return self.nbest[0].char_scores


# --------------------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------------------


def _prepare_inputs(log_probs, lengths, blank_id) -> tuple[torch.Tensor, torch.Tensor, int]:
    """
    Validates the common inputs. Returns the log-probs as a detached, contiguous float32/float64 `(B, T, V)` CPU
    tensor, the `(B,)` lengths as a CPU long tensor, and the blank id as an `int`.

    Decoding is a host-side step (its results are Python lists), so inputs move to the CPU once, up front. The
    elementwise work is numpy on purpose: numpy runs on the calling thread, whereas torch spreads even small CPU
    tensors over its thread pool, which on a busy machine waits for time slices (measured here: 10-50x slower).
    """
    if isinstance(log_probs, np.ndarray):
        log_probs = torch.from_numpy(log_probs)
    if not isinstance(log_probs, torch.Tensor):
        raise TypeError(f"`log_probs` must be a torch.Tensor of shape (B, T, V), got {type(log_probs).__name__}.")
    if log_probs.dim() != 3:
        raise ValueError(
            f"`log_probs` must have shape (batch, frames, vocab), got {tuple(log_probs.shape)}; "
            "add a batch dimension with `log_probs[None]` for a single image."
        )
    if not log_probs.is_floating_point():
        raise ValueError(f"`log_probs` must be a floating-point tensor, got dtype {log_probs.dtype}.")
    batch, frames, vocab_size = log_probs.shape
    if vocab_size < 2:
        raise ValueError(
            f"`log_probs` needs a vocabulary of at least 2 (the blank and a character), got {vocab_size}."
        )
    blank_id = _check_blank_id(blank_id, vocab_size)

    tolerance = _NORMALISATION_TOLERANCE.get(log_probs.dtype, _DEFAULT_NORMALISATION_TOLERANCE)
    dtype = log_probs.dtype if log_probs.dtype in (torch.float32, torch.float64) else torch.float32
    log_probs = log_probs.detach().to(device="cpu", dtype=dtype).contiguous()

    if lengths is None:
        lengths = torch.full((batch,), frames, dtype=torch.long)
    else:
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.shape[0] != batch:
            raise ValueError(f"`lengths` must have shape ({batch},) to match `log_probs`, got {tuple(lengths.shape)}.")
        if lengths.is_floating_point() or lengths.dtype == torch.bool or lengths.is_complex():
            raise ValueError(f"`lengths` must hold integers, got dtype {lengths.dtype}.")
        lengths = lengths.to(device="cpu", dtype=torch.long)
        if batch and (int(lengths.min()) < 0 or int(lengths.max()) > frames):
            raise ValueError(
                f"`lengths` must lie in [0, T={frames}], got values in [{int(lengths.min())}, {int(lengths.max())}]."
            )

    # Passing raw logits is the easy mistake; greedy would not notice, but every score would be wrong.
    valid = log_probs.numpy()[np.arange(frames)[None, :] < lengths.numpy()[:, None]]  # (valid frames, V)
    if valid.size:
        peak = valid.max(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", over="ignore"):
            deviation = np.abs(peak[:, 0] + np.log(np.exp(valid - peak).sum(axis=1)))
        worst = float(deviation.max())
        if not worst <= tolerance:  # also catches NaN
            raise ValueError(
                "`log_probs` must be log-probabilities normalised over the vocabulary (the last dimension): a valid "
                f"frame's logsumexp is {worst:.3g} away from 0. Pass `logits.log_softmax(-1)`, not raw logits."
            )
    return log_probs, lengths, blank_id


def _check_blank_id(blank_id, vocab_size: int) -> int:
    if isinstance(blank_id, bool) or not isinstance(blank_id, (int, np.integer)):
        raise ValueError(f"`blank_id` must be an int, got {blank_id!r}.")
    if not 0 <= blank_id < vocab_size:
        raise ValueError(f"`blank_id` must lie in [0, V={vocab_size}), got {blank_id}.")
    return int(blank_id)


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    return int(value)


def _normalise_vocab(vocab) -> tuple[str, ...]:
    """`vocab` as an id -> token tuple. Accepts a sequence of tokens (index = id) or a token -> id mapping (e.g.
    `tokenizer.get_vocab()`), whose ids must be exactly `0 .. len - 1`."""
    if isinstance(vocab, Mapping):
        ids = sorted(vocab.values())
        if ids != list(range(len(vocab))):
            raise ValueError("A `vocab` mapping must map tokens to the ids 0 .. len(vocab) - 1, each exactly once.")
        by_id = [""] * len(vocab)
        for token, token_id in vocab.items():
            by_id[token_id] = token
        return tuple(by_id)
    if isinstance(vocab, str) or not isinstance(vocab, Sequence):
        raise TypeError("`vocab` must be a sequence of tokens (index = id) or a token -> id mapping.")
    if not all(isinstance(token, str) for token in vocab):
        raise TypeError("`vocab` tokens must be strings.")
    return tuple(vocab)


# --------------------------------------------------------------------------------------------------------------
# Greedy (best path) decoding
# --------------------------------------------------------------------------------------------------------------


def ctc_greedy_decode(
    log_probs: torch.Tensor, lengths: torch.Tensor | None = None, blank_id: int = 0
) -> list[CTCHypothesis]:
    """
    Best-path decoding of a batch, vectorised over the whole batch: per frame the most probable label, then repeats
    collapsed and blanks dropped (no per-frame Python).

    Args:
        log_probs (`torch.Tensor` of shape `(B, T, V)`): Log-softmaxed frame scores.
        lengths (`torch.Tensor` of shape `(B,)`, *optional*): Valid frames per image; default all `T`.
        blank_id (`int`, defaults to 0): Index of the CTC blank.

    Returns:
        `list[CTCHypothesis]` of length `B`, each with `ids`, `score` (log-prob of the best path: the sum over
        valid frames of the frame's top log-prob), `char_frames` and `char_scores` filled; `text` is None.
    """
    log_probs, lengths, blank_id = _prepare_inputs(log_probs, lengths, blank_id)
    return _greedy_decode(log_probs, lengths, blank_id)


def _greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int) -> list[CTCHypothesis]:
    """[`ctc_greedy_decode`] on validated inputs (numpy, see `_prepare_inputs`)."""
    batch, frames, _ = log_probs.shape
    if frames == 0:
        return [CTCHypothesis([], 0.0, [], []) for _ in range(batch)]
    frame_log_probs = log_probs.numpy()
    top_ids = frame_log_probs.argmax(axis=-1)  # (B, T)
    top_log_probs = np.take_along_axis(frame_log_probs, top_ids[..., None], axis=-1)[..., 0].astype(np.float64)
    padding = np.arange(frames)[None, :] >= lengths.numpy()[:, None]
    top_ids[padding] = blank_id  # padding then reads as blanks and emits nothing
    top_log_probs[padding] = 0.0
    path_scores = top_log_probs.sum(axis=1)

    # A run is a maximal stretch of equal labels; each non-blank run emits one character at its first frame.
    previous = np.concatenate([np.full((batch, 1), -1), top_ids[:, :-1]], axis=1)  # -1: each row starts a run
    run_starts = top_ids != previous
    emits = run_starts & (top_ids != blank_id)
    # Runs are contiguous in the flattened batch, so one reduceat gives every run's best frame log-prob.
    run_best = np.maximum.reduceat(top_log_probs.reshape(-1), np.flatnonzero(run_starts))
    run_index = (np.cumsum(run_starts.reshape(-1)) - 1).reshape(batch, frames)

    rows, char_frames = np.nonzero(emits)  # row-major, so grouped by image and in frame order
    all_ids = top_ids[rows, char_frames].tolist()
    all_scores = np.exp(run_best[run_index[rows, char_frames]]).tolist()
    all_frames = char_frames.tolist()
    hypotheses, start = [], 0
    for count, score in zip(emits.sum(axis=1).tolist(), path_scores.tolist()):
        end = start + count
        hypotheses.append(
            CTCHypothesis(all_ids[start:end], score, all_frames[start:end], all_scores[start:end], best_path_score=score)
        )
        start = end
    return hypotheses


# --------------------------------------------------------------------------------------------------------------
# Exact sequence scoring and forced alignment
# --------------------------------------------------------------------------------------------------------------


def _score_label_sequences(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    image_index: torch.Tensor,
    blank_id: int,
) -> torch.Tensor:
    """
    `log p(targets[n] | frames of image image_index[n])` for `N` sequences in one CTC call.

    Shapes: log_probs `(B, T, V)`, lengths `(B,)`, targets `(N, L)` (padding ignored), target_lengths `(N,)`,
    image_index `(N,)`, all CPU tensors. fp32 CTC loss with `zero_infinity=False` is exactly `-log p`, and `inf`
    (so `-inf` here) for a sequence that cannot fit in its frames.
    """
    _, frames, vocab_size = log_probs.shape
    if bool((image_index == image_index[0]).all()):
        # One image, many candidates (a lexicon): a stride-0 view of its frames, which the kernel reads uncopied.
        frames_first = log_probs[image_index[0]].unsqueeze(1).expand(frames, image_index.shape[0], vocab_size)
    else:
        frames_first = torch.from_numpy(log_probs.numpy()[image_index.numpy()]).transpose(0, 1)
    return -F.ctc_loss(
        frames_first,
        targets,
        lengths[image_index],
        target_lengths,
        blank=blank_id,
        reduction="none",
        zero_infinity=False,
    )


def _pad_sequences(sequences, vocab_size: int, blank_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Label sequences as a right-padded `(N, L)` long tensor (padding = blank, never read) and `(N,)` lengths."""
    sequences = [list(sequence) for sequence in sequences]
    lengths = [len(sequence) for sequence in sequences]
    padded = torch.full((len(sequences), max(lengths, default=0)), blank_id, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            padded[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    if padded.numel():
        valid = torch.arange(padded.shape[1])[None, :] < torch.as_tensor(lengths)[:, None]
        labels = padded[valid]
        if bool(((labels < 0) | (labels >= vocab_size) | (labels == blank_id)).any()):
            bad = labels[(labels < 0) | (labels >= vocab_size) | (labels == blank_id)][0].item()
            raise ValueError(f"Label id {bad} is the blank ({blank_id}) or outside the vocabulary [0, {vocab_size}).")
    return padded, torch.as_tensor(lengths, dtype=torch.long)


def ctc_sequence_log_probs(
    log_probs: torch.Tensor,
    sequences: Sequence[Sequence[int]],
    lengths: torch.Tensor | None = None,
    blank_id: int = 0,
    *,
    image_index: Sequence[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """
    Exact CTC log-probabilities `log p(sequence | frames)` (the sum over all alignments), batched.

    Args:
        log_probs (`torch.Tensor` of shape `(B, T, V)`): Log-softmaxed frame scores.
        sequences (`Sequence[Sequence[int]]`): `N` label sequences (ids, no blank), e.g. lexicon words.
        lengths (`torch.Tensor` of shape `(B,)`, *optional*): Valid frames per image; default all `T`.
        blank_id (`int`, defaults to 0): Index of the CTC blank.
        image_index (`(N,)` ints, *optional*): The image each sequence is scored against. Default: every
            sequence against the single image when `B == 1`, else sequence `i` against image `i` (needs `N == B`).
            Many sequences against one image reuse its frames through a stride-0 view: no copy.

    Returns:
        `torch.Tensor` of shape `(N,)` (float32, float64 for float64 input; on the CPU): the
        log-probabilities; `-inf` for a sequence that cannot be aligned to its image's frames (more characters
        plus blank-separated repeats than frames).
    """
    log_probs, lengths, blank_id = _prepare_inputs(log_probs, lengths, blank_id)
    batch, _, vocab_size = log_probs.shape
    targets, target_lengths = _pad_sequences(sequences, vocab_size, blank_id)
    num_sequences = targets.shape[0]
    if image_index is None:
        if batch == 1:
            image_index = torch.zeros(num_sequences, dtype=torch.long)
        elif num_sequences == batch:
            image_index = torch.arange(batch)
        else:
            raise ValueError(
                f"Got {num_sequences} sequences for {batch} images: pass `image_index` to say which image each "
                "sequence belongs to (the default pairs them one to one, or scores all against a single image)."
            )
    image_index = torch.as_tensor(image_index, dtype=torch.long).reshape(-1).cpu()
    if image_index.shape[0] != num_sequences:
        raise ValueError(
            f"`image_index` must have {num_sequences} entries (one per sequence), got {image_index.shape[0]}."
        )
    if num_sequences == 0:
        return torch.empty(0, dtype=log_probs.dtype)
    if int(image_index.min()) < 0 or int(image_index.max()) >= batch:
        raise ValueError(f"`image_index` values must lie in [0, {batch}).")

    return _score_label_sequences(log_probs, lengths, targets, target_lengths, image_index, blank_id)


def _viterbi_alignments(
    log_probs: np.ndarray, image_index: np.ndarray, lengths: np.ndarray, sequences: list[list[int]], blank_id: int
) -> list[tuple[list[int], list[float]] | None]:
    """
    Batched Viterbi forced alignment of label sequences to frames.

    Args:
        log_probs: `(B, T, V)` float array. image_index: `(N,)` image of each sequence. lengths: `(B,)` frames.
        sequences: `N` label id lists.

    Returns:
        Per sequence `(char_frames, char_scores)` (see [`CTCHypothesis`]), or None when it cannot be aligned.
    """
    num_sequences = len(sequences)
    if num_sequences == 0:
        return []
    frames = log_probs.shape[1]
    max_label = max(len(sequence) for sequence in sequences)
    num_states = 2 * max_label + 1
    # Extended labels: blank, l1, blank, l2, ..., blank. States past a sequence's own end stay unreachable.
    extended = np.full((num_sequences, num_states), blank_id, dtype=np.int64)
    label_lengths = np.array([len(sequence) for sequence in sequences])
    for row, sequence in enumerate(sequences):
        extended[row, 1 : 2 * len(sequence) : 2] = sequence
    state = np.arange(num_states)
    reachable = state[None, :] < 2 * label_lengths[:, None] + 1
    # A character state may be entered from two states back unless that is the same character (needs a blank).
    can_skip = np.broadcast_to((state % 2 == 1) & (state >= 2), (num_sequences, num_states)).copy()
    can_skip[:, 2:] &= extended[:, 2:] != extended[:, :-2]

    emissions = log_probs[image_index[:, None, None], np.arange(frames)[None, :, None], extended[:, None, :]]
    emissions = np.where(reachable[:, None, :], emissions, -np.inf)  # (N, T, S)
    seq_frames = lengths[image_index]

    scores = np.full((num_sequences, num_states), -np.inf)
    scores[:, :2] = emissions[:, 0, :2] if frames else -np.inf
    backpointers = np.zeros((frames, num_sequences, num_states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    with np.errstate(invalid="ignore"):
        for t in range(1, frames):
            from_previous = np.full_like(scores, -np.inf)
            from_previous[:, 1:] = scores[:, :-1]
            from_skip = np.full_like(scores, -np.inf)
            from_skip[:, 2:] = np.where(can_skip[:, 2:], scores[:, :-2], -np.inf)
            stacked = np.stack([scores, from_previous, from_skip])
            choice = stacked.argmax(axis=0)
            backpointers[t] = choice
            updated = np.take_along_axis(stacked, choice[None], axis=0)[0] + emissions[:, t]
            active = (t < seq_frames)[:, None]  # shorter images keep their final scores
            scores = np.where(active, updated, scores)

    results = []
    for row in range(num_sequences):
        length, num_chars = int(seq_frames[row]), int(label_lengths[row])
        if length == 0:
            results.append(([], []) if num_chars == 0 else None)
            continue
        last = 2 * num_chars
        end_states = [last, last - 1] if num_chars else [last]
        end = max(end_states, key=lambda s: scores[row, s])
        if scores[row, end] == -np.inf:
            results.append(None)
            continue
        char_frames = [frames] * num_chars
        char_best = [-np.inf] * num_chars
        s = end
        for t in range(length - 1, -1, -1):
            if s % 2 == 1:
                char = s // 2
                char_frames[char] = t  # walking backwards, so the last write is the first frame
                char_best[char] = max(char_best[char], emissions[row, t, s])
            s -= int(backpointers[t, row, s])
        results.append((char_frames, [math.exp(value) for value in char_best]))
    return results


def ctc_force_align(
    log_probs: torch.Tensor, ids: Sequence[int], length: int | None = None, blank_id: int = 0
) -> tuple[list[int], list[float]]:
    """
    Viterbi forced alignment of one label sequence to one image's frames.

    Args:
        log_probs (`torch.Tensor` of shape `(T, V)`): Log-softmaxed frame scores of one image.
        ids (`Sequence[int]`): Label ids, no blank.
        length (`int`, *optional*): Valid frames; default `T`.
        blank_id (`int`, defaults to 0): Index of the CTC blank.

    Returns:
        `(char_frames, char_scores)`: per character the first frame of its most probable alignment, and the
        highest probability it has over the frames it occupies there.

    Raises:
        ValueError: when `ids` cannot be aligned to the frames.
    """
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 2:
        raise ValueError("`log_probs` must be a (T, V) tensor holding one image's frames.")
    batched, lengths, blank_id = _prepare_inputs(log_probs[None], None if length is None else [length], blank_id)
    _pad_sequences([ids], batched.shape[-1], blank_id)  # validates the ids
    (alignment,) = _viterbi_alignments(
        batched.numpy().astype(np.float64), np.zeros(1, dtype=np.int64), lengths.numpy(), [list(ids)], blank_id
    )
    if alignment is None:
        raise ValueError(f"The {len(ids)} labels cannot be aligned to {int(lengths[0])} frames.")
    return alignment


def _attach_alignments(
    nbests: list[list[CTCHypothesis]], log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int
):
    """Fills `char_frames` / `char_scores` of every hypothesis of every image's n-best list by forced alignment,
    one batched Viterbi pass."""
    pending = [(image, hypothesis) for image, nbest in enumerate(nbests) for hypothesis in nbest]
    pending = [(image, hypothesis) for image, hypothesis in pending if hypothesis.char_frames is None]
    if not pending:
        return
    alignments = _viterbi_alignments(
        log_probs.numpy().astype(np.float64),
        np.array([image for image, _ in pending], dtype=np.int64),
        lengths.numpy(),
        [hypothesis.ids for _, hypothesis in pending],
        blank_id,
    )
    for (_, hypothesis), alignment in zip(pending, alignments):
        if alignment is not None:
            hypothesis.char_frames, hypothesis.char_scores = alignment


# --------------------------------------------------------------------------------------------------------------
# Prefix beam search (free and lexicon-constrained)
# --------------------------------------------------------------------------------------------------------------


def _log_add(a: float, b: float) -> float:
    """`log(exp(a) + exp(b))` for Python floats (math, not numpy: this runs in the beam search's inner loop)."""
    if a < b:
        a, b = b, a
    if b == _NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


class _Trie:
    """Character trie over label-id sequences. Node 0 is the root; `word[node]` is the index of the sequence
    ending there, or -1."""

    __slots__ = ("children", "word")

    def __init__(self, sequences: Iterable[Sequence[int]]):
        self.children: list[dict[int, int]] = [{}]
        self.word: list[int] = [-1]
        for index, sequence in enumerate(sequences):
            node = 0
            for label in sequence:
                child = self.children[node].get(label)
                if child is None:
                    child = len(self.children)
                    self.children[node][label] = child
                    self.children.append({})
                    self.word.append(-1)
                node = child
            if self.word[node] < 0:
                self.word[node] = index


# Trie node of a beam prefix that has left the lexicon (only with an out-of-lexicon penalty).
_OUT_OF_LEXICON = -1


def _frame_label_candidates(
    log_probs: np.ndarray, blank_id: int, min_char_prob: float, max_chars_per_frame: int | None
) -> list[list[int]]:
    """Per frame of a `(T, V)` array, the non-blank labels worth extending a prefix with, most probable first:
    probability at least `min_char_prob`, at most `max_chars_per_frame` of them."""
    threshold = math.log(min_char_prob) if min_char_prob > 0 else -np.inf
    passing = log_probs >= threshold
    passing[:, blank_id] = False
    candidates: list[list[int]] = [[] for _ in range(log_probs.shape[0])]
    # Most frames of a trained model have no character past the cutoff: sort only the others.
    frames = np.flatnonzero(passing.any(axis=1))
    if frames.size == 0:
        return candidates
    order = np.argsort(-log_probs[frames], axis=1, kind="stable")
    keep = np.take_along_axis(passing[frames], order, axis=1)
    if max_chars_per_frame is not None:
        keep &= np.cumsum(keep, axis=1) <= max_chars_per_frame
    for frame, row_order, row_keep in zip(frames.tolist(), order, keep):
        candidates[frame] = row_order[row_keep].tolist()
    return candidates


def _prefix_beam_search(
    log_probs: np.ndarray,
    blank_id: int,
    beam_width: int,
    min_char_prob: float,
    max_chars_per_frame: int | None,
    trie: _Trie | None = None,
    oov_penalty: float | None = None,
    language_model: CharNgramLanguageModel | None = None,
    token_characters: Sequence[str] | None = None,
) -> dict[tuple[int, ...], list]:
    """
    CTC prefix beam search over one image's valid frames `(T, V)`, in log space.

    Each prefix keeps the log-probability of the frames so far ending in a blank and in its last character, so
    that paths collapsing to the same prefix are summed (unlike a beam over raw paths). With a `trie`, a prefix
    may only grow along the trie; with an `oov_penalty` too, it may leave the trie, and is then ranked
    `oov_penalty` per character lower. With a `language_model` (and `token_characters`, its
    `token_characters(vocab)`), prefixes are ranked by their CTC score plus the model's weighted score and length
    bonus (shallow fusion).

    Returns:
        The final beam: prefix -> `[log p ending in blank, log p ending in a character, trie node, language model
        state, language model bonus]` (the last two `None` and 0 without a language model).
    """
    rows = log_probs.tolist()  # Python floats: indexing numpy scalars in the inner loop is ~5x slower
    candidates = _frame_label_candidates(log_probs, blank_id, min_char_prob, max_chars_per_frame)
    children = trie.children if trie is not None else None
    allow_oov = oov_penalty is not None

    def rank(item) -> float:
        prefix, (blank_score, char_score, node, _, lm_bonus) = item
        total = _log_add(blank_score, char_score) + lm_bonus
        return total - oov_penalty * len(prefix) if node == _OUT_OF_LEXICON else total

    if language_model is not None:  # looked up once: a prefix is extended tens of thousands of times per batch
        lm_step, lm_weight = language_model.step, language_model.weight
        # The bonus offsets the cost of each scored character; a word boundary or an unmodelled character gets none.
        length_bonus = language_model.length_bonus
        lm_bonuses = [length_bonus if language_model.is_scored(character) else 0.0 for character in token_characters]

    initial_lm_state = language_model.initial_state if language_model is not None else None
    beam: dict[tuple[int, ...], list] = {(): [0.0, _NEG_INF, 0, initial_lm_state, 0.0]}
    for row, labels in zip(rows, candidates):
        blank_log_prob = row[blank_id]
        if not labels:
            # No character worth a new branch (most frames: blank or a held character). Every prefix only ends in a
            # blank or repeats its last character, so the beam keeps its prefixes and is updated in place; the same
            # arithmetic as below with nothing to add the scores to.
            for prefix, entry in beam.items():
                char_score = entry[1]
                entry[0] = _log_add(entry[0], char_score) + blank_log_prob
                entry[1] = char_score + row[prefix[-1]] if prefix else _NEG_INF
            continue
        extended: dict[tuple[int, ...], list] = {}
        for prefix, (blank_score, char_score, node, lm_state, lm_bonus) in beam.items():
            total = _log_add(blank_score, char_score)
            last = prefix[-1] if prefix else -1
            # The last character repeated without a blank collapses into the same prefix. Done whether or not the
            # label survived this frame's pruning: it is no extra branch and keeps scores tight.
            held_score = char_score + row[last] if last >= 0 else _NEG_INF
            entry = extended.get(prefix)
            if entry is None:  # the usual case; log-adding to the -inf of a fresh entry would change nothing
                extended[prefix] = [total + blank_log_prob, held_score, node, lm_state, lm_bonus]
            else:  # a shorter prefix of the beam grew into this one first
                entry[0] = _log_add(entry[0], total + blank_log_prob)
                entry[1] = _log_add(entry[1], held_score)
            for label in labels:
                if children is None:
                    child = 0
                else:
                    child = children[node].get(label) if node != _OUT_OF_LEXICON else None
                    if child is None:
                        if not allow_oov:
                            continue
                        child = _OUT_OF_LEXICON
                # A repeat of the last character only starts a new one after a blank.
                score = (blank_score if label == last else total) + row[label]
                grown = prefix + (label,)
                entry = extended.get(grown)
                if entry is None:
                    entry = extended[grown] = [_NEG_INF, score, child, lm_state, lm_bonus]
                    if language_model is not None and token_characters[label]:  # punctuation and the like: unscored
                        entry[3], log_prob = lm_step(lm_state, token_characters[label])
                        entry[4] = lm_bonus + lm_weight * log_prob + lm_bonuses[label]
                else:
                    entry[1] = _log_add(entry[1], score)
        if len(extended) > beam_width:
            # What heapq.nlargest returns (ties in insertion order), faster for the few dozen prefixes of a frame.
            extended = dict(sorted(extended.items(), key=rank, reverse=True)[:beam_width])
        beam = extended
    return beam


def _check_beam_options(beam_width, top_k, min_char_prob, max_chars_per_frame) -> tuple[int, int]:
    beam_width = _check_positive_int("beam_width", beam_width)
    top_k = beam_width if top_k is None else _check_positive_int("top_k", top_k)
    if not 0.0 <= min_char_prob < 1.0:
        raise ValueError(f"`min_char_prob` must lie in [0, 1), got {min_char_prob!r}.")
    if max_chars_per_frame is not None:
        _check_positive_int("max_chars_per_frame", max_chars_per_frame)
    return beam_width, top_k


def ctc_beam_search(
    log_probs: torch.Tensor,
    lengths: torch.Tensor | None = None,
    blank_id: int = 0,
    *,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    top_k: int | None = None,
    min_char_prob: float = 1e-3,
    max_chars_per_frame: int | None = None,
    return_char_frames: bool = False,
    language_model: CharNgramLanguageModel | None = None,
    vocab: Sequence[str] | Mapping[str, int] | None = None,
) -> list[list[CTCHypothesis]]:
    """
    CTC prefix beam search (Graves 2012; Hannun et al. 2014), lexicon-free, optionally fused with a character
    language model.

    Args:
        log_probs (`torch.Tensor` of shape `(B, T, V)`): Log-softmaxed frame scores.
        lengths (`torch.Tensor` of shape `(B,)`, *optional*): Valid frames per image; default all `T`.
        blank_id (`int`, defaults to 0): Index of the CTC blank.
        beam_width (`int`, defaults to 10): Prefixes kept after each frame.
        top_k (`int`, *optional*): Hypotheses returned per image; default `beam_width`.
        min_char_prob (`float`, defaults to 1e-3): Per frame, only characters at least this probable extend a
            prefix (speed: a trained model leaves one or two per frame). 0 disables the cutoff.
        max_chars_per_frame (`int`, *optional*): Per frame, at most this many characters extend a prefix.
        return_char_frames (`bool`, defaults to False): Fill `char_frames` / `char_scores` by forced alignment.
        language_model ([`~hf_crnn.language_model.CharNgramLanguageModel`], *optional*): Ranks prefixes by
            `log p(ids | frames) + weight * log p_lm(text) + length_bonus * (scored characters)`, the end of the
            word included in `p_lm` (shallow fusion). With `top_k=1`, images whose greedy reading is at least
            `language_model.greedy_confidence_cutoff` confident keep that reading without a search.
        vocab (*optional*): id -> token sequence or token -> id mapping; needed with a `language_model` (default
            [`DEFAULT_VOCAB`]).

    Returns:
        `list[list[CTCHypothesis]]`: per image up to `top_k` hypotheses, best first (by the fused rank with a
        language model), with `ids` and `score` (log-prob summed over the paths the beam kept; the exact
        `log p(ids | frames)` when the beam and the cutoffs pruned nothing; never including the language model).
    """
    log_probs, lengths, blank_id = _prepare_inputs(log_probs, lengths, blank_id)
    beam_width, top_k = _check_beam_options(beam_width, top_k, min_char_prob, max_chars_per_frame)
    token_characters = None
    if language_model is not None:
        if not isinstance(language_model, CharNgramLanguageModel):
            raise ValueError(
                f"`language_model` must be a CharNgramLanguageModel, got {type(language_model).__name__}."
            )
        id_to_token = _normalise_vocab(DEFAULT_VOCAB if vocab is None else vocab)
        if len(id_to_token) != log_probs.shape[-1]:
            raise ValueError(f"`vocab` has {len(id_to_token)} tokens but `log_probs` has V={log_probs.shape[-1]}.")
        token_characters = language_model.token_characters(id_to_token)
    # A sure greedy reading is kept without a search (the language model's cutoff; see CharNgramLanguageModel).
    greedy, kept_greedy = None, {}
    if language_model is not None and language_model.greedy_confidence_cutoff is not None and top_k == 1:
        cutoff = language_model.greedy_confidence_cutoff
        greedy = _greedy_decode(log_probs, lengths, blank_id)
        kept_greedy = {image: hypothesis for image, hypothesis in enumerate(greedy) if hypothesis.confidence >= cutoff}
    frames_np = log_probs.numpy().astype(np.float64)
    results = []
    for image, length in enumerate(lengths.tolist()):
        if image in kept_greedy:
            results.append([kept_greedy[image]])
            continue
        beam = _prefix_beam_search(
            frames_np[image, :length],
            blank_id,
            beam_width,
            min_char_prob,
            max_chars_per_frame,
            language_model=language_model,
            token_characters=token_characters,
        )
        ranked = []  # (rank, log p, prefix)
        for prefix, (blank_score, char_score, _, lm_state, lm_bonus) in beam.items():
            score = _log_add(blank_score, char_score)
            if language_model is not None:
                lm_bonus += language_model.weight * language_model.end_log_prob(lm_state)
            ranked.append((score + lm_bonus, score, prefix))
        ranked.sort(key=lambda entry: -entry[0])
        # The greedy pass, when the cutoff ran one, already scored the best path: `ctc_decode` need not again.
        best_path_score = greedy[image].score if greedy is not None else None
        results.append(
            [CTCHypothesis(list(prefix), score, best_path_score=best_path_score) for _, score, prefix in ranked[:top_k]]
        )
    if return_char_frames:
        _attach_alignments(results, log_probs, lengths, blank_id)
    return results


# --------------------------------------------------------------------------------------------------------------
# Lexicons
# --------------------------------------------------------------------------------------------------------------


def read_word_list(path: str | os.PathLike) -> list[str]:
    """
    Reads a word list, one word per line (UTF-8 with or without BOM, or UTF-16 with BOM); surrounding whitespace is
    stripped and empty lines skipped. A file that cannot be decoded, or holds no word, raises a `ValueError` naming
    it (see `file_utils.read_word_list_file`).
    """
    return read_word_list_file(path)


class Lexicon:
    """
    A word list prepared once for lexicon-based decoding and reused across images and calls.

    Words are matched in the model's label space: each word is turned into label ids through `vocab` (case-folded
    first when `lowercase`); words with characters outside the vocabulary are skipped (counted in `skipped`, one
    warning), words that fold to the same ids are kept once, with the first spelling. Results return the
    lexicon's original spelling. On a cased model (upper- and lower-case classes), case-insensitive matching also
    merges each character's two classes in the frame scores (`p('a') + p('A')`, see [`fold_case`]), so a word scores
    the same whichever case the image shows.

    Args:
        words (`Iterable[str]`): The words. Empty strings are ignored.
        vocab (`Sequence[str]` or `Mapping[str, int]`, *optional*): id -> token sequence, or token -> id mapping
            such as `tokenizer.get_vocab()`; single-character tokens other than the blank are the characters.
            Default [`DEFAULT_VOCAB`] (the CRNNTokenizer default: blank, 0-9, a-z).
        blank_id (`int`, defaults to 0): Index of the CTC blank in `vocab`.
        lowercase (`bool`, *optional*, defaults to True): Match case-insensitively. Lexicons rarely share the
            image's case (benchmark lexicons are upper case, dictionaries lower case), so this is the default for
            every model; `False` matches a cased model's classes exactly (and skips words a lowercase model cannot
            spell).

    Attributes:
        words (`list[str]`): Kept words, original spelling, in input order; `lexicon_index` refers to these.
        skipped (`list[str]`): Words dropped for characters outside the vocabulary.
        vocab (`tuple[str, ...]`): id -> token. blank_id (`int`). lowercase (`bool`).
    """

    def __init__(
        self,
        words: Iterable[str],
        vocab: Sequence[str] | Mapping[str, int] | None = None,
        *,
        blank_id: int = 0,
        lowercase: bool | None = None,
    ):
        self.vocab = _normalise_vocab(DEFAULT_VOCAB if vocab is None else vocab)
        self.blank_id = _check_blank_id(blank_id, len(self.vocab))
        char_to_id: dict[str, int] = {}
        for token_id, token in enumerate(self.vocab):
            if len(token) == 1 and token_id != self.blank_id:
                if token in char_to_id:
                    raise ValueError(
                        f"`vocab` holds the character {token!r} twice (ids {char_to_id[token]} and {token_id})."
                    )
                char_to_id[token] = token_id
        self.lowercase = True if lowercase is None else bool(lowercase)
        # Word character -> label id, and the (class, class it merges into) pairs of a cased vocabulary.
        word_char_to_id, self._case_merges = _case_folding(char_to_id) if self.lowercase else (char_to_id, ())

        if isinstance(words, (str, bytes, os.PathLike)):
            raise TypeError("`words` must be an iterable of words; use `load_lexicon(path)` for a word-list file.")
        self.words: list[str] = []
        self.skipped: list[str] = []
        sequences: list[tuple[int, ...]] = []
        seen: set[tuple[int, ...]] = set()
        for word in words:
            if not isinstance(word, str):
                raise TypeError(f"Lexicon entries must be strings, got {type(word).__name__}.")
            if not word:
                continue
            try:
                ids = tuple(word_char_to_id[char] for char in word)
            except KeyError:
                self.skipped.append(word)
                continue
            if ids not in seen:
                seen.add(ids)
                self.words.append(word)
                sequences.append(ids)
        if self.skipped:
            warnings.warn(
                f"Lexicon: skipped {len(self.skipped)} word(s) with characters outside the vocabulary, e.g. "
                f"{self.skipped[:3]}.",
                stacklevel=2,
            )
        if not self.words:
            raise ValueError(
                "The lexicon is empty"
                + (f": all {len(self.skipped)} words use characters outside the vocabulary." if self.skipped else ".")
            )
        self._build_index(sequences)

    def _build_index(self, sequences: list[tuple[int, ...]]) -> None:
        """Precomputes everything decoding needs per word, as arrays over the lexicon (N words)."""
        num_words = len(sequences)
        self._sequence_lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
        width = int(self._sequence_lengths.max())
        flat = np.fromiter((label for sequence in sequences for label in sequence), dtype=np.int64)
        word_of_label = np.repeat(np.arange(num_words), self._sequence_lengths)
        position = np.arange(flat.size) - np.repeat(
            np.cumsum(self._sequence_lengths) - self._sequence_lengths, self._sequence_lengths
        )
        self._ids = np.full((num_words, width), self.blank_id, dtype=np.int32)  # (N, L) blank-padded
        self._ids[word_of_label, position] = flat
        valid = np.arange(width)[None, :] < self._sequence_lengths[:, None]
        # CTC needs one frame per character plus one blank between equal neighbours.
        repeats = (self._ids[:, 1:] == self._ids[:, :-1]) & valid[:, 1:]
        self._min_frames = self._sequence_lengths + repeats.sum(axis=1)
        # (N, L): True at the first occurrence of each distinct character, so per-word sums over the word's
        # character set are gathers over its ids (memory O(N L), not O(N V): vocabularies can have thousands).
        self._first_occurrence = valid.copy()
        for column in range(1, width):
            self._first_occurrence[:, column] &= ~(self._ids[:, :column] == self._ids[:, column, None]).any(axis=1)
        # Label ids as one code point each: the strings rapidfuzz compares (case folding is already applied).
        self._keys = [_label_string(sequence) for sequence in sequences]
        self._trie: _Trie | None = None

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Lexicon({len(self.words)} words, lowercase={self.lowercase}, skipped={len(self.skipped)})"

    def ids(self, index: int) -> list[int]:
        """Label ids of `words[index]`."""
        return self._ids[index, : self._sequence_lengths[index]].tolist()

    @property
    def trie(self) -> _Trie:
        """Character trie of the words' label ids, built on first use (lexicon-constrained beam search)."""
        if self._trie is None:
            self._trie = _Trie(self.ids(index) for index in range(len(self.words)))
        return self._trie

    def _check_compatible(self, vocab: tuple[str, ...], blank_id: int, vocab_size: int) -> None:
        if vocab != self.vocab:
            raise ValueError("The Lexicon was built for a different vocabulary than the one passed to decoding.")
        if blank_id != self.blank_id:
            raise ValueError(
                f"The Lexicon was built with blank_id={self.blank_id}, decoding uses blank_id={blank_id}."
            )
        if len(self.vocab) != vocab_size:
            raise ValueError(
                f"The Lexicon's vocabulary has {len(self.vocab)} tokens but `log_probs` has V={vocab_size}; build it "
                "with the model's vocabulary (e.g. `tokenizer.get_vocab()`)."
            )

    def _search(
        self,
        queries: list[list[int]],
        frame_counts: list[int],
        delta: int | None,
        nearest: dict[int, np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """
        Per query (label ids), the indices of the words that fit its image's frames (`frame_counts`) and lie within
        `delta` edits of it; `delta=None`: the fitting words at the smallest edit distance.

        With a `delta` and a `nearest` dict, also fills `nearest[position]` with the fitting words at the smallest
        edit distance for each query (by position in `queries`) that has no fitting word within `delta`, when the
        distances computed are exact (rapidfuzz; see [`_edit_distances`]): the nearest-word fallback then needs no
        second pass over the lexicon.
        """
        results = []
        exact = delta is None or _rapidfuzz_process is not None
        for position, (distances, frames) in enumerate(zip(_edit_distances(queries, self, delta), frame_counts)):
            if delta is None:
                found = self._nearest_fitting(distances, frames)
            else:
                found = np.flatnonzero(distances <= delta)
                found = found[self._min_frames[found] <= frames]
                if nearest is not None and exact and not found.size:
                    nearest[position] = self._nearest_fitting(distances, frames)
            results.append(found)
        return results

    def _nearest_fitting(self, distances: np.ndarray, frames: int) -> np.ndarray:
        """Indices of the words that fit `frames` frames at the smallest of the (exact) `distances`, or none."""
        distances = np.where(self._min_frames <= frames, distances, np.iinfo(np.int32).max)
        smallest = distances.min()
        return np.flatnonzero(distances == smallest) if smallest < np.iinfo(np.int32).max else np.empty(0, int)


def _case_folding(char_to_id: Mapping[str, int]) -> tuple[dict[str, int], tuple[tuple[int, int], ...]]:
    """
    Case-insensitive spelling for a vocabulary (character -> id, blank excluded).

    Returns:
        `(word_char_to_id, merges)`: every character of the vocabulary, and its other case, maps to the id of the
        character's lower-case form when the vocabulary has it (else its own id), so "Hello" and "HELLO" spell the
        same ids on any model; `merges` lists the `(upper-case class, lower-case class)` pairs of a cased vocabulary,
        whose frame scores [`fold_case`] adds together. Empty for a lowercase (or caseless) vocabulary.
    """
    word_char_to_id: dict[str, int] = {}
    merges = []
    for char, token_id in char_to_id.items():
        folded_id = char_to_id.get(char.lower(), token_id)
        word_char_to_id[char] = folded_id
        if folded_id != token_id:
            merges.append((token_id, folded_id))
    for char in char_to_id:  # a case the vocabulary lacks reads as the one it has ('A' on a 0-9a-z model)
        for variant in (char.lower(), char.upper()):
            if len(variant) == 1:
                word_char_to_id.setdefault(variant, word_char_to_id[char])
    return word_char_to_id, tuple(merges)


def fold_case(log_probs: torch.Tensor, lexicons: Sequence[Lexicon]) -> torch.Tensor:
    """
    `(B, T, V)` log-probabilities with, for each image whose lexicon matches case-insensitively on a cased model,
    every upper-case class's probability added to its lower-case class (`log(p('a') + p('A'))`) and the upper-case
    class set to -inf: the frames' distribution over case-folded characters, in which lexicon words are spelled.
    Returns `log_probs` itself when no image needs it.
    """
    images_of: dict[int, tuple[Lexicon, list[int]]] = {}  # by id(): a shared lexicon is folded in one step
    for image, lexicon in enumerate(lexicons):
        if lexicon._case_merges:
            images_of.setdefault(id(lexicon), (lexicon, []))[1].append(image)
    if not images_of:
        return log_probs
    folded = log_probs.clone()
    for lexicon, images in images_of.values():
        rows = torch.tensor(images, device=log_probs.device)
        frames = log_probs[rows]  # (b, T, V)
        merged = frames.clone()
        for upper, lower in _unique_targets(lexicon._case_merges):  # each step writes distinct lower-case classes
            merged[:, :, lower] = torch.logaddexp(merged[:, :, lower], frames[:, :, upper])
        merged[:, :, [upper for upper, _ in lexicon._case_merges]] = -math.inf
        folded[rows] = merged
    return folded


def _unique_targets(merges: Sequence[tuple[int, int]]) -> list[tuple[list[int], list[int]]]:
    """Splits `(source, target)` pairs into steps of index lists whose targets are distinct (two characters such as
    'K' and the Kelvin sign can fold onto one class; an indexed add would then keep only one of them)."""
    steps: list[tuple[list[int], list[int]]] = []
    for source, target in merges:
        for sources, targets in steps:
            if target not in targets:
                sources.append(source)
                targets.append(target)
                break
        else:
            steps.append(([source], [target]))
    return steps


def _label_string(labels: Iterable[int]) -> str:
    return "".join(map(chr, labels))


# Queries per rapidfuzz call: bounds the (queries, words) distance matrix (64 x 100k bytes) while still amortising
# rapidfuzz's per-call conversion of the word list, which dominates a one-query call.
_EDIT_DISTANCE_QUERY_CHUNK = 64


def _edit_distances(queries: list[list[int]], lexicon: Lexicon, cutoff: int | None):
    """Yields, per query (label ids), the Levenshtein distances `(N,)` to every lexicon word; with a `cutoff`,
    distances above it may be reported as any value above it. rapidfuzz when installed, else vectorised numpy.

    rapidfuzz's distances are always exact: its `cdist` runs several queries at once through SIMD and costs the same
    with or without a `score_cutoff` (measured on the 73k-word `wamerican` list, batches of 32-64 queries: within
    noise; for one query a cutoff of 3 was faster only for queries far longer than the words), so the exact rows cost
    nothing extra and [`Lexicon._search`] reuses them for the nearest-word fallback. numpy uses the cutoff to skip
    words whose length alone puts them beyond it."""
    if _rapidfuzz_process is not None:
        for start in range(0, len(queries), _EDIT_DISTANCE_QUERY_CHUNK):
            chunk = queries[start : start + _EDIT_DISTANCE_QUERY_CHUNK]
            yield from _rapidfuzz_process.cdist(
                [_label_string(query) for query in chunk],
                lexicon._keys,
                scorer=_rapidfuzz_levenshtein.distance,
                dtype=np.int32,
                workers=1,
            )
        return
    for query in queries:
        # Words whose length differs by more than the cutoff are further away than it; skip them.
        rows = (
            np.arange(len(lexicon))
            if cutoff is None
            else np.flatnonzero(np.abs(lexicon._sequence_lengths - len(query)) <= cutoff)
        )
        distances = np.full(len(lexicon), np.iinfo(np.int32).max, dtype=np.int64)
        if rows.size:
            word_lengths = lexicon._sequence_lengths[rows]
            words = lexicon._ids[rows, : int(word_lengths.max())]
            distances[rows] = _levenshtein_numpy(np.asarray(query, dtype=np.int64), words, word_lengths)
        yield distances


def _levenshtein_numpy(query: np.ndarray, words: np.ndarray, word_lengths: np.ndarray) -> np.ndarray:
    """
    Levenshtein distances from `query` `(Q,)` to each row of `words` `(N, L)` (right-padded, true lengths `(N,)`),
    vectorised over words: one pass per query character. Within a DP row the insertion chain
    `row[j] = min(candidate[j], row[j-1] + 1)` is a running minimum of `candidate[j] - j`, shifted back by `j`.
    """
    num_words, width = words.shape
    offsets = np.arange(width + 1)
    row = np.broadcast_to(offsets, (num_words, width + 1)).copy()
    for i, label in enumerate(query.tolist(), start=1):
        candidate = np.minimum(row[:, 1:] + 1, row[:, :-1] + (words != label))  # deletion, substitution
        candidate = np.concatenate([np.full((num_words, 1), i), candidate], axis=1)
        row = np.minimum.accumulate(candidate - offsets, axis=1) + offsets
    return row[np.arange(num_words), word_lengths]


@functools.lru_cache(maxsize=8)
def _load_lexicon_file(path: str, _modified_ns: int, _size: int, vocab: tuple[str, ...], blank_id: int, lowercase):
    # Keyed on modification time and size, so pipelines that pass the same path on every call build it once.
    words = read_word_list(path)
    try:
        return Lexicon(words, vocab, blank_id=blank_id, lowercase=lowercase)
    except ValueError as error:  # e.g. no word fits the vocabulary: say which file
        raise ValueError(f"The lexicon file {path}: {error}") from None


def load_lexicon(
    source: Lexicon | Iterable[str] | str | os.PathLike,
    vocab: Sequence[str] | Mapping[str, int] | None = None,
    *,
    blank_id: int = 0,
    lowercase: bool | None = None,
) -> Lexicon:
    """
    A [`Lexicon`] from a word list, a text file (one word per line, UTF-8) or an existing `Lexicon`.

    Args:
        source: A `Lexicon` (returned as is after checking it matches `vocab`), an iterable of words, or a path.
            A plain `str` is always a path. Files are cached by path, modification time and size.
        vocab, blank_id, lowercase: As for [`Lexicon`].
    """
    vocab = _normalise_vocab(DEFAULT_VOCAB if vocab is None else vocab)
    if isinstance(source, Lexicon):
        source._check_compatible(vocab, _check_blank_id(blank_id, len(vocab)), len(vocab))
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        if not os.path.isfile(path):
            raise ValueError(f"Lexicon file not found: {path}")
        stat = os.stat(path)
        return _load_lexicon_file(path, stat.st_mtime_ns, stat.st_size, vocab, blank_id, lowercase)
    return Lexicon(source, vocab, blank_id=blank_id, lowercase=lowercase)


def _is_per_image(lexicon) -> bool:
    """A list/tuple of lexicons (not of words) is one lexicon per image."""
    return isinstance(lexicon, (list, tuple)) and len(lexicon) > 0 and not isinstance(lexicon[0], str)


def _resolve_lexicons(lexicon, batch: int, vocab, blank_id: int, vocab_size: int, lowercase) -> list[Lexicon]:
    """One `Lexicon` per image from any accepted `lexicon` argument; shared inputs are built once."""
    if lexicon is None:
        raise ValueError("This decoding method needs a `lexicon`.")
    if vocab is None:
        # A prebuilt Lexicon brings its vocabulary; anything else gets the CRNN default, checked against V below.
        first = lexicon[0] if _is_per_image(lexicon) else lexicon
        vocab = first.vocab if isinstance(first, Lexicon) else DEFAULT_VOCAB
    vocab = _normalise_vocab(vocab)
    if len(vocab) != vocab_size:
        raise ValueError(
            f"`vocab` has {len(vocab)} tokens but `log_probs` has V={vocab_size}; pass the model's vocab."
        )
    sources = list(lexicon) if _is_per_image(lexicon) else [lexicon] * batch
    if len(sources) != batch:
        raise ValueError(f"Got {len(sources)} per-image lexicons for a batch of {batch} images.")
    built: dict[int, Lexicon] = {}  # by id(): `[words] * B` builds once
    for source in sources:
        if id(source) not in built:
            built[id(source)] = load_lexicon(source, vocab, blank_id=blank_id, lowercase=lowercase)
    return [built[id(source)] for source in sources]


# --------------------------------------------------------------------------------------------------------------
# Lexicon-based transcription (the paper's)
# --------------------------------------------------------------------------------------------------------------


def _word_upper_bounds(lexicon: Lexicon, words: np.ndarray, probs: np.ndarray, blank_id: int) -> np.ndarray:
    """
    Cheap upper bounds on `log p(word | frames)` for lexicon words `(n,)` given one image's frame probabilities
    `(T, V)` (float64). Every path that collapses to a word (a) uses only the word's characters `S` and the blank,
    and (b) emits each character of `S` somewhere. So `p(word) <= P(a) * P(b | a)`, and both factors have bounds
    that are sums of per-label terms over the labels in or out of `S`, i.e. one gather over the words' ids:

    (a) `log P(a) = sum_t log(1 - x_t)`, `x_t` the mass of labels outside `S`. Split `x_t` into the frame's most
        probable non-blank label `top_t` (when outside `S`) and the rest `r_t`; concavity of the log gives
        `log(1 - x_t) <= [top_t not in S] log(1 - y_t(top_t)) - r_t`.
    (b) Given (a), frames stay independent with probabilities renormalised over `S` and the blank, at most
        `y_t(c) / (y_t(c) + y_t(blank))` for `c`. Label indicators of independent categorical draws are negatively
        associated (Joag-Dev & Proschan 1983), so `P(b | a) <= prod_{c in S} (1 - prod_t (1 - that ratio))`.

    A trained model is confident, so the bound is tight for plausible words and far below for the rest: exact
    scoring in decreasing bound order can stop early without changing the result. Only elementwise numpy (no
    BLAS), so nothing here waits on a thread pool.
    """
    vocab_size = probs.shape[1]
    labels = np.arange(vocab_size)
    top = np.where(labels == blank_id, -1.0, probs).argmax(axis=1)  # (T,)
    is_top = labels[None, :] == top[:, None]  # (T, V)
    # (a) log(1 - y_t(top)) as the log of the other labels' mass: no cancellation when y_t(top) is close to 1.
    other_mass = np.where(is_top, 0.0, probs).sum(axis=1)
    cost_if_missing = np.bincount(top, weights=np.log(np.maximum(other_mass, _TINY_PROB)), minlength=vocab_size)
    cost_if_missing -= np.where(is_top, 0.0, probs).sum(axis=0)  # the r_t part
    # (b) a zero denominator (both underflow) counts as ratio 1, which only loosens the bound.
    pair_mass = probs + probs[:, blank_id : blank_id + 1]
    ratio = np.divide(probs, pair_mass, out=np.ones_like(probs), where=pair_mass > 0)
    with np.errstate(divide="ignore"):
        log_never = np.log1p(-np.minimum(ratio, 1.0)).sum(axis=0)  # (V,)
    cost_if_used = np.log(np.maximum(-np.expm1(log_never), _TINY_PROB))
    cost_if_missing[blank_id] = cost_if_used[blank_id] = 0.0
    # sum_{c not in S} missing[c] + sum_{c in S} used[c] = sum_c missing[c] + sum_{c in S} (used[c] - missing[c])
    swap = (cost_if_used - cost_if_missing)[lexicon._ids[words]]  # (n, L)
    return cost_if_missing.sum() + np.where(lexicon._first_occurrence[words], swap, 0.0).sum(axis=1)


class _WordSearch:
    """
    Branch and bound for one image's exact top-k over candidate lexicon words: candidates are scored in decreasing
    upper-bound order, in growing chunks, until no unscored bound can beat the k-th best exact score.
    """

    def __init__(self, lexicon: Lexicon, words: np.ndarray, probs: np.ndarray, blank_id: int, top_k: int):
        bounds = _word_upper_bounds(lexicon, words, probs, blank_id) if words.size else np.empty(0)
        permutation = np.argsort(-bounds, kind="stable")
        self.lexicon, self.top_k = lexicon, top_k
        self.words, self.bounds = words[permutation], bounds[permutation]
        self.position = 0
        self.chunk = top_k + 1  # a confident model's best word is nearly always the one with the best bound
        self.scored: list[tuple[float, int]] = []  # (-log p, word index): sorts best first, ties by lexicon order

    def next_words(self) -> np.ndarray | None:
        """The next candidates worth scoring exactly, or None when the top-k is settled."""
        threshold = _NEG_INF
        if len(self.scored) >= self.top_k:
            kth_best = -self.scored[self.top_k - 1][0]
            threshold = kth_best - _BOUND_SLACK * (1.0 + abs(kth_best))
        if self.position >= len(self.words) or self.bounds[self.position] < threshold:
            return None
        end = self.position + self.chunk
        words = self.words[self.position : end][self.bounds[self.position : end] >= threshold]
        self.position, self.chunk = end, self.chunk * 4
        return words

    def add_scores(self, words: np.ndarray, log_likelihoods: list[float]) -> None:
        self.scored.extend(zip((-score for score in log_likelihoods), words.tolist()))
        self.scored.sort()
        del self.scored[self.top_k :]

    def result(self) -> list[tuple[int, float]]:
        """`(word index, log p)` best first; words that cannot be aligned (log p = -inf) left out."""
        return [(index, -negative) for negative, index in self.scored if negative != math.inf]


def _top_words(
    lexicons: list[Lexicon],
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    candidates: dict[int, np.ndarray],
    top_k: int,
    blank_id: int,
) -> dict[int, list[tuple[int, float]]]:
    """
    Per image in `candidates` (image -> candidate word indices), the `top_k` candidates under exact CTC scoring as
    `(word index, log p)`, best first: the same as scoring every candidate exactly. All images advance their
    branch and bound together, so each round is a single CTC call for the whole batch.

    log_probs: `(B, T, V)` float32 CPU; lengths: `(B,)`.
    """
    probs = np.exp(log_probs.numpy().astype(np.float64))  # numpy: single-threaded, no thread-pool wake-ups
    frame_counts = lengths.tolist()
    searches = {
        image: _WordSearch(lexicons[image], words, probs[image, : frame_counts[image]], blank_id, top_k)
        for image, words in candidates.items()
    }
    while True:
        requests = [(image, search.next_words()) for image, search in searches.items()]
        requests = [(image, words) for image, words in requests if words is not None]
        if not requests:
            break
        counts = [words.size for _, words in requests]
        word_lengths = [searches[image].lexicon._sequence_lengths[words] for image, words in requests]
        targets = np.zeros((sum(counts), max(int(lengths_.max()) for lengths_ in word_lengths)), dtype=np.int64)
        row = 0
        for (image, words), count in zip(requests, counts):
            piece = searches[image].lexicon._ids[words, : targets.shape[1]]
            targets[row : row + count, : piece.shape[1]] = piece
            row += count
        scores = _score_label_sequences(
            log_probs,
            lengths,
            torch.from_numpy(targets),
            torch.from_numpy(np.concatenate(word_lengths)),
            torch.from_numpy(np.repeat([image for image, _ in requests], counts)),
            blank_id,
        ).tolist()
        row = 0
        for (image, words), count in zip(requests, counts):
            searches[image].add_scores(words, scores[row : row + count])
            row += count
    return {image: search.result() for image, search in searches.items()}


def _group_by_lexicon(lexicons: list[Lexicon], images: Iterable[int]) -> list[tuple[Lexicon, list[int]]]:
    """`images` grouped by the (shared) Lexicon object they use, so each lexicon is searched once per batch."""
    groups: dict[int, tuple[Lexicon, list[int]]] = {}
    for image in images:
        groups.setdefault(id(lexicons[image]), (lexicons[image], []))[1].append(image)
    return list(groups.values())


def ctc_lexicon_decode(
    log_probs: torch.Tensor,
    lexicon,
    lengths: torch.Tensor | None = None,
    *,
    blank_id: int = 0,
    vocab: Sequence[str] | Mapping[str, int] | None = None,
    delta: int | None = 3,
    top_k: int = 1,
    exhaustive_max_words: int = 2000,
    fallback: str = "nearest",
    lowercase: bool | None = None,
    return_char_frames: bool = False,
) -> list[CTCDecoding]:
    """
    Lexicon-based transcription (CRNN paper, section 2.3): per image the lexicon word `l` maximising the exact
    CTC probability `p(l | frames)`.

    Lexicons of at most `exhaustive_max_words` words (or any lexicon with `delta=None`) are searched in full.
    Larger ones are searched over the paper's candidate set: the words within `delta` edits of the lexicon-free
    (greedy) transcription, found with rapidfuzz over the words of compatible length (numpy when rapidfuzz is
    missing). Either way the answer equals scoring every candidate exactly; upper bounds let it score only a few.

    Args:
        log_probs (`torch.Tensor` of shape `(B, T, V)`): Log-softmaxed frame scores.
        lexicon: A [`Lexicon`], a list of words, a path to a word list (one word per line), or a list of `B` of
            those (one lexicon per image). Build a `Lexicon` once to reuse it across calls.
        lengths (`torch.Tensor` of shape `(B,)`, *optional*): Valid frames per image; default all `T`.
        blank_id (`int`, defaults to 0): Index of the CTC blank.
        vocab (*optional*): id -> token sequence or token -> id mapping of the model; needed (unless the lexicon
            is a prebuilt `Lexicon`) to spell the words in label ids. Default [`DEFAULT_VOCAB`].
        delta (`int`, *optional*, defaults to 3): Edit-distance radius of the candidate search for large lexicons.
        top_k (`int`, defaults to 1): Lexicon words returned per image, best first.
        exhaustive_max_words (`int`, defaults to 2000): Lexicons up to this size skip the edit-distance search.
        fallback (`str`, defaults to `"nearest"`): When no word within `delta` fits the frames: `"nearest"` scores
            the words at the smallest edit distance instead, `"greedy"` returns the lexicon-free transcription.
            Either way `lexicon_fallback` is set.
        lowercase (`bool`, *optional*): Case-fold lexicon words (see [`Lexicon`]).
        return_char_frames (`bool`, defaults to False): Fill `char_frames` / `char_scores` by forced alignment.

    Returns:
        `list[CTCDecoding]`, one per image; hypotheses carry the lexicon spelling as `text` and `lexicon_index`.
    """
    log_probs, lengths, blank_id = _prepare_inputs(log_probs, lengths, blank_id)
    batch, _, vocab_size = log_probs.shape
    top_k = _check_positive_int("top_k", top_k)
    delta = None if delta is None else _check_positive_int("delta", delta, minimum=0)
    exhaustive_max_words = _check_positive_int("exhaustive_max_words", exhaustive_max_words, minimum=0)
    if fallback not in ("nearest", "greedy"):
        raise ValueError(f"`fallback` must be 'nearest' or 'greedy', got {fallback!r}.")
    lexicons = _resolve_lexicons(lexicon, batch, vocab, blank_id, vocab_size, lowercase)
    model_log_probs = log_probs
    log_probs = fold_case(log_probs, lexicons)  # the greedy query below is then case-folded too
    greedy = _greedy_decode(log_probs, lengths, blank_id)
    log_probs = log_probs.float()  # fp32 CTC scores are exact; the bounds use float64 themselves
    frame_counts = lengths.tolist()

    def search(images: list[int], radius: int | None, nearest: dict | None = None) -> dict[int, np.ndarray]:
        found = {}
        for lexicon_, group in _group_by_lexicon(lexicons, images):
            queries, counts = [greedy[image].ids for image in group], [frame_counts[image] for image in group]
            group_nearest = None if nearest is None else {}
            found.update(zip(group, lexicon_._search(queries, counts, radius, group_nearest)))
            if group_nearest:
                nearest.update((group[position], words) for position, words in group_nearest.items())
        return found

    small = [image for image in range(batch) if delta is None or len(lexicons[image]) <= exhaustive_max_words]
    candidates = {image: np.flatnonzero(lexicons[image]._min_frames <= frame_counts[image]) for image in small}
    # The delta search also yields the nearest words of images with none within delta (free with exact distances),
    # so the fallback below costs no second pass over the lexicon: noise crops cost what real ones do.
    nearest = {} if fallback == "nearest" else None
    candidates.update(search([image for image in range(batch) if image not in candidates], delta, nearest))
    best = _top_words(lexicons, log_probs, lengths, candidates, top_k, blank_id)
    fell_back = {image for image in range(batch) if not best[image]}
    if fell_back and fallback == "nearest":
        fallback_candidates = {image: nearest[image] for image in fell_back if image in nearest}
        # Images whose words within delta all scored -inf, small lexicons, or distances cut off (numpy): search.
        fallback_candidates.update(search(sorted(fell_back - fallback_candidates.keys()), None))
        best.update(_top_words(lexicons, log_probs, lengths, fallback_candidates, top_k, blank_id))

    # Where nothing in the lexicon fits, the answer is the lexicon-free reading in the model's own classes (as
    # method="greedy" and the lexicon beam search give it), not the case-folded search query: those images only are
    # read again from the unfolded scores.
    readings = {image: greedy[image] for image in range(batch) if not best[image]}
    if model_log_probs is not log_probs and readings:
        rows = list(readings)
        readings = dict(zip(rows, _greedy_decode(model_log_probs[rows], lengths[rows], blank_id)))
    decodings = []
    for image, lexicon_ in enumerate(lexicons):
        if best[image]:
            nbest = [
                CTCHypothesis(lexicon_.ids(index), score, text=lexicon_.words[index], lexicon_index=index)
                for index, score in best[image]
            ]
        else:
            readings[image].text = _ids_to_text(readings[image].ids, lexicon_.vocab)
            nbest = [readings[image]]
        decodings.append(CTCDecoding(nbest, lexicon_fallback=image in fell_back))
    if return_char_frames:
        _attach_alignments([decoding.nbest for decoding in decodings], log_probs, lengths, blank_id)
    return decodings


# --------------------------------------------------------------------------------------------------------------
# Lexicon-constrained beam search
# --------------------------------------------------------------------------------------------------------------


def ctc_lexicon_beam_search(
    log_probs: torch.Tensor,
    lexicon,
    lengths: torch.Tensor | None = None,
    *,
    blank_id: int = 0,
    vocab: Sequence[str] | Mapping[str, int] | None = None,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    top_k: int = 1,
    oov_penalty: float | None = None,
    min_char_prob: float = 1e-3,
    max_chars_per_frame: int | None = None,
    lowercase: bool | None = None,
    return_char_frames: bool = False,
) -> list[CTCDecoding]:
    """
    Prefix beam search constrained to a character trie of the lexicon: prefixes only grow into lexicon words,
    and only complete words are returned. Its cost does not grow with the lexicon (beyond building the trie
    once per `Lexicon`), so it suits very large lexicons; it is approximate where [`ctc_lexicon_decode`] is exact
    (a narrow beam can lose the best word), and needs no lexicon-free transcription to be close.

    With `oov_penalty` (a log-prob per character), out-of-lexicon outputs are allowed too: the search then
    maximises `log p(l | frames) - oov_penalty * len(l) * [l not in lexicon]`. Reported scores stay the
    beam's `log p`, without the penalty.

    Args:
        log_probs, lexicon, lengths, blank_id, vocab, lowercase, return_char_frames: As for [`ctc_lexicon_decode`].
        beam_width (`int`, defaults to 10), min_char_prob, max_chars_per_frame: As for [`ctc_beam_search`].
        top_k (`int`, defaults to 1): Hypotheses returned per image.
        oov_penalty (`float`, *optional*): Non-negative cost per character of an out-of-lexicon output; None
            allows lexicon words only.

    Returns:
        `list[CTCDecoding]`, one per image. If no lexicon word survives the beam and `oov_penalty` is None, the
        greedy transcription is returned with `lexicon_fallback=True`.
    """
    log_probs, lengths, blank_id = _prepare_inputs(log_probs, lengths, blank_id)
    batch, _, vocab_size = log_probs.shape
    beam_width, top_k = _check_beam_options(beam_width, top_k, min_char_prob, max_chars_per_frame)
    if oov_penalty is not None and not (oov_penalty >= 0 and math.isfinite(oov_penalty)):
        raise ValueError(f"`oov_penalty` must be a finite non-negative number or None, got {oov_penalty!r}.")
    lexicons = _resolve_lexicons(lexicon, batch, vocab, blank_id, vocab_size, lowercase)
    # Words are spelled in case-folded classes: search and align them on the folded frames (the greedy fallback
    # reads the model's own classes, and carries its alignment already).
    folded = fold_case(log_probs, lexicons)
    frames_np = folded.numpy().astype(np.float64)
    greedy = None
    decodings = []
    for image, (lexicon_, length) in enumerate(zip(lexicons, lengths.tolist())):
        trie = lexicon_.trie
        beam = _prefix_beam_search(
            frames_np[image, :length], blank_id, beam_width, min_char_prob, max_chars_per_frame, trie, oov_penalty
        )
        ranked = []  # (rank score, log p, prefix, lexicon index or None)
        for prefix, (blank_score, char_score, node, _, _) in beam.items():
            score = _log_add(blank_score, char_score)
            word = trie.word[node] if node != _OUT_OF_LEXICON else -1
            if word >= 0:
                ranked.append((score, score, prefix, word))
            elif oov_penalty is not None:
                ranked.append((score - oov_penalty * len(prefix), score, prefix, None))
        ranked.sort(key=lambda entry: -entry[0])
        nbest = [
            CTCHypothesis(
                list(prefix),
                score,
                text=lexicon_.words[word] if word is not None else _ids_to_text(prefix, lexicon_.vocab),
                lexicon_index=word,
            )
            for _, score, prefix, word in ranked[:top_k]
        ]
        if not nbest:
            if greedy is None:
                greedy = _greedy_decode(log_probs, lengths, blank_id)
            greedy[image].text = _ids_to_text(greedy[image].ids, lexicon_.vocab)
            nbest = [greedy[image]]
        decodings.append(CTCDecoding(nbest, lexicon_fallback=nbest[0].lexicon_index is None))
    if return_char_frames:
        _attach_alignments([decoding.nbest for decoding in decodings], folded, lengths, blank_id)
    return decodings


# --------------------------------------------------------------------------------------------------------------
# One entry point
# --------------------------------------------------------------------------------------------------------------


def _ids_to_text(ids: Iterable[int], vocab: Sequence[str]) -> str:
    return "".join(vocab[label] for label in ids)


def ctc_decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor | None = None,
    *,
    method: str | None = None,
    blank_id: int = 0,
    vocab: Sequence[str] | Mapping[str, int] | None = None,
    beam_width: int | None = None,
    top_k: int = 1,
    lexicon=None,
    delta: int | None = 3,
    exhaustive_max_words: int = 2000,
    fallback: str = "nearest",
    oov_penalty: float | None = None,
    min_char_prob: float = 1e-3,
    max_chars_per_frame: int | None = None,
    lowercase: bool | None = None,
    return_char_frames: bool = False,
    language_model: CharNgramLanguageModel | None = None,
) -> list[CTCDecoding]:
    """
    Decodes a batch with any method; what `processor.batch_decode` and the pipeline call.

    `method=None` picks one from the other arguments:

    | lexicon | beam_width > 1 | method |
    |---------|----------------|--------|
    | no      | no             | `"greedy"`: best path |
    | no      | yes            | `"beam"`: prefix beam search ([`ctc_beam_search`]) |
    | no, but a `language_model` | any | `"beam"`, fused with the language model |
    | yes     | no             | `"lexicon"`: the paper's exact lexicon search ([`ctc_lexicon_decode`]) |
    | yes     | yes            | `"lexicon_beam"`: trie-constrained beam search ([`ctc_lexicon_beam_search`]) |

    Args:
        log_probs (`torch.Tensor` of shape `(B, T, V)`): Log-softmaxed frame scores (`logits.log_softmax(-1)`).
        lengths (`torch.Tensor` of shape `(B,)`, *optional*): Valid frames per image (`frame_lengths`).
        method (`str`, *optional*): One of [`DECODING_METHODS`]; see above.
        blank_id (`int`, defaults to 0): Index of the CTC blank.
        vocab (*optional*): id -> token sequence or token -> id mapping (e.g. `tokenizer.get_vocab()`). With it,
            every hypothesis gets its `text`; lexicon methods need it (default [`DEFAULT_VOCAB`]).
        beam_width (`int`, *optional*): Beam width of the beam methods (default 10).
        top_k (`int`, defaults to 1): Length of each image's n-best list.
        lexicon, delta, exhaustive_max_words, fallback, lowercase: See [`ctc_lexicon_decode`].
        oov_penalty: See [`ctc_lexicon_beam_search`].
        min_char_prob, max_chars_per_frame: Per-frame pruning of the beam methods, see [`ctc_beam_search`].
        return_char_frames (`bool`, defaults to False): Fill `char_frames` / `char_scores` (greedy always does).
        language_model (*optional*): A character language model for `"beam"`, see [`ctc_beam_search`].

    Returns:
        `list[CTCDecoding]`, one per image: `.text`, `.score`, `.confidence`, `.char_frames`, `.char_scores`,
        `.nbest`, `.lexicon_fallback`.
    """
    if method is None:
        beam = (beam_width is not None and beam_width > 1) or (language_model is not None and lexicon is None)
        method = ("lexicon_beam" if beam else "lexicon") if lexicon is not None else ("beam" if beam else "greedy")
    if method not in DECODING_METHODS:
        raise ValueError(f"`method` must be one of {DECODING_METHODS}, got {method!r}.")
    if language_model is not None and method != "beam":
        raise ValueError(f"A `language_model` is used by method='beam' only, not {method!r}.")
    if lexicon is not None and method in ("greedy", "beam"):
        raise ValueError(
            f"A `lexicon` was given but method={method!r} does not use one; use 'lexicon' or 'lexicon_beam'."
        )
    beam_width = DEFAULT_BEAM_WIDTH if beam_width is None else beam_width
    lexicon_options = {
        "blank_id": blank_id,
        "vocab": vocab,
        "top_k": top_k,
        "lowercase": lowercase,
        "return_char_frames": return_char_frames,
    }
    if method == "lexicon":
        decodings = ctc_lexicon_decode(
            log_probs,
            lexicon,
            lengths,
            delta=delta,
            exhaustive_max_words=exhaustive_max_words,
            fallback=fallback,
            **lexicon_options,
        )
    elif method == "lexicon_beam":
        decodings = ctc_lexicon_beam_search(
            log_probs,
            lexicon,
            lengths,
            beam_width=beam_width,
            oov_penalty=oov_penalty,
            min_char_prob=min_char_prob,
            max_chars_per_frame=max_chars_per_frame,
            **lexicon_options,
        )
    else:
        if method == "greedy":
            nbests = [[hypothesis] for hypothesis in ctc_greedy_decode(log_probs, lengths, blank_id)]
        else:
            nbests = ctc_beam_search(
                log_probs,
                lengths,
                blank_id,
                beam_width=beam_width,
                top_k=top_k,
                min_char_prob=min_char_prob,
                max_chars_per_frame=max_chars_per_frame,
                return_char_frames=return_char_frames,
                language_model=language_model,
                vocab=vocab,
            )
        if vocab is not None:
            id_to_token = _normalise_vocab(vocab)
            if len(id_to_token) != log_probs.shape[-1]:
                raise ValueError(
                    f"`vocab` has {len(id_to_token)} tokens but `log_probs` has V={log_probs.shape[-1]}."
                )
            for nbest in nbests:
                for hypothesis in nbest:
                    hypothesis.text = _ids_to_text(hypothesis.ids, id_to_token)
        decodings = [CTCDecoding(nbest) for nbest in nbests]
    # Every hypothesis' confidence compares it with the image's best path (see `word_confidence`); greedy
    # hypotheses already carry it (their own score), so only the other methods pay for one more pass.
    if any(hypothesis.best_path_score is None for decoding in decodings for hypothesis in decoding.nbest):
        for decoding, best_path_score in zip(decodings, _best_path_scores(log_probs, lengths)):
            for hypothesis in decoding.nbest:
                hypothesis.best_path_score = best_path_score
    return decodings


def _best_path_scores(log_probs, lengths) -> list[float]:
    """Per image, the log-probability of its best path: the sum over its valid frames of the highest log-prob."""
    if isinstance(log_probs, torch.Tensor):
        log_probs = log_probs.detach().to("cpu", torch.float32).numpy()
    log_probs = np.asarray(log_probs)
    frames = log_probs.shape[1]
    lengths = np.full(log_probs.shape[0], frames) if lengths is None else np.asarray(torch.as_tensor(lengths).cpu())
    top = log_probs.max(axis=-1).astype(np.float64) if frames else np.zeros((log_probs.shape[0], 0))
    return np.where(np.arange(frames)[None, :] < lengths[:, None], top, 0.0).sum(axis=1).tolist()
