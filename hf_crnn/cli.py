# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""The `hf-crnn` command line.

    hf-crnn recognize IMAGE_OR_DIR... --model PATH [--lexicon FILE] [--beam-width N] [--batch-size N]
                      [--language-model checkpoint|FILE]
                      [--fallback-model PATH [--fallback-threshold T] [--fallback-word-threshold T]]
                      [--device cpu|cuda] [--format text|json|tsv] [--recursive] [--strict] [--fast]
                      (with --fallback-model, --beam-width is the beam of the fallback's --language-model search;
                      --lexicon decodes both stages)
    hf-crnn export-onnx --model PATH --output FILE [--opset N] [--no-validate]
    hf-crnn export --format easyocr --model PATH --output_dir DIR [--name NAME] [--lang_list en ...] [--overwrite]
    hf-crnn evaluate ARGS...                   forwards ARGS to hf_crnn.evaluation.main
    hf-crnn convert --source meijieru|clovaai|easyocr|bgshih ARGS...
                                               forwards ARGS to conversion/convert_<source>.py's main

Exit codes: 0 on success (images that could not be read are reported but do not fail the run), 1 when `--strict`
is given and an image failed, or when recognition itself failed, 2 for usage errors (bad arguments, a model that
cannot be loaded, no images). `export-onnx` exits with 1 when the exported graph fails its parity check against
PyTorch (nothing is written then). `evaluate` and `convert` exit with their target's code.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import importlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import pipeline
from transformers.utils import logging as transformers_logging

from .file_utils import MODEL_FILES, PROCESSOR_FILES, check_local_checkpoint, read_word_list_file
from .image_processing_crnn import load_image
from .language_model import CHECKPOINT_LANGUAGE_MODEL, language_model_option
from .modeling_crnn import CRNNForTextRecognition
from .pipeline_crnn import (
    DEFAULT_FALLBACK_BEAM_WIDTH,
    DEFAULT_FALLBACK_THRESHOLD,
    DEFAULT_FALLBACK_WORD_THRESHOLD,
    TALL_ASPECT_RATIO,
)

# onnx and onnxruntime themselves are imported only when `export-onnx` runs.
from .onnx_export import DEFAULT_OPSET_VERSION, PARITY_TOLERANCE, ONNXValidationError, export_onnx

PROG = "hf-crnn"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm")
OUTPUT_FORMATS = ("text", "json", "tsv")
# Images read and handed to the pipeline per call: enough for the pipeline to group images of similar width into
# batches, few enough to keep memory flat and the progress bar moving on large folders.
IMAGES_PER_CALL = 64
# Below this many images a progress bar is noise.
PROGRESS_BAR_MIN_IMAGES = 20
# `--fast` calibrates optimize_for_cpu("auto") on at most this many of the input images (a few seconds).
FAST_CALIBRATION_IMAGES = 64

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

EVALUATION_MODULE = "hf_crnn.evaluation"
# `--source` -> the converter script in the conversion/ folder of the source checkout.
CONVERTERS = {
    "meijieru": "convert_meijieru_crnn",
    "clovaai": "convert_clovaai_benchmark",
    "easyocr": "convert_easyocr",
    "bgshih": "convert_bgshih_torch7",
}
# `hf-crnn export --format` -> the exporter in the conversion/ folder (it reuses the converters' key maps).
EXPORTERS = {"easyocr": "export_easyocr"}
CONVERSION_PACKAGE = "conversion"
REPO_ROOT = Path(__file__).resolve().parent.parent


class CommandError(Exception):
    """A failure to report as `hf-crnn: error: <message>` with an exit code, without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `hf-crnn` with `argv` (default: `sys.argv[1:]`) and returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # `evaluate` and `convert` hand their arguments, options included, to another parser: argparse cannot
        # collect unknown options for a sub-command, so they are routed before parsing.
        if argv and argv[0] in FORWARDING_COMMANDS:
            return FORWARDING_COMMANDS[argv[0]](argv[1:])
        args = build_parser().parse_args(argv)
        with _plain_warnings():
            return args.run(args)
    except CommandError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # Whoever read our output stopped (`hf-crnn recognize ... | head`): end quietly, like other command-line
        # tools. Pointing stdout at /dev/null keeps Python's exit-time flush from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE


@contextlib.contextmanager
def _plain_warnings():
    """
    Shows Python warnings (a lexicon's skipped words, ...) as `hf-crnn: warning: <message>`: the default format
    adds the file, line and source line of the library code that warned, which mean nothing to a CLI user.
    """
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {message}", file=sys.stderr if file is None else file)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="CRNN scene-text recognition.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    recognize = commands.add_parser(
        "recognize",
        help="read the text of word/line images",
        description="Reads the text of cropped word or text-line images with a CRNN checkpoint. Prints path, text "
        "and confidence (the probability the text is right, comparable across images) per image; images that "
        "cannot be read are reported on stderr (and in json/tsv output) without stopping the run.",
    )
    recognize.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    recognize.add_argument("--model", required=True, metavar="PATH", help="checkpoint folder or Hub repo id")
    recognize.add_argument(
        "--lexicon", type=_existing_file, metavar="FILE", help="word list (one per line) to constrain decoding"
    )
    recognize.add_argument(
        "--beam-width", type=_positive_int, metavar="N", help="beam search width (default: greedy decoding)"
    )
    recognize.add_argument(
        "--language-model",
        metavar=f"{CHECKPOINT_LANGUAGE_MODEL}|FILE",
        help="beam search fused with a character language model: the checkpoint's own (language_model.json), or "
        "a saved one (.json) or a word list to train one on",
    )
    recognize.add_argument(
        "--batch-size", type=_positive_int, default=16, metavar="N", help="images per forward pass (16)"
    )
    recognize.add_argument(
        "--device", choices=("cpu", "cuda"), help="where the model runs (default: cuda if available, else cpu)"
    )
    recognize.add_argument("--format", choices=OUTPUT_FORMATS, default="text", help="output format (text)")
    recognize.add_argument("-r", "--recursive", action="store_true", help="also look for images in sub-folders")
    recognize.add_argument("--strict", action="store_true", help="exit with code 1 if any image failed")
    recognize.add_argument(
        "--fast",
        action="store_true",
        help="CPU: run the fastest of fp32/bf16/int8/int8_bf16 that reads the first images as the fp32 model does "
        "(optimize_for_cpu 'auto', calibrated on up to 64 of the input images; its choice is printed on stderr)",
    )
    recognize.add_argument(
        "--fallback-model",
        metavar="PATH",
        help="a cascade: --model reads every image greedily (or against --lexicon), and this more accurate "
        "checkpoint reads again those read with a confidence below --fallback-threshold (against --lexicon too; "
        f"else with --language-model when given, in a beam of --beam-width, default {DEFAULT_FALLBACK_BEAM_WIDTH})",
    )
    recognize.add_argument(
        "--fallback-threshold",
        type=_confidence,
        default=DEFAULT_FALLBACK_THRESHOLD,
        metavar="T",
        help=f"the cascade's confidence threshold, in [0, 1] ({DEFAULT_FALLBACK_THRESHOLD})",
    )
    recognize.add_argument(
        "--fallback-word-threshold",
        type=_confidence,
        default=DEFAULT_FALLBACK_WORD_THRESHOLD,
        metavar="T",
        help="a lexicon-free first reading that spells a word of --language-model is read again only below this "
        f"confidence ({DEFAULT_FALLBACK_WORD_THRESHOLD}; 1 reads it like any other)",
    )
    recognize.add_argument(
        "--no-rotate-tall",
        dest="rotate_tall",
        action="store_false",
        help=f"read every image upright (by default an image at least {TALL_ASPECT_RATIO:g} times as tall as wide is "
        "also read turned a quarter turn each way, and the most confident reading is kept)",
    )
    recognize.set_defaults(run=run_recognize)

    export = commands.add_parser(
        "export-onnx",
        help="export a checkpoint to ONNX (dynamic batch and width)",
        description="Exports a CRNN checkpoint to an ONNX graph with inputs pixel_values and image_widths and outputs "
        "logits and frame_lengths, batch size and width dynamic. The graph is checked against the PyTorch logits "
        "with onnxruntime before it is written (atomically).",
    )
    export.add_argument("--model", required=True, metavar="PATH", help="checkpoint folder or Hub repo id")
    export.add_argument("--output", required=True, metavar="FILE", help="the .onnx file to write")
    export.add_argument(
        "--opset",
        type=_positive_int,
        default=DEFAULT_OPSET_VERSION,
        metavar="N",
        help=f"ONNX opset version ({DEFAULT_OPSET_VERSION})",
    )
    export.add_argument(
        "--no-validate", action="store_true", help="skip the onnxruntime parity check (which needs onnxruntime)"
    )
    export.set_defaults(run=run_export_onnx)

    export_other = commands.add_parser(
        "export",
        help="write a checkpoint in another library's format (--format easyocr)",
        description="Writes a checkpoint of EasyOCR's recognizer layout (converted with `convert --source easyocr`, "
        "or fine-tuned from one) as EasyOCR custom-recognizer files NAME.pth, NAME.yaml and NAME.py, checked to "
        "reproduce the model's logits before they are written (atomically). Use them with "
        "easyocr.Reader([...], recog_network=NAME).",
    )
    export_other.add_argument("--format", required=True, choices=tuple(EXPORTERS), help="target format")
    export_other.add_argument("--model", required=True, metavar="PATH", help="checkpoint folder or Hub repo id")
    export_other.add_argument("--output_dir", required=True, metavar="DIR", help="folder to write the files to")
    # No defaults here: the exporter's own apply (custom_crnn, en), so they are written once.
    export_other.add_argument("--name", help="EasyOCR's recog_network name (custom_crnn)")
    export_other.add_argument("--lang_list", nargs="+", metavar="LANG", help="EasyOCR language codes for the yaml (en)")
    export_other.add_argument("--overwrite", action="store_true", help="replace --output_dir if it is not empty")
    export_other.set_defaults(run=run_export)

    # Listed for `--help` only; `main` routes these before parsing.
    commands.add_parser(
        "evaluate", add_help=False, help=f"evaluate a checkpoint on benchmarks (forwards to {EVALUATION_MODULE})"
    )
    commands.add_parser(
        "convert", add_help=False, help=f"convert original CRNN weights (--source {'|'.join(CONVERTERS)})"
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a confidence in [0, 1], got {text!r}")
    return value


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


# ---- recognize ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Recognition:
    """One output row: the text, its confidence and log-likelihood for an image, or why it could not be read; with
    `--fallback-model`, also which stage read it (`read_by`: "model" or "fallback"); for a tall image read turned as
    well, the degrees counter-clockwise it was turned for the reading kept (`rotation`: 0, 90 or 270)."""

    path: str
    text: str | None = None
    confidence: float | None = None
    log_likelihood: float | None = None
    error: str | None = None
    read_by: str | None = None
    rotation: int | None = None


def run_recognize(args: argparse.Namespace) -> int:
    paths = collect_image_paths(args.inputs, recursive=args.recursive)
    if not paths:
        raise CommandError("no images to recognise (folders are searched for " + ", ".join(IMAGE_EXTENSIONS) + ")")
    if args.lexicon is not None:
        # Read before the model loads, so an unreadable or empty lexicon is a quick usage error naming the file.
        try:
            read_word_list_file(args.lexicon)
        except ValueError as error:
            raise CommandError(str(error)) from error
    if args.language_model is not None and args.lexicon is not None:
        raise CommandError("--language-model and --lexicon are two different decodings; pass one of them")
    if args.fast and args.device == "cuda":
        raise CommandError("--fast optimizes for the CPU; it cannot be combined with --device cuda")
    if args.fallback_model is not None and args.beam_width is not None and args.language_model is None:
        raise CommandError("--beam-width with --fallback-model sets the beam of the fallback's --language-model search")
    device = "cpu" if args.fast else args.device
    with _transformers_progress_bars(enabled=sys.stderr.isatty()):
        recognizer = load_recognizer(args.model, device)
        fallback = load_recognizer(args.fallback_model, device) if args.fallback_model is not None else None
    language_model = None
    if args.language_model is not None:
        # Built once here, so a missing file or a checkpoint without one is a usage error, not a failure per image.
        # In a cascade it is the fallback's ("checkpoint": the fallback checkpoint's own).
        try:
            option = language_model_option(args.language_model)
            language_model = (fallback or recognizer).processor.resolve_language_model(option)
        except ValueError as error:
            raise CommandError(f"--language-model {args.language_model}: {error}") from error
    if args.fast:
        for stage in (recognizer, fallback):
            if stage is not None:
                optimize_recognizer(stage, paths)
    beam_width = args.beam_width
    if fallback is not None:
        fallback_options = None
        if language_model is not None:
            beam_width = beam_width or DEFAULT_FALLBACK_BEAM_WIDTH
            fallback_options = {"language_model": language_model, "beam_width": beam_width}
        recognizer.set_fallback(fallback, args.fallback_threshold, fallback_options, args.fallback_word_threshold)
        language_model = beam_width = None  # the first stage reads greedily
    # Only options the user set are passed, so the pipeline's own defaults apply otherwise.
    decoding_options = {}
    if args.lexicon is not None:
        decoding_options["lexicon"] = args.lexicon
    if beam_width is not None:
        decoding_options["beam_width"] = beam_width
    if language_model is not None:
        decoding_options["language_model"] = language_model
    if not args.rotate_tall:
        decoding_options["rotate_tall"] = False

    show_progress = sys.stderr.isatty() and len(paths) >= PROGRESS_BAR_MIN_IMAGES
    failures = 0
    with tqdm(total=len(paths), unit="img", file=sys.stderr, disable=not show_progress) as progress:
        # Print through tqdm so result and error lines do not tear the progress bar.
        writer = make_writer(args.format, lambda line: tqdm.write(line, file=sys.stdout))
        try:
            for result in recognize_images(recognizer, paths, args.batch_size, decoding_options):
                if result.error is not None:
                    failures += 1
                    tqdm.write(f"{PROG}: error: {result.path}: {result.error}", file=sys.stderr)
                writer.write(result)
                progress.update(1)
        finally:
            writer.close()  # even when recognition stops the run, json output stays a valid document
    if failures:
        tqdm.write(f"{PROG}: {failures} of {len(paths)} image(s) failed", file=sys.stderr)
    return EXIT_FAILURE if failures and args.strict else EXIT_OK


@contextlib.contextmanager
def _transformers_progress_bars(enabled: bool):
    """Turns transformers' "Loading weights" bars off in logs and pipes, where they are only noise."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    if not enabled:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def collect_image_paths(inputs: Sequence[str], recursive: bool = False) -> list[str]:
    """
    Expands folders to the image files in them (by extension, sorted; sub-folders too when `recursive`). Other
    arguments are kept as given, even without an image extension or when missing: reading them reports the error.
    """
    paths = []
    for item in inputs:
        if not os.path.isdir(item):
            paths.append(item)
            continue
        pattern = "**/*" if recursive else "*"
        found = sorted(
            str(path) for path in Path(item).glob(pattern) if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
        )
        if not found:
            print(f"{PROG}: warning: no image files in {item}", file=sys.stderr)
        paths.extend(found)
    return paths


def optimize_recognizer(recognizer, paths: Sequence[str], max_images: int = FAST_CALIBRATION_IMAGES) -> None:
    """`--fast`: `optimize_for_cpu(model, "auto")` calibrated on the first `max_images` readable input images; prints
    the choice and why on stderr."""
    num_channels = recognizer.processor.image_processor.num_channels
    images = []
    for path in paths:
        if len(images) == max_images:
            break
        try:
            images.append(load_image(path, num_channels))
        except ValueError:
            continue  # reported when the images are read
    if not images:
        print(f"{PROG}: --fast: no readable image to calibrate on; running the model as it is", file=sys.stderr)
        return
    report = recognizer.optimize_for_cpu("auto", calibration_data=images)
    print(f"{PROG}: --fast: {report.summary()}", file=sys.stderr)


def load_recognizer(model: str, device: str | None):
    """The `text-recognition` pipeline of hf_crnn (registered by importing the package) for a folder or Hub repo."""
    if device == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda was requested but torch sees no CUDA device")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        # Damaged files are named in one line; a mistyped folder fails here instead of trying the Hub.
        check_local_checkpoint(model, MODEL_FILES + PROCESSOR_FILES, bare_names_are_paths=True)
        return pipeline("text-recognition", model=model, device=device)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot load the model {model!r}: {error}") from error


def recognize_images(
    recognizer, paths: Sequence[str], batch_size: int, decoding_options: dict
) -> Iterator[Recognition]:
    """
    Yields one [`Recognition`] per path, in order. Images that cannot be read become error rows. A pipeline failure
    is retried image by image so one bad input does not take its neighbours down; a failure that hits every image
    of a call is a problem with the model or the options, not with the images, and stops the run.
    """
    num_channels = recognizer.processor.image_processor.num_channels
    for start in range(0, len(paths), IMAGES_PER_CALL):
        chunk = paths[start : start + IMAGES_PER_CALL]
        results = [Recognition(path) for path in chunk]
        images = {}  # index in chunk -> image
        for index, path in enumerate(chunk):
            try:
                images[index] = load_image(path, num_channels)
            except ValueError as error:
                results[index].error = str(error)
        for index, output in _recognize_loaded(recognizer, images, batch_size, decoding_options).items():
            if isinstance(output, Exception):
                results[index].error = f"recognition failed: {output}"
            else:
                result = results[index]
                result.text, result.confidence = output["generated_text"], output["confidence"]
                result.log_likelihood, result.read_by = output.get("log_likelihood"), output.get("read_by")
                result.rotation = output.get("rotation")
        yield from results


def _recognize_loaded(recognizer, images: dict, batch_size: int, decoding_options: dict) -> dict:
    """`{index: best result dict or the exception it raised}` for the loaded images."""
    if not images:
        return {}
    indices = list(images)
    try:
        outputs = recognizer([images[i] for i in indices], batch_size=batch_size, **decoding_options)
        return {index: output[0] for index, output in zip(indices, outputs, strict=True)}
    except Exception as batch_error:  # attributed to single images below, or re-raised as fatal
        outcomes = {}
        for index in indices:
            try:
                outcomes[index] = recognizer([images[index]], batch_size=1, **decoding_options)[0][0]
            except Exception as error:  # reported for this image
                outcomes[index] = error
        if all(isinstance(outcome, Exception) for outcome in outcomes.values()):
            raise CommandError(f"recognition failed: {batch_error}", EXIT_FAILURE) from batch_error
        return outcomes


class ResultWriter:
    """Streams results to `emit` (one call per output line) as they come, so long runs show output early."""

    def __init__(self, emit: Callable[[str], None]):
        self.emit = emit

    def write(self, result: Recognition) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TextWriter(ResultWriter):
    """`path<TAB>text<TAB>confidence` (`<TAB>read_by` in a cascade); unreadable images appear on stderr only."""

    def write(self, result: Recognition) -> None:
        if result.error is None:
            stage = f"\t{result.read_by}" if result.read_by is not None else ""
            self.emit(f"{result.path}\t{result.text}\t{result.confidence:.4f}{stage}")


class TsvWriter(ResultWriter):
    """Tab-separated with a header: path, text, confidence, log_likelihood, error, read_by, rotation (empty where
    not applicable)."""

    def __init__(self, emit: Callable[[str], None]):
        super().__init__(emit)
        self.emit(self._row(["path", "text", "confidence", "log_likelihood", "error", "read_by", "rotation"]))

    def write(self, result: Recognition) -> None:
        numbers = [("" if value is None else f"{value:.6g}") for value in (result.confidence, result.log_likelihood)]
        rotation = "" if result.rotation is None else str(result.rotation)
        self.emit(
            self._row([result.path, result.text or "", *numbers, result.error or "", result.read_by or "", rotation])
        )

    @staticmethod
    def _row(fields: list[str]) -> str:
        # csv quotes fields that hold tabs, quotes or newlines, so any text or path survives a round trip.
        line = _LineBuffer()
        csv.writer(line, delimiter="\t", lineterminator="").writerow(fields)
        return line.value


class JsonWriter(ResultWriter):
    """One JSON array of `{"path", "text", "confidence", "log_likelihood", "error", "read_by", "rotation"}` objects,
    one object per line."""

    def __init__(self, emit: Callable[[str], None]):
        super().__init__(emit)
        self.emit("[")
        # Each object is emitted when the next one arrives, since only then is it known to need a comma.
        self.pending: str | None = None

    def write(self, result: Recognition) -> None:
        if self.pending is not None:
            self.emit(f"  {self.pending},")
        self.pending = json.dumps(dataclasses.asdict(result), ensure_ascii=False)

    def close(self) -> None:
        if self.pending is not None:
            self.emit(f"  {self.pending}")
            self.pending = None
        self.emit("]")


class _LineBuffer:
    """The minimal file object `csv.writer` needs, collecting one row."""

    def __init__(self):
        self.value = ""

    def write(self, text: str) -> None:
        self.value += text


WRITERS: dict[str, type[ResultWriter]] = {"text": TextWriter, "json": JsonWriter, "tsv": TsvWriter}


def make_writer(output_format: str, emit: Callable[[str], None]) -> ResultWriter:
    return WRITERS[output_format](emit)


# ---- export-onnx -------------------------------------------------------------------------------------------------


def run_export_onnx(args: argparse.Namespace) -> int:
    try:
        check_local_checkpoint(args.model, MODEL_FILES, bare_names_are_paths=True)
        with _transformers_progress_bars(enabled=sys.stderr.isatty()):
            model = CRNNForTextRecognition.from_pretrained(args.model)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot load the model {args.model!r}: {error}") from error
    try:
        result = export_onnx(model, args.output, opset_version=args.opset, validate=not args.no_validate)
    except (ImportError, ValueError, OSError) as error:  # onnx missing, output is a folder, disk full, ...
        raise CommandError(f"cannot export to {args.output}: {error}") from error
    except ONNXValidationError as error:
        message = f"the exported graph failed validation, nothing was written: {error}"
        raise CommandError(message, EXIT_FAILURE) from error
    if result.max_abs_logit_difference is None:
        check = "not validated"
    else:
        check = (
            f"validated with onnxruntime: max |ONNX - PyTorch| logit {result.max_abs_logit_difference:.2e} "
            f"<= {PARITY_TOLERANCE:g}"
        )
    print(f"wrote {result.path} (opset {result.opset_version}; {check})")
    return EXIT_OK


# ---- export --format ---------------------------------------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    """`hf-crnn export --format easyocr`: `conversion/export_easyocr.py`'s `export_easyocr`."""
    exporter = _import_converter(EXPORTERS[args.format])
    name, lang_list = args.name or exporter.DEFAULT_NAME, args.lang_list or exporter.DEFAULT_LANG_LIST
    try:
        output = exporter.export_easyocr(
            args.model, args.output_dir, name=name, lang_list=lang_list, overwrite=args.overwrite
        )
    except (OSError, ValueError) as error:  # not EasyOCR's layout, model not found, output folder not empty, ...
        raise CommandError(f"cannot export {args.model!r} as {args.format}: {error}") from error
    print(f"wrote {output / name}.pth, {name}.yaml and {name}.py (EasyOCR recog_network={name!r})")
    return EXIT_OK


# ---- forwarding commands -----------------------------------------------------------------------------------------


def run_evaluate(argv: list[str]) -> int:
    """`hf-crnn evaluate ARGS`: `hf_crnn.evaluation.main(ARGS)`."""
    try:
        evaluation = importlib.import_module(EVALUATION_MODULE)
    except ModuleNotFoundError as error:
        if error.name not in (EVALUATION_MODULE, "hf_crnn"):
            raise  # the module exists but one of its dependencies is missing: that traceback is the useful message
        raise CommandError(
            f"`{PROG} evaluate` needs the evaluation module {EVALUATION_MODULE}, which this installation of hf_crnn "
            "does not include yet."
        ) from error
    return _call_main(evaluation, argv, f"{PROG} evaluate")


def run_convert(argv: list[str]) -> int:
    """`hf-crnn convert --source NAME ARGS`: `conversion/convert_<name>.py`'s `main(ARGS)`."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} convert",
        description="Converts original CRNN weights to a Hugging Face checkpoint. Arguments after --source go to "
        "the converter; `--source NAME --help` shows them.",
        add_help=False,
        allow_abbrev=False,  # never let a converter's option (say --source-path) be taken for --source
    )
    parser.add_argument(
        "--source", choices=sorted(CONVERTERS), help="which original implementation the weights come from"
    )
    parser.add_argument("-h", "--help", action="store_true", help="this help; with --source, the converter's help")
    args, converter_argv = parser.parse_known_args(argv)
    if args.source is None:
        if args.help:
            parser.print_help()
            return EXIT_OK
        parser.print_usage(sys.stderr)
        raise CommandError(f"convert needs --source, one of: {', '.join(sorted(CONVERTERS))}")
    if args.help:
        converter_argv.append("--help")  # the converter's own help lists its arguments
    converter = _import_converter(CONVERTERS[args.source])
    return _call_main(converter, converter_argv, f"{PROG} convert --source {args.source}")


def _import_converter(name: str):
    """`conversion.<name>`: importable when the repository root is on the path, else from this checkout's root."""
    module_name = f"{CONVERSION_PACKAGE}.{name}"
    path = REPO_ROOT / CONVERSION_PACKAGE / f"{name}.py"
    if path.is_file() and str(REPO_ROOT) not in sys.path:
        # The converters import their siblings as `conversion.*` too, so the root goes on the path, not just the file.
        sys.path.insert(0, str(REPO_ROOT))
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in (CONVERSION_PACKAGE, module_name):
            raise  # the converter exists but needs a package that is not installed
    raise CommandError(
        f"the converter {CONVERSION_PACKAGE}/{name}.py is not available: it ships with the hf-crnn source "
        f"checkout (looked for {path}); run `{PROG} convert` from a checkout that has it."
    )


def _call_main(module, argv: list[str], command: str) -> int:
    """Calls `module.main(argv)`; its return value or `SystemExit` code becomes the exit code."""
    entry_point = getattr(module, "main", None)
    if not callable(entry_point):
        raise CommandError(f"`{command}` forwards to {module.__name__}.main, which does not exist")
    try:
        code = entry_point(argv)
    except SystemExit as exit_request:  # argparse in the target exits for --help and for bad arguments
        code = exit_request.code
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # `sys.exit("message")` semantics
    return EXIT_FAILURE


FORWARDING_COMMANDS: dict[str, Callable[[list[str]], int]] = {"evaluate": run_evaluate, "convert": run_convert}


if __name__ == "__main__":
    sys.exit(main())
