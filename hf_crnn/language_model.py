# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
A character n-gram language model for CTC beam search ("shallow fusion"), trained on a word list.

A CRNN reads each character from its own frames, so where a character is unclear it has no notion of what a word
usually looks like: it reads "LEADERSHP" or "fiest". A character n-gram model of a dictionary's words supplies that
prior without restricting the output to the dictionary (unlike lexicon decoding): brand names, numbers and codes can
still be read, they just need more evidence from the image than a common spelling does.

    lm = CharNgramLanguageModel.from_word_list("/usr/share/dict/words")
    processor.batch_decode(outputs, method="beam", language_model=lm)

During the beam search a prefix's rank is `log p_ctc(prefix | frames) + weight * log p_lm(prefix) + length_bonus *
(characters the model scores)`; the bonus offsets the per-character cost of the language model, which would
otherwise favour dropping characters. Scoring is case-insensitive and only looks at the model's alphabet (the
characters of its training words after `normalize_character`); other characters (punctuation) pass through
unscored, and a space ends one word and starts the next, so a text line is scored word by word. A word with no
scored character (a number) or with a letter or digit none of the training words has (a code, "27F") ends at a fixed
cost, `UNSCORED_WORD_LOG_PROB` (how often a scene-text word has no letter), not at the n-gram model's.

The probabilities are Witten-Bell interpolated n-gram estimates over the distinct words, each wrapped in a start and
an end symbol, so `p("$" | "...ing")` (the word ends) is modelled as well as every character.

This file ships as remote code next to checkpoints, so it imports only the standard library (and `.file_utils`).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence

from .file_utils import read_word_list_file

LANGUAGE_MODEL_FILE = "language_model.json"
# What `hf-crnn recognize --language-model` and `hf-crnn evaluate --language_model` take for a checkpoint's own.
CHECKPOINT_LANGUAGE_MODEL = "checkpoint"
DEFAULT_ORDER = 6
# Chosen on the 324 crops held out of the real training sets (docs/training.md, "Character language model"): with n=6
# and the cutoff below, weights 0.3-0.5 and bonuses 0.5-1.0 read 12-16 words more than greedy (default checkpoint)
# and 10-13 more (fast checkpoint); 0.4 and 1.0 was the default checkpoint's best.
DEFAULT_WEIGHT = 0.4
DEFAULT_LENGTH_BONUS = 1.0
# Greedy readings at least this confident are kept without a search: on the same held-out crops this ran the fused
# beam on a third of the images and read as many words (267 and 248 of 324, against 265 and 245 searching all).
DEFAULT_GREEDY_CONFIDENCE_CUTOFF = 0.9
# A word the model cannot judge ends with this log-probability: one with no character it scores (a number), or with
# a letter or digit none of its training words has (a code such as "27F", for a dictionary). It is the share of the
# real training crops' labels (IIIT5K train + ICDAR 2015 train) without a letter, 443 of 6,468. The n-gram estimate of
# an empty word (~-42 nats) pushed a letter into every number, "949" -> "949f"; and a code scored as its letters alone
# ("27F" as the one-letter word "f") would, beside numbers priced fairly, be read as one ("278").
UNSCORED_WORD_LOG_PROB = math.log(443 / 6468)
# What `token_characters` gives a letter or digit outside the model's alphabet: unscored, but it makes its word a code.
UNMODELLED_CHARACTER = "#"
_START, _END = "^", "$"  # never model characters: `normalize_character` keeps letters and digits only
WORD_BOUNDARY = " "  # a space token: one word ends, the next begins (text lines hold several words)
_FUSION_SETTINGS = ("weight", "length_bonus", "greedy_confidence_cutoff")
# Cached (context, character) log-probabilities; a word-like context recurs, and 1M entries take ~150 MB at most.
_CACHE_LIMIT = 1_000_000


def _check_fusion_settings(weight, length_bonus, greedy_confidence_cutoff) -> tuple[float, float, float | None]:
    for name, value in (("weight", weight), ("length_bonus", length_bonus)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    if weight < 0:
        raise ValueError(f"`weight` must not be negative, got {weight}.")
    cutoff = greedy_confidence_cutoff
    if cutoff is not None and (isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not 0 < cutoff <= 1):
        raise ValueError(f"`greedy_confidence_cutoff` must lie in (0, 1] or be None, got {cutoff!r}.")
    return float(weight), float(length_bonus), None if cutoff is None else float(cutoff)


def normalize_character(character: str) -> str:
    """What the language model sees of one character: lowercased, and "" (unscored) unless a letter or digit."""
    lowered = character.lower()
    return lowered if len(lowered) == 1 and lowered.isalnum() else ""


def normalize_word(word: str) -> str:
    """A word as the language model is trained on it: its letters and digits, lowercased ("Don't" -> "dont")."""
    return "".join(normalize_character(character) for character in word)


class CharNgramLanguageModel:
    r"""
    Character n-gram model over words, with Witten-Bell interpolation (every character keeps some probability, so
    no spelling is ruled out).

    Args:
        words (iterable of `str`): Training words; each is normalised (`normalize_word`) and counted once.
        order (`int`, defaults to 6): n, the characters of context plus one. 6 and 7 did best on held-out crops;
            4 gained little.
        weight (`float`, defaults to 0.4): Weight of the language model's log-probability in the beam's ranking.
        length_bonus (`float`, defaults to 1.0): Added to the ranking per scored character.
        greedy_confidence_cutoff (`float`, *optional*, defaults to 0.9): An image whose greedy reading has at least
            this `confidence` keeps it, without a search (the fused search rarely changes a sure reading, and
            costs ~1 ms per image in Python); `None` searches every image. Only applies with `top_k=1`.
        source (`str`, *optional*): Where the words come from (kept in the saved file, for model cards).
    """

    def __init__(
        self,
        words: Iterable[str],
        order: int = DEFAULT_ORDER,
        weight: float = DEFAULT_WEIGHT,
        length_bonus: float = DEFAULT_LENGTH_BONUS,
        greedy_confidence_cutoff: float | None = DEFAULT_GREEDY_CONFIDENCE_CUTOFF,
        source: str | None = None,
    ):
        if isinstance(words, str):
            raise ValueError("`words` must be a collection of words, not one string (use `from_word_list` for a file).")
        if isinstance(order, bool) or not isinstance(order, int) or order < 2:
            raise ValueError(f"`order` must be an int of at least 2, got {order!r}.")
        self.weight, self.length_bonus, self.greedy_confidence_cutoff = _check_fusion_settings(
            weight, length_bonus, greedy_confidence_cutoff
        )
        self.words = sorted({normalized for normalized in map(normalize_word, words) if normalized})
        if not self.words:
            raise ValueError("A language model needs at least one word with a letter or digit.")
        self.order = order
        self.source = source
        self.alphabet = frozenset("".join(self.words))
        self._counts, self._totals, self._types = self._count(self.words, order)
        self._log_prob_cache: dict[tuple[str, str], float] = {}
        self._step_cache: dict[tuple[str, str], tuple[str, float]] = {}

    @staticmethod
    def _count(words: Sequence[str], order: int):
        """Counts of each character after each context of 0 to `order - 1` characters."""
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        padding = _START * (order - 1)
        for word in words:
            text = padding + word + _END
            for position in range(order - 1, len(text)):
                character = text[position]
                for context_length in range(order):
                    counts[text[position - context_length : position]][character] += 1
        counts = {context: dict(following) for context, following in counts.items()}
        totals = {context: sum(following.values()) for context, following in counts.items()}
        types = {context: len(following) for context, following in counts.items()}
        return counts, totals, types

    def with_fusion(self, **settings) -> CharNgramLanguageModel:
        """A copy with other `weight`, `length_bonus` or `greedy_confidence_cutoff` that shares this model's counts
        (cheap: for tuning the settings)."""
        unknown = set(settings) - set(_FUSION_SETTINGS)
        if unknown:
            raise ValueError(f"Unknown fusion setting(s) {sorted(unknown)}; valid: {list(_FUSION_SETTINGS)}.")
        tuned = copy.copy(self)
        current = {name: getattr(self, name) for name in _FUSION_SETTINGS}
        tuned.weight, tuned.length_bonus, tuned.greedy_confidence_cutoff = _check_fusion_settings(
            **{**current, **settings}
        )
        return tuned

    # ---- scoring ----------------------------------------------------------------------------------------------

    @property
    def initial_state(self) -> str:
        """The context before a word's first character."""
        return _START * (self.order - 1)

    def next_state(self, state: str, character: str) -> str:
        """The context after `character` (already normalised, non-empty) follows `state`. A state that starts with
        `UNMODELLED_CHARACTER` is that of a code (see `step`) and stays one until the word ends."""
        if state.startswith(UNMODELLED_CHARACTER):
            return UNMODELLED_CHARACTER + (state[1:] + character)[1:]
        return (state + character)[1:]

    def log_prob(self, state: str, character: str) -> float:
        """Natural-log `p(character | state)`; `character` is normalised, or `"$"` for the end of the word."""
        key = (state.removeprefix(UNMODELLED_CHARACTER), character)
        cached = self._log_prob_cache.get(key)
        if cached is None:
            if len(self._log_prob_cache) >= _CACHE_LIMIT:  # bounded memory when streaming many images
                self._log_prob_cache.clear()
            cached = self._log_prob_cache[key] = math.log(self._prob(*key))
        return cached

    def _prob(self, context: str, character: str) -> float:
        # Witten-Bell: the longest context's estimate, interpolated with the next shorter one's in proportion to how
        # many different characters that context was seen before (a context followed by many is less reliable).
        probability = 1.0 / (len(self.alphabet) + 1)  # uniform over the alphabet and the end symbol
        for start in range(len(context), -1, -1):
            suffix = context[start:]
            following = self._counts.get(suffix)
            if following is None:
                break
            total, types = self._totals[suffix], self._types[suffix]
            probability = (following.get(character, 0) + types * probability) / (total + types)
        return probability

    def end_log_prob(self, state: str) -> float:
        """Natural-log probability that the word ends after `state`; `UNSCORED_WORD_LOG_PROB` for a word the model
        cannot judge: one of which it scored no character (a number), or a code (see `step`)."""
        if state == self.initial_state or state.startswith(UNMODELLED_CHARACTER):
            return UNSCORED_WORD_LOG_PROB
        return self.log_prob(state, _END)

    def step(self, state: str, character: str) -> tuple[str, float]:
        """`(next state, natural-log probability)` of `character` after `state`: a normalised character,
        `WORD_BOUNDARY` (a space between words: the word ends, and the next starts from `initial_state`), or
        `UNMODELLED_CHARACTER` (probability 1, and the word becomes a code: its letters are still scored, its end is
        not)."""
        key = (state, character)
        cached = self._step_cache.get(key)  # a beam search asks the same steps frame after frame
        if cached is None:
            if len(self._step_cache) >= _CACHE_LIMIT:  # bounded memory when streaming many images
                self._step_cache.clear()
            if character == WORD_BOUNDARY:
                cached = self.initial_state, self.end_log_prob(state)
            elif character == UNMODELLED_CHARACTER:
                cached = UNMODELLED_CHARACTER + state.removeprefix(UNMODELLED_CHARACTER), 0.0
            else:
                cached = self.next_state(state, character), self.log_prob(state, character)
            self._step_cache[key] = cached
        return cached

    def is_scored(self, character: str) -> bool:
        """Whether `character` (one of `token_characters`) is scored by the model, and so earns the length bonus: a
        character of its alphabet, not a word boundary, an unmodelled character or "" (passed over)."""
        return character in self.alphabet

    def score(self, text: str) -> float:
        """Natural-log probability of a text (unscored characters skipped; each space ends a word), its end
        included: what the beam search adds up for it."""
        state, total = self.initial_state, 0.0
        for character in self.token_characters(text):
            if character:
                state, log_prob = self.step(state, character)
                total += log_prob
        return total + self.end_log_prob(state)

    def token_characters(self, vocab: Sequence[str]) -> list[str]:
        """Per vocabulary id (or per character of a string), what the model scores for it: its normalised
        character, `WORD_BOUNDARY` for a space, `UNMODELLED_CHARACTER` for a letter or digit none of its words use
        (digits, for a dictionary), or "" for tokens it passes over (blank, punctuation)."""
        characters = []
        for token in vocab:
            if token == WORD_BOUNDARY:
                characters.append(WORD_BOUNDARY)
                continue
            character = normalize_character(token) if len(token) == 1 else ""
            characters.append(character if not character or character in self.alphabet else UNMODELLED_CHARACTER)
        return characters

    # ---- files ------------------------------------------------------------------------------------------------

    @classmethod
    def from_word_list(cls, path: str | os.PathLike, **kwargs) -> CharNgramLanguageModel:
        """Trains one on a word-list file (one word per line, as for lexicons); `source` defaults to the path."""
        if kwargs.get("source") is None:
            kwargs["source"] = os.fspath(path)
        return cls(read_word_list_file(path, what="language model word list"), **kwargs)

    def to_dict(self) -> dict:
        return {
            "model_type": "char_ngram",
            "order": self.order,
            "weight": self.weight,
            "length_bonus": self.length_bonus,
            "greedy_confidence_cutoff": self.greedy_confidence_cutoff,
            "source": self.source,
            "words": self.words,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model (its settings and training words) as JSON; the file appears whole or not at all."""
        path = os.fspath(path)
        partial = f"{path}.partial"
        try:
            with open(partial, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, ensure_ascii=False, separators=(",", ":"))
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharNgramLanguageModel:
        """Reads a file written by `save` (a checkpoint's `language_model.json`)."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"Cannot read the language model file {path}: {error}") from None
        is_model_file = isinstance(data, dict) and data.get("model_type") == "char_ngram"
        if not is_model_file or not isinstance(data.get("words"), list):
            raise ValueError(f"{path} is not a character n-gram language model file (written by `save`).")
        settings = {key: data[key] for key in ("order", *_FUSION_SETTINGS, "source") if key in data}
        try:
            return cls(data["words"], **settings)
        except (TypeError, ValueError) as error:
            raise ValueError(f"The language model file {path} is invalid: {error}") from None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(order={self.order}, weight={self.weight}, length_bonus={self.length_bonus}, "
            f"greedy_confidence_cutoff={self.greedy_confidence_cutoff}, words={len(self.words):,}, "
            f"source={self.source!r})"
        )


def is_saved_language_model(path: str | os.PathLike) -> bool:
    """Whether `path` names a model written by `CharNgramLanguageModel.save` (`.json`), not a word list to train on."""
    return os.fspath(path).endswith(".json")


@functools.lru_cache(maxsize=4)
def _load_file(path: str, _modified_ns: int, _size: int) -> CharNgramLanguageModel:
    if is_saved_language_model(path):
        return CharNgramLanguageModel.load(path)
    return CharNgramLanguageModel.from_word_list(path)


def language_model_option(value: str) -> bool | str:
    """A command line's language-model value as a `language_model=` option: `CHECKPOINT_LANGUAGE_MODEL` is the
    checkpoint's own (`True`), anything else a file path."""
    return True if value == CHECKPOINT_LANGUAGE_MODEL else value


def load_language_model(path: str | os.PathLike) -> CharNgramLanguageModel:
    """
    A language model from a file written by `CharNgramLanguageModel.save` (`.json`), or trained with the default
    settings on a word list (any other file, one word per line). Built once per file version and cached (training
    on the 104k words of Debian's wamerican takes about 2 s).
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise ValueError(f"Language model {path}: no such file (a saved language model .json, or a word list).")
    stat = os.stat(path)
    return _load_file(path, stat.st_mtime_ns, stat.st_size)


__all__ = [
    "CHECKPOINT_LANGUAGE_MODEL",
    "LANGUAGE_MODEL_FILE",
    "UNMODELLED_CHARACTER",
    "UNSCORED_WORD_LOG_PROB",
    "WORD_BOUNDARY",
    "CharNgramLanguageModel",
    "is_saved_language_model",
    "language_model_option",
    "load_language_model",
    "normalize_character",
    "normalize_word",
]
