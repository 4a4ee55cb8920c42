"""Claims about InceptionV1 (OpenAI Microscope's model) with the published unit lists.

Checked on Lucent's InceptionV1 (:mod:`interp.zoo.inception`, ``load_run("inceptionv1",
weights=PATH)``); without its weights the CLI says how to get them, and on any other
model these claims are inconclusive with the reason. Nothing is ever filled in from the
articles: every verdict comes from the model's own responses.

- ``inceptionv1-conv2d0-families``: conv2d0 is 44% Gabor filters, 42% colour contrast,
  14% other (Early Vision, conv2d0);
- ``inceptionv1-mixed3b-curves``: mixed3b units 379, 406, 385, 343, 342, 388, 340, 330,
  349, 324 are curve detectors whose radial tuning curves peak at the published
  orientations (Curve Detectors, radial tuning curve);
- ``inceptionv1-mixed3a-high-low``: mixed3a units 110, 180, 153, 106, 112, 186, 132, 136,
  117, 113, 108, 70, 86, 88, 160 are high-low frequency detectors (Early Vision, mixed3a).

**Angles.** We measure a curve's orientation as the direction from its centre of
curvature to its midpoint, in degrees counter-clockwise from +x with y up
(:mod:`interp.data.stimuli`). The published angles are the peaks of the article's
radial tuning curves (``pages/radial/data.json`` of distillpub/post--circuits-curve-detectors),
whose zero and direction come from the article's curve renderer and are not stated in the
text. We therefore do not assume a mapping: we fit the rotation (and reflection) that best
maps ours onto theirs, report it as ``published = sign * ours + offset``, and test the
unit-by-unit match against shuffled assignments of the published angles (a fitted
rotation alone cannot make a wrong assignment match).
"""

from __future__ import annotations

import torch

from ..analysis.vision.gabor import first_layer_families
from ..analysis.vision.tuning import Probe, curve_tuning, high_low_tuning
from ..hooks import get_module
from ..stats import angle_match, bootstrap_ci, circular_difference, headline
from ..zoo import reinitialized
from .curves import curve_candidates, curve_result, high_low_candidates, high_low_result
from .evidence import CURVES, CURVES_URL, EARLY_VISION, EARLY_VISION_URL
from .first_layer import families_result
from .registry import NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim, run_kind

CONV2D0_PUBLISHED = {"gabor": 0.44, "colour contrast": 0.42, "other": 0.14}
MIXED3B_CURVES = {379: 243.0, 406: 268.0, 385: 290.0, 343: 358.0, 342: 22.0, 388: 66.0, 324: 92.0, 340: 110.0,
                  330: 145.0, 349: 181.0}
"""Published curve units of mixed3b and the peak of each one's radial tuning curve (degrees, the article's convention)."""
MIXED3A_HIGH_LOW = (110, 180, 153, 106, 112, 186, 132, 136, 117, 113, 108, 70, 86, 88, 160)

HOW_TO_GET_WEIGHTS = ("check them on InceptionV1: interp claims check --run inceptionv1 --weights PATH "
                      "(Lucent's inception5h.pth) or --download")


def _applies_inception(run) -> str | None:
    if run_kind(run) != "inceptionv1":
        return f"these are InceptionV1's published units; {HOW_TO_GET_WEIGHTS}"
    return None


def _weights_note(run) -> list[str]:
    source = (getattr(run.config, "model_config", None) or {}).get("weights", "")
    return ["InceptionV1 was built with random weights (weights='random'): the published units cannot be "
            "expected to behave as published"] if source == "random" else []


def _null_probes(probe: Probe, options: CheckOptions) -> list[Probe]:
    # Each re-initialised InceptionV1 costs a full set of 224 px forward passes; one copy gives
    # hundreds of null units, enough for a per-unit quantile (--null-models asks for more).
    n = options.null_models or 1
    return [probe.with_model(reinitialized(probe.model, options.seed + 1 + i)) for i in range(n)]


def _published_headline(what: str, passing: torch.Tensor, fraction: float) -> dict:
    """The share of the published units that pass here, with a bootstrap CI over those units; each unit
    is tested against the 99% quantile of null units, so chance alone gives a share near 1%."""
    share = passing.double()
    return headline(f"share of the published units that are {what} here", float(share.mean()),
                    bootstrap_ci(share), null=0.01, n=len(share), over="published units",
                    null_what=f"share of re-initialised units passing the same per-unit threshold (the claim asks "
                              f"for {fraction:.0%})", level=None)


def unit_threshold(values: list[torch.Tensor], masks: list[torch.Tensor], floor: float, q: float = 0.99) -> float:
    """The ``q`` quantile of the scores of re-initialised units that pass the other criteria, at least ``floor``.

    For named units the question is per unit ("is this unit's score above what 99% of
    random units reach?"), so the null is a quantile over units, not over copies' maxima.
    """
    pooled = torch.cat([v.flatten()[m.flatten()] for v, m in zip(values, masks)])
    pooled = pooled[torch.isfinite(pooled)]
    return max(floor, float(torch.quantile(pooled, q)) if len(pooled) else floor)


# -------------------------------------------------------------------------- conv2d0 families


def check_conv2d0(run, options: CheckOptions) -> ClaimResult:
    claim = CONV2D0_FAMILIES
    layer = run.model.layer_weights["conv2d0"] if hasattr(run.model, "layer_weights") else "conv2d0_pre_relu_conv"
    weight = get_module(run.model, layer).weight
    fam = first_layer_families(weight, layer, seed=options.seed)
    result = families_result(claim, fam, run, published=CONV2D0_PUBLISHED)
    result.notes += _weights_note(run)
    return result


CONV2D0_FAMILIES = register_claim(Claim(
    id="inceptionv1-conv2d0-families",
    statement="InceptionV1's conv2d0 is 44% Gabor filters, 42% colour-contrast filters and 14% other units.",
    source=f"{EARLY_VISION}, section conv2d0",
    url=EARLY_VISION_URL + "#conv2d0",
    applies_to="Lucent's InceptionV1: conv2d0",
    kind="inceptionv1",
    thresholds={"tolerance": 0.15, "r2_floor": 0.5, "r2_null_quantile": 0.99, "published": CONV2D0_PUBLISHED},
    check=check_conv2d0, applies=_applies_inception,
))

# -------------------------------------------------------------------------- mixed3b curves


def check_mixed3b(run, options: CheckOptions) -> ClaimResult:
    claim = MIXED3B_CURVE_UNITS
    thr = claim.thresholds
    layer = "mixed3b"
    probe = Probe.from_run(run)
    probe.batch_size = 32
    t = curve_tuning(probe, layer)
    nulls = [curve_tuning(p, layer) for p in _null_probes(probe, options)]
    score_t = unit_threshold([n.score for n in nulls], [curve_candidates(n, thr) for n in nulls], 0.0)
    units = list(MIXED3B_CURVES)
    is_curve = curve_candidates(t, thr) & (t.score > score_t)
    evidence = curve_result(claim, t, nulls, layer, is_curve, [], {**thr, "score": round(score_t, 3)},
                            probe.receptive_field(layer), units=units)
    ours = t.orientation[units]
    published = torch.tensor([MIXED3B_CURVES[u] for u in units])
    match = angle_match(ours, published, seed=options.seed)
    mapped = torch.remainder(match["sign"] * ours + match["offset"], 360.0)
    for row, u, m in zip(evidence["table"], units, mapped.tolist()):
        row["published_orientation"] = MIXED3B_CURVES[u]
        row["ours_mapped"] = round(m, 1)
        row["error"] = round(float(circular_difference(torch.tensor(m), torch.tensor(MIXED3B_CURVES[u]))), 1)
    n_curve = int(is_curve[units].sum())
    evidence["headline"] = _published_headline("curve detectors", is_curve[units], thr["fraction"])
    evidence["numbers"].update({"published_units": len(units), "curve_detectors_among_them": n_curve,
                                "angle_sign": match["sign"], "angle_offset": match["offset"],
                                "median_angle_error": round(match["median_error"], 1),
                                "angle_p_value": round(match["p_value"], 4)})
    evidence["notes"] = [f"angles: published = {match['sign']:+d} x ours + {match['offset']:.0f} degrees (fitted; "
                         f"ours: direction from the centre of curvature to the curve's midpoint, counter-clockwise "
                         f"from +x, y up)"] + _weights_note(run)
    need = thr["fraction"]
    text = (f"{n_curve} of {len(units)} published mixed3b curve units are curve detectors here; their preferred "
            f"orientations match the published ones within a median {match['median_error']:.0f} degrees after the "
            f"best rotation (permutation p = {match['p_value']:.3f})")
    ok_units = n_curve >= need * len(units)
    ok_angles = match["median_error"] <= thr["median_angle_error"] and match["p_value"] <= thr["angle_p_value"]
    if ok_units and ok_angles:
        return claim.result(SUPPORTED, text, **evidence)
    return claim.result(NOT_SUPPORTED, text + ("" if ok_units else f"; fewer than {need:.0%} are curve detectors")
                        + ("" if ok_angles else "; the orientations do not match"), **evidence)


MIXED3B_CURVE_UNITS = register_claim(Claim(
    id="inceptionv1-mixed3b-curves",
    statement="InceptionV1's mixed3b units 379, 406, 385, 343, 342, 388, 340, 330, 349 and 324 are curve detectors "
              "whose radial tuning peaks at 243, 268, 290, 358, 22, 66, 110, 145, 181 and 92 degrees.",
    source=f"{CURVES}, sections 'Radial Tuning Curve' and 'The Curve Families of InceptionV1' (3b)",
    url=CURVES_URL,
    applies_to="Lucent's InceptionV1: mixed3b, the published units",
    kind="inceptionv1",
    thresholds={"osi_floor": 0.4, "curvature_floor": 0.1, "polarity_ratio": 0.5, "polarity_shift": 45.0,
                "fraction": 0.8, "median_angle_error": 30.0, "angle_p_value": 0.05,
                "null": "score above the 99th percentile of re-initialised mixed3b units that pass the other "
                        "criteria (one copy)"},
    check=check_mixed3b, applies=_applies_inception,
))



# -------------------------------------------------------------------------- mixed3a high-low


def check_mixed3a(run, options: CheckOptions) -> ClaimResult:
    claim = MIXED3A_HIGH_LOW_UNITS
    thr = claim.thresholds
    layer = "mixed3a"
    probe = Probe.from_run(run)
    probe.batch_size = 32
    t = high_low_tuning(probe, layer, seed=options.seed)
    nulls = [high_low_tuning(p, layer, seed=options.seed) for p in _null_probes(probe, options)]
    score_t = unit_threshold([n.score for n in nulls], [high_low_candidates(n, thr) for n in nulls], 0.0)
    units = list(MIXED3A_HIGH_LOW)
    is_hl = high_low_candidates(t, thr) & (t.score > score_t)
    evidence = high_low_result(claim, t, nulls, layer, is_hl, [], {**thr, "score": round(score_t, 3)}, units=units)
    evidence["notes"] = _weights_note(run)
    n = int(is_hl[units].sum())
    evidence["headline"] = _published_headline("high-low frequency detectors", is_hl[units], thr["fraction"])
    evidence["numbers"].update({"published_units": len(units), "high_low_among_them": n})
    text = f"{n} of {len(units)} published mixed3a high-low units respond as high-low frequency detectors here"
    if n >= thr["fraction"] * len(units):
        return claim.result(SUPPORTED, text, **evidence)
    return claim.result(NOT_SUPPORTED, text + f" (fewer than {thr['fraction']:.0%})", **evidence)


MIXED3A_HIGH_LOW_UNITS = register_claim(Claim(
    id="inceptionv1-mixed3a-high-low",
    statement="InceptionV1's mixed3a units 110, 180, 153, 106, 112, 186, 132, 136, 117, 113, 108, 70, 86, 88 and 160 "
              "are high-low frequency detectors.",
    source=f"{EARLY_VISION}, section mixed3a (high-low frequency detectors)",
    url=EARLY_VISION_URL + "#group_mixed3a_high_low_frequency",
    applies_to="Lucent's InceptionV1: mixed3a, the published units",
    kind="inceptionv1",
    thresholds={"index_floor": 0.2, "direction_floor": 0.2, "fraction": 2 / 3,
                "null": "score above the 99th percentile of re-initialised mixed3a units that pass the floors "
                        "(one copy)"},
    check=check_mixed3a, applies=_applies_inception,
))
