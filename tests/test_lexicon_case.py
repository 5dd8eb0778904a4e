# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Lexicons whose case differs from the model's: cased (EasyOCR-style) and lowercase (paper-style) vocabularies."""

import math

import pytest
import torch

from hf_crnn.decoding import DEFAULT_VOCAB, Lexicon, ctc_decode, ctc_lexicon_beam_search, ctc_lexicon_decode, fold_case

CASED_VOCAB = ("<blank>", *"0123456789", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", *"abcdefghijklmnopqrstuvwxyz")


def spelled(path: str, vocab, confidence: float = 0.9) -> torch.Tensor:
    """`(1, len(path), V)` log-probs whose best frame labels spell `path` ('-' = blank)."""
    logits = torch.full((len(path), len(vocab)), 0.0)
    for frame, char in enumerate(path):
        logits[frame, vocab.index("<blank>" if char == "-" else char)] = 6.0
    return torch.log_softmax(logits / (1.0 - confidence + 0.1), dim=-1).unsqueeze(0)


@pytest.mark.parametrize("search", ["exhaustive", "delta"])
def test_lowercase_lexicon_on_a_cased_model_finds_the_upper_case_word(search):
    log_probs = spelled("HE-L-LO-", CASED_VOCAB)
    options = {"exhaustive_max_words": 0, "delta": 1} if search == "delta" else {}
    words = ["hello", "help", "yellow", "world"]
    (result,) = ctc_lexicon_decode(log_probs, words, vocab=CASED_VOCAB, top_k=2, **options)
    assert result.text == "hello" and not result.lexicon_fallback  # the lexicon's spelling, found by the search
    assert result.nbest[0].score > math.log(0.5)  # the image's reading is the word: a high probability, not ~0
    # Case-sensitive matching, on request, still finds only the exact case.
    (exact,) = ctc_lexicon_decode(log_probs, words, vocab=CASED_VOCAB, lowercase=False, **options)
    assert exact.nbest[0].score < math.log(1e-3)
    (beam,) = ctc_lexicon_beam_search(log_probs, words, vocab=CASED_VOCAB, beam_width=5)
    assert beam.text == "hello"


def test_case_insensitive_score_bounds_the_exact_spelling_score():
    # Folding adds every case's probability per frame, so the folded word is at least as probable as the spelling
    # the frames show (exactly: every alignment of "HeLp" is an alignment of "help" after folding), and more where
    # frames hesitate between cases.
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 9, len(CASED_VOCAB), generator=generator)
    for frame, char in enumerate("H-ee-L-p-"):
        logits[0, frame, CASED_VOCAB.index("<blank>" if char == "-" else char)] += 3.0
    logits[0, 2, CASED_VOCAB.index("E")] += 3.0  # the frames are unsure of this letter's case
    log_probs = logits.log_softmax(-1)
    (folded,) = ctc_lexicon_decode(log_probs, ["help", "hold"], vocab=CASED_VOCAB)
    (exact,) = ctc_lexicon_decode(log_probs, ["HeLp", "hold"], vocab=CASED_VOCAB, lowercase=False)
    assert folded.text == "help" and exact.text == "HeLp"
    assert folded.nbest[0].score > exact.nbest[0].score + 0.1
    assert folded.nbest[0].score <= 0.0


def test_fold_case_keeps_a_distribution_and_leaves_lowercase_models_alone():
    log_probs = torch.randn(2, 4, len(CASED_VOCAB)).log_softmax(-1)
    lexicon = Lexicon(["abc"], CASED_VOCAB)
    folded = fold_case(log_probs, [lexicon, lexicon])
    assert torch.allclose(folded.exp().sum(-1), torch.ones(2, 4), atol=1e-5)
    assert torch.all(folded[..., CASED_VOCAB.index("A")] == -math.inf)
    expected = torch.logaddexp(log_probs[..., CASED_VOCAB.index("a")], log_probs[..., CASED_VOCAB.index("A")])
    assert torch.allclose(folded[..., CASED_VOCAB.index("a")], expected)
    lowercase_model = torch.randn(1, 4, len(DEFAULT_VOCAB)).log_softmax(-1)
    assert fold_case(lowercase_model, [Lexicon(["abc"])]) is lowercase_model  # nothing to merge
    # Case-sensitive matching on a cased model folds nothing either.
    assert fold_case(log_probs, [Lexicon(["abc"], CASED_VOCAB, lowercase=False)] * 2) is log_probs


@pytest.mark.parametrize("lexicon", [["HELLO", "WORLD", "HELP"], ["Hello", "World", "hElp"]])
def test_upper_and_mixed_case_lexicons_on_a_lowercase_model(lexicon):
    log_probs = spelled("he-l-lo-", DEFAULT_VOCAB)
    (result,) = ctc_lexicon_decode(log_probs, lexicon, vocab=DEFAULT_VOCAB, exhaustive_max_words=0, delta=1)
    assert result.text == lexicon[0] and not result.lexicon_fallback
    assert result.nbest[0].score > math.log(0.5)
    assert ctc_decode(log_probs, method="lexicon", lexicon=lexicon)[0].text == lexicon[0]
    # Case-sensitive matching cannot spell upper case on a lowercase model: those words are skipped, said once.
    with pytest.warns(UserWarning, match="skipped"):
        exact = Lexicon(lexicon + ["hello"], DEFAULT_VOCAB, lowercase=False)
    assert exact.words == ["hello"]


def test_upper_case_only_model_reads_a_lowercase_lexicon():
    vocab = ("<blank>", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    log_probs = spelled("CA-T-", vocab)
    (result,) = ctc_lexicon_decode(log_probs, ["cat", "dog"], vocab=vocab)
    assert result.text == "cat" and result.nbest[0].score > math.log(0.5)


@pytest.mark.parametrize("method", ["lexicon", "lexicon_beam"])
def test_upper_case_image_read_as_a_lowercase_word_is_confident(method):
    # The word's characters are scored on the folded frames it was found in (p('h') + p('H')), by either search:
    # a correct case-insensitive read is not reported as doubtful because the image shows the other case.
    log_probs = spelled("-HH-EE-LL-LL-OO-", CASED_VOCAB)
    (result,) = ctc_decode(
        log_probs, method=method, lexicon=["hello", "world"], vocab=CASED_VOCAB, return_char_frames=True
    )
    assert result.text == "hello" and not result.lexicon_fallback
    assert 0.9 < result.confidence <= 1.0


@pytest.mark.parametrize("method", ["lexicon", "lexicon_beam"])
def test_greedy_fallback_keeps_the_models_case(method):
    # No lexicon word fits the frames: both searches return the lexicon-free reading as method="greedy" gives it,
    # in the model's own case (not the case-folded query the delta search used).
    log_probs = spelled("-Q-X-Z-", CASED_VOCAB)
    # (The delta search, not the exhaustive one, which would score every word that fits the frames.)
    options = {"fallback": "greedy", "exhaustive_max_words": 0, "delta": 1} if method == "lexicon" else {}
    (greedy,) = ctc_decode(log_probs, method="greedy", vocab=CASED_VOCAB)
    (result,) = ctc_decode(log_probs, method=method, lexicon=["hello", "world"], vocab=CASED_VOCAB, **options)
    assert greedy.text == "QXZ"
    assert result.lexicon_fallback and result.text == greedy.text
    assert result.confidence == pytest.approx(greedy.confidence)
    # In a padded batch where another image finds its word, the one that falls back still reads in the model's case.
    batch = torch.cat([spelled("HE-L-LO-", CASED_VOCAB), spelled("-Q-X-Z-A", CASED_VOCAB)])
    lengths = torch.tensor([8, 7])
    found, fell_back = ctc_decode(batch, lengths, method=method, lexicon=["hello", "world"], vocab=CASED_VOCAB,
                                  **options)
    assert (found.text, found.lexicon_fallback) == ("hello", False)
    assert (fell_back.text, fell_back.lexicon_fallback) == ("QXZ", True)
