"""The claims page: each Circuits / Microscope / Transformer Circuits claim checked on the
run, with its verdict, reason, thresholds, evidence table and figures.

It only reads the saved results (``claims/claims.json``, written by ``interp claims check``,
the demo, and the report pipeline's :func:`interp.pipelines.claims.ensure` when none are
saved); without them the run gets no claims page.
"""

from __future__ import annotations

from ..results.claims import RESULTS_FILE, load_claim_set
from .registry import ReportContext, Section


def _sample_text(numbers: dict) -> str:
    """The class balance of a data-based check's image sample, as one line ("" when it used none)."""
    counts = numbers.get("class_counts")
    if not isinstance(counts, dict) or not counts:
        return ""
    listed = ", ".join(f"{k} {v}" for k, v in counts.items())
    return f"{sum(counts.values())} test images, {len(counts)} classes, stratified: {listed}"


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    folder = ctx.root / "claims"
    if not (folder / RESULTS_FILE).is_file():
        return
    saved = load_claim_set(folder)
    results = [r.to_dict() for r in saved.results]
    if not results:
        return
    earlier = [r.to_dict() for r in saved.earlier]
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
