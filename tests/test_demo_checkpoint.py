"""The shipped demo checkpoint (checkpoints/crnn-synth-en): complete, in sync with the package, and reading words."""

import json
import os
import subprocess
import sys
import textwrap
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


CHECKPOINTS_DIR = CHECKPOINT.parent
SHIPPED = sorted(path for path in CHECKPOINTS_DIR.iterdir() if (path / "config.json").is_file())
CODE_FILES = ("configuration_crnn.py", "modeling_crnn.py", "image_processing_crnn.py", "tokenization_crnn.py",
              "processing_crnn.py", "pipeline_crnn.py", "decoding.py", "file_utils.py")


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


def test_reads_words_in_a_held_out_font():
    if not HELD_OUT_FONT.is_file():
        pytest.skip(f"{HELD_OUT_FONT} is not installed (Debian fonts-dejavu-core)")
    reader = pipeline("text-recognition", model=str(CHECKPOINT), device="cpu")
    images = [render_word(word, font_path=str(HELD_OUT_FONT)) for word in WORDS]
    results = reader(images, batch_size=len(WORDS))
    texts = [result[0]["generated_text"] for result in results]
    correct = sum(text == word for text, word in zip(texts, WORDS))
    assert correct >= len(WORDS) - 1, list(zip(WORDS, texts))
