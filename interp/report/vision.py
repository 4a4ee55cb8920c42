"""Layer and unit pages for image models, Microscope style.

For every layer: a page with a grid of all its units (feature-visualisation thumbnails
linking to unit pages). For every unit: channel and neuron visualisations, the diversity
row, the negative visualisation, the strongest and weakest dataset examples with their
activations, the unit's weights (RGB filters for the first layer; otherwise its strongest
input units with their kernels as heatmaps, linked, as in the Circuits weight explorer),
its strongest output units, and prev/next navigation. URLs are stable:
``LAYER/index.html`` and ``LAYER/UNIT.html``.

Saved results under ``featvis/``, ``examples/`` and ``weights/`` are reused; only what is
missing (or was rendered with other explicit settings) is computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .registry import ReportContext, Section

REPORT_STEPS = 256
"""Feature-visualisation steps when ``--steps`` is not given (see benchmarks P8)."""
CONV_DIVERSITY = 4
"""Images per unit in the diversity row, for conv layers (fc layers get one)."""
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
    for li, info in enumerate(layers):
        if data is None and ctx.log:
            ctx.log("loading the test split for dataset examples ...")
        data = data if data is not None else run.load_data(progress=ctx.progress, split="test")
        featvis = _ensure_featvis(ctx, info, "channel")
        neuron = _ensure_featvis(ctx, info, "neuron") if info.spatial else None
        examples = _ensure_examples(ctx, info, data)
        weights = _ensure_weights(ctx, info)
        outputs = _output_weights(run, run.layers, info)
        _layer_page(ctx, info, featvis, layers)
        for unit in range(info.units):
            _unit_page(ctx, info, unit, featvis, neuron, examples, weights, outputs)
        overview.append({"layer": info.name, "units": info.units, "grid": f"featvis/{info.name}/grid.png"})
    ctx.page("index.html").add(Section("layers", "Layers", "layer_overview.html", {"layers": overview}, order=35))


# --------------------------------------------------------------------------- results


def _read_index(folder: Path) -> dict | None:
    file = folder / "index.json"
    return json.loads(file.read_text()) if file.exists() else None


def _ensure_featvis(ctx: ReportContext, info, objective: str) -> dict:
    from ..analysis.featvis import save_featvis, visualize

    folder = ctx.root / "featvis" / (info.name if objective == "channel" else f"{info.name}-{objective}")
    index = _read_index(folder)
    diversity = CONV_DIVERSITY if info.spatial and objective == "channel" else 1
    wanted = {"steps": ctx.steps or REPORT_STEPS, "objective": objective, "diversity": diversity,
              "negative": True, "seed": ctx.seed}
    complete = index is not None and len(index["units"]) == info.units
    # Without an explicit --steps any saved rendering of the layer is reused.
    same = complete and all(index["settings"].get(k) == v for k, v in wanted.items()
                            if k != "steps" or ctx.steps is not None)
    if not same:
        if ctx.log:
            ctx.log(f"feature visualisation of {info.name} ({objective}, {wanted['steps']} steps) ...")
        fv = visualize(ctx.run, info.name, objective=objective, steps=wanted["steps"], diversity=diversity,
                       negative=True, seed=ctx.seed, progress=ctx.progress)
        save_featvis(fv, folder)
        index = _read_index(folder)
    index["folder"] = folder.relative_to(ctx.root).as_posix()
    return index


def _ensure_examples(ctx: ReportContext, info, data) -> dict:
    from ..analysis.examples import dataset_examples, save_examples

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
    from ..analysis.weights import layer_weights, save_weights

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
    from ..analysis.weights import weight_module

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


def _layer_page(ctx: ReportContext, info, featvis: dict, layers) -> None:
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
              "value": featvis["units"][str(u)]["values"][0]} for u in range(info.units)]
    page.add(Section("units", "Units", "unit_grid.html", {
        "units": units, "settings": featvis["settings"]}, order=10))


def _unit_page(ctx, info, unit, featvis, neuron, examples, weights, outputs) -> None:
    name = info.name
    page = ctx.page(f"{name}/{unit}.html", f"{name}:{unit}",
                    breadcrumbs=[(ctx.run.name, "index.html"), (name, f"{name}/index.html")])
    if unit > 0:
        page.prev = (f"{name}:{unit - 1}", f"{name}/{unit - 1}.html")
    if unit + 1 < info.units:
        page.next = (f"{name}:{unit + 1}", f"{name}/{unit + 1}.html")

    fv = featvis["units"][str(unit)]
    folder = featvis["folder"]
    views = [{"label": "channel (maximise)", "image": f"{folder}/{fv['images'][0]}", "value": fv["values"][0]}]
    if neuron is not None:
        nv = neuron["units"][str(unit)]
        views.append({"label": "neuron (centre position)", "image": f"{neuron['folder']}/{nv['images'][0]}",
                      "value": nv["values"][0]})
    if fv.get("negative_images"):
        views.append({"label": "negative (minimise)", "image": f"{folder}/{fv['negative_images'][0]}",
                      "value": fv["negative_values"][0]})
    diversity = [{"image": f"{folder}/{img}", "value": v} for img, v in zip(fv["images"], fv["values"])]
    page.add(Section("featvis", "Feature visualisation", "unit_featvis.html", {
        "views": views, "diversity": diversity if len(diversity) > 1 else [],
        "settings": featvis["settings"]}, order=10))

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
