"""The figures of claim results, drawn when they are saved (:func:`interp.results.claims.save_claims`).

Each claim id maps to a function ``draw(result) -> {name: matplotlib figure}`` in
:data:`FIGURES`; a claim without one is saved without figures. Figures read only the
result (``result.data``, ``result.thresholds``), so a saved result can be drawn again.

>>> figures_of(result)      # {"scatter": <Figure>, "radial": <Figure>} for curve-detectors
"""

from __future__ import annotations

import math
from typing import Callable

from ..claims.registry import ClaimResult
from ..plots import pyplot


# --------------------------------------------------------------------------- vision

def plot_filters(result: ClaimResult) -> dict:
    """The filters (top) and their Gabor fits (bottom), labelled with their family."""
    import numpy as np

    plt = pyplot()
    weights = np.array(result.data.get("weights", []))
    fitted = np.array(result.data.get("fitted", []))
    if weights.size == 0:
        return {}
    families = result.data["families"]
    n = len(weights)
    cols = min(n, 16)
    rows = 2 * math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.9 * cols + 0.4, 1.0 * rows + 0.5), squeeze=False, layout="tight")
    short = {"gabor": "G", "colour contrast": "C", "other": "-"}
    for i in range(rows * cols):
        ax = axes[i // cols][i % cols]
        ax.axis("off")
    for i in range(n):
        r, c = 2 * (i // cols), i % cols
        for row, arr in ((r, weights[i]), (r + 1, fitted[i])):
            img = arr.transpose(1, 2, 0) if arr.shape[0] == 3 else arr[0]
            bound = max(abs(weights[i]).max(), 1e-8)
            axes[row][c].imshow((0.5 + 0.5 * img / bound).clip(0, 1), cmap=None if arr.shape[0] == 3 else "gray",
                                vmin=0, vmax=1, interpolation="nearest")
        axes[r][c].set_title(f"{i} {short[families[i]]}", fontsize=7)
    fig.suptitle("filters (odd rows) and Gabor fits (even rows); G Gabor, C colour contrast, - other", fontsize=8)
    return {"filters": fig}


def plot_orientations(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    ori = np.array(result.data.get("orientations", []))
    fig = plt.figure(figsize=(3.2, 3.2), layout="tight")
    ax = fig.add_subplot(projection="polar")
    for a in ori:  # each orientation is an axis: draw both ends
        ax.plot([np.deg2rad(a), np.deg2rad(a + 180)], [1, 1], "o", color="#1f77b4")
        ax.plot([np.deg2rad(a), 0, np.deg2rad(a + 180)], [1, 0, 1], color="#1f77b4", alpha=0.6)
    ax.set_yticks([])
    ax.set_title(f"preferred orientations of {len(ori)} Gabor-like filters", fontsize=8)
    return {"orientations": fig}


def plot_scatter(result: ClaimResult) -> dict:
    plt = pyplot()
    s = result.data.get("scatter")
    if not s:
        return {}
    fig, ax = plt.subplots(figsize=(4.6, 3.6), layout="tight")
    ax.scatter(s["null_x"], s["null_y"], s=8, color="#bbbbbb", label="re-initialised units")
    ax.scatter(s["x"], s["y"], s=18, color="#d62728", label="model units")
    ax.axvline(s["x_threshold"], color="black", lw=0.8, ls="--")
    ax.axhline(s["y_threshold"], color="black", lw=0.8, ls="--")
    where = "upper" if s["above_y"] else "lower"
    if s.get("product"):
        import numpy as np

        xs = np.linspace(max(s["product"], 1e-3), 1.0, 100)
        ax.plot(xs, s["product"] / xs, color="#d62728", lw=0.8, ls=":", label="null threshold on x * y")
        ax.set_ylim(top=max(1.0, max(s["y"] + s["null_y"], default=1.0)) + 0.05)
        where += " right, beyond the dotted curve,"
    else:
        where += " right"
    ax.set_xlabel(s["xlabel"], fontsize=8)
    ax.set_ylabel(s["ylabel"], fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"{result.claim}: units {where} count", fontsize=8)
    return {"scatter": fig}


def plot_radial(result: ClaimResult) -> dict:
    """Radial tuning curves (polar: response against curve orientation) of the units found or examined."""
    import numpy as np

    plt = pyplot()
    radial = result.data.get("radial")
    if not radial:
        return {}
    units = radial["units"]
    show = [u for u in units if u in radial["found"]] or units
    show = show[:16]
    angles = np.deg2rad(np.array(radial["orientations"] + radial["orientations"][:1]))
    fig = plt.figure(figsize=(4.2, 4.2), layout="tight")
    ax = fig.add_subplot(projection="polar")
    curves = dict(zip(units, radial["curves"]))
    cmap = plt.get_cmap("hsv")
    for i, u in enumerate(show):
        values = np.array(curves[u] + curves[u][:1]) / (max(curves[u]) or 1.0)  # each unit to its own peak
        ax.plot(angles, values, color=cmap(i / max(len(show), 1)), lw=1.2, label=u)
        ax.fill(angles, values, color=cmap(i / max(len(show), 1)), alpha=0.12)
    ax.set_yticks([])
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title("radial tuning, each unit scaled to its peak\n(curve orientation: degrees counter-clockwise, y up)",
                 fontsize=8)
    return {"radial": fig}


def plot_curves(result: ClaimResult) -> dict:
    return {**plot_radial(result), **plot_scatter(result)}


def plot_tails(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    samples = result.data.get("samples") or {}
    if not samples:
        return {}
    fig, axes = plt.subplots(1, len(samples), figsize=(4.0 * len(samples), 3.0), squeeze=False, layout="tight")
    for ax, (layer, rows) in zip(axes[0], samples.items()):
        for i, row in enumerate(rows):
            v = np.array(row)
            v = v[v > 0]
            if len(v) < 50:
                continue
            hist, edges = np.histogram(v, bins=40, density=True)
            ax.semilogy(0.5 * (edges[1:] + edges[:-1]), np.where(hist > 0, hist, np.nan), ".-", ms=3,
                        label=f"{layer}:{i}")
        ax.set_xlabel("pre-activation (firing part)", fontsize=8)
        ax.set_ylabel("density (log)", fontsize=8)
        if ax.get_legend_handles_labels()[0]:  # no unit with 50 firing values: say so, not an empty legend
            ax.legend(fontsize=6, frameon=False)
        else:
            ax.text(0.5, 0.5, "too few firing values per unit (< 50) to draw a tail", ha="center",
                    va="center", fontsize=7, transform=ax.transAxes)
        ax.set_title(f"{layer}: a straight line is an exponential tail", fontsize=8)
    return {"tails": fig}


def plot_banding(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    kernel = np.array(result.data.get("mean_abs_kernel", []))
    if kernel.size == 0:
        return {}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(6.0, 2.8), layout="tight")
    a1.imshow(kernel, cmap="viridis", interpolation="nearest")
    a1.set_title(f"{result.layer}: mean |kernel|", fontsize=8)
    a1.axis("off")
    a2.hist(result.data["null"], bins=12, color="#bbbbbb", label="random weights")
    a2.axvline(result.data["score"], color="#d62728", label="model")
    a2.set_xlabel("banding |rows - columns| (share of variance explained)", fontsize=7)
    a2.legend(fontsize=7, frameon=False)
    return {"banding": fig}


# --------------------------------------------------------------------------- clever hans


def plot_clever_hans(result: ClaimResult) -> dict:
    plt = pyplot()
    acc = result.data.get("accuracy")
    if not acc:
        return {}
    names = list(acc)
    destroy = set(result.data.get("destroy", []))
    ref = result.data.get("reference_accuracy") or {}
    colours = ["#1f77b4" if n in ("full", "cue_consistent") else ("#d62728" if n in destroy else "#7f7f7f")
               for n in names]
    fig, ax = plt.subplots(figsize=(5.6 if len(names) <= 6 else 6.4, 3.0), layout="tight")
    ax.bar(range(len(names)), [acc[n] for n in names], color=colours)
    if ref:
        ax.scatter([i for i, n in enumerate(names) if n in ref], [ref[n] for n in names if n in ref], marker="_",
                   s=300, color="black", zorder=3, label=f"reference ({result.data.get('reference', '')})")
    ax.axhline(result.data["chance"], ls="--", color="black", lw=0.8, label="chance")
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(result.data.get("title", "red: inputs that should not suffice"), fontsize=8)
    return {"accuracy": fig}


# --------------------------------------------------------------------------- transformers


def plot_heads(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    data = result.data
    if "induction" not in data:
        return {}
    panels = [(k, np.array(data[k])) for k in ("prev_token", "induction") if k in data]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 0.5 * panels[0][1].shape[0] + 1.8),
                             squeeze=False, layout="tight")
    for ax, (name, values) in zip(axes[0], panels):
        ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(name.replace("_", "-") + " score", fontsize=9)
        ax.set_xticks(range(values.shape[1]))
        ax.set_yticks(range(values.shape[0]))
    return {"heads": fig}


def plot_copying(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    d = result.data
    if "diag" not in d:
        return {}
    fig, ax = plt.subplots(figsize=(4.4, 3.4), layout="tight")
    ax.scatter(d["null_diag"], d["null_eig"], s=10, color="#bbbbbb", label="re-initialised heads")
    ax.scatter(np.array(d["diag"]).flatten(), np.array(d["eig"]).flatten(), s=24, color="#d62728", label="model heads")
    ax.axvline(result.thresholds.get("copying", 0.5), ls="--", color="black", lw=0.8)
    ax.axhline(result.thresholds.get("eigenvalue_score", 0.0), ls="--", color="black", lw=0.8)
    ax.set_xlabel("fraction of tokens the OV circuit maps onto themselves", fontsize=8)
    ax.set_ylabel("OV eigenvalue score sum(l)/sum(|l|)", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return {"copying": fig}


FIGURES: dict[str, Callable[[ClaimResult], dict]] = {
    "gabor-first-layer": plot_filters,
    "orientation-tiling": plot_orientations,
    "complex-gabors": plot_scatter,
    "curve-detectors": plot_curves,
    "high-low-frequency": plot_scatter,
    "exponential-tail": plot_tails,
    "weight-banding": plot_banding,
    "inceptionv1-conv2d0-families": plot_filters,
    "inceptionv1-mixed3b-curves": plot_curves,
    "inceptionv1-mixed3a-high-low": plot_scatter,
    "clever-hans": plot_clever_hans,
    "induction-k-composition": plot_heads,
    "no-induction-one-layer": plot_heads,
    "copying-ov-positive": plot_copying,
}
"""Claim id -> the function that draws its evidence (a claim missing here is saved without figures)."""


def figures_of(result: ClaimResult) -> dict:
    """The figures of one result by name (``{}`` when its claim draws none)."""
    draw = FIGURES.get(result.claim)
    return (draw(result) or {}) if draw is not None else {}
