"""Tests of reading tall crops turned (`rotate_tall`): the pipeline, `hf_crnn.recognition.predict`, the cascade and the
command line keep the most confident of the upright and quarter-turned readings."""

import json
from pathlib import Path

import PIL.Image
import pytest
from conftest import render_word
from transformers import pipeline

from hf_crnn.pipeline_crnn import TALL_ASPECT_RATIO, most_confident, reading_rotations, rotated
from hf_crnn.recognition import (
    CRNNCascade,
    lexicon_free_decoding,
    per_image_lexicon_decoding,
    predict,
)

GREEDY = lexicon_free_decoding()
CHECKPOINTS_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.fixture
def tall_images(word_images):
    """Rendered words turned a quarter turn either way (tall), an upright tall crop, and a wide word."""
    return [
        word_images[0].transpose(PIL.Image.Transpose.ROTATE_90),
        word_images[1].transpose(PIL.Image.Transpose.ROTATE_270),
        render_word("I", height=48).crop((0, 0, 20, 48)),
        word_images[2],
        word_images[4].transpose(PIL.Image.Transpose.ROTATE_90),
    ]


def _pipeline(model, processor, **kwargs):
    return pipeline("text-recognition", model=model, processor=processor, device="cpu", **kwargs)


def test_reading_rotations_and_the_choice():
    assert reading_rotations(100, 32) == (0,)
    assert reading_rotations(20, 29) == (0,)  # 1.45: not tall enough
    assert reading_rotations(20, int(20 * TALL_ASPECT_RATIO)) == (0, 90, 270)
    assert reading_rotations(20, 80, rotate_tall=False) == (0,)
    assert most_confident([0.2, 0.9, 0.5]) == 1
    assert most_confident([0.7, 0.7, 0.3]) == 0  # the upright reading (first) wins a tie
    image = render_word("hello").transpose(PIL.Image.Transpose.ROTATE_90)
    assert rotated(image, 0) is image
    assert rotated(image, 90).size == (image.height, image.width)
    assert rotated(rotated(image, 90), 270).tobytes() == image.tobytes()  # lossless: no resampling


def test_pipeline_keeps_the_most_confident_orientation(model, processor, tall_images):
    reader = _pipeline(model, processor)
    results = reader(tall_images, batch_size=2)
    for image, result in zip(tall_images, results):
        rotations = reading_rotations(image.width, image.height)
        readings = [reader(rotated(image, rotation), rotate_tall=False)[0] for rotation in rotations]
        best = most_confident([reading["confidence"] for reading in readings])
        assert result[0]["generated_text"] == readings[best]["generated_text"]
        assert result[0]["confidence"] == pytest.approx(readings[best]["confidence"])
        if len(rotations) > 1:
            assert result[0]["rotation"] == rotations[best]
        else:
            assert "rotation" not in result[0]
    # One at a time, or as a stream, reads the same; `rotate_tall=False` reads upright only.
    assert [reader(image)[0]["generated_text"] for image in tall_images] == [r[0]["generated_text"] for r in results]
    streamed = list(reader((image for image in tall_images), batch_size=3, lookahead_batches=1))
    assert [r[0]["generated_text"] for r in streamed] == [r[0]["generated_text"] for r in results]
    upright = reader(tall_images, batch_size=2, rotate_tall=False)
    assert all("rotation" not in result[0] for result in upright)
    assert upright[3][0]["generated_text"] == results[3][0]["generated_text"]  # the wide word is not turned


def test_pipeline_turned_readings_keep_char_offsets_n_best_and_per_image_lexicons(model, processor, tall_images):
    reader = _pipeline(model, processor)
    results = reader(tall_images, batch_size=2, output_char_offsets=True, top_k=2, method="beam", beam_width=4)
    for image, result in zip(tall_images, results):
        assert len(result) == 2 and "char_offsets" in result[0]
        if "rotation" in result[0]:
            assert {hypothesis["rotation"] for hypothesis in result} == {result[0]["rotation"]}
            # Offsets lie along the text as read: the turned image's width is the original's height.
            length = image.height if result[0]["rotation"] in (90, 270) else image.width
            assert all(0 <= offset["x"] <= length for offset in result[0]["char_offsets"])
    lexicons = [["hello"], ["world"], ["i"], ["crnn"], ["transformers", "hello"]]
    read = reader(tall_images, batch_size=2, lexicon=lexicons)
    # Each turned reading decodes against its own image's lexicon: as the image read alone with it.
    alone = [reader(image, lexicon=[lexicon])[0] for image, lexicon in zip(tall_images, lexicons)]
    assert [result[0]["generated_text"] for result in read] == [result["generated_text"] for result in alone]
    assert [result[0].get("rotation") for result in read] == [result.get("rotation") for result in alone]


def test_pipeline_reads_a_sliver_turned_and_refuses_bad_values(model, processor):
    sliver = render_word("hello").transpose(PIL.Image.Transpose.ROTATE_90).crop((0, 0, 40, 400))  # 0.1 wide per high
    reader = _pipeline(model, processor)
    assert "unreadable" in reader(sliver, rotate_tall=False)[0]  # 3 pixels wide at the model's height
    result = reader(sliver)[0]
    assert "unreadable" not in result and result["rotation"] in (90, 270)
    with pytest.raises(ValueError, match="rotate_tall"):
        reader(sliver, rotate_tall="yes")


def test_predict_keeps_the_most_confident_orientation_per_decoding(model, processor, tall_images):
    lexicons = [["hello"], ["world", "word"], ["i", "l"], ["crnn"], ["transformers"]]
    decodings = [GREEDY, lexicon_free_decoding(4), per_image_lexicon_decoding()]
    turned, _ = predict(model, processor, tall_images, decodings, batch_size=2, lexicons=lexicons)
    for row, image in enumerate(tall_images):
        rotations = reading_rotations(image.width, image.height)
        views = [rotated(image, rotation) for rotation in rotations]
        alone, _ = predict(model, processor, views, decodings, lexicons=[lexicons[row]] * len(views), rotate_tall=False)
        for decoding in decodings:
            confidences = alone[decoding.name].confidences
            best = most_confident(confidences)
            assert turned[decoding.name].texts[row] == alone[decoding.name].texts[best]
            assert turned[decoding.name].confidences[row] == pytest.approx(confidences[best])
    upright, _ = predict(model, processor, tall_images, [GREEDY], rotate_tall=False)
    assert upright[GREEDY.name].texts[3] == turned[GREEDY.name].texts[3]


def test_cascades_pass_rotate_tall_to_their_fallback(model, processor, tall_images):
    import torch

    from hf_crnn import CRNNForTextRecognition

    torch.manual_seed(1)
    fallback_model = CRNNForTextRecognition(model.config).eval()
    fallback = _pipeline(fallback_model, processor)
    cascade = _pipeline(model, processor, fallback_pipeline=fallback, fallback_threshold=1.0)  # all read again
    for rotate_tall in (True, False):
        expected = fallback(tall_images, batch_size=2, rotate_tall=rotate_tall)
        results = cascade(tall_images, batch_size=2, rotate_tall=rotate_tall)
        assert [r[0]["generated_text"] for r in results] == [r[0]["generated_text"] for r in expected]
        assert [r[0]["confidence"] for r in results] == pytest.approx([r[0]["confidence"] for r in expected])
        assert [r[0].get("rotation") for r in results] == [r[0].get("rotation") for r in expected]
    for rotate_tall in (True, False):
        whole = CRNNCascade(model, processor, fallback_model, processor, threshold=1.0, rotate_tall=rotate_tall)
        expected, _ = predict(fallback_model, processor, tall_images, [GREEDY], rotate_tall=rotate_tall)
        read = whole.predict(tall_images)
        assert read.texts == expected[GREEDY.name].texts
        assert read.confidences == pytest.approx(expected[GREEDY.name].confidences)


def test_recognize_no_rotate_tall_and_rotation_in_json(capsys, checkpoint_dir, tall_images, tmp_path):
    from hf_crnn.cli import main

    folder = tmp_path / "crops"
    folder.mkdir()
    for index, image in enumerate(tall_images):
        image.save(folder / f"{index}.png")
    rows = {}
    for flags in ([], ["--no-rotate-tall"]):
        assert main(["recognize", str(folder), "--model", str(checkpoint_dir), "--format", "json", *flags]) == 0
        rows[bool(flags)] = {Path(row["path"]).name: row for row in json.loads(capsys.readouterr().out)}
    assert all(row["rotation"] is None for row in rows[True].values())
    assert rows[False]["3.png"]["rotation"] is None  # wide: read upright only
    assert all(rows[False][f"{index}.png"]["rotation"] in (0, 90, 270) for index in (0, 1, 2, 4))


@pytest.mark.skipif(not (CHECKPOINTS_DIR / "crnn-real-en-fast").is_dir(), reason="the shipped checkpoint is absent")
def test_shipped_checkpoint_reads_turned_words():
    words = ["STREET", "market", "Coffee", "EXIT"]
    reader = pipeline("text-recognition", model=str(CHECKPOINTS_DIR / "crnn-real-en-fast"), device="cpu")
    for turn, rotation in ((PIL.Image.Transpose.ROTATE_90, 270), (PIL.Image.Transpose.ROTATE_270, 90)):
        images = [render_word(word).transpose(turn) for word in words]
        results = reader(images, batch_size=4)
        assert [result[0]["generated_text"] for result in results] == words
        assert {result[0]["rotation"] for result in results} == {rotation}
        upright = reader(images, batch_size=4, rotate_tall=False)
        assert sum(result[0]["generated_text"] == word for result, word in zip(upright, words)) <= 1
