"""Claims across training seeds: the same recipe trained N times, each verdict per seed, and how many agree.

A verdict that holds for one training seed may be luck; Zoom In's universality claim is
about features that recur. :func:`check_across_seeds` trains (or reuses) sibling runs of
a run's exact recipe with other seeds (``RUN-seed1``, ``RUN-seed2``, ...), checks the
claims on each, and summarises: the verdict every seed gives, or ``inconclusive`` with
the per-seed verdicts when they disagree.

>>> results, per_seed = check_across_seeds(load_run("tutorial"), ["curve-detectors"], seeds=3)
>>> results[0].verdict.reason
'supported on 3 of 3 training seeds (0, 1, 2) ...'
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Callable

from ..errors import InterpError
from .registry import INCONCLUSIVE, CheckOptions, ClaimResult, Verdict, check_claims, check_settings
from ..stats import headline

MAX_SEEDS = 10


def sibling_name(run: Any, seed: int) -> str:
    """The run name of ``run``'s recipe trained with another ``seed``."""
    return f"{run.name}-seed{seed}"


def seed_siblings(run: Any, seeds: int, *, device: str = "auto", progress: bool = True,
                  log: Callable[[str], None] | None = print) -> list[Any]:
    """``run`` and the same recipe trained with ``seeds - 1`` other seeds, reusing finished siblings.

    A sibling folder that exists but holds another recipe, or did not finish, is an error
    that says what to do (it is never overwritten).
    """
    from ..runs import load_run
    from ..training.loop import train_config

    if not 1 <= seeds <= MAX_SEEDS:
        raise InterpError(f"--seeds must be between 1 and {MAX_SEEDS}; got {seeds}")
    if getattr(run.config, "family", "") in ("inception", "custom") or run.config.model == "inceptionv1":
        raise InterpError(f"{run.name} was not trained here, so it cannot be retrained with other seeds; "
                          f"--seeds needs a run made by `interp train`")
    base = run.config.train.seed
    root = run.path.parent
    out = [run]
    for seed in [s for s in range(seeds + 1) if s != base][:seeds - 1]:
        name = sibling_name(run, seed)
        config = dataclasses.replace(run.config, train=dataclasses.replace(run.config.train, seed=seed))
        if (root / name).exists():
            sibling = load_run(root / name)
            if _recipe(sibling.config) != _recipe(config):
                raise InterpError(f"{root / name} exists but was trained with another recipe than {run.name}; "
                                  f"move it away or remove it to check across seeds")
            if sibling.state.get("status") != "finished":
                raise InterpError(f"{name} did not finish training (status {sibling.state.get('status')!r}); "
                                  f"continue it with `interp train --resume {name}` first")
            if log:
                log(f"seed {seed}: reusing {name}")
        else:
            if log:
                log(f"seed {seed}: training {name} ({run.config.model}, {run.config.train.epochs} epochs) ...")
            sibling = train_config(config, name=name, device=device, progress=progress, root=root, log=None)
        out.append(sibling)
    return out


def _recipe(config) -> dict:
    """A run config without what training fills in from the data, for comparing recipes."""
    d = config.to_dict()
    d.pop("version", None)
    return {"model": d["model"], "model_config": {k: v for k, v in d["model_config"].items() if k != "vocab_size"},
            "data": {k: d["data"].get(k) for k in ("name", "options")}, "train": d["train"]}


def agreement(claim: str, per_seed: list[tuple[int, ClaimResult]]) -> ClaimResult:
    """One result for a claim checked on several training seeds: their common verdict, or inconclusive."""
    statuses = [r.status for _, r in per_seed]
    counts = Counter(statuses)
    top, n_top = counts.most_common(1)[0]
    seeds = [s for s, _ in per_seed]
    listing = ", ".join(f"seed {s}: {r.status}" for s, r in per_seed)
    first = per_seed[0][1]
    if n_top == len(statuses):
        verdict = Verdict(top, f"{top} on {n_top} of {len(statuses)} training seeds "
                               f"({', '.join(map(str, seeds))}); seed {seeds[0]}: {first.verdict.reason}")
    else:
        verdict = Verdict(INCONCLUSIVE, f"the verdict changes with the training seed ({listing}): the finding does "
                                        f"not hold for every model trained with this recipe; more seeds, or longer "
                                        f"training, would decide whether it is typical")
    table = [{"seed": s, "run": r.run, "verdict": r.status, "headline": r.headline.get("value"),
              "ci_low": r.headline.get("ci_low"), "ci_high": r.headline.get("ci_high"),
              "null": r.headline.get("null_quantile"), "found": ", ".join(r.found[:6])} for s, r in per_seed]
    share = counts.get(first.status, 0) / len(statuses)
    return ClaimResult(claim, verdict, first.statement, first.source, first.url, run=first.run, layer=first.layer,
                       numbers={"training_seeds": len(statuses), "agreeing": n_top, "majority": top,
                                **{f"seed_{s}": r.status for s, r in per_seed}},
                       table=table, found=first.found, thresholds=first.thresholds,
                       notes=[f"seed {s}: {r.verdict.reason}" for s, r in per_seed[1:]],
                       data=first.data,
                       headline=headline(f"share of training seeds with the seed-{seeds[0]} verdict ({first.status})",
                                         share, (float("nan"), float("nan")), null=None, n=len(statuses),
                                         over="training seeds"))


def check_across_seeds(run: Any, ids: list[str] | None, seeds: int, *, options: CheckOptions,
                       log: Callable[[str], None] | None = print) -> tuple[list[ClaimResult], list[tuple[Any, list]]]:
    """Check claims on ``run`` and its seed siblings; returns the agreement results and ``(run, results)``
    of each seed.

    >>> summary, per_run = check_across_seeds(run, None, 3, options=CheckOptions())
    """
    runs = seed_siblings(run, seeds, device=options.device or "auto", progress=options.progress, log=log)
    per_run = [(r, check_claims(r, ids, options=options, log=log)) for r in runs]
    by_claim: dict[str, list[tuple[int, ClaimResult]]] = {}
    for r, results in per_run:
        for result in results:
            by_claim.setdefault(result.claim, []).append((r.config.train.seed, result))
    summary = [agreement(claim, rows) for claim, rows in by_claim.items()]
    settings = {**check_settings(options), "training_seeds": [r.config.train.seed for r in runs]}
    for result in summary:
        result.settings = settings
    return summary, per_run
