"""The transformer page of a language-model run, in the style of the Transformer Circuits
thread: a sample, head scores (previous-token, induction, duplicate, first-token), attention
patterns, loss by position and the in-context-learning score, OV copying and Q/K/V
composition against random baselines, the logit lens and direct logit attribution,
head ablations, and the training dynamics of the head scores."""

from __future__ import annotations

import json

from .registry import ReportContext, Section

SAMPLE_TOKENS = 300


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    if run.config.task != "language-model":
        return
    from ..cli.transformers import save_transformer_results

    folder = ctx.root / "transformer"
    if not (folder / "heads.json").exists():
        if ctx.log:
            ctx.log("transformer analyses (heads, attention, lens, composition, ablation) ...")
        save_transformer_results(run, out_dir=folder)

    def load(name):
        path = folder / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def png(name):
        return f"transformer/{name}.png" if (folder / f"{name}.png").exists() else None

    page = ctx.page("transformer.html", "Attention heads and circuits", breadcrumbs=[(run.name, "index.html")],
                    subtitle=f"{run.config.model} · {run.config.data.name}")
    ctx.nav.append(("Heads & circuits", "transformer.html"))
    ctx.page("index.html").add(Section("transformer-link", "Attention heads and circuits", "link.html", {
        "href": "transformer.html", "text": "Head scores, attention patterns, composition, logit lens, ablations"},
        order=35))

    sample = _sample(run, ctx.seed)
    if sample:
        page.add(Section("sample", "A sample", "transformer_sample.html", {"text": sample}, order=5))

    from ..analysis.language.heads import HeadScores

    heads = HeadScores.from_json(load("heads"))
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
    position = load("position_loss")
    if position:
        page.add(Section("position", "Loss by position and in-context learning", "transformer_position.html", {
            "image": png("position_loss"), "icl": position["icl_score"], "early": position["early"],
            "late": position["late"]}, order=30))
    circuits = load("circuits")
    if circuits:
        page.add(Section("circuits", "OV copying and composition", "transformer_circuits.html", {
            "image": png("circuits"), "heads": circuits["heads"],
            "copying": [v for layer in circuits["copying"] for v in layer],  # (layers, heads) -> heads order
            "baseline": circuits["baseline"]}, order=40))
    if png("lens"):
        page.add(Section("lens", "Logit lens and direct logit attribution", "transformer_lens.html", {
            "lens": png("lens"), "dla": png("dla")}, order=50))
    ablations = [a for a in (load("ablation_zero"), load("ablation_mean")) if a]
    if ablations:
        page.add(Section("ablation", "Head ablation", "transformer_ablation.html", {
            "ablations": [{**a, "rows": _ablation_rows(a)} for a in ablations],
            "images": [p for p in (png("ablation_zero"), png("ablation_mean")) if p]}, order=60))


def _ablation_rows(ablation: dict) -> list[dict]:
    rows = []
    for layer, heads in enumerate(ablation["ablated"]):
        for head, loss in enumerate(heads):
            rows.append({"head": f"L{layer}H{head}", "loss": loss, "change": loss - ablation["base_loss"]})
    return sorted(rows, key=lambda r: -r["change"])


def _sample(run, seed: int) -> str | None:
    """A short generated sample for character-level runs (token tasks have nothing to read)."""
    import torch

    from ..analysis.language.heads import run_vocabulary

    vocab = run_vocabulary(run)
    if not vocab.is_char:
        return None
    start = torch.tensor([[vocab.tokens.index("\n") if "\n" in vocab.tokens else 0]], device=run.device)
    g = torch.Generator().manual_seed(seed)
    out = run.model.generate(start, SAMPLE_TOKENS, temperature=0.8, generator=g)
    return vocab.decode(out[0].cpu())
