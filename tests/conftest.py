"""Shared fixtures: a tiny CRNN, its processor, a saved checkpoint, and real rendered word images."""

import glob
import importlib.util
import os
import sys
from pathlib import Path

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hf_crnn  # noqa: E402  (registers the Auto classes)
from hf_crnn import CRNNConfig, CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer  # noqa: E402

TINY_CONFIG_KWARGS = dict(
    conv_dim=[4, 8, 8, 8, 16, 16, 16],
    hidden_size=8,
    lstm_projection_dim=8,
)


REPO_ROOT = Path(__file__).resolve().parents[1]


def load_script(relative_path: str):
    """
    A script of the repository (`examples/...`, `benchmarks/...`) imported as a module named after its file, once
    per test session: test modules that load the same script share its classes.
    """
    name = Path(relative_path).stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relative_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def tiny_config(**overrides) -> CRNNConfig:
    """The paper's layout with a handful of channels: same shapes and frame counts, ~10k parameters."""
    return CRNNConfig(**{**TINY_CONFIG_KWARGS, **overrides})


def find_font(size: int = 24, font_path: str | None = None) -> PIL.ImageFont.FreeTypeFont:
    """`font_path` (default DejaVu Sans, else Pillow's built-in font) at `size` pixels."""
    fonts = sorted(glob.glob(font_path or "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    if fonts:
        return PIL.ImageFont.truetype(fonts[0], size)
    return PIL.ImageFont.load_default(size=size)


def render_word(text: str, height: int = 40, mode: str = "L", font_path: str | None = None) -> PIL.Image.Image:
    """Black text on white, roughly `height` pixels high, as a real (not random) word crop."""
    font = find_font(int(height * 0.7), font_path)
    left, top, right, bottom = font.getbbox(text)
    image = PIL.Image.new("L", (right - left + 12, height), 255)
    PIL.ImageDraw.Draw(image).text((6 - left, (height - (bottom - top)) // 2 - top), text, font=font, fill=0)
    return image.convert(mode)


@pytest.fixture
def config():
    return tiny_config()


@pytest.fixture
def model(config):
    torch.manual_seed(0)
    return CRNNForTextRecognition(config).eval()


@pytest.fixture
def processor():
    return CRNNProcessor(
        CRNNImageProcessor(resize_mode="keep_aspect_ratio"), CRNNTokenizer(do_lower_case=True)
    )


@pytest.fixture
def checkpoint_dir(tmp_path, model, processor):
    path = tmp_path / "crnn-tiny"
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture
def word_images():
    return [render_word(word) for word in ("hello", "world", "crnn", "a", "transformers")]


@pytest.fixture
def system_and_extra_fonts(tmp_path, monkeypatch):
    """A 'system' font folder with every installed family but one, and an 'extra' folder with that one (symlinks).

    The first family (by name) is the only held-out family, so that with just fonts-dejavu-core installed the
    system folder still has a training family and the extra one is not held out. Returns
    `(system_dir, extra_dir, extra_family)`.
    """
    from hf_crnn.synthetic import fonts as synthetic  # the module whose HELD_OUT_FONT_FAMILIES split_fonts reads
    from hf_crnn.synthetic import find_fonts

    fonts = find_fonts()
    families = sorted({font.family for font in fonts})
    if len(families) < 3:
        pytest.skip("needs fonts of three families at least (Debian: fonts-dejavu-core)")
    monkeypatch.setattr(synthetic, "HELD_OUT_FONT_FAMILIES", (families[0],))
    system, extra = tmp_path / "system", tmp_path / "extra"
    system.mkdir()
    extra.mkdir()
    extra_family = families[-1]
    for font in fonts:
        (extra if font.family == extra_family else system).joinpath(font.name).symlink_to(font.path)
    return system, extra, extra_family
