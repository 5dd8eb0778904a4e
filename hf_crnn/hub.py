# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Publishing a CRNN checkpoint (model + processor + model card) to the Hugging Face Hub in one commit.

`model.push_to_hub` and `processor.push_to_hub` each make their own commit, so a reader can briefly see a repo with
new weights and an old processor, and neither writes a model card. [`push_checkpoint_to_hub`] saves everything into
one folder first, checks that the folder is self-contained (loadable with `trust_remote_code=True` without hf_crnn),
and uploads it as a single commit, which the Hub applies atomically.

This module is part of the hf_crnn package only; it is not shipped with checkpoints.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi

from .model_card import MODEL_CARD_NAME, write_model_card

DEFAULT_COMMIT_MESSAGE = "Upload CRNN checkpoint"
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")


def save_checkpoint(
    model, processor, save_directory: str | os.PathLike, *, repo_id: str | None = None, **model_card_kwargs
) -> list[str]:
    """
    Saves everything a shared checkpoint needs into `save_directory`: the model (safetensors weights, config with
    `auto_map` and `custom_pipelines`, and the code files), the processor (tokenizer, image processor and whatever
    else it saves, such as a default lexicon) and a model card (README.md).

    Args:
        model ([`CRNNForTextRecognition`]): The model to save.
        processor ([`CRNNProcessor`]): Its processor.
        save_directory (`str` or `os.PathLike`): Target folder (created if needed).
        repo_id (`str`, *optional*): Where the checkpoint will live, for the model card's usage snippets.
        **model_card_kwargs: Passed to [`~hf_crnn.model_card.create_model_card`] (`training`, `eval_results`,
            `datasets`, `license`, `description`, `tags`, ...).

    Returns:
        `list[str]`: The saved files, as sorted POSIX paths relative to `save_directory`.

    Raises:
        ValueError: if the saved folder would not load on its own (no weights, no `auto_map`, a code file missing).
    """
    save_directory = Path(save_directory)
    model.save_pretrained(save_directory)
    processor.save_pretrained(save_directory)
    write_model_card(save_directory, model, processor, repo_id=repo_id, **model_card_kwargs)
    files = sorted(path.relative_to(save_directory).as_posix() for path in save_directory.rglob("*") if path.is_file())
    check_self_contained(save_directory, files)
    return files


def push_checkpoint_to_hub(
    model,
    processor,
    repo_id: str,
    *,
    private: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    commit_description: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    token: str | bool | None = None,
    endpoint: str | None = None,
    **model_card_kwargs,
) -> CommitInfo:
    """
    Pushes a model, its processor and a generated model card to a Hub repo as one commit.

    Everything is saved into a temporary folder with [`save_checkpoint`] and checked; then the repo is created if
    needed (an existing repo keeps its visibility) and the folder is uploaded with a single `HfApi.create_commit`.
    The Hub applies a commit atomically, so readers see either the previous checkpoint or the complete new one.
    (`HfApi.upload_folder` is not used on purpose: with `hf_xet` installed it streams a folder as several commits when
    it is large or a commit fails.) Files already in the repo that the checkpoint does not rewrite are kept; unchanged
    files are skipped by the Hub client.

    Args:
        model ([`CRNNForTextRecognition`]): The model to push.
        processor ([`CRNNProcessor`]): Its processor.
        repo_id (`str`): `namespace/name`, or `name` for the token owner's namespace.
        private (`bool`, *optional*, defaults to `False`): Visibility of the repo if it is created.
        commit_message (`str`, *optional*): Commit title.
        commit_description (`str`, *optional*): Commit description.
        revision (`str`, *optional*): Branch to commit to (default: `main`).
        create_pr (`bool`, *optional*, defaults to `False`): Open a pull request instead of committing to the branch.
        token (`str` or `bool`, *optional*): Hub token (default: the locally saved one or `HF_TOKEN`).
        endpoint (`str`, *optional*): Hub URL (default: `HF_ENDPOINT` or https://huggingface.co).
        **model_card_kwargs: Passed to [`~hf_crnn.model_card.create_model_card`] (`training`, `eval_results`,
            `datasets`, `license`, `description`, `tags`, ...).

    Returns:
        `huggingface_hub.CommitInfo` of the commit (`.oid`, `.commit_url`, `.pr_url`, `.repo_url`).

    Example:

    ```python
    >>> from hf_crnn.hub import push_checkpoint_to_hub
    >>> push_checkpoint_to_hub(
    ...     model, processor, "me/crnn-synth",
    ...     training="20k steps of Adadelta on hf_crnn synthetic words.",
    ...     eval_results=[{"dataset_name": "IIIT5K", "metric_type": "accuracy", "metric_value": 0.78}],
    ... )
    ```
    """
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="hf-crnn-push-") as folder:
        # Saved and checked before anything reaches the Hub, so a broken checkpoint does not even create the repo.
        files = save_checkpoint(model, processor, folder, repo_id=repo_id, **model_card_kwargs)
        created_repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if created_repo_id != repo_id:  # the Hub put a bare name in the token owner's namespace: fix the card
            repo_id = created_repo_id
            write_model_card(folder, model, processor, repo_id=repo_id, **model_card_kwargs)
        operations = [
            CommitOperationAdd(path_in_repo=name, path_or_fileobj=os.path.join(folder, name)) for name in files
        ]
        return api.create_commit(
            repo_id,
            operations=operations,
            commit_message=commit_message,
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
        )


def check_self_contained(folder: str | os.PathLike, files: list[str] | None = None) -> None:
    """
    Checks that a saved checkpoint folder can be loaded with `trust_remote_code=True` by someone without hf_crnn:
    weights and a model card are present, the config maps the Auto classes and the "image-to-text" pipeline to
    code, and every module that an `auto_map` (of the config, processor or tokenizer) or the pipeline names is there.

    Raises:
        ValueError: naming everything that is missing.
    """
    folder = Path(folder)
    files = set(
        files if files is not None else (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    )
    problems = []
    if not files.intersection(WEIGHTS_FILES):
        problems.append(f"no weights ({' or '.join(WEIGHTS_FILES)})")
    if MODEL_CARD_NAME not in files:
        problems.append(f"no model card ({MODEL_CARD_NAME})")

    config = _read_json(folder / "config.json") if "config.json" in files else None
    if config is None:
        problems.append("no readable config.json")
    else:
        if "AutoConfig" not in config.get("auto_map", {}):
            problems.append("config.json has no `auto_map` for AutoConfig")
        if "image-to-text" not in config.get("custom_pipelines", {}):
            problems.append('config.json has no "image-to-text" entry in `custom_pipelines`')

    referenced_modules = set()
    for config_file in ("config.json", "processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
        if config_file in files:
            referenced_modules |= _modules_named_in(_read_json(folder / config_file) or {})
    problems.extend(
        f"code file {module}.py is referenced but missing"
        for module in sorted(referenced_modules)
        if f"{module}.py" not in files
    )
    if problems:
        raise ValueError(f"The checkpoint saved in {folder} is not self-contained: " + "; ".join(problems) + ".")


def _modules_named_in(config: dict) -> set[str]:
    """Module names of the `module.Class` references in `auto_map`s (nested ones included) and custom pipelines."""
    references: list[str] = []

    def collect_auto_maps(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "auto_map" and isinstance(value, dict):
                    for entry in value.values():
                        # Tokenizers map to a [slow, fast] pair, either of which may be null.
                        references.extend(e for e in (entry if isinstance(entry, list) else [entry]) if e)
                else:
                    collect_auto_maps(value)

    collect_auto_maps(config)
    references.extend(task["impl"] for task in config.get("custom_pipelines", {}).values() if "impl" in task)
    # A reference may name another repo ("user/repo--module.Class"); only local modules must be in the folder.
    return {reference.rsplit(".", 1)[0] for reference in references if "--" not in reference}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


__all__ = ["check_self_contained", "push_checkpoint_to_hub", "save_checkpoint"]
