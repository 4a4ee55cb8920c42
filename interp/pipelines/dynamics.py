"""Analyses at every training checkpoint of a run: ``interp dynamics`` and :func:`interp.dynamics`.

>>> result = dynamics("attn-only")                 # after interp train attn-only --checkpoints log
>>> result.series["induction"].phase.step, result.coincide
(139, {'induction~icl': 0})

Each checkpoint's measurements are stored beside the result (``reports/RUN/dynamics-points/KEY/``,
one file per snapshot, keyed by the probe's settings and checked against the snapshot's
content), so a run trained further, or analysed again with other metrics, computes only the
checkpoints it has not seen. Re-initialised copies of the model give every metric its null.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..analysis.dynamics.points import (image_metrics, image_point, image_probe, class_selectivity, head_table,
                                        transformer_metrics, transformer_point, transformer_probe, HEAD_SCORES)
from ..analysis.dynamics.phase import seed_spread
from ..analysis.dynamics.series import Dynamics, build_series, coincidence
from ..errors import InterpError
from ..snapshots import list_snapshots, load_snapshot

GROUPS = {
    "language-model": {"heads": ["induction", "prev_token"], "icl": ["icl"],
                       "loss": ["loss", "loss_repeated", "loss_fresh"], "composition": ["k_composition"]},
    "image-classification": {"accuracy": ["accuracy", "loss"], "units": ["selectivity"], "claims": []},
}
"""``--metrics`` groups per kind of run and the series each adds."""
DEFAULT_CLAIMS = ("gabor-first-layer",)
PAIRS = [("induction", "icl"), ("induction", "loss"), ("induction", "prev_token"), ("induction", "k_composition")]
NULL_SEED = 10_000


def _file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


def _cached_point(folder: Path, name: str, digest: str, compute: Callable[[], dict]) -> dict:
    """One checkpoint's point from ``folder/name.safetensors`` when it was computed from the same weights, else computed and stored."""
    from safetensors import safe_open

    from ..io import save_tensors
    from ..runs import load_weights

    file = folder / f"{name}.safetensors"
    if file.is_file():
        try:
            with safe_open(str(file), "pt") as f:
                same = (f.metadata() or {}).get("weights") == digest
            if same:
                return load_weights(file)
        except Exception:  # a damaged cache file is recomputed, never trusted
            pass
    point = compute()
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(file, point, metadata={"weights": digest})
    return point


def _reinitialised(run, seed: int):
    """``run`` with its model re-initialised (another seed of the same architecture): the null."""
    from dataclasses import replace

    from ..zoo import build_model

    with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
        torch.manual_seed(seed)
        model = build_model(run.config.model, run.config.model_config)
    return replace(run, model=model.to(run.device).eval())


def dynamics(run: Any, *, metrics: list[str] | None = None, claims: list[str] | None = None, n: int | None = None,
             seed: int = 0, null_models: int = 4, seeds: int = 1, claim_null_models: int = 8, device: str = "cpu",
             progress: bool = True, log: Callable[[str], None] | None = print, save: bool = True,
             root: Path | None = None) -> Dynamics:
    """Evaluate analyses at every snapshot of a run trained with ``--checkpoints``; saved under
    ``reports/RUN/dynamics/`` when ``save``.

    ``metrics``: groups (language models: heads, icl, loss, composition; image classifiers:
    accuracy, units, claims), default all but claims; ``claims``: the claim checks to run
    at each checkpoint (image classifiers; default gabor-first-layer when ``claims`` is in
    ``metrics``); ``n``: probe size (64 sequences / 1,000 images); ``seeds``: also train (or
    reuse) ``seeds - 1`` sibling runs of the same recipe and give the phase-change step's CI over seeds.
    """
    from ..runs import load_run, reports_dir

    if isinstance(run, (str, Path)) or run is None:
        run = load_run(run, device=device)
    task = run.config.task
    if task not in GROUPS:
        raise InterpError(f"run {run.name} is a {task} run; dynamics covers language models and image classifiers")
    groups = _groups(task, metrics)
    snaps = list_snapshots(run.path)
    if len(snaps) < 2:
        raise InterpError(f"run {run.name} has {len(snaps)} weight snapshot{'s' if len(snaps) != 1 else ''}; train "
                          f"with snapshots first, e.g. interp train {run.config.model} --dataset {run.config.data.name} "
                          f"--checkpoints log --name {run.name}-dyn")
    start = time.perf_counter()
    language = task == "language-model"
    probe = (transformer_probe(run, n_sequences=n or 64, seed=seed) if language
             else image_probe(run, n_images=n or 1000, seed=seed))
    key = _key({"kind": task, "probe": probe.settings, "version": 1})
    run_reports = (Path(root) if root is not None else reports_dir()) / run.name
    out_root = run_reports / "dynamics"
    cache = run_reports / "dynamics-points" / key  # beside the result, which is replaced whole when saved

    shared: dict = {}  # one bridge for every checkpoint of a language model

    def measure(r):
        if not language:
            return image_point(r, probe)
        if "bridge" not in shared:
            from ..analysis.language.bridge import to_bridge

            shared["bridge"] = to_bridge(r)
        return transformer_point(r, probe, bridge=shared["bridge"])

    from tqdm.auto import tqdm

    digests = [_file_digest(s.path) for s in snaps]  # read once: the points' and the claims' cache keys
    points = []
    for snap, digest in tqdm(list(zip(snaps, digests)), desc=f"dynamics {run.name}", unit="checkpoint",
                             disable=not progress or None, leave=False):
        points.append(_cached_point(cache, snap.path.stem, digest,
                                    lambda: measure(load_snapshot(run, snap, device=run.device))))
    null_points = [_cached_point(cache, f"null-{i}", _key(run.config.model_config),
                                 lambda: measure(_reinitialised(run, NULL_SEED + i))) for i in range(null_models)]
    steps = [s.step for s in snaps]
    wanted = [m for g in groups for m in GROUPS[task][g]]
    available = transformer_metrics(points[-1]) if language else image_metrics(probe)
    chosen = {k: m for k, m in available.items() if k in wanted or k.split(":")[0] in wanted}
    series = build_series(chosen, points, probe, steps, null_points=null_points, seed=seed)
    meta = [s.metadata() for s in snaps]
    result = Dynamics(run=run.name, kind="transformer" if language else "cnn", steps=steps,
                      epochs=[float(m.get("epoch", "nan")) for m in meta],
                      seconds=[float(m.get("seconds", "nan")) for m in meta], series=series,
                      settings={"metrics": groups, "probe": probe.settings, "null_models": null_models, "seed": seed,
                                "snapshots": len(snaps)})
    if language and "heads" in groups:
        result.heads = {name: torch.stack([head_table(p, name) for p in points]) for name in HEAD_SCORES}
    if not language and "units" in groups:
        result.units = {layer: torch.stack([class_selectivity(p[f"act:{layer}"], probe.labels, probe.n_classes)
                                            for p in points]) for layer in probe.layers}
    if not language and "claims" in groups:
        ids = list(claims or DEFAULT_CLAIMS)
        result.claims = claims_over_training(run, snaps, digests, ids, cache, null_models=claim_null_models,
                                             seed=seed, progress=progress)
        result.settings["claims"] = {"ids": ids, "null_models": claim_null_models}
    result.coincide = coincidence(series, PAIRS)
    result.elapsed = round(time.perf_counter() - start, 2)
    if seeds > 1:
        _across_seeds(result, run, seeds, metrics=metrics, n=n, seed=seed, null_models=null_models, device=device,
                      progress=progress, log=log, save=save, root=root)
    if save:
        from ..results.store import save as save_result

        path = save_result(result, out_root)
        if log:
            log(f"saved {path}")
    return result


def _groups(task: str, metrics: list[str] | None) -> list[str]:
    valid = GROUPS[task]
    if not metrics:
        return [g for g in valid if g != "claims"]
    bad = [m for m in metrics if m not in valid]
    if bad:
        from ..errors import unknown

        raise unknown("--metrics group", bad[0], list(valid))
    return list(dict.fromkeys(metrics))


def _key(settings: dict) -> str:
    from ..results.store import settings_hash

    return settings_hash(json.loads(json.dumps(settings, default=str)))


def claims_over_training(run, snaps, digests: list[str], ids: list[str], cache: Path, *, null_models: int,
                         seed: int, progress: bool = True) -> list[dict]:
    """Each claim's verdict and headline at every checkpoint (``digests``: each snapshot's content key), and
    the first step from which it stays supported."""
    from tqdm.auto import tqdm

    from ..claims.registry import check_claims
    from ..io import read_json_object, write_json

    per_claim: dict[str, dict] = {c: {"claim": c, "statuses": [], "values": []} for c in ids}
    folder = cache / f"claims-{_key({'ids': ids, 'null_models': null_models, 'seed': seed})}"
    for snap, digest in tqdm(list(zip(snaps, digests)), desc="claims over training", unit="checkpoint",
                             disable=not progress or None, leave=False):
        file = folder / f"{snap.path.stem}.json"
        saved = read_json_object(file) if file.is_file() else None
        if not saved or saved.get("weights") != digest:
            results = check_claims(load_snapshot(run, snap, device=run.device), ids, null_models=null_models,
                                   seed=seed)
            saved = {"weights": digest, "claims": {r.claim: {"status": r.status, "value": r.headline.get("value")}
                                                   for r in results}}
            folder.mkdir(parents=True, exist_ok=True)
            write_json(file, saved)
        for c in ids:
            per_claim[c]["statuses"].append(saved["claims"][c]["status"])
            per_claim[c]["values"].append(saved["claims"][c]["value"])
    steps = [s.step for s in snaps]
    for row in per_claim.values():
        row["first_supported"] = first_supported(steps, row["statuses"])
    return list(per_claim.values())


def first_supported(steps: list[int], statuses: list[str]) -> int | None:
    """The first step from which a claim is supported at every later checkpoint (None: not supported at the end).

    >>> first_supported([0, 10, 20, 30], ["not supported", "supported", "inconclusive", "supported"])
    30
    """
    found = None
    for step, status in zip(steps, statuses):
        if status == "supported":
            found = step if found is None else found
        else:
            found = None
    return found


def _across_seeds(result: Dynamics, run, seeds: int, **options) -> None:
    """Phase-change steps of the same recipe trained with other seeds (trained here when missing)."""
    from ..claims.seeds import seed_siblings

    siblings = seed_siblings(run, seeds, device=options["device"], progress=options["progress"], log=options["log"])
    per_seed = [{"run": run.name, "seed": run.config.train.seed, "phase": result.phase_steps()}]
    for sibling in siblings[1:]:
        other = dynamics(sibling, seeds=1, **options)
        per_seed.append({"run": sibling.name, "seed": sibling.config.train.seed, "phase": other.phase_steps()})
    result.seeds = per_seed
    result.seed_summary = {name: seed_spread([row["phase"].get(name) for row in per_seed]) for name in result.series}
    result.settings["seeds"] = [row["seed"] for row in per_seed]
