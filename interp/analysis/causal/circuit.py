"""Find a model's circuit in one call: build its graph, score the edges, judge the top-k circuits.

:func:`find_circuit` is the one entry point (``interp circuit`` and the report call it): it
builds the :class:`~interp.analysis.causal.graph.CircuitGraph` of the run's model kind
(:data:`GRAPH_BUILDERS`), scores every edge with one method (EAP, EAP-IG or exact
activation patching), draws the faithfulness curve of the top-k circuits beside random
circuits of the same sizes (:func:`~interp.analysis.causal.discovery.faithfulness_curve`)
and keeps one circuit: ``top`` edges when given, else the smallest circuit reaching the
threshold (0.8), else the most faithful size on the curve.

>>> result = find_circuit(run, method="eap", clean="circle", corrupted="square", n=32)
>>> result.size, result.at()["faithfulness"], result.at()["random_high"]
(40, 0.83, 0.12)
>>> result.edges[:2]
[Edge('conv2:5', 'fc1:17'), Edge('conv1:2', 'conv2:5')]
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from ...errors import InterpError, unknown
from .discovery import THRESHOLD, FaithfulnessCurve, default_sizes, faithfulness_curve
from .graph import METHODS, CircuitGraph, Edge, EdgeScores

DEFAULT_N = 32
"""Clean examples per graph: enough for a bootstrap CI, small enough for exact patching on a CPU."""
DEFAULT_STEPS = 16
"""Interpolation steps of EAP-IG."""


class GraphBuilder(Protocol):
    """Builds one model kind's graph from a run. ``clean`` / ``corrupted`` are what that kind
    contrasts (a CNN: class names, ``"mean"``), ``metric=None`` means the kind's default."""

    def __call__(self, run: Any, *, clean: Any, corrupted: Any, metric: str | None, n: int, seed: int,
                 layers: Sequence[str] | None) -> CircuitGraph: ...


@dataclass
class CircuitResult:
    """A circuit found in a run: the graph's nodes by layer, every edge's score, the
    faithfulness curve against random circuits, and the circuit kept (``edges``, ``size`` of them)."""

    run: str
    model_kind: str                      # a key of GRAPH_BUILDERS: "cnn", "transformer"
    layers: list[str]                    # the graph's columns, inputs first
    nodes: list[list[str]]               # nodes per layer, parallel to ``layers``
    scores: EdgeScores
    curve: FaithfulnessCurve
    size: int                            # edges kept
    edges: list[Edge]                    # the kept circuit: the top ``size`` edges by |score|
    seconds: float
    settings: dict = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.scores.method

    @property
    def metric(self) -> str:
        return self.scores.metric

    @property
    def n_edges(self) -> int:
        return len(self.scores.edges)

    def at(self, size: int | None = None) -> dict:
        """Faithfulness (with its CI) and the random band at ``size`` (default: the kept circuit's)."""
        return self.curve.at(self.size if size is None else size)

    def beats_random(self) -> bool:
        """Whether the kept circuit's CI lies above the random circuits' 95% quantile at its size."""
        at = self.at()
        return at["ci"][0] > at["random_high"]

    def edge_rows(self, k: int | None = None) -> list[dict]:
        """The ``k`` strongest edges (default: the kept circuit) as rows, strongest first, with rank."""
        rows = self.scores.rows()[: self.size if k is None else k]
        return [{"rank": i + 1, **row} for i, row in enumerate(rows)]


# -- graph builders, one per model kind --------------------------------------------------------


def cnn_graph(run: Any, *, clean: Any, corrupted: Any, metric: str | None, n: int, seed: int,
              layers: Sequence[str] | None) -> CircuitGraph:
    """A CNN's channel graph on ``n`` test images of class ``clean`` (None: every class) against
    class ``corrupted``, or ``"mean"`` / ``"mean-image"`` (:meth:`CNNGraph.from_classes`)."""
    from .cnn import CORRUPTIONS, CNNGraph

    by_class = not (isinstance(corrupted, str) and corrupted in CORRUPTIONS)
    if metric == "logit-diff" and not by_class:
        raise InterpError("metric logit-diff compares the clean class with the corrupted one: give a corrupted "
                          "class (--corrupted CLASS), or another metric for --corrupted mean")
    if by_class and clean is None:
        raise InterpError(f"a corrupted class ({corrupted!r}) is compared with a clean class: give one "
                          f"(--clean CLASS), or --corrupted mean")
    if by_class and str(clean) == str(corrupted):
        raise InterpError(f"the clean and corrupted classes are both {clean!r}: patching changes nothing; "
                          f"give two different classes, or --corrupted mean")
    return CNNGraph.from_classes(run, clean, corrupted, n=n, seed=seed, metric=metric, layers=layers)


@dataclass(frozen=True)
class GraphKind:
    """How one model kind joins circuit discovery: its :class:`GraphBuilder` and the module of its
    edge scorers (``eap_scores(graph)``, ``eap_ig_scores(graph, steps=)``, ``patching_scores(graph)``).
    Both as ``"module:function"`` / ``"module"`` strings, imported on first use (or the builder itself)."""

    builder: str | GraphBuilder
    scorers: str

    def build(self) -> GraphBuilder:
        if callable(self.builder):
            return self.builder
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)


GRAPH_BUILDERS: dict[str, GraphKind] = {
    "cnn": GraphKind("interp.analysis.causal.circuit:cnn_graph", "interp.analysis.causal.cnn_edges"),
    "transformer": GraphKind("interp.analysis.causal.transformer_edges:transformer_graph",
                             "interp.analysis.causal.transformer_edges"),
}
"""Each model kind's graph builder and edge scorers (:class:`GraphKind`)."""

TASK_KINDS = {"image-classification": "cnn", "language-model": "transformer"}


def model_kind(run: Any) -> str:
    """The key of :data:`GRAPH_BUILDERS` for a run: ``"cnn"`` for image classifiers."""
    task = getattr(getattr(run, "config", None), "task", None)
    kind = TASK_KINDS.get(task)
    if kind not in GRAPH_BUILDERS:
        have = ", ".join(t for t, k in TASK_KINDS.items() if k in GRAPH_BUILDERS)
        raise InterpError(f"circuit discovery has no graph for {task or type(run).__name__} models yet; "
                          f"it works on {have} runs")
    return kind


# -- scoring and choosing -----------------------------------------------------------------------


def score_edges(graph: CircuitGraph, method: str, *, scorers: str = "interp.analysis.causal.cnn_edges",
                steps: int = DEFAULT_STEPS) -> EdgeScores:
    """Every edge's score by ``method`` (one of :data:`~interp.analysis.causal.graph.METHODS`), with the
    functions of the ``scorers`` module (a :class:`GraphKind`'s).

    >>> score_edges(graph, "eap-ig", steps=8).method
    'eap-ig'
    """
    if method not in METHODS:
        raise unknown("method", method, METHODS)
    module = importlib.import_module(scorers)
    if method == "eap-ig":
        return module.eap_ig_scores(graph, steps=steps)
    return module.eap_scores(graph) if method == "eap" else module.patching_scores(graph)


def chosen_size(curve: FaithfulnessCurve, top: int | None) -> int:
    """``top`` when given; else the minimal size reaching the threshold; else the most faithful size."""
    if top is not None:
        return top
    if curve.minimal_size is not None:
        return curve.minimal_size
    best = max(range(len(curve.sizes)), key=lambda i: (curve.faithfulness[i], -curve.sizes[i]))
    return curve.sizes[best]


def _sizes(n_edges: int, sizes: Sequence[int] | None, top: int | None) -> list[int]:
    wanted = sorted({int(k) for k in (sizes or default_sizes(n_edges))} | ({top} if top else set()))
    bad = [k for k in wanted if not 1 <= k <= n_edges]
    if bad:
        raise InterpError(f"circuit size {bad[0]} is not in 1..{n_edges} (the graph has {n_edges} edges)")
    return wanted


def columns(graph: CircuitGraph) -> tuple[list[str], list[list[str]]]:
    """The graph's nodes by layer, inputs first: its own ``columns()`` when it has one, else the
    name before ``:`` (``conv2:5`` is in ``conv2``), ordered so every edge runs left to right."""
    if hasattr(graph, "columns"):
        layers, nodes = zip(*graph.columns())
        return list(layers), [list(n) for n in nodes]
    names = list(getattr(graph, "nodes", None) or dict.fromkeys(n for e in graph.edges for n in (e.source, e.target)))
    by_layer: dict[str, list[str]] = {}
    for node in names:
        by_layer.setdefault(node.split(":", 1)[0], []).append(node)
    links = {(e.source.split(":", 1)[0], e.target.split(":", 1)[0]) for e in graph.edges}
    depth = {layer: 0 for layer in by_layer}
    for _ in range(len(depth)):  # longest path from an input layer: one pass per layer is enough
        for source, target in links:
            depth[target] = max(depth[target], depth[source] + 1)
    layers = sorted(by_layer, key=lambda layer: depth[layer])
    return layers, [by_layer[layer] for layer in layers]


# -- the one call -------------------------------------------------------------------------------


def find_circuit(run: Any, *, method: str = "eap", metric: str | None = None, top: int | None = None,
                 sizes: Sequence[int] | None = None, n_random: int = 10, seed: int = 0, clean: Any = None,
                 corrupted: Any = "mean", n: int = DEFAULT_N, layers: Sequence[str] | None = None,
                 steps: int = DEFAULT_STEPS, threshold: float = THRESHOLD,
                 progress: Callable[[int, int], None] | None = None) -> CircuitResult:
    """Score every edge of the run's graph with ``method`` and keep a circuit judged against chance.

    ``clean`` / ``corrupted``: what the graph contrasts (for a CNN a class name or index, and a
    class, ``"mean"`` or ``"mean-image"``); ``metric=None``: the kind's default (a CNN:
    ``logit-diff`` against a corrupted class, else ``class-logit``). ``top``: the circuit's size
    (default: the minimal size reaching ``threshold``, else the most faithful size). ``sizes``:
    the curve's sizes (default: geometric from 1 to every edge, with ``top``). ``progress(done,
    total)`` follows the curve's metric evaluations.

    >>> find_circuit(run, method="patching", clean="circle", corrupted="mean", top=20).size
    20
    """
    if method not in METHODS:
        raise unknown("method", method, METHODS)
    if n_random < 1:
        raise InterpError(f"n_random must be at least 1 (a circuit is judged against random ones), got {n_random}")
    if top is not None and top < 1:
        raise InterpError(f"top must be at least 1 edge, got {top}")
    start = time.perf_counter()
    kind = model_kind(run)
    plugin = GRAPH_BUILDERS[kind]
    graph = plugin.build()(run, clean=clean, corrupted=corrupted, metric=metric, n=n, seed=seed, layers=layers)
    scores = score_edges(graph, method, scorers=plugin.scorers, steps=steps)
    curve_sizes = _sizes(len(graph.edges), sizes, top)
    try:
        curve = faithfulness_curve(graph, scores, sizes=curve_sizes, n_random=n_random, threshold=threshold,
                                   seed=seed, progress=progress)
    except ValueError as e:  # the full and the ablated model agree: say what to change
        raise InterpError(f"{e}; try another corrupted class or metric") from None
    size = chosen_size(curve, top)
    columns_ = columns(graph)
    settings = {"method": method, "metric": graph.metric_name, "top": top, "sizes": list(sizes) if sizes else None,
                "n_random": n_random, "seed": seed, "threshold": threshold, "clean": clean, "corrupted": corrupted,
                "n": n, "layers": list(layers) if layers else None, **({"steps": steps} if method == "eap-ig" else {}),
                "graph": dict(getattr(graph, "settings", {}))}
    return CircuitResult(run=getattr(run, "name", ""), model_kind=kind, layers=columns_[0], nodes=columns_[1],
                         scores=scores, curve=curve, size=size, edges=scores.top(size),
                         seconds=time.perf_counter() - start, settings=settings)
