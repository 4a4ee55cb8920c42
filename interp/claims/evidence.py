"""What the vision claims share: when a claim applies, the layer and probe it examines, the
images a data-based check samples, and the pooled-null verdict of the unit-level claims.

The unit-level claims (complex Gabors, curve and high-low detectors, :mod:`.curves`) count the
units that beat a null pooled over re-initialised copies of the model
(:func:`~interp.zoo.registry.reinitialized`) on several stimulus grids and check seeds
(:func:`unit_evidence`), then judge the count with a binomial test (:func:`pooled_verdict`).

>>> members = unit_evidence(run, options, "conv2", measure, candidates, score)
>>> pooled_verdict(claim, evidence, members, "conv2", "curve detectors").status
'supported'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..analysis.vision.tuning import PooledNull, Probe, conv_layers, pooled_null
from ..data.samples import Sample, sample_images
from ..hooks import get_module
from ..stats import binomial_tail, bootstrap_ci, headline
from ..zoo import reinitialized
from .registry import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, run_kind


EARLY_VISION = "Olah et al., 'An Overview of Early Vision in InceptionV1', Distill 2020"
EARLY_VISION_URL = "https://distill.pub/2020/circuits/early-vision/"
CURVES = "Cammarata et al., 'Curve Detectors', Distill 2020"
CURVES_URL = "https://distill.pub/2020/circuits/curve-detectors/"


def applies_conv(min_convs: int) -> Callable[[Any], str | None]:
    """A claim's ``applies(run)`` for conv nets on square images with at least ``min_convs`` conv layers
    (InceptionV1 is left to its own claims, with the published unit lists)."""
    def applies(run):
        kind = run_kind(run)
        if kind == "inceptionv1":
            return "InceptionV1 has its own claims with the published unit lists (the inceptionv1-* claims)"
        if kind != "vision":
            return f"the claim is about conv nets on images; {getattr(run, 'name', 'this model')} is not one"
        n = len(conv_layers(run.model))
        if n < min_convs:
            return f"the model has {n} conv layer{'s' * (n != 1)}; the claim needs at least {min_convs}"
        shape = tuple(run.input_shape)
        if len(shape) != 3 or shape[1] != shape[2]:
            return f"the stimuli are square images; this model takes {shape}"
        return None
    return applies


def claim_probe(run, options: CheckOptions) -> Probe:
    """The stimulus probe of a run (its model, preprocessing and input shape)."""
    return Probe.from_run(run)


def claim_layer(run, options: CheckOptions, index: int) -> str:
    """The layer a claim examines: ``options.layer`` if given (checked), else the ``index``-th conv layer."""
    convs = conv_layers(run.model)
    if options.layer:
        get_module(run.model, options.layer)  # did-you-mean error for a typo
        return options.layer
    return convs[index]


def unit_name(layer: str, i: int) -> str:
    """``conv2:3``: how units are named in tables and ``found``."""
    return f"{layer}:{i}"


def rounded(x: Any, nd: int = 3) -> Any:
    """``x`` (a tensor scalar too) as a float of ``nd`` decimals, for tables and numbers."""
    return round(float(x), nd)


# -- images of data-based checks ------------------------------------------------


def claim_data(run, options: CheckOptions) -> tuple[torch.Tensor, torch.Tensor | None, Sample]:
    """The images, labels and :class:`~interp.data.samples.Sample` a data-based check uses:
    ``max_images`` of ``options.images`` / ``options.labels``, or of the run's test split, drawn
    by :func:`~interp.data.samples.sample_images` with ``options.seed`` (stratified by class when
    there are labels; never the first N, which in a class-by-class image folder is one class)."""
    if options.images is not None:
        return sample_images(options.images, options.labels, options.max_images, seed=options.seed,
                             classes=getattr(run, "classes", None))
    data = run.load_data(progress=options.progress, split="test")
    return sample_images(data.test_x, data.test_y, options.max_images, seed=options.seed,
                         classes=getattr(data, "classes", None) or getattr(run, "classes", None))


def sample_evidence(sample: Sample, options: CheckOptions) -> tuple[dict, str]:
    """``numbers`` entries (size, images per class) and a note that say which images a data-based check used."""
    what = "given images" if options.images is not None else "test images"
    return {"images": sample.size, "class_counts": dict(sample.class_counts)}, f"images: {sample.describe(what)}"


# -- unit-level claims: the pooled null ----------------------------------------


UNIT_NULL_MODELS = 32
"""Re-initialised copies for the unit-level claims when ``--null-models`` is not given: with 8 a
found unit's verdict flipped with the check's seed; 32 copies x 16 units pool 512 null units."""
STIMULUS_SEEDS = 3
"""Stimulus grids (jittered orientations and positions); a unit counts when it passes on most of them."""
CHECK_SEEDS = 3
"""A unit-level verdict is the consensus of this many check seeds (null copies and grids shifted by one);
when they disagree it is inconclusive, so the verdict does not flip with ``--seed``."""
P_SUPPORTED = 0.01
P_INCONCLUSIVE = 0.1
"""Binomial p of the count of passing units under the pooled null: <= 0.01 supported, up to 0.1 inconclusive."""


@dataclass
class UnitRound:
    """One stimulus grid of a unit-level check: the model's tuning, the null copies' and the pooled null."""

    stimulus_seed: int
    tuning: Any
    nulls: list
    null: PooledNull
    passing: torch.Tensor
    null_passing: list[torch.Tensor]


@dataclass
class UnitEvidence:
    """A unit-level check over several stimulus grids: a unit (model or null) passes when it passes
    on most grids, and the model's count is compared with the pooled null's pass rate."""

    rounds: list[UnitRound]
    passing: torch.Tensor
    null_units: int
    null_passing: int
    rate_bound: float
    """The null's pass rate, or its 95% upper bound 3 / null units when no null unit passes."""
    p_value: float

    @property
    def first(self) -> UnitRound:
        return self.rounds[0]

    @property
    def count(self) -> int:
        return int(self.passing.sum())


def unit_evidence(run, options: CheckOptions, layer: str, measure: Callable, candidates: Callable,
                  score: Callable) -> list[UnitEvidence]:
    """The evidence of a unit-level claim for :data:`CHECK_SEEDS` check seeds (``options.seed`` first).

    Check seed ``s`` measures the model and ``--null-models`` re-initialised copies (seeds
    ``s+1 ...``) on :data:`STIMULUS_SEEDS` stimulus grids (``s, s+1, ...``), pools the null
    over every unit of every copy, and counts the units that pass on most grids. The same
    rule (99th percentile of the pooled null on each grid, a majority of grids) applies to
    the model's units and to the null units, so the null's pass rate is the chance that a
    random unit passes. Neighbouring check seeds share most copies and grids, which are
    measured once.

    ``measure(probe, layer, stimulus_seed)`` -> tuning; ``candidates(tuning)`` -> the units that
    meet the claim's absolute criteria; ``score(tuning)`` -> the score the null thresholds.
    """
    probe = claim_probe(run, options)
    n_null = options.null_models or UNIT_NULL_MODELS
    grids = [options.seed + k for k in range(CHECK_SEEDS + STIMULUS_SEEDS - 1)]
    tunings = {s: measure(probe, layer, s) for s in grids}
    nulls: dict[tuple[int, int], Any] = {}  # (copy seed, grid) -> tuning
    for c in range(options.seed + 1, options.seed + n_null + CHECK_SEEDS):  # one copy at a time in memory
        copy = probe.with_model(reinitialized(probe.model, c))
        for s in grids:
            nulls[c, s] = measure(copy, layer, s)
    members = []
    for k in range(CHECK_SEEDS):
        seed = options.seed + k
        rounds = []
        for s in range(seed, seed + STIMULUS_SEEDS):
            ns = [nulls[c, s] for c in range(seed + 1, seed + 1 + n_null)]
            null = pooled_null([score(n) for n in ns], [candidates(n) for n in ns])
            t = tunings[s]
            rounds.append(UnitRound(s, t, ns, null, candidates(t) & (score(t) > null.threshold),
                                    [candidates(n) & (score(n) > null.threshold) for n in ns]))
        need = len(rounds) // 2 + 1
        passing = torch.stack([r.passing for r in rounds]).sum(0) >= need
        null_pass = torch.stack([torch.stack(r.null_passing) for r in rounds]).sum(0) >= need  # (copies, units)
        n_units, k_null = null_pass.numel(), int(null_pass.sum())
        rate = k_null / n_units if k_null else min(1.0, 3.0 / max(n_units, 1))
        members.append(UnitEvidence(rounds, passing, n_units, k_null, rate,
                                    binomial_tail(int(passing.sum()), len(passing), rate)))
    return members


def chance_count(units: int, rate: float, alpha: float = P_SUPPORTED) -> int:
    """The smallest count of passing units that chance (each unit passing with ``rate``) reaches with
    probability at most ``alpha``."""
    return next((k for k in range(units + 1) if binomial_tail(k, units, rate) <= alpha), units + 1)


def _member_status(ev: UnitEvidence) -> str:
    if ev.count == 0 or ev.p_value > P_INCONCLUSIVE:
        return NOT_SUPPORTED
    return SUPPORTED if ev.p_value <= P_SUPPORTED else INCONCLUSIVE


def pooled_verdict(claim: Claim, evidence: dict, members: list[UnitEvidence], layer: str, what: str) -> ClaimResult:
    """The verdict of a unit-level claim: on each check seed the count of units passing on most stimulus
    grids against the pooled null's pass rate (binomial p <= 0.01 supported, <= 0.1 inconclusive, else not
    supported); check seeds that disagree make it inconclusive. The evidence is the first check seed's."""
    ev = members[0]
    n_units = len(ev.passing)
    found = [unit_name(layer, i) for i in torch.nonzero(ev.passing).flatten().tolist()]
    statuses = [_member_status(m) for m in members]
    seeds = [m.first.stimulus_seed for m in members]
    evidence["found"] = found
    evidence["numbers"].update({
        "null_models": len(ev.first.nulls), "null_units_pooled": ev.null_units, "null_units_passing": ev.null_passing,
        "null_pass_rate_used": rounded(ev.rate_bound, 4), "p_value": ev.p_value, "stimulus_grids": len(ev.rounds),
        "passing_per_grid": ", ".join(str(int(r.passing.sum())) for r in ev.rounds),
        "check_seeds": ", ".join(map(str, seeds)), "verdicts_per_check_seed": ", ".join(statuses),
        "units_per_check_seed": ", ".join(str(m.count) for m in members)})
    chance = chance_count(n_units, ev.rate_bound)
    evidence["headline"] = headline(f"share of {layer}'s units that are {what.split(' (')[0]}",
                                    ev.count / max(n_units, 1),
                                    bootstrap_ci(ev.passing.double(), seed=ev.first.stimulus_seed),
                                    null=chance / max(n_units, 1), n=n_units, over="units",
                                    null_what=f"share chance reaches with p = {P_SUPPORTED} (pooled null of "
                                              f"{ev.null_units} units of {len(ev.first.nulls)} re-initialised copies)",
                                    level=None)
    evidence.setdefault("notes", []).append(
        f"The null pools every unit of {len(ev.first.nulls)} re-initialised copies ({ev.null_units} units). On each "
        f"of {len(ev.rounds)} stimulus grids (jittered orientations and positions) a unit passes when it meets the "
        f"absolute criteria and its score beats the pooled null's 99th percentile; it counts when it passes on most "
        f"grids, by the same rule for model and null units. {ev.null_passing} of {ev.null_units} null units count"
        + (f" (none: chance is taken as its 95% upper bound 3/{ev.null_units})." if not ev.null_passing else ".")
        + f" The verdict must agree on check seeds {', '.join(map(str, seeds))} (null copies and grids shifted)."
        f" The headline's interval resamples this layer's units (how the share would vary over layers like it);"
        f" the verdict is the binomial test of the count against the pooled null, so a share whose interval"
        f" reaches the null's can still be more than chance.")
    shown = ", ".join(found[:8]) + (" ..." if len(found) > 8 else "")
    chance_text = (f"chance (a random unit counts with probability {ev.rate_bound:.2%}) gives {ev.count} or more "
                   f"of {n_units} with p = {ev.p_value:.2g}")
    if len(set(statuses)) > 1:
        listing = ", ".join(f"seed {s}: {st} ({m.count} unit{'s' * (m.count != 1)})"
                            for s, st, m in zip(seeds, statuses, members))
        return claim.result(INCONCLUSIVE, f"the verdict changes with the check's seed ({listing}): {ev.count} {what} "
                            f"in {layer} ({shown or 'none'}) is at the edge of what chance gives; more null copies "
                            f"(--null-models) would sharpen the null, and a layer with more such units would decide",
                            **evidence)
    if ev.count == 0:
        return claim.result(NOT_SUPPORTED, f"no {what} in {layer} (none passes on most of {len(ev.rounds)} stimulus "
                            f"grids, on any of {len(members)} check seeds)", **evidence)
    agree = f", on each of {len(members)} check seeds"
    if statuses[0] == SUPPORTED:
        return claim.result(SUPPORTED, f"{ev.count} of {n_units} {layer} units are {what} ({shown}); {chance_text}"
                            f"{agree}", **evidence)
    if statuses[0] == INCONCLUSIVE:
        return claim.result(INCONCLUSIVE, f"{ev.count} of {n_units} {layer} units are {what} ({shown}), but "
                            f"{chance_text}{agree}: more null copies (--null-models) would sharpen the null, and a "
                            f"layer with more such units would decide", **evidence)
    return claim.result(NOT_SUPPORTED, f"{ev.count} of {n_units} {layer} units are {what} ({shown}), no more "
                        f"than chance: {chance_text}{agree}", **evidence)


def null_pass_counts(ev: UnitEvidence) -> list[int]:
    """Units of each null copy that pass on the canonical grid (context for the figures)."""
    return [int(p.sum()) for p in ev.first.null_passing]


def null_threshold(null: PooledNull) -> float | None:
    return rounded(null.threshold) if math.isfinite(null.threshold) else None


def scatter_data(x, y, null_x, null_y, xlabel, ylabel, x_thr, y_thr, *, above_y: bool = True,
                  product: float | None = None) -> dict:
    """Two indices of the model's units and of the null units, with the thresholds (``product``: x * y)."""
    return {"scatter": {"x": [rounded(v) for v in x.tolist()], "y": [rounded(v) for v in y.tolist()],
                        "null_x": [rounded(v) for v in torch.cat([v.flatten() for v in null_x]).tolist()],
                        "null_y": [rounded(v) for v in torch.cat([v.flatten() for v in null_y]).tolist()],
                        "xlabel": xlabel, "ylabel": ylabel, "x_threshold": x_thr, "y_threshold": y_thr,
                        "above_y": above_y, "product": product}}

