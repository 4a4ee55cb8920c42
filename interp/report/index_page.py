"""``reports/index.html``: one page that links every run's report and the zoo page.

Reads what is there: each ``reports/NAME/index.html`` is a report (its run's model,
dataset and accuracy come from ``models/NAME`` when that run folder exists), and
``reports/zoo/index.html`` is the zoo page. Rewritten after every ``interp report`` and
``interp zoo`` that writes into the reports folder; links are relative.

>>> build_reports_index()          # reports/index.html
"""

from __future__ import annotations

import os
from pathlib import Path

from .registry import ReportContext, Section
from .render import render_pages


class _Index:
    """The few attributes the page template needs from a 'run'."""

    name = "all reports"


def report_rows(reports: Path, models: Path) -> list[dict]:
    """One row per report folder under ``reports`` (the zoo page excluded), newest report first."""
    from ..runs import run_table

    runs = {row["name"]: row for row in run_table(models)} if models.is_dir() else {}
    rows = []
    for index in reports.glob("*/index.html"):
        name = index.parent.name
        if name == "zoo" or name.startswith("."):
            continue  # staging folders of a build in progress start with "."
        run = runs.get(name, {})
        rows.append({"name": name, "href": f"{name}/index.html", "model": run.get("model"),
                     "dataset": run.get("dataset"), "accuracy": run.get("accuracy"),
                     "val_loss": run.get("val_loss"), "built": index.stat().st_mtime,
                     "run_missing": name not in runs})
    rows.sort(key=lambda r: (-r["built"], r["name"]))
    return rows


def build_reports_index(reports: str | os.PathLike | None = None, models: str | os.PathLike | None = None) -> Path:
    """Write ``reports/index.html`` listing every report under ``reports``; returns its path."""
    import time

    from ..runs import models_dir, reports_dir

    reports = Path(reports) if reports is not None else reports_dir()
    models = Path(models) if models is not None else models_dir()
    rows = report_rows(reports, models)
    for row in rows:
        row["built"] = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["built"]))
    ctx = ReportContext(run=_Index(), root=reports, progress=False)
    zoo = (reports / "zoo" / "index.html").is_file()
    page = ctx.page("index.html", "Reports", subtitle=(
        f"{len(rows)} run report{'s' if len(rows) != 1 else ''} in {reports}" + (" and the architecture zoo" if zoo
                                                                               else "")))
    page.add(Section("reports", "Run reports", "reports_index.html", {"rows": rows, "zoo": zoo}, order=10))
    render_pages(ctx)
    return reports / "index.html"
