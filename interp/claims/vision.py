"""Vision claims for any conv net: Gabor filters, orientation tiling, complex cells, curve and
high-low frequency detectors, exponential activation tails and weight banding.

The measurements live in :mod:`interp.claims.gabor` (filter fits) and
:mod:`interp.claims.tuning` (responses to stimuli, nulls, tails, banding); this module
turns them into verdicts, with thresholds taken from a null: the same architecture
re-initialised (:func:`~interp.claims.registry.reinitialized`), and draws the figures.

>>> check_claims(load_run("tutorial"), ["curve-detectors"])[0].table   # one row per conv2 unit
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..hooks import get_module
from ..plots import pyplot
from .gabor import (FAMILIES, LUMINANCE_OPPONENT, OPPONENCY_MIN, OSI_GABOR, R2_FLOOR, FirstLayerFamilies,
                    GaborFits, fit_gabors, first_layer_families, gabor_families, gabor_kernels, null_filters)
from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, binomial_tail,
                       register_claim, reinitialized, run_kind)
from .tuning import (EXP_HAZARD_RANGE, MIN_TAIL_SAMPLES, CurveTuning, HighLowTuning, Probe, ReceptiveField,
                     banding, banding_score, conv_layers, curve_tuning, grating_tuning, hazard_ratio, high_low_tuning,
                     null_measurements, null_threshold, pooling_head, receptive_field, tail_shapes)

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
    table = [{"unit": _unit(fam.layer, i), "family": fam.families[i], "r2": _r(fits.r2[i]),
              "orientation": _r(fits.orientation[i], 1), "freq": _r(fits.freq[i]), "sigma": _r(fits.sigma[i], 2),
              "osi": _r(fits.osi[i]), "luminance": _r(fits.luminance[i]), "opponency": _r(fits.opponency[i])}
             for i in range(n)]
    k = fits.fitted.shape[-1]
    numbers = {"filters": n, "kernel": f"{k}x{k}", "gabor": _r(fr["gabor"]),
               "colour_contrast": _r(fr["colour contrast"]), "other": _r(fr["other"]),
               "r2_threshold": _r(fam.r2_threshold), "null_rate": _r(fam.null_rate, 4), "p_value": p_value,
               "median_r2": _r(fits.r2.median()), "null_median_r2": _r(fam.null_r2.median())}
    null_q99 = float(torch.quantile(fam.null_r2, 0.99))
    notes = [f"Gabor fits on {k}x{k} kernels are coarse: the model has 6 spatial parameters for {k * k} pixels "
             f"per channel, so chance already explains a median {numbers['null_median_r2']:.0%} of a random "
             f"filter (99th percentile {null_q99:.0%}); a filter counts as structured from R^2 "
             f"{fam.r2_threshold:.2f} on."] if k <= 5 else []
    found = [_unit(fam.layer, i) for i, f in enumerate(fam.families) if f != "other"]
    data = {"weights": _rgb_list(get_filters(run, fam.layer)), "fitted": _rgb_list(fits.fitted),
            "families": fam.families, "orientations": fits.orientation.tolist(),
            "null_r2": sorted(fam.null_r2.tolist())[::8], "r2": fits.r2.tolist()}
    evidence = dict(layer=fam.layer, numbers=numbers, table=table, found=found, notes=notes, data=data,
                    thresholds={**claim.thresholds, "r2": _r(fam.r2_threshold)})
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
    if structured >= claim.thresholds["dominant"] and p_value <= claim.thresholds["p_value"]:
        return claim.result(SUPPORTED, f"{text}; random filters of the same shape reach that in "
                            f"{fam.null_rate:.1%} of cases (binomial p = {p_value:.2g})", **evidence)
    why = (f"fewer than {claim.thresholds['dominant']:.0%}" if structured < claim.thresholds["dominant"]
           else f"not more than chance (binomial p = {p_value:.2g})")
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
              "osi": _r(fam.fits.osi[i])} for i in gabor]
    numbers = {"gabor_units": n, "largest_gap_deg": _r(gap, 1), "p_uniform_gap_this_small": _r(p_uniform)}
    evidence = dict(layer=fam.layer, numbers=numbers, table=table, found=[_unit(fam.layer, i) for i in gabor],
                    data={"orientations": ori.tolist()})
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


def check_complex(run, options: CheckOptions) -> ClaimResult:
    claim = COMPLEX_GABORS
    probe = _probe(run, options)
    layer = _layer(run, options, 1)
    t = grating_tuning(probe, layer)
    nulls = null_measurements(probe, lambda p: grating_tuning(p, layer), options.null_models, options.seed)
    thr = claim.thresholds
    osi_t = null_threshold([n.osi for n in nulls], thr["osi_floor"],
                           [n.modulation <= thr["modulation_max"] for n in nulls])
    is_complex = (t.osi > osi_t) & (t.modulation <= thr["modulation_max"])
    null_counts = [int(((n.osi > osi_t) & (n.modulation <= thr["modulation_max"])).sum()) for n in nulls]
    table = [{"unit": _unit(layer, i), "complex": bool(is_complex[i]), "osi": _r(t.osi[i]),
              "modulation_f1_f0": _r(t.modulation[i]), "orientation": _r(t.orientation[i], 1),
              "freq": _r(t.freq[i]), "peak": _r(t.peak[i], 4)} for i in range(len(t.osi))]
    found = [_unit(layer, i) for i in torch.nonzero(is_complex).flatten().tolist()]
    evidence = dict(layer=layer, table=table, found=found,
                    thresholds={**thr, "osi": _r(osi_t)},
                    numbers={"units": len(table), "complex_units": len(found), "null_max_count": max(null_counts),
                             "null_models": len(nulls)},
                    data=_scatter_data(t.osi, t.modulation, [n.osi for n in nulls], [n.modulation for n in nulls],
                                       "orientation selectivity", "F1/F0 (phase modulation)", osi_t,
                                       thr["modulation_max"], above_y=False))
    evidence["notes"] = ["A unit counts when it is right of the vertical dashed line (more orientation-selective "
                         "than the 99% Gumbel quantile of each re-initialised copy's best phase-invariant unit) and "
                         "below the horizontal one (F1/F0 <= 0.5: its response hardly depends on the phase)."]
    return _count_verdict(claim, evidence, found, null_counts, layer,
                          "orientation-selective units whose grating response does not depend on phase")


def _count_verdict(claim: Claim, evidence: dict, found: list[str], null_counts: list[int], layer: str,
                   what: str) -> ClaimResult:
    n, null_max = len(found), max(null_counts) if null_counts else 0
    shown = ", ".join(found[:8]) + (" ..." if n > 8 else "")
    if n >= 1 and n > null_max:
        return claim.result(SUPPORTED, f"{n} {what} in {layer} ({shown}); re-initialised copies have at most "
                            f"{null_max}", **evidence)
    if n == 0:
        return claim.result(NOT_SUPPORTED, f"no {what} in {layer}", **evidence)
    return claim.result(NOT_SUPPORTED, f"{n} {what} in {layer} ({shown}), but a re-initialised copy has "
                        f"{null_max}: not more than chance", **evidence)


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


def curve_detectors(t: CurveTuning, thresholds: dict, score_threshold: float) -> torch.Tensor:
    """Curve detectors: candidates whose score (osi x curvature preference) beats the null's best candidate."""
    return curve_candidates(t, thresholds) & (t.score > score_threshold)


def check_curves(run, options: CheckOptions) -> ClaimResult:
    claim = CURVE_DETECTORS
    probe = _probe(run, options)
    layer = _layer(run, options, 1)
    t = curve_tuning(probe, layer)
    nulls = null_measurements(probe, lambda p: curve_tuning(p, layer), options.null_models, options.seed)
    thr = claim.thresholds
    score_t = null_threshold([n.score for n in nulls], 0.0, [curve_candidates(n, thr) for n in nulls])
    is_curve = curve_detectors(t, thr, score_t)
    null_counts = [int(curve_detectors(n, thr, score_t).sum()) for n in nulls]
    return curve_result(claim, t, nulls, layer, is_curve, null_counts, {**thr, "score": _r(score_t)},
                        probe.receptive_field(layer))


def curve_result(claim: Claim, t: CurveTuning, nulls: list[CurveTuning], layer: str, is_curve: torch.Tensor,
                 null_counts: list[int], thresholds: dict, rf: ReceptiveField, units: list[int] | None = None,
                 verdict: bool = True) -> ClaimResult:
    """Table, figures' data and (with ``verdict``) the count verdict of a curve-detector check."""
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
    if not verdict:
        return evidence
    return _count_verdict(claim, evidence, found, null_counts, layer,
                          "units selective for curves of one orientation (over straight lines, white or black)")


# -- high-low frequency detectors ---------------------------------------------


def high_low_candidates(t: HighLowTuning, thresholds: dict) -> torch.Tensor:
    return (t.index >= thresholds["index_floor"]) & (t.direction >= thresholds["direction_floor"]) & (t.peak > 0)


def high_low_detectors(t: HighLowTuning, thresholds: dict, score_threshold: float) -> torch.Tensor:
    """High-low detectors: candidates whose score (boundary index x direction index) beats the null's best."""
    return high_low_candidates(t, thresholds) & (t.score > score_threshold)


def check_high_low(run, options: CheckOptions) -> ClaimResult:
    claim = HIGH_LOW
    probe = _probe(run, options)
    layer = _layer(run, options, 1)
    t = high_low_tuning(probe, layer, seed=options.seed)
    nulls = null_measurements(probe, lambda p: high_low_tuning(p, layer, seed=options.seed), options.null_models,
                              options.seed)
    thr = claim.thresholds
    score_t = null_threshold([n.score for n in nulls], 0.0, [high_low_candidates(n, thr) for n in nulls])
    is_hl = high_low_detectors(t, thr, score_t)
    null_counts = [int(high_low_detectors(n, thr, score_t).sum()) for n in nulls]
    return high_low_result(claim, t, nulls, layer, is_hl, null_counts, {**thr, "score": _r(score_t)})


def high_low_result(claim: Claim, t: HighLowTuning, nulls: list[HighLowTuning], layer: str, is_hl: torch.Tensor,
                    null_counts: list[int], thresholds: dict, units: list[int] | None = None,
                    verdict: bool = True):
    """Table, figures' data and (with ``verdict``) the count verdict of a high-low check."""
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
    if not verdict:
        return evidence
    return _count_verdict(claim, evidence, found, null_counts, layer,
                          "units that fire for high frequency on one side of a boundary and low on the other")


# -- exponential tails ----------------------------------------------------------


def claim_data(run, options: CheckOptions) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images (and labels) a data-based check uses: ``options.images`` / ``options.labels``, or the
    first ``max_images`` of the run's test split."""
    n = options.max_images
    if options.images is not None:
        labels = options.labels[:n] if options.labels is not None else None
        return options.images[:n], labels
    data = run.load_data(progress=options.progress, split="test")
    return data.test_x[:n], data.test_y[:n]


def check_tails(run, options: CheckOptions) -> ClaimResult:
    claim = EXPONENTIAL_TAIL
    probe = _probe(run, options)
    layers = conv_layers(run.model)[1:]
    images, _ = claim_data(run, options)
    shapes = tail_shapes(probe, layers, images, seed=options.seed)
    null = tail_shapes(probe.with_model(reinitialized(run.model, options.seed + 1)), layers, images,
                       seed=options.seed)
    lo, hi = claim.thresholds["hazard_range"]

    def exponential(h):
        valid = torch.isfinite(h)
        return valid, valid & (h >= lo) & (h <= hi)

    table, per_layer = [], {}
    for layer in layers:
        h = shapes.hazard[layer]
        valid, exp = exponential(h)
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
    numbers = {"images": len(images), **{f"{k}_{m}": v for k, d in per_layer.items() for m, v in d.items()}}
    evidence = dict(layer=", ".join(layers), table=table, found=found, data=data, numbers=numbers)
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
                         for i in range(max(options.null_models, 8))])
    threshold = max(float(null.max()), claim.thresholds["min_difference"])
    banded = score > threshold
    numbers = {"head": head, "kernel": f"{weight.shape[-2]}x{k}", "rows_explain": _r(rows), "columns_explain": _r(cols),
               "banding": _r(score), "direction": direction, "null_max": _r(null.max()), "threshold": _r(threshold),
               "chance_each_way": _r(1 / (k + 1))}
    data = {"mean_abs_kernel": _mean_abs_kernel(weight).tolist(), "score": score, "null": null.tolist()}
    evidence = dict(layer=layer, numbers=numbers, found=[layer] if banded else [], data=data,
                    thresholds={**claim.thresholds, "banding": _r(threshold)})
    state = (f"{layer} ({head} head) {'is' if banded else 'is not'} banded: rows explain {rows:.0%} of the kernels' "
             f"variance and columns {cols:.0%} (banding {score:.2f}, threshold {threshold:.2f})")
    if head == "gap":
        return claim.result(SUPPORTED if banded else NOT_SUPPORTED, state + (
            "" if banded else "; the claim predicts bands with global average pooling"), **evidence)
    return claim.result(NOT_SUPPORTED if banded else SUPPORTED, state + (
        "; the claim predicts no bands with a flatten head" if banded else ", as predicted for a flatten head"),
        **evidence)


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
    thresholds={"r2_floor": R2_FLOOR, "r2_null_quantile": 0.99, "osi_gabor": OSI_GABOR,
                "luminance_opponent_max": LUMINANCE_OPPONENT, "opponency_min": OPPONENCY_MIN, "dominant": 0.5,
                "p_value": 0.01},
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

