# Copyright 2025 The hf-crnn Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
Texts of the synthetic word images: word lists and text sampling (dictionary words, numbers, words mixed with
digits, random strings) and their case (as listed, lowercase, UPPERCASE, Capitalised).
"""

from __future__ import annotations

import logging
import os
import random
import string
from collections.abc import Sequence
from pathlib import Path


logger = logging.getLogger(__name__)

DEFAULT_CHARSET = string.digits + string.ascii_letters
"""Default characters of the synthetic texts: digits and ASCII letters of both cases. The default
`CRNNTokenizer` (`do_lower_case=True`) maps them onto its 36 case-insensitive classes."""

CLEAN_TEXT_MIX = {"word_probability": 0.7}
"""Text sources of the `"clean"` style: 70% words, 30% random strings (the original generator's mix)."""

SCENE_TEXT_MIX = {"word_probability": 0.6, "number_probability": 0.15, "mixed_probability": 0.1}
"""Text sources of the `"scene"` style: 60% words, 15% numbers, 10% words or letters mixed with digits, 15% random
strings."""

SYSTEM_WORD_LIST = "/usr/share/dict/words"
BUILTIN_WORD_LIST = Path(__file__).parent.parent / "data" / "words.txt"


def default_word_list() -> str:
    """The word list used when none is given: `/usr/share/dict/words` when it exists, else the shipped list."""
    return SYSTEM_WORD_LIST if os.path.isfile(SYSTEM_WORD_LIST) else BUILTIN_WORD_LIST


def load_word_list(path: str | os.PathLike | None = None) -> list[str]:
    """Read a word list: one word per line, blank lines and lines starting with `#` skipped.

    Args:
        path (`str` or `os.PathLike`, *optional*):
            The list to read. Defaults to the system list `/usr/share/dict/words` (Debian package `wamerican`) when
            it exists, else to the 5000-word list shipped in `hf_crnn/data/words.txt`.

    Returns:
        `list[str]`: the words, in file order, duplicates removed.
    """
    if path is None:
        path = default_word_list()
    with open(path, encoding="utf-8") as file:
        words = (line.strip() for line in file)
        return list(dict.fromkeys(word for word in words if word and not word.startswith("#")))


class TextSampler:
    """Draws the label of one synthetic image from a `random.Random`.

    Each text comes from one source: a word of the word list (probability `word_probability`), a number
    (`number_probability`: an integer, a year or a zero-padded code), a word or letters mixed with digits
    (`mixed_probability`: `"B52"`, `"room12"`) or, for the rest, a random string over `charset`. Unless `lowercase`,
    words appear as listed, lowercased, UPPERCASED or Capitalised at random. Texts always fit `charset` and
    `[min_len, max_len]`: a number or mixed text that does not falls back to a random string.

    Args:
        charset (`str`): Characters the texts may contain.
        lowercase (`bool`): Lowercase every text (uppercase characters are dropped from `charset`).
        min_len, max_len (`int`): Shortest and longest text, in characters.
        word_list (`str`, `os.PathLike` or sequence of `str`, *optional*): Words, or a file of them (see
            `load_word_list`). Words with characters outside `charset` or lengths outside the range are skipped.
        word_probability, number_probability, mixed_probability (`float`): Probabilities of the sources; their sum
            must not exceed 1.
    """

    def __init__(
        self,
        charset: str = DEFAULT_CHARSET,
        lowercase: bool = False,
        min_len: int = 1,
        max_len: int = 16,
        word_list: str | os.PathLike | Sequence[str] | None = None,
        word_probability: float = 0.7,
        number_probability: float = 0.0,
        mixed_probability: float = 0.0,
    ):
        if not 1 <= min_len <= max_len:
            raise ValueError(f"Need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}.")
        probabilities = {
            "word_probability": word_probability,
            "number_probability": number_probability,
            "mixed_probability": mixed_probability,
        }
        for name, value in probabilities.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], got {value}.")
        if sum(probabilities.values()) > 1.0 + 1e-9:
            raise ValueError(f"The text source probabilities must sum to at most 1, got {probabilities}.")
        self.lowercase = lowercase
        self.charset = self._resolve_charset(charset, lowercase)
        self.min_len, self.max_len = min_len, max_len
        if isinstance(word_list, (str, os.PathLike)) or word_list is None:
            word_list = load_word_list(word_list)
        self._allowed = frozenset(self.charset)
        self.words = [
            word
            for word in dict.fromkeys(w.lower() if lowercase else w for w in word_list)
            if min_len <= len(word) <= max_len and set(word) <= self._allowed
        ]
        self.word_probability = word_probability
        if word_probability > 0 and not self.words:
            logger.warning(
                "No word of the word list fits charset=%r and lengths [%d, %d]: generating other texts only.",
                self.charset,
                min_len,
                max_len,
            )
            self.word_probability = 0.0
        self.number_probability = number_probability
        self.mixed_probability = mixed_probability
        self._short_words = [word for word in self.words if len(word) <= max(1, max_len - 2)]

    @staticmethod
    def _resolve_charset(charset: str, lowercase: bool) -> str:
        if lowercase:
            # Characters whose lowercase form is another character (uppercase letters) can never appear.
            charset = "".join(character for character in charset if character.lower() == character)
        charset = "".join(dict.fromkeys(character for character in charset if not character.isspace()))
        if not charset:
            raise ValueError("`charset` must contain at least one non-space character (after lowercasing).")
        return charset

    def __call__(self, rng: random.Random) -> str:
        # One uniform draw picks the source. With only words and random strings (the clean style's default), this
        # is the draw sequence of the original generator, so its samples stay identical.
        mixes_other_sources = self.number_probability > 0 or self.mixed_probability > 0
        draw = rng.random() if self.words or mixes_other_sources else 1.0
        word_cut = self.word_probability if self.words else 0.0
        number_cut = word_cut + self.number_probability
        if draw < word_cut:
            return self._case_variant(rng.choice(self.words), rng)
        if draw < number_cut:
            return self._fitting(self._number(rng), rng)
        if draw < number_cut + self.mixed_probability:
            return self._fitting(self._mixed(rng), rng)
        return self._random_string(rng)

    def context(self, rng: random.Random) -> tuple[str, str]:
        """Text on either side of a word, `(before, after)`: 1-3 characters of `charset` on one or both sides,
        directly attached or after a space (the next word), so that a crop shows fragments of its glyphs."""
        sides = rng.choice(((True, False), (False, True), (True, True)))
        pieces = []
        for present in sides:
            letters = "".join(rng.choices(self.charset, k=rng.randint(1, 3))) if present else ""
            pieces.append(letters)
        before, after = pieces
        if rng.random() < 0.5:  # a neighbouring word rather than more letters of the same one
            before, after = (before + " ") if before else "", (" " + after) if after else ""
        return before, after

    def _case_variant(self, word: str, rng: random.Random) -> str:
        if self.lowercase:
            return word
        # Scene text is often capitalised or all-caps; only keep a variant whose characters are all in charset.
        variant = rng.choice((word, word.lower(), word.upper(), word.capitalize()))
        return variant if set(variant) <= self._allowed else word

    def _random_string(self, rng: random.Random) -> str:
        length = rng.randint(self.min_len, self.max_len)
        return "".join(rng.choices(self.charset, k=length))

    @staticmethod
    def _number(rng: random.Random) -> str:
        kind = rng.randrange(3)
        if kind == 0:  # house numbers, prices, counts: mostly short
            return str(int(10 ** rng.uniform(0, 5)))
        if kind == 1:  # years on signs and shop fronts
            return str(rng.randint(1900, 2030))
        return str(rng.randrange(10 ** 6)).zfill(rng.randint(2, 6))  # codes with leading zeros

    def _mixed(self, rng: random.Random) -> str:
        digits = str(rng.randrange(10 ** rng.randint(1, 3)))
        if self._short_words and rng.random() < 0.5:
            head = self._case_variant(rng.choice(self._short_words), rng)
        else:  # model numbers and grid references: "B52", "A4", "MP3"
            letters = "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 3)))
            head = letters.lower() if self.lowercase else rng.choice((letters.upper(), letters.lower()))
        return head + digits if rng.random() < 0.8 else digits + head

    def _fitting(self, text: str, rng: random.Random) -> str:
        if self.min_len <= len(text) <= self.max_len and set(text) <= self._allowed:
            return text
        return self._random_string(rng)
