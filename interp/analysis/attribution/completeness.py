"""Completeness of Integrated Gradients: do the attributions add up to the change in the output?

``sum(IG) = f(x) - f(baseline)`` for the target (Sundararajan et al., 2017).
:func:`ig_completeness` reports both sides and the relative error;
:func:`~interp.analysis.attribution.attribute.attribute` attaches it to every IG result,
and the trust checks (:mod:`interp.analysis.attribution.trust`) report it first. A
large error means too few ``steps``.

>>> c = ig_completeness(model, x, torch.zeros_like(x), targets, ig_maps)
>>> c.max_relative_error < 0.05
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...hooks import eval_mode


@dataclass
class Completeness:
    """Both sides of IG's completeness axiom, per image."""

    attribution_sum: torch.Tensor
    """(N,) the sum of each IG map."""
    output_difference: torch.Tensor
    """(N,) f(x)[target] - f(baseline)[target], on the model's output (logits)."""

    @property
    def delta(self) -> torch.Tensor:
        return self.attribution_sum - self.output_difference

    @property
    def relative_error(self) -> torch.Tensor:
        """|sum - difference| / |difference| (the difference floored at 1e-6)."""
        return self.delta.abs() / self.output_difference.abs().clamp_min(1e-6)

    @property
    def max_relative_error(self) -> float:
        return float(self.relative_error.max())

    def ok(self, tolerance: float = 0.01) -> bool:
        return self.max_relative_error <= tolerance

    def row(self, i: int) -> dict:
        return {"attribution_sum": float(self.attribution_sum[i]),
                "output_difference": float(self.output_difference[i]),
                "relative_error": float(self.relative_error[i])}

    def subset(self, idx: torch.Tensor) -> "Completeness":
        return Completeness(self.attribution_sum[idx], self.output_difference[idx])

    def to_dict(self) -> dict:
        return {"attribution_sum": self.attribution_sum.tolist(),
                "output_difference": self.output_difference.tolist(),
                "relative_error": self.relative_error.tolist(),
                "max_relative_error": self.max_relative_error}

    @classmethod
    def from_dict(cls, d: dict) -> "Completeness":
        return cls(torch.tensor(d["attribution_sum"], dtype=torch.float64),
                   torch.tensor(d["output_difference"], dtype=torch.float64))


def ig_completeness(model: nn.Module, inputs: torch.Tensor, baselines: torch.Tensor, targets: torch.Tensor,
                    attributions: torch.Tensor) -> Completeness:
    """Compare the sum of IG ``attributions`` with ``f(inputs) - f(baselines)`` for ``targets``.

    >>> c = ig_completeness(model, x, torch.zeros_like(x), targets, ig_maps)
    >>> c.relative_error  # one value per image
    """
    device = inputs.device
    idx = torch.arange(len(inputs), device=device)
    t = targets.to(device)
    with eval_mode(model), torch.no_grad():
        difference = model(inputs)[idx, t] - model(baselines.to(device))[idx, t]
    total = attributions.to(device).flatten(1).sum(1)
    return Completeness(total.double().cpu(), difference.double().cpu())

