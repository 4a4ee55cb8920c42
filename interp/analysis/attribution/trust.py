"""How far can an attribution map be trusted? Three checks.

1. **Completeness** (Integrated Gradients): the attributions should sum to the change
   in the target's output between the baseline and the input,
   ``sum(IG) = f(x) - f(baseline)``. :func:`ig_completeness` reports both sides and the
   relative error (:mod:`~interp.analysis.attribution.completeness`);
   :func:`~interp.analysis.attribution.attribute.attribute` attaches it to every
   IG result. A large error means too few ``steps``.
2. **Deletion and insertion** (Petsiuk et al., RISE, 2018): remove the pixels a map
   ranks highest first (deletion: replaced by a black image) and watch the target's
   probability fall; or start from a blurred image and insert them (insertion) and watch
   it rise. The area under each curve (fraction of pixels on x, probability on y, both
   in [0, 1]) scores the map: low deletion AUC and high insertion AUC are good. A random
   ranking is reported beside the methods as the floor to beat.
3. **Model randomisation** (Adebayo et al., "Sanity Checks for Saliency Maps", 2018):
   compare each method's maps on the trained model with its maps on a copy whose
   weights were redrawn at random. A map that explains the *model* must change, so the
   Spearman rank correlation should be low; a high one means the method mostly shows
   the input (edges), whatever the model learnt.

>>> report = trust_report(run, sample=16, steps=32)
>>> report.curves.auc("deletion")["ig"], report.sanity.mean()["ig"]
>>> interp.results.attribution.save_trust(report)   # reports/RUN/attribution/trust.{json,npz} + two PNGs
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...data.samples import Sample, random_sample, stratified_sample
from ...errors import InterpError, unknown
from ...hooks import eval_mode
from .attribute import Attribution, as_subject, attribute
from .completeness import Completeness
from .inputs import load_dataset_images
from .methods import METHODS, make_baseline, parse_methods

# --------------------------------------------------------------------------- deletion / insertion


@dataclass
class PerturbationCurves:
    """Deletion and insertion curves per method (and for a random ranking)."""

    fractions: np.ndarray
    """(S+1,) fraction of pixels removed / inserted, 0..1."""
    deletion: dict[str, np.ndarray]
    """method -> (N, S+1) target probability as pixels are removed."""
    insertion: dict[str, np.ndarray]
    """method -> (N, S+1) target probability as pixels are inserted."""
    deletion_baseline: str = "black"
    insertion_baseline: str = "blur"

    @property
    def methods(self) -> list[str]:
        return list(self.deletion)

    def auc_per_image(self, kind: str) -> dict[str, np.ndarray]:
        """method -> (N,) area under the curve, in [0, 1] (trapezoid rule)."""
        curves = self.by_kind(kind)
        return {m: np.trapezoid(c, self.fractions, axis=1) for m, c in curves.items()}

    def auc(self, kind: str) -> dict[str, float]:
        """method -> mean AUC over the images. Deletion: lower is better; insertion: higher."""
        return {m: float(v.mean()) for m, v in self.auc_per_image(kind).items()}

    def by_kind(self, kind: str) -> dict[str, np.ndarray]:
        """method -> (N, S+1) curves of ``kind``: deletion or insertion."""
        if kind not in ("deletion", "insertion"):
            raise unknown("curve", kind, ["deletion", "insertion"])
        return self.deletion if kind == "deletion" else self.insertion

    def to_dict(self) -> dict:
        return {"fractions": self.fractions.tolist(), "deletion_baseline": self.deletion_baseline,
                "insertion_baseline": self.insertion_baseline,
                "deletion_auc": self.auc("deletion"), "insertion_auc": self.auc("insertion"),
                "deletion_mean_curve": {m: c.mean(0).tolist() for m, c in self.deletion.items()},
                "insertion_mean_curve": {m: c.mean(0).tolist() for m, c in self.insertion.items()}}


def pixel_ranks(scores: torch.Tensor) -> torch.Tensor:
    """(N, H, W) scores -> (N, H, W) ranks, 0 for the highest score (ties: lower index first)."""
    n = scores.shape[0]
    flat = scores.reshape(n, -1)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1]).expand(n, -1).contiguous())
    return ranks.view_as(scores)


@torch.no_grad()
def perturbation_curve(model: nn.Module, image: torch.Tensor, start: torch.Tensor, finish: torch.Tensor,
                       ranks: torch.Tensor, target: int, steps: int) -> np.ndarray:
    """Target probability along the path from ``start`` to ``finish``, pixels switched in rank order.

    Deletion is ``start=image, finish=baseline``; insertion ``start=baseline, finish=image``.
    ``image`` only fixes the shape; at step k the first k/steps of the pixels come from ``finish``.
    """
    n_pixels = ranks.numel()
    counts = torch.round(torch.linspace(0, n_pixels, steps + 1)).long()
    switched = (ranks.flatten()[None, :] < counts[:, None]).view(steps + 1, 1, *ranks.shape)  # (S+1, 1, H, W)
    switched = switched.to(image.device)
    batch = torch.where(switched, finish.unsqueeze(0), start.unsqueeze(0))  # (S+1, C, H, W)
    probs = model(batch).float().softmax(1)[:, target]
    return probs.cpu().numpy()


def deletion_insertion(run_or_model: Any, attr: Attribution, *, steps: int = 32, deletion_baseline: str = "black",
                       insertion_baseline: str = "blur", random_reference: bool = True, seed: int = 0,
                       progress: bool = False) -> PerturbationCurves:
    """Deletion and insertion curves of every map in ``attr`` (plus a random ranking).

    Pixels are ranked by :meth:`Attribution.pixel_map` (highest first) and switched in
    ``steps`` equal groups, all channels of a pixel together.
    """
    from tqdm.auto import tqdm

    if steps < 1:
        raise InterpError(f"steps must be at least 1, got {steps}")
    subject = as_subject(run_or_model)
    model = subject.model
    x = attr.inputs.to(subject.device)
    removed = make_baseline(subject, x, deletion_baseline)
    blank = make_baseline(subject, x, insertion_baseline)
    scores = {m: attr.pixel_map(m) for m in attr.methods}
    if random_reference:
        g = torch.Generator().manual_seed(seed)
        scores["random"] = torch.rand(attr.pixel_map(attr.methods[0]).shape, generator=g)
    deletion: dict[str, list] = {m: [] for m in scores}
    insertion: dict[str, list] = {m: [] for m in scores}
    with eval_mode(model):
        for m, s in tqdm(scores.items(), desc="deletion/insertion", disable=not progress or None, leave=False):
            ranks = pixel_ranks(s)
            for i in range(len(x)):
                t = int(attr.targets[i])
                deletion[m].append(perturbation_curve(model, x[i], x[i], removed[i], ranks[i], t, steps))
                insertion[m].append(perturbation_curve(model, x[i], blank[i], x[i], ranks[i], t, steps))
    return PerturbationCurves(np.linspace(0, 1, steps + 1), {m: np.stack(v) for m, v in deletion.items()},
                              {m: np.stack(v) for m, v in insertion.items()}, deletion_baseline, insertion_baseline)


# --------------------------------------------------------------------------- model randomisation


def randomized_copy(model: nn.Module, *, seed: int = 0, layers: Sequence[str] | None = None) -> nn.Module:
    """A copy of ``model`` with the weights of ``layers`` (default: all) redrawn at random.

    Each parameter tensor is redrawn from a normal distribution with that tensor's own
    mean and standard deviation, so activations keep roughly their scale while everything
    learnt is gone. The original model is untouched.
    """
    clone = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    modules = dict(clone.named_modules())
    if layers is not None:
        for name in layers:
            if name not in modules:
                raise unknown("layer", name, getattr(model, "layer_names", None) or [n for n in modules if n])
    chosen = [modules[n] for n in layers] if layers is not None else [clone]
    with torch.no_grad():
        for module in chosen:
            for p in module.parameters():
                std = float(p.std()) if p.numel() > 1 else 0.0
                std = std or 0.05
                noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
                p.copy_((noise * std + float(p.mean())).to(p.dtype))
    return clone


@dataclass
class SanityCheck:
    """Spearman rank correlation between trained-model and randomised-model maps, per method and image."""

    correlations: dict[str, np.ndarray]
    """method -> (N,) Spearman's rho (NaN where a map is constant)."""
    trained_maps: dict[str, np.ndarray] = field(default_factory=dict)
    """method -> (N, H, W) pixel maps of the trained model (for the figure)."""
    random_maps: dict[str, np.ndarray] = field(default_factory=dict)
    absolute: bool = True
    seed: int = 0

    @property
    def methods(self) -> list[str]:
        return list(self.correlations)

    def mean(self) -> dict[str, float]:
        """method -> mean rho over images (NaN images skipped; NaN if all are)."""
        out = {}
        for m, v in self.correlations.items():
            ok = v[~np.isnan(v)]
            out[m] = float(ok.mean()) if len(ok) else float("nan")
        return out

    def to_dict(self) -> dict:
        return {"absolute": self.absolute, "seed": self.seed,
                "mean_spearman": {m: _finite(v) for m, v in self.mean().items()},
                "spearman": {m: [_finite(x) for x in v] for m, v in self.correlations.items()}}


def _finite(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two flattened maps (NaN if either is constant)."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


def sanity_check(run_or_model: Any, inputs: torch.Tensor, target: Any = None, methods: Any = None, *,
                 seed: int = 0, absolute: bool = True, layers: Sequence[str] | None = None,
                 trained: Attribution | None = None, progress: bool = False, **options: Any) -> SanityCheck:
    """Model-randomisation test: each method's maps on the model against those on a randomised copy.

    The randomised model explains the trained model's target (its prediction by
    default). ``absolute`` compares |maps|, as Adebayo et al. do for their headline
    figures. Pass ``trained`` to reuse maps already computed with the same options.
    """
    subject = as_subject(run_or_model)
    if trained is None:
        trained = attribute(subject, inputs, target, methods, progress=progress, **options)
    random_subject = replace(subject, model=randomized_copy(subject.model, seed=seed, layers=layers))
    opts = {**asdict(trained.options), **options}
    random_attr = attribute(random_subject, trained.inputs, trained.targets, trained.methods, normalized=True,
                            progress=progress, **opts)
    correlations, tmaps, rmaps = {}, {}, {}
    for m in trained.methods:
        a = trained.pixel_map(m).numpy()
        b = random_attr.pixel_map(m).numpy()
        tmaps[m], rmaps[m] = a, b
        if absolute:
            a, b = np.abs(a), np.abs(b)
        correlations[m] = np.array([spearman(a[i], b[i]) for i in range(len(a))])
    return SanityCheck(correlations, tmaps, rmaps, absolute, seed)


# --------------------------------------------------------------------------- all three on a sample


@dataclass
class TrustReport:
    """Completeness, deletion/insertion and the randomisation check on one sample of test images."""

    run: str | None
    sources: list[str]
    methods: list[str]
    completeness: Completeness | None
    curves: PerturbationCurves
    sanity: SanityCheck
    options: dict = field(default_factory=dict)

    def table(self) -> list[dict]:
        """One row per method: deletion AUC, insertion AUC, mean Spearman vs the randomised model."""
        deletion, insertion = self.curves.auc("deletion"), self.curves.auc("insertion")
        rho = self.sanity.mean()
        rows = []
        for m in [*self.methods, "random"]:
            if m not in deletion:
                continue
            rows.append({"method": m, "title": METHODS[m].title if m in METHODS else "random ranking",
                         "deletion_auc": deletion[m], "insertion_auc": insertion[m],
                         "randomization_spearman": _finite(rho.get(m))})
        return rows

    def headline(self) -> str:
        """A one-line summary for logs."""
        parts = [f"{len(self.sources)} test images"]
        if self.completeness is not None:
            parts.append(f"IG completeness error <= {self.completeness.max_relative_error:.1%}")
        best = min((r for r in self.table() if r["method"] != "random"), key=lambda r: r["deletion_auc"], default=None)
        if best:
            parts.append(f"lowest deletion AUC: {best['method']} {best['deletion_auc']:.3f} "
                         f"(random {self.curves.auc('deletion').get('random', float('nan')):.3f})")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"run": self.run, "sources": self.sources, "methods": self.methods,
                "options": self.options, "table": self.table(),
                "completeness": self.completeness.to_dict() if self.completeness is not None else None,
                "curves": self.curves.to_dict(), "sanity": self.sanity.to_dict()}


def sample_indices(n_available: int, sample: int, seed: int = 0, labels: torch.Tensor | None = None,
                   classes: Sequence[str] | None = None) -> list[int]:
    """``sample`` distinct indices out of ``n_available``, drawn by a seeded generator, sorted:
    stratified by class when ``labels`` are given (:func:`~interp.data.samples.stratified_sample`),
    else a plain seeded random subset."""
    return draw_sample(n_available, sample, seed, labels, classes).indices.tolist()


def draw_sample(n_available: int, sample: int, seed: int = 0, labels: torch.Tensor | None = None,
                classes: Sequence[str] | None = None) -> Sample:
    """The :class:`~interp.data.samples.Sample` behind :func:`sample_indices` (with its class counts)."""
    if sample < 1:
        raise InterpError(f"sample must be at least 1, got {sample}")
    if labels is None:
        return random_sample(n_available, sample, seed=seed)
    if len(labels) != n_available:
        raise InterpError(f"{len(labels)} labels for {n_available} images; give one label per image")
    return stratified_sample(labels, sample, seed=seed, classes=classes)


def trust_report(run: Any, sample: int = 16, methods: Any = None, *, data: Any = None, seed: int = 0,
                 curve_steps: int = 32, progress: bool = False, **options: Any) -> TrustReport:
    """Run the three checks on ``sample`` random test images (targets: the model's predictions).

    ``options`` go to :func:`~interp.analysis.attribution.attribute.attribute` (``steps``, ``baseline`` ...).
    """
    subject = as_subject(run)
    data = data if data is not None else run.load_data(progress=progress, split="test")
    drawn = draw_sample(len(data.test_y), sample, seed, data.test_y, getattr(data, "classes", None))
    indices = drawn.indices.tolist()
    images, labels = load_dataset_images(run, indices, "test", data=data)
    names = parse_methods(methods, subject)
    attr = attribute(run, images, None, names, labels=labels, sources=[f"test:{i}" for i in indices],
                     progress=progress, **options)
    curves = deletion_insertion(run, attr, steps=curve_steps, seed=seed, progress=progress)
    sanity = sanity_check(run, images, None, names, seed=seed, trained=attr, progress=progress, **options)
    return TrustReport(subject.run_name, attr.sources, names, attr.completeness, curves, sanity,
                       {"sample": sample, "seed": seed, "curve_steps": curve_steps, "population": drawn.population,
                        "class_counts": drawn.class_counts, "sampling": drawn.describe(), **asdict(attr.options)})


