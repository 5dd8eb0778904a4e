"""
Converters of published CRNN checkpoints (conversion/): parity with the sources' own networks, refusal of
checkpoints that do not fit, safe loading, and the saved checkpoint's completeness.

Parity: a reference network in the source's exact layout (tests/reference_models.py) gets random weights and batch-norm
statistics and is saved the way the source saves it; the converter's CLI entry point turns that file into an hf_crnn
checkpoint; on rendered words, the reloaded hf_crnn model (fed by its saved image processor) must give the reference's
logits (fed by the source's own preprocessing, written out below) to 1e-5, and the same greedy transcriptions.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import pytest
import torch
from hub_server import HubServer
from reference_models import BgshihCRNN, ClovaaiNoneVGGBiLSTMCTC, MeijieruCRNN, randomize_
from transformers import AutoModelForTextRecognition, AutoProcessor

from hf_crnn import CRNNForTextRecognition, CRNNProcessor

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # conversion/ is a folder of scripts, not part of the installed package
    sys.path.insert(0, str(REPO_ROOT))

from conversion import convert_bgshih_torch7, convert_clovaai_benchmark, convert_meijieru_crnn  # noqa: E402
from conversion.common import (  # noqa: E402
    build_processor,
    load_pytorch_state_dict,
    recorded_command,
    unwrap_state_dict,
)
from conversion.key_mapping import CheckpointMismatchError  # noqa: E402

LOWERCASE_ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
TOLERANCE = 1e-5
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
WORDS = (("available", "DejaVuSans.ttf"), ("London", "DejaVuSerif.ttf"), ("crnn2015", "DejaVuSans-Bold.ttf"))


# ---- inputs --------------------------------------------------------------------------------------------------------


def render_word(text: str, font_name: str, color: bool = False) -> PIL.Image.Image:
    """A word crop: dark text on a light background, about 40 pixels high, in a DejaVu font."""
    path = FONT_DIR / font_name
    font = PIL.ImageFont.truetype(str(path), 28) if path.exists() else PIL.ImageFont.load_default(size=28)
    left, top, right, bottom = font.getbbox(text)
    background, ink = ((235, 220, 190), (40, 30, 120)) if color else ((250, 250, 250), (10, 10, 10))
    image = PIL.Image.new("RGB", (right - left + 16, bottom - top + 14), background)
    PIL.ImageDraw.Draw(image).text((8 - left, 7 - top), text, font=font, fill=ink)
    return image if color else image.convert("L")


@pytest.fixture(scope="module")
def words() -> list[PIL.Image.Image]:
    images = [render_word(text, font) for text, font in WORDS]
    return images + [render_word("Street", "DejaVuSans.ttf", color=True)]  # RGB: both sides convert it to gray


def source_preprocess(images, interpolation, width=100, height=32, mode="L") -> torch.Tensor:
    """
    The sources' resizeNormalize (meijieru dataset.py) / ResizeNormalize (clovaai dataset.py): PIL `convert`, PIL
    resize, torchvision's ToTensor (uint8 / 255, channels first), then `sub_(0.5).div_(0.5)`.
    """
    tensors = []
    for image in images:
        array = np.array(image.convert(mode).resize((width, height), interpolation))
        tensor = torch.from_numpy(array).float().div(255)
        tensor = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)
        tensors.append(tensor.sub(0.5).div(0.5))
    return torch.stack(tensors)


def greedy_decode(frame_scores: torch.Tensor, alphabet: str) -> str:
    """The sources' CTC best-path decoding: argmax per frame, drop repeats, drop the blank (id 0)."""
    characters, previous = [], 0
    for index in frame_scores.argmax(-1).tolist():
        if index != 0 and index != previous:
            characters.append(alphabet[index - 1])
        previous = index
    return "".join(characters)


def assert_parity(model, processor, images, reference_logits, reference_inputs, alphabet) -> None:
    """hf_crnn (its own preprocessing) and the reference (the source's) agree on inputs, logits and transcriptions."""
    inputs = processor(images=images, return_tensors="pt")
    # Same pixels first, so a preprocessing difference is not mistaken for a weight-mapping one.
    torch.testing.assert_close(inputs["pixel_values"], reference_inputs, atol=1e-6, rtol=0)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == reference_logits.shape
    assert (logits - reference_logits).abs().max().item() < TOLERANCE
    texts = processor.batch_decode(logits, method="greedy")
    reference_texts = [greedy_decode(scores, alphabet) for scores in reference_logits]
    assert texts == reference_texts
    assert any(reference_texts), "random weights should not decode to blanks only"


def save_as_source(state_dict, path: Path, prefix: str = "", wrapper: str | None = None) -> Path:
    """`torch.save(model.state_dict(), path)`, optionally as nn.DataParallel saves it and/or wrapped in a dict."""
    state_dict = {f"{prefix}{key}": value for key, value in state_dict.items()}
    torch.save({wrapper: state_dict, "epoch": 7} if wrapper else state_dict, path)
    return path


def convert(script, checkpoint: Path, output_dir: Path, *extra: str) -> Path:
    return script.main(["--checkpoint", str(checkpoint), "--output_dir", str(output_dir), *extra])


# ---- meijieru/crnn.pytorch -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def meijieru(words):
    """The published layout `CRNN(32, 1, 37, 256)`, random weights, and its outputs on the words."""
    model = randomize_(MeijieruCRNN(nc=1, nclass=37, nh=256), seed=1)
    inputs = source_preprocess(words, PIL.Image.BILINEAR)
    with torch.no_grad():
        logits = model(inputs).permute(1, 0, 2)  # the source returns (T, B, nclass)
    return model.state_dict(), inputs, logits


@pytest.fixture(scope="module")
def meijieru_converted(meijieru, tmp_path_factory) -> Path:
    """crnn.pth as saved from nn.DataParallel, converted with the CLI."""
    folder = tmp_path_factory.mktemp("meijieru")
    checkpoint = save_as_source(meijieru[0], folder / "crnn.pth", prefix="module.")
    return convert(convert_meijieru_crnn, checkpoint, folder / "crnn-meijieru")


def test_meijieru_data_parallel_checkpoint_matches_the_source(meijieru_converted, meijieru, words):
    _, reference_inputs, reference_logits = meijieru
    model = AutoModelForTextRecognition.from_pretrained(meijieru_converted).eval()
    processor = AutoProcessor.from_pretrained(meijieru_converted)
    assert model.config.vocab_size == 37 and model.get_frame_lengths(100) == 26
    assert_parity(model, processor, words, reference_logits, reference_inputs, LOWERCASE_ALPHANUMERIC)


def test_meijieru_plain_state_dict_matches_the_source(meijieru, words, tmp_path):
    state_dict, reference_inputs, reference_logits = meijieru
    state_dict = {key: value for key, value in state_dict.items() if not key.endswith("num_batches_tracked")}
    # Saved like the published crnn.pth (older than BatchNorm's num_batches_tracked buffer), without any prefix.
    output = convert(convert_meijieru_crnn, save_as_source(state_dict, tmp_path / "crnn.pth"), tmp_path / "out")
    model = CRNNForTextRecognition.from_pretrained(output).eval()
    processor = CRNNProcessor.from_pretrained(output)
    assert_parity(model, processor, words, reference_logits, reference_inputs, LOWERCASE_ALPHANUMERIC)


def test_meijieru_checkpoint_is_complete(meijieru_converted):
    files = {path.name for path in meijieru_converted.iterdir()}
    assert {"model.safetensors", "config.json", "vocab.json", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pth", ".pt")) for name in files)
    config = json.loads((meijieru_converted / "config.json").read_text())
    assert config["hidden_size"] == 256 and config["height_pooling"] == "none" and not config["project_last_lstm"]
    processor = CRNNProcessor.from_pretrained(meijieru_converted)
    image_processor, tokenizer = processor.image_processor, processor.tokenizer
    assert (image_processor.fixed_width, image_processor.image_height, image_processor.resize_mode) == (
        100,
        32,
        "fixed",
    )
    assert image_processor.resample == PIL.Image.BILINEAR
    assert "".join(tokenizer.characters) == LOWERCASE_ALPHANUMERIC and tokenizer.convert_ids_to_tokens(0) == "<blank>"
    assert tokenizer("Hello").input_ids == tokenizer("hello").input_ids  # case-insensitive like the source
    card = (meijieru_converted / "README.md").read_text()
    for fact in ("https://github.com/meijieru/crnn.pytorch", "license: mit", "`crnn.pth`", "sha256"):
        assert fact in card
    assert "python conversion/convert_meijieru_crnn.py --checkpoint crnn.pth --output_dir crnn-meijieru" in card
    assert str(meijieru_converted.parent) not in card  # no local paths published


def test_meijieru_variant_sizes_are_read_from_the_weights(words, tmp_path):
    """Your own training of the same class: other nh and nclass, saved inside a training-state dict."""
    model = randomize_(MeijieruCRNN(nc=1, nclass=len(DIGITS) + 1, nh=48), seed=2)
    reference_inputs = source_preprocess(words, PIL.Image.BILINEAR)
    with torch.no_grad():
        reference_logits = model(reference_inputs).permute(1, 0, 2)
    checkpoint = save_as_source(model.state_dict(), tmp_path / "netCRNN_24_500.pth", wrapper="state_dict")
    output = convert(convert_meijieru_crnn, checkpoint, tmp_path / "out", "--alphabet", DIGITS)
    converted = CRNNForTextRecognition.from_pretrained(output).eval()
    assert (converted.config.hidden_size, converted.config.vocab_size) == (48, 11)
    assert_parity(converted, CRNNProcessor.from_pretrained(output), words, reference_logits, reference_inputs, DIGITS)


# ---- clovaai/deep-text-recognition-benchmark -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def clovaai(words):
    """The published None-VGG-BiLSTM-CTC layout (1 channel, 512, hidden 256, 37 classes) and its outputs."""
    model = randomize_(ClovaaiNoneVGGBiLSTMCTC(), seed=3)
    inputs = source_preprocess(words, PIL.Image.BICUBIC)
    with torch.no_grad():
        logits = model(inputs)
    return model.state_dict(), inputs, logits


@pytest.fixture(scope="module")
def clovaai_converted(clovaai, tmp_path_factory) -> Path:
    """None-VGG-BiLSTM-CTC.pth as published: saved from nn.DataParallel, keys behind `module.`."""
    folder = tmp_path_factory.mktemp("clovaai")
    checkpoint = save_as_source(clovaai[0], folder / "None-VGG-BiLSTM-CTC.pth", prefix="module.")
    return convert(convert_clovaai_benchmark, checkpoint, folder / "crnn-clovaai")


def test_clovaai_checkpoint_matches_the_source(clovaai_converted, clovaai, words):
    _, reference_inputs, reference_logits = clovaai
    model = CRNNForTextRecognition.from_pretrained(clovaai_converted).eval()
    processor = CRNNProcessor.from_pretrained(clovaai_converted)
    assert model.get_frame_lengths(100) == 24 and reference_logits.shape[1] == 24
    assert_parity(model, processor, words, reference_logits, reference_inputs, LOWERCASE_ALPHANUMERIC)


def test_clovaai_checkpoint_is_complete(clovaai_converted):
    config = json.loads((clovaai_converted / "config.json").read_text())
    assert config["conv_bias"] == [True, True, True, True, False, False, True]
    assert config["conv_batch_norm"] == [False, False, False, False, True, True, False]
    assert config["height_pooling"] == "avg" and config["project_last_lstm"] and config["lstm_projection_dim"] == 256
    assert CRNNProcessor.from_pretrained(clovaai_converted).image_processor.resample == PIL.Image.BICUBIC
    card = (clovaai_converted / "README.md").read_text()
    for fact in ("https://github.com/clovaai/deep-text-recognition-benchmark", "license: apache-2.0", "BICUBIC"):
        assert fact in card


def test_clovaai_rgb_tall_variant_matches_the_source(words, tmp_path):
    """Own training with --rgb --imgH 64 --output_channel 64 --hidden_size 32: 3 rows left, averaged as the source."""
    model = randomize_(ClovaaiNoneVGGBiLSTMCTC(input_channel=3, output_channel=64, hidden_size=32, num_class=11), 4)
    reference_inputs = source_preprocess(words, PIL.Image.BICUBIC, height=64, mode="RGB")
    with torch.no_grad():
        reference_logits = model(reference_inputs)
    checkpoint = save_as_source(model.state_dict(), tmp_path / "best_accuracy.pth", wrapper="model")
    output = convert(
        convert_clovaai_benchmark, checkpoint, tmp_path / "out", "--alphabet", DIGITS, "--image_height", "64"
    )
    converted = CRNNForTextRecognition.from_pretrained(output).eval()
    assert (converted.config.num_channels, converted.config.feature_height) == (3, 3)
    assert_parity(converted, CRNNProcessor.from_pretrained(output), words, reference_logits, reference_inputs, DIGITS)


# ---- refusals ------------------------------------------------------------------------------------------------------

# (source, key prefix as saved, key, its new value: None drops it, a tensor adds or replaces it, expected in the error)
MISMATCHES = {
    "meijieru-missing": (
        "meijieru", "", "cnn.batchnorm4.running_var", None,
        "missing key 'cnn.batchnorm4.running_var' (hf_crnn's 'crnn.conv_layers.4.batch_norm.running_var'",
    ),
    "meijieru-unexpected": (
        "meijieru", "", "cnn.conv7.weight", torch.zeros(512, 512, 3, 3),
        "unexpected key 'cnn.conv7.weight' (shape (512, 512, 3, 3))",
    ),
    "meijieru-shape": (
        "meijieru", "module.", "cnn.conv3.weight", torch.zeros(256, 256, 3, 2),
        ("key 'cnn.conv3.weight' has shape (256, 256, 3, 2) but hf_crnn's 'crnn.conv_layers.3.conv.weight' needs "
         "(256, 256, 3, 3)"),
    ),
    "clovaai-missing": (
        "clovaai", "module.", "FeatureExtraction.ConvNet.15.running_mean", None,
        ("missing key 'FeatureExtraction.ConvNet.15.running_mean' (hf_crnn's "
         "'crnn.conv_layers.5.batch_norm.running_mean', shape (512,))"),
    ),
    "clovaai-unexpected": (  # a TPS-...-CTC checkpoint is another layout
        "clovaai", "module.", "Transformation.LocalizationNetwork.fc2.bias", torch.zeros(40),
        "unexpected key 'Transformation.LocalizationNetwork.fc2.bias' (shape (40,))",
    ),
    "clovaai-shape": (
        "clovaai", "module.", "SequenceModeling.1.linear.weight", torch.zeros(256, 256),
        ("key 'SequenceModeling.1.linear.weight' has shape (256, 256) but hf_crnn's "
         "'crnn.lstm_layers.1.projection.weight' needs (256, 512)"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_checkpoint_that_does_not_fit_is_refused(case, meijieru, clovaai, tmp_path):
    source, prefix, key, value, expected = MISMATCHES[case]
    state_dict = dict({"meijieru": meijieru, "clovaai": clovaai}[source][0])
    if value is None:
        del state_dict[key]
    else:
        state_dict[key] = value
    checkpoint = save_as_source(state_dict, tmp_path / "checkpoint.pth", prefix=prefix)
    script = {"meijieru": convert_meijieru_crnn, "clovaai": convert_clovaai_benchmark}[source]
    with pytest.raises(ValueError, match="does not fit") as error:
        convert(script, checkpoint, tmp_path / "out")
    assert isinstance(error.value, CheckpointMismatchError)
    assert expected in str(error.value)
    assert os.listdir(tmp_path) == ["checkpoint.pth"]  # nothing written


def test_checkpoint_of_another_source_is_refused(clovaai, tmp_path):
    checkpoint = save_as_source(clovaai[0], tmp_path / "None-VGG-BiLSTM-CTC.pth", prefix="module.")
    with pytest.raises(CheckpointMismatchError) as error:
        convert(convert_meijieru_crnn, checkpoint, tmp_path / "out")
    assert "missing key 'cnn.conv0.weight' (its first key is 'FeatureExtraction.ConvNet.0.weight')" in str(error.value)


def test_alphabet_must_give_the_checkpoints_classes(meijieru, tmp_path):
    checkpoint = save_as_source(meijieru[0], tmp_path / "crnn.pth")
    with pytest.raises(ValueError, match=r"10 characters.*classifier has 37.*--alphabet"):
        convert(convert_meijieru_crnn, checkpoint, tmp_path / "out", "--alphabet", DIGITS)
    assert not (tmp_path / "out").exists()


_UNPICKLED = []


def _record_unpickling():
    _UNPICKLED.append(True)
    return {}


class _CodeOnUnpickle:
    """Unpickling this calls `_record_unpickling`: a stand-in for a pickle that runs arbitrary code."""

    def __reduce__(self):
        return (_record_unpickling, ())


def test_pickles_are_loaded_with_weights_only(clovaai, tmp_path):
    hostile = tmp_path / "hostile.pth"
    torch.save({"state_dict": dict(clovaai[0]), "extra": _CodeOnUnpickle()}, hostile)
    with pytest.raises(ValueError, match=r"Refusing to load .*weights_only=True"):
        convert(convert_clovaai_benchmark, hostile, tmp_path / "out")
    assert _UNPICKLED == []

    whole_module = tmp_path / "model.pth"  # torch.save(model): a pickled nn.Module, not a state dict
    torch.save(ClovaaiNoneVGGBiLSTMCTC(output_channel=16, hidden_size=8, num_class=11), whole_module)
    with pytest.raises(ValueError, match="Refusing to load"):
        load_pytorch_state_dict(whole_module)
    assert not (tmp_path / "out").exists()


def test_state_dict_is_found_inside_training_checkpoints():
    state_dict = {"cnn.conv0.weight": torch.zeros(1)}
    assert unwrap_state_dict(state_dict) == state_dict
    assert unwrap_state_dict({"model": state_dict, "optimizer": {"state": {}}}) == state_dict
    assert unwrap_state_dict({"epoch": 3, "model_state_dict": state_dict}) == state_dict
    assert unwrap_state_dict({"model": {"state_dict": state_dict}}) == state_dict
    with pytest.raises(ValueError, match="holds no state dict"):
        unwrap_state_dict([torch.zeros(1)])


# ---- saving --------------------------------------------------------------------------------------------------------


@pytest.fixture
def small_clovaai_checkpoint(tmp_path) -> Path:
    model = randomize_(ClovaaiNoneVGGBiLSTMCTC(output_channel=32, hidden_size=16, num_class=11), seed=5)
    return save_as_source(model.state_dict(), tmp_path / "small.pth", prefix="module.")


def test_failed_conversion_leaves_no_output(small_clovaai_checkpoint, words, tmp_path):
    words[0].save(tmp_path / "word.png")
    with pytest.raises(ValueError, match="does not read the test images as expected"):
        convert(
            convert_clovaai_benchmark,
            small_clovaai_checkpoint,
            tmp_path / "out",
            "--alphabet",
            DIGITS,
            "--test_image",
            str(tmp_path / "word.png"),
            "--expected_text",
            "not what random weights read",
        )
    assert sorted(os.listdir(tmp_path)) == ["small.pth", "word.png"]  # no output folder, no staging folder left


def test_existing_output_is_replaced_only_with_overwrite(small_clovaai_checkpoint, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "old-file.txt").write_text("previous checkpoint")
    with pytest.raises(ValueError, match="not empty; pass --overwrite"):
        convert(convert_clovaai_benchmark, small_clovaai_checkpoint, output, "--alphabet", DIGITS)
    assert os.listdir(output) == ["old-file.txt"]

    convert(convert_clovaai_benchmark, small_clovaai_checkpoint, output, "--alphabet", DIGITS, "--overwrite")
    assert "old-file.txt" not in os.listdir(output) and (output / "model.safetensors").is_file()
    assert sorted(os.listdir(tmp_path)) == ["out", "small.pth"]


@pytest.mark.slow  # a fresh Python process importing transformers
def test_script_runs_from_the_command_line_and_pushes_to_the_hub(small_clovaai_checkpoint, tmp_path):
    """`python conversion/convert_....py` as documented, in a fresh process, uploading to a local Hub server."""
    token, repo_id = "hf_conversion_token", "test-org/crnn-converted"
    with HubServer(token=token) as hub:
        env = dict(os.environ, HF_ENDPOINT=hub.url, HF_TOKEN=token, HF_HOME=str(tmp_path / "hf_home"))
        env.update(HF_HUB_OFFLINE="0", HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
        env.update(HF_HUB_DISABLE_PROGRESS_BARS="1", OMP_NUM_THREADS="1")
        command = [
            sys.executable, str(REPO_ROOT / "conversion" / "convert_clovaai_benchmark.py"),
            "--checkpoint", str(small_clovaai_checkpoint), "--output_dir", str(tmp_path / "out"),
            "--alphabet", DIGITS, "--push_to_hub", repo_id,
        ]  # fmt: skip
        result = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stderr
        assert f"{hub.url}/{repo_id}" in result.stdout
        pushed = hub.files(repo_id)
    assert {"model.safetensors", "config.json", "vocab.json", "processor_config.json"} <= set(pushed)
    card = pushed["README.md"].content.decode()
    assert "clovaai/deep-text-recognition-benchmark" in card and "--checkpoint small.pth" in card
    assert f'model="{repo_id}"' in card
    assert (tmp_path / "out" / "README.md").read_text() == card  # the local copy is the pushed one


def test_recorded_command_names_files_not_local_paths():
    command = recorded_command(
        convert_clovaai_benchmark.SOURCE,
        ["--checkpoint", "/home/me/models/None-VGG-BiLSTM-CTC.pth", "--output_dir=/tmp/x/crnn-clovaai/", "--rgb"],
    )
    assert command == (
        "python conversion/convert_clovaai_benchmark.py --checkpoint None-VGG-BiLSTM-CTC.pth "
        "--output_dir=crnn-clovaai --rgb"
    )


# ---- bgshih/crnn (Torch7), unverified against Torch7 itself --------------------------------------------------------


@pytest.fixture(scope="module")
def bgshih(words):
    """bgshih's network transcribed from its Lua source, random weights, outputs on the words (0-255 input)."""
    model = randomize_(BgshihCRNN(n_classes=36), seed=6)
    # loadAndResizeImage uses Torch's image.scale; PIL's BILINEAR stands in for it on both sides here.
    pixels = torch.stack(
        [torch.from_numpy(np.array(image.convert("L").resize((100, 32), PIL.Image.BILINEAR))) for image in words]
    )[:, None]
    with torch.no_grad():
        log_probs = model(pixels)
    return model, (pixels.float() - 128) / 128, log_probs


@pytest.mark.parametrize("batch_norm_statistic", ["running_var", "running_std"])
def test_bgshih_mapping_matches_the_lua_networks_semantics(bgshih, words, batch_norm_statistic):
    model, reference_inputs, reference_log_probs = bgshih
    parameters, bn_vars = model.torch7_snapshot()
    if batch_norm_statistic == "running_std":  # bgshih/crnn's first release: Torch7 nn's inverse running std
        bn_vars = [v if i % 2 == 0 else (v + 1e-5).rsqrt() for i, v in enumerate(bn_vars)]
    converted = convert_bgshih_torch7.model_from_snapshot(parameters, bn_vars, batch_norm_statistic)
    processor = build_processor(
        convert_bgshih_torch7.SOURCE, LOWERCASE_ALPHANUMERIC, 37, num_channels=1, image_height=32, image_width=100
    )
    inputs = processor(images=words, return_tensors="pt")
    torch.testing.assert_close(inputs["pixel_values"], reference_inputs, atol=1e-6, rtol=0)
    with torch.no_grad():
        log_probs = converted(**inputs).logits.log_softmax(-1)  # the Lua model ends in LogSoftMax
    assert (log_probs - reference_log_probs).abs().max().item() < TOLERANCE
    texts = processor.batch_decode(log_probs, method="greedy")
    assert texts == [greedy_decode(scores, LOWERCASE_ALPHANUMERIC) for scores in reference_log_probs]


def test_bgshih_snapshot_that_does_not_fit_is_refused(bgshih):
    parameters, bn_vars = bgshih[0].torch7_snapshot()
    with pytest.raises(CheckpointMismatchError, match="parameters list has 43 tensors, the crnn_demo network has 44"):
        convert_bgshih_torch7.model_from_snapshot(parameters[:-1], bn_vars)
    swapped = list(parameters)
    swapped[20], swapped[22] = parameters[22], parameters[20]  # blstm1's i2h and h2h weights
    with pytest.raises(CheckpointMismatchError, match=r"parameters\[21\] blstm1\.forward\.i2h\.weight"):
        convert_bgshih_torch7.model_from_snapshot(swapped, bn_vars)


def write_torch7(value, path: Path) -> None:
    """
    Writes nested Lua tables of float32 tensors in Torch7's binary serialisation (torch.File:writeObject), with the
    CUDA tensor classes a GPU-trained snapshot has: the format `torchfile` reads.
    """
    next_index = iter(range(1, 1 << 30))

    def write(handle, obj):
        if isinstance(obj, str):
            handle.write(struct.pack("=ii", 2, len(obj)) + obj.encode())
        elif isinstance(obj, int):
            handle.write(struct.pack("=id", 1, obj))
        elif isinstance(obj, (dict, list)):
            items = obj.items() if isinstance(obj, dict) else enumerate(obj, start=1)
            handle.write(struct.pack("=iii", 3, next(next_index), len(obj)))
            for key, item in items:
                write(handle, key)
                write(handle, item)
        else:  # a float32 tensor, then its storage; Torch7 "long"s are 8 bytes, offsets 1-based
            array = np.ascontiguousarray(obj, dtype=np.float32)
            strides = [stride // array.itemsize for stride in array.strides]
            write_class_header(handle, "torch.CudaTensor")
            handle.write(struct.pack(f"=i{array.ndim}q{array.ndim}qq", array.ndim, *array.shape, *strides, 1))
            write_class_header(handle, "torch.CudaStorage")
            handle.write(struct.pack("=q", array.size) + array.tobytes())

    def write_class_header(handle, class_name):
        handle.write(struct.pack("=ii", 4, next(next_index)))
        for text in ("V 1", class_name):  # serialisation version, then the class
            handle.write(struct.pack("=i", len(text)) + text.encode())

    with open(path, "wb") as handle:
        write(handle, value)


def test_bgshih_cli_reads_a_torch7_snapshot(bgshih, words, tmp_path):
    pytest.importorskip("torchfile", reason="reading .t7 files needs the optional torchfile package")
    model, reference_inputs, reference_log_probs = bgshih
    parameters, bn_vars = model.torch7_snapshot()
    checkpoint = tmp_path / "crnn_demo_model.t7"
    write_torch7({"parameters": [p.numpy() for p in parameters], "bnVars": [v.numpy() for v in bn_vars]}, checkpoint)

    output = convert(convert_bgshih_torch7, checkpoint, tmp_path / "crnn-bgshih")
    converted = CRNNForTextRecognition.from_pretrained(output).eval()
    processor = CRNNProcessor.from_pretrained(output)
    assert processor.image_processor.image_mean == pytest.approx(128 / 255)
    inputs = processor(images=words, return_tensors="pt")
    torch.testing.assert_close(inputs["pixel_values"], reference_inputs, atol=1e-6, rtol=0)
    with torch.no_grad():
        log_probs = converted(**inputs).logits.log_softmax(-1)
    assert (log_probs - reference_log_probs).abs().max().item() < TOLERANCE
    card = (output / "README.md").read_text()
    assert "Unverified conversion" in card and "https://github.com/bgshih/crnn" in card

    write_torch7({"weights": [parameters[0].numpy()]}, tmp_path / "other.t7")
    with pytest.raises(ValueError, match="not a bgshih/crnn snapshot"):
        convert(convert_bgshih_torch7, tmp_path / "other.t7", tmp_path / "other")
