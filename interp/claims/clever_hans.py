"""Clever Hans checks: does a classifier's accuracy rest on a cue that is not the object?

A model that still classifies well when the object is masked out, when only the image
border is left, or when the image is cut into shuffled patches is probably using a
shortcut (a watermark, a background, a texture) rather than what the task is about:
Lapuschkin et al.'s "Clever Hans" predictors. The measurements (perturbations, the
planted-cue test) are :mod:`interp.analysis.vision.shortcuts`'; this module turns them
into the ``clever-hans`` verdict. For text models the analogue is a cue token
(:mod:`.cue_token`).

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
- **anything else** (CIFAR-10, a folder, given images): the perturbations
  (:data:`~interp.analysis.vision.shortcuts.PERTURBATIONS`) that should destroy an
  object-centred image (``border_only``, ``patches_shuffled``); the test can only find
  cues that survive them.

A reference run for the planted test: ``planted_shortcut(run, ..., reference=other_run)``,
or ``options.reference`` (a run or its name) where :class:`CheckOptions` carries one.
"""

from __future__ import annotations

import torch

from ..errors import InterpError
from ..analysis.vision.shortcuts import (PERMUTATIONS, PERTURBATIONS, SHOULD_DESTROY, correct, cue_dict, perturb,
                                        perturbation_accuracy, planted_shortcut)
from ..stats import binomial_tail, bootstrap_ci, chance_level, chance_quantile, headline
from .evidence import claim_data, sample_evidence
from .registry import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim, run_kind


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
    check=check_clever_hans, applies=_applies_classifier,
))



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
    cue = cue_dict(run, watermark)
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
    images, labels, backgrounds, sample = _shapes_views(run, options)
    classes = list(run.classes) or [str(i) for i in range(int(labels.max()) + 1)]
    k = len(classes)
    chance = chance_level(labels, k)
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
    null = chance_quantile(n, chance)
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
                        null=chance_quantile(result.n, result.chance), n=result.n, over="images",
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
