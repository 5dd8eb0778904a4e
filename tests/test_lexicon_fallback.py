# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""The lexicon search's nearest-word fallback (no word within delta): same answers as an independent brute force, by
rapidfuzz and by numpy, and the fallback flag set; the delta search's exact distances are reused for it."""

import numpy as np
import pytest
import torch

from hf_crnn import decoding
from hf_crnn.decoding import DEFAULT_VOCAB, Lexicon, ctc_lexicon_decode, ctc_sequence_log_probs
from test_decoding import edit_distance

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def brute_force(log_probs, lengths, lexicon: Lexicon, delta: int, top_k: int):
    """Per image `(fallback, [(word, log p), ...])` by the documented semantics, written out: the words within
    `delta` of the greedy transcription that fit the frames; if none scores, the fitting words at the smallest
    distance; every candidate scored exactly."""
    greedy = decoding.ctc_greedy_decode(log_probs, lengths)
    answers = []
    for image, hypothesis in enumerate(greedy):
        frames = int(lengths[image])
        fitting = [i for i in range(len(lexicon)) if lexicon._min_frames[i] <= frames]
        distances = {i: edit_distance(hypothesis.ids, lexicon.ids(i)) for i in fitting}
        ranked = []
        for candidates, fallback in (([i for i in fitting if distances[i] <= delta], False), (None, True)):
            if candidates is None:
                nearest = min(distances.values(), default=None)
                candidates = [i for i in fitting if distances[i] == nearest]
            scores = ctc_sequence_log_probs(
                log_probs[image : image + 1], [lexicon.ids(i) for i in candidates] or [[1]], lengths[image : image + 1]
            )[: len(candidates)].tolist()
            ranked = sorted(
                ((score, i) for score, i in zip(scores, candidates) if score > -np.inf), key=lambda x: (-x[0], x[1])
            )
            if ranked:
                break
        answers.append((fallback, [(lexicon.words[i], score) for score, i in ranked[:top_k]]))
    return answers


@pytest.mark.parametrize("backend", ["rapidfuzz", "numpy"])
@pytest.mark.parametrize("delta", [0, 1, 3])
def test_fallback_gives_the_brute_force_answers_on_random_logits(monkeypatch, backend, delta):
    if backend == "numpy":
        monkeypatch.setattr(decoding, "_rapidfuzz_process", None)
    elif decoding._rapidfuzz_process is None:
        pytest.skip("rapidfuzz is not installed")
    rng = np.random.default_rng(delta)
    words = sorted({"".join(rng.choice(list(LETTERS), size=rng.integers(1, 9))) for _ in range(300)})
    lexicon = Lexicon(words)
    generator = torch.Generator().manual_seed(delta)
    log_probs = (torch.randn(24, 12, len(DEFAULT_VOCAB), generator=generator) * 3).log_softmax(-1)
    lengths = torch.randint(1, 13, (24,), generator=generator)
    expected = brute_force(log_probs, lengths, lexicon, delta, top_k=2)
    # exhaustive_max_words=0: the small lexicon takes the large-lexicon path (delta search, then the fallback).
    results = ctc_lexicon_decode(log_probs, lexicon, lengths, delta=delta, top_k=2, exhaustive_max_words=0)
    assert sum(result.lexicon_fallback for result in results) >= 5  # random logits: mostly nothing within delta
    for result, (fallback, ranked) in zip(results, expected, strict=True):
        assert result.lexicon_fallback == fallback
        if ranked:
            assert [h.text for h in result.nbest] == [word for word, _ in ranked]
            np.testing.assert_allclose([h.score for h in result.nbest], [score for _, score in ranked], atol=1e-4)
        else:  # nothing in the lexicon fits the frames: the greedy transcription
            assert result.nbest[0].lexicon_index is None


def test_fallback_reuses_the_delta_search_distances(monkeypatch):
    """With rapidfuzz, noise crops cost one pass over the lexicon, not two (the bounded worst case)."""
    if decoding._rapidfuzz_process is None:
        pytest.skip("rapidfuzz is not installed")
    passes = []
    edit_distances = decoding._edit_distances
    monkeypatch.setattr(
        decoding, "_edit_distances", lambda queries, lexicon, cutoff: passes.append(cutoff) or edit_distances(
            queries, lexicon, cutoff
        )
    )
    lexicon = Lexicon(["alpha", "beta", "gamma", "delta", "epsilon"])
    log_probs = torch.randn(4, 26, len(DEFAULT_VOCAB), generator=torch.Generator().manual_seed(0)).log_softmax(-1)
    results = ctc_lexicon_decode(log_probs, lexicon, exhaustive_max_words=0)
    assert all(result.lexicon_fallback for result in results) and all(result.text in lexicon.words for result in results)
    assert passes == [3]
    # fallback="greedy" does not need the nearest words at all.
    passes.clear()
    results = ctc_lexicon_decode(log_probs, lexicon, exhaustive_max_words=0, fallback="greedy")
    assert all(result.lexicon_fallback and result.nbest[0].lexicon_index is None for result in results)
    assert passes == [3]
