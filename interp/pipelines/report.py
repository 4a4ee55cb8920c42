"""The report pipeline: compute what is missing, then render (``interp report``).

Each modality's pipeline has an ``ensure(ctx)`` (listed in :data:`ENSURE`) that computes
and saves the results its report pages show, reusing those already saved (with the
settings they need) and never overwriting results of other settings. The report then
renders from what is saved (:func:`interp.report.render_report`): it never computes.

>>> index = build_report(interp.load_run("tutorial"))     # reports/tutorial/index.html
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..io import atomic_dir
from ..report import ReportContext, render_report
from ..report.registry import load_entry_points

# "module:function", run in this order.
ENSURE: list[str] = [
    "interp.pipelines.vision:ensure",
    "interp.pipelines.attribution:ensure",
    "interp.pipelines.language:ensure",
    "interp.pipelines.words:ensure",
    "interp.pipelines.claims:ensure",
]


def ensure_functions() -> list:
    """The ``ensure(ctx)`` functions of :data:`ENSURE`."""
    return load_entry_points(ENSURE)


def _carry_over(old: Path, new: Path) -> None:
    """Copy the previous report into the new folder, so saved results are reused.

    Real copies, not hard links: a pipeline that writes a file in place must never be
    able to change the previous report before the new one is complete.
    """
    if old.is_dir():
        shutil.copytree(old, new, dirs_exist_ok=True)


def build_report(run, *, out: str | os.PathLike | None = None, layers: list[str] | None = None,
                 steps: int | None = None, device: str = "cpu", progress: bool = True, seed: int = 0,
                 log=print) -> Path:
    """Compute what is missing and write the report; returns the path of its index.html.

    The report folder is written to a temporary sibling and swapped in whole, so an
    interrupted build leaves the previous report intact.
    """
    target = Path(out) if out is not None else run.report_dir()
    with atomic_dir(target) as tmp:
        _carry_over(target, tmp)
        ctx = ReportContext(run=run, root=tmp, layers=layers, steps=steps, device=device,
                            progress=progress, seed=seed, log=log)
        for ensure in ensure_functions():
            ensure(ctx)
        render_report(ctx)
    _refresh_index(target)
    return target / "index.html"


def _refresh_index(target: Path) -> None:
    """Rewrite ``reports/index.html`` when the report went into the reports folder (not a custom ``--out``)."""
    from ..report.index_page import build_reports_index
    from ..runs import reports_dir

    if target.parent.resolve() == reports_dir().resolve():
        build_reports_index(target.parent)
