"""Matplotlib figures for reports, saved with :func:`interp.plots.save_figure` (same data -> same bytes)."""

from __future__ import annotations

from pathlib import Path

from ..plots import new_figure, pyplot, save_figure


def training_curves(metrics: list[dict], path: Path) -> Path | None:
    """Loss (left) and accuracy (right) per epoch."""
    if not metrics:
        return None
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(9, 3.2), dpi=100, layout="tight")
    epochs = [m["epoch"] for m in metrics]
    for key, style in (("train_loss", "-o"), ("test_loss", "--o"), ("val_loss", "--o")):
        points = [(e, m[key]) for e, m in zip(epochs, metrics) if key in m]
        if points:
            ax1.plot(*zip(*points), style, label=key.replace("_", " "), ms=3)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("epoch"), ax1.set_ylabel("loss"), ax1.legend(frameon=False)
    plotted = False
    for key, style in (("train_acc", "-o"), ("test_acc", "--o")):
        points = [(e, m[key]) for e, m in zip(epochs, metrics) if key in m]
        if points:
            ax2.plot(*zip(*points), style, label=key.replace("_", " "), ms=3)
            plotted = True
    if plotted:
        ax2.set_xlabel("epoch"), ax2.set_ylabel("accuracy"), ax2.set_ylim(0, 1), ax2.legend(frameon=False)
    else:
        ax2.axis("off")
    return save_figure(fig, path)


def confusion_matrix(confusion: list[list[int]], classes: list[str], path: Path) -> Path:
    import numpy as np

    m = np.asarray(confusion, dtype=float)
    rates = m / np.maximum(m.sum(1, keepdims=True), 1)
    k = len(classes)
    fig, ax = new_figure(0.38 * k + 2.2, 0.34 * k + 1.8)
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, path)
