"""Shared fixtures: isolated models/ and reports/ folders, and one tiny trained run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny models gain nothing from intra-op threads, and on a shared 2-core machine two
# threads per process oversubscribe badly; the library itself never changes this.
torch.set_num_threads(1)
os.environ.setdefault("INTERP_THREADS", "1")  # and the CLI's automatic thread policy keeps to it

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _fp32_on_every_machine():
    """precision=auto trains in bf16 on CPUs with AVX512-BF16 and in fp32 elsewhere: the tests
    (gold pages, planted verdicts) see fp32 on every machine. Set up before the session's
    trained fixtures; tests of the choice itself keep the real function (tests/test_threads.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("interp.device.native_bf16", lambda device="cpu": False)
        yield


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own models/, reports/ and cache folders."""
    monkeypatch.setenv("INTERP_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("INTERP_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("INTERP_DATA_DIR", str(tmp_path / "data"))
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # a test that changes the thread count leaves it to itself


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory) -> Path:
    """A tutorial net trained for 2 epochs on 2,000 shapes images (a few seconds), shared read-only."""
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("session-models")
    train("tutorial", "shapes", name="tiny", epochs=2, root=root, device="cpu", progress=False, log=None,
          overrides={"n_train": "2000", "n_test": "500"})
    return root / "tiny"


@pytest.fixture(scope="session")
def tiny_report(tiny_run_dir, tmp_path_factory) -> Path:
    """The full report of the tiny run (16 visualisation steps), built once; returns index.html."""
    import shutil

    from interp.pipelines.report import build_report
    from interp.runs import load_run

    root = tmp_path_factory.mktemp("session-report")
    shutil.copytree(tiny_run_dir, root / "tiny")
    return build_report(load_run(root / "tiny"), out=root / "report", steps=16, device="cpu",
                        progress=False, log=None)


@pytest.fixture
def tiny_run(tiny_run_dir):
    from interp.runs import load_run

    return load_run(tiny_run_dir)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "cifar10-jpeg").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def cli():
    """``cli("train", "tutorial", ...)`` runs the CLI in-process -> (exit code, stdout, stderr)."""
    return run_cli


def run_cli(*argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from interp.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse errors
            code = e.code if isinstance(e.code, int) else 2
    return code, out.getvalue(), err.getvalue()
