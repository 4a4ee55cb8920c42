"""Claims for the report and the demo: check them when none are saved, and save them.

:func:`ensure` is the report's step (:mod:`interp.pipelines.report`): when the report
folder has no ``claims/claims.json`` it checks every claim that applies, with a small
null ensemble to keep a report quick, and saves them where the claims page reads them
(``interp claims check`` gives the full check and adds to the same file).
:func:`demo_stage` is ``interp demo``'s claims stage.

>>> ensure(ReportContext(run=run, root=Path("reports/tutorial")))   # reports/tutorial/claims/claims.json
"""

from __future__ import annotations

from ..claims.registry import CheckOptions, check_claims
from ..results.claims import RESULTS_FILE, claims_dir, save_claims
from ..terminal import claims_table

REPORT_NULL_MODELS = 8
"""Fewer than ``interp claims check``'s defaults (32 for unit-level claims) to keep a report quick; the page
says how many each verdict used (with fewer copies chance is bounded less tightly, so fewer verdicts are "supported")."""
REPORT_MAX_IMAGES = 500
REPORT_TASKS = ("image-classification", "language-model")
"""The tasks some claim applies to; other runs get no claims page."""


def ensure(ctx) -> None:
    """Check and save the run's claims under ``ctx.root/claims`` unless some are saved already.

    ``ctx`` is a :class:`interp.report.ReportContext`. Saved results are kept whatever their
    settings: the report shows what ``interp claims check`` saved rather than re-checking.
    """
    if ctx.run.config.task not in REPORT_TASKS:
        return
    folder = ctx.root / "claims"
    if (folder / RESULTS_FILE).exists():
        return
    if ctx.log:
        ctx.log("checking claims ...")
    options = CheckOptions(device=ctx.device, progress=ctx.progress, seed=ctx.seed,
                           null_models=REPORT_NULL_MODELS, max_images=REPORT_MAX_IMAGES)
    save_claims(check_claims(ctx.run, options=options), folder)


def demo_stage(ctx) -> None:
    """``interp demo``: check the claims that apply to the demo's trained net, print a table, save them.

    ``ctx`` is :class:`interp.pipelines.demo.DemoContext`; the results go to reports/RUN/claims/,
    where the report's claims page reads them.
    """
    options = CheckOptions(device=ctx.device, progress=ctx.progress, null_models=8 if ctx.quick else None,
                           max_images=300 if ctx.quick else 1000)
    log = print if ctx.progress else None
    results = check_claims(ctx.run, options=options, log=log)
    print(claims_table(results))
    path = save_claims(results, claims_dir(ctx.run))
    ctx.outputs["claims"] = path
    ctx.extra["claims"] = results
