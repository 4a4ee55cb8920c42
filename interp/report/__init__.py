"""Static HTML reports in the style of OpenAI Microscope and the Distill Circuits thread.

Results in, HTML out: :func:`render_report` turns the results saved in a report folder
into pages; it computes nothing. :func:`interp.pipelines.report.build_report` computes
what is missing first (``interp report``).

>>> ctx = ReportContext(run=run, root=Path("reports/tutorial"))
>>> render_report(ctx)           # reports/tutorial/index.html and every page below it
"""

from __future__ import annotations

from .registry import Page, ReportContext, Section, load_contributors
from .render import render_pages

__all__ = ["Page", "ReportContext", "Section", "render_report"]


def render_report(ctx: ReportContext) -> None:
    """Every contributor adds its pages from the saved results under ``ctx.root``; then all are written."""
    for contribute in load_contributors():
        contribute(ctx)
    render_pages(ctx)

