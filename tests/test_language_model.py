# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Tests for hf_crnn.language_model and its fusion into CTC beam search (against brute force on tiny problems)."""

import json
import math
import os

import numpy as np
import pytest
import torch

from hf_crnn import CRNNProcessor
from hf_crnn.decoding import DEFAULT_VOCAB, ctc_beam_search, ctc_decode, ctc_sequence_log_probs
from hf_crnn.file_utils import read_word_list_file
from hf_crnn.language_model import (
    LANGUAGE_MODEL_FILE,
    UNMODELLED_CHARACTER,
    UNSCORED_WORD_LOG_PROB,
    CharNgramLanguageModel,
    load_language_model,
    normalize_word,
)
from hf_crnn.synthetic.text import BUILTIN_WORD_LIST

from conftest import load_script, render_word
from test_decoding import VOCAB, path_sum_distribution, random_log_probs, spelled_log_probs

WORDS = ["street", "station", "stop", "store", "Don't", "2026", "sale"]


@pytest.fixture(scope="module")
def language_model():
    return CharNgramLanguageModel(WORDS, order=4)


def test_words_are_normalised_and_counted_once():
    model = CharNgramLanguageModel(["Street", "street", "STREET!", "don't", "", "--"])
    assert model.words == ["dont", "street"]
    assert normalize_word("Don't 2-B") == "dont2b"
    assert model.alphabet == frozenset("dontstreet")


@pytest.mark.parametrize("context", ["", "s", "st", "stre", "zzzz", "d0n"])
def test_next_character_probabilities_sum_to_one(language_model, context):
    state = (language_model.initial_state + context)[-(language_model.order - 1) :]
    outcomes = sorted(language_model.alphabet) + ["$"]
    total = sum(math.exp(language_model.log_prob(state, character)) for character in outcomes)
    assert total == pytest.approx(1.0, abs=1e-9)


def test_training_words_outscore_misspellings(language_model):
    assert language_model.score("street") > language_model.score("strest") + 2
    assert language_model.score("Sale!") == pytest.approx(language_model.score("sale"))  # case and punctuation
    assert language_model.score("sto") < language_model.score("stop")  # the end of a word is modelled too


def test_unknown_spellings_keep_some_probability(language_model):
    assert math.isfinite(language_model.score("qxzv9"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"words": "street"}, "not one string"),
        ({"words": ["--", ""]}, "at least one word"),
        ({"words": WORDS, "order": 1}, "order"),
        ({"words": WORDS, "weight": -0.1}, "weight"),
        ({"words": WORDS, "length_bonus": float("nan")}, "length_bonus"),
        ({"words": WORDS, "greedy_confidence_cutoff": 0.0}, "greedy_confidence_cutoff"),
        ({"words": WORDS, "greedy_confidence_cutoff": 1.5}, "greedy_confidence_cutoff"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CharNgramLanguageModel(**kwargs)


def test_save_and_load_round_trip(tmp_path, language_model):
    path = tmp_path / "lm.json"
    language_model.save(path)
    loaded = CharNgramLanguageModel.load(path)
    assert (loaded.words, loaded.order, loaded.weight, loaded.length_bonus) == (
        language_model.words, language_model.order, language_model.weight, language_model.length_bonus
    )
    assert loaded.score("stoop") == pytest.approx(language_model.score("stoop"))
    assert not list(tmp_path.glob("*.partial"))


def test_load_names_a_damaged_file(tmp_path):
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{"model_type": "char_ngram", "words": ["a"')
    with pytest.raises(ValueError, match="truncated.json"):
        CharNgramLanguageModel.load(truncated)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model_type": "something else"}))
    with pytest.raises(ValueError, match="not a character n-gram"):
        CharNgramLanguageModel.load(other)
    bad_order = tmp_path / "bad_order.json"
    bad_order.write_text(json.dumps({"model_type": "char_ngram", "words": ["a"], "order": 0}))
    with pytest.raises(ValueError, match="bad_order.json is invalid"):
        CharNgramLanguageModel.load(bad_order)


def test_load_language_model_trains_on_word_lists_and_caches(tmp_path):
    word_list = tmp_path / "words.txt"
    word_list.write_text("street\nstation\n")
    first = load_language_model(word_list)
    assert first.words == ["station", "street"] and first.source.endswith("words.txt")
    assert load_language_model(word_list) is first
    with pytest.raises(ValueError, match="missing.txt"):
        load_language_model(tmp_path / "missing.txt")


# ---- fusion into beam search --------------------------------------------------------------------------------------


def test_language_model_corrects_an_unsure_character(language_model):
    log_probs = _unsure_street(0.52)  # "s" slightly ahead of "e"
    plain = ctc_decode(log_probs, vocab=DEFAULT_VOCAB, method="beam")[0].text
    fused = ctc_decode(log_probs, vocab=DEFAULT_VOCAB, language_model=language_model)[0].text
    assert (plain, fused) == ("strest", "street")


def test_clear_evidence_outweighs_the_language_model(language_model):
    log_probs = spelled_log_probs("q-x-z-9", confidence=0.99)
    assert ctc_decode(log_probs, vocab=DEFAULT_VOCAB, language_model=language_model)[0].text == "qxz9"


LINE_VOCAB = ("<blank>", "a", "b", " ", "d")  # with a space: two-word texts are scored word by word
CODE_VOCAB = ("<blank>", "a", "b", "7", " ")  # with a digit none of the words has: codes, numbers and spaces


@pytest.mark.parametrize("vocab", [VOCAB, LINE_VOCAB, CODE_VOCAB], ids=["word", "line", "code"])
@pytest.mark.parametrize("seed", range(6))
def test_wide_fused_beam_finds_the_brute_force_best(seed, vocab):
    language_model = CharNgramLanguageModel(
        ["abba", "cab", "dad", "bad"], order=3, weight=0.8, length_bonus=0.5, greedy_confidence_cutoff=None
    )
    log_probs = random_log_probs(seed, 1, 5, sharpness=1.5)
    distribution = path_sum_distribution(log_probs[0], 5)

    def fused(labels):
        text = "".join(vocab[label] for label in labels)
        unscored = ("", " ", UNMODELLED_CHARACTER)
        scored = sum(character not in unscored for character in language_model.token_characters(text))
        return distribution[labels] + language_model.weight * language_model.score(text) + 0.5 * scored

    best = max(distribution, key=fused)
    hypothesis = ctc_beam_search(
        log_probs, beam_width=1000, min_char_prob=0.0, language_model=language_model, vocab=vocab
    )[0][0]
    assert tuple(hypothesis.ids) == best
    assert hypothesis.score == pytest.approx(distribution[best], abs=1e-5)  # the CTC score, without the LM


def test_a_space_ends_one_word_and_starts_the_next(language_model):
    two_words = language_model.score("street") + language_model.score("sale")
    assert language_model.score("street sale") == pytest.approx(two_words)
    assert language_model.score("Street, sale!") == pytest.approx(language_model.score("street sale"))
    assert language_model.token_characters(["<blank>", " ", "S", "-"]) == ["", " ", "s", ""]


def test_zero_weight_and_bonus_is_plain_beam_search():
    language_model = CharNgramLanguageModel(
        ["abba", "cab"], weight=0.0, length_bonus=0.0, greedy_confidence_cutoff=None
    )
    log_probs = random_log_probs(3, 4, 9)
    plain = ctc_beam_search(log_probs, top_k=3)
    fused = ctc_beam_search(log_probs, top_k=3, language_model=language_model, vocab=VOCAB)
    assert [[h.ids for h in hyps] for hyps in fused] == [[h.ids for h in hyps] for hyps in plain]


def test_fused_batch_equals_one_image_at_a_time(language_model):
    log_probs = random_log_probs(7, 5, 12, vocab_size=len(DEFAULT_VOCAB), sharpness=3.0)
    lengths = torch.tensor([12, 7, 1, 0, 10])
    batch = ctc_decode(log_probs, lengths, vocab=DEFAULT_VOCAB, language_model=language_model)
    single = [
        ctc_decode(log_probs[i : i + 1, : int(lengths[i])], vocab=DEFAULT_VOCAB, language_model=language_model)[0]
        for i in range(5)
    ]
    assert [d.text for d in batch] == [d.text for d in single]


def test_punctuation_passes_through_unscored_and_unknown_letters_are_marked(language_model):
    vocab = ("<blank>", "s", "a", "l", "e", "!", "é")
    assert language_model.token_characters(vocab) == ["", "s", "a", "l", "e", "", UNMODELLED_CHARACTER]


LETTERS_ONLY_WORDS = ["street", "sale", "stop", "off"]  # like a dictionary: no digit in the model's alphabet


def test_a_word_without_a_scored_character_costs_the_fixed_prior():
    letters_only = CharNgramLanguageModel(LETTERS_ONLY_WORDS, order=4)
    for number in ("949", "70%", "06]", ""):
        assert letters_only.score(number) == pytest.approx(UNSCORED_WORD_LOG_PROB)
    assert letters_only.score("sale 70%") == pytest.approx(letters_only.score("sale") + UNSCORED_WORD_LOG_PROB)
    # A word's end is still modelled once a character was scored: a lone letter is an unlikely word here.
    assert letters_only.score("f") < UNSCORED_WORD_LOG_PROB - 3
    # A digit makes its word a code: its letters are scored, its end is not.
    f_first = letters_only.log_prob(letters_only.initial_state, "f")
    for code in ("27F", "F27", "2F7"):
        assert letters_only.score(code) == pytest.approx(f_first + UNSCORED_WORD_LOG_PROB), code
    assert letters_only.score("27F sale") == pytest.approx(letters_only.score("27F") + letters_only.score("sale"))


def test_the_language_model_neither_adds_a_letter_to_a_number_nor_drops_one_from_a_code():
    """A number must not pay for an empty word (~-30 nats in the n-gram estimate of a dictionary), which made the
    search append a barely visible letter to every number ("949" became "949f"); nor a code for a one-letter word."""
    # Thousands of words, as in a dictionary, make the empty word's n-gram estimate vanish.
    dictionary = [word for word in read_word_list_file(BUILTIN_WORD_LIST) if word.isalpha()]
    letters_only = CharNgramLanguageModel(dictionary, greedy_confidence_cutoff=None)
    log_probs = spelled_log_probs("9-4-9-f", confidence=0.9)
    index = {token: i for i, token in enumerate(DEFAULT_VOCAB)}
    log_probs[0, 6] = torch.full((len(DEFAULT_VOCAB),), -12.0)
    log_probs[0, 6, 0], log_probs[0, 6, index["f"]] = math.log(0.75), math.log(0.24)  # a faint mark after "949"
    log_probs = log_probs.log_softmax(-1)
    assert ctc_decode(log_probs, vocab=DEFAULT_VOCAB, method="beam")[0].text == "949"
    assert ctc_decode(log_probs, vocab=DEFAULT_VOCAB, language_model=letters_only)[0].text == "949"
    # Clear evidence of a letter still reads it.
    clear = spelled_log_probs("9-4-9-f", confidence=0.9)
    assert ctc_decode(clear, vocab=DEFAULT_VOCAB, language_model=letters_only)[0].text == "949f"


def test_language_model_only_with_beam_and_checked_vocab(language_model):
    log_probs = random_log_probs(0, 1, 6, vocab_size=len(DEFAULT_VOCAB))
    with pytest.raises(ValueError, match="method='beam' only"):
        ctc_decode(log_probs, vocab=DEFAULT_VOCAB, method="greedy", language_model=language_model)
    with pytest.raises(ValueError, match="method='beam' only"):
        ctc_decode(log_probs, vocab=DEFAULT_VOCAB, lexicon=["sale"], language_model=language_model)
    with pytest.raises(ValueError, match="CharNgramLanguageModel"):
        ctc_beam_search(log_probs, language_model="words.txt")
    with pytest.raises(ValueError, match="V=37"):
        ctc_beam_search(log_probs, language_model=language_model, vocab=VOCAB)


# ---- processor -----------------------------------------------------------------------------------------------------


def test_processor_ships_and_uses_its_language_model(tmp_path, processor, language_model):
    log_probs = random_log_probs(1, 3, 10, vocab_size=processor.tokenizer.vocab_size, sharpness=3.0)
    with pytest.raises(ValueError, match="has none"):
        processor.batch_decode(log_probs, language_model=True)

    shipping = CRNNProcessor(
        processor.image_processor, processor.tokenizer, lexicon=["sale"], language_model=language_model
    )
    shipping.save_pretrained(tmp_path)
    assert (tmp_path / LANGUAGE_MODEL_FILE).is_file()
    assert "language_model" not in json.loads((tmp_path / "processor_config.json").read_text())
    loaded = CRNNProcessor.from_pretrained(tmp_path)
    # Saved again before its first use, a loaded model is copied as it is, not built to be written back.
    loaded.save_pretrained(tmp_path / "again")
    assert isinstance(loaded._language_model, (str, os.PathLike))
    saved = (tmp_path / "again" / LANGUAGE_MODEL_FILE).read_bytes()
    assert saved == (tmp_path / LANGUAGE_MODEL_FILE).read_bytes()
    assert loaded.language_model.words == language_model.words and loaded.language_model.order == 4

    expected = [d.text for d in ctc_decode(
        log_probs, vocab=processor.tokenizer.get_vocab(), language_model=language_model
    )]
    # True means the processor's own model, and it wins over the default lexicon (a lexicon would force "sale").
    assert loaded.batch_decode(log_probs, language_model=True) == expected
    assert loaded.batch_decode(log_probs, language_model=tmp_path / LANGUAGE_MODEL_FILE) == expected
    assert loaded.batch_decode(log_probs) == ["sale"] * 3  # no language model asked: the default lexicon


def test_processor_refuses_other_language_model_types(processor):
    with pytest.raises(ValueError, match="CharNgramLanguageModel or a path"):
        CRNNProcessor(processor.image_processor, processor.tokenizer, language_model=np.zeros(3))


def test_every_fused_hypothesis_is_a_valid_labelling(language_model):
    """Fused scores stay CTC log-probabilities: each is at most the exact probability of its labelling."""
    log_probs = random_log_probs(11, 2, 8, vocab_size=len(DEFAULT_VOCAB), sharpness=2.5)
    for image, hypotheses in enumerate(ctc_beam_search(log_probs, top_k=4, language_model=language_model)):
        exact = ctc_sequence_log_probs(log_probs[image : image + 1].expand(len(hypotheses), -1, -1),
                                       [h.ids for h in hypotheses])
        for hypothesis, exact_score in zip(hypotheses, exact.tolist()):
            assert hypothesis.score <= exact_score + 1e-6



def test_with_fusion_shares_the_counts_and_checks_settings(language_model):
    tuned = language_model.with_fusion(weight=0.9, greedy_confidence_cutoff=None)
    assert (tuned.weight, tuned.length_bonus, tuned.greedy_confidence_cutoff) == (0.9, 1.0, None)
    assert (language_model.weight, language_model.greedy_confidence_cutoff) == (0.4, 0.9)
    assert tuned.score("stoop") == pytest.approx(language_model.score("stoop"))
    with pytest.raises(ValueError, match="weight"):
        language_model.with_fusion(weight=-1.0)
    with pytest.raises(ValueError, match="Unknown fusion setting"):
        language_model.with_fusion(order=3)


def _unsure_street(s_probability: float) -> torch.Tensor:
    """Log-probs reading "stre?t", the fifth character (frame 8) "s" with `s_probability`, else mostly "e"."""
    log_probs = spelled_log_probs("s-t-r-e-s-t")
    index = {token: i for i, token in enumerate(DEFAULT_VOCAB)}
    log_probs[0, 8] = torch.full((len(DEFAULT_VOCAB),), -12.0)
    log_probs[0, 8, index["s"]], log_probs[0, 8, index["e"]] = math.log(s_probability), math.log(0.99 - s_probability)
    return log_probs.log_softmax(-1)


def test_sure_greedy_readings_are_kept_without_a_search(language_model):
    sure = _unsure_street(0.95)  # greedy "strest" with confidence ~0.95
    strong = language_model.with_fusion(weight=2.0, greedy_confidence_cutoff=None)
    assert ctc_decode(sure, vocab=DEFAULT_VOCAB, language_model=strong)[0].text == "street"
    gated = strong.with_fusion(greedy_confidence_cutoff=0.9)
    kept = ctc_decode(sure, vocab=DEFAULT_VOCAB, language_model=gated)[0]
    greedy = ctc_decode(sure, vocab=DEFAULT_VOCAB, method="greedy")[0]
    assert (kept.text, kept.score, kept.confidence) == ("strest", greedy.score, greedy.confidence)
    # n-best lists are always searched.
    assert ctc_decode(sure, vocab=DEFAULT_VOCAB, language_model=gated, top_k=2)[0].text == "street"


def test_searched_images_take_the_best_path_score_from_the_cutoffs_greedy_pass(language_model):
    """With the cutoff, the greedy pass already scored each image's best path; searched hypotheses carry that score
    (what `confidence` compares with), equal to the separate pass `ctc_decode` would otherwise run."""
    from hf_crnn.decoding import _best_path_scores

    log_probs = torch.cat([_unsure_street(0.95), _unsure_street(0.5)])  # the first kept, the second searched
    gated = language_model.with_fusion(weight=2.0, greedy_confidence_cutoff=0.9)
    kept, searched = (nbest[0] for nbest in ctc_beam_search(log_probs, language_model=gated, top_k=1))
    assert [kept.best_path_score, searched.best_path_score] == _best_path_scores(log_probs, None)
    assert searched.text is None and searched.ids != kept.ids


# ---- scripts -------------------------------------------------------------------------------------------------------


def test_build_script_writes_the_checkpoint_language_model(tmp_path, checkpoint_dir, capsys):
    build = load_script("examples/build_language_model.py")
    words = tmp_path / "words.txt"
    words.write_text("street\nstation\n")
    assert build.main(["--word_list", str(words), "--checkpoint", str(checkpoint_dir), "--order", "4"]) == 0
    loaded = CRNNProcessor.from_pretrained(checkpoint_dir).language_model
    assert (loaded.words, loaded.order, loaded.source) == (["station", "street"], 4, str(words))
    assert build.main(["--word_list", str(words), "--checkpoint", str(tmp_path)]) == 2
    assert "not a checkpoint folder" in capsys.readouterr().err


def test_tune_script_compares_settings_on_validation_crops(tmp_path, checkpoint_dir, capsys):
    tune = load_script("examples/tune_language_model.py")
    crops = tmp_path / "val"
    crops.mkdir()
    (crops / "gt.txt").write_text("".join(f'w{i}.png, "{word}"\n' for i, word in enumerate(["hello", "world"])))
    for i, word in enumerate(["hello", "world"]):
        render_word(word).save(crops / f"w{i}.png")
    words = tmp_path / "words.txt"
    words.write_text("hello\nworld\n")
    output = tmp_path / "best.json"
    code = tune.main([
        "--model_name_or_path", str(checkpoint_dir), "--datasets", str(crops), "--word_list", str(words),
        "--orders", "3", "4", "--weights", "0.3", "--length_bonuses", "0.0", "1.0",
        "--greedy_confidence_cutoffs", "none", "0.9", "--output_file", str(output),
    ])
    assert code == 0
    table = capsys.readouterr().out
    assert "| lexicon-free (greedy) |" in table and table.count("| n=") == 8
    assert "| n=4, weight 0.3, bonus 1.0, cutoff None |" in table
    best = CharNgramLanguageModel.load(output)
    assert best.words == ["hello", "world"] and best.order in (3, 4)


def test_the_probability_cache_stays_bounded(monkeypatch, language_model):
    import hf_crnn.language_model as module

    monkeypatch.setattr(module, "_CACHE_LIMIT", 5)
    model = language_model.with_fusion()
    model._log_prob_cache = {}
    scores = [model.score(word) for word in ("street", "station", "stop")]
    assert len(model._log_prob_cache) <= 5
    assert scores == pytest.approx([language_model.score(word) for word in ("street", "station", "stop")])
