"""The ``cue-token`` claim: does a language model's behaviour hinge on one suspected token?

The text analogue of the Clever Hans check (:mod:`.clever_hans`): replace the cue token
(given by the user, ``--cue``) in the run's own sequences and measure how much the
next-token predictions change (KL), against replacing other tokens (placebos); the
measurement is :func:`interp.analysis.language.replacement.cue_effect`.

>>> check_claims(load_run("gpt"), ["cue-token"], cue="e")[0].numbers["cue_effect"]
"""

from __future__ import annotations

import torch

from ..analysis.language.replacement import cue_effect
from ..stats import headline
from .registry import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim, run_kind


def _applies_language(run) -> str | None:
    return None if run_kind(run) == "transformer" else "the check is for language-model runs"


def _text_tokens(run, options: CheckOptions) -> torch.Tensor:
    from ..analysis.language.tokens import run_vocabulary, task_tokens

    if run_vocabulary(run).is_char:
        from ..data.text import load_char_corpus, random_windows

        corpus = load_char_corpus(run.config.data.name, progress=options.progress)
        return random_windows(corpus.val, 128, run.config.model_config["block_size"] - 1,
                              torch.Generator().manual_seed(options.seed))
    return task_tokens(run, 128, seed=options.seed)


def check_cue_token(run, options: CheckOptions) -> ClaimResult:
    claim = CUE_TOKEN
    if not options.cue:
        return claim.result(INCONCLUSIVE, "no suspected cue token given; pass one with --cue TOKEN (Python: cue=...)")
    run.model.eval()
    tokens = _text_tokens(run, options)
    result = cue_effect(run, options.cue, tokens, seed=options.seed)
    placebo = [v for v in result.placebo.values() if v == v]
    null = claim.thresholds["factor"] * max(placebo) if placebo else float("nan")
    rows = [{"token": options.cue, "kl_after_replacing": round(result.effect, 5), "cue": True}]
    rows += [{"token": t, "kl_after_replacing": round(v, 5), "cue": False} for t, v in result.placebo.items()]
    floor = claim.thresholds["min_effect"]
    supported = bool(placebo) and result.effect > null and result.effect >= floor
    evidence = dict(layer="input tokens", table=rows, found=[options.cue] if supported else [],
                    numbers={"cue_effect": round(result.effect, 5), "placebo_max": round(max(placebo, default=0), 5),
                             "sequences_with_cue": result.sequences},
                    headline=headline(f"KL change of the predictions when {options.cue!r} is replaced", result.effect,
                                      (float("nan"), float("nan")), null=null if placebo else None,
                                      n=result.sequences, over="sequences (no interval: one pooled effect)",
                                      null_what=f"{claim.thresholds['factor']}x the largest of {len(placebo)} other "
                                                f"tokens' effects (placebos)", level=None),
                    data={"effects": {r["token"]: r["kl_after_replacing"] for r in rows}})
    factor = claim.thresholds["factor"]
    if supported:
        return claim.result(SUPPORTED, f"replacing {options.cue!r} changes the predictions by {result.effect:.3f} "
                            f"nats (KL), more than {factor}x the largest effect of replacing one of {len(placebo)} "
                            f"other tokens ({max(placebo):.3f})", **evidence)
    return claim.result(NOT_SUPPORTED, f"replacing {options.cue!r} changes the predictions by {result.effect:.3f} "
                        f"nats (KL), not clearly more than other tokens (up to {max(placebo, default=0):.3f}) or "
                        f"below {floor}", **evidence)


CUE_TOKEN = register_claim(Claim(
    id="cue-token",
    statement="The language model's predictions hinge on a suspected cue token: replacing it changes them more "
              "than replacing other tokens.",
    source="Lapuschkin et al. 2019 (Clever Hans), applied to tokens; the cue comes from the user",
    url="https://www.nature.com/articles/s41467-019-08987-4",
    applies_to="language-model runs, with a cue token (--cue)",
    kind="transformer",
    thresholds={"min_effect": 0.01, "factor": 1.5,
                "null": "factor x the largest effect of replacing one of 8 other tokens (placebos)"},
    check=check_cue_token, applies=_applies_language, on_request=True,
))
