"""Attribution in the report: a gallery and trust checks on their own page, and on each
unit page the classes the unit contributes to (Captum, see :mod:`interp.analysis.attribution.methods`).

Results are computed only when missing from the report folder (``attribution/``), so a
report re-render reuses them, and ``interp attribute-gallery`` output is picked up.
"""

from __future__ import annotations

import json

from .registry import ReportContext, Section

GALLERY_PER_CLASS = 1
TRUST_SAMPLE = 8
UNIT_SUMMARY_PER_CLASS = 4
STEPS = 32


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    if run.config.task != "image-classification" or not run.layers:
        return
    folder = ctx.root / "attribution"
    page = ctx.page("attribution.html", "Attribution", breadcrumbs=[(run.name, "index.html")],
                    subtitle="What the model used for its decisions, and how far each map can be trusted.")
    ctx.nav.append(("Attribution", "attribution.html"))
    gallery_json = folder / "gallery" / "gallery.json"
    if not gallery_json.exists():
        from ..analysis.attribution.methods import attribution_gallery

        if ctx.log:
            ctx.log("attribution gallery ...")
        attribution_gallery(run, per_class=GALLERY_PER_CLASS, directory=folder / "gallery", steps=STEPS,
                            seed=ctx.seed, progress=ctx.progress)
    gallery = json.loads(gallery_json.read_text())
    page.add(Section("attribution", "Attribution gallery", "attribution_gallery.html", {
        "methods": [gallery["method_titles"][m] for m in gallery["methods"]],
        "entries": [{**e, "figure": f"attribution/gallery/{e['figure']}"} for e in gallery["entries"]],
    }, order=40))

    trust_json = folder / "trust.json"
    if not trust_json.exists():
        from ..analysis.attribution.trust import save_trust, trust_report

        if ctx.log:
            ctx.log("attribution trust checks ...")
        save_trust(trust_report(run, sample=TRUST_SAMPLE, seed=ctx.seed, steps=STEPS, progress=ctx.progress),
                   folder)
    trust = json.loads(trust_json.read_text())
    page.add(Section("trust", "How far to trust the maps", "attribution_trust.html", {
        "trust": trust, "files": {k: f"attribution/{v}" for k, v in trust.get("files", {}).items()},
    }, order=45))

    from ..analysis.attribution.units import class_unit_summary, save_class_unit_summary

    output_layer = run.layers[-1].name
    for info in run.layers:
        if info.name == output_layer or (ctx.layers and info.name not in ctx.layers):
            continue
        summary_json = folder / f"class-units-{info.name}.json"
        if not summary_json.exists():
            save_class_unit_summary(class_unit_summary(run, info.name, per_class=UNIT_SUMMARY_PER_CLASS,
                                                       steps=STEPS, seed=ctx.seed, progress=ctx.progress), folder)
        summary = json.loads(summary_json.read_text())
        for unit in range(info.units):
            classes = summary["by_unit"].get(f"{info.name}:{unit}", [])[:5]
            if classes:
                ctx.page(f"{info.name}/{unit}.html").add(Section(
                    "classes", "Classes this unit contributes to", "unit_classes.html",
                    {"classes": classes, "method": summary["captum"]}, order=70))
        layer_page = ctx.page(f"{info.name}/index.html")
        layer_page.add(Section("class-units", "Which units make each class", "class_units.html", {
            "by_class": summary["by_class"], "layer": info.name, "method": summary["captum"],
            "figure": f"attribution/class-units-{info.name}.png",
        }, order=80))
