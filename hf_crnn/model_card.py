# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Model cards (README.md) for CRNN checkpoints.

The card holds the Hub metadata (YAML front matter: library, pipeline tag, tags, license, datasets, metrics and a
`model-index` for evaluation results) and a body generated from the checkpoint itself: an architecture summary read
from the config, how the model was trained, how to use it with and without hf_crnn installed, an evaluation table
and the paper's citation.

Example:

```python
>>> from hf_crnn.model_card import write_model_card
>>> write_model_card(
...     "checkpoints/crnn-synth",
...     model,
...     processor,
...     repo_id="me/crnn-synth",
...     training={"data": "hf_crnn synthetic words", "steps": 20000, "optimizer": "Adadelta (lr 1.0)"},
...     eval_results=[{"dataset_name": "IIIT5K", "metric_type": "accuracy", "metric_value": 0.782}],
... )
```

This module is part of the hf_crnn package only; it is not shipped with checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .configuration_crnn import CRNNConfig

MODEL_CARD_NAME = "README.md"
CARD_TAGS = ["ocr", "scene-text-recognition", "crnn", "ctc"]
PIPELINE_TAG = "image-to-text"
TASK_NAME = "Scene Text Recognition"
DEFAULT_REPO_PLACEHOLDER = "path/or/repo-id"

PAPER_TITLE = (
    "An End-to-End Trainable Neural Network for Image-based Sequence Recognition and Its Application to Scene Text "
    "Recognition"
)
PAPER_URL = "https://arxiv.org/abs/1507.05717"
CITATION_BIBTEX = """\
@article{shi2017crnn,
  title         = {An End-to-End Trainable Neural Network for Image-based Sequence Recognition and Its Application to Scene Text Recognition},
  author        = {Shi, Baoguang and Bai, Xiang and Yao, Cong},
  journal       = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume        = {39},
  number        = {11},
  pages         = {2298--2304},
  year          = {2017},
  doi           = {10.1109/TPAMI.2016.2646371},
  eprint        = {1507.05717},
  archivePrefix = {arXiv}
}"""

EvalResultLike = EvalResult | Mapping[str, Any]


def create_model_card(
    model_or_config,
    processor=None,
    *,
    repo_id: str | None = None,
    model_name: str | None = None,
    license: str = "apache-2.0",
    description: str | None = None,
    training: str | Mapping[str, Any] | None = None,
    datasets: str | Sequence[str] | None = None,
    eval_results: Iterable[EvalResultLike] | None = None,
    base_model: str | None = None,
    language: str | Sequence[str] | None = "en",
    tags: Sequence[str] | None = None,
) -> ModelCard:
    """
    Builds the model card of a CRNN checkpoint.

    Args:
        model_or_config ([`CRNNForTextRecognition`], [`CRNNModel`] or [`CRNNConfig`]):
            The model (its parameters are counted) or just its config (the model is then built on the `meta` device
            to count them, which allocates no memory).
        processor ([`CRNNProcessor`], *optional*):
            Adds the character set and the image preprocessing (resize mode, width) to the card.
        repo_id (`str`, *optional*):
            Where the checkpoint lives (Hub id or path); used in the usage snippets. Defaults to a placeholder.
        model_name (`str`, *optional*):
            Title of the card and name of the `model-index` entry. Defaults to the last part of `repo_id`, else
            "CRNN".
        license (`str`, *optional*, defaults to `"apache-2.0"`): Hub license identifier of the weights.
        description (`str`, *optional*): A paragraph placed under the title.
        training (`str` or `dict`, *optional*):
            How the model was trained: free Markdown text, or a mapping rendered as a list (e.g. `{"data": ...,
            "steps": ..., "optimizer": ...}`).
        datasets (`str` or `list[str]`, *optional*): Hub ids of the training datasets (front matter `datasets`).
        eval_results (list of `huggingface_hub.EvalResult` or of dicts with its fields, *optional*):
            Evaluation numbers. A dict needs `dataset_name`, `metric_type` and `metric_value`; `dataset_type`
            defaults to the lowercased dataset name, `task_type` to `"image-to-text"` and `task_name` to
            "Scene Text Recognition". They fill the `model-index`, the front matter `metrics` and a Markdown table.
        base_model (`str`, *optional*): Hub id of the checkpoint this one was fine-tuned from.
        language (`str` or `list[str]`, *optional*, defaults to `"en"`): Language(s) of the recognised text.
        tags (`list[str]`, *optional*): Extra Hub tags, added to `ocr`, `scene-text-recognition`, `crnn`, `ctc`.

    Returns:
        `huggingface_hub.ModelCard`: `str(card)` is the README.md content; `card.data` the front matter.
    """
    config = _config_of(model_or_config)
    num_parameters = _count_parameters(model_or_config, config)
    results = [_as_eval_result(result) for result in eval_results or ()]
    model_name = model_name or (repo_id.rstrip("/").split("/")[-1] if repo_id else "CRNN")

    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=CARD_TAGS + [tag for tag in tags or () if tag not in CARD_TAGS],
        license=license,
        language=language,
        datasets=[datasets] if isinstance(datasets, str) else list(datasets) if datasets else None,
        base_model=base_model,
        metrics=_unique(result.metric_type for result in results) or None,
        model_name=model_name if results else None,
        eval_results=results or None,
    )
    sections = [
        f"# {model_name}",
        description,
        _overview_section(),
        _architecture_section(config, num_parameters, processor),
        _training_section(training),
        _usage_section(repo_id or DEFAULT_REPO_PLACEHOLDER, _ships_language_model(processor)),
        _evaluation_section(results),
        _citation_section(),
    ]
    body = "\n\n".join(section.strip() for section in sections if section)
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}\n")


def write_model_card(save_directory: str | os.PathLike, model_or_config, processor=None, **card_kwargs) -> Path:
    """
    Writes the card of [`create_model_card`] to `save_directory/README.md` (replacing an existing one).

    Returns:
        `Path` of the written README.md.
    """
    card = create_model_card(model_or_config, processor, **card_kwargs)
    path = Path(save_directory) / MODEL_CARD_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    # ModelCard.save writes text mode, which would turn "\n" into "\r\n" on Windows; the Hub expects "\n".
    path.write_text(str(card), encoding="utf-8", newline="\n")
    return path


# ---- inputs ------------------------------------------------------------------------------------------------------


def _config_of(model_or_config) -> CRNNConfig:
    config = model_or_config if isinstance(model_or_config, CRNNConfig) else getattr(model_or_config, "config", None)
    if not isinstance(config, CRNNConfig):
        raise TypeError(
            f"Expected a CRNN model or CRNNConfig, got {type(model_or_config).__name__}: the card is generated from "
            "the CRNN config."
        )
    return config


def _count_parameters(model_or_config, config: CRNNConfig) -> int:
    if not isinstance(model_or_config, CRNNConfig):
        return sum(parameter.numel() for parameter in model_or_config.parameters())
    import torch

    from .modeling_crnn import CRNNForTextRecognition

    # Shapes only: the meta device allocates nothing, so this is cheap even for the full-size network.
    with torch.device("meta"):
        model = CRNNForTextRecognition(config)
    return sum(parameter.numel() for parameter in model.parameters())


def _as_eval_result(result: EvalResultLike) -> EvalResult:
    if isinstance(result, EvalResult):
        return result
    fields = dict(result)
    missing = [key for key in ("dataset_name", "metric_type", "metric_value") if key not in fields]
    if missing:
        raise ValueError(f"Evaluation result {fields} lacks {', '.join(missing)}.")
    fields.setdefault("dataset_type", str(fields["dataset_name"]).lower())
    fields.setdefault("task_type", PIPELINE_TAG)
    fields.setdefault("task_name", TASK_NAME)
    return EvalResult(**fields)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# ---- sections ----------------------------------------------------------------------------------------------------


def _overview_section() -> str:
    return (
        "A **CRNN** scene-text recognizer (convolutional recurrent neural network, Shi, Bai & Yao, "
        f"[*{PAPER_TITLE}*]({PAPER_URL})): a VGG-style CNN turns a text-line image into a sequence of feature "
        "columns, a stack of bidirectional LSTMs reads them, and a per-frame classifier trained with CTC emits the "
        "characters. It reads one cropped word or text line per image; it does not detect text in scenes."
    )


def _architecture_section(config: CRNNConfig, num_parameters: int, processor) -> str:
    colour = {1: "grayscale", 3: "RGB"}[config.num_channels]
    channels = f"{config.num_channels} channel{'s' if config.num_channels > 1 else ''}"
    conv_channels = " → ".join(map(str, config.conv_dim))
    batch_norm_layers = ", ".join(str(i + 1) for i, has_norm in enumerate(config.conv_batch_norm) if has_norm)
    cnn = (
        f"{len(config.conv_dim)} convolutions, channels {conv_channels}, {config.hidden_act}, batch norm after "
        f"layer(s) {batch_norm_layers or 'none'}; remaining height pooling: {config.height_pooling}"
    )
    sequence_model = (
        f"{config.num_hidden_layers} bidirectional LSTM layer(s), {config.hidden_size} units per direction, "
        f"{config.output_hidden_size}-dim frame features"
    )
    rows = [
        ("Parameters", f"{_human_count(num_parameters)} ({num_parameters:,})"),
        ("Input", f"{colour} ({channels}), {config.image_height} pixels high, variable width"),
        ("CNN", cnn),
        ("Sequence model", sequence_model),
        ("Output", f"{config.vocab_size} classes per frame (CTC blank = id {config.blank_token_id})"),
    ]
    if processor is not None:
        rows.extend(_processor_rows(processor))
    table = _markdown_table(["Property", "Value"], rows)
    return f"## Model\n\n{table}"


def _processor_rows(processor) -> list[tuple[str, str]]:
    rows = []
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None:
        resize_mode = getattr(image_processor, "resize_mode", None)
        if resize_mode == "fixed":
            resize = f"resized to {image_processor.image_height} x {image_processor.fixed_width} pixels"
        else:
            resize = f"resized to height {image_processor.image_height}, aspect ratio kept"
        rows.append(("Preprocessing", resize))
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        special = {getattr(tokenizer, "blank_token", None), getattr(tokenizer, "unk_token", None)}
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        characters = "".join(token for token, _ in vocab if token not in special)
        case = " (input lowercased)" if getattr(tokenizer, "do_lower_case", False) else ""
        rows.append(("Characters", f"{len(characters)}{case}: `{_escape_code(characters)}`"))
    return rows


def _training_section(training: str | Mapping[str, Any] | None) -> str | None:
    if not training:
        return None
    if isinstance(training, Mapping):
        details = "\n".join(f"- **{key}**: {value}" for key, value in training.items())
    else:
        details = str(training)
    return f"## Training\n\n{details}"


def _ships_language_model(processor) -> bool:
    return bool(getattr(processor, "has_language_model", False))


def _usage_section(repo: str, language_model: bool = False) -> str:
    fused = (
        '\nrecognizer("word.png", language_model=True)  # beam search with the shipped character language model'
        if language_model
        else ""
    )
    return f"""## How to use

With only `transformers` installed, the checkpoint's own code is used (`trust_remote_code=True`):

```python
from transformers import pipeline

recognizer = pipeline("image-to-text", model="{repo}", trust_remote_code=True)
recognizer("word.png")
# [{{'generated_text': '...', 'confidence': ..., 'log_likelihood': ..., 'score': ...}}]{fused}
```

With the `hf_crnn` package installed, the `text-recognition` task runs the installed code instead:

```python
import hf_crnn  # registers CRNN with the Auto classes and the "text-recognition" task
from transformers import pipeline

recognizer = pipeline("text-recognition", model="{repo}")
recognizer(["word1.png", "word2.png"], batch_size=16)
```

or from the command line:

```bash
hf-crnn recognize crops/ --model {repo} --format tsv
```

Lower level:

```python
from transformers import AutoModelForTextRecognition, AutoProcessor

processor = AutoProcessor.from_pretrained("{repo}", trust_remote_code=True)
model = AutoModelForTextRecognition.from_pretrained("{repo}", trust_remote_code=True)
inputs = processor(images=["word.png"], return_tensors="pt")
outputs = model(**inputs)
processor.batch_decode(outputs)  # uses outputs.frame_lengths: padding frames are not decoded
```"""


def _evaluation_section(results: list[EvalResult]) -> str | None:
    if not results:
        return None
    metrics = _unique(result.metric_name or result.metric_type for result in results)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for result in results:
        row = rows.setdefault((result.dataset_name, result.dataset_split or ""), {})
        row[result.metric_name or result.metric_type] = result.metric_value
    with_split = any(split for _, split in rows)  # no empty column when no result names a split
    table = _markdown_table(
        ["Dataset", *(["Split"] if with_split else []), *metrics],
        [
            (dataset, *([split] if with_split else []), *(_format_value(row.get(metric)) for metric in metrics))
            for (dataset, split), row in rows.items()
        ],
    )
    return f"## Evaluation\n\n{table}"


def _citation_section() -> str:
    return f"## Citation\n\n```bibtex\n{CITATION_BIBTEX}\n```"


# ---- formatting --------------------------------------------------------------------------------------------------


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_escape_cell(str(cell)) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _escape_code(text: str) -> str:
    # A backtick would end the inline code span.
    return text.replace("`", "'")


def _format_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _human_count(count: int) -> str:
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= threshold:
            return f"{count / threshold:.2f}{suffix}"
    return str(count)


__all__ = ["CITATION_BIBTEX", "create_model_card", "write_model_card"]
