"""The report's attribution results, computed where missing (``ensure(ctx)``).

For an image classifier: the gallery (one test image per class, every method), the
trust checks on a small sample, and for every layer but the output the class-to-unit
summary, saved under ``REPORT/attribution/`` by :mod:`interp.results.attribution`. A
result already there is reused whatever its settings, so ``interp attribute gallery``
(or ``attribute trust``, ``attribute units``) output in the report folder is what the
report shows; nothing saved is overwritten.

>>> ensure(ReportContext(run=run, root=run.report_dir()))   # then interp.report.render_report(ctx)
"""

from __future__ import annotations

from typing import Any

from ..analysis.attribution.gallery import attribution_gallery
from ..analysis.attribution.trust import trust_report
from ..analysis.attribution.units import class_unit_summary
from ..results.attribution import (
    class_unit_summary_paths, save_class_unit_summary, save_gallery, save_trust, trust_paths,
)

GALLERY_PER_CLASS = 1
TRUST_SAMPLE = 8
UNIT_SUMMARY_PER_CLASS = 4
STEPS = 32


def summary_layers(run: Any, layers: list[str] | None = None) -> list[str]:
    """The layers that get a class-to-unit summary: all but the output, within ``layers`` when given."""
    if not run.layers:
        return []
    output = run.layers[-1].name
    return [info.name for info in run.layers if info.name != output and (not layers or info.name in layers)]


def ensure(ctx: Any) -> None:
    """Compute and save the gallery, trust checks and class-to-unit summaries the report lacks."""
    run = ctx.run
    if run.config.task != "image-classification" or not run.layers:
        return
    folder = ctx.root / "attribution"
    log = ctx.log or (lambda text: None)
    loaded: list = []

    def test_data():  # loaded once, and only when something is missing
        if not loaded:
            loaded.append(run.load_data(progress=ctx.progress, split="test"))
        return loaded[0]

    if not (folder / "gallery" / "gallery.json").exists():
        log("attribution gallery ...")
        save_gallery(attribution_gallery(run, per_class=GALLERY_PER_CLASS, data=test_data(), steps=STEPS,
                                         seed=ctx.seed, progress=ctx.progress), folder / "gallery")
    if not trust_paths(folder)["json"].exists():
        log("attribution trust checks ...")
        save_trust(trust_report(run, sample=TRUST_SAMPLE, data=test_data(), seed=ctx.seed, steps=STEPS,
                                progress=ctx.progress), folder)
    for layer in summary_layers(run, ctx.layers):
        if not class_unit_summary_paths(folder, layer)["json"].exists():
            save_class_unit_summary(class_unit_summary(run, layer, per_class=UNIT_SUMMARY_PER_CLASS, data=test_data(),
                                                       steps=STEPS, seed=ctx.seed, progress=ctx.progress), folder)
