"""Tests of hf_crnn.recognition: reading image lists (`predict`) and the two-checkpoint cascade."""

import csv
from pathlib import Path

import pytest
import torch

from hf_crnn.recognition import (
    CRNNCascade,
    Predictions,
    language_model_decoding,
    lexicon_free_decoding,
    per_image_lexicon_decoding,
    predict,
    read_again_below,
)

GREEDY = lexicon_free_decoding()


class _MustNotRun(torch.nn.Module):
    """A fallback model that fails the test if the cascade runs it."""

    def forward(self, *args, **kwargs):
        raise AssertionError("the fallback ran")


@pytest.fixture
def fallback_model(config):
    from hf_crnn import CRNNForTextRecognition

    torch.manual_seed(1)  # other weights than the `model` fixture's: its readings differ
    return CRNNForTextRecognition(config).eval()


def _greedy(model, processor, images):
    predictions, _ = predict(model, processor, images, [GREEDY], batch_size=2)
    return predictions[GREEDY.name]


def test_read_again_below_rereads_exactly_the_unsure_images(fallback_model, processor, word_images):
    first = Predictions(["A", "B", "C", "D", "E"], [0.95, 0.5, 0.9, 0.8999, 0.0], decoding_seconds=1.5)
    merged = read_again_below(first, word_images, fallback_model, processor, GREEDY, threshold=0.9, batch_size=2)
    assert merged.reread == [1, 3, 4]  # 0.9 itself is not below the threshold
    alone = _greedy(fallback_model, processor, [word_images[row] for row in (1, 3, 4)])
    assert merged.texts == ["A", alone.texts[0], "C", alone.texts[1], alone.texts[2]]
    assert merged.confidences == [0.95, alone.confidences[0], 0.9, alone.confidences[1], alone.confidences[2]]
    assert merged.decoding_seconds > 1.5  # the first stage's decoding plus the whole second stage
    assert first.texts == ["A", "B", "C", "D", "E"]  # the first stage's predictions are left as they were


def test_read_again_below_threshold_zero_never_runs_the_fallback(processor, word_images):
    first = Predictions(["a"] * 5, [0.0, 0.1, 0.5, 0.9, 1.0])
    merged = read_again_below(first, word_images, _MustNotRun(), processor, GREEDY, threshold=0.0)
    assert merged.reread == [] and merged.texts == first.texts and merged.confidences == first.confidences


@pytest.mark.parametrize("threshold", [-0.1, 1.5, True, "0.9", float("nan")])
def test_read_again_below_rejects_bad_thresholds(processor, word_images, threshold):
    first = Predictions(["a"] * 5, [0.5] * 5)
    with pytest.raises(ValueError, match="threshold must be a confidence in"):
        read_again_below(first, word_images, _MustNotRun(), processor, GREEDY, threshold=threshold)


def test_read_again_below_rejects_per_image_lexicons_and_mismatched_lists(processor, word_images):
    first = Predictions(["a"] * 5, [0.5] * 5)
    with pytest.raises(ValueError, match="without per-image lexicons"):
        read_again_below(first, word_images, _MustNotRun(), processor, per_image_lexicon_decoding())
    with pytest.raises(ValueError, match="Got 5 predictions for 4 images"):
        read_again_below(first, word_images[:4], _MustNotRun(), processor, GREEDY)


def test_cascade_is_its_two_stages_composed(model, fallback_model, processor, word_images, tmp_path):
    first = _greedy(model, processor, word_images)
    threshold = sorted(first.confidences)[2]  # the two least confident images go to the fallback
    cascade = CRNNCascade(model, processor, fallback_model, processor, threshold=threshold, batch_size=2)
    expected = read_again_below(first, word_images, fallback_model, processor, GREEDY, threshold)
    assert len(expected.reread) == 2
    # Paths and images in other modes are loaded as the processor loads them.
    path = tmp_path / "word.png"
    word_images[0].convert("RGB").save(path)
    results = cascade([str(path), *word_images[1:]])
    assert [result["generated_text"] for result in results] == expected.texts
    assert [result["confidence"] for result in results] == pytest.approx(expected.confidences)
    assert [row for row, result in enumerate(results) if result["read_by"] == "fallback"] == expected.reread
    # Batching does not change what is read, in either stage.
    one_at_a_time = CRNNCascade(model, processor, fallback_model, processor, threshold=threshold, batch_size=1)
    assert [result["generated_text"] for result in one_at_a_time(word_images)] == expected.texts
    assert cascade.name == f"cascade: lexicon-free (greedy), below {threshold:g} → fallback lexicon-free (greedy)"


def test_cascade_fallback_language_model_and_bad_arguments(model, processor, word_images, tmp_path):
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\ncrnn\n")
    cascade = CRNNCascade(model, processor, model, processor, fallback_language_model=str(word_list))
    assert cascade.fallback_decoding.name == language_model_decoding(None).name
    assert cascade.fallback_decoding.options["language_model"] is not None
    assert len(cascade(word_images)) == len(word_images)
    with pytest.raises(ValueError, match="ships no language_model.json"):
        CRNNCascade(model, processor, model, processor, fallback_language_model=True)
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        CRNNCascade(model, processor, model, processor, batch_size=0)
    with pytest.raises(ValueError, match="first stage decodes lexicon-free"):
        CRNNCascade(model, processor, model, processor, decoding=per_image_lexicon_decoding())
    with pytest.raises(ValueError, match="threshold must be a confidence"):
        CRNNCascade(model, processor, model, processor, threshold=2)


REAL_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "iiit5k_test"
CHECKPOINTS_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.mark.skipif(not REAL_TEST.is_dir(), reason=f"no real crops at {REAL_TEST}")
def test_real_cascade_reads_more_than_its_fast_stage_and_rereads_a_minority():
    """The shipped pair: crnn-real-en-fast greedy, crnn-real-en + its language model below 0.9 confidence, on the
    first 200 IIIT5K test crops (a regression check; the full sets are in docs/performance.md)."""
    from transformers import AutoModelForTextRecognition, AutoProcessor

    import PIL.Image

    from hf_crnn.metrics import normalize_text

    paths = [CHECKPOINTS_DIR / name for name in ("crnn-real-en-fast", "crnn-real-en")]
    if not all(path.is_dir() for path in paths):
        pytest.skip("the real-photo checkpoints are not in this checkout")
    (fast, fast_processor), (accurate, accurate_processor) = [
        (AutoModelForTextRecognition.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path))
        for path in paths
    ]
    with open(REAL_TEST / "labels.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:200]
    images = [PIL.Image.open(REAL_TEST / name).convert("RGB") for name, _ in rows]
    cascade = CRNNCascade(fast, fast_processor, accurate, accurate_processor, fallback_language_model=True)
    first, _ = predict(fast, fast_processor, images, [GREEDY])
    merged = cascade.read_again(first[GREEDY.name], images)

    def correct(texts):
        return sum(normalize_text(text) == normalize_text(label) for text, (_, label) in zip(texts, rows))

    assert correct(merged.texts) > correct(first[GREEDY.name].texts), correct(merged.texts)
    assert 0 < len(merged.reread) < len(images) / 2
