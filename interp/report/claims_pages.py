"""The claims page: each Circuits / Microscope / Transformer Circuits claim checked on the
run, with its verdict, reason, thresholds, evidence table and figures.

Claims are checked when the report has no saved results (``claims/claims.json``, also
written by ``interp claims check`` and the demo), with a small null ensemble to keep a
report quick; ``interp claims check`` gives the full check.
"""

from __future__ import annotations

from .registry import ReportContext, Section

REPORT_NULL_MODELS = 8
"""Fewer than ``interp claims check``'s defaults (32 for unit-level claims) to keep a report quick; the page
says how many each verdict used (with fewer copies chance is bounded less tightly, so fewer verdicts are "supported")."""
REPORT_MAX_IMAGES = 500


def _sample_text(numbers: dict) -> str:
    """The class balance of a data-based check's image sample, as one line ("" when it used none)."""
    counts = numbers.get("class_counts")
    if not isinstance(counts, dict) or not counts:
        return ""
    listed = ", ".join(f"{k} {v}" for k, v in counts.items())
    return f"{sum(counts.values())} test images, {len(counts)} classes, stratified: {listed}"


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    if run.config.task not in ("image-classification", "language-model"):
        return
    from ..claims.registry import CheckOptions, check_claims, load_claims, save_claims

    folder = ctx.root / "claims"
    if not (folder / "claims.json").exists():
        if ctx.log:
            ctx.log("checking claims ...")
        options = CheckOptions(device=ctx.device, progress=ctx.progress, seed=ctx.seed,
                               null_models=REPORT_NULL_MODELS, max_images=REPORT_MAX_IMAGES)
        save_claims(check_claims(run, options=options), folder)
    results = [r.to_dict() for r in load_claims(folder)]
    if not results:
        return
    earlier = [r.to_dict() for r in load_claims(folder, earlier=True)]
    for r in results + earlier:
        r["figures"] = {name: f"claims/{file}" for name, file in r.get("figures", {}).items()}
        r["css"] = r["verdict"]["status"].replace(" ", "-")
        r["columns"] = list(r["table"][0]) if r.get("table") else []
        r["sample"] = _sample_text(r.get("numbers", {}))
    for r in results:
        r["earlier"] = [e for e in earlier if e["claim"] == r["claim"]]
    page = ctx.page("claims.html", "Claims", breadcrumbs=[(run.name, "index.html")],
                    subtitle="Published findings tested on this model: a verdict, its reason and the evidence.")
    ctx.nav.append(("Claims", "claims.html"))
    page.add(Section("summary", "Verdicts", "claims_summary.html", {"results": results}, order=5))
    for i, r in enumerate(results):  # in the order they were checked, as in the summary table
        page.add(Section(f"claim-{r['claim']}", r["claim"], "claim.html", {"r": r}, order=10 + i))
    counts = {}
    for r in results:
        counts[r["verdict"]["status"]] = counts.get(r["verdict"]["status"], 0) + 1
    ctx.page("index.html").add(Section("claims-link", "Claims", "link.html", {
        "href": "claims.html",
        "text": "Claims checked: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))}, order=36))
