import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import PIL.Image
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
    assert isinstance(single, list) and set(single[0]) == {"generated_text", "confidence", "log_likelihood", "score"}
    one_by_one = [pipe(image) for image in word_images]
    for batched in (pipe(word_images), pipe(word_images, batch_size=3)):
        assert len(batched) == len(word_images)
        for got, want in zip(batched, one_by_one):
            assert got[0]["generated_text"] == want[0]["generated_text"]
            assert got[0]["score"] == pytest.approx(want[0]["score"], rel=1e-4, abs=1e-30)
            assert got[0]["confidence"] == pytest.approx(want[0]["confidence"], rel=1e-4, abs=1e-30)


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
    for empty in (None, [], ()):  # named by its input, not by a position in a width-sorted batch
        with pytest.raises(ValueError, match="The per-image lexicon of input 3 is empty"):
            pipe(images, lexicon=[*lexicons[:3], empty, *lexicons[4:]], batch_size=2)


SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "crnn-synth-en"


def test_pipeline_streams_generators_and_datasets_in_input_order(checkpoint_dir, word_images):
    pipe = pipeline("text-recognition", model=str(checkpoint_dir))
    images = [word_images[i % len(word_images)] for i in range(23)]  # widths in no order
    expected = pipe(images, batch_size=4)
    assert isinstance(expected, list) and len(expected) == len(images)

    pulled = []

    def generate():
        for image in images:
            pulled.append(image)
            yield image

    stream = pipe(generate(), batch_size=4, lookahead_batches=2)
    # Only the first image is read before a result is asked for (transformers peeks at it to detect chat input).
    assert not isinstance(stream, list) and len(pulled) <= 1
    first = next(stream)
    # The first result comes after one look-ahead window (2 batches of 4), not after the whole input.
    assert _same_reads([first], expected[:1]) and len(pulled) == 8
    assert _same_reads([first, *stream], expected)
    assert _same_reads(pipe(iter(images), batch_size=4), expected)  # any iterator streams

    from transformers.pipelines.pt_utils import KeyDataset

    dataset = KeyDataset([{"image": image} for image in images], "image")
    assert _same_reads(pipe(dataset, batch_size=4), expected)
    assert _same_reads(pipe(tuple(images), batch_size=4), expected) and pipe([]) == []


def _same_reads(results, expected) -> bool:
    """Same texts and, to float rounding (other batch neighbours pick other kernels), the same scores."""
    results = list(results)
    return len(results) == len(expected) and all(
        got[0]["generated_text"] == want[0]["generated_text"]
        and got[0]["confidence"] == pytest.approx(want[0]["confidence"], rel=1e-4, abs=1e-6)
        and got[0]["log_likelihood"] == pytest.approx(want[0]["log_likelihood"], rel=1e-4)
        for got, want in zip(results, expected)
    )


def test_pipeline_stream_with_per_image_lexicons_and_bad_counts(checkpoint_dir, word_images):
    pipe = pipeline("text-recognition", model=str(checkpoint_dir))
    lexicons = [[f"word{index}", f"other{index}"] for index in range(len(word_images))]
    results = list(pipe((image for image in word_images), lexicon=lexicons, batch_size=2, lookahead_batches=1))
    assert [result[0]["generated_text"] in lexicon for result, lexicon in zip(results, lexicons)] == [True] * 5
    with pytest.raises(ValueError, match="Got 3 per-image lexicons for more images than that"):
        list(pipe((image for image in word_images), lexicon=lexicons[:3], batch_size=2, lookahead_batches=1))
    with pytest.raises(ValueError, match="Got 5 per-image lexicons for 4 images"):
        list(pipe((image for image in word_images[:4]), lexicon=lexicons, batch_size=2))


def test_pipeline_per_image_lexicons_follow_shuffled_widths_through_windows():
    # 7 images with distinct lexicons at batch size 2, widths shuffled, read ahead 1 batch at a time: every image must
    # be decoded against its own lexicon, whose distractor is the other images' words.
    words = ["recognition", "at", "pipelines", "on", "hello", "cat", "world"]
    images = [render_word(word) for word in words]
    lexicons = [[word, *[other for other in words if other != word][:3]][::-1] for word in words]
    pipe = pipeline("text-recognition", model=str(SHIPPED_CHECKPOINT))
    for lookahead in (1, 8):
        results = pipe(images, lexicon=lexicons, batch_size=2, lookahead_batches=lookahead)
        assert [result[0]["generated_text"] for result in results] == words


def test_pipeline_too_small_and_blank_images_are_not_guessed(checkpoint_dir):
    pipe = pipeline("text-recognition", model=str(checkpoint_dir))
    sizes = [(1, 1), (1, 5000), (5000, 1), (3, 40)]
    results = pipe([PIL.Image.new("L", size, 0) for size in sizes] + [PIL.Image.new("L", (16, 32), 255)])
    for (result,), size in zip(results, sizes):
        assert result["generated_text"] == "" and result["confidence"] == 0.0 and result["score"] == 0.0
        assert result["unreadable"].startswith(f"too small to read: {size[0]}x{size[1]} pixels")
    (blank,) = results[-1]
    assert blank["generated_text"] == "" and blank["confidence"] == 0.0 and blank["unreadable"].startswith("blank")
    # A small but legible crop is still read.
    (small,) = pipe(render_word("a", height=12))
    assert "unreadable" not in small


def _negative_crops(count: int, seed: int = 0) -> list:
    """Crops without text: uniform grey, uniform noise, gaussian noise and horizontal gradients, of random sizes."""
    rng = np.random.default_rng(seed)
    crops = []
    for index in range(count):
        width, height = int(rng.integers(16, 200)), int(rng.integers(16, 80))
        kind = index % 4
        if kind == 0:
            array = np.full((height, width), int(rng.integers(0, 256)), np.uint8)
        elif kind == 1:
            array = rng.integers(0, 256, (height, width)).astype(np.uint8)
        elif kind == 2:
            array = rng.normal(128, 20, (height, width)).clip(0, 255).astype(np.uint8)
        else:
            array = np.tile(np.linspace(0, 255, width), (height, 1)).astype(np.uint8)
        crops.append(PIL.Image.fromarray(array))
    return crops


WORDS = (
    "the quick brown fox jumps over lazy dog hugging face model text reading pipeline batch width crop image night "
    "river stone house garden window paper light music water green table chair apple orange forest market summer "
    "winter"
).split()


def test_confidence_ranks_textless_crops_below_correct_reads():
    """With the shipped checkpoint: blank, uniform, noise and gradient crops read as empty text or with a confidence
    below nearly every correct read (the old best-path `score` does not separate them)."""
    pipe = pipeline("text-recognition", model=str(SHIPPED_CHECKPOINT))
    reads = pipe([render_word(word) for word in WORDS], batch_size=16)
    correct = [result for (result,), word in zip(reads, WORDS) if result["generated_text"] == word]
    assert len(correct) >= 0.9 * len(WORDS)
    negatives = [result for (result,) in pipe(_negative_crops(60), batch_size=16)]

    def share_not_rejected(field):
        # Negatives read as text with a value at or above the 5th percentile of the correct reads' values.
        floor = np.percentile([result[field] for result in correct], 5)
        return np.mean([result["generated_text"] != "" and result[field] >= floor for result in negatives])

    assert share_not_rejected("confidence") <= 0.05
    assert share_not_rejected("score") > 0.1  # why `score` is not a confidence
    assert all(result["confidence"] == 0.0 for result in negatives[::4])  # uniform crops: blank, not read


def test_confidence_does_not_fall_with_width_or_length():
    """A correctly read long line keeps a high confidence; its best-path probability (`score`) collapses."""
    pipe = pipeline("text-recognition", model=str(SHIPPED_CHECKPOINT))
    (short,) = pipe(render_word("hello"))
    (line,) = pipe(render_word("hello world " * 40), batch_size=8)
    assert short["generated_text"] == "hello" and line["generated_text"] == "helloworld" * 40
    assert line["score"] < 1e-3 * short["score"]
    assert line["confidence"] > 0.5 and line["confidence"] > short["confidence"] - 0.2
    assert line["score"] == pytest.approx(math.exp(line["log_likelihood"]))
