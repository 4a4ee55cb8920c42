"""Saving, loading and drawing the word-vector results of :mod:`interp.analysis.words.geometry`.

Each result is one JSON file, ``STEM.json``, whose ``"kind"`` field names its type
(``neighbors``, ``analogy``, ``projection``, ``bias``, ``embedding2d``); projections, bias
probes and 2-D embeddings also get ``STEM.png`` beside it, drawn at save time. The report's
set of them is indexed by ``summary.json`` (kind ``embedding-report``). Every kind is
registered with :mod:`interp.results.store`, so the generic verbs work:

>>> path = interp.results.save(analogy(vectors, "man", "king", "woman"), "reports/toy/embeddings")
>>> path.name, interp.results.load(path).answer
('analogy-man-king-woman.json', 'queen')

Results are never destroyed: a file name is the result's readable stem
(``neighbors-king``); when that file holds a result with other settings (another ``k``,
other words, other vectors' source), the new one goes beside it as ``STEM-HASH.json``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..analysis.words.geometry import (CORRELATION_NOTE, Analogy, BiasProbe, Embedding2D, Neighbors,
                                       Projection)
from ..errors import InterpError
from ..io import write_json
from ..plots import new_figure, save_figure
from .store import register, settings_hash

# ---------------------------------------------------------------------- figures


def _merge_labels(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Points closer than 1.5% of the plot's extent share one label ("king / prince")."""
    if not points:
        return points
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    tol = 0.015 * max(max(xs) - min(xs), max(ys) - min(ys), 1e-12)
    groups: list[list[tuple[str, float, float]]] = []
    for point in points:
        for group in groups:
            if abs(group[0][1] - point[1]) <= tol and abs(group[0][2] - point[2]) <= tol:
                group.append(point)
                break
        else:
            groups.append([point])
    return [(" / ".join(p[0] for p in g), g[0][1], g[0][2]) for g in groups]


def _scatter(points: list[tuple[str, float, float]], path: Path, *, xlabel: str, ylabel: str, title: str,
             highlight: set[str] = frozenset(), zero_lines: bool = False) -> Path:
    fig, ax = new_figure(7.0, 6.0)
    ax.scatter([p[1] for p in points], [p[2] for p in points], s=14, color="#2c3e50")
    for label, x, y in _merge_labels(points):
        marked = any(w in highlight for w in label.split(" / "))
        color = "#c0392b" if marked else "#2c3e50"
        if marked:
            ax.scatter([x], [y], s=18, color=color)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=8, color=color)
    if zero_lines:
        ax.axhline(0, color="#bbbbbb", lw=0.8, zorder=0)
        ax.axvline(0, color="#bbbbbb", lw=0.8, zorder=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.margins(0.12)
    return save_figure(fig, Path(path))


def plot_embedding_2d(emb: Embedding2D, path: str | os.PathLike, *, highlight: Sequence[str] = ()) -> Path:
    """Labelled scatter of a 2-D embedding, as a PNG (atomic)."""
    if emb.method == "raw":
        xl, yl = "dimension 1", "dimension 2"
        title = f"word vectors ({emb.source})"
    else:
        xl, yl = (f"PC{i + 1} ({100 * e:.0f}% of variance)" for i, e in enumerate(emb.explained or [0, 0]))
        title = f"word vectors, first two principal components ({emb.source})"
    return _scatter(list(zip(emb.words, emb.x, emb.y)), Path(path), xlabel=xl, ylabel=yl, title=title,
                    highlight=set(highlight), zero_lines=True)


def plot_projection(proj: Projection, path: str | os.PathLike) -> Path:
    """word2viz-style labelled scatter on the two axes (ranks on y when there is one axis)."""
    if proj.y is not None:
        points = list(zip(proj.words, proj.x, proj.y))
        ylabel = f"cos(word, {proj.y_axis})"
    else:
        order = sorted(range(len(proj.words)), key=lambda i: proj.x[i])
        points = [(proj.words[i], proj.x[i], float(r)) for r, i in enumerate(order)]
        ylabel = "rank"
    return _scatter(points, Path(path), xlabel=f"cos(word, {proj.x_axis})", ylabel=ylabel,
                    title=proj.title or f"{proj.source}", zero_lines=True)


def plot_bias(probe: BiasProbe, path: str | os.PathLike) -> Path:
    """Horizontal bars: each word's coordinate on the axis, most positive at the top."""
    n = len(probe.words)
    fig, ax = new_figure(6.5, max(2.5, 0.22 * n + 1))
    ys = list(range(n))[::-1]
    colors = ["#c0392b" if s > 0 else "#2471a3" for s in probe.scores]
    ax.barh(ys, probe.scores, color=colors)
    ax.set_yticks(ys)
    ax.set_yticklabels(probe.words, fontsize=8)
    ax.axvline(0, color="#555555", lw=0.8)
    a, b = probe.pairs[0] if probe.pairs else ("+", "-")
    ax.set_xlabel(f"cos(word, {probe.axis})   ← {b}   |   {a} →")
    ax.set_title(f"bias probe ({probe.source})", fontsize=10)
    return save_figure(fig, Path(path))


# ------------------------------------------------------------------ save / load

RESULT_TYPES = {"neighbors": Neighbors, "analogy": Analogy, "projection": Projection, "bias": BiasProbe,
                "embedding2d": Embedding2D}
"""The ``"kind"`` of each saved word-vector result (the names the files have always carried)."""


def result_kind(result: Any) -> str:
    for kind, cls in RESULT_TYPES.items():
        if isinstance(result, cls):
            return kind
    raise TypeError(f"not an embedding result: {type(result).__name__}")


def slug(text: str) -> str:
    """A file-name-safe version of an axis or word list."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80] or "x"


def default_stem(result: Any) -> str:
    """The readable file name of a result: ``neighbors-king``, ``axes-she-he--rich-poor``."""
    kind = result_kind(result)
    if kind == "neighbors":
        return f"neighbors-{slug(result.word)}"
    if kind == "analogy":
        return f"analogy-{slug(result.a)}-{slug(result.b)}-{slug(result.c)}"
    if kind == "projection":
        return f"axes-{slug(result.x_axis)}" + (f"--{slug(result.y_axis)}" if result.y_axis else "")
    if kind == "bias":
        return f"bias-{slug(result.axis)}"
    return "plot-2d"


def result_settings(result: Any) -> dict:
    """What was asked for (not what came out): two results with equal settings are one analysis.

    >>> result_settings(nearest_neighbors(vectors, "king", 3))
    {'kind': 'neighbors', 'source': 'run toy', 'word': 'king', 'metric': 'cosine', 'k': 3}
    """
    kind = result_kind(result)
    if kind == "neighbors":
        asked = {"word": result.word, "metric": result.metric, "k": len(result.words)}
    elif kind == "analogy":
        asked = {"a": result.a, "b": result.b, "c": result.c, "expected": result.expected,
                 "k": max(len(result.words_including_queries), len(result.words))}
    elif kind == "projection":
        asked = {"words": sorted(result.words + result.skipped), "x": result.x_axis, "y": result.y_axis,
                 "title": result.title}
    elif kind == "bias":
        asked = {"axis": result.axis, "words": sorted(result.words + result.skipped)}
    else:
        asked = {"words": list(result.words), "method": result.method}
    return {"kind": kind, "source": result.source, **asked}


def _free_stem(folder: Path, stem: str, result: Any) -> str:
    """``stem``, unless ``stem.json`` holds another analysis (or anything unreadable): then
    ``stem-HASH``, so that nothing saved before is overwritten."""
    file = folder / f"{stem}.json"
    if not file.exists():
        return stem
    settings = result_settings(result)
    try:
        if result_settings(load_result(file)) == settings:
            return stem  # the same analysis again: replace it
    except (InterpError, TypeError):
        pass
    return f"{stem}-{settings_hash(settings)}"


def save_result(result: Any, folder: str | os.PathLike, stem: str | None = None, *,
                highlight: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``STEM.json`` (and ``STEM.png`` for plots) under ``folder``; returns the paths.

    ``highlight`` marks words in red on a 2-D plot. A file of another analysis at
    ``STEM.json`` is kept: the result goes to ``STEM-HASH.json`` instead.

    >>> save_result(analogy(vectors, "man", "king", "woman"), "reports/toy/embeddings")["json"].name
    'analogy-man-king-woman.json'
    """
    folder = Path(folder)
    kind = result_kind(result)
    stem = _free_stem(folder, stem or default_stem(result), result)
    paths = {"json": folder / f"{stem}.json"}
    write_json(paths["json"], {"kind": kind, **asdict(result)})
    if kind == "projection":
        paths["png"] = plot_projection(result, folder / f"{stem}.png")
    elif kind == "bias":
        paths["png"] = plot_bias(result, folder / f"{stem}.png")
    elif kind == "embedding2d":
        paths["png"] = plot_embedding_2d(result, folder / f"{stem}.png", highlight=highlight)
    return paths


def load_result(path: str | os.PathLike) -> Any:
    """Read back what :func:`save_result` wrote (the JSON file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        cls = RESULT_TYPES[data.pop("kind")]
        return cls(**data)
    except FileNotFoundError:
        raise InterpError(f"{path} not found") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise InterpError(f"{path} is not a saved embedding result ({e})") from None


def png_of(json_path: str | os.PathLike) -> Path | None:
    """The figure saved beside a result's JSON file, when it has one."""
    png = Path(json_path).with_suffix(".png")
    return png if png.exists() else None


def _store_saver(result: Any, path: str | os.PathLike, stem: str | None = None, *,
                 highlight: Sequence[str] = ()) -> Path:
    """``interp.results.save``: ``path`` is a folder (the file named by the result) or a ``.json`` file."""
    path = Path(path)
    if path.suffix == ".json":
        path, stem = path.parent, stem or path.stem
    return save_result(result, path, stem, highlight=highlight)["json"]


# ------------------------------------------------------------- the report's set


@dataclass
class EmbeddingReport:
    """The report page's material: a 2-D plot, an axes view, a bias probe, tables and a note."""

    source: str
    plot: str
    """File names relative to the folder of ``summary.json``."""
    projection: str | None
    bias: str | None
    neighbors: list[str]
    analogies: list[str]
    note: str = CORRELATION_NOTE
    skipped: list[str] = field(default_factory=list)
    """What could not be computed with this vocabulary, and why."""
    settings: dict = field(default_factory=dict)
    """What the set was computed with (the vectors' fingerprint, the words asked for): a
    saved set is reused only when these match (:func:`interp.pipelines.words.ensure`)."""

    def files(self) -> list[str]:
        """Every file the set lists."""
        return [f for f in (self.plot, self.projection, self.bias, *self.neighbors, *self.analogies) if f]


SUMMARY = "summary.json"


def save_embedding_report(report: EmbeddingReport, folder: str | os.PathLike) -> Path:
    """Write ``folder/summary.json``, the index of the set (its results are saved beside it)."""
    folder = Path(folder)
    if folder.suffix == ".json":
        folder = folder.parent
    path = folder / SUMMARY
    write_json(path, {"kind": "embedding-report", **asdict(report)})
    return path


def load_embedding_report(folder: str | os.PathLike) -> EmbeddingReport:
    """Read ``summary.json`` (give its folder or the file) written by
    :func:`interp.pipelines.words.run_embedding_analyses`; older files without ``kind``
    or ``settings`` load too."""
    path = Path(folder)
    if path.suffix != ".json":
        path = path / SUMMARY
    if not path.exists():
        raise InterpError(f"{path} not found; compute it with interp embed report --run RUN")
    try:
        data = json.loads(path.read_text())
        data.pop("kind", None)
        return EmbeddingReport(**data)
    except (json.JSONDecodeError, TypeError, AttributeError) as e:
        raise InterpError(f"{path} is not a saved embedding report ({e}); compute it again with "
                          f"interp embed report") from None


register("neighbors", Neighbors, save=_store_saver, load=load_result)
register("analogy", Analogy, save=_store_saver, load=load_result, describe=lambda r: r.to_dict())
register("projection", Projection, save=_store_saver, load=load_result)
register("bias", BiasProbe, save=_store_saver, load=load_result)
register("embedding2d", Embedding2D, save=_store_saver, load=load_result)
register("embedding-report", EmbeddingReport, save=save_embedding_report, load=load_embedding_report,
         main_file=SUMMARY)
