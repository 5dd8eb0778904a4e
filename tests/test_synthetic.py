"""Tests of the built-in synthetic word images (hf_crnn.synthetic)."""

import random

import numpy as np
import pytest

from hf_crnn import synthetic
from hf_crnn.synthetic import (
    BUILTIN_WORD_LIST,
    FontInfo,
    RenderConfig,
    SyntheticTextGenerator,
    find_fonts,
    load_word_list,
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


def test_split_falls_back_to_styles_for_a_single_family():
    fonts = [FontInfo("Family", style, f"/fonts/Family-{style}.ttf") for style in ("Regular", "Bold", "Italic")]
    train_fonts, eval_fonts = split_fonts(fonts)
    assert len(eval_fonts) == 1 and len(train_fonts) == 2
    with pytest.raises(ValueError, match="at least two fonts"):
        split_fonts(fonts[:1])


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
    monkeypatch.setattr(synthetic, "SYSTEM_WORD_LIST", "/nonexistent/words")  # a machine without wamerican
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
