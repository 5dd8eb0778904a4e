"""The shipped demo checkpoint (checkpoints/crnn-synth-en): complete, in sync with the package, and reading words."""

import filecmp
import json
from pathlib import Path

import pytest
from conftest import render_word
from transformers import pipeline

import hf_crnn

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "crnn-synth-en"
PACKAGE_DIR = Path(hf_crnn.__file__).parent
# Everyday words and numbers, none chosen for the model: the README's main job reads words like these.
WORDS = ["open", "street", "coffee", "station", "exit", "parking", "hotel", "market", "garden", "1984", "2026", "42"]

# A font family held out of the checkpoint's training (see its model card).
HELD_OUT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")

pytestmark = pytest.mark.skipif(not CHECKPOINT.is_dir(), reason="the demo checkpoint is not in this checkout")


def test_checkpoint_is_complete_safetensors():
    names = {path.name for path in CHECKPOINT.iterdir()}
    assert {"model.safetensors", "config.json", "vocab.json", "processor_config.json", "README.md"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl"))]  # no pickles shipped
    config = json.loads((CHECKPOINT / "config.json").read_text())
    assert config["model_type"] == "crnn" and "image-to-text" in config["custom_pipelines"]


def test_shipped_code_files_match_the_package():
    """Remote-code users run the checkpoint's copies: they must be the package's current code."""
    code_files = sorted(path.name for path in CHECKPOINT.glob("*.py"))
    assert "modeling_crnn.py" in code_files and "pipeline_crnn.py" in code_files
    stale = [name for name in code_files if not filecmp.cmp(CHECKPOINT / name, PACKAGE_DIR / name, shallow=False)]
    assert not stale, f"re-save the demo checkpoint: {stale} differ from hf_crnn's"


def test_reads_words_in_a_held_out_font():
    if not HELD_OUT_FONT.is_file():
        pytest.skip(f"{HELD_OUT_FONT} is not installed (Debian fonts-dejavu-core)")
    reader = pipeline("text-recognition", model=str(CHECKPOINT), device="cpu")
    images = [render_word(word, font_path=str(HELD_OUT_FONT)) for word in WORDS]
    results = reader(images, batch_size=len(WORDS))
    texts = [result[0]["generated_text"] for result in results]
    correct = sum(text == word for text, word in zip(texts, WORDS))
    assert correct >= len(WORDS) - 1, list(zip(WORDS, texts))
