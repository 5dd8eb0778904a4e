"""Tests of the text-recognition metrics and their Trainer / evaluate glue (hf_crnn.metrics)."""

import sys

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from hf_crnn import CRNNImageProcessor, CRNNProcessor, CRNNTokenizer
from hf_crnn import metrics as metrics_module
from hf_crnn.metrics import (
    character_error_rate,
    compute_text_recognition_metrics,
    edit_distance,
    load_metric,
    make_compute_metrics,
    normalize_text,
    normalized_edit_distance,
    normalized_word_accuracy,
    preprocess_logits_for_metrics,
    word_accuracy,
)


@pytest.fixture
def crnn_processor():
    return CRNNProcessor(CRNNImageProcessor(resize_mode="keep_aspect_ratio"), CRNNTokenizer(do_lower_case=True))


def test_word_accuracy():
    assert word_accuracy(["a", "b", "c"], ["a", "x", "c"]) == pytest.approx(2 / 3)
    assert word_accuracy(["Hello"], ["hello"]) == 0.0  # exact: case matters


def test_normalized_word_accuracy_follows_the_benchmark_protocol():
    assert normalize_text("Hello!") == "hello"
    assert normalize_text("It's A-1 café") == "itsa1caf"
    predictions = ["Hello!", "its", "a1", "caf", "hallo"]
    references = ["hello", "It's", "A-1", "café", "hello"]
    assert normalized_word_accuracy(predictions, references) == pytest.approx(4 / 5)
    assert word_accuracy(predictions, references) == 0.0


def test_character_error_rate_is_corpus_level():
    assert character_error_rate(["kitten"], ["sitting"]) == pytest.approx(3 / 7)
    # (1 + 2) edits over (3 + 3) reference characters, not the mean of 1/3 and 2/3 ... which happens to be equal;
    # so also a case where they differ: (1 + 1) / (1 + 4) = 0.4 vs mean(1, 0.25) = 0.625.
    assert character_error_rate(["abc", "x"], ["abd", "xyz"]) == pytest.approx(0.5)
    assert character_error_rate(["b", "abcd"], ["a", "abce"]) == pytest.approx(0.4)
    assert character_error_rate(["", ""], ["", ""]) == 0.0
    assert character_error_rate(["a"], [""]) == 1.0


def test_normalized_edit_distance_is_the_icdar_2019_definition():
    assert normalized_edit_distance(["kitten"], ["sitting"]) == pytest.approx(3 / 7)
    # Per sample: distance / max(len(gt), len(pred)), then the mean: (1/3 + 0 + 2/2) / 3.
    assert normalized_edit_distance(["abc", "", ""], ["abd", "", "ab"]) == pytest.approx((1 / 3 + 0 + 1) / 3)
    # The longer *prediction* is the denominator when it is longer than the reference: 3 / 4.
    assert normalized_edit_distance(["abcd"], ["a"]) == pytest.approx(3 / 4)


def test_all_metrics_at_once():
    assert compute_text_recognition_metrics(["hello", "wrld"], ["Hello", "world"]) == pytest.approx(
        {"word_accuracy": 0.0, "normalized_word_accuracy": 0.5, "cer": 0.2, "ned": 0.2, "one_minus_ned": 0.8}
    )


def test_pure_python_edit_distance_matches_rapidfuzz(monkeypatch):
    pairs = [("kitten", "sitting"), ("", "abc"), ("flaw", "lawn"), ("same", "same"), ("abc", "")]
    expected = [edit_distance(a, b) for a, b in pairs]
    assert expected == [3, 3, 2, 0, 3]
    monkeypatch.setattr(metrics_module, "_rapidfuzz_levenshtein", None)
    assert [edit_distance(a, b) for a, b in pairs] == expected


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match="pair up"):
        word_accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        character_error_rate([], [])
    with pytest.raises(ValueError, match="must be a str"):
        normalized_edit_distance(["a", None], ["a", "b"])
    with pytest.raises(ValueError, match="not single strings"):
        word_accuracy("abc", "abc")


def test_evaluate_module_loads_offline_and_falls_back(monkeypatch):
    metric = load_metric()
    assert type(metric).__module__.startswith("evaluate_modules")
    expected = compute_text_recognition_metrics(["Hello!", "wrld"], ["hello", "world"])
    assert metric.compute(predictions=["Hello!", "wrld"], references=["hello", "world"]) == pytest.approx(expected)

    monkeypatch.setitem(sys.modules, "evaluate", None)  # makes `import evaluate` fail
    fallback = load_metric()
    fallback.add_batch(predictions=["Hello!"], references=["hello"])
    fallback.add(prediction="wrld", reference="world")
    assert fallback.compute() == pytest.approx(expected)


def _logits_for(texts, tokenizer, num_frames, vocab_size=37):
    """Logits whose best path spells each text as "c <blank> c <blank> ...", then blanks up to `num_frames`."""
    logits = np.full((len(texts), num_frames, vocab_size), -5.0, dtype=np.float32)
    logits[:, :, 0] = 5.0
    for row, text in enumerate(texts):
        for position, token_id in enumerate(tokenizer(text).input_ids):
            logits[row, 2 * position, :] = -5.0
            logits[row, 2 * position, token_id] = 5.0
    return logits


def test_compute_metrics_decodes_trainer_predictions(crnn_processor):
    tokenizer = crnn_processor.tokenizer
    compute_metrics = make_compute_metrics(crnn_processor)
    references = ["hello", "world", "ab", "cd"]
    label_ids = np.full((4, 5), -100)
    for row, text in enumerate(references):
        ids = tokenizer(text).input_ids
        label_ids[row, : len(ids)] = ids

    # Two eval batches of widths giving 12 and 10 frames, concatenated by Trainer with -100 padding along T.
    logits = np.full((4, 12, 37), -100.0, dtype=np.float32)
    logits[:2] = _logits_for(["hello", "world"], tokenizer, 12)
    logits[2:, :10] = _logits_for(["ab", "cx"], tokenizer, 10)
    # Garbage after the valid frames of sample 2 (an image narrower than its batch): only frame_lengths hide it.
    logits[2, 6:10, :] = 0.0
    logits[2, 6:10, tokenizer("z").input_ids[0]] = 9.0
    frame_lengths = np.array([12, 12, 6, 10])

    expected = compute_text_recognition_metrics(["hello", "world", "ab", "cx"], references)
    assert expected["word_accuracy"] == 0.75
    assert compute_metrics(EvalPrediction((logits, frame_lengths), label_ids)) == pytest.approx(expected)

    # Greedy frame ids instead of logits (preprocess_logits_for_metrics), padded by Trainer the same way.
    frame_ids, lengths = preprocess_logits_for_metrics((torch.from_numpy(logits), torch.from_numpy(frame_lengths)))
    assert frame_ids.shape == logits.shape[:2]  # frames beyond every valid one kept: DDP gathers equal shapes
    frame_ids = frame_ids.numpy()
    frame_ids[2:, 10:] = -100
    assert compute_metrics(EvalPrediction((frame_ids, lengths.numpy()), label_ids)) == pytest.approx(expected)

    # Logits only: cross-batch -100 padding is still recognised, so only sample 2 decodes its garbage ("abz").
    without_lengths = compute_metrics(EvalPrediction(logits, label_ids))
    assert without_lengths["word_accuracy"] == 0.5

    # Greedy by default even when the processor has a default lexicon; decoding options reach batch_decode.
    with_lexicon = CRNNProcessor(crnn_processor.image_processor, tokenizer, lexicon=references)
    prediction = EvalPrediction((logits, frame_lengths), label_ids)
    assert make_compute_metrics(with_lexicon)(prediction)["word_accuracy"] == 0.75
    assert make_compute_metrics(with_lexicon, method="lexicon")(prediction)["word_accuracy"] == 1.0


def test_compute_metrics_in_trainer_evaluate(crnn_processor, tmp_path):
    from transformers import Trainer, TrainingArguments

    from hf_crnn import CRNNConfig, CRNNForTextRecognition
    from hf_crnn.data_collator import CRNNDataCollator
    from hf_crnn.synthetic import find_fonts, make_synthetic_dataset

    if not find_fonts():
        pytest.skip("needs a TrueType font (Debian: fonts-dejavu-core)")
    dataset = make_synthetic_dataset(6, seed=5, fonts="all", max_len=6, cache_dir=str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = CRNNForTextRecognition(CRNNConfig(conv_dim=[4, 8, 8, 8, 16, 16, 16], hidden_size=8, lstm_projection_dim=8))
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_eval_batch_size=4,
        report_to=[],
        remove_unused_columns=False,
        use_cpu=True,
        train_sampling_strategy="group_by_length",
        length_column_name="width",
    )
    trainer = Trainer(
        model=model,
        args=args,
        eval_dataset=dataset,
        data_collator=CRNNDataCollator(crnn_processor),
        compute_metrics=make_compute_metrics(crnn_processor),
    )
    results = trainer.evaluate()
    for name in ("word_accuracy", "normalized_word_accuracy", "cer", "ned", "one_minus_ned"):
        assert 0.0 <= results[f"eval_{name}"] <= max(1.0, results["eval_cer"])
    assert results["eval_one_minus_ned"] == pytest.approx(1 - results["eval_ned"])
