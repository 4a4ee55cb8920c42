"""Attribution in the report: a gallery and trust checks on their own page, and on each
unit page the classes the unit contributes to (Captum, see :mod:`interp.analysis.attribution`).

Rendering only: the results are read from the report folder's ``attribution/`` through
:mod:`interp.results.attribution`; :func:`interp.pipelines.attribution.ensure` computes
the missing ones before the report renders. A result that is not there is left out.
"""

from __future__ import annotations

from ..results.attribution import (
    class_unit_summary_paths, gallery_figure_name, load_class_unit_summary, load_gallery, load_trust, trust_paths,
)
from .registry import ReportContext, Section


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    if run.config.task != "image-classification" or not run.layers:
        return
    folder = ctx.root / "attribution"
    gallery_json = folder / "gallery" / "gallery.json"
    trust = trust_paths(folder)
    if gallery_json.exists() or trust["json"].exists():
        page = ctx.page("attribution.html", "Attribution", breadcrumbs=[(run.name, "index.html")],
                        subtitle="What the model used for its decisions, and how far each map can be trusted.")
        ctx.nav.append(("Attribution", "attribution.html"))
        if gallery_json.exists():
            page.add(gallery_section(load_gallery(gallery_json).to_dict()))
        if trust["json"].exists():
            page.add(Section("trust", "How far to trust the maps", "attribution_trust.html", {
                "trust": load_trust(trust["json"]).to_dict(),
                "files": {k: f"attribution/{p.name}" for k, p in trust.items() if k.endswith("_png")},
            }, order=45))

    output_layer = run.layers[-1].name
    for info in run.layers:
        if info.name == output_layer or (ctx.layers and info.name not in ctx.layers):
            continue
        paths = class_unit_summary_paths(folder, info.name)
        if not paths["json"].exists():
            continue
        summary = load_class_unit_summary(paths["json"]).to_dict()
        for unit in range(info.units):
            classes = summary["by_unit"].get(f"{info.name}:{unit}", [])[:5]
            if classes:
                ctx.page(f"{info.name}/{unit}.html").add(Section(
                    "classes", "Classes this unit contributes to", "unit_classes.html",
                    {"classes": classes, "method": summary["captum"]}, order=70))
        layer_page = ctx.page(f"{info.name}/index.html")
        layer_page.add(Section("class-units", "Which units make each class", "class_units.html", {
            "by_class": summary["by_class"], "layer": info.name, "method": summary["captum"],
            "figure": f"attribution/{paths['png'].name}",
        }, order=80))


def gallery_section(gallery: dict) -> Section:
    """The gallery's section: per class, its figure (``attribution/gallery/CLASS.png``) and the predictions."""
    return Section("attribution", "Attribution gallery", "attribution_gallery.html", {
        "methods": [gallery["method_titles"].get(m, m) for m in gallery["methods"]],
        "entries": [{**e, "figure": f"attribution/gallery/{gallery_figure_name(e['class_name'])}"}
                    for e in gallery["entries"]],
    }, order=40)
