"""The shipped checkpoints (checkpoints/*): complete, code linked to the package, loading without hf_crnn, reading words."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
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


CHECKPOINTS_DIR = CHECKPOINT.parent
SHIPPED = sorted(path for path in CHECKPOINTS_DIR.iterdir() if (path / "config.json").is_file())
CODE_FILES = ("configuration_crnn.py", "modeling_crnn.py", "image_processing_crnn.py", "tokenization_crnn.py",
              "processing_crnn.py", "pipeline_crnn.py", "decoding.py", "file_utils.py", "language_model.py")


@pytest.mark.parametrize("checkpoint", SHIPPED, ids=lambda path: path.name)
def test_checkpoint_is_complete_safetensors(checkpoint):
    names = {path.name for path in checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "vocab.json", "processor_config.json", "README.md"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl"))]  # no pickles shipped
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "crnn" and "image-to-text" in config["custom_pipelines"]


@pytest.mark.parametrize("checkpoint", SHIPPED, ids=lambda path: path.name)
def test_shipped_code_files_are_links_to_the_package(checkpoint):
    """One source of truth: a shipped checkpoint's code files are relative links to hf_crnn's, never copies."""
    code_files = {path.name for path in checkpoint.glob("*.py")}
    assert set(CODE_FILES) <= code_files
    for name in code_files:
        path = checkpoint / name
        assert path.is_symlink(), f"{path} is a copy; link it: ln -sf ../../hf_crnn/{name} {path}"
        assert not Path(os.readlink(path)).is_absolute()
        assert path.resolve() == (PACKAGE_DIR / name).resolve()


# Loads a checkpoint with only transformers: any import of hf_crnn in that process fails.
LOAD_WITHOUT_HF_CRNN = textwrap.dedent(
    """
    import importlib.abc, sys
    class BlockHfCrnn(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "hf_crnn":
                raise ImportError("hf_crnn is not importable in this process")
    sys.meta_path.insert(0, BlockHfCrnn())
    import PIL.Image, PIL.ImageDraw
    from transformers import pipeline
    reader = pipeline("image-to-text", model=sys.argv[1], trust_remote_code=True)
    image = PIL.Image.new("L", (96, 32), 255)
    PIL.ImageDraw.Draw(image).text((4, 8), "hello", fill=0)
    result = reader(image)
    assert isinstance(result[0]["generated_text"], str), result
    if reader.processor.language_model is not None:  # a shipped language_model.json works in remote code too
        result = reader(image, language_model=True)
        assert isinstance(result[0]["generated_text"], str), result
        print("language model used")
    # A cascade of remote-code pipelines: at threshold 1, all but a certain reading is read again by the fallback.
    fallback = pipeline("image-to-text", model=sys.argv[1], trust_remote_code=True)
    cascade = pipeline("image-to-text", model=sys.argv[1], trust_remote_code=True, fallback_pipeline=fallback,
                       fallback_threshold=1.0)
    certain = reader(image)[0]["confidence"] == 1.0
    assert cascade(image)[0]["read_by"] == ("model" if certain else "fallback")
    assert not [name for name in sys.modules if name.startswith("hf_crnn")]
    print(type(reader).__module__)
    """
)


@pytest.mark.parametrize("checkpoint", SHIPPED, ids=lambda path: path.name)
def test_loads_with_trust_remote_code_without_hf_crnn(checkpoint):
    completed = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_HF_CRNN, str(checkpoint)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "pipeline_crnn" in completed.stdout  # the checkpoint's own pipeline code ran, not a stock pipeline
    assert ("language model used" in completed.stdout) == (checkpoint / "language_model.json").is_file()


def test_reads_words_in_a_held_out_font():
    if not HELD_OUT_FONT.is_file():
        pytest.skip(f"{HELD_OUT_FONT} is not installed (Debian fonts-dejavu-core)")
    reader = pipeline("text-recognition", model=str(CHECKPOINT), device="cpu")
    images = [render_word(word, font_path=str(HELD_OUT_FONT)) for word in WORDS]
    results = reader(images, batch_size=len(WORDS))
    texts = [result[0]["generated_text"] for result in results]
    correct = sum(text == word for text, word in zip(texts, WORDS))
    assert correct >= len(WORDS) - 1, list(zip(WORDS, texts))


REAL_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "iiit5k_test"
# The real-photo checkpoints and their accuracy on all 3,000 IIIT5K test crops (hf-crnn evaluate, lexicon-free).
REAL_CHECKPOINTS = {"crnn-real-en": 0.822, "crnn-real-en-fast": 0.805}


@pytest.mark.parametrize("name", sorted(REAL_CHECKPOINTS))
@pytest.mark.skipif(not REAL_TEST.is_dir(), reason=f"no real crops at {REAL_TEST}")
def test_real_checkpoints_read_real_photographed_words(name):
    """A regression check of the real-photo checkpoints: the first 200 IIIT5K test crops, batched."""
    checkpoint = CHECKPOINTS_DIR / name
    if not checkpoint.is_dir():
        pytest.skip(f"{checkpoint} is not in this checkout")
    import csv

    import PIL.Image

    from hf_crnn.metrics import normalize_text

    with open(REAL_TEST / "labels.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:200]
    images = [PIL.Image.open(REAL_TEST / name) for name, _ in rows]
    reader = pipeline("text-recognition", model=str(checkpoint), device="cpu")
    results = reader(images, batch_size=32)
    correct = sum(normalize_text(r[0]["generated_text"]) == normalize_text(label) for r, (_, label) in zip(results, rows))
    # Within 7 points of the full-set score: 200 crops leave about 3 points of sampling noise.
    assert correct / len(rows) >= REAL_CHECKPOINTS[name] - 0.07, correct
    # The shipped character language model reads more of them (on the full sets: +3 points).
    fused = reader(images, batch_size=32, language_model=True)
    correct_fused = sum(
        normalize_text(r[0]["generated_text"]) == normalize_text(label) for r, (_, label) in zip(fused, rows)
    )
    assert correct_fused > correct, (correct_fused, correct)
    # Crops without text (uniform, noise, gradients) read as empty text or below nearly every correct read.
    from test_auto_and_pipeline import _negative_crops

    correct = [r[0]["confidence"] for r, (_, label) in zip(results, rows)
               if normalize_text(r[0]["generated_text"]) == normalize_text(label)]
    floor = np.percentile(correct, 5)
    negatives = [r[0] for r in reader(_negative_crops(60), batch_size=16)]
    accepted = [r for r in negatives if r["generated_text"] and r["confidence"] >= floor]
    assert len(accepted) <= 3, accepted
