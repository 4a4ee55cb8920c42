"""Claims across training seeds: siblings trained or reused, verdicts per seed, agreement."""

from __future__ import annotations

import json
import shutil

import pytest

from interp.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, ClaimResult, Verdict, check_claims
from interp.claims.seeds import agreement, check_across_seeds, seed_siblings, sibling_name
from interp.errors import InterpError


def result(status, value=0.5):
    return ClaimResult("curve-detectors", Verdict(status, f"because {status}"), "a statement", run="r",
                       headline={"value": value, "ci_low": value - 0.1, "ci_high": value + 0.1, "null_quantile": 0.2})


def test_agreement_of_every_seed_is_the_verdict():
    summary = agreement("curve-detectors", [(0, result(SUPPORTED)), (1, result(SUPPORTED)), (2, result(SUPPORTED))])
    assert summary.status == SUPPORTED and "3 of 3 training seeds" in summary.verdict.reason
    assert summary.numbers["agreeing"] == 3 and [row["seed"] for row in summary.table] == [0, 1, 2]
    assert summary.headline["value"] == 1.0


def test_a_verdict_that_flips_with_the_seed_is_inconclusive():
    summary = agreement("curve-detectors", [(0, result(SUPPORTED)), (1, result(NOT_SUPPORTED)),
                                            (2, result(SUPPORTED))])
    assert summary.status == INCONCLUSIVE
    assert "seed 1: not supported" in summary.verdict.reason
    assert summary.numbers["agreeing"] == 2 and summary.numbers["majority"] == SUPPORTED
    assert summary.headline["value"] == pytest.approx(2 / 3, abs=1e-3)


@pytest.fixture
def own_run(tiny_run_dir, tmp_path):
    from interp.runs import load_run

    shutil.copytree(tiny_run_dir, tmp_path / "models" / "tiny")
    return load_run(tmp_path / "models" / "tiny")


def test_siblings_are_trained_once_and_reused(own_run):
    runs = seed_siblings(own_run, 2, device="cpu", progress=False, log=None)
    assert [r.name for r in runs] == ["tiny", sibling_name(own_run, 1)]
    assert [r.config.train.seed for r in runs] == [0, 1]
    weights = runs[1].path / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = seed_siblings(own_run, 2, device="cpu", progress=False, log=None)
    assert again[1].path == runs[1].path and weights.stat().st_mtime_ns == stamp  # reused, not retrained
    summary, per_run = check_across_seeds(own_run, ["weight-banding"], 2,
                                          options=CheckOptions(device="cpu", null_models=3), log=None)
    assert len(per_run) == 2 and summary[0].settings["training_seeds"] == [0, 1]
    assert summary[0].numbers["training_seeds"] == 2


def test_a_sibling_with_another_recipe_is_never_overwritten(own_run):
    sibling = own_run.path.parent / sibling_name(own_run, 1)
    shutil.copytree(own_run.path, sibling)
    config = json.loads((sibling / "config.json").read_text())
    config["train"]["epochs"] += 1
    (sibling / "config.json").write_text(json.dumps(config))
    with pytest.raises(InterpError, match="another recipe"):
        seed_siblings(own_run, 2, device="cpu", progress=False, log=None)
    assert json.loads((sibling / "config.json").read_text())["train"]["epochs"] == config["train"]["epochs"]


def test_seeds_out_of_range_is_a_clear_error(cli):
    code, out, err = cli("claims", "check", "--seeds", "0")
    assert code == 2 and "argument --seeds: must be from 1 to 10, got 0" in err and "Traceback" not in err


def test_unit_verdicts_do_not_flip_with_the_check_seed(tiny_run):
    """A trained net checked with two --seed values: the unit-level verdicts agree (each is the consensus
    of three check seeds, so a count at the edge of chance is inconclusive on both)."""
    claims = ["complex-gabors", "curve-detectors", "high-low-frequency"]
    verdicts = [[r.status for r in check_claims(tiny_run, claims, seed=s, null_models=8)] for s in (0, 1)]
    assert verdicts[0] == verdicts[1], verdicts
