import json

import pytest
import torch

from interp.errors import InterpError
from interp.runs import load_run
from interp.training.loop import TrainingInterrupted, resume, train

SMALL = {"n_train": "600", "n_test": "200"}


def _train(root, name="t", **kwargs):
    options = dict(epochs=2, batch_size=64, device="cpu", progress=False, log=None, root=root,
                   overrides=dict(SMALL))
    options["overrides"].update(kwargs.pop("overrides", {}))
    options.update(kwargs)
    return train("tutorial", "shapes", name=name, **options)


def test_training_lowers_the_loss(tmp_path):
    run = _train(tmp_path, epochs=4, overrides={"n_train": "2000"})
    losses = [m["train_loss"] for m in run.metrics]
    assert losses[-1] < losses[0]
    assert run.summary["test_acc"] > 0.15  # above chance (0.1) on 10 balanced classes


def test_run_folder_contents(tmp_path):
    run = _train(tmp_path)
    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.jsonl", "summary.json", "state.json",
            "checkpoint.safetensors"} <= files
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["parameters"] == 62_006
    assert len(summary["confusion"]) == 10 and len(summary["per_class_acc"]) == 10
    assert "torch" in summary["versions"]
    config = json.loads((run.path / "config.json").read_text())
    assert len(config["data"]["mean"]) == 3 and config["data"]["input_shape"] == [3, 32, 32]
    assert config["data"]["classes"] == summary["classes"]
    assert not list(run.path.glob("*.tmp"))


def test_run_round_trips_with_identical_logits(tmp_path):
    run = _train(tmp_path)
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        before = run.model(x)
        after = load_run(run.path).model(x)
    assert torch.equal(before, after)


def test_training_is_deterministic_on_cpu(tmp_path):
    a = _train(tmp_path, name="a")
    b = _train(tmp_path, name="b")
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(va, vb), k


def test_resume_after_interrupt_matches_uninterrupted(tmp_path, monkeypatch):
    full = _train(tmp_path, name="full", epochs=3)

    from interp.training import classification

    original = classification.ImageClassificationTask.loss
    calls = {"n": 0}

    def interrupting_loss(self, model, batch):
        calls["n"] += 1
        if calls["n"] == 13:  # during epoch 2 (10 steps per epoch)
            raise KeyboardInterrupt
        return original(self, model, batch)

    monkeypatch.setattr(classification.ImageClassificationTask, "loss", interrupting_loss)
    with pytest.raises(TrainingInterrupted, match="resume tutorial-int|--resume part"):
        _train(tmp_path, name="part", epochs=3)
    state = json.loads((tmp_path / "part" / "state.json").read_text())
    assert state["status"] == "interrupted" and state["epoch"] == 1
    monkeypatch.setattr(classification.ImageClassificationTask, "loss", original)

    resumed = resume("part", root=tmp_path, device="cpu", progress=False, log=None)
    assert len(resumed.metrics) == 3
    for (k, va), (_, vb) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(va, vb), k


def test_resume_of_finished_run_is_an_error(tmp_path):
    _train(tmp_path, name="done", epochs=1)
    with pytest.raises(InterpError, match="'done' is finished.*nothing to resume"):
        resume("done", root=tmp_path, device="cpu", progress=False, log=None)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from interp.training import classification

    original = classification.ImageClassificationTask.loss
    calls = {"n": 0}

    def nan_loss(self, model, batch):
        loss, stats = original(self, model, batch)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] > 12 else loss), stats

    monkeypatch.setattr(classification.ImageClassificationTask, "loss", nan_loss)
    with pytest.raises(InterpError, match=r"loss became nan at epoch 2.*checkpoint \(epoch 1\) is kept"):
        _train(tmp_path, name="nan", epochs=3)
    run = load_run(tmp_path / "nan")  # the epoch-1 weights load and are finite
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert json.loads((tmp_path / "nan" / "state.json").read_text())["status"] == "failed"


def test_existing_name_needs_overwrite(tmp_path):
    _train(tmp_path, name="x", epochs=1)
    with pytest.raises(InterpError, match="already exists.*--resume x"):
        _train(tmp_path, name="x", epochs=1)
    _train(tmp_path, name="x", epochs=1, overwrite=True)


def test_default_names_are_unique(tmp_path):
    a = train("tutorial", "shapes", epochs=1, root=tmp_path, device="cpu", progress=False, log=None,
              overrides=dict(SMALL))
    b = train("tutorial", "shapes", epochs=1, root=tmp_path, device="cpu", progress=False, log=None,
              overrides=dict(SMALL))
    assert (a.name, b.name) == ("tutorial", "tutorial-2")


def test_mlp_trains_with_the_same_core(tmp_path):
    run = train("mlp", "shapes", name="m", epochs=1, root=tmp_path, device="cpu", progress=False, log=None,
                overrides=dict(SMALL))
    assert run.summary["parameters"] == 61_670


def test_last_epoch_evaluation_is_the_final_one(tmp_path, monkeypatch):
    """The test split is evaluated once per due epoch; the last one also fills the summary."""
    from interp.training.classification import ImageClassificationTask

    calls = []
    original = ImageClassificationTask.evaluate

    def counted(self, model, *, final=False):
        calls.append(final)
        return original(self, model, final=final)

    monkeypatch.setattr(ImageClassificationTask, "evaluate", counted)
    run = _train(tmp_path, overrides={"eval_every": "1"})
    assert calls == [False, True]
    assert run.summary["test_acc"] == run.metrics[-1]["test_acc"]
    assert len(run.summary["confusion"]) == 10 and "confusion" not in run.metrics[-1]
