"""How well a feature visualisation did: activation reached, specificity, failure flags,
and how it compares with the best natural image (:class:`NaturalMax`).

>>> quality = assess(run, visualize(run, "conv2"))
>>> quality[5].rank, quality[5].failures          # 1 = the unit's own image drives it most
(1, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from ...errors import unknown
from ...hooks import Recorder, frozen
from ...subject import as_subject
from .optimize import OBJECTIVES


RISE_MARGIN = 0.05
"""An optimisation "did not rise" when ``reached <= start + RISE_MARGIN * |start| + RISE_FLOOR``."""
RISE_FLOOR = 1e-6
FLAT_STD = 0.02
"""An image is "flat" when the standard deviation of all its values (channels and positions
together, on [0, 1]) is below this: a near-uniform, near-grey image, like the noise an
optimisation starts from (std about 0.003) when it never moved. A saturated uniform
colour (e.g. pure red, std 0.47) is not flat: it is what a colour unit wants."""
FAILURE_MESSAGES = {"not-rising": "the objective did not rise", "flat": "the image is flat"}
QUALITY_RULES = {
    "not-rising": f"reached <= start + {RISE_MARGIN} * |start| + {RISE_FLOOR}",
    "flat": f"std of the image's pixel values (all channels, [0, 1]) < {FLAT_STD}",
    "specificity": "rank of the unit among all units of the layer on its own image, by the objective's value "
                   "(z-scored across the layer's units on that image; ties count against the unit); 1 = specific",
    "ratio": "reached / natural (the best natural image's value of the same objective); none when natural <= 0",
}


@dataclass
class UnitQuality:
    """How well one unit's image did (image 0 of a :class:`~interp.analysis.vision.featvis.FeatureVis`).

    ``reached`` and ``start``: the objective on the final image and on the starting noise
    (step 0), without transforms. ``rank``: 1 when, on its own image, the unit is the most
    active unit of its layer (by the same objective, z-scored across the layer's units:
    ``z = (a_own - mean) / std`` over the units); ``z`` that score. ``natural``: the
    largest value of the objective over natural images (see :func:`~.natural.natural_max`), with the
    image's index. ``failures``: ``"not-rising"`` and/or ``"flat"`` (see
    :data:`QUALITY_RULES`); an image with failures is shown, flagged, never hidden.
    """

    unit: int
    reached: float
    start: float
    pixel_std: float
    rank: int | None = None
    z: float | None = None
    natural: float | None = None
    natural_index: int | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """reached / natural; None without a natural value or when it is not positive (no
        natural image drives the unit up: a ratio would then say nothing)."""
        if self.natural is None or self.natural <= 1e-12:
            return None
        return self.reached / self.natural

    @property
    def specific(self) -> bool | None:
        return None if self.rank is None else self.rank == 1

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def failure_text(self) -> str:
        """``"optimisation failed: the objective did not rise / the image is flat"``, or ``""``."""
        if not self.failures:
            return ""
        return "optimisation failed: " + " / ".join(FAILURE_MESSAGES.get(f, f) for f in self.failures)

    def to_dict(self) -> dict:
        def r(v):
            return None if v is None else round(float(v), 6)
        # the ratio from the rounded values, so that from_dict(to_dict()) gives the same dict
        rounded = UnitQuality(self.unit, r(self.reached), r(self.start), 0.0, natural=r(self.natural))
        return {"unit": int(self.unit), "reached": r(self.reached), "start": r(self.start),
                "pixel_std": r(self.pixel_std), "rank": self.rank, "z": r(self.z), "specific": self.specific,
                "natural": r(self.natural), "natural_index": self.natural_index, "ratio": r(rounded.ratio),
                "failed": self.failed, "failures": list(self.failures), "failure": self.failure_text()}

    @classmethod
    def from_dict(cls, d: dict) -> "UnitQuality":
        return cls(int(d["unit"]), float(d["reached"]), float(d["start"]), float(d["pixel_std"]), d.get("rank"),
                   d.get("z"), d.get("natural"), d.get("natural_index"), list(d.get("failures", [])))


def image_std(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` -> ``(N,)``: the std of each image's values (what "flat" is judged by)."""
    return images.detach().float().flatten(1).std(1, unbiased=False)


def failure_reasons(reached: float, start: float, pixel_std: float) -> list[str]:
    """The failure flags of one image (see :data:`QUALITY_RULES`)."""
    reasons = []
    if not reached > start + RISE_MARGIN * abs(start) + RISE_FLOOR:
        reasons.append("not-rising")
    if pixel_std < FLAT_STD:
        reasons.append("flat")
    return reasons


def layer_values(run: Any, layer: str, images: torch.Tensor, *, objective: str = "channel",
                 batch_size: int = 256, normalize: Callable | None = None) -> torch.Tensor:
    """``(N, C)``: the objective's value for every unit of ``layer`` on each image.

    ``images`` are ``(N, 3, H, W)`` floats in [0, 1] or uint8. ``objective`` ``"channel"``
    is a unit's mean over positions, ``"neuron"`` its centre activation (Lucent's).
    """
    subject = as_subject(run, normalize)
    if objective not in OBJECTIVES:
        raise unknown("objective", str(objective), OBJECTIVES)
    out = []
    with torch.no_grad(), frozen(subject.model), Recorder(subject.model, [layer]) as rec:
        for batch in images.split(batch_size):
            x = batch.float() / 255 if batch.dtype == torch.uint8 else batch.float()
            acts = rec.run(subject.normalize(x.to(subject.device)))[layer]
            if acts.dim() == 4 and objective == "neuron":
                acts = acts[:, :, acts.shape[2] // 2, acts.shape[3] // 2]
            elif acts.dim() > 2:
                acts = acts.flatten(2).mean(2)
            out.append(acts.float().cpu())
    return torch.cat(out)


def specificity(run: Any, layer: str, images: torch.Tensor, units: Sequence[int], *, objective: str = "channel",
                normalize: Callable | None = None) -> tuple[list[int], list[float]]:
    """For each image (the image of ``units[i]``), the rank of its own unit among all units
    of the layer (1 = the most active) and its z-score across the layer's units.

    The values are the objective's (mean over positions for ``channel``) on each image
    without transforms; a unit tied with others counts as below them.
    """
    vals = layer_values(run, layer, images, objective=objective, normalize=normalize)  # (N, C)
    own = vals[torch.arange(len(units)), torch.as_tensor(list(units))]
    others = vals >= own[:, None]
    others[torch.arange(len(units)), torch.as_tensor(list(units))] = False
    ranks = (1 + others.sum(1)).tolist()
    std = vals.std(1, unbiased=False)
    z = torch.where(std > 0, (own - vals.mean(1)) / std.clamp_min(1e-12), torch.zeros_like(own))
    return [int(r) for r in ranks], [float(v) for v in z]


def assess(run: Any, fv: Any, *, specific: bool = True,
           normalize: Callable | None = None) -> list[UnitQuality]:
    """The :class:`UnitQuality` of every unit's image 0 of ``fv`` (a
    :class:`~interp.analysis.vision.featvis.FeatureVis`; specificity unless ``specific=False``)."""
    images = fv.images[:, 0]
    stds = image_std(images).tolist()
    reached, start = fv.values[:, 0].tolist(), fv.initial_values[:, 0].tolist()
    ranks: list[int | None] = [None] * len(fv.units)
    zs: list[float | None] = [None] * len(fv.units)
    objective = fv.settings.get("objective")
    if specific and objective in OBJECTIVES:
        ranks, zs = specificity(run, fv.layer, images, fv.units, objective=objective, normalize=normalize)
    return [UnitQuality(u, reached[i], start[i], stds[i], ranks[i], zs[i],
                        failures=failure_reasons(reached[i], start[i], stds[i])) for i, u in enumerate(fv.units)]


def specific_share(quality: Sequence[UnitQuality]) -> tuple[int, int]:
    """``(units whose own image ranks them first, units with a rank)``."""
    ranked = [q for q in quality if q.rank is not None]
    return sum(q.rank == 1 for q in ranked), len(ranked)


# ----------------------------------------------------------------------- natural images


@dataclass
class NaturalMax:
    """Each unit's best natural image: the largest value of the objective over a dataset.

    ``indices[i]`` is the image's position in the dataset's test split (the whole split,
    even when only a ``sample`` of it was scanned); ``values[i]`` the objective there (the
    unit's mean activation over positions for ``channel``, as in :func:`visualize`).
    """

    layer: str
    units: list[int]
    values: torch.Tensor  # (U,)
    indices: torch.Tensor  # (U,) long
    objective: str
    dataset: str
    n_images: int
    sample: dict | None = None
    """:meth:`~interp.data.samples.Sample.to_dict` of the scanned subset, None for the whole split."""

    def value(self, unit: int) -> float:
        return float(self.values[self.units.index(unit)])

    def source(self) -> dict:
        return {"dataset": self.dataset, "n_images": self.n_images, "objective": self.objective,
                "sample": self.sample, "split": "test"}

    def to_dict(self) -> dict:
        return {**self.source(), "layer": self.layer, "units": list(self.units),
                "values": [round(float(v), 6) for v in self.values], "indices": [int(i) for i in self.indices]}

    @classmethod
    def from_dict(cls, d: dict) -> "NaturalMax":
        return cls(d["layer"], [int(u) for u in d["units"]], torch.tensor(d["values"], dtype=torch.float32),
                   torch.tensor(d["indices"], dtype=torch.long), d["objective"], d["dataset"], int(d["n_images"]),
                   d.get("sample"))


@dataclass
class LayerQuality:
    """The :class:`UnitQuality` of a saved rendering, judged after it was saved (a rendering
    saved before quality records existed); ``settings`` are the rendering's.

    >>> LayerQuality("conv2", "featvis/conv2", assess(run, fv), fv.settings)
    """

    layer: str
    folder: str
    """The rendering's folder, relative to the report root."""
    quality: list[UnitQuality]
    settings: dict = field(default_factory=dict)
