"""The zoo page of ``interp zoo``: accuracy against parameters and time, first-layer filters.

Reads the saved ``models/zoo.json`` (see :mod:`interp.grid`) and the grid's runs; writes
``reports/zoo/index.html`` atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InterpError
from ..io import atomic_dir
from ..plots import new_figure, pyplot, save_figure
from .registry import ReportContext, Section
from .render import render_pages


class _ZooRun:
    """The few attributes the page template needs from a 'run'."""

    name = "zoo"


def build_zoo_report(zoo_json: str | os.PathLike | None = None, *, out: str | os.PathLike | None = None) -> Path:
    """Write the zoo comparison page; returns its index.html.

    >>> build_zoo_report("models/zoo.json")
    """
    from ..runs import load_run, models_dir, reports_dir

    zoo_json = Path(zoo_json) if zoo_json else models_dir() / "zoo.json"
    if not zoo_json.exists():
        raise InterpError(f"{zoo_json} does not exist; run `interp zoo` first")
    zoo = json.loads(zoo_json.read_text())
    rows = zoo["rows"]
    target = Path(out) if out else reports_dir() / "zoo"
    with atomic_dir(target) as tmp:
        ctx = ReportContext(run=_ZooRun(), root=tmp, progress=False)
        ctx.nav.append(("Zoo", "index.html"))
        page = ctx.page("index.html", "Architecture zoo", subtitle=(
            f"Every model trained for {zoo['epochs']} epoch{'s' if zoo['epochs'] != 1 else ''} on "
            f"{zoo['dataset']} with the same recipe."))
        _scatter(rows, "parameters", "parameters (log scale)", ctx.path("figures/acc_params.png"), log=True)
        _scatter(rows, "train_seconds", "training seconds", ctx.path("figures/acc_time.png"))
        page.add(Section("comparison", "Accuracy, size and time", "zoo_table.html", {
            "rows": sorted(rows, key=lambda r: -r["test_acc"]),
            "figures": ["figures/acc_params.png", "figures/acc_time.png"],
            "settings": zoo.get("settings", {}),
        }, order=10))
        filters = []
        for row in rows:
            try:
                run = load_run(row["run"], root=zoo_json.parent)
            except InterpError:
                continue
            first = next((l for l in run.layers if l.kind == "conv"), None)
            if first is None:
                continue
            rel = f"figures/filters_{row['entry']}.png"
            _filters_png(run.model, first.name, ctx.path(rel))
            filters.append({"entry": row["entry"], "layer": first.name, "image": rel})
        if filters:
            page.add(Section("filters", "First-layer filters side by side", "zoo_filters.html",
                             {"items": filters}, order=20))
        render_pages(ctx)
    return target / "index.html"


def _scatter(rows, key, label, path, log=False):
    fig, ax = new_figure(5.0, 3.4)
    for row in rows:
        colour = "#2156a5" if row["model"] != "mlp" and not row["model"].startswith("mlp") else "#c0392b"
        ax.scatter(row[key], row["test_acc"], color=colour, s=22)
        ax.annotate(row["entry"], (row[key], row["test_acc"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(label), ax.set_ylabel("test accuracy")
    save_figure(fig, path)


def _filters_png(model, layer: str, path: Path) -> None:
    """Conv filters as RGB tiles, each scaled symmetrically around zero (grey = 0)."""
    weight = dict(model.named_modules())[layer].weight.detach().float().cpu()  # (out, in, k, k)
    if weight.shape[1] != 3:
        weight = weight.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    scale = weight.flatten(1).abs().amax(1).clamp_min(1e-8).view(-1, 1, 1, 1)
    tiles = (weight / scale * 0.5 + 0.5).clamp(0, 1)
    n = tiles.shape[0]
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    fig, axes = pyplot().subplots(rows, cols, figsize=(cols * 0.6, rows * 0.6), dpi=100, squeeze=False,
                                  layout="tight")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(tiles[i].permute(1, 2, 0).numpy(), interpolation="nearest")
    save_figure(fig, path)
