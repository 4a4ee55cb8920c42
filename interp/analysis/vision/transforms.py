"""Transformation robustness: the random affine warps applied to the images at every step.

Lucid's ``standard_transforms`` (pad, jitter, zoom, rotate, jitter) are made for 224 px
images; :meth:`Transforms.for_size` shrinks them for the model's input, and one step's
transforms are composed into a single affine warp per image (:func:`affine_thetas`,
:func:`affine_grid`, one ``grid_sample``).

>>> t = Transforms.for_size(32)
>>> thetas = affine_thetas(t.draws(512, torch.Generator().manual_seed(0)), 32)   # (512, 2, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LUCID_SIZE = 224
"""The image size Lucid's transform defaults were made for (InceptionV1's input)."""
TRANSFORM_STREAM = 0x5DEECE66D  # xor-ed into an image's seed for its transform draws


@dataclass(frozen=True)
class Transforms:
    """Random transforms applied to the images at every step ("transformation robustness").

    Lucid's ``standard_transforms`` for 224 px images pad 12 px, jitter 8 px, zoom
    0.9-1.1, rotate -10..10 degrees and jitter 4 px again. A 32 px CIFAR image would be
    shifted by a third of its width by that, and its features smeared, so
    :meth:`for_size` scales them with the image size. All transforms of one step are
    composed into a single affine warp per image (one ``grid_sample``), with the areas
    moved in filled with grey, as Lucid's constant padding does.

    >>> Transforms.for_size(32)
    Transforms(jitter=1, scale=0.031, rotate=3.1, fill=0.5)
    """

    jitter: int
    """Random translation of up to this many whole pixels in each direction."""
    scale: float
    """Random zoom by a factor in ``[1 - scale, 1 + scale]``."""
    rotate: float
    """Random rotation of up to this many degrees either way."""
    fill: float = 0.5
    """Grey value of the areas moved into view."""

    @classmethod
    def for_size(cls, size: int) -> "Transforms":
        """Lucid's transforms shrunk for ``size`` px images (Lucid's own at 224 px and above).

        Jitter scales with the size (Lucid's 8 + 4 px at 224 is about 6 px either way,
        so 1 px at 32); zoom and rotation shrink more gently (small images tolerate a
        little, and a little still helps against pixel-level noise).
        """
        f = min(1.0, size / LUCID_SIZE)
        return cls(jitter=max(1, round(6 * f)), scale=round(0.1 * f ** 0.6, 3), rotate=round(10 * f ** 0.6, 1))

    def to_dict(self) -> dict:
        return {"kind": "affine", "jitter_px": self.jitter, "scale": [round(1 - self.scale, 4),
                round(1 + self.scale, 4)], "rotate_deg": self.rotate, "fill": self.fill}

    def draws(self, steps: int, generator: torch.Generator) -> torch.Tensor:
        """``(steps, 4)`` random draws for one image: dx, dy (pixels), zoom, angle (radians)."""
        shift = torch.randint(-self.jitter, self.jitter + 1, (steps, 2), generator=generator).float()
        u = torch.rand(steps, 2, generator=generator) * 2 - 1
        zoom = 1 + self.scale * u[:, 0]
        angle = math.radians(self.rotate) * u[:, 1]
        return torch.cat([shift, zoom[:, None], angle[:, None]], dim=1)


def affine_thetas(draws: torch.Tensor, size: int) -> torch.Tensor:
    """``(..., 4)`` draws -> ``(..., 2, 3)`` sampling matrices for ``F.affine_grid``.

    The warp zooms and rotates the image about its centre and then shifts it; the grid
    maps each output pixel back to where it samples the image (the inverse map). With
    zoom 1 and angle 0 a whole-pixel shift lands exactly on pixel centres.
    """
    dx, dy, zoom, angle = draws.unbind(-1)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    tx, ty = 2 * dx / size, 2 * dy / size  # pixels -> normalised coordinates
    # inverse of (rotate * zoom): R(-angle) / zoom, applied to (output - shift)
    row0 = torch.stack([cos, sin, -(cos * tx + sin * ty)], dim=-1)
    row1 = torch.stack([-sin, cos, -(-sin * tx + cos * ty)], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """``F.affine_grid(theta, [M, C, size, size], align_corners=False)`` for ``(M, 2, 3)`` thetas.

    The same grid from two broadcast sums per coordinate: a grid is linear in the pixel
    coordinates, and torch's version (a batched product with an inner size of 3 over a
    materialised base grid) costs several times more, which showed at 4,096 grids a block.
    """
    centres = (torch.arange(size, dtype=theta.dtype, device=theta.device) * 2 + 1) / size - 1
    x, y = centres.view(1, 1, size), centres.view(1, size, 1)
    grid = torch.empty(len(theta), size, size, 2, dtype=theta.dtype, device=theta.device)
    for k in range(2):  # output coordinate k = theta[k, 0] * x + theta[k, 1] * y + theta[k, 2]
        a, b, c = (theta[:, k, j].view(-1, 1, 1) for j in range(3))
        torch.add(a * x + c, b * y, out=grid[..., k])
    return grid
