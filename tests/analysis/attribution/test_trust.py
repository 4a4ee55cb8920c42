"""Trust checks: deletion/insertion on planted models, the randomisation sanity check, save/load, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from interp.analysis.attribution.attribute import attribute
from interp.analysis.attribution.trust import (
    deletion_insertion, pixel_ranks, randomized_copy, sanity_check, spearman, trust_report,
)
from interp.errors import InterpError
from interp.hooks import hook_count
from interp.results.attribution import load_trust, save_trust


class QuadrantSum(nn.Module):
    """Two classes; the logit of class 0 is the summed top-left quadrant, class 1 its negative."""

    def __init__(self, scale: float = 0.01):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, x):
        s = x[:, :, :16, :16].sum((1, 2, 3)) * self.scale
        return torch.stack([s, -s], 1)


class Linear(nn.Module):
    """flatten -> fc1: IG from a zero baseline is input x weight, so the weights are visible in the map."""

    def __init__(self, size: int = 16):
        super().__init__()
        torch.manual_seed(0)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(3 * size * size, 3)

    def forward(self, x):
        return self.fc1(self.flatten(x))


def positive_images(n: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) + 0.5


def test_pixel_ranks_match_a_brute_force_sort():
    scores = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(1))
    scores[0, 0, :3] = 0.5  # ties: the lower flat index ranks first
    ranks = pixel_ranks(scores)
    for i in range(3):
        flat = scores[i].flatten().tolist()
        order = sorted(range(len(flat)), key=lambda j: (-flat[j], j))
        assert [order.index(j) for j in range(len(flat))] == ranks[i].flatten().tolist()


def test_deletion_and_insertion_rank_the_right_map_first():
    model = QuadrantSum()
    x = positive_images(2)
    attr = attribute(model, x, 0, ["saliency"])  # |gradient|: the quadrant, nothing else
    reverse = replace(attr, maps={"saliency": 1 - attr.maps["saliency"] / attr.maps["saliency"].max()})
    # Insertion from black: a blurred copy has the same quadrant sum, so this model would not notice blur.
    good = deletion_insertion(model, attr, steps=16, insertion_baseline="black")
    bad = deletion_insertion(model, reverse, steps=16, insertion_baseline="black", random_reference=False)
    # The right map kills the prediction early (low deletion AUC) and builds it early (high insertion AUC).
    assert good.auc("deletion")["saliency"] < good.auc("deletion")["random"] < bad.auc("deletion")["saliency"]
    assert good.auc("insertion")["saliency"] > good.auc("insertion")["random"] > bad.auc("insertion")["saliency"]
    # Ends of the curves: the image itself and the fully replaced image.
    with torch.no_grad():
        p_image = model(x).softmax(1)[:, 0].numpy()
        p_black = model(torch.zeros_like(x)).softmax(1)[:, 0].numpy()
    d = good.deletion["saliency"]
    np.testing.assert_allclose(d[:, 0], p_image, rtol=1e-5)
    np.testing.assert_allclose(d[:, -1], p_black, rtol=1e-5)
    np.testing.assert_allclose(good.insertion["saliency"][:, -1], p_image, rtol=1e-5)
    # Deleting the first quarter of pixels (the quadrant) leaves the black image's probability.
    np.testing.assert_allclose(d[:, 4], p_black, rtol=1e-5)
    for kind in ("deletion", "insertion"):
        assert all(0 <= v <= 1 for v in good.auc(kind).values())


def test_auc_of_a_constant_curve_is_its_value():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.tensor([[0.0, np.log(3.0)]]).expand(len(x), 2) + self.w * x.sum()

    model = Constant()
    attr = attribute(model, positive_images(1), 1, ["saliency"])
    curves = deletion_insertion(model, attr, steps=8)
    assert curves.auc("deletion")["saliency"] == pytest.approx(0.75)
    assert curves.auc("insertion")["random"] == pytest.approx(0.75)


def test_randomized_copy():
    model = Linear()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy = randomized_copy(model, seed=1)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])  # the original is untouched
        assert not torch.allclose(copy.state_dict()[k], v)
    assert float(copy.fc1.weight.std()) == pytest.approx(float(model.fc1.weight.std()), rel=0.05)  # same scale
    torch.testing.assert_close(randomized_copy(model, seed=1).fc1.weight, copy.fc1.weight)  # seeded
    same = randomized_copy(model, layers=[])
    torch.testing.assert_close(same.fc1.weight, model.fc1.weight)
    with pytest.raises(InterpError, match="unknown layer 'fc9'"):
        randomized_copy(model, layers=["fc9"])


def test_spearman():
    from scipy.stats import spearmanr

    a = np.random.default_rng(0).random(50)
    b = np.random.default_rng(1).random(50)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman(a, 2 * a + 1) == pytest.approx(1.0)
    assert np.isnan(spearman(a, np.zeros(50)))


def test_sanity_check_low_for_randomised_model_and_one_for_an_unchanged_copy():
    model = Linear()
    x = positive_images(4, size=16)
    check = sanity_check(model, x, 0, ["saliency", "ig"], seed=3)
    rho = check.mean()
    # The maps show the weights; new random weights give unrelated maps.
    assert abs(rho["saliency"]) < 0.25 and abs(rho["ig"]) < 0.25
    control = sanity_check(model, x, 0, ["saliency", "ig"], layers=[])  # nothing randomised: identical maps
    assert control.mean()["saliency"] == pytest.approx(1.0) and control.mean()["ig"] == pytest.approx(1.0)
    assert hook_count(model) == 0


def test_trust_report_save_load_and_hooks(tiny_run):
    data = tiny_run.load_data(progress=False)
    report = trust_report(tiny_run, sample=3, methods="ig,gradcam,deeplift", data=data, steps=8, curve_steps=8)
    assert report.methods == ["ig", "gradcam", "deeplift"] and len(report.sources) == 3
    rows = report.table()
    assert [r["method"] for r in rows] == ["ig", "gradcam", "deeplift", "random"]
    assert report.completeness is not None and len(report.completeness.relative_error) == 3
    assert hook_count(tiny_run.model) == 0
    paths = save_trust(report)
    assert paths["json"].parent == tiny_run.report_dir() / "attribution"
    assert paths["curves_png"].stat().st_size > 1000 and paths["sanity_png"].stat().st_size > 1000
    meta = json.loads(paths["json"].read_text())
    assert meta["table"][0]["deletion_auc"] == pytest.approx(rows[0]["deletion_auc"])
    back = load_trust(paths["json"])
    assert [r["method"] for r in back.table()] == [r["method"] for r in rows]
    for r, b in zip(rows, back.table()):
        assert b["deletion_auc"] == pytest.approx(r["deletion_auc"])
        assert b["insertion_auc"] == pytest.approx(r["insertion_auc"])
    with pytest.raises(InterpError, match="not found"):
        load_trust(paths["json"].parent / "elsewhere" / "trust.json")
    # The store reads it back whole, and describe() is plain JSON.
    import interp.results as results

    assert meta["kind"] == "attribution-trust" and results.kind_of(report).name == "attribution-trust"
    again = results.load(paths["json"])
    for m in report.curves.methods:
        np.testing.assert_array_equal(again.curves.deletion[m], report.curves.deletion[m])
        np.testing.assert_array_equal(again.sanity.correlations.get(m, np.zeros(0)),
                                      report.sanity.correlations.get(m, np.zeros(0)))
    torch.testing.assert_close(again.completeness.attribution_sum, report.completeness.attribution_sum)
    assert again.options == report.options and again.sources == report.sources
    described = results.describe(report)
    assert described["kind"] == "attribution-trust" and described["table"][0]["method"] == "ig"
    json.dumps(described, allow_nan=False)
    # Checks of other settings go beside trust.json, which stays as it was.
    other = save_trust(replace(report, options={**report.options, "steps": 99}))
    assert other["json"] != paths["json"] and other["json"].name.startswith("trust-")
    assert other["curves_png"].name == other["json"].stem + "-deletion-insertion.png"
    assert json.loads(paths["json"].read_text()) == meta
    assert load_trust(other["json"]).options["steps"] == 99


def test_cli_attribute_trust(cli, tiny_run_dir, tmp_path):
    code, out, err = cli("attribute", "trust", "--run", str(tiny_run_dir), "--sample", "2", "--methods",
                         "saliency,occlusion", "--curve-steps", "4", "--no-progress", "--out", str(tmp_path))
    assert code == 0, err
    assert "deletion AUC" in out and "random ranking" in out and (tmp_path / "trust.json").is_file()
    code, _, err = cli("attribute", "trust", "--run", str(tiny_run_dir), "--methods", "lime")
    assert code == 2 and "unknown method 'lime'" in err
    code, _, err = cli("attribute", "trust", "--run", str(tiny_run_dir), "--sample", "0")
    assert code == 2 and "argument --sample: must be from 1 to 10,000, got 0" in err


def test_cli_attribute_trust_json(cli, tiny_run_dir, tmp_path):
    code, out, err = cli("attribute", "trust", "--run", str(tiny_run_dir), "--sample", "2", "--methods", "saliency",
                         "--curve-steps", "4", "--no-progress", "--json", "--out", str(tmp_path))
    assert code == 0, err
    d = json.loads(out)
    assert d["kind"] == "attribution-trust" and [r["method"] for r in d["table"]] == ["saliency", "random"]
    assert {"curves", "sanity", "headline", "sources", "saved"} <= set(d) and len(d["sources"]) == 2
    assert d["saved"] == str(tmp_path / "trust.json")
