"""Input attribution: which pixels did the model use for one decision?

One verb for every method, as in Captum: :func:`attribute` takes a run (or a bare
model), a batch of images and a target class, and returns an :class:`Attribution` whose
maps are shaped like the inputs, one per method (the methods and their settings:
:mod:`interp.analysis.attribution.methods`)::

    >>> run = interp.load_run("tutorial")
    >>> images, labels = load_dataset_images(run, [0, 1, 2])    # test images 0-2, uint8
    >>> attr = attribute(run, images, target=None, methods=["ig", "gradcam"], steps=32)
    >>> attr.maps["ig"].shape                                    # like the inputs
    torch.Size([3, 3, 32, 32])
    >>> attr.completeness.max_relative_error < 0.05              # IG's sum vs f(x) - f(baseline)
    True
    >>> interp.results.attribution.save_attribution(attr)       # reports/tutorial/attribution/...
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import InterpError, unknown
from ...hooks import eval_mode, get_module
from ...subject import Subject, as_subject as subject_of
from .completeness import Completeness, ig_completeness
from .methods import (
    METHODS, AttributionOptions, MethodCall, gradcam_layer, make_baseline, make_options, parse_methods, run_method,
)

# --------------------------------------------------------------------------- the subject


def as_subject(run_or_model: Any) -> Subject:
    """The :class:`~interp.subject.Subject` of a run or model, refusing runs that are not image classifiers."""
    config = getattr(run_or_model, "config", None)
    if config is not None and hasattr(run_or_model, "model") and config.task != "image-classification":
        raise InterpError(f"run {run_or_model.name} is a {config.task} run; image attribution needs an "
                          f"image classifier (for language models: "
                          f"interp.analysis.attribution.tokens.attribute_tokens)")
    if not isinstance(run_or_model, (Subject, nn.Module)) and config is None:
        raise TypeError(f"expected a Run or an nn.Module, got {type(run_or_model).__name__}")
    return subject_of(run_or_model)


# --------------------------------------------------------------------------- targets


def resolve_class(value: int | str, classes: Sequence[str]) -> int:
    """A class index from an index or a class name; an error listing the classes otherwise.

    >>> resolve_class("circle", ["line", "circle"])
    1
    """
    listing = ", ".join(f"{i}={c}" for i, c in enumerate(classes)) if classes else ""
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        if value in classes:
            return list(classes).index(value)
        raise unknown("class name", value, classes)
    index = int(value)
    n = len(classes)
    if n and not 0 <= index < n:
        raise InterpError(f"class index {index} is out of range; classes: {listing}")
    if index < 0:
        raise InterpError(f"class index {index} is out of range (must be >= 0)")
    return index


def resolve_targets(target: Any, n: int, classes: Sequence[str], logits: torch.Tensor) -> torch.Tensor:
    """Per-image target classes: ``None`` (the prediction), one class for all, or one per image."""
    if target is None:
        return logits.argmax(1).cpu()
    if isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim == 0:
        target = int(target)
    if isinstance(target, (int, str, np.integer)):
        out = torch.full((n,), resolve_class(target, classes), dtype=torch.long)
    else:
        values = target.tolist() if isinstance(target, (torch.Tensor, np.ndarray)) else list(target)
        if len(values) != n:
            raise InterpError(f"got {len(values)} targets for {n} images; give one target or one per image")
        out = torch.tensor([resolve_class(v, classes) for v in values], dtype=torch.long)
    k = logits.shape[1]
    if (out >= k).any():
        raise InterpError(f"target {int(out.max())} is out of range for a model with {k} outputs")
    return out


# --------------------------------------------------------------------------- the result


@dataclass
class Attribution:
    """Maps for a batch of images, one per method, each shaped like the inputs.

    ``maps[method][i]`` explains ``targets[i]`` for image ``i``; ``pixel_map(method)``
    folds the channels into one value per pixel for plotting and ranking.
    """

    inputs: torch.Tensor
    """(N, C, H, W) the model's (normalised) inputs."""
    images: torch.Tensor
    """(N, C, H, W) the same images in [0, 1], for display."""
    targets: torch.Tensor
    """(N,) the class each map explains."""
    probs: torch.Tensor
    """(N, K) softmax of the model's output."""
    maps: dict[str, torch.Tensor]
    baselines: torch.Tensor
    """(N, C, H, W) the reference inputs of ig, deeplift and occlusion."""
    classes: list[str] = field(default_factory=list)
    labels: torch.Tensor | None = None
    """(N,) the true classes, where known (dataset images)."""
    sources: list[str] = field(default_factory=list)
    """Where each image came from: ``test:17``, a file path, ..."""
    options: AttributionOptions = field(default_factory=AttributionOptions)
    completeness: Completeness | None = None
    """IG's completeness check (:mod:`~interp.analysis.attribution.completeness`), when ``ig`` ran."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per method for the whole batch."""
    run: str | None = None
    gradcam_layer: str | None = None

    @property
    def methods(self) -> list[str]:
        return list(self.maps)

    def __len__(self) -> int:
        return len(self.inputs)

    def class_name(self, index: int) -> str:
        return self.classes[index] if 0 <= index < len(self.classes) else str(index)

    def pixel_map(self, method: str) -> torch.Tensor:
        """(N, H, W): the method's map with channels folded as its registry entry says."""
        if method not in self.maps:
            raise unknown("method", method, self.methods)
        m = self.maps[method]
        how = METHODS[method].reduce if method in METHODS else "sum"
        if how == "max":
            return m.abs().amax(1)
        if how == "mean":
            return m.mean(1)
        return m.sum(1)

    def top(self, k: int = 5) -> list[list[tuple[str, float]]]:
        """Per image, the ``k`` most probable classes with their probabilities."""
        k = min(k, self.probs.shape[1])
        values, indices = self.probs.topk(k, dim=1)
        return [[(self.class_name(int(i)), float(v)) for v, i in zip(vs, idx)] for vs, idx in zip(values, indices)]

    def summary(self) -> list[dict]:
        """One plain dict per image: source, label, target, top-5, IG completeness."""
        rows = []
        top = self.top(5)
        for i in range(len(self)):
            row = {
                "source": self.sources[i] if i < len(self.sources) else f"#{i}",
                "target": self.class_name(int(self.targets[i])),
                "target_index": int(self.targets[i]),
                "target_prob": float(self.probs[i, self.targets[i]]),
                "top5": [{"class": c, "prob": p} for c, p in top[i]],
            }
            if self.labels is not None:
                row["label"] = self.class_name(int(self.labels[i]))
            if self.completeness is not None:
                row["ig_completeness"] = self.completeness.row(i)
            rows.append(row)
        return rows


# --------------------------------------------------------------------------- the verb


def attribute(run_or_model: Any, inputs: torch.Tensor, target: Any = None,
              methods: str | Sequence[str] | None = None, *, labels: torch.Tensor | None = None,
              sources: Sequence[str] | None = None, normalized: bool = False, progress: bool = False,
              options: AttributionOptions | None = None, **overrides: Any) -> Attribution:
    """Attribute the model's output for ``target`` to the input pixels with each method.

    ``run_or_model``: a run (images are uint8 or [0, 1] and get the run's normalisation)
    or an ``nn.Module`` (inputs are used as given). ``inputs``: (N, C, H, W) or (C, H, W).
    ``target``: ``None`` for each image's predicted class, a class index or name for
    all, or one per image. ``methods``: names from :data:`METHODS` (default: all that
    apply). ``normalized=True``: the inputs are already model inputs (an earlier
    result's ``inputs``). Keyword options: see :class:`AttributionOptions` (``steps=32``,
    ``baseline="mean"``, ``window=8`` ...).

    >>> attr = attribute(run, images, target="circle", methods="ig,occlusion", steps=32)
    >>> attr.pixel_map("ig").shape
    torch.Size([4, 32, 32])
    """
    from tqdm.auto import tqdm

    subject = as_subject(run_or_model)
    opts = make_options(options, **overrides)
    names = parse_methods(methods, subject)
    x = check_inputs(subject, inputs, normalized)
    model = subject.model
    with eval_mode(model), torch.no_grad():
        logits = torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)])
    probs = logits.float().softmax(1).cpu()
    targets = resolve_targets(target, len(x), subject.classes, logits)
    baselines = make_baseline(subject, x, opts.baseline)
    layer = gradcam_layer(subject, opts) if "gradcam" in names else None
    if layer is not None:
        get_module(model, layer)  # an unknown --layer fails before any work

    maps: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    seconds = dict.fromkeys(names, 0.0)
    chunks = range(0, len(x), opts.batch_size)
    bar = tqdm(total=len(chunks) * len(names), desc="attribution", disable=not progress or None, leave=False)
    try:
        for start in chunks:
            stop = start + opts.batch_size
            call = MethodCall(subject, x[start:stop], targets[start:stop].to(x.device), baselines[start:stop],
                              opts, start)
            for name in names:
                t0 = time.perf_counter()
                maps[name].append(run_method(name, call).detach().cpu())
                seconds[name] += time.perf_counter() - t0
                bar.update(1)
    finally:
        bar.close()
    result = Attribution(
        inputs=x.detach().cpu(), images=subject.to_display(x).detach().cpu(), targets=targets, probs=probs,
        maps={n: torch.cat(v) for n, v in maps.items()}, baselines=baselines.detach().cpu(),
        classes=list(subject.classes), labels=None if labels is None else torch.as_tensor(labels).cpu(),
        sources=list(sources) if sources is not None else [f"#{i}" for i in range(len(x))],
        options=opts, seconds=seconds, run=subject.run_name, gradcam_layer=layer,
    )
    if "ig" in names:
        result.completeness = ig_completeness(model, x, result.baselines.to(x.device), targets, result.maps["ig"])
    return result


def check_inputs(subject: Subject, inputs: torch.Tensor, normalized: bool = False) -> torch.Tensor:
    """A (N, C, H, W) batch in the model's input space on its device (``normalized``: already there)."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a tensor, got {type(inputs).__name__}")
    if inputs.dim() == 3:
        inputs = inputs.unsqueeze(0)
    if inputs.dim() != 4 or len(inputs) == 0:
        raise InterpError(f"expected a batch of images (N, C, H, W), got shape {tuple(inputs.shape)}")
    if subject.input_shape and tuple(inputs.shape[1:]) != tuple(subject.input_shape):
        c, h, w = subject.input_shape
        raise InterpError(f"images are {tuple(inputs.shape[1:])}, but the model expects {c}x{h}x{w} (C x H x W)")
    if normalized:
        return inputs.to(subject.device).float()
    return subject.to_model_input(inputs)


def subset(attr: Attribution, rows: Sequence[int]) -> Attribution:
    """The same result restricted to images ``rows``."""
    idx = torch.as_tensor(list(rows), dtype=torch.long)
    comp = attr.completeness.subset(idx) if attr.completeness is not None else None
    return replace(attr, inputs=attr.inputs[idx], images=attr.images[idx], targets=attr.targets[idx],
                   probs=attr.probs[idx], maps={m: v[idx] for m, v in attr.maps.items()},
                   baselines=attr.baselines[idx], labels=None if attr.labels is None else attr.labels[idx],
                   sources=[attr.sources[i] for i in rows], completeness=comp)


