"""Feature visualisation: every unit of a layer rendered in one batched optimisation.

Lucent (torch-lucent) supplies the image parameterisation (an FFT spectrum with
decorrelated colour, :mod:`.param`) and the objectives (``channel``, ``neuron``,
``direction``, ``diversity``, objective arithmetic); this module renders all units of a
layer together, one image per unit (``U*K`` images for ``K`` diverse images per unit,
twice that with negatives), in memory-bounded chunks, through the loop of
:mod:`.optimize` (scoped hooks, seeded per-image randomness) with transforms sized for
the model's input (:meth:`~.transforms.Transforms.for_size`).

>>> result = visualize(run, "conv2", steps=512)
>>> result.images.shape              # (units, diversity, 3, H, W), floats in [0, 1]
torch.Size([16, 1, 3, 32, 32])
>>> interp.results.save(result, run.report_dir() / "featvis" / "conv2")

Every rendering records how well each unit's image 0 did (:class:`~.quality.UnitQuality`,
in ``result.quality``): the activation reached and at the start, the unit's rank among the
layer's units on its own image (specificity), failure flags (:data:`~.quality.QUALITY_RULES`)
and, after :meth:`FeatureVis.attach_natural` with :func:`~.natural.natural_max`, the best
natural image's activation and the ratio.

>>> result.attach_natural(natural_max(run, "conv2", sample=2000))
>>> [q.unit for q in result.quality if q.failed], result.quality[5].rank, result.quality[5].ratio

Files (written by :func:`interp.results.vision.save_featvis`): ``unit_0005.png``,
``unit_0005_div1.png`` ..., ``unit_0005_neg.png``, ``grid.png``, ``index.json``,
``history.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ...budget import check_memory
from ...errors import InterpError, unknown
from ...hooks import get_module
from ...subject import as_subject
from .optimize import (DEFAULT_LR, DEFAULT_MEMORY_BUDGET, OBJECTIVES, check_size, chunk_units, discover_layers,
                       evaluate, optimize_images, probe, value_function)
from .param import image_seed
from .quality import NaturalMax, UnitQuality, assess
from .transforms import Transforms

DEFAULT_STEPS = 512
"""Optimisation steps of :func:`visualize`, ``interp visualize`` and the report's main images."""
DEFAULT_DIVERSITY_WEIGHT = 2.0
"""Weight of the diversity penalty relative to the objective's own size (see :func:`diversity_penalty`)."""


@dataclass
class FeatureVis:
    """Feature visualisations of some units of one layer.

    ``images[i, k]`` is the k-th (diverse) image of ``units[i]``; ``values[i, k]`` its
    objective value (the unit's mean activation for ``channel``, its centre activation
    for ``neuron``) on the final image without transforms; ``initial_values`` the same on
    the starting noise; ``history[s, i, k]`` the value at step ``s`` (under transforms);
    ``quality[i]`` how well image 0 did (:class:`UnitQuality`).
    """

    layer: str
    units: list[int]
    images: torch.Tensor  # (U, K, 3, H, W) float in [0, 1]
    values: torch.Tensor  # (U, K)
    initial_values: torch.Tensor  # (U, K)
    history: torch.Tensor  # (steps, U, K)
    settings: dict
    negative_images: torch.Tensor | None = None  # (U, K, 3, H, W): the unit minimised
    negative_values: torch.Tensor | None = None
    negative_initial_values: torch.Tensor | None = None
    negative_history: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    """Run details that do not change the images: device, chunk size, seconds."""
    quality: list[UnitQuality] | None = None
    """Per unit (aligned with ``units``), how well image 0 did: the activation reached and at
    the start, its specificity, failure flags, the best natural image's activation (after
    :meth:`attach_natural`). See :class:`UnitQuality`."""
    natural_source: dict | None = None
    """Where ``quality[i].natural`` comes from: dataset, images scanned, sample (or None)."""

    def attach_natural(self, natural: NaturalMax) -> FeatureVis:
        """Record each unit's best natural activation (from :func:`natural_max`) in ``quality``."""
        if self.quality is None:
            raise InterpError("this rendering has no quality record; render it again with visualize()")
        if natural.layer != self.layer:
            raise InterpError(f"natural activations of {natural.layer}, not {self.layer}")
        objective = self.settings.get("objective")
        if natural.objective != objective:
            raise InterpError(f"natural activations for the {natural.objective} objective; this rendering "
                              f"used {objective!r}")
        for q in self.quality:
            if q.unit in natural.units:
                i = natural.units.index(q.unit)
                q.natural, q.natural_index = float(natural.values[i]), int(natural.indices[i])
        self.natural_source = natural.source()
        return self

    def failed_units(self) -> list[int]:
        """Units whose image 0 is flagged (see :class:`UnitQuality`)."""
        return [q.unit for q in self.quality or [] if q.failed]

    def index(self, unit: int) -> int:
        try:
            return self.units.index(unit)
        except ValueError:
            raise InterpError(f"unit {unit} of {self.layer} was not rendered; rendered units: "
                              f"{unit_ranges(self.units)}") from None

    def image(self, unit: int, k: int = 0, negative: bool = False) -> torch.Tensor:
        """The ``(3, H, W)`` image of one unit."""
        images = self.negative_images if negative else self.images
        if images is None:
            raise InterpError("no negative images: render with negative=True (--negative)")
        return images[self.index(unit), k]

    def __repr__(self) -> str:
        neg = ", negative" if self.negative_images is not None else ""
        return (f"FeatureVis({self.layer!r}, {len(self.units)} units, {self.images.shape[1]} image(s) each{neg}, "
                f"objective={self.settings.get('objective')!r}, steps={self.settings.get('steps')})")


def visualize(run: Any, layer: str, units: str | Sequence[int] | None = None, *,
              objective: str | Callable = "channel", steps: int = DEFAULT_STEPS, size: int | None = None,
              diversity: int = 1, negative: bool = False, seed: int = 0, lr: float = DEFAULT_LR,
              transforms: Transforms | Sequence[Callable] | None = None,
              diversity_weight: float = DEFAULT_DIVERSITY_WEIGHT, fft: bool = True, decorrelate: bool = True,
              batch_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
              normalize: Callable | None = None, progress: bool = False) -> FeatureVis:
    """Render every selected unit of ``layer``: all units in one batched optimisation.

    ``objective`` is ``"channel"`` (the unit's mean activation), ``"neuron"`` (its
    activation at the centre position) or a function ``(layer, unit) -> Lucent
    Objective`` (e.g. ``lambda l, u: objectives.neuron(l, u, x=1, y=1)``), evaluated
    per image. ``diversity=K`` renders K images per unit with Lucent's diversity term
    (weight ``diversity_weight``); ``negative=True`` also minimises each unit. Images
    are ``size`` px (default: the model's input size). Units go in chunks of at most
    ``batch_size`` images (default: as many as ``memory_budget`` bytes of activations
    allow), each unit's images in one chunk. ``fv.quality`` records how well each unit's
    image 0 did (:class:`UnitQuality`; specificity only for the built-in objectives).

    >>> fv = visualize(run, "conv2", "0-3", steps=256, diversity=2, negative=True)
    >>> fv.images.shape, fv.negative_images.shape
    (torch.Size([4, 2, 3, 32, 32]), torch.Size([4, 2, 3, 32, 32]))
    """
    from ...units import parse_unit_list

    subject = as_subject(run, normalize)
    get_module(subject.model, layer)
    size = check_size(subject, size)
    custom = callable(objective) and not isinstance(objective, str)
    if not custom and objective not in OBJECTIVES:
        raise unknown("objective", str(objective), OBJECTIVES)
    if steps < 1:
        raise InterpError(f"--steps must be at least 1, got {steps}")
    if diversity < 1:
        raise InterpError(f"--diversity must be at least 1 (images per unit), got {diversity}")
    layers = [layer]
    # The probe is one forward pass of one image: at least its pixels, activations aside.
    check_memory(4 * 3 * size * size * 2, f"probing {layer} with one {size}x{size} px image",
                 hint="give a smaller --size")
    shapes, floats_per_image = probe(subject, layers, size)
    shape = shapes[layer]
    if custom:
        first = objective(layer, 0)
        layers = list(dict.fromkeys([layer, *discover_layers(subject, first, size)]))
        if len(layers) > 1:
            shapes, floats_per_image = probe(subject, layers, size)
    if objective == "neuron" and len(shape) != 3:
        raise InterpError(f"the neuron objective needs a layer with spatial positions; {layer} has none "
                          f"(output shape {tuple(shape)}): use --objective channel")
    n_units = shape[0]
    if isinstance(units, str) or units is None:
        unit_list = parse_unit_list(units, n_units, layer=layer)
    else:
        unit_list = parse_unit_list(",".join(str(int(u)) for u in units), n_units, layer=layer)
    if not unit_list:
        raise InterpError(f"no units selected; {layer} has units 0-{n_units - 1}")

    signs = [1.0, -1.0] if negative else [1.0]
    per_unit = diversity * len(signs)
    per_chunk = chunk_units(subject, per_unit, floats_per_image, batch_size, memory_budget)
    chunks = [unit_list[i:i + per_chunk] for i in range(0, len(unit_list), per_chunk)]
    chunk_images = len(chunks[0]) * per_unit if subject.device.type == "cpu" else 0  # on a GPU, not in RAM
    check_memory(render_bytes(len(unit_list) * per_unit, chunk_images, size, steps, floats_per_image),
                 f"rendering {len(unit_list):,} units x {per_unit} image{'s' if per_unit > 1 else ''} of "
                 f"{size}x{size} px ({steps} steps, {len(chunks[0]) * per_unit:,} images per chunk)",
                 hint="render fewer --units, a smaller --size or --diversity, or give a smaller --batch-size")

    from tqdm.auto import tqdm

    bar = tqdm(total=steps * len(chunks), desc=f"visualize {layer}", unit="step", disable=not progress or None,
               leave=False)
    n_signs = len(signs)
    u_, k_ = len(unit_list), diversity
    images = torch.zeros(u_, n_signs, k_, 3, size, size)
    values = torch.zeros(u_, n_signs, k_)
    initial = torch.zeros(u_, n_signs, k_)
    history = torch.zeros(steps, u_, n_signs, k_)
    seconds = 0.0
    value_fn = value_function(objective, layer, custom)
    try:
        for c, chunk in enumerate(chunks):
            # batch layout: unit-major, then sign, then diversity index (diversity groups are contiguous)
            batch_units = torch.tensor([u for u in chunk for _ in signs for _ in range(k_)], device=subject.device)
            batch_signs = torch.tensor([s for _ in chunk for s in signs for _ in range(k_)], device=subject.device)
            seeds = [image_seed(seed, u, k, s < 0) for u in chunk for s in signs for k in range(k_)]

            def gain_fn(T, batch_units=batch_units, batch_signs=batch_signs):
                vals = value_fn(T, batch_units)
                gain = (batch_signs * vals).sum() if negative else vals.sum()
                if k_ > 1:
                    gain = gain - diversity_weight * diversity_penalty(T(layer), vals, k_)
                return gain, vals

            initial_vals = evaluate(subject, layers, size, seeds, value_fn, batch_units, fft, decorrelate)
            result = optimize_images(subject, layers, seeds, size, gain_fn, steps=steps, lr=lr,
                                     transforms=transforms, fft=fft, decorrelate=decorrelate,
                                     transform_seed=seed + c, on_step=bar.update)
            final_vals = evaluate(subject, layers, size, None, value_fn, batch_units, fft, decorrelate,
                                   images=result.images)
            lo = unit_list.index(chunk[0])
            sl = slice(lo, lo + len(chunk))
            images[sl] = result.images.view(len(chunk), n_signs, k_, 3, size, size)
            values[sl] = final_vals.view(len(chunk), n_signs, k_)
            initial[sl] = initial_vals.view(len(chunk), n_signs, k_)
            history[:, sl] = result.history.view(steps, len(chunk), n_signs, k_)
            seconds += result.seconds
    finally:
        bar.close()

    tf = Transforms.for_size(size) if transforms is None else transforms
    settings = {
        "layer": layer, "objective": objective if not custom else getattr(objective, "__name__", "custom"),
        "steps": steps, "size": size, "diversity": diversity, "negative": negative, "seed": seed, "lr": lr,
        "optimizer": "adam", "diversity_weight": diversity_weight if diversity > 1 else None,
        "param": {"kind": "fft" if fft else "pixel", "decorrelate": decorrelate, "sd": 0.01,
                  "source": ("Lucent's fft_image maths (lucent.optvis.param.spatial), colour decorrelation applied "
                             "to the spectrum" if fft else "lucent.optvis.param.spatial.pixel_image")},
        "transforms": tf.to_dict() if isinstance(tf, Transforms) else {"kind": "lucent", "functions": [
            getattr(t, "__qualname__", type(t).__name__) for t in tf]},
        "value": {"channel": "mean activation over positions", "neuron": "activation at the centre position"}
        .get(objective if not custom else "", "the objective's value (minus Lucent's loss)"),
    }
    info = {"device": str(subject.device), "chunks": len(chunks), "images_per_chunk": len(chunks[0]) * per_unit,
            "seconds": round(seconds, 3), "run": subject.name}
    fv = FeatureVis(layer, unit_list, images[:, 0], values[:, 0], initial[:, 0], history[:, :, 0], settings,
                    info=info)
    if negative:
        fv.negative_images, fv.negative_values = images[:, 1], values[:, 1]
        fv.negative_initial_values, fv.negative_history = initial[:, 1], history[:, :, 1]
    fv.quality = assess(subject, fv, specific=not custom)
    return fv


def render_bytes(n_images: int, chunk_images: int, size: int, steps: int, floats_per_image: int) -> int:
    """Bytes :func:`visualize` holds for ``n_images`` images of ``size`` px, ``chunk_images`` of
    them optimised at a time in RAM (0 when on a GPU).

    Kept for every image: its pixels (the result, then decoded again for the grid when
    saved: 3 copies) and its objective history. Per chunk: the activations up to the layer
    with their gradients and autograd buffers (3 copies) and the image parameters (the
    spectrum, its gradient, Adam's two moments, the rendered and transformed image: 8 copies).

    >>> render_bytes(64, 64, 32, 512, 20_000) // 2**20      # 64 units of a tiny net, in MiB
    23
    """
    pixels = 3 * size * size
    kept = n_images * (3 * pixels + steps + 2)
    chunk = chunk_images * (3 * floats_per_image + 8 * pixels)
    return 4 * (kept + chunk)


def diversity_penalty(acts: torch.Tensor, values: torch.Tensor, k: int) -> torch.Tensor:
    """Lucent's diversity term, per group of ``k`` consecutive images, vectorised and scaled.

    Lucent's ``diversity(layer)`` is ``-sum_{i != j} <G_i, G_j> / batch`` over the
    normalised Gram matrices ``G`` of the batch's activations. Here each unit's ``k``
    images form their own group, so images of different units are not pushed apart, and
    each group's similarity is weighted by its mean ``|objective|`` (not differentiated):
    Lucid's fixed weight (``channel - 1e2 * diversity``) suits one layer of one model, a
    relative one suits any layer. Returned as a penalty (positive similarity) to add to
    the loss.
    """
    b, c = acts.shape[:2]
    flat = acts.reshape(b, c, -1)
    grams = F.normalize(torch.bmm(flat, flat.transpose(1, 2)).reshape(b, -1), p=2, dim=1)
    groups = grams.view(b // k, k, -1)
    sim = torch.bmm(groups, groups.transpose(1, 2))  # (G, k, k)
    off_diagonal = sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(1)
    scale = values.detach().abs().view(b // k, k).mean(1)
    return (scale * off_diagonal / k).sum()


def unit_ranges(units: Sequence[int]) -> str:
    """Units as ranges, the way ``--units`` takes them.

    >>> unit_ranges([0, 1, 2, 5, 7, 8])
    '0-2,5,7-8'
    """
    parts, units = [], sorted(units)
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1] == units[j] + 1:
            j += 1
        parts.append(str(units[i]) if i == j else f"{units[i]}-{units[j]}")
        i = j + 1
    return ",".join(parts)
