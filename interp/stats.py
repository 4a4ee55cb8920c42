"""The statistics behind verdicts: null quantiles, bootstrap intervals, binomial tails, headlines,
chance accuracy, and circular statistics of angles (gaps, matching two sets of angles).

Every verdict compares its headline number with a null that could produce the pattern by
chance, and carries a bootstrap interval for that number (:func:`headline`).

>>> lo, hi = bootstrap_ci(torch.tensor([0.9, 0.8, 0.95, 0.7]), seed=0)
>>> headline("induction score of L1H0", 0.84, (lo, hi), null=0.12, n=64, over="sequences")
"""

from __future__ import annotations

import math
from typing import Callable

import torch

NULL_LEVEL = 0.99
"""A draw from the null passes a null threshold with probability 1 - NULL_LEVEL."""
BOOTSTRAP_DRAWS = 1000


def gumbel_quantile(maxima: list[float], level: float = NULL_LEVEL) -> float:
    """The ``level`` quantile of a Gumbel (the limit law of maxima) fitted by moments to ``maxima``,
    never below the largest one seen; ``nan`` when there are none.

    >>> round(gumbel_quantile([0.1, 0.12, 0.11, 0.13]), 3)
    0.155
    """
    m = torch.tensor([v for v in maxima if math.isfinite(v)], dtype=torch.float64)
    if len(m) == 0:
        return float("nan")
    if len(m) < 2:
        return float(m.max())
    beta = float(m.std()) * math.sqrt(6) / math.pi
    mu = float(m.mean()) - 0.5772156649 * beta
    return max(mu - beta * math.log(-math.log(level)), float(m.max()))


def bootstrap_ci(values: torch.Tensor, statistic: Callable[[torch.Tensor], torch.Tensor] | None = None, *,
                 level: float = 0.95, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` (default the mean) over the first axis of ``values``.

    ``statistic`` maps a resampled tensor ``(draws, n, ...)`` to ``(draws,)``; seeded, so
    the same data give the same interval.

    >>> bootstrap_ci(torch.ones(10))
    (1.0, 1.0)
    """
    values = torch.as_tensor(values, dtype=torch.float64)
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(n, (draws, n), generator=g)
    resampled = values[idx]
    stats = statistic(resampled) if statistic is not None else resampled.reshape(draws, n, -1).mean((1, 2))
    alpha = (1 - level) / 2
    q = torch.quantile(stats.double(), torch.tensor([alpha, 1 - alpha], dtype=torch.float64))
    return float(q[0]), float(q[1])


def binomial_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``: how often chance alone gives k or more successes.

    >>> round(binomial_tail(2, 2, 0.5), 3)
    0.25
    """
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    logs = [math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * math.log(p)
            + (n - j) * math.log1p(-p) for j in range(k, n + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def headline(name: str, value: float, ci: tuple[float, float], *, null: float | None, n: int, over: str,
             null_what: str = "", level: float | None = NULL_LEVEL, extra: dict | None = None) -> dict:
    """The number a verdict turns on, as the claims page shows it: value, 95% CI, null quantile.

    ``null``: the null's ``level`` quantile it is compared to (None where the claim's
    comparison is not with a null quantile; ``level`` 1.0 for the null's maximum, None
    for a single null value); ``n`` and ``over``: what the interval resamples
    (``64 sequences``, ``16 units``, ``1000 images``).
    """
    def r(x):
        return None if x is None or not math.isfinite(x) else float(f"{x:.4g}")

    return {"name": name, "value": r(value), "ci_low": r(ci[0]), "ci_high": r(ci[1]), "ci_level": 0.95,
            "null_quantile": r(null), "null_level": level if null is not None else None, "null": null_what,
            "n": int(n), "over": over, **(extra or {})}


def chance_level(labels: torch.Tensor, n_classes: int) -> float:
    """The accuracy of always guessing the most frequent class (at least ``1 / n_classes``).

    >>> chance_level(torch.tensor([0, 0, 0, 1]), 2)
    0.75
    """
    return max(torch.bincount(labels, minlength=n_classes).float().max().item() / max(len(labels), 1),
               1 / n_classes)


def chance_quantile(n: int, chance: float, level: float = NULL_LEVEL) -> float:
    """The accuracy that guessing at ``chance`` exceeds with probability ``1 - level`` on ``n`` images.

    >>> chance_quantile(100, 0.5)
    0.63
    """
    k = next((k for k in range(int(n * chance), n + 1) if binomial_tail(k, n, chance) <= 1 - level), n)
    return k / max(n, 1)


# -------------------------------------------------------------------------- angles


def largest_gap(orientations: torch.Tensor, period: float = 180.0) -> float:
    """The largest circular gap between sorted angles (mod ``period``).

    >>> largest_gap(torch.tensor([0.0, 60.0, 120.0]))
    60.0
    """
    if len(orientations) == 0:
        return period
    a = torch.sort(torch.remainder(orientations, period)).values
    gaps = torch.diff(torch.cat([a, a[:1] + period]))
    return float(gaps.max())


def circular_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - b`` wrapped to [-180, 180) degrees.

    >>> circular_difference(torch.tensor(10.0), torch.tensor(350.0))
    tensor(20.)
    """
    return torch.remainder(a - b + 180.0, 360.0) - 180.0


def fit_angle_mapping(ours: torch.Tensor, published: torch.Tensor) -> tuple[int, float, float]:
    """The reflection ``sign`` and rotation ``offset`` minimising the median circular error of
    ``published ~ sign * ours + offset``; returns ``(sign, offset, median |error|)``."""
    best = (1, 0.0, float("inf"))
    offsets = torch.arange(0.0, 360.0, 1.0)
    for sign in (1, -1):
        err = circular_difference(published[None, :], sign * ours[None, :] + offsets[:, None]).abs()  # (360, n)
        med = err.median(1).values
        i = int(med.argmin())
        if float(med[i]) < best[2]:
            best = (sign, float(offsets[i]), float(med[i]))
    return best


def angle_match(ours: torch.Tensor, published: torch.Tensor, *, permutations: int = 500, seed: int = 0) -> dict:
    """Fit the mapping (:func:`fit_angle_mapping`), then compare its error with that of shuffled
    published angles: a permutation test of the unit-by-unit match, which a fitted rotation
    alone cannot pass.

    >>> m = angle_match(ours, (90 - ours) % 360)   # published = -ours + 90: a reflection and a rotation
    >>> m["sign"], m["offset"], m["median_error"]
    (-1, 90.0, 0.0)
    """
    sign, offset, err = fit_angle_mapping(ours, published)
    g = torch.Generator().manual_seed(seed)
    worse = 0
    for _ in range(permutations):
        shuffled = published[torch.randperm(len(published), generator=g)]
        if fit_angle_mapping(ours, shuffled)[2] <= err:
            worse += 1
    return {"sign": sign, "offset": offset, "median_error": err, "p_value": (worse + 1) / (permutations + 1)}
