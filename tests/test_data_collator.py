"""Tests of CRNNDataCollator, width length columns and training-only augmentation (hf_crnn.data_collator)."""

import datasets
import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageOps
import pytest
import torch

from hf_crnn import CRNNImageProcessor, CRNNProcessor, CRNNTokenizer
from hf_crnn.data_collator import CRNNDataCollator, add_length_column, augment_dataset, pad_labels


def _word_image(width: int, height: int = 32) -> PIL.Image.Image:
    image = PIL.Image.new("L", (width, height), 255)
    PIL.ImageDraw.Draw(image).rectangle((2, 4, width - 3, height - 5), fill=0)
    return image


@pytest.fixture
def crnn_processor():
    return CRNNProcessor(CRNNImageProcessor(resize_mode="keep_aspect_ratio"), CRNNTokenizer(do_lower_case=True))


@pytest.fixture
def raw_examples():
    return [
        {"image": _word_image(50), "text": "hello"},
        {"image": _word_image(101, height=64), "text": "Hi"},  # resized to 32 x 50
        {"image": _word_image(23), "text": "a1"},
    ]


def test_raw_examples(crnn_processor, raw_examples):
    batch = CRNNDataCollator(crnn_processor)(raw_examples)
    assert batch["pixel_values"].shape == (3, 1, 32, 52) and batch["pixel_values"].dtype == torch.float32
    assert batch["image_widths"].tolist() == [50, 50, 23]
    tokenizer = crnn_processor.tokenizer
    expected = [tokenizer(text).input_ids for text in ("hello", "hi", "a1")]
    assert batch["labels"].tolist() == [ids + [-100] * (5 - len(ids)) for ids in expected]
    # Padding columns hold the processor's padding value (0) only.
    assert batch["pixel_values"][2, :, :, 23:].abs().sum() == 0


def test_width_is_padded_to_the_requested_multiple(crnn_processor, raw_examples):
    batch = CRNNDataCollator(crnn_processor, pad_width_multiple=16)(raw_examples)
    assert batch["pixel_values"].shape[-1] == 64
    assert batch["image_widths"].tolist() == [50, 50, 23]


def test_preprocessed_examples_match_raw_ones(crnn_processor, raw_examples):
    collator = CRNNDataCollator(crnn_processor)
    from_raw = collator(raw_examples)
    # As `dataset.map(processor)` leaves them: one padded batch's rows, as nested lists, with -100-padded labels.
    encoded = crnn_processor(
        images=[e["image"] for e in raw_examples], text=[e["text"] for e in raw_examples], return_tensors="np"
    )
    processed = [
        {
            "pixel_values": encoded["pixel_values"][i].tolist(),
            "image_widths": int(encoded["image_widths"][i]),
            "labels": encoded["labels"][i].tolist(),
        }
        for i in range(len(raw_examples))
    ]
    from_processed = collator(processed)
    assert from_processed.keys() == from_raw.keys()
    for key in from_raw:
        assert torch.equal(from_processed[key], from_raw[key]), key

    # Without `image_widths` the whole (here unpadded) array width is valid.
    single = crnn_processor(images=raw_examples[2]["image"], return_tensors="pt")
    batch = collator([{"pixel_values": single["pixel_values"][0, :, :, :23]}])
    assert batch["image_widths"].tolist() == [23] and "labels" not in batch and batch["pixel_values"].shape[-1] == 24


def test_examples_without_text_give_no_labels(crnn_processor, raw_examples):
    batch = CRNNDataCollator(crnn_processor)([{"image": e["image"]} for e in raw_examples])
    assert set(batch) == {"pixel_values", "image_widths"}


def test_pad_labels():
    assert pad_labels([[3, 4, -100], [5], []]).tolist() == [[3, 4], [5, -100], [-100, -100]]


def test_invalid_batches_raise_value_errors(crnn_processor, raw_examples):
    collator = CRNNDataCollator(crnn_processor)
    with pytest.raises(ValueError, match="empty"):
        collator([])
    with pytest.raises(ValueError, match="remove_unused_columns"):
        collator([raw_examples[0], {"pixel_values": np.zeros((1, 32, 8))}])
    with pytest.raises(ValueError, match="every example or none"):
        collator([raw_examples[0], {"image": raw_examples[1]["image"]}])
    with pytest.raises(ValueError, match="need a processor"):
        CRNNDataCollator()(raw_examples)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        collator([{"pixel_values": np.zeros((32, 8))}])
    with pytest.raises(ValueError, match="same channels and height"):
        collator([{"pixel_values": np.zeros((1, 32, 8))}, {"pixel_values": np.zeros((1, 48, 8))}])
    with pytest.raises(ValueError, match="pad_width_multiple"):
        CRNNDataCollator(crnn_processor, pad_width_multiple=0)


def test_augmentation_only_while_training(crnn_processor, raw_examples):
    calls = []

    def invert(image):
        calls.append(image.size)
        return PIL.ImageOps.invert(image.convert("L"))

    collator = CRNNDataCollator(crnn_processor, augmentation=invert)
    plain = CRNNDataCollator(crnn_processor)(raw_examples)
    augmented = collator(raw_examples)
    assert len(calls) == 3
    valid = slice(0, 23)
    assert torch.allclose(augmented["pixel_values"][2, ..., valid], -plain["pixel_values"][2, ..., valid], atol=1e-2)

    calls.clear()
    evaluated = collator.eval()(raw_examples)
    assert not calls and torch.equal(evaluated["pixel_values"], plain["pixel_values"])
    assert collator.train().training


def test_augment_dataset_for_trainer_training_sets():
    dataset = datasets.Dataset.from_dict(
        {"image": [_word_image(40), _word_image(60)], "text": ["ab", "cd"], "width": [40, 60]},
        features=datasets.Features(
            {"image": datasets.Image(), "text": datasets.Value("string"), "width": datasets.Value("int32")}
        ),
    )
    augmented = augment_dataset(dataset, lambda image: image.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT))
    original, flipped = np.asarray(dataset[0]["image"]), np.asarray(augmented[0]["image"])
    assert np.array_equal(flipped, original[:, ::-1]) and augmented[0]["text"] == "ab"
    assert list(augmented["width"]) == [40, 60]  # what Trainer reads for length grouping


def test_length_column_for_group_by_length(crnn_processor):
    images = [_word_image(50), _word_image(101, height=64), _word_image(23)]
    dataset = datasets.Dataset.from_dict(
        {"image": images, "text": ["a", "b", "c"]},
        features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")}),
    )
    assert add_length_column(dataset)["length"] == [50, 50, 23]
    fixed = CRNNImageProcessor(resize_mode="fixed")
    assert add_length_column(dataset, image_processor=fixed, length_column_name="w")["w"] == [100, 100, 100]
    with_sizes = dataset.add_column("width", [50, 101, 23]).add_column("height", [32, 64, 32])
    assert add_length_column(with_sizes, image_height=16)["length"] == [25, 25, 12]

    from transformers.trainer_pt_utils import LengthGroupedSampler

    lengths = add_length_column(dataset)["length"]
    sampler = LengthGroupedSampler(batch_size=2, lengths=list(lengths), generator=torch.Generator().manual_seed(0))
    assert sorted(sampler) == [0, 1, 2]
