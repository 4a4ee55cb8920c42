"""``shapes``: a procedurally generated, seeded 32x32 RGB classification dataset.

Embedded in the package (nothing to download) and fast enough to regenerate
on demand (50k images in a couple of seconds on two CPU cores).  It is built
so that a small CNN trained on it has to learn the kinds of features that
circuits-style interpretability looks for:

* oriented lines and step edges      -> Gabor-like / edge detectors in conv1,
* arcs of two radius ranges, circles -> curve detectors,
* gratings of low and high frequency -> frequency-tuned detectors,
* a high-frequency texture meeting a smooth region -> high-low frequency
  detectors,
* corners and colour blobs           -> junction / colour-contrast units.

Nuisance factors are shared by *all* classes and drawn from the same
distributions (background colour and shading, foreground colour, contrast,
pixel noise, position, orientation, stroke thickness), so no class can be
recognised from colour or brightness statistics alone: the label is carried
by geometry and spatial frequency.

Every random number comes from one ``torch.Generator`` seeded with ``seed``,
so the same ``(n, seed, size)`` always gives byte-identical tensors.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from . import drawing as D

__all__ = ["SHAPES_CLASSES", "make_shapes", "shapes_splits"]

SHAPES_CLASSES: tuple[str, ...] = (
    "line",          # long straight stroke
    "edge",          # step between two colours across a straight boundary
    "arc_small",     # tight curve (radius ~3.5-6.5 px), open
    "arc_large",     # gentle curve (radius ~10-16 px), open
    "circle",        # closed ring outline
    "corner",        # two strokes meeting at a vertex (an L / V junction)
    "grating_low",   # sinusoidal stripes, period ~7-12 px
    "grating_high",  # sinusoidal stripes, period ~2.6-3.8 px
    "blob",          # soft Gaussian colour blob, no sharp edges
    "high_low",      # high-frequency texture on one side of a boundary, smooth on the other
)

# Images are rendered in chunks of this many to keep the float working set
# small (cache friendly; a 50k float batch would be ~600 MB).  The chunk size
# is fixed, so results depend only on (n, seed, size).
_CHUNK = 4096


# --------------------------------------------------------------------------- #
# Random helpers (all draw from the explicit generator)
# --------------------------------------------------------------------------- #
def _u(g: torch.Generator, m: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(m, generator=g)


def _angle(g: torch.Generator, m: int) -> torch.Tensor:
    return _u(g, m, 0.0, 2 * math.pi)


def _colours(g: torch.Generator, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Background and foreground colours ``[m, 3]`` with a guaranteed contrast.

    Each channel of the foreground differs from the background by 0.12-0.55.
    The direction (lighter / darker) is shared by the three channels, so the
    contrast is mostly *luminance* contrast, as in natural images; that is what
    lets conv1 settle on clean, mostly achromatic Gabor-like filters instead of
    colour-specific ones.  A channel whose step would leave [0, 1] is flipped,
    which still yields a fair share of colour-opponent pairs, and the unequal
    per-channel magnitudes vary the hue freely.
    """
    bg = _u(g, 3 * m, 0.05, 0.95).reshape(m, 3)
    mag = _u(g, 3 * m, 0.12, 0.55).reshape(m, 3)
    sign = torch.where(torch.rand(m, 1, generator=g) < 0.5, -1.0, 1.0)
    fg = bg + sign * mag
    fg = torch.where((fg < 0) | (fg > 1), bg - sign * mag, fg).clamp(0.0, 1.0)
    return bg, fg


# --------------------------------------------------------------------------- #
# Per-class renderers.  Each gets the (unnoised) background [m,3,S,S], the
# foreground / background colours [m,3], the image size, a length scale
# (size / 32, so geometry scales with resolution) and the generator, and
# returns the drawn images [m,3,S,S] (float, unclamped).
# --------------------------------------------------------------------------- #
def _thickness(g: torch.Generator, m: int, s: float) -> torch.Tensor:
    return _u(g, m, 1.2, 3.0) * s


def _line(bg_img, fg, bg, S, s, g):
    m = bg_img.shape[0]
    a = _angle(g, m)
    cx, cy = _u(g, m, -5, 5) * s, _u(g, m, -5, 5) * s
    length = _u(g, m, 20, 40) * s
    mask = D.line_mask(S, S, a, _thickness(g, m, s), cx, cy, length)
    return D.composite(bg_img, mask, fg)


def _edge(bg_img, fg, bg, S, s, g):
    m = bg_img.shape[0]
    # Boundary near the centre so both sides are clearly visible.
    mask = D.halfplane_mask(S, S, _angle(g, m), _u(g, m, -6, 6) * s, _u(g, m, -6, 6) * s)
    return D.composite(bg_img, mask, fg)


def _arc(bg_img, fg, g, S, s, r_lo, r_hi, span_lo, span_hi):
    m = bg_img.shape[0]
    r = _u(g, m, r_lo, r_hi) * s
    a = _angle(g, m)
    span = _u(g, m, span_lo, span_hi)
    # Place the arc itself (the middle of its radial extent), not the circle
    # centre, near the image centre, so that large arcs stay in frame.
    px, py = _u(g, m, -4, 4) * s, _u(g, m, -4, 4) * s
    sag = r * (1 + torch.cos(span / 2)) / 2
    cx = px - torch.cos(a) * sag
    cy = py - torch.sin(a) * sag
    mask = D.arc_mask(S, S, r, _thickness(g, m, s), a, span, cx, cy)
    return D.composite(bg_img, mask, fg)


def _arc_small(bg_img, fg, bg, S, s, g):
    return _arc(bg_img, fg, g, S, s, 3.5, 6.5, math.radians(100), math.radians(200))


def _arc_large(bg_img, fg, bg, S, s, g):
    return _arc(bg_img, fg, g, S, s, 10.0, 16.0, math.radians(70), math.radians(140))


def _circle(bg_img, fg, bg, S, s, g):
    m = bg_img.shape[0]
    r = _u(g, m, 4.5, 11.0) * s
    lim = (13.5 * s - r).clamp_min(0)  # keep the whole ring in frame
    cx, cy = (2 * torch.rand(m, generator=g) - 1) * lim, (2 * torch.rand(m, generator=g) - 1) * lim
    mask = D.ring_mask(S, S, r, _thickness(g, m, s), cx, cy)
    return D.composite(bg_img, mask, fg)


def _corner(bg_img, fg, bg, S, s, g):
    m = bg_img.shape[0]
    a1 = _angle(g, m)
    # Opening capped well below 180 deg: wider Vs become hard to tell from a
    # gently curved arc at 32x32.
    a2 = a1 + _u(g, m, math.radians(45), math.radians(105))
    vx, vy = _u(g, m, -5, 5) * s, _u(g, m, -5, 5) * s
    l1, l2 = _u(g, m, 8, 14) * s, _u(g, m, 8, 14) * s
    t = _thickness(g, m, s)
    # Shift so the corner's arms, not its vertex, are centred in the image.
    mx = vx - (torch.cos(a1) * l1 + torch.cos(a2) * l2) / 4
    my = vy - (torch.sin(a1) * l1 + torch.sin(a2) * l2) / 4
    m1 = D.segment_mask(S, S, mx, my, mx + torch.cos(a1) * l1, my + torch.sin(a1) * l1, t)
    m2 = D.segment_mask(S, S, mx, my, mx + torch.cos(a2) * l2, my + torch.sin(a2) * l2, t)
    return D.composite(bg_img, torch.maximum(m1, m2), fg)


def _grating(bg_img, fg, g, S, s, p_lo, p_hi):
    m = bg_img.shape[0]
    period = _u(g, m, p_lo, p_hi) * s
    gr = D.grating(S, S, _angle(g, m), 1.0 / period, _angle(g, m))
    return D.composite(bg_img, gr, fg)


def _grating_low(bg_img, fg, bg, S, s, g):
    return _grating(bg_img, fg, g, S, s, 7.0, 12.0)


def _grating_high(bg_img, fg, bg, S, s, g):
    # Period >= 2.6 px keeps it clearly below Nyquist (2 px) so it reads as
    # stripes, not as a moire pattern.
    return _grating(bg_img, fg, g, S, s, 2.6, 3.8)


def _blob(bg_img, fg, bg, S, s, g):
    m = bg_img.shape[0]
    sigma = _u(g, m, 2.5, 5.5) * s
    mask = D.gaussian_mask(S, S, sigma, _u(g, m, -6, 6) * s, _u(g, m, -6, 6) * s)
    return D.composite(bg_img, mask, fg)


def _high_low(bg_img, fg, bg, S, s, g):
    m = bg_img.shape[0]
    side = D.halfplane_mask(S, S, _angle(g, m), _u(g, m, -6, 6) * s, _u(g, m, -6, 6) * s)
    # The textured side's mean colour is anywhere between bg and fg, so the
    # class is defined by the change in *frequency content*, not by a colour
    # step (with k ~ 0 there is no mean step at all; compare with "edge").
    k = torch.rand(m, 1, generator=g)
    base = torch.lerp(bg, fg, k).reshape(m, 3, 1, 1)
    amp = _u(g, m, 0.14, 0.26).reshape(m, 1, 1, 1)
    texture = base + torch.randn(m, 1, S, S, generator=g) * amp
    return D.composite(bg_img, side, texture)


_RENDERERS: tuple[Callable, ...] = (
    _line, _edge, _arc_small, _arc_large, _circle,
    _corner, _grating_low, _grating_high, _blob, _high_low,
)
assert len(_RENDERERS) == len(SHAPES_CLASSES)


def _render(labels: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    m = labels.shape[0]
    S, s = size, size / 32.0
    bg, fg = _colours(g, m)
    # Gentle low-frequency shading; the pixel noise is added after the shapes
    # so that it covers foreground and background alike.  The noise is i.i.d.
    # per channel on purpose: with luminance-only noise the chromatic
    # directions would be noise-free and conv1 would learn colour-opponent
    # rather than luminance (Gabor-like) edge filters.
    img = D.noise_background(bg, S, S, g, smooth_amp=_u(g, m, 0.0, 0.2))
    for k, render in enumerate(_RENDERERS):
        idx = (labels == k).nonzero().squeeze(1)
        if idx.numel():
            img[idx] = render(img[idx], fg[idx], bg[idx], S, s, g)
    img += D.pixel_noise(m, S, S, _u(g, m, 0.01, 0.07), g, channels=3)
    return D.to_uint8(img)


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def make_shapes(n: int, seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` labelled images.

    Returns ``(images, labels)``: ``images`` uint8 ``[n, 3, size, size]``,
    ``labels`` int64 ``[n]`` indexing :data:`SHAPES_CLASSES`.  Classes are
    balanced (label ``i % 10`` for ``i < n``, then shuffled by the generator),
    and the output depends only on ``(n, seed, size)``.

    >>> x, y = make_shapes(20, seed=0)
    >>> x.shape, x.dtype, y.bincount().tolist()
    (torch.Size([20, 3, 32, 32]), torch.uint8, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    labels = (torch.arange(n) % len(SHAPES_CLASSES))[torch.randperm(n, generator=g)]
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        images[start:stop] = _render(labels[start:stop], size, g)
    return images, labels


def shapes_splits(n_train: int = 50_000, n_test: int = 10_000, seed: int = 0, size: int = 32) -> dict:
    """Train/test splits drawn from different seeds derived from ``seed``.

    Train uses seed ``2*seed`` and test ``2*seed + 1``, so test sets never
    coincide with any split's training set.

    Returns ``{'train': (x, y), 'test': (x, y), 'classes': list[str]}``.

    >>> d = shapes_splits(100, 50, seed=0)
    >>> d['train'][0].shape, d['test'][0].shape, len(d['classes'])
    (torch.Size([100, 3, 32, 32]), torch.Size([50, 3, 32, 32]), 10)
    """
    return {
        "train": make_shapes(n_train, seed=2 * seed, size=size),
        "test": make_shapes(n_test, seed=2 * seed + 1, size=size),
        "classes": list(SHAPES_CLASSES),
    }
