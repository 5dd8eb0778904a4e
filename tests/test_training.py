"""Training with Trainer: examples/run_text_recognition.py end to end, data sources, resume, DDP, optimisers."""

import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import torch
import transformers
from conftest import TINY_CONFIG_KWARGS, render_word, tiny_config
from transformers import HfArgumentParser, pipeline

from hf_crnn import CRNNForTextRecognition, CRNNTokenizer
from hf_crnn.training import (
    MODEL_PRESETS,
    CRNNTrainer,
    CRNNTrainingArguments,
    LabelChecker,
    build_config,
    ctc_frames_needed,
    frames_per_width,
    parse_config_overrides,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "examples" / "run_text_recognition.py"

WORDS = ["hello", "world", "crnn", "text", "scene", "model", "train", "data", "words", "image", "label", "frame"]
UNENCODABLE = "café"  # "é" is not in the 36-character vocabulary
TOO_LONG = "a" * 8  # 8 repeated letters need 15 CTC frames; a 32-pixel-wide image gives 9


def _load_script():
    spec = importlib.util.spec_from_file_location("run_text_recognition", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


run_text_recognition = _load_script()


@pytest.fixture(autouse=True)
def _restore_logging():
    """main() sets library log levels, as the transformers examples do; give the next test the levels back."""
    levels = transformers.utils.logging.get_verbosity(), datasets.utils.logging.get_verbosity()
    yield
    transformers.utils.logging.set_verbosity(levels[0])
    datasets.utils.logging.set_verbosity(levels[1])


def _write_imagefolder(folder: Path, words: list[str], extra: dict[str, "PIL.Image.Image"] | None = None) -> Path:
    folder.mkdir(parents=True)
    rows = []
    items = [(word, render_word(word)) for word in words] + list((extra or {}).items())
    for index, (text, image) in enumerate(items):
        name = f"{index:03d}.png"
        image.save(folder / name)
        rows.append({"file_name": name, "text": text})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


@pytest.fixture(scope="module")
def imagefolder(tmp_path_factory):
    """train/ (the words, plus one unencodable and one too-long label) and validation/ imagefolders."""
    root = tmp_path_factory.mktemp("words")
    narrow = render_word("a").resize((40, 40))
    _write_imagefolder(root / "train", WORDS, extra={UNENCODABLE: render_word("cafe"), TOO_LONG: narrow})
    _write_imagefolder(root / "validation", WORDS[:6])
    return root


def _common_args(output_dir: Path, **overrides) -> list[str]:
    args = {
        "output_dir": str(output_dir),
        "config_overrides": json.dumps(TINY_CONFIG_KWARGS),
        "per_device_train_batch_size": "4",
        "per_device_eval_batch_size": "4",
        "max_steps": "3",
        "logging_steps": "1",
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": "true",
        "dataloader_pin_memory": "false",
        "seed": "0",
    }
    for key, value in overrides.items():
        if value is None:
            args.pop(key, None)  # None drops a default
        else:
            args[key] = str(value)
    flags = [f"--{key}" for key, value in args.items() if value == "FLAG"]
    return flags + [item for key, value in args.items() if value != "FLAG" for item in (f"--{key}", value)]


def run_script(output_dir: Path, **overrides):
    return run_text_recognition.main(_common_args(output_dir, **overrides))


# ---------------------------------------------------------------------------------------------------------------------
# The script, end to end
# ---------------------------------------------------------------------------------------------------------------------


def test_imagefolder_train_eval_save_and_pipeline(imagefolder, tmp_path, caplog):
    output_dir = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="hf_crnn"):
        trainer = run_script(
            output_dir,
            train_dir=imagefolder / "train",
            validation_dir=imagefolder / "validation",
            do_train="FLAG",
            do_eval="FLAG",
        )
    assert trainer.state.global_step == 3
    # The two bad labels are skipped, with a count that names both reasons.
    assert "2 of 14 train labels cannot be trained on: 1 hold characters outside the vocabulary, 1 need more" in (
        caplog.text
    )
    train_results = json.loads((output_dir / "train_results.json").read_text())
    eval_results = json.loads((output_dir / "eval_results.json").read_text())
    assert train_results["train_samples"] == len(WORDS)
    assert eval_results["eval_samples"] == 6
    assert {"eval_word_accuracy", "eval_cer", "eval_loss"} <= set(eval_results)

    # A complete, self-contained checkpoint: weights, processor, code, and the CRNN model card.
    for name in ("model.safetensors", "config.json", "processor_config.json", "vocab.json", "modeling_crnn.py"):
        assert (output_dir / name).is_file(), name
    card = (output_dir / "README.md").read_text()
    assert "run_text_recognition.py" in card and "word accuracy" in card and "crnn" in card

    recognizer = pipeline("text-recognition", model=str(output_dir))
    result = recognizer(render_word("hello"))
    assert isinstance(result[0]["generated_text"], str) and 0.0 <= result[0]["score"] <= 1.0


def test_invalid_labels_error(imagefolder, tmp_path):
    with pytest.raises(ValueError, match="2 of 14 train labels cannot be trained on"):
        run_script(tmp_path / "out", train_dir=imagefolder / "train", do_train="FLAG", invalid_labels="error")


@pytest.fixture(scope="module")
def word_dataset():
    images = [render_word(word) for word in WORDS]
    return datasets.Dataset.from_dict({"picture": images, "label": WORDS}).cast_column("picture", datasets.Image())


@pytest.mark.parametrize("source", ["save_to_disk", "parquet"])
def test_save_to_disk_and_parquet_inputs(word_dataset, tmp_path, source):
    if source == "save_to_disk":
        path = tmp_path / "saved"
        datasets.DatasetDict({"train": word_dataset, "validation": word_dataset.select(range(4))}).save_to_disk(path)
        data_args = {"train_dir": path}
    else:
        path = tmp_path / "words.parquet"
        word_dataset.to_parquet(path)
        data_args = {"train_file": path, "train_val_split": "0.25"}
    trainer = run_script(
        tmp_path / "out",
        image_column_name="picture",
        text_column_name="label",
        do_train="FLAG",
        do_eval="FLAG",
        max_steps=2,
        **data_args,
    )
    assert trainer.state.global_step == 2
    expected_eval = 4 if source == "save_to_disk" else 3
    assert json.loads((tmp_path / "out" / "eval_results.json").read_text())["eval_samples"] == expected_eval


def test_streaming_imagefolder(imagefolder, tmp_path):
    trainer = run_script(tmp_path / "out", train_dir=imagefolder / "train", do_train="FLAG", streaming="FLAG")
    assert trainer.state.global_step == 3
    assert isinstance(trainer.train_dataset, datasets.IterableDataset)


def test_streaming_needs_max_steps(imagefolder, tmp_path):
    with pytest.raises(ValueError, match="set --max_steps"):
        run_script(tmp_path / "out", train_dir=imagefolder / "train", do_train="FLAG", streaming="FLAG", max_steps=-1)


def run_synthetic(tmp_path: Path, **overrides):
    """The script on its built-in synthetic data, training and evaluating; returns (trainer, train fonts, eval fonts)."""
    options = dict(max_steps=2, synthetic_train_samples=16, synthetic_eval_samples=8)
    options.update(overrides)
    trainer = run_script(
        tmp_path / "out", do_train="FLAG", do_eval="FLAG", synthetic_cache_dir=tmp_path / "cache", **options
    )
    train_fonts = set(trainer.train_dataset.with_format(None)["font"])
    eval_fonts = set(trainer.eval_dataset.with_format(None)["font"])
    return trainer, train_fonts, eval_fonts


def test_synthetic_default_data(tmp_path):
    """No dataset argument: synthetic words, evaluated in fonts held out of training."""
    trainer, train_fonts, eval_fonts = run_synthetic(tmp_path)
    assert trainer.state.global_step == 2
    assert not train_fonts & eval_fonts, "evaluation fonts must be held out of training"


def test_synthetic_extra_training_fonts(system_and_extra_fonts, tmp_path, monkeypatch):
    """--synthetic_extra_font_dirs adds training fonts; the evaluation fonts stay the held-out side of the split."""
    system, extra, extra_family = system_and_extra_fonts
    monkeypatch.setenv("HF_CRNN_FONT_DIRS", str(system))
    _, train_fonts, eval_fonts = run_synthetic(
        tmp_path, max_steps=1, synthetic_train_samples=64, synthetic_extra_font_dirs=extra
    )
    extra_names = {path.name for path in extra.iterdir()}
    assert train_fonts & extra_names, "the extra fonts must be drawn for training"
    assert not eval_fonts & (train_fonts | extra_names)
    card = (tmp_path / "out" / "README.md").read_text()
    assert extra_family in card.split("in the training fonts:")[1].splitlines()[0]


# ---------------------------------------------------------------------------------------------------------------------
# Resume
# ---------------------------------------------------------------------------------------------------------------------


def test_resume_from_checkpoint_continues(imagefolder, tmp_path):
    output_dir = tmp_path / "out"
    common = dict(train_dir=imagefolder / "train", do_train="FLAG", save_strategy="steps", save_steps=2)
    first = run_script(output_dir, max_steps=4, **common)
    assert first.state.global_step == 4 and (output_dir / "checkpoint-4").is_dir()
    first_losses = {entry["step"]: entry["loss"] for entry in first.state.log_history if "loss" in entry}

    # As after a kill: a second run to 2N steps picks up at step 4 with the optimizer, scheduler and RNG states.
    second = run_script(output_dir, max_steps=8, resume_from_checkpoint=output_dir / "checkpoint-4", **common)
    assert second.state.global_step == 8
    logged = [entry["step"] for entry in second.state.log_history if "loss" in entry]
    assert logged == [1, 2, 3, 4, 5, 6, 7, 8]  # the restored log, continued
    resumed_losses = {entry["step"]: entry["loss"] for entry in second.state.log_history if "loss" in entry}
    assert all(resumed_losses[step] == first_losses[step] for step in range(1, 5))
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 8 and (output_dir / "checkpoint-8").is_dir()


@pytest.mark.slow  # a fresh process importing torch and transformers, killed mid-run
def test_resume_after_a_kill_continues_as_an_uninterrupted_run(imagefolder, tmp_path):
    steps = 30
    common = dict(train_dir=imagefolder / "train", do_train="FLAG", max_steps=steps)
    killed_dir = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), *_common_args(killed_dir, save_strategy="steps", save_steps=3, **common)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600  # a busy 2-core machine can take minutes to import and start
        while time.monotonic() < deadline and process.poll() is None:
            if list(killed_dir.glob("checkpoint-*/trainer_state.json")):
                break
            time.sleep(0.05)
    finally:
        process.kill()  # SIGKILL: no chance to save anything more
        process.wait()
    assert process.returncode != 0, "the run finished before it could be killed; raise `steps`"
    saved = [int(path.parent.name.split("-")[1]) for path in killed_dir.glob("checkpoint-*/trainer_state.json")]
    assert saved, "no checkpoint was written before the kill"
    killed_at = max(saved)
    assert 0 < killed_at < steps

    resumed = run_script(killed_dir, **common)  # the same command again: picks up the last checkpoint
    reference = run_script(tmp_path / "reference", **common)
    assert resumed.state.global_step == reference.state.global_step == steps

    def losses(trainer) -> dict[int, float]:
        return {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}

    resumed_losses, reference_losses = losses(resumed), losses(reference)
    assert sorted(resumed_losses) == list(range(1, steps + 1))
    # Model, optimiser, scheduler, RNG and data order were all restored: after the kill, the losses are the ones
    # the uninterrupted run saw.
    after_kill = range(killed_at + 1, steps + 1)
    assert [resumed_losses[s] for s in after_kill] == pytest.approx([reference_losses[s] for s in after_kill], rel=1e-4)


def test_resume_detects_last_checkpoint(imagefolder, tmp_path):
    output_dir = tmp_path / "out"
    common = dict(train_dir=imagefolder / "train", do_train="FLAG", save_strategy="steps", save_steps=2)
    run_script(output_dir, max_steps=2, **common)
    assert run_script(output_dir, max_steps=4, **common).state.global_step == 4  # resumed from checkpoint-2
    assert run_script(output_dir, max_steps=2, overwrite_output_dir="FLAG", **common).state.global_step == 2


# ---------------------------------------------------------------------------------------------------------------------
# Optimisers
# ---------------------------------------------------------------------------------------------------------------------


def test_adadelta_is_selectable(imagefolder, tmp_path):
    (args,) = HfArgumentParser(CRNNTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--optim", "adadelta"]
    )
    assert (args.learning_rate, str(args.lr_scheduler_type.value), args.warmup_steps) == (1.0, "constant", 0.0)

    trainer = run_script(tmp_path / "out", train_dir=imagefolder / "train", do_train="FLAG", optim="adadelta", max_steps=2)
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # unwrap accelerate's wrapper
    assert isinstance(optimizer, torch.optim.Adadelta)
    assert optimizer.defaults["rho"] == 0.9 and optimizer.defaults["lr"] == 1.0
    assert trainer.state.global_step == 2


def _learning_rates(args: CRNNTrainingArguments, num_steps: int) -> list[float]:
    trainer = CRNNTrainer(model=CRNNForTextRecognition(tiny_config()), args=args)
    trainer.create_optimizer_and_scheduler(num_steps)
    rates = []
    for _ in range(num_steps + 1):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return rates


def test_default_schedule_warms_up_holds_then_decays_over_the_last_fifth(tmp_path):
    args = CRNNTrainingArguments(output_dir=str(tmp_path), max_steps=100)
    rates = _learning_rates(args, 100)
    assert rates[0] == 0.0 and rates[5] == pytest.approx(2e-3)  # 5% linear warmup
    assert all(rate == pytest.approx(2e-3) for rate in rates[5:81])  # held until the last 20 steps
    assert rates[90] == pytest.approx(1e-3) and rates[100] == pytest.approx(0.0, abs=1e-12)  # cosine decay
    assert args.lr_scheduler_kwargs is None  # the saved arguments are left as given

    explicit = CRNNTrainingArguments(
        output_dir=str(tmp_path), max_steps=100, lr_scheduler_kwargs={"num_decay_steps": 50}
    )
    rates = _learning_rates(explicit, 100)
    assert rates[50] == pytest.approx(2e-3) and rates[75] == pytest.approx(1e-3)


def test_optimizer_defaults(tmp_path):
    adamw = CRNNTrainingArguments(output_dir=str(tmp_path))
    assert (adamw.learning_rate, adamw.lr_scheduler_type.value, adamw.warmup_steps) == (2e-3, "warmup_stable_decay", 0.05)
    assert adamw.label_names == ["labels"] and adamw.remove_unused_columns is False
    assert adamw.train_sampling_strategy == "group_by_length" and adamw.ddp_find_unused_parameters is False
    custom = CRNNTrainingArguments(output_dir=str(tmp_path), optim="adadelta", learning_rate=0.5, optim_args="rho=0.95")
    model = CRNNForTextRecognition(tiny_config())
    optimizer = CRNNTrainer(model=model, args=custom).create_optimizer()
    assert isinstance(optimizer, torch.optim.Adadelta)
    assert optimizer.defaults["rho"] == 0.95 and optimizer.defaults["lr"] == 0.5
    with pytest.raises(ValueError, match="Adadelta takes"):
        bad = CRNNTrainingArguments(output_dir=str(tmp_path), optim="adadelta", optim_args="beta=1")
        CRNNTrainer(model=model, args=bad).create_optimizer()


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation predictions across batches of different widths
# ---------------------------------------------------------------------------------------------------------------------


def test_predictions_carry_frame_lengths(imagefolder, tmp_path):
    """Trainer pads variable-T predictions with -100; frame_lengths tell the metrics where each image ends."""
    trainer = run_script(tmp_path / "out", validation_dir=imagefolder / "validation", do_eval="FLAG")
    output = trainer.predict(trainer.eval_dataset)
    frame_ids, frame_lengths = output.predictions
    raw = trainer.eval_dataset.with_format(None)
    width_of = dict(zip(raw["text"], raw["length"]))
    # Eval batches are grouped by width: match each prediction to its image through its label.
    tokenizer = trainer.processing_class.tokenizer
    labels = [tokenizer.decode([int(i) for i in row if i != -100]) for row in output.label_ids]
    assert sorted(labels) == sorted(width_of)
    expected = [int(trainer.model.get_frame_lengths(width_of[label])) for label in labels]
    assert frame_lengths.tolist() == expected
    widest_batch = -(-max(width_of.values()) // 4) * 4  # the collator pads widths to a multiple of 4
    assert frame_ids.shape == (len(labels), int(trainer.model.get_frame_lengths(widest_batch)))
    for row, length in zip(frame_ids, frame_lengths):
        assert (row[:length] >= 0).all()  # real frames are class ids
    assert (frame_ids == -100).any()  # narrower batches were padded to the widest
    assert 0.0 <= output.metrics["test_word_accuracy"] <= 1.0


# ---------------------------------------------------------------------------------------------------------------------
# DDP
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # two fresh processes importing torch and transformers: ~30 s on a shared 2-core machine
def test_torchrun_ddp_two_gloo_processes(imagefolder, tmp_path):
    output_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
        *_common_args(
            output_dir,
            train_dir=imagefolder / "train",
            validation_dir=imagefolder / "validation",
            do_train="FLAG",
            do_eval="FLAG",
            max_steps=3,
            per_device_eval_batch_size=3,  # 6 images in 2 full batches: none repeated to even out the ranks
            ddp_backend="gloo",
            use_cpu="FLAG",
        ),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    eval_results = json.loads((output_dir / "eval_results.json").read_text())
    # Predictions of both ranks, padded to a common frame count, gathered without duplicates.
    assert eval_results["eval_samples"] == 6 and "eval_word_accuracy" in eval_results
    train_results = json.loads((output_dir / "train_results.json").read_text())
    assert train_results["train_samples"] == len(WORDS)
    card = (output_dir / "README.md").read_text()
    assert "torchrun --nproc_per_node=2" in card and "on 2 processes x 1 CPU thread (" in card

    # The evaluation both ranks ran is the saved model's: the same loss (not scaled by the number of processes) and
    # the same predictions as one process reading the checkpoint. The tight tolerance is what catches a rank keeping
    # its own BatchNorm statistics: on this tiny model that moves the loss by about 2e-5 relative; float noise is 1e-7.
    run_script(
        tmp_path / "single",
        model_name_or_path=output_dir,
        config_overrides=None,
        validation_dir=imagefolder / "validation",
        do_eval="FLAG",
    )
    single = json.loads((tmp_path / "single" / "eval_results.json").read_text())
    assert eval_results["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-6)
    for metric in ("eval_cer", "eval_ned", "eval_word_accuracy"):
        assert eval_results[metric] == pytest.approx(single[metric]), metric


# ---------------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------------


def test_presets_and_overrides():
    assert build_config("crnn-paper").to_dict() == build_config().to_dict()
    small = build_config("crnn-small", '{"hidden_size": 64}', vocab_size=11)
    assert small.conv_dim == MODEL_PRESETS["crnn-small"]["conv_dim"]
    assert (small.hidden_size, small.vocab_size) == (64, 11)
    assert parse_config_overrides("hidden_size=32,classifier_dropout=0.1,hidden_act=relu6") == {
        "hidden_size": 32,
        "classifier_dropout": 0.1,
        "hidden_act": "relu6",
    }
    with pytest.raises(ValueError, match="unknown CRNNConfig field"):
        build_config("crnn-small", "hiden_size=3")
    with pytest.raises(ValueError, match="must be one of"):
        build_config("crnn-huge")
    with pytest.raises(ValueError, match="key=value"):
        parse_config_overrides("hidden_size")


def test_label_checker_counts_repeats():
    model = CRNNForTextRecognition(tiny_config())
    tokenizer = CRNNTokenizer(do_lower_case=True)
    checker = LabelChecker(tokenizer, frames_per_width(model, 200))
    assert ctc_frames_needed([1, 1, 2]) == 4
    frames = int(model.get_frame_lengths(40))
    # k repeated letters need 2k - 1 frames; k distinct ones need k.
    assert checker.problem("a" * ((frames + 1) // 2), 40) is None
    assert checker.problem("a" * ((frames + 3) // 2), 40) == "too_long"
    assert checker.problem(("ab" * frames)[:frames], 40) is None
    assert checker.problem(("ab" * frames)[: frames + 1], 40) == "too_long"
    assert checker.problem("Hello", 100) is None  # folded to lower case
    assert checker.problem("naïve", 100) == "unencodable"
    dropping = LabelChecker(CRNNTokenizer(do_lower_case=True, unknown_character_policy="drop"), checker.frames_per_width)
    assert dropping.problem("naïve", 100) is None
