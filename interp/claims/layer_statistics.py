"""Layer-level claims for any conv net: exponential activation tails in every layer after the
first (``exponential-tail``) and banded last-layer weights with global average pooling
(``weight-banding``).

Tail shapes, banding scores and the pooling head are measured by
:mod:`interp.analysis.vision.tuning`; the nulls are a re-initialised copy of the model
(tails) and random weights of the same shape (banding).

>>> check_claims(load_run("tutorial"), ["weight-banding"])[0].numbers["banding"]
"""

from __future__ import annotations

import torch

from ..analysis.vision.gabor import null_filters
from ..analysis.vision.tuning import (EXP_HAZARD_RANGE, MIN_TAIL_SAMPLES, banding, banding_score, conv_layers,
                                      mean_abs_kernel, pooling_head, tail_shapes)
from ..hooks import get_module
from ..stats import bootstrap_ci, headline
from ..zoo import reinitialized
from .evidence import CURVES, CURVES_URL, applies_conv, claim_data, claim_probe, rounded, sample_evidence, unit_name
from .registry import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim


# -- exponential tails ----------------------------------------------------------


def check_tails(run, options: CheckOptions) -> ClaimResult:
    claim = EXPONENTIAL_TAIL
    probe = claim_probe(run, options)
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
            "units": int(valid.sum()), "exponential": rounded(exp.sum() / valid.sum().clamp_min(1)),
            "median_hazard": rounded(h[valid].median()) if valid.any() else None,
            "null_exponential": rounded(nexp.sum() / nvalid.sum().clamp_min(1)),
            "null_median_hazard": rounded(null.hazard[layer][nvalid].median()) if nvalid.any() else None}
        table += [{"unit": unit_name(layer, i), "hazard_ratio": rounded(h[i]) if valid[i] else None,
                   "exponential": bool(exp[i]), "firing": rounded(shapes.firing[layer][i])} for i in range(len(h))]
    found = [row["unit"] for row in table if row["exponential"]]
    data = {"samples": {k: [[rounded(x, 4) for x in row.tolist()] for row in v] for k, v in shapes.samples.items()},
            "hazard": {k: [(rounded(x) if x == x else None) for x in v.tolist()] for k, v in shapes.hazard.items()},
            "null_hazard": {k: [(rounded(x) if x == x else None) for x in v.tolist()] for k, v in null.hazard.items()}}
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
    check=check_tails, applies=applies_conv(2),
))


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
    numbers = {"head": head, "kernel": f"{weight.shape[-2]}x{k}", "rows_explain": rounded(rows), "columns_explain": rounded(cols),
               "banding": rounded(score), "direction": direction, "null_max": rounded(null.max()), "threshold": rounded(threshold),
               "chance_each_way": rounded(1 / (k + 1))}
    data = {"mean_abs_kernel": mean_abs_kernel(weight).tolist(), "score": score, "null": null.tolist()}
    evidence = dict(layer=layer, numbers=numbers, found=[layer] if banded else [], data=data,
                    thresholds={**claim.thresholds, "banding": rounded(threshold)},
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
    check=check_banding, applies=applies_conv(1),
))
