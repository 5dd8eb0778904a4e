# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""Sharing checkpoints: model cards, and a push -> download round trip through a real HTTP Hub server.

The round trip runs the real `huggingface_hub`/`transformers` clients in subprocesses whose `HF_ENDPOINT` points at
the server of `hub_server.py` (the endpoint is read at import time, so a subprocess is the faithful way to set it).
The loading subprocess cannot import hf_crnn: everything it runs comes from the pushed repo.
"""

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import huggingface_hub
import pytest
import torch
import yaml
from conftest import render_word, tiny_config
from hub_server import DEFAULT_USER, HubServer
from transformers import pipeline

from hf_crnn import CRNNForTextRecognition, CRNNImageProcessor, CRNNProcessor, CRNNTokenizer, CharNgramLanguageModel
from hf_crnn.hub import check_self_contained, push_checkpoint_to_hub, save_checkpoint
from hf_crnn.model_card import CITATION_BIBTEX, create_model_card, write_model_card

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_test_token"
REPO_ID = "test-org/crnn-tiny"
COMMIT_MESSAGE = "Add tiny CRNN"
WORDS = ("hello", "world", "crnn", "a", "transformers")
EVAL_RESULTS = [
    {"dataset_name": "IIIT5K", "dataset_split": "test", "metric_type": "accuracy", "metric_value": 0.25},
    {"dataset_name": "IIIT5K", "dataset_split": "test", "metric_type": "cer", "metric_value": 0.5},
    {"dataset_name": "SVT", "dataset_split": "test", "metric_type": "accuracy", "metric_value": 0.125},
]

# Runs with hf_crnn importable (PYTHONPATH = repo root): pushes the checkpoint twice, the second time with only the
# model card changed, and prints both commit ids.
PUSH_SCRIPT = """
import json, sys
from hf_crnn import CRNNForTextRecognition, CRNNProcessor
from hf_crnn.hub import push_checkpoint_to_hub

checkpoint, repo_id, commit_message, eval_results = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
model = CRNNForTextRecognition.from_pretrained(checkpoint)
processor = CRNNProcessor.from_pretrained(checkpoint)
first = push_checkpoint_to_hub(
    model, processor, repo_id, commit_message=commit_message, training="Random weights.", eval_results=eval_results,
    datasets=["test-org/synthetic-words"],
)
second = push_checkpoint_to_hub(model, processor, repo_id, commit_message="Update card", training="Still random.")
print(json.dumps({"first": first.oid, "second": second.oid, "repo_url": str(first.repo_url)}))
"""

# Runs where hf_crnn cannot be imported, in a fresh cache: loads the pushed repo through the Hub API only.
LOAD_SCRIPT = """
import sys
sys.modules["hf_crnn"] = None  # `import hf_crnn` now fails: all code must come from the pushed repo

import json
import torch
from transformers import AutoModelForTextRecognition, AutoProcessor, pipeline

repo_id, output_dir, images = sys.argv[1], sys.argv[2], sys.argv[3:]
model = AutoModelForTextRecognition.from_pretrained(repo_id, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True)
with torch.no_grad():
    logits = model(**processor(images=images, return_tensors="pt")).logits
torch.save(logits, f"{output_dir}/logits.pt")
recognizer = pipeline("image-to-text", model=repo_id, trust_remote_code=True)
report = {
    "pipeline_outputs": recognizer(images),
    "classes": {name: f"{type(obj).__module__}.{type(obj).__name__}" for name, obj in
                [("model", model), ("processor", processor), ("pipeline", recognizer)]},
}
with open(f"{output_dir}/report.json", "w") as file:
    json.dump(report, file)
"""


def hub_env(endpoint: str, hf_home: Path, pythonpath: str | None = None) -> dict:
    """Environment of a client subprocess: only our Hub, our token, a fresh cache, online, no Xet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        HF_ENDPOINT=endpoint,
        HF_TOKEN=TOKEN,
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="0",  # the test session runs offline; these clients must talk to the local server
        HF_HUB_DISABLE_XET="1",  # the test server speaks Git LFS, not Xet
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def run_python(script: str, args: list[str], env: dict, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=env,
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"subprocess failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# ---- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub():
    with HubServer(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = CRNNForTextRecognition(tiny_config()).eval()
    # With a default lexicon, which the pushed repo must carry for the remote pipeline to decode the same way.
    processor = CRNNProcessor(
        CRNNImageProcessor(resize_mode="keep_aspect_ratio"), CRNNTokenizer(do_lower_case=True), lexicon=list(WORDS)
    )
    path = tmp_path_factory.mktemp("checkpoint") / "crnn-tiny"
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for index, word in enumerate(WORDS):
        paths.append(str(folder / f"{index}-{word}.png"))
        render_word(word).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def pushed(hub, tiny_checkpoint, tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("push")
    env = hub_env(hub.url, workdir / "hf_home", pythonpath=str(REPO_ROOT))
    stdout = run_python(
        PUSH_SCRIPT, [str(tiny_checkpoint), REPO_ID, COMMIT_MESSAGE, json.dumps(EVAL_RESULTS)], env, workdir
    )
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def loaded(hub, pushed, image_paths, tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("load")
    run_python(LOAD_SCRIPT, [REPO_ID, str(workdir), *image_paths], hub_env(hub.url, workdir / "hf_home"), workdir)
    report = json.loads((workdir / "report.json").read_text())
    report["logits"] = torch.load(workdir / "logits.pt")
    return report


# ---- push ------------------------------------------------------------------------------------------------------


def test_push_uploads_the_whole_checkpoint_in_one_commit(hub, pushed, tiny_checkpoint):
    repo = hub.repo(REPO_ID)
    # Repo creation, our push, the card update: no intermediate states.
    assert [commit.title for commit in repo.commits] == ["initial commit", COMMIT_MESSAGE, "Update card"]
    assert [commit.oid for commit in repo.commits[1:]] == [pushed["first"], pushed["second"]]
    assert pushed["repo_url"].endswith(REPO_ID)

    files = repo.commits[1].files
    saved = {path.name for path in tiny_checkpoint.iterdir() if path.is_file()}
    assert set(files) == saved | {"README.md", ".gitattributes"}
    code_and_configs = {"config.json", "modeling_crnn.py", "pipeline_crnn.py", "processor_config.json"}
    assert {"model.safetensors", "lexicon.txt", *code_and_configs} <= saved
    # The push re-saves a loaded model and processor: weights and code must come out byte for byte.
    for name in saved:
        if name.endswith((".py", ".safetensors")):
            assert files[name].content == (tiny_checkpoint / name).read_bytes(), name
    # Weights travel through Git LFS, like on the Hub; small text files are inlined in the commit.
    assert files["model.safetensors"].is_lfs
    assert not files["config.json"].is_lfs
    config = json.loads(files["config.json"].content)
    assert "AutoModelForTextRecognition" in config["auto_map"]
    assert "image-to-text" in config["custom_pipelines"]


def test_second_push_changes_only_what_changed(hub, pushed):
    first, second = hub.repo(REPO_ID).commits[1:]
    changed = {
        path for path in first.files.keys() | second.files.keys() if first.files.get(path) != second.files.get(path)
    }
    assert changed == {"README.md"}
    # The unchanged weights were neither uploaded again nor re-sent.
    lfs_uploads = [path for method, path, _ in hub.requests() if method == "PUT" and path.startswith("/__lfs__/")]
    assert len(lfs_uploads) == 1


def test_pushed_model_card(hub, pushed):
    readme = hub.files(REPO_ID, pushed["first"])["README.md"].content.decode()
    metadata = front_matter(readme)
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "image-to-text"
    assert metadata["datasets"] == ["test-org/synthetic-words"]
    assert f'pipeline("image-to-text", model="{REPO_ID}", trust_remote_code=True)' in readme
    # The second push replaced the card: its training text, and no evaluation results this time.
    latest = hub.files(REPO_ID)["README.md"].content.decode()
    assert "Still random." in latest and "model-index" not in front_matter(latest)
    # The server reads the card's metadata into the model info, as the Hub does (`pipeline()` relies on it to
    # infer the task).
    with urllib.request.urlopen(f"{hub.url}/api/models/{REPO_ID}") as response:
        info = json.load(response)
    assert info["pipeline_tag"] == "image-to-text" and info["sha"] == pushed["second"]


def test_download_with_remote_code_gives_identical_logits(loaded, tiny_checkpoint, image_paths):
    model = CRNNForTextRecognition.from_pretrained(tiny_checkpoint).eval()
    processor = CRNNProcessor.from_pretrained(tiny_checkpoint)
    with torch.no_grad():
        expected = model(**processor(images=image_paths, return_tensors="pt")).logits
    assert torch.equal(loaded["logits"], expected)


def test_download_runs_only_the_pushed_code(loaded):
    # The loading process could not import hf_crnn: every class is transformers' copy of the repo's code files.
    for name, qualified_name in loaded["classes"].items():
        assert qualified_name.startswith("transformers_modules."), (name, qualified_name)
    assert loaded["classes"]["pipeline"].endswith("pipeline_crnn.CRNNTextRecognitionPipeline")


def test_clients_used_only_implemented_endpoints(hub, loaded):
    # A new huggingface_hub/transformers release calling an endpoint the test server lacks shows up here first.
    assert hub.unhandled_requests() == []


def test_remote_pipeline_matches_local_pipeline(loaded, tiny_checkpoint, image_paths):
    def texts_and_scores(outputs):
        return [image[0]["generated_text"] for image in outputs], [image[0]["score"] for image in outputs]

    expected_texts, expected_scores = texts_and_scores(
        pipeline("text-recognition", model=str(tiny_checkpoint))(image_paths)
    )
    texts, scores = texts_and_scores(loaded["pipeline_outputs"])
    assert texts == expected_texts
    assert set(texts) <= set(WORDS)  # decoded with the checkpoint's default lexicon, downloaded with it
    assert scores == pytest.approx(expected_scores, rel=1e-6)  # went through JSON in between


@pytest.fixture
def own_hub(monkeypatch):
    """A server of its own for an in-process push, which this process's huggingface_hub may reach: the test
    session runs offline and `endpoint=` targets the server explicitly."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    with HubServer(token=TOKEN) as server:
        yield server


def test_private_push(own_hub, model, processor):
    commit = push_checkpoint_to_hub(
        model, processor, "test-org/private-crnn", private=True, endpoint=own_hub.url, token=TOKEN
    )
    url = f"{own_hub.url}/api/models/test-org/private-crnn"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(url)
    assert anonymous.value.code == 404  # private repos look missing without credentials, as on the Hub
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["sha"] == commit.oid


def test_push_of_a_bare_name_goes_to_the_users_namespace(own_hub, model, processor):
    push_checkpoint_to_hub(model, processor, "bare-crnn", endpoint=own_hub.url, token=TOKEN)
    readme = own_hub.files(f"{DEFAULT_USER}/bare-crnn")["README.md"].content.decode()
    assert f'model="{DEFAULT_USER}/bare-crnn"' in readme  # the card names the repo the Hub actually created


def test_push_with_a_wrong_token_fails_before_uploading(own_hub, model, processor):
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError, match="401"):
        push_checkpoint_to_hub(model, processor, "test-org/denied", endpoint=own_hub.url, token="hf_wrong")
    assert "test-org/denied" not in own_hub.state.repos


# ---- model card ------------------------------------------------------------------------------------------------


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n"), "a model card starts with YAML front matter"
    return yaml.safe_load(readme.split("---\n", 2)[1])


def test_model_card_front_matter():
    card = create_model_card(
        tiny_config(), repo_id="me/crnn", eval_results=EVAL_RESULTS, datasets="me/words", license="mit", tags=["en"]
    )
    metadata = front_matter(str(card))
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "image-to-text"
    assert metadata["tags"] == ["ocr", "scene-text-recognition", "crnn", "ctc", "en"]
    assert metadata["license"] == "mit"
    assert metadata["datasets"] == ["me/words"]
    assert metadata["metrics"] == ["accuracy", "cer"]
    (model_index,) = metadata["model-index"]
    assert model_index["name"] == "crnn"
    by_dataset = {result["dataset"]["name"]: result for result in model_index["results"]}
    assert by_dataset["IIIT5K"]["task"]["type"] == "image-to-text"
    assert by_dataset["IIIT5K"]["dataset"]["split"] == "test"
    assert {m["type"]: m["value"] for m in by_dataset["IIIT5K"]["metrics"]} == {"accuracy": 0.25, "cer": 0.5}


def test_model_card_without_evaluation_has_no_model_index():
    metadata = front_matter(str(create_model_card(tiny_config())))
    assert "model-index" not in metadata and "metrics" not in metadata and "datasets" not in metadata
    assert metadata["license"] == "apache-2.0"


def test_model_card_body(tmp_path, model, processor):
    config = model.config
    path = write_model_card(
        tmp_path,
        model,
        processor,
        repo_id="me/crnn",
        training={"steps": 123, "optimizer": "Adadelta"},
        eval_results=EVAL_RESULTS,
    )
    readme = path.read_text()
    num_parameters = sum(p.numel() for p in model.parameters())
    assert path.name == "README.md"
    assert f"{num_parameters:,}" in readme
    assert f"{config.image_height} pixels high" in readme and "grayscale" in readme
    assert "0123456789abcdefghijklmnopqrstuvwxyz" in readme
    assert "- **steps**: 123" in readme
    assert 'pipeline("image-to-text", model="me/crnn", trust_remote_code=True)' in readme
    assert 'pipeline("text-recognition", model="me/crnn")' in readme
    assert "| Dataset | Split | accuracy | cer |" in readme
    assert "| IIIT5K | test | 0.25 | 0.5 |" in readme
    assert "| SVT | test | 0.125 | – |" in readme
    assert CITATION_BIBTEX in readme and "1507.05717" in readme
    assert "language_model=True" not in readme  # this processor ships no language model
    processor.language_model = CharNgramLanguageModel(["hello"])
    readme = write_model_card(tmp_path / "with-lm", model, processor, repo_id="me/crnn").read_text()
    assert 'recognizer("word.png", language_model=True)' in readme


def test_model_card_evaluation_table_has_no_empty_split_column(tmp_path, model, processor):
    results = [{"dataset_name": "held-out fonts", "metric_type": "accuracy", "metric_value": 0.5}]
    readme = write_model_card(tmp_path, model, processor, eval_results=results).read_text()
    assert "| Dataset | accuracy |" in readme and "| held-out fonts | 0.5 |" in readme and "Split" not in readme


def test_model_card_counts_parameters_from_config_alone():
    # The paper's network: 8.33M parameters (counted on the meta device, nothing allocated).
    from hf_crnn import CRNNConfig

    assert "8,331,301" in str(create_model_card(CRNNConfig()))


def test_model_card_rejects_incomplete_eval_result():
    with pytest.raises(ValueError, match="metric_value"):
        create_model_card(tiny_config(), eval_results=[{"dataset_name": "SVT", "metric_type": "accuracy"}])


# ---- checkpoint folder -----------------------------------------------------------------------------------------


def test_save_checkpoint_is_self_contained(tmp_path, model, processor):
    files = save_checkpoint(model, processor, tmp_path / "ckpt", repo_id="me/crnn")
    assert {"README.md", "model.safetensors", "config.json", "pipeline_crnn.py", "processing_crnn.py"} <= set(files)

    (tmp_path / "ckpt" / "pipeline_crnn.py").unlink()
    with pytest.raises(ValueError, match="pipeline_crnn.py is referenced but missing"):
        check_self_contained(tmp_path / "ckpt")
