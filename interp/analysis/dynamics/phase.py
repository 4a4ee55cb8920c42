"""Phase changes in a metric over training: where its rise is steepest, and whether it is abrupt.

The Induction Heads paper (Olsson et al., 2022) calls a change a phase change when it is
abrupt: most of the metric's change over training happens in a short stretch of it. Here,
on a metric measured at training checkpoints (and re-measured on bootstrap resamples of
the examples it averages over):

- the **steepest rise** is the checkpoint interval with the largest rise per unit of
  log-step (training time on the scale the default log-spaced checkpoints sample evenly);
- its **share**: the fraction of the metric's whole range (over training) gained in the three
  intervals around it, against the share a rise steady in log-step would put there;
- the **nulls**: the metric on re-initialised models of the same architecture. The change is
  real only when the trained model's best value is beyond every re-initialised model's and
  the jump is larger than the spread between re-initialised models.

>>> steps = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256]
>>> pc = detect_phase_change(steps, [0.1] * 7 + [0.8] * 3, null=[0.1, 0.12, 0.09])
>>> pc.status, pc.step
('phase change', 64)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch

PHASE_CHANGE = "phase change"
GRADUAL = "gradual"
NO_CHANGE = "no change"
INCONCLUSIVE = "inconclusive"
ABRUPT_FACTOR = 2.0
"""A phase change puts at least this many times the share of the change a steady rise would in its window ..."""
MOST = 0.5
"""... and most of the change (the paper's "most of the change happens in a short stretch")."""
WINDOW = 3
"""Intervals (around the steepest one) whose share of the change is measured."""


@dataclass
class PhaseChange:
    """Where a metric changes fastest over training, and whether the change is a phase change.

    ``status``: ``phase change`` (a real change, abrupt), ``gradual`` (real, spread out),
    ``no change`` (never beyond re-initialised models) or ``inconclusive`` (``reason`` says
    what would decide). ``step`` is the first checkpoint after the steepest interval
    (``index`` its position), ``interval`` the interval's two steps, ``step_ci`` a 95%
    interval of ``step`` over bootstrap resamples of the examples.
    """

    status: str
    reason: str
    step: int | None = None
    index: int | None = None
    interval: tuple[int, int] | None = None
    step_ci: tuple[int, int] | None = None
    share: float = float("nan")
    share_ci: tuple[float, float] = (float("nan"), float("nan"))
    steady_share: float = float("nan")
    jump: float = float("nan")
    jump_ci: tuple[float, float] = (float("nan"), float("nan"))
    peak: float = float("nan")
    peak_ci: tuple[float, float] = (float("nan"), float("nan"))
    null: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _steepest(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Index of the steepest interval of each row of ``y`` ``(R, n)`` over ``x`` ``(n,)``."""
    slope = (y[:, 1:] - y[:, :-1]) / (x[1:] - x[:-1]).clamp_min(1e-12)
    return slope.argmax(1)


def _window(i: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The checkpoints at the ends of the ``WINDOW`` intervals centred on interval ``i``."""
    a = (i - (WINDOW - 1) // 2).clamp(0, max(n - 1 - WINDOW, 0))
    return a, (a + WINDOW).clamp(max=n - 1)


def _ci(values: torch.Tensor) -> tuple[float, float]:
    lo, hi = torch.quantile(values.double(), torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return float(lo), float(hi)


def detect_phase_change(steps: Sequence[int], values: Sequence[float], replicates: torch.Tensor | None = None, *,
                        direction: int = 1, null: Sequence[float] | None = None, lift: float = 1.0) -> PhaseChange:
    """Find the steepest rise of ``values`` (``direction=-1``: the steepest fall, e.g. of a loss) over
    ``steps`` and say whether it is a phase change.

    ``replicates`` ``(R, n)``: the metric on bootstrap resamples of its examples (same resample
    at every checkpoint), for the intervals; ``null``: the metric on re-initialised models; ``lift``:
    how many times the best null a rising score must reach to count (head scores: 2, the head
    claims' rule; a 1-layer model's heads drift from 0.03 to 0.06 without any induction head).
    """
    steps = [int(s) for s in steps]
    n = len(steps)
    if n < WINDOW + 2:
        return PhaseChange(INCONCLUSIVE, f"{n} checkpoints are too few to locate a change; train with "
                                         f"--checkpoints log (about 30)")
    x = torch.log1p(torch.tensor(steps, dtype=torch.float64))
    y = direction * torch.as_tensor(values, dtype=torch.float64)[None]
    reps = direction * replicates.double() if replicates is not None else y
    null_y = [direction * float(v) for v in (null or [])]

    i = int(_steepest(x, y)[0])
    a, b = (int(v) for v in _window(torch.tensor([i]), n))
    span = float(y.max() - y.min())
    steady = float((x[b] - x[a]) / (x[-1] - x[0]))
    share = float(y[0, b] - y[0, a]) / span if span > 0 else 0.0
    ir = _steepest(x, reps)
    ar, br = _window(ir, n)
    rows = torch.arange(len(reps))
    jump_r = reps[rows, br] - reps[rows, ar]
    span_r = (reps.max(1).values - reps.min(1).values).clamp_min(1e-12)
    peak_at = int(y[0].argmax())
    result = PhaseChange(
        INCONCLUSIVE, "", step=steps[i + 1], index=i + 1, interval=(steps[i], steps[i + 1]),
        step_ci=tuple(int(steps[min(n - 1, int(round(q)) + 1)]) for q in _ci(ir.double())),
        share=share, share_ci=_ci(jump_r / span_r), steady_share=steady,
        jump=direction * float(y[0, b] - y[0, a]), jump_ci=_signed(_ci(jump_r), direction),
        peak=direction * float(y[0, peak_at]), peak_ci=_signed(_ci(reps[:, peak_at]), direction),
        null=[direction * v for v in null_y])
    at = f"steps {steps[a]}-{steps[b]}"
    # Real: the best value beyond every re-initialised model, by more than the resampling noise.
    peak_lo = direction * result.peak_ci[0] if direction > 0 else -result.peak_ci[1]
    best_null = max(null_y) if null_y else float(y[0, 0])
    if direction > 0 and best_null > 0:
        best_null *= lift
    if peak_lo <= best_null:
        result.status = NO_CHANGE
        result.reason = (f"its best value over training ({result.peak:.3g}) does not exceed "
                         + (f"{lift:g}x " if lift != 1 and direction > 0 else "")
                         + ("what re-initialised models give" if null_y else "the initialisation")
                         + f" ({direction * best_null:.3g})")
        return result
    null_spread = (max(null_y) - min(null_y)) if len(null_y) > 1 else 0.0
    jump_lo = float(_ci(jump_r)[0])
    share_lo, share_hi = result.share_ci
    need = max(MOST, ABRUPT_FACTOR * steady)
    summary = (f"{share:.0%} of its change [{share_lo:.0%}, {share_hi:.0%}] happens in {at}, where a change steady "
               f"in log-step would put {steady:.0%} (a phase change needs over {need:.0%})")
    if jump_lo > null_spread and share_lo > need:
        result.status = PHASE_CHANGE
        result.reason = f"{summary}: a phase change, steepest at step {steps[i + 1]}"
    elif share_hi < need:
        result.status = GRADUAL
        result.reason = f"{summary}: the change is spread over training, not a phase change"
    else:
        result.status = INCONCLUSIVE
        why = ("the jump is not larger than the spread between re-initialised models"
               if jump_lo <= null_spread else f"its interval straddles {need:.0%}")
        result.reason = (f"{summary}; {why}: more checkpoints around step {steps[i + 1]} (--checkpoints log:60) or "
                         f"more probe sequences would decide")
    return result


def _signed(ci: tuple[float, float], direction: int) -> tuple[float, float]:
    lo, hi = direction * ci[0], direction * ci[1]
    return (min(lo, hi), max(lo, hi))


def seed_spread(steps: Sequence[int | None]) -> dict:
    """Mean and a t-based 95% interval of phase-change steps over training seeds (None: that seed had none).

    >>> seed_spread([100, 120, 110])["mean"]
    110.0
    """
    found = [float(s) for s in steps if s is not None]
    out = {"seeds": len(steps), "with_change": len(found), "steps": list(steps)}
    if not found:
        return {**out, "mean": None, "ci": None}
    mean = sum(found) / len(found)
    if len(found) < 2:
        return {**out, "mean": mean, "ci": None}
    from scipy import stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in found) / (len(found) - 1))
    half = float(stats.t.ppf(0.975, len(found) - 1)) * sd / math.sqrt(len(found))
    return {**out, "mean": mean, "ci": (mean - half, mean + half)}
