"""Tests of the built-in synthetic word images (hf_crnn.synthetic)."""

import random
import string
import struct

import numpy as np
import pytest
from PIL import Image

from hf_crnn import synthetic
from hf_crnn.synthetic import (
    BUILTIN_WORD_LIST,
    BackgroundSource,
    FontInfo,
    RenderConfig,
    SceneConfig,
    SceneDegradation,
    SyntheticTextGenerator,
    TextSampler,
    curve_coverage,
    find_backgrounds,
    read_gimp_pattern,
    render_scene_text,
    find_fonts,
    load_word_list,
    make_mixed_iterable_dataset,
    make_synthetic_dataset,
    make_synthetic_iterable_dataset,
    render_text,
    select_fonts,
    split_fonts,
    training_fonts,
)


def _pixels(image):
    return np.asarray(image)


@pytest.fixture(scope="module")
def fonts():
    found = find_fonts()
    if len({font.family for font in found}) < 2:
        pytest.skip("needs fonts of two families at least (Debian: fonts-dejavu-core)")
    return found


def test_same_seed_gives_identical_images(fonts):
    first, second = SyntheticTextGenerator(seed=7), SyntheticTextGenerator(seed=7)
    # Out of order on purpose: sample i must not depend on what was drawn before it.
    for index in (5, 0, 3, 11):
        a, b = first[index], second[index]
        assert a["text"] == b["text"] and a["font"] == b["font"]
        assert np.array_equal(_pixels(a["image"]), _pixels(b["image"]))


def test_different_seeds_give_different_images(fonts):
    a = [SyntheticTextGenerator(seed=1)[i] for i in range(4)]
    b = [SyntheticTextGenerator(seed=2)[i] for i in range(4)]
    assert [s["text"] for s in a] != [s["text"] for s in b]
    assert any(
        x["image"].size != y["image"].size or not np.array_equal(_pixels(x["image"]), _pixels(y["image"]))
        for x, y in zip(a, b)
    )


def test_images_have_fixed_height_width_column_and_contrast(fonts):
    generator = SyntheticTextGenerator(seed=0)
    for index in range(24):
        sample = generator[index]
        image = sample["image"]
        assert image.mode == "RGB" and image.height == 32
        assert sample["width"] == image.width and sample["text_length"] == len(sample["text"])
        gray = _pixels(image.convert("L")).astype(int)
        assert gray.max() - gray.min() >= 40, f"sample {index} ({sample['text']!r}) has almost no contrast"


def test_widths_leave_room_for_ctc(fonts):
    # Narrow glyphs, squeezed: the width must still give every character (and repeat) its frames.
    config = RenderConfig(aspect_ratio_range=(0.5, 0.5), horizontal_padding_range=(0.0, 0.0))
    image = render_text("illicit", fonts[0], random.Random(0), config)
    assert image.width >= 5 * (7 + 1)


def test_texts_follow_charset_lengths_and_case(fonts):
    generator = SyntheticTextGenerator(
        seed=3,
        charset="abcXYZ123",
        lowercase=True,
        min_len=2,
        max_len=5,
        word_list=["ab", "cab", "Zzz", "toolong", "b"],
    )
    texts = [generator[i]["text"] for i in range(30)]
    assert all(set(text) <= set("abc123") and 2 <= len(text) <= 5 for text in texts)
    assert "cab" in texts  # words from the list are used; out-of-charset and out-of-length ones are not
    assert not {"toolong", "b"} & set(texts)


def test_mixed_case_words_keep_their_label(fonts):
    generator = SyntheticTextGenerator(seed=4, word_list=["hello"], word_probability=1.0)
    texts = {generator[i]["text"] for i in range(40)}
    assert texts <= {"hello", "HELLO", "Hello"} and len(texts) > 1


def test_eval_fonts_are_held_out_of_training(fonts):
    train_fonts, eval_fonts = select_fonts("train"), select_fonts("eval")
    assert train_fonts and eval_fonts
    assert not {f.family for f in train_fonts} & {f.family for f in eval_fonts}
    assert sorted(train_fonts + eval_fonts) == sorted(fonts)
    used = {SyntheticTextGenerator(seed=0, fonts="eval")[i]["font"] for i in range(12)}
    assert used <= {font.name for font in eval_fonts}


def test_split_is_deterministic_and_order_independent(fonts):
    shuffled = list(fonts)
    random.Random(0).shuffle(shuffled)
    assert split_fonts(shuffled) == split_fonts(fonts)


def test_split_holds_out_the_named_families_whatever_else_is_installed():
    """The held-out side is `HELD_OUT_FONT_FAMILIES`, not a function of which other families are installed."""
    named = [FontInfo(family, "Regular", f"/fonts/{family}.ttf") for family in synthetic.HELD_OUT_FONT_FAMILIES]
    others = [FontInfo(f"Other {index}", "Regular", f"/fonts/other-{index}.ttf") for index in range(12)]
    for installed in (named[:1] + others[:1], named + others[:3], named[1:3] + others):
        train_fonts, eval_fonts = split_fonts(installed)
        assert eval_fonts == sorted(font for font in installed if font in named)
        assert train_fonts == sorted(font for font in installed if font in others)
    train_fonts, eval_fonts = split_fonts(named + others, held_out_families=["Other 3"])
    assert eval_fonts == [others[3]] and len(train_fonts) == len(named) + len(others) - 1


def test_a_side_without_fonts_is_a_clear_error(system_and_extra_fonts, monkeypatch):
    system, _, _ = system_and_extra_fonts
    monkeypatch.setattr(synthetic.fonts, "HELD_OUT_FONT_FAMILIES", ("No Such Family",))
    with pytest.raises(ValueError, match="No font of the held-out evaluation families"):
        select_fonts("eval", font_dirs=system)
    families = sorted({font.family for font in find_fonts(system)})
    monkeypatch.setattr(synthetic.fonts, "HELD_OUT_FONT_FAMILIES", tuple(families))
    with pytest.raises(ValueError, match="No font outside the held-out evaluation families"):
        select_fonts("train", font_dirs=system)


def test_extra_training_fonts_widen_training_and_leave_evaluation_alone(system_and_extra_fonts):
    system, extra, extra_family = system_and_extra_fonts
    train_fonts = select_fonts("train", font_dirs=system)
    widened = training_fonts(extra, font_dirs=system)
    extra_fonts = [font for font in widened if font.family == extra_family]
    assert widened == train_fonts + extra_fonts and extra_fonts == find_fonts(extra)
    assert training_fonts(None, font_dirs=system) == train_fonts
    # The evaluation side is still the split of the system folder: the extra family never lands there.
    assert extra_family not in {font.family for font in select_fonts("eval", font_dirs=system)}


def test_extra_training_fonts_of_a_held_out_family_are_refused(system_and_extra_fonts, tmp_path):
    system, _, _ = system_and_extra_fonts
    held_out = select_fonts("eval", font_dirs=system)[0]
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    leaky.joinpath(held_out.name).symlink_to(held_out.path)
    with pytest.raises(ValueError, match=f"held-out evaluation families.*{held_out.family}"):
        training_fonts(leaky, font_dirs=system)
    with pytest.raises(ValueError, match="No font covering"):
        training_fonts(tmp_path / "empty-or-missing", font_dirs=system)


def test_fonts_without_the_glyphs_are_skipped():
    assert find_fonts(charset="ab\u4e2d") == []  # no DejaVu font has CJK ideographs
    with pytest.raises(ValueError, match="No font covering"):
        select_fonts("all", charset="ab\u4e2d")


def test_bad_arguments_raise_value_errors(fonts):
    with pytest.raises(ValueError, match="min_len"):
        SyntheticTextGenerator(min_len=5, max_len=2)
    with pytest.raises(ValueError, match="fonts"):
        SyntheticTextGenerator(fonts="test")
    with pytest.raises(ValueError, match="text_height_range"):
        RenderConfig(text_height_range=(0.9, 0.5))
    with pytest.raises(ValueError, match="empty"):
        render_text("", fonts[0], random.Random(0))


def test_builtin_word_list_is_the_fallback(monkeypatch):
    words = load_word_list(BUILTIN_WORD_LIST)
    assert len(words) == 5000 and all(word.isalpha() and word.islower() for word in words)
    monkeypatch.setattr(synthetic.text, "SYSTEM_WORD_LIST", "/nonexistent/words")  # a machine without wamerican
    assert load_word_list() == words


def test_map_style_and_iterable_datasets_match_the_generator(fonts, tmp_path):
    dataset = make_synthetic_dataset(5, seed=9, cache_dir=str(tmp_path))
    assert dataset.column_names == ["image", "text", "width", "text_length", "font"]
    generator = SyntheticTextGenerator(seed=9)
    for index, row in enumerate(dataset):
        expected = generator[index]
        assert row["text"] == expected["text"] and row["width"] == row["image"].width
        assert np.array_equal(_pixels(row["image"]), _pixels(expected["image"]))

    stream = iter(make_synthetic_iterable_dataset(seed=9))
    assert [next(stream)["text"] for _ in range(5)] == dataset["text"]


def test_iterable_dataset_shard_k_yields_samples_k_plus_multiples_of_num_shards(fonts):
    texts = [SyntheticTextGenerator(seed=9)[index]["text"] for index in range(6)]
    dataset = make_synthetic_iterable_dataset(num_shards=2, seed=9)
    stream = iter(dataset)  # one process reads its first shard, which is endless
    assert [next(stream)["text"] for _ in range(3)] == texts[0::2]
    second = iter(dataset.shard(num_shards=2, index=1))
    assert [next(second)["text"] for _ in range(3)] == texts[1::2]


# ---------------------------------------------------------------------------------------------------------------------
# The subpackage and the "scene" style
# ---------------------------------------------------------------------------------------------------------------------


def test_subpackage_reexports_its_public_names():
    for name in synthetic.__all__:
        assert getattr(synthetic, name) is not None, name
    assert synthetic.split_fonts is synthetic.fonts.split_fonts
    assert synthetic.make_synthetic_dataset is synthetic.dataset.make_synthetic_dataset


def test_held_out_split_is_unchanged():
    assert synthetic.HELD_OUT_FONT_FAMILIES == (
        "C059",
        "DejaVu Sans Mono",
        "DejaVu Serif",
        "Liberation Mono",
        "Nimbus Sans",
    )


def _assert_legible_sample(sample, height=32):
    image = sample["image"]
    assert image.mode == "RGB" and image.height == height
    assert sample["width"] == image.width >= 5 * len(sample["text"])
    gray = _pixels(image.convert("L")).astype(int)
    assert gray.max() - gray.min() >= 40, f"{sample['text']!r} left an almost uniform image"


@pytest.fixture(scope="module")
def no_backgrounds(tmp_path_factory):
    return tmp_path_factory.mktemp("no-backgrounds")  # an empty folder: the generated-texture fallback


def test_scene_style_is_deterministic_per_seed_and_differs_from_clean(fonts, no_backgrounds):
    first = SyntheticTextGenerator(seed=5, style="scene", background_dirs=no_backgrounds)
    second = SyntheticTextGenerator(seed=5, style="scene", background_dirs=no_backgrounds)
    clean = SyntheticTextGenerator(seed=5)
    for index in (4, 0, 9):
        a, b = first[index], second[index]
        assert a["text"] == b["text"] and np.array_equal(_pixels(a["image"]), _pixels(b["image"]))
        _assert_legible_sample(a)
    assert first.fingerprint() == second.fingerprint() != clean.fingerprint()
    with pytest.raises(ValueError, match="style"):
        SyntheticTextGenerator(style="photo")


def test_every_scene_layer_keeps_the_label_and_the_text(fonts, no_backgrounds):
    backgrounds = BackgroundSource(no_backgrounds)
    assert backgrounds.textures == () and backgrounds.paths == []
    every_layer = SceneConfig(
        neighbour_probability=1.0,
        curve_probability=1.0,
        outline_probability=1.0,
        shadow_probability=1.0,
        texture_probability=1.0,
        degradation_strength=2.0,  # every degradation of RealCropAugmentation at twice its usual rate
    )
    generator = SyntheticTextGenerator(
        seed=1, style="scene", scene_config=every_layer, background_dirs=no_backgrounds, word_list=["Hello"]
    )
    for index in range(12):
        sample = generator[index]
        assert sample["text_length"] == len(sample["text"])
        _assert_legible_sample(sample)
    # One layer at a time, through the rendering function itself: the label is the caller's, the image must not be
    # blank and must keep the height.
    degradation = SceneDegradation(strength=0.0)
    layers = ("neighbour", "curve", "outline", "shadow", "texture")
    for layer in layers:
        only_this_layer = {f"{name}_probability": float(name == layer) for name in layers}
        scene = SceneConfig(**only_this_layer, degradation_strength=0.0)
        context = ("ab ", " cd") if layer == "neighbour" else ("", "")
        image = render_scene_text("Word42", fonts[0], random.Random(0), None, scene, backgrounds, degradation, context)
        _assert_legible_sample({"image": image, "text": "Word42", "width": image.width})


def test_curve_keeps_the_ink_inside_the_image():
    coverage = np.zeros((32, 100), np.float32)
    coverage[4:28, 10:90] = 1.0  # text touching the top and bottom padding
    curved = curve_coverage(coverage, random.Random(3), max_curve=0.3)
    assert curved.shape == coverage.shape and not np.array_equal(curved, coverage)
    assert curved[0].max() < 0.5 and curved[-1].max() < 0.5  # nothing pushed out of the image
    assert curved.sum() > 0.6 * coverage.sum()


def test_degradation_is_reproducible_and_restores_the_height():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 90, 3), dtype=np.uint8))
    degradation = SceneDegradation(strength=2.0)
    a = degradation(image, random.Random(7), min_width=60)
    b = degradation(image, random.Random(7), min_width=60)
    assert np.array_equal(_pixels(a), _pixels(b)) and a.height == 32 and a.width >= 60


def test_texts_from_every_source_fit_charset_and_lengths():
    sampler = TextSampler(
        charset=string.digits + string.ascii_letters,
        min_len=2,
        max_len=8,
        word_list=["cat", "house", "toolongword"],
        word_probability=0.25,
        number_probability=0.25,
        mixed_probability=0.25,
    )
    rng = random.Random(0)
    texts = [sampler(rng) for _ in range(400)]
    assert all(2 <= len(text) <= 8 and text.isalnum() for text in texts)
    assert any(text.isdigit() for text in texts)  # numbers
    assert any(text.lower().startswith(("cat", "house")) and any(c.isdigit() for c in text) for text in texts)
    assert {"cat", "CAT", "Cat"} & set(texts)  # words, in several cases
    with pytest.raises(ValueError, match="sum to at most 1"):
        TextSampler(word_probability=0.7, number_probability=0.5)


def test_gimp_patterns_are_read_and_used_as_backgrounds(tmp_path):
    width, height = 20, 10
    pixels = bytes(np.random.default_rng(0).integers(0, 255, width * height * 3, dtype=np.uint8))
    name = b"test\0"
    header = struct.pack(">5I", 24 + len(name), 1, width, height, 3) + b"GPAT" + name
    (tmp_path / "texture.pat").write_bytes(header + pixels)
    (tmp_path / "notes.txt").write_text("not an image")
    image = read_gimp_pattern(tmp_path / "texture.pat")
    assert image.size == (width, height) and image.tobytes() == pixels
    assert find_backgrounds(tmp_path) == [str((tmp_path / "texture.pat").resolve())]
    source = BackgroundSource(tmp_path)
    texture = source.texture(random.Random(0), 64, 32)
    assert texture.shape == (32, 64, 3) and texture.std() > 0
    colors = {source.color(random.Random(seed)) for seed in range(5)}
    assert colors <= {tuple(int(v) for v in pixel) for pixel in np.asarray(image).reshape(-1, 3)}
    with pytest.raises(ValueError, match="not a GIMP pattern"):
        read_gimp_pattern(tmp_path / "notes.txt")


def test_scene_datasets_match_the_generator(fonts, tmp_path, no_backgrounds):
    dataset = make_synthetic_dataset(3, seed=2, style="scene", background_dirs=no_backgrounds, cache_dir=str(tmp_path))
    generator = SyntheticTextGenerator(seed=2, style="scene", background_dirs=no_backgrounds)
    assert dataset["text"] == [generator[index]["text"] for index in range(3)]
    stream = iter(make_synthetic_iterable_dataset(seed=2, style="scene", background_dirs=no_backgrounds))
    assert [next(stream)["text"] for _ in range(3)] == dataset["text"]


# ---------------------------------------------------------------------------------------------------------------------
# Real data interleaved with synthetic images rendered on the fly (make_mixed_iterable_dataset)
# ---------------------------------------------------------------------------------------------------------------------

# Synthetic texts are lower case letters only; real ones start with an upper case "R": each sample tells its kind.
MIX_OPTIONS = dict(seed=3, charset=string.ascii_lowercase, lowercase=True, min_len=2, max_len=4)


def _real_dataset(num_rows: int = 6, image_column: str = "image", text_column: str = "text"):
    import datasets

    # Each real image is one flat grey level, its row index: a yielded image can be matched to its text.
    images = [Image.new("L", (8, 8), index) for index in range(num_rows)]
    texts = [f"R{index}" for index in range(num_rows)]
    dataset = datasets.Dataset.from_dict({image_column: images, text_column: texts, "other": list(range(num_rows))})
    return dataset.cast_column(image_column, datasets.Image())


def _take(dataset, count: int) -> list[dict]:
    stream = iter(dataset)
    return [next(stream) for _ in range(count)]


def _is_real(sample, text_column: str = "text") -> bool:
    return sample[text_column].startswith("R")


def test_mixed_stream_without_synthetic_repeats_every_real_row_once_per_pass(fonts):
    real = _real_dataset(6)
    samples = _take(make_mixed_iterable_dataset(real, 0.0, **MIX_OPTIONS), 6 * 4)
    assert all(_is_real(sample) for sample in samples)
    assert all(set(sample) == {"image", "text"} for sample in samples)  # the other columns are not read
    for sample in samples:  # every text with its own image
        assert _pixels(sample["image"]).max() == int(sample["text"][1:])
    passes = [[sample["text"] for sample in samples[start : start + 6]] for start in range(0, len(samples), 6)]
    for texts in passes:
        assert sorted(texts) == sorted(real["text"])
    assert len({tuple(texts) for texts in passes}) > 1, "each pass must be reshuffled"


def test_mixed_stream_shards_split_the_real_rows(fonts):
    real = _real_dataset(6)
    dataset = make_mixed_iterable_dataset(real, 0.0, num_shards=2, **MIX_OPTIONS)
    assert dataset.num_shards == 2
    # Shard k reads rows k, k + 2, ... (as a DataLoader worker given only that shard would), reshuffled each pass.
    shards = [_take(dataset.shard(num_shards=2, index=index), 3 * 4) for index in range(2)]
    for index, samples in enumerate(shards):
        texts = [sample["text"] for sample in samples]
        passes = [texts[start : start + 3] for start in range(0, len(texts), 3)]
        assert all(set(texts) == set(real["text"][index::2]) for texts in passes), passes
    first_passes = [sample["text"] for samples in shards for sample in samples[:3]]
    assert sorted(first_passes) == sorted(real["text"])  # together: every row once


def test_mixed_stream_draws_synthetic_samples_at_the_given_rate(fonts):
    real = _real_dataset(5)
    samples = _take(make_mixed_iterable_dataset(real, 0.5, mix_seed=1, **MIX_OPTIONS), 400)
    synthetic_samples = [sample for sample in samples if not _is_real(sample)]
    assert 0.4 < len(synthetic_samples) / len(samples) < 0.6
    for sample in synthetic_samples:  # rendered by the generator with its options
        assert sample["text"].isalpha() and sample["text"].islower() and 2 <= len(sample["text"]) <= 4
        assert sample["image"].mode == "RGB" and sample["image"].height == 32
    # The synthetic samples are the generator's, in order (one shard: samples 0, 1, 2, ...).
    generator = SyntheticTextGenerator(**MIX_OPTIONS)
    assert [sample["text"] for sample in synthetic_samples[:10]] == [generator[i]["text"] for i in range(10)]
    # The real rows still come once per pass.
    real_texts = [sample["text"] for sample in samples if _is_real(sample)]
    for start in range(0, len(real_texts) - 4, 5):
        assert sorted(real_texts[start : start + 5]) == sorted(real["text"])
    rare = _take(make_mixed_iterable_dataset(real, 0.1, mix_seed=1, **MIX_OPTIONS), 400)
    assert 0.03 < sum(not _is_real(sample) for sample in rare) / 400 < 0.17


def test_mixed_stream_is_deterministic_per_seed(fonts):
    real = _real_dataset(6)
    first = _take(make_mixed_iterable_dataset(real, 0.5, num_shards=2, mix_seed=4, **MIX_OPTIONS), 40)
    second = _take(make_mixed_iterable_dataset(real, 0.5, num_shards=2, mix_seed=4, **MIX_OPTIONS), 40)
    assert [sample["text"] for sample in first] == [sample["text"] for sample in second]
    for a, b in zip(first, second):
        assert np.array_equal(_pixels(a["image"]), _pixels(b["image"]))
    other = _take(make_mixed_iterable_dataset(real, 0.5, num_shards=2, mix_seed=5, **MIX_OPTIONS), 40)
    assert [sample["text"] for sample in other] != [sample["text"] for sample in first]


def test_mixed_stream_keeps_the_column_names_of_the_real_data(fonts):
    real = _real_dataset(4, image_column="picture", text_column="label")
    samples = _take(
        make_mixed_iterable_dataset(real, 0.5, image_column="picture", text_column="label", **MIX_OPTIONS), 30
    )
    assert all(set(sample) == {"picture", "label"} for sample in samples)
    kinds = {_is_real(sample, "label") for sample in samples}
    assert kinds == {True, False}


def test_mixed_stream_bad_arguments_raise_value_errors(fonts):
    import datasets

    real = _real_dataset(3)
    for probability in (1.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="synthetic_probability"):
            make_mixed_iterable_dataset(real, probability, **MIX_OPTIONS)
    with pytest.raises(ValueError, match="num_shards"):
        make_mixed_iterable_dataset(real, 0.5, num_shards=0, **MIX_OPTIONS)
    empty = datasets.Dataset.from_dict({"image": [], "text": []})
    with pytest.raises(ValueError, match="empty"):
        make_mixed_iterable_dataset(empty, 0.5, **MIX_OPTIONS)
    with pytest.raises(ValueError, match="'label'"):
        make_mixed_iterable_dataset(real, 0.5, text_column="label", **MIX_OPTIONS)
    with pytest.raises(ValueError, match="'picture'"):
        make_mixed_iterable_dataset(real, 0.5, image_column="picture", **MIX_OPTIONS)


def _collate_samples(batch: list[dict]) -> list[dict]:
    return batch


def test_mixed_stream_through_a_dataloader_with_two_workers(fonts):
    import torch

    real = _real_dataset(6)
    for probability in (0.0, 0.5):
        dataset = make_mixed_iterable_dataset(real, probability, num_shards=2, mix_seed=2, **MIX_OPTIONS)
        loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=_collate_samples)
        batches = iter(loader)
        samples = [next(batches)[0] for _ in range(24)]
        del batches  # shuts the workers down
        # Worker k reads shard k, and the loader alternates between the workers.
        for index in range(2):
            expected = _take(dataset.shard(num_shards=2, index=index), 12)
            assert [sample["text"] for sample in samples[index::2]] == [sample["text"] for sample in expected]
            for a, b in zip(samples[index::2], expected):
                assert np.array_equal(_pixels(a["image"]), _pixels(b["image"]))
        real_texts = [sample["text"] for sample in samples if _is_real(sample)]
        if probability == 0.0:
            assert len(real_texts) == 24 and sorted(real_texts[:6]) == sorted(real["text"])  # every row once
        else:
            assert set(real_texts) == set(real["text"]) and len(real_texts) < len(samples)
            # Each worker renders its own synthetic samples: none is drawn twice.
            synthetic_texts = [(sample["text"], _pixels(sample["image"]).tobytes()) for sample in samples]
            synthetic_texts = [key for key in synthetic_texts if not key[0].startswith("R")]
            assert len(set(synthetic_texts)) == len(synthetic_texts)
