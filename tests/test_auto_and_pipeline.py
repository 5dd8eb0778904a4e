import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForTextRecognition, AutoProcessor, AutoTokenizer, pipeline
from transformers.models.auto.image_processing_auto import AutoImageProcessor

from hf_crnn import (
    CRNNConfig,
    CRNNForTextRecognition,
    CRNNImageProcessor,
    CRNNModel,
    CRNNProcessor,
    CRNNTextRecognitionPipeline,
    CRNNTokenizer,
)

from conftest import render_word


@pytest.mark.parametrize(
    "auto_class, expected",
    [
        (AutoConfig, CRNNConfig),
        (AutoModel, CRNNModel),
        (AutoModelForTextRecognition, CRNNForTextRecognition),
        (AutoImageProcessor, CRNNImageProcessor),
        (AutoTokenizer, CRNNTokenizer),
        (AutoProcessor, CRNNProcessor),
    ],
)
def test_auto_classes_load_a_saved_checkpoint(checkpoint_dir, auto_class, expected):
    assert type(auto_class.from_pretrained(checkpoint_dir)) is expected


def test_auto_model_weights_and_logits_round_trip(checkpoint_dir, model, processor, word_images):
    batch = processor(images=word_images)
    reloaded = AutoModelForTextRecognition.from_pretrained(checkpoint_dir).eval()
    for (name, weight), (_, reloaded_weight) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(weight, reloaded_weight), name
    # Same weights; oneDNN may pick different kernels per call, so outputs agree to float rounding.
    torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits, atol=1e-6, rtol=0)
    base = AutoModel.from_pretrained(checkpoint_dir).eval()
    torch.testing.assert_close(
        base(**batch).last_hidden_state, model.crnn(**batch).last_hidden_state, atol=1e-6, rtol=0
    )


def test_checkpoint_is_self_contained(checkpoint_dir):
    files = {path.name for path in checkpoint_dir.iterdir()}
    assert {"model.safetensors", "config.json", "vocab.json", "modeling_crnn.py", "pipeline_crnn.py"} <= files
    assert not any(name.endswith((".bin", ".pth", ".pt")) for name in files)
    config = json.loads((checkpoint_dir / "config.json").read_text())
    assert config["auto_map"]["AutoModelForTextRecognition"] == "modeling_crnn.CRNNForTextRecognition"
    assert config["custom_pipelines"]["image-to-text"]["impl"] == "pipeline_crnn.CRNNTextRecognitionPipeline"


def test_text_recognition_pipeline_single_and_batched(checkpoint_dir, word_images):
    pipe = pipeline("text-recognition", model=str(checkpoint_dir))
    assert isinstance(pipe, CRNNTextRecognitionPipeline)
    single = pipe(word_images[0])
    assert isinstance(single, list) and set(single[0]) == {"generated_text", "score"}
    one_by_one = [pipe(image) for image in word_images]
    for batched in (pipe(word_images), pipe(word_images, batch_size=3)):
        assert len(batched) == len(word_images)
        for got, want in zip(batched, one_by_one):
            assert got[0]["generated_text"] == want[0]["generated_text"]
            assert got[0]["score"] == pytest.approx(want[0]["score"], rel=1e-4, abs=1e-30)


def test_pipeline_char_offsets_map_to_original_pixels(checkpoint_dir):
    pipe = pipeline("text-recognition", model=str(checkpoint_dir), device="cpu")
    image = render_word("hello", height=64)
    (result,) = pipe(image, output_char_offsets=True)
    assert len(result["char_offsets"]) == len(result["generated_text"])
    for offset in result["char_offsets"]:
        assert 0 < offset["x"] < image.width


def test_pipeline_decoding_options(checkpoint_dir, word_images):
    pipe = pipeline("text-recognition", model=str(checkpoint_dir))
    nbest = pipe(word_images[0], beam_width=5, top_k=3)
    assert 1 <= len(nbest) <= 3
    assert [h["score"] for h in nbest] == sorted((h["score"] for h in nbest), reverse=True)
    (constrained,) = pipe(word_images[0], lexicon=["hello", "world"])
    assert constrained["generated_text"] in ("hello", "world") and "lexicon_fallback" in constrained


def test_pipeline_reports_bad_input_by_index(checkpoint_dir, tmp_path, word_images):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    pipe = pipeline("text-recognition", model=str(checkpoint_dir))
    with pytest.raises(ValueError, match="Input 1: .*corrupt"):
        pipe([word_images[0], str(corrupt)])


def test_image_to_text_task_uses_the_shipped_pipeline(checkpoint_dir, word_images):
    remote = pipeline("image-to-text", model=str(checkpoint_dir), trust_remote_code=True)
    local = pipeline("text-recognition", model=str(checkpoint_dir))
    assert remote(word_images)[0][0]["generated_text"] == local(word_images)[0][0]["generated_text"]


def test_pipeline_round_trip_save(checkpoint_dir, tmp_path, word_images):
    pipe = pipeline("text-recognition", model=str(checkpoint_dir))
    pipe.save_pretrained(tmp_path / "saved")
    again = pipeline("text-recognition", model=str(tmp_path / "saved"))
    assert again(word_images) == pipe(word_images)


def test_remote_code_loads_without_hf_crnn(checkpoint_dir, processor, model, word_images, tmp_path):
    """A fresh process with only transformers loads the checkpoint through its shipped code."""
    image_path = tmp_path / "word.png"
    word_images[0].save(image_path)
    script = textwrap.dedent(
        f"""
        import json, sys
        import torch
        from transformers import AutoModelForTextRecognition, AutoProcessor, pipeline
        model = AutoModelForTextRecognition.from_pretrained({str(checkpoint_dir)!r}, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained({str(checkpoint_dir)!r}, trust_remote_code=True)
        batch = processor(images=[{str(image_path)!r}])
        logits = model(**batch).logits
        pipe = pipeline("image-to-text", model={str(checkpoint_dir)!r}, trust_remote_code=True)
        print(json.dumps({{
            "hf_crnn_loaded": any(name.startswith("hf_crnn") for name in sys.modules),
            "model_module": type(model).__module__,
            "logits": logits.tolist(),
            "text": pipe({str(image_path)!r})[0]["generated_text"],
        }}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["hf_crnn_loaded"]
    assert report["model_module"].startswith("transformers_modules.")
    expected = model(**processor(images=[str(image_path)])).logits
    torch.testing.assert_close(torch.tensor(report["logits"]), expected, atol=1e-6, rtol=0)
    assert report["text"] == processor.batch_decode(expected)[0]


def test_pipeline_per_image_lexicons_follow_their_images_through_batching():
    # More images than batch_size, widths unsorted: each image must be decoded against its own lexicon. The shipped
    # checkpoint reads these words, so any lexicon mix-up shows as "zebra".
    from pathlib import Path

    checkpoint_dir = Path(__file__).resolve().parents[1] / "checkpoints" / "crnn-synth-en"
    words = ["hello", "at", "recognition", "cat", "world", "pipelines", "on"]
    images = [render_word(word) for word in words]
    lexicons = [[word, "zebra"] for word in words]
    pipe = pipeline("text-recognition", model=str(checkpoint_dir))
    results = pipe(images, lexicon=lexicons, batch_size=2)
    assert [result[0]["generated_text"] for result in results] == words
    with pytest.raises(ValueError, match="Got 2 per-image lexicons for 7 images"):
        pipe(images, lexicon=lexicons[:2], batch_size=2)
