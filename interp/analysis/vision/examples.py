"""Dataset examples: the inputs that activate each unit of a layer most and least.

One streaming pass over the run's test split keeps, for every unit of the layer at
once, the top-k and bottom-k images. For a conv unit an image scores by the unit's
largest activation over positions (top) or its smallest (bottom), and the example is
the crop of the unit's receptive field at that position, cut from the original uint8
image; for an fc unit the whole image is the example.

>>> ex = dataset_examples(run, "conv2", k=9)
>>> ex.top_indices[5]            # test-split indices of unit 5's strongest images
>>> ex.top_crops.shape           # (units, k, 3, 14, 14): conv2's receptive field is 14 px
>>> interp.results.save(ex, run.report_dir() / "examples" / "conv2")

Files (:func:`interp.results.vision.save_examples`): ``unit_0005_top.png`` and
``unit_0005_bottom.png`` (strips of crops, strongest first), ``index.json`` (indices,
activations, positions, boxes), ``examples.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ...data.samples import class_counts
from ...errors import InterpError
from ...hooks import Recorder, frozen, get_module
from ...subject import as_subject
from .natural import split_images
from .receptive_field import receptive_field

GREY = 128  # fill of crop areas outside the image


# ------------------------------------------------------------------------------ examples


@dataclass
class DatasetExamples:
    """Top-k and bottom-k dataset examples of some units of one layer.

    ``top_indices[i, j]`` is the index (in the scanned images) of unit ``units[i]``'s
    j-th strongest image, ``top_values`` its activation there, ``top_positions`` the
    ``(y, x)`` of that activation (conv units), ``top_boxes`` the receptive-field box
    ``(top, bottom, left, right)`` cut out as ``top_crops``; ``bottom_*`` the same for
    the weakest (most negative) images.
    """

    layer: str
    units: list[int]
    dataset: str
    n_images: int
    top_indices: torch.Tensor  # (U, k) long
    top_values: torch.Tensor  # (U, k)
    bottom_indices: torch.Tensor
    bottom_values: torch.Tensor
    top_crops: torch.Tensor  # (U, k, 3, h, w) uint8
    bottom_crops: torch.Tensor
    top_positions: torch.Tensor | None = None  # (U, k, 2) long
    bottom_positions: torch.Tensor | None = None
    top_boxes: torch.Tensor | None = None  # (U, k, 4) long
    bottom_boxes: torch.Tensor | None = None
    receptive_field: dict | None = None
    settings: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return self.top_indices.shape[1]

    def index(self, unit: int) -> int:
        try:
            return self.units.index(unit)
        except ValueError:
            raise InterpError(f"unit {unit} of {self.layer} has no examples here; units: "
                              f"{', '.join(map(str, self.units[:20]))}") from None

    def __repr__(self) -> str:
        return (f"DatasetExamples({self.layer!r}, {len(self.units)} units, k={self.k}, "
                f"{self.n_images} images of {self.dataset})")


def dataset_examples(run: Any, layer: str, units: str | Sequence[int] | None = None, *, k: int = 9,
                     data: Any = None, batch_size: int = 256, progress: bool = False) -> DatasetExamples:
    """The ``k`` most and least activating test images of every selected unit of ``layer``.

    One pass over the images for the whole layer, with a running top-k per unit (the
    forward pass stops at the layer). ``data`` overrides the run's test split: an
    :class:`~interp.data.ImageData` (its test split), a folder path, or a uint8 tensor
    ``(N, C, H, W)``. Ties go to the earlier image.

    >>> ex = dataset_examples(run, "fc1", "0-9", k=5)
    """
    from tqdm.auto import tqdm

    from ...units import parse_unit_list

    subject = as_subject(run)
    get_module(subject.model, layer)
    images, labels, classes, dataset = split_images(run, data, progress=progress)
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise InterpError(f"dataset images must be uint8 (N, C, H, W); got {images.dtype} {tuple(images.shape)}")
    if subject.input_size and images.shape[-1] != subject.input_size:
        raise InterpError(f"the dataset's images are {images.shape[-1]} px but {subject.name} takes "
                          f"{subject.input_size} px images")
    if k < 1:
        raise InterpError(f"-k must be at least 1, got {k}")
    if batch_size < 1:
        raise InterpError(f"--batch-size must be at least 1, got {batch_size}")
    n = len(images)
    if n == 0:
        raise InterpError(f"the dataset {dataset} has no test images")
    k = min(k, n)
    device = subject.device

    top = bottom = None  # running (values, indices, positions), each (k', U)
    unit_index = None
    with torch.no_grad(), frozen(subject.model), Recorder(subject.model, [layer]) as rec:
        for start in tqdm(range(0, n, batch_size), desc=f"examples {layer}", unit="batch",
                          disable=not progress or None, leave=False):
            batch = images[start:start + batch_size].to(device)
            acts = rec.run(subject.normalize(batch))[layer]
            if unit_index is None:
                shape = tuple(acts.shape[1:])
                if isinstance(units, str) or units is None:
                    unit_list = parse_unit_list(units, shape[0], layer=layer)
                else:
                    unit_list = parse_unit_list(",".join(str(int(u)) for u in units), shape[0], layer=layer)
                unit_index = torch.tensor(unit_list, device=device)
                spatial = acts.dim() == 4
            a = acts.index_select(1, unit_index)  # (B, U, ...)
            index = torch.arange(start, start + len(batch), device=device)[:, None].expand(len(batch), len(unit_list))
            if spatial:
                flat = a.flatten(2)
                hi, hi_pos = flat.max(2)  # first maximum, like a brute-force argmax
                lo, lo_pos = flat.min(2)
            else:
                hi = lo = a
                hi_pos = lo_pos = torch.zeros_like(index)
            top = _merge(top, (hi, index, hi_pos), k, descending=True)
            bottom = _merge(bottom, (lo, index, lo_pos), k, descending=False)

    rf = receptive_field(subject, layer, tuple(images.shape[1:])) if spatial else None
    width = acts.shape[-1] if spatial else 1
    result = {}
    for name, (values, indices, positions) in (("top", top), ("bottom", bottom)):
        values, indices, positions = values.T.cpu(), indices.T.cpu(), positions.T.cpu()  # (U, k)
        if spatial:
            pos = torch.stack([positions // width, positions % width], -1)  # (U, k, 2) as (y, x)
            boxes = torch.tensor([[rf.box(y, x) for y, x in row.tolist()] for row in pos], dtype=torch.long)
            crops = crop_boxes(images, indices, boxes, rf.size)
        else:
            pos = boxes = None
            crops = images[indices.flatten()].view(*indices.shape, *images.shape[1:])
        result[name] = (indices, values, pos, boxes, crops)

    # Every image is scanned (no subset to sample); the record says what the whole split holds.
    settings = {"layer": layer, "k": k, "dataset": dataset, "split": "test", "n_images": n,
                "sample": "every image of the split",
                "class_counts": class_counts(labels, classes) if labels is not None else {},
                "score": "max over positions (top), min over positions (bottom)" if spatial else "activation",
                "ties": "earlier image first"}
    (ti, tv, tp, tb, tc), (bi, bv, bp, bb, bc) = result["top"], result["bottom"]
    return DatasetExamples(layer, unit_list, dataset, n, ti, tv, bi, bv, tc, bc, tp, bp, tb, bb,
                           rf.to_dict() if rf else None, settings)


def _merge(running, new, k: int, *, descending: bool):
    """Keep the k best of (running + new) per unit; stable, so ties keep the earlier image."""
    values, indices, positions = new
    if running is not None:
        values = torch.cat([running[0], values])
        indices = torch.cat([running[1], indices])
        positions = torch.cat([running[2], positions])
    order = torch.sort(values, dim=0, descending=descending, stable=True).indices[:k]
    return values.gather(0, order), indices.gather(0, order), positions.gather(0, order)


def crop_boxes(images: torch.Tensor, indices: torch.Tensor, boxes: torch.Tensor,
               size: tuple[int, int]) -> torch.Tensor:
    """Cut each box out of its uint8 image onto a grey canvas of the full receptive-field size.

    A box clipped by the image border keeps its place in the canvas (the missing side
    stays grey), so every crop shows the field at the same scale.
    """
    u, k = indices.shape
    c = images.shape[1]
    height, width = images.shape[2:]
    rh, rw = size
    out = torch.full((u, k, c, rh, rw), GREY, dtype=torch.uint8)
    for i in range(u):
        for j in range(k):
            top, bottom, left, right = boxes[i, j].tolist()
            crop = images[indices[i, j], :, top:bottom + 1, left:right + 1]
            h, w = crop.shape[1:]
            y, x = _offset(top, bottom, height, rh - h), _offset(left, right, width, rw - w)
            out[i, j, :, y:y + h, x:x + w] = crop
    return out


def _offset(first: int, last: int, length: int, missing: int) -> int:
    """Where a clipped span goes in its canvas: after the missing part when clipped at the
    start, first when clipped at the end, centred when clipped at both."""
    if missing == 0:
        return 0
    at_start, at_end = first == 0, last == length - 1
    if at_start and at_end:
        return missing // 2
    return missing if at_start else 0
