"""Layer and unit pages for image models, Microscope style.

For every layer: a page with a grid of all its units (feature-visualisation thumbnails
linking to unit pages), with the units whose optimisation failed listed. For every unit:
its main image (its own optimisation: the channel objective, one image, as many steps as
``interp visualize``), the neuron and negative visualisations, a feature accentuation
(optimised from the unit's best natural test image, beside it), the diversity row (a
separate, joint rendering with a diversity penalty), how well the image did (activation
reached, at the start, of the best natural image; specificity; failure flags), the
strongest and weakest dataset examples with their activations, the unit's weights (RGB
filters for the first layer; otherwise its strongest input units with their kernels as
heatmaps, linked, as in the Circuits weight explorer), its strongest output units, and
prev/next navigation. URLs are stable: ``LAYER/index.html`` and ``LAYER/UNIT.html``.

The pages only read saved results (:mod:`interp.results.vision`); computing what is
missing is :func:`interp.pipelines.vision.ensure`'s job, done by ``interp report`` first.
:func:`featvis_views` says which renderings the pages show (the settings each needs); a
rendering is found by those settings (:func:`interp.results.vision.find_featvis`): in
``featvis/LAYER/`` (where ``interp visualize`` writes) or in the report's own folders,
keyed by settings (``featvis/LAYER-channel-512steps-seed0-neg/``,
``featvis/LAYER-channel-256steps-div4-seed0/``, ...). A layer without its main rendering
is left out.
"""

from __future__ import annotations

from pathlib import Path

from ..analysis.vision.featvis import DEFAULT_STEPS  # constants only: the report computes nothing
from ..analysis.vision.natural import ACCENT_STEPS
from ..errors import InterpError
from ..results.vision import (accentuation_folder, find_featvis, load_output_weights, outputs_file, quality_file,
                              read_index, wanted_settings, with_natural)
from .registry import ReportContext, Section

REPORT_STEPS = DEFAULT_STEPS
"""Steps of the main, neuron and negative images when ``--steps`` is not given: ``interp visualize``'s."""
DIVERSITY_STEPS = 256
"""Steps of the diversity row when ``--steps`` is not given (a joint rendering of several
images per unit; not the main image)."""
CONV_DIVERSITY = 4
"""Images per unit in the diversity row, for conv layers (fc layers get no row)."""
EXAMPLES_K = 8


# ------------------------------------------------------------------------ what is shown


def vision_layers(ctx: ReportContext) -> list:
    """The layers that get pages: the conv and linear layers of an image classifier (those
    of ``ctx.layers`` when given)."""
    run = ctx.run
    if run.config.task != "image-classification" or not run.layers:
        return []
    layers = [info for info in run.layers if info.kind in ("conv", "linear")]
    if ctx.layers:
        names = {info.name for info in layers}
        for name in ctx.layers:
            if name not in names:
                run.layer(name)  # an unknown name: the error lists the model's layers
                raise InterpError(f"{name} is a {run.layer(name).kind} block; the report's pages are per conv or "
                                  f"linear layer: give one of its convs, e.g. "
                                  f"{next((n for n in names if n.startswith(name + '.')), sorted(names)[0])}")
        return [info for info in layers if info.name in ctx.layers]
    if run.config.family in ("torchvision", "timm") and len(layers) > 8:
        # Every unit of every layer of an ImageNet network is hours of optimisation: choose.
        picks = [layers[round(i * (len(layers) - 1) / 4)].name for i in range(1, 4)]
        raise InterpError(f"{run.name} has {len(layers)} conv and linear layers; a report renders every unit of "
                          f"each, so choose a few with --layers, e.g. --layers {','.join(picks)}")
    return layers


def featvis_views(ctx: ReportContext, info) -> dict[str, dict]:
    """The renderings a layer's pages show, as the settings each needs: ``main`` (channel,
    with negatives), and for conv layers ``diverse`` (the diversity row) and ``neuron``.

    >>> featvis_views(ctx, run.layer("conv2"))["diverse"]["diversity"]
    4
    """
    steps = ctx.steps or REPORT_STEPS
    size = int(ctx.run.input_shape[-1])
    views = {"main": wanted_settings("channel", steps=steps, diversity=1, negative=True, seed=ctx.seed, size=size)}
    if info.spatial:
        views["diverse"] = wanted_settings("channel", steps=ctx.steps or DIVERSITY_STEPS, diversity=CONV_DIVERSITY,
                                           negative=False, seed=ctx.seed, size=size)
        views["neuron"] = wanted_settings("neuron", steps=steps, diversity=1, negative=False, seed=ctx.seed,
                                          size=size)
    return views


def accentuation_steps(ctx: ReportContext) -> int:
    """Steps of the feature accentuations: :data:`~interp.analysis.vision.natural.ACCENT_STEPS`,
    fewer with a smaller ``--steps``."""
    return ACCENT_STEPS if ctx.steps is None else min(ACCENT_STEPS, ctx.steps)


def examples_folder(ctx: ReportContext, info) -> Path:
    return ctx.root / "examples" / info.name


def weights_folder(ctx: ReportContext, info) -> Path:
    return ctx.root / "weights" / info.name


# ------------------------------------------------------------------------------ reading


def contribute(ctx: ReportContext) -> None:
    """Layer and unit pages of every layer whose main rendering is saved under ``ctx.root``."""
    layers = vision_layers(ctx)
    if not layers:
        return
    overview = []
    for info in layers:
        views = {name: _featvis(ctx, info, wanted) for name, wanted in featvis_views(ctx, info).items()}
        featvis = views["main"]
        accent = _complete(ctx, accentuation_folder(ctx.root, info.name, steps=accentuation_steps(ctx),
                                                    seed=ctx.seed), info, "accentuation")
        quality = _quality(ctx, info, featvis, accent) if featvis is not None else None
        if quality is None:
            continue  # not computed: `interp report` renders it
        examples = _complete(ctx, examples_folder(ctx, info), info, "examples")
        weights = _complete(ctx, weights_folder(ctx, info), info, "weights")
        outputs = _outputs(ctx, info)
        _layer_page(ctx, info, featvis, quality, layers)
        for unit in range(info.units):
            _unit_page(ctx, info, unit, featvis, views.get("diverse"), views.get("neuron"), accent, quality,
                       examples, weights, outputs)
        failed = [q["unit"] for q in quality if q["failed"]]
        overview.append({"layer": info.name, "units": info.units, "grid": f"{featvis['folder']}/grid.png",
                         "failed": failed})
    if overview:
        ctx.page("index.html").add(Section("layers", "Layers", "layer_overview.html", {"layers": overview},
                                           order=35))


def _featvis(ctx: ReportContext, info, wanted: dict) -> dict | None:
    """The index of the saved rendering with the ``wanted`` settings, with its ``folder``."""
    found = find_featvis(ctx.root, info.name, info.units, wanted)
    if found is None:
        return None
    folder, index = found
    return {**index, "folder": folder.relative_to(ctx.root).as_posix()}


def _complete(ctx: ReportContext, folder: Path, info, kind: str) -> dict | None:
    """A saved result's index, with its ``folder``, when it holds every unit of the layer."""
    index = read_index(folder, strict=False)
    if index is None or index.get("kind") != kind or len(index.get("units", {})) != info.units:
        return None
    return {**index, "folder": folder.relative_to(ctx.root).as_posix()}


def _quality(ctx: ReportContext, info, featvis: dict, accent: dict | None) -> list[dict] | None:
    """Per unit, the quality of the main image (:meth:`~interp.analysis.vision.quality.UnitQuality.to_dict`)
    with the report's best natural image: from the rendering's index, or, for a rendering
    saved before quality records existed, from the record the pipeline wrote beside it."""
    units = featvis["units"]
    if all("quality" in units[str(u)] for u in range(info.units)):
        quality = [units[str(u)]["quality"] for u in range(info.units)]
    else:
        record = read_index(quality_file(ctx.root / featvis["folder"]), strict=False)
        if record is None or record.get("kind") != "unit-quality" or len(record["units"]) != info.units:
            return None
        quality = record["units"]
    return with_natural(quality, (accent or {}).get("natural"))


def _outputs(ctx: ReportContext, info) -> list[list[dict]] | None:
    """For each unit, the units of the next layer it feeds most strongly, or None."""
    file = outputs_file(ctx.root, info.name)
    if read_index(file, strict=False) is None:
        return None
    saved = load_output_weights(file)
    if len(saved.units) != info.units:
        return None
    return [saved.outputs(u) for u in range(info.units)]


# ------------------------------------------------------------------------------ pages


def _describe(settings: dict, *, joint: bool = False) -> str:
    """One line of a rendering's settings, e.g. ``512 steps, 1 image per unit, seed 0``."""
    k = int(settings.get("diversity") or 1)
    text = (f"{settings.get('objective')} objective, {settings.get('steps')} steps, "
            f"{k} image{'s' if k > 1 else ''} per unit")
    if k > 1:
        text += f" (optimised jointly with a diversity penalty, weight {settings.get('diversity_weight')})"
    elif not joint:
        text += " (its own optimisation)"
    return text + f", seed {settings.get('seed')}, {settings.get('size')} px, lr {settings.get('lr')}"


def _failure_list(info, quality: list[dict]) -> list[dict]:
    return [{"unit": q["unit"], "page": f"{info.name}/{q['unit']}.html", "failure": q["failure"]}
            for q in quality if q["failed"]]


def _layer_page(ctx: ReportContext, info, featvis: dict, quality: list[dict], layers) -> None:
    names = [l.name for l in layers]
    i = names.index(info.name)
    page = ctx.page(f"{info.name}/index.html", f"Layer {info.name}", breadcrumbs=[(ctx.run.name, "index.html")],
                    subtitle=f"{info.units} units · {info.kind} · output {' × '.join(map(str, info.output_shape))}")
    if i > 0:
        page.prev = (names[i - 1], f"{names[i - 1]}/index.html")
    if i + 1 < len(names):
        page.next = (names[i + 1], f"{names[i + 1]}/index.html")
    folder = featvis["folder"]
    units = [{"unit": u, "page": f"{info.name}/{u}.html",
              "image": f"{folder}/{featvis['units'][str(u)]['images'][0]}",
              "value": featvis["units"][str(u)]["values"][0], "failed": quality[u]["failed"],
              "rank": quality[u]["rank"]} for u in range(info.units)]
    ranked = [q for q in quality if q["rank"] is not None]
    page.add(Section("units", "Units", "unit_grid.html", {
        "units": units, "settings": featvis["settings"], "described": _describe(featvis["settings"]),
        "folder": folder, "failed": _failure_list(info, quality),
        "specific": sum(q["rank"] == 1 for q in ranked), "ranked": len(ranked)}, order=10))


def _unit_page(ctx, info, unit, featvis, diverse, neuron, accent, quality, examples, weights, outputs) -> None:
    name = info.name
    page = ctx.page(f"{name}/{unit}.html", f"{name}:{unit}",
                    breadcrumbs=[(ctx.run.name, "index.html"), (name, f"{name}/index.html")])
    if unit > 0:
        page.prev = (f"{name}:{unit - 1}", f"{name}/{unit - 1}.html")
    if unit + 1 < info.units:
        page.next = (f"{name}:{unit + 1}", f"{name}/{unit + 1}.html")

    fv = featvis["units"][str(unit)]
    folder = featvis["folder"]
    main_settings = featvis["settings"]
    q = quality[unit]
    views = [{"label": "channel (maximise)", "image": f"{folder}/{fv['images'][0]}", "value": fv["values"][0],
              "note": f"{main_settings['steps']} steps, from noise", "failure": q["failure"]}]
    if neuron is not None:
        nv = neuron["units"][str(unit)]
        nq = nv.get("quality") or {}
        views.append({"label": "neuron (centre position)", "image": f"{neuron['folder']}/{nv['images'][0]}",
                      "value": nv["values"][0], "note": f"{neuron['settings']['steps']} steps",
                      "failure": nq.get("failure", "")})
    if fv.get("negative_images"):
        views.append({"label": "negative (minimise)", "image": f"{folder}/{fv['negative_images'][0]}",
                      "value": fv["negative_values"][0], "note": f"{main_settings['steps']} steps", "failure": ""})
    accentuation = None
    if accent is not None and accent.get("natural"):
        av = accent["units"][str(unit)]
        accentuation = {
            "start": f"{accent['folder']}/{av['start_image']}", "image": f"{accent['folder']}/{av['image']}",
            "start_value": av["start_value"], "value": av["value"], "distance": av["distance"],
            "natural_index": av.get("natural_index"), "steps": accent["settings"]["steps"],
            "weight": accent["settings"]["weight"], "reference": accent["settings"]["reference_distance"],
            "dataset": accent["natural"]["dataset"], "n_images": accent["natural"]["n_images"]}
    diversity, diverse_settings = [], None
    if diverse is not None:
        dv = diverse["units"][str(unit)]
        diversity = [{"image": f"{diverse['folder']}/{img}", "value": v} for img, v in zip(dv["images"], dv["values"])]
        diverse_settings = _describe(diverse["settings"])
    settings = [("channel (maximise), negative (minimise)", _describe(main_settings), folder)]
    if neuron is not None:
        settings.append(("neuron (centre position)", _describe(neuron["settings"]), neuron["folder"]))
    if diverse is not None:
        settings.append(("diversity row", diverse_settings, diverse["folder"]))
    page.add(Section("featvis", "Feature visualisation", "unit_featvis.html", {
        "views": views, "diversity": diversity if len(diversity) > 1 else [], "diverse_settings": diverse_settings,
        "settings": main_settings, "all_settings": [{"view": v, "text": t, "folder": f} for v, t, f in settings],
        "quality": q, "accentuation": accentuation, "layer_units": info.units}, order=10))

    if examples is not None:
        ex = examples["units"][str(unit)]
        page.add(Section("examples", "Dataset examples", "unit_examples.html", {
            "top": {**ex["top"], "file": f"{examples['folder']}/{ex['top']['file']}"},
            "bottom": {**ex["bottom"], "file": f"{examples['folder']}/{ex['bottom']['file']}"},
            "dataset": examples["dataset"], "n_images": examples["n_images"],
            "cropped": examples.get("receptive_field") is not None}, order=20))

    if weights is not None:
        w = weights["units"][str(unit)]
        input_layer = weights.get("input_layer")
        linked = input_layer not in (None, "input")
        page.add(Section("weights", "Weights", "unit_weights.html", {
            "image": f"{weights['folder']}/{w['file']}", "first_layer": "filters" in weights,
            "inputs": [{"unit": i, "norm": n, "page": f"{input_layer}/{i}.html" if linked else None}
                       for i, n in zip(w["inputs"], w["norms"])],
            "input_layer": input_layer, "total": w["total_inputs"]}, order=30))

    if outputs is not None:
        page.add(Section("outputs", "Strongest output units", "unit_outputs.html", {
            "outputs": [{**o, "page": f"{o['layer']}/{o['unit']}.html"} for o in outputs[unit]]}, order=40))
