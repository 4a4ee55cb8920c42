"""Edge scores of a :class:`~interp.analysis.causal.transformer.TransformerGraph`: activation patching
edge by edge (the ground truth), edge attribution patching (EAP) and EAP with integrated gradients.

All three score an edge by the change of the mean metric when it carries its ablated value
instead of its clean one (negative: the edge helps). The estimates are gradients with respect
to each edge's ``keep`` (the graph's mixing coefficient, 1 clean, 0 ablated), so they estimate
exactly what the patching loop and the faithfulness curve measure.

>>> graph = TransformerGraph(run)
>>> truth, eap, ig = patching_scores(graph), eap_scores(graph), eap_ig_scores(graph, steps=16)
>>> rank_correlation(eap, truth), eap.seconds, truth.seconds
>>> path_patch(graph, "L0H0->L1H1.k").effect
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from ...errors import InterpError, unknown
from ...stats import bootstrap_ci
from .graph import Edge, EdgeScores
from .transformer import MAX_ROWS, TransformerGraph

CORRUPTIONS = {"mean": "mean", "broken-repeat": "corrupt"}
"""``corrupted`` of :func:`transformer_graph`: mean ablation over the broken-repeat batch, or each
example's own broken-repeat values (interchange ablation)."""


def _timed_scores(graph: TransformerGraph, method: str, compute: Callable[[], torch.Tensor], **settings) -> EdgeScores:
    start = time.perf_counter()
    scores = compute().detach().double().cpu()
    return EdgeScores(list(graph.edges), scores, method, graph.metric_name, time.perf_counter() - start,
                      {**graph.settings, **settings})


def _settings_per_pass(graph: TransformerGraph) -> int:
    return max(1, MAX_ROWS // len(graph.tokens))


def patching_scores(graph: TransformerGraph) -> EdgeScores:
    """Activation patching, edge by edge (the ground truth the estimates are judged by): the change of
    the mean metric when that one edge carries its ablated value and every other edge its clean one.

    One forward pass per edge (several edges share a pass of stacked copies of the batch).
    """
    def compute():
        n, chunk = len(graph.edges), _settings_per_pass(graph)
        with torch.no_grad():
            full = graph.evaluate(torch.ones(1, n))[0].mean()
            parts = []
            for first in range(0, n, chunk):
                keep = torch.ones(min(chunk, n - first), n)
                keep[torch.arange(len(keep)), torch.arange(first, first + len(keep))] = 0.0
                parts.append(graph.evaluate(keep).mean(1) - full)
        return torch.cat(parts)

    return _timed_scores(graph, "patching", compute)


def _keep_gradients(graph: TransformerGraph, alphas: torch.Tensor) -> torch.Tensor:
    """``(len(alphas), n_edges)``: gradient of the mean metric with respect to every edge's keep,
    with all edges at keep = alpha, for each alpha (batched, several alphas per forward pass)."""
    n, chunk, grads = len(graph.edges), _settings_per_pass(graph), []
    for first in range(0, len(alphas), chunk):
        keep = alphas[first:first + chunk, None].repeat(1, n).requires_grad_(True)
        with torch.enable_grad():
            total = graph.evaluate(keep).mean(1).sum()
            grads.append(torch.autograd.grad(total, keep)[0])  # touches no parameter's .grad
    return torch.cat(grads)


def eap_scores(graph: TransformerGraph) -> EdgeScores:
    """Edge attribution patching (Syed et al. 2023): the first-order estimate of each edge's patching
    score, ``(ablated_w - a_w) . d metric / d input_r`` on the clean run, from one forward and one
    backward pass: minus the metric's gradient with respect to the edge's keep at keep = 1.

    On a gpt run its per-writer sums equal TransformerLens's node attribution patching with the
    corrupted run as the target (tests check it); TL's own edge sweep does not run on our bridges
    (module docstring).
    """
    return _timed_scores(graph, "eap", lambda: -_keep_gradients(graph, torch.ones(1))[0])


def eap_ig_scores(graph: TransformerGraph, steps: int = 16) -> EdgeScores:
    """EAP with integrated gradients (Hanna et al. 2024), in edge space: the keep-gradient averaged over
    ``steps`` points (midpoints) of the straight path from every edge ablated (keep = 0) to the clean
    model (keep = 1), times minus one. The scores then add up to ``m(empty) - m(full)`` (completeness,
    up to the quadrature error), which plain EAP's do not.
    """
    if steps < 1:
        raise InterpError(f"steps must be at least 1, got {steps}")
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    return _timed_scores(graph, "eap-ig", lambda: -_keep_gradients(graph, alphas).mean(0), steps=steps)


@dataclass
class PathPatch:
    """The effect of patching one edge alone: the metric change ``(B,)`` when only ``edge`` carries its
    ablated value; ``effect`` its mean, ``ci`` a bootstrap 95% interval over the examples."""

    edge: Edge
    effect: float
    ci: tuple[float, float]
    per_example: torch.Tensor
    metric: str
    settings: dict = field(default_factory=dict)


def path_patch(graph: TransformerGraph, edge: Edge | str) -> PathPatch:
    """Patch along one edge only: reader ``edge.target`` sees writer ``edge.source``'s ablated value,
    every other input of every node stays live (so what the reader computes differently still
    propagates to the logits, through every path after it).

    >>> path_patch(graph, "L0H1->L1H2.k").effect      # metric change; negative: the edge helps
    """
    edge = Edge.parse(edge) if isinstance(edge, str) else edge
    keep = 1 - graph.keep_vector([edge])  # a clear error for an unknown edge
    with torch.no_grad():
        values = graph.evaluate(torch.stack([torch.ones_like(keep), keep]))
    per_example = (values[1] - values[0]).double().cpu()
    return PathPatch(edge, float(per_example.mean()), bootstrap_ci(per_example), per_example,
                     graph.metric_name, graph.settings)


def transformer_graph(run: Any, *, clean: Any = None, corrupted: Any = "mean", metric: str | None = None,
                      n: int = 32, seed: int = 0, layers: Sequence[str] | None = None) -> TransformerGraph:
    """The :class:`~interp.analysis.causal.circuit.GraphBuilder` of transformer runs: their induction task,
    ``corrupted`` ``"mean"`` or ``"broken-repeat"`` (:data:`CORRUPTIONS`), ``metric`` ``"loss"`` (default)
    or ``"logit-diff"``.

    >>> transformer_graph(run, corrupted="broken-repeat", metric="logit-diff", n=32, seed=0)
    """
    if clean not in (None, "induction"):
        raise InterpError(f"a transformer's clean inputs are its induction task; got clean={clean!r} (leave it out)")
    if layers:
        raise InterpError("a transformer's circuit graph always spans every layer; leave out layers")
    if corrupted not in CORRUPTIONS:
        raise unknown("corruption", str(corrupted), list(CORRUPTIONS))
    return TransformerGraph(run, n=n, seed=seed, metric=metric or "loss", ablation=CORRUPTIONS[corrupted])
