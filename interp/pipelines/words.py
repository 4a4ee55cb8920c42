"""Word vectors, compute what is missing: the report's set of analyses, ``--run`` loading, the demo.

:func:`run_embedding_analyses` computes the standard set (2-D plot, an axes view, the bias
probe, neighbour and analogy tables) and saves it with :mod:`interp.results.words`;
:func:`ensure` does so for the report only when the saved set was made from other vectors
or settings. :func:`load_vectors` is what ``--run`` / ``--vectors`` pick.

>>> vectors = load_vectors("word2vec")                 # a run's vectors (or load_vectors(vectors="glove.txt"))
>>> report = run_embedding_analyses(vectors)          # reports/word2vec/embeddings/summary.json
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from ..analysis.words.geometry import (PRESETS, analogy, bias_probe, default_plot_words, embedding_2d,
                                       nearest_neighbors, preset_projection)
from ..analysis.words.vectors import WordVectors, corpus_file, training_counts
from ..errors import InterpError
from ..io import write_json
from ..results.words import EmbeddingReport, load_embedding_report, save_embedding_report, save_result

TOY_ANALOGIES = (("man", "king", "woman"), ("boy", "prince", "girl"), ("king", "queen", "prince"))
DEFAULT_ANALOGIES = (("man", "king", "woman"), ("man", "woman", "boy"), ("he", "she", "his"),
                     ("king", "queen", "lord"), ("france", "paris", "italy"), ("good", "better", "bad"))
DEFAULT_NEIGHBOR_WORDS = ("king", "queen", "man", "woman", "love", "good", "doctor", "nurse")


# --------------------------------------------------------------------- vectors


def load_vectors(run: str | None = None, vectors: str | None = None, *, limit: int = 0,
                 device: str = "cpu", download: bool = False) -> WordVectors:
    """``WordVectors`` from a run name/path, a vectors file or a named release (``glove-6B-50d``,
    fetched once with ``download``): what ``--run`` / ``--vectors`` pick."""
    from ..data.vectors import resolve_vectors

    if vectors:
        if run:
            raise InterpError("give either --run or --vectors, not both")
        return WordVectors.from_file(resolve_vectors(vectors, download_ok=download), limit=limit)
    if download:
        raise InterpError("--download applies to a named --vectors release (e.g. --vectors glove-6B-50d)")
    from ..runs import load_run

    return run_vectors(load_run(run if run is not None else latest_embedding_run(), device=device))


def run_vectors(run: Any) -> WordVectors:
    """A word2vec run's vectors, their training-text counts cached (:func:`cached_training_counts`).

    >>> run_vectors(interp.load_run("word2vec")).count("king")
    5
    """
    return WordVectors.from_run(run, count_loader=lambda: cached_training_counts(run.config))


COUNT_CACHE_BYTES = 2_000_000
"""Counts of training texts larger than this are cached: recounting text8 takes seconds."""


def _counts_cache(config) -> Path | None:
    """Where the counts of a run's (large) training text are cached, keyed by the file and the
    counting settings, so an edited text is counted again; None for small or missing texts."""
    from ..data.paths import cache_dir

    try:
        path = corpus_file(config.data.name)
    except InterpError:
        return None  # gone: training_counts says so
    if path is None or path.stat().st_size <= COUNT_CACHE_BYTES:
        return None
    stat, opts = path.stat(), config.model_config
    key = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, config.data.n_train,
                      int(opts.get("min_count", 1) or 1), bool(opts.get("stopwords", False))])
    return cache_dir() / f"word-counts-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def cached_training_counts(config) -> tuple[list[int] | None, str]:
    """:func:`~interp.analysis.words.vectors.training_counts`, read from ``$INTERP_CACHE_DIR``
    when counted before (large texts only); a cache that cannot be written is no error."""
    cache = _counts_cache(config)
    if cache is not None:
        try:
            data = json.loads(cache.read_text())
            if data["words"] == list(config.data.vocab):
                return [int(c) for c in data["counts"]], ""
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not cached yet, or damaged: count again
    counts, note = training_counts(config)
    if cache is not None and counts is not None:
        try:
            write_json(cache, {"words": list(config.data.vocab), "counts": counts})
        except OSError:
            pass
    return counts, note


def latest_embedding_run() -> Path:
    """The most recent word2vec run under ``models/``."""
    from ..runs import list_run_dirs, models_dir, read_config

    for path in reversed(list_run_dirs()):
        try:
            if read_config(path).task == "word-embedding":
                return path
        except InterpError:
            continue
    raise InterpError(f"no word2vec runs in {models_dir()}/; train one with `interp train word2vec`, "
                      f"or pass --vectors FILE (GloVe or word2vec text format)")


def vectors_folder(vectors: WordVectors, root: str | os.PathLike | None = None) -> Path:
    """``reports/RUN/embeddings`` (or ``reports/vectors-NAME/embeddings``): where results of these vectors go."""
    from ..runs import reports_dir

    return (Path(root) if root is not None else reports_dir()) / vectors.name / "embeddings"


# ------------------------------------------------------------ the report's set


def report_settings(vectors: WordVectors, *, neighbor_words: Sequence[str] | None = None,
                    analogies: Sequence[tuple[str, str, str]] | None = None, k: int = 8) -> dict:
    """What decides the report's set: the vectors themselves and the words asked for."""
    return {"vectors": vectors.fingerprint(), "neighbor_words": list(neighbor_words) if neighbor_words else None,
            "analogies": [list(a) for a in analogies] if analogies else None, "k": k}


def run_embedding_analyses(vectors: WordVectors, folder: str | os.PathLike | None = None, *,
                           neighbor_words: Sequence[str] | None = None,
                           analogies: Sequence[tuple[str, str, str]] | None = None,
                           k: int = 8) -> EmbeddingReport:
    """Compute and save the standard set (files under ``folder``, default ``reports/NAME/embeddings``).

    Writes ``summary.json`` listing the files; :func:`interp.results.words.load_embedding_report`
    reads it back.
    """
    folder = Path(folder) if folder is not None else vectors_folder(vectors)
    settings = report_settings(vectors, neighbor_words=neighbor_words, analogies=analogies, k=k)
    skipped: list[str] = []
    toy = len(vectors) < 200 and all(w in vectors for w in ("royal", "peasant", *PRESETS["royalty"].words))
    highlight = [w for w in PRESETS["royalty"].words if w in vectors]
    small_2d = vectors.dim == 2 and len(vectors) <= 120  # plot every word of a toy run
    emb = embedding_2d(vectors, list(vectors.words) if small_2d else None)
    plot = save_result(emb, folder, "plot-2d", highlight=highlight)["png"].name

    projection = None
    for name in (("royalty", "gender", "jobs") if toy else ("jobs", "gender", "royalty")):
        try:
            proj = preset_projection(vectors, name)
        except InterpError as e:
            skipped.append(f"preset {name}: {e}")
            continue
        if len(proj.words) >= 2:
            projection = save_result(proj, folder, f"axes-{name}")["json"].name
            break
        skipped.append(f"preset {name}: only {len(proj.words)} of its words are in the vocabulary")

    bias = None
    try:
        probe = bias_probe(vectors)
        if len(probe.words) >= 2:
            bias = save_result(probe, folder)["json"].name
        else:
            skipped.append(f"bias probe: only {len(probe.words)} occupation words in the vocabulary")
    except InterpError as e:
        skipped.append(f"bias probe: {e}")

    neighbor_files = []
    for word in neighbor_words or [w for w in (PRESETS["royalty"].words[:4] if toy else DEFAULT_NEIGHBOR_WORDS)
                                   if w in vectors] or default_plot_words(vectors, 4):
        metric = "euclidean" if vectors.dim == 2 else "cosine"
        neighbor_files.append(save_result(nearest_neighbors(vectors, word, k, metric=metric), folder)["json"].name)

    analogy_files = []
    for a, b, c in analogies or (TOY_ANALOGIES if toy else DEFAULT_ANALOGIES):
        if all(w in vectors for w in (a, b, c)):
            analogy_files.append(save_result(analogy(vectors, a, b, c, k=5), folder)["json"].name)
        else:
            skipped.append(f"analogy {a}:{b}::{c}:? (a word is not in the vocabulary)")

    report = EmbeddingReport(vectors.source, plot, projection, bias, neighbor_files, analogy_files,
                             skipped=skipped, settings=settings)
    save_embedding_report(report, folder)
    return report


def saved_embedding_analyses(vectors: WordVectors, folder: str | os.PathLike, **options) -> EmbeddingReport | None:
    """The set saved in ``folder`` when it was computed from these vectors with these
    ``options`` (those of :func:`run_embedding_analyses`) and all its files are there, else ``None``."""
    folder = Path(folder)
    try:
        report = load_embedding_report(folder)
    except InterpError:
        return None
    if report.settings != report_settings(vectors, **options):
        return None
    return report if all((folder / name).exists() for name in report.files()) else None


def ensure(ctx) -> None:
    """The report's embeddings page: compute the set into ``ctx.root/embeddings`` unless saved already."""
    run = ctx.run
    if run.config.task != "word-embedding":
        return
    vectors = run_vectors(run)
    folder = ctx.root / "embeddings"
    if saved_embedding_analyses(vectors, folder) is not None:
        return
    if ctx.log:
        ctx.log("embedding analyses ...")
    run_embedding_analyses(vectors, folder)


# ------------------------------------------------------------------------- demo


def demo_stage(ctx) -> None:
    """``interp demo``: the word2vec exercise on the toy corpus, then its plot, axes and tables."""
    from ..training.loop import train

    steps = "60" if ctx.quick else "300"
    run = train("word2vec", "toy-royalty", name="demo-word2vec", overwrite=True, device="cpu",
                progress=ctx.progress, epochs=4 if ctx.quick else 10, overrides={"steps_per_epoch": steps},
                log=None)
    vectors = run_vectors(run)
    report = run_embedding_analyses(vectors)
    near = nearest_neighbors(vectors, "king", 3, metric="euclidean")
    print(f"word2vec (d=2) on the toy corpus: pair loss {run.summary['pair_loss']:.3f}; "
          f"nearest to 'king': {', '.join(near.words)}")
    ctx.outputs["word2vec run"] = run.path
    ctx.outputs["word embedding plot"] = vectors_folder(vectors) / report.plot
