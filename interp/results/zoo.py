"""The saved architecture grid: ``models/zoo.json``, kind ``zoo`` (see :mod:`interp.pipelines.zoo_grid`).

The file (version 2) holds one row per entry (``rows``: mean, sd, 95% interval, min/max,
every seed's accuracy), one row per trained run (``seed_rows``) and the findings text
computed from those numbers when it was saved. Older files are upgraded when read by
:func:`normalize_zoo`: version 1 (one seed, ``rows`` only, no ``kind``) and hand-made
``{"rows": [{"entry", "parameters", "test_accs"}, ...]}``, their statistics and findings
computed from the numbers they hold.

>>> zoo = interp.results.load("models/zoo.json")          # or load_zoo(...)
>>> zoo.seeds, zoo.rows[0]["entry"], zoo.findings[0]
(3, 'tutorial-max', 'Overall (8 entries, ...)')
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..analysis.zoo_grid import ZOO_GRID, summarize, zoo_findings
from ..errors import InterpError
from ..io import write_json
from .store import register

KIND = "zoo"
ZOO_FILE = "zoo.json"
ZOO_VERSION = 2


def seed_run_name(entry: str, seed: int) -> str:
    """``zoo-<entry>`` for seed 0 (the name single-seed zoos used), ``zoo-<entry>-s<k>`` after."""
    return f"zoo-{entry}" if seed == 0 else f"zoo-{entry}-s{seed}"


@dataclass
class ZooResult:
    """A trained grid: entry rows with their statistics, the runs behind them, the findings."""

    rows: list[dict]
    """One per entry: ``entry``, ``run`` (seed 0), ``runs``, ``model``, ``settings``, ``test_acc`` (mean
    over seeds), ``test_acc_sd``, ``test_acc_ci``, ``test_acc_min``/``max``, ``test_accs``, ``parameters``, ..."""
    seed_rows: list[dict]
    """One per trained run: ``entry``, ``run``, ``seed``, ``test_acc``, ``parameters``, ``train_seconds``, ..."""
    seeds: int
    findings: list[str]
    """The comparison text (:func:`interp.analysis.zoo_grid.zoo_findings`) of these numbers."""
    dataset: str = "?"
    epochs: int | None = None
    settings: dict = field(default_factory=dict)
    """The ``--set`` overrides every entry was trained with."""
    version: int = ZOO_VERSION

    def to_dict(self) -> dict:
        """What ``zoo.json`` holds."""
        return {"kind": KIND, **asdict(self)}


def _upgraded_row(row: dict, seed_rows: list[dict]) -> tuple[dict, list[dict]]:
    """An entry row of any version with its statistics, and the seed rows it adds (version 1)."""
    entry = row["entry"]
    model, sets = ZOO_GRID.get(entry, (row.get("model", "?"), {}))
    mine = [r for r in seed_rows if r["entry"] == entry]
    if row.get("test_accs"):
        accs = list(row["test_accs"])
    elif mine:
        accs = [r["test_acc"] for r in mine]
    else:
        accs = [row["test_acc"]]
    added = []
    if not mine:  # version 1 (or hand-made): one seed row per listed accuracy
        added = [{"entry": entry, "run": seed_run_name(entry, k) if k or "run" not in row else row["run"],
                  "seed": k, "model": row.get("model", model), "settings": row.get("settings", sets),
                  "test_acc": acc, "parameters": row.get("parameters"),
                  "train_seconds": row.get("train_seconds"), "img_per_s": row.get("img_per_s")}
                 for k, acc in enumerate(accs)]
        mine = added
    upgraded = {"run": row.get("run", seed_run_name(entry, 0)), "runs": row.get("runs", [r["run"] for r in mine]),
                "model": model, "settings": sets, "parameters": None, "train_seconds": None,
                "img_per_s": None, **row, "entry": entry, **summarize(accs)}
    return upgraded, added


def normalize_zoo(data: dict) -> ZooResult:
    """A zoo result of any version as a :class:`ZooResult` (statistics recomputed from the seeds,
    findings computed when the data has none).

    >>> normalize_zoo({"rows": [{"entry": "mlp-small", "test_accs": [0.4, 0.42]}]}).rows[0]["test_acc"]
    0.41
    """
    seed_rows = list(data.get("seed_rows") or [])
    rows = []
    for row in data.get("rows", []):
        upgraded, added = _upgraded_row(row, seed_rows)
        rows.append(upgraded)
        seed_rows.extend(added)
    seeds = data.get("seeds") or max((r["seeds"] for r in rows), default=1)
    findings = data.get("findings") or zoo_findings({"rows": rows})
    return ZooResult(rows, seed_rows, seeds, list(findings), dataset=data.get("dataset", "?"),
                     epochs=data.get("epochs"), settings=data.get("settings") or {})


def zoo_file(path: str | os.PathLike) -> Path:
    """``path`` itself when it names a JSON file, else ``path/zoo.json``."""
    path = Path(path)
    return path if path.suffix == ".json" else path / ZOO_FILE


def save_zoo(zoo: ZooResult, path: str | os.PathLike) -> Path:
    """Write ``zoo.json`` (``path`` is the file or its folder, e.g. ``models/``); returns the file."""
    file = zoo_file(path)
    write_json(file, zoo.to_dict())
    return file


def load_zoo(path: str | os.PathLike) -> ZooResult:
    """Read a saved ``zoo.json`` of any version (give the file or its folder).

    >>> load_zoo("models").rows[0]["test_acc_ci"]
    [0.57, 0.61]
    """
    file = zoo_file(path)
    if not file.is_file():
        raise InterpError(f"{file} does not exist; run `interp zoo` first")
    try:
        data = json.loads(file.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        return normalize_zoo(data)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InterpError(f"{file} is not a zoo result ({e}); run `interp zoo` again") from None


register(KIND, ZooResult, save=save_zoo, load=load_zoo, main_file=ZOO_FILE)
