"""Transformer claims on hand-built circuits (planted) and on random weights.

The planted 2-layer model is the induction circuit of "A Mathematical Framework for
Transformer Circuits" written out in weights: a previous-token head in layer 0 copies
each token into a "previous token" subspace; the induction head in layer 1 matches its
query (the current token) against that subspace with its keys (K-composition) and
copies the token found into the subspace the unembedding reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from interp.analysis.language.in_context import ablated_logits, split_loss
from interp.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, check_claims
from interp.claims import transformers as T
from interp.config import DataConfig, RunConfig
from interp.data.text import InductionSpec
from interp.runs import Run
from interp.zoo import create_model

V, CTX = 16, 32  # vocabulary (0 is BOS) and context
C = 80           # token (16) + position (32) + previous token (16) + output (16) subspaces
TOK, POS, PREV, OUT = 0, V, V + CTX, V + CTX + V
NULLS = 3


def tx_run(model, name="planted", min_block=4, max_block=8):
    cfg = model.config
    spec = InductionSpec(vocab_size=cfg.vocab_size, seq_len=cfg.block_size, min_block=min_block, max_block=max_block)
    data = DataConfig(name="induction", vocab=spec.vocabulary().tokens,
                      options={"vocab_size": cfg.vocab_size, "min_block": min_block, "max_block": max_block})
    config = RunConfig(model="attn-only", family="gpt", task="language-model", model_config=asdict(cfg), data=data)
    return Run(Path(name), config, model.eval())


def blank(n_layer):
    model = create_model("attn-only", n_layer=n_layer, n_head=2, n_embd=C, vocab_size=V, block_size=CTX,
                         layer_norm=False)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.token_embedding.weight[:, TOK:TOK + V] = torch.eye(V)
        model.position_embedding.weight[:, POS:POS + CTX] = torch.eye(CTX)
    return model


def qkv(block):
    w = block.attn.qkv.weight
    return w[:C], w[C:2 * C], w[2 * C:]  # views into the fused weight; head 0 uses dims 0..39


SHARP = 40.0 * math.sqrt(C // 2)  # undoes the 1/sqrt(head size) scaling and makes attention one-hot


def induction_model():
    model = blank(2)
    with torch.no_grad():
        q, k, v = qkv(model.blocks[0])  # L0H0: previous-token head
        for p in range(CTX):
            q[p, POS + p] = SHARP
            if p + 1 < CTX:
                k[p + 1, POS + p] = 1.0  # a key at position p answers the query at p + 1
        for t in range(V):
            v[t, TOK + t] = 1.0
            model.blocks[0].attn.proj.weight[PREV + t, t] = 1.0
        q, k, v = qkv(model.blocks[1])  # L1H0: induction head
        for t in range(V):
            q[t, TOK + t] = SHARP
            k[t, PREV + t] = 1.0  # K-composition: keys read what L0H0 wrote
            v[t, TOK + t] = 1.0
            model.blocks[1].attn.proj.weight[OUT + t, t] = 1.0
        model.lm_head.weight[:, OUT:OUT + V] = 12.0 * torch.eye(V)
    return model


def positional_one_layer(offset):
    """One layer whose head 0 attends from q to q - offset + 1: on blocks repeated with period
    ``offset`` that is the token after the previous copy, an induction pattern from positions alone."""
    model = blank(1)
    with torch.no_grad():
        q, k, _ = qkv(model.blocks[0])
        for p in range(CTX):
            q[p, POS + p] = SHARP
            if p + offset - 1 < CTX:
                k[p + offset - 1, POS + p] = 1.0
    return model


def random_model(n_layer, seed):
    torch.manual_seed(seed)
    return create_model("attn-only", n_layer=n_layer, n_head=2, n_embd=C, vocab_size=V, block_size=CTX,
                        layer_norm=False)


def check(run, claim, **kwargs):
    kwargs.setdefault("null_models", NULLS)
    (result,) = check_claims(run, [claim], **kwargs)
    return result


# --------------------------------------------------------------------------- induction + K-composition


def test_planted_circuit_predicts_repeats():
    model = induction_model()
    tokens = T._task_tokens(tx_run(model), T.CheckOptions())
    first, repeat = split_loss(model(tokens), tokens)
    assert repeat < 0.01 and first > 2.0


def test_induction_k_composition_planted_supported():
    result = check(tx_run(induction_model()), "induction-k-composition")
    assert result.status == SUPPORTED, result.verdict.reason
    assert result.found == ["L0H0 -> L1H0"]
    # Without L0H0 the induction head attends to every earlier token and still favours tokens seen
    # before, which keeps part of the gain; without L1H0 none is left.
    assert result.numbers["gain_removed_by_k_composing_heads"] > 0.5
    assert result.numbers["gain_removed_by_induction_heads"] > 0.9
    rows = {r["head"]: r for r in result.table}
    assert rows["L1H0"]["induction_head"] and rows["L0H0"]["k_composes"]
    assert not rows["L1H1"]["induction_head"] and not rows["L0H1"]["k_composes"]
    h = result.headline
    assert h["ci_low"] <= h["value"] <= h["ci_high"] and h["value"] > h["null_quantile"]


@pytest.mark.parametrize("seed", [100, 101])
def test_induction_k_composition_random_is_inconclusive(seed):
    """An untrained model has no in-context gain: nothing to find, so the verdict says what would decide."""
    result = check(tx_run(random_model(2, seed)), "induction-k-composition")
    assert result.status == INCONCLUSIVE and result.found == []
    assert "in-context gain" in result.verdict.reason and "train" in result.verdict.reason


def test_null_models_are_honoured():
    result = check(tx_run(induction_model()), "induction-k-composition", null_models=6)
    assert result.numbers["null_models"] == 6


def test_induction_without_ablation_effect_is_not_supported():
    """Induction and previous-token heads that K-compose, but whose output the model does not use:
    ablating them removes nothing, so the claim's last part fails."""
    model = induction_model()
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.copy_(torch.linspace(0, 1, V))
    result = check(tx_run(model), "induction-k-composition")
    assert result.status in (NOT_SUPPORTED, INCONCLUSIVE)
    assert "gain" in result.verdict.reason


def test_split_loss_against_a_loop():
    torch.manual_seed(0)
    tokens = torch.tensor([[0, 3, 4, 5, 3, 4, 5, 3], [0, 7, 8, 7, 8, 7, 8, 7]])
    logits = torch.randn(2, 8, V)
    first, repeat = split_loss(logits, tokens)
    seen, new = [], []
    for b in range(2):
        for t in range(7):
            loss = float(F.cross_entropy(logits[b, t][None], tokens[b, t + 1][None]))
            if tokens[b, t] in tokens[b, :t]:
                seen.append(loss)
            elif t > 0:
                new.append(loss)
    assert first == pytest.approx(sum(new) / len(new), rel=1e-5)
    assert repeat == pytest.approx(sum(seen) / len(seen), rel=1e-5)


def test_ablation_leaves_no_hooks_and_matches_zeroed_weights():
    from interp.analysis.language.bridge import bridge_hook_count, to_bridge

    model = induction_model()
    bridge = to_bridge(model)
    tokens = next(iter(T._probe(tx_run(model), T.CheckOptions()).values()))[:4]
    ablated = ablated_logits(bridge, tokens, [(1, 0)])
    assert bridge_hook_count(bridge) == 0
    reference = induction_model()
    with torch.no_grad():
        reference.blocks[1].attn.proj.weight[:, :C // 2] = 0.0  # head 0's output never reaches the residual
        expected = reference(tokens)
    assert torch.allclose(ablated.cpu(), expected, atol=1e-4)


# --------------------------------------------------------------------------- one layer


@pytest.mark.parametrize("seed", [100, 101])
def test_one_layer_random_has_no_induction_head(seed):
    assert check(tx_run(random_model(1, seed)), "no-induction-one-layer").status == SUPPORTED


def test_one_layer_positional_head_is_not_an_induction_head():
    """A head attending 14 back fakes induction on blocks of 15 tokens, and only there: the probe spans
    several block lengths (a run trained on one length gets lengths from 3 to 15), so it is flagged as
    length-dependent and not counted."""
    result = check(tx_run(positional_one_layer(15), min_block=15, max_block=15), "no-induction-one-layer")
    assert result.status == SUPPORTED and result.found == []
    row = {r["head"]: r for r in result.table}["L0H0"]
    assert row["length_dependent"] and row["induction_block_15"] > 0.9 and row["induction"] < 0.1
    assert any("position" in note for note in result.notes)


def test_one_layer_claim_does_not_apply_to_two_layers():
    result = check(tx_run(induction_model()), "no-induction-one-layer")
    assert result.status == INCONCLUSIVE and "1-layer" in result.verdict.reason


# --------------------------------------------------------------------------- copying heads


def test_copying_planted_supported():
    result = check(tx_run(induction_model()), "copying-ov-positive")
    assert result.status == SUPPORTED and result.found == ["L1H0"]
    rows = {r["head"]: r for r in result.table}
    assert rows["L1H0"]["ov_eigenvalue_score"] > 0.95 and rows["L1H0"]["copies_own_token"] == 1.0


def test_copying_head_with_negative_eigenvalues_is_not_supported():
    """A head that copies 9 of 16 tokens (a copying head by behaviour) but suppresses the other 7:
    its eigenvalues are 9 x (+3) and 7 x (-3), a score of 0.125, no better than random heads."""
    model = induction_model()
    with torch.no_grad():
        model.blocks[1].attn.proj.weight[OUT:OUT + V, :V] = torch.diag(torch.tensor([3.0] * 9 + [-3.0] * 7))
    result = check(tx_run(model), "copying-ov-positive")
    assert result.found == ["L1H0"]
    score = {r["head"]: r for r in result.table}["L1H0"]["ov_eigenvalue_score"]
    assert score == pytest.approx(0.125, abs=0.05)
    assert result.status == NOT_SUPPORTED and "L1H0" in result.verdict.reason


@pytest.mark.parametrize("seed", [100, 101])
def test_copying_random_not_supported(seed):
    result = check(tx_run(random_model(2, seed)), "copying-ov-positive")
    assert result.status == NOT_SUPPORTED and result.found == []


def test_gumbel_threshold():
    assert T.gumbel_threshold([0.1], 0.3) == 0.3
    maxima = [0.2, 0.25, 0.22, 0.3]
    t = T.gumbel_threshold(maxima, 0.0, lift=1.0)
    assert t >= max(maxima) and t < 0.5
    assert T.gumbel_threshold(maxima, 0.9) == 0.9
    # A tight null (nearly uniform random attention) needs a lift: twice the typical best.
    assert T.gumbel_threshold([0.022, 0.0221, 0.0219]) == pytest.approx(2 * 0.022)


# --------------------------------------------------------------------------- cue tokens (Clever Hans for text)


CUE = 5


def cue_model():
    """1 layer; head 0 attends to the cue token wherever it is and pushes the logit of token 9 up."""
    model = blank(1)
    with torch.no_grad():
        model.position_embedding.weight[:, C - 1] = 1.0  # a constant direction every position has
        q, k, v = qkv(model.blocks[0])
        q[0, C - 1] = SHARP
        k[0, TOK + CUE] = 1.0
        v[0, TOK + CUE] = 1.0
        model.blocks[0].attn.proj.weight[OUT + 9, 0] = 4.0
        model.lm_head.weight[:, OUT:OUT + V] = torch.eye(V)
    return model


def test_cue_token_planted_supported():
    result = check(tx_run(cue_model()), "cue-token", cue=str(CUE))
    assert result.status == SUPPORTED and result.found == [str(CUE)]
    assert result.numbers["placebo_max"] < 1e-4 < result.numbers["cue_effect"]


@pytest.mark.parametrize("seed", [100, 101])
def test_cue_token_random_not_supported(seed):
    result = check(tx_run(random_model(1, seed)), "cue-token", cue=str(CUE))
    assert result.status == NOT_SUPPORTED


def test_cue_token_needs_a_cue_and_a_known_token():
    from interp.errors import InterpError

    run = tx_run(cue_model())
    assert check(run, "cue-token").status == INCONCLUSIVE
    with pytest.raises(InterpError, match="unknown tokens"):
        check(run, "cue-token", cue="zebra")
    # Not checked unless named: it needs the cue.
    assert "cue-token" not in [r.claim for r in check_claims(run, None, null_models=NULLS)]
