"""Vectorised, anti-aliased drawing primitives on torch tensors.

Everything here renders a whole batch at once from coordinate grids, so
drawing 50k images is a handful of tensor ops rather than a Python loop.
The same primitives render the ``shapes`` dataset and the synthetic stimuli
used by claim checks (gratings, curves, high-low frequency boundaries), which
is why they take explicit geometric parameters instead of random ones.

Conventions (shared by every function):

* Coordinates are in **pixels**, origin at the **image centre**, ``x`` to the
  right and ``y`` downwards (matrix order).  Pixel ``(i, j)`` has its centre at
  ``x = j - (W - 1) / 2``, ``y = i - (H - 1) / 2``.
* Angles are in radians, measured from the ``+x`` axis towards ``+y`` (so a
  positive angle turns clockwise on screen because ``y`` points down).
* Per-sample parameters are 1-D tensors of length ``B`` (or Python numbers /
  0-d tensors, broadcast to the batch).  The batch size is the longest
  parameter; with only scalars, ``B == 1``.
* Masks are float ``[B, H, W]`` in ``[0, 1]`` (the fraction of the pixel
  covered); images are float ``[B, 3, H, W]`` in ``[0, 1]``.
* Shapes are defined by signed distance fields (SDF, negative inside) turned
  into coverage with a 1-pixel linear ramp (:func:`coverage`).  That is a cheap
  box-filter anti-aliasing: edges at sub-pixel positions and thin strokes at
  any angle render smoothly instead of as jagged, aliased staircases, which
  matters because conv1 filters learn whatever high frequencies we feed them.

Only :func:`smooth_noise`, :func:`pixel_noise` and :func:`noise_background`
are random, and they draw exclusively from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

Param = Union[float, int, torch.Tensor]

__all__ = [
    "coord_grid",
    "coverage",
    "line_mask",
    "segment_mask",
    "halfplane_mask",
    "disc_mask",
    "ring_mask",
    "arc_mask",
    "gaussian_mask",
    "grating",
    "solid",
    "composite",
    "smooth_noise",
    "pixel_noise",
    "noise_background",
    "to_uint8",
    "to_float",
]


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def coord_grid(
    h: int,
    w: int,
    *,
    device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(y, x)``, each ``[H, W]``, origin at the centre.

    >>> y, x = coord_grid(4, 4)
    >>> x[0].tolist()
    [-1.5, -0.5, 0.5, 1.5]
    """
    ys = torch.arange(h, device=device, dtype=dtype) - (h - 1) / 2.0
    xs = torch.arange(w, device=device, dtype=dtype) - (w - 1) / 2.0
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return y, x


def _batch(*params: Param, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Turn scalars / 1-D tensors into ``[B, 1, 1]`` float tensors of one batch size."""
    ts = [torch.as_tensor(p, dtype=dtype) for p in params]
    for t in ts:
        if t.dim() > 1:
            raise ValueError(f"per-sample parameters must be scalars or 1-D, got shape {tuple(t.shape)}")
    sizes = {t.numel() for t in ts if t.dim() == 1}
    sizes.discard(1)
    if len(sizes) > 1:
        raise ValueError(f"per-sample parameters have inconsistent lengths {sorted(sizes)}")
    b = sizes.pop() if sizes else 1
    # Device follows the first tensor parameter so callers can render on GPU.
    device = next((t.device for t in ts if t.device.type != "cpu"), torch.device("cpu"))
    return [t.to(device).reshape(-1).expand(b).reshape(b, 1, 1) for t in ts]


def coverage(sdf: torch.Tensor, softness: float = 1.0) -> torch.Tensor:
    """Convert a signed distance (pixels, negative inside) into pixel coverage in [0, 1].

    A linear ramp ``softness`` pixels wide centred on the boundary: the exact
    area coverage of a straight edge crossing a unit pixel aligned with it.

    >>> coverage(torch.tensor([-2.0, 0.0, 2.0])).tolist()
    [1.0, 0.5, 0.0]
    """
    return (0.5 - sdf / softness).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------- #
# Masks (float [B, H, W] in [0, 1])
# --------------------------------------------------------------------------- #
def line_mask(
    h: int,
    w: int,
    angle: Param,
    thickness: Param,
    cx: Param = 0.0,
    cy: Param = 0.0,
    length: Optional[Param] = None,
) -> torch.Tensor:
    """Stroke along direction ``angle`` through ``(cx, cy)``.

    With ``length=None`` the line is infinite; otherwise it is a capsule
    (round caps) of that total length centred on ``(cx, cy)``.

    >>> m = line_mask(32, 32, angle=torch.tensor([0.0, math.pi / 2]), thickness=2.0)
    >>> m.shape  # a horizontal and a vertical line through the centre
    torch.Size([2, 32, 32])
    """
    if length is not None:
        a, t, x0, y0, ln = _batch(angle, thickness, cx, cy, length)
        dx, dy = torch.cos(a) * ln / 2, torch.sin(a) * ln / 2
        return segment_mask(h, w, (x0 - dx).flatten(), (y0 - dy).flatten(), (x0 + dx).flatten(),
                            (y0 + dy).flatten(), t.flatten())
    a, t, x0, y0 = _batch(angle, thickness, cx, cy)
    y, x = coord_grid(h, w, device=a.device)
    # Distance to the line = |component of (p - c) along the line's normal|.
    d = ((y - y0) * torch.cos(a) - (x - x0) * torch.sin(a)).abs()
    return coverage(d - t / 2)


def segment_mask(
    h: int, w: int, x0: Param, y0: Param, x1: Param, y1: Param, thickness: Param
) -> torch.Tensor:
    """Capsule-shaped stroke from ``(x0, y0)`` to ``(x1, y1)`` (round caps).

    >>> segment_mask(16, 16, -4.0, 0.0, 4.0, 0.0, thickness=2.0).shape
    torch.Size([1, 16, 16])
    """
    ax, ay, bx, by, t = _batch(x0, y0, x1, y1, thickness)
    y, x = coord_grid(h, w, device=ax.device)
    px, py = x - ax, y - ay
    vx, vy = bx - ax, by - ay
    # Project onto the segment and clamp to its ends: exact capsule SDF.
    s = ((px * vx + py * vy) / (vx * vx + vy * vy).clamp_min(1e-12)).clamp(0.0, 1.0)
    d = torch.hypot(px - s * vx, py - s * vy)
    return coverage(d - t / 2)


def halfplane_mask(h: int, w: int, angle: Param, cx: Param = 0.0, cy: Param = 0.0) -> torch.Tensor:
    """Half-plane on the side the unit normal ``(cos angle, sin angle)`` points to.

    The boundary passes through ``(cx, cy)`` perpendicular to ``angle``.  This is
    the "edge" stimulus: a step from 0 to 1 across a straight boundary.

    >>> m = halfplane_mask(8, 8, angle=0.0)  # right half covered
    >>> m[0, 0].tolist()
    [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    """
    a, x0, y0 = _batch(angle, cx, cy)
    y, x = coord_grid(h, w, device=a.device)
    d = (x - x0) * torch.cos(a) + (y - y0) * torch.sin(a)
    return coverage(-d)


def disc_mask(h: int, w: int, radius: Param, cx: Param = 0.0, cy: Param = 0.0) -> torch.Tensor:
    """Filled disc of ``radius`` pixels centred at ``(cx, cy)``.

    >>> disc_mask(32, 32, radius=5.0).sum().item() > 70  # ~ pi * 25
    True
    """
    r, x0, y0 = _batch(radius, cx, cy)
    y, x = coord_grid(h, w, device=r.device)
    return coverage(torch.hypot(x - x0, y - y0) - r)


def ring_mask(
    h: int, w: int, radius: Param, thickness: Param, cx: Param = 0.0, cy: Param = 0.0
) -> torch.Tensor:
    """Circle outline of ``radius`` (to the stroke centre) and stroke ``thickness``.

    >>> ring_mask(32, 32, radius=8.0, thickness=2.0)[0, 15, 15].item()  # hollow centre
    0.0
    """
    r, t, x0, y0 = _batch(radius, thickness, cx, cy)
    y, x = coord_grid(h, w, device=r.device)
    return coverage((torch.hypot(x - x0, y - y0) - r).abs() - t / 2)


def arc_mask(
    h: int,
    w: int,
    radius: Param,
    thickness: Param,
    angle: Param,
    span: Param,
    cx: Param = 0.0,
    cy: Param = 0.0,
) -> torch.Tensor:
    """Circular arc (round caps) of a circle centred at ``(cx, cy)``.

    ``angle`` is the direction from the circle centre to the arc's midpoint and
    ``span`` the arc's total angular extent, so the arc covers polar angles
    ``angle - span/2 .. angle + span/2``.  The curve therefore bulges towards
    ``angle``: a "curve detector" stimulus of orientation ``angle`` and radius
    ``radius``.  ``span >= 2*pi`` gives a full ring.

    >>> m = arc_mask(32, 32, radius=10.0, thickness=2.0, angle=-math.pi / 2, span=math.pi)
    >>> bool(m[0, 5, 15] > 0.5), bool(m[0, 26, 15] > 0.5)  # upper half only
    (True, False)
    """
    r, t, a, sp, x0, y0 = _batch(radius, thickness, angle, span, cx, cy)
    y, x = coord_grid(h, w, device=r.device)
    px, py = x - x0, y - y0
    half = (sp / 2).clamp(max=math.pi)
    # Polar angle relative to the arc's midpoint, wrapped to (-pi, pi].
    rel = torch.remainder(torch.atan2(py, px) - a + math.pi, 2 * math.pi) - math.pi
    on_arc = rel.abs() <= half
    d_ring = (torch.hypot(px, py) - r).abs()
    # Outside the angular window the nearest point of the arc is an endpoint.
    e1x, e1y = r * torch.cos(a + half), r * torch.sin(a + half)
    e2x, e2y = r * torch.cos(a - half), r * torch.sin(a - half)
    d_end = torch.minimum(torch.hypot(px - e1x, py - e1y), torch.hypot(px - e2x, py - e2y))
    d = torch.where(on_arc, d_ring, d_end)
    return coverage(d - t / 2)


def gaussian_mask(h: int, w: int, sigma: Param, cx: Param = 0.0, cy: Param = 0.0) -> torch.Tensor:
    """Isotropic Gaussian bump with peak 1 at ``(cx, cy)`` (a soft colour blob / Gabor envelope).

    >>> gaussian_mask(9, 9, sigma=2.0)[0, 4, 4].item()
    1.0
    """
    s, x0, y0 = _batch(sigma, cx, cy)
    y, x = coord_grid(h, w, device=s.device)
    return torch.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * s * s))


def grating(
    h: int,
    w: int,
    angle: Param,
    freq: Param,
    phase: Param = 0.0,
    cx: Param = 0.0,
    cy: Param = 0.0,
) -> torch.Tensor:
    """Sinusoidal grating ``0.5 + 0.5 * cos(2*pi*freq*u + phase)`` in [0, 1].

    ``u`` is the signed distance from ``(cx, cy)`` along direction ``angle``,
    i.e. ``angle`` is the direction of modulation (the wave vector); the stripes
    themselves run along ``angle + pi/2``.  ``freq`` is in cycles per pixel
    (Nyquist is 0.5), so the period is ``1 / freq`` pixels.  With ``phase=0`` a
    bright crest passes through ``(cx, cy)``.  Multiply by :func:`gaussian_mask`
    for a Gabor patch.

    >>> g = grating(32, 32, angle=0.0, freq=1 / 8)
    >>> round(g.mean().item(), 6)  # four whole periods average to mid-grey
    0.5
    """
    a, f, ph, x0, y0 = _batch(angle, freq, phase, cx, cy)
    y, x = coord_grid(h, w, device=a.device)
    u = (x - x0) * torch.cos(a) + (y - y0) * torch.sin(a)
    return 0.5 + 0.5 * torch.cos(2 * math.pi * f * u + ph)


# --------------------------------------------------------------------------- #
# Images (float [B, 3, H, W] in [0, 1])
# --------------------------------------------------------------------------- #
def _color(color: Union[torch.Tensor, Sequence[float]], b: int) -> torch.Tensor:
    c = torch.as_tensor(color, dtype=torch.float32)
    if c.dim() == 1:  # one colour for the whole batch
        c = c.expand(b, -1)
    if c.dim() == 2:
        return c.reshape(c.shape[0], c.shape[1], 1, 1)
    return c  # already an image [B, 3, H, W]


def solid(b: int, h: int, w: int, color: Union[torch.Tensor, Sequence[float]]) -> torch.Tensor:
    """A batch of flat images; ``color`` is ``[3]`` or ``[B, 3]``.

    >>> solid(2, 4, 4, [1.0, 0.0, 0.0]).shape
    torch.Size([2, 3, 4, 4])
    """
    return _color(color, b).expand(b, 3, h, w).clone()


def composite(
    background: torch.Tensor,
    mask: torch.Tensor,
    color: Union[torch.Tensor, Sequence[float]],
    alpha: Param = 1.0,
) -> torch.Tensor:
    """Paint ``color`` over ``background`` where ``mask`` is set ("over" blending).

    ``background`` is ``[B, 3, H, W]``, ``mask`` ``[B, H, W]`` (or ``[H, W]``),
    ``color`` is ``[3]``, ``[B, 3]`` or a full ``[B, 3, H, W]`` fill (e.g. a
    texture), ``alpha`` a per-sample opacity.  Returns a new tensor.

    >>> bg = solid(1, 8, 8, [0.0, 0.0, 0.0])
    >>> out = composite(bg, halfplane_mask(8, 8, 0.0), [1.0, 1.0, 1.0])
    >>> out[0, :, 0, 7].tolist(), out[0, :, 0, 0].tolist()
    ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    """
    b = background.shape[0]
    (al,) = _batch(alpha)
    m = mask.reshape(-1, 1, *mask.shape[-2:]) * al.reshape(-1, 1, 1, 1)
    c = _color(color, b)
    return torch.lerp(background, c.expand_as(background), m.expand_as(background))


def smooth_noise(
    b: int,
    h: int,
    w: int,
    generator: torch.Generator,
    cells: int = 4,
    channels: int = 1,
) -> torch.Tensor:
    """Low-frequency "value noise" in [-0.5, 0.5]: uniform values on a coarse
    ``(cells+1)^2`` lattice, bilinearly upsampled to ``[B, channels, H, W]``.

    Used for gentle background shading so that flat regions are not perfectly
    flat (otherwise "any gradient at all" would already identify a shape).

    >>> g = torch.Generator().manual_seed(0)
    >>> smooth_noise(2, 32, 32, g).shape
    torch.Size([2, 1, 32, 32])
    """
    coarse = torch.rand(b, channels, cells + 1, cells + 1, generator=generator) - 0.5
    # Separable bilinear upsampling (same result as F.interpolate(...,
    # align_corners=True)) written as two small matrix products with tent
    # weights: several times faster on CPU than upsample_bilinear2d for a large
    # batch of tiny images.
    return _interp_matrix(h, cells + 1) @ coarse @ _interp_matrix(w, cells + 1).T


def _interp_matrix(n: int, k: int) -> torch.Tensor:
    """``[n, k]`` linear-interpolation weights from ``k`` knots to ``n`` samples (align_corners)."""
    pos = torch.linspace(0.0, k - 1.0, n) if n > 1 else torch.zeros(1)
    return (1.0 - (pos[:, None] - torch.arange(k, dtype=torch.float32)).abs()).clamp_min(0.0)


def pixel_noise(
    b: int, h: int, w: int, std: Param, generator: torch.Generator, channels: int = 1
) -> torch.Tensor:
    """i.i.d. Gaussian noise ``[B, channels, H, W]`` with per-sample ``std``.

    One channel (the default) is luminance noise, broadcast over RGB, which is
    what sensor/texture noise mostly looks like and costs a third of the work.

    >>> g = torch.Generator().manual_seed(0)
    >>> pixel_noise(1, 64, 64, 0.1, g).std().item() < 0.12
    True
    """
    (s,) = _batch(std)
    s = s.reshape(-1, 1, 1, 1)
    return torch.randn(b, channels, h, w, generator=generator) * s


def noise_background(
    color: torch.Tensor,
    h: int,
    w: int,
    generator: torch.Generator,
    smooth_amp: Param = 0.1,
    pixel_std: Param = 0.0,
    cells: int = 4,
) -> torch.Tensor:
    """Background ``[B, 3, H, W]``: base ``color`` ``[B, 3]`` plus low-frequency
    colour shading of amplitude ``smooth_amp`` plus pixel noise ``pixel_std``
    (both per-sample).  Not clamped, so that later compositing and a final
    :func:`to_uint8` clamp only once.

    >>> g = torch.Generator().manual_seed(0)
    >>> noise_background(torch.full((4, 3), 0.5), 32, 32, g).shape
    torch.Size([4, 3, 32, 32])
    """
    b = color.shape[0]
    (amp,) = _batch(smooth_amp)
    img = color.reshape(b, 3, 1, 1) + smooth_noise(b, h, w, generator, cells, 3) * amp.reshape(-1, 1, 1, 1)
    if not (isinstance(pixel_std, (int, float)) and pixel_std == 0):
        img = img + pixel_noise(b, h, w, pixel_std, generator)
    return img


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Clamp a float image in [0, 1] and quantise to uint8 (round to nearest).

    >>> to_uint8(torch.tensor([-0.1, 0.5, 1.2])).tolist()
    [0, 128, 255]
    """
    return (x * 255.0 + 0.5).clamp_(0.0, 255.0).to(torch.uint8)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 image -> float32 in [0, 1] (inverse of :func:`to_uint8` up to rounding)."""
    return x.to(torch.float32) / 255.0
