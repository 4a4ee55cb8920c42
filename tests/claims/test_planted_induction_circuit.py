"""Planted truth for ``induction-circuit``: circuit discovery on models whose answer is known.

- a 2-layer attention-only model with two heads per layer, trained on the induction task (600 steps,
  the recipe of tests/analysis/causal/test_transformer_circuits.py), forms one previous-token head in
  layer 0 that both layer-1 induction heads read as keys: supported, and the edge found is
  (argmax previous-token head of layer 0) -> (an induction head of layer 1).k;
- the same architecture untrained has no in-context gain: inconclusive, saying so;
- a 1-layer model, or a vision run, is outside the claim.

Measured once with the demo's recipe (four heads, 300 steps): inconclusive, the minimal circuit holds
54 of 81 edges, so a random circuit of that size would hold a previous-token -> induction K edge too.
"""

from __future__ import annotations

import pytest
import torch

from interp.analysis.causal.graph import Edge
from interp.analysis.language.bridge import bridge_hook_count
from interp.analysis.language.heads import head_scores
from interp.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, check_claims, get_claim
from interp.claims import induction_circuit as IC
from interp.claims.registry import default_claims
from interp.hooks import hook_count
from interp.zoo import reinitialized

RECIPE = {"steps_per_epoch": "20", "batch_size": "32", "lr": "3e-3", "grad_clip": "1.0", "n_head": "2"}
CLAIM = "induction-circuit"


def train_attn_only(root, name, *, epochs=30, **settings):
    from interp.training.loop import train

    return train("attn-only", "induction", name=name, epochs=epochs, seed=0, root=root, device="cpu", progress=False,
                 log=None, overrides={**RECIPE, **{k: str(v) for k, v in settings.items()}})


class RecordingGraph(IC.TransformerGraph):
    """The claim's graph, kept so a test can count the hooks left on its bridge afterwards."""

    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.baseline_hooks = hook_count(self.bridge)  # the bridge's own machinery, there before any of ours
        RecordingGraph.made.append(self)


def assert_no_hooks_left(graphs):
    assert graphs
    for graph in graphs:
        assert bridge_hook_count(graph.bridge) == 0 and hook_count(graph.bridge) == graph.baseline_hooks


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_attn_only(tmp_path_factory.mktemp("induction-circuit"), "two-layer")


@pytest.fixture(scope="module")
def checked(run):
    """The claim's result on the trained model, and the graphs it built."""
    RecordingGraph.made = []
    before = hook_count(run.model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IC, "TransformerGraph", RecordingGraph)
        (result,) = check_claims(run, [CLAIM])
    assert hook_count(run.model) == before
    return result, list(RecordingGraph.made)


def test_trained_model_supports_the_circuit_with_the_planted_edge(run, checked):
    result, _ = checked
    assert result.status == SUPPORTED, result.verdict.reason
    heads = head_scores(run)  # found independently of the claim's probe and thresholds
    prev = int(heads.prev_token[0].argmax())
    assert heads.prev_token[0, prev] > 2 * heads.prev_token[0].min()  # one clear previous-token head
    inductive = [h for h in range(heads.shape[1]) if heads.induction[1, h] > 0.5]
    planted = {str(Edge(f"L0H{prev}", f"L1H{h}.k")) for h in inductive}
    assert result.numbers["edge"] in planted and planted & set(result.found), (result.numbers["edge"], planted)
    assert result.numbers["path_patch_ci"][1] < 0  # patching the edge alone hurts the induction loss
    assert result.numbers["edge_k_composition"] > result.numbers["k_composition_threshold"]
    assert result.numbers["k_composition_threshold"] > result.numbers["random_matrix_k_composition"]


def test_headline_is_the_minimal_circuits_faithfulness_against_random_circuits(checked):
    result, _ = checked
    h, n = result.headline, result.numbers
    assert h["value"] >= 0.8 and h["ci_low"] > h["null_quantile"], h
    assert h["null_quantile"] == pytest.approx(n["random_high"], abs=1e-3) and h["null_level"] == 0.95
    assert n["minimal_size"] <= n["edges"] // 2  # a small part of the model
    assert n["random_circuits"] >= 10 and n["chance_random_circuit_holds_a_candidate"] < 0.95
    # The table is the minimal circuit in rank order, the claimed edges marked with their evidence.
    rows = result.table
    assert len(rows) == n["minimal_size"] and [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    claimed = [r for r in rows if r["claimed_edge"]]
    assert {r["edge"] for r in claimed} == set(result.found)
    assert all(r["prev_token_source"] and r["induction_target"] and r["input"] == "k" for r in claimed)
    assert all(r["path_patch_ci"][1] < 0 and r["k_composition"] is not None for r in claimed)
    assert not any(r["claimed_edge"] for r in rows if r["input"] != "k")


def test_the_check_leaves_no_hooks_also_when_it_raises(run, checked, monkeypatch):
    assert_no_hooks_left(checked[1])
    RecordingGraph.made = []

    class FailingGraph(RecordingGraph):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            calls, metric = [0], self.metric_fn

            def fragile(logits, tokens):  # fails inside the hooked forward pass, after EAP-IG
                calls[0] += 1
                if calls[0] > 3:
                    raise RuntimeError("metric failed")
                return metric(logits, tokens)

            self.metric_fn = fragile

    monkeypatch.setattr(IC, "TransformerGraph", FailingGraph)
    with pytest.raises(RuntimeError, match="metric failed"):
        check_claims(run, [CLAIM], null_models=2)
    assert_no_hooks_left(RecordingGraph.made)


def test_untrained_model_has_no_gain_and_no_verdict(run):
    untrained = run.__class__(run.path, run.config, reinitialized(run.model, seed=99))
    (result,) = check_claims(untrained, [CLAIM], null_models=2)
    assert result.status == INCONCLUSIVE and "in-context gain" in result.verdict.reason, result.verdict.reason
    assert result.numbers["in_context_gain_ci"][1] < 0.1 and "train it longer" in result.verdict.reason
    assert result.headline["value"] == pytest.approx(result.numbers["in_context_gain"], abs=1e-3)


def test_one_layer_and_vision_runs_are_outside_the_claim(tmp_path, tiny_run, run):
    one = train_attn_only(tmp_path, "one-layer", epochs=1, n_layer=1, steps_per_epoch=1)
    claim = get_claim(CLAIM)
    assert "at least 2 layers" in claim.applies(one) and "not one" in claim.applies(tiny_run)
    assert claim.applies(run) is None
    assert CLAIM not in [c.id for c in default_claims(one)] + [c.id for c in default_claims(run)]  # when named
    (result,) = check_claims(one, [CLAIM])
    assert result.status == INCONCLUSIVE and result.verdict.reason.startswith("does not apply"), result.verdict.reason


def test_containment_chance_matches_drawing_circuits():
    g = torch.Generator().manual_seed(0)
    for n, m, k in [(29, 2, 9), (81, 16, 54), (10, 3, 1)]:
        draws = torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(4000)])
        simulated = float((draws < m).any(1).float().mean())  # edges 0..m-1 are the candidates
        assert IC.containment_chance(n, m, k) == pytest.approx(simulated, abs=0.03), (n, m, k)
    assert IC.containment_chance(29, 0, 9) == 0.0 and IC.containment_chance(5, 2, 4) == 1.0


def _heads(prev_heads, ind_heads):
    comp = torch.zeros(2, 2, 2, 2)
    comp[0, 0, 1, 0] = 0.3
    return {"prev_heads": prev_heads, "ind_heads": ind_heads, "comp": comp, "comp_t": 0.2, "prev_t": 0.12,
            "ind_t": 0.06, "prev": torch.full((2, 2), 0.05), "induction": torch.full((2, 2), 0.02)}


class Patch:
    def __init__(self, effect, ci):
        self.effect, self.ci = effect, ci


@pytest.mark.parametrize("case, status, words", [
    ("random-like circuit", INCONCLUSIVE, "no better than random"),
    ("no induction head", NOT_SUPPORTED, "no head in layers 1+"),
    ("no K edge", NOT_SUPPORTED, "holds no K edge"),
    ("K edge from another head", INCONCLUSIVE, "none of those is a previous-token head"),
    ("edge hurts", NOT_SUPPORTED, "hurts"),
    ("patching reaches 0", INCONCLUSIVE, "reaches 0"),
    ("any circuit holds it", INCONCLUSIVE, "not singled the edge out"),
    ("supported", SUPPORTED, "L0H0->L1H0.k"),
])
def test_verdict_branches(case, status, words):
    """Each way the conjunction can fail has its own verdict (the planted models reach only some of them)."""
    edge, other = Edge("L0H0", "L1H0.k"), Edge("L0H1", "L1H0.k")
    best = {"size": 9, "faithfulness": 0.95, "ci": (0.9, 0.99), "random_high": 0.2}
    heads, claimed, into, passing = _heads([(0, 0)], [(1, 0)]), [edge], [edge], [edge]
    patches, chance = {edge: Patch(-1.0, (-1.2, -0.8))}, 0.5
    if case == "random-like circuit":
        best["random_high"] = 0.95
    elif case == "no induction head":
        heads = _heads([(0, 0)], [])
    elif case in ("no K edge", "K edge from another head"):
        claimed, passing, into = [], [], [other] if case == "K edge from another head" else []
    elif case == "edge hurts":
        passing, patches = [], {edge: Patch(0.5, (0.3, 0.7))}
    elif case == "patching reaches 0":
        passing, patches = [], {edge: Patch(-0.1, (-0.3, 0.1))}
    elif case == "any circuit holds it":
        chance = 0.99
    got, reason = IC.decide(heads, best, 29, claimed, into, passing, patches, chance, "train it longer")
    assert got == status and words in reason, reason
