"""Receptive fields: which input pixels each position of a conv layer can see.

One algorithm for the whole project: dataset examples crop each unit's strongest
position to its field (:mod:`.examples`), and the tuning probes centre their stimuli on
the field of the layer's centre position (:mod:`.tuning`).

>>> rf = receptive_field(run, "conv2")       # tutorial net on 32 x 32 images
>>> rf.size, rf.position, rf.box(*rf.position)
((14, 14), (5, 5), (10, 23, 10, 23))

**How.** By tracing: a batch of images, each with one input row (or column) set to NaN,
goes through the model up to the layer, and an output position turns NaN exactly when
that row is in its field. NaN spreads through every weight, zero or not, and through
max-pooling, so the result is the architecture's field (strides, padding, pooling and
dilation included), the same for a trained, a random and a planted model. A gradient
would not do: max-pooling passes it to one pixel of each window only, so a sampled
gradient misses the field's edges in deep max-pooled nets (tests/analysis/vision/test_receptive_field.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ...errors import InterpError
from ...hooks import capture_until, frozen, get_module, run_until
from ...subject import as_subject

PROBE_BATCH = 32
"""Input lines set to NaN per forward pass (one image each)."""


@dataclass(frozen=True)
class ReceptiveField:
    """Which input pixels each position of a layer sees.

    ``rows[h]`` is the inclusive ``(first, last)`` input row seen by output row ``h``
    (clipped to the image), ``cols[w]`` the same for columns; ``size`` is the largest
    clipped extent ``(height, width)`` over positions (the full extent wherever one
    position's field lies inside the image); ``image`` is the input ``(height, width)``.

    >>> rf.box(0, 0)            # (top, bottom, left, right), inclusive
    (0, 13, 0, 13)
    """

    rows: torch.Tensor  # (H_out, 2)
    cols: torch.Tensor  # (W_out, 2)
    size: tuple[int, int]
    image: tuple[int, int]

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)``, inclusive, of position ``(y, x)``."""
        (r0, r1), (c0, c1) = self.rows[y].tolist(), self.cols[x].tolist()
        return r0, r1, c0, c1

    @property
    def position(self) -> tuple[int, int]:
        """The centre position ``(row, col)`` of the layer's output map: where the tuning probes read a unit."""
        return len(self.rows) // 2, len(self.cols) // 2

    @property
    def center(self) -> tuple[float, float]:
        """Offset ``(dy, dx)`` in pixels of the centre position's field from the image centre (dy down, dx right).

        >>> receptive_field(run, "conv2").center   # 32 px image, field rows 10..23
        (1.0, 1.0)
        """
        top, bottom, left, right = self.box(*self.position)
        h, w = self.image
        return (top + bottom) / 2 - (h - 1) / 2, (left + right) / 2 - (w - 1) / 2

    def to_dict(self) -> dict:
        return {"size": list(self.size), "rows": self.rows.tolist(), "cols": self.cols.tolist()}


def receptive_field(run_or_model: Any, layer: str, input_shape: Sequence[int] | None = None) -> ReceptiveField | None:
    """The receptive field of every position of ``layer`` (``None`` for a layer without positions).

    ``run_or_model``: a run, a :class:`~interp.subject.Subject` or any ``nn.Module``
    (give ``input_shape=(C, H, W)`` for a bare module). The probe runs on the CPU (on a
    copy of a GPU model): cuDNN's FFT and Winograd kernels could spread a NaN beyond the
    true field.

    >>> receptive_field(run, "conv2").size
    (14, 14)
    """
    subject = as_subject(run_or_model)
    if input_shape is None:
        if subject.input_size is None:
            raise InterpError("give input_shape=(C, H, W): a bare module does not say its input size")
        input_shape = (3, subject.input_size, subject.input_size)
    c, h, w = (int(v) for v in input_shape)
    get_module(subject.model, layer)  # a clear error for an unknown layer
    model = subject.model if subject.device.type == "cpu" else copy.deepcopy(subject.model).cpu()
    rows = _line_masks(model, layer, (c, h, w), axis=0)
    if rows is None:
        return None
    row_ranges, col_ranges = _ranges(rows), _ranges(_line_masks(model, layer, (c, h, w), axis=1))
    if (row_ranges[:, 1] < 0).any() or (col_ranges[:, 1] < 0).any():
        raise InterpError(f"could not trace the receptive field of {layer}: some positions depend on no input pixel")
    size = (int((row_ranges[:, 1] - row_ranges[:, 0]).max()) + 1, int((col_ranges[:, 1] - col_ranges[:, 0]).max()) + 1)
    return ReceptiveField(row_ranges, col_ranges, size, (h, w))


def _line_masks(model: torch.nn.Module, layer: str, shape: tuple[int, int, int], axis: int) -> torch.Tensor | None:
    """``(n_in, n_out)`` bool: input row (axis 0) or column (axis 1) ``i`` reaches output line ``j``;
    ``None`` when the layer's output has no positions."""
    c, h, w = shape
    n = h if axis == 0 else w
    p = next(model.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32
    masks = []
    for start in range(0, n, PROBE_BATCH):
        lines = torch.arange(start, min(n, start + PROBE_BATCH))
        x = torch.zeros(len(lines), c, h, w, dtype=dtype)
        if axis == 0:
            x[torch.arange(len(lines)), :, lines, :] = float("nan")
        else:
            x[torch.arange(len(lines)), :, :, lines] = float("nan")
        with torch.no_grad(), frozen(model), capture_until(model, layer) as acts:
            run_until(model, x)
        out = acts[layer]
        if out.dim() != 4:
            return None
        nan = torch.isnan(out).any(1)  # (B, H_out, W_out)
        masks.append(nan.any(2 if axis == 0 else 1))
    return torch.cat(masks)


def _ranges(mask: torch.Tensor) -> torch.Tensor:
    """``(n_in, n_out)`` mask -> ``(n_out, 2)``: the first and last input line of each output line (-1: none)."""
    n_in = mask.shape[0]
    line = torch.arange(n_in)[:, None].expand_as(mask)
    first = torch.where(mask, line, n_in).min(0).values
    last = torch.where(mask, line, -1).max(0).values
    return torch.stack([first, last], 1)
