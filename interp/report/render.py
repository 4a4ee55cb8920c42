"""Jinja2 rendering of report pages: autoescaped, relative links, no network.

Every string from user data goes through Jinja's autoescape; templates never mark user
data ``|safe``. Links are made relative to the page being rendered with ``rel()``, so a
report works from ``file://`` and from any static host.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import jinja2

from ..io import write_text
from .registry import Page, ReportContext

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    env.filters["num"] = _num
    return env


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"


def relative(target: str, from_page: str) -> str:
    """Relative URL from page ``from_page`` to ``target`` (both relative to the report root).

    >>> relative("conv2/5.html", "conv1/3.html")
    '../conv2/5.html'
    """
    base = posixpath.dirname(from_page) or "."
    return posixpath.relpath(target, base)


def render_pages(ctx: ReportContext) -> list[Path]:
    """Write every page of ``ctx`` and the stylesheet; returns the written paths."""
    env = environment()
    template = env.get_template("page.html")
    written = []
    css = (STATIC / "style.css").read_text()
    write_text(ctx.path("style.css"), css)
    for path in sorted(ctx.pages):
        page: Page = ctx.pages[path]
        sections = sorted(page.sections, key=lambda s: (s.order, s.id))

        def rel(target: str, _from=page.path) -> str:
            return relative(target, _from)

        html = template.render(page=page, sections=sections, rel=rel, run_name=ctx.run.name,
                               nav=ctx.nav, css=rel("style.css"))
        out = ctx.path(path)
        write_text(out, html)
        written.append(out)
    return written
