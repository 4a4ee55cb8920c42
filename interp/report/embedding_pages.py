"""The embeddings page of a word2vec run: the 2-D plot, an axes projection, the bias
probe, neighbour and analogy tables (each analogy in both rankings, query words left out
and not, with the note when the exclusion made the answer, and rare-word warnings), and a
note on correlation against causation.

It reads the set saved under ``embeddings/`` (``summary.json`` and the results it lists,
computed by :func:`interp.pipelines.words.ensure`); it computes nothing. Without a saved
set the run's page says which command makes it.
"""

from __future__ import annotations

from dataclasses import asdict

from ..errors import InterpError
from ..results.words import load_embedding_report, load_result, png_of
from .registry import ReportContext, Section


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    if run.config.task != "word-embedding":
        return
    folder = ctx.root / "embeddings"
    try:
        summary = load_embedding_report(folder)
    except InterpError:
        ctx.page("index.html").add(Section("embeddings-link", "Word embeddings", "embedding_note.html", {
            "note": f"The embedding analyses are not computed yet: interp report --run {run.name}"}, order=35))
        return

    def load(name):
        # Templates read plain dicts (older saved files may lack newer fields: they get the defaults).
        return asdict(load_result(folder / name)) if name else None

    def png(name):
        return f"embeddings/{png_of(folder / name).name}" if name and png_of(folder / name) else None

    page = ctx.page("embeddings.html", "Word embeddings", breadcrumbs=[(run.name, "index.html")],
                    subtitle=f"{len(run.config.data.vocab)} words · {summary.source}")
    ctx.nav.append(("Embeddings", "embeddings.html"))
    page.add(Section("plot", "The embedding in two dimensions", "embedding_plot.html",
                     {"image": f"embeddings/{summary.plot}"}, order=10))
    if summary.projection:
        page.add(Section("axes", "Words on axes defined by word pairs", "embedding_axes.html",
                         {"result": load(summary.projection), "image": png(summary.projection)}, order=20))
    if summary.bias:
        page.add(Section("bias", "Bias probe: occupations on the she-he axis", "embedding_bias.html",
                         {"result": load(summary.bias), "image": png(summary.bias)}, order=30))
    analogies = [load(a) for a in summary.analogies]
    # A warning every analogy carries (a small vocabulary) is said once, above the table.
    shared = [w for w in (analogies[0].get("warnings") or [])
              if all(w in (a.get("warnings") or []) for a in analogies[1:])] if len(analogies) > 1 else []
    for a in analogies:
        a["own_warnings"] = [w for w in a.get("warnings") or [] if w not in shared]
    page.add(Section("tables", "Neighbours and analogies", "embedding_tables.html", {
        "neighbors": [load(n) for n in summary.neighbors],
        "analogies": analogies,
        "shared_warnings": shared,
        "skipped": summary.skipped,
    }, order=40))
    page.add(Section("caveat", "Correlation, not causation", "embedding_note.html", {"note": summary.note},
                     order=50))
    ctx.page("index.html").add(Section("embeddings-link", "Word embeddings", "link.html", {
        "href": "embeddings.html", "text": "The embedding, its axes, analogies and neighbours"}, order=35))
