"""One sampling rule for every analysis that looks at a subset of a dataset.

An analysis that examines "N test images" takes them with :func:`stratified_sample` (or
:func:`sample_images`): a seeded, class-balanced random subset, kept in stored order, and
records the :class:`Sample` (its size, seed and images per class) in its result.

>>> labels = torch.arange(10).repeat_interleave(100)       # 10 classes x 100, sorted by class
>>> s = stratified_sample(labels, 25, seed=0)
>>> s.size, sorted(s.class_counts.values())                 # 2 or 3 of every class
(25, [2, 2, 2, 2, 2, 3, 3, 3, 3, 3])
>>> s.to_dict()["population"], s.seed
(1000, 0)
"""

# Never "the first N" images: an ImageFolder is stored class by class, so they would all be one class.

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Sequence

import torch

from ..errors import InterpError

__all__ = ["Sample", "per_class_sample", "random_sample", "sample_images", "shuffled_classes", "stratified_sample"]

_SHOWN_CLASSES = 10  # describe() lists this many classes, then "+N more"


@dataclass(frozen=True, eq=False)
class Sample:
    """Which images of a population an analysis used, and why those.

    ``indices``: positions in the population (long, sorted ascending); ``class_counts``:
    images per class in the sample, keyed by class name (``str(label)`` without names),
    empty for unlabelled images (a plain seeded random subset); ``requested``: the size
    asked for; ``population``: how many images there were to choose from.
    """

    indices: torch.Tensor
    class_counts: dict[str, int]
    seed: int
    requested: int
    population: int

    @property
    def size(self) -> int:
        return int(self.indices.numel())

    @property
    def stratified(self) -> bool:
        return bool(self.class_counts)

    def to_dict(self) -> dict:
        """Plain JSON types (the indices are left out: they can be drawn again from the seed)."""
        return {"size": self.size, "seed": int(self.seed), "requested": int(self.requested),
                "population": int(self.population),
                "class_counts": {str(k): int(v) for k, v in self.class_counts.items()}}

    def describe(self, what: str = "test images") -> str:
        """One line, e.g. ``1,000 of 10,000 test images, seed 0, stratified: airplane 100, automobile 100, ...``."""
        if self.size >= self.population:
            head = f"all {self.population:,} {what}"
        else:
            head = f"{self.size:,} of {self.population:,} {what}, seed {self.seed}"
        if not self.class_counts:
            return head if self.size >= self.population else head + ", random (no labels)"
        items = list(self.class_counts.items())
        shown = ", ".join(f"{name} {count:,}" for name, count in items[:_SHOWN_CLASSES])
        if len(items) > _SHOWN_CLASSES:
            shown += f", +{len(items) - _SHOWN_CLASSES} more classes"
        return f"{head}{'' if self.size >= self.population else ', stratified'}: {shown}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sample):
            return NotImplemented
        return self.to_dict() == other.to_dict() and torch.equal(self.indices, other.indices)

    def __repr__(self) -> str:
        return f"Sample({self.describe('images')})"


def _class_name(label: int, classes: Sequence[str] | None) -> str:
    if classes is not None and 0 <= label < len(classes):
        return str(classes[label])
    return str(label)


def class_counts(labels: torch.Tensor, classes: Sequence[str] | None = None) -> dict[str, int]:
    """Images per class, every named class included (0 where there are none).

    >>> class_counts(torch.tensor([0, 0, 2]), ["a", "b", "c"])
    {'a': 2, 'b': 0, 'c': 1}
    """
    present, counts = torch.unique(_labels(labels, "class_counts"), sorted=True, return_counts=True)
    per = dict(zip(present.tolist(), counts.tolist()))
    keys = sorted(set(per) | set(range(len(classes) if classes is not None else 0)))
    return {_class_name(k, classes): int(per.get(k, 0)) for k in keys}


def _check_n(n: int) -> int:
    try:
        if isinstance(n, bool):
            raise TypeError
        n = operator.index(n)
    except TypeError:
        raise InterpError(f"the sample size must be a whole number of images, got {n!r}") from None
    if n <= 0:
        raise InterpError(f"the sample size must be at least 1 image, got {n}")
    return n


def _labels(labels: torch.Tensor, what: str) -> torch.Tensor:
    if labels is None:
        raise InterpError(f"{what} needs labels; for unlabelled images use sample_images(images, None, n)")
    labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise InterpError(f"labels must be one label per image (1-D), got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.is_complex():
        raise InterpError(f"labels must be integer class indices, got {labels.dtype}")
    return labels.detach().to("cpu", torch.long)


def _shuffled(inverse: torch.Tensor, n_classes: int, g: torch.Generator) -> list[torch.Tensor]:
    # Each class's order is drawn first, in label order and independent of n: a larger
    # sample with the same seed contains the smaller one's images of every class.
    members = [(inverse == c).nonzero().flatten() for c in range(n_classes)]
    return [m[torch.randperm(len(m), generator=g)] for m in members]


def shuffled_classes(labels: torch.Tensor, *, seed: int = 0) -> dict[int, torch.Tensor]:
    """Every class's indices in a seeded random order: ``{label: indices}``, labels ascending.

    The order :func:`stratified_sample` and :func:`per_class_sample` take images in; use it
    to filter a class first (e.g. correctly classified images) and then take the first few.

    >>> order = shuffled_classes(torch.tensor([0, 0, 1, 0, 1]), seed=0)
    >>> sorted(order[0].tolist()), sorted(order[1].tolist())
    ([0, 1, 3], [2, 4])
    """
    labels = _labels(labels, "shuffled_classes")
    present, inverse = torch.unique(labels, sorted=True, return_inverse=True)
    g = torch.Generator().manual_seed(int(seed))
    return dict(zip(present.tolist(), _shuffled(inverse, len(present), g)))


def per_class_sample(labels: torch.Tensor, per_class: int, *, seed: int = 0,
                     classes: Sequence[str] | None = None) -> Sample:
    """A seeded random ``per_class`` images of every class (all of a class that has fewer), sorted.

    Unlike :func:`stratified_sample` a short class's missing images are not made up by
    other classes (a gallery wants the same number of every class). With equal classes it
    picks the same images as ``stratified_sample(labels, per_class * K, seed=seed)``.

    >>> per_class_sample(torch.tensor([0, 0, 0, 1]), 2, classes=["a", "b"]).class_counts
    {'a': 2, 'b': 1}
    """
    per_class = _check_n(per_class)
    labels = _labels(labels, "per_class_sample")
    order = shuffled_classes(labels, seed=seed)
    picked = {k: v[:per_class] for k, v in order.items()}
    keys = sorted(set(order) | set(range(len(classes) if classes is not None else 0)))
    chosen = torch.cat(list(picked.values())) if picked else torch.empty(0, dtype=torch.long)
    return Sample(chosen.sort().values, {_class_name(k, classes): int(len(picked.get(k, ()))) for k in keys},
                  int(seed), per_class * len(order), len(labels))


def stratified_sample(labels: torch.Tensor, n: int, *, seed: int = 0,
                      classes: Sequence[str] | None = None) -> Sample:
    """A seeded, class-balanced random subset of ``n`` of the positions of ``labels``.

    Each class gets ``n // K`` images or one more (K: the classes present); the extra ones
    go to classes drawn by the seeded generator. A class with fewer images than its share
    gives all it has and the rest is spread over the other classes (then the extra ones go
    to the classes with the most images left). Within a class the images are a seeded
    random subset; the indices come back sorted. ``n >= len(labels)`` takes every image.
    Only a ``torch.Generator`` seeded with ``seed`` is used, never the global RNG.

    >>> s = stratified_sample(torch.tensor([0, 0, 0, 0, 1, 1, 2]), 4, classes=["a", "b", "c"])
    >>> s.class_counts, s.indices.tolist() == sorted(s.indices.tolist())
    ({'a': 2, 'b': 1, 'c': 1}, True)
    """
    labels = _labels(labels, "stratified_sample")
    n = _check_n(n)
    population = len(labels)
    present, inverse, counts = torch.unique(labels, sorted=True, return_inverse=True, return_counts=True)
    present_list = present.tolist()
    # Every named class is reported, with 0 where the population has none.
    keys = sorted(set(present_list) | set(range(len(classes) if classes is not None else 0)))

    if n >= population:
        return Sample(torch.arange(population), class_counts(labels, classes), int(seed), n, population)

    g = torch.Generator().manual_seed(int(seed))
    members = list(_shuffled(inverse, len(present_list), g))
    capacity = counts.tolist()
    alloc = [0] * len(capacity)
    active = list(range(len(capacity)))
    remaining, ran_out = n, False
    while remaining > 0 and active:
        share = remaining // len(active)
        short = [c for c in active if capacity[c] - alloc[c] <= share]
        if short:  # these give all they have; their unfilled share goes to the others
            for c in short:
                remaining -= capacity[c] - alloc[c]
                alloc[c] = capacity[c]
            active = [c for c in active if c not in short]
            ran_out = True
            continue
        for c in active:
            alloc[c] += share
        remaining -= share * len(active)
        if remaining:  # fewer than len(active) left, every active class can take one more
            order = torch.randperm(len(active), generator=g).tolist()
            pick = [active[i] for i in order]
            if ran_out:
                pick.sort(key=lambda c: capacity[c] - alloc[c], reverse=True)  # stable: ties stay random
            for c in pick[:remaining]:
                alloc[c] += 1
            remaining = 0
    chosen = torch.cat([m[:a] for m, a in zip(members, alloc)]) if members else torch.empty(0, dtype=torch.long)
    per = {k: a for k, a in zip(present_list, alloc)}
    return Sample(chosen.sort().values, {_class_name(k, classes): int(per.get(k, 0)) for k in keys},
                  int(seed), n, population)


def random_sample(population: int, n: int, *, seed: int = 0) -> Sample:
    """A seeded random ``n`` of ``range(population)``, sorted (for images without labels: no classes
    to balance, but still not the first N); every index when ``n >= population``.

    >>> random_sample(10, 3, seed=0).indices.tolist() != [0, 1, 2]
    True
    """
    n = _check_n(n)
    population = int(population)
    if n >= population:
        return Sample(torch.arange(population), {}, int(seed), n, population)
    g = torch.Generator().manual_seed(int(seed))
    return Sample(torch.randperm(population, generator=g)[:n].sort().values, {}, int(seed), n, population)


def sample_images(images: torch.Tensor, labels: torch.Tensor | None, n: int, *, seed: int = 0,
                  classes: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor | None, Sample]:
    """``n`` of ``images`` (and their labels) by the one sampling rule, and the :class:`Sample`.

    With labels: :func:`stratified_sample`. Without (a user's unlabelled images): a seeded
    random subset, still not the first N, and ``class_counts`` is empty. All images (the
    same tensors, not copies) when ``n >= len(images)``.

    >>> x, y, s = sample_images(data.test_x, data.test_y, 1000, seed=0, classes=data.classes)
    >>> s.describe()
    '1,000 of 10,000 test images, seed 0, stratified: airplane 100, automobile 100, ...'
    """
    population = len(images)
    if labels is not None:
        if len(labels) != population:
            raise InterpError(f"{population} images but {len(labels)} labels; give one label per image")
        sample = stratified_sample(labels, n, seed=seed, classes=classes)
    else:
        sample = random_sample(population, n, seed=seed)
    if sample.size >= population:
        return images, labels, sample
    idx = sample.indices
    x = images[idx.to(images.device)]
    y = labels[idx.to(labels.device)] if labels is not None else None
    return x, y, sample
