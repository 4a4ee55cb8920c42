"""Planted truth for the head claims: trained models whose answer is known, each verdict asserted.

- a 2-layer attention-only model trained on the induction task (the demo's recipe, several
  seeds) forms the induction circuit: ``induction-k-composition`` is supported;
- the same model untrained has no in-context gain: inconclusive, with what would decide it;
- a 1-layer model trained on varying block lengths has no induction head: ``no-induction-one-layer``
  is supported;
- a 1-layer model trained on one fixed repeat length (31 tokens) fakes induction there by position:
  its heads are flagged as length-dependent and are not induction heads.
"""

from __future__ import annotations

import pytest

from interp.claims import INCONCLUSIVE, SUPPORTED, check_claims
from interp.zoo import reinitialized

RECIPE = {"steps_per_epoch": "10", "batch_size": "32", "lr": "3e-3", "grad_clip": "1.0"}
"""The demo's recipe (interp.pipelines.language.DEMO_SETTINGS): 300 steps, the phase change in ~200."""
NULLS = 8


def train_attn_only(root, name, *, seed=0, dataset="induction", **settings):
    from interp.training.loop import train

    return train("attn-only", dataset, name=name, epochs=30, seed=seed, root=root, device="cpu", progress=False,
                 log=None, overrides={**RECIPE, **{k: str(v) for k, v in settings.items()}})


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("planted-heads")


def verdict(run, claim):
    (result,) = check_claims(run, [claim], null_models=NULLS)
    return result


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow),
                                  pytest.param(3, marks=pytest.mark.slow)])
def test_trained_two_layer_model_has_the_induction_circuit(root, seed):
    run = train_attn_only(root, f"two-layer-{seed}", seed=seed)
    result = verdict(run, "induction-k-composition")
    assert result.status == SUPPORTED, result.verdict.reason
    assert result.numbers["gain_removed_by_k_composing_heads"] >= 0.5
    assert result.numbers["gain_removed_by_induction_heads"] >= 0.5
    h = result.headline
    assert h["ci_low"] > h["null_quantile"], h  # the whole interval clears the null
    untrained = run.__class__(run.path, run.config, reinitialized(run.model, seed=99))
    result = verdict(untrained, "induction-k-composition")
    assert result.status == INCONCLUSIVE and "in-context gain" in result.verdict.reason, result.verdict.reason


def test_one_layer_model_has_no_induction_head(root):
    run = train_attn_only(root, "one-layer", n_layer=1)
    result = verdict(run, "no-induction-one-layer")
    assert result.status == SUPPORTED, result.verdict.reason


def test_one_layer_model_trained_on_one_length_is_positional_not_induction(root):
    run = train_attn_only(root, "one-length", dataset="induction:min_block=31,max_block=31", n_layer=1)
    result = verdict(run, "no-induction-one-layer")
    assert result.status == SUPPORTED, result.verdict.reason
    rows = result.table
    assert max(r["induction_block_31"] for r in rows) > 0.5  # at its own length it looks like induction
    assert all(r["induction"] < result.numbers["induction_threshold"] for r in rows)
    assert any(r["length_dependent"] for r in rows) and any("position" in n for n in result.notes)
