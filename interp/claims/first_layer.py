"""First-layer claims for any conv net: its filters are Gabor-like or colour-contrast
(``gabor-first-layer``), and the Gabor-like ones' orientations tile 0-180 degrees
(``orientation-tiling``).

The filter fits and the spectrum-matched null are :mod:`interp.analysis.vision.gabor`'s; this
module turns them into verdicts.

>>> check_claims(load_run("tutorial"), ["gabor-first-layer"])[0].numbers["gabor"]
0.5
"""

from __future__ import annotations

import torch

from ..analysis.vision.gabor import (BANDPASS_CYCLES, FAMILIES, LUMINANCE_OPPONENT, NULL_DESCRIPTION, NULL_QUANTILE,
                                     OPPONENCY_MIN, OSI_GABOR, OSI_NULL_COPIES, R2_FLOOR, FirstLayerFamilies,
                                     first_layer_families)
from ..analysis.vision.tuning import conv_layers
from ..hooks import get_module
from ..stats import binomial_tail, bootstrap_ci, headline, largest_gap
from .evidence import EARLY_VISION, EARLY_VISION_URL, P_SUPPORTED, applies_conv, chance_count, rounded, unit_name
from .registry import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim


def check_first_layer(run, options: CheckOptions) -> ClaimResult:
    claim = GABOR_FIRST_LAYER
    layer = conv_layers(run.model)[0]
    weight = get_module(run.model, layer).weight
    k = weight.shape[-1]
    if k < 3:
        return claim.result(INCONCLUSIVE, f"{layer} has {k}x{k} kernels; a Gabor needs at least 3x3", layer=layer)
    fam = first_layer_families(weight, layer, seed=options.seed)
    return families_result(claim, fam, run)


def families_result(claim: Claim, fam: FirstLayerFamilies, run, published: dict | None = None) -> ClaimResult:
    fits, n = fam.fits, len(fam.families)
    fr = fam.fractions()
    structured = fr["gabor"] + fr["colour contrast"]
    n_struct = sum(f != "other" for f in fam.families)
    p0 = max(fam.null_rate, 1.0 / len(fam.null_r2))
    p_value = binomial_tail(n_struct, n, p0)
    osi_t = fam.osi_threshold if fam.osi_threshold is not None else torch.full((n,), OSI_GABOR)
    osi_q = fam.osi_null_q99 if fam.osi_null_q99 is not None else torch.zeros(n)
    cycles = fits.cycles
    table = [{"unit": unit_name(fam.layer, i), "family": fam.families[i], "r2": rounded(fits.r2[i]),
              "orientation": rounded(fits.orientation[i], 1), "freq": rounded(fits.freq[i]), "sigma": rounded(fits.sigma[i], 2),
              "cycles": rounded(cycles[i], 2), "band_pass": bool(cycles[i] >= BANDPASS_CYCLES),
              "osi": rounded(fits.own_osi[i]), "osi_threshold": rounded(osi_t[i]), "fit_osi": rounded(fits.osi[i]),
              "luminance": rounded(fits.luminance[i]), "opponency": rounded(fits.opponency[i])}
             for i in range(n)]
    k = fits.fitted.shape[-1]
    wn_struct = sum(f != "other" for f in fam.white_noise_families)
    numbers = {"filters": n, "kernel": f"{k}x{k}", "gabor": rounded(fr["gabor"]),
               "colour_contrast": rounded(fr["colour contrast"]), "other": rounded(fr["other"]), "structured": rounded(structured),
               "r2_threshold": rounded(fam.r2_threshold), "osi_threshold": rounded(osi_t.median()) if n else OSI_GABOR,
               "matched_null_rate": rounded(fam.null_rate, 4), "null_rate": rounded(fam.null_rate, 4), "p_value": p_value,
               "null_filters": len(fam.null_r2), "null_copies_per_filter": fam.null_copies,
               "median_r2": rounded(fits.r2.median()), "null_median_r2": rounded(fam.null_r2.median()),
               "white_noise_null_rate": rounded(fam.white_noise_null_rate, 4),
               "white_noise_r2_threshold": rounded(fam.white_noise_r2_threshold),
               "white_noise_structured": rounded(wn_struct / max(n, 1))}
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
    found = [unit_name(fam.layer, i) for i, f in enumerate(fam.families) if f != "other"]
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
                    thresholds={**claim.thresholds, "r2": rounded(fam.r2_threshold), "osi_gabor": OSI_GABOR,
                                "osi_null_q99": rounded(osi_q.median()) if n else 0.0,
                                "osi": rounded(osi_t.median()) if n else OSI_GABOR})
    if published is not None:
        numbers.update({f"published_{k2.replace(' ', '_')}": v for k2, v in published.items()})
        worst = max(abs(fr[f] - published[f]) for f in FAMILIES)
        numbers["largest_difference"] = rounded(worst)
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
    check=check_first_layer, applies=applies_conv(1),
))


def check_tiling(run, options: CheckOptions) -> ClaimResult:
    claim = ORIENTATION_TILING
    layer = conv_layers(run.model)[0]
    weight = get_module(run.model, layer).weight
    if weight.shape[-1] < 3:
        return claim.result(INCONCLUSIVE, f"{layer} has {weight.shape[-1]}x{weight.shape[-1]} kernels; no Gabors "
                            f"to tile", layer=layer)
    fam = first_layer_families(weight, layer, seed=options.seed)
    return tiling_result(claim, fam)


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
    table = [{"unit": unit_name(fam.layer, i), "orientation": rounded(fam.fits.orientation[i], 1), "r2": rounded(fam.fits.r2[i]),
              "osi": rounded(fam.fits.own_osi[i]), "cycles": rounded(fam.fits.cycles[i], 2)} for i in gabor]
    numbers = {"gabor_units": n, "largest_gap_deg": rounded(gap, 1), "p_uniform_gap_this_small": rounded(p_uniform)}
    notes = [f"Gabor-like as in gabor-first-layer: the Gabor fit beats {NULL_QUANTILE:.0%} of a spectrum-matched "
             f"null (R^2 >= {fam.r2_threshold:.2f}), band-pass, and the filter itself oriented beyond chance."]
    boot = torch.tensor([largest_gap(ori[torch.randint(n, (n,), generator=g)]) for _ in range(500)]) if n else None
    evidence = dict(layer=fam.layer, numbers=numbers, table=table, found=[unit_name(fam.layer, i) for i in gabor],
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


ORIENTATION_TILING = register_claim(Claim(
    id="orientation-tiling",
    statement="The preferred orientations of the first layer's Gabor-like filters cover 0-180 degrees.",
    source=f"{EARLY_VISION}, section conv2d0 (Gabor filters at every orientation)",
    url=EARLY_VISION_URL + "#conv2d0",
    applies_to="any conv net on images: its first conv layer",
    kind="vision",
    thresholds={"min_units": 4, "max_gap_deg": 60.0},
    check=check_tiling, applies=applies_conv(1),
))
