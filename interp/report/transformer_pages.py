"""The transformer page of a language-model run, in the style of the Transformer Circuits
thread: a sample, head scores (previous-token, induction, duplicate, first-token), attention
patterns, loss by position and the in-context-learning score, OV copying and Q/K/V
composition against random baselines, the logit lens and direct logit attribution,
head ablations, and the training dynamics of the head scores.

It only reads what :func:`interp.pipelines.language.ensure` (or the transformer commands)
saved under ``transformer/``; a result that is missing is left out.
"""

from __future__ import annotations

from ..errors import InterpError
from ..results import language as saved
from .registry import ReportContext, Section


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    if run.config.task != "language-model":
        return
    folder = ctx.root / saved.FOLDER

    def load(reader, stem):
        """The saved result, or None when it is missing or unreadable (the page leaves it out)."""
        if not (folder / f"{stem}.json").is_file():
            return None
        try:
            return reader(folder / f"{stem}.json")
        except (InterpError, KeyError, TypeError, ValueError):
            return None

    def png(name):
        return f"{saved.FOLDER}/{name}.png" if (folder / f"{name}.png").exists() else None

    page = ctx.page("transformer.html", "Attention heads and circuits", breadcrumbs=[(run.name, "index.html")],
                    subtitle=f"{run.config.model} · {run.config.data.name}")
    ctx.nav.append(("Heads & circuits", "transformer.html"))
    ctx.page("index.html").add(Section("transformer-link", "Attention heads and circuits", "link.html", {
        "href": "transformer.html", "text": "Head scores, attention patterns, composition, logit lens, ablations"},
        order=35))

    sample = load(saved.load_sample, "sample")
    if sample:
        page.add(Section("sample", "A sample", "transformer_sample.html", {"text": sample.text}, order=5))
    heads = load(saved.load_head_scores, "heads")
    if heads:
        page.add(Section("heads", "Head scores", "transformer_heads.html", {
            "rows": heads.rows(), "names": list(heads.scores), "image": png("heads"),
            "n_sequences": heads.n_sequences, "seq_len": heads.seq_len}, order=10))
    if png("dynamics"):
        page.add(Section("dynamics", "Training dynamics", "figure.html", {
            "image": png("dynamics"),
            "caption": "Head scores recorded after every epoch: an induction head forms in a phase change."},
            order=15))
    if png("attention"):
        page.add(Section("attention", "Attention patterns", "figure.html", {
            "image": png("attention"), "caption": "Every head's attention on one prompt (rows: queries, "
                                                   "columns: keys)."}, order=20))
    position = load(saved.load_position_loss, "position_loss")
    if position:
        page.add(Section("position", "Loss by position and in-context learning", "transformer_position.html", {
            "image": png("position_loss"), "icl": position.icl_score, "early": list(position.early),
            "late": list(position.late)}, order=30))
    circuits = load(saved.load_circuit_scores, "circuits")
    if circuits:
        page.add(Section("circuits", "OV copying and composition", "transformer_circuits.html", {
            "image": png("circuits"), "heads": circuits.heads,
            "copying": circuits.copying.flatten().tolist(),  # (layers, heads) -> heads order
            "baseline": circuits.baseline}, order=40))
    if png("lens"):
        page.add(Section("lens", "Logit lens and direct logit attribution", "transformer_lens.html", {
            "lens": png("lens"), "dla": png("dla")}, order=50))
    ablations = [a for a in (load(saved.load_ablation, "ablation_zero"), load(saved.load_ablation, "ablation_mean"))
                 if a]
    if ablations:
        page.add(Section("ablation", "Head ablation", "transformer_ablation.html", {
            "ablations": [{"kind": a.kind, "base_loss": a.base_loss, "rows": _ablation_rows(a)} for a in ablations],
            "images": [p for p in (png("ablation_zero"), png("ablation_mean")) if p]}, order=60))


def _ablation_rows(ablation) -> list[dict]:
    """One row per ablated head, the most harmful ablation first."""
    rows = [{"head": r["head"], "loss": r["loss"], "change": r["delta"]} for r in ablation.rows()]
    return sorted(rows, key=lambda r: -r["change"])
