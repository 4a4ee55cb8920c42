"""Class-to-unit attribution: which units of a layer does the model use for a class?

The layer-level row of the name grid: ``ig`` is Captum's LayerIntegratedGradients,
``conductance`` LayerConductance and ``grad-x-act`` LayerGradientXActivation, each on a
layer's output, summed over space so that every unit (channel) gets one number per
image. For ``ig`` and ``conductance`` the numbers of all units add up to
``f(x) - f(baseline)`` for the target, so a unit's share is meaningful: a unit with
attribution +2 moved the target's logit up by about 2.

>>> result = unit_attribution(run, images, target="circle", layer="conv2")
>>> result.ranking(top=3)            # [{'unit': 'conv2:5', 'index': 5, 'attribution': 1.9}, ...]
>>> over_class = class_unit_attribution(run, "circle", layer="conv2", per_class=50)   # its test images
>>> summary = class_unit_summary(run, "conv2", per_class=50)
>>> summary.top_units("circle", 5)   # which conv2 units make a circle
>>> summary.top_classes(5)           # for conv2:5's unit page: the classes it contributes to most
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ...errors import InterpError, unknown
from ...hooks import eval_mode, get_module, no_new_hooks
from .attribute import as_subject, check_inputs, resolve_class, resolve_targets
from .inputs import load_dataset_images
from .methods import make_baseline, make_options, quiet_captum

UNIT_METHODS: dict[str, str] = {
    "ig": "LayerIntegratedGradients",
    "conductance": "LayerConductance",
    "grad-x-act": "LayerGradientXActivation",
}
"""Short name -> Captum layer method (the same short names as the input-level methods)."""


def _captum_layer_method(method: str, model, module):
    import captum.attr as ca

    if method not in UNIT_METHODS:
        raise unknown("unit attribution method", method, UNIT_METHODS)
    return getattr(ca, UNIT_METHODS[method])(model, module)


def check_layer(subject, layer: str) -> str:
    """Validate a layer name against the run's layers (did-you-mean error otherwise)."""
    if subject.run is not None:
        return subject.run.layer(layer).name
    get_module(subject.model, layer)
    return layer


# --------------------------------------------------------------------------- one input or a batch


@dataclass
class UnitAttribution:
    """Per image and unit: how much the unit's output contributed to the target."""

    layer: str
    method: str
    scores: torch.Tensor
    """(N, U) attribution of each unit, summed over its spatial positions."""
    targets: torch.Tensor
    """(N,) the explained class."""
    output_difference: torch.Tensor | None = None
    """(N,) f(x) - f(baseline) for the target (ig, conductance: the scores' sum should match)."""
    classes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    run: str | None = None
    options: dict = field(default_factory=dict)

    @property
    def units(self) -> int:
        return self.scores.shape[1]

    def mean(self) -> torch.Tensor:
        """(U,) mean attribution over the images."""
        return self.scores.mean(0)

    def ranking(self, top: int = 10, *, sign: str = "positive") -> list[dict]:
        """The ``top`` units by mean attribution: ``positive`` (excite the target), ``negative`` or ``abs``."""
        return rank_units(self.mean(), self.layer, top, sign)

    def to_dict(self, top: int = 10) -> dict:
        return {"run": self.run, "layer": self.layer, "method": self.method,
                "captum": UNIT_METHODS[self.method], "classes": self.classes, "sources": self.sources,
                "targets": [self.classes[t] if t < len(self.classes) else t for t in self.targets.tolist()],
                "options": self.options, "mean": self.mean().tolist(),
                "top_positive": self.ranking(top), "top_negative": self.ranking(top, sign="negative"),
                "sum_of_units": self.scores.sum(1).tolist(),
                "output_difference": None if self.output_difference is None else self.output_difference.tolist()}


def rank_units(values: torch.Tensor, layer: str, top: int, sign: str = "positive") -> list[dict]:
    """Units sorted by ``values`` as a list of ``{"unit": "conv2:5", "index": 5, "attribution": x}``."""
    if sign not in ("positive", "negative", "abs"):
        raise unknown("sign", sign, ["positive", "negative", "abs"])
    key = {"positive": values, "negative": -values, "abs": values.abs()}[sign]
    order = torch.argsort(key, descending=True, stable=True)[:top]
    return [{"unit": f"{layer}:{int(i)}", "index": int(i), "attribution": float(values[i])} for i in order]


def unit_attribution(run_or_model: Any, inputs: torch.Tensor, target: Any = None, *, layer: str,
                     method: str = "ig", steps: int = 32, baseline: str = "black", batch_size: int = 16,
                     normalized: bool = False, sources: Sequence[str] | None = None,
                     progress: bool = False) -> UnitAttribution:
    """Attribute the target to every unit of ``layer`` (Captum layer method, summed over space).

    ``target``: ``None`` for the predicted class, a class index or name, or one per image.
    """
    from tqdm.auto import tqdm

    subject = as_subject(run_or_model)
    opts = make_options(steps=steps, baseline=baseline, batch_size=batch_size)
    if method not in UNIT_METHODS:
        raise unknown("unit attribution method", method, UNIT_METHODS)
    layer = check_layer(subject, layer)
    model = subject.model
    x = check_inputs(subject, inputs, normalized)
    with eval_mode(model), torch.no_grad():
        logits = torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)])
    targets = resolve_targets(target, len(x), subject.classes, logits)
    baselines = make_baseline(subject, x, opts.baseline)
    module = get_module(model, layer)
    scores = []
    for start in tqdm(range(0, len(x), opts.batch_size), desc=f"{layer} units", disable=not progress or None, leave=False):
        xs, ts = x[start:start + opts.batch_size], targets[start:start + opts.batch_size].to(x.device)
        bs = baselines[start:start + opts.batch_size]
        with eval_mode(model), no_new_hooks(model), quiet_captum():
            algo = _captum_layer_method(method, model, module)
            if method == "grad-x-act":
                a = algo.attribute(xs, target=ts)
            else:
                a = algo.attribute(xs, baselines=bs, target=ts, n_steps=opts.steps)
        scores.append(a.detach().flatten(2).sum(2).cpu() if a.dim() > 2 else a.detach().cpu())
    difference = None
    if method != "grad-x-act":
        idx = torch.arange(len(x), device=x.device)
        with eval_mode(model), torch.no_grad():
            difference = (logits[idx, targets.to(x.device)] - model(baselines)[idx, targets.to(x.device)]).cpu()
    return UnitAttribution(layer, method, torch.cat(scores), targets, difference, list(subject.classes),
                           list(sources) if sources is not None else [f"#{i}" for i in range(len(x))],
                           subject.run_name, {"steps": opts.steps, "baseline": opts.baseline})


def class_unit_attribution(run: Any, class_: int | str, *, layer: str, per_class: int = 50, method: str = "ig",
                           steps: int = 32, baseline: str = "black", data: Any = None, seed: int = 0,
                           progress: bool = False) -> UnitAttribution:
    """:func:`unit_attribution` of a class over (up to) ``per_class`` of its test images (target: the class).

    The images are a seeded random choice within the class (``seed``), not its first ones,
    sorted so that the result does not depend on the draw order.
    """
    from ...data.samples import shuffled_classes

    subject = as_subject(run)
    k = resolve_class(class_, subject.classes)
    if per_class < 1:
        raise InterpError(f"per_class must be at least 1, got {per_class}")
    data = data if data is not None else run.load_data(progress=progress, split="test")
    order = shuffled_classes(data.test_y, seed=seed).get(k)
    idx = sorted(order[:per_class].tolist()) if order is not None else []
    if not idx:
        raise InterpError(f"the test split has no images of class {subject.classes[k]}")
    images, _ = load_dataset_images(run, idx, "test", data=data)
    return unit_attribution(run, images, k, layer=layer, method=method, steps=steps, baseline=baseline,
                            sources=[f"test:{i}" for i in idx], progress=progress)


# --------------------------------------------------------------------------- per class over the test set


@dataclass
class ClassUnitSummary:
    """Mean unit attribution per class over that class's test images ("which conv2 units make a cat")."""

    layer: str
    method: str
    classes: list[str]
    matrix: torch.Tensor
    """(K, U) mean attribution of unit u to class k over test images of class k (target = k)."""
    counts: list[int]
    """Images used per class."""
    run: str | None = None
    options: dict = field(default_factory=dict)

    def top_units(self, class_: int | str, top: int = 10, *, sign: str = "positive") -> list[dict]:
        """The units that contribute most to a class (name or index)."""
        k = resolve_class(class_, self.classes)
        return rank_units(self.matrix[k], self.layer, top, sign)

    def top_classes(self, unit: int, top: int = 5) -> list[dict]:
        """For one unit (its page): the classes it contributes to most, with the attribution."""
        if not 0 <= unit < self.matrix.shape[1]:
            raise InterpError(f"unit {unit} is out of range for {self.layer}, which has {self.matrix.shape[1]} "
                              f"units (0-{self.matrix.shape[1] - 1})")
        column = self.matrix[:, unit]
        order = torch.argsort(column, descending=True, stable=True)[:top]
        return [{"class": self.classes[int(k)], "index": int(k), "attribution": float(column[k])} for k in order]

    def to_dict(self, top: int = 10) -> dict:
        """Plain JSON (no NaN: a class without images has ``null`` entries and empty lists)."""
        units = self.matrix.shape[1]
        present = [k for k, n in enumerate(self.counts) if n]
        return {
            "run": self.run, "layer": self.layer, "method": self.method,
            "captum": UNIT_METHODS[self.method], "classes": self.classes, "counts": self.counts,
            "options": self.options,
            "matrix": [[v if np.isfinite(v) else None for v in row] for row in self.matrix.tolist()],
            "by_class": {c: self.top_units(k, top) if k in present else [] for k, c in enumerate(self.classes)},
            "by_class_negative": {c: self.top_units(k, top, sign="negative") if k in present else []
                                  for k, c in enumerate(self.classes)},
            "by_unit": {f"{self.layer}:{u}": [c for c in self.top_classes(u, len(self.classes))
                                              if self.counts[c["index"]]] for u in range(units)},
        }


def class_unit_summary(run: Any, layer: str, *, classes: Sequence[int | str] | None = None, per_class: int = 50,
                       method: str = "ig", steps: int = 32, baseline: str = "black", correct_only: bool = False,
                       data: Any = None, batch_size: int = 16, seed: int = 0,
                       progress: bool = False) -> ClassUnitSummary:
    """For each class, average the unit attributions over (up to) ``per_class`` of its test images.

    The images are a seeded random choice within the class (``seed``; the order of
    :func:`~interp.data.samples.shuffled_classes`), not its first images. ``correct_only``
    keeps only the images the model classifies correctly (then takes ``per_class`` of those).
    """
    from tqdm.auto import tqdm

    subject = as_subject(run)
    layer = check_layer(subject, layer)
    if per_class < 1:
        raise InterpError(f"per_class must be at least 1, got {per_class}")
    data = data if data is not None else run.load_data(progress=progress, split="test")
    chosen = [resolve_class(c, subject.classes) for c in classes] if classes else list(range(len(subject.classes)))
    from ...data.samples import shuffled_classes

    order = shuffled_classes(data.test_y, seed=seed)
    rows, counts = [], []
    units = None
    for k in tqdm(chosen, desc=f"{layer} per class", disable=not progress or None):
        idx = order[k].tolist() if k in order else []  # the class's images in seeded random order
        if correct_only and idx:
            x_all, _ = load_dataset_images(run, idx, "test", data=data)
            with eval_mode(subject.model), torch.no_grad():
                pred = subject.model(subject.to_model_input(x_all)).argmax(1).cpu()
            idx = [i for i, p in zip(idx, pred.tolist()) if p == k]
        idx = sorted(idx[:per_class])
        if not idx:
            rows.append(None)
            counts.append(0)
            continue
        images, _ = load_dataset_images(run, idx, "test", data=data)
        result = unit_attribution(run, images, k, layer=layer, method=method, steps=steps, baseline=baseline,
                                  batch_size=batch_size)
        units = result.units
        rows.append(result.mean())
        counts.append(len(idx))
    if units is None:
        raise InterpError("no test images for the chosen classes"
                          + (" (none classified correctly)" if correct_only else ""))
    matrix = torch.stack([r if r is not None else torch.full((units,), float("nan")) for r in rows])
    return ClassUnitSummary(layer, method, [subject.classes[k] for k in chosen], matrix, counts, subject.run_name,
                            {"per_class": per_class, "steps": steps, "baseline": baseline,
                             "correct_only": correct_only, "seed": seed})
