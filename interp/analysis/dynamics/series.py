"""Metrics over training: one :class:`MetricSeries` per metric, with intervals, nulls and the phase change.

>>> series = build_series(metrics, points, probe, steps, null_points=nulls)
>>> series["induction"].phase.status
'phase change'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .phase import PhaseChange, detect_phase_change
from .points import Metric, Point

BOOTSTRAP = 200


@dataclass
class MetricSeries:
    """One metric at every checkpoint: value, 95% bootstrap interval over the probe's examples (None where the
    metric reads only weights), its value on re-initialised models (``null``), and the phase change."""

    name: str
    title: str
    direction: int
    values: list[float]
    ci: list[tuple[float, float]] | None
    null: list[float]
    phase: PhaseChange


@dataclass
class Dynamics:
    """A run's analyses at every training checkpoint (``interp dynamics``; saved by :mod:`interp.results.dynamics`).

    ``heads[score]``: ``(n_checkpoints, L, H)`` head scores (transformers); ``units[layer]``:
    ``(n_checkpoints, units)`` class selectivity (CNNs); ``claims``: per claim its verdict and
    headline at every checkpoint and the first step it is supported from then on; ``seeds``:
    per training seed the phase-change step of each metric (``seed_summary``: mean and CI);
    ``coincide``: checkpoints between the phase changes of metric pairs.
    """

    run: str
    kind: str
    steps: list[int]
    epochs: list[float]
    seconds: list[float]
    series: dict[str, MetricSeries]
    heads: dict[str, torch.Tensor] = field(default_factory=dict)
    units: dict[str, torch.Tensor] = field(default_factory=dict)
    claims: list[dict] = field(default_factory=list)
    seeds: list[dict] = field(default_factory=list)
    seed_summary: dict[str, dict] = field(default_factory=dict)
    coincide: dict[str, int | None] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    elapsed: float = 0.0
    """Seconds the analysis took (the points it reused from the store cost nothing)."""

    def phase_steps(self) -> dict[str, int | None]:
        """Each metric's phase-change step (None where the metric has no phase change)."""
        return {name: s.phase.step if s.phase.status == "phase change" else None for name, s in self.series.items()}


def resamples(n: int, count: int = BOOTSTRAP, *, seed: int = 0) -> torch.Tensor:
    """``(count, n)`` bootstrap indices of ``n`` examples, shared by every checkpoint of a series."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (count, n), generator=g)


def build_series(metrics: dict[str, Metric], points: list[Point], probe, steps: list[int], *,
                 null_points: list[Point] = (), n_boot: int = BOOTSTRAP, seed: int = 0) -> dict[str, MetricSeries]:
    """Every metric at every checkpoint, with its bootstrap interval, null values and phase change."""
    idx = resamples(probe.n, n_boot, seed=seed)
    out = {}
    for name, metric in metrics.items():
        values = [metric.value(p, probe) for p in points]
        if any(math.isnan(v) for v in values):
            continue
        null = [metric.value(p, probe) for p in null_points]
        reps = None
        ci = None
        if metric.resampled:
            reps = torch.tensor([[metric.value(p, probe, i) for p in points] for i in idx])  # (R, n_checkpoints)
            q = torch.quantile(reps.double(), torch.tensor([0.025, 0.975], dtype=torch.float64), dim=0)
            ci = [(float(lo), float(hi)) for lo, hi in zip(q[0], q[1])]
        phase = detect_phase_change(steps, values, reps, direction=metric.direction, null=null,
                                    lift=metric.lift)
        out[name] = MetricSeries(name, metric.title, metric.direction, values, ci, null, phase)
    return out


def coincidence(series: dict[str, MetricSeries], pairs: list[tuple[str, str]]) -> dict[str, int | None]:
    """Checkpoints between the steepest changes of each pair of metrics (None unless both are phase changes).

    >>> coincidence(series, [("induction", "icl")])
    {'induction~icl': 1}
    """
    out = {}
    for a, b in pairs:
        if a in series and b in series:
            pa, pb = series[a].phase, series[b].phase
            both = pa.status == pb.status == "phase change"
            out[f"{a}~{b}"] = abs(pa.index - pb.index) if both else None
    return out
