"""``--out`` never destroys what a user owns: every command with ``--out`` checks it before any work."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from interp.errors import InterpError
from interp.outputs import check_output_folder, result_folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# Every command that takes --out, with the arguments that make it run on the tiny run (or a vectors file).
COMMANDS = {
    "weights": ["weights", "--layer", "conv1"],
    "examples": ["examples", "--layer", "conv1", "--units", "0", "-k", "1", "--no-progress"],
    "visualize": ["visualize", "--layer", "conv1", "--units", "0", "--steps", "2", "--natural", "0", "--no-progress"],
    "attribute pixels": ["attribute", "pixels", "--index", "0", "--methods", "saliency", "--no-progress"],
    "attribute units": ["attribute", "units", "--layer", "conv2", "--index", "0", "--steps", "2", "--no-progress"],
    "attribute trust": ["attribute", "trust", "--sample", "1", "--methods", "saliency", "--no-progress"],
    "attribute gallery": ["attribute", "gallery", "--per-class", "1", "--methods", "saliency", "--no-progress"],
    "attribute tokens": ["attribute", "tokens", "--prompt", "ab"],
    "report": ["report", "--layers", "conv1", "--steps", "2", "--no-progress"],
}


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A current folder (and home) of the test's own: a check that let `--out .` through would damage only this."""
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)
    (work / "mine.txt").write_text("the user's file")
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return work


def _argv(command: str, tiny_run_dir: Path, out: str) -> list[str]:
    return [*COMMANDS[command], "--run", str(tiny_run_dir), "--out", out]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("out, message", [
    (".", "is the current folder"),
    ("..", "is a parent of the current folder"),
    ("/", "is the filesystem root"),
    ("mine.txt", "is an existing file"),
    ("notes", "holds 2 files that are not an interp result (a.txt, b.md)"),
])
def test_hostile_out_is_refused_before_any_work_and_nothing_changes(cli, tiny_run_dir, workdir, command, out,
                                                                    message):
    (workdir / "notes").mkdir()
    (workdir / "notes" / "a.txt").write_text("a")
    (workdir / "notes" / "b.md").write_text("b")
    before = snapshot(workdir.parent)
    code, stdout, err = cli(*_argv(command, tiny_run_dir, out))
    assert code == 2, (code, stdout, err)
    assert message in err and f"--out {out}" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(workdir.parent) == before  # the file is not moved aside, the folder not replaced


def test_the_home_folder_is_refused(cli, tiny_run_dir, workdir, tmp_path):
    for out in (str(tmp_path / "home"), "~"):
        code, _, err = cli(*_argv("weights", tiny_run_dir, out))
        assert code == 2 and f"--out {out} is the home folder" in err, err


def test_embed_out_is_checked_before_the_vectors_load(cli, workdir):
    (workdir / "notes").mkdir()
    (workdir / "notes" / "a.txt").write_text("a")
    for out in (".", "notes", "mine.txt"):
        # the vectors file does not exist: the --out check comes first
        code, _, err = cli("embed", "neighbors", "king", "--vectors", "missing.txt", "--out", out)
        assert code == 2 and f"--out {out}" in err and "missing.txt" not in err, err


def test_a_previous_result_of_another_kind_is_refused(cli, tiny_run_dir, tmp_path):
    weights = tmp_path / "w"
    code, _, err = cli(*_argv("weights", tiny_run_dir, str(weights)))
    assert code == 0, err
    before = snapshot(weights)
    code, _, err = cli(*_argv("examples", tiny_run_dir, str(weights)))
    assert code == 2 and "holds a weights result, not a set of dataset examples" in err, err
    code, _, err = cli(*_argv("attribute pixels", tiny_run_dir, str(weights)))
    assert code == 2 and "holds a weights result, not an attribution result" in err, err
    assert snapshot(weights) == before


def test_rerun_with_the_same_out_replaces_only_that_result(cli, tiny_run_dir, tmp_path):
    out = tmp_path / "w"
    assert cli(*_argv("weights", tiny_run_dir, str(out)), "--units", "0-3", "--top", "2")[0] == 0
    first = snapshot(out)
    code, stdout, err = cli(*_argv("weights", tiny_run_dir, str(out)), "--units", "0-3", "--top", "2")
    assert code == 0, err
    assert snapshot(out) == first and f"-> {out}/" in stdout  # the same settings: written again in place
    code, stdout, err = cli(*_argv("weights", tiny_run_dir, str(out)), "--units", "0-3", "--top", "3")
    assert code == 0, err
    assert snapshot(out) == first  # other settings: the earlier result stays
    beside = [p for p in tmp_path.iterdir() if p.name.startswith("w-")]
    assert len(beside) == 1 and json.loads((beside[0] / "index.json").read_text())["settings"]["top"] == 3
    assert f"-> {beside[0]}/" in stdout


def test_a_previous_result_with_a_foreign_file_is_refused(cli, tiny_run_dir, tmp_path):
    out = tmp_path / "w"
    assert cli(*_argv("weights", tiny_run_dir, str(out)))[0] == 0
    (out / "notes.txt").write_text("mine")
    code, _, err = cli(*_argv("weights", tiny_run_dir, str(out)))
    assert code == 2 and "holds a previous set of weight views but also 1 file" in err and "notes.txt" in err, err
    assert (out / "notes.txt").read_text() == "mine"


def test_attribution_results_go_beside_each_other_in_one_out(cli, tiny_run_dir, tmp_path):
    out = tmp_path / "attr"
    assert cli(*_argv("attribute pixels", tiny_run_dir, str(out)))[0] == 0
    (out / "notes.txt").write_text("mine")  # added beside results, never deleted: accepted
    code, _, err = cli(*_argv("attribute units", tiny_run_dir, str(out)))
    assert code == 0, err
    kinds = sorted(json.loads(p.read_text())["kind"] for p in out.glob("*.json"))
    assert kinds == ["attribution", "unit-attribution"] and (out / "notes.txt").read_text() == "mine"


def test_default_output_paths_keep_working(cli, tiny_run_dir, tmp_path):
    code, stdout, err = cli("weights", "--run", str(tiny_run_dir), "--layer", "conv1")
    assert code == 0, err
    assert (tmp_path / "reports" / "tiny" / "weights" / "conv1" / "index.json").is_file()


def test_check_output_folder_accepts_new_empty_and_previous_folders(tmp_path):
    assert check_output_folder(tmp_path / "new" / "deeper", "weights") == tmp_path / "new" / "deeper"
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty", "featvis") == tmp_path / "empty"
    report = tmp_path / "site"
    report.mkdir()
    (report / "index.html").write_text('<title>Model · tiny · interp</title><a class="brand" href="index.html">')
    (report / "extra.txt").write_text("kept: a report build carries everything over")
    assert check_output_folder(report, "report") == report
    (report / "index.html").write_text("<title>my own site</title>")
    with pytest.raises(InterpError, match="holds 2 files that are not an interp result"):
        check_output_folder(report, "report")


def test_leftover_temporaries_do_not_count_as_foreign(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / ".index.json.12345-abcd.tmp").write_text("{")
    assert check_output_folder(folder, "weights") == folder


def test_result_folder_keeps_other_settings_beside(tmp_path):
    out = tmp_path / "fv"
    assert result_folder(out, "conv1", {"steps": 2}) == out  # new
    out.mkdir()
    (out / "index.json").write_text(json.dumps({"kind": "featvis", "layer": "conv1", "settings": {"steps": 2}}))
    assert result_folder(out, "conv1", {"steps": 2}) == out  # the same: merged or replaced there
    other = result_folder(out, "conv1", {"steps": 4})
    assert other.parent == tmp_path and other.name.startswith("fv-") and other != out
    assert result_folder(out, "conv2", {"steps": 2}) not in (out, other)  # another layer is other settings too


def test_default_examples_folder_keeps_a_result_of_other_settings(cli, tiny_run_dir, tmp_path, monkeypatch):
    """`interp examples -k 3` after `-k 2` (no --out): the first result stays, the second goes beside it."""
    monkeypatch.setenv("INTERP_REPORTS_DIR", str(tmp_path / "reports"))
    code, _, err = cli("examples", "--run", str(tiny_run_dir), "--layer", "conv1", "-k", "2", "--no-progress")
    assert code == 0, err
    first = tmp_path / "reports" / tiny_run_dir.name / "examples" / "conv1"
    before = snapshot(first)
    code, _, err = cli("examples", "--run", str(tiny_run_dir), "--layer", "conv1", "-k", "3", "--no-progress")
    assert code == 0, err
    assert snapshot(first) == before
    beside = [p for p in first.parent.iterdir() if p.name.startswith("conv1-")]
    assert len(beside) == 1 and (beside[0] / "index.json").is_file()


def test_examples_of_some_units_never_sit_where_the_report_reads_the_whole_layer(cli, tiny_run_dir, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("INTERP_REPORTS_DIR", str(tmp_path / "reports"))
    code, out, err = cli("examples", "--run", str(tiny_run_dir), "--layer", "conv1", "--units", "0-2",
                         "--no-progress")
    assert code == 0, err
    folder = tmp_path / "reports" / tiny_run_dir.name / "examples"
    assert [p.name for p in folder.iterdir()] == ["conv1-units-0-2"]  # not conv1/, which `interp report` fills
