"""The induction circuit as found by circuit discovery (``induction-circuit``): a previous-token head in
layer 0 feeds the K input of an induction head in layer 1, the edge ``L0Hp -> L1Hi.k`` of a
:class:`~interp.analysis.causal.transformer.TransformerGraph`, and the weights agree (K-composition).

``induction-k-composition`` (:mod:`.transformers`) finds the heads by their attention and their weights;
this claim asks whether *circuit discovery*, knowing nothing about heads, picks out that edge. For a
transformer run with two layers or more (our ``gpt`` / ``attn-only`` families):

0. **The model uses repeats.** The in-context gain (loss at new tokens minus at repeated ones, on the run's
   own task) must reach ``min_gain`` nats; without it there is no circuit to find: ``inconclusive``.
1. **A faithful circuit.** The graph: the run's induction task as clean inputs, the repeat broken
   (:func:`~interp.analysis.causal.transformer.broken_repeat`) as the corrupted batch, mean ablation,
   the loss metric at induction positions. Edges scored by EAP-IG
   (:func:`~interp.analysis.causal.transformer_edges.eap_ig_scores`); the faithfulness curve of the top-k
   edges beside ``random_circuits`` random circuits of each size
   (:func:`~interp.analysis.causal.discovery.faithfulness_curve`). The minimal circuit is the smallest size
   reaching 0.8; it must beat chance: its bootstrap CI's low end above the random circuits' 95% quantile
   at that size.
2. **The edge is in it.** The minimal circuit holds an edge ``LaHp -> LbHi.k`` (``a < b``) where ``p`` is a
   previous-token head and ``i`` an induction head by :func:`~interp.analysis.language.heads.head_scores`
   (each head's minimum over several block lengths), each above the null of ``induction-k-composition``:
   the 99% Gumbel quantile of the best head in re-initialised copies, and at least twice their mean.
   Null for containment: the chance that a random circuit of the minimal size holds one of the candidate
   edges (hypergeometric); at ``chance_level`` or more, holding one says nothing.
3. **The edge matters and the weights agree.** Path patching along the edge
   (:func:`~interp.analysis.causal.transformer_edges.path_patch`) lowers the metric, its CI below 0; and
   the K-composition score of ``(LaHp, LbHi)`` (:func:`~interp.analysis.language.circuits.composition_scores`)
   is above the null of ``induction-k-composition`` (99% Gumbel quantile of re-initialised copies'
   best earlier -> later pair, at least ``composition_factor`` times the random-matrix score).

Verdict: ``supported`` when 1-3 hold; ``not supported`` when the circuit is faithful but the model has no
induction head, or the circuit has no K edge from an earlier head into one; ``inconclusive`` otherwise
(no in-context gain, a circuit no better than random ones, K edges from heads that are no previous-token
heads, an edge whose containment chance would give, or whose patching CI reaches 0), saying what would
decide it. Checked when named (it re-runs the head-score null ensemble and a circuit discovery):

>>> check_claims(load_run("attn-only"), ["induction-circuit"])[0].headline   # faithfulness vs random circuits
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..analysis.causal.discovery import FaithfulnessCurve, faithfulness_curve
from ..analysis.causal.graph import Edge, EdgeScores
from ..analysis.causal.transformer import TransformerGraph
from ..analysis.causal.transformer_edges import eap_ig_scores, path_patch
from ..analysis.language.in_context import per_sequence_loss
from ..stats import bootstrap_ci, headline
from ..zoo import reinitialized
from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim,
                       run_kind)
from .transformers import FRAMEWORK, FRAMEWORK_URL, INDUCTION, NULL_MODELS, TRAIN_HINT, gumbel_threshold

N_SEQUENCES = 64
"""Sequences of the graph (clean and corrupted), of the in-context gain and of each head-score probe length."""
RANDOM_CIRCUITS = 20
IG_STEPS = 16


def applies(run) -> str | None:
    """None for our gpt / attn-only runs with two layers or more, else why the claim does not apply."""
    if run_kind(run) != "transformer":
        return f"the claim is about transformer language models; {getattr(run, 'name', 'this model')} is not one"
    if run.config.family != "gpt":
        return f"circuit graphs support our gpt and attn-only runs; this is an imported {run.config.family} model"
    n = int(run.config.model_config.get("n_layer", 0))
    if n < 2:
        return f"the circuit needs at least 2 layers (a head feeding a later head); this model has {n}"
    return None


def _label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def _head(node: str) -> tuple[int, int] | None:
    """``(layer, head)`` of ``L1H0`` or ``L1H0.k``; None for ``embed``, ``mlp0``, ``logits``."""
    name = node.split(".")[0]
    if not name.startswith("L") or "H" not in name:
        return None
    layer, _, head = name[1:].partition("H")
    return int(layer), int(head)


def _r(x: Any, nd: int = 3) -> Any:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), nd)


def containment_chance(n_edges: int, candidates: int, size: int) -> float:
    """The chance that ``size`` edges drawn at random from ``n_edges`` hold at least one of ``candidates``.

    >>> round(containment_chance(29, 2, 9), 3)
    0.532
    """
    if candidates <= 0:
        return 0.0
    return 1.0 - math.comb(n_edges - candidates, size) / math.comb(n_edges, size)


# --------------------------------------------------------------------------- measurements


def _in_context_gain(run, seed: int) -> tuple[torch.Tensor, tuple[float, float]]:
    """Per-sequence in-context gain ``(N,)`` on the run's own task and its bootstrap CI."""
    from ..analysis.language.bridge import to_bridge
    from ..analysis.language.tokens import task_tokens

    bridge = to_bridge(run.model)
    tokens = task_tokens(run, N_SEQUENCES, seed=seed + 1)
    with torch.no_grad():
        first, repeat = per_sequence_loss(bridge(tokens.to(bridge.cfg.device)), tokens)
    gain = first - repeat
    return gain, bootstrap_ci(gain, seed=seed)


def _heads(run, options: CheckOptions) -> dict:
    """Head scores, previous-token / induction heads and K-composition, each with its null threshold."""
    from ..analysis.language.circuits import composition_scores, random_composition_baseline
    from ..analysis.language.heads import head_scores
    from ..analysis.language.tokens import length_probe

    probe = length_probe(run, N_SEQUENCES, seed=options.seed)
    scores = head_scores(run.model, probe=probe)
    nulls = [reinitialized(run.model, options.seed + 1 + i) for i in range(max(2, options.null_models or NULL_MODELS))]
    null_scores = [head_scores(m, probe=probe) for m in nulls]
    prev, induction = scores.prev_token, scores.induction  # (L, H): minimum over probe lengths
    L, H = prev.shape
    prev_t = gumbel_threshold([float(s.prev_token[:-1].max()) for s in null_scores])
    ind_t = gumbel_threshold([float(s.induction[1:].max()) for s in null_scores])
    earlier = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)[:, None, :, None]  # (L, 1, L, 1): a < b
    comp = composition_scores(run.model, "K") * earlier
    cfg = run.model.config
    baseline = random_composition_baseline(cfg.n_embd, cfg.n_embd // cfg.n_head, "K", seed=options.seed)
    comp_t = gumbel_threshold([float((composition_scores(m, "K") * earlier).max()) for m in nulls],
                              INDUCTION_CIRCUIT.thresholds["composition_factor"] * baseline, lift=1.0)
    return {"scores": scores, "prev": prev, "induction": induction, "comp": comp, "baseline": baseline,
            "prev_t": prev_t, "ind_t": ind_t, "comp_t": comp_t, "nulls": len(nulls),
            "prev_heads": [(l, h) for l in range(L - 1) for h in range(H) if prev[l, h] > prev_t],
            "ind_heads": [(l, h) for l in range(1, L) for h in range(H) if induction[l, h] > ind_t]}


def _k_edges_into(edges: list[Edge], targets: list[tuple[int, int]]) -> list[Edge]:
    """The edges from an earlier head into the keys of one of ``targets``."""
    return [e for e in edges if e.target.endswith(".k") and _head(e.source) is not None
            and _head(e.target) in targets]


def _curve_summary(curve: FaithfulnessCurve) -> dict:
    at = curve.at(curve.minimal_size) if curve.minimal_size else None
    return {"size": curve.minimal_size, "faithfulness": at["faithfulness"] if at else float("nan"),
            "ci": at["ci"] if at else (float("nan"), float("nan")),
            "random_high": at["random_high"] if at else float("nan"),
            "random_mean": at["random_mean"] if at else float("nan")}


def _table(curve: FaithfulnessCurve, scores: EdgeScores, heads: dict, claimed: set[Edge],
           patches: dict[Edge, Any]) -> list[dict]:
    """One row per edge of the minimal circuit, in rank order, marking the previous-token / induction /
    K-composition edges."""
    score, rank = scores.as_dict(), {e: i + 1 for i, e in enumerate(scores.top(len(scores.edges)))}
    rows = []
    for edge in curve.minimal_edges:
        source, target = _head(edge.source), _head(edge.target)
        k_edge = edge.target.endswith(".k") and source is not None and source[0] < target[0]
        patch = patches.get(edge)
        rows.append({"edge": str(edge), "eap_ig": _r(score[edge], 4), "rank": rank[edge],
                     "input": edge.target.partition(".")[2] or "-",
                     "prev_token_source": source in heads["prev_heads"],
                     "induction_target": target in heads["ind_heads"],
                     "k_composition": _r(heads["comp"][source + target]) if k_edge else None,
                     "claimed_edge": edge in claimed,
                     "path_patch": _r(patch.effect, 4) if patch else None,
                     "path_patch_ci": [_r(v, 4) for v in patch.ci] if patch else None})
    return rows


# --------------------------------------------------------------------------- the check


def check_induction_circuit(run, options: CheckOptions) -> ClaimResult:
    claim = INDUCTION_CIRCUIT
    thr = claim.thresholds
    gain_s, gain_ci = _in_context_gain(run, options.seed)
    gain = float(gain_s.mean())
    numbers: dict[str, Any] = {"in_context_gain": _r(gain), "in_context_gain_ci": [_r(v) for v in gain_ci],
                               "sequences": N_SEQUENCES}
    hint = TRAIN_HINT if run.config.data.name == "induction" else (
        "the claim is about models trained on the induction task (or on text long enough to form induction heads)")
    if gain < thr["min_gain"]:
        return claim.result(INCONCLUSIVE, f"the model has almost no in-context gain on repeated blocks ({gain:.2f} "
                            f"nats < {thr['min_gain']}): it has not learned to use repeats, so there is no circuit "
                            f"to find; to decide, {hint}", layer="all edges", numbers=numbers,
                            headline=headline("in-context gain (nats, new minus repeated tokens)", gain, gain_ci,
                                              null=thr["min_gain"], level=None, n=N_SEQUENCES, over="sequences",
                                              null_what="the least gain that shows the model uses repeats"))
    heads = _heads(run, options)
    graph = TransformerGraph(run, n=N_SEQUENCES, seed=options.seed, metric="loss", ablation="mean")
    scores = eap_ig_scores(graph, steps=IG_STEPS)
    try:
        curve = faithfulness_curve(graph, scores, n_random=RANDOM_CIRCUITS, threshold=thr["faithfulness"],
                                   seed=options.seed)
    except ValueError as error:  # the full and the fully ablated model agree: faithfulness undefined
        return claim.result(INCONCLUSIVE, f"circuit discovery cannot judge this model: {error}; to decide, {hint}",
                            layer="all edges", numbers=numbers)
    best = _curve_summary(curve)
    n_edges, size = len(graph.edges), best["size"]
    candidates = [Edge(_label(*p), f"{_label(*i)}.k") for p in heads["prev_heads"] for i in heads["ind_heads"]
                  if p[0] < i[0]]
    claimed = [e for e in curve.minimal_edges if e in set(candidates)]
    into_induction = _k_edges_into(curve.minimal_edges, heads["ind_heads"])
    patches = {e: path_patch(graph, e) for e in claimed}
    chance = containment_chance(n_edges, len(candidates), size) if size else float("nan")
    gap = curve.full_metric - curve.empty_metric
    passing = [e for e in claimed if patches[e].ci[1] < 0
               and heads["comp"][_head(e.source) + _head(e.target)] > heads["comp_t"]]
    rank = {e: i + 1 for i, e in enumerate(scores.top(n_edges))}
    pool = passing or claimed or into_induction
    shown = min(pool, key=rank.get) if pool else None  # the best-ranked edge the verdict is about
    numbers.update(_numbers(heads, curve, best, candidates, chance, n_edges))
    if shown is not None:
        numbers.update(_edge_numbers(shown, heads, rank, patches.get(shown), gap))
    evidence = dict(layer="all edges", numbers=numbers, found=[str(e) for e in passing],
                    table=_table(curve, scores, heads, set(claimed), patches), notes=_notes(run, rank, candidates),
                    thresholds={**thr, "previous_token": _r(heads["prev_t"]), "induction": _r(heads["ind_t"]),
                                "k_composition": _r(heads["comp_t"])},
                    data={"sizes": curve.sizes, "faithfulness": curve.faithfulness, "ci": curve.ci,
                          "random_mean": curve.random_mean, "random_high": curve.random_high,
                          "minimal_size": size, "edges": scores.rows()},
                    headline=headline(f"faithfulness of the minimal circuit ({size} of {n_edges} edges, EAP-IG)",
                                      best["faithfulness"], best["ci"], null=best["random_high"], level=0.95,
                                      n=curve.n_examples, over="sequences",
                                      null_what=f"{RANDOM_CIRCUITS} random circuits of {size} edges"))
    return claim.result(*decide(heads, best, n_edges, claimed, into_induction, passing, patches, chance, hint),
                        **evidence)


def _numbers(heads: dict, curve: FaithfulnessCurve, best: dict, candidates: list[Edge], chance: float,
             n_edges: int) -> dict:
    return {"edges": n_edges, "minimal_size": best["size"],
            "minimal_share": _r(best["size"] / n_edges) if best["size"] else None,
            "faithfulness": _r(best["faithfulness"]), "faithfulness_ci": [_r(v) for v in best["ci"]],
            "random_high": _r(best["random_high"]), "random_mean": _r(best["random_mean"]),
            "random_circuits": RANDOM_CIRCUITS, "metric_full": _r(curve.full_metric, 4),
            "metric_empty": _r(curve.empty_metric, 4),
            "previous_token_heads": ", ".join(_label(*h) for h in heads["prev_heads"]),
            "induction_heads": ", ".join(_label(*h) for h in heads["ind_heads"]),
            "best_previous_token_score": _r(heads["prev"][:-1].max()),
            "best_induction_score": _r(heads["induction"][1:].max()),
            "previous_token_threshold": _r(heads["prev_t"]), "induction_threshold": _r(heads["ind_t"]),
            "k_composition_threshold": _r(heads["comp_t"]), "random_matrix_k_composition": _r(heads["baseline"]),
            "candidate_edges": len(candidates), "chance_random_circuit_holds_a_candidate": _r(chance),
            "null_models": heads["nulls"]}


def _edge_numbers(edge: Edge, heads: dict, rank: dict, patch, gap: float) -> dict:
    numbers = {"edge": str(edge), "edge_rank": rank[edge],
               "edge_k_composition": _r(heads["comp"][_head(edge.source) + _head(edge.target)])}
    if patch is not None:
        numbers.update({"path_patch_effect": _r(patch.effect, 4), "path_patch_ci": [_r(v, 4) for v in patch.ci],
                        "path_patch_share_of_gap": _r(-patch.effect / gap) if gap else None})
    return numbers


def _notes(run, rank: dict, candidates: list[Edge]) -> list[str]:
    notes = ["the minimal circuit is the smallest size on the curve's grid of sizes that reaches 0.8; sizes between "
             "grid points are not tried"]
    if candidates:
        top = min(rank[e] for e in candidates)
        notes.append(f"the best-ranked previous-token -> induction K edge is #{top} of {len(rank)} by EAP-IG")
    if int(run.config.model_config.get("n_head", 0)) >= 4:
        notes.append("with four or more heads per layer the previous-token job is spread over several layer-0 heads "
                     "and the EAP-IG ranking of single K edges is weak (each moves the loss by a few percent of the "
                     "gap): the minimal circuit then holds most edges; two heads per layer give a clean circuit")
    return notes


def decide(heads: dict, best: dict, n_edges: int, claimed: list[Edge], into_induction: list[Edge],
             passing: list[Edge], patches: dict, chance: float, hint: str) -> tuple[str, str]:
    """``(status, reason)`` from the measurements (module docstring, steps 1-3); ``claimed``: the minimal
    circuit's previous-token -> induction K edges, ``passing`` those that path patching and K-composition
    confirm, ``chance`` that a random circuit of the minimal size holds a candidate edge.

    >>> decide(heads, best, 29, claimed, into_induction, passing, patches, 0.53, TRAIN_HINT)[0]
    'supported'
    """
    thr = INDUCTION_CIRCUIT.thresholds
    size, f, (lo, hi), r = best["size"], best["faithfulness"], best["ci"], best["random_high"]
    circuit = (f"the minimal EAP-IG circuit ({size} of {n_edges} edges) reaches faithfulness {f:.2f} (95% CI "
               f"{lo:.2f}-{hi:.2f}; random circuits of that size: 95% below {r:.2f})")
    if not size or not lo > r:
        return INCONCLUSIVE, (f"{circuit}: no better than random circuits, so discovery has not isolated a circuit; "
                              f"to decide, use more sequences (the check uses {N_SEQUENCES}) or random circuits "
                              f"({RANDOM_CIRCUITS}), or {hint}")
    ind_t, prev_t = heads["ind_t"], heads["prev_t"]
    if not heads["ind_heads"]:
        return NOT_SUPPORTED, (f"{circuit}, but no head in layers 1+ has an induction score above the null's "
                               f"{ind_t:.2f} (best {float(heads['induction'][1:].max()):.2f})")
    inductive = ", ".join(_label(*h) for h in heads["ind_heads"])
    if not claimed:
        if into_induction:
            sources = ", ".join(sorted({e.source for e in into_induction}))
            return INCONCLUSIVE, (f"{circuit} and holds K edges into induction heads {inductive} from {sources}, but "
                                  f"none of those is a previous-token head (score above the null's {prev_t:.2f}; "
                                  f"best {float(heads['prev'][:-1].max()):.2f}): the previous-token job may be "
                                  f"spread over several heads; to decide, {hint}")
        return NOT_SUPPORTED, (f"{circuit} but holds no K edge from an earlier head into induction heads "
                               f"{inductive}: the model does induction some other way")
    edge = passing[0] if passing else claimed[0]
    patch, comp = patches[edge], float(heads["comp"][_head(edge.source) + _head(edge.target)])
    found = (f"{circuit} and holds {edge} (previous-token head into the keys of an induction head); path patching "
             f"it changes the metric by {patch.effect:+.3f} (95% CI {patch.ci[0]:+.3f} to {patch.ci[1]:+.3f}) and "
             f"its K-composition is {comp:.2f} (null {heads['comp_t']:.2f})")
    if not passing:
        if all(patches[e].ci[0] > 0 for e in claimed):
            return NOT_SUPPORTED, f"{found}: the edge hurts the model's induction loss rather than carrying it"
        return INCONCLUSIVE, (f"{found}: its patching CI reaches 0 or its K-composition does not beat the null; "
                              f"to decide, use more sequences, or {hint}")
    if chance >= thr["chance_level"]:
        return INCONCLUSIVE, (f"{found}, but a random circuit of {size} edges holds one of the candidate edges with "
                              f"probability {chance:.2f}: discovery has not singled the edge out; a model with fewer "
                              f"heads per layer, or trained longer, would decide")
    return SUPPORTED, f"{found}; a random circuit of {size} edges would hold such an edge with probability {chance:.2f}"


INDUCTION_CIRCUIT = register_claim(Claim(
    id="induction-circuit",
    statement="Circuit discovery on a 2-layer attention-only model trained on the induction task finds the "
              "induction circuit: a previous-token head in layer 0 feeding the K input of an induction head in "
              "layer 1, an edge that path patching and the K-composition score confirm.",
    source=f"{FRAMEWORK}, section 'Two-Layer Attention-Only Transformers'; {INDUCTION}; circuit discovery as in "
           f"Conmy et al. 2023 (ACDC) and Hanna et al. 2024 (EAP-IG)",
    url=FRAMEWORK_URL + "#two-layer-attention-only-transformers",
    applies_to="our gpt / attn-only runs with two or more layers, on their induction task",
    kind="transformer",
    thresholds={"faithfulness": 0.8, "min_gain": 0.1, "composition_factor": 1.5, "chance_level": 0.95,
                "null": "minimal circuit: CI low end above the 95% quantile of random circuits of its size; heads "
                        "and K-composition: 99% Gumbel quantile of the best head (pair) in re-initialised copies"},
    check=check_induction_circuit, applies=applies, on_request=True,
))
