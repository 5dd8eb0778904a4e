import logging

import pytest

from hf_crnn import CRNNTokenizer
from hf_crnn.tokenization_crnn import ctc_collapse


@pytest.fixture
def tokenizer():
    return CRNNTokenizer(do_lower_case=True)


def test_vocabulary_has_blank_first(tokenizer):
    vocab = tokenizer.get_vocab()
    assert vocab["<blank>"] == 0 and tokenizer.blank_token_id == 0 and tokenizer.pad_token_id == 0
    assert tokenizer.vocab_size == 37
    assert tokenizer.characters == list("0123456789abcdefghijklmnopqrstuvwxyz")


def test_encode_decode_with_case_folding(tokenizer):
    ids = tokenizer("Hello").input_ids
    assert ids == [18, 15, 22, 22, 25]
    assert tokenizer.decode(ids) == "hello"
    assert tokenizer.batch_decode([[11, 12], [13]]) == ["ab", "c"]


def test_case_folding_defaults_to_the_vocabulary():
    assert CRNNTokenizer().do_lower_case  # lowercase alphabet: "Hello" reads as "hello"
    assert CRNNTokenizer()("Hello").input_ids == [18, 15, 22, 22, 25]
    assert not CRNNTokenizer(characters="abAB").do_lower_case


def test_case_sensitive_vocabulary_keeps_case():
    tokenizer = CRNNTokenizer(characters="abAB")
    assert tokenizer.decode(tokenizer("aBA").input_ids) == "aBA"
    with pytest.raises(ValueError, match="'c'"):
        tokenizer("abc")


def test_unknown_character_error_names_label_and_character(tokenizer):
    with pytest.raises(ValueError, match=r"'café'.*'é' \(U\+00E9\)"):
        tokenizer("café")


def test_unknown_character_policies(caplog):
    drop = CRNNTokenizer(characters="ab", unknown_character_policy="drop")
    with caplog.at_level(logging.WARNING):
        assert drop("abc").input_ids == [1, 2]
    unk = CRNNTokenizer(characters="ab", unknown_character_policy="unk")
    assert unk("abc").input_ids == [1, 2, 3] and unk.convert_ids_to_tokens(3) == "<unk>"
    with pytest.raises(ValueError, match="unknown_character_policy"):
        CRNNTokenizer(unknown_character_policy="ignore")


def test_special_token_text_is_not_a_token(tokenizer):
    with pytest.raises(ValueError, match="'<'"):
        tokenizer("<blank>")


def test_save_and_load(tmp_path):
    tokenizer = CRNNTokenizer(characters="xyz ", do_lower_case=True, unknown_character_policy="unk")
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "vocab.json").exists()
    reloaded = CRNNTokenizer.from_pretrained(tmp_path)
    assert reloaded.get_vocab() == tokenizer.get_vocab()
    assert reloaded.do_lower_case and reloaded.unknown_character_policy == "unk"
    assert reloaded("X y").input_ids == tokenizer("X y").input_ids


def test_ctc_collapse_merges_repeats_and_drops_blanks():
    collapsed = ctc_collapse([0, 3, 3, 0, 3, 4, 4, 0], blank_id=0)
    assert collapsed.ids == [3, 3, 4]
    assert collapsed.char_frames == [1, 4, 5]
    assert collapsed.char_end_frames == [3, 5, 7]
    assert ctc_collapse([], blank_id=0).ids == []
    assert ctc_collapse([0, 0], blank_id=0).ids == []


def test_ctc_decode_with_offsets(tokenizer):
    text, offsets = tokenizer.ctc_decode([0, 18, 18, 0, 15, 22, 0, 22, 25], output_char_offsets=True)
    assert text == "hello"
    assert [(o["char"], o["start_frame"], o["end_frame"]) for o in offsets] == [
        ("h", 1, 3), ("e", 4, 5), ("l", 5, 6), ("l", 7, 8), ("o", 8, 9)
    ]


def test_ctc_decode_with_frame_scores(tokenizer):
    text, offsets, word_score = tokenizer.ctc_decode(
        [0, 18, 18, 15], frame_scores=[0.9, 0.5, 0.8, 0.7], output_char_offsets=True
    )
    assert text == "he"
    assert [o["score"] for o in offsets] == [0.8, 0.7]
    assert word_score == pytest.approx(0.9 * 0.5 * 0.8 * 0.7)
    with pytest.raises(ValueError, match="one probability per frame"):
        tokenizer.ctc_decode([0, 18], frame_scores=[0.5], output_char_offsets=True)
