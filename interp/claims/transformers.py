"""Transformer claims from "A Mathematical Framework for Transformer Circuits" and "In-context Learning
and Induction Heads" (Elhage et al. 2021, Olsson et al. 2022), checked on our ``attn-only``/``gpt`` runs.

- ``induction-k-composition``: a 2-layer attention-only model trained on the induction
  task has an induction head in layer 1 that K-composes with a previous-token head in
  layer 0, and ablating it removes the in-context gain;
- ``no-induction-one-layer``: a 1-layer attention-only model has no induction head;
- ``copying-ov-positive``: heads that copy have OV circuits with positive eigenvalues.

The measurements come from :mod:`interp.analysis.heads` (head scores),
:mod:`interp.analysis.circuits` (composition and copying scores) and
:mod:`interp.analysis.patching` (the induction loss); nulls are the same model
re-initialised with its own initialisation (:func:`~interp.claims.registry.reinitialized`).

>>> check_claims(load_run("attn-only"), ["induction-k-composition"])[0].verdict
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..plots import pyplot
from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, register_claim,
                       reinitialized, run_kind)

FRAMEWORK = "Elhage et al., 'A Mathematical Framework for Transformer Circuits', Transformer Circuits Thread 2021"
FRAMEWORK_URL = "https://transformer-circuits.pub/2021/framework/index.html"
INDUCTION = "Olsson et al., 'In-context Learning and Induction Heads', Transformer Circuits Thread 2022"

HEAD_SCORE_FLOOR = 0.3
"""An induction or previous-token head puts at least 30% of its attention where its type predicts."""
N_SEQUENCES = 64


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


def _tokens(run, options: CheckOptions) -> torch.Tensor:
    """The head-score probe (:func:`interp.analysis.heads.repeated_tokens`): BOS, a random block, the block again."""
    from ..analysis.heads import repeated_tokens

    return repeated_tokens(run, N_SEQUENCES, seed=options.seed)


def _task_tokens(run, options: CheckOptions) -> torch.Tensor:
    """Sequences of the run's own task (its induction task, or repeated blocks of its vocabulary)."""
    from ..analysis.heads import task_tokens

    return task_tokens(run, N_SEQUENCES, seed=options.seed + 1)


def _bridge(model, device=None):
    from ..zoo.gpt import to_bridge

    return to_bridge(model)


def _null_models(run, options: CheckOptions, n: int | None = None) -> list:
    return [reinitialized(run.model, options.seed + 1 + i) for i in range(n or min(options.null_models, 4))]


def gumbel_threshold(maxima: list[float], floor: float, level: float = 0.99) -> float:
    """The ``level`` quantile of a Gumbel fitted (by moments) to per-copy maxima, at least ``floor``
    and the largest maximum seen. See :func:`interp.claims.vision.null_threshold`."""
    m = torch.tensor(maxima, dtype=torch.float64)
    if len(m) < 2:
        return max(floor, float(m.max()) if len(m) else floor)
    beta = float(m.std()) * math.sqrt(6) / math.pi
    mu = float(m.mean()) - 0.5772156649 * beta
    return max(floor, mu - beta * math.log(-math.log(level)), float(m.max()))


def split_loss(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[float, float]:
    """Mean next-token loss at positions whose token is new in the sequence, and at repeated ones.

    The in-context gain is the first minus the second: what seeing a token before buys.
    Position 0 (BOS) is left out.
    """
    import torch.nn.functional as F

    from ..analysis.heads import head_type_masks

    repeated = head_type_masks(tokens.cpu())["duplicate"].any(-1)[:, :-1]  # (B, T-1): token at t seen before
    loss = F.cross_entropy(logits[:, :-1].detach().float().transpose(1, 2).cpu(), tokens[:, 1:].cpu(),
                           reduction="none")
    first = ~repeated
    first[:, 0] = False
    return float(loss[first].mean()), float(loss[repeated].mean())


def ablated_logits(bridge, tokens: torch.Tensor, heads: list[tuple[int, int]]) -> torch.Tensor:
    """Logits with ``heads`` ([(layer, head)]) zero-ablated together at ``hook_z`` (scoped TransformerLens hooks)."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def make(hs):
        def hook(z, hook):
            z[:, :, hs] = 0.0
            return z
        return hook

    hooks = [(f"blocks.{layer}.attn.hook_z", make(hs)) for layer, hs in by_layer.items()]
    with torch.no_grad():
        return bridge.run_with_hooks(tokens.to(bridge.cfg.device), fwd_hooks=hooks)


def _label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def _r(x: Any, nd: int = 3) -> Any:
    return round(float(x), nd)


# -------------------------------------------------------------------------- induction + K-composition


def check_induction(run, options: CheckOptions) -> ClaimResult:
    from ..analysis.circuits import composition_scores, random_composition_baseline
    from ..analysis.heads import head_scores

    claim = INDUCTION_K_COMPOSITION
    thr = claim.thresholds
    tokens = _tokens(run, options)
    scores = head_scores(run.model, tokens=tokens)
    induction, prev = scores.scores["induction"], scores.scores["prev_token"]  # (L, H)
    L, H = induction.shape
    nulls = _null_models(run, options)
    null_scores = [head_scores(m, tokens=tokens) for m in nulls]
    ind_t = gumbel_threshold([float(s.scores["induction"][1:].max()) for s in null_scores], thr["score_floor"])
    prev_t = gumbel_threshold([float(s.scores["prev_token"][:-1].max()) for s in null_scores], thr["score_floor"])
    comp = composition_scores(run.model, "K")  # (L, H, L, H): earlier -> later
    cfg = run.model.config
    baseline = random_composition_baseline(cfg.n_embd, cfg.n_embd // cfg.n_head, "K", seed=options.seed)
    null_comp = [composition_scores(m, "K") for m in nulls]
    comp_t = gumbel_threshold([float(_earlier_to_later(c).max()) for c in null_comp],
                              thr["composition_factor"] * baseline)

    ind_heads = [(l, h) for l in range(1, L) for h in range(H) if induction[l, h] > ind_t]
    prev_heads = [(l, h) for l in range(L - 1) for h in range(H) if prev[l, h] > prev_t]
    pairs = [(p, i, float(comp[p[0], p[1], i[0], i[1]])) for i in ind_heads for p in prev_heads if p[0] < i[0]]
    composing = [(p, i, c) for p, i, c in pairs if c > comp_t]

    bridge = _bridge(run.model)
    task = _task_tokens(run, options)
    with torch.no_grad():
        clean = bridge(task.to(bridge.cfg.device))
    first, repeat = split_loss(clean, task)
    gain = first - repeat
    table = [{"head": _label(l, h), "induction": _r(induction[l, h]), "prev_token": _r(prev[l, h]),
              "induction_head": (l, h) in ind_heads, "prev_token_head": (l, h) in prev_heads}
             for l in range(L) for h in range(H)]
    numbers = {"induction_threshold": _r(ind_t), "prev_token_threshold": _r(prev_t),
               "k_composition_threshold": _r(comp_t), "random_matrix_k_composition": _r(baseline),
               "loss_new_tokens": _r(first), "loss_repeated_tokens": _r(repeat), "in_context_gain": _r(gain),
               "null_models": len(nulls)}
    data = {"induction": induction.tolist(), "prev_token": prev.tolist(),
            "composition": _earlier_to_later(comp).tolist(), "heads": [_label(l, h) for l in range(L) for h in range(H)]}
    evidence = dict(layer="all heads", table=table, numbers=numbers, data=data,
                    thresholds={**thr, "induction": _r(ind_t), "prev_token": _r(prev_t), "k_composition": _r(comp_t)})
    if not ind_heads:
        return claim.result(NOT_SUPPORTED, f"no head in layers 1+ has an induction score above {ind_t:.2f} "
                            f"(best {float(induction[1:].max()):.2f})", **evidence)
    if not prev_heads:
        return claim.result(NOT_SUPPORTED, f"induction heads {', '.join(_label(*h) for h in ind_heads)} found, but no "
                            f"earlier head has a previous-token score above {prev_t:.2f}", **evidence)
    if not composing:
        best = max(pairs, key=lambda x: x[2]) if pairs else None
        detail = f" (best {_label(*best[0])} -> {_label(*best[1])}: {best[2]:.2f})" if best else ""
        return claim.result(NOT_SUPPORTED, f"no previous-token head K-composes with an induction head above "
                            f"{comp_t:.2f}{detail}", **evidence)
    heads = sorted({i for _, i, _ in composing})
    ablated = ablated_logits(bridge, task, heads)
    a_first, a_repeat = split_loss(ablated, task)
    a_gain = a_first - a_repeat
    removed = 1 - a_gain / gain if gain > 0 else float("nan")
    numbers.update({"ablated_heads": ", ".join(_label(*h) for h in heads), "ablated_in_context_gain": _r(a_gain),
                    "gain_removed": _r(removed)})
    evidence["found"] = [f"{_label(*p)} -> {_label(*i)}" for p, i, _ in composing]
    circuit = ", ".join(f"{_label(*p)} -> {_label(*i)} (K-composition {c:.2f})" for p, i, c in composing)
    if gain < thr["min_gain"]:
        return claim.result(INCONCLUSIVE, f"circuit {circuit} found, but the model has almost no in-context gain "
                            f"to remove ({gain:.2f} nats < {thr['min_gain']})", **evidence)
    if removed >= thr["gain_removed"]:
        return claim.result(SUPPORTED, f"{circuit}; ablating {', '.join(_label(*h) for h in heads)} removes "
                            f"{removed:.0%} of the in-context gain ({gain:.2f} -> {a_gain:.2f} nats)", **evidence)
    return claim.result(NOT_SUPPORTED, f"{circuit}, but ablating {', '.join(_label(*h) for h in heads)} removes only "
                        f"{removed:.0%} of the in-context gain ({gain:.2f} -> {a_gain:.2f} nats)", **evidence)


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
    from ..analysis.heads import head_scores

    claim = NO_INDUCTION_ONE_LAYER
    tokens = _tokens(run, options)
    scores = head_scores(run.model, tokens=tokens)
    induction = scores.scores["induction"][0]
    best = int(induction.argmax())
    nulls = [head_scores(m, tokens=tokens).scores["induction"].max() for m in _null_models(run, options)]
    threshold = gumbel_threshold([float(v) for v in nulls], claim.thresholds["score_floor"])
    table = [{"head": _label(0, h), "induction": _r(induction[h]), "prev_token": _r(scores.scores["prev_token"][0, h]),
              "induction_head": bool(induction[h] > threshold)} for h in range(len(induction))]
    evidence = dict(layer="blocks.0", table=table, thresholds={**claim.thresholds, "induction": _r(threshold)},
                    numbers={"best_induction_score": _r(induction[best]), "induction_threshold": _r(threshold)},
                    found=[_label(0, h) for h in range(len(induction)) if induction[h] > threshold],
                    data={"induction": [induction.tolist()], "heads": [_label(0, h) for h in range(len(induction))]})
    if induction[best] > threshold:
        return claim.result(NOT_SUPPORTED, f"head {_label(0, best)} has an induction score of "
                            f"{float(induction[best]):.2f} (> {threshold:.2f}); with one layer it can only do that "
                            f"from positions (a task with a fixed repeat length?)", **evidence)
    return claim.result(SUPPORTED, f"no head reaches an induction score above {threshold:.2f} (best "
                        f"{_label(0, best)}: {float(induction[best]):.2f})", **evidence)


# -------------------------------------------------------------------------- copying heads


def diagonal_top(bridge) -> torch.Tensor:
    """For each head, the fraction of tokens its full OV circuit maps most strongly onto themselves ``(L, H)``.

    That is the behavioural definition of a copying head: attending to token t raises
    the logit of t above every other token's.
    """
    L, H = bridge.cfg.n_layers, bridge.cfg.n_heads
    out = torch.zeros(L, H)
    with torch.no_grad():
        for layer in range(L):
            for head in range(H):
                m = (bridge.W_E @ bridge.OV[layer, head] @ bridge.W_U).AB  # (vocab, vocab)
                out[layer, head] = (m.argmax(-1) == torch.arange(len(m), device=m.device)).float().mean()
    return out


def check_copying(run, options: CheckOptions) -> ClaimResult:
    from ..analysis.circuits import ov_copying_scores
    from ..zoo.gpt import to_bridge

    claim = COPYING_OV_POSITIVE
    thr = claim.thresholds
    bridge = to_bridge(run.model, fold_ln=True)
    diag = diagonal_top(bridge)
    eig = ov_copying_scores(bridge)
    nulls = _null_models(run, options)
    null_diag = [diagonal_top(to_bridge(m, fold_ln=True)) for m in nulls]
    null_eig = [ov_copying_scores(m) for m in nulls]
    copy_t = gumbel_threshold([float(d.max()) for d in null_diag], thr["copying_floor"])
    eig_t = gumbel_threshold([float(e.max()) for e in null_eig], thr["eigen_floor"])
    L, H = diag.shape
    copying = [(l, h) for l in range(L) for h in range(H) if diag[l, h] > copy_t]
    table = [{"head": _label(l, h), "copies_own_token": _r(diag[l, h]), "ov_eigenvalue_score": _r(eig[l, h]),
              "copying_head": (l, h) in copying, "positive": bool(eig[l, h] > eig_t)}
             for l in range(L) for h in range(H)]
    evidence = dict(layer="all heads", table=table, found=[_label(*c) for c in copying],
                    thresholds={**thr, "copying": _r(copy_t), "eigenvalue_score": _r(eig_t)},
                    numbers={"copying_heads": len(copying), "copying_threshold": _r(copy_t),
                             "eigen_threshold": _r(eig_t), "null_models": len(nulls)},
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


# -------------------------------------------------------------------------- figures


def plot_heads(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    data = result.data
    if "induction" not in data:
        return {}
    panels = [(k, np.array(data[k])) for k in ("prev_token", "induction") if k in data]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 0.5 * panels[0][1].shape[0] + 1.8),
                             squeeze=False, layout="tight")
    for ax, (name, values) in zip(axes[0], panels):
        ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(name.replace("_", "-") + " score", fontsize=9)
        ax.set_xticks(range(values.shape[1]))
        ax.set_yticks(range(values.shape[0]))
    return {"heads": fig}


def plot_copying(result: ClaimResult) -> dict:
    import numpy as np

    plt = pyplot()
    d = result.data
    if "diag" not in d:
        return {}
    fig, ax = plt.subplots(figsize=(4.4, 3.4), layout="tight")
    ax.scatter(d["null_diag"], d["null_eig"], s=10, color="#bbbbbb", label="re-initialised heads")
    ax.scatter(np.array(d["diag"]).flatten(), np.array(d["eig"]).flatten(), s=24, color="#d62728", label="model heads")
    ax.axvline(result.thresholds.get("copying", 0.5), ls="--", color="black", lw=0.8)
    ax.axhline(result.thresholds.get("eigenvalue_score", 0.0), ls="--", color="black", lw=0.8)
    ax.set_xlabel("fraction of tokens the OV circuit maps onto themselves", fontsize=8)
    ax.set_ylabel("OV eigenvalue score sum(l)/sum(|l|)", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return {"copying": fig}


# -------------------------------------------------------------------------- registration


INDUCTION_K_COMPOSITION = register_claim(Claim(
    id="induction-k-composition",
    statement="A 2-layer attention-only model trained on the induction task has an induction head in layer 1 that "
              "K-composes with a previous-token head in layer 0, and ablating it removes the in-context gain.",
    source=f"{FRAMEWORK}, section 'Two-Layer Attention-Only Transformers' (induction heads, K-composition); "
           f"{INDUCTION}, section 'Argument 1'",
    url=FRAMEWORK_URL + "#two-layer-attention-only-transformers",
    applies_to="transformer runs with two or more layers (attn-only or gpt), on repeated random token blocks",
    kind="transformer",
    thresholds={"score_floor": HEAD_SCORE_FLOOR, "composition_factor": 1.5, "gain_removed": 0.5, "min_gain": 0.1,
                "null": "99% Gumbel quantile of the best head (or head pair) in re-initialised copies"},
    check=check_induction, applies=_applies(min_layers=2), plot=plot_heads,
))

NO_INDUCTION_ONE_LAYER = register_claim(Claim(
    id="no-induction-one-layer",
    statement="A 1-layer attention-only model has no induction head.",
    source=f"{FRAMEWORK}, section 'One-Layer Attention-Only Transformers'; {INDUCTION}, section 'Argument 2'",
    url=FRAMEWORK_URL + "#one-layer-attention-only-transformers",
    applies_to="1-layer transformer runs, on repeated random token blocks",
    kind="transformer",
    thresholds={"score_floor": HEAD_SCORE_FLOOR,
                "null": "99% Gumbel quantile of the best head in re-initialised copies"},
    check=check_one_layer, applies=_applies(exact_layers=1), plot=plot_heads,
))

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
    check=check_copying, applies=_applies(min_layers=1), plot=plot_copying,
))
