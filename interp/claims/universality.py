"""Zoom In's claim 3, universality: the same features form in networks trained apart.

``universality-across-seeds`` trains (or reuses) a sibling of the run with the same recipe
and another training seed (:func:`~interp.claims.seeds.seed_siblings`), matches every unit
of the first two conv layers to its best-correlated unit in the sibling, per position on
the same test images (:func:`~interp.analysis.vision.universality.match_units`), and
compares the mean best-match r with the null: the sibling re-initialised and with its weights
shuffled within each tensor (``--null-models`` copies of each). Supported when the 95% CI over
images of the mean best-match r clears the null's 95% quantile; not supported when the value is
within it.

It is checked only when named (it trains a network). :func:`check_universality` compares
any two runs, for example two zoo variants; ``interp claims check --claim
universality-across-seeds --reference OTHER`` does that from the command line.

>>> check_claims(load_run("tutorial"), ["universality-across-seeds"])[0].verdict.status
'supported'
>>> check_universality(load_run("tutorial"), load_run("tutorial-gap")).headline["value"]
"""

from __future__ import annotations

import base64
import sys
from typing import Any, Sequence

import torch

from ..analysis.vision.examples import dataset_examples
from ..analysis.vision.tuning import conv_layers
from ..analysis.vision.universality import (NULL_KINDS, UnitMatch, layer_similarity, match_units,
                                            mean_best_of_draws, null_matches)
from ..errors import InterpError
from ..io import encode_png
from ..stats import bootstrap_ci, headline
from ..subject import as_subject
from .evidence import applies_conv, claim_data, rounded, sample_evidence, unit_name
from .registry import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim

ZOOM_IN = "Olah et al., 'Zoom In: An Introduction to Circuits', Distill 2020"
ZOOM_IN_URL = "https://distill.pub/2020/circuits/zoom-in/"
NULL_MODELS = 8
"""Null copies of the other run of each kind (re-initialised, weight-shuffled) when ``--null-models`` is not
given. Both kinds are pooled: with re-initialised copies alone a weight-shuffled network cleared the null on
one check seed of three (its weight statistics are not the initialisation's)."""
NULL_QUANTILE = 0.95
LAYERS = 2
"""The first conv layers compared (Zoom In's examples of universal features are early ones)."""
SHOWN_PAIRS = 4
"""Matched pairs per layer shown side by side, with their strongest dataset examples."""
EXAMPLES = 4
CKA_DRAWS = 200
"""Bootstrap draws of the CKA interval (context, not the verdict)."""


def _layer_pairs(run_a: Any, run_b: Any) -> list[tuple[str, str]]:
    """The first :data:`LAYERS` conv layers of each model, paired in order."""
    a, b = conv_layers(as_subject(run_a).model), conv_layers(as_subject(run_b).model)
    pairs = list(zip(a, b))[:LAYERS]
    if not pairs:
        raise InterpError(f"universality compares conv layers; {getattr(run_b, 'name', 'the other model')} has none")
    return pairs


def _strip(crops: torch.Tensor, height: int = 40) -> str:
    """A unit's example crops ``(k, 3, h, w)`` uint8 side by side, scaled up to about ``height`` px,
    as a base64 PNG (the claims page shows it inline)."""
    k, _, h, w = crops.shape
    scale = max(1, height // max(h, 1))
    gap = torch.full((3, h, 1), 128, dtype=torch.uint8)
    parts = [p for c in crops for p in (c, gap)][:-1]
    image = torch.cat(parts, 2).repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return base64.b64encode(encode_png(image.permute(1, 2, 0).contiguous())).decode("ascii")


def _as_uint8(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images
    return (images.float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def matched_pairs(run_a: Any, run_b: Any, match: UnitMatch, images: torch.Tensor, top: int = SHOWN_PAIRS) -> list[dict]:
    """The ``top`` best-matched pairs of a layer with each unit's strongest examples among ``images``."""
    pairs = match.pairs(top)
    if not pairs:
        return []
    x = _as_uint8(images)
    ex_a = dataset_examples(run_a, match.layer_a, [i for i, _, _ in pairs], k=EXAMPLES, data=x)
    ex_b = dataset_examples(run_b, match.layer_b, sorted({j for _, j, _ in pairs}), k=EXAMPLES, data=x)
    return [{"layer": match.layer_a, "a": unit_name(match.layer_a, i), "b": unit_name(match.layer_b, j),
             "r": rounded(r), "mutual": bool(match.mutual[i]),
             "a_examples": _strip(ex_a.top_crops[ex_a.index(i)]), "b_examples": _strip(ex_b.top_crops[ex_b.index(j)])}
            for i, j, r in pairs]


def _pooled_ci(matches: list[UnitMatch], seed: int) -> tuple[float, float]:
    """95% CI over images of the mean (over layers) of the mean best-match r; one resample for every layer."""
    n = matches[0].n_images
    return bootstrap_ci(torch.arange(n, dtype=torch.float64),
                        lambda idx: torch.stack([mean_best_of_draws(m.moments, idx) for m in matches]).mean(0),
                        seed=seed)


def check_universality(run_a: Any, run_b: Any, options: CheckOptions | None = None, *,
                       null: Sequence[str] = NULL_KINDS) -> ClaimResult:
    """The ``universality-across-seeds`` verdict for any two conv nets: do ``run_a``'s early units have
    counterparts in ``run_b``, more closely than in null copies of ``run_b``? ``null``: the kinds of copy
    pooled into the null, ``options.null_models`` of each (``reinitialized``: the architecture's own
    initialisation; ``shuffled``: each weight tensor of ``run_b`` permuted). Both runs see the same images:
    ``options.images`` or ``run_a``'s test split (``max_images``, stratified, ``options.seed``).

    >>> check_universality(load_run("tutorial"), load_run("tutorial-seed1")).status
    'supported'
    """
    options = options or CheckOptions()
    claim = UNIVERSALITY
    name_b = getattr(run_b, "name", "the other model")
    pairs = _layer_pairs(run_a, run_b)
    images, _, sample = claim_data(run_a, options)
    kinds = [null] if isinstance(null, str) else list(null)
    per_kind = options.null_models or NULL_MODELS
    copies = per_kind * len(kinds)
    matches = [match_units(run_a, run_b, pair, images) for pair in pairs]
    nulls = [[m for kind in kinds for m in null_matches(run_a, run_b, pair, images, copies=per_kind, kind=kind,
                                                         seed=options.seed + 1)] for pair in pairs]
    value = sum(m.mean_best for m in matches) / len(matches)
    ci = _pooled_ci(matches, options.seed)
    null_values = torch.tensor([sum(n[c].mean_best for n in nulls) / len(nulls) for c in range(copies)])
    null_q = float(torch.quantile(null_values.double(), NULL_QUANTILE))
    null = " and ".join(kinds)
    cka = layer_similarity(run_a, run_b, pairs, images, null_models=min(per_kind, 4), null_kind=kinds[0],
                           seed=options.seed, draws=CKA_DRAWS)
    per_layer = []

    table, found, numbers = [], [], {}
    for m, ns, row in zip(matches, nulls, cka.rows()):
        unit_q = float(torch.quantile(torch.cat([n.best_r for n in ns]).double(), NULL_QUANTILE))
        layer_q = float(torch.quantile(torch.tensor([n.mean_best for n in ns]).double(), NULL_QUANTILE))
        for i in range(len(m.best)):
            beyond = bool(m.best_r[i] > unit_q)
            found += [unit_name(m.layer_a, i)] if beyond else []
            j = int(m.assignment[i])
            table.append({"unit": unit_name(m.layer_a, i), "best_match": unit_name(m.layer_b, int(m.best[i])),
                          "r": rounded(m.best_r[i]), "mutual": bool(m.mutual[i]),
                          "one_to_one": unit_name(m.layer_b, j) if j >= 0 else "",
                          "one_to_one_r": rounded(m.assignment_r[i]) if j >= 0 else None,
                          "null_q95_unit": rounded(unit_q), "beyond_null": beyond})
        key = m.layer_a
        per_layer.append(f"{key} {m.mean_best:.2f} vs {layer_q:.2f}")
        numbers.update({f"{key}_mean_best_r": rounded(m.mean_best), f"{key}_null_q95": rounded(layer_q),
                        f"{key}_mean_one_to_one_r": rounded(m.mean_assigned),
                        f"{key}_mutual_share": rounded(m.mutual.double().mean()),
                        f"{key}_cka": rounded(row["cka"]),
                        f"{key}_cka_ci": f"{row['ci_low']:.3f} - {row['ci_high']:.3f}",
                        f"{key}_cka_null_max": rounded(row["null_max"]) if row["null_max"] is not None else None})
    drawn, note = sample_evidence(sample, options)
    numbers = {"other_run": name_b, **drawn, "null": null, "null_models": copies, "mean_best_r": rounded(value),
               "ci_low": rounded(ci[0]), "ci_high": rounded(ci[1]), "null_q95": rounded(null_q), **numbers}
    notes = [note,
             f"Each unit of {getattr(run_a, 'name', 'A')} is matched to the unit of {name_b} whose activations "
             f"correlate most with it (Pearson r over every image and position, signed: a unit and its negation "
             f"are different features after the ReLU); maps of different sizes are average-pooled to the "
             f"smaller grid. The headline averages the mean best-match r of "
             f"{' and '.join(a for a, _ in pairs)}; its interval resamples images.",
             f"Null: {copies} copies of {name_b} ({per_kind} {null}), matched the same way; the verdict compares "
             f"the CI's low "
             f"end with the null's {NULL_QUANTILE:.0%} quantile. A unit is listed as found when its best r beats "
             f"the {NULL_QUANTILE:.0%} quantile of the null units' best r.",
             "one_to_one: the matching that maximises the summed r with each unit of the other run used once "
             "(Hungarian); mutual: the two units are each other's best match. CKA (linear, per image flattened; "
             f"Kornblith et al. 2019) is context, against {min(per_kind, 4)} {kinds[0]} copies.",
             "One pair of networks: a verdict about the recipe needs more seeds (interp claims check --seeds N "
             "checks it on each)."]
    data = {"pairs": [p for m in matches for p in matched_pairs(run_a, run_b, m, images)], "other_run": name_b,
            "null_mean_best_r": [rounded(v) for v in null_values.tolist()],
            "correlation": {m.layer_a: [[rounded(v) for v in row] for row in m.correlation.tolist()]
                            for m in matches}}
    evidence = dict(layer=", ".join(a for a, _ in pairs), numbers=numbers, table=table, found=found, notes=notes,
                    data=data,
                    headline=headline(f"mean best-match r of {' and '.join(a for a, _ in pairs)} units in {name_b}",
                                      value, ci, null=null_q, n=len(images), over="images",
                                      null_what=f"mean best-match r against {copies} {null} copies of {name_b}",
                                      level=NULL_QUANTILE))
    text = (f"the units of {' and '.join(a for a, _ in pairs)} match units of {name_b} with a mean best r of "
            f"{value:.2f} (95% CI {ci[0]:.2f} to {ci[1]:.2f}); {null} copies give up to {null_q:.2f} "
            f"({NULL_QUANTILE:.0%} quantile of {copies}); per layer, best r vs the null's quantile: "
            f"{', '.join(per_layer)}")
    if ci[0] > null_q:
        return claim.result(SUPPORTED, f"{text}: the same features, more closely than chance", **evidence)
    if value <= null_q:
        return claim.result(NOT_SUPPORTED, f"{text}: no closer than chance", **evidence)
    return claim.result(INCONCLUSIVE, f"{text}: above the null but the interval reaches it; more images "
                        f"(--images), more null copies (--null-models), more seeds (--seeds) or longer training "
                        f"would decide", **evidence)


def _other_run(run: Any, options: CheckOptions) -> Any:
    """``options.reference`` (a run or its name), else the sibling trained with another seed."""
    from ..runs import load_run
    from .seeds import seed_siblings

    if options.reference is not None:
        return load_run(options.reference) if isinstance(options.reference, str) else options.reference
    log = (lambda msg: print(msg, file=sys.stderr)) if options.progress else None
    return seed_siblings(run, 2, device=options.device or "auto", progress=options.progress, log=log)[1]


def check_seed_universality(run: Any, options: CheckOptions) -> ClaimResult:
    if options.reference is None and (getattr(run.config, "family", "") in ("inception", "custom")
                                      or run.config.model == "inceptionv1"):
        return UNIVERSALITY.result(INCONCLUSIVE, f"{run.name} was not trained here, so no sibling seed can be "
                                   "trained; give another run to compare with (--reference RUN)")
    return check_universality(run, _other_run(run, options), options)


UNIVERSALITY = register_claim(Claim(
    id="universality-across-seeds",
    statement="Analogous features form in different networks: each unit of the early conv layers has a "
              "counterpart in a network trained with another seed, closer than chance gives.",
    source=f"{ZOOM_IN}, claim 3 (universality)",
    url=ZOOM_IN_URL + "#claim-3",
    applies_to="conv nets: a sibling trained here with another seed (RUN-seed1), or --reference RUN",
    kind="vision",
    thresholds={"null_quantile": NULL_QUANTILE, "layers": LAYERS,
                "null": "re-initialised and weight-shuffled copies of the other run",
                "supported": "95% CI low end of the mean best-match r above the null's 95% quantile",
                "not_supported": "mean best-match r at or below the null's 95% quantile"},
    check=check_seed_universality, applies=applies_conv(1), on_request=True,
))
