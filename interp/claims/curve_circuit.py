"""Zoom In's claim 2 for vision (``curve-circuit``): a curve detector of the second conv layer is
built from the first layer's oriented units arranged along the curve, and its weights and
activation patching agree on which inputs matter.

The check, for any conv net with two conv layers or more (the second one, or ``--layer``):

1. **The detector.** The curve detectors are found exactly as ``curve-detectors`` finds them
   (:func:`.curves.check_curves`: the units that beat the pooled null of re-initialised copies on
   most stimulus grids); the best-scoring one is examined, with its preferred curve orientation
   ``theta`` and radius ``r`` from its radial tuning. No detector: ``inconclusive``, with why.
2. **The inputs.** Each unit of the layer below gets its preferred orientation from its grating
   tuning (:func:`~interp.analysis.vision.tuning.grating_tuning`, 7.5 degree steps); the top
   ``top_k`` oriented inputs (grating OSI >= ``input_osi``) by excitatory weight mass
   ``sum(max(W[u, i], 0))`` are examined.
3. **Arranged along the curve.** Kernel cell ``(a, b)`` of the detector reads the input map
   ``(a - c, b - c)`` cells from the centre (``c`` the kernel's centre; a cell is ``spacing``
   image pixels, from the receptive fields). The preferred curve is the circle of radius ``r``
   whose arc bulges towards ``theta`` with its midpoint on the receptive field's centre; at each
   cell its *tangent* is the direction perpendicular to the cell's offset from the circle's centre.
   The statistic is the mean ``|orientation - tangent|`` (degrees, 0..90) over the examined inputs'
   positive kernel weights, weighted by the weight: 0 when every input's weight sits where the
   curve runs along its orientation, about 45 when orientation and position are unrelated.
   Null: each input's kernel cells shuffled (``permutations`` draws; the same weights and
   orientations, positions at random); CI: bootstrap over the kernel's cells. Aligned when the CI's top
   is below the null's 5% quantile; at chance when the CI's bottom is not.
4. **Weights and patching agree.** Edges ``conv1:i -> conv2:u``, scored by weight norm
   (:func:`~interp.analysis.causal.cnn_edges.weight_scores`) and by exact activation patching
   (:func:`~interp.analysis.causal.cnn_edges.patching_scores`) on a :class:`CNNGraph` whose metric is
   the detector's activation: clean images are its preferred curve (three orientations around
   ``theta``, white and black, four sub-pixel positions), the corrupted one the blank grey image.
   CNNGraph's metrics read class logits, so the graph is built on a *readout* of the model
   (:class:`UnitReadout`: the model's forward, returning the layer's channels after ReLU at the
   centre position as its "logits", the target class being the unit). Statistic: Spearman
   correlation of weight norm with ``|patching|`` (:func:`~interp.analysis.causal.discovery.rank_correlation`);
   null: patching scores permuted over edges (95% quantile); CI: bootstrap over edges.

Verdict: ``supported`` when the tangent error's CI clears the null's 5% quantile and the
correlation exceeds its null's 95% quantile; ``not supported`` when either is clearly at chance
(the claim is a conjunction: inputs that sit anywhere, or weights that do not say what matters,
refute it); ``inconclusive`` otherwise, saying which part is undecided.

Checked when named (it re-runs ``curve-detectors``' null ensemble first):

>>> check_claims(load_run("tutorial"), ["curve-circuit"])[0].table   # one row per examined input
"""

from __future__ import annotations

import base64
import math

import torch
import torch.nn.functional as F

from ..analysis.causal.graph import Edge
from ..analysis.vision.curve_circuit import (INPUT_ORIENTATIONS, Agreement, Alignment, cell_spacing,
                                             tangent_alignment, tangent_field, weight_patching_agreement)
from ..analysis.vision.tuning import GratingTuning, Probe, conv_layers, grating_tuning
from ..analysis.vision.weights import filter_images
from ..data import drawing as D
from ..data import stimuli as S
from ..hooks import get_module
from ..io import encode_png, to_uint8
from ..stats import headline
from .curves import CURVE_DETECTORS, check_curves
from .evidence import applies_conv, claim_layer, claim_probe, rounded, unit_name
from .registry import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim

ZOOM_IN = "Olah et al., 'Zoom In: An Introduction to Circuits', Distill 2020"
ZOOM_IN_URL = "https://distill.pub/2020/circuits/zoom-in/#claim-2"
def circuit_image(filters: torch.Tensor | None, kernels: torch.Tensor, inputs: list[int], orientation: float,
                  radius: float, spacing: float, arc_length: float, cell: int = 32) -> str:
    """A base64 PNG of the detector's kernel: in each cell the input (of ``inputs``) with the largest
    positive weight there, drawn as its filter (first layer; else an oriented bar is not known, so a
    white square) faded by the weight, and the preferred curve in red on top."""
    k = kernels.shape[-1]
    size = k * cell
    canvas = torch.full((3, size, size), 0.5)
    positive = kernels.clamp_min(0)
    top = float(positive.max()) or 1.0
    tiles = None
    if filters is not None:
        tiles, _ = filter_images(filters[inputs].float())
        tiles = F.interpolate(tiles, size=(cell - 4, cell - 4), mode="nearest")
    for a in range(k):
        for b in range(k):
            best = int(positive[:, a, b].argmax())
            strength = float(positive[best, a, b]) / top
            if strength <= 0:
                continue
            tile = tiles[best] if tiles is not None else torch.ones(3, cell - 4, cell - 4)
            y, x = a * cell + 2, b * cell + 2
            canvas[:, y:y + cell - 4, x:x + cell - 4] = 0.5 + strength * (tile - 0.5)
    scale = cell / spacing  # canvas pixels per image pixel
    a = S.drawing_angle(orientation)
    r = radius * scale
    mask = D.arc_mask(size, size, r, 2.0, a, min(arc_length / radius, 2 * math.pi), cx=-r * torch.cos(a),
                      cy=-r * torch.sin(a))[0]
    red = torch.tensor([0.85, 0.1, 0.1])[:, None, None]
    canvas = canvas * (1 - mask) + red * mask
    return base64.b64encode(encode_png(to_uint8(canvas))).decode("ascii")


# --------------------------------------------------------------------------- the claim


def detector_of(run, options: CheckOptions) -> tuple[ClaimResult, dict | None]:
    """The ``curve-detectors`` result of the run and the row of its best-scoring found unit (None if none)."""
    curves = check_curves(run, options)
    rows = [row for row in curves.table if row["unit"] in set(curves.found)]
    return curves, max(rows, key=lambda row: row["score"]) if rows else None


def input_tuning(probe: Probe, source: str) -> GratingTuning:
    """The input layer's grating tuning on :data:`INPUT_ORIENTATIONS`: each unit's preferred orientation and OSI."""
    return grating_tuning(probe, source, orientations=INPUT_ORIENTATIONS)


def check_curve_circuit(run, options: CheckOptions) -> ClaimResult:
    claim = CURVE_CIRCUIT
    layer = claim_layer(run, options, 1)
    convs = conv_layers(run.model)
    if layer not in convs or convs.index(layer) == 0:
        return claim.result(INCONCLUSIVE, f"{layer} is not a conv layer with a conv layer below it", layer=layer)
    curves, row = detector_of(run, options)
    if row is None:
        return claim.result(INCONCLUSIVE, f"there is no curve detector in {layer} to examine (curve-detectors: "
                            f"{curves.status}: {curves.verdict.reason})", layer=layer,
                            numbers={"curve_detectors": 0}, notes=[f"curve-detectors: {curves.verdict.reason}"])
    result = examine_detector(run, layer, row, options)
    result.numbers["curve_detectors"] = len(curves.found)
    result.notes.append(f"curve-detectors on this run: {curves.status} ({', '.join(curves.found)}); the "
                        f"best-scoring one is examined.")
    return result


def examine_detector(run, layer: str, row: dict, options: CheckOptions) -> ClaimResult:
    """The claim's verdict on one detector: ``row`` holds its ``unit`` (``conv2:3``), preferred curve
    ``orientation`` (degrees) and ``radius`` (pixels), as a ``curve-detectors`` table row does.

    >>> examine_detector(run, "conv2", {"unit": "conv2:3", "orientation": 90.0, "radius": 4.2}, CheckOptions())
    """
    claim = CURVE_CIRCUIT
    thr = claim.thresholds
    convs = conv_layers(run.model)
    source = convs[convs.index(layer) - 1]
    probe = claim_probe(run, options)
    unit = int(row["unit"].rpartition(":")[2])
    orientation, radius = float(row["orientation"]), float(row["radius"])
    weight = get_module(run.model, layer).weight.detach()[unit].float().cpu()  # (inputs, k, k)
    tuning = input_tuning(probe, source)
    oriented = torch.nonzero(tuning.osi >= thr["input_osi"]).flatten()
    if len(oriented) == 0:
        return claim.result(INCONCLUSIVE, f"no {source} unit is oriented (grating OSI >= {thr['input_osi']}), so "
                            f"there is no orientation to compare with the curve", layer=layer)
    mass = weight.clamp_min(0).flatten(1).sum(1)
    chosen = oriented[torch.argsort(mass[oriented], descending=True, stable=True)][:thr["top_k"]]
    chosen = chosen[mass[chosen] > 0]
    if len(chosen) == 0:
        return claim.result(INCONCLUSIVE, f"{row['unit']} has no excitatory weight from an oriented {source} unit",
                            layer=layer)
    spacing = cell_spacing(probe, layer)
    tangent = tangent_field(weight.shape[-1], spacing, orientation, radius)
    align = tangent_alignment(weight[chosen], tuning.orientation[chosen], tangent,
                              permutations=thr["permutations"], seed=options.seed)
    agree = weight_patching_agreement(probe, source, layer, unit, orientation, radius,
                                      permutations=2 * thr["permutations"], seed=options.seed)
    evidence = circuit_evidence(run, layer, source, row, chosen, weight, tuning, align, agree, spacing, tangent)
    return circuit_verdict(claim, row["unit"], align, agree, evidence)


def circuit_evidence(run, layer: str, source: str, row: dict, chosen: torch.Tensor, weight: torch.Tensor,
                     tuning: GratingTuning, align: Alignment, agree: Agreement, spacing: float,
                     tangent: torch.Tensor) -> dict:
    """Table (one row per examined input), numbers, headline, notes and the circuit image."""
    k = weight.shape[-1]
    per_input = align.per_input()
    patch = agree.patching.as_dict()
    table = []
    for n, i in enumerate(chosen.tolist()):
        peak = int(weight[i].flatten().argmax())
        a, b = divmod(peak, k)
        edge = Edge(unit_name(source, i), row["unit"])
        table.append({"unit": unit_name(source, i), "excitatory_mass": rounded(weight[i].clamp_min(0).sum(), 4),
                      "weight_norm": rounded(weight[i].norm(), 4), "patching": rounded(patch[edge], 4),
                      "orientation": rounded(tuning.orientation[i], 1), "osi": rounded(tuning.osi[i]),
                      "peak_cell": f"{a},{b}", "tangent_at_peak": rounded(tangent[a, b], 1),
                      "error_at_peak": rounded(align.errors[n, a, b], 1), "mean_error": rounded(per_input[n], 1)})
    first = conv_layers(run.model)[0] == source
    filters = get_module(run.model, source).weight.detach().cpu() if first else None
    if filters is not None and filters.shape[1] != 3:
        filters = filters.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    rf = claim_probe(run, CheckOptions()).receptive_field(layer)
    image = circuit_image(filters, weight[chosen], chosen.tolist(), float(row["orientation"]), float(row["radius"]),
                          spacing, 0.8 * min(rf.size))
    n_cells = int((align.weights.sum(0) > 0).sum())
    numbers = {"detector": row["unit"], "detector_orientation": row["orientation"], "detector_radius_px": row["radius"],
               "inputs_examined": len(chosen), "kernel_cell_px": rounded(spacing, 2),
               "tangent_error_deg": rounded(align.value, 2), "tangent_error_ci": [rounded(c, 2) for c in align.ci],
               "tangent_null_q05": rounded(align.null_low, 2), "tangent_null_median": rounded(align.null.median(), 2),
               "weight_patching_spearman": rounded(agree.value), "spearman_ci": [rounded(c) for c in agree.ci],
               "spearman_null_q95": rounded(agree.null_high), "spearman_p": rounded(
                   float((agree.null >= agree.value).double().mean()) if math.isfinite(agree.value) else 1.0, 4),
               "edges": len(agree.weights.edges), "detector_activation_on_curves": rounded(agree.metric_clean, 4)}
    notes = [f"Each examined input's positive weights in {row['unit']}'s {k}x{k} kernel are compared with the "
             f"tangent of the preferred curve (orientation {row['orientation']}, radius {row['radius']} px) at "
             f"their cell (a cell is {spacing:g} image px); the null shuffles each input's cells "
             f"({len(align.null)} draws). The interval resamples the {n_cells} kernel cells with positive weight.",
             f"Patching: clean = the preferred curve (orientation +-10, white and black, 4 positions), corrupted = "
             f"the blank grey image, metric = {row['unit']}'s activation after ReLU at the centre position; the "
             f"Spearman interval resamples the {len(agree.weights.edges)} edges, so a layer with few inputs gives "
             f"a wide one.",
             "Inhibitory (negative) weights are not part of the tangent statistic; units of the layer below with "
             "little orientation selectivity are not examined."]
    headline_ = headline(f"mean |orientation - curve tangent| of {row['unit']}'s excitatory {source} weights (degrees)",
                         align.value, align.ci, null=align.null_low, n=n_cells, over="kernel cells",
                         null_what=f"same weights with each input's kernel cells shuffled ({len(align.null)} draws)",
                         level=0.05)
    return dict(layer=layer, table=table, numbers=numbers, notes=notes, headline=headline_, found=[row["unit"]],
                data={"circuit_png": image, "tangent_null": [rounded(v, 2) for v in align.null.tolist()],
                      "edges": agree.patching.rows(), "weights": agree.weights.rows()})


def circuit_verdict(claim: Claim, unit: str, align: Alignment, agree: Agreement, evidence: dict) -> ClaimResult:
    tangent = (f"the inputs' mean tangent error is {align.value:.1f} deg (95% CI {align.ci[0]:.1f}-{align.ci[1]:.1f}) "
               f"against {align.null_low:.1f} for shuffled positions (5% quantile)")
    spearman = (f"weights and patching correlate with Spearman {agree.value:.2f} (95% CI {agree.ci[0]:.2f}-"
                f"{agree.ci[1]:.2f}; null 95% quantile {agree.null_high:.2f})" if math.isfinite(agree.value) else
                f"patching changes nothing (the unit's activation on its curve is {agree.metric_clean:.3g}), so "
                f"there is no ranking to compare with the weights")
    if align.aligned and agree.agree:
        return claim.result(SUPPORTED, f"{unit}'s oriented inputs run along its preferred curve: {tangent}, and "
                            f"{spearman}", **evidence)
    if align.at_chance or agree.at_chance:
        which = "its inputs are not arranged along the curve" if align.at_chance else \
            "its weights do not predict which inputs matter on the curve"
        return claim.result(NOT_SUPPORTED, f"{unit}: {which}: {tangent}; {spearman}", **evidence)
    undecided = []
    if not align.aligned:
        undecided.append("the tangent error's interval overlaps the null (more inputs or a larger kernel would "
                         "decide)")
    if not agree.agree:
        undecided.append(f"the rank correlation does not beat its null over {len(agree.weights.edges)} edges (a "
                         f"layer with more inputs would decide)")
    return claim.result(INCONCLUSIVE, f"{unit}: {tangent}; {spearman}; " + "; ".join(undecided), **evidence)


CURVE_CIRCUIT = register_claim(Claim(
    id="curve-circuit",
    statement="A curve detector in the second conv layer is built from the first layer's oriented units arranged "
              "along the curve (each tangent to the curve where its weights lie), and its weights and activation "
              "patching agree on which inputs matter.",
    source=f"{ZOOM_IN}, Claim 2 (circuits); Cammarata et al., 'Curve Circuits', Distill 2021",
    url=ZOOM_IN_URL,
    applies_to="any conv net with two or more conv layers: the second conv layer (or --layer) and the one below",
    kind="vision",
    thresholds={"top_k": 10, "input_osi": 0.2, "permutations": 500,
                "detector": f"a unit that {CURVE_DETECTORS.id} finds (beats its pooled null)",
                "null": "tangent error below the 5% quantile of each input's kernel cells shuffled (CI's top), and "
                        "Spearman above the 95% quantile of the patching scores permuted over edges"},
    check=check_curve_circuit, applies=applies_conv(2),
    on_request=True,  # it re-runs curve-detectors' null ensemble: checked when named, not in every report
))
