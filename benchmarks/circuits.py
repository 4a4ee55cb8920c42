"""Issue #15: circuit discovery, how fast and how faithful, on models trained here.

Four settings, each a circuit graph of a model trained inside the script (a temp folder):

- ``induction-2h``: attention-only transformer, 2 layers x 2 heads, on the induction task
  (the recipe of tests/analysis/causal/test_transformer_circuits.py: 30 x 20 steps);
- ``induction-4h``: the same with 4 heads (the demo's recipe, tests/claims/test_planted_heads.py:
  30 x 10 steps); both as ``TransformerGraph(run, n=32, metric="loss", ablation="mean")``;
- ``shapes-logit``: the tutorial net (conv1 -> conv2 -> fc1 -> fc2 -> fc3) trained on 10,000
  shapes images; ``CNNGraph.from_classes(run, CLASS, "mean", n=32)``: the class logit of 32
  test images of one class, corrupted = every edge at its reference mean;
- ``shapes-contrast``: the same net, logit-diff of CLASS against OTHER, corrupted = 32 images
  of OTHER paired with the clean ones.

Measured for each: the seconds of EAP, EAP-IG (16 steps), the library's batched patching
loop over all edges (``patching_scores``: several edges per forward pass) and a plain loop,
one forward pass per edge (the way one writes it by hand); their ratios; the Spearman rank
correlation of EAP and EAP-IG with the patching scores (bootstrap 95% CI over edges, and the
95% quantile of the correlation with shuffled patching scores as the null); the faithfulness
curves of the EAP, EAP-IG (and patching) circuits beside 10 random circuits of each size,
the smallest size reaching 0.8 and the random band there. Goal (issue #15): EAP at least
20x faster than the patching loop at rank correlation >= 0.8 with it.

    python benchmarks/circuits.py                  # the benchmark (about 8 minutes on 1 thread)
    python benchmarks/circuits.py --quick          # smoke run (short training), under 2 minutes
    python benchmarks/circuits.py --out figs/ --threads 2 --json circuits.json

Timings are the median of ``--repeats`` (3) calls; the plain loop is timed once when one call
takes over 10 s (with ``--quick`` the CNN's plain loop runs the first 1,000 edges only and its time is
scaled to all edges). Threads default to 1 (the machine is shared; ``--threads`` to change).
Figures: one PNG with a panel per setting (``--out``, default a temp folder; paths printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

INDUCTION_RECIPES = {
    "induction-2h": ("test recipe: 2 heads, 20 steps per epoch", 30,
                     {"steps_per_epoch": "20", "batch_size": "32", "lr": "3e-3", "grad_clip": "1.0", "n_head": "2"}),
    "induction-4h": ("demo recipe: 4 heads, 10 steps per epoch", 30,
                     {"steps_per_epoch": "10", "batch_size": "32", "lr": "3e-3", "grad_clip": "1.0"}),
}
EAP_SPEEDUP_GOAL, RHO_GOAL = 20.0, 0.8
CURVE_POINTS = 24
"""Circuit sizes per curve, spaced geometrically (discovery's default is 12): the minimal size is
only as fine as this grid."""


# ------------------------------------------------------------------------------ machine


def machine(threads: int) -> dict:
    from interp.device import cpu_model

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "capability": torch.backends.cpu.get_cpu_capability(), "python": platform.python_version(),
            "load": [round(x, 2) for x in load]}


# ------------------------------------------------------------------------------ models


def train_models(root: Path, quick: bool) -> dict:
    """The runs, with their training seconds (and the tutorial net's test accuracy)."""
    from interp.training.loop import train

    runs = {}
    for name, (_, epochs, overrides) in INDUCTION_RECIPES.items():
        start = time.perf_counter()
        run = train("attn-only", "induction", name=name, epochs=3 if quick else epochs, seed=0, root=root,
                    device="cpu", progress=False, log=None, overrides=overrides)
        runs[name] = {"run": run, "train_s": time.perf_counter() - start, "epochs": 3 if quick else epochs}
    n_train, epochs = (2000, 2) if quick else (10_000, 4)
    start = time.perf_counter()
    run = train("tutorial", "shapes", name="tutorial-shapes", epochs=epochs, seed=0, root=root, device="cpu",
                progress=False, log=None, overrides={"n_train": str(n_train), "n_test": "2000"})
    runs["tutorial"] = {"run": run, "train_s": time.perf_counter() - start, "test_acc": run.summary["test_acc"],
                        "n_train": n_train, "epochs": epochs}
    return runs


def graphs(runs: dict, clean_class: str, other_class: str) -> dict:
    """``{setting: (description, graph, edge-method module)}``."""
    from interp.analysis.causal import cnn_edges, transformer_edges
    from interp.analysis.causal.cnn import CNNGraph
    from interp.analysis.causal.transformer import TransformerGraph

    out = {}
    for name, (description, _, _) in INDUCTION_RECIPES.items():
        graph = TransformerGraph(runs[name]["run"], n=32, seed=0, metric="loss", ablation="mean")
        out[name] = (f"attn-only 2L, {description}, {runs[name]['epochs']} epochs; -loss, mean ablation", graph,
                     transformer_edges)
    run = runs["tutorial"]["run"]
    out["shapes-logit"] = (f"tutorial net on shapes; class logit of {clean_class!r}, corrupted = mean",
                           CNNGraph.from_classes(run, clean_class, "mean", n=32, n_reference=256, seed=0,
                                                 metric="class-logit"), cnn_edges)
    out["shapes-contrast"] = (f"tutorial net on shapes; logit-diff {clean_class!r} - {other_class!r}, "
                              f"corrupted = {other_class!r} images",
                              CNNGraph.from_classes(run, clean_class, other_class, n=32, n_reference=256, seed=0),
                              cnn_edges)
    return out


# ------------------------------------------------------------------------------ the plain loop


def plain_loop(graph, limit: int | None = None) -> torch.Tensor:
    """Patching as one writes it by hand: one forward pass of the clean batch per edge (the first
    ``limit`` edges only, when given)."""
    from interp.analysis.causal.cnn import CNNGraph, replacing_hook

    n_scored = min(limit or len(graph.edges), len(graph.edges))
    scores = torch.zeros(n_scored, dtype=torch.float64)
    with torch.no_grad():
        if isinstance(graph, CNNGraph):
            with graph.scoped():
                base = graph.evaluate().double().mean()
                for k, edge in enumerate(graph.edges[:n_scored]):
                    pair, i, j = graph.locate(edge)
                    only = torch.zeros(pair.n_target, pair.n_source, device=pair.clean.device)
                    only[j, i] = 1
                    value = graph.evaluate({pair.target: replacing_hook(pair, pair.corrupted, only)})
                    scores[k] = float(value.double().mean() - base)
        else:
            n = len(graph.edges)
            base = graph.evaluate(torch.ones(1, n))[0].double().mean()
            for k in range(n_scored):
                keep = torch.ones(1, n)
                keep[0, k] = 0.0
                scores[k] = float(graph.evaluate(keep)[0].double().mean() - base)
    return scores


def timed(fn, repeats: int, slow_s: float = 10.0) -> tuple[float, int, object]:
    """``(median seconds, calls timed, last result)``; a call slower than ``slow_s`` is not repeated."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if times[-1] > slow_s:
            break
    return statistics.median(times), len(times), result


# ------------------------------------------------------------------------------ statistics


def rho_with_ci(a: torch.Tensor, b: torch.Tensor, *, draws: int = 400, seed: int = 0) -> dict:
    """Spearman rho of two score vectors, a bootstrap 95% CI over edges (ranks of the full sample,
    resampled pairs) and the null: the 95% quantile of rho with ``b`` shuffled (``draws`` shuffles)."""
    from interp.analysis.causal.discovery import average_ranks
    from interp.stats import bootstrap_ci

    ra, rb = average_ranks(a.double()), average_ranks(b.double())

    def pearson(x, y):  # (draws, n) each
        x, y = x - x.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
        return (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1)).clamp_min(1e-300)

    rho = float(pearson(ra[None], rb[None])[0])
    ci = bootstrap_ci(torch.stack([ra, rb], 1), lambda r: pearson(r[..., 0], r[..., 1]), draws=draws, seed=seed)
    g = torch.Generator().manual_seed(seed)
    shuffled = torch.stack([rb[torch.randperm(len(rb), generator=g)] for _ in range(draws)])
    null = float(pearson(ra[None].expand_as(shuffled), shuffled).abs().quantile(0.95))
    return {"rho": rho, "ci": ci, "null95": null}


# ------------------------------------------------------------------------------ one setting


def measure(name: str, description: str, graph, methods, *, repeats: int, n_random: int, steps: int,
            plain_limit: int | None) -> dict:
    from interp.analysis.causal.discovery import default_sizes, faithfulness_curve, rank_correlation

    print(f"[{name}] {graph!r}", file=sys.stderr, flush=True)
    t_eap, _, eap = timed(lambda: methods.eap_scores(graph), repeats)
    t_ig, _, ig = timed(lambda: methods.eap_ig_scores(graph, steps=steps), repeats)
    t_patch, _, patch = timed(lambda: methods.patching_scores(graph), repeats)
    t_loop, loop_calls, loop = timed(lambda: plain_loop(graph, plain_limit), repeats)
    loop_error = float((loop - patch.scores[:len(loop)]).abs().max())  # the two loops must agree
    loop_edges = len(loop)
    t_loop *= len(graph.edges) / loop_edges  # the time of all edges (scaled when only some were run)
    row = {"setting": name, "description": description, "n_edges": len(graph.edges), "n_examples": None,
           "eap_s": t_eap, "eap_ig_s": t_ig, "patching_s": t_patch, "plain_loop_s": t_loop,
           "plain_loop_calls": loop_calls, "plain_loop_edges": loop_edges, "plain_vs_batched_max_abs_diff": loop_error,
           "rho_eap": rho_with_ci(eap.scores, patch.scores), "rho_eap_ig": rho_with_ci(ig.scores, patch.scores),
           "rho_check": rank_correlation(eap, patch)}
    print(f"[{name}] timings done: EAP {t_eap:.3f}s, EAP-IG {t_ig:.3f}s, patching {t_patch:.3f}s, "
          f"plain loop {t_loop:.3f}s", file=sys.stderr, flush=True)
    curves = {}
    for scores in (eap, ig, patch):
        curve = faithfulness_curve(graph, scores, sizes=default_sizes(len(graph.edges), CURVE_POINTS),
                                   n_random=n_random, seed=0)
        curves[scores.method] = curve
    row["n_examples"] = curves["eap"].n_examples
    row["overlap"] = overlap(curves["patching"], {"eap": eap, "eap-ig": ig})
    row["curves"] = {m: curve_summary(c) for m, c in curves.items()}
    row["_curves"] = curves
    return row


def overlap(truth_curve, estimates: dict) -> dict:
    """How much of the exact scores' minimal circuit (k edges) each estimate's top-k holds, and the
    truth edges it ranks lower (with their rank, 1 = first)."""
    truth = truth_curve.minimal_edges
    out = {"k": len(truth)}
    for method, scores in estimates.items():
        ranked = scores.top(len(scores.edges))
        rank = {e: i + 1 for i, e in enumerate(ranked)}
        top = set(ranked[:len(truth)])
        out[method] = {"held": sum(e in top for e in truth),
                       "missed": sorted(((str(e), rank[e]) for e in truth if e not in top), key=lambda x: x[1])}
    return out


def curve_summary(curve) -> dict:
    out = {"sizes": curve.sizes, "faithfulness": curve.faithfulness, "ci": curve.ci,
           "random_mean": curve.random_mean, "random_high": curve.random_high,
           "full_metric": curve.full_metric, "empty_metric": curve.empty_metric,
           "minimal_size": curve.minimal_size, "metric": curve.metric}
    if curve.minimal_size is not None:
        out["at_minimal"] = curve.at(curve.minimal_size)
    return out


# ------------------------------------------------------------------------------ figure


def save_curves_figure(rows: list[dict], out: Path) -> Path:
    from interp.plots import pyplot, save_figure

    plt = pyplot()
    columns = min(2, len(rows))
    lines = (len(rows) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(5.2 * columns, 3.8 * lines), dpi=100, layout="constrained",
                             squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    colours = {"eap": "tab:blue", "eap-ig": "tab:orange", "patching": "tab:green"}
    for ax, row in zip(axes.flat, rows):
        curves = row["_curves"]
        base = curves["eap"]
        low = [float(torch.tensor(r).quantile(0.05)) for r in base.random]
        ax.fill_between(base.sizes, low, base.random_high, color="0.8", label="random 5-95%")
        ax.plot(base.sizes, base.random_mean, color="0.5", lw=1, ls=":", label="random mean")
        for method, curve in curves.items():
            lo, hi = zip(*curve.ci)
            ax.fill_between(curve.sizes, lo, hi, color=colours[method], alpha=0.15, lw=0)
            label = "patching (exact scores)" if method == "patching" else method
            ax.plot(curve.sizes, curve.faithfulness, marker="o", ms=3, color=colours[method], label=label,
                    ls="--" if method == "patching" else "-")
        ax.axhline(base.threshold, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_title(f"{row['setting']}: {row['n_edges']} edges, {row['curves']['eap']['metric']}", fontsize=10)
        ax.set_xlabel("circuit size (edges)")
        ax.set_ylabel("faithfulness")
    axes[0][0].legend(fontsize=7, loc="upper left")
    return save_figure(fig, out / "faithfulness_curves.png")


# ------------------------------------------------------------------------------ report


def fmt_rho(r: dict) -> str:
    return f"{r['rho']:.3f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}] (null {r['null95']:.2f})"


def plain_note(row: dict) -> str:
    calls = f"{row['plain_loop_calls']} call{'s' if row['plain_loop_calls'] > 1 else ''}"
    if row["plain_loop_edges"] < row["n_edges"]:
        return f"{calls}, first {row['plain_loop_edges']} edges timed, scaled to all"
    return calls


def print_report(info: dict, runs: dict, rows: list[dict], figure: Path, args) -> None:
    load = info["load"]
    print(f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['capability']}), "
          f"Python {info['python']}; torch threads {info['threads']} (set by --threads: the machine is shared); "
          f"load average at the start {load[0]}, {load[1]}, {load[2]}; at the end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    print()
    print("Models (trained here):")
    for name, r in runs.items():
        extra = (f", test accuracy {r['test_acc']:.3f} ({r['n_train']} images, {r['epochs']} epochs)"
                 if "test_acc" in r else "")
        print(f"- {name}: {r['train_s']:.1f} s training{extra}")
    for name, description, *_ in [(r["setting"], r["description"]) for r in rows]:
        print(f"- setting {name}: {description}")
    print()
    print(f"Timing (median of {args.repeats} calls; the plain loop once where one call took over 10 s). "
          f"'batched' = `patching_scores` (several edges per forward pass), 'plain' = one forward pass per edge.")
    print()
    print("| setting | edges | EAP | EAP-IG (16) | patching batched | patching plain | batched/EAP | plain/EAP "
          "| batched/EAP-IG | plain/EAP-IG |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['n_edges']} | {r['eap_s']:.3f} s | {r['eap_ig_s']:.3f} s | "
              f"{r['patching_s']:.3f} s | {r['plain_loop_s']:.2f} s ({plain_note(r)}) | "
              f"{r['patching_s'] / r['eap_s']:.1f}x | {r['plain_loop_s'] / r['eap_s']:.0f}x | "
              f"{r['patching_s'] / r['eap_ig_s']:.1f}x | {r['plain_loop_s'] / r['eap_ig_s']:.0f}x |")
    print()
    print("Rank correlation with the patching scores (Spearman, bootstrap 95% CI over edges; null: 95% quantile "
          "of |rho| against shuffled patching scores). Goal: EAP >= 20x faster than the loop at rho >= 0.8.")
    print()
    print("| setting | rho EAP | rho EAP-IG | EAP vs the faster exact loop | goal |")
    print("|---|---|---|---|---|")
    for r in rows:
        rho, loop = r["rho_eap"]["rho"], min(r["patching_s"], r["plain_loop_s"])
        speedup = loop / r["eap_s"]
        missed = [f"speed-up {speedup:.1f}x < {EAP_SPEEDUP_GOAL:.0f}x"] if speedup < EAP_SPEEDUP_GOAL else []
        missed += [f"rho {rho:.2f} < {RHO_GOAL}"] if rho < RHO_GOAL else []
        print(f"| {r['setting']} | {fmt_rho(r['rho_eap'])} | {fmt_rho(r['rho_eap_ig'])} | {speedup:.1f}x | "
              f"{'missed: ' + ', '.join(missed) if missed else 'met'} |")
    print()
    print(f"Faithfulness of the top-k circuits ((m(C) - m(empty)) / (m(full) - m(empty)), {rows[0]['n_examples']} "
          f"examples, {args.n_random} random circuits per size, {CURVE_POINTS} sizes spaced geometrically). Minimal size: "
          f"smallest size of that grid reaching 0.8, with its "
          f"bootstrap CI and the random circuits of that size (mean / 95% quantile).")
    print()
    print("| setting | m(full) | m(empty) | method | minimal size | faithfulness there [95% CI] | random mean / 95% there |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        for method, c in r["curves"].items():
            if c["minimal_size"] is None:
                cell = "none reaches 0.8 | - | -"
            else:
                a = c["at_minimal"]
                cell = (f"{a['size']} of {r['n_edges']} | {a['faithfulness']:.3f} [{a['ci'][0]:.2f}, {a['ci'][1]:.2f}] "
                        f"| {a['random_mean']:.3f} / {a['random_high']:.3f}")
            print(f"| {r['setting']} | {c['full_metric']:.3f} | {c['empty_metric']:.3f} | {method} | {cell} |")
    print()
    print("Curves (EAP, EAP-IG; random mean / 95% quantile):")
    for r in rows:
        eap, ig = r["curves"]["eap"], r["curves"]["eap-ig"]
        print()
        print(f"**{r['setting']}**")
        print()
        print("| size | EAP | EAP-IG | random mean | random 95% |")
        print("|---|---|---|---|---|")
        for i, k in enumerate(eap["sizes"]):
            print(f"| {k} | {eap['faithfulness'][i]:.3f} | {ig['faithfulness'][i]:.3f} | "
                  f"{eap['random_mean'][i]:.3f} | {eap['random_high'][i]:.3f} |")
    print()
    print("Overlap with the exact scores' minimal circuit (its k edges; how many the estimate's top-k holds, "
          "and the first truth edges it ranks lower, with their rank):")
    print()
    for r in rows:
        o = r["overlap"]
        parts = []
        for method in ("eap", "eap-ig"):
            missed = ", ".join(f"{e} (#{k})" for e, k in o[method]["missed"][:4])
            parts.append(f"{method} {o[method]['held']}/{o['k']}" + (f" (misses {missed}"
                         f"{', ...' if len(o[method]['missed']) > 4 else ''})" if missed else ""))
        print(f"- {r['setting']}: " + "; ".join(parts))
    print()
    print(f"Checks: plain loop vs batched patching, max |difference| per setting: "
          + ", ".join(f"{r['setting']} {r['plain_vs_batched_max_abs_diff']:.1e}" for r in rows)
          + "; rank_correlation(EAP, patching) from interp: "
          + ", ".join(f"{r['setting']} {r['rho_check']:.3f}" for r in rows) + ".")
    print()
    print(f"Figure: {figure}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short training, 1 repeat, 3 random circuits (checks the "
                                                        "script, not the figures)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    p.add_argument("--repeats", type=int, help="timing repeats, median reported (default 3; 1 with --quick)")
    p.add_argument("--n-random", type=int, help="random circuits per size (default 10; 3 with --quick)")
    p.add_argument("--steps", type=int, default=16, help="EAP-IG steps (default 16)")
    p.add_argument("--clean-class", default="circle", help="the shapes class of the clean images (default circle)")
    p.add_argument("--other-class", default="arc_large", help="the contrast class (default arc_large)")
    p.add_argument("--out", help="folder for the figure (default: a new temp folder)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.n_random = args.n_random or (3 if args.quick else 10)

    import interp

    interp.configure_threads(args.threads)
    info = machine(args.threads)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="circuits-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = train_models(Path(tmp), args.quick)
        print(f"trained in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        rows = [measure(name, description, graph, methods, repeats=args.repeats, n_random=args.n_random,
                        steps=args.steps, plain_limit=1000 if args.quick else None)
                for name, (description, graph, methods) in graphs(runs, args.clean_class, args.other_class).items()]
    figure = save_curves_figure(rows, out)
    print_report(info, runs, rows, figure, args)
    print(f"\nTotal {time.perf_counter() - start:.0f} s{' (--quick)' if args.quick else ''}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args),
                       "models": {n: {k: v for k, v in r.items() if k != "run"} for n, r in runs.items()},
                       "settings": [{k: v for k, v in r.items() if k != "_curves"} for r in rows]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
