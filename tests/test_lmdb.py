"""Tests of the scene-text LMDB reader/writer and the conversion example (hf_crnn.lmdb_dataset)."""

import io
import os

import datasets
import numpy as np
import PIL.Image
import pytest

from conftest import load_script

from hf_crnn.lmdb_dataset import find_lmdb_databases, load_lmdb_dataset, write_lmdb_dataset


lmdb = pytest.importorskip("lmdb")



def _encoded(image: PIL.Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def _images():
    gradient = np.tile(np.arange(0, 240, 6, dtype=np.uint8), (20, 1))  # 40 x 20, lossless-friendly
    return [
        PIL.Image.fromarray(gradient, mode="L"),
        PIL.Image.fromarray(np.stack([gradient] * 3, axis=-1)[:, :30], mode="RGB"),
        PIL.Image.fromarray(gradient[:10, :25], mode="L"),
    ]


def _write_raw_lmdb(path, entries, num_samples=None):
    """Write an LMDB the way clovaai's / crnn's create_dataset.py does, with the lmdb package directly."""
    os.makedirs(path, exist_ok=True)
    with lmdb.open(str(path), map_size=1 << 24) as environment, environment.begin(write=True) as transaction:
        for index, (image_bytes, label) in enumerate(entries, start=1):
            transaction.put(b"image-%09d" % index, image_bytes)
            transaction.put(b"label-%09d" % index, label.encode("utf-8"))
        transaction.put(b"num-samples", str(num_samples or len(entries)).encode())


@pytest.fixture
def lmdb_root(tmp_path):
    images = _images()
    _write_raw_lmdb(
        tmp_path / "data" / "train",
        [
            (_encoded(images[0], "PNG"), "Hello"),
            (_encoded(images[1], "PNG"), "café"),
            (b"not an image", "broken"),
            (_encoded(images[2], "BMP"), "a-very-long-label"),
        ],
    )
    _write_raw_lmdb(tmp_path / "data" / "valid", [(_encoded(images[2], "PNG"), "IIIT")])
    return tmp_path / "data"


def test_round_trip(lmdb_root, tmp_path):
    dataset = load_lmdb_dataset(lmdb_root / "train", cache_dir=str(tmp_path / "cache"))
    images = _images()
    assert dataset.column_names == ["image", "text", "width", "height", "source", "lmdb_index"]
    assert dataset["text"] == ["Hello", "café", "a-very-long-label"]  # the unreadable image is skipped
    assert dataset["lmdb_index"] == [1, 2, 4]
    assert list(zip(dataset["width"], dataset["height"])) == [(40, 20), (30, 20), (25, 10)]
    for row, expected in zip(dataset, [images[0], images[1], images[2]]):
        assert row["image"].mode == expected.mode
        assert np.array_equal(np.asarray(row["image"]), np.asarray(expected))
    # The original encoded bytes are kept, not re-encoded.
    raw = dataset.cast_column("image", datasets.Image(decode=False))[2]["image"]["bytes"]
    assert raw[:2] == b"BM"


def test_folder_tree_options_and_errors(lmdb_root, tmp_path):
    cache_dir = str(tmp_path / "cache")
    assert [os.path.basename(p) for p in find_lmdb_databases(lmdb_root)] == ["train", "valid"]
    dataset = load_lmdb_dataset(lmdb_root, cache_dir=cache_dir, max_label_length=5, num_proc=2)
    assert dataset["text"] == ["Hello", "café", "IIIT"] and dataset["source"] == ["train", "train", "valid"]
    assert load_lmdb_dataset(lmdb_root, cache_dir=cache_dir, max_samples=1)["text"] == ["Hello", "IIIT"]

    with pytest.raises(ValueError, match="Sample 3"):
        load_lmdb_dataset(lmdb_root / "train", cache_dir=cache_dir, skip_invalid=False)
    with pytest.raises(ValueError, match="No LMDB database"):
        load_lmdb_dataset(tmp_path / "cache", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="does not exist"):
        load_lmdb_dataset(tmp_path / "missing")


def test_rewritten_database_is_not_served_from_cache(tmp_path):
    path, cache_dir = tmp_path / "db", str(tmp_path / "cache")
    image = _encoded(_images()[0], "PNG")
    _write_raw_lmdb(path, [(image, "first")])
    assert load_lmdb_dataset(path, cache_dir=cache_dir)["text"] == ["first"]
    _write_raw_lmdb(path, [(image, "second")])
    assert load_lmdb_dataset(path, cache_dir=cache_dir)["text"] == ["second"]


def test_write_lmdb_dataset_round_trip(tmp_path):
    samples = [{"image": image, "text": text} for image, text in zip(_images(), ["one", "two", "three"])]
    assert write_lmdb_dataset(samples, tmp_path / "written", commit_every=2) == 3
    dataset = load_lmdb_dataset(tmp_path / "written", cache_dir=str(tmp_path / "cache"))
    assert dataset["text"] == ["one", "two", "three"]
    assert np.array_equal(np.asarray(dataset[1]["image"]), np.asarray(samples[1]["image"]))


def test_conversion_example(lmdb_root, tmp_path):
    example = load_script("examples/lmdb_to_datasets.py")
    output_dir = tmp_path / "converted"
    example.main(
        [
            "--lmdb_path",
            str(lmdb_root),
            "--output_dir",
            str(output_dir),
            "--cache_dir",
            str(tmp_path / "cache"),
            "--max_label_length",
            "8",
        ]
    )
    saved = datasets.load_from_disk(str(output_dir))
    assert saved["text"] == ["Hello", "café", "IIIT"]
    assert saved["length"] == [64, 48, 80]  # widths at height 32
