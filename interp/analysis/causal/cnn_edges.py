"""Edge and node scores of a :class:`~interp.analysis.causal.cnn.CNNGraph`.

Every score is the (estimated) change of the mean metric when something is patched from its
clean value to its corrupted one, sign kept (``patched - clean``):

- :func:`patching_scores`: exact, one edge at a time (edges batched as stacked copies of
  the clean batch from the target layer on, so the layers below run once per chunk);
- :func:`eap_scores`: edge attribution patching, one backward pass for all edges:
  ``<corrupted_i - clean_i, dm/d(input i as seen by j only)>``; exact for a linear model;
- :func:`eap_ig_scores`: the same with the gradient at ``j`` averaged over ``steps``
  points of the straight path from clean to corrupted values of all of ``j``'s sources
  (midpoint rule), one batched pass per target layer;
- :func:`path_patch`: the per-example effect of patching one edge, or a chain of edges
  along which alone the corrupted signal travels (path patching);
- :func:`patch_units`: node activation patching, each channel of a layer patched alone;
- :func:`weight_scores`: the data-free baseline, each edge's weight norm.

>>> graph = CNNGraph.from_classes(run, "cat", corrupted="dog")
>>> eap = eap_scores(graph); exact = patching_scores(graph)
>>> rank_correlation(eap, exact), eap.top(3)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ...errors import InterpError
from .cnn import CNNGraph, LayerPair, replacing_hook
from .graph import Edge, EdgeScores

MAX_BATCH = 4096  # examples per forward pass in the batched loops (copies x clean batch)


def _delta(pair: LayerPair) -> torch.Tensor:
    return pair.corrupted - pair.clean


def _finish(graph: CNNGraph, per_pair: list[torch.Tensor], method: str, start: float, *,
            edges: list[Edge] | None = None, **settings) -> EdgeScores:
    """EdgeScores in float64 (a float32 model's scores are converted, a float64 model's kept exact)."""
    scores = torch.cat([s.reshape(-1) for s in per_pair]).detach().double().cpu()
    return EdgeScores(list(graph.edges) if edges is None else edges, scores, method, graph.metric_name,
                      time.perf_counter() - start, {**graph.settings, **settings})


def _target_gradients(graph: CNNGraph) -> dict[str, torch.Tensor]:
    """d(sum of the per-example metric)/d(output of each target layer) on the clean batch."""
    from ...hooks import capture

    targets = [p.target for p in graph.pairs]
    x = graph.clean.clone().requires_grad_()
    with torch.enable_grad(), capture(graph.model, targets, detach=False) as outs:
        values = graph.score(graph.model(x))
        grads = torch.autograd.grad(values.sum(), [outs[t] for t in targets])
    return dict(zip(targets, grads))


def eap_scores(graph: CNNGraph) -> EdgeScores:
    """Edge attribution patching: every edge's first-order patching effect, one backward pass.

    >>> eap_scores(graph).top(3)
    [Edge('conv2:5', 'fc1:17'), ...]
    """
    start = time.perf_counter()
    with graph.scoped():
        grads = _target_gradients(graph)
        per_pair = [p.attribution(_delta(p), grads[p.target]) / len(graph.clean) for p in graph.pairs]
    return _finish(graph, per_pair, "eap", start)


def weight_scores(graph: CNNGraph) -> EdgeScores:
    """The data-free baseline: each edge's weight norm ``||W[j, i]||`` (a kernel slice for a conv,
    the block of ``i``'s features for a linear layer). Unsigned; compare it with ``|patching|``.

    >>> weight_scores(graph).top(1)
    [Edge('conv1:2', 'conv2:7')]
    """
    start = time.perf_counter()
    per_pair = []
    for p in graph.pairs:
        w = p.module.weight.detach()
        per_pair.append(w.flatten(2).norm(dim=2) if p.is_conv
                        else w.view(p.n_target, p.n_source, p.block).norm(dim=2))
    return _finish(graph, per_pair, "weights", start)


def _interpolated_gradient(graph: CNNGraph, pair: LayerPair, steps: int) -> torch.Tensor:
    """The metric's gradient at the target's output, averaged over ``steps`` points of the path
    from the clean to the corrupted input of the target: ``(B, n_target, ...)``."""
    alphas = (torch.arange(steps, dtype=pair.clean.dtype, device=pair.clean.device) + 0.5) / steps
    alphas = alphas.view(steps, *[1] * pair.clean.dim())
    held = {}

    def hook(_module, inputs, output):
        x = inputs[0]
        along = (x + alphas * (pair.corrupted - x)).flatten(0, 1)      # (steps * B, ...)
        # The layer is linear in its input: layer(x_alpha) = layer(x) + W (x_alpha - x).
        moved = output.repeat(steps, *[1] * (output.dim() - 1)) + pair.through(along - x.repeat(
            steps, *[1] * (x.dim() - 1)))
        held["out"] = moved.detach().requires_grad_()
        return held["out"]

    with torch.enable_grad():
        values = graph.evaluate({pair.target: hook}, replicas=steps)
        (grad,) = torch.autograd.grad(values.sum(), held["out"])
    return grad.view(steps, len(graph.clean), *grad.shape[1:]).mean(0)


def eap_ig_scores(graph: CNNGraph, steps: int = 16) -> EdgeScores:
    """EAP with integrated gradients: ``(corrupted_i - clean_i) . mean_k dm/d(input i seen by j)``
    at ``steps`` points between the clean and corrupted values of the target's inputs.

    >>> eap_ig_scores(graph, steps=16).method
    'eap-ig'
    """
    if steps < 1:
        raise InterpError(f"steps must be at least 1, got {steps}")
    start = time.perf_counter()
    with graph.scoped():
        per_pair = [p.attribution(_delta(p), _interpolated_gradient(graph, p, steps)) / len(graph.clean)
                    for p in graph.pairs]
    return _finish(graph, per_pair, "eap-ig", start, steps=steps)


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield torch.arange(start, min(n, start + size))


def _stacked_patch_hook(targets: torch.Tensor, change: torch.Tensor):
    """A hook that stacks ``E`` copies of the output; copy ``e`` gets ``change[:, e]`` added
    at target node ``targets[e]`` (``change``: (B, E, *spatial))."""
    def hook(_module, _inputs, output):
        copies = output.unsqueeze(0).repeat(len(targets), *[1] * output.dim())   # (E, B, n_target, ...)
        copies[torch.arange(len(targets)), :, targets] += change.transpose(0, 1)
        return copies.flatten(0, 1)
    return hook


def patching_scores(graph: CNNGraph, edges: Sequence[Edge | str] | None = None, *,
                    max_batch: int = MAX_BATCH) -> EdgeScores:
    """Exact activation patching of each edge alone (clean -> corrupted): the change of the mean
    metric. ``edges``: a subset to score (default all); the others get no score.

    >>> patching_scores(graph, ["conv1:0->conv2:1"]).scores
    tensor([0.0312])
    """
    start = time.perf_counter()
    wanted = None if edges is None else [Edge.parse(e) if isinstance(e, str) else e for e in edges]
    by_pair: dict[int, list[tuple[int, int, int]]] = {}
    for k, edge in enumerate(wanted if wanted is not None else graph.edges):
        pair, i, j = graph.locate(edge)
        by_pair.setdefault(graph.pairs.index(pair), []).append((k, i, j))
    per_copy = max(1, max_batch // len(graph.clean))
    scores = torch.zeros(len(wanted) if wanted is not None else len(graph.edges), dtype=torch.float64)
    with graph.scoped(), torch.no_grad():
        base = graph.evaluate().double().mean()
        for p_index, items in by_pair.items():
            pair = graph.pairs[p_index]
            order, sources, targets = (torch.tensor(c) for c in zip(*items))
            for chunk in _chunks(len(order), per_copy):
                s, t = sources[chunk].to(pair.clean.device), targets[chunk].to(pair.clean.device)
                change = pair.edge_outputs(_delta(pair).expand_as(pair.clean), s, t)
                values = graph.evaluate({pair.target: _stacked_patch_hook(t, change)}, replicas=len(chunk))
                scores[order[chunk]] = values.double().view(len(chunk), -1).mean(1).cpu() - float(base)
    return _finish(graph, [scores], "patching", start, edges=wanted)


def _chain(graph: CNNGraph, path: Edge | str | Sequence[Edge | str]) -> list[tuple[LayerPair, int, int]]:
    edges = [path] if isinstance(path, (Edge, str)) else list(path)
    if not edges:
        raise InterpError("path_patch needs at least one edge, e.g. conv1:0->conv2:3")
    edges = [Edge.parse(e) if isinstance(e, str) else e for e in edges]
    for a, b in zip(edges, edges[1:]):
        if a.target != b.source:
            raise InterpError(f"a path must be a chain of edges: {a} ends at {a.target} but {b} starts at {b.source}")
    return [graph.locate(e) for e in edges]


def path_patch(graph: CNNGraph, path: Edge | str | Sequence[Edge | str]) -> torch.Tensor:
    """Per-example change of the metric ``(B,)`` when the first edge of ``path`` carries its
    corrupted value and the change travels on along the path's edges only (every other edge
    out of a path node sees that node's clean value); past the last edge it spreads freely.

    >>> path_patch(graph, "conv1:0->conv2:1").mean()                  # = patching_scores of that edge
    >>> path_patch(graph, ["conv1:0->conv2:1", "conv2:1->fc1:4"])     # conv1:0's effect via conv2:1 and fc1:4
    """
    chain = _chain(graph, path)
    hooks = {}
    for n, (pair, i, j) in enumerate(chain):
        only = torch.zeros(pair.n_target, pair.n_source, device=pair.clean.device)
        only[j, i] = 1
        if n == 0:
            hooks[pair.target] = replacing_hook(pair, pair.corrupted, only)
        else:  # every other edge out of the path node i is put back to its clean value
            hooks[pair.target] = replacing_hook(pair, pair.clean, 1 - only)
    with graph.scoped(), torch.no_grad():
        return graph.evaluate(hooks) - graph.evaluate()


@dataclass
class UnitScores:
    """One score per node of a layer: the change of the mean metric when it alone is patched."""

    layer: str
    units: list[str]
    scores: torch.Tensor  # (n_units,)
    metric: str
    method: str = "patching"
    seconds: float = float("nan")
    settings: dict = field(default_factory=dict)

    def top(self, k: int) -> list[str]:
        order = torch.argsort(self.scores.abs(), descending=True, stable=True)
        return [self.units[i] for i in order[:k].tolist()]

    def rows(self) -> list[dict]:
        order = torch.argsort(self.scores.abs(), descending=True, stable=True)
        return [{"unit": self.units[i], "score": float(self.scores[i])} for i in order.tolist()]


def patch_units(graph: CNNGraph, layer: str, *, max_batch: int = MAX_BATCH) -> UnitScores:
    """Node activation patching: each channel (unit) of ``layer``'s output set to its corrupted
    value alone. For image corruptions this equals patching all of the node's outgoing edges.

    >>> patch_units(graph, "conv2").top(3)
    ['conv2:5', 'conv2:11', 'conv2:0']
    """
    if layer not in graph.layers:
        from ...errors import unknown

        raise unknown("layer", layer, graph.layers)
    start = time.perf_counter()
    clean, corrupted = graph.clean_outputs[layer], graph.corrupted_outputs[layer]
    n_units = clean.shape[1]
    change_all = (corrupted - clean).transpose(0, 1)                         # (n_units, B, ...)
    scores = torch.zeros(n_units, dtype=torch.float64)
    with graph.scoped(), torch.no_grad():
        base = graph.evaluate().double().mean()
        for chunk in _chunks(n_units, max(1, max_batch // len(graph.clean))):
            units = chunk.to(clean.device)
            change = change_all[units].transpose(0, 1)                       # (B, E, ...)
            values = graph.evaluate({layer: _stacked_patch_hook(units, change)}, replicas=len(chunk))
            scores[chunk] = values.double().view(len(chunk), -1).mean(1).cpu() - float(base)
    return UnitScores(layer, [f"{layer}:{u}" for u in range(n_units)], scores, graph.metric_name,
                      seconds=time.perf_counter() - start, settings=dict(graph.settings))
