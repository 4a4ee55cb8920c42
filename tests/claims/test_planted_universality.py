"""universality-across-seeds on planted truth: two seeds of the tutorial net share features beyond the
null; a network against its own weight-shuffled copy does not."""

from __future__ import annotations

import base64

import pytest

from interp.analysis.vision.universality import null_subject
from interp.claims import NOT_SUPPORTED, SUPPORTED, CheckOptions, check_claims
from interp.claims.registry import default_claims, get_claim
from interp.claims.universality import check_universality
from interp.hooks import hook_count

IMAGES = 200


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tutorial net trained for 8 epochs on 2,000 shapes images (2 epochs barely move conv1 from its
    initialisation), and the claim checked on it: its seed-1 sibling is trained beside it."""
    from interp.runs import load_run
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("universality-models")
    train("tutorial", "shapes", name="t8", epochs=8, root=root, device="cpu", progress=False, log=None,
          overrides={"n_train": "2000", "n_test": "500"})
    run = load_run(root / "t8")
    (result,) = check_claims(run, ["universality-across-seeds"], device="cpu", max_images=IMAGES)
    return run, result


def test_two_training_seeds_match_beyond_the_null(trained):
    run, result = trained
    h = result.headline
    assert result.status == SUPPORTED, result.verdict.reason
    assert h["ci_low"] > h["null_quantile"] and result.numbers["other_run"] == "t8-seed1"
    assert (run.path.parent / "t8-seed1" / "model.safetensors").is_file()
    assert result.numbers["null_models"] == 16 and result.numbers["images"] == IMAGES
    assert result.numbers["conv2_mean_best_r"] > result.numbers["conv2_null_q95"]
    assert {row["unit"] for row in result.table} == {f"conv1:{i}" for i in range(6)} | {f"conv2:{i}" for i in range(16)}
    assert result.found and set(result.found) <= {row["unit"] for row in result.table if row["beyond_null"]}
    assert hook_count(run.model) == 0


def test_matched_pairs_carry_both_units_examples(trained):
    _, result = trained
    pairs = result.data["pairs"]
    assert [p["layer"] for p in pairs] == ["conv1"] * 4 + ["conv2"] * 4
    conv2 = [p["r"] for p in pairs if p["layer"] == "conv2"]
    assert conv2 == sorted(conv2, reverse=True)
    for p in pairs:
        for key in ("a_examples", "b_examples"):
            assert base64.b64decode(p[key]).startswith(b"\x89PNG")


def test_a_net_against_its_own_shuffled_weights_is_not_supported(trained):
    run, _ = trained
    result = check_universality(run, null_subject(run, "shuffled", 0), CheckOptions(max_images=IMAGES, seed=0))
    assert result.status == NOT_SUPPORTED, result.verdict.reason
    assert result.headline["value"] <= result.headline["null_quantile"]


def test_the_claim_is_checked_only_when_named(trained):
    run, _ = trained
    assert get_claim("universality-across-seeds").on_request
    assert "universality-across-seeds" not in [c.id for c in default_claims(run)]


def test_the_claims_page_shows_the_matched_pairs_side_by_side(trained, tmp_path):
    from interp.report.claims_pages import contribute
    from interp.report.registry import ReportContext
    from interp.report.render import render_pages
    from interp.results.claims import load_claims, save_claims

    run, result = trained
    save_claims([result], tmp_path / "report" / "claims")
    assert load_claims(tmp_path / "report" / "claims")[0].data["pairs"][0]["a"] == result.data["pairs"][0]["a"]
    ctx = ReportContext(run=run, root=tmp_path / "report", log=None)
    contribute(ctx)
    render_pages(ctx)
    html = (tmp_path / "report" / "claims.html").read_text()
    assert 'id="claim-universality-across-seeds"' in html and "best match in t8-seed1" in html
    assert html.count("data:image/png;base64,") == 2 * len(result.data["pairs"])
