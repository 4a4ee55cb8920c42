"""Matplotlib figures as PNG files: the one writer every analysis and report uses.

Kept out of :mod:`interp.report` so analyses can save figures without depending on
the report package. Layout is the figure's business (``layout="tight"`` or
``"constrained"`` when it is made); saving only crops, renders and writes.

>>> fig, ax = new_figure(6, 3.5)
>>> ax.plot([0, 1, 2], [3, 1, 2])
>>> save_figure(fig, "reports/run/figures/line.png")
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .io import atomic_path

# Every PNG is rendered at this resolution, whatever dpi the figure was made with or
# matplotlibrc says, so the same figure gives the same pixels on every machine.
DPI = 100


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, never a window)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_figure(width: float = 6.0, height: float = 3.5):
    """``(figure, axes)``: one axes, laid out tight when drawn (labels never overlap or clip)."""
    return pyplot().subplots(figsize=(width, height), dpi=DPI, layout="tight")


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG at ``path``, atomically and reproducibly, and close it.

    >>> save_figure(fig, "out/heads.png")
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        # bbox_inches="tight": nothing outside the axes (legends, colour bars, titles) is cut
        # off. Software=None: PNG's only varying metadata is matplotlib's version; without it
        # the bytes depend on the figure alone.
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    # Only pyplot keeps figures alive in its global list; one made with Figure() (no
    # pyplot imported) is freed with its last reference, so don't import pyplot for it.
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)
    return path
