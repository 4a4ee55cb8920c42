"""Vision claims for any conv net: Gabor filters, orientation tiling, complex cells, curve and
high-low frequency detectors, exponential activation tails and weight banding.

The measurements are plain functions returning tensors and data objects
(:func:`fit_gabors`, :func:`grating_tuning`, :func:`curve_tuning`, :func:`high_low_tuning`,
:func:`tail_shapes`, :func:`banding_score`); the claims registered at the bottom turn
them into verdicts, with thresholds taken from a null: the same architecture
re-initialised (:func:`~interp.claims.registry.reinitialized`).

Responses are those of channels ("units") after their ReLU, at the centre position of
the layer's output map; stimuli are centred on that position's receptive field
(:func:`receptive_field`). Angles follow :mod:`interp.claims.stimuli`: degrees
counter-clockwise from +x with y up.

>>> fits = fit_gabors(run.model.conv1.weight)
>>> fits.r2, fits.orientation
>>> tuning = curve_tuning(Probe.from_run(run), "conv2")
>>> tuning.radial          # (units, orientations): the radial tuning curve of each unit
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InterpError
from ..hooks import capture_until, get_module, run_until
from . import stimuli as S
from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, pyplot,
                       register_claim, reinitialized, run_kind)

# --------------------------------------------------------------------------- model plumbing


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the model's ``nn.Conv2d`` modules in definition order (conv1, conv2, ...)."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _activation_of(model: nn.Module, layer: str) -> tuple[str, bool]:
    """The module whose output is ``layer``'s activation, and whether a ReLU must still be applied.

    For a conv layer that is the first ReLU module defined after it (and before the next
    conv): ``conv2`` -> ``relu2`` in our nets, past any batch norm. Other modules (an
    Inception ``mixed3b`` concatenation of ReLU outputs) are taken as they are.
    """
    module = get_module(model, layer)
    if not isinstance(module, nn.Conv2d):
        return layer, False
    after = False
    for name, m in model.named_modules():
        if name == layer:
            after = True
        elif after and isinstance(m, nn.Conv2d):
            break
        elif after and isinstance(m, nn.ReLU):
            return name, False
    return layer, True


@dataclass
class Probe:
    """A model with its preprocessing: what every response measurement needs.

    >>> probe = Probe.from_run(run)
    >>> probe.responses("conv2", images)   # (N, units) at the centre position
    """

    model: nn.Module
    normalize: Callable[[torch.Tensor], torch.Tensor]
    input_shape: tuple[int, ...]
    batch_size: int = 128
    _rf: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_run(cls, run: Any, device: str | torch.device | None = None) -> "Probe":
        if device is not None:
            from ..device import resolve_device

            run.model.to(resolve_device(device))
        if not run.input_shape or len(run.input_shape) != 3:
            raise InterpError(f"run {run.name} has no image input shape; vision claims need an image model")
        return cls(run.model.eval(), run.normalize, tuple(run.input_shape))

    def with_model(self, model: nn.Module) -> "Probe":
        """The same preprocessing on another model (a re-initialised null)."""
        return Probe(model.to(self.device).eval(), self.normalize, self.input_shape, self.batch_size)

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def size(self) -> int:
        return int(self.input_shape[-1])

    def layer_output(self, layer: str, images: torch.Tensor) -> torch.Tensor:
        """``layer``'s activations ``(N, C, H, W)`` for [0, 1] images, in batches; the forward stops there."""
        name, relu = _activation_of(self.model, layer)
        outs = []
        with torch.no_grad():
            for chunk in images.split(self.batch_size):
                x = self.normalize(_channels(chunk, self.input_shape[0]).to(self.device))
                with capture_until(self.model, name) as acts:
                    run_until(self.model, x)
                out = acts[name]
                outs.append((F.relu(out) if relu else out).float().cpu())
        return torch.cat(outs)

    def responses(self, layer: str, images: torch.Tensor) -> torch.Tensor:
        """Each unit's activation at the centre of its receptive field, ``(N, units)``."""
        i, j = self.receptive_field(layer).position
        name, relu = _activation_of(self.model, layer)
        outs = []
        with torch.no_grad():
            for chunk in images.split(self.batch_size):
                x = self.normalize(_channels(chunk, self.input_shape[0]).to(self.device))
                with capture_until(self.model, name) as acts:
                    run_until(self.model, x)
                out = acts[name][:, :, i, j]
                outs.append((F.relu(out) if relu else out).float().cpu())
        return torch.cat(outs)

    def receptive_field(self, layer: str) -> "ReceptiveField":
        if layer not in self._rf:
            self._rf[layer] = receptive_field(self.model, layer, self.input_shape, self.normalize)
        return self._rf[layer]


def _channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Stimuli are RGB; a grayscale model gets their mean."""
    if images.shape[1] == channels:
        return images
    if channels == 1:
        return images.mean(1, keepdim=True)
    raise InterpError(f"the model takes {channels}-channel images; stimuli are RGB")


@dataclass(frozen=True)
class ReceptiveField:
    """Where the centre unit of a layer looks: output ``position`` (row, col), and in the input the
    ``center`` offset (dy, dx) from the image centre in pixels and the ``size`` (height, width)."""

    position: tuple[int, int]
    center: tuple[float, float]
    size: tuple[int, int]


def receptive_field(model: nn.Module, layer: str, input_shape: tuple[int, ...], normalize=None, *,
                    samples: int = 8, seed: int = 0) -> ReceptiveField:
    """The receptive field of the centre position of ``layer``: the input pixels its value can depend on.

    Found from the gradient of that position (all channels) with respect to random
    inputs in a copy of the model whose conv weights are made positive and biases zero:
    the union of the pixels with a non-zero gradient. That is the architecture's
    receptive field (max-pooling, strides and padding included), the same for any weights,
    so stimuli are centred the same way on a trained, a random and a planted model.

    >>> receptive_field(run.model, "conv2", (3, 32, 32))   # tutorial net: 14 x 14 px
    """
    model = _positive_copy(model)
    g = torch.Generator().manual_seed(seed)
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    x = torch.rand(samples, *input_shape, generator=g).to(device).requires_grad_(True)
    with torch.enable_grad(), capture_until(model, layer, detach=False) as acts:
        run_until(model, normalize(x) if normalize else x)
        out = acts[layer]
        if out.dim() != 4:
            raise InterpError(f"layer {layer!r} has no spatial output (shape {tuple(out.shape[1:])}); "
                              f"response claims need a conv layer")
        i, j = out.shape[2] // 2, out.shape[3] // 2
        (grad,) = torch.autograd.grad(out[:, :, i, j].sum(), x)
    support = grad.abs().sum(dim=(0, 1)) > 0
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    if len(rows) == 0:
        return ReceptiveField((i, j), (0.0, 0.0), (input_shape[1], input_shape[2]))
    h, w = input_shape[1], input_shape[2]
    cy = (rows[0] + rows[-1]).item() / 2 - (h - 1) / 2
    cx = (cols[0] + cols[-1]).item() / 2 - (w - 1) / 2
    return ReceptiveField((i, j), (cy, cx), (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)))


def _positive_copy(model: nn.Module) -> nn.Module:
    """A copy with fresh norm layers, positive conv weights and zero biases: every path is open."""
    clone = reinitialized(model, 0)
    with torch.no_grad():
        for m in clone.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.abs_().add_(1e-3)
                if m.bias is not None:
                    m.bias.zero_()
    return clone


# --------------------------------------------------------------------------- Gabor fitting


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


PHASES_GRID = torch.arange(8) * (math.pi / 8)


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


def _project(W: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """Per filter and channel, the coefficient of each unit-norm template: ``(F, C, N)``."""
    T = templates.reshape(len(templates), -1)
    T = T / T.norm(dim=1, keepdim=True).clamp_min(1e-8)
    return torch.einsum("fcp,np->fcn", W, T)


def orientation_selectivity(kernels: torch.Tensor, pad: int = 32) -> torch.Tensor:
    """How oriented each 2-D pattern ``(N, k, k)`` is: ``|sum P e^{2i angle}| / sum P`` over its power spectrum P.

    >>> float(orientation_selectivity(torch.ones(1, 5, 5)))  # flat: no orientation
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


# --------------------------------------------------------------------------- response tuning


def _layer_scale(peaks: torch.Tensor, fraction: float) -> torch.Tensor:
    """A response level for a layer (``fraction`` of its largest peak), added to the denominators of the
    selectivity indices: a unit that barely fires gets indices near 0 instead of noisy extremes."""
    return fraction * peaks.max().clamp_min(1e-6)


OSI_FLOOR = 0.05
"""5% of the layer's largest summed tuning curve is added to an OSI's denominator."""
PAIR_FLOOR = 0.05
"""5% of the layer's largest peak is added to each response in a pairwise index (a - b) / (a + b)."""


def _osi(tuning: torch.Tensor, angles_deg: torch.Tensor, harmonic: int) -> torch.Tensor:
    """Selectivity ``|sum r e^{i h angle}| / (sum r + floor)`` of tuning curves ``(units, angles)``.

    ``floor`` is :data:`OSI_FLOOR` of the layer's largest ``sum r``: 1 is a unit that
    responds at one angle only, 0 one that responds equally at all.
    """
    a = torch.deg2rad(angles_deg) * harmonic
    num = torch.complex((tuning * torch.cos(a)).sum(1), (tuning * torch.sin(a)).sum(1)).abs()
    total = tuning.sum(1)
    return num / (total + _layer_scale(total, OSI_FLOOR))


def _preferred(tuning: torch.Tensor, angles_deg: torch.Tensor, harmonic: int) -> torch.Tensor:
    """Preferred angle of each tuning curve: the direction of its vector mean (degrees, mod 360 / harmonic)."""
    a = torch.deg2rad(angles_deg) * harmonic
    z = torch.atan2((tuning * torch.sin(a)).sum(1), (tuning * torch.cos(a)).sum(1))
    return torch.remainder(torch.rad2deg(z) / harmonic, 360.0 / harmonic)


@dataclass
class GratingTuning:
    """Responses to gratings ``(units, orientations, freqs, phases)`` and the complex-cell indices per unit.

    ``modulation``: F1/F0 at the preferred orientation and frequency (Skottun et al. 1991:
    a simple cell > 1, a complex cell < 1: its response does not depend on the phase);
    ``osi``: orientation selectivity of the phase-averaged response at the preferred
    frequency; ``peak``: that response; ``orientation``/``freq``: the preferred ones.
    """

    layer: str
    orientations: torch.Tensor
    freqs: torch.Tensor
    phases: torch.Tensor
    responses: torch.Tensor
    blank: torch.Tensor
    modulation: torch.Tensor
    osi: torch.Tensor
    peak: torch.Tensor
    orientation: torch.Tensor
    freq: torch.Tensor


ORIENTATIONS_12 = tuple(range(0, 180, 15))
GRATING_FREQS = (0.06, 0.09, 0.13, 0.18, 0.25, 0.33)
PHASES_8 = tuple(range(0, 360, 45))


def grating_tuning(probe: Probe, layer: str, *, orientations: Sequence[float] = ORIENTATIONS_12,
                   freqs: Sequence[float] = GRATING_FREQS, phases: Sequence[float] = PHASES_8) -> GratingTuning:
    """Each unit's response (centre position, after ReLU) to full-field gratings, and its complex-cell indices."""
    rf = probe.receptive_field(layer)
    images, _ = S.grating_images(probe.size, orientations, freqs, phases, center=rf.center)
    R = probe.responses(layer, images)  # (N, U)
    O, Fq, P = len(orientations), len(freqs), len(phases)
    R = R.T.reshape(-1, O, Fq, P)
    blank = probe.responses(layer, S.blank_image(probe.size))[0]
    mean = R.mean(3)  # (U, O, F)
    flat = mean.reshape(len(R), -1).argmax(1)
    o_idx, f_idx = flat // Fq, flat % Fq
    units = torch.arange(len(R))
    at_pref = R[units, o_idx, f_idx]  # (U, P)
    f0 = at_pref.mean(1)
    ph = torch.deg2rad(torch.tensor(phases, dtype=torch.float32))
    f1 = 2 * torch.complex((at_pref * torch.cos(ph)).mean(1), (at_pref * torch.sin(ph)).mean(1)).abs()
    ori = torch.tensor(orientations, dtype=torch.float32)
    tuning = mean[units, :, f_idx]  # (U, O)
    return GratingTuning(layer, ori, torch.tensor(freqs), torch.tensor(phases, dtype=torch.float32), R, blank,
                         modulation=f1 / (f0 + _layer_scale(f0, PAIR_FLOOR)),
                         osi=_osi(tuning, ori, 2), peak=f0,
                         orientation=ori[o_idx], freq=torch.tensor(freqs)[f_idx])


@dataclass
class CurveTuning:
    """Responses to curves ``(units, orientations, radii, 2 polarities)`` and lines ``(units, orientations, 2)``.

    Indices per unit (responses above the blank image, each unit's better polarity):
    ``radial``: the radial tuning curve, each orientation's best response over radii and
    polarities; ``osi``: its selectivity (first harmonic: a curve's orientation is defined
    mod 360); ``curvature``: curve preference ``(R_curve - R_line) / (R_curve + R_line)``,
    the best curve against the best straight line of any orientation; ``orientation``:
    the preferred orientation (vector mean of the radial tuning curve); ``radius``: the
    preferred radius; ``peak``: the best curve response. Brightness invariance:
    ``polarity_ratio`` is the weaker polarity's best response over the stronger's, and
    ``polarity_shift`` the angle (degrees) between the two polarities' preferred
    orientations: a curve detector prefers the same curve drawn white or black, while a
    unit that only sees a brightness gradient flips or ignores one polarity.
    """

    layer: str
    orientations: torch.Tensor
    radii: torch.Tensor
    curves: torch.Tensor
    lines: torch.Tensor
    blank: torch.Tensor
    radial: torch.Tensor
    osi: torch.Tensor
    curvature: torch.Tensor
    orientation: torch.Tensor
    radius: torch.Tensor
    peak: torch.Tensor
    polarity_ratio: torch.Tensor
    polarity_shift: torch.Tensor

    @property
    def score(self) -> torch.Tensor:
        """``osi x curvature`` (negative curvature counts as 0): both must be high."""
        return self.osi * self.curvature.clamp_min(0)


ORIENTATIONS_24 = tuple(range(0, 360, 15))


def default_radii(rf_size: int) -> tuple[float, ...]:
    """Six radii from a tight curve to a gentle one, scaled to the receptive field."""
    return tuple(round(rf_size * f, 2) for f in (0.15, 0.22, 0.3, 0.42, 0.6, 0.85))


def curve_tuning(probe: Probe, layer: str, *, orientations: Sequence[float] = ORIENTATIONS_24,
                 radii: Sequence[float] | None = None, thickness: float | None = None) -> CurveTuning:
    """Each unit's response to synthetic curves over orientation x radius, and to lines, on its receptive field.

    The arcs have a fixed length (0.8 of the receptive field's width) and their midpoint
    on the receptive-field centre; each is drawn white and black on grey.
    """
    rf = probe.receptive_field(layer)
    extent = min(rf.size)
    radii = tuple(radii) if radii is not None else default_radii(extent)
    thickness = thickness if thickness is not None else max(1.0, extent / 12)
    common = dict(polarities=(1.0, -1.0), length=0.8 * extent, thickness=thickness, center=rf.center)
    curves, _ = S.curve_images(probe.size, orientations, radii, **common)
    lines, _ = S.line_images(probe.size, orientations, **common)
    O, Rn = len(orientations), len(radii)
    rc = probe.responses(layer, curves).T.reshape(-1, O, Rn, 2)  # (U, O, R, polarity)
    rl = probe.responses(layer, lines).T.reshape(-1, O, 2)
    blank = probe.responses(layer, S.blank_image(probe.size))[0]
    excess = (rc - blank[:, None, None, None]).clamp_min(0)
    line = (rl - blank[:, None, None]).clamp_min(0).amax((1, 2))  # the best straight line of any orientation
    ori = torch.tensor(orientations, dtype=torch.float32)
    per_polarity = excess.amax(2)  # (U, O, 2)
    radial = per_polarity.amax(2)  # (U, O)
    units = torch.arange(len(rc))
    best = excess.amax(3).reshape(len(rc), -1)
    flat = best.argmax(1)
    peak = best[units, flat]
    pol_peak = per_polarity.amax(1)  # (U, 2)
    shift = _preferred(per_polarity[..., 0], ori, 1) - _preferred(per_polarity[..., 1], ori, 1)
    eps = _layer_scale(peak, PAIR_FLOOR)
    return CurveTuning(layer, ori, torch.tensor(radii), rc, rl, blank, radial,
                       _osi(radial, ori, 1),
                       (peak - line) / (peak + line + 2 * eps), _preferred(radial, ori, 1),
                       torch.tensor(radii)[flat % Rn], peak,
                       polarity_ratio=pol_peak.amin(1) / pol_peak.amax(1).clamp_min(1e-12),
                       polarity_shift=(torch.remainder(shift + 180.0, 360.0) - 180.0).abs())


@dataclass
class HighLowTuning:
    """Responses to high-low frequency boundaries ``(units, orientations)`` (mean over textures).

    ``index``: ``(R_boundary - R_uniform) / (R_boundary + R_uniform)``: the best boundary
    against the better of the all-high and all-low textures; ``direction``: ``(R(θ) -
    R(θ+180)) / (R(θ) + R(θ+180))`` at the best orientation (which side must be high);
    ``orientation``: the preferred direction from the low to the high side.
    """

    layer: str
    orientations: torch.Tensor
    boundary: torch.Tensor
    uniform_high: torch.Tensor
    uniform_low: torch.Tensor
    index: torch.Tensor
    direction: torch.Tensor
    orientation: torch.Tensor
    peak: torch.Tensor

    @property
    def score(self) -> torch.Tensor:
        """``index x direction`` (negatives count as 0): both must be high."""
        return self.index.clamp_min(0) * self.direction.clamp_min(0)


ORIENTATIONS_12_FULL = tuple(range(0, 360, 30))


def high_low_tuning(probe: Probe, layer: str, *, orientations: Sequence[float] = ORIENTATIONS_12_FULL,
                    n_textures: int = 4, seed: int = 0) -> HighLowTuning:
    """Each unit's response to high-low frequency boundaries through its receptive-field centre."""
    rf = probe.receptive_field(layer)
    images, _, controls = S.high_low_images(probe.size, orientations, n_textures=n_textures, center=rf.center,
                                            seed=seed)
    O = len(orientations)
    boundary = probe.responses(layer, images).T.reshape(-1, O, n_textures).mean(2)  # (U, O)
    c = probe.responses(layer, controls).T.reshape(-1, n_textures, 2).mean(1)  # (U, 2): high, low
    uniform = c.amax(1)
    units = torch.arange(len(boundary))
    best = boundary.argmax(1)
    peak = boundary[units, best]
    opposite = boundary[units, (best + O // 2) % O]
    eps = _layer_scale(peak, PAIR_FLOOR)
    ori = torch.tensor(orientations, dtype=torch.float32)
    return HighLowTuning(layer, ori, boundary, c[:, 0], c[:, 1], (peak - uniform) / (peak + uniform + 2 * eps),
                         (peak - opposite) / (peak + opposite + 2 * eps), ori[best], peak)


# --------------------------------------------------------------------------- nulls for unit indices


def null_measurements(probe: Probe, measure: Callable[[Probe], Any], n_models: int, seed: int) -> list[Any]:
    """``measure`` applied to ``n_models`` re-initialised copies of the probe's model (seeds seed+1 ...)."""
    return [measure(probe.with_model(reinitialized(probe.model, seed + 1 + i))) for i in range(n_models)]


NULL_LEVEL = 0.99
"""A random copy's best unit passes a null threshold with probability 1 - NULL_LEVEL."""


def null_threshold(values: list[torch.Tensor], floor: float, where: list[torch.Tensor] | None = None,
                   level: float = NULL_LEVEL) -> float:
    """The score a re-initialised copy's best unit exceeds with probability ``1 - level``, at least ``floor``.

    ``values``: one tensor of unit scores per null copy; ``where``: masks of the units
    that meet the claim's other criteria (only those count). Each copy's best qualifying
    score (0 when none qualifies) is a draw of the null maximum; a Gumbel distribution (the
    limit law of maxima) fitted to those draws by moments gives the ``level`` quantile.
    The threshold is never below the largest draw seen.
    """
    maxima = []
    for i, v in enumerate(values):
        v = v.flatten()
        if where is not None:
            v = v[where[i].flatten()]
        v = v[torch.isfinite(v)]
        maxima.append(float(v.max()) if len(v) else 0.0)
    m = torch.tensor(maxima, dtype=torch.float64)
    if len(m) < 2:
        return max(floor, float(m.max()) if len(m) else floor)
    beta = float(m.std()) * math.sqrt(6) / math.pi
    mu = float(m.mean()) - 0.5772156649 * beta
    quantile = mu - beta * math.log(-math.log(level))
    return max(floor, quantile, float(m.max()))


# --------------------------------------------------------------------------- exponential tails


@dataclass
class TailShapes:
    """Tail shape of each unit's pre-activation distribution over a dataset, per layer.

    ``hazard``: how fast the firing part's survival function ``S(x) = P(X > x | X > 0)``
    falls in its third decade compared with its first: ``q90 / (q99.9 - q99)`` of the
    positive pre-activations, i.e. the width of the first decade (S from 1 to 0.1) over
    the width of the third (0.01 to 0.001). On a log-density plot an exponential tail is a
    straight line: every decade is equally wide (ratio 1). A Gaussian tail bends down:
    its later decades are narrower (2.2 for a half-normal, 1.7 for a unit firing 10% of the
    time); a power law bends up (< 1).
    """

    layers: list[str]
    hazard: dict[str, torch.Tensor]
    firing: dict[str, torch.Tensor]
    samples: dict[str, torch.Tensor]
    """A few units' positive pre-activations (for the log-density figure)."""


MIN_TAIL_SAMPLES = 2000


def hazard_ratio(values: torch.Tensor, max_values: int = 1_000_000) -> torch.Tensor:
    """``q90 / (q99.9 - q99)`` of each row's positive values ``(units, samples)``; NaN with too few of them.

    >>> g = torch.Generator().manual_seed(0)
    >>> round(float(hazard_ratio(-torch.rand(1, 200000, generator=g).log())), 1)   # exponential
    1.0
    """
    out = torch.full((len(values),), float("nan"))
    probs = torch.tensor([0.9, 0.99, 0.999])
    for i, row in enumerate(values):
        row = row[row > 0][:max_values]
        if len(row) < MIN_TAIL_SAMPLES:
            continue
        q = torch.quantile(row.float(), probs)
        out[i] = q[0] / (q[2] - q[1]).clamp_min(1e-12)
    return out


def tail_shapes(probe: Probe, layers: list[str], images: torch.Tensor, *, max_values: int = 1_000_000,
                seed: int = 0) -> TailShapes:
    """Hazard ratio of every unit's positive pre-activations (all positions of all images)."""
    g = torch.Generator().manual_seed(seed)
    hazard, firing, samples = {}, {}, {}
    for layer in layers:
        with torch.no_grad():
            outs = []
            for chunk in images.split(probe.batch_size):
                x = probe.normalize(_channels(chunk, probe.input_shape[0]).to(probe.device))
                with capture_until(probe.model, layer) as acts:
                    run_until(probe.model, x)
                outs.append(acts[layer].float().cpu())
        acts = torch.cat(outs)  # (N, C, H, W), pre-activation: the conv output
        values = acts.transpose(0, 1).reshape(acts.shape[1], -1)
        if values.shape[1] > max_values:
            values = values[:, torch.randperm(values.shape[1], generator=g)[:max_values]]
        hazard[layer] = hazard_ratio(values)
        firing[layer] = (values > 0).float().mean(1)
        samples[layer] = values[:4, :20000]
    return TailShapes(layers, hazard, firing, samples)


EXP_HAZARD_RANGE = (0.67, 1.5)


# --------------------------------------------------------------------------- weight banding


def banding_score(weight: torch.Tensor) -> tuple[float, float]:
    """Fraction of the kernels' variance explained by rows (horizontal bands) and by columns (vertical bands).

    Pooled over all kernels ``(out, in, k, k)``, each centred on its own mean. Random
    kernels explain ``1 / (k + 1)`` either way. Smooth kernels explain more both ways;
    banded ones much more one way than the other, so the banding of a layer is the
    difference (:func:`banding`).

    >>> w = torch.randn(4, 4, 3, 1).expand(4, 4, 3, 3)  # constant along x: horizontal bands
    >>> [round(v, 2) for v in banding_score(w)]
    [1.0, 0.0]
    """
    w = weight.detach().float()
    w = w - w.mean((2, 3), keepdim=True)
    total = w.pow(2).sum().clamp_min(1e-12)
    k_w, k_h = w.shape[3], w.shape[2]
    rows = (w.mean(3).pow(2).sum() * k_w / total).item()
    cols = (w.mean(2).pow(2).sum() * k_h / total).item()
    return rows, cols


def banding(weight: torch.Tensor) -> tuple[float, str]:
    """``(|rows - cols|, direction)`` from :func:`banding_score`: 1 for perfect bands, about 0 for random or
    smooth round kernels.

    >>> banding(torch.randn(4, 4, 3, 1).expand(4, 4, 3, 3))
    (1.0, 'horizontal')
    """
    rows, cols = banding_score(weight)
    return round(abs(rows - cols), 6), "horizontal" if rows >= cols else "vertical"


def pooling_head(run: Any) -> str | None:
    """``gap`` (global average pooling before the classifier), ``flatten``, or None when unknown."""
    if getattr(run.config, "model", "") == "inceptionv1":
        return "gap"
    head = (getattr(run.config, "model_config", None) or {}).get("head")
    if head in ("gap", "flatten"):
        return head
    if any(isinstance(m, nn.AdaptiveAvgPool2d) for m in run.model.modules()):
        return "gap"
    return None


# --------------------------------------------------------------------------- claims


EARLY_VISION = "Olah et al., 'An Overview of Early Vision in InceptionV1', Distill 2020"
EARLY_VISION_URL = "https://distill.pub/2020/circuits/early-vision/"
CURVES = "Cammarata et al., 'Curve Detectors', Distill 2020"
CURVES_URL = "https://distill.pub/2020/circuits/curve-detectors/"


def _applies_conv(min_convs: int) -> Callable[[Any], str | None]:
    def applies(run):
        kind = run_kind(run)
        if kind == "inceptionv1":
            return "InceptionV1 has its own claims with the published unit lists (the inceptionv1-* claims)"
        if kind != "vision":
            return f"the claim is about conv nets on images; {getattr(run, 'name', 'this model')} is not one"
        n = len(conv_layers(run.model))
        if n < min_convs:
            return f"the model has {n} conv layer{'s' * (n != 1)}; the claim needs at least {min_convs}"
        return None
    return applies


def _probe(run, options: CheckOptions) -> Probe:
    return Probe.from_run(run, options.device)


def _layer(run, options: CheckOptions, index: int) -> str:
    """The layer a claim examines: ``options.layer`` if given (checked), else the ``index``-th conv layer."""
    convs = conv_layers(run.model)
    if options.layer:
        get_module(run.model, options.layer)  # did-you-mean error for a typo
        return options.layer
    return convs[index]


def _unit(layer: str, i: int) -> str:
    return f"{layer}:{i}"


def _r(x: Any, nd: int = 3) -> Any:
    return round(float(x), nd)


# -- first layer ---------------------------------------------------------------


def check_first_layer(run, options: CheckOptions) -> ClaimResult:
    claim = GABOR_FIRST_LAYER
    layer = conv_layers(run.model)[0]
    weight = get_module(run.model, layer).weight
    k = weight.shape[-1]
    if k < 3:
        return claim.result(INCONCLUSIVE, f"{layer} has {k}x{k} kernels; a Gabor needs at least 3x3", layer=layer)
    fam = first_layer_families(weight, layer, seed=options.seed)
    return _families_result(claim, fam, run)


def _families_result(claim: Claim, fam: FirstLayerFamilies, run, published: dict | None = None) -> ClaimResult:
    from scipy.stats import binom

    fits, n = fam.fits, len(fam.families)
    fr = fam.fractions()
    structured = fr["gabor"] + fr["colour contrast"]
    n_struct = sum(f != "other" for f in fam.families)
    p0 = max(fam.null_rate, 1.0 / len(fam.null_r2))
    p_value = float(binom.sf(n_struct - 1, n, p0))
    table = [{"unit": _unit(fam.layer, i), "family": fam.families[i], "r2": _r(fits.r2[i]),
              "orientation": _r(fits.orientation[i], 1), "freq": _r(fits.freq[i]), "sigma": _r(fits.sigma[i], 2),
              "osi": _r(fits.osi[i]), "luminance": _r(fits.luminance[i]), "opponency": _r(fits.opponency[i])}
             for i in range(n)]
    k = fits.fitted.shape[-1]
    numbers = {"filters": n, "kernel": f"{k}x{k}", "gabor": _r(fr["gabor"]),
               "colour_contrast": _r(fr["colour contrast"]), "other": _r(fr["other"]),
               "r2_threshold": _r(fam.r2_threshold), "null_rate": _r(fam.null_rate, 4), "p_value": p_value,
               "median_r2": _r(fits.r2.median()), "null_median_r2": _r(fam.null_r2.median())}
    notes = [f"Gabor fits on {k}x{k} kernels are coarse: the model has 6 spatial parameters for {k * k} pixels "
             f"per channel, so chance already explains a median {numbers['null_median_r2']:.0%} of a random "
             f"filter; a filter counts as structured only above the null's 99th percentile "
             f"({fam.r2_threshold:.2f})."] if k <= 5 else []
    found = [_unit(fam.layer, i) for i, f in enumerate(fam.families) if f != "other"]
    data = {"weights": _rgb_list(get_filters(run, fam.layer)), "fitted": _rgb_list(fits.fitted),
            "families": fam.families, "orientations": fits.orientation.tolist(),
            "null_r2": sorted(fam.null_r2.tolist())[::8], "r2": fits.r2.tolist()}
    evidence = dict(layer=fam.layer, numbers=numbers, table=table, found=found, notes=notes, data=data,
                    thresholds={**claim.thresholds, "r2": _r(fam.r2_threshold)})
    if published is not None:
        numbers.update({f"published_{k2.replace(' ', '_')}": v for k2, v in published.items()})
        worst = max(abs(fr[f] - published[f]) for f in FAMILIES)
        numbers["largest_difference"] = _r(worst)
        tol = claim.thresholds["tolerance"]
        text = (f"gabor {fr['gabor']:.0%}, colour contrast {fr['colour contrast']:.0%}, other {fr['other']:.0%} "
                f"(published {published['gabor']:.0%} / {published['colour contrast']:.0%} / "
                f"{published['other']:.0%})")
        if worst <= tol:
            return claim.result(SUPPORTED, f"{text}: every family within {tol:.0%} of the published share", **evidence)
        return claim.result(NOT_SUPPORTED, f"{text}: a family differs by {worst:.0%} (> {tol:.0%}) from the published "
                            f"share", **evidence)
    text = (f"{n_struct} of {n} {fam.layer} filters are Gabor-like ({fr['gabor']:.0%}) or colour-contrast "
            f"({fr['colour contrast']:.0%})")
    if structured >= claim.thresholds["dominant"] and p_value <= claim.thresholds["p_value"]:
        return claim.result(SUPPORTED, f"{text}; random filters of the same shape reach that in "
                            f"{fam.null_rate:.1%} of cases (binomial p = {p_value:.2g})", **evidence)
    why = (f"fewer than {claim.thresholds['dominant']:.0%}" if structured < claim.thresholds["dominant"]
           else f"not more than chance (binomial p = {p_value:.2g})")
    return claim.result(NOT_SUPPORTED, f"{text}: {why}", **evidence)


def get_filters(run, layer: str) -> torch.Tensor:
    return get_module(run.model, layer).weight.detach().float().cpu()


def _rgb_list(w: torch.Tensor) -> list:
    return [[[[round(v, 4) for v in row] for row in ch] for ch in f] for f in w.tolist()]


def check_tiling(run, options: CheckOptions) -> ClaimResult:
    claim = ORIENTATION_TILING
    layer = conv_layers(run.model)[0]
    weight = get_module(run.model, layer).weight
    if weight.shape[-1] < 3:
        return claim.result(INCONCLUSIVE, f"{layer} has {weight.shape[-1]}x{weight.shape[-1]} kernels; no Gabors "
                            f"to tile", layer=layer)
    fam = first_layer_families(weight, layer, seed=options.seed)
    return tiling_result(claim, fam)


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


def tiling_result(claim: Claim, fam: FirstLayerFamilies) -> ClaimResult:
    gabor = [i for i, f in enumerate(fam.families) if f == "gabor"]
    ori = fam.fits.orientation[gabor] if gabor else torch.zeros(0)
    gap = largest_gap(ori)
    n = len(gabor)
    # How often n uniformly random orientations leave a gap this small or smaller (context only).
    g = torch.Generator().manual_seed(0)
    sims = torch.rand(4000, max(n, 1), generator=g) * 180
    sim_gaps = torch.tensor([largest_gap(s) for s in sims[:1000]])
    p_uniform = float((sim_gaps <= gap).float().mean()) if n else 1.0
    table = [{"unit": _unit(fam.layer, i), "orientation": _r(fam.fits.orientation[i], 1), "r2": _r(fam.fits.r2[i]),
              "osi": _r(fam.fits.osi[i])} for i in gabor]
    numbers = {"gabor_units": n, "largest_gap_deg": _r(gap, 1), "p_uniform_gap_this_small": _r(p_uniform)}
    evidence = dict(layer=fam.layer, numbers=numbers, table=table, found=[_unit(fam.layer, i) for i in gabor],
                    data={"orientations": ori.tolist()})
    need, max_gap = claim.thresholds["min_units"], claim.thresholds["max_gap_deg"]
    if n == 0:
        return claim.result(NOT_SUPPORTED, f"{fam.layer} has no Gabor-like filters, so no orientations are tiled",
                            **evidence)
    if n < need:
        return claim.result(INCONCLUSIVE, f"only {n} Gabor-like filter{'s' * (n != 1)} in {fam.layer}; at least "
                            f"{need} are needed to judge whether orientations tile 0-180 degrees", **evidence)
    angles = ", ".join(f"{a:.0f}" for a in sorted(ori.tolist()))
    if gap <= max_gap:
        return claim.result(SUPPORTED, f"the {n} Gabor-like filters' orientations ({angles} degrees) leave no gap "
                            f"wider than {gap:.0f} degrees (<= {max_gap:.0f})", **evidence)
    return claim.result(NOT_SUPPORTED, f"the {n} Gabor-like filters' orientations ({angles} degrees) leave a "
                        f"{gap:.0f}-degree gap (> {max_gap:.0f})", **evidence)


# -- complex cells -------------------------------------------------------------


def check_complex(run, options: CheckOptions) -> ClaimResult:
    claim = COMPLEX_GABORS
    probe = _probe(run, options)
    layer = _layer(run, options, 1)
    t = grating_tuning(probe, layer)
    nulls = null_measurements(probe, lambda p: grating_tuning(p, layer), options.null_models, options.seed)
    thr = claim.thresholds
    osi_t = null_threshold([n.osi for n in nulls], thr["osi_floor"],
                           [n.modulation <= thr["modulation_max"] for n in nulls])
    is_complex = (t.osi > osi_t) & (t.modulation <= thr["modulation_max"])
    null_counts = [int(((n.osi > osi_t) & (n.modulation <= thr["modulation_max"])).sum()) for n in nulls]
    table = [{"unit": _unit(layer, i), "complex": bool(is_complex[i]), "osi": _r(t.osi[i]),
              "modulation_f1_f0": _r(t.modulation[i]), "orientation": _r(t.orientation[i], 1),
              "freq": _r(t.freq[i]), "peak": _r(t.peak[i], 4)} for i in range(len(t.osi))]
    found = [_unit(layer, i) for i in torch.nonzero(is_complex).flatten().tolist()]
    evidence = dict(layer=layer, table=table, found=found,
                    thresholds={**thr, "osi": _r(osi_t)},
                    numbers={"units": len(table), "complex_units": len(found), "null_max_count": max(null_counts),
                             "null_models": len(nulls)},
                    data=_scatter_data(t.osi, t.modulation, [n.osi for n in nulls], [n.modulation for n in nulls],
                                       "orientation selectivity", "F1/F0 (phase modulation)", osi_t,
                                       thr["modulation_max"], above_y=False))
    return _count_verdict(claim, evidence, found, null_counts, layer,
                          "orientation-selective units whose grating response does not depend on phase")


def _count_verdict(claim: Claim, evidence: dict, found: list[str], null_counts: list[int], layer: str,
                   what: str) -> ClaimResult:
    n, null_max = len(found), max(null_counts) if null_counts else 0
    shown = ", ".join(found[:8]) + (" ..." if n > 8 else "")
    if n >= 1 and n > null_max:
        return claim.result(SUPPORTED, f"{n} {what} in {layer} ({shown}); re-initialised copies have at most "
                            f"{null_max}", **evidence)
    if n == 0:
        return claim.result(NOT_SUPPORTED, f"no {what} in {layer}", **evidence)
    return claim.result(NOT_SUPPORTED, f"{n} {what} in {layer} ({shown}), but a re-initialised copy has "
                        f"{null_max}: not more than chance", **evidence)


def _scatter_data(x, y, null_x, null_y, xlabel, ylabel, x_thr, y_thr, *, above_y: bool = True) -> dict:
    return {"scatter": {"x": [_r(v) for v in x.tolist()], "y": [_r(v) for v in y.tolist()],
                        "null_x": [_r(v) for v in torch.cat([v.flatten() for v in null_x]).tolist()],
                        "null_y": [_r(v) for v in torch.cat([v.flatten() for v in null_y]).tolist()],
                        "xlabel": xlabel, "ylabel": ylabel, "x_threshold": x_thr, "y_threshold": y_thr,
                        "above_y": above_y}}


# -- curve detectors ----------------------------------------------------------


def curve_candidates(t: CurveTuning, thresholds: dict) -> torch.Tensor:
    """Units that pass the absolute criteria: selective, prefer curves, brightness-invariant."""
    return ((t.osi >= thresholds["osi_floor"]) & (t.curvature >= thresholds["curvature_floor"]) & (t.peak > 0)
            & (t.polarity_ratio >= thresholds["polarity_ratio"]) & (t.polarity_shift <= thresholds["polarity_shift"]))


def curve_detectors(t: CurveTuning, thresholds: dict, score_threshold: float) -> torch.Tensor:
    """Curve detectors: candidates whose score (osi x curvature preference) beats the null's best candidate."""
    return curve_candidates(t, thresholds) & (t.score > score_threshold)


def check_curves(run, options: CheckOptions) -> ClaimResult:
    claim = CURVE_DETECTORS
    probe = _probe(run, options)
    layer = _layer(run, options, 1)
    t = curve_tuning(probe, layer)
    nulls = null_measurements(probe, lambda p: curve_tuning(p, layer), options.null_models, options.seed)
    thr = claim.thresholds
    score_t = null_threshold([n.score for n in nulls], 0.0, [curve_candidates(n, thr) for n in nulls])
    is_curve = curve_detectors(t, thr, score_t)
    null_counts = [int(curve_detectors(n, thr, score_t).sum()) for n in nulls]
    return curve_result(claim, t, nulls, layer, is_curve, null_counts, {**thr, "score": _r(score_t)},
                        probe.receptive_field(layer))


def curve_result(claim: Claim, t: CurveTuning, nulls: list[CurveTuning], layer: str, is_curve: torch.Tensor,
                 null_counts: list[int], thresholds: dict, rf: ReceptiveField, units: list[int] | None = None,
                 verdict: bool = True) -> ClaimResult:
    """Table, figures' data and (with ``verdict``) the count verdict of a curve-detector check."""
    units = list(range(len(t.osi))) if units is None else units
    table = [{"unit": _unit(layer, i), "curve_detector": bool(is_curve[i]), "score": _r(t.score[i]),
              "osi": _r(t.osi[i]), "curvature_preference": _r(t.curvature[i]),
              "orientation": _r(t.orientation[i], 1), "radius": _r(t.radius[i], 2),
              "polarity_ratio": _r(t.polarity_ratio[i]), "polarity_shift": _r(t.polarity_shift[i], 1),
              "peak": _r(t.peak[i], 4)} for i in units]
    found = [_unit(layer, i) for i in units if bool(is_curve[i])]
    idx = torch.tensor(units, dtype=torch.long)
    data = _scatter_data(t.osi[idx], t.curvature[idx], [n.osi for n in nulls], [n.curvature for n in nulls],
                         "orientation selectivity (radial tuning)", "curve preference over lines",
                         thresholds.get("osi_floor", 0.0), thresholds.get("curvature_floor", 0.0))
    data["radial"] = {"orientations": t.orientations.tolist(), "units": [_unit(layer, i) for i in units],
                      "curves": [[_r(v, 4) for v in t.radial[i].tolist()] for i in units], "found": found}
    evidence = dict(layer=layer, table=table, found=found, data=data, thresholds=thresholds,
                    numbers={"units": len(table), "curve_detectors": len(found),
                             "null_max_count": max(null_counts) if null_counts else None, "null_models": len(nulls),
                             "receptive_field_px": rf.size[0], "radii_px": t.radii.tolist()})
    if not verdict:
        return evidence
    return _count_verdict(claim, evidence, found, null_counts, layer,
                          "units selective for curves of one orientation (over straight lines, white or black)")


# -- high-low frequency detectors ---------------------------------------------


def high_low_candidates(t: HighLowTuning, thresholds: dict) -> torch.Tensor:
    return (t.index >= thresholds["index_floor"]) & (t.direction >= thresholds["direction_floor"]) & (t.peak > 0)


def high_low_detectors(t: HighLowTuning, thresholds: dict, score_threshold: float) -> torch.Tensor:
    """High-low detectors: candidates whose score (boundary index x direction index) beats the null's best."""
    return high_low_candidates(t, thresholds) & (t.score > score_threshold)


def check_high_low(run, options: CheckOptions) -> ClaimResult:
    claim = HIGH_LOW
    probe = _probe(run, options)
    layer = _layer(run, options, 1)
    t = high_low_tuning(probe, layer, seed=options.seed)
    nulls = null_measurements(probe, lambda p: high_low_tuning(p, layer, seed=options.seed), options.null_models,
                              options.seed)
    thr = claim.thresholds
    score_t = null_threshold([n.score for n in nulls], 0.0, [high_low_candidates(n, thr) for n in nulls])
    is_hl = high_low_detectors(t, thr, score_t)
    null_counts = [int(high_low_detectors(n, thr, score_t).sum()) for n in nulls]
    return high_low_result(claim, t, nulls, layer, is_hl, null_counts, {**thr, "score": _r(score_t)})


def high_low_result(claim: Claim, t: HighLowTuning, nulls: list[HighLowTuning], layer: str, is_hl: torch.Tensor,
                    null_counts: list[int], thresholds: dict, units: list[int] | None = None,
                    verdict: bool = True):
    """Table, figures' data and (with ``verdict``) the count verdict of a high-low check."""
    units = list(range(len(t.index))) if units is None else units
    table = [{"unit": _unit(layer, i), "high_low": bool(is_hl[i]), "score": _r(t.score[i]),
              "boundary_index": _r(t.index[i]),
              "direction_index": _r(t.direction[i]), "orientation": _r(t.orientation[i], 1),
              "peak": _r(t.peak[i], 4)} for i in units]
    found = [_unit(layer, i) for i in units if bool(is_hl[i])]
    idx = torch.tensor(units, dtype=torch.long)
    data = _scatter_data(t.index[idx], t.direction[idx], [n.index for n in nulls], [n.direction for n in nulls],
                         "boundary over uniform texture", "direction (high side) selectivity",
                         thresholds.get("index_floor", 0.0), thresholds.get("direction_floor", 0.0))
    evidence = dict(layer=layer, table=table, found=found, data=data, thresholds=thresholds,
                    numbers={"units": len(table), "high_low_detectors": len(found),
                             "null_max_count": max(null_counts) if null_counts else None, "null_models": len(nulls)})
    if not verdict:
        return evidence
    return _count_verdict(claim, evidence, found, null_counts, layer,
                          "units that fire for high frequency on one side of a boundary and low on the other")


# -- exponential tails ----------------------------------------------------------


def claim_data(run, options: CheckOptions) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images (and labels) a data-based check uses: ``options.images`` / ``options.labels``, or the
    first ``max_images`` of the run's test split."""
    n = options.max_images
    if options.images is not None:
        labels = options.labels[:n] if options.labels is not None else None
        return options.images[:n], labels
    data = run.load_data(progress=options.progress, split="test")
    return data.test_x[:n], data.test_y[:n]


def check_tails(run, options: CheckOptions) -> ClaimResult:
    claim = EXPONENTIAL_TAIL
    probe = _probe(run, options)
    layers = conv_layers(run.model)[1:]
    images, _ = claim_data(run, options)
    shapes = tail_shapes(probe, layers, images, seed=options.seed)
    null = tail_shapes(probe.with_model(reinitialized(run.model, options.seed + 1)), layers, images,
                       seed=options.seed)
    lo, hi = claim.thresholds["hazard_range"]

    def exponential(h):
        valid = torch.isfinite(h)
        return valid, valid & (h >= lo) & (h <= hi)

    table, per_layer = [], {}
    for layer in layers:
        h = shapes.hazard[layer]
        valid, exp = exponential(h)
        nvalid, nexp = exponential(null.hazard[layer])
        per_layer[layer] = {
            "units": int(valid.sum()), "exponential": _r(exp.sum() / valid.sum().clamp_min(1)),
            "median_hazard": _r(h[valid].median()) if valid.any() else None,
            "null_exponential": _r(nexp.sum() / nvalid.sum().clamp_min(1)),
            "null_median_hazard": _r(null.hazard[layer][nvalid].median()) if nvalid.any() else None}
        table += [{"unit": _unit(layer, i), "hazard_ratio": _r(h[i]) if valid[i] else None,
                   "exponential": bool(exp[i]), "firing": _r(shapes.firing[layer][i])} for i in range(len(h))]
    found = [row["unit"] for row in table if row["exponential"]]
    data = {"samples": {k: [[_r(x, 4) for x in row.tolist()] for row in v] for k, v in shapes.samples.items()},
            "hazard": {k: [(_r(x) if x == x else None) for x in v.tolist()] for k, v in shapes.hazard.items()},
            "null_hazard": {k: [(_r(x) if x == x else None) for x in v.tolist()] for k, v in null.hazard.items()}}
    numbers = {"images": len(images), **{f"{k}_{m}": v for k, d in per_layer.items() for m, v in d.items()}}
    evidence = dict(layer=", ".join(layers), table=table, found=found, data=data, numbers=numbers)
    weak = [layer for layer, d in per_layer.items() if d["units"] == 0]
    if weak:
        return claim.result(INCONCLUSIVE, f"no unit of {', '.join(weak)} fires {MIN_TAIL_SAMPLES} times on "
                            f"{len(images)} images: too few values to measure a tail (give more images)", **evidence)
    need = claim.thresholds["fraction"]
    summary = "; ".join(f"{layer}: {d['exponential']:.0%} of units (median hazard ratio {d['median_hazard']:.2f}, "
                        f"re-initialised {d['null_exponential']:.0%}, {d['null_median_hazard'] or float('nan'):.2f})"
                        for layer, d in per_layer.items())
    ok = all(d["exponential"] >= need and d["exponential"] > d["null_exponential"] for d in per_layer.values())
    if ok:
        return claim.result(SUPPORTED, f"exponential tails (hazard ratio {lo}-{hi}) in every layer after the first, "
                            f"more than with random weights: {summary}", **evidence)
    return claim.result(NOT_SUPPORTED, f"in some layer fewer than {need:.0%} of units, or no more than with random "
                        f"weights, have exponential tails: {summary}", **evidence)


# -- weight banding -------------------------------------------------------------


def check_banding(run, options: CheckOptions) -> ClaimResult:
    claim = WEIGHT_BANDING
    layer = conv_layers(run.model)[-1]
    weight = get_module(run.model, layer).weight.detach().cpu()
    head = pooling_head(run)
    if head is None:
        return claim.result(INCONCLUSIVE, "cannot tell whether the model pools globally or flattens before its "
                            "classifier", layer=layer)
    k = weight.shape[-1]
    if min(weight.shape[-2:]) < 3:
        return claim.result(INCONCLUSIVE, f"{layer} has {weight.shape[-2]}x{k} kernels; bands need at least 3x3",
                            layer=layer)
    rows, cols = banding_score(weight)
    score, direction = banding(weight)
    null = torch.tensor([banding(null_filters(tuple(weight.shape[1:]), weight.shape[0], options.seed + 1 + i))[0]
                         for i in range(max(options.null_models, 8))])
    threshold = max(float(null.max()), claim.thresholds["min_difference"])
    banded = score > threshold
    numbers = {"head": head, "kernel": f"{weight.shape[-2]}x{k}", "rows_explain": _r(rows), "columns_explain": _r(cols),
               "banding": _r(score), "direction": direction, "null_max": _r(null.max()), "threshold": _r(threshold),
               "chance_each_way": _r(1 / (k + 1))}
    data = {"mean_abs_kernel": _mean_abs_kernel(weight).tolist(), "score": score, "null": null.tolist()}
    evidence = dict(layer=layer, numbers=numbers, found=[layer] if banded else [], data=data,
                    thresholds={**claim.thresholds, "banding": _r(threshold)})
    state = (f"{layer} ({head} head) {'is' if banded else 'is not'} banded: rows explain {rows:.0%} of the kernels' "
             f"variance and columns {cols:.0%} (banding {score:.2f}, threshold {threshold:.2f})")
    if head == "gap":
        return claim.result(SUPPORTED if banded else NOT_SUPPORTED, state + (
            "" if banded else "; the claim predicts bands with global average pooling"), **evidence)
    return claim.result(NOT_SUPPORTED if banded else SUPPORTED, state + (
        "; the claim predicts no bands with a flatten head" if banded else ", as predicted for a flatten head"),
        **evidence)


def _mean_abs_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The average magnitude pattern of a layer's kernels, each kernel scaled to unit norm."""
    w = weight.float()
    w = w / w.flatten(2).norm(dim=2)[..., None, None].clamp_min(1e-12)
    return w.abs().mean((0, 1))


# --------------------------------------------------------------------------- figures


def plot_filters(result: ClaimResult) -> dict:
    """The filters (top) and their Gabor fits (bottom), labelled with their family."""
    import numpy as np

    plt = pyplot()
    weights = np.array(result.data.get("weights", []))
    fitted = np.array(result.data.get("fitted", []))
    if weights.size == 0:
        return {}
    families = result.data["families"]
    n = len(weights)
    cols = min(n, 16)
    rows = 2 * math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.9 * cols + 0.4, 1.0 * rows + 0.5), squeeze=False)
    short = {"gabor": "G", "colour contrast": "C", "other": "-"}
    for i in range(rows * cols):
        ax = axes[i // cols][i % cols]
        ax.axis("off")
    for i in range(n):
        r, c = 2 * (i // cols), i % cols
        for row, arr in ((r, weights[i]), (r + 1, fitted[i])):
            img = arr.transpose(1, 2, 0) if arr.shape[0] == 3 else arr[0]
            bound = max(abs(weights[i]).max(), 1e-8)
            axes[row][c].imshow((0.5 + 0.5 * img / bound).clip(0, 1), cmap=None if arr.shape[0] == 3 else "gray",
                                vmin=0, vmax=1, interpolation="nearest")
        axes[r][c].set_title(f"{i} {short[families[i]]}", fontsize=7)
    fig.suptitle("filters (odd rows) and Gabor fits (even rows); G Gabor, C colour contrast, - other", fontsize=8)
    return {"filters": fig}


def plot_orientations(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    ori = np.array(result.data.get("orientations", []))
    fig = plt.figure(figsize=(3.2, 3.2))
    ax = fig.add_subplot(projection="polar")
    for a in ori:  # each orientation is an axis: draw both ends
        ax.plot([np.deg2rad(a), np.deg2rad(a + 180)], [1, 1], "o", color="#1f77b4")
        ax.plot([np.deg2rad(a), 0, np.deg2rad(a + 180)], [1, 0, 1], color="#1f77b4", alpha=0.6)
    ax.set_yticks([])
    ax.set_title(f"preferred orientations of {len(ori)} Gabor-like filters", fontsize=8)
    return {"orientations": fig}


def plot_scatter(result: ClaimResult) -> dict:
    plt = pyplot()
    s = result.data.get("scatter")
    if not s:
        return {}
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.scatter(s["null_x"], s["null_y"], s=8, color="#bbbbbb", label="re-initialised units")
    ax.scatter(s["x"], s["y"], s=18, color="#d62728", label="model units")
    ax.axvline(s["x_threshold"], color="black", lw=0.8, ls="--")
    ax.axhline(s["y_threshold"], color="black", lw=0.8, ls="--")
    ax.set_xlabel(s["xlabel"], fontsize=8)
    ax.set_ylabel(s["ylabel"], fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"{result.claim}: units in the {'upper' if s['above_y'] else 'lower'} right count", fontsize=8)
    return {"scatter": fig}


def plot_radial(result: ClaimResult) -> dict:
    """Radial tuning curves (polar: response against curve orientation) of the units found or examined."""
    import numpy as np

    plt = pyplot()
    radial = result.data.get("radial")
    if not radial:
        return {}
    units = radial["units"]
    show = [u for u in units if u in radial["found"]] or units
    show = show[:16]
    angles = np.deg2rad(np.array(radial["orientations"] + radial["orientations"][:1]))
    fig = plt.figure(figsize=(4.2, 4.2))
    ax = fig.add_subplot(projection="polar")
    curves = dict(zip(units, radial["curves"]))
    top = max(max(curves[u]) for u in show) or 1.0
    cmap = plt.get_cmap("hsv")
    for i, u in enumerate(show):
        values = np.array(curves[u] + curves[u][:1]) / top
        ax.plot(angles, values, color=cmap(i / max(len(show), 1)), lw=1.2, label=u)
        ax.fill(angles, values, color=cmap(i / max(len(show), 1)), alpha=0.12)
    ax.set_yticks([])
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title("radial tuning (degrees counter-clockwise, y up)", fontsize=8)
    return {"radial": fig}


def plot_curves(result: ClaimResult) -> dict:
    return {**plot_radial(result), **plot_scatter(result)}


def plot_tails(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    samples = result.data.get("samples") or {}
    if not samples:
        return {}
    fig, axes = plt.subplots(1, len(samples), figsize=(4.0 * len(samples), 3.0), squeeze=False)
    for ax, (layer, rows) in zip(axes[0], samples.items()):
        for i, row in enumerate(rows):
            v = np.array(row)
            v = v[v > 0]
            if len(v) < 50:
                continue
            hist, edges = np.histogram(v, bins=40, density=True)
            ax.semilogy(0.5 * (edges[1:] + edges[:-1]), np.where(hist > 0, hist, np.nan), ".-", ms=3,
                        label=f"{layer}:{i}")
        ax.set_xlabel("pre-activation (firing part)", fontsize=8)
        ax.set_ylabel("density (log)", fontsize=8)
        ax.legend(fontsize=6, frameon=False)
        ax.set_title(f"{layer}: a straight line is an exponential tail", fontsize=8)
    return {"tails": fig}


def plot_banding(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    kernel = np.array(result.data.get("mean_abs_kernel", []))
    if kernel.size == 0:
        return {}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(6.0, 2.8))
    a1.imshow(kernel, cmap="viridis", interpolation="nearest")
    a1.set_title(f"{result.layer}: mean |kernel|", fontsize=8)
    a1.axis("off")
    a2.hist(result.data["null"], bins=12, color="#bbbbbb", label="random weights")
    a2.axvline(result.data["score"], color="#d62728", label="model")
    a2.set_xlabel("banding |rows - columns| (share of variance explained)", fontsize=7)
    a2.legend(fontsize=7, frameon=False)
    return {"banding": fig}


# --------------------------------------------------------------------------- registration


GABOR_FIRST_LAYER = register_claim(Claim(
    id="gabor-first-layer",
    statement="The first conv layer is dominated by Gabor-like and colour-contrast filters.",
    source=f"{EARLY_VISION}, section conv2d0 (Gabor filters 44%, colour contrast 42%, other 14%)",
    url=EARLY_VISION_URL + "#conv2d0",
    applies_to="any conv net on images: its first conv layer",
    kind="vision",
    thresholds={"r2_floor": R2_FLOOR, "r2_null_quantile": 0.99, "osi_gabor": OSI_GABOR,
                "luminance_opponent_max": LUMINANCE_OPPONENT, "opponency_min": OPPONENCY_MIN, "dominant": 0.5,
                "p_value": 0.01},
    check=check_first_layer, applies=_applies_conv(1), plot=plot_filters,
))

ORIENTATION_TILING = register_claim(Claim(
    id="orientation-tiling",
    statement="The preferred orientations of the first layer's Gabor-like filters cover 0-180 degrees.",
    source=f"{EARLY_VISION}, section conv2d0 (Gabor filters at every orientation)",
    url=EARLY_VISION_URL + "#conv2d0",
    applies_to="any conv net on images: its first conv layer",
    kind="vision",
    thresholds={"min_units": 4, "max_gap_deg": 60.0},
    check=check_tiling, applies=_applies_conv(1), plot=plot_orientations,
))

COMPLEX_GABORS = register_claim(Claim(
    id="complex-gabors",
    statement="The second conv layer has complex Gabor units: orientation-selective units whose response to a "
              "grating does not depend on its phase.",
    source=f"{EARLY_VISION}, section conv2d1 (complex Gabor)",
    url=EARLY_VISION_URL + "#group_conv2d1_complex_gabor",
    applies_to="any conv net with two or more conv layers: the second conv layer (or --layer)",
    kind="vision",
    thresholds={"osi_floor": 0.3, "modulation_max": 0.5,
                "null": "orientation selectivity above the 99% Gumbel quantile of the best unit with F1/F0 <= modulation_max in each re-initialised copy"},
    check=check_complex, applies=_applies_conv(2), plot=plot_scatter,
))

CURVE_DETECTORS = register_claim(Claim(
    id="curve-detectors",
    statement="The network has curve detectors: units selective for curves of one orientation, preferring them "
              "to straight lines.",
    source=f"{CURVES}, sections 'Synthetic Curves' and 'Radial Tuning Curve'",
    url=CURVES_URL,
    applies_to="any conv net with two or more conv layers: the second conv layer (or --layer)",
    kind="vision",
    thresholds={"osi_floor": 0.4, "curvature_floor": 0.1, "polarity_ratio": 0.5, "polarity_shift": 45.0,
                "null": "score (osi x curvature preference) above the 99% Gumbel quantile of the best "
                        "candidate in each re-initialised copy"},
    check=check_curves, applies=_applies_conv(2), plot=plot_curves,
))

HIGH_LOW = register_claim(Claim(
    id="high-low-frequency",
    statement="The network has high-low frequency detectors: units that fire for high-frequency texture on one "
              "side of a boundary and low frequency on the other.",
    source=f"{EARLY_VISION}, section mixed3a (high-low frequency detectors); Schubert et al., 'High-Low "
           f"Frequency Detectors', Distill 2021",
    url="https://distill.pub/2021/circuits/frequency-edges/",
    applies_to="any conv net with two or more conv layers: the second conv layer (or --layer)",
    kind="vision",
    thresholds={"index_floor": 0.2, "direction_floor": 0.2,
                "null": "score (boundary index x direction index) above the 99% Gumbel quantile of the best "
                        "candidate in each re-initialised copy"},
    check=check_high_low, applies=_applies_conv(2), plot=plot_scatter,
))

EXPONENTIAL_TAIL = register_claim(Claim(
    id="exponential-tail",
    statement="In every layer after the first, the firing part of units' pre-activation distribution has an "
              "exponential tail.",
    source=f"{CURVES}, section 'Dataset Analysis' (footnote: observed by Brice Ménard over all but the first "
           f"layer of several networks)",
    url=CURVES_URL + "#dataset-analysis",
    applies_to="any conv net with two or more conv layers, on its test images",
    kind="vision",
    thresholds={"hazard_range": list(EXP_HAZARD_RANGE), "fraction": 0.5, "null": "more units than in a "
                "re-initialised copy on the same images"},
    check=check_tails, applies=_applies_conv(2), plot=plot_tails,
))

WEIGHT_BANDING = register_claim(Claim(
    id="weight-banding",
    statement="The last conv layer of a net with global average pooling has banded weights; with flatten + fc "
              "it does not.",
    source="Petrov et al., 'Weight Banding', Distill 2021, sections 'Where it occurs' and 'What affects banding'",
    url="https://distill.pub/2020/circuits/weight-banding/",
    applies_to="any conv net whose head is known (global average pooling or flatten): its last conv layer",
    kind="vision",
    thresholds={"min_difference": 0.1,
                "null": "largest banding of random weights of the same shape (8 draws)"},
    check=check_banding, applies=_applies_conv(1), plot=plot_banding,
))
