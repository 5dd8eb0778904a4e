# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""`hf-crnn export --format easyocr`: hf_crnn checkpoints of EasyOCR's layout written back as EasyOCR custom files."""

import importlib.util
import sys
from pathlib import Path

import PIL.Image
import pytest
import torch
import yaml

from hf_crnn import CRNNConfig, CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer
from hf_crnn.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_models import ClovaaiNoneVGGBiLSTMCTC, randomize_  # noqa: E402

from conversion import convert_easyocr, export_easyocr  # noqa: E402
from conversion.convert_clovaai_benchmark import model_from_state_dict  # noqa: E402
from conversion.key_mapping import CLOVAAI_MODULE_MAP, export_state_dict, rename_state_dict  # noqa: E402

from test_convert_easyocr import needs_crops, needs_wheel, real_crops  # noqa: E402
EASYOCR_CHARACTERS = convert_easyocr.EASYOCR_ENGLISH_CHARACTERS


def exported_files(folder: Path, name: str = export_easyocr.DEFAULT_NAME) -> tuple[Path, Path, Path]:
    return folder / f"{name}.pth", folder / f"{name}.yaml", folder / f"{name}.py"


def load_exported_into(network: torch.nn.Module, pth: Path) -> torch.nn.Module:
    """What EasyOCR's get_recognizer does on CPU: drop the 7-character `module.` prefix, load strictly."""
    state_dict = torch.load(pth, map_location="cpu", weights_only=True)
    assert all(key.startswith("module.") for key in state_dict)
    network.load_state_dict({key[7:]: value for key, value in state_dict.items()}, strict=True)
    return network.eval()


def assert_same_logits(model, processor, network, images, atol=1e-4):
    """hf_crnn on a padded batch vs the EasyOCR-layout network on each image alone (as EasyOCR feeds one crop)."""
    inputs = processor(images=images, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
        for index, width in enumerate(inputs["image_widths"].tolist()):
            expected = network(inputs["pixel_values"][index : index + 1, :, :, :width])[0]
            frames = int(outputs.frame_lengths[index])
            assert frames == expected.shape[0]
            # Logits reach ~15: float32 summation order alone moves them by ~1e-4, hence the small relative term.
            torch.testing.assert_close(outputs.logits[index, :frames], expected, atol=atol, rtol=2e-5)


def save_small_easyocr_layout_checkpoint(folder: Path, characters: str = EASYOCR_CHARACTERS) -> Path:
    """A random-weight hf_crnn checkpoint of EasyOCR's layout (output_channel 64, hidden 32, imgH 32)."""
    reference = randomize_(ClovaaiNoneVGGBiLSTMCTC(1, 64, 32, len(characters) + 1), seed=3)
    model = model_from_state_dict(reference.state_dict(), image_height=32)
    model.save_pretrained(folder)
    image_processor = CRNNImageProcessor(
        image_height=32, resize_mode="keep_aspect_ratio", min_width=1, resample=3, edge_padding_multiple=32
    )
    CRNNProcessor(image_processor, CRNNTokenizer(characters=characters, do_lower_case=False)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    checkpoint = save_small_easyocr_layout_checkpoint(tmp_path_factory.mktemp("small") / "crnn")
    output = tmp_path_factory.mktemp("small-export") / "easyocr"
    assert cli_main(["export", "--format", "easyocr", "--model", str(checkpoint), "--output_dir", str(output)]) == 0
    return checkpoint, output


def test_inverse_key_map_undoes_the_forward_map():
    reference = randomize_(ClovaaiNoneVGGBiLSTMCTC(1, 64, 32, 11), seed=5)
    model = model_from_state_dict(reference.state_dict())
    exported = export_state_dict(model.state_dict(), CLOVAAI_MODULE_MAP, source_name="clovaai", prefix="module.")
    assert list(exported) == ["module." + key for key in reference.state_dict()]
    for key, value in reference.state_dict().items():
        assert torch.equal(exported["module." + key], value), key
    # And back again: the forward map accepts what the inverse wrote.
    again = rename_state_dict(exported, CLOVAAI_MODULE_MAP, model.state_dict(), source_name="clovaai")
    assert all(torch.equal(again[key], value) for key, value in model.state_dict().items())


def test_export_writes_weights_the_reference_network_loads_with_the_same_logits(small_export):
    checkpoint, output = small_export
    pth, _, _ = exported_files(output)
    model = CRNNForTextRecognition.from_pretrained(checkpoint).eval()
    processor = CRNNProcessor.from_pretrained(checkpoint)
    network = load_exported_into(ClovaaiNoneVGGBiLSTMCTC(1, 64, 32, 97), pth)
    images = [PIL.Image.linear_gradient("L").resize((width, 24)) for width in (20, 75, 140)]
    assert_same_logits(model, processor, network, images, atol=1e-5)


def test_written_module_builds_the_network_from_the_yaml(small_export, monkeypatch):
    checkpoint, output = small_export
    pth, yaml_path, py_path = exported_files(output)
    settings = yaml.load(yaml_path.read_text(encoding="utf-8"), Loader=yaml.FullLoader)  # as EasyOCR reads it
    assert settings["network_params"] == {"input_channel": 1, "output_channel": 64, "hidden_size": 32}
    assert settings["imgH"] == 32 and settings["lang_list"] == ["en"]
    monkeypatch.syspath_prepend(str(output))  # EasyOCR appends its user-network folder to sys.path and imports
    monkeypatch.delitem(sys.modules, py_path.stem, raising=False)
    module = importlib.import_module(py_path.stem)
    network = load_exported_into(
        module.Model(num_class=len(settings["character_list"]) + 1, **settings["network_params"]), pth
    )
    model = CRNNForTextRecognition.from_pretrained(checkpoint).eval()
    processor = CRNNProcessor.from_pretrained(checkpoint)
    images = [PIL.Image.effect_noise((90, 30), 60).convert("L"), PIL.Image.linear_gradient("L").resize((40, 32))]
    inputs = processor(images=images, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
        for index, width in enumerate(inputs["image_widths"].tolist()):
            # EasyOCR calls model(image, text_for_pred); the text is unused by CTC models.
            expected = network(inputs["pixel_values"][index : index + 1, :, :, :width], torch.zeros(1, 2).long())
            frames = int(outputs.frame_lengths[index])
            torch.testing.assert_close(outputs.logits[index, :frames], expected[0], atol=1e-5, rtol=2e-5)


def test_yaml_round_trips_the_96_character_list(small_export):
    _, output = small_export
    _, yaml_path, _ = exported_files(output)
    text = yaml_path.read_text(encoding="utf-8")
    for loader in (yaml.FullLoader, yaml.SafeLoader):
        characters = yaml.load(text, Loader=loader)["character_list"]
        assert characters == EASYOCR_CHARACTERS
    assert len(EASYOCR_CHARACTERS) == 96 and all(char in EASYOCR_CHARACTERS for char in "%'\"\\ €")
    assert "€" in text  # written readably, not as an escape


def test_command_line_name_and_languages_reach_the_files(small_export, tmp_path, capsys):
    checkpoint, _ = small_export
    output = tmp_path / "named"
    arguments = ["--model", str(checkpoint), "--output_dir", str(output), "--name", "my_cli_net"]
    assert cli_main(["export", "--format", "easyocr", *arguments, "--lang_list", "en", "fr"]) == 0
    _, yaml_path, _ = exported_files(output, "my_cli_net")
    assert yaml.safe_load(yaml_path.read_text(encoding="utf-8"))["lang_list"] == ["en", "fr"]
    assert "recog_network='my_cli_net'" in capsys.readouterr().out


def test_the_script_runs_the_command_lines_export(small_export, tmp_path):
    checkpoint, first = small_export
    output = tmp_path / "script"
    assert export_easyocr.main(["--model", str(checkpoint), "--output_dir", str(output), "--name", "my_net"]) == 0
    weights, yaml_path, module = exported_files(output, "my_net")
    assert module.read_bytes() == exported_files(first)[2].read_bytes()
    assert yaml_path.read_text(encoding="utf-8") == exported_files(first)[1].read_text(encoding="utf-8")
    assert weights.is_file()
    # The command line's errors too: a second run refuses the non-empty folder (exit 2), nothing is replaced.
    assert export_easyocr.main(["--model", str(checkpoint), "--output_dir", str(output), "--name", "my_net"]) == 2


def test_non_easyocr_layout_is_refused_and_nothing_is_written(tmp_path, capsys):
    paper = tmp_path / "paper"
    CRNNForTextRecognition(CRNNConfig()).save_pretrained(paper)
    CRNNProcessor(CRNNImageProcessor(), CRNNTokenizer()).save_pretrained(paper)
    output = tmp_path / "out"
    with pytest.raises(ValueError, match=r"not of EasyOCR's recognizer layout.*height_pooling='none'"):
        export_easyocr.export_easyocr(paper, output)
    assert not output.exists()
    assert cli_main(["export", "--format", "easyocr", "--model", str(paper), "--output_dir", str(output)]) == 2
    assert "not of EasyOCR's recognizer layout" in capsys.readouterr().err
    assert not output.exists() and not list(tmp_path.glob(".out*"))


def test_clovaai_variant_with_unequal_projection_is_refused(tmp_path):
    # EasyOCR's Model projects both BiLSTMs to hidden_size; another projection width has no EasyOCR equivalent.
    reference = ClovaaiNoneVGGBiLSTMCTC(1, 64, 32, 11)
    config = model_from_state_dict(reference.state_dict()).config
    config.lstm_projection_dim = 48
    with pytest.raises(ValueError, match="lstm_projection_dim=48"):
        export_easyocr.check_easyocr_layout(config)


def test_bad_module_name_is_refused(small_export, tmp_path):
    checkpoint, _ = small_export
    for name in ("easyocr", "my-model", "class"):
        with pytest.raises(ValueError, match="module name"):
            export_easyocr.export_easyocr(checkpoint, tmp_path / name, name=name)


@needs_wheel
@needs_crops
def test_real_english_g2_round_trip_on_real_crops(tmp_path):
    converted = tmp_path / "crnn-easyocr-en"
    convert_easyocr.main(["--output_dir", str(converted)])
    output = tmp_path / "export"
    export_easyocr.export_easyocr(converted, output, name="english_crnn")
    pth, yaml_path, _ = exported_files(output, "english_crnn")
    # The exported file holds english_g2.pth's keys, in its order, with its values.
    original = torch.load(convert_easyocr.installed_checkpoint(), map_location="cpu", weights_only=True)
    exported = torch.load(pth, map_location="cpu", weights_only=True)
    assert list(exported) == list(original)
    assert all(torch.equal(exported[key], original[key]) for key in original)
    assert yaml.safe_load(yaml_path.read_text(encoding="utf-8"))["imgH"] == 64
    network = load_exported_into(ClovaaiNoneVGGBiLSTMCTC(1, 256, 256, 97), pth)
    model = CRNNForTextRecognition.from_pretrained(converted).eval()
    assert_same_logits(model, CRNNProcessor.from_pretrained(converted), network, real_crops(6)[0])
