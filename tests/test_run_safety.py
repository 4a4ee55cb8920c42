"""Run folders are never left disagreeing or fought over: writer locks, commit order, failed runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from interp.errors import InterpError
from interp.runs import LOCK_FILE, load_run, resolve_run_path, run_lock
from interp.training.loop import resume, train

SMALL = {"n_train": "600", "n_test": "200"}


def _train(root, name="t", **kwargs):
    return train("tutorial", "shapes", name=name, epochs=kwargs.pop("epochs", 2), batch_size=64, device="cpu",
                 progress=False, log=None, root=root, overrides=dict(SMALL), **kwargs)


def _lock_held_by(run_dir, pid, host=None):
    (run_dir / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                 "started": "2026-12-02T08:00:00"}))


@pytest.fixture
def live_pid():
    """The pid of a process that is alive for the test's duration."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_writer_blocks_overwrite_resume_and_a_second_training(tmp_path, live_pid):
    run = _train(tmp_path, name="busy", epochs=1)
    _lock_held_by(run.path, live_pid)
    for attempt in (lambda: _train(tmp_path, name="busy", epochs=1, overwrite=True),
                    lambda: _train(tmp_path, name="busy", epochs=1)):
        with pytest.raises(InterpError, match=f"being written by process {live_pid}"):
            attempt()
    state = json.loads((run.path / "state.json").read_text())
    state["status"] = "interrupted"
    (run.path / "state.json").write_text(json.dumps(state))
    with pytest.raises(InterpError, match=f"being written by process {live_pid}.*delete .*{LOCK_FILE}"):
        resume("busy", root=tmp_path, device="cpu", progress=False, log=None)
    assert (run.path / "model.safetensors").is_file()  # nothing of the live run was touched
    assert json.loads((run.path / LOCK_FILE).read_text())["pid"] == live_pid


def test_a_stale_lock_is_taken_over_and_said(tmp_path):
    run = _train(tmp_path, name="stale", epochs=1)
    _lock_held_by(run.path, _dead_pid())
    said = []
    again = train("tutorial", "shapes", name="stale", epochs=1, batch_size=64, device="cpu", progress=False,
                  log=said.append, root=tmp_path, overrides=dict(SMALL), overwrite=True)
    assert any("stale lock" in line for line in said)
    assert not (again.path / LOCK_FILE).exists()  # released after training


def test_a_lock_of_another_host_is_not_judged_stale(tmp_path):
    run_dir = tmp_path / "remote"
    run_dir.mkdir()
    _lock_held_by(run_dir, _dead_pid(), host="some-other-host")
    with pytest.raises(InterpError, match="on some-other-host"):
        with run_lock(run_dir):
            pass


def test_the_lock_is_released_when_training_fails(tmp_path, monkeypatch):
    from interp.training import classification

    def broken(self, model, batch):
        raise RuntimeError("boom")

    monkeypatch.setattr(classification.ImageClassificationTask, "loss", broken)
    with pytest.raises(RuntimeError, match="boom"):
        _train(tmp_path, name="broken")
    assert not (tmp_path / "broken" / LOCK_FILE).exists()
    assert json.loads((tmp_path / "broken" / "state.json").read_text())["status"] == "failed"


def test_a_failed_or_weightless_run_is_never_the_default(tmp_path, monkeypatch):
    good = _train(tmp_path, name="good", epochs=1)
    from interp.training import classification

    def broken(self, model, batch):
        raise RuntimeError("boom")

    monkeypatch.setattr(classification.ImageClassificationTask, "loss", broken)
    with pytest.raises(RuntimeError):
        _train(tmp_path, name="newer-but-failed")
    assert resolve_run_path(None, tmp_path) == good.path
    (good.path / "model.safetensors").unlink()
    with pytest.raises(InterpError, match="no run in .* has weights from a training that did not fail"):
        resolve_run_path(None, tmp_path)


def test_a_crash_between_the_weight_renames_resumes_to_agreeing_files(tmp_path, monkeypatch):
    """Killed after model.safetensors of the last epoch is renamed, before the checkpoint is:
    after --resume the weights, the checkpoint and the summary describe one and the same model."""
    full = _train(tmp_path, name="full", epochs=2)
    from interp.training import loop

    original = loop.save_tensors
    calls = {"checkpoints": 0}

    def crashing(path, tensors, metadata=None):
        if path.name == "checkpoint.safetensors":
            calls["checkpoints"] += 1
            if calls["checkpoints"] == 2:  # the last epoch's checkpoint: its model file is already in place
                raise KeyboardInterrupt
        return original(path, tensors, metadata)

    monkeypatch.setattr(loop, "save_tensors", crashing)
    with pytest.raises(Exception):
        _train(tmp_path, name="cut", epochs=2)
    monkeypatch.setattr(loop, "save_tensors", original)
    run = resume("cut", root=tmp_path, device="cpu", progress=False, log=None)
    with safe_open(str(run.path / "model.safetensors"), "pt") as f:
        assert f.metadata()["epoch"] == "2"
    with safe_open(str(run.path / "checkpoint.safetensors"), "pt") as f:
        assert f.metadata()["epoch"] == "2"
    for (k, va), (_, vb) in zip(full.model.state_dict().items(), load_run(run.path).model.state_dict().items()):
        assert torch.equal(va, vb), k
    assert run.summary["test_acc"] == full.summary["test_acc"]
    assert not (run.path / LOCK_FILE).exists()


@pytest.mark.parametrize("crash_at", ["model.safetensors", "checkpoint.safetensors"])
def test_a_crash_at_either_weight_write_resumes_to_agreeing_files(tmp_path, monkeypatch, crash_at):
    full = _train(tmp_path, name="full", epochs=2)
    from interp.training import loop

    original = loop.save_tensors
    calls = {"n": 0}

    def crashing(path, tensors, metadata=None):
        if path.name == crash_at:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
        return original(path, tensors, metadata)

    monkeypatch.setattr(loop, "save_tensors", crashing)
    with pytest.raises(Exception):
        _train(tmp_path, name="cut", epochs=2)
    monkeypatch.setattr(loop, "save_tensors", original)
    resumed = resume("cut", root=tmp_path, device="cpu", progress=False, log=None)
    for (k, va), (_, vb) in zip(full.model.state_dict().items(), load_run(resumed.path).model.state_dict().items()):
        assert torch.equal(va, vb), k


def test_resume_rewrites_weights_older_than_the_checkpoint(tmp_path):
    """The disagreement of the old write order (checkpoint renamed, crash before model.safetensors):
    a checkpoint of the last epoch beside epoch-1 weights. The finished run's weights are the
    checkpoint's, the model its summary was evaluated on."""
    from interp.io import save_tensors

    one = _train(tmp_path, name="one", epochs=1)
    two = _train(tmp_path, name="two", epochs=2)
    save_tensors(two.path / "model.safetensors", dict(one.model.state_dict()), metadata={"epoch": "1"})
    state = json.loads((two.path / "state.json").read_text())
    (two.path / "state.json").write_text(json.dumps({**state, "status": "interrupted", "epoch": 1}))
    resumed = resume("two", root=tmp_path, device="cpu", progress=False, log=None)
    for (k, va), (_, vb) in zip(two.model.state_dict().items(), load_run(resumed.path).model.state_dict().items()):
        assert torch.equal(va, vb), k


def _edit_config(run_dir, **model_config):
    config = json.loads((run_dir / "config.json").read_text())
    config["model_config"].update(model_config)
    (run_dir / "config.json").write_text(json.dumps(config))


def test_a_config_of_another_architecture_names_the_first_bad_key_and_both_shapes(tmp_path):
    run = _train(tmp_path, name="edited", epochs=1)
    _edit_config(run.path, hidden=[100, 84])
    with pytest.raises(InterpError, match=r"fc1.weight has shape \(120, 400\) in the file but \(100, 400\) "
                                          r"in the model"):
        load_run(run.path)


def test_weights_with_a_missing_or_extra_tensor_are_named(tmp_path):
    from interp.io import save_tensors

    run = _train(tmp_path, name="cut", epochs=1)
    weights = dict(run.model.state_dict())
    del weights["fc3.bias"]
    save_tensors(run.path / "model.safetensors", weights)
    with pytest.raises(InterpError, match=r"missing 1 tensor \(first: fc3.bias\)"):
        load_run(run.path)
    weights = {**dict(run.model.state_dict()), "extra.weight": torch.zeros(2)}
    save_tensors(run.path / "model.safetensors", weights)
    with pytest.raises(InterpError, match=r"1 the model does not have \(first: extra.weight\)"):
        load_run(run.path)


def test_a_checkpoint_of_another_architecture_is_refused_on_resume(tmp_path):
    run = _train(tmp_path, name="ck", epochs=2)
    state = json.loads((run.path / "state.json").read_text())
    (run.path / "state.json").write_text(json.dumps({**state, "status": "interrupted", "epoch": 1}))
    _edit_config(run.path, channels=[8, 16])
    with pytest.raises(InterpError, match=r"checkpoint.safetensors does not match.*conv1.weight"):
        resume("ck", root=tmp_path, device="cpu", progress=False, log=None)
    assert not (run.path / LOCK_FILE).exists()


def test_cli_says_it_in_one_line(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("INTERP_MODELS_DIR", str(tmp_path))
    run = _train(tmp_path, name="bad", epochs=1)
    _edit_config(run.path, hidden=[100, 84])
    code, out, err = cli("weights", "--run", "bad", "--layer", "conv1")
    assert code == 2 and "Traceback" not in err and "fc1.weight has shape" in err
