"""Clever Hans checks: does a classifier's accuracy rest on a cue that is not the object?

A model that still classifies well when the object is masked out, when only the image
border is left, or when the image is cut into shuffled patches is probably using a
shortcut (a watermark, a background, a texture) rather than what the task is about:
Lapuschkin et al.'s "Clever Hans" predictors. For text models the analogue is a cue
token: does the model's behaviour hinge on one token?

>>> acc = perturbation_accuracy(run, images, labels)   # {"full": 0.93, "border_only": 0.11, ...}
>>> check_claims(run, ["clever-hans"])[0].verdict

What the ``clever-hans`` check does depends on what it knows about the data:

- **a planted cue** (a ``shapes-watermark`` run, :class:`~interp.data.shapes.Watermark`):
  accuracy on the clean test images with the true class's mark (as in training), a random
  class's mark (the dataset's test split), no mark, another class's mark, and the true
  class's mark on the image's background with the object left out
  (:func:`planted_shortcut`). Supported when the drop from the true class's mark to another
  class's has a bootstrap 95% CI above 0, is above its null (the drop under random
  re-assignments of marks to classes, and a reference run's drop when one is given: a run
  trained without the mark) and at least ``min_drop``, *and* the mark alone (object removed)
  keeps accuracy well above chance. Not supported when the drop is within the null; a
  dependence that the mark alone does not carry is inconclusive.
- **plain shapes** (the generator is known, no cue was planted): the object is removed by
  rendering each test image's own background; accuracy above chance then would be a
  shortcut. The frame and patch perturbations are reported but do not decide: on shapes
  texture is part of the label (gratings, high_low) and stripes and edges fill the frame.
- **anything else** (CIFAR-10, a folder, given images): the perturbations below that should
  destroy an object-centred image (``border_only``, ``patches_shuffled``); the test can only
  find cues that survive them.

Perturbations (images in [0, 1], ``[N, C, H, W]``; masked areas take the mean colour of
all the images, so neither a new cue nor what was masked leaks in):

- ``grayscale``: luminance only (a control: shape tasks should keep their accuracy);
- ``centre_masked``: the central square of half the side is hidden;
- ``border_only``: only an outer frame of 1/8 of the side is left;
- ``patches_shuffled``: a 4 x 4 grid of patches is shuffled (local texture stays, global shape goes);
- ``low_pass``: Gaussian blur with sigma = side / 16 (fine detail goes).

A reference run for the planted test: ``planted_shortcut(run, ..., reference=other_run)``,
or ``options.reference`` (a run or its name) where :class:`CheckOptions` carries one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from statistics import NormalDist

from ..errors import InterpError
from ..plots import pyplot
from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult,
                       register_claim, run_kind)
from ..stats import NULL_LEVEL, binomial_tail, bootstrap_ci, headline

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
    chance = max(torch.bincount(labels, minlength=n_classes).float().max().item() / len(labels), 1 / n_classes)
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


def _chance(labels: torch.Tensor, n_classes: int) -> float:
    return max(torch.bincount(labels, minlength=n_classes).float().max().item() / max(len(labels), 1),
               1 / n_classes)


def _chance_quantile(n: int, chance: float, level: float = NULL_LEVEL) -> float:
    """The accuracy that guessing at ``chance`` exceeds with probability ``1 - level`` on ``n`` images."""
    k = next((k for k in range(int(n * chance), n + 1) if binomial_tail(k, n, chance) <= 1 - level), n)
    return k / max(n, 1)


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


def _cue_dict(run, watermark) -> dict:
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
        from ..runs import load_run

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
    chance = _chance(labels, n_classes)
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
    return ShortcutTest(_cue_dict(run, watermark), acc, chance, len(labels), drop, drop_ci, null, null_drops,
                        object_p, object_retention, ref, got)


# -------------------------------------------------------------------------- the claim


def _applies_classifier(run) -> str | None:
    if run_kind(run) not in ("vision", "classifier"):
        return "the check is for image classifiers trained as runs of this project"
    return None


def _planted_cue(run):
    from ..data.shapes import parse_watermark

    return parse_watermark(getattr(run.config.data, "name", ""))


def _is_plain_shapes(run) -> bool:
    return getattr(run.config.data, "name", "") == "shapes"


def _shapes_views(run, options: CheckOptions):
    """A stratified sample of the run's (clean) shapes test split, with each image's background."""
    from ..data.samples import sample_images
    from ..data.shapes import shapes_test_views

    dc = run.config.data
    size = int(dc.input_shape[-1]) if dc.input_shape else 32
    clean, labels, backgrounds = shapes_test_views(dc.n_test or 10_000, size=size)
    x, y, sample = sample_images(clean, labels, options.max_images, seed=options.seed,
                                 classes=getattr(run, "classes", None))
    bg = backgrounds if sample.size >= len(labels) else backgrounds[sample.indices]
    return x, y, bg, sample


def _r(x, digits: int = 4):
    return None if x is None or x != x else round(float(x), digits)


def check_clever_hans(run, options: CheckOptions) -> ClaimResult:
    watermark = _planted_cue(run)
    if watermark is not None:
        return check_planted(run, watermark, options, reference=options.reference)
    if options.images is None and _is_plain_shapes(run):
        return _check_shapes(run, options)
    return _check_perturbations(run, options)


def check_planted(run, watermark, options: CheckOptions | None = None, *, reference=None) -> ClaimResult:
    """The ``clever-hans`` verdict for the planted cue ``watermark`` (:class:`~interp.data.shapes.Watermark`).

    What the check does on a ``shapes-watermark`` run; call it directly to test a run trained
    without the mark against it (a true negative), or to give a ``reference`` run (or its
    name) trained without the mark. The images: ``options.images`` / ``labels`` taken as
    clean, or the clean version of the run's shapes test split (``max_images`` of them,
    stratified, ``options.seed``).

    >>> check_planted(load_run("tutorial-shapes"), Watermark()).status
    'not supported'
    """
    from .vision import sample_evidence

    options = options or CheckOptions()
    claim = CLEVER_HANS
    thr = claim.thresholds
    notes = []
    if options.images is not None:
        from ..data.samples import sample_images
        from ..data.shapes import make_shapes

        if options.labels is None:
            raise InterpError("the Clever Hans check needs the labels of the images: pass labels= with images=")
        images, labels, sample = sample_images(options.images, options.labels, options.max_images,
                                               seed=options.seed, classes=getattr(run, "classes", None))
        if images.dtype != torch.uint8:
            images = (images.float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
        h, w = images.shape[-2:]
        backgrounds = None
        if h == w and h >= 8:
            # Not these images' own backgrounds: background-only images from the generator.
            backgrounds = make_shapes(len(labels), seed=10_001 + options.seed, size=h, backgrounds=True)[2]
            notes.append("the given images are taken as clean (unmarked); with the object removed means "
                         "background-only images from the shapes generator with the true class's mark")
    elif _planted_cue(run) is None and not _is_plain_shapes(run):
        return claim.result(INCONCLUSIVE, f"the run was trained on {run.config.data.name!r}, not shapes: give the "
                            "clean images to put the planted mark on (images=, labels=)")
    else:
        images, labels, backgrounds, sample = _shapes_views(run, options)
        notes.append("the clean versions of the run's test images (the dataset without marks), marked here as "
                     "each condition says; with the object removed: the same image's background, shading and "
                     "noise, no object")
    h, w = images.shape[-2:]
    drawn, note = sample_evidence(sample, options)
    notes.insert(0, note)
    cue = _cue_dict(run, watermark)
    if not watermark.fits(h, w):
        return claim.result(INCONCLUSIVE, f"the planted mark ({watermark.describe()}) does not fit {h}x{w} images: "
                            "the cue cannot be put on or taken off", numbers=drawn, notes=notes, data={"cue": cue})
    test = planted_shortcut(run, images, labels, watermark, backgrounds=backgrounds, reference=reference,
                            seed=options.seed)
    acc, ref = test.accuracy, test.reference
    p_full = binomial_tail(int(test.correct["cue_consistent"].sum()), test.n, test.chance)
    rows = [{"input": k, "accuracy": _r(acc[k]), "p_vs_chance": binomial_tail(int(test.correct[k].sum()), test.n,
                                                                              test.chance),
             **({"reference_accuracy": _r(ref["accuracy"][k])} if ref else {})} for k in acc]
    numbers = {**drawn, "chance": _r(test.chance), **{k: _r(v) for k, v in acc.items()},
               "drop": _r(test.drop), "drop_ci_low": _r(test.drop_ci[0]), "drop_ci_high": _r(test.drop_ci[1]),
               "null_drop": _r(test.null), "object_removed_retention": _r(test.object_retention, 3),
               **({"reference_drop": _r(ref["drop"]), "excess_drop": _r(ref["excess"]),
                   "excess_ci_low": _r(ref["excess_ci"][0]), "excess_ci_high": _r(ref["excess_ci"][1])}
                  if ref else {})}
    null_what = (f"drop when the marks are re-assigned to classes at random "
                 f"({len(test.null_drops)} assignments)")
    if ref:
        null_what += f", or the reference run {ref['name']}'s drop (95% CI high) if larger"
    else:
        notes.append("no reference run trained without the cue was given; the null is the drop under random "
                     "re-assignments of the marks (a model that does not know which mark goes with which class)")
    evidence = dict(
        layer="input", table=rows, numbers=numbers, notes=notes, found=[],
        headline=headline("accuracy drop when the cue is decorrelated (true class's mark -> another class's)",
                          test.drop, test.drop_ci, null=test.null, n=test.n, over="images", null_what=null_what,
                          extra={"chance": _r(test.chance), "object_removed": _r(acc.get("object_removed")),
                                 **({"reference_drop": _r(ref["drop"])} if ref else {})}),
        data={"accuracy": dict(acc), "chance": test.chance, "destroy": ["cue_decorrelated", "object_removed"],
              "cue": cue, "null_drops": test.null_drops,
              **({"reference_accuracy": ref["accuracy"], "reference": ref["name"]} if ref else {}),
              "title": "planted cue: accuracy by input (red: compared with the cue as trained)"})
    summary = (f"cue as trained {acc['cue_consistent']:.1%}, another class's cue {acc['cue_decorrelated']:.1%}: "
               f"drop {test.drop:+.1%} (95% CI {test.drop_ci[0]:+.1%} to {test.drop_ci[1]:+.1%}; null {test.null:+.1%}"
               + (f"; reference {ref['name']} {ref['drop']:+.1%}" if ref else "") + ")")
    if p_full > thr["p_value"]:
        return claim.result(NOT_SUPPORTED, f"the model is at chance even with the cue as trained "
                            f"({acc['cue_consistent']:.1%}, chance {test.chance:.1%}): there is no accuracy for a "
                            "shortcut to explain", **evidence)
    relies = (test.drop_ci[0] > 0 and test.drop > test.null and test.drop >= thr["min_drop"]
              and (ref is None or ref["excess_ci"][0] > 0))
    if not relies:
        why = ("within the null" if test.drop <= test.null else "its CI includes 0" if test.drop_ci[0] <= 0
               else f"below {thr['min_drop']:.0%}" if test.drop < thr["min_drop"]
               else "not above the reference run's")
        return claim.result(NOT_SUPPORTED, f"the model does not rely on the planted cue ({watermark.describe()}): "
                            f"{summary}, {why}", **evidence)
    evidence["found"] = [f"mark {watermark.size}x{watermark.size} at ({watermark.row}, {watermark.col})"]
    if "object_removed" not in acc:
        return claim.result(INCONCLUSIVE, f"the model relies on the planted cue ({summary}), but whether the cue alone "
                            "carries its accuracy could not be measured (no background-only images of this size)",
                            **evidence)
    alone = test.object_p <= thr["p_value"] and test.object_retention >= thr["retention"]
    obj = (f"with the object removed and the cue kept {acc['object_removed']:.1%} (chance {test.chance:.1%}, "
           f"{test.object_retention:.0%} of the gain over chance)")
    if alone:
        return claim.result(SUPPORTED, f"the model relies on the planted cue ({watermark.describe()}): {summary}; "
                            f"{obj}", **evidence)
    return claim.result(INCONCLUSIVE, f"the model's accuracy depends on the planted cue ({summary}), but the cue alone "
                        f"does not carry it ({obj}): it uses the cue together with the object", **evidence)


SHAPES_TEXTURE_CLASSES = ("edge", "grating_low", "grating_high", "high_low")
"""Classes of ``shapes`` whose definition survives border_only or patches_shuffled: stripes and
half-planes fill the frame, and texture is part of what defines the gratings and high_low."""


def _per_class(ok: torch.Tensor, labels: torch.Tensor, n_classes: int) -> list[float]:
    total = torch.bincount(labels, minlength=n_classes).clamp_min(1).float()
    return (torch.bincount(labels, weights=ok.float(), minlength=n_classes) / total).tolist()


def _check_shapes(run, options: CheckOptions) -> ClaimResult:
    """Plain ``shapes``: remove the object itself (the generator renders each image's background);
    the frame and patch perturbations are reported but cannot decide, because texture and
    frame-filling patterns are part of the label there."""
    claim = CLEVER_HANS
    thr = claim.thresholds
    from .vision import sample_evidence

    images, labels, backgrounds, sample = _shapes_views(run, options)
    classes = list(run.classes) or [str(i) for i in range(int(labels.max()) + 1)]
    k = len(classes)
    chance = _chance(labels, k)
    x = images.float() / 255.0
    got = {"full": correct(run, images, labels), "object_removed": correct(run, backgrounds, labels)}
    for kind in PERTURBATIONS:
        got[kind] = correct(run, perturb(x, kind, seed=options.seed), labels)
    acc = {name: float(v.float().mean()) for name, v in got.items()}
    n = len(labels)
    p_vs = {name: binomial_tail(int(v.sum()), n, chance) for name, v in got.items()}
    gain = acc["full"] - chance
    retention = {name: (a - chance) / gain if gain > 0 else float("nan") for name, a in acc.items()}
    per_class = {name: _per_class(got[name], labels, k) for name in ("full", *SHOULD_DESTROY, "object_removed")}
    rows = [{"input": name, "accuracy": _r(acc[name]), "retention": _r(retention[name], 3),
             "decides": name in ("full", "object_removed"), "p_vs_chance": p_vs[name]} for name in acc]
    # Which classes keep their accuracy under the frame / patch perturbations, and are they the
    # classes whose label is (partly) texture or fills the frame?
    kept = {}
    for kind in SHOULD_DESTROY:
        kept[kind] = [c for i, c in enumerate(classes)
                      if per_class["full"][i] > chance and per_class[kind][i] - chance
                      >= thr["retention"] * (per_class["full"][i] - chance)]
    label_like = [c for c in classes if c in SHAPES_TEXTURE_CLASSES]
    obj_ci = bootstrap_ci(got["object_removed"].double(), seed=options.seed)
    null = _chance_quantile(n, chance)
    drawn, note = sample_evidence(sample, options)
    notes = [note,
             "no planted or suspected cue: the test can only find cues it can remove; here it removes the object "
             "(the generator renders each test image's own background, shading and noise without it)",
             "border_only and patches_shuffled are reported but do not decide on shapes: texture is part of the label "
             f"for {', '.join(c for c in label_like if c != 'edge')}, and stripes and edges fill the frame "
             f"({', '.join(label_like)}), so keeping accuracy without the centre or the global shape is not a "
             "shortcut there"]
    for kind, cls in kept.items():
        others = [c for c in cls if c not in SHAPES_TEXTURE_CLASSES]
        if cls:
            notes.append(f"{kind} keeps at least half the gain over chance for {', '.join(cls)}"
                         + (f"; for {', '.join(others)} too, which neither fill the frame nor are a texture (a "
                            "small object can survive whole in one patch, a large one reach the border)"
                            if others else ""))
    numbers = {**drawn, "chance": _r(chance), **{name: _r(a) for name, a in acc.items()},
               "object_removed_ci_low": _r(obj_ci[0]), "object_removed_ci_high": _r(obj_ci[1]),
               "chance_quantile": _r(null)}
    evidence = dict(layer="input", table=rows, numbers=numbers, notes=notes, found=[],
                    headline=headline("accuracy with the object removed (its background only)", acc["object_removed"],
                                      obj_ci, null=null, n=n, over="images",
                                      null_what=f"accuracy of guessing at chance ({chance:.0%}) on {n} images",
                                      extra={"chance": _r(chance), "full": _r(acc["full"])}),
                    data={"accuracy": dict(acc), "chance": chance, "destroy": ["object_removed"],
                          "per_class": {"classes": classes, **per_class}, "kept": kept,
                          "title": "shapes: red decides (object removed); grey: context only"})
    if p_vs["full"] > thr["p_value"]:
        return claim.result(NOT_SUPPORTED, f"the model is at chance on full images ({acc['full']:.1%}, chance "
                            f"{chance:.1%}): there is no accuracy for a shortcut to explain", **evidence)
    obj = (f"with the object removed (background only) accuracy is {acc['object_removed']:.1%} (95% CI "
           f"{obj_ci[0]:.1%} to {obj_ci[1]:.1%}; chance {chance:.1%}, its 99% quantile {null:.1%}; "
           f"full {acc['full']:.1%})")
    if p_vs["object_removed"] <= thr["p_value"] and retention["object_removed"] >= thr["retention"]:
        evidence["found"] = ["background"]
        return claim.result(SUPPORTED, f"something outside the object carries the label: {obj}", **evidence)
    if p_vs["object_removed"] <= thr["p_value"]:
        return claim.result(INCONCLUSIVE, f"{obj}: above chance but less than half the gain over chance; the "
                            "background carries a little of the label", **evidence)
    return claim.result(NOT_SUPPORTED, f"{obj}: nothing outside the object carries the label. No planted or suspected "
                        "cue, so this is all it can tell: border/patch perturbations cannot decide on shapes, where "
                        "texture is part of the label", **evidence)


def _check_perturbations(run, options: CheckOptions) -> ClaimResult:
    """No planted cue and no generator: the perturbations that should destroy an object-centred image."""
    from .vision import claim_data, sample_evidence

    claim = CLEVER_HANS
    thr = claim.thresholds
    images, labels, sample = claim_data(run, options)
    if labels is None:
        raise InterpError("the Clever Hans check needs the labels of the images: pass labels= with images=")
    if len(torch.unique(labels)) < 2:
        raise InterpError(f"the Clever Hans check compares accuracy with chance, which needs images of at least 2 "
                          f"classes; these {len(labels)} images are all of class {int(labels[0])}")
    result = perturbation_accuracy(run, images, labels, seed=options.seed)
    rows = [{"input": "full", "accuracy": round(result.full, 4), "retention": 1.0, "should_destroy": False,
             "p_vs_chance": result.p_values["full"]}]
    for k, v in result.perturbed.items():
        r = result.retention(k)
        rows.append({"input": k, "accuracy": round(v, 4), "retention": round(r, 3) if r == r else None,
                     "should_destroy": k in result.destroy, "p_vs_chance": result.p_values[k]})
    survived = [k for k in result.destroy if result.retention(k) >= thr["retention"]
                and result.p_values[k] <= thr["p_value"]]
    drawn, note = sample_evidence(sample, options)
    numbers = {**drawn, "chance": round(result.chance, 4), "full": round(result.full, 4),
               **{k: round(v, 4) for k, v in result.perturbed.items()}}
    notes = [note, "no planted cue: the test can only find cues that survive removing the centre or the global "
             "shape (a frame, a background, a local texture); where texture or frame-filling patterns are part of "
             "what defines a class, surviving these is not a shortcut"]
    # The headline: the destroying perturbation that keeps the most accuracy, against chance.
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    best = max(result.destroy, key=lambda k: result.perturbed.get(k, -1.0)) if result.destroy else None
    head = {}
    if best is not None and best in result.perturbed:
        ok = correct(run, perturb(x, best, seed=options.seed), labels).double()
        head = headline(f"accuracy on {best} images (the perturbation that should destroy most, keeping the most)",
                        result.perturbed[best], bootstrap_ci(ok, seed=options.seed),
                        null=_chance_quantile(result.n, result.chance), n=result.n, over="images",
                        null_what=f"accuracy of guessing at chance ({result.chance:.0%}) on {result.n} images",
                        extra={"chance": _r(result.chance), "full": _r(result.full)})
    evidence = dict(layer="input", table=rows, numbers=numbers, found=survived, notes=notes, headline=head,
                    data={"accuracy": {"full": result.full, **result.perturbed}, "chance": result.chance,
                          "destroy": list(result.destroy)})
    if result.p_values["full"] > thr["p_value"]:
        return claim.result(NOT_SUPPORTED, f"the model is at chance on full images ({result.full:.1%}, chance "
                            f"{result.chance:.1%}): there is no accuracy for a shortcut to explain", **evidence)
    if survived:
        detail = ", ".join(f"{k} {result.perturbed[k]:.1%} (keeps {result.retention(k):.0%} of the gain over chance)"
                           for k in survived)
        return claim.result(SUPPORTED, f"accuracy survives inputs that should destroy it: {detail}; full images "
                            f"{result.full:.1%}, chance {result.chance:.1%}", **evidence)
    detail = ", ".join(f"{k} {result.perturbed[k]:.1%}" for k in result.destroy)
    return claim.result(NOT_SUPPORTED, f"accuracy falls towards chance when the object is removed ({detail}; full "
                        f"{result.full:.1%}, chance {result.chance:.1%})", **evidence)


def plot_clever_hans(result: ClaimResult) -> dict:
    plt = pyplot()
    acc = result.data.get("accuracy")
    if not acc:
        return {}
    names = list(acc)
    destroy = set(result.data.get("destroy", []))
    ref = result.data.get("reference_accuracy") or {}
    colours = ["#1f77b4" if n in ("full", "cue_consistent") else ("#d62728" if n in destroy else "#7f7f7f")
               for n in names]
    fig, ax = plt.subplots(figsize=(5.6 if len(names) <= 6 else 6.4, 3.0), layout="tight")
    ax.bar(range(len(names)), [acc[n] for n in names], color=colours)
    if ref:
        ax.scatter([i for i, n in enumerate(names) if n in ref], [ref[n] for n in names if n in ref], marker="_",
                   s=300, color="black", zorder=3, label=f"reference ({result.data.get('reference', '')})")
    ax.axhline(result.data["chance"], ls="--", color="black", lw=0.8, label="chance")
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(result.data.get("title", "red: inputs that should not suffice"), fontsize=8)
    return {"accuracy": fig}


# -------------------------------------------------------------------------- text: cue tokens


@dataclass
class CueEffect:
    """How much replacing a token changes a language model's next-token predictions.

    ``effect``: mean KL divergence (nats) between the predictions with and without the
    token, over the positions from its first occurrence on, in sequences that contain it;
    ``placebo``: the same for other tokens (the null).
    """

    cue: str
    effect: float
    placebo: dict[str, float]
    sequences: int


@torch.no_grad()
def replacement_effect(model, tokens: torch.Tensor, token: int, replacement: int) -> tuple[float, int]:
    """Mean KL(original || replaced) of next-token predictions after ``token``'s first occurrence."""
    has = (tokens == token).any(1)
    x = tokens[has]
    if len(x) == 0:
        return float("nan"), 0
    p = next(model.parameters())
    logp = F.log_softmax(model(x.to(p.device)).float(), -1).cpu()
    y = x.clone()
    y[y == token] = replacement
    logq = F.log_softmax(model(y.to(p.device)).float(), -1).cpu()
    kl = (logp.exp() * (logp - logq)).sum(-1)  # (B, T)
    after = (x == token).int().cumsum(1) > 0
    return float(kl[after].mean()), len(x)


def cue_effect(run, cue: str, tokens: torch.Tensor, *, n_placebo: int = 8, seed: int = 0) -> CueEffect:
    """The effect of replacing ``cue`` (a token of the run's vocabulary) and of replacing placebo tokens."""
    from ..analysis.language.heads import run_vocabulary

    vocab = run_vocabulary(run)
    ids = vocab.encode(cue)
    if len(ids) != 1:
        raise InterpError(f"the cue must be one token of the model's vocabulary; {cue!r} is {len(ids)} tokens")
    cue_id = int(ids[0])
    counts = torch.bincount(tokens.flatten(), minlength=len(vocab))
    candidates = [t for t in range(len(vocab)) if t != cue_id and t != vocab.bos and counts[t] > 0]
    g = torch.Generator().manual_seed(seed)
    placebo_ids = [candidates[i] for i in torch.randperm(len(candidates), generator=g)[:n_placebo].tolist()]
    # The replacement: a token the sequences never use when there is one, else the rarest other token.
    replacement = int(torch.argsort(counts + torch.where(torch.arange(len(vocab)) == cue_id, 10**9, 0))[0])
    effect, n = replacement_effect(run.model, tokens, cue_id, replacement)
    if n == 0:
        raise InterpError(f"the cue {cue!r} never occurs in the evaluation sequences; pick a token the data uses")
    placebo = {vocab.tokens[t]: replacement_effect(run.model, tokens, t, replacement)[0] for t in placebo_ids
               if t != replacement}
    return CueEffect(cue, effect, placebo, n)


def _applies_language(run) -> str | None:
    return None if run_kind(run) == "transformer" else "the check is for language-model runs"


def _text_tokens(run, options: CheckOptions) -> torch.Tensor:
    from ..analysis.language.heads import run_vocabulary, task_tokens

    if run_vocabulary(run).is_char:
        from ..data.text import load_char_corpus, random_windows

        corpus = load_char_corpus(run.config.data.name, progress=options.progress)
        return random_windows(corpus.val, 128, run.config.model_config["block_size"] - 1,
                              torch.Generator().manual_seed(options.seed))
    return task_tokens(run, 128, seed=options.seed)


def check_cue_token(run, options: CheckOptions) -> ClaimResult:
    claim = CUE_TOKEN
    if not options.cue:
        return claim.result(INCONCLUSIVE, "no suspected cue token given; pass one with --cue TOKEN (Python: cue=...)")
    run.model.eval()
    tokens = _text_tokens(run, options)
    result = cue_effect(run, options.cue, tokens, seed=options.seed)
    placebo = [v for v in result.placebo.values() if v == v]
    null = claim.thresholds["factor"] * max(placebo) if placebo else float("nan")
    rows = [{"token": options.cue, "kl_after_replacing": round(result.effect, 5), "cue": True}]
    rows += [{"token": t, "kl_after_replacing": round(v, 5), "cue": False} for t, v in result.placebo.items()]
    floor = claim.thresholds["min_effect"]
    supported = bool(placebo) and result.effect > null and result.effect >= floor
    evidence = dict(layer="input tokens", table=rows, found=[options.cue] if supported else [],
                    numbers={"cue_effect": round(result.effect, 5), "placebo_max": round(max(placebo, default=0), 5),
                             "sequences_with_cue": result.sequences},
                    headline=headline(f"KL change of the predictions when {options.cue!r} is replaced", result.effect,
                                      (float("nan"), float("nan")), null=null if placebo else None,
                                      n=result.sequences, over="sequences (no interval: one pooled effect)",
                                      null_what=f"{claim.thresholds['factor']}x the largest of {len(placebo)} other "
                                                f"tokens' effects (placebos)", level=None),
                    data={"effects": {r["token"]: r["kl_after_replacing"] for r in rows}})
    factor = claim.thresholds["factor"]
    if supported:
        return claim.result(SUPPORTED, f"replacing {options.cue!r} changes the predictions by {result.effect:.3f} "
                            f"nats (KL), more than {factor}x the largest effect of replacing one of {len(placebo)} "
                            f"other tokens ({max(placebo):.3f})", **evidence)
    return claim.result(NOT_SUPPORTED, f"replacing {options.cue!r} changes the predictions by {result.effect:.3f} "
                        f"nats (KL), not clearly more than other tokens (up to {max(placebo, default=0):.3f}) or "
                        f"below {floor}", **evidence)


# -------------------------------------------------------------------------- registration


CLEVER_HANS = register_claim(Claim(
    id="clever-hans",
    statement="The classifier relies on a shortcut, a Clever Hans: its accuracy depends on a cue that is not "
              "the object (a planted mark), or survives inputs that should not suffice (only the background, "
              "only the border, shuffled patches).",
    source="Lapuschkin et al., 'Unmasking Clever Hans predictors and assessing what machines really learn', "
           "Nature Communications 2019",
    url="https://www.nature.com/articles/s41467-019-08987-4",
    applies_to="image classifiers, on their test images (shapes-watermark runs: the planted mark)",
    kind="classifier",
    thresholds={"retention": 0.5, "p_value": 0.01, "should_destroy": list(SHOULD_DESTROY), "min_drop": 0.1,
                "permutations": PERMUTATIONS,
                "planted": "drop (cue as trained - another class's cue) with 95% CI above 0, above the null and "
                           ">= min_drop; with the object removed and the cue kept, p <= p_value against chance and "
                           ">= retention of the gain over chance"},
    check=check_clever_hans, applies=_applies_classifier, plot=plot_clever_hans,
))

CUE_TOKEN = register_claim(Claim(
    id="cue-token",
    statement="The language model's predictions hinge on a suspected cue token: replacing it changes them more "
              "than replacing other tokens.",
    source="Lapuschkin et al. 2019 (Clever Hans), applied to tokens; the cue comes from the user",
    url="https://www.nature.com/articles/s41467-019-08987-4",
    applies_to="language-model runs, with a cue token (--cue)",
    kind="transformer",
    thresholds={"min_effect": 0.01, "factor": 1.5,
                "null": "factor x the largest effect of replacing one of 8 other tokens (placebos)"},
    check=check_cue_token, applies=_applies_language, on_request=True,
))
