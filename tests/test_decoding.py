# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Tests for hf_crnn.decoding against brute force: tiny vocabularies and few frames, so every CTC path can be
enumerated and summed per label sequence."""

import itertools
import math
import warnings

import numpy as np
import pytest
import torch

from hf_crnn import decoding
from hf_crnn.decoding import (
    DEFAULT_VOCAB,
    Lexicon,
    ctc_beam_search,
    ctc_decode,
    ctc_force_align,
    ctc_greedy_decode,
    ctc_lexicon_beam_search,
    ctc_lexicon_decode,
    ctc_sequence_log_probs,
    load_lexicon,
)

VOCAB = ("<blank>", "a", "b", "c", "d")  # blank + 4 characters: 5^7 paths at most, fine to enumerate
LETTERS = "abcd"


def random_log_probs(seed: int, batch: int, frames: int, vocab_size: int = len(VOCAB), sharpness: float = 2.0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, frames, vocab_size, generator=generator) * sharpness).log_softmax(-1)


def spelled_log_probs(path: str, vocab=DEFAULT_VOCAB, confidence: float = 0.9, seed: int = 0):
    """`(1, len(path), V)` log-probs whose most probable frame labels spell `path` ('-' = blank)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(path), len(vocab), generator=generator) * 0.1
    index = {token: i for i, token in enumerate(vocab)}
    for frame, char in enumerate(path):
        logits[frame, 0 if char == "-" else index[char]] += math.log(confidence * len(vocab) / (1 - confidence))
    return logits.log_softmax(-1)[None]


def path_sum_distribution(log_probs: torch.Tensor, length: int, blank_id: int = 0) -> dict[tuple[int, ...], float]:
    """Brute force: every path over the first `length` frames of `(T, V)` log-probs, summed per collapsed label
    sequence -> log p."""
    frame_log_probs = log_probs[:length].double().numpy()
    paths = np.array(list(itertools.product(range(frame_log_probs.shape[1]), repeat=length)))
    path_scores = frame_log_probs[np.arange(length), paths].sum(axis=1)
    grouped: dict[tuple[int, ...], list[float]] = {}
    for path, score in zip(paths.tolist(), path_scores.tolist()):
        labels = tuple(label for i, label in enumerate(path) if label != blank_id and (i == 0 or path[i - 1] != label))
        grouped.setdefault(labels, []).append(score)
    return {labels: float(np.logaddexp.reduce(scores)) for labels, scores in grouped.items()}


def to_ids(word: str, vocab=VOCAB) -> list[int]:
    return [vocab.index(char) for char in word]


def edit_distance(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def random_words(seed: int, count: int, max_length: int = 5) -> list[str]:
    rng = np.random.default_rng(seed)
    words = {"".join(rng.choice(list(LETTERS), size=rng.integers(1, max_length + 1))) for _ in range(count)}
    return sorted(words)


def exhaustive_lexicon_ranking(log_probs, length, words, vocab=VOCAB):
    """Every lexicon word scored exactly, best first (ties by lexicon order): [(word, log p)]."""
    scores = ctc_sequence_log_probs(log_probs[:1], [to_ids(word, vocab) for word in words], torch.tensor([length]))
    order = sorted(range(len(words)), key=lambda i: (-scores[i].item(), i))
    return [(words[i], scores[i].item()) for i in order]


# ------------------------------------------------------------------------------------------------------------
# Greedy
# ------------------------------------------------------------------------------------------------------------


def test_greedy_matches_brute_force_best_path():
    log_probs = random_log_probs(seed=0, batch=3, frames=6)
    lengths = torch.tensor([6, 4, 1])
    for image, hypothesis in enumerate(ctc_greedy_decode(log_probs, lengths)):
        length = int(lengths[image])
        frame_log_probs = log_probs[image, :length].double().numpy()
        paths = np.array(list(itertools.product(range(len(VOCAB)), repeat=length)))
        scores = frame_log_probs[np.arange(length), paths].sum(axis=1)
        best_path = paths[scores.argmax()].tolist()
        starts = [t for t in range(length) if best_path[t] != 0 and (t == 0 or best_path[t - 1] != best_path[t])]
        assert hypothesis.ids == [best_path[t] for t in starts]
        assert hypothesis.char_frames == starts
        assert hypothesis.score == pytest.approx(scores.max(), abs=1e-5)
        assert 0.0 <= hypothesis.confidence <= 1.0
        for start, char_score in zip(starts, hypothesis.char_scores):
            run_end = start
            while run_end + 1 < length and best_path[run_end + 1] == best_path[start]:
                run_end += 1
            expected = np.exp(frame_log_probs[start : run_end + 1, best_path[start]]).max()
            assert char_score == pytest.approx(expected, rel=1e-5)


def test_greedy_batch_equals_single_and_ignores_padding():
    log_probs = random_log_probs(seed=1, batch=4, frames=8)
    lengths = torch.tensor([8, 3, 0, 5])
    garbage = random_log_probs(seed=2, batch=4, frames=8)
    garbage[3, -1] = float("nan")  # padding frames are never read, whatever they hold
    padded = torch.where(torch.arange(8)[None, :, None] < lengths[:, None, None], log_probs, garbage)
    batched = ctc_greedy_decode(padded, lengths)
    for image, length in enumerate(lengths.tolist()):
        (single,) = ctc_greedy_decode(log_probs[image : image + 1, :length])
        assert batched[image].ids == single.ids
        assert batched[image].char_frames == single.char_frames
        assert batched[image].char_scores == pytest.approx(single.char_scores)
        assert batched[image].score == pytest.approx(single.score, abs=1e-6)
    assert batched[2].ids == [] and batched[2].score == 0.0


def test_greedy_handles_repeats_and_blank_at_other_index():
    vocab = ("a", "b", "<blank>")
    log_probs = spelled_log_probs("aa-ab-b", vocab=("-",) + vocab[:2]).roll(-1, dims=-1)  # blank moved to id 2
    (hypothesis,) = ctc_greedy_decode(log_probs, blank_id=2)
    assert hypothesis.ids == [0, 0, 1, 1]
    assert hypothesis.char_frames == [0, 3, 4, 6]


def test_accepts_numpy_and_half_precision():
    log_probs = random_log_probs(seed=20, batch=2, frames=6)
    expected = [h.ids for h in ctc_greedy_decode(log_probs)]
    assert [h.ids for h in ctc_greedy_decode(log_probs.numpy())] == expected
    assert [h.ids for h in ctc_greedy_decode(log_probs.to(torch.bfloat16))] == expected
    scores = ctc_sequence_log_probs(log_probs.double(), [[1, 2], [3]])
    assert scores.dtype == torch.float64


def test_force_align_of_greedy_ids_is_the_best_path():
    log_probs = random_log_probs(seed=3, batch=2, frames=8, sharpness=3.0)
    for image, hypothesis in enumerate(ctc_greedy_decode(log_probs)):
        frames, scores = ctc_force_align(log_probs[image], hypothesis.ids)
        assert frames == hypothesis.char_frames
        assert scores == pytest.approx(hypothesis.char_scores, rel=1e-5)
    with pytest.raises(ValueError, match="cannot be aligned"):
        ctc_force_align(log_probs[0], [1, 1, 1, 1, 1], length=8)


# ------------------------------------------------------------------------------------------------------------
# Exact scoring and beam search
# ------------------------------------------------------------------------------------------------------------


def test_sequence_log_probs_match_brute_force_path_sums():
    log_probs = random_log_probs(seed=4, batch=2, frames=6, sharpness=1.0)
    lengths = torch.tensor([6, 5])
    sequences = [[], [1], [2, 2], [1, 2, 3], [4, 4, 4], [1, 1, 1, 1], [3, 1, 4, 2, 2], [1, 2, 3, 4, 1, 2, 3]]
    for image in range(2):
        truth = path_sum_distribution(log_probs[image], int(lengths[image]))
        scores = ctc_sequence_log_probs(log_probs, sequences, lengths, image_index=[image] * len(sequences))
        for sequence, score in zip(sequences, scores.tolist()):
            expected = truth.get(tuple(sequence), -math.inf)
            if expected == -math.inf:
                assert score == -math.inf, sequence  # more labels plus repeats than frames
            else:
                assert score == pytest.approx(expected, abs=1e-4), sequence
    # default pairing: sequence i against image i
    pairwise = ctc_sequence_log_probs(log_probs, [[1, 2], [3]], lengths)
    assert pairwise[1].item() == pytest.approx(path_sum_distribution(log_probs[1], 5)[(3,)], abs=1e-4)


def test_sequence_probabilities_sum_to_one():
    log_probs = random_log_probs(seed=5, batch=1, frames=4, vocab_size=3)
    sequences = [list(s) for n in range(5) for s in itertools.product([1, 2], repeat=n)]
    total = ctc_sequence_log_probs(log_probs, sequences).exp().sum().item()
    assert total == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("seed,sharpness", [(6, 0.5), (7, 2.0), (8, 4.0)])
def test_wide_beam_finds_the_exact_most_probable_labelling(seed, sharpness):
    frames = 6
    log_probs = random_log_probs(seed=seed, batch=1, frames=frames, sharpness=sharpness)
    truth = sorted(path_sum_distribution(log_probs[0], frames).items(), key=lambda item: -item[1])
    # 1 + 4 + ... + 4^6 prefixes: a beam of 10^4 with no per-frame cutoff keeps all of them.
    (nbest,) = ctc_beam_search(log_probs, beam_width=10_000, top_k=5, min_char_prob=0.0)
    assert [tuple(h.ids) for h in nbest] == [labels for labels, _ in truth[:5]]
    assert [h.score for h in nbest] == pytest.approx([score for _, score in truth[:5]], abs=1e-4)


def test_wide_beam_with_a_character_cutoff_is_exact_over_the_paths_it_keeps():
    """With `min_char_prob`, a character below it starts no new prefix on that frame, but a character held from the
    previous frame still counts (frames where no character passes are updated in place). A beam wide enough to keep
    every prefix then sums exactly the paths that respect this rule: checked against brute force."""
    frames, cutoff = 6, 0.3
    log_probs = random_log_probs(seed=12, batch=1, frames=frames, sharpness=1.0)
    frame_log_probs = log_probs[0].double().numpy()
    assert (frame_log_probs[:, 1:].max(axis=1) < math.log(cutoff)).sum() >= 2  # frames where nothing branches
    grouped: dict[tuple[int, ...], list[float]] = {}
    for path in itertools.product(range(len(VOCAB)), repeat=frames):
        starts = [t for t, label in enumerate(path) if label != 0 and (t == 0 or path[t - 1] != label)]
        if any(frame_log_probs[t, path[t]] < math.log(cutoff) for t in starts):
            continue
        labels = tuple(path[t] for t in starts)
        grouped.setdefault(labels, []).append(float(frame_log_probs[np.arange(frames), list(path)].sum()))
    truth = sorted(((labels, float(np.logaddexp.reduce(scores))) for labels, scores in grouped.items()),
                   key=lambda item: -item[1])
    (nbest,) = ctc_beam_search(log_probs, beam_width=10_000, top_k=len(truth), min_char_prob=cutoff)
    assert sorted(tuple(h.ids) for h in nbest) == sorted(labels for labels, _ in truth)
    assert [h.score for h in nbest] == pytest.approx([score for _, score in truth], abs=1e-6)


@pytest.mark.parametrize("min_char_prob, max_chars_per_frame", [(0.05, None), (0.05, 2), (0.0, None), (0.0, 1)])
def test_frame_label_candidates_are_the_passing_characters_most_probable_first(min_char_prob, max_chars_per_frame):
    """Per frame, the non-blank labels at least `min_char_prob` probable, most probable first (ties by label), at most
    `max_chars_per_frame`; frames with none (most, on a trained model) get an empty list. Ties are built in."""
    log_probs = random_log_probs(seed=3, batch=1, frames=40, vocab_size=12, sharpness=3.0)[0].double().numpy()
    log_probs[5, 3] = log_probs[5, 7] = log_probs[5].max()  # a tie between two characters
    candidates = decoding._frame_label_candidates(log_probs, 0, min_char_prob, max_chars_per_frame)
    threshold = math.log(min_char_prob) if min_char_prob > 0 else -math.inf
    for row, frame_candidates in zip(log_probs, candidates):
        expected = sorted((label for label in range(1, 12) if row[label] >= threshold), key=lambda label: -row[label])
        assert frame_candidates == expected[:max_chars_per_frame]
    assert candidates[5][:2] == [3, 7][:max_chars_per_frame]
    assert any(not frame for frame in candidates) == (min_char_prob > 0)


def test_default_beam_is_a_lower_bound_and_agrees_with_greedy_on_a_confident_model():
    log_probs = random_log_probs(seed=9, batch=3, frames=6, sharpness=1.5)
    for image, (best, *_) in enumerate(ctc_beam_search(log_probs, beam_width=4)):
        truth = path_sum_distribution(log_probs[image], 6)
        assert best.score <= truth[tuple(best.ids)] + 1e-6
    confident = spelled_log_probs("c-aa-tt", confidence=0.99)
    (greedy,) = ctc_greedy_decode(confident)
    (beam,) = ctc_beam_search(confident, beam_width=5, top_k=1, return_char_frames=True)
    assert beam[0].ids == greedy.ids == to_ids("cat", DEFAULT_VOCAB)
    assert beam[0].char_frames == greedy.char_frames == [0, 2, 5]


# ------------------------------------------------------------------------------------------------------------
# Lexicon decoding
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [0, 1, 2])
def test_lexicon_search_agrees_with_exhaustive_scoring(delta):
    words = random_words(seed=10, count=80)
    lexicon = Lexicon(words, VOCAB)
    log_probs = random_log_probs(seed=11, batch=12, frames=7, sharpness=2.5)
    lengths = torch.tensor([7, 6, 5, 7, 3, 7, 6, 7, 4, 7, 7, 2])
    # exhaustive_max_words=0 forces the large-lexicon path: edit-distance candidates, then exact scores.
    results = ctc_lexicon_decode(log_probs, lexicon, lengths, delta=delta, exhaustive_max_words=0, top_k=3)
    greedy = ctc_greedy_decode(log_probs, lengths)
    fallbacks = 0
    for image, result in enumerate(results):
        ranking = exhaustive_lexicon_ranking(log_probs[image : image + 1], int(lengths[image]), words)
        fitting = [(word, score) for word, score in ranking if score > -math.inf]
        within = [(w, s) for w, s in fitting if edit_distance(to_ids(w), greedy[image].ids) <= delta]
        if within:
            assert not result.lexicon_fallback
            assert [h.text for h in result.nbest] == [w for w, _ in within[:3]]
            assert [h.score for h in result.nbest] == pytest.approx([s for _, s in within[:3]], abs=1e-4)
            if ranking[0][0] in dict(within):
                assert result.text == ranking[0][0]  # the paper's guarantee: the best word, when it is near
        else:
            fallbacks += 1
            assert result.lexicon_fallback
            nearest = min(edit_distance(to_ids(w), greedy[image].ids) for w, _ in fitting)
            assert edit_distance(result.ids, greedy[image].ids) == nearest
        assert result.nbest[0].lexicon_index == words.index(result.text)
    if delta == 0:
        assert fallbacks > 0  # the fallback branch was exercised


@pytest.mark.parametrize("sharpness", [0.3, 2.0, 8.0, 40.0])
def test_word_upper_bounds_are_upper_bounds(sharpness):
    """The branch and bound is exact only if the cheap bounds never fall below the exact CTC score."""
    words = random_words(seed=21, count=150, max_length=6)
    lexicon = Lexicon(words, VOCAB)
    log_probs = random_log_probs(seed=22, batch=4, frames=8, sharpness=sharpness)
    for image in range(4):
        exact = ctc_sequence_log_probs(log_probs[image : image + 1], [lexicon.ids(i) for i in range(len(lexicon))])
        probs = log_probs[image].double().exp().numpy()
        bounds = decoding._word_upper_bounds(lexicon, np.arange(len(lexicon)), probs, blank_id=0)
        fits = exact > -math.inf
        assert (bounds[fits.numpy()] >= exact[fits].double().numpy() - 1e-6).all()


def test_small_lexicon_is_searched_exhaustively():
    words = random_words(seed=12, count=60)
    log_probs = random_log_probs(seed=13, batch=6, frames=6, sharpness=1.0)  # flat: bounds prune little
    results = ctc_decode(log_probs, method="lexicon", lexicon=words, vocab=VOCAB, top_k=4)
    for image, result in enumerate(results):
        ranking = exhaustive_lexicon_ranking(log_probs[image : image + 1], 6, words)
        assert [h.text for h in result.nbest] == [word for word, _ in ranking[:4]]
        assert [h.score for h in result.nbest] == pytest.approx([score for _, score in ranking[:4]], abs=1e-4)
        assert not result.lexicon_fallback


def test_lexicon_fallback_is_flagged():
    log_probs = spelled_log_probs("ca-t", confidence=0.95)
    words = ["ccccc", "dog", "doge"]  # greedy says "cat"; "dog" is 3 edits away, "ccccc" does not fit 4 frames
    kwargs = {"delta": 1, "exhaustive_max_words": 0}
    (nearest,) = ctc_lexicon_decode(log_probs, words, **kwargs)
    assert nearest.lexicon_fallback and nearest.text == "dog"
    (greedy,) = ctc_lexicon_decode(log_probs, words, fallback="greedy", **kwargs)
    assert greedy.lexicon_fallback and greedy.text == "cat" and greedy.nbest[0].lexicon_index is None
    (near,) = ctc_lexicon_decode(log_probs, words + ["bat"], **kwargs)
    assert not near.lexicon_fallback and near.text == "bat"
    (nothing_fits,) = ctc_lexicon_decode(log_probs, ["ccccc"])
    assert nothing_fits.lexicon_fallback and nothing_fits.text == "cat"


def test_lexicon_matches_case_folded_and_returns_original_spelling():
    log_probs = spelled_log_probs("hel-lo", confidence=0.9)
    words = ["Help", "HELLO", "hello", "Yellow"]
    lexicon = Lexicon(words)  # lowercase vocabulary: case folded automatically
    assert lexicon.lowercase and lexicon.words == ["Help", "HELLO", "Yellow"]  # "hello" folds onto "HELLO"
    (result,) = ctc_lexicon_decode(log_probs, lexicon, top_k=2)
    assert result.text == "HELLO" and result.ids == to_ids("hello", DEFAULT_VOCAB)
    with pytest.warns(UserWarning, match="skipped 3 word"):
        case_sensitive = Lexicon(words, lowercase=False)
    assert case_sensitive.words == ["hello"]


def test_out_of_vocabulary_lexicon_words_are_skipped_with_one_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lexicon = Lexicon(["cab", "café", "a-b", "bad", "", "x"], VOCAB)
    assert len(caught) == 1 and "skipped 3 word" in str(caught[0].message)
    assert lexicon.words == ["cab", "bad"] and lexicon.skipped == ["café", "a-b", "x"]
    with pytest.raises(ValueError, match="empty"), pytest.warns(UserWarning):
        Lexicon(["xyz"], VOCAB)
    with pytest.raises(ValueError, match="empty"):
        Lexicon([], VOCAB)


def test_load_lexicon_from_file_and_cache(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("cab\n\n  bad  \nDAD\ncab\n", encoding="utf-8")
    lexicon = load_lexicon(path, VOCAB)
    assert lexicon.words == ["cab", "bad", "DAD"] and lexicon.lowercase
    assert load_lexicon(str(path), VOCAB) is lexicon  # cached by path, mtime and size
    assert load_lexicon(lexicon, VOCAB) is lexicon
    log_probs = spelled_log_probs("d-a-d", vocab=VOCAB)
    assert ctc_decode(log_probs, lexicon=str(path), vocab=VOCAB)[0].text == "DAD"
    with pytest.raises(ValueError, match="not found"):
        load_lexicon(tmp_path / "missing.txt", VOCAB)
    with pytest.raises(ValueError, match="different vocabulary"):
        load_lexicon(lexicon, DEFAULT_VOCAB)


def test_per_image_lexicons():
    log_probs = torch.cat([spelled_log_probs("ab-b", vocab=VOCAB), spelled_log_probs("ab-b", vocab=VOCAB, seed=1)])
    without_abb = ["ab", "cd"]
    results = ctc_decode(log_probs, lexicon=[["abb", "cd"], without_abb], vocab=VOCAB)
    assert [r.text for r in results] == ["abb", "ab"]
    beam_results = ctc_decode(
        log_probs, lexicon=[Lexicon(["abb", "cd"], VOCAB), without_abb], vocab=VOCAB, beam_width=8
    )
    assert [r.text for r in beam_results] == ["abb", "ab"]
    with pytest.raises(ValueError, match="per-image lexicons"):
        ctc_decode(log_probs, lexicon=[without_abb], vocab=VOCAB)


def test_numpy_edit_distance_fallback_matches_rapidfuzz(monkeypatch):
    rng = np.random.default_rng(14)
    words = ["".join(rng.choice(list(LETTERS), size=rng.integers(1, 9))) for _ in range(200)]
    lexicon = Lexicon(words, VOCAB)
    queries = [rng.integers(1, 5, size=length).tolist() for length in (0, 1, 4, 8)]
    expected = [[edit_distance(query, lexicon.ids(i)) for i in range(len(lexicon))] for query in queries]
    assert [d.tolist() for d in decoding._edit_distances(queries, lexicon, None)] == expected
    monkeypatch.setattr(decoding, "_rapidfuzz_process", None)
    assert [d.tolist() for d in decoding._edit_distances(queries, lexicon, None)] == expected
    monkeypatch.undo()
    log_probs = random_log_probs(seed=15, batch=6, frames=7, sharpness=2.5)
    with_rapidfuzz = ctc_lexicon_decode(log_probs, lexicon, delta=2, exhaustive_max_words=0, top_k=2)
    monkeypatch.setattr(decoding, "_rapidfuzz_process", None)
    without = ctc_lexicon_decode(log_probs, lexicon, delta=2, exhaustive_max_words=0, top_k=2)
    assert [[h.text for h in r.nbest] for r in with_rapidfuzz] == [[h.text for h in r.nbest] for r in without]


# ------------------------------------------------------------------------------------------------------------
# Lexicon-constrained beam search
# ------------------------------------------------------------------------------------------------------------


def test_trie_beam_outputs_only_lexicon_words_and_matches_exhaustive_with_a_wide_beam():
    words = random_words(seed=16, count=40)
    log_probs = random_log_probs(seed=17, batch=5, frames=6, sharpness=2.0)
    narrow = ctc_lexicon_beam_search(log_probs, words, vocab=VOCAB, beam_width=3, top_k=3)
    greedy = ctc_greedy_decode(log_probs)
    for image, result in enumerate(narrow):
        if result.lexicon_fallback:  # a beam of 3 can lose every word: then the greedy transcription, flagged
            assert [h.ids for h in result.nbest] == [greedy[image].ids]
        else:
            assert all(h.text in words for h in result.nbest)
    assert sum(result.lexicon_fallback for result in narrow) == 1
    wide = ctc_lexicon_beam_search(log_probs, words, vocab=VOCAB, beam_width=10_000, min_char_prob=0.0, top_k=3)
    for image, result in enumerate(wide):
        ranking = exhaustive_lexicon_ranking(log_probs[image : image + 1], 6, words)
        assert [h.text for h in result.nbest] == [word for word, _ in ranking[:3]]
        assert [h.score for h in result.nbest] == pytest.approx([score for _, score in ranking[:3]], abs=1e-4)


def test_trie_beam_out_of_lexicon_penalty():
    log_probs = random_log_probs(seed=18, batch=3, frames=6, sharpness=2.0)
    words = ["ab", "cd", "abcd"]
    wide = {"beam_width": 10_000, "min_char_prob": 0.0}
    # No penalty: every labelling is allowed at its own probability, as in free beam search.
    free = ctc_beam_search(log_probs, top_k=1, **wide)
    unpenalised = ctc_lexicon_beam_search(log_probs, words, vocab=VOCAB, oov_penalty=0.0, **wide)
    assert [r.ids for r in unpenalised] == [nbest[0].ids for nbest in free]
    # A huge penalty: lexicon words again.
    strict = ctc_lexicon_beam_search(log_probs, words, vocab=VOCAB, oov_penalty=1e6, **wide)
    assert all(r.text in words and not r.lexicon_fallback for r in strict)


# ------------------------------------------------------------------------------------------------------------
# Dispatch, results and input validation
# ------------------------------------------------------------------------------------------------------------


def test_ctc_decode_picks_the_method_and_fills_text():
    log_probs = spelled_log_probs("c-a-b", vocab=VOCAB)
    assert ctc_decode(log_probs, vocab=VOCAB)[0].text == "cab"
    assert ctc_decode(log_probs)[0].text is None  # ids only without a vocab
    beam = ctc_decode(log_probs, vocab=dict(zip(VOCAB, range(5))), beam_width=5, top_k=3, return_char_frames=True)[0]
    assert beam.text == "cab" and len(beam.nbest) == 3 and beam.char_frames == [0, 2, 4]
    lexicon = ctc_decode(log_probs, vocab=VOCAB, lexicon=["cab", "dab"], return_char_frames=True)[0]
    assert lexicon.text == "cab" and lexicon.char_frames == [0, 2, 4] and len(lexicon.char_scores) == 3
    assert lexicon.best.lexicon_index == 0 and 0 < lexicon.confidence <= 1


def test_bad_inputs_raise_clear_errors():
    log_probs = random_log_probs(seed=19, batch=2, frames=5)
    with pytest.raises(ValueError, match="batch, frames, vocab"):
        ctc_greedy_decode(log_probs[0])
    with pytest.raises(ValueError, match="floating-point"):
        ctc_greedy_decode(log_probs.long())
    with pytest.raises(ValueError, match="log_softmax"):
        ctc_greedy_decode(log_probs * 3)
    with pytest.raises(ValueError, match=r"lengths.*\[0, T=5\]"):
        ctc_greedy_decode(log_probs, torch.tensor([6, 2]))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        ctc_greedy_decode(log_probs, torch.tensor([5]))
    with pytest.raises(ValueError, match="integers"):
        ctc_greedy_decode(log_probs, torch.tensor([5.0, 2.0]))
    with pytest.raises(ValueError, match="blank_id"):
        ctc_greedy_decode(log_probs, blank_id=5)
    with pytest.raises(ValueError, match="blank"):
        ctc_sequence_log_probs(log_probs, [[1, 0], [2]])
    with pytest.raises(ValueError, match="image_index"):
        ctc_sequence_log_probs(log_probs, [[1], [2], [3]])
    with pytest.raises(ValueError, match="method"):
        ctc_decode(log_probs, method="viterbi")
    with pytest.raises(ValueError, match="does not use one"):
        ctc_decode(log_probs, method="beam", lexicon=["ab"], vocab=VOCAB)
    with pytest.raises(ValueError, match="V=5"):
        ctc_decode(log_probs, lexicon=["ab"])  # default vocab has 37 tokens
    with pytest.raises(ValueError, match="beam_width"):
        ctc_beam_search(log_probs, beam_width=0)
    with pytest.raises(ValueError, match="delta"):
        ctc_lexicon_decode(log_probs, ["ab"], vocab=VOCAB, delta=-1)
    with pytest.raises(TypeError, match="load_lexicon"):
        Lexicon("words.txt", VOCAB)


def test_only_remote_code_safe_imports():
    """The file ships as remote code: transformers' import check (which skips try blocks) must only find stdlib,
    numpy and torch."""
    from transformers.dynamic_module_utils import get_imports

    stdlib = {"__future__", "collections", "dataclasses", "functools", "heapq", "math", "os", "warnings"}
    assert set(get_imports(decoding.__file__)) <= stdlib | {"numpy", "torch"}


# ---- confidence ------------------------------------------------------------------------------------------------------


def test_word_confidence_is_the_least_sure_character():
    assert decoding.word_confidence([0.9, 0.4, 0.99]) == pytest.approx(0.4)
    assert decoding.word_confidence([]) == 0.0  # nothing read: nothing to accept
    # A hypothesis less likely than the best path is scaled by how much less likely it is; never scaled up.
    assert decoding.word_confidence([0.9], math.log(0.1), math.log(0.4)) == pytest.approx(0.9 * 0.25)
    assert decoding.word_confidence([0.9], math.log(0.5), math.log(0.4)) == pytest.approx(0.9)


def test_confidence_does_not_fall_with_frames_or_length_but_the_path_probability_does():
    short = ctc_decode(spelled_log_probs("c-a-t", confidence=0.99), vocab=DEFAULT_VOCAB)[0]
    long = ctc_decode(spelled_log_probs("c-a-t-" * 40 + "--" * 200, confidence=0.99), vocab=DEFAULT_VOCAB)[0]
    assert short.text == "cat" and long.text == "cat" * 40
    assert long.probability < 0.01 * short.probability  # exp(best path score) collapses with width and length
    assert long.confidence == pytest.approx(short.confidence, abs=0.02) and long.confidence > 0.95
    assert short.confidence == pytest.approx(min(short.char_scores))


def test_confidence_sees_a_character_a_hypothesis_leaves_out():
    log_probs = spelled_log_probs("c-a-t", confidence=0.99)
    greedy, lexicon_word = (
        ctc_decode(log_probs, vocab=DEFAULT_VOCAB)[0],
        ctc_decode(log_probs, vocab=DEFAULT_VOCAB, lexicon=["ct"], return_char_frames=True)[0],
    )
    assert lexicon_word.text == "ct" and min(lexicon_word.char_scores) > 0.9  # its characters alone look sure
    assert lexicon_word.confidence < 0.05 < 0.9 < greedy.confidence
    beam = ctc_decode(log_probs, vocab=DEFAULT_VOCAB, beam_width=5, top_k=3, return_char_frames=True)[0]
    assert beam.nbest[0].confidence == pytest.approx(greedy.confidence)
    assert all(hypothesis.confidence < 0.05 for hypothesis in beam.nbest[1:])
    # Without char frames a non-greedy hypothesis has no confidence yet.
    assert ctc_decode(log_probs, vocab=DEFAULT_VOCAB, beam_width=5)[0].confidence is None
