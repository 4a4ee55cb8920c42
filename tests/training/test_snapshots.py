"""Weight snapshots during training (--checkpoints): schedule, files, resume, kill -9."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from interp.errors import InterpError
from interp.runs import load_run
from interp.snapshots import list_snapshots, load_snapshot, parse_schedule, snapshot_steps
from interp.training.loop import resume, train

CLI = [sys.executable, "-c", "import sys; from interp.cli import main; sys.exit(main(sys.argv[1:]))"]
DATA = "induction:vocab_size=16,min_block=2,max_block=6"
INDUCTION = dict(epochs=4, overrides={"steps_per_epoch": "5", "batch_size": "8", "n_layer": "1",
                                      "n_embd": "16", "n_head": "2", "block_size": "16",
                                      "checkpoints": "log:8"})


def test_schedules():
    assert snapshot_steps("log:8", 1000) == [0, 1, 3, 7, 19, 52, 139, 373, 1000]
    assert snapshot_steps("linear:4", 100) == [0, 25, 50, 75, 100]
    assert snapshot_steps("12", 5) == [0, 1, 2, 3, 4, 5]  # a short run gets fewer distinct steps
    assert 28 <= len(snapshot_steps("log", 100_000)) <= 31 and snapshot_steps("", 100) == []
    assert parse_schedule("none") is None
    for bad in ("weekly", "log:1", "log:x", "linear:100000"):
        with pytest.raises(InterpError):
            parse_schedule(bad)


def test_training_keeps_snapshots_and_they_load(tmp_path):
    run = train("attn-only", DATA, name="snap", device="cpu", progress=False, log=None, **INDUCTION)
    snaps = list_snapshots(run.path)
    assert [s.step for s in snaps] == snapshot_steps("log:8", 20)
    assert snaps[-1].epoch == pytest.approx(4.0)
    last = load_snapshot(run, snaps[-1].step)
    for k, v in run.model.state_dict().items():  # the last snapshot is the final model
        assert torch.equal(v, last.model.state_dict()[k]), k
    first = load_snapshot(run, 0)
    assert not all(torch.equal(v, first.model.state_dict()[k]) for k, v in run.model.state_dict().items())
    with pytest.raises(InterpError, match="no snapshot at step 7"):
        load_snapshot(run, 7)


def test_same_seed_same_snapshots_and_resume_rewrites_them_identically(tmp_path, monkeypatch):
    import interp.training.loop as loop
    from interp.training.loop import TrainingInterrupted

    a = train("attn-only", DATA, name="a", device="cpu", progress=False, log=None, **INDUCTION)
    original = loop.save_checkpoint

    def interrupted_in_epoch_3(run_dir, model, optimizer, epoch, elapsed):
        if epoch == 3:  # Ctrl-C after epoch 3's snapshots, before its checkpoint
            raise KeyboardInterrupt
        original(run_dir, model, optimizer, epoch, elapsed)

    monkeypatch.setattr(loop, "save_checkpoint", interrupted_in_epoch_3)
    with pytest.raises(TrainingInterrupted):
        train("attn-only", DATA, name="b", device="cpu", progress=False, log=None, **INDUCTION)
    monkeypatch.setattr(loop, "save_checkpoint", original)
    b = resume("b", device="cpu", progress=False, log=None)
    sa, sb = list_snapshots(a.path), list_snapshots(b.path)
    assert [s.step for s in sa] == [s.step for s in sb]
    for x, y in zip(sa, sb):
        wa, wb = load_snapshot(a, x).model.state_dict(), load_snapshot(b, y).model.state_dict()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), x.step


@pytest.mark.slow
def test_snapshots_survive_kill_9_and_resume(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "INTERP_THREADS": "1"}
    cmd = [*CLI, "train", "attn-only", "--dataset", DATA, "--epochs", "40",
           "--set", "steps_per_epoch=5", "--set", "batch_size=8", "--set", "n_embd=16", "--set", "block_size=16",
           "--checkpoints", "log:30", "--name", "k", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "models" / "k"
    deadline = time.time() + 120
    while time.time() < deadline and len(list_snapshots(folder)) < 12:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list((folder / "checkpoints").glob("*.tmp*"))  # atomic: no half-written snapshot is listed
    for snap in list_snapshots(folder):
        load_snapshot(load_run(folder), snap)  # every listed snapshot is complete
    subprocess.run([*CLI, "train", "--resume", "k", "--no-progress"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    assert [s.step for s in list_snapshots(folder)] == snapshot_steps("log:30", 200)
