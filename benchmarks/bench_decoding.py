# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Per-image CTC decoding times of hf_crnn.decoding on CRNN-shaped outputs (T=26 frames, V=37 classes), and the
lexicon search against a straightforward baseline: a pure-Python BK-tree plus one CTC-loss call per word.

The frames are built from real lexicon words, like a trained model's: each character is one confident frame with
blanks around it, and a fifth of the characters are confused with a random other character (the true one stays
runner-up), so the greedy transcription is often a near miss of a lexicon word.

    python benchmarks/bench_decoding.py                 # full run, a few minutes on 2 cores
    python benchmarks/bench_decoding.py --quick         # smaller batch and fewer repeats

The worst case of the lexicon search is timed on its own rows: random logits (a crop of noise), where no word is
within delta and every image takes the nearest-word fallback, next to word-like frames at the same batch size.

The system word list is Debian's /usr/share/dict/words (`apt-get install wamerican`); without it the script says so
and uses synthetic words (and skips the full-list row).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hf_crnn.decoding import (
    DEFAULT_VOCAB,
    Lexicon,
    ctc_beam_search,
    ctc_greedy_decode,
    ctc_lexicon_beam_search,
    ctc_lexicon_decode,
)
from hf_crnn.language_model import CharNgramLanguageModel

try:
    from rapidfuzz import process as rapidfuzz_process
    from rapidfuzz.distance import Levenshtein
except ImportError:
    rapidfuzz_process = None

WORD_LIST = "/usr/share/dict/words"
CHAR_TO_ID = {char: i for i, char in enumerate(DEFAULT_VOCAB) if len(char) == 1}


# ------------------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------------------


def load_words(path: str, rng: np.random.Generator) -> tuple[list[str], bool]:
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()], True
    print(f"NOTE: {path} not found (Debian: apt-get install -y wamerican); using 100k synthetic words instead.\n")
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 12, size=100_000)
    return sorted({"".join(rng.choice(letters, size=n)) for n in lengths}), False


def peaky_log_probs(targets: list[str], frames: int, rng: np.random.Generator, confusion: float = 0.2) -> torch.Tensor:
    """`(B, frames, 37)` log-probs of a confident model reading `targets` (see the module docstring)."""
    batch, vocab_size = len(targets), len(DEFAULT_VOCAB)
    logits = rng.normal(0.0, 1.0, size=(batch, frames, vocab_size))
    logits[:, :, 0] += 8.0  # blank wins wherever no character is
    for row, word in enumerate(targets):
        ids = [CHAR_TO_ID[char] for char in word.lower()]
        centres = ((np.arange(len(ids)) + 0.5) * frames / len(ids)).astype(int)
        for label, frame in zip(ids, centres):
            if rng.random() < confusion:
                logits[row, frame, label] += 9.0
                logits[row, frame, rng.integers(1, vocab_size)] += 11.0
            else:
                logits[row, frame, label] += 11.0
    return torch.from_numpy(logits).float().log_softmax(-1)


def sample_targets(words: list[str], count: int, frames: int, rng: np.random.Generator) -> list[str]:
    fitting = [word for word in words if 1 <= len(word) <= frames // 2]
    return [fitting[i] for i in rng.integers(0, len(fitting), size=count)]


# ------------------------------------------------------------------------------------------------------------
# Baseline: pure-Python BK-tree + per-word scoring
# ------------------------------------------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


class BKTree:
    """Burkhard-Keller tree over strings: a node's children are keyed by their distance to it, so a query within
    `delta` only descends into children keyed `d - delta .. d + delta` (triangle inequality)."""

    def __init__(self, words):
        words = iter(words)
        self.root = (next(words), {})
        for word in words:
            node = self.root
            while True:
                distance = levenshtein(word, node[0])
                if distance == 0:
                    break
                child = node[1].get(distance)
                if child is None:
                    node[1][distance] = (word, {})
                    break
                node = child

    def query(self, word: str, delta: int) -> list[str]:
        found, stack = [], [self.root]
        while stack:
            candidate, children = stack.pop()
            distance = levenshtein(word, candidate)
            if distance <= delta:
                found.append(candidate)
            stack.extend(child for key, child in children.items() if distance - delta <= key <= distance + delta)
        return found


def baseline_decode(log_probs, greedy_texts, lexicon_words, tree, delta):
    """Per image: candidates (every word, or the BK-tree's within `delta`), each scored by its own ctc_loss."""
    results = []
    for image, greedy_text in enumerate(greedy_texts):
        candidates = lexicon_words if tree is None else tree.query(greedy_text, delta)
        frames = log_probs[image : image + 1].transpose(0, 1)
        best, best_score = greedy_text, -float("inf")
        for word in candidates:
            target = torch.tensor([[CHAR_TO_ID[char] for char in word]])
            score = -F.ctc_loss(
                frames, target, torch.tensor([frames.shape[0]]), torch.tensor([len(word)]), reduction="none"
            ).item()
            if score > best_score:
                best, best_score = word, score
        results.append(best)
    return results


# ------------------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------------------


class Timing(NamedTuple):
    median: float
    best: float  # on a shared machine the best run is the closest to the code's own cost

    def ms_per(self, count: int) -> Timing:
        """Milliseconds per item of a call that handled `count` items."""
        return Timing(self.median / count * 1e3, self.best / count * 1e3)


def timed(function, repeats: int) -> tuple[Timing, object]:
    """Wall time of `repeats` calls (after one warm-up call) and the last result."""
    result = function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times)), result


def bench_lexicon_free(words: list[str], args, rng) -> list[tuple]:
    log_probs = peaky_log_probs(sample_targets(words, args.batch, args.frames, rng), args.frames, rng)
    greedy_seconds, _ = timed(lambda: ctc_greedy_decode(log_probs), max(args.repeats, 20))  # cheap: more repeats
    beam_seconds, _ = timed(lambda: ctc_beam_search(log_probs, beam_width=10, top_k=1), args.repeats)
    rows = [
        ("greedy (batched)", greedy_seconds.ms_per(args.batch), None, "target < 0.05"),
        ("beam search, width 10", beam_seconds.ms_per(args.batch), None, ""),
    ]
    language_model = CharNgramLanguageModel(words)
    for cutoff in (None, language_model.greedy_confidence_cutoff):
        fused = language_model.with_fusion(greedy_confidence_cutoff=cutoff)
        fused_seconds, results = timed(lambda: ctc_beam_search(log_probs, language_model=fused), args.repeats)
        searched = "every image" if cutoff is None else f"images under confidence {cutoff}"
        kept = sum(hypotheses[0].char_frames is not None for hypotheses in results)  # greedy results carry frames
        note = f"{args.batch - kept} of {args.batch} searched" if cutoff is not None else ""
        rows.append((f"beam 10 + char 6-gram LM, {searched}", fused_seconds.ms_per(args.batch), None, note))
    return rows


def bench_lexicon(name: str, words: list[str], args, rng) -> tuple[list[tuple], tuple]:
    """hf_crnn's lexicon search vs the baseline (and the trie beam for large lexicons) on frames spelling words
    of this lexicon. Returns the table rows and `(Lexicon, folded words, BK-tree or None)` for reuse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the full list has words with apostrophes and accents
        start = time.perf_counter()
        lexicon = Lexicon(words)
        build = time.perf_counter() - start
    targets = sample_targets(lexicon.words, args.batch, args.frames, rng)
    frames = peaky_log_probs(targets, args.frames, rng)
    seconds, results = timed(lambda: ctc_lexicon_decode(frames, lexicon, delta=args.delta), args.repeats)

    exhaustive = len(lexicon) <= 2000  # ctc_lexicon_decode's exhaustive_max_words default
    folded = [word.lower() for word in lexicon.words]
    start = time.perf_counter()
    tree = None if exhaustive else BKTree(rng.permutation(folded).tolist())
    tree_build = time.perf_counter() - start
    subset = frames[: args.baseline_images]
    greedy_texts = ["".join(DEFAULT_VOCAB[i] for i in h.ids) for h in ctc_greedy_decode(subset)]
    greedy_correct = np.mean(
        ["".join(DEFAULT_VOCAB[i] for i in h.ids) == t.lower() for h, t in zip(ctc_greedy_decode(frames), targets)]
    )
    base_seconds, base = timed(lambda: baseline_decode(subset, greedy_texts, folded, tree, args.delta), 1)
    base_seconds = base_seconds.median

    # Where no word is within delta the baseline returns the greedy text and we the nearest words: compare the rest.
    agree = np.mean([r.text.lower() == b for r, b in zip(results, base) if not r.lexicon_fallback])
    correct = np.mean([r.text == t for r, t in zip(results, targets)])
    fallbacks = sum(r.lexicon_fallback for r in results)
    note = {"50": "target < 0.5; ", "50k": "target < 5; "}.get(name, "")
    note += (
        f"{len(lexicon)} words ({len(lexicon.skipped)} skipped), built in {build * 1e3:.0f} ms"
        + ("" if exhaustive else f" (BK-tree: {tree_build:.1f} s)")
        + f"; {'all words scored' if exhaustive else 'delta search'}; agrees with baseline {agree:.0%}; "
        f"word accuracy {correct:.0%} (greedy {greedy_correct:.0%}); fallbacks {fallbacks}/{len(results)}"
    )
    rows = [(f"lexicon {name}", seconds.ms_per(args.batch), base_seconds / len(subset) * 1e3, note)]

    if not exhaustive:
        start = time.perf_counter()
        trie = lexicon.trie  # built on first use, once per Lexicon
        trie_build = time.perf_counter() - start
        beam_frames = frames[:64]
        seconds, results = timed(lambda: ctc_lexicon_beam_search(beam_frames, lexicon, beam_width=10), args.repeats)
        correct = np.mean([r.text == t for r, t in zip(results, targets)])
        note = f"trie of {len(trie.word):,} nodes built in {trie_build:.1f} s; word accuracy {correct:.0%}"
        rows.append((f"trie beam 10, lexicon {name}", seconds.ms_per(len(beam_frames)), None, note))
    return rows, (lexicon, folded, tree)


def bench_noise(lexicon: Lexicon, name: str, args, rng) -> list[tuple]:
    """The lexicon search's worst case: random logits (a crop of noise), whose long greedy transcription has no
    lexicon word within delta, so every image takes the nearest-word fallback. Timed at `--noise-batch` next to
    frames spelling lexicon words (the normal path) and to the noise with `fallback="greedy"` (no fallback search),
    in the same interleaved rounds."""
    batch = args.noise_batch
    noise = torch.from_numpy(rng.normal(0.0, 1.0, size=(batch, args.frames, len(DEFAULT_VOCAB)))).float()
    noise = noise.log_softmax(-1)
    words = peaky_log_probs(sample_targets(lexicon.words, batch, args.frames, rng), args.frames, rng)
    cases = {
        f"lexicon {name}, word-like frames, batch {batch}": (words, "nearest"),
        f"lexicon {name}, random logits (fallback), batch {batch}": (noise, "nearest"),
        f'lexicon {name}, random logits, fallback="greedy", batch {batch}': (noise, "greedy"),
    }
    times = {what: [] for what in cases}
    results = {}
    for what, (frames, fallback) in cases.items():  # warm-up
        results[what] = ctc_lexicon_decode(frames, lexicon, delta=args.delta, fallback=fallback)
    for _ in range(max(args.repeats, 5)):
        for what, (frames, fallback) in cases.items():
            start = time.perf_counter()
            ctc_lexicon_decode(frames, lexicon, delta=args.delta, fallback=fallback)
            times[what].append(time.perf_counter() - start)
    rows = []
    for what, seconds in times.items():
        fallbacks = sum(result.lexicon_fallback for result in results[what])
        note = f"fallbacks {fallbacks}/{batch}"
        if "(fallback)" in what:
            note = "target < 5, and no more than the word-like row; " + note
        rows.append((what, Timing(statistics.median(seconds), min(seconds)).ms_per(batch), None, note))
    return rows


def bench_candidate_search(lexicon: Lexicon, keys: list[str], tree: BKTree, args, rng) -> None:
    """The words within delta of 64 near-miss queries, by each way of finding them."""
    queries = [word[:-1] + "x" for word in sample_targets(keys, 64, args.frames, rng)]
    ids = [[CHAR_TO_ID[char] for char in query] for query in queries]
    searches = {
        "hf_crnn Lexicon._search (64 queries a call)": lambda: lexicon._search(ids, [args.frames] * 64, args.delta)
    }
    if rapidfuzz_process is not None:
        searches["rapidfuzz cdist, one query a call"] = lambda: [
            rapidfuzz_process.cdist([q], keys, scorer=Levenshtein.distance, score_cutoff=args.delta, workers=1)
            for q in queries
        ]
        searches["rapidfuzz process.extract, one query a call"] = lambda: [
            rapidfuzz_process.extract(q, keys, scorer=Levenshtein.distance, score_cutoff=args.delta, limit=None)
            for q in queries
        ]
    searches["pure-Python BK-tree"] = lambda: [tree.query(q, args.delta) for q in queries]
    print(f"\nCandidate search alone: words within delta={args.delta} of a query, {len(keys):,} words\n")
    print("| search | ms/query |\n|---|---:|")
    for what, search in searches.items():
        seconds, _ = timed(search, 1 if "BK" in what else args.repeats)
        print(f"| {what} | {seconds.median / len(queries) * 1e3:.2f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="images per decode call")
    parser.add_argument("--frames", type=int, default=26, help="frames per image (CRNN at 100 px: 26)")
    parser.add_argument("--delta", type=int, default=3, help="edit-distance radius for large lexicons")
    parser.add_argument("--baseline-images", type=int, default=32, help="images the slow baseline decodes")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    parser.add_argument("--word-list", default=WORD_LIST)
    parser.add_argument("--noise-batch", type=int, default=32, help="batch of the random-logits (fallback) rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="batch 64, 16 baseline images, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.baseline_images, args.repeats = 64, 16, 2

    rng = np.random.default_rng(args.seed)
    all_words, real = load_words(args.word_list, rng)
    in_vocab = sorted({word for word in all_words if all(char in CHAR_TO_ID for char in word.lower())})
    lexicons = {size: list(rng.choice(in_vocab, count, replace=False)) for size, count in (("50", 50), ("1k", 1000))}
    lexicons["50k"] = list(rng.choice(in_vocab, 50_000, replace=False))
    if real:
        lexicons[f"full ({len(all_words) // 1000}k)"] = all_words

    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), rapidfuzz {'yes' if rapidfuzz_process else 'NO'}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; batch {args.batch}, T={args.frames}, "
        f"V={len(DEFAULT_VOCAB)}, delta={args.delta}, median of {args.repeats} runs\n",
        flush=True,
    )
    rows = bench_lexicon_free(in_vocab, args, rng)
    built = {}
    for name, words in lexicons.items():
        lexicon_rows, built[name] = bench_lexicon(name, words, args, rng)
        rows += lexicon_rows
    largest = max(lexicons, key=lambda name: len(lexicons[name]))
    rows += bench_noise(built[largest][0], largest, args, rng)

    print("| decoder | ms/image (median) | best run | baseline ms/image | speed-up | notes |")
    print("|---|---:|---:|---:|---:|---|")
    for what, ms, base_ms, note in rows:
        base = f"{base_ms:.3f}" if base_ms is not None else ""
        ratio = f"{base_ms / ms.median:.0f}x" if base_ms is not None else ""
        print(f"| {what} | {ms.median:.4f} | {ms.best:.4f} | {base} | {ratio} | {note} |", flush=True)
    bench_candidate_search(*built[largest], args, rng)


if __name__ == "__main__":
    main()
