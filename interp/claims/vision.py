"""Vision claims for any conv net: Gabor filters, orientation tiling, complex cells, curve and
high-low frequency detectors, exponential activation tails and weight banding.

The measurements live in :mod:`interp.analysis.vision.gabor` (filter fits) and
:mod:`interp.analysis.vision.tuning` (responses to stimuli, nulls, tails, banding); this module
turns them into verdicts, with thresholds taken from a null: the same architecture
re-initialised (:func:`~interp.zoo.registry.reinitialized`), and draws the figures.

>>> check_claims(load_run("tutorial"), ["curve-detectors"])[0].table   # one row per conv2 unit
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..data.samples import Sample, sample_images
from ..hooks import get_module
from ..plots import pyplot
from ..analysis.vision.gabor import (BANDPASS_CYCLES, FAMILIES, LUMINANCE_OPPONENT, NULL_DESCRIPTION, NULL_QUANTILE,
                    OPPONENCY_MIN, OSI_GABOR, OSI_NULL_COPIES, R2_FLOOR, FirstLayerFamilies, GaborFits,
                    fit_gabors, first_layer_families, gabor_families, gabor_kernels, null_filters)
from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult,
                       register_claim, run_kind)
from ..zoo import reinitialized
from ..stats import binomial_tail, bootstrap_ci, headline
from ..analysis.vision.tuning import (EXP_HAZARD_RANGE, MIN_TAIL_SAMPLES, CurveTuning, HighLowTuning, Probe, ReceptiveField,
                     banding, banding_score, conv_layers, curve_tuning, grating_tuning, hazard_ratio, high_low_tuning,
                     GratingTuning, PooledNull, pooled_null, pooling_head, receptive_field, tail_shapes)

__all__ = ["FAMILIES", "CurveTuning", "FirstLayerFamilies", "GaborFits", "HighLowTuning", "Probe", "ReceptiveField",
           "banding", "banding_score", "conv_layers", "curve_tuning", "fit_gabors", "first_layer_families",
           "gabor_families", "gabor_kernels", "grating_tuning", "hazard_ratio", "high_low_tuning", "largest_gap",
           "null_filters", "pooling_head", "receptive_field", "tail_shapes"]

# --------------------------------------------------------------------------- claims


EARLY_VISION = "Olah et al., 'An Overview of Early Vision in InceptionV1', Distill 2020"
EARLY_VISION_URL = "https://distill.pub/2020/circuits/early-vision/"
CURVES = "Cammarata et al., 'Curve Detectors', Distill 2020"
CURVES_URL = "https://distill.pub/2020/circuits/curve-detectors/"


def _applies_conv(min_convs: int) -> Callable[[Any], str | None]:
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


def _probe(run, options: CheckOptions) -> Probe:
    return Probe.from_run(run)


def _layer(run, options: CheckOptions, index: int) -> str:
    """The layer a claim examines: ``options.layer`` if given (checked), else the ``index``-th conv layer."""
    convs = conv_layers(run.model)
    if options.layer:
        get_module(run.model, options.layer)  # did-you-mean error for a typo
        return options.layer
    return convs[index]


def _unit(layer: str, i: int) -> str:
    return f"{layer}:{i}"


def _r(x: Any, nd: int = 3) -> Any:
    return round(float(x), nd)


# -- first layer ---------------------------------------------------------------


def check_first_layer(run, options: CheckOptions) -> ClaimResult:
    claim = GABOR_FIRST_LAYER
    layer = conv_layers(run.model)[0]
    weight = get_module(run.model, layer).weight
    k = weight.shape[-1]
    if k < 3:
        return claim.result(INCONCLUSIVE, f"{layer} has {k}x{k} kernels; a Gabor needs at least 3x3", layer=layer)
    fam = first_layer_families(weight, layer, seed=options.seed)
    return _families_result(claim, fam, run)


def _families_result(claim: Claim, fam: FirstLayerFamilies, run, published: dict | None = None) -> ClaimResult:
    fits, n = fam.fits, len(fam.families)
    fr = fam.fractions()
    structured = fr["gabor"] + fr["colour contrast"]
    n_struct = sum(f != "other" for f in fam.families)
    p0 = max(fam.null_rate, 1.0 / len(fam.null_r2))
    p_value = binomial_tail(n_struct, n, p0)
    osi_t = fam.osi_threshold if fam.osi_threshold is not None else torch.full((n,), OSI_GABOR)
    osi_q = fam.osi_null_q99 if fam.osi_null_q99 is not None else torch.zeros(n)
    cycles = fits.cycles
    table = [{"unit": _unit(fam.layer, i), "family": fam.families[i], "r2": _r(fits.r2[i]),
              "orientation": _r(fits.orientation[i], 1), "freq": _r(fits.freq[i]), "sigma": _r(fits.sigma[i], 2),
              "cycles": _r(cycles[i], 2), "band_pass": bool(cycles[i] >= BANDPASS_CYCLES),
              "osi": _r(fits.own_osi[i]), "osi_threshold": _r(osi_t[i]), "fit_osi": _r(fits.osi[i]),
              "luminance": _r(fits.luminance[i]), "opponency": _r(fits.opponency[i])}
             for i in range(n)]
    k = fits.fitted.shape[-1]
    wn_struct = sum(f != "other" for f in fam.white_noise_families)
    numbers = {"filters": n, "kernel": f"{k}x{k}", "gabor": _r(fr["gabor"]),
               "colour_contrast": _r(fr["colour contrast"]), "other": _r(fr["other"]), "structured": _r(structured),
               "r2_threshold": _r(fam.r2_threshold), "osi_threshold": _r(osi_t.median()) if n else OSI_GABOR,
               "matched_null_rate": _r(fam.null_rate, 4), "null_rate": _r(fam.null_rate, 4), "p_value": p_value,
               "null_filters": len(fam.null_r2), "null_copies_per_filter": fam.null_copies,
               "median_r2": _r(fits.r2.median()), "null_median_r2": _r(fam.null_r2.median()),
               "white_noise_null_rate": _r(fam.white_noise_null_rate, 4),
               "white_noise_r2_threshold": _r(fam.white_noise_r2_threshold),
               "white_noise_structured": _r(wn_struct / max(n, 1))}
    null_q99 = float(torch.quantile(fam.null_r2, NULL_QUANTILE))
    notes = [f"Null: {len(fam.null_r2)} filters, {fam.null_copies} per filter, {fam.null}. It is as smooth as the "
             f"filters, so a filter counts as structured only if the Gabor model fits it better than "
             f"{NULL_QUANTILE:.0%} of "
             f"filters with its power spectrum (R^2 >= {fam.r2_threshold:.2f}; the null's median "
             f"{numbers['null_median_r2']:.0%}, 99th percentile {null_q99:.0%}); {numbers['matched_null_rate']:.1%} "
             f"of the null pass every rule (the binomial test's rate).",
             f"Against white noise (PyTorch's init, context only) the R^2 threshold would be "
             f"{fam.white_noise_r2_threshold:.2f} and {wn_struct} of {n} filters would count as structured; "
             f"{fam.white_noise_null_rate:.1%} of white-noise filters pass.",
             f"Gabor: structured, band-pass (fitted freq x min(2 sigma, {k}) >= {BANDPASS_CYCLES}: half a cycle "
             f"across the envelope; a blob or a ramp fails) and oriented: the filter's own pattern (projected on its "
             f"colour vector, not the fit) has an orientation selectivity of at least max({OSI_GABOR}, the "
             f"{NULL_QUANTILE:.0%} quantile of {OSI_NULL_COPIES} orientation-scrambled copies of it), median "
             f"{numbers['osi_threshold']:.2f} here."]
    if k <= 5:
        notes.append(f"Gabor fits on {k}x{k} kernels are coarse: the model has 6 spatial parameters for {k * k} "
                     f"pixels per channel.")
    found = [_unit(fam.layer, i) for i, f in enumerate(fam.families) if f != "other"]
    data = {"weights": _rgb_list(get_filters(run, fam.layer)), "fitted": _rgb_list(fits.fitted),
            "families": fam.families, "orientations": fits.orientation.tolist(),
            "null_r2": sorted(fam.null_r2.tolist())[::8], "r2": fits.r2.tolist()}
    per_filter = torch.tensor([float(f != "other") for f in fam.families], dtype=torch.float64)
    chance = chance_count(n, p0, claim.thresholds.get("p_value", P_SUPPORTED)) / max(n, 1)
    evidence = dict(layer=fam.layer, numbers=numbers, table=table, found=found, notes=notes, data=data,
                    headline=headline(f"share of {fam.layer} filters that are Gabor-like or colour-contrast",
                                      structured, bootstrap_ci(per_filter), null=chance, n=n, over="filters",
                                      null_what=f"share chance reaches with p = {claim.thresholds.get('p_value')} "
                                                f"(spectrum-matched null rate {p0:.1%})", level=None),
                    thresholds={**claim.thresholds, "r2": _r(fam.r2_threshold), "osi_gabor": OSI_GABOR,
                                "osi_null_q99": _r(osi_q.median()) if n else 0.0,
                                "osi": _r(osi_t.median()) if n else OSI_GABOR})
    if published is not None:
        numbers.update({f"published_{k2.replace(' ', '_')}": v for k2, v in published.items()})
        worst = max(abs(fr[f] - published[f]) for f in FAMILIES)
        numbers["largest_difference"] = _r(worst)
        tol = claim.thresholds["tolerance"]
        text = (f"gabor {fr['gabor']:.0%}, colour contrast {fr['colour contrast']:.0%}, other {fr['other']:.0%} "
                f"(published {published['gabor']:.0%} / {published['colour contrast']:.0%} / "
                f"{published['other']:.0%})")
        if worst <= tol:
            return claim.result(SUPPORTED, f"{text}: every family within {tol:.0%} of the published share", **evidence)
        return claim.result(NOT_SUPPORTED, f"{text}: a family differs by {worst:.0%} (> {tol:.0%}) from the published "
                            f"share", **evidence)
    text = (f"{n_struct} of {n} {fam.layer} filters are Gabor-like ({fr['gabor']:.0%}) or colour-contrast "
            f"({fr['colour contrast']:.0%})")
    dominant = claim.thresholds["dominant"]
    if structured >= dominant and p_value <= claim.thresholds["p_value"]:
        return claim.result(SUPPORTED, f"{text}; filters with the same power spectra and random phases reach that "
                            f"in {fam.null_rate:.1%} of cases (binomial p = {p_value:.2g})", **evidence)
    smooth = "no more than smoothness alone gives (spectrum-matched null)"
    if structured >= dominant:
        why = f"{smooth}: binomial p = {p_value:.2g} against its rate {fam.null_rate:.1%}"
    elif wn_struct / max(n, 1) >= dominant:
        why = f"fewer than {dominant:.0%}: {wn_struct} of {n} pass against white noise, but that is {smooth}"
    else:
        why = f"fewer than {dominant:.0%}"
    return claim.result(NOT_SUPPORTED, f"{text}: {why}", **evidence)


def get_filters(run, layer: str) -> torch.Tensor:
    return get_module(run.model, layer).weight.detach().float().cpu()


def _rgb_list(w: torch.Tensor) -> list:
    return [[[[round(v, 4) for v in row] for row in ch] for ch in f] for f in w.tolist()]


def check_tiling(run, options: CheckOptions) -> ClaimResult:
    claim = ORIENTATION_TILING
    layer = conv_layers(run.model)[0]
    weight = get_module(run.model, layer).weight
    if weight.shape[-1] < 3:
        return claim.result(INCONCLUSIVE, f"{layer} has {weight.shape[-1]}x{weight.shape[-1]} kernels; no Gabors "
                            f"to tile", layer=layer)
    fam = first_layer_families(weight, layer, seed=options.seed)
    return tiling_result(claim, fam)


def largest_gap(orientations: torch.Tensor, period: float = 180.0) -> float:
    """The largest circular gap between sorted angles (mod ``period``).

    >>> largest_gap(torch.tensor([0.0, 60.0, 120.0]))
    60.0
    """
    if len(orientations) == 0:
        return period
    a = torch.sort(torch.remainder(orientations, period)).values
    gaps = torch.diff(torch.cat([a, a[:1] + period]))
    return float(gaps.max())


def tiling_result(claim: Claim, fam: FirstLayerFamilies) -> ClaimResult:
    gabor = [i for i, f in enumerate(fam.families) if f == "gabor"]
    ori = fam.fits.orientation[gabor] if gabor else torch.zeros(0)
    gap = largest_gap(ori)
    n = len(gabor)
    # How often n uniformly random orientations leave a gap this small or smaller (context only).
    g = torch.Generator().manual_seed(0)
    sims = torch.rand(4000, max(n, 1), generator=g) * 180
    sim_gaps = torch.tensor([largest_gap(s) for s in sims[:1000]])
    p_uniform = float((sim_gaps <= gap).float().mean()) if n else 1.0
    table = [{"unit": _unit(fam.layer, i), "orientation": _r(fam.fits.orientation[i], 1), "r2": _r(fam.fits.r2[i]),
              "osi": _r(fam.fits.own_osi[i]), "cycles": _r(fam.fits.cycles[i], 2)} for i in gabor]
    numbers = {"gabor_units": n, "largest_gap_deg": _r(gap, 1), "p_uniform_gap_this_small": _r(p_uniform)}
    notes = [f"Gabor-like as in gabor-first-layer: the Gabor fit beats {NULL_QUANTILE:.0%} of a spectrum-matched "
             f"null (R^2 >= {fam.r2_threshold:.2f}), band-pass, and the filter itself oriented beyond chance."]
    boot = torch.tensor([largest_gap(ori[torch.randint(n, (n,), generator=g)]) for _ in range(500)]) if n else None
    evidence = dict(layer=fam.layer, numbers=numbers, table=table, found=[_unit(fam.layer, i) for i in gabor],
                    notes=notes, data={"orientations": ori.tolist()},
                    headline=headline(f"largest gap between the {n} Gabor-like filters' orientations (degrees)", gap,
                                      (float(torch.quantile(boot, 0.025)), float(torch.quantile(boot, 0.975)))
                                      if n else (float("nan"), float("nan")),
                                      null=float(sim_gaps.median()) if n else None, n=n,
                                      over="Gabor-like filters (500 draws)",
                                      null_what=f"median gap of {n} uniformly random orientations", level=None))
    need, max_gap = claim.thresholds["min_units"], claim.thresholds["max_gap_deg"]
    if n == 0:
        return claim.result(NOT_SUPPORTED, f"{fam.layer} has no Gabor-like filters, so no orientations are tiled",
                            **evidence)
    if n < need:
        return claim.result(INCONCLUSIVE, f"only {n} Gabor-like filter{'s' * (n != 1)} in {fam.layer}; at least "
                            f"{need} are needed to judge whether orientations tile 0-180 degrees", **evidence)
    angles = ", ".join(f"{a:.0f}" for a in sorted(ori.tolist()))
    if gap <= max_gap:
        return claim.result(SUPPORTED, f"the {n} Gabor-like filters' orientations ({angles} degrees) leave no gap "
                            f"wider than {gap:.0f} degrees (<= {max_gap:.0f})", **evidence)
    return claim.result(NOT_SUPPORTED, f"the {n} Gabor-like filters' orientations ({angles} degrees) leave a "
                        f"{gap:.0f}-degree gap (> {max_gap:.0f})", **evidence)


# -- complex cells -------------------------------------------------------------


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
    probe = _probe(run, options)
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
    found = [_unit(layer, i) for i in torch.nonzero(ev.passing).flatten().tolist()]
    statuses = [_member_status(m) for m in members]
    seeds = [m.first.stimulus_seed for m in members]
    evidence["found"] = found
    evidence["numbers"].update({
        "null_models": len(ev.first.nulls), "null_units_pooled": ev.null_units, "null_units_passing": ev.null_passing,
        "null_pass_rate_used": _r(ev.rate_bound, 4), "p_value": ev.p_value, "stimulus_grids": len(ev.rounds),
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


def _null_counts(ev: UnitEvidence) -> list[int]:
    """Units of each null copy that pass on the canonical grid (context for the figures)."""
    return [int(p.sum()) for p in ev.first.null_passing]


def _threshold(null: PooledNull) -> float | None:
    return _r(null.threshold) if math.isfinite(null.threshold) else None


def complex_candidates(t: GratingTuning, thresholds: dict) -> torch.Tensor:
    """Phase-invariant (F1/F0 <= 0.5) units at least as orientation-selective as the floor."""
    return (t.modulation <= thresholds["modulation_max"]) & (t.osi >= thresholds["osi_floor"])


def check_complex(run, options: CheckOptions) -> ClaimResult:
    claim = COMPLEX_GABORS
    thr = claim.thresholds
    layer = _layer(run, options, 1)
    candidates = lambda t: complex_candidates(t, thr)  # noqa: E731
    score = lambda t: t.osi  # noqa: E731
    members = unit_evidence(run, options, layer, lambda p, lay, s: grating_tuning(p, lay, stimulus_seed=s),
                            candidates, score)
    ev = members[0]
    t, nulls, is_complex = ev.first.tuning, ev.first.nulls, ev.passing
    osi_t = max(thr["osi_floor"], ev.first.null.threshold)
    table = [{"unit": _unit(layer, i), "complex": bool(is_complex[i]), "osi": _r(t.osi[i]),
              "modulation_f1_f0": _r(t.modulation[i]), "orientation": _r(t.orientation[i], 1),
              "freq": _r(t.freq[i]), "peak": _r(t.peak[i], 4)} for i in range(len(t.osi))]
    null_counts = _null_counts(ev)
    evidence = dict(layer=layer, table=table,
                    thresholds={**thr, "osi": _r(osi_t)},
                    numbers={"units": len(table), "complex_units": int(is_complex.sum()),
                             "null_max_count": max(null_counts)},
                    data=_scatter_data(t.osi, t.modulation, [n.osi for n in nulls], [n.modulation for n in nulls],
                                       "orientation selectivity", "F1/F0 (phase modulation)", osi_t,
                                       thr["modulation_max"], above_y=False))
    evidence["notes"] = ["A unit counts when it is right of the vertical dashed line (more orientation-selective "
                         "than 99% of the phase-invariant units pooled over re-initialised copies) and below the "
                         "horizontal one (F1/F0 <= 0.5: its response hardly depends on the phase)."]
    return pooled_verdict(claim, evidence, members, layer,
                          "orientation-selective units whose grating response does not depend on phase")


def _scatter_data(x, y, null_x, null_y, xlabel, ylabel, x_thr, y_thr, *, above_y: bool = True,
                  product: float | None = None) -> dict:
    """Two indices of the model's units and of the null units, with the thresholds (``product``: x * y)."""
    return {"scatter": {"x": [_r(v) for v in x.tolist()], "y": [_r(v) for v in y.tolist()],
                        "null_x": [_r(v) for v in torch.cat([v.flatten() for v in null_x]).tolist()],
                        "null_y": [_r(v) for v in torch.cat([v.flatten() for v in null_y]).tolist()],
                        "xlabel": xlabel, "ylabel": ylabel, "x_threshold": x_thr, "y_threshold": y_thr,
                        "above_y": above_y, "product": product}}


# -- curve detectors ----------------------------------------------------------


def curve_candidates(t: CurveTuning, thresholds: dict) -> torch.Tensor:
    """Units that pass the absolute criteria: selective, prefer curves, brightness-invariant."""
    return ((t.osi >= thresholds["osi_floor"]) & (t.curvature >= thresholds["curvature_floor"]) & (t.peak > 0)
            & (t.polarity_ratio >= thresholds["polarity_ratio"]) & (t.polarity_shift <= thresholds["polarity_shift"]))


def check_curves(run, options: CheckOptions) -> ClaimResult:
    claim = CURVE_DETECTORS
    thr = claim.thresholds
    layer = _layer(run, options, 1)
    candidates = lambda t: curve_candidates(t, thr)  # noqa: E731
    members = unit_evidence(run, options, layer, lambda p, lay, s: curve_tuning(p, lay, stimulus_seed=s),
                            candidates, lambda t: t.score)
    ev = members[0]
    evidence = curve_result(claim, ev.first.tuning, ev.first.nulls, layer, ev.passing, _null_counts(ev),
                            {**thr, "score": _threshold(ev.first.null)}, _probe(run, options).receptive_field(layer))
    return pooled_verdict(claim, evidence, members, layer,
                          "curve detectors (selective for curves of one orientation over straight lines, white "
                          "or black)")


def curve_result(claim: Claim, t: CurveTuning, nulls: list[CurveTuning], layer: str, is_curve: torch.Tensor,
                 null_counts: list[int], thresholds: dict, rf: ReceptiveField, units: list[int] | None = None) -> dict:
    """Table and figures' data of a curve-detector check (the evidence; :func:`pooled_verdict` judges it)."""
    units = list(range(len(t.osi))) if units is None else units
    table = [{"unit": _unit(layer, i), "curve_detector": bool(is_curve[i]), "score": _r(t.score[i]),
              "osi": _r(t.osi[i]), "curvature_preference": _r(t.curvature[i]),
              "orientation": _r(t.orientation[i], 1), "radius": _r(t.radius[i], 2),
              "polarity_ratio": _r(t.polarity_ratio[i]), "polarity_shift": _r(t.polarity_shift[i], 1),
              "peak": _r(t.peak[i], 4)} for i in units]
    found = [_unit(layer, i) for i in units if bool(is_curve[i])]
    idx = torch.tensor(units, dtype=torch.long)
    data = _scatter_data(t.osi[idx], t.curvature[idx], [n.osi for n in nulls], [n.curvature for n in nulls],
                         "orientation selectivity (radial tuning)", "curve preference over lines",
                         thresholds.get("osi_floor", 0.0), thresholds.get("curvature_floor", 0.0),
                         product=thresholds.get("score"))
    data["radial"] = {"orientations": t.orientations.tolist(), "units": [_unit(layer, i) for i in units],
                      "curves": [[_r(v, 4) for v in t.radial[i].tolist()] for i in units], "found": found}
    evidence = dict(layer=layer, table=table, found=found, data=data, thresholds=thresholds,
                    numbers={"units": len(table), "curve_detectors": len(found),
                             "null_max_count": max(null_counts) if null_counts else None, "null_models": len(nulls),
                             "receptive_field_px": rf.size[0], "radii_px": t.radii.tolist()})
    return evidence


# -- high-low frequency detectors ---------------------------------------------


def high_low_candidates(t: HighLowTuning, thresholds: dict) -> torch.Tensor:
    return (t.index >= thresholds["index_floor"]) & (t.direction >= thresholds["direction_floor"]) & (t.peak > 0)


def check_high_low(run, options: CheckOptions) -> ClaimResult:
    claim = HIGH_LOW
    thr = claim.thresholds
    layer = _layer(run, options, 1)
    candidates = lambda t: high_low_candidates(t, thr)  # noqa: E731
    members = unit_evidence(run, options, layer,
                            lambda p, lay, s: high_low_tuning(p, lay, seed=s, stimulus_seed=s), candidates,
                            lambda t: t.score)
    ev = members[0]
    evidence = high_low_result(claim, ev.first.tuning, ev.first.nulls, layer, ev.passing, _null_counts(ev),
                               {**thr, "score": _threshold(ev.first.null)})
    return pooled_verdict(claim, evidence, members, layer,
                          "high-low frequency detectors (high frequency on one side of a boundary, low on the other)")


def high_low_result(claim: Claim, t: HighLowTuning, nulls: list[HighLowTuning], layer: str, is_hl: torch.Tensor,
                    null_counts: list[int], thresholds: dict, units: list[int] | None = None) -> dict:
    """Table and figures' data of a high-low check (the evidence; :func:`pooled_verdict` judges it)."""
    units = list(range(len(t.index))) if units is None else units
    table = [{"unit": _unit(layer, i), "high_low": bool(is_hl[i]), "score": _r(t.score[i]),
              "boundary_index": _r(t.index[i]),
              "direction_index": _r(t.direction[i]), "orientation": _r(t.orientation[i], 1),
              "peak": _r(t.peak[i], 4)} for i in units]
    found = [_unit(layer, i) for i in units if bool(is_hl[i])]
    idx = torch.tensor(units, dtype=torch.long)
    data = _scatter_data(t.index[idx], t.direction[idx], [n.index for n in nulls], [n.direction for n in nulls],
                         "boundary over uniform texture", "direction (high side) selectivity",
                         thresholds.get("index_floor", 0.0), thresholds.get("direction_floor", 0.0),
                         product=thresholds.get("score"))
    evidence = dict(layer=layer, table=table, found=found, data=data, thresholds=thresholds,
                    numbers={"units": len(table), "high_low_detectors": len(found),
                             "null_max_count": max(null_counts) if null_counts else None, "null_models": len(nulls)})
    return evidence


# -- exponential tails ----------------------------------------------------------


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


def check_tails(run, options: CheckOptions) -> ClaimResult:
    claim = EXPONENTIAL_TAIL
    probe = _probe(run, options)
    layers = conv_layers(run.model)[1:]
    images, _, sample = claim_data(run, options)
    shapes = tail_shapes(probe, layers, images, seed=options.seed)
    null = tail_shapes(probe.with_model(reinitialized(run.model, options.seed + 1)), layers, images,
                       seed=options.seed)
    lo, hi = claim.thresholds["hazard_range"]

    def exponential(h):
        valid = torch.isfinite(h)
        return valid, valid & (h >= lo) & (h <= hi)

    table, per_layer, flags = [], {}, {}
    for layer in layers:
        h = shapes.hazard[layer]
        valid, exp = exponential(h)
        flags[layer] = exp[valid].double()
        nvalid, nexp = exponential(null.hazard[layer])
        per_layer[layer] = {
            "units": int(valid.sum()), "exponential": _r(exp.sum() / valid.sum().clamp_min(1)),
            "median_hazard": _r(h[valid].median()) if valid.any() else None,
            "null_exponential": _r(nexp.sum() / nvalid.sum().clamp_min(1)),
            "null_median_hazard": _r(null.hazard[layer][nvalid].median()) if nvalid.any() else None}
        table += [{"unit": _unit(layer, i), "hazard_ratio": _r(h[i]) if valid[i] else None,
                   "exponential": bool(exp[i]), "firing": _r(shapes.firing[layer][i])} for i in range(len(h))]
    found = [row["unit"] for row in table if row["exponential"]]
    data = {"samples": {k: [[_r(x, 4) for x in row.tolist()] for row in v] for k, v in shapes.samples.items()},
            "hazard": {k: [(_r(x) if x == x else None) for x in v.tolist()] for k, v in shapes.hazard.items()},
            "null_hazard": {k: [(_r(x) if x == x else None) for x in v.tolist()] for k, v in null.hazard.items()}}
    drawn, note = sample_evidence(sample, options)
    numbers = {**drawn, **{f"{k}_{m}": v for k, d in per_layer.items() for m, v in d.items()}}
    worst = min(per_layer, key=lambda k: per_layer[k]["exponential"])
    evidence = dict(layer=", ".join(layers), table=table, found=found, data=data, numbers=numbers, notes=[note],
                    headline=headline(f"share of {worst}'s units with exponential tails (the lowest layer)",
                                      per_layer[worst]["exponential"], bootstrap_ci(flags[worst], seed=options.seed),
                                      null=per_layer[worst]["null_exponential"], n=len(flags[worst]), over="units",
                                      null_what="share in a re-initialised copy (one copy: a value, not a quantile)",
                                      level=None))
    weak = [layer for layer, d in per_layer.items() if d["units"] == 0]
    if weak:
        return claim.result(INCONCLUSIVE, f"no unit of {', '.join(weak)} fires {MIN_TAIL_SAMPLES} times on "
                            f"{len(images)} images: too few values to measure a tail (give more images)", **evidence)
    need = claim.thresholds["fraction"]
    summary = "; ".join(f"{layer}: {d['exponential']:.0%} of units (median hazard ratio {d['median_hazard']:.2f}, "
                        f"re-initialised {d['null_exponential']:.0%}, {d['null_median_hazard'] or float('nan'):.2f})"
                        for layer, d in per_layer.items())
    ok = all(d["exponential"] >= need and d["exponential"] > d["null_exponential"] for d in per_layer.values())
    if ok:
        return claim.result(SUPPORTED, f"exponential tails (hazard ratio {lo}-{hi}) in every layer after the first, "
                            f"more than with random weights: {summary}", **evidence)
    return claim.result(NOT_SUPPORTED, f"in some layer fewer than {need:.0%} of units, or no more than with random "
                        f"weights, have exponential tails: {summary}", **evidence)


# -- weight banding -------------------------------------------------------------


def check_banding(run, options: CheckOptions) -> ClaimResult:
    claim = WEIGHT_BANDING
    layer = conv_layers(run.model)[-1]
    weight = get_module(run.model, layer).weight.detach().cpu()
    head = pooling_head(run)
    if head is None:
        return claim.result(INCONCLUSIVE, "cannot tell whether the model pools globally or flattens before its "
                            "classifier", layer=layer)
    k = weight.shape[-1]
    if min(weight.shape[-2:]) < 3:
        return claim.result(INCONCLUSIVE, f"{layer} has {weight.shape[-2]}x{k} kernels; bands need at least 3x3",
                            layer=layer)
    rows, cols = banding_score(weight)
    score, direction = banding(weight)
    null = torch.tensor([banding(null_filters(tuple(weight.shape[1:]), weight.shape[0], options.seed + 1 + i))[0]
                         for i in range(max(options.null_models or 8, 8))])
    threshold = max(float(null.max()), claim.thresholds["min_difference"])
    banded = score > threshold
    # CI of the banding score over the layer's output filters (resampled whole kernels).
    g = torch.Generator().manual_seed(options.seed)
    boot = torch.tensor([banding(weight[torch.randint(len(weight), (len(weight),), generator=g)])[0]
                         for _ in range(200)])
    ci = (float(torch.quantile(boot, 0.025)), float(torch.quantile(boot, 0.975)))
    numbers = {"head": head, "kernel": f"{weight.shape[-2]}x{k}", "rows_explain": _r(rows), "columns_explain": _r(cols),
               "banding": _r(score), "direction": direction, "null_max": _r(null.max()), "threshold": _r(threshold),
               "chance_each_way": _r(1 / (k + 1))}
    data = {"mean_abs_kernel": _mean_abs_kernel(weight).tolist(), "score": score, "null": null.tolist()}
    evidence = dict(layer=layer, numbers=numbers, found=[layer] if banded else [], data=data,
                    thresholds={**claim.thresholds, "banding": _r(threshold)},
                    headline=headline(f"banding of {layer}'s kernels (|rows - columns| share of variance)", score,
                                      ci, null=threshold, n=len(weight), over="output filters (200 draws)",
                                      null_what=f"largest banding of {len(null)} random layers of the same shape",
                                      level=1.0))
    state = (f"{layer} ({head} head) {'is' if banded else 'is not'} banded: rows explain {rows:.0%} of the kernels' "
             f"variance and columns {cols:.0%} (banding {score:.2f}, threshold {threshold:.2f})")
    if head == "gap":
        return claim.result(SUPPORTED if banded else NOT_SUPPORTED, state + (
            "" if banded else "; the claim predicts bands with global average pooling"), **evidence)
    if banded:
        return claim.result(NOT_SUPPORTED, state + "; the claim predicts no bands with a flatten head", **evidence)
    # Random weights are not banded either, so "no bands" cannot tell a trained flatten-head net from chance.
    return claim.result(INCONCLUSIVE, state + ", as predicted for a flatten head, but random weights of the same "
                        "shape are not banded either, so this cannot confirm the claim; a global-average-pooling "
                        "variant (interp train tutorial --set head=gap) would test its other "
                        "half", **evidence)


def _mean_abs_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The average magnitude pattern of a layer's kernels, each kernel scaled to unit norm."""
    w = weight.float()
    w = w / w.flatten(2).norm(dim=2)[..., None, None].clamp_min(1e-12)
    return w.abs().mean((0, 1))


# --------------------------------------------------------------------------- figures


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
        ax.legend(fontsize=6, frameon=False)
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


# --------------------------------------------------------------------------- registration


GABOR_FIRST_LAYER = register_claim(Claim(
    id="gabor-first-layer",
    statement="The first conv layer is dominated by Gabor-like and colour-contrast filters.",
    source=f"{EARLY_VISION}, section conv2d0 (Gabor filters 44%, colour contrast 42%, other 14%)",
    url=EARLY_VISION_URL + "#conv2d0",
    applies_to="any conv net on images: its first conv layer",
    kind="vision",
    thresholds={"r2_floor": R2_FLOOR, "r2_null_quantile": NULL_QUANTILE, "osi_gabor": OSI_GABOR,
                "osi_null_quantile": NULL_QUANTILE, "bandpass_cycles": BANDPASS_CYCLES,
                "luminance_opponent_max": LUMINANCE_OPPONENT, "opponency_min": OPPONENCY_MIN, "dominant": 0.5,
                "p_value": 0.01, "null": NULL_DESCRIPTION},
    check=check_first_layer, applies=_applies_conv(1), plot=plot_filters,
))

ORIENTATION_TILING = register_claim(Claim(
    id="orientation-tiling",
    statement="The preferred orientations of the first layer's Gabor-like filters cover 0-180 degrees.",
    source=f"{EARLY_VISION}, section conv2d0 (Gabor filters at every orientation)",
    url=EARLY_VISION_URL + "#conv2d0",
    applies_to="any conv net on images: its first conv layer",
    kind="vision",
    thresholds={"min_units": 4, "max_gap_deg": 60.0},
    check=check_tiling, applies=_applies_conv(1), plot=plot_orientations,
))

COMPLEX_GABORS = register_claim(Claim(
    id="complex-gabors",
    statement="The second conv layer has complex Gabor units: orientation-selective units whose response to a "
              "grating does not depend on its phase.",
    source=f"{EARLY_VISION}, section conv2d1 (complex Gabor)",
    url=EARLY_VISION_URL + "#group_conv2d1_complex_gabor",
    applies_to="any conv net with two or more conv layers: the second conv layer (or --layer)",
    kind="vision",
    thresholds={"osi_floor": 0.3, "modulation_max": 0.5,
                "null": "orientation selectivity above the 99% Gumbel quantile of the best unit with F1/F0 <= modulation_max in each re-initialised copy"},
    check=check_complex, applies=_applies_conv(2), plot=plot_scatter,
))

CURVE_DETECTORS = register_claim(Claim(
    id="curve-detectors",
    statement="The network has curve detectors: units selective for curves of one orientation, preferring them "
              "to straight lines.",
    source=f"{CURVES}, sections 'Synthetic Curves' and 'Radial Tuning Curve'",
    url=CURVES_URL,
    applies_to="any conv net with two or more conv layers: the second conv layer (or --layer)",
    kind="vision",
    thresholds={"osi_floor": 0.4, "curvature_floor": 0.1, "polarity_ratio": 0.5, "polarity_shift": 45.0,
                "null": "score (osi x curvature preference) above the 99% Gumbel quantile of the best "
                        "candidate in each re-initialised copy"},
    check=check_curves, applies=_applies_conv(2), plot=plot_curves,
))

HIGH_LOW = register_claim(Claim(
    id="high-low-frequency",
    statement="The network has high-low frequency detectors: units that fire for high-frequency texture on one "
              "side of a boundary and low frequency on the other.",
    source=f"{EARLY_VISION}, section mixed3a (high-low frequency detectors); Schubert et al., 'High-Low "
           f"Frequency Detectors', Distill 2021",
    url="https://distill.pub/2021/circuits/frequency-edges/",
    applies_to="any conv net with two or more conv layers: the second conv layer (or --layer)",
    kind="vision",
    thresholds={"index_floor": 0.2, "direction_floor": 0.2,
                "null": "score (boundary index x direction index) above the 99% Gumbel quantile of the best "
                        "candidate in each re-initialised copy"},
    check=check_high_low, applies=_applies_conv(2), plot=plot_scatter,
))

EXPONENTIAL_TAIL = register_claim(Claim(
    id="exponential-tail",
    statement="In every layer after the first, the firing part of units' pre-activation distribution has an "
              "exponential tail.",
    source=f"{CURVES}, section 'Dataset Analysis' (footnote: observed by Brice Ménard over all but the first "
           f"layer of several networks)",
    url=CURVES_URL + "#dataset-analysis",
    applies_to="any conv net with two or more conv layers, on its test images",
    kind="vision",
    thresholds={"hazard_range": list(EXP_HAZARD_RANGE), "fraction": 0.5, "null": "more units than in a "
                "re-initialised copy on the same images"},
    check=check_tails, applies=_applies_conv(2), plot=plot_tails,
))

WEIGHT_BANDING = register_claim(Claim(
    id="weight-banding",
    statement="The last conv layer of a net with global average pooling has banded weights; with flatten + fc "
              "it does not.",
    source="Petrov et al., 'Weight Banding', Distill 2021, sections 'Where it occurs' and 'What affects banding'",
    url="https://distill.pub/2020/circuits/weight-banding/",
    applies_to="any conv net whose head is known (global average pooling or flatten): its last conv layer",
    kind="vision",
    thresholds={"min_difference": 0.1,
                "null": "largest banding of random weights of the same shape (8 draws)"},
    check=check_banding, applies=_applies_conv(1), plot=plot_banding,
))

