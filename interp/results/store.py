"""One results store: ``save(result, path)`` / ``load(path)`` / ``describe(result)`` for every result type.

Analyses return plain result objects (dataclasses holding tensors); how each type is
written (PNG, safetensors, JSON, the figures drawn at save time) is registered here by
its results module, once, next to its reader:

    register("featvis", FeatureVis, save=save_featvis, load=load_featvis)

so that a pipeline, the CLI and a notebook all call ``save(result, path)``, and the report
or a script calls ``load(path)`` without knowing the type. Every saved result's
``index.json`` (or, for a single-file result, the JSON file itself) carries
``"kind": NAME``, which is how ``load`` finds the reader; ``load`` also takes the folder a
result was saved in (``reports/RUN/claims``) when one result in it is the folder's
(:func:`main_file`). ``describe(result)`` is the JSON-ready dict that ``--json`` prints
(by default the registered saver's index fields, or the dataclass's fields with tensors
as lists).

Results are never destroyed: savers put results of other settings beside the earlier
ones (folder names or file names keyed by :func:`settings_hash` or a readable key), and
everything is written atomically (:mod:`interp.io`).

The registry is lazy: the results modules below register their kinds when first needed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import InterpError, unknown

# Modules that register kinds; imported on first use so that `import interp.results` stays light.
RESULT_MODULES = (
    "interp.results.vision",
    "interp.results.attribution",
    "interp.results.language",
    "interp.results.words",
    "interp.results.claims",
    "interp.results.zoo",
    "interp.results.circuits",
    "interp.results.dynamics",
    "interp.results.sae",
)


@dataclass(frozen=True)
class Kind:
    """How one result type is saved, loaded and described."""

    name: str
    cls: type
    save: Callable[..., Any]
    load: Callable[[Path], Any]
    describe: Callable[[Any], dict] | None = None
    main_file: str | None = None
    """The JSON file that stands for a whole folder of this kind, when the folder holds other
    results too (``summary.json`` indexes the embedding results beside it)."""


_KINDS: dict[str, Kind] = {}
_LOADED = False


def register(name: str, cls: type, *, save: Callable[..., Any], load: Callable[[Path], Any],
             describe: Callable[[Any], dict] | None = None, main_file: str | None = None) -> None:
    """Register how results of type ``cls`` are stored (``save(result, path, **kw)``, ``load(path)``)."""
    _KINDS[name] = Kind(name, cls, save, load, describe, main_file)


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in RESULT_MODULES:
        importlib.import_module(module)


def list_kinds() -> list[str]:
    """The registered result kinds."""
    _ensure_loaded()
    return sorted(_KINDS)


def kind_of(result: Any) -> Kind:
    """The registered :class:`Kind` of a result object (its exact type, else a base class)."""
    _ensure_loaded()
    for kind in _KINDS.values():
        if type(result) is kind.cls:
            return kind
    for kind in _KINDS.values():
        if isinstance(result, kind.cls):
            return kind
    raise InterpError(f"no results store for {type(result).__name__} objects; storable kinds: "
                      f"{', '.join(sorted(_KINDS))}")


def save(result: Any, path: str | os.PathLike, **options: Any) -> Path:
    """Save ``result`` at ``path`` (a folder or a file, as its kind stores it); returns where it went."""
    out = kind_of(result).save(result, path, **options)
    return Path(out) if out is not None else Path(path)


def _read_kind(file: Path) -> str | None:
    """The ``"kind"`` a saved JSON file declares (None when it declares none)."""
    try:
        index = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InterpError(f"{file} is corrupt (not valid JSON: {e}); compute the result again") from None
    return index.get("kind") if isinstance(index, dict) else None


def _kinds_in(folder: Path) -> dict[Path, str]:
    """The JSON files directly in ``folder`` that declare a kind, with it (unreadable ones left out)."""
    found = {}
    for file in sorted(folder.glob("*.json")):
        try:
            name = _read_kind(file)
        except (InterpError, OSError):
            continue  # not ours to judge here: it is not a candidate
        if name:
            found[file] = name
    return found


def main_file(folder: Path) -> Path:
    """The one JSON file that a folder's result is saved in; a clear error when none or several.

    A folder with ``index.json`` is one result (featvis, examples, weights). Otherwise the
    folder's JSON files that carry a ``"kind"`` are the candidates: a kind's registered
    ``main_file`` (``summary.json`` of the embedding set) wins, else there must be one.

    >>> main_file(Path("reports/tiny/claims"))
    PosixPath('reports/tiny/claims/claims.json')
    """
    _ensure_loaded()
    if (folder / "index.json").is_file():
        return folder / "index.json"
    found = _kinds_in(folder)
    mains = [file for file, name in found.items()
             if name in _KINDS and _KINDS[name].main_file == file.name]
    if len(mains) == 1:
        return mains[0]
    candidates = mains or list(found)
    if not candidates:
        raise InterpError(f"no saved result in {folder} (no JSON file in it says which kind of result it "
                          f"holds); save one first (interp.results.save) or pass the result's own file")
    if len(candidates) > 1:
        listed = ", ".join(f"{file.name} ({found[file]})" for file in candidates)
        raise InterpError(f"{folder} holds {len(candidates)} saved results: {listed}; "
                          f"load one of them by its file, e.g. {candidates[0]}")
    return candidates[0]


def load(path: str | os.PathLike) -> Any:
    """Load a saved result of any kind: its file, or the folder it is saved in (see :func:`main_file`).

    >>> interp.results.load("reports/tiny/claims").results[0].claim      # the folder of claims.json
    'curve-detectors'
    """
    _ensure_loaded()
    path = Path(path)
    if not path.exists():
        raise InterpError(f"no saved result at {path}; save one first (interp.results.save)")
    file = main_file(path) if path.is_dir() else path
    name = _read_kind(file)
    if name not in _KINDS:
        raise unknown("result kind", str(name), _KINDS) if name else InterpError(
            f"{file} does not say what kind of result it holds (no \"kind\" field); compute it again")
    # A folder with index.json is read by its kind as the folder; any other result by its file.
    return _KINDS[name].load(path if file.name == "index.json" and path.is_dir() else file)


def describe(result: Any) -> dict:
    """The JSON-ready dict of a result (what ``--json`` prints)."""
    kind = kind_of(result)
    body = kind.describe(result) if kind.describe is not None else plain(result)
    return {"kind": kind.name, **body}


def plain(obj: Any) -> Any:
    """A dataclass (or anything) as plain JSON values: tensors and arrays as lists, paths as strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:
        return None  # NaN is not JSON
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def settings_hash(settings: dict) -> str:
    """A short stable key of a result's settings, so files of different settings never collide.

    >>> settings_hash({"steps": 512, "seed": 0})
    '3356c27d'
    """
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
