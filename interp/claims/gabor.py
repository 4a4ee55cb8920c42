"""Gabor fits of conv filters and their families (Gabor, colour contrast, other).

:func:`fit_gabors` fits ``colour x Gabor`` to every filter at once: a grid search whose
phase is solved analytically, then a few Adam steps on all filters together, the colour
weights being solved exactly by least squares. :func:`first_layer_families` classifies
a layer's filters with an R^2 threshold taken from random filters of the same shape.

Angles: degrees counter-clockwise from +x, y up (:mod:`interp.claims.stimuli`).

>>> fits = fit_gabors(run.model.conv1.weight)
>>> fits.r2, fits.orientation
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

@dataclass
class GaborFits:
    """The best Gabor fit of each filter (tensors over filters).

    The fitted filter is ``colour[c] * g(x, y)`` with ``g`` a Gabor of wave-vector
    direction ``theta`` (degrees, counter-clockwise, y up), frequency ``freq`` (cycles per
    pixel), ``phase`` (degrees), envelope ``sigma`` (pixels) centred at ``(x0, y0)``
    (pixels from the kernel centre, y up). ``r2``: fraction of the filter's energy the
    fit explains. ``orientation``: the direction the bars run (``theta + 90``, mod 180).
    ``osi``: orientation selectivity of the fitted Gabor's power spectrum (0 a round blob,
    1 a perfectly oriented pattern). ``luminance``: share of the colour vector along
    (1, 1, 1); ``opponency``: how much the colour weights have both signs (0 one-signed,
    0.5 balanced).
    """

    theta: torch.Tensor
    freq: torch.Tensor
    phase: torch.Tensor
    sigma: torch.Tensor
    x0: torch.Tensor
    y0: torch.Tensor
    colour: torch.Tensor
    r2: torch.Tensor
    osi: torch.Tensor
    luminance: torch.Tensor
    opponency: torch.Tensor
    fitted: torch.Tensor

    @property
    def orientation(self) -> torch.Tensor:
        return torch.remainder(self.theta + 90.0, 180.0)

    def __len__(self) -> int:
        return len(self.r2)


def _kernel_xy(k: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    c = torch.arange(k, dtype=torch.float32, device=device) - (k - 1) / 2
    y, x = torch.meshgrid(-c, c, indexing="ij")  # y up: row 0 is the top
    return x, y


def gabor_kernels(params: torch.Tensor, k: int) -> torch.Tensor:
    """Gabor patterns ``(N, k, k)`` from ``params (N, 6)``: theta (radians), freq, phase (radians), sigma, x0, y0.

    >>> gabor_kernels(torch.tensor([[0.0, 0.25, 0.0, 1.5, 0.0, 0.0]]), 5).shape
    torch.Size([1, 5, 5])
    """
    x, y = _kernel_xy(k, params.device)
    theta, freq, phase, sigma, x0, y0 = (t[:, None, None] for t in params.unbind(-1))
    dx, dy = x - x0, y - y0
    u = dx * torch.cos(theta) + dy * torch.sin(theta)
    envelope = torch.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
    return envelope * torch.cos(2 * math.pi * freq * u + phase)


def _gabor_grid(k: int) -> torch.Tensor:
    """Start values (N, 6) with phase 0: the phase is searched analytically (:func:`_grid_search`)."""
    thetas = torch.arange(16) * (math.pi / 16)
    freqs = torch.tensor([0.0, 0.06, 0.11, 0.16, 0.22, 0.29, 0.37, 0.46])
    sigmas = torch.tensor([0.12, 0.18, 0.27, 0.4]) * k
    r = (k - 1) / 4
    offsets = torch.tensor([-r, 0.0, r])
    zero = torch.zeros(1)
    mesh = torch.meshgrid(thetas, freqs, zero, sigmas, offsets, offsets, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1)


PHASES_GRID = tuple(i * math.pi / 8 for i in range(8))


def _grid_search(W: torch.Tensor, total: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best grid Gabor per filter: ``(energy fraction, params)``.

    A Gabor of phase p is ``cos(p) G_c - sin(p) G_s`` (the even and odd patterns), so
    projections on the two patterns give the fit at every phase without new templates.
    """
    grid = _gabor_grid(k)
    n = len(W)
    best = torch.full((n,), -1.0)
    best_params = torch.zeros(n, 6)
    for start in range(0, len(grid), 2048):
        chunk = grid[start:start + 2048]
        odd = chunk.clone()
        odd[:, 2] = math.pi / 2  # cos(u + pi/2) = -sin(u)
        gc, gs = gabor_kernels(chunk, k).flatten(1), -gabor_kernels(odd, k).flatten(1)
        a = torch.einsum("fcp,np->fcn", W, gc)
        b = torch.einsum("fcp,np->fcn", W, gs)
        cc, ss, cs = gc.pow(2).sum(1), gs.pow(2).sum(1), (gc * gs).sum(1)
        for phase in PHASES_GRID:
            c, s = math.cos(phase), math.sin(phase)
            num = (a * c - b * s).pow(2).sum(1)
            den = (cc * c * c - 2 * cs * c * s + ss * s * s).clamp_min(1e-8)
            energy = num / den / total[:, None]
            value, idx = energy.max(1)
            better = value > best
            if better.any():
                best = torch.where(better, value, best)
                params = chunk[idx].clone()
                params[:, 2] = phase
                best_params = torch.where(better[:, None], params, best_params)
    return best, best_params


def orientation_selectivity(kernels: torch.Tensor, pad: int = 32) -> torch.Tensor:
    """How oriented each 2-D pattern ``(N, k, k)`` is: ``|sum P e^{2i angle}| / sum P`` over its power spectrum P.

    >>> round(float(orientation_selectivity(torch.ones(1, 5, 5))), 3)  # flat: no orientation
    0.0
    """
    P = torch.fft.fft2(kernels.float(), s=(pad, pad)).abs().pow(2)
    P[:, 0, 0] = 0.0
    f = torch.fft.fftfreq(pad)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    angle = torch.atan2(fy, fx)
    num = torch.complex((P * torch.cos(2 * angle)).sum((1, 2)), (P * torch.sin(2 * angle)).sum((1, 2))).abs()
    return torch.nan_to_num(num / P.sum((1, 2)), nan=0.0)


def _explained(W: torch.Tensor, params: torch.Tensor, total: torch.Tensor, k: int):
    g = gabor_kernels(params, k).reshape(len(params), -1)
    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-8)
    colour = torch.einsum("fcp,fp->fc", W, g)  # least-squares colour weights for a unit-norm pattern
    return colour.pow(2).sum(1) / total, colour, g


def fit_gabors(weights: torch.Tensor, *, steps: int = 80) -> GaborFits:
    """Fit ``colour x Gabor`` to each filter ``weights (F, C, k, k)``: grid search, then gradient refinement.

    A grid of 36,864 Gabors (16 orientations x 8 frequencies x 8 phases x 4 widths x 9
    centres) gives each filter a start; Adam then refines the six Gabor parameters of all
    filters at once, the colour weights being solved exactly (least squares) at each step.

    >>> fits = fit_gabors(run.model.conv1.weight)
    >>> fits.r2            # fraction of each filter's energy explained
    """
    W = weights.detach().float().cpu()
    n, C, k, _ = W.shape
    W = W.reshape(n, C, k * k)
    total = W.pow(2).sum((1, 2)).clamp_min(1e-12)
    start_r2, start = _grid_search(W, total, k)
    lo = torch.tensor([-math.inf, 0.0, -math.inf, 0.35, -(k - 1) / 2, -(k - 1) / 2])
    hi = torch.tensor([math.inf, 0.5, math.inf, float(k), (k - 1) / 2, (k - 1) / 2])
    params = start.clone()
    m, v = torch.zeros_like(params), torch.zeros_like(params)
    lr, b1, b2 = 0.02, 0.9, 0.999
    with torch.enable_grad():  # plain Adam written out: torch.optim costs seconds of imports
        for step in range(1, steps + 1):
            p = params.detach().requires_grad_(True)
            r2, _, _ = _explained(W, p, total, k)
            (grad,) = torch.autograd.grad(-r2.sum(), p)
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * grad * grad
            step_size = lr * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
            params = torch.maximum(torch.minimum(params - step_size * m / (v.sqrt() + 1e-8), hi), lo)
    r2, colour, g = _explained(W, params, total, k)
    worse = r2 < start_r2  # refinement must never lose to its start
    if bool(worse.any()):
        params = torch.where(worse[:, None], start, params)
        r2, colour, g = _explained(W, params, total, k)
    # One sign convention: the colour vector's sum is positive (the pattern absorbs the sign).
    sign = torch.where(colour.sum(1) < 0, -1.0, 1.0)
    colour, g = colour * sign[:, None], g * sign[:, None]
    pos, neg = colour.clamp_min(0).sum(1), (-colour).clamp_min(0).sum(1)
    luminance = colour.sum(1).pow(2) / (C * colour.pow(2).sum(1)).clamp_min(1e-12) if C > 1 else torch.ones(n)
    theta, freq, phase, sigma, x0, y0 = params.unbind(1)
    # Report theta in [0, 180): theta + 180 is the same Gabor with the phase negated.
    flip = torch.remainder(theta, 2 * math.pi) >= math.pi
    theta = torch.remainder(theta, math.pi)
    phase = torch.where(flip, -phase, phase)
    return GaborFits(
        theta=torch.rad2deg(theta), freq=freq, phase=torch.remainder(torch.rad2deg(phase), 360.0), sigma=sigma,
        x0=x0, y0=y0, colour=colour, r2=r2, osi=orientation_selectivity(g.reshape(n, k, k)),
        luminance=luminance, opponency=torch.minimum(pos, neg) / (pos + neg).clamp_min(1e-12),
        fitted=(colour[:, :, None] * g[:, None, :]).reshape(n, C, k, k),
    )


R2_FLOOR = 0.5
OSI_GABOR = 0.3
LUMINANCE_OPPONENT = 0.5
OPPONENCY_MIN = 0.15
FAMILIES = ("gabor", "colour contrast", "other")


def gabor_families(fits: GaborFits, r2_threshold: float) -> list[str]:
    """Family of each filter: ``gabor``, ``colour contrast`` or ``other``.

    - structured: the colour x Gabor fit explains at least ``r2_threshold`` of the energy;
    - colour contrast: structured, and the colour weights oppose each other (luminance
      share < 0.5 and opponency >= 0.15): one colour against another;
    - gabor: structured, not colour-opponent, and oriented (spectral OSI >= 0.3: a
      round blob is not a Gabor);
    - other: the rest.
    """
    out = []
    C = fits.colour.shape[1]
    for i in range(len(fits)):
        structured = float(fits.r2[i]) >= r2_threshold
        opponent = C >= 3 and float(fits.luminance[i]) < LUMINANCE_OPPONENT and float(fits.opponency[i]) >= OPPONENCY_MIN
        if structured and opponent:
            out.append("colour contrast")
        elif structured and float(fits.osi[i]) >= OSI_GABOR:
            out.append("gabor")
        else:
            out.append("other")
    return out


def null_filters(shape: tuple[int, ...], n: int = 512, seed: int = 0) -> torch.Tensor:
    """``n`` filters of a conv layer's kernel shape ``(C, k, k)`` drawn with PyTorch's default conv init."""
    C, k = shape[0], shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        conv = nn.Conv2d(C, n, k)
    return conv.weight.detach()


@dataclass
class FirstLayerFamilies:
    """Gabor fits and families of a first conv layer, with the null that set the threshold."""

    layer: str
    fits: GaborFits
    families: list[str]
    r2_threshold: float
    null_r2: torch.Tensor
    null_rate: float
    """Fraction of null filters classified gabor or colour contrast with the same thresholds."""

    def fractions(self) -> dict[str, float]:
        n = max(len(self.families), 1)
        return {f: sum(x == f for x in self.families) / n for f in FAMILIES}


_FIT_CACHE: dict[tuple, GaborFits] = {}


def _cached_fit(weights: torch.Tensor) -> GaborFits:
    """:func:`fit_gabors`, remembered by the filters' bytes (two claims fit the same layer; nulls repeat)."""
    w = weights.detach().float().cpu().contiguous()
    key = (tuple(w.shape), hash(w.numpy().tobytes()))
    if key not in _FIT_CACHE:
        if len(_FIT_CACHE) >= 16:
            _FIT_CACHE.pop(next(iter(_FIT_CACHE)))
        _FIT_CACHE[key] = fit_gabors(w)
    return _FIT_CACHE[key]


def first_layer_families(weights: torch.Tensor, layer: str = "conv1", *, n_null: int = 512, seed: int = 0,
                         quantile: float = 0.99) -> FirstLayerFamilies:
    """Fit every filter and the null filters; classify with ``r2 >= max(0.5, null quantile)``."""
    fits = _cached_fit(weights)
    null_fits = _cached_fit(null_filters(tuple(weights.shape[1:]), n_null, seed))
    threshold = max(R2_FLOOR, float(torch.quantile(null_fits.r2, quantile)))
    null_families = gabor_families(null_fits, threshold)
    null_rate = sum(f != "other" for f in null_families) / len(null_families)
    return FirstLayerFamilies(layer, fits, gabor_families(fits, threshold), threshold, null_fits.r2, null_rate)


