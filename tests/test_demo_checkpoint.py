"""The shipped demo checkpoint (checkpoints/crnn-synth-en): complete, in sync with the package, and reading words."""

import filecmp
import json
from pathlib import Path

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import pytest
from transformers import pipeline

import hf_crnn

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "crnn-synth-en"
PACKAGE_DIR = Path(hf_crnn.__file__).parent
# Everyday words and numbers, none chosen for the model: the README's main job reads words like these.
WORDS = ["open", "street", "coffee", "station", "exit", "parking", "hotel", "market", "garden", "1984", "2026", "42"]

# A font family held out of the checkpoint's training (see its model card).
HELD_OUT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")

pytestmark = pytest.mark.skipif(not CHECKPOINT.is_dir(), reason="the demo checkpoint is not in this checkout")


def render_held_out(text: str, height: int = 40) -> PIL.Image.Image:
    if not HELD_OUT_FONT.is_file():
        pytest.skip(f"{HELD_OUT_FONT} is not installed (Debian fonts-dejavu-core)")
    font = PIL.ImageFont.truetype(str(HELD_OUT_FONT), int(height * 0.7))
    left, top, right, bottom = font.getbbox(text)
    image = PIL.Image.new("RGB", (right - left + 12, height), (250, 248, 240))
    PIL.ImageDraw.Draw(image).text((6 - left, (height - (bottom - top)) // 2 - top), text, font=font, fill=(30, 30, 30))
    return image


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
    reader = pipeline("text-recognition", model=str(CHECKPOINT), device="cpu")
    results = reader([render_held_out(word) for word in WORDS], batch_size=len(WORDS))
    texts = [result[0]["generated_text"] for result in results]
    correct = sum(text == word for text, word in zip(texts, WORDS))
    assert correct >= len(WORDS) - 1, list(zip(WORDS, texts))
