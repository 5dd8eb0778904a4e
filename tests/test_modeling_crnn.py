import os

import pytest
import torch

from hf_crnn import CRNNConfig, CRNNForTextRecognition, CRNNModel

from conftest import tiny_config


def test_default_config_is_the_papers_network():
    model = CRNNForTextRecognition(CRNNConfig())
    num_parameters = sum(p.numel() for p in model.parameters())
    assert abs(num_parameters - 8.33e6) / 8.33e6 < 1e-3
    assert model.config.vocab_size == 37 and model.config.num_channels == 1 and model.config.image_height == 32
    batch_norms = [layer.batch_norm is not None for layer in model.crnn.conv_layers]
    assert batch_norms == [False, False, True, False, True, False, True]


@pytest.mark.parametrize("width, frames", [(100, 26), (200, 51), (37, 10)])
def test_frames_per_width(model, width, frames):
    assert model.get_frame_lengths(width) == frames
    assert model.get_frame_lengths(torch.tensor([width])).tolist() == [frames]
    outputs = model(torch.randn(1, 1, 32, width))
    assert outputs.logits.shape == (1, frames, model.config.vocab_size)
    assert outputs.frame_lengths.tolist() == [frames]


def test_padding_invariance(model, processor, word_images):
    """Each image's valid frames are the same alone as padded inside a batch of wider images."""
    batch = processor(images=word_images)
    with torch.no_grad():
        batched = model(**batch)
        for index, image in enumerate(word_images):
            alone = model(**processor(images=[image]))
            frames = int(alone.frame_lengths[0])
            assert int(batched.frame_lengths[index]) == frames
            torch.testing.assert_close(batched.logits[index, :frames], alone.logits[0, :frames], atol=1e-5, rtol=0)


def test_padding_invariance_with_batch_norm_statistics(processor, word_images):
    """Batch norm's shift makes padding non-zero after each conv; masking must remove it before the next one."""
    torch.manual_seed(1)
    model = CRNNForTextRecognition(tiny_config()).eval()
    for layer in model.crnn.conv_layers:
        if layer.batch_norm is not None:
            layer.batch_norm.running_mean.uniform_(-1, 1)
            layer.batch_norm.bias.data.uniform_(-1, 1)
    batch = processor(images=word_images)
    with torch.no_grad():
        batched = model(**batch)
        alone = model(**processor(images=[word_images[0]]))
    frames = int(alone.frame_lengths[0])
    torch.testing.assert_close(batched.logits[0, :frames], alone.logits[0, :frames], atol=1e-5, rtol=0)


def test_ctc_loss_decreases_when_overfitting(processor, word_images):
    torch.manual_seed(0)
    model = CRNNForTextRecognition(tiny_config(conv_dim=[16, 32, 32, 32, 32, 32, 32], hidden_size=32))
    words = ["hello", "world", "crnn", "a", "transformers", "ocr", "ctc", "text"]
    from conftest import render_word

    batch = processor(images=[render_word(w) for w in words], text=words)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model(**batch).loss
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_loss_is_float32_and_half_precision_runs(model, processor, word_images):
    batch = processor(images=word_images[:2], text=["hello", "world"])
    model = model.to(torch.bfloat16)
    outputs = model(pixel_values=batch["pixel_values"].bfloat16(), image_widths=batch["image_widths"], labels=batch["labels"])
    assert outputs.logits.dtype == torch.bfloat16
    assert outputs.loss.dtype == torch.float32 and torch.isfinite(outputs.loss)


def test_loss_reduction_none_and_label_padding(model, processor, word_images):
    model.config.ctc_loss_reduction = "none"
    batch = processor(images=word_images[:2], text=["hello", "wo"])
    per_sample = model(**batch).loss
    assert per_sample.shape == (2,)
    alone = model(**processor(images=[word_images[1]], text=["wo"])).loss
    torch.testing.assert_close(per_sample[1], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "labels, message",
    [
        ([[0, 5]], "blank"),
        ([[37, 5]], "outside the vocabulary"),
        ([[5] * 26], "needs 51 frames"),  # 26 repeats need a blank between each: 51 frames > 26
        ([list(range(1, 28))], "needs 27 frames"),
    ],
)
def test_bad_labels_raise(model, labels, message):
    with pytest.raises(ValueError, match=message):
        model(torch.randn(1, 1, 32, 100), labels=torch.tensor(labels))


@pytest.mark.parametrize(
    "pixel_values, message",
    [
        (torch.randn(1, 32, 100), "4-D"),
        (torch.zeros(1, 1, 32, 100, dtype=torch.uint8), "floating-point"),
        (torch.randn(1, 3, 32, 100), "1-channel"),
        (torch.randn(1, 1, 48, 100), "32 pixels high"),
        (torch.randn(1, 1, 32, 2), "too narrow"),
    ],
)
def test_bad_pixel_values_raise(model, pixel_values, message):
    with pytest.raises(ValueError, match=message):
        model(pixel_values)


def test_bad_image_widths_raise(model):
    with pytest.raises(ValueError, match=r"narrowest input"):
        model(torch.randn(2, 1, 32, 100), image_widths=torch.tensor([50, 120]))
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(2, 1, 32, 100), image_widths=torch.tensor([50]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(conv_kernel=[3, 3]), "conv_kernel"),
        (dict(image_height=48), "exactly 1"),
        (dict(ctc_loss_reduction="avg"), "ctc_loss_reduction"),
        (dict(num_channels=2), "num_channels"),
        (dict(blank_token_id=37), "blank_token_id"),
        (dict(hidden_act="tanh"), "hidden_act"),
    ],
)
def test_bad_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CRNNConfig(**kwargs)


def test_clovaai_style_variant_is_expressible():
    config = tiny_config(
        conv_bias=[True, True, True, True, False, False, True],
        conv_batch_norm=[False, False, False, False, True, True, False],
        pool_kernel=[[2, 2], [2, 2], None, [2, 1], None, [2, 1], None],
        pool_padding=[None] * 7,
        pool_stride=[None] * 7,
        height_pooling="avg",
        project_last_lstm=True,
        image_height=64,
    )
    model = CRNNForTextRecognition(config).eval()
    assert model.get_frame_lengths(100) == 24
    assert model.crnn.conv_layers[4].conv.bias is None
    assert model(torch.randn(2, 1, 64, 100)).logits.shape == (2, 24, 37)


@pytest.mark.parametrize("height_pooling", ["avg", "max"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_height_pooling_is_the_same_in_either_memory_layout(height_pooling, dtype):
    """`_pool_height` reduces a channels-last map in its own layout; the values are those of `mean`/`amax` over the
    height, for maps several rows high and one row high, in both layouts."""
    model = CRNNModel(tiny_config(height_pooling=height_pooling))
    reduce = torch.mean if height_pooling == "avg" else torch.amax
    torch.manual_seed(0)
    for height in (3, 1):
        feature_map = torch.randn(2, 8, height, 7).to(dtype)
        expected = reduce(feature_map, dim=2).transpose(1, 2)
        for layout in (torch.contiguous_format, torch.channels_last):
            pooled = model._pool_height(feature_map.contiguous(memory_format=layout))
            assert pooled.shape == (2, 7, 8)
            assert torch.equal(pooled, expected), (height, layout)


def test_outputs_hidden_states_and_tuples(model):
    pixel_values = torch.randn(2, 1, 32, 100)
    outputs = model(pixel_values, output_hidden_states=True)
    assert [h.shape for h in outputs.hidden_states] == [(2, 26, 16), (2, 26, 8), (2, 26, 16)]
    logits, frame_lengths, hidden_states = model(pixel_values, output_hidden_states=True, return_dict=False)
    torch.testing.assert_close(logits, outputs.logits)
    base = CRNNModel(model.config)
    assert base(pixel_values).last_hidden_state.shape == (2, 26, model.config.output_hidden_size)


def test_save_load_round_trip_is_exact(tmp_path, model):
    model.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "model.safetensors").exists()
    reloaded = CRNNForTextRecognition.from_pretrained(tmp_path / "ckpt").eval()
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), name
    ignore = {"_name_or_path"}
    assert {k: v for k, v in reloaded.config.to_dict().items() if k not in ignore} == {
        k: v for k, v in model.config.to_dict().items() if k not in ignore
    }


def test_failed_save_leaves_no_partial_checkpoint(tmp_path, model, monkeypatch):
    import transformers.modeling_utils

    def exploding_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", exploding_save)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()
    assert os.listdir(tmp_path) == []
