"""Measurements behind the Clever Hans check: accuracy on perturbed images, and the planted-cue test.

A model that still classifies well when the object is masked out, when only the image
border is left, or when the image is cut into shuffled patches is probably using a
shortcut rather than the object (:func:`perturbation_accuracy`); a model trained with a
planted mark (:class:`~interp.data.shapes.Watermark`) is tested by moving the mark to
another class (:func:`planted_shortcut`). The verdicts are :mod:`interp.claims.clever_hans`'s.

>>> acc = perturbation_accuracy(run, images, labels)   # full 0.93, perturbed["border_only"] 0.11, ...
>>> planted_shortcut(run, x, y, watermark, backgrounds=bg).drop

Perturbations (images in [0, 1], ``[N, C, H, W]``; masked areas take the mean colour of
all the images, so neither a new cue nor what was masked leaks in):

- ``grayscale``: luminance only (a control: shape tasks should keep their accuracy);
- ``centre_masked``: the central square of half the side is hidden;
- ``border_only``: only an outer frame of 1/8 of the side is left;
- ``patches_shuffled``: a 4 x 4 grid of patches is shuffled (local texture stays, global shape goes);
- ``low_pass``: Gaussian blur with sigma = side / 16 (fine detail goes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Sequence

import torch
import torch.nn.functional as F

from ...errors import InterpError
from ...stats import NULL_LEVEL, binomial_tail, bootstrap_ci, chance_level

PERTURBATIONS = ("grayscale", "centre_masked", "border_only", "patches_shuffled", "low_pass")
SHOULD_DESTROY = ("border_only", "patches_shuffled")
"""Perturbations that leave too little of an object-centred image to classify it: the defaults
whose surviving accuracy is flagged (override with ``destroy=``)."""


def _mean_fill(images: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    # The mean colour of the whole batch, the same for every image: a per-image mean would
    # leak what was masked (a bright object makes a brighter mean).
    mean = images.mean(dim=(0, 2, 3), keepdim=True)
    return torch.where(keep, images, mean.expand_as(images))


def perturb(images: torch.Tensor, kind: str, *, seed: int = 0) -> torch.Tensor:
    """One of :data:`PERTURBATIONS` applied to float images ``[N, C, H, W]`` in [0, 1].

    >>> perturb(torch.rand(2, 3, 32, 32), "border_only").shape
    torch.Size([2, 3, 32, 32])
    """
    x = images.float()
    n, c, h, w = x.shape
    if kind == "grayscale":
        if c != 3:
            return x
        lum = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return lum.expand_as(x).contiguous()
    if kind in ("centre_masked", "border_only"):
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        if kind == "centre_masked":
            inside = ((yy >= h // 4) & (yy < h - h // 4) & (xx >= w // 4) & (xx < w - w // 4))
            keep = ~inside
        else:
            b = max(1, h // 8)
            keep = (yy < b) | (yy >= h - b) | (xx < b) | (xx >= w - b)
        return _mean_fill(x, keep.view(1, 1, h, w))
    if kind == "patches_shuffled":
        g = torch.Generator().manual_seed(seed)
        ph, pw = h // 4, w // 4
        x = x[:, :, :4 * ph, :4 * pw]
        patches = x.unfold(2, ph, ph).unfold(3, pw, pw)  # (N, C, 4, 4, ph, pw)
        patches = patches.reshape(n, c, 16, ph, pw)
        order = torch.stack([torch.randperm(16, generator=g) for _ in range(n)])
        patches = patches[torch.arange(n)[:, None], :, order].transpose(1, 2)  # (N, C, 16, ph, pw)
        out = patches.reshape(n, c, 4, 4, ph, pw).permute(0, 1, 2, 4, 3, 5).reshape(n, c, 4 * ph, 4 * pw)
        return F.pad(out, (0, w - 4 * pw, 0, h - 4 * ph), mode="replicate") if (h % 4 or w % 4) else out
    if kind == "low_pass":
        sigma = h / 16
        radius = max(1, int(math.ceil(2.5 * sigma)))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-t * t / (2 * sigma * sigma))
        k = k / k.sum()
        x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    raise InterpError(f"unknown perturbation {kind!r}; use one of {', '.join(PERTURBATIONS)}")


def accuracy(run, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 256) -> float:
    """Top-1 accuracy of a run's classifier on [0, 1] float (or uint8) images."""
    return float(correct(run, images, labels, batch_size=batch_size).sum()) / max(len(labels), 1)


@dataclass
class PerturbationAccuracy:
    """Accuracy on full and perturbed images, with chance level and how much of the gain over chance survives."""

    full: float
    perturbed: dict[str, float]
    chance: float
    n: int
    destroy: tuple[str, ...] = SHOULD_DESTROY
    p_values: dict[str, float] = field(default_factory=dict)
    """Binomial p-value of each accuracy against chance."""

    def retention(self, kind: str) -> float:
        """``(acc - chance) / (full - chance)``: 1 keeps all of the gain over chance, 0 none."""
        gain = self.full - self.chance
        return (self.perturbed[kind] - self.chance) / gain if gain > 0 else float("nan")


def _binomial_p(acc: float, n: int, chance: float) -> float:
    return binomial_tail(round(acc * n), n, chance)


def perturbation_accuracy(run, images: torch.Tensor, labels: torch.Tensor, *,
                          kinds: Sequence[str] = PERTURBATIONS, destroy: Sequence[str] = SHOULD_DESTROY,
                          seed: int = 0) -> PerturbationAccuracy:
    """Accuracy on the images and on each perturbation of them."""
    for kind in (*kinds, *destroy):
        if kind not in PERTURBATIONS:
            raise InterpError(f"unknown perturbation {kind!r}; use one of {', '.join(PERTURBATIONS)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    n_classes = len(run.classes) or int(labels.max()) + 1
    chance = chance_level(labels, n_classes)
    full = accuracy(run, x, labels)
    perturbed = {k: accuracy(run, perturb(x, k, seed=seed), labels) for k in kinds}
    p_values = {k: _binomial_p(v, len(labels), chance) for k, v in {"full": full, **perturbed}.items()}
    return PerturbationAccuracy(full, perturbed, chance, len(labels), tuple(destroy), p_values)


# -------------------------------------------------------------------------- a planted cue


PLANTED_CONDITIONS = ("cue_consistent", "cue_random", "cue_removed", "cue_decorrelated", "object_removed")
"""The inputs of the planted-cue test: the mark of the true class (as in training), of a uniformly
random class (the dataset's test rule), none (the clean image), of another class, and the true
class's mark on the image's background with the object left out."""
PERMUTATIONS = 20
"""Random re-assignments of the marks to classes that form the null of the accuracy drop."""


@torch.no_grad()
def correct(run, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Whether the run's classifier gets each image right (bool ``[N]``); uint8 or [0, 1] float images."""
    model = run.model.eval()
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    out = [model(run.normalize(x.to(device))).argmax(-1).cpu() == y
           for x, y in zip(images.split(batch_size), labels.split(batch_size))]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def _null_quantile(values: list[float], level: float = NULL_LEVEL) -> float:
    """A normal ``level`` quantile of ``values``, never below the largest one."""
    if not values:
        return float("nan")
    t = torch.tensor(values, dtype=torch.float64)
    z = NormalDist().inv_cdf(level)
    sd = float(t.std()) if len(t) > 1 else 0.0
    return max(float(t.mean()) + z * sd, float(t.max()))


@dataclass
class ShortcutTest:
    """The planted-cue test of one run (:func:`planted_shortcut`).

    ``accuracy`` per condition (:data:`PLANTED_CONDITIONS`); ``drop``: accuracy with the cue as
    trained minus with another class's cue, with its bootstrap 95% CI over images; ``null``: the
    99% quantile of the drop under random re-assignments of the marks to classes
    (``null_drops``), and the reference run's drop's CI high when there is one;
    ``reference``: the same numbers for a run trained without the cue.
    """

    cue: dict
    accuracy: dict[str, float]
    chance: float
    n: int
    drop: float
    drop_ci: tuple[float, float]
    null: float
    null_drops: list[float]
    object_p: float
    object_retention: float
    reference: dict | None = None
    correct: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)


def cue_dict(run, watermark) -> dict:
    classes = getattr(run, "classes", None)
    return watermark.to_dict(classes) if classes else watermark.to_dict()


def _derangement_marks(labels: torch.Tensor, n_classes: int, g: torch.Generator) -> torch.Tensor:
    return (labels + torch.randint(1, n_classes, labels.shape, generator=g)) % n_classes


def planted_shortcut(run, images: torch.Tensor, labels: torch.Tensor, watermark, *,
                     backgrounds: torch.Tensor | None = None, reference=None, seed: int = 0,
                     permutations: int = PERMUTATIONS) -> ShortcutTest:
    """Does ``run`` rely on the planted mark ``watermark`` (:class:`~interp.data.shapes.Watermark`)?

    ``images``: clean (unmarked) images with their ``labels``; ``backgrounds``: the same images
    without their objects (None: not measured); ``reference``: a run trained on the same images
    without the mark (a run or its name), measured on the same inputs.

    >>> x, y, bg = shapes_test_views(1000)
    >>> planted_shortcut(run, x, y, parse_watermark(run.config.data.name), backgrounds=bg).drop
    """
    if isinstance(reference, (str, bytes)) or hasattr(reference, "__fspath__"):
        from ...runs import load_run

        reference = load_run(reference)
    if reference is not None and list(reference.classes) != list(run.classes):
        raise InterpError(f"the reference run {getattr(reference, 'name', '')!r} has other classes than "
                          f"{getattr(run, 'name', 'the run')!r}; train it on the same data without the mark")
    n_classes = len(run.classes) or int(labels.max()) + 1
    g = torch.Generator().manual_seed(int(seed))
    inputs = {"cue_consistent": watermark.stamp(images, labels),
              "cue_random": watermark.stamp(images, torch.randint(n_classes, labels.shape, generator=g)),
              "cue_removed": images,
              "cue_decorrelated": watermark.stamp(images, _derangement_marks(labels, n_classes, g))}
    if backgrounds is not None:
        inputs["object_removed"] = watermark.stamp(backgrounds, labels)
    got = {k: correct(run, x, labels) for k, x in inputs.items()}
    acc = {k: float(v.float().mean()) for k, v in got.items()}
    chance = chance_level(labels, n_classes)
    diff = got["cue_consistent"].double() - got["cue_decorrelated"].double()
    drop = float(diff.mean())
    drop_ci = bootstrap_ci(diff, seed=seed)
    # The null: under "the model does not know which mark goes with which class" the true
    # assignment is one random assignment among others.
    null_drops = []
    for _ in range(permutations):
        perm = torch.randperm(n_classes, generator=g)
        null_drops.append(float(correct(run, watermark.stamp(images, perm[labels]), labels).double().mean())
                          - acc["cue_decorrelated"])
    null = _null_quantile(null_drops)
    ref = None
    if reference is not None:
        r_got = {k: correct(reference, x, labels) for k, x in inputs.items()}
        r_diff = r_got["cue_consistent"].double() - r_got["cue_decorrelated"].double()
        r_ci = bootstrap_ci(r_diff, seed=seed)
        ref = {"name": getattr(reference, "name", "reference"),
               "accuracy": {k: float(v.float().mean()) for k, v in r_got.items()},
               "drop": float(r_diff.mean()), "drop_ci": r_ci,
               "excess": float((diff - r_diff).mean()), "excess_ci": bootstrap_ci(diff - r_diff, seed=seed)}
        null = max(null, r_ci[1])
    if "object_removed" in acc:
        k = int(got["object_removed"].sum())
        object_p = binomial_tail(k, len(labels), chance)
        gain = acc["cue_consistent"] - chance
        object_retention = (acc["object_removed"] - chance) / gain if gain > 0 else float("nan")
    else:
        object_p, object_retention = float("nan"), float("nan")
    return ShortcutTest(cue_dict(run, watermark), acc, chance, len(labels), drop, drop_ci, null, null_drops,
                        object_p, object_retention, ref, got)
