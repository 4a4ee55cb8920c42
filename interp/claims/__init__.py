"""Claim checks: published claims about what networks learn, checked on a model.

Each claim (Circuits thread, OpenAI Microscope, Transformer Circuits) is a check that runs
on a model and returns a verdict (supported / not supported / inconclusive, with the
reason) and its evidence: numbers, a per-unit table, the units found and data for figures.
Saving them (claims.json and the figures) is :mod:`interp.results.claims`'s job.

>>> from interp.claims import check_claims, list_claims
>>> [c.id for c in list_claims()]
>>> results = check_claims(interp.load_run("tutorial"))        # every claim that applies
>>> results[0].verdict
Verdict(status='supported', reason='4 of 6 conv1 filters are Gabor-like ...')
>>> interp.results.save(ClaimSet(results), "reports/tutorial/claims")
>>> check_claims(model_run(my_net, input_shape=(3, 64, 64)), ["curve-detectors"])   # any conv net

Modules: :mod:`.registry` (claims, results, options), :mod:`.evidence` (what the vision
claims share: sampled images, the pooled null of unit-level claims), :mod:`.first_layer`,
:mod:`.curves`, :mod:`.layer_statistics`, :mod:`.inception`, :mod:`.transformers`,
:mod:`.clever_hans`, :mod:`.cue_token`, :mod:`.seeds` (agreement across training seeds).
Verdicts only: what they measure lives in :mod:`interp.analysis` (e.g. the Clever Hans
perturbations in :mod:`interp.analysis.vision.shortcuts`) and :mod:`interp.stats`.
"""

from __future__ import annotations

from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, ClaimSet, Verdict,
                       check_claims, get_claim, list_claims, model_run)

__all__ = ["INCONCLUSIVE", "NOT_SUPPORTED", "SUPPORTED", "CheckOptions", "Claim", "ClaimResult", "ClaimSet",
           "Verdict", "check_claims", "get_claim", "list_claims", "model_run"]
