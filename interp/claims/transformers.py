"""Transformer claims from "A Mathematical Framework for Transformer Circuits" and "In-context Learning
and Induction Heads" (Elhage et al. 2021, Olsson et al. 2022), checked on our ``attn-only``/``gpt`` runs.

- ``induction-k-composition``: a 2-layer attention-only model trained on the induction
  task has an induction head in layer 1 that K-composes with a previous-token head in
  layer 0, and ablating it removes the in-context gain;
- ``no-induction-one-layer``: a 1-layer attention-only model has no induction head;
- ``copying-ov-positive``: heads that copy have OV circuits with positive eigenvalues.

The measurements come from :mod:`interp.analysis.language.heads` (head scores),
:mod:`interp.analysis.language.circuits` (composition and copying scores) and
:mod:`interp.analysis.language.in_context` (the in-context gain, with heads ablated); nulls are the same model
re-initialised with its own initialisation (:func:`~interp.zoo.registry.reinitialized`).

>>> check_claims(load_run("attn-only"), ["induction-k-composition"])[0].verdict
"""

from __future__ import annotations

from typing import Any

import torch

from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim,
                       run_kind)
from ..analysis.language.in_context import ablated_logits, per_sequence_loss
from ..zoo import reinitialized
from ..stats import NULL_LEVEL, bootstrap_ci, gumbel_quantile, headline

FRAMEWORK = "Elhage et al., 'A Mathematical Framework for Transformer Circuits', Transformer Circuits Thread 2021"
FRAMEWORK_URL = "https://transformer-circuits.pub/2021/framework/index.html"
INDUCTION = "Olsson et al., 'In-context Learning and Induction Heads', Transformer Circuits Thread 2022"

N_SEQUENCES = 64
TRAIN_HINT = ("train it longer or with the demo's recipe: interp train attn-only --dataset induction --epochs 30 "
              "--set steps_per_epoch=10 --set batch_size=32 --set lr=3e-3 --set grad_clip=1.0")


def _n_layers(run) -> int:
    return int(run.config.model_config.get("n_layer", 0))


def _applies(min_layers: int | None = None, exact_layers: int | None = None):
    def applies(run):
        if run_kind(run) != "transformer":
            return f"the claim is about transformer language models; {getattr(run, 'name', 'this model')} is not one"
        n = _n_layers(run)
        if exact_layers is not None and n != exact_layers:
            return f"the claim is about {exact_layers}-layer models; this one has {n} layer{'s' * (n != 1)}"
        if min_layers is not None and n < min_layers:
            return f"the claim needs at least {min_layers} layers; this model has {n}"
        return None
    return applies


def _probe(run, options: CheckOptions) -> dict[int, torch.Tensor]:
    """The head-score probe (:func:`interp.analysis.language.tokens.length_probe`): BOS and a random block repeated,
    at several block lengths, so a head that matches one length by position does not pass."""
    from ..analysis.language.tokens import length_probe

    return length_probe(run, N_SEQUENCES, seed=options.seed)


def _task_tokens(run, options: CheckOptions) -> torch.Tensor:
    """Sequences of the run's own task (its induction task, or repeated blocks of its vocabulary)."""
    from ..analysis.language.tokens import task_tokens

    return task_tokens(run, N_SEQUENCES, seed=options.seed + 1)


def _bridge(model, device=None):
    from ..analysis.language.bridge import to_bridge

    return to_bridge(model)


NULL_MODELS = 8
"""Re-initialised copies when ``--null-models`` is not given."""


def _null_models(run, options: CheckOptions) -> list:
    """``options.null_models`` re-initialised copies (``--null-models`` is honoured, at least 2)."""
    return [reinitialized(run.model, options.seed + 1 + i) for i in range(max(2, options.null_models or NULL_MODELS))]


MIN_LIFT = 2.0
"""A head's score must also be at least twice the null copies' typical best: a tight null (random
attention is nearly uniform) would otherwise call a 4% excess an induction head."""


def gumbel_threshold(maxima: list[float], floor: float = 0.0, level: float = NULL_LEVEL,
                     lift: float = MIN_LIFT) -> float:
    """The ``level`` quantile of a Gumbel fitted to per-copy maxima (:func:`~interp.stats.gumbel_quantile`),
    at least ``lift`` times their mean and at least ``floor``."""
    q = gumbel_quantile(maxima, level)
    if q != q:
        return floor
    return max(floor, q, lift * sum(maxima) / len(maxima))


def _label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def _r(x: Any, nd: int = 3) -> Any:
    return round(float(x), nd)


# -------------------------------------------------------------------------- induction + K-composition


def _score_ci(model, probe: dict[int, torch.Tensor], scores, name: str, head: tuple[int, int],
              seed: int) -> tuple[float, float]:
    """95% bootstrap CI over sequences of one head's ``name`` score at its worst probe length (the one
    its minimum comes from)."""
    from ..analysis.language.heads import cached_patterns, per_sequence_scores

    layer, index = head
    length = min(scores.by_length, key=lambda b: float(scores.by_length[b][name][layer, index]))
    tokens = probe[length]
    per = per_sequence_scores(cached_patterns(_bridge(model), tokens), tokens.cpu())[name][:, layer, index]
    return bootstrap_ci(per, seed=seed)


def _gain_removed(bridge, task: torch.Tensor, gain: torch.Tensor, heads: list[tuple[int, int]],
                  seed: int) -> dict:
    """Share of the in-context gain that zero-ablating ``heads`` removes, with a bootstrap CI over sequences."""
    first, repeat = per_sequence_loss(ablated_logits(bridge, task, heads), task)
    ablated = first - repeat
    pairs = torch.stack([gain, ablated], 1).double()

    def share(r):  # (draws, n, 2) -> (draws,)
        return 1 - r[..., 1].mean(1) / r[..., 0].mean(1).clamp_min(1e-9)

    lo, hi = bootstrap_ci(pairs, share, seed=seed)
    return {"heads": heads, "removed": float(share(pairs[None])[0]), "ci": (lo, hi),
            "ablated_gain": float(ablated.mean())}


def _heads_text(heads) -> str:
    return ", ".join(_label(*h) for h in heads)


def check_induction(run, options: CheckOptions) -> ClaimResult:
    from ..analysis.language.circuits import composition_scores, random_composition_baseline
    from ..analysis.language.heads import head_scores

    claim = INDUCTION_K_COMPOSITION
    thr = claim.thresholds
    probe = _probe(run, options)
    scores = head_scores(run.model, probe=probe)
    induction, prev = scores.induction, scores.prev_token  # (L, H): each head's minimum over probe lengths
    L, H = induction.shape
    nulls = _null_models(run, options)
    null_scores = [head_scores(m, probe=probe) for m in nulls]
    ind_t = gumbel_threshold([float(s.induction[1:].max()) for s in null_scores])
    comp = _earlier_to_later(composition_scores(run.model, "K"))  # (L, H, L, H): earlier -> later
    cfg = run.model.config
    baseline = random_composition_baseline(cfg.n_embd, cfg.n_embd // cfg.n_head, "K", seed=options.seed)
    comp_t = gumbel_threshold([float(_earlier_to_later(composition_scores(m, "K")).max()) for m in nulls],
                              thr["composition_factor"] * baseline, lift=1.0)

    ind_heads = [(l, h) for l in range(1, L) for h in range(H) if induction[l, h] > ind_t]
    # The previous-token function may be spread over several heads: every earlier head that
    # K-composes with an induction head counts, and their previous-token scores add up.
    feeders = sorted({(l, h) for i in ind_heads for l in range(i[0]) for h in range(H)
                      if comp[l, h, i[0], i[1]] > comp_t})
    summed_prev = float(sum(prev[f] for f in feeders)) if feeders else 0.0
    # Null: the same number of heads with the highest previous-token scores of a re-initialised copy.
    prev_t = gumbel_threshold([float(s.prev_token[:-1].flatten().topk(min(len(feeders), (L - 1) * H)).values.sum())
                               for s in null_scores], lift=1.0) if feeders else float("nan")

    bridge = _bridge(run.model)
    task = _task_tokens(run, options)
    with torch.no_grad():
        clean_first, clean_repeat = per_sequence_loss(bridge(task.to(bridge.cfg.device)), task)
    gain_s = clean_first - clean_repeat
    gain = float(gain_s.mean())
    gain_ci = bootstrap_ci(gain_s, seed=options.seed)

    flags = scores.length_dependent()
    table = [{"head": _label(l, h), "induction": _r(induction[l, h]), "prev_token": _r(prev[l, h]),
              **{f"induction_block_{b}": _r(v["induction"][l, h]) for b, v in scores.by_length.items()},
              "length_dependent": bool(flags[l, h]), "induction_head": (l, h) in ind_heads,
              "k_composes": (l, h) in feeders} for l in range(L) for h in range(H)]
    best = max(((l, h) for l in range(1, L) for h in range(H)), key=lambda x: float(induction[x]))
    best_ci = _score_ci(run.model, probe, scores, "induction", best, options.seed)
    numbers = {"induction_threshold": _r(ind_t), "best_induction_head": _label(*best),
               "best_induction_score": _r(induction[best]), "best_induction_ci": [_r(v) for v in best_ci],
               "k_composition_threshold": _r(comp_t), "random_matrix_k_composition": _r(baseline),
               "summed_prev_token_of_k_composing_heads": _r(summed_prev),
               "summed_prev_token_threshold": _r(prev_t) if feeders else None,
               "loss_new_tokens": _r(clean_first.mean()), "loss_repeated_tokens": _r(clean_repeat.mean()),
               "in_context_gain": _r(gain), "in_context_gain_ci": [_r(v) for v in gain_ci],
               "probe_block_lengths": list(scores.lengths), "null_models": len(nulls), "sequences": len(task)}
    data = {"induction": induction.tolist(), "prev_token": prev.tolist(), "composition": comp.tolist(),
            "heads": [_label(l, h) for l in range(L) for h in range(H)]}
    evidence = dict(layer="all heads", table=table, numbers=numbers, data=data,
                    headline=headline(f"induction score of {_label(*best)} (minimum over blocks of "
                                      f"{', '.join(map(str, scores.lengths))} tokens)", float(induction[best]),
                                      best_ci, null=ind_t, n=N_SEQUENCES, over="sequences",
                                      null_what=f"best layer-1+ head of {len(nulls)} re-initialised copies"),
                    thresholds={**thr, "induction": _r(ind_t), "k_composition": _r(comp_t),
                                "summed_prev_token": _r(prev_t) if feeders else None})
    trained_on_task = run.config.data.name == "induction"
    hint = TRAIN_HINT if trained_on_task else ("the claim is about models trained on the induction task (or on "
                                               "text long enough to form induction heads)")
    if gain < thr["min_gain"]:
        return claim.result(INCONCLUSIVE, f"the model has almost no in-context gain on repeated blocks ({gain:.2f} "
                            f"nats < {thr['min_gain']}): it has not learned to use repeats, so there is no "
                            f"circuit to find; to decide, {hint}", **evidence)
    if not ind_heads:
        return claim.result(NOT_SUPPORTED, f"the model uses repeats (in-context gain {gain:.2f} nats) but no head in "
                            f"layers 1+ has an induction score above the null's {ind_t:.2f} at every block length "
                            f"(best {_label(*best)}: {float(induction[best]):.2f})", **evidence)
    induction_text = f"induction heads {_heads_text(ind_heads)} (scores above the null's {ind_t:.2f})"
    ablate_ind = _gain_removed(bridge, task, gain_s, ind_heads, options.seed)
    numbers.update({"ablated_induction_heads": _heads_text(ind_heads),
                    "gain_removed_by_induction_heads": _r(ablate_ind["removed"]),
                    "gain_removed_by_induction_heads_ci": [_r(v) for v in ablate_ind["ci"]]})
    need = thr["gain_removed"]
    if not feeders:
        layer0 = [(l, h) for l in range(L - 1) for h in range(H)]
        ablate0 = _gain_removed(bridge, task, gain_s, layer0, options.seed)
        numbers["gain_removed_by_earlier_layers"] = _r(ablate0["removed"])
        if ablate0["removed"] >= need:
            return claim.result(INCONCLUSIVE, f"{induction_text}, and ablating every earlier head removes "
                                f"{ablate0['removed']:.0%} of the in-context gain, but no earlier head's K-composition "
                                f"score exceeds the null's {comp_t:.2f}: the earlier layer feeds the circuit some other "
                                f"way (Q- or V-composition?); path patching along each edge would decide", **evidence)
        return claim.result(NOT_SUPPORTED, f"{induction_text}, but no earlier head K-composes with them above the "
                            f"null's {comp_t:.2f} and ablating every earlier head removes only "
                            f"{ablate0['removed']:.0%} of the in-context gain", **evidence)
    ablate_feed = _gain_removed(bridge, task, gain_s, feeders, options.seed)
    others = [(l, h) for l in sorted({f[0] for f in feeders}) for h in range(H) if (l, h) not in feeders]
    control = _gain_removed(bridge, task, gain_s, others[:len(feeders)], options.seed) if others else None
    numbers.update({"k_composing_heads": _heads_text(feeders), "gain_removed_by_k_composing_heads":
                    _r(ablate_feed["removed"]), "gain_removed_by_k_composing_heads_ci":
                    [_r(v) for v in ablate_feed["ci"]],
                    "gain_removed_by_other_heads_of_that_layer": _r(control["removed"]) if control else None})
    evidence["found"] = [f"{_label(*p)} -> {_label(*i)}" for i in ind_heads for p in feeders
                         if p[0] < i[0] and comp[p[0], p[1], i[0], i[1]] > comp_t]
    circuit = (f"{induction_text} K-compose with {_heads_text(feeders)} (K-composition above the null's "
               f"{comp_t:.2f}), whose previous-token attention sums to {summed_prev:.2f} (null {prev_t:.2f})")
    causal = (f"ablating {_heads_text(feeders)} removes {ablate_feed['removed']:.0%} of the in-context gain "
              f"(95% CI {ablate_feed['ci'][0]:.0%}-{ablate_feed['ci'][1]:.0%}"
              + (f"; the layer's other heads: {control['removed']:.0%}" if control else "")
              + f"), ablating {_heads_text(ind_heads)} removes {ablate_ind['removed']:.0%}")
    if summed_prev <= prev_t:
        return claim.result(INCONCLUSIVE, f"{circuit}: no more previous-token attention than a random copy's best "
                            f"{len(feeders)} heads; {causal}. To decide, {hint}", **evidence)
    beats_control = control is None or ablate_feed["removed"] > control["removed"]
    weakest = min(ablate_feed["removed"], ablate_ind["removed"])
    if weakest >= need and beats_control:
        return claim.result(SUPPORTED, f"{circuit}; {causal}", **evidence)
    if weakest < thr["gain_removed_floor"] or not beats_control:
        return claim.result(NOT_SUPPORTED, f"{circuit}, but {causal}: the gain does not depend on this circuit",
                            **evidence)
    return claim.result(INCONCLUSIVE, f"{circuit}; {causal}: part of the gain ({weakest:.0%} < {need:.0%}) depends "
                        f"on it. To decide, {hint}", **evidence)


INDUCTION_K_COMPOSITION = register_claim(Claim(
    id="induction-k-composition",
    statement="A 2-layer attention-only model trained on the induction task has an induction head in layer 1 that "
              "K-composes with a previous-token head in layer 0, and ablating it removes the in-context gain.",
    source=f"{FRAMEWORK}, section 'Two-Layer Attention-Only Transformers' (induction heads, K-composition); "
           f"{INDUCTION}, section 'Argument 1'",
    url=FRAMEWORK_URL + "#two-layer-attention-only-transformers",
    applies_to="transformer runs with two or more layers (attn-only or gpt), on repeated random token blocks",
    kind="transformer",
    thresholds={"composition_factor": 1.5, "gain_removed": 0.5, "gain_removed_floor": 0.2, "min_gain": 0.1,
                "null": "99% Gumbel quantile of the best head (head pair, or sum of the best heads' previous-token "
                        "scores) in re-initialised copies; head scores are each head's minimum over several "
                        "block lengths"},
    check=check_induction, applies=_applies(min_layers=2),
))



def _earlier_to_later(comp: torch.Tensor) -> torch.Tensor:
    """Composition scores ``(L, H, L, H)`` with the pairs that are not earlier -> later set to 0."""
    L = comp.shape[0]
    mask = torch.zeros(L, 1, L, 1, dtype=torch.bool)
    for a in range(L):
        for b in range(a + 1, L):
            mask[a, 0, b, 0] = True
    return torch.where(mask, comp, torch.zeros(()))


# -------------------------------------------------------------------------- one layer: no induction


def check_one_layer(run, options: CheckOptions) -> ClaimResult:
    from ..analysis.language.heads import head_scores

    claim = NO_INDUCTION_ONE_LAYER
    probe = _probe(run, options)
    scores = head_scores(run.model, probe=probe)
    induction = scores.induction[0]
    best = int(induction.argmax())
    nulls = _null_models(run, options)
    threshold = gumbel_threshold([float(head_scores(m, probe=probe).induction.max()) for m in nulls])
    flags = scores.length_dependent()[0]
    peak = scores.best_over_lengths("induction")[0]
    table = [{"head": _label(0, h), "induction": _r(induction[h]),
              **{f"induction_block_{b}": _r(v["induction"][0, h]) for b, v in scores.by_length.items()},
              "length_dependent": bool(flags[h]), "prev_token": _r(scores.prev_token[0, h]),
              "induction_head": bool(induction[h] > threshold)} for h in range(len(induction))]
    ci = _score_ci(run.model, probe, scores, "induction", (0, best), options.seed)
    lengths = ", ".join(map(str, scores.lengths))
    notes = [f"{_label(0, h)} scores {float(peak[h]):.2f} on blocks of one length but {float(induction[h]):.2f} on "
             f"another: it attends a fixed distance back (position), not to the token after an earlier copy "
             f"(content), so it is no induction head" for h in range(len(induction)) if flags[h]]
    evidence = dict(layer="blocks.0", table=table, notes=notes,
                    thresholds={**claim.thresholds, "induction": _r(threshold)},
                    numbers={"best_induction_score": _r(induction[best]), "best_induction_ci": [_r(v) for v in ci],
                             "induction_threshold": _r(threshold), "probe_block_lengths": list(scores.lengths),
                             "length_dependent_heads": sum(bool(f) for f in flags), "null_models": len(nulls)},
                    found=[_label(0, h) for h in range(len(induction)) if induction[h] > threshold],
                    headline=headline(f"best induction score (minimum over blocks of {lengths} tokens)",
                                      float(induction[best]), ci, null=threshold, n=N_SEQUENCES, over="sequences",
                                      null_what=f"best head of {len(nulls)} re-initialised copies"),
                    data={"induction": [induction.tolist()], "heads": [_label(0, h) for h in range(len(induction))]})
    if induction[best] > threshold:
        return claim.result(NOT_SUPPORTED, f"head {_label(0, best)} has an induction score of "
                            f"{float(induction[best]):.2f} at every block length ({lengths} tokens), above the "
                            f"null's {threshold:.2f}", **evidence)
    return claim.result(SUPPORTED, f"no head reaches an induction score above the null's {threshold:.2f} at every "
                        f"block length ({lengths} tokens; best {_label(0, best)}: {float(induction[best]):.2f})"
                        + (f"; {len(notes)} head{'s' * (len(notes) != 1)} match one length by position"
                           if notes else ""), **evidence)


NO_INDUCTION_ONE_LAYER = register_claim(Claim(
    id="no-induction-one-layer",
    statement="A 1-layer attention-only model has no induction head.",
    source=f"{FRAMEWORK}, section 'One-Layer Attention-Only Transformers'; {INDUCTION}, section 'Argument 2'",
    url=FRAMEWORK_URL + "#one-layer-attention-only-transformers",
    applies_to="1-layer transformer runs, on repeated random token blocks",
    kind="transformer",
    thresholds={"null": "99% Gumbel quantile of the best head in re-initialised copies; head scores are each "
                        "head's minimum over several block lengths"},
    check=check_one_layer, applies=_applies(exact_layers=1),
))



# -------------------------------------------------------------------------- copying heads


def check_copying(run, options: CheckOptions) -> ClaimResult:
    from ..analysis.language.bridge import to_bridge
    from ..analysis.language.circuits import diagonal_top, ov_copying_scores

    claim = COPYING_OV_POSITIVE
    thr = claim.thresholds
    bridge = to_bridge(run.model, fold_ln=True)
    diag = diagonal_top(bridge)
    eig = ov_copying_scores(bridge)
    nulls = _null_models(run, options)
    null_diag = [diagonal_top(to_bridge(m, fold_ln=True)) for m in nulls]
    null_eig = [ov_copying_scores(m) for m in nulls]
    copy_t = gumbel_threshold([float(d.max()) for d in null_diag], thr["copying_floor"], lift=1.0)
    eig_t = gumbel_threshold([float(e.max()) for e in null_eig], thr["eigen_floor"], lift=1.0)
    L, H = diag.shape
    copying = [(l, h) for l in range(L) for h in range(H) if diag[l, h] > copy_t]
    # Headline: the share of copying heads whose eigenvalue score beats the null (CI over those heads).
    positive = torch.tensor([float(eig[c] > eig_t) for c in copying], dtype=torch.float64)
    share = float(positive.mean()) if copying else float("nan")
    table = [{"head": _label(l, h), "copies_own_token": _r(diag[l, h]), "ov_eigenvalue_score": _r(eig[l, h]),
              "copying_head": (l, h) in copying, "positive": bool(eig[l, h] > eig_t)}
             for l in range(L) for h in range(H)]
    evidence = dict(layer="all heads", table=table, found=[_label(*c) for c in copying],
                    thresholds={**thr, "copying": _r(copy_t), "eigenvalue_score": _r(eig_t)},
                    numbers={"copying_heads": len(copying), "copying_threshold": _r(copy_t),
                             "eigen_threshold": _r(eig_t), "null_models": len(nulls)},
                    headline=headline("share of copying heads with an OV eigenvalue score above the null's", share,
                                      bootstrap_ci(positive, seed=options.seed) if copying
                                      else (float("nan"), float("nan")), null=None, n=len(copying),
                                      over="copying heads",
                                      null_what=f"eigenvalue scores of {len(nulls)} re-initialised copies' heads"),
                    data={"diag": diag.tolist(), "eig": eig.tolist(),
                          "null_diag": torch.stack(null_diag).flatten().tolist(),
                          "null_eig": torch.stack(null_eig).flatten().tolist()})
    if not copying:
        return claim.result(NOT_SUPPORTED, f"no head copies: none maps more than {copy_t:.0%} of tokens onto "
                            f"themselves (best {float(diag.max()):.0%}), so there are no copying heads whose "
                            f"eigenvalues could be positive", **evidence)
    bad = [c for c in copying if eig[c] <= eig_t]
    listing = ", ".join(f"{_label(*c)} ({float(eig[c]):+.2f})" for c in copying)
    if bad:
        return claim.result(NOT_SUPPORTED, f"copying heads {listing}: {', '.join(_label(*c) for c in bad)} "
                            f"{'has' if len(bad) == 1 else 'have'} an eigenvalue score at most {eig_t:.2f}", **evidence)
    return claim.result(SUPPORTED, f"every copying head has a positive OV eigenvalue score above {eig_t:.2f} "
                        f"(random heads' best): {listing}", **evidence)


COPYING_OV_POSITIVE = register_claim(Claim(
    id="copying-ov-positive",
    statement="Heads that copy (their OV circuit raises the logit of the token attended to) have OV circuits with "
              "positive eigenvalues.",
    source=f"{FRAMEWORK}, section 'Detecting Copying Behavior' (OV eigenvalues)",
    url=FRAMEWORK_URL + "#summarizing-ovqk-matrices",
    applies_to="transformer runs (attn-only or gpt)",
    kind="transformer",
    thresholds={"copying_floor": 0.5, "eigen_floor": 0.0,
                "null": "99% Gumbel quantile of the best head in re-initialised copies"},
    check=check_copying, applies=_applies(min_layers=1),
))
