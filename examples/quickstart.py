"""The README's main job: read a few rendered words with a CRNN through the transformers pipeline, no downloads.

Uses the shipped default checkpoint (`checkpoints/crnn-real-en`, trained on real scene-text crops) when present;
otherwise builds the paper's network with random weights, saves it as a self-contained checkpoint and shows the same
calls end to end (its output is then meaningless text: it has not been trained).

    python examples/quickstart.py [--model DIR] [--words hello world ...]
"""

import argparse
import os
import tempfile

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
from transformers import pipeline

import hf_crnn  # noqa: F401  (registers CRNN with the Auto classes and the "text-recognition" task)
from hf_crnn import CRNNConfig, CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer
from hf_crnn.metrics import normalize_text

DEFAULT_CHECKPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "checkpoints", "crnn-real-en")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"


def render(word: str, height: int = 48) -> PIL.Image.Image:
    font = PIL.ImageFont.truetype(FONT, int(height * 0.7)) if os.path.exists(FONT) else PIL.ImageFont.load_default(size=int(height * 0.7))
    left, top, right, bottom = font.getbbox(word)
    image = PIL.Image.new("RGB", (right - left + 16, height), (245, 240, 225))
    PIL.ImageDraw.Draw(image).text((8 - left, (height - (bottom - top)) // 2 - top), word, font=font, fill=(20, 20, 60))
    return image


def untrained_checkpoint(directory: str) -> str:
    model = CRNNForTextRecognition(CRNNConfig())
    processor = CRNNProcessor(CRNNImageProcessor(resize_mode="keep_aspect_ratio"), CRNNTokenizer(do_lower_case=True))
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the shipped checkpoint)")
    parser.add_argument("--words", nargs="+", default=["hugging", "face", "scene", "text", "2026", "recognition"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model_dir = args.model or (DEFAULT_CHECKPOINT if os.path.isdir(DEFAULT_CHECKPOINT) else None)
        if model_dir is None:
            print("No shipped checkpoint found: using the paper's network with RANDOM weights (untrained output).")
            model_dir = untrained_checkpoint(os.path.join(scratch, "crnn-untrained"))
        print(f"model: {os.path.abspath(model_dir)}")

        images = [render(word) for word in args.words]
        recognizer = pipeline("text-recognition", model=model_dir)
        results = recognizer(images, batch_size=len(images))
        # The same checkpoint through the stock task name, via the pipeline code shipped next to its weights.
        remote = pipeline("image-to-text", model=model_dir, trust_remote_code=True)
        remote_texts = [r[0]["generated_text"] for r in remote(images)]

        # A checkpoint that ships a character language model can also read with it (beam search; docs/decoding.md).
        has_language_model = recognizer.processor.language_model is not None
        fused = recognizer(images, batch_size=len(images), language_model=True) if has_language_model else results

        header = f"{'rendered word':<16}{'recognized':<16}{'confidence':>10}"
        print(header + ("  with its language model" if has_language_model else ""))
        for word, result, fused_result in zip(args.words, results, fused):
            with_language_model = fused_result[0]["generated_text"] if has_language_model else ""
            print(f"{word:<16}{result[0]['generated_text']:<16}{result[0]['confidence']:>10.3f}  {with_language_model}")
        # The benchmark protocol: case-insensitive, letters and digits only (a cased model may read "Face" for "face").
        correct = sum(normalize_text(word) == normalize_text(r[0]["generated_text"]) for word, r in zip(args.words, results))
        print(f"word accuracy: {correct}/{len(args.words)}; image-to-text pipeline agrees: "
              f"{remote_texts == [r[0]['generated_text'] for r in results]}")


if __name__ == "__main__":
    main()
