"""Output folders: where a command may write, checked before any work starts.

``--out DIR`` never destroys what a user owns. :func:`check_output_folder` refuses, with
one clear error, the current folder and its parents, the home folder, the filesystem
root, an existing file, and a non-empty folder that is not a previous output of the
same kind (decided from what the results store writes: a JSON file whose ``"kind"``
is one of that output's kinds); it also makes sure the folder can be written (a probe
file created and removed in the nearest folder that exists), so a read-only place
fails before minutes of work rather than after.

>>> check_output_folder("reports/tiny/weights/conv1", "weights")         # new or a previous result: fine
PosixPath('reports/tiny/weights/conv1')
>>> check_output_folder("notes", "weights")
Traceback (most recent call last):
interp.errors.InterpError: --out notes holds 3 files that are not an interp result (a.txt, b.txt, c.md); ...

A folder that holds one result (``featvis``, ``examples``, ``weights``) is replaced as a
whole when written again; :func:`result_folder` keeps a result of other settings by
sending the new one beside it (``DIR-HASH``), as the attribution and word-vector
savers do for their files.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InterpError
from .io import jsonable, nearest_existing, read_json_object


@dataclass(frozen=True)
class OutputKind:
    """What one command's output folder holds."""

    what: str
    """How the message names it: "feature visualisation"."""
    kinds: frozenset[str]
    """The ``"kind"`` values of the results it holds (see :mod:`interp.results`)."""
    whole: bool
    """The folder is one result, replaced whole when written again (so a file in it that is
    not part of the result would be lost); otherwise results are added beside each other."""
    staged: bool
    """Written through a temporary sibling folder (:func:`interp.io.atomic_dir`): the parent
    must be writable, not only the folder."""


ATTRIBUTION_KINDS = frozenset({"attribution", "attribution-trust", "unit-attribution", "class-unit-summary",
                               "token-attribution", "attribution-gallery"})
WORD_KINDS = frozenset({"neighbors", "analogy", "projection", "bias", "embedding2d", "embedding-report"})

OUTPUTS: dict[str, OutputKind] = {
    "featvis": OutputKind("feature visualisation", frozenset({"featvis"}), whole=True, staged=True),
    # `interp circuit --out DIR`: one circuit (replaced whole by the same settings)
    "circuit": OutputKind("circuit result", frozenset({"circuit"}), whole=True, staged=True),
    "examples": OutputKind("set of dataset examples", frozenset({"examples"}), whole=True, staged=True),
    "weights": OutputKind("set of weight views", frozenset({"weights"}), whole=True, staged=True),
    "attribution": OutputKind("attribution result", ATTRIBUTION_KINDS, whole=False, staged=False),
    "embeddings": OutputKind("word-vector result", WORD_KINDS, whole=False, staged=False),
    # A report build copies the previous folder into the new one: nothing in it is lost.
    "report": OutputKind("report", frozenset({"report"}), whole=False, staged=True),
}

_TEMPORARY = re.compile(r"^\..+\.\d+-[^/]*\.tmp$|^\..+\.old$")
"""Names :mod:`interp.io` gives its temporaries and swap copies (cleaned by the next writer)."""


def check_output_folder(path: str | os.PathLike, kind: str, *, option: str = "--out") -> Path:
    """``path`` when a command writing a ``kind`` output (a key of :data:`OUTPUTS`) may use it;
    else an :class:`InterpError` that says what is wrong and what would be right."""
    output = OUTPUTS[kind]
    shown = f"{option} {path}"  # as the user spelled it
    path = Path(path).expanduser()
    _refuse_special(path, shown)
    if path.exists() and not path.is_dir():
        raise InterpError(f"{shown} is an existing file; give a folder (new or empty) for the {output.what}")
    if path.is_dir():
        _refuse_foreign(path, kind, shown)
    check_writable(path.parent if output.staged else path, shown)
    return path


def _refuse_special(path: Path, shown: str) -> None:
    """Refuse the folders no command may take over: root, home, the current folder and its parents."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    special = {parent: "a parent of the current folder" for parent in cwd.parents}
    special[Path(resolved.anchor)] = "the filesystem root"
    special.setdefault(Path.home().resolve(), "the home folder")
    special[cwd] = "the current folder"
    if resolved in special:
        raise InterpError(f"{shown} is {special[resolved]}; give a new or empty folder for the results, "
                          f"e.g. {shown.split()[0]} results/")


def _refuse_foreign(folder: Path, kind: str, shown: str) -> None:
    """Refuse a non-empty folder that is not a previous output of ``kind``, and a previous
    one-result output that also holds files the rewrite would delete."""
    output = OUTPUTS[kind]
    entries = [e for e in folder.iterdir() if not _TEMPORARY.match(e.name)]
    if not entries:
        return
    results = _report_page(folder) if kind == "report" else _result_files(folder, output.kinds)
    if not results and not (not output.whole and any(_result_kinds(e) & output.kinds for e in entries if e.is_dir())):
        others = _result_kinds(folder) - output.kinds
        what = f"a {', '.join(sorted(others))} result, not {_a(output.what)}" if others else \
            f"{_count(entries)} that {'is' if len(entries) == 1 else 'are'} not an interp result ({_names(entries)})"
        raise InterpError(f"{shown} holds {what}; give an empty or new folder, or a previous {output.what}")
    if output.whole:
        foreign = [e for e in entries if e.name not in _claimed(results) or e.is_dir()]
        if foreign:
            one = len(foreign) == 1
            raise InterpError(f"{shown} holds a previous {output.what} but also {_count(foreign)} that "
                              f"{'is' if one else 'are'} not part of it ({_names(foreign)}), which writing it "
                              f"again would delete; move {'it' if one else 'them'} away or give an empty or new "
                              f"folder")


def _a(what: str) -> str:
    return f"{'an' if what[0] in 'aeiou' else 'a'} {what}"


def _count(entries: list[Path]) -> str:
    files = sum(not e.is_dir() for e in entries)
    folders = len(entries) - files
    parts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((files, "file"), (folders, "folder")) if n]
    return " and ".join(parts)


def _names(entries: list[Path], shown: int = 3) -> str:
    names = sorted(e.name + ("/" if e.is_dir() else "") for e in entries)
    return ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")


def _result_files(folder: Path, kinds: frozenset[str]) -> dict[Path, dict]:
    """The JSON files directly in ``folder`` that declare one of ``kinds``, with their content."""
    found = {}
    for file in sorted(folder.glob("*.json")):
        data = read_json_object(file)
        if data is not None and data.get("kind") in kinds:
            found[file] = data
    return found


def _result_kinds(folder: Path) -> set[str]:
    """The kinds the JSON files directly in ``folder`` declare."""
    kinds = set()
    for file in folder.glob("*.json"):
        kind = (read_json_object(file) or {}).get("kind")
        if isinstance(kind, str):
            kinds.add(kind)
    return kinds


def _claimed(results: dict[Path, Any]) -> set[str]:
    """The file names the saved results account for: their JSON files, every file name a JSON
    value mentions (images, ``grid.png``, ``history.safetensors``), and ``STEM.png/.npz/.html``."""
    names: set[str] = set()
    for file, data in results.items():
        names.add(file.name)
        names.update(f"{file.stem}{ext}" for ext in (".png", ".npz", ".html"))
        names.update(_strings(data))
    return names


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value} if len(value) < 256 else set()
    if isinstance(value, dict):
        return set().union(*map(_strings, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_strings, value)) if value else set()
    return set()


def _report_page(folder: Path) -> dict[Path, Any]:
    """``{index.html: ...}`` when ``folder`` holds a report ``interp report`` wrote (its page template's marks)."""
    page = folder / "index.html"
    try:
        text = page.read_text(errors="replace")[:4096]
    except OSError:
        return {}
    return {page: None} if "· interp</title>" in text and 'class="brand"' in text else {}


def check_writable(folder: str | os.PathLike, shown: str = "") -> Path:
    """Create and remove a probe file in ``folder`` (or the nearest folder above it that
    exists, where it would be made); a clear error naming that folder when it cannot be written."""
    where = nearest_existing(folder)
    try:
        _probe(where)
    except OSError as e:
        subject = f"{shown}: " if shown else ""
        raise InterpError(f"{subject}cannot write in {where} ({e.strerror or e}); choose a folder you can write "
                          f"(e.g. --out DIR) or change its permissions") from e
    return where


def _probe(folder: Path) -> None:
    # Permission bits do not tell (root, ACLs, read-only mounts): only a real file does.
    fd, probe = tempfile.mkstemp(prefix=f".interp-probe.{os.getpid()}-", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(probe)


def result_folder(path: str | os.PathLike, layer: str, settings: dict, units: list[int] | None = None) -> Path:
    """Where a one-result folder (featvis, examples, weights) asked for as ``path`` goes: ``path``
    when it is new or holds the same layer, settings (and ``units``, when given); else a
    sibling ``PATH-HASH`` keyed by them, so that a result of other settings is never replaced.

    >>> result_folder("out/conv1", "conv1", {"top": 8})        # out/conv1 holds top=4
    PosixPath('out/conv1-1f2e3d4c')
    """
    from .results.store import settings_hash

    path = Path(path)
    wanted = {"layer": layer, "settings": jsonable(settings)}
    if units is not None:
        wanted["units"] = list(units)
    candidate = path
    for attempt in range(1, 1000):
        index = read_json_object(candidate / "index.json") if candidate.is_dir() else None
        if index is None or _same(index, wanted):
            return candidate
        suffix = settings_hash(wanted) + ("" if attempt == 1 else f"-{attempt}")
        candidate = path.with_name(f"{path.name}-{suffix}")
    raise InterpError(f"no free folder beside {path} for this result; give another --out")  # pragma: no cover


def _same(index: dict, wanted: dict) -> bool:
    have = {"layer": index.get("layer"), "settings": index.get("settings")}
    if "units" in wanted:
        have["units"] = index.get("units_list")
    return have == wanted
