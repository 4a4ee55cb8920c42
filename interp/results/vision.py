"""Saved vision results: feature visualisations, accentuations, best natural images,
quality records, dataset examples, weight views and output weights.

Each type is registered with the results store (:mod:`interp.results.store`), so
``interp.results.save(result, path)`` and ``interp.results.load(path)`` work for all:

=================  =====================  ====================================================
kind               type                   saved as
=================  =====================  ====================================================
``featvis``        FeatureVis             folder: ``unit_0005.png`` (+ ``_div1``, ``_neg``),
                                          ``grid.png``, ``index.json``, ``history.safetensors``
``accentuation``   Accentuation           folder: ``unit_0005.png``, ``unit_0005_start.png``,
                                          ``index.json``, ``history.safetensors``
``natural-max``    NaturalMax             one JSON file
``unit-quality``   LayerQuality           one JSON file (``featvis/FOLDER.quality.json``)
``examples``       DatasetExamples        folder: ``unit_0005_top.png``, ``unit_0005_bottom.png``,
                                          ``index.json``, ``examples.safetensors``
``weights``        WeightViews            folder: ``unit_0005.png``, ``filters.png`` (first
                                          layer), ``index.json``, ``weights.safetensors``
``output-weights`` OutputWeights          one JSON file (``weights/LAYER-outputs.json``)
=================  =====================  ====================================================

Feature visualisations are keyed by their settings (:func:`settings_key`): the report and
``interp visualize`` look for a rendering with the settings they want
(:func:`find_featvis`) and write new ones beside the others (:func:`own_featvis_folder`).

>>> folder = save_featvis(interp.visualize(run, "conv2"), run.report_dir() / "featvis" / "conv2")
>>> load_featvis(folder).units[:3]
[0, 1, 2]
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Sequence

import torch

from ..analysis.vision.examples import DatasetExamples
from ..analysis.vision.featvis import DEFAULT_DIVERSITY_WEIGHT, FeatureVis
from ..analysis.vision.natural import Accentuation
from ..analysis.vision.optimize import DEFAULT_LR
from ..analysis.vision.quality import QUALITY_RULES, LayerQuality, NaturalMax, UnitQuality
from ..analysis.vision.transforms import Transforms
from ..analysis.vision.weights import OutputWeights, UnitWeights, WeightViews
from ..errors import InterpError
from ..io import (atomic_dir, decode_png, encode_png, jsonable, read_saved_folder, save_tensors, to_uint8, write_bytes,
                  write_json)
from .store import register

# ------------------------------------------------------------------------------ helpers


def unit_file(unit: int, k: int = 0, negative: bool = False) -> str:
    """The stable PNG name of one image: ``unit_0005.png``, ``unit_0005_div1.png``, ``unit_0005_neg.png``."""
    return f"unit_{unit:04d}" + ("_neg" if negative else "") + (f"_div{k}" if k else "") + ".png"


def accent_file(unit: int, which: str = "") -> str:
    """``unit_0005.png`` (the accentuated image), ``unit_0005_start.png`` (the natural start)."""
    return f"unit_{unit:04d}" + (f"_{which}" if which else "") + ".png"


def image_grid(tiles: Sequence[torch.Tensor], *, columns: int | None = None, min_tile: int = 64,
               gap: int = 2, background: int = 255) -> torch.Tensor:
    """``(3, h, w)`` float tiles -> one ``(H, W, 3)`` uint8 grid, enlarged (nearest) so a tile
    is at least ``min_tile`` px, on a ``background`` grey level (white).

    >>> image_grid([torch.rand(3, 32, 32)] * 16).shape     # 4 x 4 tiles of 64 px, 2 px gaps
    torch.Size([266, 266, 3])
    """
    n = len(tiles)
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    h, w = tiles[0].shape[1:]
    zoom = max(1, math.ceil(min_tile / max(h, w)))
    th, tw = h * zoom, w * zoom
    grid = torch.full((rows * (th + gap) + gap, columns * (tw + gap) + gap, 3), background, dtype=torch.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        big = to_uint8(tile).repeat_interleave(zoom, 0).repeat_interleave(zoom, 1)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        grid[y:y + th, x:x + tw] = big
    return grid


def read_index(folder: str | Path, *, strict: bool = True) -> dict | None:
    """A saved result's ``index.json`` (or a single-file result's JSON), None when missing.

    A corrupt file is an error with ``strict``; without it, None (the report then neither
    reuses it nor, not being its to judge, overwrites it).
    """
    folder = Path(folder)
    file = folder / "index.json" if folder.is_dir() else folder
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if not strict:
            return None
        raise InterpError(f"{file} is corrupt (not valid JSON: {e}); delete the folder and render again") from None


def finite(value, digits: int = 6):
    """Numbers (or nested lists and dicts of them) rounded, with NaN and infinities as None
    (JSON has neither).

    >>> finite([1.23456789, float("nan")])
    [1.234568, None]
    """
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: finite(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v, digits) for v in value]
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    return value


# ------------------------------------------------------------------- feature visualisation


def save_featvis(result: FeatureVis, directory: str | Path) -> Path:
    """Write PNGs, ``grid.png``, ``history.safetensors`` and ``index.json`` into ``directory``.

    The folder is replaced atomically. Units rendered earlier with the same settings
    stay (rendering ``--units 0-7`` then ``8-15`` fills one folder); different settings
    replace the folder (callers keep other settings apart by folder name:
    :func:`own_featvis_folder`). Returns the folder.
    """
    directory = Path(directory)
    old = read_index(directory)
    keep: dict[str, dict] = {}
    if old and old.get("settings") == jsonable(result.settings):
        keep = {u: e for u, e in old.get("units", {}).items() if int(u) not in result.units}
    with atomic_dir(directory) as tmp:
        entries: dict[str, dict] = {}
        tensors: dict[str, torch.Tensor] = {}
        for u, entry in keep.items():
            for name in entry["images"] + entry.get("negative_images", []):
                shutil.copy2(directory / name, tmp / name)
            entries[u] = entry
        if keep and (directory / "history.safetensors").exists():
            from safetensors.torch import load_file

            old_hist = load_file(str(directory / "history.safetensors"))
            tensors.update({k: v for k, v in old_hist.items() if str(int(k.split("_")[1])) in keep})
        k_ = result.images.shape[1]
        for i, u in enumerate(result.units):
            entry = {"images": [], "values": [round(float(v), 6) for v in result.values[i]],
                     "initial_values": [round(float(v), 6) for v in result.initial_values[i]]}
            for k in range(k_):
                entry["images"].append(unit_file(u, k))
                write_bytes(tmp / unit_file(u, k), encode_png(to_uint8(result.images[i, k])))
            tensors[f"unit_{u:04d}"] = result.history[:, i]
            if result.negative_images is not None:
                entry["negative_images"] = []
                entry["negative_values"] = [round(float(v), 6) for v in result.negative_values[i]]
                entry["negative_initial_values"] = [round(float(v), 6) for v in result.negative_initial_values[i]]
                for k in range(k_):
                    entry["negative_images"].append(unit_file(u, k, True))
                    write_bytes(tmp / unit_file(u, k, True), encode_png(to_uint8(result.negative_images[i, k])))
                tensors[f"unit_{u:04d}_neg"] = result.negative_history[:, i]
            if result.quality is not None:
                entry["quality"] = result.quality[i].to_dict()
            entries[str(u)] = entry
        order = sorted(entries, key=int)
        tiles = [decode_png(tmp / entries[u]["images"][0]) for u in order]
        write_bytes(tmp / "grid.png", encode_png(image_grid(tiles)))
        index = {"kind": "featvis", "layer": result.layer, "settings": jsonable(result.settings),
                 "info": jsonable(result.info), "grid": "grid.png", "history": "history.safetensors",
                 "units": {u: entries[u] for u in order}}
        if all("quality" in entries[u] for u in order):
            ranked = [entries[u]["quality"] for u in order if entries[u]["quality"].get("rank") is not None]
            index["quality"] = {"rules": QUALITY_RULES,
                                "failed_units": [int(u) for u in order if entries[u]["quality"]["failed"]],
                                "specific_units": sum(q["rank"] == 1 for q in ranked), "ranked_units": len(ranked),
                                "natural": jsonable(result.natural_source)}
        if result.negative_images is not None and all("negative_images" in entries[u] for u in order):
            negatives = [decode_png(tmp / entries[u]["negative_images"][0]) for u in order]
            write_bytes(tmp / "grid_neg.png", encode_png(image_grid(negatives)))
            index["grid_negative"] = "grid_neg.png"
        save_tensors(tmp / "history.safetensors", {k: v.contiguous() for k, v in tensors.items()})
        write_json(tmp / "index.json", index)
    return directory


def load_featvis(directory: str | Path) -> FeatureVis:
    """Read a folder written by :func:`save_featvis` (images come back 8-bit quantised)."""
    directory = Path(directory)
    index = read_index(directory)
    if index is None:
        raise InterpError(f"no feature visualisation in {directory} (index.json missing); "
                          f"render one with: interp visualize --layer LAYER")
    from safetensors.torch import load_file

    hist_file = directory / index.get("history", "history.safetensors")
    hist = load_file(str(hist_file)) if hist_file.exists() else {}
    units = sorted(int(u) for u in index["units"])
    entries = [index["units"][str(u)] for u in units]

    def stack(key):
        return torch.stack([torch.stack([decode_png(directory / f) for f in e[key]]) for e in entries])

    def values(key):
        return torch.tensor([e[key] for e in entries], dtype=torch.float32)

    def history(suffix):
        found = [hist.get(f"unit_{u:04d}{suffix}") for u in units]
        return torch.stack(found, 1) if found and all(h is not None for h in found) else torch.zeros(0)

    fv = FeatureVis(index["layer"], units, stack("images"), values("values"), values("initial_values"),
                    history(""), index["settings"], info=index.get("info", {}))
    if entries and all("quality" in e for e in entries):
        fv.quality = [UnitQuality.from_dict(e["quality"]) for e in entries]
        fv.natural_source = (index.get("quality") or {}).get("natural")
    if entries and all("negative_images" in e for e in entries):
        fv.negative_images, fv.negative_values = stack("negative_images"), values("negative_values")
        fv.negative_initial_values, fv.negative_history = values("negative_initial_values"), history("_neg")
    return fv


def describe_featvis(fv: FeatureVis) -> dict:
    """What ``interp visualize --json`` prints: values and quality per unit, no pixels."""
    out = {"layer": fv.layer, "units": list(fv.units), "settings": jsonable(fv.settings), "info": jsonable(fv.info),
           "values": finite(fv.values), "initial_values": finite(fv.initial_values),
           "quality": [q.to_dict() for q in fv.quality] if fv.quality is not None else None,
           "failed_units": fv.failed_units(), "natural_source": jsonable(fv.natural_source)}
    if fv.negative_values is not None:
        out["negative_values"] = finite(fv.negative_values)
    return finite(out)


# ------------------------------------------------------------------ settings and folders


def settings_key(settings: dict) -> str:
    """A folder-name suffix for the settings that tell renderings apart:
    ``channel-512steps-seed0-neg``, ``channel-256steps-div4-seed0``."""
    parts = [str(settings.get("objective")), f"{settings.get('steps')}steps"]
    if int(settings.get("diversity") or 1) > 1:
        parts.append(f"div{settings['diversity']}")
    parts.append(f"seed{settings.get('seed', 0)}")
    if settings.get("negative"):
        parts.append("neg")
    return "-".join(parts)


def settings_match(saved: dict, wanted: dict) -> bool:
    """Whether a saved rendering has the ``wanted`` settings: each wanted key equal, except
    that a rendering with negatives also serves one without (each image has its own seed
    and transform stream, so the maximising images do not depend on whether negatives
    were rendered beside them)."""
    for key, value in wanted.items():
        have = saved.get(key)
        if key == "negative" and not value:
            continue
        if isinstance(value, float) and isinstance(have, (int, float)):
            if not math.isclose(value, have, rel_tol=1e-9):
                return False
        elif have != value:
            return False
    return True


def wanted_settings(objective: str, *, steps: int, diversity: int, negative: bool, seed: int, size: int) -> dict:
    """The settings a rendering with :func:`~interp.analysis.vision.featvis.visualize`'s
    defaults (learning rate, diversity weight) and these choices records.

    >>> wanted_settings("channel", steps=512, diversity=1, negative=True, seed=0, size=32)["lr"]
    0.05
    """
    wanted = {"objective": objective, "steps": steps, "diversity": diversity, "negative": negative,
              "seed": seed, "size": size, "lr": DEFAULT_LR}
    if diversity > 1:
        wanted["diversity_weight"] = DEFAULT_DIVERSITY_WEIGHT
    return wanted


def featvis_usable(index: dict | None, layer: str, n_units: int, wanted: dict, *, complete: bool = True) -> bool:
    """Whether a saved rendering (its ``index``) is of ``layer`` (all ``n_units`` units, with
    ``complete``) with the ``wanted`` settings and the default parameterisation and transforms."""
    if index is None or index.get("kind") != "featvis" or index.get("layer") != layer:
        return False
    if complete and len(index.get("units", {})) != n_units:
        return False
    settings = index.get("settings", {})
    param = settings.get("param") or {}
    if param.get("kind") != "fft" or param.get("decorrelate") is not True:
        return False
    if settings.get("transforms") != json.loads(json.dumps(Transforms.for_size(wanted["size"]).to_dict())):
        return False
    return settings_match(settings, wanted)


def own_featvis_folder(root: Path, layer: str, wanted: dict) -> Path:
    """The report's folder for these settings: ``featvis/LAYER-KEY`` (KEY from the settings),
    or ``LAYER-KEY-2``, ... when something else is there (never overwritten)."""
    name = f"{layer}-{settings_key(wanted)}"
    for i in range(1, 1000):
        folder = Path(root) / "featvis" / (name if i == 1 else f"{name}-{i}")
        if not folder.exists() or featvis_usable(read_index(folder, strict=False), layer, 0, wanted, complete=False):
            return folder  # free, or the same settings (missing units are added)
    raise RuntimeError(f"no free folder for {name} under {Path(root) / 'featvis'}")  # pragma: no cover


def find_featvis(root: Path, layer: str, n_units: int, wanted: dict) -> tuple[Path, dict] | None:
    """``(folder, index)`` of a saved rendering of all of ``layer``'s units with the ``wanted``
    settings, or None: ``featvis/LAYER`` (where ``interp visualize`` writes), an earlier
    report's ``featvis/LAYER-OBJECTIVE``, then the report's own folder."""
    base = Path(root) / "featvis"
    objective = wanted["objective"]
    candidates = [base / layer] + ([base / f"{layer}-{objective}"] if objective != "channel" else [])
    for folder in candidates + [own_featvis_folder(root, layer, wanted)]:
        index = read_index(folder, strict=False)
        if featvis_usable(index, layer, n_units, wanted):
            return folder, index
    return None


# ---------------------------------------------------------------------- accentuation


def save_accentuation(acc: Accentuation, directory: str | Path, *, natural: NaturalMax | None = None) -> Path:
    """PNGs (accentuated and start), ``index.json`` (values, distances, settings, and the
    natural source when given); the folder is replaced atomically."""
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        units = {}
        for i, u in enumerate(acc.units):
            write_bytes(tmp / accent_file(u), encode_png(to_uint8(acc.images[i])))
            write_bytes(tmp / accent_file(u, "start"), encode_png(to_uint8(acc.start_images[i])))
            entry = {"image": accent_file(u), "start_image": accent_file(u, "start"),
                     "value": round(float(acc.values[i]), 6), "start_value": round(float(acc.start_values[i]), 6),
                     "initial_value": round(float(acc.initial_values[i]), 6),
                     "distance": round(float(acc.distances[i]), 6)}
            if natural is not None and u in natural.units:
                j = natural.units.index(u)
                entry["natural_index"] = int(natural.indices[j])
                entry["natural_value"] = round(float(natural.values[j]), 6)
            units[str(u)] = entry
        index = {"kind": "accentuation", "layer": acc.layer, "settings": jsonable(acc.settings),
                 "info": jsonable(acc.info), "units": units}
        if natural is not None:
            index["natural"] = natural.to_dict()
        save_tensors(tmp / "history.safetensors", {"history": acc.history.contiguous()})
        write_json(tmp / "index.json", index)
    return directory


def load_accentuation(directory: str | Path) -> Accentuation:
    """Read a folder written by :func:`save_accentuation` (images 8-bit quantised)."""
    directory = Path(directory)
    index = read_index(directory)
    if index is None or index.get("kind") != "accentuation":
        raise InterpError(f"no feature accentuation in {directory} (index.json missing)")
    from safetensors.torch import load_file

    units = sorted(int(u) for u in index["units"])
    entries = [index["units"][str(u)] for u in units]
    hist_file = directory / "history.safetensors"
    history = load_file(str(hist_file))["history"] if hist_file.exists() else torch.zeros(0, len(units))

    def vals(key):
        return torch.tensor([e[key] for e in entries], dtype=torch.float32)

    return Accentuation(index["layer"], units, torch.stack([decode_png(directory / e["image"]) for e in entries]),
                        torch.stack([decode_png(directory / e["start_image"]) for e in entries]), vals("value"),
                        vals("start_value"), vals("initial_value"), vals("distance"), history, index["settings"],
                        index.get("info", {}))


def describe_accentuation(acc: Accentuation) -> dict:
    return finite({"layer": acc.layer, "units": list(acc.units), "values": acc.values,
                   "start_values": acc.start_values, "initial_values": acc.initial_values,
                   "distances": acc.distances, "settings": jsonable(acc.settings), "info": jsonable(acc.info)})


def accentuation_folder(root: Path, layer: str, *, steps: int, seed: int) -> Path:
    """The report's accentuation folder: ``featvis/LAYER-accentuation-64steps-seed0``."""
    return Path(root) / "featvis" / f"{layer}-accentuation-{steps}steps-seed{seed}"


# ---------------------------------------------------------------- natural max, quality


def save_natural(natural: NaturalMax, file: str | Path) -> Path:
    """Write a :class:`NaturalMax` as one JSON file."""
    file = Path(file)
    write_json(file, {"kind": "natural-max", **natural.to_dict()})
    return file


def load_natural(file: str | Path) -> NaturalMax:
    index = read_index(file)
    if index is None or index.get("kind") != "natural-max":
        raise InterpError(f"no best natural images in {file}")
    return NaturalMax.from_dict(index)


def quality_file(featvis_folder: str | Path) -> Path:
    """Where the quality record of a rendering saved without one goes: beside its folder
    (``featvis/conv2-channel-512steps-seed0-neg.quality.json``), so that the folder itself,
    perhaps a user's, is never written to."""
    folder = Path(featvis_folder)
    return folder.parent / f"{folder.name}.quality.json"


def save_quality(record: LayerQuality, file: str | Path) -> Path:
    file = Path(file)
    write_json(file, {"kind": "unit-quality", "layer": record.layer, "folder": record.folder,
                      "settings": jsonable(record.settings), "rules": QUALITY_RULES,
                      "units": [q.to_dict() for q in record.quality]})
    return file


def load_quality(file: str | Path) -> LayerQuality:
    index = read_index(file)
    if index is None or index.get("kind") != "unit-quality":
        raise InterpError(f"no quality record in {file}")
    return LayerQuality(index["layer"], index["folder"], [UnitQuality.from_dict(q) for q in index["units"]],
                        index.get("settings", {}))


def with_natural(quality: list[dict], natural: dict | None) -> list[dict]:
    """Quality dicts (:meth:`UnitQuality.to_dict`) with the best natural image of a saved
    :class:`NaturalMax` dict (``natural["units"]``, ``["values"]``, ``["indices"]``) put in,
    and the ratio with it."""
    out = []
    for d in quality:
        q = UnitQuality.from_dict(d)
        if natural is not None and q.unit in natural["units"]:
            i = natural["units"].index(q.unit)
            q.natural, q.natural_index = float(natural["values"][i]), int(natural["indices"][i])
        out.append(q.to_dict())
    return out


# -------------------------------------------------------------------- dataset examples


def example_file(unit: int, which: str) -> str:
    """Stable strip names: ``unit_0005_top.png``, ``unit_0005_bottom.png``."""
    return f"unit_{unit:04d}_{which}.png"


def save_examples(examples: DatasetExamples, directory: str | Path) -> Path:
    """Write one PNG strip per unit and direction, ``index.json`` and ``examples.safetensors``
    into ``directory`` (replaced atomically)."""
    directory = Path(directory)
    ex = examples
    with atomic_dir(directory) as tmp:
        units = {}
        for i, u in enumerate(ex.units):
            entry = {}
            for which in ("top", "bottom"):
                crops = getattr(ex, f"{which}_crops")[i]
                strip = image_grid([c.float() / 255 for c in crops], columns=len(crops), min_tile=48, gap=1)
                write_bytes(tmp / example_file(u, which), encode_png(strip))
                positions, boxes = getattr(ex, f"{which}_positions"), getattr(ex, f"{which}_boxes")
                entry[which] = {
                    "file": example_file(u, which),
                    "indices": getattr(ex, f"{which}_indices")[i].tolist(),
                    "values": [round(float(v), 6) for v in getattr(ex, f"{which}_values")[i]],
                    "positions": positions[i].tolist() if positions is not None else None,
                    "boxes": boxes[i].tolist() if boxes is not None else None,
                }
            units[str(u)] = entry
        tensors = {f"{which}_{name}": getattr(ex, f"{which}_{name}")
                   for which in ("top", "bottom") for name in ("indices", "values", "crops", "positions", "boxes")
                   if getattr(ex, f"{which}_{name}") is not None}
        save_tensors(tmp / "examples.safetensors", tensors)
        write_json(tmp / "index.json", {
            "kind": "examples", "layer": ex.layer, "units_list": ex.units, "dataset": ex.dataset,
            "n_images": ex.n_images, "k": ex.k, "receptive_field": ex.receptive_field, "settings": ex.settings,
            "data": "examples.safetensors", "units": units})
    return directory


def load_examples(directory: str | Path) -> DatasetExamples:
    """Read a folder written by :func:`save_examples`."""
    index, t = read_saved_folder(directory, "dataset examples", "compute them with: interp examples --layer LAYER",
                                 "compute them again")
    return DatasetExamples(index["layer"], index["units_list"], index["dataset"], index["n_images"],
                           t["top_indices"], t["top_values"], t["bottom_indices"], t["bottom_values"],
                           t["top_crops"], t["bottom_crops"], t.get("top_positions"), t.get("bottom_positions"),
                           t.get("top_boxes"), t.get("bottom_boxes"), index.get("receptive_field"),
                           index.get("settings", {}))


def describe_examples(ex: DatasetExamples) -> dict:
    """What ``interp examples --json`` prints: indices, activations and boxes, no pixels."""
    out = {"layer": ex.layer, "units": list(ex.units), "dataset": ex.dataset, "n_images": ex.n_images, "k": ex.k,
           "receptive_field": ex.receptive_field, "settings": jsonable(ex.settings)}
    for which in ("top", "bottom"):
        positions, boxes = getattr(ex, f"{which}_positions"), getattr(ex, f"{which}_boxes")
        out[which] = {"indices": getattr(ex, f"{which}_indices").tolist(),
                      "values": getattr(ex, f"{which}_values"),
                      "positions": positions.tolist() if positions is not None else None,
                      "boxes": boxes.tolist() if boxes is not None else None}
    return finite(out)


# ------------------------------------------------------------------------ weight views


def heatmap_row(kernels: torch.Tensor, *, vmax: float | None = None, min_tile: int = 48, gap: int = 4) -> torch.Tensor:
    """``(n, kh, kw)`` weights -> ``(H, W, 3)`` uint8 row of heatmaps: red > 0, blue < 0, white 0.

    One symmetric colour scale for the row (``vmax``: the largest ``|w|``), so kernels
    compare by strength.
    """
    from matplotlib import colormaps

    vmax = float(kernels.abs().max()) if vmax is None else vmax
    scaled = (0.5 + 0.5 * kernels / max(vmax, 1e-12)).clamp(0, 1)
    rgb = torch.from_numpy(colormaps["RdBu_r"](scaled.numpy())[..., :3]).float()  # (n, kh, kw, 3)
    return image_grid([t.permute(2, 0, 1) for t in rgb], columns=len(kernels), min_tile=min_tile, gap=gap,
                      background=96)  # dark gaps: white is a zero weight


def weight_file(unit: int) -> str:
    return f"unit_{unit:04d}.png"


def save_weight_views(views: WeightViews, directory: str | Path) -> Path:
    """Write ``unit_NNNN.png`` per unit (+ ``filters.png``), ``index.json`` and
    ``weights.safetensors`` into ``directory`` (replaced atomically)."""
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        units, tensors = {}, {}
        for i, w in enumerate(views.unit_weights):
            if views.filters is not None:
                picture = image_grid([views.filters[i]], min_tile=96, gap=0)
            else:
                picture = heatmap_row(w.kernels)
            write_bytes(tmp / weight_file(w.unit), encode_png(picture))
            units[str(w.unit)] = {"file": weight_file(w.unit), "inputs": w.inputs,
                                  "norms": [round(float(v), 6) for v in w.norms],
                                  "vmax": round(float(w.kernels.abs().max()), 6), "total_inputs": w.total_inputs}
            tensors[f"unit_{w.unit:04d}_kernels"] = w.kernels
            tensors[f"unit_{w.unit:04d}_norms"] = w.norms
        index = {"kind": "weights", "layer": views.layer, "module": views.module, "layer_kind": views.kind,
                 "input_layer": views.input_layer, "units_list": views.units, "settings": views.settings,
                 "data": "weights.safetensors", "units": units}
        if views.filters is not None:
            tensors["filters"] = views.filters
            write_bytes(tmp / "filters.png", encode_png(image_grid(list(views.filters), min_tile=48)))
            index["filters"] = "filters.png"
            index["filter_scale"] = views.filter_scale
        save_tensors(tmp / "weights.safetensors", tensors)
        write_json(tmp / "index.json", index)
    return directory


def load_weight_views(directory: str | Path) -> WeightViews:
    """Read a folder written by :func:`save_weight_views`."""
    index, t = read_saved_folder(directory, "weight views", "draw them with: interp weights --layer LAYER",
                                 "draw them again")
    views = [UnitWeights(index["layer"], u, index["input_layer"], index["units"][str(u)]["inputs"],
                         t[f"unit_{u:04d}_norms"], t[f"unit_{u:04d}_kernels"], index["units"][str(u)]["total_inputs"])
             for u in index["units_list"]]
    return WeightViews(index["layer"], index["module"], index["layer_kind"], index["input_layer"],
                       index["units_list"], views, t.get("filters"), index.get("filter_scale"),
                       index.get("settings", {}))


def describe_weights(views: WeightViews) -> dict:
    """What ``interp weights --json`` prints: each unit's strongest inputs and their norms."""
    return finite({"layer": views.layer, "module": views.module, "layer_kind": views.kind,
                   "input_layer": views.input_layer, "units": list(views.units),
                   "filter_scale": views.filter_scale, "settings": jsonable(views.settings),
                   "unit_weights": [{"unit": w.unit, "inputs": list(w.inputs), "norms": w.norms,
                                     "total_inputs": w.total_inputs} for w in views.unit_weights]})


def outputs_file(root: Path, layer: str) -> Path:
    """Where the report keeps a layer's output weights: ``weights/LAYER-outputs.json``."""
    return Path(root) / "weights" / f"{layer}-outputs.json"


def save_output_weights(out: OutputWeights, file: str | Path) -> Path:
    file = Path(file)
    write_json(file, {"kind": "output-weights", "layer": out.layer, "next_layer": out.next_layer,
                      "units": list(out.units), "targets": out.targets.tolist(), "norms": out.norms.tolist(),
                      "signs": out.signs.tolist()})
    return file


def load_output_weights(file: str | Path) -> OutputWeights:
    index = read_index(file)
    if index is None or index.get("kind") != "output-weights":
        raise InterpError(f"no output weights in {file}")
    return OutputWeights(index["layer"], index["next_layer"], [int(u) for u in index["units"]],
                         torch.tensor(index["targets"], dtype=torch.long),
                         torch.tensor(index["norms"], dtype=torch.float32),
                         torch.tensor(index["signs"], dtype=torch.long))


register("featvis", FeatureVis, save=save_featvis, load=load_featvis, describe=describe_featvis)
register("accentuation", Accentuation, save=save_accentuation, load=load_accentuation,
         describe=describe_accentuation)
register("natural-max", NaturalMax, save=save_natural, load=load_natural, describe=lambda n: finite(n.to_dict()))
register("unit-quality", LayerQuality, save=save_quality, load=load_quality,
         describe=lambda r: {"layer": r.layer, "folder": r.folder, "settings": jsonable(r.settings),
                             "quality": [q.to_dict() for q in r.quality]})

register("examples", DatasetExamples, save=save_examples, load=load_examples, describe=describe_examples)
register("weights", WeightViews, save=save_weight_views, load=load_weight_views, describe=describe_weights)
register("output-weights", OutputWeights, save=save_output_weights, load=load_output_weights,
         describe=lambda o: finite({"layer": o.layer, "next_layer": o.next_layer, "units": list(o.units),
                                    "targets": o.targets.tolist(), "norms": o.norms, "signs": o.signs.tolist()}))
