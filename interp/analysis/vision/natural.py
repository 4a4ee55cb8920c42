"""Natural images: each unit's best test image (:func:`natural_max`) and feature
accentuation from it (:func:`accentuate`; Hamblin, Fel, Serre et al. 2024).

>>> nat = natural_max(run, "conv2", sample=2000)
>>> start = run.load_data(split="test").test_x[nat.indices]
>>> acc = accentuate(run, "conv2", nat.units, start, steps=64)
>>> acc.values / acc.start_values            # how much more each unit responds
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ...errors import InterpError, unknown
from ...hooks import get_module
from ...subject import as_subject
from .featvis import unit_ranges
from .optimize import (DEFAULT_LR, DEFAULT_MEMORY_BUDGET, OBJECTIVES, chunk_units, evaluate, optimize_images, probe,
                       value_function)
from .param import image_param, image_seed
from .quality import NaturalMax, layer_values
from .transforms import Transforms


def split_images(run: Any, data: Any = None, *, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                               list | None, str]:
    """``(images, labels, classes, name)`` of the test split: the run's, or ``data`` (an ImageData, a
    folder path, or a uint8 tensor ``(N, 3, H, W)``, which has no labels, classes or name)."""
    if isinstance(data, torch.Tensor):
        return data, None, None, "tensor"
    if data is None:
        if not hasattr(run, "load_data"):
            raise InterpError("give the images: data=ImageData, a folder path or a uint8 tensor "
                              "(a bare module has no dataset)")
        if getattr(getattr(run, "config", None), "family", "") == "inception":
            raise InterpError("InceptionV1 comes without a dataset; give one with --dataset FOLDER "
                              "(train/ and test/ subfolders of 224 px images)")
        data = run.load_data(progress=progress, split="test")
    elif isinstance(data, (str, Path)):
        from ...data.images import load_image_data

        data = load_image_data(str(data), progress=progress)
    labels = getattr(data, "test_y", None)
    if labels is not None and len(labels) != len(data.test_x):
        labels = None
    return data.test_x, labels, getattr(data, "classes", None), str(getattr(data, "name", "data"))


def natural_max(run: Any, layer: str, units: str | Sequence[int] | None = None, *, objective: str = "channel",
                data: Any = None, sample: int | None = None, seed: int = 0, batch_size: int = 256,
                normalize: Callable | None = None, progress: bool = False) -> NaturalMax:
    """The best natural image of each unit: the max of the objective over the test split, or
    over a seeded stratified ``sample`` of it (:func:`interp.data.samples.stratified_sample`).

    The objective is the one :func:`visualize` maximises (``channel``: the mean over
    positions, not the max over positions that dataset examples rank by), so
    ``visualize(...).values / natural_max(...).values`` compares like with like. Ties go to
    the earlier image.

    >>> nat = natural_max(run, "conv2", sample=2000)
    >>> fv = visualize(run, "conv2").attach_natural(nat)
    >>> fv.quality[0].ratio
    """
    from ...data.samples import random_sample, stratified_sample
    from ...units import parse_unit_list

    images, labels, classes, name = split_images(run, data, progress=progress)
    if images.dim() != 4 or len(images) == 0:
        raise InterpError(f"expected (N, 3, H, W) test images, got {tuple(images.shape)}")
    chosen = None
    if sample is not None and sample < len(images):
        chosen = (stratified_sample(labels, sample, seed=seed, classes=classes) if labels is not None
                  else random_sample(len(images), sample, seed=seed))
        index = chosen.indices
    else:
        index = torch.arange(len(images))
    vals = layer_values(run, layer, images[index], objective=objective, batch_size=batch_size, normalize=normalize)
    n_units = vals.shape[1]
    unit_list = (parse_unit_list(units, n_units, layer=layer) if units is None or isinstance(units, str)
                 else parse_unit_list(",".join(str(int(u)) for u in units), n_units, layer=layer))
    picked = vals[:, unit_list]
    best, where = picked.max(0)  # first maximum: the earlier image on ties
    return NaturalMax(layer, unit_list, best, index[where], objective, name, len(index),
                      chosen.to_dict() if chosen is not None else None)


# ---------------------------------------------------------------------- accentuation

ACCENT_STEPS = 64
ACCENT_WEIGHT = 1.0
ACCENT_REFERENCE = 0.1
"""RMS pixel distance (on [0, 1]) at which the accentuation penalty equals ``weight`` times the
unit's activation on its starting image."""


@dataclass
class Accentuation:
    """Feature accentuations (Hamblin, Fel, Serre et al. 2024): each unit's image optimised
    from a natural image, kept close to it. See :func:`accentuate`."""

    layer: str
    units: list[int]
    images: torch.Tensor  # (U, 3, H, W) in [0, 1]: the accentuated images
    start_images: torch.Tensor  # (U, 3, H, W): the natural images they started from
    values: torch.Tensor  # (U,) the objective on the accentuated images
    start_values: torch.Tensor  # (U,) the objective on the natural images
    initial_values: torch.Tensor  # (U,) the objective on the parameterisation's step-0 image
    distances: torch.Tensor  # (U,) RMS pixel distance (on [0, 1]) from the start
    history: torch.Tensor  # (steps, U) the objective at each step (under transforms)
    settings: dict
    info: dict = field(default_factory=dict)

    def index(self, unit: int) -> int:
        try:
            return self.units.index(unit)
        except ValueError:
            raise InterpError(f"unit {unit} of {self.layer} was not accentuated; units: "
                              f"{unit_ranges(self.units)}") from None


def accentuate(run_or_subject: Any, layer: str, units: str | Sequence[int] | None, images: torch.Tensor, *,
               steps: int = ACCENT_STEPS, weight: float = ACCENT_WEIGHT, seed: int = 0, lr: float = DEFAULT_LR,
               objective: str = "channel", transforms: Transforms | None = None, fft: bool = True,
               decorrelate: bool = True, batch_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
               normalize: Callable | None = None, progress: bool = False) -> Accentuation:
    """Feature accentuation: optimise each unit's image starting from a natural image.

    ``images[i]`` (``(U, 3, H, W)``, floats in [0, 1] or uint8) is the start for
    ``units[i]``, typically its best natural image (:func:`natural_max`). The image is
    parameterised as in :func:`visualize` (Lucent's decorrelated FFT, by default), with
    the parameters set so that step 0 is the natural image (:func:`image_param`'s
    ``init``). Each step maximises ``value - weight * s * (d / ACCENT_REFERENCE) ** 2``,
    ``d`` the RMS pixel distance from the start and ``s`` the unit's value on the start
    (at least 1e-6), so the penalty is on the objective's own scale; fewer ``steps`` keep
    it closer too. Transforms as in :func:`visualize` (:meth:`Transforms.for_size`).

    >>> nat = natural_max(run, "conv2")
    >>> start = run.load_data(split="test").test_x[nat.indices]
    >>> acc = accentuate(run, "conv2", nat.units, start, steps=64)
    >>> acc.values / acc.start_values            # how much more the unit responds
    """
    from ...units import parse_unit_list

    subject = as_subject(run_or_subject, normalize)
    get_module(subject.model, layer)
    if objective not in OBJECTIVES:
        raise unknown("objective", str(objective), OBJECTIVES)
    if steps < 0:
        raise InterpError(f"steps must be at least 0, got {steps}")
    images = torch.as_tensor(images).detach()
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise InterpError(f"starting images must be (units, 3, H, H); got {tuple(images.shape)}")
    size = images.shape[-1]
    shapes, floats_per_image = probe(subject, [layer], size)
    n_units = shapes[layer][0]
    unit_list = (parse_unit_list(units, n_units, layer=layer) if units is None or isinstance(units, str)
                 else parse_unit_list(",".join(str(int(u)) for u in units), n_units, layer=layer))
    if len(unit_list) != len(images):
        raise InterpError(f"one starting image per unit: {len(unit_list)} units, {len(images)} images")
    if objective == "neuron" and len(shapes[layer]) != 3:
        raise InterpError(f"the neuron objective needs a layer with spatial positions; {layer} has none")
    start_images = images.clamp(0, 1)
    value_fn = value_function(objective, layer, False)
    per_chunk = chunk_units(subject, 1, floats_per_image, batch_size, memory_budget)
    u_ = len(unit_list)
    out = torch.zeros(u_, 3, size, size)
    values, start_values, initial, history = (torch.zeros(u_), torch.zeros(u_), torch.zeros(u_),
                                              torch.zeros(steps, u_))
    seconds = 0.0
    from tqdm.auto import tqdm

    with tqdm(total=steps * math.ceil(u_ / per_chunk), desc=f"accentuate {layer}", unit="step",
              disable=not progress or None, leave=False) as bar:
        for lo in range(0, u_, per_chunk):
            sl = slice(lo, min(u_, lo + per_chunk))
            chunk = unit_list[sl]
            x0 = start_images[sl].to(subject.device)
            batch_units = torch.tensor(chunk, device=subject.device)
            seeds = [image_seed(seed, u, 0) for u in chunk]
            nat = evaluate(subject, [layer], size, None, value_fn, batch_units, fft, decorrelate, images=x0)
            scale = nat.abs().clamp_min(1e-6).to(subject.device)
            with torch.no_grad():
                _, start_f = image_param(seeds, size, subject.device, fft=fft, decorrelate=decorrelate, init=x0)
                first = start_f()
            init_vals = evaluate(subject, [layer], size, None, value_fn, batch_units, fft, decorrelate, images=first)

            def gain_fn(T, batch_units=batch_units, x0=x0, scale=scale):
                vals = value_fn(T, batch_units)
                d2 = (T("input") - x0).pow(2).flatten(1).mean(1)
                return (vals - weight * scale * d2 / ACCENT_REFERENCE ** 2).sum(), vals

            if steps:
                result = optimize_images(subject, [layer], seeds, size, gain_fn, steps=steps, lr=lr,
                                         transforms=transforms, fft=fft, decorrelate=decorrelate,
                                         transform_seed=seed, on_step=bar.update, init=x0)
                final, seconds = result.images, seconds + result.seconds
                history[:, sl] = result.history
            else:
                final = first.cpu()
            out[sl] = final
            values[sl] = evaluate(subject, [layer], size, None, value_fn, batch_units, fft, decorrelate,
                                   images=final)
            start_values[sl], initial[sl] = nat, init_vals
    distances = (out - start_images).pow(2).flatten(1).mean(1).sqrt()
    tf = Transforms.for_size(size) if transforms is None else transforms
    settings = {"layer": layer, "objective": objective, "steps": steps, "weight": weight,
                "reference_distance": ACCENT_REFERENCE, "seed": seed, "lr": lr, "size": size,
                "param": {"kind": "fft" if fft else "pixel", "decorrelate": decorrelate,
                          "init": "the natural image (sigmoid, colour decorrelation and FFT inverted)"},
                "transforms": tf.to_dict(),
                "penalty": "weight * |value on the start| * (rms pixel distance / reference_distance) ** 2",
                "method": "feature accentuation (Hamblin, Fel, Serre et al. 2024): optimised from a natural image"}
    info = {"device": str(subject.device), "seconds": round(seconds, 3), "run": subject.name}
    return Accentuation(layer, unit_list, out, start_images.cpu(), values, start_values, initial, distances, history,
                        settings, info)

