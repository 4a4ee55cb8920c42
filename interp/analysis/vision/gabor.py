"""Gabor fits of conv filters and their families (Gabor, colour contrast, other).

:func:`fit_gabors` fits ``colour x Gabor`` to every filter at once: a grid search whose
phase is solved analytically, then a few Adam steps on all filters together, the colour
weights being solved exactly by least squares. :func:`first_layer_families` classifies
a layer's filters against a null matched to their smoothness
(:func:`spectrum_matched_null`: each filter's own power spectrum with random phases), so
"Gabor-like" means "more Gabor-like than a filter as smooth as this one by chance", not
"smoother than white noise".

Angles: degrees counter-clockwise from +x, y up (:mod:`interp.data.stimuli`).

>>> fits = fit_gabors(run.model.conv1.weight)
>>> fits.r2, fits.orientation
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    1 a perfectly oriented pattern); a fitted Gabor is always somewhat oriented, so the
    families use ``own_osi``: the same measure on the filter's own pattern (the filter
    projected on its fitted colour vector, ``sum_c colour[c] W[c] / |colour|^2``).
    ``cycles``: carrier cycles visible within the envelope and the kernel (see
    :attr:`cycles`). ``luminance``: share of the colour vector along
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
    own_osi: torch.Tensor

    @property
    def cycles(self) -> torch.Tensor:
        """``freq * min(2 sigma, k)``: carrier cycles across the envelope's central +-sigma, cut to the kernel.

        0 for a round blob (freq 0); small for a ramp (a low frequency under a wide
        envelope: the kernel shows only part of a cycle). :data:`BANDPASS_CYCLES` sets
        the cut-off of a band-pass (Gabor) filter.
        """
        k = self.fitted.shape[-1]
        return self.freq * torch.clamp(2 * self.sigma, max=float(k))

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
        own_osi=orientation_selectivity(own_patterns(W.reshape(n, C, k, k), colour)),
    )


def own_patterns(weights: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Each filter's spatial pattern ``(F, k, k)``: ``weights (F, C, k, k)`` projected on its colour vector ``(F, C)``.

    ``sum_c colour[c] W[c] / |colour|^2``: what the filter looks like in the colour it responds to.
    """
    w = weights.detach().float().cpu()
    return torch.einsum("fc,fcxy->fxy", colour, w) / colour.pow(2).sum(1).clamp_min(1e-12)[:, None, None]


R2_FLOOR = 0.5
NULL_QUANTILE = 0.99
OSI_GABOR = 0.3
BANDPASS_CYCLES = 0.5
"""A Gabor shows at least half a carrier cycle across its envelope's central +-sigma (and
within the kernel): ``freq * min(2 sigma, k) >= 0.5``. At the cut-off an even Gabor's
response to uniform light is exp(-pi^2 / 8) = 0.29 of its peak response (band-pass); a
round blob (freq 0) and a ramp (a low frequency under a wide envelope) fall below."""
LUMINANCE_OPPONENT = 0.5
OPPONENCY_MIN = 0.15
FAMILIES = ("gabor", "colour contrast", "other")
NULL_FILTERS = 512
"""Spectrum-matched null filters per layer, at least: ``max(8, ceil(512 / F))`` copies of each of F filters."""
MIN_COPIES = 8
PAD_FACTOR = 2
OSI_NULL_COPIES = 500
"""Orientation-scrambled copies of each filter's pattern, for its own 99% orientation threshold."""
NULL_DESCRIPTION = ("spectrum-matched: each filter's own 2-D power spectrum with random phases (one random phase "
                    "field added to every colour channel; half the copies periodic, half zero-padded), at the "
                    "filter's norm")


def gabor_families(fits: GaborFits, r2_threshold: float,
                   osi_threshold: float | torch.Tensor = OSI_GABOR) -> list[str]:
    """Family of each filter: ``gabor``, ``colour contrast`` or ``other``.

    - structured: the colour x Gabor fit explains at least ``r2_threshold`` of the energy;
    - colour contrast: structured, and the colour weights oppose each other (luminance
      share < 0.5 and opponency >= 0.15): one colour against another;
    - gabor: structured, not colour-opponent, band-pass (the fitted Gabor shows at least
      :data:`BANDPASS_CYCLES` cycles: a round blob or a ramp is not a Gabor) and oriented:
      the filter's own pattern (not the fit, which is always oriented) has an orientation
      selectivity of at least ``osi_threshold`` (a number, or one per filter);
    - other: the rest.
    """
    n = len(fits)
    osi_t = torch.as_tensor(osi_threshold, dtype=torch.float32).expand(n) if n else torch.zeros(0)
    band_pass = fits.cycles >= BANDPASS_CYCLES
    out = []
    C = fits.colour.shape[1]
    for i in range(n):
        structured = float(fits.r2[i]) >= r2_threshold
        opponent = C >= 3 and float(fits.luminance[i]) < LUMINANCE_OPPONENT and float(fits.opponency[i]) >= OPPONENCY_MIN
        if structured and opponent:
            out.append("colour contrast")
        elif structured and bool(band_pass[i]) and float(fits.own_osi[i]) >= float(osi_t[i]):
            out.append("gabor")
        else:
            out.append("other")
    return out


def null_filters(shape: tuple[int, ...], n: int = 512, seed: int = 0) -> torch.Tensor:
    """``n`` filters of a conv layer's kernel shape ``(C, k, k)`` drawn with PyTorch's default init (white noise)."""
    C, k = shape[0], shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        conv = nn.Conv2d(C, n, k)
    return conv.weight.detach()


def _random_phases(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Unit complex numbers ``e^{i psi}`` with a real image's Hermitian symmetry (the phases of white noise)."""
    spec = torch.fft.fft2(torch.randn(shape, generator=generator))
    return spec / spec.abs().clamp_min(1e-20)


def _phase_randomised(x: torch.Tensor, copies: int, generator: torch.Generator) -> torch.Tensor:
    """``copies`` phase-randomised copies of each ``x[i] (..., k, k)``: ``(B, copies, ..., k, k)``.

    One random phase field per copy, shared by the middle dimensions (colour channels).
    The first half of the copies extend the pattern periodically (the k x k DFT: exactly
    its power spectrum); the second half by zeros (a 2k x 2k DFT cut back to k x k: white
    noise convolved with the pattern, a stationary noise whose autocorrelation is the
    pattern's own). Periodic copies turn the jump between opposite edges into roughness
    (a smooth but non-periodic filter beats them too easily); zero-padded ones blur a
    flat or periodic pattern (which then beats them too easily); a filter must beat both.
    """
    B, k = x.shape[0], x.shape[-1]
    mid = (1,) * (x.dim() - 3)
    outs = []
    for m, c in ((k, copies - copies // 2), (PAD_FACTOR * k, copies // 2)):
        if c:
            phases = _random_phases((B, c, m, m), generator).reshape(B, c, *mid, m, m)
            outs.append(torch.fft.ifft2(torch.fft.fft2(x, s=(m, m))[:, None] * phases).real[..., :k, :k])
    return torch.cat(outs, dim=1)


def spectrum_matched_null(weights: torch.Tensor, copies: int = 16, seed: int = 0) -> torch.Tensor:
    """``copies`` phase-randomised copies of each filter ``weights (F, C, k, k)``: ``(F * copies, C, k, k)``.

    Each copy keeps its filter's 2-D power spectrum on every colour channel and its norm:
    the FFT of each channel times one random Hermitian phase field (the phases of a white
    noise image), the same field for every channel, then the inverse FFT; half the copies
    on the k x k grid (periodic), half zero-padded to 2k x 2k and cut back (see
    :func:`_phase_randomised`). Adding the same random phase to all channels keeps each
    channel's amplitude *and* the phase differences between channels (the whole
    cross-spectrum): a luminance filter stays luminance, a red-against-green filter stays
    red-against-green, so the colour families are as likely in the null as the filters'
    colours make them. Independent phases per channel would instead decorrelate the
    channels and turn luminance filters into colour noise. What the null destroys is only
    the alignment of phases across frequencies: localisation, edges, the envelope, so it
    is as smooth as the filters and a filter beats it only by being more Gabor-like than
    its smoothness alone gives. Copy ``j`` of filter ``i`` is row ``i * copies + j``.

    >>> spectrum_matched_null(torch.randn(6, 3, 5, 5), copies=8).shape
    torch.Size([48, 3, 5, 5])
    """
    W = weights.detach().float().cpu()
    n, C, k, _ = W.shape
    out = _phase_randomised(W, copies, torch.Generator().manual_seed(seed))  # (F, copies, C, k, k)
    scale = W.flatten(1).norm(dim=1)[:, None] / out.flatten(2).norm(dim=2).clamp_min(1e-12)
    return (out * scale[:, :, None, None, None]).reshape(n * copies, C, k, k)


def _d4(patterns: torch.Tensor) -> torch.Tensor:
    """The 8 rotations by 90 degrees and reflections of ``patterns (..., k, k)``, stacked first."""
    out = []
    for q in (patterns, patterns.transpose(-1, -2)):
        out += [torch.rot90(q, r, dims=(-2, -1)) for r in range(4)]
    return torch.stack(out)


def orientation_null(patterns: torch.Tensor, copies: int = OSI_NULL_COPIES, seed: int = 0) -> torch.Tensor:
    """Orientation-scrambled copies of each pattern ``(F, k, k)``: ``(F, copies, k, k)``.

    The phase-randomised null keeps a filter's power spectrum, and orientation selectivity
    is a property of the power spectrum, so against it every oriented filter would look
    unoriented. This null keeps the frequency content (smoothness) but not the orientation:
    the sum of the pattern's 8 rotations / reflections, each phase-randomised independently
    (as in :func:`spectrum_matched_null`, half periodic, half zero-padded), at the
    pattern's norm. Each copy is Gaussian-like noise whose expected power spectrum is the
    orientation-averaged one (over the square grid's symmetries), so its amplitudes
    fluctuate as those of smooth noise do (with the averaged amplitudes held fixed, chance
    orientation would be underestimated: blurred white noise is more oriented than that).
    How oriented such copies are by chance is how oriented smooth noise of that frequency
    content is; small kernels have few frequencies, so chance orientation is high there.

    >>> orientation_null(torch.randn(4, 5, 5), copies=10).shape
    torch.Size([4, 10, 5, 5])
    """
    P = patterns.detach().float().cpu()
    n, k, _ = P.shape
    g = torch.Generator().manual_seed(seed)
    out = torch.stack([_phase_randomised(_d4(P[i]), copies, g).sum(0) for i in range(n)]) if n else \
        torch.zeros(0, copies, k, k)
    scale = P.flatten(1).norm(dim=1)[:, None] / out.flatten(2).norm(dim=2).clamp_min(1e-12)
    return out * scale[:, :, None, None]


def _osi_chunked(patterns: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    flat = patterns.reshape(-1, *patterns.shape[-2:])
    return torch.cat([orientation_selectivity(flat[i:i + chunk]) for i in range(0, len(flat), chunk)])


@dataclass
class FirstLayerFamilies:
    """Gabor fits and families of a first conv layer, with the null that set the thresholds.

    The null is :func:`spectrum_matched_null` (``null_copies`` per filter); ``null_r2``
    and ``null_rate`` are its. ``osi_threshold``: per filter, the larger of
    :data:`OSI_GABOR` and ``osi_null_q99`` (the 99% quantile of the orientation
    selectivity of the filter's :func:`orientation_null` copies). The white-noise null
    (PyTorch's init, the old null) is context only: ``white_noise_r2_threshold``,
    ``white_noise_null_rate`` (its filters judged with its threshold and :data:`OSI_GABOR`)
    and ``white_noise_families`` (the filters classified with its R^2 threshold, all else
    equal).
    """

    layer: str
    fits: GaborFits
    families: list[str]
    r2_threshold: float
    null_r2: torch.Tensor
    null_rate: float
    """Fraction of null filters classified gabor or colour contrast with the same thresholds."""
    osi_threshold: torch.Tensor | None = None
    osi_null_q99: torch.Tensor | None = None
    null_copies: int = 0
    null_families: list[str] = field(default_factory=list)
    white_noise_r2_threshold: float = float("nan")
    white_noise_null_rate: float = float("nan")
    white_noise_families: list[str] = field(default_factory=list)
    null: str = NULL_DESCRIPTION

    def fractions(self) -> dict[str, float]:
        n = max(len(self.families), 1)
        return {f: sum(x == f for x in self.families) / n for f in FAMILIES}


_FIT_CACHE: dict[tuple, GaborFits] = {}


def _cached_fit(weights: torch.Tensor) -> GaborFits:
    """:func:`fit_gabors`, remembered by the filters' bytes (two claims fit the same layer and its null)."""
    w = weights.detach().float().cpu().contiguous()
    key = (tuple(w.shape), hash(w.numpy().tobytes()))
    if key not in _FIT_CACHE:
        if len(_FIT_CACHE) >= 16:
            _FIT_CACHE.pop(next(iter(_FIT_CACHE)))
        _FIT_CACHE[key] = fit_gabors(w)
    return _FIT_CACHE[key]


def _structured_rate(families: list[str]) -> float:
    return sum(f != "other" for f in families) / max(len(families), 1)


def first_layer_families(weights: torch.Tensor, layer: str = "conv1", *, n_null: int = NULL_FILTERS, seed: int = 0,
                         quantile: float = NULL_QUANTILE) -> FirstLayerFamilies:
    """Fit every filter and its spectrum-matched null; classify with ``r2 >= max(0.5, null quantile)``.

    The null rate (for the binomial test) is the share of null filters that the same
    thresholds call Gabor or colour contrast, each null copy judged with its filter's
    orientation threshold.
    """
    fits = _cached_fit(weights)
    n = len(fits)
    copies = max(MIN_COPIES, math.ceil(n_null / max(n, 1)))
    null_fits = _cached_fit(spectrum_matched_null(weights, copies, seed))
    threshold = max(R2_FLOOR, float(torch.quantile(null_fits.r2, quantile)))
    osi_null = _osi_chunked(orientation_null(own_patterns(weights, fits.colour), OSI_NULL_COPIES, seed + 1))
    osi_q = torch.quantile(osi_null.reshape(n, OSI_NULL_COPIES), quantile, dim=1)
    osi_threshold = osi_q.clamp_min(OSI_GABOR)
    null_families = gabor_families(null_fits, threshold, osi_threshold.repeat_interleave(copies))
    # Context: the old null, white noise of the same shape (PyTorch's init), all other rules equal.
    wn_fits = _cached_fit(null_filters(tuple(weights.shape[1:]), n_null, seed))
    wn_threshold = max(R2_FLOOR, float(torch.quantile(wn_fits.r2, quantile)))
    return FirstLayerFamilies(
        layer, fits, gabor_families(fits, threshold, osi_threshold), threshold, null_fits.r2,
        _structured_rate(null_families), osi_threshold=osi_threshold, osi_null_q99=osi_q, null_copies=copies,
        null_families=null_families, white_noise_r2_threshold=wn_threshold,
        white_noise_null_rate=_structured_rate(gabor_families(wn_fits, wn_threshold)),
        white_noise_families=gabor_families(fits, wn_threshold, osi_threshold))
