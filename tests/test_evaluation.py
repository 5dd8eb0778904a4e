"""Tests of the evaluation harness (hf_crnn.evaluation), the benchmark loaders (hf_crnn.benchmark_datasets) and the
peer comparison (benchmarks/compare_peers.py)."""

import csv
import json
import os
import shutil
import sys

import datasets
import PIL.Image
import pytest
import torch
from conftest import load_script, render_word

from hf_crnn import evaluation
from hf_crnn.benchmark_datasets import (
    SYNTHETIC_MANIFEST,
    detect_gt_format,
    expand_sources,
    icdar_line,
    load_crops_folder,
    load_evaluation_dataset,
    parse_gt_file,
    synthetic_lexicons,
    write_crops_folder,
    write_synthetic_crops,
)
from hf_crnn.decoding import Lexicon
from hf_crnn.evaluation import (
    Predictions,
    accuracy_by_confidence,
    accuracy_by_length,
    build_report,
    lexicon_free_decoding,
    per_image_lexicon_decoding,
    sample_records,
    score_predictions,
    write_reports,
)
from hf_crnn.metrics import normalize_text
from hf_crnn.recognition import DEFAULT_FALLBACK_WORD_THRESHOLD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


compare_peers = load_script("benchmarks/compare_peers.py")


# ---- scoring -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, World!", "helloworld"),  # case folded, punctuation and spaces dropped
        ("CAFÉ", "caf"),  # accented letters are outside 0-9a-z
        ("I-95", "i95"),
        ('"JOINT"', "joint"),
        ("...", ""),
        ("Straße", "strae"),  # lowercased, not case-folded ("ss"), as the benchmark scripts do
        ("", ""),
    ],
)
def test_protocol_normalisation(text, expected):
    assert normalize_text(text) == expected


def test_score_predictions_protocol_against_hand_computed_values():
    predictions = ["hello", "World", "caf", "12a", ""]
    references = ["Hello!", "world", "cafe", "12A", "x"]
    scores = score_predictions(predictions, references, confidences=[0.9, 0.8, 0.4, 0.7, 0.1], seconds=2.5)
    # Protocol: lowercase, keep 0-9a-z -> "hello", "world", "12a" match; "caf" != "cafe"; "" != "x".
    assert scores["protocol_accuracy"] == pytest.approx(3 / 5)
    assert scores["exact_accuracy"] == 0.0  # case and "!" count when exact
    # Normalised edits 0, 0, 1, 0, 1 over 5 + 5 + 4 + 3 + 1 label characters.
    assert scores["cer"] == pytest.approx(2 / 18)
    assert scores["ned"] == pytest.approx((1 / 4 + 1 / 1) / 5)
    # Raw edits: H + "!" (2), W (1), e (1), A (1), x (1) over 6 + 5 + 4 + 3 + 1 characters.
    assert scores["cer_exact"] == pytest.approx(6 / 19)
    assert scores["mean_confidence"] == pytest.approx(0.58)
    assert scores["images_per_second"] == pytest.approx(2.0)
    assert scores["num_samples"] == 5


def test_score_predictions_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="pair up"):
        score_predictions(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="confidences"):
        score_predictions(["a"], ["a"], confidences=[0.1, 0.2])


def test_sample_records_and_curves():
    records = sample_records(
        references=["Hi!", "CAT", "dog", "!!"], predictions=["hi", "cot", "dog", ""], confidences=[0.9, 0.8, 0.3, 0.5]
    )
    assert [r["correct"] for r in records] == [True, False, True, True]  # "!!" normalises to "" like ""
    assert [r["edit_distance"] for r in records] == [0, 1, 0, 0]
    assert [r["length"] for r in records] == [2, 3, 3, 0]
    assert [r["path"] for r in records] == ["0", "1", "2", "3"]
    assert accuracy_by_length(records) == [
        {"length": 0, "num_samples": 1, "accuracy": 1.0},
        {"length": 2, "num_samples": 1, "accuracy": 1.0},
        {"length": 3, "num_samples": 2, "accuracy": 0.5},
    ]
    curve = accuracy_by_confidence(records, thresholds=(0.0, 0.5, 0.85, 0.95))
    assert curve == [
        {"threshold": 0.0, "coverage": 1.0, "accuracy": 0.75},
        {"threshold": 0.5, "coverage": 0.75, "accuracy": 2 / 3},
        {"threshold": 0.85, "coverage": 0.25, "accuracy": 1.0},
        {"threshold": 0.95, "coverage": 0.0, "accuracy": None},
    ]


def _stub_report():
    """Three images, three decodings with predictions chosen by hand."""
    references = ["Apple", "pear", "Kiwi!"]
    lexicons = [["apple", "maple"], ["pear", "bear"], []]
    global_decoding = evaluation.Decoding(
        "global", {"method": "lexicon"}, lexicon=Lexicon(["apple", "pear", "plum"])
    )
    decodings = [lexicon_free_decoding(), per_image_lexicon_decoding(), global_decoding]
    predictions = {
        "lexicon-free (greedy)": Predictions(["apple", "bear", "kiwi"], [0.9, 0.6, 0.3], decoding_seconds=0.5),
        "per-image lexicon": Predictions(["apple", "pear", "kiwi"], [0.8, 0.7, 0.3], decoding_seconds=1.0),
        "global": Predictions(["apple", "pear", "plum"], [0.5, 0.5, 0.2], decoding_seconds=0.5),
    }
    report = build_report(
        "stub", "stub-source", references, predictions, decodings, model_seconds=1.0,
        paths=["a.png", "b.png", "c.png"], lexicons=lexicons,
    )
    return report


def test_build_report_against_hand_computed_values():
    report = _stub_report()
    free, per_image, global_ = report.rows
    assert free["decoding"] == "lexicon-free (greedy)"
    assert free["protocol_accuracy"] == pytest.approx(2 / 3)
    assert free["exact_accuracy"] == 0.0
    assert free["images_per_second"] == pytest.approx(3 / 1.5)  # model time + its own decoding time
    assert free["lexicon_coverage"] is None
    assert per_image["protocol_accuracy"] == 1.0
    assert per_image["lexicon_size"] == 2.0  # mean over the images that have a lexicon
    assert per_image["lexicon_coverage"] == pytest.approx(2 / 3)
    assert per_image["images_per_second"] == pytest.approx(3 / 2.0)
    assert global_["protocol_accuracy"] == pytest.approx(2 / 3)
    assert global_["lexicon_size"] == 3 and global_["lexicon_coverage"] == pytest.approx(2 / 3)
    assert global_["cer"] == pytest.approx(4 / 13)  # "plum" vs "kiwi": 4 edits; 5 + 4 + 4 label characters
    assert any("1 image(s) have no lexicon" in note for note in report.notes)


def test_write_reports_files(tmp_path):
    results = write_reports([_stub_report()], tmp_path, {
        "model": "stub-model", "command": "hf-crnn evaluate ...", "created": "now", "device": "cpu",
        "torch_threads": 1, "platform": "test", "notes": ["a note"],
    })
    dataset = results["datasets"][0]
    assert json.loads((tmp_path / "results.json").read_text())["datasets"][0]["rows"] == dataset["rows"]
    markdown = (tmp_path / "results.md").read_text()
    assert "| Dataset | Decoding | Images | Protocol acc." in markdown and "66.67%" in markdown and "a note" in markdown
    with open(tmp_path / dataset["files"]["mistakes"], newline="") as handle:
        mistakes = list(csv.DictReader(handle))
    assert [(m["decoding"], m["path"], m["label"], m["prediction"], m["edit_distance"]) for m in mistakes] == [
        ("lexicon-free (greedy)", "b.png", "pear", "bear", "1"),
        ("global", "c.png", "Kiwi!", "plum", "4"),
    ]
    assert dataset["num_mistakes"] == 2
    with PIL.Image.open(tmp_path / dataset["files"]["plot"]) as plot:
        assert plot.format == "PNG" and plot.width > 200


def test_plot_without_matplotlib_uses_pil(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    assert evaluation.plot_accuracy(_stub_report(), tmp_path / "plot.png") == "pil"
    with PIL.Image.open(tmp_path / "plot.png") as plot:
        assert plot.format == "PNG"


# ---- end to end ----------------------------------------------------------------------------------------------------


def _write_crops(folder, words, gt_lines):
    folder.mkdir(parents=True, exist_ok=True)
    for index, word in enumerate(words, start=1):
        render_word(word).save(folder / f"word_{index}.png")
    (folder / "gt.txt").write_text("".join(gt_lines), encoding="utf-8")


def test_main_end_to_end(tmp_path, checkpoint_dir, capsys):
    crops = tmp_path / "crops"
    words = ["Hello", "world", "CRNN"]
    _write_crops(crops, words, [f'word_{i}.png, "{w}"\n' for i, w in enumerate(words, start=1)])
    (crops / "lexicons").mkdir()
    for index, word in enumerate(words, start=1):
        (crops / "lexicons" / f"word_{index}.txt").write_text(f"{word}\nother\nwords\n")
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\ncrnn\nother\n")
    output_dir = tmp_path / "results"
    threads = torch.get_num_threads()
    # One thread: on a busy machine, torch's thread pool waiting for cores costs far more than the tiny model.
    try:
        code = evaluation.main([
            "--model_name_or_path", str(checkpoint_dir),
            "--datasets", str(crops), "synthetic",
            "--num_synthetic_samples", "3", "--synthetic_lexicon_size", "5",
            "--synthetic_crops_dir", str(tmp_path / "synthetic-crops"),
            "--global_lexicons", str(word_list), str(tmp_path / "missing-words.txt"),
            "--batch_size", "2", "--output_dir", str(output_dir), "--cache_dir", str(tmp_path / "cache"),
            "--num_threads", "1",
        ])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    results = json.loads((output_dir / "results.json").read_text())
    crops_result, synthetic_result = results["datasets"]
    assert crops_result["num_samples"] == 3 and synthetic_result["num_samples"] == 3
    assert [row["decoding"] for row in crops_result["rows"]] == [
        "lexicon-free (greedy)", "per-image lexicon", f"global lexicon {word_list} (4 words)",
    ]
    assert crops_result["rows"][1]["lexicon_coverage"] == 1.0
    assert crops_result["rows"][2]["lexicon_coverage"] == 1.0
    assert all(0.0 <= row["protocol_accuracy"] <= 1.0 and row["images_per_second"] > 0 for row in crops_result["rows"])
    assert any("missing-words.txt is missing" in note for note in results["notes"])
    for dataset in results["datasets"]:
        assert (output_dir / dataset["files"]["mistakes"]).is_file()
        assert (output_dir / dataset["files"]["plot"]).stat().st_size > 0
    assert (output_dir / "results.md").read_text().count("\n| crops |") == 3
    assert "| Dataset | Decoding |" in capsys.readouterr().out
    # The synthetic words went through a crops folder and back: their paths are the crops' file names.
    assert (tmp_path / "synthetic-crops" / "gt.txt").read_text().count("\n") == 3
    assert synthetic_result["rows"][1]["decoding"] == "per-image lexicon"
    assert synthetic_result["rows"][1]["lexicon_size"] == 5.0
    assert results["command"].startswith("hf-crnn evaluate --model_name_or_path ")
    assert set(results["machine_load"]["start"]) == {"load_average_1min", "cpu_count"}


def test_language_model_row(tmp_path, checkpoint_dir, capsys):
    crops = tmp_path / "crops"
    words = ["hello", "world"]
    _write_crops(crops, words, [f'word_{i}.png, "{w}"\n' for i, w in enumerate(words, start=1)])
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\n")
    common = ["--model_name_or_path", str(checkpoint_dir), "--datasets", str(crops), "--global_lexicons", "none",
              "--num_threads", "1"]
    threads = torch.get_num_threads()
    try:
        code = evaluation.main([*common, "--language_model", str(word_list), "--output_dir", str(tmp_path / "out")])
        assert code == 0
        rows = json.loads((tmp_path / "out" / "results.json").read_text())["datasets"][0]["rows"]
        assert [row["decoding"] for row in rows] == ["lexicon-free (greedy)", "lexicon-free (beam 10 + char LM)"]
        # The checkpoint ships no language model: asking for it is a clear error, not a missing row.
        code = evaluation.main([*common, "--language_model", "checkpoint", "--output_dir", str(tmp_path / "o2")])
        assert code == 2 and "ships no language_model.json" in capsys.readouterr().err
        code = evaluation.main([*common, "--language_model", str(tmp_path / "no.txt"), "--output_dir", "o3"])
        assert code == 2 and "no such file" in capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)


def test_cascade_row(tmp_path, checkpoint_dir, capsys):
    crops = tmp_path / "crops"
    words = ["hello", "world", "crnn"]
    _write_crops(crops, words, [f'word_{i}.png, "{w}"\n' for i, w in enumerate(words, start=1)])
    common = ["--model_name_or_path", str(checkpoint_dir), "--datasets", str(crops), "--global_lexicons", "none",
              "--num_threads", "1", "--fallback_model", str(checkpoint_dir)]
    threads = torch.get_num_threads()
    try:
        # Threshold 1: every reading of the untrained model is unsure, so the fallback (the same checkpoint,
        # decoding the same way) reads every image again, and reads what the first row read.
        assert evaluation.main([*common, "--fallback_threshold", "1", "--output_dir", str(tmp_path / "out")]) == 0
        results = json.loads((tmp_path / "out" / "results.json").read_text())
        greedy, cascade = results["datasets"][0]["rows"][:2]
        assert cascade["decoding"] == "cascade: lexicon-free (greedy), below 1 → crnn-tiny lexicon-free (greedy)"
        assert cascade["protocol_accuracy"] == greedy["protocol_accuracy"] and cascade["cer"] == greedy["cer"]
        assert cascade["images_per_second"] < greedy["images_per_second"]  # both stages are timed
        notes = results["datasets"][0]["notes"]
        assert any("3 of 3 images (100.0%) read again by the fallback" in note for note in notes)
        assert results["fallback_model"] == str(checkpoint_dir)
        assert evaluation.main([*common, "--fallback_threshold", "1.5", "--output_dir", str(tmp_path / "o2")]) == 2
        assert "--fallback_threshold must be in [0, 1]" in capsys.readouterr().err
        assert evaluation.main([*common, "--fallback_word_threshold", "-1", "--output_dir", str(tmp_path / "o3")]) == 2
        assert "--fallback_word_threshold must be in [0, 1]" in capsys.readouterr().err
        # With a language model, the row says from what confidence the readings that spell one of its words are kept.
        word_list = tmp_path / "words.txt"
        word_list.write_text("hello\nworld\n")
        assert evaluation.main([*common, "--language_model", str(word_list), "--fallback_word_threshold", "0.3",
                                "--output_dir", str(tmp_path / "o4")]) == 0
        rows = json.loads((tmp_path / "o4" / "results.json").read_text())["datasets"][0]["rows"]
        assert rows[2]["decoding"] == (
            "cascade: lexicon-free (greedy), below 0.9 (known words below 0.3) → crnn-tiny lexicon-free "
            "(beam 3 + char LM)"
        )
    finally:
        torch.set_num_threads(threads)


def test_rotate_tall(tmp_path, checkpoint_dir, model, processor):
    from hf_crnn.recognition import lexicon_free_decoding, predict

    crops = tmp_path / "crops"
    words = ["hello", "world", "crnn"]
    _write_crops(crops, words, [f'word_{i}.png, "{w}"\n' for i, w in enumerate(words, start=1)])
    for index in (1, 3):  # two of the three words turned a quarter turn: tall crops
        path = crops / f"word_{index}.png"
        PIL.Image.open(path).transpose(PIL.Image.Transpose.ROTATE_90).save(path)
    images = [PIL.Image.open(crops / f"word_{index}.png").convert("L") for index in (1, 2, 3)]
    greedy = lexicon_free_decoding()
    common = ["--model_name_or_path", str(checkpoint_dir), "--datasets", str(crops), "--global_lexicons", "none",
              "--num_threads", "1"]
    threads = torch.get_num_threads()
    try:
        for rotate_tall in (True, False):
            out = tmp_path / f"out-{rotate_tall}"
            assert evaluation.main([*common, "--rotate_tall", str(rotate_tall), "--output_dir", str(out)]) == 0
            results = json.loads((out / "results.json").read_text())
            expected, _ = predict(model, processor, images, [greedy], rotate_tall=rotate_tall)
            confidences = expected[greedy.name].confidences
            assert results["datasets"][0]["rows"][0]["mean_confidence"] == pytest.approx(sum(confidences) / 3)
            noted = any("read upright and turned a quarter turn" in note for note in results["notes"])
            assert noted == rotate_tall
    finally:
        torch.set_num_threads(threads)


def test_default_checkpoint(tmp_path, monkeypatch, checkpoint_dir, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evaluation, "REPO_ROOT", tmp_path / "repo")
    code = evaluation.main(["--datasets", "synthetic"], prog="python examples/run_evaluation.py")
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("python examples/run_evaluation.py: error: The default checkpoint")
    # Found under the repository root when the working directory has none.
    (tmp_path / "repo" / "checkpoints").mkdir(parents=True)
    shutil.copytree(checkpoint_dir, tmp_path / "repo" / evaluation.DEFAULT_CHECKPOINT)
    expected = str(tmp_path / "repo" / evaluation.DEFAULT_CHECKPOINT)
    assert evaluation.resolve_checkpoint(evaluation.DEFAULT_CHECKPOINT) == expected
    assert evaluation.resolve_checkpoint("elsewhere") == "elsewhere"  # other names are left to from_pretrained


def test_main_reports_bad_input(tmp_path, checkpoint_dir, capsys):
    code = evaluation.main(["--model_name_or_path", str(checkpoint_dir), "--datasets", str(tmp_path)])
    assert code == 2 and "Do not know how to read" in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch_size"):
        evaluation.EvaluationArguments(model_name_or_path="m", batch_size=0)
    with pytest.raises(ValueError, match="synthetic_crops_dir"):
        evaluation.EvaluationArguments(datasets=[str(tmp_path)], synthetic_crops_dir=str(tmp_path / "s"))


# ---- loaders -------------------------------------------------------------------------------------------------------


def test_parse_icdar_ground_truth(tmp_path):
    gt = tmp_path / "gt.txt"
    # ICDAR 2015 files start with a byte-order mark and escape quotes inside labels.
    gt.write_text('\ufeffword_1.png, "Tiredness"\nword_2.png, "\\"JOINT\\""\n\nword_3.png, "a, b"\n', encoding="utf-8")
    entries = parse_gt_file(gt)
    assert [(e.path, e.text, e.lexicon) for e in entries] == [
        ("word_1.png", "Tiredness", None), ("word_2.png", '"JOINT"', None), ("word_3.png", "a, b", None),
    ]


@pytest.mark.parametrize(
    "name, content, expected_format, expected",
    [
        ("gt.txt", "img/1.png\tHello World\tHello,World world\nimg/2.png\tx\n", "tsv",
         [("img/1.png", "Hello World", ["Hello", "World", "world"]), ("img/2.png", "x", None)]),
        ("gt.txt", "img/1.png Hello World\nimg/2.png \"quoted\"\n", "space",
         [("img/1.png", "Hello World", None), ("img/2.png", "quoted", None)]),
        ("labels.csv", 'file_name,text,lexicon\n1.png,"Hi, there","hi there"\n2.png,ok,\n', "csv",
         [("1.png", "Hi, there", ["hi", "there"]), ("2.png", "ok", [])]),
        ("gt.txt", "1.jpg,Hello\n2.jpg,World\n", "csv", [("1.jpg", "Hello", None), ("2.jpg", "World", None)]),
    ],
)
def test_parse_ground_truth_formats(tmp_path, name, content, expected_format, expected):
    gt = tmp_path / name
    gt.write_text(content, encoding="utf-8")
    with open(gt, encoding="utf-8") as handle:
        assert detect_gt_format(gt, handle.readline().rstrip("\n")) == expected_format
    assert [(e.path, e.text, e.lexicon) for e in parse_gt_file(gt)] == expected


def test_parse_ground_truth_errors(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text('word_1.png, "ok"\nno label here\n')
    with pytest.raises(ValueError, match="gt.txt:2"):
        parse_gt_file(gt, "icdar")
    gt.write_text("")
    with pytest.raises(ValueError, match="empty"):
        parse_gt_file(gt)
    with pytest.raises(ValueError, match="gt_format"):
        parse_gt_file(gt, "xml")


def test_crops_folder_with_lexicon_files_and_errors(tmp_path):
    crops = tmp_path / "svt"
    _write_crops(crops, ["one", "two"], ["word_1.png one\n", "word_2.png two\n"])
    (crops / "lex").mkdir()
    (crops / "lex" / "word_1.txt").write_text("one, won\nton")
    dataset = load_evaluation_dataset(str(crops))
    assert dataset["text"] == ["one", "two"] and dataset["path"] == ["word_1.png", "word_2.png"]
    assert dataset["lexicon"] == [["one", "won", "ton"], []]
    assert isinstance(dataset[0]["image"], PIL.Image.Image)
    assert load_crops_folder(crops / "gt.txt", max_samples=1)["text"] == ["one"]  # the gt file itself works too

    (crops / "gt.txt").write_text("word_1.png one\nword_9.png nine\n")
    with pytest.raises(ValueError, match=r"1 image\(s\).*word_9.png"):
        load_crops_folder(crops)
    with pytest.raises(ValueError, match="No ground-truth file"):
        load_crops_folder(crops / "lex")


def test_icdar_lines_round_trip(tmp_path):
    labels = ['say "hi"', "back\\slash", 'end\\"', "a, b", "plain"]
    gt = tmp_path / "gt.txt"
    gt.write_text("".join(icdar_line(f"{i}.png", label) for i, label in enumerate(labels)), encoding="utf-8")
    assert gt.read_text().splitlines()[0] == '0.png, "say \\"hi\\""'
    assert [entry.text for entry in parse_gt_file(gt)] == labels
    with pytest.raises(ValueError, match="ICDAR"):
        icdar_line("a,b.png", "x")


def test_write_crops_folder_reads_back(tmp_path):
    images = [render_word("Hello"), render_word("42"), render_word("x")]
    samples = [
        {"image": images[0], "text": "Hello", "lexicon": ["hello", "help"]},
        {"image": images[1], "text": "42", "lexicon": []},
        {"image": images[2], "text": 'x"', "lexicon": ["x"]},
    ]
    gt = write_crops_folder(samples, tmp_path / "set")
    assert gt == tmp_path / "set" / "gt.txt"
    assert sorted(path.name for path in (tmp_path / "set" / "lexicons").iterdir()) == ["word_1.txt", "word_3.txt"]
    dataset = load_evaluation_dataset(str(tmp_path / "set"))
    assert dataset["text"] == ["Hello", "42", 'x"'] and dataset["path"] == ["word_1.png", "word_2.png", "word_3.png"]
    assert dataset["lexicon"] == [["hello", "help"], [], ["x"]]
    for image, loaded in zip(images, dataset["image"]):
        assert list(loaded.convert("L").getdata()) == list(image.getdata())
    with pytest.raises(ValueError, match="empty dataset"):
        write_crops_folder([], tmp_path / "none")


def test_write_synthetic_crops(tmp_path):
    folder = tmp_path / "synthetic"
    write_synthetic_crops(folder, num_samples=3, seed=5, lexicon_size=4, cache_dir=str(tmp_path / "cache"))
    manifest = json.loads((folder / SYNTHETIC_MANIFEST).read_text())
    assert manifest["num_samples"] == 3 and manifest["seed"] == 5 and manifest["fonts"] == "eval"
    from_folder = load_evaluation_dataset(str(folder))
    direct = load_evaluation_dataset(
        "synthetic", num_synthetic_samples=3, synthetic_seed=5, synthetic_lexicon_size=4,
        cache_dir=str(tmp_path / "cache"),
    )
    assert from_folder["text"] == direct["text"] and from_folder["lexicon"] == direct["lexicon"]
    assert all(len(lexicon) == 4 for lexicon in from_folder["lexicon"])

    # The same set again: the folder is kept as it is (a stray file survives).
    (folder / "stray.txt").write_text("x")
    write_synthetic_crops(folder, num_samples=3, seed=5, lexicon_size=4, cache_dir=str(tmp_path / "cache"))
    assert (folder / "stray.txt").is_file()
    # Another set: its own folder is rewritten (here with fewer images: none left over); any other non-empty folder
    # is refused.
    write_synthetic_crops(folder, num_samples=2, seed=5, lexicon_size=0, cache_dir=str(tmp_path / "cache"))
    assert sorted(path.name for path in folder.iterdir()) == ["gt.txt", SYNTHETIC_MANIFEST, "word_1.png", "word_2.png"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        write_synthetic_crops(tmp_path / "mine", num_samples=2)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_datasets_formats_are_standardised(tmp_path):
    images = [render_word("ab"), render_word("cd")]
    dataset = datasets.Dataset.from_dict({"img": images, "label": ["Ab", "cD"], "text": ["x", "y"]})
    dataset = dataset.cast_column("img", datasets.Image())
    dataset.save_to_disk(str(tmp_path / "saved"))
    loaded = load_evaluation_dataset(str(tmp_path / "saved"), text_column="label")
    assert loaded.column_names[:2] == ["image", "text"] and loaded["text"] == ["Ab", "cD"]

    dataset.to_parquet(str(tmp_path / "set.parquet"))
    assert load_evaluation_dataset(str(tmp_path / "set.parquet"), max_samples=1)["text"] == ["x"]

    folder = tmp_path / "imagefolder"
    folder.mkdir()
    for index, image in enumerate(images):
        image.save(folder / f"{index}.png")
    (folder / "metadata.csv").write_text("file_name,text\n0.png,Ab\n1.png,cD\n")
    assert sorted(load_evaluation_dataset(str(folder), cache_dir=str(tmp_path / "cache"))["text"]) == ["Ab", "cD"]

    with pytest.raises(ValueError, match="no text column 'missing'"):
        load_evaluation_dataset(str(tmp_path / "set.parquet"), text_column="missing")
    bad = dataset.remove_columns(["label", "text"]).add_column("caption", ["a", "b"])
    bad.to_parquet(str(tmp_path / "bad.parquet"))
    with pytest.raises(ValueError, match="which column holds the text"):
        load_evaluation_dataset(str(tmp_path / "bad.parquet"))


def test_lmdb_benchmark(tmp_path):
    pytest.importorskip("lmdb")
    from hf_crnn.lmdb_dataset import write_lmdb_dataset

    samples = [{"image": render_word(word), "text": word} for word in ("Tiredness", "42")]
    write_lmdb_dataset(samples, tmp_path / "IIIT5k_3000")
    dataset = load_evaluation_dataset(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert dataset["text"] == ["Tiredness", "42"]
    assert dataset["path"] == ["IIIT5k_3000/image-000000001", "IIIT5k_3000/image-000000002"]

    # A folder of several databases (clovaai's evaluation/) stands for each of them: one result row per benchmark.
    write_lmdb_dataset(samples[:1], tmp_path / "SVT")
    assert expand_sources([str(tmp_path), "synthetic"]) == [
        str(tmp_path / "IIIT5k_3000"), str(tmp_path / "SVT"), "synthetic",
    ]
    assert load_evaluation_dataset(str(tmp_path / "SVT"), cache_dir=str(tmp_path / "cache"))["path"] == [
        "image-000000001"
    ]


def test_synthetic_lexicons_hold_the_label_and_distinct_distractors():
    words = ["alpha", "beta", "gamma", "delta", "Brie's", "ALPHA"]
    lexicons = synthetic_lexicons(["Alpha", "zeta"], words, size=4, seed=3)
    assert lexicons == synthetic_lexicons(["Alpha", "zeta"], words, size=4, seed=3)  # reproducible
    for label, lexicon in zip(["Alpha", "zeta"], lexicons):
        assert len(lexicon) == 4 and label in lexicon
        assert "Brie's" not in lexicon  # a 36-character model cannot spell it
        assert [word.lower() for word in lexicon].count(label.lower()) == 1


# ---- peers ---------------------------------------------------------------------------------------------------------


class _EchoRecognizer(compare_peers.Recognizer):
    name = "echo"

    def recognize(self, images):
        return [f"w{image.width}" for image in images], [1.0] * len(images)


def _without_tesseract(monkeypatch):
    """Simulates a machine with neither the tesseract binary nor the tesserocr package."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "tesserocr", None)  # import fails as if not installed


def test_peer_harness_skips_missing_tesseract_and_ppocr(monkeypatch):
    _without_tesseract(monkeypatch)
    tesseract = compare_peers.TesseractRecognizer()
    with pytest.raises(compare_peers.RecognizerUnavailable, match="apt-get install -y tesseract-ocr") as error:
        tesseract.load()
    assert "pip install tesserocr" in str(error.value)  # both ways of running it were tried
    images = [PIL.Image.new("RGB", (10, 32)), PIL.Image.new("RGB", (12, 32))]
    dataset = datasets.Dataset.from_dict({"image": images, "text": ["w10", "W12!"]})
    dataset = dataset.cast_column("image", datasets.Image())
    rows = compare_peers.compare(
        [_EchoRecognizer(), tesseract, compare_peers.PPOCRRecognizer(None)], [("tiny", dataset)]
    )
    echo, skipped_tesseract, skipped_ppocr = rows
    assert echo["protocol_accuracy"] == 1.0 and echo["exact_accuracy"] == 0.5
    assert "tesseract-ocr" in skipped_tesseract["skipped"]
    assert "--ppocr_model" in skipped_ppocr["skipped"]
    table = compare_peers.format_rows(rows)
    assert table[1][1].endswith("skipped (see notes)") and table[1][2:] == ["—"] * 6


class _FakeTessBaseAPI:
    """Stands in for tesserocr.PyTessBaseAPI: reads an image's width as its text."""

    instances = []

    def __init__(self, path, lang, psm, oem):
        self.options = {"path": path, "lang": lang, "psm": psm, "oem": oem}
        self.variables = {}
        _FakeTessBaseAPI.instances.append(self)

    def SetVariable(self, name, value):
        self.variables[name] = value

    def SetImage(self, image):
        self.image = image

    def GetUTF8Text(self):
        return "" if self.image.width == 7 else f"w{self.image.width} x\n"

    def AllWordConfidences(self):
        return [] if self.image.width == 7 else [90, 50]


def test_tesseract_through_tesserocr(tmp_path, monkeypatch):
    fake = type(sys)("tesserocr")
    fake.PyTessBaseAPI = _FakeTessBaseAPI
    fake.PSM = type("PSM", (), {"SINGLE_WORD": 8})
    fake.OEM = type("OEM", (), {"LSTM_ONLY": 1})
    fake.tesseract_version = lambda: "tesseract 5.9.9\n leptonica"
    monkeypatch.setitem(sys.modules, "tesserocr", fake)
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    recognizer = compare_peers.TesseractRecognizer(whitelist="abc", height=20)
    recognizer.load()
    api = _FakeTessBaseAPI.instances[-1]
    assert api.options == {"path": f"{tmp_path}/", "lang": "eng", "psm": 8, "oem": 1}
    assert api.variables == {"tessedit_char_whitelist": "abc"}
    assert recognizer.name == "Tesseract 5.9.9 (LSTM, eng, --psm 8, tesserocr)"
    # Crops are prepared (grayscale, height 20: widths 10 -> 5, 14 -> 7) before they reach the API.
    texts, confidences = recognizer.recognize([PIL.Image.new("RGB", (10, 40)), PIL.Image.new("RGB", (14, 40))])
    assert texts == ["w5 x", ""] and confidences == [pytest.approx(0.7), 0.0]
    assert api.image.mode == "L"

    with pytest.raises(ValueError, match="backend"):
        compare_peers.TesseractRecognizer(backend="ocr")
    monkeypatch.setitem(sys.modules, "tesserocr", None)
    with pytest.raises(compare_peers.RecognizerUnavailable, match="pip install tesserocr"):
        compare_peers.TesseractRecognizer(backend="tesserocr").load()


def test_compare_peers_main_skips_missing_peers(tmp_path, monkeypatch, checkpoint_dir, capsys):
    _without_tesseract(monkeypatch)
    threads = torch.get_num_threads()
    try:
        code = compare_peers.main([
            "--model_name_or_path", str(checkpoint_dir), "--num_samples", "3",
            "--synthetic_crops_dir", str(tmp_path / "crops"), "--shared_dir", str(tmp_path / "no-shared"),
            "--output_dir", str(tmp_path / "peers"), "--peers", "tesseract", "pp-ocrv5", "--batch_sizes", "32",
        ])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    results = json.loads((tmp_path / "peers" / "peers.json").read_text())
    crnn, tesseract, ppocr = results["rows"]
    assert crnn["num_samples"] == 3 and 0.0 <= crnn["protocol_accuracy"] <= 1.0 and crnn["images_per_second"] > 0
    assert "tesseract-ocr" in tesseract["skipped"] and "no local weights" in ppocr["skipped"]
    assert any("No real crops under" in note for note in results["notes"])
    # The same folder as `hf-crnn evaluate --synthetic_crops_dir` writes, lexicons included, so the two can share it.
    assert json.loads((tmp_path / "crops" / SYNTHETIC_MANIFEST).read_text())["lexicon_size"] == 50
    assert len(list((tmp_path / "crops" / "lexicons").iterdir())) == 3
    assert "| synthetic (held-out fonts, seed 20151) | CRNN (" in (tmp_path / "peers" / "peers.md").read_text()
    assert compare_peers.main(["--num_samples", "0", "--synthetic_crops_dir", str(tmp_path / "x")]) == 2
    assert "--synthetic_crops_dir needs synthetic words" in capsys.readouterr().err


def test_compare_peers_cascade_rows(tmp_path, monkeypatch, checkpoint_dir):
    args = compare_peers.CompareArguments(
        model_name_or_path=str(checkpoint_dir), extra_models=[str(tmp_path / "fallback")],
        fallback_model=str(tmp_path / "fallback"), fallback_threshold=1.0, optimize=["none", "fp32"],
        num_samples=0, peers=[],
    )
    shutil.copytree(checkpoint_dir, tmp_path / "fallback")
    recognizers = compare_peers.make_crnn_recognizers(args)
    cascades = [r for r in recognizers if isinstance(r, compare_peers.CRNNCascadeRecognizer)]
    # One cascade per mode, first stage each checkpoint but the fallback itself, the fallback in the same mode.
    assert [(c.model_name_or_path, c.optimize, c.fallback.optimize) for c in cascades] == [
        (str(checkpoint_dir), "none", "none"), (str(checkpoint_dir), "fp32", "fp32")
    ]
    assert cascades[1].name == f"CRNN ({checkpoint_dir}), fp32 → {tmp_path / 'fallback'}, fp32 below 1"
    assert cascades[1].row_fields()["word_threshold"] == DEFAULT_FALLBACK_WORD_THRESHOLD
    images = [render_word(word).convert("RGB") for word in ("hello", "world", "crnn")]
    plain = next(r for r in recognizers if r.model_name_or_path == str(checkpoint_dir) and r.optimize == "none")
    for recognizer in (plain, cascades[0]):
        recognizer.load()
    texts, _ = cascades[0].recognize(images)
    assert texts == plain.recognize(images)[0] and cascades[0].row_fields()["reread"] == 3
    # In a comparison, each row counts the images re-read on its own set (not the previous set's or the warm-up's).
    sets = [("three", datasets.Dataset.from_dict({"image": images, "text": ["hello", "world", "crnn"]})),
            ("one", datasets.Dataset.from_dict({"image": images[:1], "text": ["hello"]}))]
    rows = compare_peers.compare([cascades[0]], sets, batch_sizes=[2], warmup=2)
    assert [row["reread"] for row in rows] == [3, 1]
    with pytest.raises(ValueError, match="--fallback_threshold must be in"):
        compare_peers.CompareArguments(fallback_threshold=-1)
    with pytest.raises(ValueError, match="--fallback_beam_width must be >= 1"):
        compare_peers.CompareArguments(fallback_beam_width=0)
    # With a language model, the fallback searches with the cascade's beam width (its row says which).
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\ncrnn\n")
    args.language_model, args.fallback_beam_width, args.optimize = str(word_list), 5, ["none"]
    recognizers = compare_peers.make_crnn_recognizers(args)
    (cascade,) = [r for r in recognizers if isinstance(r, compare_peers.CRNNCascadeRecognizer)]
    # Its fallback searches with a language model, whose words are kept from the word threshold up.
    assert cascade.name.endswith("+ char LM (beam 5) below 1 (known words 0.5)")
    cascade.load()
    assert cascade.row_fields()["fallback"]["decoding"] == "lexicon-free (beam 5 + char LM)"
    assert cascade.cascade.word_threshold == 0.5 and cascade.cascade.known_words == {"hello", "world", "crnn"}


def test_ppocr_recognizer_glue(tmp_path):
    with pytest.raises(compare_peers.RecognizerUnavailable, match="nowhere not found"):
        compare_peers.PPOCRRecognizer(str(tmp_path / "nowhere")).load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(compare_peers.RecognizerUnavailable, match="cannot load"):
        compare_peers.PPOCRRecognizer(str(tmp_path / "empty")).load()

    class StubProcessor:
        def __call__(self, images, return_tensors):
            return {"pixel_values": [image.width for image in images]}

        def post_process_text_recognition(self, outputs):
            return [{"text": f"w{width}", "score": 0.5} for width in outputs]

    recognizer = compare_peers.PPOCRRecognizer("unused", batch_size=2)
    recognizer.image_processor, recognizer.model = StubProcessor(), lambda pixel_values: pixel_values
    images = [PIL.Image.new("RGB", (width, 10)) for width in (30, 10, 20)]
    assert recognizer.recognize(images) == (["w30", "w10", "w20"], [0.5, 0.5, 0.5])  # input order kept


def test_parse_tesseract_tsv():
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t10\t10\t-1\t",
        "5\t1\t1\t1\t1\t1\t0\t0\t5\t5\t90.0\tHello",
        "5\t1\t1\t1\t1\t2\t5\t0\t5\t5\t50.0\tthere",
        "1\t2\t0\t0\t0\t0\t0\t0\t10\t10\t-1\t",
        "5\t3\t1\t1\t1\t1\t0\t0\t5\t5\t20.0\t\"x",
    ]
    texts, confidences = compare_peers.parse_tesseract_tsv(header + "\n".join(rows) + "\n", 3)
    assert texts == ["Hello there", "", '"x'] and confidences == pytest.approx([0.7, 0.0, 0.2])


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract not installed")
def test_tesseract_reads_rendered_words():
    recognizer = compare_peers.TesseractRecognizer()
    recognizer.load()
    texts, confidences = recognizer.recognize([render_word("hello"), render_word("World")])
    assert [normalize_text(text) for text in texts] == ["hello", "world"] and all(0 < c <= 1 for c in confidences)


def test_discover_benchmarks(tmp_path):
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "gt.txt").write_text("x")
    _write_crops(tmp_path / "real" / "IC13", ["a"], ['word_1.png, "a"\n'])
    (tmp_path / "lmdb" / "SVT").mkdir(parents=True)
    (tmp_path / "lmdb" / "SVT" / "data.mdb").write_bytes(b"")
    found = compare_peers.discover_benchmarks(tmp_path)
    assert found == [str(tmp_path / "lmdb" / "SVT"), str(tmp_path / "real" / "IC13")]
    assert compare_peers.discover_benchmarks(tmp_path / "absent") == []


# ---- confidence, rejection and per-image arguments ------------------------------------------------------------------


def test_accuracy_by_rejection_and_expected_calibration_error_by_hand():
    records = sample_records(
        references=["a", "b", "c", "d", "e"], predictions=["a", "x", "c", "d", "y"],
        confidences=[0.95, 0.9, 0.55, 0.5, 0.05],
    )
    curve = evaluation.accuracy_by_rejection(records, rates=(0.0, 0.2, 0.4, 0.6, 1.0))
    assert curve == [
        {"rejected": 0.0, "num_kept": 5, "accuracy": 3 / 5},
        {"rejected": 0.2, "num_kept": 4, "accuracy": 3 / 4},  # "y" (0.05) goes first
        {"rejected": 0.4, "num_kept": 3, "accuracy": 2 / 3},
        {"rejected": 0.6, "num_kept": 2, "accuracy": 1 / 2},
        {"rejected": 1.0, "num_kept": 0, "accuracy": None},
    ]
    # Bins: [0.9, 1]: 0.95 right, 0.9 wrong -> |1.85 - 1|; [0.5, 0.6): 0.55, 0.5 right -> |1.05 - 2|; [0, 0.1): 0.05
    # wrong -> 0.05.
    assert evaluation.expected_calibration_error(records) == pytest.approx((0.85 + 0.95 + 0.05) / 5)
    assert evaluation.expected_calibration_error([]) is None


def test_report_has_ece_and_rejection_tables(tmp_path):
    report = _stub_report()
    assert [row["ece"] for row in report.rows] == pytest.approx(
        [(0.1 + 0.6 + 0.7) / 3, (0.2 + 0.3 + 0.7) / 3, (0.5 + 0.5 + 0.2) / 3]
    )
    curves = report.curves()["lexicon-free (greedy)"]["accuracy_by_rejection"]
    assert curves[0] == {"rejected": 0.0, "num_kept": 3, "accuracy": pytest.approx(2 / 3)}
    results = write_reports([report], tmp_path, {
        "model": "stub-model", "command": "hf-crnn evaluate ...", "created": "now", "device": "cpu",
        "torch_threads": 1, "platform": "test", "notes": [],
    })
    markdown = (tmp_path / "results.md").read_text()
    assert "| Mean conf. | ECE | Label in lexicon |" in markdown
    assert "Accuracy of the kept reads when the least confident are rejected, stub:" in markdown
    assert "| Decoding | ECE | 0% rejected | 10% rejected |" in markdown
    assert results["datasets"][0]["curves"]["global"]["accuracy_by_rejection"][0]["num_kept"] == 3


SHIPPED_CHECKPOINT = os.path.join(ROOT, "checkpoints", "crnn-synth-en")
SHUFFLED_WORDS = ["recognition", "at", "pipelines", "on", "hello", "cat", "world"]  # widths in no order


def _own_lexicons(words):
    """Per word a lexicon of it and three other words of the list, all distinct, the word not first."""
    return [[*[other for other in words if other != word][:3], word] for word in words]


def test_predict_per_image_lexicons_follow_their_images_through_width_sorting():
    model, processor = evaluation.load_model_and_processor(SHIPPED_CHECKPOINT, "cpu")
    images = [render_word(word) for word in SHUFFLED_WORDS]
    decodings = [per_image_lexicon_decoding(), lexicon_free_decoding()]
    predictions, _ = evaluation.predict(model, processor, images, decodings, batch_size=2,
                                        lexicons=_own_lexicons(SHUFFLED_WORDS))
    assert predictions["per-image lexicon"].texts == SHUFFLED_WORDS
    assert predictions["lexicon-free (greedy)"].texts == SHUFFLED_WORDS
    # The report's confidences are the results' `confidence`, not the best-path probability.
    assert all(0.5 < confidence <= 1 for confidence in predictions["per-image lexicon"].confidences)
    # An image without a lexicon amid others is decoded greedily and the others keep theirs.
    lexicons = _own_lexicons(SHUFFLED_WORDS)
    lexicons[3] = []
    predictions, _ = evaluation.predict(model, processor, images, decodings[:1], batch_size=2, lexicons=lexicons)
    assert predictions["per-image lexicon"].texts == SHUFFLED_WORDS


def test_batch_decode_per_image_lexicons_follow_shuffled_rows():
    model, processor = evaluation.load_model_and_processor(SHIPPED_CHECKPOINT, "cpu")
    batch = processor(images=[render_word(word) for word in SHUFFLED_WORDS])
    with torch.inference_mode():
        outputs = model(**batch)
    lexicons = _own_lexicons(SHUFFLED_WORDS)
    permutation = [4, 0, 6, 2, 5, 1, 3]
    decoded = processor.batch_decode(
        outputs.logits[permutation], outputs.frame_lengths[permutation], lexicon=[lexicons[i] for i in permutation],
        output_scores=True,
    )
    assert [result["text"] for result in decoded] == [SHUFFLED_WORDS[i] for i in permutation]
    assert all(not result["lexicon_fallback"] and result["confidence"] > 0.5 for result in decoded)
