"""The report's plug-in points: pages, sections and contributors.

A report is a set of :class:`Page` objects, each a list of :class:`Section` objects; a
section names a template partial (``templates/sections/NAME.html``) and the data it
draws. Each result type contributes through a function ``contribute(ctx)`` listed in
:data:`CONTRIBUTORS`: it computes what is missing (reusing saved results), then adds its
pages or appends its sections to existing pages. Adding a new analysis to the report
never touches the other contributors.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# "module:function", run in this order.
CONTRIBUTORS: list[str] = [
    "interp.report.model_page:contribute",
    "interp.report.vision:contribute",
    "interp.report.attribution_pages:contribute",
    "interp.report.transformer_pages:contribute",
    "interp.report.embedding_pages:contribute",
    "interp.report.claims_pages:contribute",
    "interp.report.circuit_pages:contribute",
    "interp.report.dynamics_section:contribute",
]


@dataclass
class Section:
    """One block of a page: a template partial and the data it draws."""

    id: str
    title: str
    template: str
    data: dict[str, Any] = field(default_factory=dict)
    order: int = 50


@dataclass
class Page:
    """One HTML file of the report, at ``path`` relative to the report root."""

    path: str
    title: str
    sections: list[Section] = field(default_factory=list)
    breadcrumbs: list[tuple[str, str]] = field(default_factory=list)
    """(title, path) pairs from the model page down to this page's parent."""
    prev: tuple[str, str] | None = None
    next: tuple[str, str] | None = None
    subtitle: str = ""

    def add(self, section: Section) -> Section:
        self.sections.append(section)
        return section


@dataclass
class ReportContext:
    """What contributors see: the run, the folder being written, options and pages."""

    run: Any
    root: Path
    """The (temporary) report folder; every file written goes under it."""
    layers: list[str] | None = None
    steps: int | None = None
    device: str = "cpu"
    progress: bool = True
    seed: int = 0
    pages: dict[str, Page] = field(default_factory=dict)
    nav: list[tuple[str, str]] = field(default_factory=list)
    """Top navigation entries (title, path)."""
    log: Any = print

    def page(self, path: str, title: str | None = None, **kwargs) -> Page:
        """The page at ``path``, created with ``title`` when new."""
        if path not in self.pages:
            self.pages[path] = Page(path, title or path, **kwargs)
        return self.pages[path]

    def path(self, relative: str) -> Path:
        """Absolute path of a file inside the report, parents created."""
        p = self.root / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def load_entry_points(entries: list[str]) -> list:
    """The functions named ``"module:function"`` in ``entries``, in order (imported on first use).

    >>> load_entry_points(["interp.report.model_page:contribute"])[0].__name__
    'contribute'
    """
    found = []
    for entry in entries:
        module_name, func = entry.split(":")
        found.append(getattr(importlib.import_module(module_name), func))
    return found


def load_contributors() -> list:
    """The report's ``contribute(ctx)`` functions (:data:`CONTRIBUTORS`)."""
    return load_entry_points(CONTRIBUTORS)
