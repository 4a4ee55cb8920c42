"""The zoo page of ``interp zoo``: mean accuracy and its seed spread, size, time, findings, filters.

Reads the saved ``models/zoo.json`` (:func:`interp.results.zoo.load_zoo`; version 1 single-seed files
too) and the grid's runs; writes ``reports/zoo/index.html`` atomically. The findings text is
the one saved with the numbers (computed from them, :func:`interp.analysis.zoo_grid.zoo_findings`).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..errors import InterpError
from ..io import atomic_dir
from ..plots import new_figure, pyplot, save_figure
from .registry import ReportContext, Section
from .render import render_pages

CNN_COLOUR, MLP_COLOUR = "#2156a5", "#c0392b"


class _ZooRun:
    """The few attributes the page template needs from a 'run'."""

    name = "zoo"


def build_zoo_report(zoo_json: str | os.PathLike | None = None, *, out: str | os.PathLike | None = None) -> Path:
    """Write the zoo comparison page; returns its index.html.

    >>> build_zoo_report("models/zoo.json")
    """
    from ..results.zoo import load_zoo, zoo_file
    from ..runs import load_run, models_dir, reports_dir

    zoo_json = zoo_file(zoo_json) if zoo_json else zoo_file(models_dir())
    zoo = load_zoo(zoo_json)
    rows = sorted((dict(r) for r in zoo.rows), key=lambda r: -r["test_acc"])
    target = Path(out) if out else reports_dir() / "zoo"
    same_root = zoo_json.parent.resolve() == models_dir().resolve()
    for row in rows:
        row["report_href"], row["report_command"] = _report_link(row["run"], target, reports_dir(),
                                                                 row["run"] if same_root else
                                                                 str(zoo_json.parent / row["run"]))
        row["interval"] = row["test_acc_ci"]
    seeds = zoo.seeds
    epochs = zoo.epochs if zoo.epochs is not None else "?"
    seed_text = (f"seeds 0-{seeds - 1} ({seeds} per entry)" if seeds > 1 else
                 "one seed per entry (no spread: no difference can be called)")
    with atomic_dir(target) as tmp:
        ctx = ReportContext(run=_ZooRun(), root=tmp, progress=False)
        ctx.nav.append(("Zoo", "index.html"))
        page = ctx.page("index.html", "Architecture zoo", subtitle=(
            f"Every model trained for {epochs} epoch{'s' if epochs != 1 else ''} on "
            f"{zoo.dataset} with the same recipe, {seed_text}."))
        _accuracy_plot(rows, ctx.path("figures/acc_entries.png"))
        _scatter(rows, "parameters", "parameters (log scale)", ctx.path("figures/acc_params.png"), log=True)
        _scatter(rows, "train_seconds", "mean training seconds", ctx.path("figures/acc_time.png"))
        page.add(Section("findings", "What the numbers say", "zoo_findings.html",
                         {"findings": zoo.findings, "seeds": seeds}, order=5))
        page.add(Section("comparison", "Accuracy, size and time", "zoo_table.html", {
            "rows": rows,
            "figures": ["figures/acc_entries.png", "figures/acc_params.png", "figures/acc_time.png"],
            "settings": zoo.settings,
            "seeds": seeds,
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
            page.add(Section("filters", "First-layer filters side by side (seed 0)", "zoo_filters.html",
                             {"items": filters}, order=20))
        render_pages(ctx)
    if target.parent.resolve() == reports_dir().resolve():
        from .index_page import build_reports_index

        build_reports_index(target.parent)
    return target / "index.html"


def _report_link(run: str, page_dir: Path, reports: Path, run_arg: str) -> tuple[str | None, str]:
    """(relative href to the run's report index.html, or None when not built; the command to build it)."""
    index = reports / run / "index.html"
    command = f"interp report --run {shlex.quote(run_arg)}"
    if not index.is_file():
        return None, command
    href = os.path.relpath(index.resolve(), page_dir.resolve())
    return Path(href).as_posix(), command


def _colour(row) -> str:
    return MLP_COLOUR if str(row.get("model", "")).startswith("mlp") else CNN_COLOUR


def _accuracy_plot(rows, path):
    """Mean accuracy per entry with its 95% interval as error bars and every seed as a dot."""
    fig, ax = new_figure(max(4.5, 0.75 * len(rows) + 1.5), 3.4)
    for i, row in enumerate(rows):
        colour = _colour(row)
        ci = row.get("test_acc_ci")
        yerr = None if not ci else [[row["test_acc"] - ci[0]], [ci[1] - row["test_acc"]]]
        ax.errorbar([i], [row["test_acc"]], yerr=yerr, fmt="s", color=colour, capsize=4, markersize=6, zorder=3)
        accs = row["test_accs"]
        offsets = [0.0] if len(accs) == 1 else [-0.15 + 0.3 * k / (len(accs) - 1) for k in range(len(accs))]
        ax.scatter([i + 0.25 + o * 0.5 for o in offsets], accs, color=colour, s=12, alpha=0.6, zorder=2)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["entry"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_title("mean, 95% interval (bars) and each seed (dots)", fontsize=9)
    save_figure(fig, path)


def _scatter(rows, key, label, path, log=False):
    fig, ax = new_figure(5.0, 3.4)
    for row in rows:
        if row.get(key) is None:
            continue
        sd = row.get("test_acc_sd")
        ax.errorbar([row[key]], [row["test_acc"]], yerr=None if sd is None else [sd], fmt="o", color=_colour(row),
                    markersize=4.5, capsize=3)
        ax.annotate(row["entry"], (row[key], row["test_acc"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(label), ax.set_ylabel("mean test accuracy (± sd)")
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
