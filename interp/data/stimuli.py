"""Synthetic stimuli for claim checks: gratings, curves, lines and high-low frequency boundaries.

Everything is rendered in one batch with the vectorised primitives of
:mod:`interp.data.drawing` and returned as float images ``[N, 3, H, W]`` in ``[0, 1]``
(pass them through ``run.normalize``) together with the parameters of each image.

**Angle convention** (used by every claim check and stored in every result): degrees
counter-clockwise from the image's +x axis (to the right), with y pointing *up*, as in
a maths textbook. :mod:`interp.data.drawing` measures radians clockwise on screen (its y
points down), so ``drawing angle = -radians(ours)`` (:func:`drawing_angle`).

- A grating's or a line's *orientation* is the direction its bars run along (mod 180);
  0 is horizontal bars, 90 vertical bars.
- A curve's *orientation* is the direction from its centre of curvature to its
  midpoint, i.e. the way the curve bulges (mod 360): 90 is a cap (an upside-down U),
  270 a cup (a U), 0 a ")" and 180 a "(".
- A high-low boundary's *orientation* is the direction from its low-frequency side
  to its high-frequency side (mod 360).

Positions are offsets in pixels from the image centre in image coordinates
(``dy`` down, ``dx`` right): that is where the receptive field of the unit being
probed is centred (:func:`interp.analysis.vision.receptive_field.receptive_field`).

>>> images, params = curve_images(32, orientations=[0, 90, 180, 270], radii=[4.0, 8.0])
>>> images.shape, params["orientation"].tolist()[:3]
(torch.Size([8, 3, 32, 32]), [0.0, 0.0, 90.0])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from . import drawing as D

BACKGROUND = 0.5
"""Mid-grey background of every stimulus."""


def drawing_angle(degrees: torch.Tensor | float) -> torch.Tensor:
    """Our angle (degrees counter-clockwise, y up) as :mod:`interp.data.drawing`'s (radians clockwise, y down).

    >>> round(float(drawing_angle(90.0)), 4)  # straight up on screen
    -1.5708
    """
    return -torch.as_tensor(degrees, dtype=torch.float32) * (math.pi / 180.0)


def _grid(**axes: Sequence[float]) -> dict[str, torch.Tensor]:
    """Every combination of the given parameter values, as flat 1-D tensors (first axis slowest)."""
    names = list(axes)
    values = [torch.as_tensor(list(axes[n]), dtype=torch.float32) for n in names]
    mesh = torch.meshgrid(*values, indexing="ij")
    return {n: m.reshape(-1) for n, m in zip(names, mesh)}


def _grey(n: int, size: int) -> torch.Tensor:
    return torch.full((n, 3, size, size), BACKGROUND)


def blank_image(size: int) -> torch.Tensor:
    """One mid-grey image ``[1, 3, size, size]``: the baseline every response is compared with."""
    return _grey(1, size)


# --------------------------------------------------------------------------- gratings


def grating_images(size: int, orientations: Sequence[float], freqs: Sequence[float], phases: Sequence[float],
                   *, center: tuple[float, float] = (0.0, 0.0), contrast: float = 1.0
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Full-field sinusoidal gratings for every (orientation, frequency, phase).

    ``freqs`` in cycles per pixel (Nyquist 0.5); ``phases`` in degrees, measured at
    ``center``, where phase 0 puts a bright bar. Luminance only (the three channels equal);
    ``contrast`` 1 spans 0..1.

    >>> images, p = grating_images(16, [0, 90], [0.25], [0, 180])
    >>> images.shape
    torch.Size([4, 3, 16, 16])
    """
    p = _grid(orientation=orientations, freq=freqs, phase=phases)
    dy, dx = center
    # The bars run along `orientation`, so the wave vector points 90 degrees further round.
    g = D.grating(size, size, drawing_angle(p["orientation"] + 90.0), p["freq"], p["phase"] * (math.pi / 180.0),
                  cx=dx, cy=dy)
    images = (BACKGROUND + contrast * (g - 0.5))[:, None].expand(-1, 3, -1, -1).contiguous()
    return images, p


# ----------------------------------------------------------------------- curves, lines


def _strokes(mask: torch.Tensor, polarity: torch.Tensor) -> torch.Tensor:
    """Grey images with a white (polarity +1) or black (-1) stroke where ``mask`` is set."""
    n, h, w = mask.shape
    ink = (BACKGROUND + 0.5 * polarity).reshape(n, 1).expand(n, 3)
    return D.composite(_grey(n, h), mask, ink)


def curve_images(size: int, orientations: Sequence[float], radii: Sequence[float], *,
                 polarities: Sequence[float] = (1.0,), length: float | None = None, thickness: float = 1.5,
                 center: tuple[float, float] = (0.0, 0.0)) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Circular arcs for every (orientation, radius, polarity), each with its midpoint at ``center``.

    ``length`` is the arc length in pixels (default ``size / 2``), so curves of every
    radius cover the same stretch of the receptive field; an arc never exceeds a full
    circle. ``polarities``: +1 draws a white curve on grey, -1 a black one.

    >>> images, p = curve_images(33, [90], [6.0], thickness=2.0)   # a cap: an upside-down U
    >>> bool(images[0, 0, 16, 16] > 0.9), bool(images[0, 0, 26, 16] > 0.9)
    (True, False)
    """
    p = _grid(orientation=orientations, radius=radii, polarity=polarities)
    length = float(length if length is not None else size / 2)
    a = drawing_angle(p["orientation"])
    dy, dx = center
    r = p["radius"]
    # The circle's centre sits one radius behind the midpoint, opposite to the bulge.
    cx, cy = dx - r * torch.cos(a), dy - r * torch.sin(a)
    span = (length / r).clamp(max=2 * math.pi)
    mask = D.arc_mask(size, size, r, thickness, a, span, cx=cx, cy=cy)
    return _strokes(mask, p["polarity"]), p


def line_images(size: int, orientations: Sequence[float], *, polarities: Sequence[float] = (1.0,),
                length: float | None = None, thickness: float = 1.5, center: tuple[float, float] = (0.0, 0.0)
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Straight segments (a curve of infinite radius) through ``center`` for every orientation.

    ``orientations`` here are *curve* orientations: the segment drawn is the tangent
    of a curve of that orientation at its midpoint (it runs at ``orientation + 90``), so
    ``line_images(..., [theta])`` is the zero-curvature member of ``curve_images(..., [theta], radii)``.

    >>> images, p = line_images(33, [90], thickness=2.0)   # the tangent of a cap: a horizontal segment
    >>> bool(images[0, 0, 16, 8] > 0.9), bool(images[0, 0, 8, 16] > 0.9)
    (True, False)
    """
    p = _grid(orientation=orientations, polarity=polarities)
    length = float(length if length is not None else size / 2)
    dy, dx = center
    mask = D.line_mask(size, size, drawing_angle(p["orientation"] + 90.0), thickness, cx=dx, cy=dy, length=length)
    return _strokes(mask, p["polarity"]), p


# ------------------------------------------------------------------ high-low frequency


def high_low_images(size: int, orientations: Sequence[float], *, n_textures: int = 4, texture_std: float = 0.2,
                    grain: int = 1, center: tuple[float, float] = (0.0, 0.0), seed: int = 0
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """High-frequency texture on one side of a straight boundary, a smooth low-frequency one on the other.

    For every orientation (towards the high-frequency side) and each of ``n_textures``
    texture draws. Returns ``(images, params, controls)``: ``controls`` holds, per texture,
    the all-high image (texture everywhere) then the all-low image (smooth everywhere),
    ``[2 * n_textures, 3, H, W]``. The textures come only from a generator seeded with
    ``seed``; the same textures are used at every orientation.

    High: i.i.d. luminance noise (std ``texture_std``) in blocks of ``grain`` x ``grain``
    pixels (1: white up to Nyquist; larger for a network that sees coarser detail). Low:
    value noise on a 3x3 lattice (a few smooth bumps across the image) of the same std, so
    the two sides differ in spatial frequency, not in mean or contrast.

    >>> images, p, controls = high_low_images(32, [0, 180], n_textures=2)
    >>> images.shape, controls.shape
    (torch.Size([4, 3, 32, 32]), torch.Size([4, 3, 32, 32]))
    """
    g = torch.Generator().manual_seed(seed)
    cells = -(-size // grain)
    high = D.pixel_noise(n_textures, cells, cells, texture_std, g)  # [T, 1, cells, cells]
    high = high.repeat_interleave(grain, 2).repeat_interleave(grain, 3)[:, :, :size, :size]
    low = D.smooth_noise(n_textures, size, size, g, cells=2)
    low = low / low.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6) * texture_std
    p = _grid(orientation=orientations, texture=range(n_textures))
    t = p["texture"].long()
    dy, dx = center
    mask = D.halfplane_mask(size, size, drawing_angle(p["orientation"]), cx=dx, cy=dy)[:, None]  # high side
    images = BACKGROUND + mask * high[t] + (1 - mask) * low[t]
    controls = BACKGROUND + torch.cat([torch.stack([high[i], low[i]]) for i in range(n_textures)])
    return images.expand(-1, 3, -1, -1).clamp(0, 1), p, controls.expand(-1, 3, -1, -1).clamp(0, 1)
