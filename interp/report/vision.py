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

Saved results under ``featvis/``, ``examples/`` and ``weights/`` are reused. A saved
feature visualisation is reused only when its settings (objective, steps, diversity,
seed, negatives, size, learning rate, parameterisation, transforms) are the ones a view
wants; the report never overwrites or deletes a rendering with other settings: it looks
in ``featvis/LAYER/`` (where ``interp visualize`` writes) and in its own folders, keyed
by settings (``featvis/LAYER-channel-512steps-seed0-neg/``,
``featvis/LAYER-channel-256steps-div4-seed0/``, ...), and writes only to the latter.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .registry import ReportContext, Section

from ..analysis.vision.featvis import DEFAULT_STEPS

REPORT_STEPS = DEFAULT_STEPS
"""Steps of the main, neuron and negative images when ``--steps`` is not given: ``interp visualize``'s."""
DIVERSITY_STEPS = 256
"""Steps of the diversity row when ``--steps`` is not given (a joint rendering of several
images per unit; not the main image)."""
CONV_DIVERSITY = 4
"""Images per unit in the diversity row, for conv layers (fc layers get no row)."""
EXAMPLES_K = 8


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    if run.config.task != "image-classification" or not run.layers:
        return
    layers = [info for info in run.layers if info.kind in ("conv", "linear")]
    if ctx.layers:
        layers = [info for info in layers if info.name in ctx.layers]
    data = None
    overview = []
    steps = ctx.steps or REPORT_STEPS
    for li, info in enumerate(layers):
        if data is None and ctx.log:
            ctx.log("loading the test split for dataset examples ...")
        data = data if data is not None else run.load_data(progress=ctx.progress, split="test")
        natural, accent = _ensure_accentuation(ctx, info, data)
        featvis = _ensure_featvis(ctx, info, "channel", steps=steps, diversity=1, negative=True, natural=natural)
        diverse = (_ensure_featvis(ctx, info, "channel", steps=ctx.steps or DIVERSITY_STEPS,
                                   diversity=CONV_DIVERSITY, negative=False) if info.spatial else None)
        neuron = (_ensure_featvis(ctx, info, "neuron", steps=steps, diversity=1, negative=False)
                  if info.spatial else None)
        quality = _quality(ctx, info, featvis, natural)
        examples = _ensure_examples(ctx, info, data)
        weights = _ensure_weights(ctx, info)
        outputs = _output_weights(run, run.layers, info)
        _layer_page(ctx, info, featvis, quality, layers)
        for unit in range(info.units):
            _unit_page(ctx, info, unit, featvis, diverse, neuron, accent, quality, examples, weights, outputs)
        failed = [q["unit"] for q in quality if q["failed"]]
        overview.append({"layer": info.name, "units": info.units, "grid": f"{featvis['folder']}/grid.png",
                         "failed": failed})
    ctx.page("index.html").add(Section("layers", "Layers", "layer_overview.html", {"layers": overview}, order=35))


# --------------------------------------------------------------------------- results


def _read_index(folder: Path) -> dict | None:
    file = folder / "index.json"
    if not file.exists():
        return None
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # unreadable: not reused (and, not being ours to judge, not overwritten)


def _wanted(ctx: ReportContext, objective: str, steps: int, diversity: int, negative: bool) -> dict:
    from ..analysis.vision.featvis import DEFAULT_DIVERSITY_WEIGHT, DEFAULT_LR

    wanted = {"objective": objective, "steps": steps, "diversity": diversity, "negative": negative,
              "seed": ctx.seed, "size": int(ctx.run.input_shape[-1]), "lr": DEFAULT_LR}
    if diversity > 1:
        wanted["diversity_weight"] = DEFAULT_DIVERSITY_WEIGHT
    return wanted


def _usable(index: dict | None, info, wanted: dict, *, complete: bool = True) -> bool:
    """A saved rendering of the layer (all its units, with ``complete``) with the wanted
    settings (and the default parameterisation and transforms, as the report renders)."""
    from ..analysis.vision.featvis import Transforms, settings_match

    if index is None or index.get("kind") != "featvis" or index.get("layer") != info.name:
        return False
    if complete and len(index.get("units", {})) != info.units:
        return False
    settings = index.get("settings", {})
    param = settings.get("param") or {}
    if param.get("kind") != "fft" or param.get("decorrelate") is not True:
        return False
    if settings.get("transforms") != json.loads(json.dumps(Transforms.for_size(wanted["size"]).to_dict())):
        return False
    return settings_match(settings, wanted)


def _own_folder(ctx: ReportContext, info, wanted: dict) -> Path:
    """The report's folder for these settings: ``featvis/LAYER-KEY`` (KEY from the settings),
    or ``LAYER-KEY-2``, ... when something else is there (never overwritten)."""
    from ..analysis.vision.featvis import settings_key

    name = f"{info.name}-{settings_key(wanted)}"
    for i in range(1, 1000):
        folder = ctx.root / "featvis" / (name if i == 1 else f"{name}-{i}")
        if not folder.exists() or _usable(_read_index(folder), info, wanted, complete=False):
            return folder  # free, or the same settings (missing units are added)
    raise RuntimeError(f"no free folder for {name} under {ctx.root / 'featvis'}")  # pragma: no cover


def _ensure_featvis(ctx: ReportContext, info, objective: str, *, steps: int, diversity: int,
                    negative: bool, natural=None) -> dict:
    from ..analysis.vision.featvis import save_featvis, visualize

    wanted = _wanted(ctx, objective, steps, diversity, negative)
    own = _own_folder(ctx, info, wanted)
    base = ctx.root / "featvis"
    # interp visualize's folder, earlier reports' neuron folder, then the report's own
    candidates = [base / info.name] + ([base / f"{info.name}-{objective}"] if objective != "channel" else []) + [own]
    for folder in candidates:
        index = _read_index(folder)
        if _usable(index, info, wanted):
            break
    else:
        folder = own
        if ctx.log:
            extra = f", {diversity} images per unit" if diversity > 1 else ""
            ctx.log(f"feature visualisation of {info.name} ({objective}, {steps} steps{extra}) ...")
        fv = visualize(ctx.run, info.name, objective=objective, steps=steps, diversity=diversity,
                       negative=negative, seed=ctx.seed, progress=ctx.progress)
        if natural is not None and natural.objective == objective:
            fv.attach_natural(natural)  # recorded in its index.json with the rest of the quality
        save_featvis(fv, folder)
        index = _read_index(folder)
    index["folder"] = folder.relative_to(ctx.root).as_posix()
    return index


def _ensure_accentuation(ctx: ReportContext, info, data):
    """Each unit's best natural test image (the channel objective's max over the whole test
    split) and its feature accentuation, reused when saved with the same settings and data.
    Returns ``(NaturalMax, index of the accentuation folder)``."""
    from ..analysis.vision.featvis import (ACCENT_STEPS, ACCENT_WEIGHT, NaturalMax, accentuate, natural_max,
                                    save_accentuation)

    steps = ACCENT_STEPS if ctx.steps is None else min(ACCENT_STEPS, ctx.steps)
    folder = ctx.root / "featvis" / f"{info.name}-accentuation-{steps}steps-seed{ctx.seed}"
    index = _read_index(folder)
    source = {"dataset": str(data.name), "n_images": int(len(data.test_x)), "objective": "channel",
              "sample": None, "split": "test"}
    reuse = (index is not None and index.get("kind") == "accentuation" and len(index["units"]) == info.units
             and all(index["settings"].get(k) == v for k, v in
                     {"steps": steps, "weight": ACCENT_WEIGHT, "seed": ctx.seed, "objective": "channel"}.items())
             and {k: (index.get("natural") or {}).get(k) for k in source} == source)
    if not reuse:
        if ctx.log:
            ctx.log(f"best natural images and feature accentuation of {info.name} ({steps} steps) ...")
        natural = natural_max(ctx.run, info.name, data=data)
        start = data.test_x[natural.indices]
        acc = accentuate(ctx.run, info.name, natural.units, start, steps=steps, weight=ACCENT_WEIGHT,
                         seed=ctx.seed, progress=ctx.progress)
        save_accentuation(acc, folder, natural=natural)
        index = _read_index(folder)
    index["folder"] = folder.relative_to(ctx.root).as_posix()
    return NaturalMax.from_dict(index["natural"]), index


def _quality(ctx: ReportContext, info, featvis: dict, natural) -> list[dict]:
    """Per unit, :class:`~interp.analysis.vision.featvis.UnitQuality` of the main image as a dict,
    with the best natural image's value. Computed from the saved images when the saved
    rendering predates quality records (nothing is written to it)."""
    from ..analysis.vision.featvis import UnitQuality, assess, load_featvis

    units = featvis["units"]
    if all("quality" in units[str(u)] for u in range(info.units)):
        quality = [UnitQuality.from_dict(units[str(u)]["quality"]) for u in range(info.units)]
    else:
        fv = load_featvis(ctx.root / featvis["folder"])
        quality = assess(ctx.run, fv)
    out = []
    for q in quality:
        if q.unit in natural.units:  # the report's own scan of the test split
            i = natural.units.index(q.unit)
            q.natural, q.natural_index = float(natural.values[i]), int(natural.indices[i])
        out.append(q.to_dict())
    return out
def _ensure_examples(ctx: ReportContext, info, data) -> dict:
    from ..analysis.vision.examples import dataset_examples, save_examples

    folder = ctx.root / "examples" / info.name
    index = _read_index(folder)
    if index is None or len(index["units"]) != info.units:
        if ctx.log:
            ctx.log(f"dataset examples of {info.name} ...")
        save_examples(dataset_examples(ctx.run, info.name, k=EXAMPLES_K, data=data, progress=ctx.progress), folder)
        index = _read_index(folder)
    index["folder"] = folder.relative_to(ctx.root).as_posix()
    return index


def _ensure_weights(ctx: ReportContext, info) -> dict:
    from ..analysis.vision.weights import layer_weights, save_weights

    folder = ctx.root / "weights" / info.name
    index = _read_index(folder)
    if index is None or len(index["units"]) != info.units:
        save_weights(layer_weights(ctx.run, info.name), folder)
        index = _read_index(folder)
    index["folder"] = folder.relative_to(ctx.root).as_posix()
    return index


def _output_weights(run, all_layers, info, top: int = 8) -> list[list[dict]] | None:
    """For each unit of ``info``, the units of the next layer it feeds most strongly (L2 norm
    of the connecting weights, signed by their sum), or ``None`` for the last layer."""
    from ..analysis.vision.weights import weight_module

    names = [l.name for l in all_layers]
    position = names.index(info.name)
    if position + 1 >= len(all_layers):
        return None
    nxt = all_layers[position + 1]
    _, module = weight_module(run.model, nxt.name)
    w = module.weight.detach().float().cpu()
    n = info.units
    if w.dim() == 4 and w.shape[1] == n:  # conv -> conv: (out, in, kh, kw)
        per_unit = w.transpose(0, 1).flatten(2)  # (in, out, k*k)
    elif w.dim() == 2 and w.shape[1] == n:  # fc -> fc
        per_unit = w.T.unsqueeze(-1)  # (in, out, 1)
    elif w.dim() == 2 and w.shape[1] % n == 0:  # conv -> flatten -> fc: channel-major blocks
        per_unit = w.view(w.shape[0], n, -1).transpose(0, 1)  # (in, out, h*w)
    else:
        return None
    norms = per_unit.norm(dim=2)  # (in, out)
    signs = per_unit.sum(dim=2).sign()
    result = []
    for u in range(n):
        order = torch.sort(norms[u], descending=True, stable=True).indices[:top]
        result.append([{"layer": nxt.name, "unit": int(o), "norm": float(norms[u, o]),
                        "sign": "pos" if signs[u, o] >= 0 else "neg"} for o in order])
    return result


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

    ex = examples["units"][str(unit)]
    page.add(Section("examples", "Dataset examples", "unit_examples.html", {
        "top": {**ex["top"], "file": f"{examples['folder']}/{ex['top']['file']}"},
        "bottom": {**ex["bottom"], "file": f"{examples['folder']}/{ex['bottom']['file']}"},
        "dataset": examples["dataset"], "n_images": examples["n_images"],
        "cropped": examples.get("receptive_field") is not None}, order=20))

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
