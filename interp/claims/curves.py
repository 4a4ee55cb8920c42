"""Unit-level claims for any conv net with two or more conv layers: complex Gabor cells
(``complex-gabors``), curve detectors (``curve-detectors``) and high-low frequency detectors
(``high-low-frequency``) in its second conv layer (or ``--layer``).

The tuning to gratings, curves and high-low boundaries is measured by
:mod:`interp.analysis.vision.tuning`; each claim counts the units that beat the null pooled
over re-initialised copies (:func:`.evidence.unit_evidence`) and judges the count
(:func:`.evidence.pooled_verdict`).

>>> check_claims(load_run("tutorial"), ["curve-detectors"])[0].table   # one row per conv2 unit
"""

from __future__ import annotations

import torch

from ..analysis.vision.receptive_field import ReceptiveField
from ..analysis.vision.tuning import (CurveTuning, GratingTuning, HighLowTuning, curve_tuning, grating_tuning,
                                      high_low_tuning)
from .evidence import (CURVES, CURVES_URL, EARLY_VISION, EARLY_VISION_URL, applies_conv, claim_layer, claim_probe,
                       null_pass_counts, null_threshold, pooled_verdict, rounded, scatter_data, unit_evidence,
                       unit_name)
from .registry import CheckOptions, Claim, ClaimResult, register_claim


# -- complex cells -------------------------------------------------------------


def complex_candidates(t: GratingTuning, thresholds: dict) -> torch.Tensor:
    """Phase-invariant (F1/F0 <= 0.5) units at least as orientation-selective as the floor."""
    return (t.modulation <= thresholds["modulation_max"]) & (t.osi >= thresholds["osi_floor"])


def check_complex(run, options: CheckOptions) -> ClaimResult:
    claim = COMPLEX_GABORS
    thr = claim.thresholds
    layer = claim_layer(run, options, 1)
    candidates = lambda t: complex_candidates(t, thr)  # noqa: E731
    score = lambda t: t.osi  # noqa: E731
    members = unit_evidence(run, options, layer, lambda p, lay, s: grating_tuning(p, lay, stimulus_seed=s),
                            candidates, score)
    ev = members[0]
    t, nulls, is_complex = ev.first.tuning, ev.first.nulls, ev.passing
    osi_t = max(thr["osi_floor"], ev.first.null.threshold)
    table = [{"unit": unit_name(layer, i), "complex": bool(is_complex[i]), "osi": rounded(t.osi[i]),
              "modulation_f1_f0": rounded(t.modulation[i]), "orientation": rounded(t.orientation[i], 1),
              "freq": rounded(t.freq[i]), "peak": rounded(t.peak[i], 4)} for i in range(len(t.osi))]
    null_counts = null_pass_counts(ev)
    evidence = dict(layer=layer, table=table,
                    thresholds={**thr, "osi": rounded(osi_t)},
                    numbers={"units": len(table), "complex_units": int(is_complex.sum()),
                             "null_max_count": max(null_counts)},
                    data=scatter_data(t.osi, t.modulation, [n.osi for n in nulls], [n.modulation for n in nulls],
                                       "orientation selectivity", "F1/F0 (phase modulation)", osi_t,
                                       thr["modulation_max"], above_y=False))
    evidence["notes"] = ["A unit counts when it is right of the vertical dashed line (more orientation-selective "
                         "than 99% of the phase-invariant units pooled over re-initialised copies) and below the "
                         "horizontal one (F1/F0 <= 0.5: its response hardly depends on the phase)."]
    return pooled_verdict(claim, evidence, members, layer,
                          "orientation-selective units whose grating response does not depend on phase")


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
    check=check_complex, applies=applies_conv(2),
))


# -- curve detectors ----------------------------------------------------------


def curve_candidates(t: CurveTuning, thresholds: dict) -> torch.Tensor:
    """Units that pass the absolute criteria: selective, prefer curves, brightness-invariant."""
    return ((t.osi >= thresholds["osi_floor"]) & (t.curvature >= thresholds["curvature_floor"]) & (t.peak > 0)
            & (t.polarity_ratio >= thresholds["polarity_ratio"]) & (t.polarity_shift <= thresholds["polarity_shift"]))


def check_curves(run, options: CheckOptions) -> ClaimResult:
    claim = CURVE_DETECTORS
    thr = claim.thresholds
    layer = claim_layer(run, options, 1)
    candidates = lambda t: curve_candidates(t, thr)  # noqa: E731
    members = unit_evidence(run, options, layer, lambda p, lay, s: curve_tuning(p, lay, stimulus_seed=s),
                            candidates, lambda t: t.score)
    ev = members[0]
    evidence = curve_result(claim, ev.first.tuning, ev.first.nulls, layer, ev.passing, null_pass_counts(ev),
                            {**thr, "score": null_threshold(ev.first.null)}, claim_probe(run, options).receptive_field(layer))
    return pooled_verdict(claim, evidence, members, layer,
                          "curve detectors (selective for curves of one orientation over straight lines, white "
                          "or black)")


def curve_result(claim: Claim, t: CurveTuning, nulls: list[CurveTuning], layer: str, is_curve: torch.Tensor,
                 null_counts: list[int], thresholds: dict, rf: ReceptiveField, units: list[int] | None = None) -> dict:
    """Table and figures' data of a curve-detector check (the evidence; :func:`pooled_verdict` judges it)."""
    units = list(range(len(t.osi))) if units is None else units
    table = [{"unit": unit_name(layer, i), "curve_detector": bool(is_curve[i]), "score": rounded(t.score[i]),
              "osi": rounded(t.osi[i]), "curvature_preference": rounded(t.curvature[i]),
              "orientation": rounded(t.orientation[i], 1), "radius": rounded(t.radius[i], 2),
              "polarity_ratio": rounded(t.polarity_ratio[i]), "polarity_shift": rounded(t.polarity_shift[i], 1),
              "peak": rounded(t.peak[i], 4)} for i in units]
    found = [unit_name(layer, i) for i in units if bool(is_curve[i])]
    idx = torch.tensor(units, dtype=torch.long)
    data = scatter_data(t.osi[idx], t.curvature[idx], [n.osi for n in nulls], [n.curvature for n in nulls],
                         "orientation selectivity (radial tuning)", "curve preference over lines",
                         thresholds.get("osi_floor", 0.0), thresholds.get("curvature_floor", 0.0),
                         product=thresholds.get("score"))
    data["radial"] = {"orientations": t.orientations.tolist(), "units": [unit_name(layer, i) for i in units],
                      "curves": [[rounded(v, 4) for v in t.radial[i].tolist()] for i in units], "found": found}
    evidence = dict(layer=layer, table=table, found=found, data=data, thresholds=thresholds,
                    numbers={"units": len(table), "curve_detectors": len(found),
                             "null_max_count": max(null_counts) if null_counts else None, "null_models": len(nulls),
                             "receptive_field_px": rf.size[0], "radii_px": t.radii.tolist()})
    return evidence


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
    check=check_curves, applies=applies_conv(2),
))


# -- high-low frequency detectors ---------------------------------------------


def high_low_candidates(t: HighLowTuning, thresholds: dict) -> torch.Tensor:
    return (t.index >= thresholds["index_floor"]) & (t.direction >= thresholds["direction_floor"]) & (t.peak > 0)


def check_high_low(run, options: CheckOptions) -> ClaimResult:
    claim = HIGH_LOW
    thr = claim.thresholds
    layer = claim_layer(run, options, 1)
    candidates = lambda t: high_low_candidates(t, thr)  # noqa: E731
    members = unit_evidence(run, options, layer,
                            lambda p, lay, s: high_low_tuning(p, lay, seed=s, stimulus_seed=s), candidates,
                            lambda t: t.score)
    ev = members[0]
    evidence = high_low_result(claim, ev.first.tuning, ev.first.nulls, layer, ev.passing, null_pass_counts(ev),
                               {**thr, "score": null_threshold(ev.first.null)})
    return pooled_verdict(claim, evidence, members, layer,
                          "high-low frequency detectors (high frequency on one side of a boundary, low on the other)")


def high_low_result(claim: Claim, t: HighLowTuning, nulls: list[HighLowTuning], layer: str, is_hl: torch.Tensor,
                    null_counts: list[int], thresholds: dict, units: list[int] | None = None) -> dict:
    """Table and figures' data of a high-low check (the evidence; :func:`pooled_verdict` judges it)."""
    units = list(range(len(t.index))) if units is None else units
    table = [{"unit": unit_name(layer, i), "high_low": bool(is_hl[i]), "score": rounded(t.score[i]),
              "boundary_index": rounded(t.index[i]),
              "direction_index": rounded(t.direction[i]), "orientation": rounded(t.orientation[i], 1),
              "peak": rounded(t.peak[i], 4)} for i in units]
    found = [unit_name(layer, i) for i in units if bool(is_hl[i])]
    idx = torch.tensor(units, dtype=torch.long)
    data = scatter_data(t.index[idx], t.direction[idx], [n.index for n in nulls], [n.direction for n in nulls],
                         "boundary over uniform texture", "direction (high side) selectivity",
                         thresholds.get("index_floor", 0.0), thresholds.get("direction_floor", 0.0),
                         product=thresholds.get("score"))
    evidence = dict(layer=layer, table=table, found=found, data=data, thresholds=thresholds,
                    numbers={"units": len(table), "high_low_detectors": len(found),
                             "null_max_count": max(null_counts) if null_counts else None, "null_models": len(nulls)})
    return evidence


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
    check=check_high_low, applies=applies_conv(2),
))
