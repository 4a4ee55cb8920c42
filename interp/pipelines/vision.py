"""The vision pipeline: compute and save what the layer and unit pages show (``interp report``).

For every layer the pages show (:func:`interp.report.vision.vision_layers`): each unit's
best natural test image and its feature accentuation, the feature visualisations the
pages need (:func:`interp.report.vision.featvis_views`), the main rendering's quality
record when it has none, dataset examples, weight views and output weights. Saved results
are reused: a rendering only when its settings are the ones wanted
(:func:`interp.results.vision.find_featvis`). A rendering with other settings is never
overwritten or deleted: new ones go to the report's own folders, keyed by settings
(:func:`interp.results.vision.own_featvis_folder`), and a quality record of a rendering
saved without one goes beside its folder, not into it.

>>> ensure(ReportContext(run=run, root=run.report_dir()))
"""

from __future__ import annotations

from pathlib import Path

from ..analysis.vision.examples import dataset_examples
from ..analysis.vision.featvis import visualize
from ..analysis.vision.natural import ACCENT_WEIGHT, accentuate, natural_max
from ..analysis.vision.quality import LayerQuality, NaturalMax, assess
from ..analysis.vision.weights import layer_weights, output_weights
from ..report.registry import ReportContext
from ..report.vision import (EXAMPLES_K, accentuation_steps, examples_folder, featvis_views, vision_layers,
                             weights_folder)
from ..results.vision import (accentuation_folder, find_featvis, load_featvis, outputs_file, own_featvis_folder,
                              quality_file, read_index, save_accentuation, save_examples, save_featvis,
                              save_output_weights, save_quality, save_weight_views)


def ensure(ctx: ReportContext) -> None:
    """Compute and save under ``ctx.root`` every vision result the report's pages need."""
    data = None
    for info in vision_layers(ctx):
        if data is None and ctx.log:
            ctx.log("loading the test split for dataset examples ...")
        data = data if data is not None else ctx.run.load_data(progress=ctx.progress, split="test")
        natural = ensure_accentuation(ctx, info, data)
        views = featvis_views(ctx, info)
        main = ensure_featvis(ctx, info, views["main"], natural=natural)
        for name in ("diverse", "neuron"):
            if name in views:
                ensure_featvis(ctx, info, views[name])
        ensure_quality(ctx, info, main)
        ensure_examples(ctx, info, data)
        ensure_weights(ctx, info)
        ensure_outputs(ctx, info)


def ensure_featvis(ctx: ReportContext, info, wanted: dict, *, natural: NaturalMax | None = None) -> Path:
    """The folder of a rendering of the whole layer with the ``wanted`` settings, rendered
    into the report's own folder for them when none is saved."""
    found = find_featvis(ctx.root, info.name, info.units, wanted)
    if found is not None:
        return found[0]
    folder = own_featvis_folder(ctx.root, info.name, wanted)
    objective, steps, diversity = wanted["objective"], wanted["steps"], wanted["diversity"]
    if ctx.log:
        extra = f", {diversity} images per unit" if diversity > 1 else ""
        ctx.log(f"feature visualisation of {info.name} ({objective}, {steps} steps{extra}) ...")
    fv = visualize(ctx.run, info.name, objective=objective, steps=steps, diversity=diversity,
                   negative=wanted["negative"], seed=ctx.seed, progress=ctx.progress)
    if natural is not None and natural.objective == objective:
        fv.attach_natural(natural)  # recorded in its index.json with the rest of the quality
    return save_featvis(fv, folder)


def ensure_accentuation(ctx: ReportContext, info, data) -> NaturalMax:
    """Each unit's best natural test image (the channel objective's max over the whole test
    split) and its feature accentuation, reused when saved with the same settings and data.
    Returns the :class:`~interp.analysis.vision.natural.NaturalMax`."""
    steps = accentuation_steps(ctx)
    folder = accentuation_folder(ctx.root, info.name, steps=steps, seed=ctx.seed)
    index = read_index(folder, strict=False)
    source = {"dataset": str(data.name), "n_images": int(len(data.test_x)), "objective": "channel",
              "sample": None, "split": "test"}
    reuse = (index is not None and index.get("kind") == "accentuation" and len(index["units"]) == info.units
             and all(index["settings"].get(k) == v for k, v in
                     {"steps": steps, "weight": ACCENT_WEIGHT, "seed": ctx.seed, "objective": "channel"}.items())
             and {k: (index.get("natural") or {}).get(k) for k in source} == source)
    if reuse:
        return NaturalMax.from_dict(index["natural"])
    if ctx.log:
        ctx.log(f"best natural images and feature accentuation of {info.name} ({steps} steps) ...")
    natural = natural_max(ctx.run, info.name, data=data)
    start = data.test_x[natural.indices]
    acc = accentuate(ctx.run, info.name, natural.units, start, steps=steps, weight=ACCENT_WEIGHT,
                     seed=ctx.seed, progress=ctx.progress)
    save_accentuation(acc, folder, natural=natural)
    # what the pages and the quality records read: the saved (rounded) values
    return NaturalMax.from_dict(read_index(folder)["natural"])


def ensure_quality(ctx: ReportContext, info, folder: Path) -> None:
    """A quality record of the main rendering when its index has none (it was saved before
    quality records existed): judged from the saved images, written beside the folder."""
    index = read_index(folder)
    if all("quality" in index["units"][str(u)] for u in range(info.units)):
        return
    fv = load_featvis(folder)
    record = LayerQuality(info.name, folder.relative_to(ctx.root).as_posix(), assess(ctx.run, fv), fv.settings)
    save_quality(record, quality_file(folder))


def ensure_examples(ctx: ReportContext, info, data) -> None:
    folder = examples_folder(ctx, info)
    index = read_index(folder, strict=False)
    if index is None or len(index.get("units", {})) != info.units:
        if ctx.log:
            ctx.log(f"dataset examples of {info.name} ...")
        save_examples(dataset_examples(ctx.run, info.name, k=EXAMPLES_K, data=data, progress=ctx.progress), folder)


def ensure_weights(ctx: ReportContext, info) -> None:
    folder = weights_folder(ctx, info)
    index = read_index(folder, strict=False)
    if index is None or len(index.get("units", {})) != info.units:
        save_weight_views(layer_weights(ctx.run, info.name), folder)


def ensure_outputs(ctx: ReportContext, info) -> None:
    """The strongest output units of each unit of ``info`` (none for the last layer)."""
    names = [layer.name for layer in ctx.run.layers]
    position = names.index(info.name)
    if position + 1 >= len(names):
        return
    following = names[position + 1]
    file = outputs_file(ctx.root, info.name)
    saved = read_index(file, strict=False)
    if (saved is not None and saved.get("kind") == "output-weights" and saved.get("next_layer") == following
            and len(saved.get("units", [])) == info.units):
        return
    out = output_weights(ctx.run, info.name, following)
    if out is not None:
        save_output_weights(out, file)
