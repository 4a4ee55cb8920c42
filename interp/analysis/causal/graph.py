"""The objects every circuit method shares: edges, their scores, and the graph protocol.

A model kind plugs into circuit discovery by offering a :class:`CircuitGraph`: its edges
and the metric of the model when only some edges carry their clean values (every other
edge carries its mean over a reference batch: mean ablation). Scoring methods return
:class:`EdgeScores`; :func:`interp.analysis.causal.discovery.faithfulness_curve` works on
any graph.

>>> scores.top(3)                 # the three edges with the largest |score|
[Edge('L0H1', 'L1H2.k'), ...]
>>> graph.metric(kept=None)       # per-example metric of the full model, shape (B,)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Protocol, runtime_checkable

import torch

METHODS = ("patching", "eap", "eap-ig")


@dataclass(frozen=True, order=True)
class Edge:
    """A directed edge from the node that writes (``source``) to the node that reads (``target``).

    Targets of attention heads may name the input they read: ``L1H2.q``, ``L1H2.k``, ``L1H2.v``.
    """

    source: str
    target: str

    def __repr__(self) -> str:
        return f"Edge({self.source!r}, {self.target!r})"

    def __str__(self) -> str:
        return f"{self.source}->{self.target}"

    @classmethod
    def parse(cls, text: str) -> "Edge":
        source, sep, target = text.partition("->")
        if not sep or not source or not target:
            raise ValueError(f"not an edge: {text!r} (expected SOURCE->TARGET, e.g. conv1:3->conv2:5)")
        return cls(source, target)


@dataclass
class EdgeScores:
    """One score per edge: the estimated change of the metric when the edge is patched from
    clean to corrupted (sign kept: negative edges lower the metric)."""

    edges: list[Edge]
    scores: torch.Tensor  # (n_edges,)
    method: str
    metric: str
    seconds: float = float("nan")
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.edges) != len(self.scores):
            raise ValueError(f"{len(self.edges)} edges but {len(self.scores)} scores")

    def order(self) -> torch.Tensor:
        """Edge indices by decreasing |score| (ties broken by edge order, so the ranking is stable)."""
        return torch.argsort(self.scores.abs(), descending=True, stable=True)

    def top(self, k: int) -> list[Edge]:
        return [self.edges[i] for i in self.order()[:k].tolist()]

    def as_dict(self) -> dict[Edge, float]:
        return {e: float(s) for e, s in zip(self.edges, self.scores)}

    def rows(self) -> list[dict]:
        return [{"edge": str(self.edges[i]), "source": self.edges[i].source, "target": self.edges[i].target,
                 "score": float(self.scores[i])} for i in self.order().tolist()]


@runtime_checkable
class CircuitGraph(Protocol):
    """What circuit discovery needs from a model kind (CNN or transformer)."""

    edges: list[Edge]
    metric_name: str

    def metric(self, kept: Collection[Edge] | None) -> torch.Tensor:
        """Per-example metric ``(B,)`` on the clean inputs when only ``kept`` edges carry clean
        values and every other edge is mean-ablated; ``None``: the full model, no ablation."""
        ...
