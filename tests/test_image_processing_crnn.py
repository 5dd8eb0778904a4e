import numpy as np
import PIL.Image
import pytest
import torch

from hf_crnn import CRNNImageProcessor

from conftest import render_word


@pytest.fixture
def binary_word():
    """Pure black-and-white text, so every PIL mode (including 1-bit and palette) represents it exactly."""
    return render_word("Hello", height=32).point(lambda v: 0 if v < 128 else 255)


def _mode_variant(image: PIL.Image.Image, mode: str) -> PIL.Image.Image:
    if mode == "RGBA":  # black text, fully transparent (black!) background: must composite on white
        rgba = PIL.Image.new("RGBA", image.size, (0, 0, 0, 0))
        rgba.putalpha(PIL.Image.eval(image, lambda v: 255 - v))
        return rgba
    if mode == "LA":
        return image.convert("LA")
    if mode == "I;16":
        return PIL.Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    return image.convert(mode)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "CMYK", "I;16", "1", "I", "F", "YCbCr"])
def test_every_pil_mode_converts_like_grayscale(binary_word, mode):
    processor = CRNNImageProcessor()
    variant = _mode_variant(binary_word, mode)
    assert variant.mode == mode
    expected = processor(binary_word)["pixel_values"]
    torch.testing.assert_close(processor(variant)["pixel_values"], expected, atol=1 / 127, rtol=0)


def test_rgb_processor_keeps_colour():
    image = PIL.Image.new("RGB", (50, 20), (255, 0, 0))
    values = CRNNImageProcessor(num_channels=3, image_mean=[0.5] * 3, image_std=[0.5] * 3)(image)["pixel_values"]
    assert values.shape == (1, 3, 32, 100)
    assert values[0, 0].min() == 1.0 and values[0, 1].max() == -1.0


def test_array_tensor_and_path_inputs_agree(tmp_path, binary_word):
    processor = CRNNImageProcessor()
    path = tmp_path / "word.png"
    binary_word.save(path)
    array = np.array(binary_word)
    inputs = [
        binary_word,
        str(path),
        path,
        array,
        array[..., None],
        np.repeat(array[..., None], 3, axis=-1),
        np.repeat(array[None], 3, axis=0),
        array.astype(np.float32) / 255,
        array.astype(np.uint16) * 257,
        torch.from_numpy(array),
        torch.from_numpy(array)[None].float() / 255,
    ]
    batch = processor(inputs)["pixel_values"]
    for index in range(len(inputs)):
        torch.testing.assert_close(batch[index], batch[0], atol=1 / 127, rtol=0, msg=f"input {index}")


def test_fixed_resize_is_the_papers_100_by_32():
    values = CRNNImageProcessor()(PIL.Image.new("L", (300, 75)))["pixel_values"]
    assert values.shape == (1, 1, 32, 100)
    assert values.min() >= -1 and values.max() <= 1


def test_keep_aspect_ratio_resize_clamps_and_pads():
    processor = CRNNImageProcessor(resize_mode="keep_aspect_ratio", min_width=16, max_width=200)
    images = [PIL.Image.new("L", size, 255) for size in [(64, 32), (10, 40), (1000, 32), (99, 32)]]
    outputs = processor(images)
    assert outputs["image_widths"].tolist() == [64, 16, 200, 99]
    assert outputs["pixel_values"].shape == (4, 1, 32, 200)
    assert outputs["pixel_values"][3, :, :, 99:].abs().max() == 0  # padding past the valid width is zero
    assert processor(images[3])["pixel_values"].shape[-1] == 100  # padded width is a multiple of 4


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num_channels": 3, "image_mean": [0.4, 0.5, 0.6]}, {"edge_padding_multiple": 32, "min_width": 1}],
    ids=["gray", "rgb", "edge padding"],
)
def test_resize_image_and_batch_resized_are_the_two_halves_of_a_call(kwargs):
    """What the pipeline's read-ahead holds per image (uint8 pixels at the model's height) and makes batches of."""
    processor = CRNNImageProcessor(resize_mode="keep_aspect_ratio", **kwargs)
    images = [render_word(word, height=40).convert("RGB") for word in ("a", "hello", "transformers")]
    resized = [processor.resize_image(image) for image in images]
    for (pixels, width), image in zip(resized, images):
        assert pixels.dtype == np.uint8 and pixels.shape[::2] == (32, processor.num_channels)
        assert width == processor.target_width(image.width, image.height) >= pixels.shape[1]
    batch, whole = processor.batch_resized(resized, return_tensors="pt"), processor(images)
    assert torch.equal(batch["pixel_values"], whole["pixel_values"])
    assert torch.equal(batch["image_widths"], whole["image_widths"])
    with pytest.raises(ValueError, match="No images"):
        processor.batch_resized([])


def test_per_call_overrides_and_round_trip(tmp_path):
    processor = CRNNImageProcessor(resize_mode="keep_aspect_ratio")
    image = PIL.Image.new("L", (300, 32))
    assert processor(image, resize_mode="fixed")["pixel_values"].shape[-1] == 100
    with pytest.raises(ValueError, match="Unknown image processor argument"):
        processor(image, sizee=3)
    processor.save_pretrained(tmp_path)
    reloaded = CRNNImageProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == processor.to_dict()
    torch.testing.assert_close(reloaded(image)["pixel_values"], processor(image)["pixel_values"])


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 10), np.uint8), "empty"),
        (PIL.Image.new("L", (0, 5)), "empty"),
        (np.full((8, 8), 3.0, np.float32), r"\[0, 1\]"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.zeros((2, 8, 8, 3), np.uint8), "2-D"),
        (np.zeros((8, 8, 5), np.uint8), "channels"),
        (42, "Unsupported image type"),
        ("/nonexistent/word.png", "not found"),
    ],
)
def test_bad_inputs_raise_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        CRNNImageProcessor()(bad)


def test_corrupt_and_truncated_files_raise(tmp_path, binary_word):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    truncated = tmp_path / "truncated.png"
    binary_word.convert("RGB").save(tmp_path / "good.png")
    truncated.write_bytes((tmp_path / "good.png").read_bytes()[:60])
    for path in (corrupt, truncated):
        with pytest.raises(ValueError, match="corrupt"):
            CRNNImageProcessor()(str(path))
