"""Killed writers leave nothing behind for long: stale temporaries go, an interrupted swap is undone."""

from __future__ import annotations

import os
import subprocess
import sys

from interp.io import atomic_dir, remove_stale_temporaries, restore_interrupted_swap, write_text


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    (tmp_path / f".report.{dead}-abc.tmp").mkdir()
    (tmp_path / f".report.{dead}-abc.tmp" / "page.html").write_text("half")
    (tmp_path / f".summary.json.{dead}-x1.tmp").write_text("{")
    (tmp_path / f".report.{alive}-def.tmp").mkdir()
    (tmp_path / ".report.legacy.tmp").mkdir()  # no pid in the name: not ours to judge
    with atomic_dir(tmp_path / "report") as tmp:
        (tmp / "index.html").write_text("new")
    write_text(tmp_path / "summary.json", "{}")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f".report.{alive}-def.tmp", ".report.legacy.tmp", "report", "summary.json"])


def test_a_kill_between_the_swap_renames_is_undone_by_the_next_writer(tmp_path):
    target = tmp_path / "report"
    with atomic_dir(target) as tmp:
        (tmp / "index.html").write_text("v1")
    os.replace(target, tmp_path / ".report.old")  # the first rename happened, the second did not
    assert not target.exists()
    try:
        with atomic_dir(target) as tmp:
            assert (target / "index.html").read_text() == "v1"  # restored before the new build starts
            raise RuntimeError("the new build fails too")
    except RuntimeError:
        pass
    assert (target / "index.html").read_text() == "v1"  # the old report survives both failures


def test_restore_only_when_the_old_copy_is_the_only_one(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / ".r.old").mkdir()
    assert not restore_interrupted_swap(tmp_path / "r")
    assert remove_stale_temporaries(tmp_path / "nothing-here") == []
