"""The architecture grid of ``interp zoo``, pure: its entries, the statistics over seeds, the findings.

:data:`ZOO_GRID` is what is trained (the tutorial net with max / avg / strided / no pooling
and kernels 3 / 5 / 7, and two MLPs); :func:`entry_row` turns one entry's per-seed rows
into its mean accuracy, spread and 95% interval (:func:`summarize`); :func:`zoo_findings`
turns the measured numbers into the comparison text ("does pooling matter?", "can an MLP
match the CNN?"), calling a difference only where it is larger than the seed spread.
Training is :mod:`interp.pipelines.zoo_grid`; the saved ``zoo.json`` is :mod:`interp.results.zoo`.

>>> summarize([0.5, 0.6])["test_acc"]
0.55
"""

from __future__ import annotations

import math

from ..errors import InterpError

# name -> (model, --set overrides)
ZOO_GRID: dict[str, tuple[str, dict[str, str]]] = {
    "tutorial-max": ("tutorial", {}),
    "tutorial-avg": ("tutorial", {"pooling": "avg"}),
    "tutorial-stride": ("tutorial", {"pooling": "stride"}),
    "tutorial-none": ("tutorial", {"pooling": "none"}),
    "tutorial-k3": ("tutorial", {"kernel_size": "3"}),
    "tutorial-k7": ("tutorial", {"kernel_size": "7"}),
    "mlp-small": ("mlp", {}),
    "mlp-large": ("mlp-large", {}),
}

ALPHA = 0.05  # a difference is "larger than the seed spread" when Welch's p < ALPHA

# The grid's axes: entry -> what it varies, in words. tutorial-max is the tutorial net
# itself (max pooling, kernel 5), the reference point of every axis.
POOLING_AXIS = {"tutorial-max": "max pooling", "tutorial-avg": "avg pooling",
                "tutorial-stride": "strided convolution", "tutorial-none": "no pooling"}
KERNEL_AXIS = {"tutorial-k3": "kernel 3", "tutorial-max": "the tutorial's kernel 5", "tutorial-k7": "kernel 7"}
REFERENCE = "tutorial-max"


# --- statistics -------------------------------------------------------------------------

def summarize(accs: list[float]) -> dict:
    """Mean, sample sd, 95% t-interval (clipped to [0, 1]), min and max of per-seed accuracies.

    With one accuracy the sd and the interval are None: one seed has no spread.
    """
    n = len(accs)
    if n == 0:
        raise InterpError("no accuracies to summarize")
    mean = sum(accs) / n
    sd = ci = None
    if n >= 2:
        from scipy import stats

        sd = math.sqrt(sum((a - mean) ** 2 for a in accs) / (n - 1))
        half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        ci = [max(0.0, mean - half), min(1.0, mean + half)]  # accuracies live in [0, 1]
    return {"seeds": n, "test_acc": mean, "test_acc_sd": sd, "test_acc_ci": ci,
            "test_acc_min": min(accs), "test_acc_max": max(accs), "test_accs": list(accs)}


def welch_p(a: dict, b: dict) -> float | None:
    """Two-sided Welch t-test p-value of two entry rows' seeds; None when either has one seed.

    Two entries whose seeds did not vary at all give 0.0 when the means differ, 1.0 otherwise.
    """
    if a["seeds"] < 2 or b["seeds"] < 2:
        return None
    va, vb = a["test_acc_sd"] ** 2 / a["seeds"], b["test_acc_sd"] ** 2 / b["seeds"]
    diff = a["test_acc"] - b["test_acc"]
    if va + vb == 0:
        return 1.0 if diff == 0 else 0.0
    from scipy import stats

    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / ((va ** 2 / (a["seeds"] - 1) if va else 0) + (vb ** 2 / (b["seeds"] - 1) if vb else 0))
    return float(2 * stats.t.sf(abs(t), df))


def entry_row(entry: str, runs: list[dict]) -> dict:
    """One entry's row from its seeds' rows: the accuracy statistics (:func:`summarize`), the
    parameters, and the mean training time and throughput over seeds."""
    first = runs[0]
    mean = lambda key: sum(r[key] for r in runs) / len(runs)  # noqa: E731
    return {"entry": entry, "run": first["run"], "runs": [r["run"] for r in runs], "model": first["model"],
            "settings": first["settings"], **summarize([r["test_acc"] for r in runs]),
            "parameters": first["parameters"], "train_seconds": mean("train_seconds"),
            "img_per_s": round(mean("img_per_s"), 1)}


# --- the findings text ------------------------------------------------------------------

def points(value: float) -> str:
    """An accuracy in percentage points: ``0.612`` -> ``61.2``."""
    return f"{100 * value:.1f}"


def _signed(value: float) -> str:
    return f"{100 * value:+.1f}"


def _params(row: dict) -> str:
    p = row.get("parameters")
    return f"{p:,} parameters" if isinstance(p, int) else "parameters unknown"


def describe(row: dict, label: str | None = None) -> str:
    """``no pooling (61.2% ± 1.1, 3 seeds, 250,000 parameters)``: mean ± sd over seeds, in points."""
    label = label or row["entry"]
    if row["seeds"] < 2:
        return f"{label} ({points(row['test_acc'])}%, one seed, {_params(row)})"
    return (f"{label} ({points(row['test_acc'])}% ± {points(row['test_acc_sd'])}, {row['seeds']} seeds, "
            f"{_params(row)})")


def verdict(a: dict, b: dict) -> tuple[str, bool | None]:
    """Whether ``a`` and ``b`` differ beyond the seed spread, in words, and True/False/None (can't say)."""
    p = welch_p(a, b)
    if p is None:
        return "one seed: no spread, so no difference can be called", None
    if a["test_acc_sd"] == 0 and b["test_acc_sd"] == 0:
        if a["test_acc"] == b["test_acc"]:
            return "no difference (every seed of both gave the same accuracy)", False
        return "larger than the seed spread (the seeds of both did not vary at all)", True
    shown = "p<0.001" if p < 0.001 else f"p={p:.2g}"
    if p < ALPHA:
        return f"larger than the seed spread (Welch t-test {shown})", True
    return f"within the seed spread (Welch t-test {shown})", False


def _axis_finding(title: str, axis: dict[str, str], by_entry: dict[str, dict]) -> str | None:
    present = [e for e in axis if e in by_entry]
    if len(present) < 2:
        return None
    ranked = sorted(present, key=lambda e: -by_entry[e]["test_acc"])
    best = by_entry[ranked[0]]
    parts, called, within, uncallable = [], [], [], False
    for entry in ranked[1:]:
        other = by_entry[entry]
        words, outcome = verdict(best, other)
        diff = best["test_acc"] - other["test_acc"]
        if outcome is None:
            uncallable = True
            parts.append(f"leads {describe(other, axis[entry])} by {points(diff)} points")
        else:
            parts.append(f"leads {describe(other, axis[entry])} by {points(diff)} points, {words}")
            (called if outcome else within).append(axis[entry])
    text = f"{title}: {describe(best, axis[ranked[0]])} " + "; ".join(parts) + "."
    if uncallable:
        text += " With one seed there is no spread, so no difference can be called (use --seeds 3 or more)."
    elif called and not within:
        text += f" So {axis[ranked[0]]} is ahead of every alternative beyond the seed spread."
    elif within and not called:
        text += (f" So at this seed count none of the other {title.lower()} choices can be told apart from "
                 f"{axis[ranked[0]]}.")
    else:
        text += (f" So {axis[ranked[0]]} beats {', '.join(called)} beyond the seed spread; "
                 f"{', '.join(within)} cannot be told apart from it.")
    return text


def _versus(title: str, a: dict, a_label: str, b: dict, b_label: str, extra: str = "") -> str:
    words, _ = verdict(a, b)
    diff = a["test_acc"] - b["test_acc"]
    return f"{title}: {describe(a, a_label)} vs {describe(b, b_label)}: {_signed(diff)} points, {words}{extra}."


def _ratio(a, b) -> str | None:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return f"{a / b:.1f}x"
    return None


def zoo_findings(result: dict) -> list[str]:
    """The comparison text of a zoo result, built only from its numbers; one string per finding.

    Compares entries along the grid's axes (pooling, kernel size, CNN vs MLP) and says, for
    each difference of mean accuracy, whether it is larger than the seed spread (Welch
    t-test, p < 0.05, with at least 2 seeds each) or within it; with one seed, that no
    difference can be called. ``result["rows"]`` are entry rows with their statistics (what
    :func:`entry_row` makes; :func:`interp.results.zoo.normalize_zoo` upgrades older files).

    >>> zoo_findings({"rows": []})
    ['The zoo has no entries.']
    """
    rows = result["rows"]
    if not rows:
        return ["The zoo has no entries."]
    by_entry = {r["entry"]: r for r in rows}
    seeds = sorted({r["seeds"] for r in rows})
    spread = ("one seed per entry: no spread, so no difference can be called" if seeds == [1] else
              f"{'/'.join(map(str, seeds))} seeds per entry; ± is the standard deviation over seeds, in points, "
              f"and a difference counts when a Welch t-test gives p < {ALPHA:g}")
    if len(rows) == 1:
        return [f"Only {describe(rows[0])} was trained ({spread}): nothing to compare."]
    ranked = sorted(rows, key=lambda r: -r["test_acc"])
    findings = [f"Overall ({len(rows)} entries, {spread}): best {describe(ranked[0])}, "
                f"worst {describe(ranked[-1])}."]
    for title, axis in (("Pooling", POOLING_AXIS), ("Kernel size", KERNEL_AXIS)):
        text = _axis_finding(title, axis, by_entry)
        if text:
            findings.append(text)
    cnns = [r for r in rows if not str(r.get("model", "")).startswith("mlp")]
    for entry, label, title in (("mlp-small", "the small MLP", "MLP vs CNN at similar size"),
                                ("mlp-large", "the large MLP", "Large MLP vs CNN")):
        mlp = by_entry.get(entry)
        if mlp is None or not cnns:
            continue
        if REFERENCE in by_entry:
            cnn, cnn_label = by_entry[REFERENCE], "the tutorial CNN"
        else:  # the CNN entry closest in size
            cnn = min(cnns, key=lambda r: abs(math.log(max(r.get("parameters") or 1, 1))
                                              - math.log(max(mlp.get("parameters") or 1, 1))))
            cnn_label = f"the CNN {cnn['entry']}"
        extra = ""
        size, time = _ratio(mlp.get("parameters"), cnn.get("parameters")), _ratio(mlp.get("train_seconds"),
                                                                                  cnn.get("train_seconds"))
        if size and time:
            extra = f"; the MLP has {size} the parameters and {time} the mean training time"
        findings.append(_versus(title, mlp, label, cnn, cnn_label, extra))
    if "mlp-small" in by_entry and "mlp-large" in by_entry:
        findings.append(_versus("Large vs small MLP", by_entry["mlp-large"], "the large MLP",
                                by_entry["mlp-small"], "the small MLP"))
    return findings
