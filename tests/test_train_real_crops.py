"""Training on crops folders (labels.tsv / gt.txt), several folders at once, with real-crop augmentation, and
fine-tuning a converted real-weights checkpoint (EasyOCR english_g2) on real crops."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from conftest import render_word

from hf_crnn import CRNNProcessor
from hf_crnn.augmentation import RealCropAugmentation, make_augmentation

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_training import run_script  # noqa: E402

from conversion import convert_easyocr  # noqa: E402


def _write_crops_folder(folder: Path, words: list[str], gt_name: str) -> Path:
    folder.mkdir(parents=True)
    lines = []
    for index, word in enumerate(words):
        name = f"word_{index}.png"
        render_word(word).save(folder / name)
        lines.append(f"{name}\t{word}" if gt_name == "labels.tsv" else f'{name}, "{word}"')
    (folder / gt_name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_crops_folders_are_joined_and_trained_on(tmp_path):
    tsv = _write_crops_folder(tmp_path / "tsv", ["hello", "world", "scene", "text"], "labels.tsv")
    icdar = _write_crops_folder(tmp_path / "icdar", ["model", "train", "crnn"], "gt.txt")
    output_dir = tmp_path / "out"
    trainer = run_script(
        output_dir,
        train_dir=f"{tsv}:{icdar}",
        train_val_split="0.3",
        augmentation="real",
        do_train="FLAG",
        do_eval="FLAG",
    )
    assert trainer.state.global_step == 3
    train_results = json.loads((output_dir / "train_results.json").read_text())
    eval_results = json.loads((output_dir / "eval_results.json").read_text())
    # 7 crops from both folders: 30% (3) held out for evaluation, the rest trained on.
    assert (train_results["train_samples"], eval_results["eval_samples"]) == (4, 3)


def test_unknown_augmentation_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--augmentation must be one of"):
        run_script(tmp_path / "out", augmentation="heavy", do_train="FLAG")


def test_real_crop_augmentation_is_seeded_keeps_the_mode_and_changes_images():
    image = render_word("augment").convert("RGB")
    first = [RealCropAugmentation(strength=2.0, seed=7)(image) for _ in range(2)]
    assert np.array_equal(np.asarray(first[0]), np.asarray(first[1]))  # same seed, same draws
    assert first[0].mode == "RGB" and RealCropAugmentation(seed=0)(image.convert("L")).mode == "L"
    augment = RealCropAugmentation(strength=2.0, seed=1)
    changed = [augment(image) for _ in range(8)]
    assert sum(a.size != image.size or not np.array_equal(np.asarray(a), np.asarray(image)) for a in changed) >= 6
    unchanged = RealCropAugmentation(strength=0.0, seed=1)(image)
    assert np.array_equal(np.asarray(unchanged), np.asarray(image))
    assert make_augmentation("none") is None
    with pytest.raises(ValueError, match="strength"):
        RealCropAugmentation(strength=3.0)
    with pytest.raises(ValueError, match="PIL images"):
        augment(np.zeros((8, 8), dtype=np.uint8))


@pytest.mark.skipif(
    importlib.util.find_spec(convert_easyocr.WHEEL_PACKAGE) is None,
    reason=f"{convert_easyocr.WHEEL_REQUIREMENT} is not installed (it is in the test extras)",
)
@pytest.mark.skipif(not (REAL / "iiit5k_train").is_dir(), reason=f"no real crops at {REAL}")
def test_fine_tune_converted_easyocr_checkpoint_on_real_crops(tmp_path):
    converted = tmp_path / "easyocr"
    convert_easyocr.main(["--output_dir", str(converted)])
    output_dir = tmp_path / "fine-tuned"
    trainer = run_script(
        output_dir,
        model_name_or_path=converted,
        config_overrides=None,  # a checkpoint keeps its own architecture
        train_dir=REAL / "iiit5k_train",
        max_train_samples="16",
        augmentation="real",
        learning_rate="1e-5",
        max_steps="2",
        do_train="FLAG",
    )
    assert trainer.state.global_step == 2
    original, tuned = CRNNProcessor.from_pretrained(converted), CRNNProcessor.from_pretrained(output_dir)
    # The converted vocabulary (96 cased characters with space and punctuation) and EasyOCR's preprocessing stay.
    assert tuned.tokenizer.get_vocab() == original.tokenizer.get_vocab()
    assert tuned.image_processor.to_dict() == original.image_processor.to_dict()
    config = json.loads((output_dir / "config.json").read_text())
    assert (config["vocab_size"], config["image_height"], config["height_pooling"]) == (97, 64, "avg")
    # A cased real crop still reads through the fine-tuned checkpoint's own pipeline.
    image = PIL.Image.open(REAL / "iiit5k_train" / "1017_1.png")
    from transformers import pipeline

    reader = pipeline("text-recognition", model=str(output_dir))
    assert reader(image)[0]["generated_text"] == "Rescue"
