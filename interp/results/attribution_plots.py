"""Pictures of attribution results: maps, deletion/insertion curves, randomisation, units, tokens.

Rendering only, called at save time by :mod:`interp.results.attribution`: every function
takes a result object from :mod:`~interp.analysis.attribution.attribute`,
:mod:`~interp.analysis.attribution.trust`, :mod:`~interp.analysis.attribution.units` or
:mod:`~interp.analysis.attribution.tokens` and returns a matplotlib ``Figure`` (built
without pyplot, so no backend is chosen and no global figure list grows).

>>> fig = plot_attribution(attr)
>>> interp.plots.save_figure(fig, "maps.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..analysis.attribution.methods import METHODS

if TYPE_CHECKING:
    from ..analysis.attribution.attribute import Attribution
    from ..analysis.attribution.tokens import TokenAttribution
    from ..analysis.attribution.trust import PerturbationCurves, SanityCheck
    from ..analysis.attribution.units import ClassUnitSummary, UnitAttribution


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(figure, axes)`` like ``plt.subplots``, without pyplot: no backend choice, no global figure list."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def show_map(ax, attr: Attribution, method: str, i: int) -> None:
    """Draw image ``i``'s map for ``method`` on ``ax``: diverging colours for signed maps."""
    pm = attr.pixel_map(method)[i].numpy()
    gray = attr.images[i].mean(0).numpy()
    ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
    if METHODS.get(method, METHODS["ig"]).signed:
        lim = float(np.quantile(np.abs(pm), 0.99)) or 1e-12
        ax.imshow(pm, cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.8)
    else:
        lim = float(np.quantile(pm, 0.99)) or 1e-12
        ax.imshow(pm, cmap="inferno", vmin=0, vmax=lim, alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_attribution(attr: Attribution, max_images: int = 8):
    """A figure: per image the input, the top-5 prediction and one map per method."""
    n = min(len(attr), max_images)
    cols = 2 + len(attr.methods)
    fig, axes = subplots(n, cols, figsize=(1.9 * cols + 1.2, 2.1 * n), squeeze=False,
                         gridspec_kw={"width_ratios": [1, 1.4] + [1] * len(attr.methods)})
    top = attr.top(5)
    for i in range(n):
        ax = axes[i, 0]
        ax.imshow(attr.images[i].permute(1, 2, 0).numpy().squeeze(), cmap="gray" if attr.images.shape[1] == 1 else None)
        label = f"label {attr.class_name(int(attr.labels[i]))}\n" if attr.labels is not None else ""
        ax.set_title(f"{attr.sources[i] if i < len(attr.sources) else ''}\n{label}"
                     f"target {attr.class_name(int(attr.targets[i]))}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax = axes[i, 1]
        names = [c for c, _ in top[i]][::-1]
        values = [p for _, p in top[i]][::-1]
        colors = ["tab:orange" if c == attr.class_name(int(attr.targets[i])) else "tab:blue" for c in names]
        ax.barh(range(len(names)), values, color=colors)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=6)
        ax.set_title("top 5", fontsize=8)
        for j, method in enumerate(attr.methods):
            ax = axes[i, 2 + j]
            show_map(ax, attr, method, i)
            title = METHODS[method].title if method in METHODS else method
            if method == "ig" and attr.completeness is not None:
                title += f"\ncompleteness err {100 * float(attr.completeness.relative_error[i]):.1f}%"
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- trust


def _title(method: str) -> str:
    return METHODS[method].title if method in METHODS else "random ranking"


def plot_curves(curves: PerturbationCurves):
    """Mean deletion and insertion curves per method, AUC in the legend."""
    fig, axes = subplots(1, 2, figsize=(11, 4))
    for ax, kind in zip(axes, ("deletion", "insertion")):
        auc = curves.auc(kind)
        for m, c in curves.by_kind(kind).items():
            style = dict(color="gray", linestyle="--") if m == "random" else {}
            ax.plot(curves.fractions, c.mean(0), label=f"{_title(m)} (AUC {auc[m]:.3f})", **style)
        base = curves.deletion_baseline if kind == "deletion" else curves.insertion_baseline
        better = "lower" if kind == "deletion" else "higher"
        ax.set_title(f"{kind} ({base} image; {better} AUC is better)", fontsize=10)
        ax.set_xlabel(f"fraction of pixels {'removed' if kind == 'deletion' else 'inserted'}")
        ax.set_ylabel("probability of the target class")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_sanity(sanity: SanityCheck, max_images: int = 3):
    """Per method: trained-model map, randomised-model map (a few images) and mean Spearman."""
    methods = [m for m in sanity.methods if m in sanity.trained_maps]
    n = min(max_images, len(next(iter(sanity.trained_maps.values()))) if methods else 0)
    if not methods or n == 0:
        fig, ax = subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no maps", ha="center")
        return fig
    rho = sanity.mean()
    fig, axes = subplots(len(methods), 2 * n, figsize=(1.6 * 2 * n + 1, 1.8 * len(methods)), squeeze=False)
    for r, m in enumerate(methods):
        for i in range(n):
            for j, (maps, label) in enumerate(((sanity.trained_maps, "trained"), (sanity.random_maps, "random"))):
                ax = axes[r, 2 * i + j]
                pm = np.abs(maps[m][i]) if sanity.absolute else maps[m][i]
                ax.imshow(pm, cmap="inferno")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"image {i + 1}: {label}", fontsize=8)
        value = rho[m]
        axes[r, 0].set_ylabel(f"{_title(m)}\nrho {value:.2f}" if np.isfinite(value) else f"{_title(m)}\nrho n/a",
                              fontsize=8)
    fig.suptitle("model randomisation: maps should change (low rank correlation)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- units


def plot_unit_attribution(result: UnitAttribution):
    """Bar chart of each unit's mean attribution (red excites the target, blue inhibits)."""
    values = result.mean().numpy()
    fig, ax = subplots(figsize=(max(4.0, 0.28 * len(values) + 1.5), 3))
    ax.bar(range(len(values)), values, color=["tab:red" if v >= 0 else "tab:blue" for v in values])
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel(f"{result.layer} unit")
    ax.set_ylabel(f"attribution ({result.method})")
    if len(values) <= 64:
        ax.set_xticks(range(len(values)))
        ax.tick_params(axis="x", labelsize=7)
    targets = sorted({result.classes[t] if t < len(result.classes) else str(t) for t in result.targets.tolist()})
    ax.set_title(f"{result.layer} units -> {', '.join(targets[:4])}{' ...' if len(targets) > 4 else ''} "
                 f"({len(result.scores)} image{'s' if len(result.scores) != 1 else ''})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_class_unit_summary(summary: ClassUnitSummary):
    """Classes x units heat map of mean attribution (red: the unit pushes towards the class)."""
    m = summary.matrix.numpy()
    lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    k, u = m.shape
    fig, ax = subplots(figsize=(max(4.0, 0.3 * u + 2.5), max(2.5, 0.3 * k + 1.2)))
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_yticks(range(k), summary.classes, fontsize=8)
    ax.set_xlabel(f"{summary.layer} unit")
    if u <= 64:
        ax.set_xticks(range(u))
        ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"which {summary.layer} units make each class ({summary.method}, mean over test images)",
                 fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- tokens


def token_colours(scores, lim: float | None = None) -> list[tuple[float, float, float, float]]:
    """RGBA per token: red for positive attribution, blue for negative, white for none."""
    from matplotlib import colormaps

    values = np.asarray(scores, dtype=float)
    lim = lim or float(np.abs(values).max()) or 1.0
    cmap = colormaps["RdBu_r"]
    return [tuple(float(c) for c in cmap(0.5 + 0.5 * v / lim)) for v in values]


def plot_tokens(result: TokenAttribution, per_row: int = 16):
    """The prompt as coloured tokens (red pushed towards the target, blue away), wrapped in rows."""
    from matplotlib.patches import Rectangle

    n = len(result.labels)
    rows = (n + per_row - 1) // per_row
    colours = token_colours(result.scores.numpy())
    lim = float(result.scores.abs().max()) or 1.0
    fig, ax = subplots(figsize=(0.62 * min(n, per_row) + 0.6, 0.62 * rows + 1.3))
    for i, (label, colour, score) in enumerate(zip(result.labels, colours, result.scores.tolist())):
        r, c = divmod(i, per_row)
        edge = "black" if i == result.position else "none"
        ax.add_patch(Rectangle((c, -r - 1), 0.95, 0.9, facecolor=colour, edgecolor=edge, linewidth=1.5))
        ax.text(c + 0.475, -r - 0.55, label, ha="center", va="center", fontsize=9, family="monospace",
                color="white" if abs(score) > 0.6 * lim else "black")
    ax.set_xlim(-0.1, min(n, per_row) + 0.1)
    ax.set_ylim(-rows - 0.1, 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    top = ", ".join(f"{t} {p:.2f}" for t, p in result.top[:3])
    ax.set_title(f"next token after position {result.position} (boxed): {result.target_label!r}  [top: {top}]\n"
                 f"sum of scores {float(result.scores.sum()):.3f} vs logit change {result.output_difference:.3f} "
                 f"({100 * result.relative_error:.1f}% off)", fontsize=9)
    fig.tight_layout()
    return fig


def token_html(result: TokenAttribution) -> str:
    """The prompt as an HTML snippet of coloured ``<span>`` tokens (score in the tooltip)."""
    import html

    spans = []
    for label, (r, g, b, _), score in zip(result.labels, token_colours(result.scores.numpy()),
                                          result.scores.tolist()):
        spans.append(f'<span class="token" style="background: rgb({round(255 * r)}, {round(255 * g)}, '
                     f'{round(255 * b)})" title="{score:+.4f}">{html.escape(label)}</span>')
    return (f'<div class="token-attribution" data-target="{html.escape(result.target_label)}">'
            + "".join(spans) + "</div>")

