"""Claim checks: published claims about what networks learn, checked on a model.

Each claim (Circuits thread, OpenAI Microscope, Transformer Circuits) is a check that runs
on a model and returns a verdict (supported / not supported / inconclusive, with the
reason) and its evidence: numbers, a per-unit table, the units found and figures.

>>> from interp.claims import check_claims, list_claims, save_claims
>>> [c.id for c in list_claims()]
>>> results = check_claims(interp.load_run("tutorial"))        # every claim that applies
>>> results[0].verdict
Verdict(status='supported', reason='4 of 6 conv1 filters are Gabor-like ...')
>>> save_claims(results, "reports/tutorial/claims")
>>> check_claims(model_run(my_net, input_shape=(3, 64, 64)), ["curve-detectors"])   # any conv net

Modules: :mod:`.registry` (claims, results, saving), :mod:`.stimuli` (gratings, curves,
high-low boundaries), :mod:`.vision`, :mod:`.inception`, :mod:`.transformers`,
:mod:`.clever_hans`.
"""

from __future__ import annotations

from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, Verdict,
                       check_claims, claims_dir, get_claim, list_claims, load_claims, model_run, save_claims)

__all__ = ["INCONCLUSIVE", "NOT_SUPPORTED", "SUPPORTED", "CheckOptions", "Claim", "ClaimResult", "Verdict",
           "check_claims", "claims_dir", "demo_stage", "get_claim", "list_claims", "load_claims", "model_run",
           "save_claims"]


def demo_stage(ctx) -> None:
    """``interp demo``: check the claims that apply to the demo's trained net, print a table, save them.

    ``ctx`` is :class:`interp.pipelines.demo.DemoContext`; the results go to reports/RUN/claims/,
    where the report's claims page reads them.
    """
    from .registry import results_table

    options = CheckOptions(device=ctx.device, progress=ctx.progress, null_models=8 if ctx.quick else None,
                           max_images=300 if ctx.quick else 1000)
    log = print if ctx.progress else None
    results = check_claims(ctx.run, options=options, log=log)
    print(results_table(results))
    path = save_claims(results, claims_dir(ctx.run))
    ctx.outputs["claims"] = path
    ctx.extra["claims"] = results
