"""The embeddings page of a word2vec run: the 2-D plot, an axes projection, the bias
probe, neighbour and analogy tables (each analogy in both rankings, query words left out
and not, with the note when the exclusion made the answer, and rare-word warnings), and a
note on correlation against causation."""

from __future__ import annotations

import json

from .registry import ReportContext, Section


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    if run.config.task != "word-embedding":
        return
    from ..analysis.words.embeddings import WordVectors, run_embedding_analyses

    folder = ctx.root / "embeddings"
    if not (folder / "summary.json").exists():
        if ctx.log:
            ctx.log("embedding analyses ...")
        run_embedding_analyses(WordVectors.from_run(run), folder)
    summary = json.loads((folder / "summary.json").read_text())

    def load(name):
        return json.loads((folder / name).read_text()) if name else None

    def png(name):
        return f"embeddings/{name[:-5]}.png" if name and (folder / f"{name[:-5]}.png").exists() else None

    page = ctx.page("embeddings.html", "Word embeddings", breadcrumbs=[(run.name, "index.html")],
                    subtitle=f"{len(run.config.data.vocab)} words · {summary['source']}")
    ctx.nav.append(("Embeddings", "embeddings.html"))
    page.add(Section("plot", "The embedding in two dimensions", "embedding_plot.html",
                     {"image": f"embeddings/{summary['plot']}"}, order=10))
    if summary.get("projection"):
        page.add(Section("axes", "Words on axes defined by word pairs", "embedding_axes.html",
                         {"result": load(summary["projection"]), "image": png(summary["projection"])}, order=20))
    if summary.get("bias"):
        page.add(Section("bias", "Bias probe: occupations on the she-he axis", "embedding_bias.html",
                         {"result": load(summary["bias"]), "image": png(summary["bias"])}, order=30))
    analogies = [load(a) for a in summary["analogies"]]
    # A warning every analogy carries (a small vocabulary) is said once, above the table.
    shared = [w for w in (analogies[0].get("warnings") or [])
              if all(w in (a.get("warnings") or []) for a in analogies[1:])] if len(analogies) > 1 else []
    for a in analogies:
        a["own_warnings"] = [w for w in a.get("warnings") or [] if w not in shared]
    page.add(Section("tables", "Neighbours and analogies", "embedding_tables.html", {
        "neighbors": [load(n) for n in summary["neighbors"]],
        "analogies": analogies,
        "shared_warnings": shared,
        "skipped": summary.get("skipped", []),
    }, order=40))
    page.add(Section("caveat", "Correlation, not causation", "embedding_note.html", {"note": summary["note"]},
                     order=50))
    ctx.page("index.html").add(Section("embeddings-link", "Word embeddings", "link.html", {
        "href": "embeddings.html", "text": "The embedding, its axes, analogies and neighbours"}, order=35))
