"""The attribution gallery: a few test images of every class, each explained by every method.

A seeded random choice within each class (:func:`~interp.data.samples.per_class_sample`),
not its first images; the target of each map is the model's prediction. The report's
attribution page shows it; :func:`interp.results.attribution.save_gallery` writes one
figure per class.

>>> gallery = attribution_gallery(run, per_class=2, methods="ig,gradcam", steps=32)
>>> [(e.class_name, e.indices, e.predictions) for e in gallery.entries]   # per class: images, predictions
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from ...errors import InterpError
from .attribute import Attribution, as_subject, attribute, subset
from .inputs import load_dataset_images
from .methods import METHODS


@dataclass
class GalleryEntry:
    """One class's row of the gallery: which test images, and what the model predicted for them."""

    class_name: str
    indices: list[int]
    """Test-split indices of the class's images."""
    predictions: list[str]
    probs: list[float]
    """Probability of each prediction."""
    rows: list[int] = field(default_factory=list)
    """Positions of these images in :attr:`Gallery.attribution`."""


@dataclass
class Gallery:
    """A few test images per class with every method's map (for the model page)."""

    run: str
    methods: list[str]
    entries: list[GalleryEntry]
    attribution: Attribution
    """Every image of the gallery, grouped by class."""
    seed: int = 0
    """Seed of the choice of images within each class."""
    class_counts: dict[str, int] = field(default_factory=dict)

    def entry_attribution(self, entry: GalleryEntry) -> Attribution:
        """The attribution of one class's images (for its figure)."""
        return subset(self.attribution, entry.rows)

    def to_dict(self) -> dict:
        return {"run": self.run, "methods": self.methods,
                "method_titles": {m: METHODS[m].title for m in self.methods if m in METHODS},
                "entries": [asdict(e) for e in self.entries],
                "seed": self.seed, "class_counts": dict(self.class_counts)}


def attribution_gallery(run: Any, per_class: int = 2, methods: str | Sequence[str] | None = None, *,
                        data: Any = None, seed: int = 0, progress: bool = False, **options: Any) -> Gallery:
    """Attribute ``per_class`` test images of every class (target: the prediction).

    ``seed`` picks the images within each class and also seeds SmoothGrad's noise (as
    ``attribute(seed=...)``); ``options`` go to
    :func:`~interp.analysis.attribution.attribute.attribute` (``steps``, ``baseline`` ...).
    ``data`` may be an already loaded :class:`~interp.data.ImageData`.
    """
    if per_class < 1:
        raise InterpError(f"per_class must be at least 1, got {per_class}")
    subject = as_subject(run)
    data = data if data is not None else run.load_data(progress=progress, split="test")
    from ...data.samples import per_class_sample

    known = (data.test_y >= 0) & (data.test_y < len(subject.classes))  # the classes the model has
    drawn = per_class_sample(data.test_y[known], per_class, seed=seed, classes=subject.classes)
    picked = known.nonzero().flatten()[drawn.indices]
    chosen = sorted(picked.tolist(), key=lambda i: (int(data.test_y[i]), i))  # grouped by class
    images, labels = load_dataset_images(run, chosen, "test", data=data)
    attr = attribute(run, images, None, methods, labels=labels, sources=[f"test:{i}" for i in chosen],
                     progress=progress, seed=seed, **options)
    entries = []
    for k, name in enumerate(subject.classes):
        rows = [i for i in range(len(attr)) if int(attr.labels[i]) == k]
        if rows:
            entries.append(GalleryEntry(name, [chosen[i] for i in rows],
                                        [attr.class_name(int(attr.targets[i])) for i in rows],
                                        [float(attr.probs[i, attr.targets[i]]) for i in rows], rows))
    return Gallery(subject.run_name or "model", attr.methods, entries, attr, seed, drawn.class_counts)
