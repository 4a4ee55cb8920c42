"""reports/index.html links every run's report and the zoo page."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from interp.report.index_page import build_reports_index, report_rows


def _fake_report(reports: Path, name: str, mtime: float | None = None) -> None:
    (reports / name).mkdir(parents=True)
    (reports / name / "index.html").write_text("<html></html>")
    if mtime is not None:
        os.utime(reports / name / "index.html", (mtime, mtime))


def test_lists_reports_newest_first_with_their_runs(tmp_path, tiny_run_dir):
    models, reports = tmp_path / "m", tmp_path / "r"
    models.mkdir()
    shutil.copytree(tiny_run_dir, models / "tiny")
    now = time.time()
    _fake_report(reports, "tiny", now - 100)
    _fake_report(reports, "orphan", now)
    _fake_report(reports, "zoo")
    _fake_report(reports, ".tiny.tmp-123")  # a build in progress is not a report
    rows = report_rows(reports, models)
    assert [r["name"] for r in rows] == ["orphan", "tiny"]
    assert rows[1]["model"] == "tutorial" and rows[1]["dataset"] == "shapes" and not rows[1]["run_missing"]
    assert rows[0]["run_missing"] and rows[0]["model"] is None

    html = build_reports_index(reports, models).read_text()
    assert 'href="tiny/index.html"' in html and 'href="orphan/index.html"' in html
    assert 'href="zoo/index.html"' in html
    assert "tmp-123" not in html
    assert (reports / "style.css").is_file()  # the page's stylesheet, relative


def test_names_are_escaped(tmp_path):
    reports = tmp_path / "r"
    _fake_report(reports, "<img src=x onerror=alert(1)>")
    html = build_reports_index(reports, tmp_path / "none").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_empty_reports_folder_says_how_to_make_one(tmp_path):
    reports = tmp_path / "r"
    reports.mkdir()
    html = build_reports_index(reports, tmp_path / "none").read_text()
    assert "interp report --run RUN" in html


def test_build_report_into_the_reports_folder_refreshes_the_index(tmp_path, monkeypatch):
    from interp.pipelines import report as pipeline

    reports = tmp_path / "reports"
    monkeypatch.setenv("INTERP_REPORTS_DIR", str(reports))
    _fake_report(reports, "a")
    pipeline._refresh_index(reports / "a")
    assert 'href="a/index.html"' in (reports / "index.html").read_text()
    # a report written elsewhere (--out) leaves the reports folder alone
    (reports / "index.html").unlink()
    _fake_report(tmp_path / "elsewhere", "b")
    pipeline._refresh_index(tmp_path / "elsewhere" / "b")
    assert not (reports / "index.html").exists()
