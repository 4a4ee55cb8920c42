"""The architecture comparison grid behind ``interp zoo``.

Trains the tutorial net with max / avg / strided / no pooling and kernels 3 / 5 / 7, and
two MLPs (one of about the tutorial's parameter count, one larger), all with the same
recipe and data, and tabulates accuracy, parameters, time and throughput so that the
questions "how do pooling and kernel size matter?" and "can an MLP match the CNN?" are
answered with data.
"""

from __future__ import annotations

from pathlib import Path

from .errors import unknown
from .io import write_json

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


def run_zoo(dataset: str = "shapes", epochs: int = 4, *, device: str = "auto", progress: bool = True,
            only: list[str] | None = None, overrides: dict[str, str] | None = None,
            root: Path | None = None, log=print) -> dict:
    """Train every grid entry as run ``zoo-<entry>``; returns rows and the JSON path.

    >>> result = run_zoo("shapes", epochs=1, only=["tutorial-max", "mlp-small"])
    """
    from .runs import models_dir
    from .train import train

    names = list(ZOO_GRID)
    if only:
        for name in only:
            if name not in ZOO_GRID:
                raise unknown("zoo entry", name, names)
        names = [n for n in names if n in only]
    root = Path(root) if root is not None else models_dir()
    rows = []
    for i, entry in enumerate(names, 1):
        model, sets = ZOO_GRID[entry]
        if log:
            log(f"[{i}/{len(names)}] {entry}: {model} {' '.join(f'{k}={v}' for k, v in sets.items())}".rstrip())
        run = train(model, dataset, name=f"zoo-{entry}", epochs=epochs, overrides={**(overrides or {}), **sets},
                    device=device,
                    progress=progress, root=root, overwrite=True, log=None)
        s = run.summary
        metrics = run.metrics
        throughput = sum(m.get("img_per_s", 0) for m in metrics) / max(len(metrics), 1)
        rows.append({"entry": entry, "run": run.name, "model": model, "settings": sets,
                     "test_acc": s["test_acc"], "parameters": s["parameters"],
                     "train_seconds": s["train_seconds"], "img_per_s": round(throughput, 1)})
    path = root / "zoo.json"
    write_json(path, {"dataset": dataset, "epochs": epochs, "settings": overrides or {}, "rows": rows})
    return {"rows": rows, "path": path}


def format_zoo_table(rows: list[dict]) -> str:
    from .cli.common import pct, table

    return table(rows, [("entry", "entry"), ("test_acc", "test acc"), ("parameters", "params"),
                        ("train_seconds", "train s"), ("img_per_s", "img/s")],
                 {"test_acc": pct, "parameters": lambda v: f"{v:,}", "train_seconds": lambda v: f"{v:.1f}",
                  "img_per_s": lambda v: f"{v:,.0f}"})
