"""Tests of hf_crnn.recognition: reading image lists (`predict`) and the two-checkpoint cascade."""

import csv
from pathlib import Path

import PIL.Image
import pytest
import torch

from hf_crnn.pipeline_crnn import known_word_set, reads_again
from hf_crnn.recognition import (
    DEFAULT_FALLBACK_BEAM_WIDTH,
    DEFAULT_FALLBACK_WORD_THRESHOLD,
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


def _MustNotRunPipeline(pipeline):
    """`pipeline` with a call that fails the test: a fallback that must not run."""

    def fail(*args, **kwargs):
        raise AssertionError("the fallback ran")

    pipeline.__class__ = type("MustNotRun", (type(pipeline),), {"__call__": fail})
    return pipeline


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
    assert cascade.fallback_decoding.name == "lexicon-free (beam 3 + char LM)" == language_model_decoding(
        None, DEFAULT_FALLBACK_BEAM_WIDTH
    ).name
    assert cascade.fallback_decoding.options["language_model"] is not None
    assert len(cascade(word_images)) == len(word_images)
    wide = CRNNCascade(
        model, processor, model, processor, fallback_language_model=str(word_list), fallback_beam_width=7
    )
    assert wide.fallback_decoding.options["beam_width"] == 7
    with pytest.raises(ValueError, match="`fallback_beam_width` must be an int >= 1"):
        CRNNCascade(model, processor, model, processor, fallback_beam_width=0)
    with pytest.raises(ValueError, match="ships no language_model.json"):
        CRNNCascade(model, processor, model, processor, fallback_language_model=True)
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        CRNNCascade(model, processor, model, processor, batch_size=0)
    with pytest.raises(ValueError, match="first stage decodes lexicon-free"):
        CRNNCascade(model, processor, model, processor, decoding=per_image_lexicon_decoding())
    with pytest.raises(ValueError, match="threshold must be a confidence"):
        CRNNCascade(model, processor, model, processor, threshold=2)


# ---- known words: a reading that spells one is re-read only below a lower threshold ---------------------------------


@pytest.mark.parametrize(
    "text, confidence, word_threshold, expected",
    [
        ("hello", 0.95, 0.5, False),  # sure: never re-read
        ("hello", 0.7, 0.5, False),  # unsure, but a known word above its threshold
        ("HeLLo", 0.5, 0.5, False),  # any case; the word threshold itself is not below it
        ("hello", 0.49, 0.5, True),  # below the word threshold
        ("helo", 0.7, 0.5, True),  # not a known word
        ("hello!", 0.7, 0.5, True),  # punctuation: not letters and digits only
        ("hello", 0.7, None, True),  # no word threshold: like any other reading
        ("wor1d", 0.92, 0.95, False),  # a word threshold above the threshold changes nothing
    ],
)
def test_reads_again(text, confidence, word_threshold, expected):
    known = known_word_set(["Hello", "world", "wor1d"])
    assert reads_again(text, confidence, 0.9, word_threshold, known) is expected
    assert reads_again(text, confidence, 0.9, word_threshold, frozenset()) is (confidence < 0.9)


def test_known_word_set_normalises_like_the_language_model_and_drops_single_characters():
    assert known_word_set(["Hello", "Don't", "a", "I", "x.", "ok", "B2"]) == {"hello", "dont", "ok", "b2"}
    assert known_word_set(known_word_set(["Hello"])) == {"hello"}
    with pytest.raises(ValueError, match="not one string"):
        known_word_set("hello")
    with pytest.raises(ValueError, match="must all be strings"):
        known_word_set(["hello", 3])


def test_read_again_below_keeps_known_words_above_the_word_threshold(fallback_model, processor, word_images):
    first = Predictions(["hello", "helo", "World", "a", "hello"], [0.7, 0.7, 0.3, 0.7, 0.95])
    known = known_word_set(["hello", "world", "a"])
    merged = read_again_below(first, word_images, fallback_model, processor, GREEDY, 0.9, word_threshold=0.5,
                              known_words=known)
    assert merged.reread == [1, 2, 3]  # a misspelling, a known word below 0.5, a single letter
    alone = _greedy(fallback_model, processor, [word_images[row] for row in (1, 2, 3)])
    assert merged.texts == ["hello", *alone.texts, "hello"]
    without = read_again_below(first, word_images, fallback_model, processor, GREEDY, 0.9, known_words=known)
    assert without.reread == [0, 1, 2, 3]  # no word threshold
    with pytest.raises(ValueError, match="fallback word threshold must be a confidence in"):
        read_again_below(first, word_images, _MustNotRun(), processor, GREEDY, word_threshold=1.5)
    with pytest.raises(ValueError, match="frozenset from known_word_set"):
        read_again_below(first, word_images, _MustNotRun(), processor, GREEDY, word_threshold=0.5,
                         known_words=["hello"])


def test_cascade_known_words_default_to_the_fallback_language_models(model, processor, word_images, tmp_path):
    word_list = tmp_path / "words.txt"
    word_list.write_text("Hello\nworld\nx\n")
    cascade = CRNNCascade(model, processor, _MustNotRun(), processor, fallback_language_model=str(word_list))
    assert cascade.word_threshold == DEFAULT_FALLBACK_WORD_THRESHOLD == 0.5
    assert cascade.known_words == {"hello", "world"}
    assert cascade.name == (
        "cascade: lexicon-free (greedy), below 0.9 (known words below 0.5) → fallback lexicon-free (beam 3 + char LM)"
    )
    # Unsure readings of known words above 0.5 are kept: the fallback does not run.
    first = Predictions(["hello", "WORLD", "hello", "world", "hello"], [0.6, 0.8, 0.5, 0.89, 0.7])
    assert cascade.read_again(first, word_images).reread == []
    # Without a word threshold, or without known words, they are read again.
    for kwargs in ({"word_threshold": None}, {"known_words": []}):
        rereading = CRNNCascade(model, processor, model, processor, fallback_language_model=str(word_list), **kwargs)
        assert rereading.read_again(first, word_images).reread == [0, 1, 2, 3, 4]
        assert "known words" not in rereading.name
    # Explicit known words, with a greedy fallback (no language model, so none by default).
    greedy = CRNNCascade(model, processor, _MustNotRun(), processor, known_words=["hello", "world"])
    assert greedy.read_again(first, word_images).reread == []
    assert CRNNCascade(model, processor, model, processor).known_words == frozenset()
    with pytest.raises(ValueError, match="fallback word threshold must be a confidence"):
        CRNNCascade(model, processor, model, processor, word_threshold=-0.1)


REAL_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "iiit5k_test"
CHECKPOINTS_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.mark.skipif(not REAL_TEST.is_dir(), reason=f"no real crops at {REAL_TEST}")
def test_real_cascade_reads_more_than_its_fast_stage_and_rereads_a_minority():
    """The shipped pair: crnn-real-en-fast greedy, crnn-real-en + its language model below 0.9 confidence, on the
    first 200 IIIT5K test crops (a regression check; the full sets are in docs/performance.md)."""
    from transformers import AutoModelForTextRecognition, AutoProcessor

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


# ---- the pipeline's cascade (`fallback_pipeline=`) -------------------------------------------------------------------


def _pipeline(model, processor, **kwargs):
    from transformers import pipeline

    return pipeline("text-recognition", model=model, processor=processor, device="cpu", **kwargs)


def _texts_and_confidences(results):
    return [(result[0]["generated_text"], result[0]["confidence"]) for result in results]


def _same_readings(results, expected) -> bool:
    """The same texts, and confidences equal to float rounding (pytest.approx takes flat lists only)."""
    (texts, confidences), (expected_texts, expected_confidences) = (
        tuple(map(list, zip(*_texts_and_confidences(readings)))) for readings in (results, expected)
    )
    return texts == expected_texts and confidences == pytest.approx(expected_confidences)


def test_pipeline_fallback_rereads_exactly_the_unsure_inputs(model, fallback_model, processor, word_images):
    reader, fallback = _pipeline(model, processor), _pipeline(fallback_model, processor)
    alone, fallback_alone = reader(word_images, batch_size=2), fallback(word_images, batch_size=2)
    threshold = sorted(result[0]["confidence"] for result in alone)[2]  # the two least confident go to the fallback
    cascade = _pipeline(model, processor, fallback_pipeline=fallback, fallback_threshold=threshold)
    # Small read-ahead windows: the re-read inputs of each window are read again together, and results stay in order.
    results = cascade(word_images, batch_size=2, lookahead_batches=1)
    unsure = [row for row, result in enumerate(alone) if result[0]["confidence"] < threshold]
    assert len(unsure) == 2
    expected = [fallback_alone[row] if row in unsure else alone[row] for row in range(len(word_images))]
    assert _same_readings(results, expected)
    assert [result[0]["read_by"] for result in results] == [
        "fallback" if row in unsure else "model" for row in range(len(word_images))
    ]
    # A stream reads the same.
    streamed = list(cascade((image for image in word_images), batch_size=2, lookahead_batches=1))
    assert _same_readings(streamed, expected)


def test_pipeline_reads_lookahead_batches_ahead(model, fallback_model, processor, word_images, monkeypatch):
    """Plain and cascade pipelines read DEFAULT_LOOKAHEAD_BATCHES batches ahead (a cascade's fallback re-reads each
    window's unsure inputs together, so it needs long windows too); `lookahead_batches` overrides it."""
    from hf_crnn.pipeline_crnn import DEFAULT_LOOKAHEAD_BATCHES, CRNNTextRecognitionPipeline

    window_sizes = []
    read_window = CRNNTextRecognitionPipeline._read_window

    def record(self, inputs, *args, **kwargs):
        window_sizes.append(len(inputs))
        return read_window(self, inputs, *args, **kwargs)

    monkeypatch.setattr(CRNNTextRecognitionPipeline, "_read_window", record)
    images = word_images * (DEFAULT_LOOKAHEAD_BATCHES // len(word_images) + 1)
    plain = _pipeline(model, processor)
    cascade = _pipeline(model, processor, fallback_pipeline=_pipeline(fallback_model, processor), fallback_threshold=0)
    for reader in (plain, cascade):
        window_sizes.clear()
        reader(images, batch_size=1)
        assert window_sizes[0] == DEFAULT_LOOKAHEAD_BATCHES and sum(window_sizes) == len(images)
        window_sizes.clear()
        reader(images, batch_size=1, lookahead_batches=2)
        assert window_sizes[0] == 2


def test_pipeline_fallback_thresholds_options_and_unreadable_inputs(
    model, fallback_model, processor, word_images, tmp_path
):
    fallback = _pipeline(fallback_model, processor)
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\ncrnn\n")
    everything = _pipeline(model, processor, fallback_pipeline=fallback, fallback_threshold=1.0,
                           fallback_options={"language_model": str(word_list)})
    tiny = PIL.Image.new("L", (2, 2), 0)  # unreadable: not worth a second read either
    results = everything([*word_images, tiny], batch_size=4)
    fused = fallback(word_images, batch_size=4, language_model=str(word_list))
    assert _same_readings(results[:-1], fused)
    assert {result[0]["read_by"] for result in results[:-1]} == {"fallback"}
    assert "unreadable" in results[-1][0] and results[-1][0]["read_by"] == "model"
    never = _MustNotRunPipeline(_pipeline(fallback_model, processor))
    nothing = _pipeline(model, processor, fallback_pipeline=never, fallback_threshold=0.0)
    plain = _pipeline(model, processor)(word_images)
    assert _texts_and_confidences(nothing(word_images)) == _texts_and_confidences(plain)
    reader = _pipeline(model, processor)
    for kwargs, message in [
        ({"pipeline": "checkpoints/crnn-real-en"}, "must be a text-recognition pipeline"),
        ({"pipeline": fallback, "threshold": 1.5}, "must be a confidence in"),
        ({"pipeline": fallback, "options": ["language_model"]}, "must be a dict"),
        ({"pipeline": reader}, "cannot be its own fallback"),
        # Options are tried on the fallback when the cascade is set up, not at its first re-read.
        ({"pipeline": fallback, "options": {"beam_wdith": 3}}, r"Unknown decoding option\(s\): \['beam_wdith'\]"),
        ({"pipeline": fallback, "options": {"language_model": True}}, "has none"),
        ({"pipeline": fallback, "options": {"language_model": str(tmp_path / "nowhere.json")}}, "no such file"),
        ({"pipeline": fallback, "options": {"lookahead_batches": 0}}, "lookahead_batches"),
        ({"pipeline": fallback, "options": {"lexicon": [["a"], ["b"]]}}, "cannot hold per-image values"),
    ]:
        with pytest.raises(ValueError, match=message):
            reader.set_fallback(**kwargs)


def test_pipeline_fallback_reads_the_input_as_given(model, processor, word_images):
    """A fallback with three channels gets the colour input, not the first stage's grayscale copy of it."""
    from conftest import tiny_config

    from hf_crnn import CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer

    torch.manual_seed(2)
    colour_model = CRNNForTextRecognition(tiny_config(num_channels=3)).eval()
    colour_processor = CRNNProcessor(
        CRNNImageProcessor(resize_mode="keep_aspect_ratio", num_channels=3), CRNNTokenizer(do_lower_case=True)
    )
    colour_fallback = _pipeline(colour_model, colour_processor)
    generator = torch.Generator().manual_seed(3)
    images = [
        PIL.Image.fromarray(torch.randint(0, 256, (32, 80, 3), generator=generator, dtype=torch.uint8).numpy())
        for _ in range(3)
    ]
    cascade = _pipeline(model, processor, fallback_pipeline=colour_fallback, fallback_threshold=1.0)
    expected = colour_fallback(images)
    assert _same_readings(cascade(images), expected)
    grey = colour_fallback([image.convert("L") for image in images])
    assert not _same_readings(grey, expected)  # the test can tell


def test_pipeline_fallback_call_options_merge_the_call_and_fallback_options(
    model, fallback_model, processor, tmp_path
):
    fallback = _pipeline(fallback_model, processor)
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\n")
    searching = _pipeline(model, processor, fallback_pipeline=fallback,
                          fallback_options={"language_model": str(word_list), "beam_width": 3, "top_k": 2})
    # The fallback's search replaces the call's, the call's other options stay, the fallback's own win.
    assert searching.fallback_call_options({"method": "greedy", "output_char_offsets": True, "top_k": 1}) == {
        "output_char_offsets": True, "language_model": str(word_list), "beam_width": 3, "top_k": 2,
    }
    # A lexicon call keeps its own search: the re-read inputs decode against the lexicon too.
    words = ["hello", "world"]
    assert searching.fallback_call_options({"lexicon": words, "delta": 2}) == {
        "lexicon": words, "delta": 2, "top_k": 2,
    }
    # Fallback options that name no search leave the call's.
    plain = _pipeline(model, processor, fallback_pipeline=fallback, fallback_options={"min_char_prob": 0.01})
    assert plain.fallback_call_options({"beam_width": 5}) == {"beam_width": 5, "min_char_prob": 0.01}
    assert plain.fallback_call_options({}) == {"min_char_prob": 0.01}


def test_pipeline_fallback_reads_again_with_the_call_options(model, fallback_model, processor, word_images, tmp_path):
    """Re-read inputs get what the call asked for: char offsets and n-best lists, and lexicon words (a global
    lexicon, or each input's own), not the fallback's lexicon-free search."""
    fallback = _pipeline(fallback_model, processor)
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\ncrnn\n")
    cascade = _pipeline(model, processor, fallback_pipeline=fallback, fallback_threshold=1.0,
                        fallback_options={"language_model": str(word_list), "beam_width": 3})
    results = cascade(word_images, batch_size=2, output_char_offsets=True, top_k=2)
    expected = fallback(word_images, batch_size=2, output_char_offsets=True, top_k=2, language_model=str(word_list),
                        beam_width=3)
    assert [[hypothesis["generated_text"] for hypothesis in result] for result in results] == [
        [hypothesis["generated_text"] for hypothesis in result] for result in expected
    ]
    assert all(len(result) == 2 and "char_offsets" in result[0] for result in results)
    assert [result[0]["char_offsets"] for result in results] == [result[0]["char_offsets"] for result in expected]

    # Long lines are cut (or squeezed, with split_long_lines=False) as the call says.
    line = PIL.Image.new("L", (sum(image.width for image in word_images) * 3, word_images[0].height), 255)
    left = 0
    for image in word_images * 3:
        line.paste(image, (left, 0))
        left += image.width
    assert line.width * 32 / line.height > processor.image_processor.max_width
    search = {"language_model": str(word_list), "beam_width": 3}
    squeezed = cascade([line], split_long_lines=False)
    assert _same_readings(squeezed, fallback([line], split_long_lines=False, **search))
    assert not _same_readings(squeezed, fallback([line], **search))  # the test can tell

    lexicon = ["hello", "world", "crnn", "a", "transformers", "recognition"]
    results = cascade(word_images, batch_size=2, lexicon=lexicon)
    assert _same_readings(results, fallback(word_images, batch_size=2, lexicon=lexicon))
    assert all(result[0]["generated_text"] in lexicon for result in results)

    # Per-image lexicons follow their inputs into the fallback, across read-ahead windows, when only some are read
    # again.
    lexicons = [[word, f"{word}s", "x"] for word in ("hallo", "word", "corn", "an", "transformer")]
    first_stage = _pipeline(model, processor)(word_images, batch_size=2, lexicon=lexicons)
    threshold = sorted(result[0]["confidence"] for result in first_stage)[3]
    some = _pipeline(model, processor, fallback_pipeline=fallback, fallback_threshold=threshold)
    results = some(word_images, batch_size=2, lookahead_batches=1, lexicon=lexicons)
    unsure = [row for row, result in enumerate(first_stage) if result[0]["confidence"] < threshold]
    assert [result[0]["read_by"] for result in results] == [
        "fallback" if row in unsure else "model" for row in range(len(word_images))
    ]
    reread = fallback([word_images[row] for row in unsure], lexicon=[lexicons[row] for row in unsure])
    assert _same_readings([results[row] for row in unsure], reread)
    assert all(result[0]["generated_text"] in lexicons[row] for row, result in enumerate(results))


SYNTH_CHECKPOINT = CHECKPOINTS_DIR / "crnn-synth-en"


@pytest.mark.skipif(not SYNTH_CHECKPOINT.is_dir(), reason="the shipped synthetic checkpoint is not in this checkout")
def test_pipeline_fallback_keeps_known_words_above_the_word_threshold(fallback_model, processor, word_images, tmp_path):
    """A first stage that reads words (the shipped synthetic checkpoint, on rendered words): at threshold 1 every
    input is unsure, and those spelling a known word are read again only below the word threshold."""
    from transformers import pipeline

    reader = pipeline("text-recognition", model=str(SYNTH_CHECKPOINT), device="cpu")
    fallback = _pipeline(fallback_model, processor)
    alone, fallback_alone = reader(word_images), fallback(word_images)
    assert [result[0]["generated_text"] for result in alone] == ["hello", "world", "crnn", "a", "transformers"]
    assert all(result[0]["confidence"] < 1.0 for result in alone)  # so threshold 1 leaves every input unsure

    def read_by(results):
        return [result[0]["read_by"] for result in results]

    known = ["Hello", "crnn", "a"]  # "a": a single letter, re-read like any reading
    cascade = pipeline("text-recognition", model=str(SYNTH_CHECKPOINT), device="cpu", fallback_pipeline=fallback,
                       fallback_threshold=1.0, fallback_word_threshold=0.0, fallback_known_words=known)
    results = cascade(word_images, batch_size=2)
    assert read_by(results) == ["model", "fallback", "model", "fallback", "fallback"]
    expected = [alone[row] if row in (0, 2) else fallback_alone[row] for row in range(len(word_images))]
    assert _same_readings(results, expected)
    # The known words of the language model the fallback options name, by default.
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\ncrnn\n")
    cascade.set_fallback(fallback, 1.0, {"language_model": str(word_list)}, word_threshold=0.0)
    assert cascade.fallback_known_words == {"hello", "crnn"}
    assert read_by(cascade(word_images)) == ["model", "fallback", "model", "fallback", "fallback"]
    # A word threshold of 1 (above every unsure reading's confidence), or none, reads them again like the others.
    for word_threshold in (None, 1.0):
        cascade.set_fallback(fallback, 1.0, word_threshold=word_threshold, known_words=known)
        assert set(read_by(cascade(word_images))) == {"fallback"}
    # A lexicon reading is a word by construction: spelling a known one does not keep it.
    cascade.set_fallback(fallback, 1.0, word_threshold=0.0, known_words=known)
    assert set(read_by(cascade(word_images, lexicon=["hello", "world", "crnn", "a", "transformers"]))) == {"fallback"}
    for kwargs, message in [
        ({"word_threshold": 1.5}, "fallback word threshold must be a confidence in"),
        ({"word_threshold": "0.5"}, "fallback word threshold must be a confidence in"),
        ({"known_words": "hello"}, "not one string"),
    ]:
        with pytest.raises(ValueError, match=message):
            cascade.set_fallback(fallback, **kwargs)


def test_cascade_benchmark_times_every_reader_and_checks_they_agree(
    capsys, model, fallback_model, processor, word_images, tmp_path
):
    """benchmarks/bench_cascade.py on tiny checkpoints: one row per reader, re-read counts, and agreeing texts."""
    from conftest import load_script

    bench_cascade = load_script("benchmarks/bench_cascade.py")
    model.save_pretrained(tmp_path / "fast"), processor.save_pretrained(tmp_path / "fast")
    fallback_model.save_pretrained(tmp_path / "accurate"), processor.save_pretrained(tmp_path / "accurate")
    (tmp_path / "crops").mkdir()
    for index, image in enumerate(word_images):
        image.save(tmp_path / "crops" / f"{index}.png")
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\n")
    code = bench_cascade.main([
        "--model", str(tmp_path / "fast"), "--fallback_model", str(tmp_path / "accurate"), "--data",
        str(tmp_path / "crops"), "--optimize", "none", "--language_model", str(word_list), "--threshold", "1",
        "--lookahead_batches", "1", "2", "--batch_size", "2", "--rounds", "2",
    ])
    out = capsys.readouterr().out
    assert code == 0 and "Every cascade row read the same texts." in out
    rows = [line.strip("| ").split(" | ") for line in out.splitlines() if line.startswith(("| fast", "| cascade"))]
    assert len(rows) == 6  # 2 read-ahead lengths and the whole list, for each
    assert all(len(row[2].split(", ")) == 2 for row in rows)  # each round's time
    # Below confidence 1 the fallback reads every image again; the fast checkpoint alone has no count.
    assert [row[3] if len(row) > 3 else "" for row in rows] == ["", "", "", "5", "5", "5"]
