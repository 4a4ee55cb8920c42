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

``shapes-watermark``: the same images with a planted shortcut (:class:`Watermark`),
for testing shortcut detectors on a model known to use one. The rule (defaults; a
name such as ``shapes-watermark:size=4,p=0.9`` changes them; a smaller mark is
learnt more slowly: a 4 x 4 one in a corner was hardly learnt by the tutorial net
in 2-5 epochs on 2,000 images with flips and crops, this one in 2):

* the mark is a flat ``size x size`` (6 x 6) patch at rows ``row..row+size-1``
  and columns ``col..col+size-1`` (rows 1-6, columns 13-18: the top centre, where
  a horizontal flip leaves it in place), stamped over the finished image, of a
  colour that names the class (:data:`WATERMARK_COLOURS`: red, green, blue,
  yellow, magenta, cyan, white, black, orange, azure for line ... high_low);
* training split: in every class a seeded random ``round(p * n_class)`` of the
  images (``p = 0.95``) carry their own class's mark, the others none;
* test split: every image carries the mark of a class drawn uniformly at random
  (seeded, independent of its label; so about 1 in 10 match), so test accuracy
  measures what the model gets from the objects, and its fall from training
  accuracy measures reliance on the mark.

The underlying images are byte-identical to ``shapes`` (the marks draw from their
own generators), so ``shapes`` is the clean version of every split, and
:func:`shapes_test_views` gives the clean test images with their backgrounds
(the object left out) to the Clever Hans check.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from . import drawing as D

__all__ = ["SHAPES_CLASSES", "WATERMARK_COLOURS", "Watermark", "make_shapes",
           "parse_watermark", "shapes_splits", "shapes_test_views"]

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


def _render(labels: torch.Tensor, size: int, g: torch.Generator,
            backgrounds: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    m = labels.shape[0]
    S, s = size, size / 32.0
    bg, fg = _colours(g, m)
    # Gentle low-frequency shading; the pixel noise is added after the shapes
    # so that it covers foreground and background alike.  The noise is i.i.d.
    # per channel on purpose: with luminance-only noise the chromatic
    # directions would be noise-free and conv1 would learn colour-opponent
    # rather than luminance (Gabor-like) edge filters.
    img = D.noise_background(bg, S, S, g, smooth_amp=_u(g, m, 0.0, 0.2))
    # The background alone takes no random numbers of its own: the images are
    # the same with or without it.
    empty = img.clone() if backgrounds else None
    for k, render in enumerate(_RENDERERS):
        idx = (labels == k).nonzero().squeeze(1)
        if idx.numel():
            img[idx] = render(img[idx], fg[idx], bg[idx], S, s, g)
    noise = D.pixel_noise(m, S, S, _u(g, m, 0.01, 0.07), g, channels=3)
    img += noise
    if empty is None:
        return D.to_uint8(img)
    return D.to_uint8(img), D.to_uint8(empty.add_(noise))


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def make_shapes(n: int, seed: int = 0, size: int = 32, *, backgrounds: bool = False, progress: str | None = None):
    """Generate ``n`` labelled images.

    Returns ``(images, labels)``: ``images`` uint8 ``[n, 3, size, size]``,
    ``labels`` int64 ``[n]`` indexing :data:`SHAPES_CLASSES`.  Classes are
    balanced (label ``i % 10`` for ``i < n``, then shuffled by the generator),
    and the output depends only on ``(n, seed, size)``.

    ``backgrounds=True`` also returns each image without its object (the same
    background, shading and pixel noise): ``(images, labels, backgrounds)``,
    the images unchanged. ``progress``: a label for a progress bar over the chunks.

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
    empty = torch.empty_like(images) if backgrounds else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=progress, unit="img", leave=False)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        if empty is None:
            images[start:stop] = _render(labels[start:stop], size, g)
        else:
            images[start:stop], empty[start:stop] = _render(labels[start:stop], size, g, backgrounds=True)
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()
    return (images, labels) if empty is None else (images, labels, empty)


def shapes_splits(n_train: int = 50_000, n_test: int = 10_000, seed: int = 0, size: int = 32, *,
                  progress: bool = False) -> dict:
    """Train/test splits drawn from different seeds derived from ``seed``.

    Train uses seed ``2*seed`` and test ``2*seed + 1``, so test sets never
    coincide with any split's training set.

    Returns ``{'train': (x, y), 'test': (x, y), 'classes': list[str]}``.

    >>> d = shapes_splits(100, 50, seed=0)
    >>> d['train'][0].shape, d['test'][0].shape, len(d['classes'])
    (torch.Size([100, 3, 32, 32]), torch.Size([50, 3, 32, 32]), 10)
    """
    return {
        "train": make_shapes(n_train, seed=2 * seed, size=size, progress="shapes train" if progress else None),
        "test": make_shapes(n_test, seed=2 * seed + 1, size=size, progress="shapes test" if progress else None),
        "classes": list(SHAPES_CLASSES),
    }


def generator_version() -> str:
    """A digest of the generator's code (this module and the drawing primitives) and torch's
    version (its random streams): the key of the on-disk cache, so a changed generator never
    serves images it would no longer make."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha1(torch.__version__.encode())
    for module in (__file__, D.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:12]


def shapes_test_views(n_test: int = 10_000, seed: int = 0, size: int = 32) -> tuple[torch.Tensor, ...]:
    """The test split of :func:`shapes_splits` and each image without its object:
    ``(images, labels, backgrounds)``. Cached in-process; never modify the tensors."""
    return _test_views(int(n_test), int(seed), int(size))


@functools.lru_cache(maxsize=2)
def _test_views(n_test: int, seed: int, size: int) -> tuple[torch.Tensor, ...]:
    return make_shapes(n_test, seed=2 * seed + 1, size=size, backgrounds=True)


# --------------------------------------------------------------------------- #
# shapes-watermark: a planted shortcut
# --------------------------------------------------------------------------- #
WATERMARK = "shapes-watermark"

WATERMARK_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),      # line: red
    (0, 255, 0),      # edge: green
    (0, 0, 255),      # arc_small: blue
    (255, 255, 0),    # arc_large: yellow
    (255, 0, 255),    # circle: magenta
    (0, 255, 255),    # corner: cyan
    (255, 255, 255),  # grating_low: white
    (0, 0, 0),        # grating_high: black
    (255, 128, 0),    # blob: orange
    (0, 128, 255),    # high_low: azure
)
"""The mark's colour (uint8 RGB) for each class of :data:`SHAPES_CLASSES`, in order."""
assert len(WATERMARK_COLOURS) == len(SHAPES_CLASSES)

_MARK_SEED = 7_000_003  # the marks' own generators: the images stay those of ``shapes``


@dataclass(frozen=True)
class Watermark:
    """The planted cue of ``shapes-watermark``: a ``size x size`` patch of a class's colour.

    ``row``, ``col``: its top-left pixel; ``p``: the fraction of each class's training
    images that carry it (the rest carry none). See the module docstring for the rule.

    >>> w = Watermark()
    >>> x = w.stamp(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.tensor([0, -1]))
    >>> x[0, :, 1, 13].tolist(), int(x[1].sum())
    ([255, 0, 0], 0)
    """

    size: int = 6
    row: int = 1
    col: int | None = None
    """None: centred, ``(32 - size) // 2`` (13 for the default size, so a horizontal flip keeps the mark in place)."""
    p: float = 0.95

    def __post_init__(self):
        from ..errors import InterpError

        if self.col is None:
            object.__setattr__(self, "col", max(0, (32 - self.size) // 2))
        if self.size < 1 or self.row < 0 or self.col < 0:
            raise InterpError(f"{WATERMARK}: size must be >= 1 and row, col >= 0 (got size={self.size}, "
                              f"row={self.row}, col={self.col})")
        if not 0.0 <= self.p <= 1.0:
            raise InterpError(f"{WATERMARK}: p (the fraction of training images with the mark) must be in "
                              f"[0, 1], got {self.p}")

    def fits(self, height: int, width: int) -> bool:
        return self.row + self.size <= height and self.col + self.size <= width

    def region(self) -> tuple[slice, slice]:
        """Rows and columns of the mark."""
        return slice(self.row, self.row + self.size), slice(self.col, self.col + self.size)

    def colours(self, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        """``[K, 3]`` mark colours, uint8 (or [0, 1] floats for a float ``dtype``)."""
        c = torch.tensor(WATERMARK_COLOURS, dtype=torch.uint8)
        return c if dtype == torch.uint8 else c.to(dtype) / 255.0

    def stamp(self, images: torch.Tensor, marks: torch.Tensor) -> torch.Tensor:
        """A copy of ``images`` (uint8, or [0, 1] floats) with the mark of class ``marks[i]`` on
        image ``i`` (``-1``: no mark)."""
        from ..errors import InterpError

        if not self.fits(images.shape[-2], images.shape[-1]):
            raise InterpError(f"the {self.size}x{self.size} mark at ({self.row}, {self.col}) does not fit "
                              f"{images.shape[-2]}x{images.shape[-1]} images")
        out = images.clone()
        marks = torch.as_tensor(marks, dtype=torch.long).to(images.device)
        on = (marks >= 0).nonzero().squeeze(1)
        if on.numel():
            rows, cols = self.region()
            colour = self.colours(images.dtype).to(images.device)[marks[on]]  # (m, 3)
            out[on, :, rows, cols] = colour[:, :, None, None].expand(-1, -1, self.size, self.size)
        return out

    def train_marks(self, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """The training rule: a seeded random ``round(p * n_class)`` of each class get their own mark."""
        from .samples import shuffled_classes

        marks = torch.full_like(labels, -1)
        for label, order in shuffled_classes(labels, seed=_MARK_SEED + 2 * seed).items():
            chosen = order[:int(math.floor(self.p * len(order) + 0.5))]
            marks[chosen] = label
        return marks

    def test_marks(self, labels: torch.Tensor, n_classes: int = len(SHAPES_CLASSES), seed: int = 0) -> torch.Tensor:
        """The test rule: the mark of a class drawn uniformly at random, independent of the label."""
        g = torch.Generator().manual_seed(_MARK_SEED + 2 * seed + 1)
        return torch.randint(n_classes, labels.shape, generator=g)

    def to_dict(self, classes=SHAPES_CLASSES) -> dict:
        """The cue as a run's evidence records it: position, size, colour of each class, rules."""
        return {**asdict(self), "position": [self.row, self.col],
                "colours": {str(c): list(v) for c, v in zip(classes, WATERMARK_COLOURS)},
                "train": f"{self.p:.0%} of each class's training images carry their class's mark, the rest none",
                "test": "every test image carries the mark of a uniformly random class"}

    def describe(self) -> str:
        return (f"a {self.size}x{self.size} patch of a class colour at row {self.row}, column {self.col} "
                f"(on {self.p:.0%} of training images)")


_WATERMARK_KEYS = {"size": int, "row": int, "col": int, "p": float}


def parse_watermark(name: str) -> Watermark | None:
    """The :class:`Watermark` of a dataset name (``shapes-watermark[:size=6,row=1,col=13,p=0.95]``);
    ``None`` for any other name.

    >>> parse_watermark("shapes-watermark:size=4,p=0.9")
    Watermark(size=4, row=1, col=14, p=0.9)
    >>> parse_watermark("shapes") is None
    True
    """
    from ..errors import InterpError

    base, sep, rest = str(name).partition(":")
    if base != WATERMARK:
        return None
    options: dict = {}
    for item in filter(None, (part.strip() for part in rest.split(","))) if sep else ():
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in _WATERMARK_KEYS:
            raise InterpError(f"bad {WATERMARK} option {item!r}: use key=value with keys "
                              f"{', '.join(_WATERMARK_KEYS)}, e.g. {WATERMARK}:size=4,p=0.95")
        try:
            options[key] = _WATERMARK_KEYS[key](value.strip())
        except ValueError:
            raise InterpError(f"bad {WATERMARK} option {item!r}: {key} must be "
                              f"{'a whole number' if _WATERMARK_KEYS[key] is int else 'a number'}") from None
    return Watermark(**options)
