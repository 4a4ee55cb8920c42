"""Saved claim results: ``reports/RUN/claims/claims.json`` and the figures of each verdict.

One file holds every claim checked on a run (a :class:`~interp.claims.registry.ClaimSet`:
the latest result of each claim and, under ``earlier``, results of other settings); the
figures (:mod:`interp.results.claims_figures`) are drawn when a result is saved and named
``CLAIM-SETTINGSHASH-NAME.png``, so results of other settings keep their own. Registered
with the results store as kind ``claims``; the JSON file carries ``"kind": "claims"``.

>>> path = save_claims(check_claims(run, ["curve-detectors"]), claims_dir(run))   # .../claims/claims.json
>>> [r.claim for r in load_claims(claims_dir(run))]
['curve-detectors']
>>> interp.results.load(path).results[0].verdict.status          # the same, through the store
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..claims.registry import INCONCLUSIVE, ClaimResult, ClaimSet
from ..errors import InterpError
from ..io import atomic_dir, write_json
from ..plots import save_figure
from .claims_figures import FIGURES, figures_of
from .store import register, settings_hash

KIND = "claims"
RESULTS_FILE = "claims.json"
FORMAT_VERSION = 2


def claims_dir(run: Any) -> Path:
    """Where a run's claim results go: ``reports/RUN/claims``."""
    return run.report_dir() / "claims"


def _draws_figures(result: ClaimResult) -> bool:
    # An inconclusive check with no evidence ("does not apply") has nothing to draw.
    return result.claim in FIGURES and not (result.status == INCONCLUSIVE and not result.data)


def save_claims(results: list[ClaimResult], out_dir: str | os.PathLike) -> Path:
    """Add ``results`` to ``out_dir/claims.json`` with their figures (PNG); returns the JSON path.

    Nothing earlier is destroyed: a claim not checked this time keeps its verdict; a claim
    checked again with the same settings is replaced; one checked with other settings
    (seed, null models, images, layer) moves to ``earlier``, its figures kept. The folder is
    written aside and swapped in whole (:func:`interp.io.atomic_dir`).

    >>> save_claims(check_claims(run, ["curve-detectors"], seed=1), claims_dir(run))
    """
    out = Path(out_dir)
    current, earlier = _read_claims(out) if (out / RESULTS_FILE).is_file() else ([], [])
    checked = {r.claim for r in results}
    kept = [r for r in current if r.claim not in checked]
    moved = [r for r in current if r.claim in checked
             and not any(n.claim == r.claim and n.settings == r.settings for n in results)]
    earlier = [r for r in earlier if not any(n.claim == r.claim and n.settings == r.settings for n in results)]
    with atomic_dir(out) as tmp:
        for old in kept + moved + earlier:  # figures of what is kept travel with it
            for file in old.figures.values():
                if (out / file).is_file():
                    shutil.copy2(out / file, tmp / file)
        for result in results:
            result.figures = {}
            if not _draws_figures(result):
                continue
            for name, fig in figures_of(result).items():
                file = f"{result.claim}-{settings_hash(result.settings)}-{name}.png"
                save_figure(fig, tmp / file)
                result.figures[name] = file
        # The page keeps its order: a re-checked claim takes its old place, a new one goes last.
        fresh = {r.claim: r for r in results}
        merged = [fresh.pop(r.claim) if r.claim in fresh else r for r in current if r.claim in fresh or r in kept]
        merged += list(fresh.values())
        write_json(tmp / RESULTS_FILE, {"kind": KIND, "version": FORMAT_VERSION,
                                        "results": [r.to_dict() for r in merged],
                                        "earlier": [r.to_dict() for r in moved + earlier]})
    return out / RESULTS_FILE


def _read_claims(out: Path) -> tuple[list[ClaimResult], list[ClaimResult]]:
    path = out / RESULTS_FILE
    try:
        data = json.loads(path.read_text())
        return ([ClaimResult.from_dict(d) for d in data["results"]],
                [ClaimResult.from_dict(d) for d in data.get("earlier", [])])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise InterpError(f"{path} is corrupt ({e}); check the claims again") from None


def load_claims(out_dir: str | os.PathLike, *, earlier: bool = False) -> list[ClaimResult]:
    """The latest result of each claim saved by :func:`save_claims` (a clear error when there are none);
    ``earlier=True``: the results of earlier checks with other settings instead."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        raise InterpError(f"no claim results at {path}; check claims first: interp claims check")
    current, older = _read_claims(Path(out_dir))
    return older if earlier else current


def _folder(path: str | os.PathLike) -> Path:
    """The claims folder of ``path``: the folder itself, or the folder of its ``claims.json``."""
    path = Path(path)
    return path.parent if path.name == RESULTS_FILE else path


def save_claim_set(claims: ClaimSet, path: str | os.PathLike) -> Path:
    """The store's saver: ``claims.results`` added to the folder ``path`` (or its ``claims.json``)."""
    return save_claims(claims.results, _folder(path))


def load_claim_set(path: str | os.PathLike) -> ClaimSet:
    """The store's loader: everything saved in a claims folder (or its ``claims.json``)."""
    folder = _folder(path)
    if not (folder / RESULTS_FILE).is_file():
        raise InterpError(f"no claim results at {folder / RESULTS_FILE}; check claims first: interp claims check")
    current, older = _read_claims(folder)
    return ClaimSet(current, older)


def _summary(result: ClaimResult) -> dict:
    # The figures' raw data (weights, tuning curves) is for drawing: too big for a terminal.
    return {k: v for k, v in result.to_dict().items() if k != "data"}


def describe_claims(claims: ClaimSet) -> dict:
    """The JSON of ``interp claims check --json``: the run and each result without its figure data.

    >>> describe_claims(ClaimSet(results))["results"][0]["verdict"]["status"]
    'supported'
    """
    return {"run": claims.run, "results": [_summary(r) for r in claims.results],
            "earlier": [_summary(r) for r in claims.earlier]}


register(KIND, ClaimSet, save=save_claim_set, load=load_claim_set, describe=describe_claims)
