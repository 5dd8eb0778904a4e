import math
import numpy as np
import pytest
import torch

from hf_crnn import CRNNProcessor, CRNNTextRecognitionOutput


def _one_hot_logits(frame_ids: list[list[int]], vocab_size: int = 37) -> torch.Tensor:
    """Logits whose argmax path is exactly `frame_ids` (rows padded with frames of id 5, a real character)."""
    num_frames = max(len(ids) for ids in frame_ids)
    logits = torch.full((len(frame_ids), num_frames, vocab_size), -10.0)
    for row, ids in enumerate(frame_ids):
        padded = ids + [5] * (num_frames - len(ids))
        logits[row, torch.arange(num_frames), torch.tensor(padded)] = 10.0
    return logits


def test_call_gives_model_inputs_and_padded_labels(processor, word_images):
    batch = processor(images=word_images[:3], text=["hello", "World", "ab"])
    assert set(batch) == {"pixel_values", "image_widths", "labels"}
    assert batch["labels"].tolist() == [
        [18, 15, 22, 22, 25],
        [33, 25, 28, 22, 14],
        [11, 12, -100, -100, -100],
    ]
    assert processor(text="ab")["labels"].tolist() == [[11, 12]]
    assert isinstance(processor(images=word_images[0], return_tensors="np")["pixel_values"], np.ndarray)


def test_call_errors(processor, word_images):
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        processor(images=word_images[:2], text=["hello"])
    with pytest.raises(ValueError, match="Pass"):
        processor()
    with pytest.raises(ValueError, match="'!'"):
        processor(text=["hello!"])


def test_batch_decode_greedy_ignores_padding_frames(processor):
    # frames: h h _ e l _ l o | padding frames (id 5 = "4") must not be decoded
    logits = _one_hot_logits([[18, 18, 0, 15, 22, 0, 22, 25], [11, 0, 12]])
    assert processor.batch_decode(logits, frame_lengths=[8, 3]) == ["hello", "ab"]
    assert processor.batch_decode(logits) == ["hello", "ab4"]  # repeated padding frames collapse to one "4"
    assert processor.batch_decode(logits.numpy(), frame_lengths=np.array([8, 3])) == ["hello", "ab"]
    assert processor.decode(logits[1], frame_length=3) == "ab"


def test_batch_decode_offsets_and_scores(processor):
    logits = _one_hot_logits([[18, 18, 0, 15]])
    (result,) = processor.batch_decode(logits, output_char_offsets=True)
    assert result["text"] == "he"
    assert 0.99 < result["score"] <= 1.0
    assert [(o["char"], o["frame"]) for o in result["char_offsets"]] == [("h", 0), ("e", 3)]
    assert all(0.99 < o["score"] <= 1.0 for o in result["char_offsets"])
    scored = processor.batch_decode(logits, output_scores=True)[0]
    assert scored.keys() == {"text", "confidence", "log_likelihood", "score"}
    assert scored["score"] == pytest.approx(math.exp(scored["log_likelihood"]))


def test_beam_top_k_and_lexicon_options_reach_the_decoder(processor):
    # Frame 1 is torn between "a" (11) and "o" (25): greedy reads "ab"; the lexicon knows only "ob".
    logits = _one_hot_logits([[11, 11, 0, 12]])
    logits[0, :2, 25] = 9.9
    assert processor.batch_decode(logits) == ["ab"]
    (beam,) = processor.batch_decode(logits, beam_width=4, top_k=2)
    assert len(beam["nbest"]) == 2 and beam["nbest"][0]["text"] == "ab" and beam["text"] == "ab"
    assert beam["nbest"][0]["score"] >= beam["nbest"][1]["score"]
    assert processor.batch_decode(logits, lexicon=["OB", "xyz"]) == ["OB"]  # the lexicon's own spelling
    (constrained,) = processor.batch_decode(logits, lexicon=["OB", "xyz"], output_scores=True)
    assert constrained["text"] == "OB" and constrained["lexicon_fallback"] is False


def test_default_lexicon_is_saved_and_used(tmp_path, processor):
    logits = _one_hot_logits([[11, 11, 0, 12]])
    logits[0, :2, 25] = 9.9
    with_lexicon = CRNNProcessor(processor.image_processor, processor.tokenizer, lexicon=["ob", "cat"])
    with_lexicon.save_pretrained(tmp_path / "p")
    assert (tmp_path / "p" / "lexicon.txt").read_text().split() == ["ob", "cat"]
    assert "lexicon" not in (tmp_path / "p" / "processor_config.json").read_text()
    reloaded = CRNNProcessor.from_pretrained(tmp_path / "p")
    assert reloaded.lexicon == ["ob", "cat"]
    assert reloaded.batch_decode(logits) == ["ob"]
    assert reloaded.batch_decode(logits, method="greedy") == ["ab"]  # lexicon-free on request


def test_batch_decode_bad_inputs(processor):
    with pytest.raises(ValueError, match="shape"):
        processor.batch_decode(torch.zeros(4, 37))
    with pytest.raises(ValueError, match="frame_lengths"):
        processor.batch_decode(torch.zeros(2, 4, 37), frame_lengths=[5, 1])
    with pytest.raises(ValueError, match="Unknown decoding option"):
        processor.batch_decode(torch.zeros(1, 4, 37), beam_widht=3)


def test_model_outputs_decode_end_to_end(model, processor, word_images):
    batch = processor(images=word_images)
    outputs = model(**batch)
    texts = processor.batch_decode(outputs.logits, outputs.frame_lengths)
    assert len(texts) == len(word_images) and all(isinstance(t, str) for t in texts)
    for index, image in enumerate(word_images):
        alone = model(**processor(images=image))
        assert processor.batch_decode(alone.logits, alone.frame_lengths)[0] == texts[index]


def test_batch_decode_takes_frame_lengths_from_the_model_output(processor):
    # Row 1's two last frames are padding whose argmax is a character: only its frame_lengths keep them out.
    logits = _one_hot_logits([[8, 0, 9, 9], [8, 9]])
    outputs = CRNNTextRecognitionOutput(logits=logits, frame_lengths=torch.tensor([4, 2]))
    expected = processor.batch_decode(logits, outputs.frame_lengths)
    assert processor.batch_decode(outputs) == expected
    assert processor.batch_decode({"logits": logits, "frame_lengths": [4, 2]}) == expected
    assert processor.batch_decode(logits) != expected  # all frames: row 1 gains the padding's character
    assert processor.batch_decode(outputs, [4, 4]) == processor.batch_decode(logits, [4, 4])  # explicit wins
    with pytest.raises(ValueError, match="needs `logits`"):
        processor.batch_decode({"frame_lengths": [4]})


def test_save_and_load(tmp_path, processor, word_images):
    processor.save_pretrained(tmp_path / "processor")
    reloaded = CRNNProcessor.from_pretrained(tmp_path / "processor")
    assert reloaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert reloaded.image_processor.to_dict() == processor.image_processor.to_dict()
    expected = processor(images=word_images, text=["a"] * len(word_images))
    actual = reloaded(images=word_images, text=["a"] * len(word_images))
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key
