"""Circuit discovery: keep the top-k edges by score, and judge the circuit against chance.

Faithfulness of a circuit C (everything outside it mean-ablated), as MIB and Conmy et al.
normalise it: ``(m(C) - m(empty)) / (m(full) - m(empty))``: 1 when the circuit alone
recovers the full model's metric, 0 when it does no better than ablating every edge. A
plain ``m(C) / m(full)`` would call a loss-metric circuit faithful when the ablated model
already has most of the loss. The curve over k is drawn next to the band of random
circuits of the same size (``n_random`` seeded draws), the null a top-k circuit must beat;
the minimal circuit is the smallest k whose faithfulness reaches ``threshold``, with a
bootstrap CI over the examples.

>>> curve = faithfulness_curve(graph, scores, n_random=10)
>>> curve.minimal_size, curve.faithfulness[curve.sizes.index(curve.minimal_size)]
(12, 0.86)
>>> curve.random_high      # 95% quantile of random circuits at each size
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from ...stats import bootstrap_ci
from .graph import CircuitGraph, Edge, EdgeScores

THRESHOLD = 0.8


@dataclass
class FaithfulnessCurve:
    """Faithfulness of the top-k circuits and of random circuits of the same sizes."""

    sizes: list[int]
    faithfulness: list[float]            # top-k circuit, per size
    ci: list[tuple[float, float]]        # bootstrap 95% CI over examples, per size
    random: list[list[float]]            # per size, one value per random draw
    full_metric: float
    empty_metric: float
    n_edges: int
    n_examples: int
    method: str
    metric: str
    threshold: float = THRESHOLD
    minimal_size: int | None = None      # smallest size reaching the threshold; None if none does
    minimal_edges: list[Edge] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def random_mean(self) -> list[float]:
        return [sum(r) / len(r) if r else float("nan") for r in self.random]

    @property
    def random_high(self) -> list[float]:
        """The 95% quantile of the random circuits at each size (the band's top)."""
        return [float(torch.tensor(r).quantile(0.95)) if r else float("nan") for r in self.random]

    def at(self, size: int) -> dict:
        i = self.sizes.index(size)
        return {"size": size, "faithfulness": self.faithfulness[i], "ci": self.ci[i],
                "random_mean": self.random_mean[i], "random_high": self.random_high[i]}

    def rows(self) -> list[dict]:
        return [{"size": k, "faithfulness": f, "ci_low": c[0], "ci_high": c[1], "random_mean": m, "random_high": h}
                for k, f, c, m, h in zip(self.sizes, self.faithfulness, self.ci, self.random_mean, self.random_high)]


def default_sizes(n_edges: int, points: int = 24) -> list[int]:
    """Circuit sizes from 1 edge to all of them, spaced geometrically (small circuits matter most)."""
    if n_edges <= points:
        return list(range(1, n_edges + 1))
    sizes = {max(1, round(math.exp(math.log(n_edges) * i / (points - 1)))) for i in range(points)}
    return sorted(sizes | {n_edges})


def _ratio(full: torch.Tensor, empty: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The faithfulness statistic on a bootstrap resample of examples: ratio of mean differences."""
    def statistic(resampled: torch.Tensor) -> torch.Tensor:  # (draws, n, 3): circuit, full, empty
        m = resampled.mean(1)
        return (m[:, 0] - m[:, 2]) / (m[:, 1] - m[:, 2])
    return statistic


def faithfulness_curve(graph: CircuitGraph, scores: EdgeScores, *, sizes: Sequence[int] | None = None,
                       n_random: int = 10, threshold: float = THRESHOLD, seed: int = 0,
                       progress: Callable[[int, int], None] | None = None) -> FaithfulnessCurve:
    """Faithfulness of the top-k edges of ``scores`` for each k in ``sizes``, beside ``n_random``
    random circuits of each size. ``progress(done, total)`` is called after each metric evaluation."""
    edges = list(graph.edges)
    index = {e: i for i, e in enumerate(edges)}
    missing = [e for e in scores.edges if e not in index]
    if missing:
        raise ValueError(f"{len(missing)} scored edges are not in the graph, e.g. {missing[0]}")
    if n_random < 1:
        raise ValueError("n_random must be at least 1: a circuit is judged against random circuits of its size")
    sizes = sorted({int(k) for k in (sizes or default_sizes(len(edges)))})
    if not sizes or sizes[0] < 1 or sizes[-1] > len(edges):
        raise ValueError(f"circuit sizes must lie in 1..{len(edges)}, got {sizes}")
    ranked = scores.top(len(scores.edges))
    total, done = 2 + len(sizes) * (1 + n_random), 0

    def evaluate(kept):
        nonlocal done
        value = graph.metric(kept).detach().double().cpu()
        done += 1
        if progress:
            progress(done, total)
        return value

    full, empty = evaluate(None), evaluate([])
    if not torch.isfinite(full.mean() - empty.mean()) or abs(float(full.mean() - empty.mean())) < 1e-9:
        raise ValueError("the full model and the fully ablated one have the same metric: "
                         "faithfulness is undefined (is the corrupted input different from the clean one?)")
    g = torch.Generator().manual_seed(seed)
    statistic = _ratio(full, empty)
    faith, cis, random = [], [], []
    for k in sizes:
        circuit = evaluate(ranked[:k])
        stacked = torch.stack([circuit, full, empty], 1)
        faith.append(float(statistic(stacked[None])[0]))
        cis.append(bootstrap_ci(stacked, statistic, seed=seed))
        draws = []
        for _ in range(n_random):
            pick = torch.randperm(len(edges), generator=g)[:k].tolist()
            value = evaluate([edges[i] for i in pick])
            draws.append(float((value.mean() - empty.mean()) / (full.mean() - empty.mean())))
        random.append(draws)
    minimal = next((k for k, f in zip(sizes, faith) if f >= threshold), None)
    return FaithfulnessCurve(
        sizes=sizes, faithfulness=faith, ci=cis, random=random, full_metric=float(full.mean()),
        empty_metric=float(empty.mean()), n_edges=len(edges), n_examples=len(full), method=scores.method,
        metric=scores.metric, threshold=threshold, minimal_size=minimal,
        minimal_edges=ranked[:minimal] if minimal else [],
        settings={"n_random": n_random, "seed": seed, **scores.settings})


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """0-based ranks of ``values`` (float64), ties sharing their mean rank.

    >>> average_ranks(torch.tensor([3.0, 1.0, 3.0]))
    tensor([1.5000, 0.0000, 1.5000], dtype=torch.float64)
    """
    _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
    last = torch.cumsum(counts, 0).double()  # 1-based position of each distinct value's last copy
    return (last - (counts.double() - 1) / 2 - 1)[inverse]


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman correlation of two equally long vectors (ties by average rank); NaN when either is constant."""
    rx, ry = average_ranks(x.double()), average_ranks(y.double())
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(rx.norm() * ry.norm())
    return float((rx * ry).sum()) / denominator if denominator else float("nan")


def rank_correlation(a: EdgeScores, b: EdgeScores) -> float:
    """Spearman correlation of two methods' scores over their common edges (ties by average rank)."""
    da, db = a.as_dict(), b.as_dict()
    common = [e for e in a.edges if e in db]
    if len(common) < 2:
        return float("nan")
    return spearman(torch.tensor([da[e] for e in common], dtype=torch.float64),
                    torch.tensor([db[e] for e in common], dtype=torch.float64))
