"""Read-only folders, full disks and memory budgets: a one-line error naming the path or the
estimate, exit code 2, the previous result untouched and no temporary left behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import interp.io
from interp.errors import InterpError
from interp.io import atomic_dir, write_bytes

from test_out_safety import snapshot



def _permissions_enforced() -> bool:
    """False for root with its usual capabilities (it ignores file permissions); a root
    without CAP_DAC_OVERRIDE (``setpriv --inh-caps=-dac_override ...``) is held to them."""
    if os.geteuid() != 0:
        return True
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o555)
        try:
            open(os.path.join(folder, "probe"), "w").close()
        except PermissionError:
            return True
        finally:
            os.chmod(folder, 0o755)
    return False


needs_permissions = pytest.mark.skipif(not _permissions_enforced(), reason="root ignores file permissions")


def _weights(cli, run: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return cli("weights", "--run", str(run), "--layer", "conv1", "--out", str(out), *extra)


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _no_temporaries(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".old")]
    assert not left, left


def _fail_writes(monkeypatch, code: int) -> None:
    """Every byte written through interp.io fails as a full (or read-only, or forbidden) disk would."""
    def refuse(file, data):
        raise OSError(code, os.strerror(code), str(file))
    monkeypatch.setattr(interp.io, "_write_file", refuse)


@pytest.fixture
def previous(cli, tiny_run_dir, tmp_path) -> Path:
    """A weights result saved earlier, to be left byte-identical by every failure."""
    out = tmp_path / "results" / "w"
    code, _, err = _weights(cli, tiny_run_dir, out)
    assert code == 0, err
    return out


@needs_permissions
def test_read_only_out_is_refused_before_the_work(cli, tiny_run_dir, tmp_path, previous):
    before = snapshot(previous)
    parent = previous.parent
    parent.chmod(0o555)
    try:
        code, _, err = _weights(cli, tiny_run_dir, previous)
        new_code, _, new_err = _weights(cli, tiny_run_dir, parent / "new")
    finally:
        parent.chmod(0o755)
    assert code == 2 and "cannot write in" in _one_line(err) and str(parent) in err, err
    assert new_code == 2 and str(parent) in _one_line(new_err), new_err
    assert snapshot(previous) == before
    _no_temporaries(parent)


@needs_permissions
def test_read_only_reports_folder_is_refused_for_the_default_path(cli, tiny_run_dir, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o555)
    try:
        code, _, err = cli("weights", "--run", str(tiny_run_dir), "--layer", "conv1")
    finally:
        reports.chmod(0o755)
    assert code == 2 and str(reports) in _one_line(err), err


def test_an_unwritable_place_is_found_before_the_work_even_as_root(cli, tiny_run_dir, previous, monkeypatch):
    import interp.outputs

    def denied(folder):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder / ".probe"))
    monkeypatch.setattr(interp.outputs, "_probe", denied)
    monkeypatch.setattr(interp.io, "_write_file", lambda *a: pytest.fail("the work started"))
    before = snapshot(previous)
    code, _, err = _weights(cli, tiny_run_dir, previous)
    line = _one_line(err)
    assert code == 2 and f"cannot write in {previous.parent} (Permission denied)" in line, line
    assert snapshot(previous) == before


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk full"), (errno.EACCES, "is not writable"),
                                         (errno.EROFS, "read-only file system")])
def test_a_failing_disk_leaves_the_previous_result_and_no_temporaries(cli, tiny_run_dir, previous, monkeypatch,
                                                                       code, words):
    before = snapshot(previous)
    _fail_writes(monkeypatch, code)
    exit_code, _, err = _weights(cli, tiny_run_dir, previous)  # the same settings: written in place
    line = _one_line(err)
    assert exit_code == 2 and words in line, line
    assert f"cannot write {previous}/" in line and ".tmp" not in line, line  # the final path, not a temporary
    assert snapshot(previous) == before
    _no_temporaries(previous.parent)


def test_a_full_disk_in_a_file_result_leaves_no_temporary(cli, tiny_run_dir, tmp_path, monkeypatch):
    out = tmp_path / "attr"
    _fail_writes(monkeypatch, errno.ENOSPC)
    code, _, err = cli("attribute", "pixels", "--run", str(tiny_run_dir), "--index", "0", "--methods", "saliency",
                       "--no-progress", "--out", str(out))
    assert code == 2 and "disk full: cannot write" in _one_line(err) and str(out) in err, err
    _no_temporaries(tmp_path)


def test_debug_still_shows_the_traceback(cli, tiny_run_dir, previous, monkeypatch):
    _fail_writes(monkeypatch, errno.ENOSPC)
    code, _, err = cli("--debug", "weights", "--run", str(tiny_run_dir), "--layer", "conv1", "--out", str(previous))
    assert code == 2 and "Traceback" in err and "No space left on device" in err and "disk full" in err


def test_unrelated_os_errors_pass_unchanged(tmp_path, monkeypatch):
    def broken(file, data):
        raise OSError(errno.EIO, "Input/output error", str(file))
    monkeypatch.setattr(interp.io, "_write_file", broken)
    with pytest.raises(OSError, match="Input/output error"):
        write_bytes(tmp_path / "x.bin", b"1")
    assert list(tmp_path.iterdir()) == []


def test_a_denied_read_inside_a_folder_build_is_not_called_a_write_error(tmp_path):
    with pytest.raises(PermissionError):
        with atomic_dir(tmp_path / "out"):
            raise PermissionError(errno.EACCES, "Permission denied", "/elsewhere/input.png")
    with pytest.raises(InterpError, match=r"cannot write .*out/page\.html: .* is not writable"):
        with atomic_dir(tmp_path / "out") as tmp:
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp / "page.html"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ memory budgets


@pytest.fixture(scope="module")
def induction_run(tmp_path_factory) -> Path:
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("budget-models")
    train("attn-only", "induction:vocab_size=16,min_block=3,max_block=6", name="ind", epochs=1, root=root,
          device="cpu", progress=False, log=None,
          overrides={"n_embd": "16", "block_size": "16", "batch_size": "8", "steps_per_epoch": "2"})
    return root / "ind"


VISUALIZE = ["visualize", "--layer", "conv1", "--steps", "2", "--natural", "0", "--no-progress"]


@pytest.mark.parametrize("extra", [["--units", "0-1"], ["--units", "0", "--size", "2048"]])
def test_visualize_over_the_memory_budget_stops_before_allocating(cli, tiny_run_dir, tmp_path, monkeypatch, extra):
    monkeypatch.setenv("INTERP_MEMORY_BUDGET", "16K")
    code, _, err = cli(*VISUALIZE, *extra, "--run", str(tiny_run_dir), "--out", str(tmp_path / "fv"))
    line = _one_line(err)
    assert code == 2 and "needs about" in line and "over the memory budget of 16 KiB" in line, line
    assert "px" in line and not (tmp_path / "fv").exists()


def test_visualize_within_the_default_budget_runs(cli, tiny_run_dir, tmp_path):
    code, _, err = cli(*VISUALIZE, "--units", "0-1", "--run", str(tiny_run_dir), "--out", str(tmp_path / "fv"))
    assert code == 0, err


@pytest.mark.parametrize("command, what", [(["heads", "--sequences", "8"], "scoring every head"),
                                           (["ablate", "--sequences", "8"], "ablating every head")])
def test_transformer_commands_over_the_memory_budget(cli, induction_run, monkeypatch, command, what):
    monkeypatch.setenv("INTERP_MEMORY_BUDGET", "64K")
    code, _, err = cli(*command, "--run", str(induction_run))
    line = _one_line(err)
    assert code == 2 and what in line and "needs about" in line and "8 sequences of 16 tokens" in line, line
    assert "use fewer --sequences" in line
    monkeypatch.delenv("INTERP_MEMORY_BUDGET")
    code, _, err = cli(*command, "--run", str(induction_run))
    assert code == 0, err


def test_the_visualize_estimate_grows_with_units_and_size():
    from interp.analysis.vision.featvis import render_bytes

    small = render_bytes(16, 16, 32, 512, 10_000)
    assert render_bytes(32, 16, 32, 512, 10_000) > small  # more units kept
    assert render_bytes(16, 16, 32, 512, 40_000) > 2 * small  # a wider layer's activations
    assert render_bytes(16, 16, 64, 8, 0) > 3.9 * render_bytes(16, 16, 32, 8, 0)  # 4x the pixels
    # 512 units of 2048 px with diversity 4 and negatives: far beyond any machine
    assert render_bytes(512 * 8, 64, 2048, 512, 10**6) > 500 << 30
