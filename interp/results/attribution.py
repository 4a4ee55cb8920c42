"""Saved attribution results: maps, the gallery, trust checks, unit and token attributions.

Every result of :mod:`interp.analysis.attribution` is written here, with its figures
drawn at save time (:mod:`interp.results.attribution_plots`), and read back here. The
files go to ``reports/RUN/attribution/`` by default, the folder the report reads:

=================== ======================================== =====================================
kind                files                                    written by
=================== ======================================== =====================================
attribution         ``NAME.json`` + ``.npz`` + ``.png``       ``interp attribute pixels``
attribution-gallery ``gallery/gallery.json`` + ``.npz`` +     ``interp attribute gallery``, report
                    one ``CLASS.png`` per class
attribution-trust   ``trust.json`` + ``.npz`` + two PNGs      ``interp attribute trust``, report
unit-attribution    ``units-LAYER[-NAME].json/.npz/.png``     ``interp attribute units --index``
class-unit-summary  ``class-units-LAYER.json/.npz/.png``      ``interp attribute units``, report
token-attribution   ``tokens-NAME.json/.png/.html``           ``interp attribute tokens``
=================== ======================================== =====================================

Each JSON file carries ``"kind"`` (so :func:`interp.results.load` reads any of them) and
``"settings"``: a result is never overwritten by one of other settings, which goes
beside it instead (``NAME-HASH.json``, or ``gallery-HASH/``; see :func:`unclaimed_stem`).

>>> paths = save_attribution(attr)                  # reports/RUN/attribution/test-17.{json,npz,png}
>>> interp.results.load(paths["json"]).maps["ig"].shape
torch.Size([1, 3, 32, 32])
"""

from __future__ import annotations

import functools

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis.attribution.attribute import Attribution
from ..analysis.attribution.completeness import Completeness
from ..analysis.attribution.gallery import Gallery, GalleryEntry
from ..analysis.attribution.methods import METHODS, make_options
from ..analysis.attribution.tokens import TokenAttribution
from ..analysis.attribution.trust import PerturbationCurves, SanityCheck, TrustReport
from ..analysis.attribution.units import ClassUnitSummary, UnitAttribution
from ..errors import InterpError
from ..io import atomic_group, jsonable, npz_bytes, write_bytes, write_json, write_text
from ..plots import save_figure
from .store import register, settings_hash

# --------------------------------------------------------------------------- names and folders


def attribution_dir(run_name: str | None, root: Path | None = None) -> Path:
    """``reports/RUN/attribution``: where this area's results go."""
    from ..runs import reports_dir

    if not run_name:
        raise InterpError("a result from a bare model has no run name; pass directory= to save it")
    return (Path(root) if root is not None else reports_dir()) / run_name / "attribution"


def safe_name(text: str) -> str:
    """``text`` as a file stem: anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "attribution"


def default_name(attr: Attribution) -> str:
    """A file stem from the sources: ``test-17``, ``cat``, or ``batch-8``."""
    if len(attr.sources) == 1:
        stem = Path(attr.sources[0]).stem if ("/" in attr.sources[0] or "." in attr.sources[0]) else attr.sources[0]
        return safe_name(stem)
    return f"batch-{len(attr)}"


def _saved_settings(file: Path) -> Any:
    try:
        return json.loads(file.read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        return None  # unreadable: treat as a result of unknown settings, which is kept


def unclaimed_stem(directory: Path, stem: str, settings: dict) -> str:
    """``stem``, or ``stem-HASH`` when ``directory/stem.json`` holds a result of other settings.

    A result is replaced only by one of the same settings (a rerun); any other goes beside it.

    >>> unclaimed_stem(Path("reports/tiny/attribution"), "test-5", {"steps": 8})
    'test-5'
    """
    existing = Path(directory) / f"{stem}.json"
    if not existing.exists() or _saved_settings(existing) == jsonable(settings):
        return stem
    return f"{stem}-{settings_hash(settings)}"


def _read_json(file: Path, make: str) -> dict:
    if not file.is_file():
        raise InterpError(f"{file} not found; {make}")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as e:
        raise InterpError(f"{file} is corrupt: {e}; {make} again") from None


def _read_npz(file: Path, make: str) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise InterpError(f"{file} not found; {make}")
    try:
        with np.load(file, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InterpError(f"{file} is corrupt: {e}; {make} again") from None


def _with(stem: Path, suffix: str) -> Path:
    """``stem`` plus ``suffix``; not ``with_suffix``, which would eat the ``.conv2`` of a stem
    like ``class-units-layer3.1.conv2`` (users' models name layers by dotted module paths)."""
    return stem.parent / (stem.name + suffix)


def _stem(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".npz", ".png", ".html") else path


def _files(paths: dict[str, Path]) -> dict[str, str]:
    return {k: p.name for k, p in paths.items() if k != "json"}


# --------------------------------------------------------------------------- input attribution


def attribution_settings(attr: Attribution) -> dict:
    """What determines an attribution's maps: images, targets, methods and their options."""
    return {"run": attr.run, "sources": attr.sources, "targets": attr.targets.tolist(), "methods": attr.methods,
            "options": asdict(attr.options), "gradcam_layer": attr.gradcam_layer}


def attribution_index(attr: Attribution) -> dict:
    """The JSON summary of an attribution (what ``NAME.json`` and ``--json`` hold, files aside)."""
    return {
        "run": attr.run, "classes": attr.classes, "methods": attr.methods,
        "method_titles": {m: METHODS[m].title for m in attr.methods if m in METHODS},
        "captum": {m: METHODS[m].captum for m in attr.methods if m in METHODS},
        "sources": attr.sources, "options": asdict(attr.options), "seconds": attr.seconds,
        "gradcam_layer": attr.gradcam_layer, "images": attr.summary(),
        "completeness": attr.completeness.to_dict() if attr.completeness is not None else None,
    }


def _attribution_arrays(attr: Attribution) -> dict[str, np.ndarray]:
    arrays = {
        "inputs": attr.inputs.numpy().astype(np.float32), "images": attr.images.numpy().astype(np.float32),
        "targets": attr.targets.numpy(), "probs": attr.probs.numpy(), "baselines": attr.baselines.numpy(),
        **{f"map:{m}": v.numpy().astype(np.float32) for m, v in attr.maps.items()},
    }
    if attr.labels is not None:
        arrays["labels"] = attr.labels.numpy()
    return arrays



def _grouped(save):
    """A save whose files (npz, png, json) appear together or not at all (:func:`interp.io.atomic_group`)."""
    @functools.wraps(save)
    def wrapper(*args, **kwargs):
        with atomic_group():
            return save(*args, **kwargs)
    return wrapper

@_grouped
def save_attribution(attr: Attribution, directory: str | Path | None = None, name: str | None = None, *,
                     figure: bool = True) -> dict[str, Path]:
    """Write ``NAME.json`` (summary), ``NAME.npz`` (every tensor) and ``NAME.png`` (the figure).

    Default folder: ``reports/RUN/attribution/``; default name from the sources
    (:func:`default_name`). Returns the paths by kind (``json``, ``npz``, ``png``).
    """
    from .attribution_plots import plot_attribution

    directory = Path(directory) if directory is not None else attribution_dir(attr.run)
    settings = attribution_settings(attr)
    stem = unclaimed_stem(directory, safe_name(name or default_name(attr)), settings)
    paths = {"json": directory / f"{stem}.json", "npz": directory / f"{stem}.npz"}
    write_bytes(paths["npz"], npz_bytes(_attribution_arrays(attr)))
    if figure:
        paths["png"] = save_figure(plot_attribution(attr), directory / f"{stem}.png")
    write_json(paths["json"], {"kind": "attribution", **attribution_index(attr), "settings": settings,
                               "files": _files(paths)})
    return paths


def load_attribution(path: str | Path) -> Attribution:
    """Read what :func:`save_attribution` wrote (give the .json, the .npz or the common stem).

    A gallery's ``gallery.json`` reads the same way: its :attr:`Gallery.attribution`.
    """
    stem = _stem(path)
    make = "save an attribution first (interp attribute pixels ...)"
    meta = _read_json(_with(stem, ".json"), make)
    arrays = {k: torch.from_numpy(v) for k, v in _read_npz(_with(stem, ".npz"), make).items()}
    try:
        comp = meta.get("completeness")
        return Attribution(
            inputs=arrays["inputs"], images=arrays["images"], targets=arrays["targets"], probs=arrays["probs"],
            maps={m: arrays[f"map:{m}"] for m in meta["methods"]}, baselines=arrays["baselines"],
            classes=meta["classes"], labels=arrays.get("labels"), sources=meta["sources"],
            options=make_options(**meta["options"]), seconds=meta["seconds"],
            completeness=Completeness.from_dict(comp) if comp else None, run=meta["run"],
            gradcam_layer=meta.get("gradcam_layer"),
        )
    except (KeyError, TypeError) as e:
        raise InterpError(f"{stem}.json/.npz is incomplete (missing {e}); {make} again") from None


# --------------------------------------------------------------------------- gallery


def gallery_figure_name(class_name: str) -> str:
    """The file name of a class's figure inside the gallery folder: ``circle.png``."""
    return f"{safe_name(class_name)}.png"


@_grouped
def save_gallery(gallery: Gallery, directory: str | Path | None = None) -> dict[str, Path]:
    """Write ``gallery.json`` (index), ``gallery.npz`` (every map) and one figure per class.

    Default folder: ``reports/RUN/attribution/gallery/`` (the report links the figures); a
    gallery of other settings already there is kept and this one goes to ``gallery-HASH/``.
    Returns ``{"folder", "json", "npz"}``.
    """
    from .attribution_plots import plot_attribution

    folder = Path(directory) if directory is not None else attribution_dir(gallery.run) / "gallery"
    settings = attribution_settings(gallery.attribution)
    if (folder / "gallery.json").exists() and _saved_settings(folder / "gallery.json") != jsonable(settings):
        folder = folder.with_name(f"{folder.name}-{settings_hash(settings)}")
    paths = {"json": folder / "gallery.json", "npz": folder / "gallery.npz"}
    for entry in gallery.entries:
        save_figure(plot_attribution(gallery.entry_attribution(entry)), folder / gallery_figure_name(entry.class_name))
    write_bytes(paths["npz"], npz_bytes(_attribution_arrays(gallery.attribution)))
    index = gallery.to_dict()
    for entry in index["entries"]:
        entry["figure"] = gallery_figure_name(entry["class_name"])
    write_json(paths["json"], {**attribution_index(gallery.attribution), **index, "kind": "attribution-gallery",
                               "data": paths["npz"].name, "settings": settings, "files": _files(paths)})
    return {"folder": folder, **paths}


def load_gallery(path: str | Path) -> Gallery:
    """Read what :func:`save_gallery` wrote (the folder or its ``gallery.json``)."""
    path = Path(path)
    file = path / "gallery.json" if path.is_dir() else path
    meta = _read_json(file, "make it with: interp attribute gallery")
    attr = load_attribution(file)
    entries = [GalleryEntry(e["class_name"], e["indices"], e["predictions"], e["probs"],
                            [attr.sources.index(f"test:{i}") for i in e["indices"]]) for e in meta["entries"]]
    return Gallery(meta["run"], meta["methods"], entries, attr, meta.get("seed", 0), meta.get("class_counts", {}))


# --------------------------------------------------------------------------- trust


def trust_paths(directory: str | Path, stem: str = "trust") -> dict[str, Path]:
    """Where the trust checks' files go: ``json``, ``npz``, ``curves_png`` and ``sanity_png``."""
    directory = Path(directory)
    return {"json": directory / f"{stem}.json", "npz": directory / f"{stem}.npz",
            "curves_png": directory / f"{stem}-deletion-insertion.png",
            "sanity_png": directory / f"{stem}-randomization.png"}


def trust_settings(report: TrustReport) -> dict:
    return {"run": report.run, "methods": report.methods, "options": report.options}


@_grouped
def save_trust(report: TrustReport, directory: str | Path | None = None) -> dict[str, Path]:
    """Write ``trust.json``, ``trust.npz`` (curves, correlations, maps) and two PNGs (:func:`trust_paths`)."""
    from .attribution_plots import plot_curves, plot_sanity

    directory = Path(directory) if directory is not None else attribution_dir(report.run)
    settings = trust_settings(report)
    paths = trust_paths(directory, unclaimed_stem(directory, "trust", settings))
    arrays = {"fractions": report.curves.fractions}
    for m in report.curves.methods:
        arrays[f"deletion:{m}"] = report.curves.deletion[m]
        arrays[f"insertion:{m}"] = report.curves.insertion[m]
    for m in report.sanity.methods:
        arrays[f"spearman:{m}"] = report.sanity.correlations[m]
        if m in report.sanity.trained_maps:
            arrays[f"trained_map:{m}"] = report.sanity.trained_maps[m].astype(np.float32)
            arrays[f"random_map:{m}"] = report.sanity.random_maps[m].astype(np.float32)
    if report.completeness is not None:
        arrays["ig_sum"] = report.completeness.attribution_sum.numpy()
        arrays["ig_difference"] = report.completeness.output_difference.numpy()
    write_bytes(paths["npz"], npz_bytes(arrays))
    save_figure(plot_curves(report.curves), paths["curves_png"])
    save_figure(plot_sanity(report.sanity), paths["sanity_png"])
    write_json(paths["json"], {"kind": "attribution-trust", **report.to_dict(), "settings": settings,
                               "files": _files(paths)})
    return paths


def load_trust(path: str | Path) -> TrustReport:
    """Read what :func:`save_trust` wrote (the folder, meaning its ``trust.json``, or a trust JSON file)."""
    path = Path(path)
    file = path / "trust.json" if path.is_dir() else path.with_suffix(".json")
    make = "run the trust checks first (interp attribute trust)"
    meta = _read_json(file, make)
    a = _read_npz(file.with_suffix(".npz"), make)
    cmeta, smeta = meta["curves"], meta["sanity"]
    curve_methods = [k.split(":", 1)[1] for k in a if k.startswith("deletion:")]
    curves = PerturbationCurves(a["fractions"], {m: a[f"deletion:{m}"] for m in curve_methods},
                                {m: a[f"insertion:{m}"] for m in curve_methods},
                                cmeta["deletion_baseline"], cmeta["insertion_baseline"])
    sanity_methods = list(smeta["spearman"])
    sanity = SanityCheck({m: a[f"spearman:{m}"] for m in sanity_methods},
                         {m: a[f"trained_map:{m}"] for m in sanity_methods if f"trained_map:{m}" in a},
                         {m: a[f"random_map:{m}"] for m in sanity_methods if f"random_map:{m}" in a},
                         smeta["absolute"], smeta["seed"])
    completeness = (Completeness(torch.from_numpy(a["ig_sum"]), torch.from_numpy(a["ig_difference"]))
                    if "ig_sum" in a else None)
    return TrustReport(meta["run"], meta["sources"], meta["methods"], completeness, curves, sanity, meta["options"])


# --------------------------------------------------------------------------- units


@_grouped
def save_unit_attribution(result: UnitAttribution, directory: str | Path | None = None,
                          name: str | None = None) -> dict[str, Path]:
    """``units-LAYER[-NAME].json`` + ``.npz`` + ``.png`` (bar chart of the units) under reports/RUN/attribution/."""
    from .attribution_plots import plot_unit_attribution

    directory = Path(directory) if directory is not None else attribution_dir(result.run)
    settings = {"run": result.run, "layer": result.layer, "method": result.method, "options": result.options,
                "sources": result.sources, "targets": result.targets.tolist()}
    stem = unclaimed_stem(directory, f"units-{result.layer}" + (f"-{safe_name(name)}" if name else ""), settings)
    paths = {"json": directory / f"{stem}.json", "npz": directory / f"{stem}.npz", "png": directory / f"{stem}.png"}
    arrays = {"scores": result.scores.numpy(), "targets": result.targets.numpy()}
    if result.output_difference is not None:
        arrays["output_difference"] = result.output_difference.numpy()
    write_bytes(paths["npz"], npz_bytes(arrays))
    save_figure(plot_unit_attribution(result), paths["png"])
    write_json(paths["json"], {"kind": "unit-attribution", **result.to_dict(), "settings": settings,
                               "files": _files(paths)})
    return paths


def load_unit_attribution(path: str | Path) -> UnitAttribution:
    """Read :func:`save_unit_attribution` output (the .json, .npz or their stem)."""
    stem, make = _stem(path), "compute it first (interp attribute units)"
    meta, arrays = _read_json(_with(stem, ".json"), make), _read_npz(_with(stem, ".npz"), make)
    return UnitAttribution(meta["layer"], meta["method"], torch.from_numpy(arrays["scores"]),
                           torch.from_numpy(arrays["targets"]),
                           torch.from_numpy(arrays["output_difference"]) if "output_difference" in arrays else None,
                           meta["classes"], meta["sources"], meta["run"], meta["options"])


def class_unit_summary_paths(directory: str | Path, layer: str, stem: str | None = None) -> dict[str, Path]:
    """Where a layer's class-to-unit summary goes: ``class-units-LAYER.{json,npz,png}``."""
    directory, stem = Path(directory), stem or f"class-units-{layer}"
    return {"json": directory / f"{stem}.json", "npz": directory / f"{stem}.npz", "png": directory / f"{stem}.png"}


@_grouped
def save_class_unit_summary(summary: ClassUnitSummary, directory: str | Path | None = None) -> dict[str, Path]:
    """``class-units-LAYER.json`` (top units per class, top classes per unit) + ``.npz`` + heat-map ``.png``."""
    from .attribution_plots import plot_class_unit_summary

    directory = Path(directory) if directory is not None else attribution_dir(summary.run)
    settings = {"run": summary.run, "layer": summary.layer, "method": summary.method, "classes": summary.classes,
                "options": summary.options}
    paths = class_unit_summary_paths(directory, summary.layer,
                                     unclaimed_stem(directory, f"class-units-{summary.layer}", settings))
    write_bytes(paths["npz"], npz_bytes({"matrix": summary.matrix.numpy(), "counts": np.array(summary.counts)}))
    save_figure(plot_class_unit_summary(summary), paths["png"])
    write_json(paths["json"], {"kind": "class-unit-summary", **summary.to_dict(), "settings": settings,
                               "files": _files(paths)})
    return paths


def load_class_unit_summary(path: str | Path) -> ClassUnitSummary:
    """Read :func:`save_class_unit_summary` output (the .json, .npz or their stem)."""
    stem, make = _stem(path), "compute it first (interp attribute units --layer LAYER)"
    meta, arrays = _read_json(_with(stem, ".json"), make), _read_npz(_with(stem, ".npz"), make)
    return ClassUnitSummary(meta["layer"], meta["method"], meta["classes"], torch.from_numpy(arrays["matrix"]),
                            [int(c) for c in arrays["counts"]], meta["run"], meta["options"])


# --------------------------------------------------------------------------- tokens


@_grouped
def save_token_attribution(result: TokenAttribution, directory: str | Path | None = None,
                           name: str | None = None) -> dict[str, Path]:
    """``tokens-NAME.json`` (tokens, scores, completeness), ``.png`` (coloured tokens) and ``.html`` (a snippet)."""
    from .attribution_plots import plot_tokens, token_html

    directory = Path(directory) if directory is not None else attribution_dir(result.run)
    settings = {"run": result.run, "tokens": result.tokens.tolist(), "target": result.target,
                "position": result.position, "steps": result.steps, "baseline_token": result.baseline_token}
    stem = unclaimed_stem(directory, "tokens-" + safe_name(name or result.prompt[:24] or "prompt"), settings)
    paths = {"json": directory / f"{stem}.json", "png": directory / f"{stem}.png", "html": directory / f"{stem}.html"}
    save_figure(plot_tokens(result), paths["png"])
    write_text(paths["html"], token_html(result) + "\n")
    write_json(paths["json"], {"kind": "token-attribution", **result.to_dict(), "settings": settings,
                               "files": _files(paths)})
    return paths


def load_token_attribution(path: str | Path) -> TokenAttribution:
    """Read :func:`save_token_attribution` output (the .json or its stem)."""
    file = _with(_stem(path), ".json")
    meta = _read_json(file, "compute it first (interp attribute tokens)")
    try:
        return TokenAttribution.from_dict(meta)
    except (KeyError, TypeError) as e:
        raise InterpError(f"{file} is corrupt (missing {e}); compute it again (interp attribute tokens)") from None


# --------------------------------------------------------------------------- the store


def _saved(save, key: str = "json"):
    """A store saver: ``save(result, directory, **kw)`` returning the path ``interp.results.load`` reads."""
    def store_save(result, path, **options):
        return save(result, path, **options)[key]
    return store_save


register("attribution", Attribution, save=_saved(save_attribution), load=load_attribution,
         describe=attribution_index)
register("attribution-gallery", Gallery, save=_saved(save_gallery), load=load_gallery,
         describe=lambda g: {**g.to_dict(), "images": g.attribution.summary()})
register("attribution-trust", TrustReport, save=_saved(save_trust), load=load_trust,
         describe=lambda r: {**r.to_dict(), "headline": r.headline()})
register("unit-attribution", UnitAttribution, save=_saved(save_unit_attribution), load=load_unit_attribution,
         describe=lambda r: r.to_dict())
register("class-unit-summary", ClassUnitSummary, save=_saved(save_class_unit_summary),
         load=load_class_unit_summary, describe=lambda s: s.to_dict())
register("token-attribution", TokenAttribution, save=_saved(save_token_attribution),
         load=load_token_attribution, describe=lambda r: r.to_dict())
