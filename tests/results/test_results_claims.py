"""Saved claim results: the store's ``claims`` kind, its JSON, the report page and the pipeline.

The claims page only reads what is saved; :func:`interp.pipelines.claims.ensure` is what
checks claims for a report, and only when none are saved.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import interp.results
from interp.claims import NOT_SUPPORTED, SUPPORTED, ClaimResult, ClaimSet, Verdict, check_claims
from interp.report import ReportContext
from interp.report.render import render_pages
from interp.results.claims import RESULTS_FILE, describe_claims, load_claims, save_claims
from interp.runs import Run
from interp.terminal import claims_table
from interp.training.loop import make_config
from interp.zoo import create_model


def random_run(seed=100, name="random"):
    torch.manual_seed(seed)
    cfg = make_config("tutorial", "shapes")
    data = replace(cfg.data, input_shape=(3, 32, 32), mean=(0.5,) * 3, std=(0.25,) * 3,
                   classes=tuple(str(i) for i in range(10)))
    return Run(Path(name), replace(cfg, data=data), create_model("tutorial").eval())


def made_up_result(claim="curve-detectors", status=SUPPORTED, **evidence) -> ClaimResult:
    """A result written by hand (no check run): NaN and tensors included, as checks produce them."""
    evidence.setdefault("numbers", {"units": 16, "p_value": float("nan"), "share": torch.tensor(0.25)})
    return ClaimResult(claim, Verdict(status, "made up for the test"), "a statement", "a source", run="random",
                       layer="conv2", found=["conv2:3"], table=[{"unit": "conv2:3", "score": 0.5}],
                       settings={"seed": 0, "null_models": 2, "images": 1000}, **evidence)


@pytest.fixture(scope="module")
def banding_results():
    """A real (quick) check: weight-banding on a random tutorial net, with its figure data."""
    return check_claims(random_run(), ["weight-banding"], null_models=2)


def test_store_round_trip(tmp_path, banding_results):
    results = banding_results + [made_up_result()]
    path = interp.results.save(ClaimSet(results), tmp_path / "claims")
    assert path == tmp_path / "claims" / RESULTS_FILE
    saved = json.loads(path.read_text())
    assert saved["kind"] == "claims" and [r["claim"] for r in saved["results"]] == ["weight-banding",
                                                                                  "curve-detectors"]
    loaded = interp.results.load(path)
    assert isinstance(loaded, ClaimSet) and loaded.run == "random" and loaded.earlier == []
    assert [r.to_dict() for r in loaded.results] == [r.to_dict() for r in results]
    assert banding_results[0].figures == {"banding": banding_results[0].figures["banding"]}
    assert (tmp_path / "claims" / banding_results[0].figures["banding"]).read_bytes()[:4] == b"\x89PNG"
    # The plain function and the store read the same file.
    assert [r.to_dict() for r in load_claims(tmp_path / "claims")] == [r.to_dict() for r in loaded.results]


def test_other_settings_are_kept_through_the_store(tmp_path):
    interp.results.save(ClaimSet([made_up_result()]), tmp_path)
    again = made_up_result(status=NOT_SUPPORTED)
    again.settings = {**again.settings, "seed": 1}
    path = interp.results.save(ClaimSet([again]), tmp_path)
    loaded = interp.results.load(path)
    assert [r.status for r in loaded.results] == [NOT_SUPPORTED]
    assert [(r.status, r.settings["seed"]) for r in loaded.earlier] == [(SUPPORTED, 0)]


def test_describe_is_json(banding_results):
    claims = ClaimSet(banding_results + [made_up_result()], run="random")
    described = interp.results.describe(claims)
    text = json.dumps(described, allow_nan=False)
    assert described["kind"] == "claims" and described["run"] == "random"
    assert set(described) == {"kind", "run", "results", "earlier"}
    first = json.loads(text)["results"][0]
    assert first["claim"] == "weight-banding" and first["verdict"]["status"] in (SUPPORTED, NOT_SUPPORTED,
                                                                                  "inconclusive")
    assert "data" not in first  # figure data stays in claims.json
    assert described == {"kind": "claims", **describe_claims(claims)}
    assert described["results"][1]["numbers"]["p_value"] is None  # NaN is not JSON


def test_claims_page_renders_from_saved_results_without_computing(tmp_path, monkeypatch):
    import interp.claims.registry
    import interp.pipelines.claims

    def no_checks(*args, **kwargs):
        raise AssertionError("the report page must not check claims")

    monkeypatch.setattr(interp.claims.registry, "check_claims", no_checks)
    monkeypatch.setattr(interp.pipelines.claims, "check_claims", no_checks)
    from interp.report import claims_pages

    save_claims([made_up_result(), made_up_result("weight-banding", NOT_SUPPORTED)], tmp_path / "claims")
    ctx = ReportContext(run=random_run(), root=tmp_path, log=None)
    claims_pages.contribute(ctx)
    page = ctx.pages["claims.html"]
    assert [s.id for s in page.sections] == ["summary", "claim-curve-detectors", "claim-weight-banding"]
    render_pages(ctx)
    html = (tmp_path / "claims.html").read_text()
    assert 'id="claim-curve-detectors"' in html and "made up for the test" in html
    interp.pipelines.claims.ensure(ctx)  # results are saved: nothing to check


def test_claims_page_without_saved_results_is_empty(tmp_path):
    from interp.report import claims_pages

    ctx = ReportContext(run=random_run(), root=tmp_path, log=None)
    claims_pages.contribute(ctx)
    assert ctx.pages == {} and not (tmp_path / "claims").exists()


def test_ensure_checks_and_saves_when_nothing_is_saved(tmp_path, monkeypatch):
    import interp.pipelines.claims as pipeline

    seen = {}

    def fake_check(run, ids=None, *, options=None, **kwargs):
        seen["options"] = options
        return [made_up_result()]

    monkeypatch.setattr(pipeline, "check_claims", fake_check)
    ctx = ReportContext(run=random_run(), root=tmp_path, log=None, seed=3)
    pipeline.ensure(ctx)
    assert seen["options"].null_models == pipeline.REPORT_NULL_MODELS and seen["options"].seed == 3
    assert [r.claim for r in load_claims(tmp_path / "claims")] == ["curve-detectors"]


def test_claims_table_lists_each_verdict():
    text = claims_table([made_up_result(), made_up_result("weight-banding", NOT_SUPPORTED, notes=["a note"])])
    assert "curve-detectors" in text and "not supported" in text and "note: a note" in text
