"""Static HTML reports in the style of OpenAI Microscope and the Distill Circuits thread.

>>> path = build_report(interp.load_run("tutorial"))
>>> path  # reports/tutorial/index.html

The report folder is written to a temporary sibling and swapped in whole, so an
interrupted build leaves the previous report intact. Saved results inside the old
folder (feature visualisations, dataset examples, ...) are carried over and reused.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..io import atomic_dir
from .registry import Page, ReportContext, Section, load_contributors
from .render import render_pages

__all__ = ["Page", "ReportContext", "Section", "build_report"]


def _carry_over(old: Path, new: Path) -> None:
    """Copy the previous report into the new folder, so saved results are reused.

    Real copies, not hard links: a contributor that writes a file in place must never
    be able to change the previous report before the new one is complete.
    """
    if old.is_dir():
        shutil.copytree(old, new, dirs_exist_ok=True)


def build_report(run, *, out: str | os.PathLike | None = None, layers: list[str] | None = None,
                 steps: int | None = None, device: str = "cpu", progress: bool = True, seed: int = 0,
                 log=print) -> Path:
    """Compute what is missing and write the report; returns the path of its index.html."""
    target = Path(out) if out is not None else run.report_dir()
    with atomic_dir(target) as tmp:
        _carry_over(target, tmp)
        ctx = ReportContext(run=run, root=tmp, layers=layers, steps=steps, device=device,
                            progress=progress, seed=seed, log=log)
        for contribute in load_contributors():
            contribute(ctx)
        render_pages(ctx)
    return target / "index.html"
