"""Measurements behind the curve-circuit claim (Zoom In, claim 2): how a conv2 curve detector's
conv1 inputs lie along its preferred curve, and whether its weights and patching agree.

- :func:`tangent_alignment`: the weight-weighted |orientation - tangent| of the inputs over the
  detector's kernel cells, against the same inputs at shuffled cells, CI over cells;
- :func:`weight_patching_agreement`: Spearman of conv1 -> unit weight norms vs |patching|
  effects on the preferred curve (a :class:`UnitReadout` graph), against permutations.

The verdict is :mod:`interp.claims.curve_circuit`'s.

>>> align = tangent_alignment(kernels, orientations, tangent_field(5, 2.0, 45.0, 4.0))
>>> align.error, align.null_low
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...data import stimuli as S
from ...hooks import StopForward, capture, get_module
from ...stats import bootstrap_ci
from ..causal.cnn import CNNGraph
from ..causal.cnn_edges import patching_scores, weight_scores
from ..causal.discovery import rank_correlation, spearman
from ..causal.graph import Edge, EdgeScores
from .tuning import Probe, stimulus_jitter

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
    return torch.tensor([spearman(draw[:, 0], draw[:, 1]) for draw in values], dtype=torch.float64).nan_to_num(0.0)


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
    null = torch.tensor([spearman(weights.scores, magnitude.scores[p]) for p in shuffles])
    pairs = torch.stack([weights.scores, magnitude.scores], 1)
    ci = bootstrap_ci(pairs, _spearman_of, draws=400, seed=seed)
    return Agreement(weights, patching, value, ci, null.nan_to_num(0.0),
                     float(graph.metric(None).mean()))


# --------------------------------------------------------------------------- evidence image
