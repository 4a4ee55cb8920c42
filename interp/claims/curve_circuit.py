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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..analysis.causal.cnn import CNNGraph
from ..analysis.causal.cnn_edges import patching_scores, weight_scores
from ..analysis.causal.discovery import rank_correlation
from ..analysis.causal.graph import Edge, EdgeScores
from ..analysis.vision.tuning import GratingTuning, Probe, conv_layers, grating_tuning, stimulus_jitter
from ..analysis.vision.weights import filter_images
from ..data import drawing as D
from ..data import stimuli as S
from ..hooks import StopForward, capture, get_module
from ..io import encode_png, to_uint8
from ..stats import bootstrap_ci, headline
from .curves import CURVE_DETECTORS, check_curves
from .evidence import applies_conv, claim_layer, claim_probe, rounded, unit_name
from .registry import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim

ZOOM_IN = "Olah et al., 'Zoom In: An Introduction to Circuits', Distill 2020"
ZOOM_IN_URL = "https://distill.pub/2020/circuits/zoom-in/#claim-2"
INPUT_ORIENTATIONS = tuple(i * 7.5 for i in range(24))
"""Grating orientations for the input units' preferred orientation (a finer grid than the claims' 15 degrees)."""


# --------------------------------------------------------------------------- geometry


def cell_spacing(probe: Probe, layer: str) -> float:
    """Image pixels between neighbouring cells of ``layer``'s kernel: the step of its receptive
    fields between neighbouring output positions over its own stride (times its dilation).

    >>> cell_spacing(Probe.from_run(run), "conv2")   # tutorial net: conv1, max-pool 2, conv2
    2.0
    """
    module = get_module(probe.model, layer)
    rf = probe.receptive_field(layer)
    h = min(rf.position[0], len(rf.rows) - 2)
    step = float(rf.rows[h + 1][0] - rf.rows[h][0])  # centre rows are not clipped by the image border
    return step / module.stride[0] * module.dilation[0]


def tangent_field(k: int, spacing: float, orientation: float, radius: float) -> torch.Tensor:
    """The preferred curve's tangent direction (degrees mod 180, y up) at every cell of a ``k x k``
    kernel: perpendicular to the cell's offset from the circle's centre, which sits ``radius``
    pixels behind the curve's midpoint (the kernel's centre), opposite to the bulge ``orientation``.

    >>> tangent_field(5, 2.0, 90.0, 4.0)[2, 2]   # a cap's top runs horizontally
    tensor(0.)
    """
    c = (k - 1) / 2
    rows, cols = torch.meshgrid(torch.arange(k, dtype=torch.float64), torch.arange(k, dtype=torch.float64),
                                indexing="ij")
    x, y = (cols - c) * spacing, -(rows - c) * spacing  # y up, as the stimuli's angles
    t = math.radians(orientation)
    cx, cy = -radius * math.cos(t), -radius * math.sin(t)
    normal = torch.rad2deg(torch.atan2(y - cy, x - cx))
    return torch.remainder(normal + 90.0, 180.0).float()


def axis_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|a - b|`` of two orientations (mod 180), in [0, 90] degrees.

    >>> axis_difference(torch.tensor(170.0), torch.tensor(10.0))
    tensor(20.)
    """
    d = torch.remainder(a - b, 180.0)
    return torch.minimum(d, 180.0 - d)


# --------------------------------------------------------------------------- arranged along the curve


@dataclass
class Alignment:
    """Tangent alignment of a unit's excitatory inputs (module docstring, step 3).

    ``errors``: ``(inputs, k, k)`` orientation-tangent differences; ``weights``: the positive
    kernel weights ``(inputs, k, k)``; ``value``: their weighted mean error; ``null``: the same
    statistic with each input's cells shuffled, one value per draw.
    """

    errors: torch.Tensor
    weights: torch.Tensor
    value: float
    ci: tuple[float, float]
    null: torch.Tensor

    @property
    def null_low(self) -> float:
        """The null's 5% quantile: an error below it is better aligned than chance."""
        return float(torch.quantile(self.null, 0.05))

    @property
    def aligned(self) -> bool:
        return self.ci[1] < self.null_low

    @property
    def at_chance(self) -> bool:
        return self.ci[0] >= self.null_low

    def per_input(self) -> torch.Tensor:
        """Each input's weighted mean error over its positive cells ``(inputs,)``."""
        w = self.weights.flatten(1)
        return (w * self.errors.flatten(1)).sum(1) / w.sum(1).clamp_min(1e-12)


def _ratio_of_sums(resampled: torch.Tensor) -> torch.Tensor:  # (draws, cells, 2): weighted error, weight
    return resampled[..., 0].sum(1) / resampled[..., 1].sum(1).clamp_min(1e-12)


def tangent_alignment(kernels: torch.Tensor, orientations: torch.Tensor, tangent: torch.Tensor, *,
                      permutations: int = 500, seed: int = 0) -> Alignment:
    """:class:`Alignment` of ``kernels`` ``(inputs, k, k)`` (one input unit each, preferred
    ``orientations`` ``(inputs,)``) with the curve's ``tangent`` field ``(k, k)``.

    >>> tangent_alignment(kernels, torch.tensor([0.0, 45.0]), tangent_field(5, 2.0, 90.0, 4.2)).value
    """
    weights = kernels.detach().float().clamp_min(0).cpu()
    errors = axis_difference(orientations.float().cpu()[:, None, None], tangent[None].float().cpu())
    n, k = weights.shape[0], weights.shape[-1]
    flat_w, flat_e = weights.reshape(n, -1), errors.reshape(n, -1)
    total = flat_w.sum().clamp_min(1e-12)
    value = float((flat_w * flat_e).sum() / total)
    g = torch.Generator().manual_seed(seed)
    perm = torch.argsort(torch.rand(permutations, n, k * k, generator=g), dim=2)
    shuffled = flat_w[None].expand(permutations, -1, -1).gather(2, perm)
    null = (shuffled * flat_e[None]).sum((1, 2)) / total
    # The interval resamples kernel cells: inputs at one cell are not independent draws.
    per_cell = torch.stack([(flat_w * flat_e).sum(0), flat_w.sum(0)], 1)
    per_cell = per_cell[per_cell[:, 1] > 0]
    ci = bootstrap_ci(per_cell, _ratio_of_sums, seed=seed) if len(per_cell) else (float("nan"), float("nan"))
    return Alignment(errors, weights, value, ci, null)


# --------------------------------------------------------------------------- weights against patching


class UnitReadout(nn.Module):
    """A model whose "logits" are ``layer``'s channels after ReLU at one ``position``: CNNGraph's
    class metrics then read a unit's activation (``target=unit``). The wrapped model runs as it is
    (its modules are ``net.<name>``), so hooks placed on them act as on the model.

    >>> graph = CNNGraph(UnitReadout(model, "conv2", (5, 5)), images, target=3, layers=["net.conv1", "net.conv2"])
    """

    def __init__(self, model: nn.Module, layer: str, position: tuple[int, int]):
        super().__init__()
        self.net, self.layer, self.position = model, layer, position

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, channels of layer)
        with capture(self.net, [self.layer], detach=False) as acts:
            try:
                self.net(x)
            except StopForward:  # raised by an outer hook below the layer (a wiring check): let it pass on
                if self.layer not in acts:
                    raise
        i, j = self.position
        return F.relu(acts[self.layer][:, :, i, j])


@dataclass
class Agreement:
    """Weight norms and patching effects of the edges into the detector (module docstring, step 4)."""

    weights: EdgeScores
    patching: EdgeScores
    value: float
    ci: tuple[float, float]
    null: torch.Tensor
    metric_clean: float

    @property
    def null_high(self) -> float:
        return float(torch.quantile(self.null, 0.95))

    @property
    def agree(self) -> bool:
        return math.isfinite(self.value) and self.value > self.null_high

    @property
    def at_chance(self) -> bool:
        return not math.isfinite(self.value) or self.ci[1] <= self.null_high


def preferred_curves(probe: Probe, layer: str, orientation: float, radius: float) -> torch.Tensor:
    """The unit's preferred curve as the tuning draws it (arc length 0.8 of the receptive field, its
    stroke), at ``orientation`` +-10 degrees, white and black, on four sub-pixel positions: ``(24, 3, H, W)``."""
    rf = probe.receptive_field(layer)
    extent = min(rf.size)
    images = []
    for s in range(4):
        _, (dy, dx) = stimulus_jitter(s, 0.0)
        curves, _ = S.curve_images(probe.size, [orientation - 10, orientation, orientation + 10], [radius],
                                   polarities=(1.0, -1.0), length=0.8 * extent, thickness=max(1.0, extent / 12),
                                   center=(rf.center[0] + dy, rf.center[1] + dx))
        images.append(curves)
    return torch.cat(images)


def _model_input(probe: Probe, images: torch.Tensor) -> torch.Tensor:
    channels = probe.input_shape[0]
    images = images if images.shape[1] == channels else images.mean(1, keepdim=True)
    return probe.normalize(images.to(probe.device))


def _spearman_of(values: torch.Tensor) -> torch.Tensor:  # (draws, n, 2) -> (draws,)
    out = []
    for draw in values:
        edges = [Edge(str(i), "u") for i in range(len(draw))]
        out.append(rank_correlation(EdgeScores(edges, draw[:, 0], "a", "m"), EdgeScores(edges, draw[:, 1], "b", "m")))
    return torch.tensor(out, dtype=torch.float64).nan_to_num(0.0)


def weight_patching_agreement(probe: Probe, source: str, layer: str, unit: int, orientation: float,
                              radius: float, *, permutations: int = 1000, seed: int = 0) -> Agreement:
    """Weight norm against ``|patching|`` of the edges ``source:i -> layer:unit`` on the unit's
    preferred curves (clean) and the blank image (corrupted); metric: the unit's activation."""
    rf = probe.receptive_field(layer)
    readout = UnitReadout(probe.model, layer, rf.position)
    clean = _model_input(probe, preferred_curves(probe, layer, orientation, radius))
    blank = _model_input(probe, S.blank_image(probe.size))
    graph = CNNGraph(readout, clean, target=unit, corrupted=blank, metric="class-logit",
                     layers=[f"net.{source}", f"net.{layer}"])
    edges = graph.edges_into(f"net.{layer}:{unit}")
    named = [Edge(e.source.removeprefix("net."), e.target.removeprefix("net.")) for e in edges]
    every = weight_scores(graph).as_dict()
    weights = EdgeScores(named, torch.tensor([every[e] for e in edges], dtype=torch.float64), "weights", "norm")
    patched = patching_scores(graph, edges)
    patching = EdgeScores(named, patched.scores, "patching", f"activation of {layer}:{unit}")
    magnitude = EdgeScores(named, patched.scores.abs(), "patching", patching.metric)
    value = rank_correlation(weights, magnitude)
    g = torch.Generator().manual_seed(seed)
    shuffles = (torch.randperm(len(named), generator=g) for _ in range(permutations))
    null = torch.tensor([rank_correlation(weights, EdgeScores(named, magnitude.scores[p], "permuted", "m"))
                         for p in shuffles])
    pairs = torch.stack([weights.scores, magnitude.scores], 1)
    ci = bootstrap_ci(pairs, _spearman_of, draws=400, seed=seed)
    return Agreement(weights, patching, value, ci, null.nan_to_num(0.0),
                     float(graph.metric(None).mean()))


# --------------------------------------------------------------------------- evidence image


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
