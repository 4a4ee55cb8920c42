"""Compute what is missing for ``interp zoo``: train the architecture grid over seeds and save it.

Every entry of :data:`~interp.analysis.zoo_grid.ZOO_GRID` (the tutorial net with max / avg /
strided / no pooling and kernels 3 / 5 / 7, and two MLPs) is trained with the same recipe
and data, each with several seeds; the entry rows (mean accuracy, its spread over seeds,
parameters, time, throughput) and the findings text are computed by
:mod:`interp.analysis.zoo_grid` and saved as ``models/zoo.json`` by :mod:`interp.results.zoo`.

>>> result = run_zoo("shapes", epochs=1, seeds=2, only=["tutorial-max", "mlp-small"])
>>> result["findings"][0]
'Overall (2 entries, 2 seeds per entry; ...)'
"""

from __future__ import annotations

from pathlib import Path

from ..analysis.zoo_grid import ZOO_GRID, entry_row, points, zoo_findings
from ..errors import InterpError, unknown
from ..results.zoo import ZooResult, normalize_zoo, save_zoo, seed_run_name

DEFAULT_SEEDS = 3
MAX_SEEDS = 20


def check_seeds(seeds) -> int:
    """``seeds`` as an int in 1..MAX_SEEDS, or an :class:`InterpError` saying what is allowed."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise InterpError(f"--seeds must be a whole number from 1 to {MAX_SEEDS} (got {seeds!r}); "
                          f"e.g. --seeds {DEFAULT_SEEDS}")
    return seeds


def run_zoo(dataset: str = "shapes", epochs: int = 4, *, seeds: int = DEFAULT_SEEDS, device: str = "auto",
            progress: bool = True, only: list[str] | None = None, overrides: dict[str, str] | None = None,
            root: Path | None = None, log=print) -> dict:
    """Train every grid entry with seeds ``0..seeds-1``; returns the saved result and its path.

    Seed 0 is run ``zoo-<entry>``, seed k is ``zoo-<entry>-s<k>``. The result (also written to
    ``<root>/zoo.json``) has ``rows`` (one per entry: ``test_acc`` is the mean over seeds, with
    ``test_acc_sd``, ``test_acc_ci``, ``test_acc_min``/``max`` and ``test_accs``) and
    ``seed_rows`` (one per run), ``findings`` (the comparison text), plus ``path``.

    >>> result = run_zoo("shapes", epochs=1, seeds=2, only=["tutorial-max", "mlp-small"])
    >>> result["path"].name
    'zoo.json'
    """
    from ..runs import models_dir
    from ..training.loop import train

    seeds = check_seeds(seeds)
    names = list(ZOO_GRID)
    if only:
        for name in only:
            if name not in ZOO_GRID:
                raise unknown("zoo entry", name, names)
        names = [n for n in names if n in only]
    for key in overrides or {}:
        if key.rpartition(".")[2] == "seed":
            raise InterpError(f"--set {key} conflicts with --seeds: the zoo trains seeds 0..N-1 of every entry; "
                              "use --seeds N")
    root = Path(root) if root is not None else models_dir()
    seed_rows = []
    total, step = len(names) * seeds, 0
    for entry in names:
        model, sets = ZOO_GRID[entry]
        for seed in range(seeds):
            step += 1
            if log:
                settings = " ".join(f"{k}={v}" for k, v in sets.items())
                log(f"[{step}/{total}] {entry} seed {seed}: {model} {settings}".rstrip())
            run = train(model, dataset, name=seed_run_name(entry, seed), epochs=epochs, seed=seed,
                        overrides={**(overrides or {}), **sets}, device=device, progress=progress, root=root,
                        overwrite=True, log=None)
            s = run.summary
            metrics = run.metrics
            throughput = sum(m.get("img_per_s", 0) for m in metrics) / max(len(metrics), 1)
            seed_rows.append({"entry": entry, "run": run.name, "seed": seed, "model": model, "settings": sets,
                              "test_acc": s["test_acc"], "parameters": s["parameters"],
                              "train_seconds": s["train_seconds"], "img_per_s": round(throughput, 1)})
    rows = [entry_row(entry, [r for r in seed_rows if r["entry"] == entry]) for entry in names]
    zoo = ZooResult(rows, seed_rows, seeds, zoo_findings({"rows": rows}), dataset=dataset, epochs=epochs,
                    settings=overrides or {})
    path = save_zoo(zoo, root)
    return {**zoo.to_dict(), "path": path}


# --- printing ---------------------------------------------------------------------------

def _interval(row: dict) -> str:
    ci = row.get("test_acc_ci")
    return "one seed: no spread" if not ci else f"{points(ci[0])}-{points(ci[1])}%"


def format_zoo_table(rows: list[dict]) -> str:
    """The plain-text table of a zoo's entry rows (any version), best mean first."""
    from ..terminal import pct, table

    rows = sorted(normalize_zoo({"rows": rows}).rows, key=lambda r: -r["test_acc"])
    for r in rows:
        r["_sd"] = "-" if r["test_acc_sd"] is None else points(r["test_acc_sd"])
        r["_ci"] = _interval(r)
        r["_seeds"] = " ".join(points(a) for a in r["test_accs"])
    return table(rows, [("entry", "entry"), ("test_acc", "mean acc"), ("_sd", "± sd"), ("_ci", "95% interval"),
                        ("_seeds", "per seed"), ("parameters", "params"), ("train_seconds", "train s"),
                        ("img_per_s", "img/s")],
                 {"test_acc": pct, "parameters": lambda v: f"{v:,}", "train_seconds": lambda v: f"{v:.1f}",
                  "img_per_s": lambda v: f"{v:,.0f}"})
