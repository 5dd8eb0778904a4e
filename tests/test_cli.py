# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""The `hf-crnn` command line: `recognize` on real images with a tiny checkpoint, and the forwarding commands."""

import csv
import io
import json
import subprocess
import sys
import types
from pathlib import Path

import PIL.Image
import pytest
from conftest import render_word
from transformers import pipeline

from hf_crnn import cli

WORDS = ("hello", "world", "crnn")
CORRUPT_NAME = "3-corrupt.png"


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Three word images, a corrupt PNG and a file that is not an image (which folder expansion skips)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index, word in enumerate(WORDS):
        render_word(word).save(folder / f"{index}-{word}.png")
    (folder / CORRUPT_NAME).write_bytes(b"\x89PNG\r\n\x1a\n but then not a PNG at all")
    (folder / "notes.txt").write_text("not an image")
    return folder


def good_images(folder: Path) -> list[str]:
    return [str(folder / f"{index}-{word}.png") for index, word in enumerate(WORDS)]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- recognize ---------------------------------------------------------------------------------------------------


def test_recognize_folder_reports_corrupt_image_and_reads_the_others(capsys, image_folder, checkpoint_dir):
    code, out, err = run_cli(capsys, "recognize", image_folder, "--model", checkpoint_dir, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [Path(row["path"]).name for row in rows] == ["0-hello.png", "1-world.png", "2-crnn.png", CORRUPT_NAME]
    expected = pipeline("text-recognition", model=str(checkpoint_dir))(good_images(image_folder))
    for row, (best,) in zip(rows[:3], expected, strict=True):
        assert row["error"] is None
        assert row["text"] == best["generated_text"]
        assert row["confidence"] == pytest.approx(best["confidence"])
        assert row["log_likelihood"] == pytest.approx(best["log_likelihood"])
    corrupt = rows[3]
    assert corrupt["text"] is None and corrupt["confidence"] is None
    assert "corrupt or not an image" in corrupt["error"]
    assert f"{corrupt['path']}: " in err and "1 of 4 image(s) failed" in err
    assert "img/s" not in err  # no progress bar when stderr is not a terminal


def test_strict_fails_the_run_when_an_image_failed(capsys, image_folder, checkpoint_dir):
    code, out, _ = run_cli(capsys, "recognize", image_folder, "--model", checkpoint_dir, "--strict")
    assert code == 1
    assert len(out.splitlines()) == 3  # the readable images are still recognised

    code, _, _ = run_cli(capsys, "recognize", *good_images(image_folder), "--model", checkpoint_dir, "--strict")
    assert code == 0


def test_tsv_output(capsys, image_folder, checkpoint_dir):
    code, out, _ = run_cli(capsys, "recognize", image_folder, "--model", checkpoint_dir, "--format", "tsv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out), delimiter="\t"))
    assert list(rows[0]) == ["path", "text", "confidence", "log_likelihood", "error", "read_by", "rotation"]
    assert len(rows) == 4
    for row in rows[:3]:
        assert row["error"] == "" and 0.0 <= float(row["confidence"]) <= 1.0 and float(row["log_likelihood"]) <= 0.0
    assert rows[3]["path"].endswith(CORRUPT_NAME) and rows[3]["confidence"] == "" and rows[3]["error"]


def test_text_output_matches_json_and_ignores_batch_size(capsys, image_folder, checkpoint_dir):
    images = good_images(image_folder)
    _, out, _ = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, "--format", "json")
    expected = [(row["path"], row["text"], f"{row['confidence']:.4f}") for row in json.loads(out)]
    # Batching pads images to a common width; padding must not change any result.
    code, out, _ = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, "--batch-size", "2")
    assert code == 0
    assert [tuple(line.split("\t")) for line in out.splitlines()] == expected


def test_missing_file_is_reported_like_a_corrupt_one(capsys, image_folder, checkpoint_dir):
    missing = image_folder / "missing.png"
    code, out, err = run_cli(
        capsys, "recognize", missing, *good_images(image_folder)[:1], "--model", checkpoint_dir, "--format", "json"
    )
    assert code == 0
    rows = json.loads(out)
    assert "not found" in rows[0]["error"] and rows[1]["error"] is None
    assert str(missing) in err


def test_recursive_folder_expansion(tmp_path):
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    for name in ("b/2.JPG", "a.png", "b/deeper/3.webp", "b/skip.txt"):
        (tmp_path / name).write_bytes(b"")
    assert cli.collect_image_paths([str(tmp_path)]) == [str(tmp_path / "a.png")]
    assert cli.collect_image_paths([str(tmp_path)], recursive=True) == [
        str(tmp_path / name) for name in ("a.png", "b/2.JPG", "b/deeper/3.webp")
    ]


def test_usage_errors(capsys, tmp_path, checkpoint_dir):
    code, _, err = run_cli(capsys, "recognize", tmp_path, "--model", checkpoint_dir)
    assert code == 2 and "no images to recognise" in err and "no image files in" in err

    code, _, err = run_cli(capsys, "recognize", tmp_path, "--model", tmp_path / "no-such-model")
    assert code == 2

    with pytest.raises(SystemExit) as exit_info:  # argparse validates the lexicon path before anything loads
        cli.main(["recognize", str(tmp_path), "--model", str(checkpoint_dir), "--lexicon", str(tmp_path / "none.txt")])
    assert exit_info.value.code == 2


def test_lexicon_beam_search_and_language_model_reach_the_decoder(capsys, image_folder, checkpoint_dir, tmp_path):
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("crnn\n")
    images = good_images(image_folder)
    code, out, _ = run_cli(
        capsys, "recognize", *images, "--model", checkpoint_dir, "--lexicon", lexicon, "--format", "json"
    )
    assert code == 0 and [row["text"] for row in json.loads(out)] == ["crnn"] * 3  # a one-word lexicon

    for decoding in (["--beam-width", "4"], ["--language-model", lexicon]):  # a word list trains a language model
        code, out, _ = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, *decoding, "--format", "json")
        assert code == 0 and all(isinstance(row["text"], str) for row in json.loads(out))

    code, _, err = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, "--language-model", "checkpoint")
    assert code == 2 and "ships no language_model.json" in err  # the tiny checkpoint has none
    code, _, err = run_cli(
        capsys, "recognize", *images, "--model", checkpoint_dir, "--language-model", lexicon, "--lexicon", lexicon
    )
    assert code == 2 and "two different decodings" in err
    code, _, err = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, "--language-model", "nope.txt")
    assert code == 2 and "no such file" in err


def test_fallback_model_beam_width_is_the_fallbacks(capsys, image_folder, checkpoint_dir, tmp_path, monkeypatch):
    from hf_crnn.pipeline_crnn import (
        DEFAULT_FALLBACK_BEAM_WIDTH,
        DEFAULT_FALLBACK_WORD_THRESHOLD,
        CRNNTextRecognitionPipeline,
    )

    fallback_options, word_thresholds, call_options = [], [], []
    set_fallback, call = CRNNTextRecognitionPipeline.set_fallback, CRNNTextRecognitionPipeline.__call__

    def record_set_fallback(self, pipeline, threshold=0.9, options=None, word_threshold=0.5, known_words=None):
        fallback_options.append(options), word_thresholds.append(word_threshold)
        return set_fallback(self, pipeline, threshold, options, word_threshold, known_words)

    def record_call(self, inputs, **kwargs):
        call_options.append(kwargs)
        return call(self, inputs, **kwargs)

    monkeypatch.setattr(CRNNTextRecognitionPipeline, "set_fallback", record_set_fallback)
    monkeypatch.setattr(CRNNTextRecognitionPipeline, "__call__", record_call)
    word_list = tmp_path / "words.txt"
    word_list.write_text("crnn\nhello\n")
    cascade = ["--model", checkpoint_dir, "--fallback-model", checkpoint_dir, "--language-model", word_list]
    for extra, beam_width, word_threshold in (
        ([], DEFAULT_FALLBACK_BEAM_WIDTH, DEFAULT_FALLBACK_WORD_THRESHOLD),
        (["--beam-width", "7", "--fallback-word-threshold", "0.25"], 7, 0.25),
    ):
        fallback_options.clear(), call_options.clear()
        images = good_images(image_folder)
        code, _, _ = run_cli(capsys, "recognize", *images, *cascade, "--fallback-threshold", "1", *extra)
        assert code == 0 and fallback_options[-1]["beam_width"] == beam_width  # set_fallback(None) first, at init
        assert fallback_options[-1]["language_model"] is not None and word_thresholds[-1] == word_threshold
        # The first stage reads greedily; the fallback searches (it is called with its options).
        first, *rest = call_options
        assert "beam_width" not in first and "language_model" not in first
        assert rest and all(options.get("beam_width") == beam_width for options in rest)


def test_fallback_model_cascade(capsys, image_folder, checkpoint_dir, tmp_path):
    images = good_images(image_folder)
    code, plain, _ = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, "--format", "json")
    assert code == 0
    # The same checkpoint as its own fallback, below confidence 1 (every image): it reads what it read alone.
    cascade = ["--fallback-model", checkpoint_dir, "--fallback-threshold", "1", "--format", "json"]
    code, out, _ = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, *cascade)
    assert code == 0 and [row["text"] for row in json.loads(out)] == [row["text"] for row in json.loads(plain)]
    # Every output format says which stage read each image; threshold 0 leaves them all to the first.
    assert {row["read_by"] for row in json.loads(out)} == {"fallback"}
    assert {row["read_by"] for row in json.loads(plain)} == {None}
    first_only = ["--fallback-model", checkpoint_dir, "--fallback-threshold", "0"]
    code, out, _ = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, *first_only, "--format", "tsv")
    assert code == 0 and {row["read_by"] for row in csv.DictReader(io.StringIO(out), delimiter="\t")} == {"model"}
    code, out, _ = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, *first_only)
    assert code == 0 and all(line.split("\t")[3] == "model" for line in out.splitlines())
    word_list = tmp_path / "words.txt"
    word_list.write_text("crnn\nhello\n")
    code, out, _ = run_cli(
        capsys, "recognize", *images, "--model", checkpoint_dir, *cascade, "--language-model", word_list
    )
    assert code == 0 and len(json.loads(out)) == len(images)
    # A lexicon decodes both stages: every image, read again or not, reads as one of its words.
    first_only = ["--fallback-model", checkpoint_dir, "--fallback-threshold", "0", "--format", "json"]
    for stages in (cascade, first_only):
        code, out, _ = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, *stages, "--lexicon", word_list)
        assert code == 0 and {row["text"] for row in json.loads(out)} <= {"crnn", "hello"}
        assert {row["read_by"] for row in json.loads(out)} == {"fallback" if stages is cascade else "model"}
    code, _, err = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, *cascade, "--beam-width", "4")
    assert code == 2 and "sets the beam of the fallback's --language-model search" in err
    code, _, err = run_cli(
        capsys, "recognize", *images, "--model", checkpoint_dir, *cascade, "--language-model", "checkpoint"
    )
    assert code == 2 and "ships no language_model.json" in err  # the fallback's own: the tiny checkpoint has none
    for option in ("--fallback-threshold", "--fallback-word-threshold"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["recognize", *map(str, images), "--model", str(checkpoint_dir), option, "1.5"])
        assert exit_info.value.code == 2 and "expected a confidence in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16"], ids=["utf-8", "utf-8 with BOM", "utf-16 with BOM"]
)
def test_lexicon_encodings_that_are_accepted(capsys, image_folder, checkpoint_dir, tmp_path, encoding):
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("\ncrnn\r\n", encoding=encoding)  # Python's "utf-16" writes a byte-order mark
    code, out, err = run_cli(
        capsys, "recognize", *good_images(image_folder), "--model", checkpoint_dir, "--lexicon", lexicon, "--format",
        "json",
    )
    assert code == 0, err
    assert [row["text"] for row in json.loads(out)] == ["crnn"] * 3


def _refuse_to_load(model, device):
    raise AssertionError("the model was loaded before the lexicon was checked")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"hello\nworld\ncaf\xe9\n", "line 3: not UTF-8 text (byte 0xe9)"),  # Latin-1
        ("hello\nworld\n".encode("utf-16-le"), "line 1: holds a NUL character"),  # UTF-16 without a BOM
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1: not UTF-8 text (byte 0x89)"),  # an image
        (b"\xff\xfeh\x00\x00\xd8", "line 1: not UTF-16 text"),  # UTF-16 BOM, then a cut-off surrogate pair
        (b"", "holds no words"),
        (b" \n\t\n", "holds no words"),
    ],
    ids=["latin-1", "utf-16 without BOM", "binary", "broken utf-16", "empty", "blank"],
)
def test_bad_lexicon_is_a_usage_error_before_the_model_loads(
    capsys, monkeypatch, image_folder, tmp_path, content, expected
):
    monkeypatch.setattr(cli, "load_recognizer", _refuse_to_load)
    lexicon = tmp_path / "words.txt"
    lexicon.write_bytes(content)
    code, out, err = run_cli(capsys, "recognize", *good_images(image_folder), "--model", "m", "--lexicon", lexicon)
    assert code == cli.EXIT_USAGE and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert f"lexicon file {lexicon}" in err and expected in err


def test_lexicon_nul_character_is_reported_on_its_line(tmp_path):
    from hf_crnn.file_utils import read_word_list_file

    lexicon = tmp_path / "words.txt"
    lexicon.write_bytes(b"one\r\ntwo\rthree\nfo\x00ur\n")  # CRLF, CR and LF line ends before the NUL
    with pytest.raises(ValueError, match="line 4: holds a NUL character"):
        read_word_list_file(lexicon)
    lexicon.write_bytes(b"one\r\ntwo\rthree\n")
    assert read_word_list_file(lexicon) == ["one", "two", "three"]


def test_lexicon_warning_prints_just_the_message(capsys, image_folder, checkpoint_dir, tmp_path):
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("crnn\ncafé\n", encoding="utf-8")  # "é" is not in the tiny model's vocabulary
    images = good_images(image_folder)
    code, out, err = run_cli(capsys, "recognize", *images, "--model", checkpoint_dir, "--lexicon", lexicon)
    assert code == 0 and len(out.splitlines()) == 3
    warning_lines = [line for line in err.splitlines() if "skipped" in line]
    expected = "hf-crnn: warning: Lexicon: skipped 1 word(s) with characters outside the vocabulary, e.g. ['café']."
    assert warning_lines == [expected]
    assert "warnings.warn" not in err and ".py:" not in err  # no source location or source line


class RecordingRecognizer:
    """Stands in for the pipeline where a test needs to see, or break, what the CLI sends to it."""

    def __init__(self, fails=lambda image: False):
        self.calls = []
        self.fails = fails
        self.processor = types.SimpleNamespace(image_processor=types.SimpleNamespace(num_channels=1))

    def __call__(self, images, batch_size, **decoding_options):
        self.calls.append({"num_images": len(images), "batch_size": batch_size, **decoding_options})
        if any(self.fails(image) for image in images):
            raise RuntimeError("model exploded")
        return [[{"generated_text": f"{image.width}px", "confidence": 0.5, "log_likelihood": -0.7}] for image in images]


def test_decoding_options_pass_through_only_when_set(capsys, monkeypatch, image_folder, tmp_path):
    recognizer = RecordingRecognizer()
    monkeypatch.setattr(cli, "load_recognizer", lambda model, device: recognizer)
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("hello\nworld\n")

    run_cli(capsys, "recognize", *good_images(image_folder), "--model", "m", "--batch-size", "3")
    assert recognizer.calls == [{"num_images": 3, "batch_size": 3}]

    recognizer.calls.clear()
    run_cli(capsys, "recognize", *good_images(image_folder), "--model", "m", "--lexicon", lexicon, "--beam-width", "5")
    assert recognizer.calls == [{"num_images": 3, "batch_size": 16, "lexicon": str(lexicon), "beam_width": 5}]


def test_pipeline_failure_is_attributed_to_the_failing_image(capsys, monkeypatch, image_folder):
    images = good_images(image_folder)
    widest = max(PIL.Image.open(path).width for path in images)
    recognizer = RecordingRecognizer(fails=lambda image: image.width == widest)
    monkeypatch.setattr(cli, "load_recognizer", lambda model, device: recognizer)
    code, out, _ = run_cli(capsys, "recognize", *images, "--model", "m", "--format", "json")
    rows = json.loads(out)
    assert code == 0
    assert [row["error"] for row in rows].count(None) == 2
    (failed,) = [row for row in rows if row["error"]]
    assert "model exploded" in failed["error"] and PIL.Image.open(failed["path"]).width == widest


def test_failure_on_every_image_stops_the_run(capsys, monkeypatch, image_folder):
    monkeypatch.setattr(cli, "load_recognizer", lambda model, device: RecordingRecognizer(fails=lambda image: True))
    code, out, err = run_cli(capsys, "recognize", *good_images(image_folder), "--model", "m", "--format", "json")
    assert code == 1 and "recognition failed: model exploded" in err
    assert json.loads(out) == []  # the json document is still closed


def test_console_entry_point_exit_codes(image_folder, checkpoint_dir):
    command = [sys.executable, "-m", "hf_crnn.cli", "recognize", str(image_folder), "--model", str(checkpoint_dir)]
    result = subprocess.run([*command, "--strict"], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert CORRUPT_NAME in result.stderr and len(result.stdout.splitlines()) == 3


# ---- evaluate and convert ----------------------------------------------------------------------------------------


def test_evaluate_forwards_all_arguments(capsys, monkeypatch):
    received = []
    evaluation = types.ModuleType("hf_crnn.evaluation")
    evaluation.main = lambda argv: received.append(argv) or 3
    monkeypatch.setitem(sys.modules, "hf_crnn.evaluation", evaluation)
    assert cli.main(["evaluate", "--model", "m", "--datasets", "iiit5k", "-h"]) == 3
    assert received == [["--model", "m", "--datasets", "iiit5k", "-h"]]


def test_evaluate_without_evaluation_module(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "hf_crnn.evaluation", None)  # makes the import fail, as if it did not exist
    code, _, err = run_cli(capsys, "evaluate", "--model", "m")
    assert code == 2 and "hf_crnn.evaluation" in err


CONVERTER_SOURCE = """
import argparse, json

def main(argv=None):
    parser = argparse.ArgumentParser(prog="convert_meijieru_crnn")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    print(json.dumps(vars(args)))
"""


@pytest.fixture
def converter_checkout(tmp_path, monkeypatch) -> Path:
    """A checkout whose conversion/ folder has only a meijieru converter, and no other `conversion` on the path."""
    (tmp_path / "conversion").mkdir()
    (tmp_path / "conversion" / "__init__.py").write_text("")
    (tmp_path / "conversion" / "convert_meijieru_crnn.py").write_text(CONVERTER_SOURCE)
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    _forget_conversion_package(monkeypatch)
    return tmp_path


def _forget_conversion_package(monkeypatch) -> None:
    """The repository's `conversion` is neither importable nor imported; the test's sys.path changes are undone."""
    root = str(Path(cli.__file__).resolve().parent.parent)
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", ".", root)])
    for name in [name for name in sys.modules if name == "conversion" or name.startswith("conversion.")]:
        monkeypatch.delitem(sys.modules, name)


def test_convert_forwards_to_the_converter_script(capsys, converter_checkout):
    code, out, _ = run_cli(capsys, "convert", "--output", "out", "--source", "meijieru", "--checkpoint", "crnn.pth")
    assert code == 0
    assert json.loads(out) == {"checkpoint": "crnn.pth", "output": "out"}

    code, out, err = run_cli(capsys, "convert", "--source", "meijieru")  # the converter's argparse exits with 2
    assert code == 2 and "--checkpoint" in err

    code, out, _ = run_cli(capsys, "convert", "--source", "meijieru", "--help")
    assert code == 0 and "convert_meijieru_crnn" in out


def test_convert_errors(capsys, converter_checkout):
    code, _, err = run_cli(capsys, "convert", "--checkpoint", "x")
    assert code == 2 and "needs --source" in err

    code, _, err = run_cli(capsys, "convert", "--source", "clovaai")
    assert code == 2 and "convert_clovaai_benchmark.py is not available" in err

    code, out, _ = run_cli(capsys, "convert", "--help")
    assert code == 0 and "--source" in out


@pytest.mark.parametrize("source", sorted(cli.CONVERTERS))
def test_convert_runs_the_checkouts_converter_when_conversion_is_not_importable(capsys, monkeypatch, source):
    """As from any working directory: the converter is found by path, and its `conversion.*` imports resolve."""
    _forget_conversion_package(monkeypatch)
    code, out, _ = run_cli(capsys, "convert", "--source", source, "--help")
    assert code == 0 and f"conversion/{cli.CONVERTERS[source]}.py" in out and "--checkpoint" in out
