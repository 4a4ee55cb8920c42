"""Vision claims, shown right in both directions.

Each claim is checked on a *planted* model, whose weights are written by hand so that
the claim holds (Gabor kernels in conv1, a unit wired to detect one curve, ...): the
verdict must be "supported" and the planted units the ones found. The same
architecture with random weights must give "not supported". Random models use seeds
from 100 on, away from the seeds of the null copies (1, 2, ...).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from interp.analysis.vision import tuning
from interp.analysis.vision.gabor import fit_gabors, gabor_families, gabor_kernels, null_filters
from interp.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, check_claims, get_claim, list_claims
from interp.stats import largest_gap
from interp.results.claims import claims_dir, load_claims, save_claims
from interp.results.store import settings_hash
from interp.errors import InterpError
from interp.hooks import hook_count
from interp.runs import Run
from interp.training.loop import make_config
from interp.zoo import create_model

NULLS = 8  # re-initialised copies per check: 128 pooled null units for a 16-unit conv2, quick on CPU
PLANTED = 4  # units planted per unit-level claim: one unit alone is never enough evidence for a layer


# --------------------------------------------------------------------------- planting helpers


def as_run(model, name="planted", model_name="tutorial"):
    """A run around a model built in the test (no folder): shapes-like preprocessing."""
    cfg = make_config(model_name, "shapes")
    data = replace(cfg.data, input_shape=(3, 32, 32), mean=(0.5,) * 3, std=(0.25,) * 3,
                   classes=tuple(str(i) for i in range(10)))
    return Run(Path(name), replace(cfg, data=data), model.eval())


def random_run(seed, model_name="tutorial"):
    torch.manual_seed(seed)
    return as_run(create_model(model_name), f"random{seed}", model_name)


def gabor(orientation, freq=0.22, phase=0.0, sigma=1.2, k=5):
    """A k x k Gabor whose bars run along ``orientation`` (degrees, counter-clockwise, y up)."""
    p = torch.tensor([[math.radians(orientation + 90), freq, math.radians(phase), sigma, 0.0, 0.0]])
    return gabor_kernels(p, k)[0]


def set_conv1(model, kernels, bias=0.0):
    """conv1 filter i = kernels[i] on every colour channel (luminance), the rest zero."""
    with torch.no_grad():
        model.conv1.weight.zero_()
        for i, kernel in enumerate(kernels):
            model.conv1.weight[i] = kernel[None].expand(3, -1, -1) / 3
        model.conv1.bias.fill_(bias)


def silence_conv2(model):
    with torch.no_grad():
        model.conv2.weight.zero_()
        model.conv2.bias.fill_(-0.01)


def plant_complex(model, unit=0, orientation=45.0):
    """conv1: a quadrature set of Gabors at one orientation and two at the orthogonal one; the conv2 unit
    sums the four (phase-invariant energy) and is inhibited by the orthogonal pair."""
    f, sigma = 0.3, 2.0
    set_conv1(model, [gabor(orientation, f, p, sigma) for p in (0, 90, 180, 270)]
              + [gabor(orientation + 90, f, p, sigma) for p in (0, 90)])
    silence_conv2(model)
    with torch.no_grad():
        model.conv2.weight[unit, 0:4, 2, 2] = 1.0
        model.conv2.weight[unit, 4:6, 2, 2] = -3.0
        model.conv2.bias[unit] = -20.0


def plant_curve(model, unit=0, orientation=90.0, radius_px=5.0):
    """conv1: white and black bar detectors at 0, 60, 120 degrees; the conv2 unit weights the detector
    matching the arc's tangent at each tap on an arc (taps are 2 px apart after the pooling)."""
    bars = [0, 60, 120]
    set_conv1(model, [gabor(o, 0.2) for o in bars] + [-gabor(o, 0.2) for o in bars])
    r = radius_px / 2
    a = math.radians(orientation)
    cx, cy = -r * math.cos(a), -r * math.sin(a)  # circle centre in tap coordinates (x right, y up)
    w = torch.zeros(6, 5, 5)
    for row in range(5):
        for col in range(5):
            x, y = col - 2, 2 - row
            phi = math.atan2(y - cy, x - cx)
            off = (phi - a + math.pi) % (2 * math.pi) - math.pi
            if abs(off) > math.radians(75) or abs(math.hypot(x - cx, y - cy) - r) > 0.6:
                continue
            tangent = (math.degrees(phi) + 90) % 180
            match = min(range(3), key=lambda i: min(abs(bars[i] - tangent), 180 - abs(bars[i] - tangent)))
            for polarity in (0, 3):
                w[polarity + match, row, col] += 1.0
                for other in range(3):
                    if other != match:
                        w[polarity + other, row, col] -= 0.5
    silence_conv2(model)
    with torch.no_grad():
        model.conv2.weight[unit] = w
        model.conv2.bias[unit] = -7.0


def laplacian(k=5):
    w = torch.zeros(k, k)
    w[k // 2 - 1:k // 2 + 2, k // 2 - 1:k // 2 + 2] = -1 / 8
    w[k // 2, k // 2] = 1.0
    return w


def plant_high_low(model, unit=0):
    """conv1: +/- high-pass filters (texture energy); the conv2 unit: texture on its left minus on its right."""
    set_conv1(model, [laplacian(), -laplacian()] + [torch.zeros(5, 5)] * 4)
    silence_conv2(model)
    with torch.no_grad():
        model.conv1.bias[2:] = -1.0
        model.conv2.weight[unit, 0:2, :, 0:2] = 1.0
        model.conv2.weight[unit, 0:2, :, 3:5] = -1.0
        model.conv2.bias[unit] = -6.0


def exponential_images(n=600, size=32, seed=0, mean=0.08):
    """Grey images whose pixels are i.i.d. 0.05 + Exponential(mean): an input with exponential tails."""
    g = torch.Generator().manual_seed(seed)
    x = 0.05 - mean * torch.log(torch.rand(n, 1, size, size, generator=g).clamp_min(1e-12))
    return x.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def plant_exponential(model):
    """Every conv2 unit reads one pixel (through a conv1 delta filter and the max-pool): on images whose
    pixels are exponential, its pre-activation has an exponential tail."""
    delta = torch.zeros(5, 5)
    delta[2, 2] = 1.0
    set_conv1(model, [delta] + [torch.zeros(5, 5)] * 5)
    with torch.no_grad():
        model.conv1.bias[0] = 2.0  # inputs are >= -2 after normalisation: the ReLU passes everything
        model.conv1.bias[1:] = -1.0
        model.conv2.weight.zero_()
        model.conv2.weight[:, 0, 2, 2] = 1.0
        model.conv2.bias.fill_(-1.13)  # fires on about 20% of positions


def replicate(model, unit, copies):
    """Copy conv2 ``unit`` (weights and bias) into the next ``copies - 1`` units: planted units come in
    groups, since one unit of a 16-unit layer passing a 1% null is what chance gives 15% of the time."""
    with torch.no_grad():
        for u in range(unit + 1, unit + copies):
            model.conv2.weight[u] = model.conv2.weight[unit]
            model.conv2.bias[u] = model.conv2.bias[unit]
    return [f"conv2:{u}" for u in range(unit, unit + copies)]


def check(run, claim, **kwargs):
    (result,) = check_claims(run, [claim], null_models=NULLS, **kwargs)
    assert hook_count(run.model) == 0
    return result


# --------------------------------------------------------------------------- registry


def test_every_claim_has_statement_source_and_thresholds():
    ids = [c.id for c in list_claims()]
    assert len(ids) == len(set(ids))
    for claim in list_claims():
        assert claim.statement.endswith(".") and claim.source and claim.url.startswith("https://")
        assert claim.applies_to and isinstance(claim.thresholds, dict)
    assert {"gabor-first-layer", "orientation-tiling", "complex-gabors", "curve-detectors", "high-low-frequency",
            "exponential-tail", "weight-banding"} <= set(ids)


def test_unknown_claim_id_lists_the_valid_ones():
    from interp.errors import InterpError

    with pytest.raises(InterpError, match="unknown claim id 'curve-detector'.*did you mean 'curve-detectors'"):
        get_claim("curve-detector")


def test_claims_that_do_not_apply_are_inconclusive_with_the_reason():
    run = random_run(100)
    results = check_claims(run, ["induction-k-composition", "inceptionv1-mixed3b-curves"])
    assert [r.status for r in results] == [INCONCLUSIVE, INCONCLUSIVE]
    assert "transformer" in results[0].verdict.reason
    assert "--weights" in results[1].verdict.reason and "--download" in results[1].verdict.reason


# --------------------------------------------------------------------------- Gabor fitting


def test_fit_gabors_recovers_planted_parameters():
    orientations = [0, 30, 60, 90, 120, 150]
    kernels = torch.stack([gabor(o, freq=0.25, sigma=1.3) for o in orientations])
    weights = kernels[:, None].expand(-1, 3, -1, -1) * torch.tensor([1.0, 0.8, 1.2]).view(1, 3, 1, 1)
    fits = fit_gabors(weights)
    assert bool((fits.r2 > 0.99).all())
    err = torch.remainder(fits.orientation - torch.tensor(orientations, dtype=torch.float32) + 90, 180) - 90
    assert err.abs().max() < 3.0
    assert torch.allclose(fits.freq, torch.full((6,), 0.25), atol=0.02)
    colour = fits.colour / fits.colour.norm(dim=1, keepdim=True)
    assert torch.allclose(colour, torch.tensor([1.0, 0.8, 1.2]) / math.sqrt(3.08), atol=0.01)


def test_fit_gabors_explains_little_of_random_filters():
    fits = fit_gabors(null_filters((3, 5, 5), 64, seed=5))
    assert float(fits.r2.max()) < 0.5


def test_gabor_families_colour_contrast_and_blobs():
    edge = gabor(0, freq=0.1, phase=90, sigma=1.5)
    opponent = edge[None] * torch.tensor([1.0, -1.0, 0.0]).view(3, 1, 1)  # red against green
    blob = gabor_kernels(torch.tensor([[0.0, 0.0, 0.0, 1.2, 0.0, 0.0]]), 5)[0].expand(3, -1, -1)
    stripes = gabor(0, freq=0.25, sigma=1.3)
    fits = fit_gabors(torch.stack([opponent, blob, edge.expand(3, -1, -1), stripes.expand(3, -1, -1)]))
    # A luminance edge with under half a cycle across its envelope (0.1 x 2 x 1.5 = 0.3) is a ramp in a 5x5
    # kernel, not band-pass: not a Gabor. Colour contrast needs no band-pass.
    assert gabor_families(fits, 0.5) == ["colour contrast", "other", "other", "gabor"]


# --------------------------------------------------------------------------- first layer and tiling


def test_gabor_first_layer_planted_supported():
    model = create_model("tutorial")
    set_conv1(model, [gabor(o) for o in (0, 30, 60, 90, 120, 150)])
    result = check(as_run(model), "gabor-first-layer")
    assert result.status == SUPPORTED
    assert result.found == [f"conv1:{i}" for i in range(6)]
    assert result.numbers["gabor"] == 1.0


@pytest.mark.parametrize("seed", [100, 101, 102])
def test_gabor_first_layer_random_not_supported(seed):
    result = check(random_run(seed), "gabor-first-layer")
    assert result.status == NOT_SUPPORTED and result.found == []


def test_orientation_tiling_planted_and_clustered():
    spread = create_model("tutorial")
    set_conv1(spread, [gabor(o) for o in (0, 30, 60, 90, 120, 150)])
    result = check(as_run(spread), "orientation-tiling")
    assert result.status == SUPPORTED and result.numbers["largest_gap_deg"] < 35
    clustered = create_model("tutorial")
    set_conv1(clustered, [gabor(30, phase=p) for p in (0, 60, 120, 180, 240, 300)])
    assert check(as_run(clustered), "orientation-tiling").status == NOT_SUPPORTED


@pytest.mark.parametrize("seed", [100, 101])
def test_orientation_tiling_random_not_supported(seed):
    assert check(random_run(seed), "orientation-tiling").status == NOT_SUPPORTED


def test_largest_gap_against_brute_force():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        a = torch.rand(5, generator=g) * 180
        brute = max(min((float(y) - float(x)) % 180 or 180 for y in a if y is not x) for x in a)
        assert largest_gap(a) == pytest.approx(brute, abs=1e-4)


# --------------------------------------------------------------------------- complex cells


def test_complex_gabor_planted_supported():
    model = create_model("tutorial")
    plant_complex(model)
    planted = replicate(model, 0, PLANTED)
    result = check(as_run(model), "complex-gabors")
    assert result.status == SUPPORTED and result.found == planted, result.verdict.reason
    row = result.table[0]
    assert row["orientation"] == 45.0 and row["modulation_f1_f0"] < 0.5


@pytest.mark.parametrize("seed", [100, 101])
def test_complex_gabor_random_not_supported(seed):
    assert check(random_run(seed), "complex-gabors").status == NOT_SUPPORTED


# --------------------------------------------------------------------------- curve detectors


@pytest.mark.parametrize("orientation", [90.0, 0.0])
def test_curve_detector_planted_supported_at_its_orientation(orientation):
    model = create_model("tutorial")
    plant_curve(model, unit=3, orientation=orientation)
    planted = replicate(model, 3, PLANTED)
    result = check(as_run(model), "curve-detectors")
    assert result.status == SUPPORTED and result.found == planted, result.verdict.reason
    row = result.table[3]
    assert abs((row["orientation"] - orientation + 180) % 360 - 180) < 15
    assert row["curvature_preference"] > 0.5 and row["polarity_ratio"] > 0.5


@pytest.mark.parametrize("seed", [100, 101, 102])
def test_curve_detectors_random_not_supported(seed):
    assert check(random_run(seed), "curve-detectors").status == NOT_SUPPORTED


# --------------------------------------------------------------------------- high-low frequency


def test_high_low_planted_supported():
    model = create_model("tutorial")
    plant_high_low(model, unit=5)
    planted = replicate(model, 5, PLANTED)
    result = check(as_run(model), "high-low-frequency")
    assert result.status == SUPPORTED and result.found == planted, result.verdict.reason
    assert result.table[5]["orientation"] == 180.0  # high frequency on the left


@pytest.mark.parametrize("seed", [100, 101])
def test_high_low_random_not_supported(seed):
    assert check(random_run(seed), "high-low-frequency").status == NOT_SUPPORTED


# --------------------------------------------------------------------------- exponential tails


def test_hazard_ratio_reference_distributions():
    g = torch.Generator().manual_seed(0)
    exp = -torch.rand(1, 200_000, generator=g).log()
    gauss = torch.randn(1, 200_000, generator=g)
    pareto = torch.rand(1, 200_000, generator=g).pow(-1 / 3)  # power law, tail index 3
    assert float(tuning.hazard_ratio(exp)) == pytest.approx(1.0, abs=0.1)
    assert float(tuning.hazard_ratio(gauss)) > 1.8
    assert float(tuning.hazard_ratio(pareto)) < 0.6
    assert torch.isnan(tuning.hazard_ratio(torch.rand(1, 100))).all()  # too few values


def test_exponential_tail_planted_supported():
    model = create_model("tutorial")
    plant_exponential(model)
    result = check(as_run(model), "exponential-tail", images=exponential_images())
    assert result.status == SUPPORTED and len(result.found) == 16


@pytest.mark.parametrize("seed", [100, 101])
def test_exponential_tail_random_not_supported(seed):
    result = check(random_run(seed), "exponential-tail", images=exponential_images())
    assert result.status in (NOT_SUPPORTED, INCONCLUSIVE)
    assert result.status == NOT_SUPPORTED or "too few" in result.verdict.reason


# --------------------------------------------------------------------------- weight banding


def banded(model, layer):
    with torch.no_grad():
        w = getattr(model, layer).weight
        w.copy_(w[:, :, :, :1].expand_as(w) + 0.1 * w.std() * torch.randn_like(w))


def test_banding_score_reference():
    rows, cols = tuning.banding_score(torch.randn(8, 8, 5, 1).expand(8, 8, 5, 5))
    assert rows == pytest.approx(1.0) and cols == pytest.approx(0.0, abs=1e-6)
    rows, cols = tuning.banding_score(null_filters((64, 3, 3), 256, seed=0))
    assert rows == pytest.approx(0.25, abs=0.03) and cols == pytest.approx(0.25, abs=0.03)


def test_weight_banding_gap_planted_supported_and_random_not():
    torch.manual_seed(100)
    model = create_model("cnn-gap")
    banded(model, "conv3")
    result = check(as_run(model, model_name="cnn-gap"), "weight-banding")
    assert result.status == SUPPORTED and result.found == ["conv3"]
    assert check(random_run(100, "cnn-gap"), "weight-banding").status == NOT_SUPPORTED


def test_weight_banding_flatten_predicts_no_bands():
    """With flatten + fc the claim predicts no bands: a banded planted layer contradicts it; "no bands"
    is also what random weights give, so it cannot confirm the claim: inconclusive, with the reason."""
    model = create_model("tutorial")
    banded(model, "conv2")
    assert check(as_run(model), "weight-banding").status == NOT_SUPPORTED
    result = check(random_run(100), "weight-banding")
    assert result.status == INCONCLUSIVE and "random weights" in result.verdict.reason


# --------------------------------------------------------------------------- InceptionV1


def test_inception_angle_mapping_recovers_rotation_and_reflection():
    from interp.claims.inception import MIXED3B_CURVES
    from interp.stats import angle_match

    published = torch.tensor(list(MIXED3B_CURVES.values()))
    ours = torch.remainder(-(published - 40.0) + torch.tensor([3, -4, 2, 0, -1, 5, -2, 1, 4, -3.0]), 360)
    match = angle_match(ours, published, permutations=200)
    assert match["sign"] == -1 and match["offset"] == pytest.approx(40.0, abs=4) and match["median_error"] < 5
    assert match["p_value"] < 0.02
    shuffled = angle_match(ours[torch.tensor([3, 7, 0, 9, 1, 5, 8, 2, 6, 4])], published, permutations=200)
    assert shuffled["p_value"] > 0.05


def test_inception_conv2d0_planted_families_supported_and_random_not():
    from interp.runs import load_run

    run = load_run("inceptionv1", weights="random")
    result = check(run, "inceptionv1-conv2d0-families")
    assert result.status == NOT_SUPPORTED and "random" in " ".join(result.notes)
    # Planted: 28 Gabors, 27 colour-contrast edges, 9 random filters (44% / 42% / 14%).
    w = run.model.conv2d0_pre_relu_conv.weight
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i in range(64):
            if i < 28:
                w[i] = gabor(i * 180 / 28, freq=0.2, sigma=1.8, k=7)[None].expand(3, -1, -1)
            elif i < 55:
                edge = gabor(i * 360 / 27, freq=0.08, phase=90, sigma=2.0, k=7)
                w[i] = edge[None] * torch.tensor([1.0, -0.8, 0.2]).view(3, 1, 1)
            else:
                w[i] = torch.randn(3, 7, 7, generator=g) * 0.1
    result = check(run, "inceptionv1-conv2d0-families")
    assert result.status == SUPPORTED, result.verdict.reason
    assert result.numbers["gabor"] == pytest.approx(28 / 64, abs=0.02)


@pytest.mark.slow
def test_inception_published_units_random_weights_not_supported():
    from interp.runs import load_run

    run = load_run("inceptionv1", weights="random")
    for claim in ("inceptionv1-mixed3a-high-low", "inceptionv1-mixed3b-curves"):
        assert check(run, claim).status == NOT_SUPPORTED


# --------------------------------------------------------------------------- results, saving, hooks


def test_results_save_and_load_round_trip(tmp_path):
    model = create_model("tutorial")
    plant_curve(model)
    replicate(model, 0, PLANTED)
    results = check_claims(as_run(model), ["curve-detectors", "weight-banding", "complex-gabors"],
                           null_models=NULLS)
    path = save_claims(results, tmp_path / "claims")
    saved = json.loads(path.read_text())
    assert [r["claim"] for r in saved["results"]] == ["curve-detectors", "weight-banding", "complex-gabors"]
    assert saved["results"][0]["verdict"]["status"] == SUPPORTED
    for r in results:
        assert r.figures, r.claim
        for file in r.figures.values():
            assert (tmp_path / "claims" / file).read_bytes()[:4] == b"\x89PNG"
    loaded = load_claims(tmp_path / "claims")
    assert [r.to_dict() for r in loaded] == [r.to_dict() for r in results]


def test_claims_dir_is_under_the_report(tmp_path):
    run = random_run(100)
    assert claims_dir(run).parts[-2:] == ("random100", "claims")


def test_no_hooks_left_after_an_error():
    run = random_run(100)

    def broken(x):
        raise RuntimeError("boom")

    probe = tuning.Probe(run.model, broken, (3, 32, 32))
    with pytest.raises(RuntimeError, match="boom"):
        probe.responses("conv2", torch.rand(2, 3, 32, 32))  # the receptive field needs no normalize; responses do
    assert hook_count(run.model) == 0
    with pytest.raises(InterpError, match="no spatial output"):
        probe.receptive_field("fc1")
    assert hook_count(run.model) == 0


def test_unknown_layer_option_is_a_clear_error():
    from interp.errors import InterpError

    with pytest.raises(InterpError, match="unknown layer 'conv9'"):
        check_claims(random_run(100), ["curve-detectors"], layer="conv9")


# --------------------------------------------------------------------------- CLI


def test_cli_list(cli):
    code, out, _ = cli("claims", "list")
    assert code == 0 and "curve-detectors" in out and "induction-k-composition" in out
    code, out, _ = cli("claims", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and any(c["id"] == "weight-banding" for c in listed)
    assert set(listed[0]) == {"id", "kind", "statement", "source", "url", "applies_to", "thresholds"}


def test_cli_unknown_claim_is_exit_2(cli):
    code, _, err = cli("claims", "check", "--claim", "curves")
    assert code == 2 and "unknown claim id 'curves'" in err and "curve-detectors" in err
    assert "Traceback" not in err


def test_cli_inception_without_weights_says_how_to_get_them(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code, _, err = cli("claims", "check", "--run", "inceptionv1", "--claim", "inceptionv1-mixed3b-curves")
    assert code == 2 and "--weights PATH" in err and "--download" in err
    code, _, err = cli("claims", "check", "--weights", str(tmp_path / "missing.pth"))
    assert code == 2 and "does not exist" in err


def test_cli_check_writes_results_and_json(cli, tiny_run_dir, monkeypatch):
    monkeypatch.setenv("INTERP_MODELS_DIR", str(tiny_run_dir.parent))
    code, out, err = cli("claims", "check", "--run", "tiny", "--claim", "weight-banding", "--claim",
                         "no-induction-one-layer", "--null-models", "2")
    assert code == 0, err
    assert "weight-banding" in out and "inconclusive" in out and "does not apply" in out
    saved = load_claims(Path(err.strip().split("Saved: ")[-1]).parent)
    assert [r.claim for r in saved] == ["weight-banding", "no-induction-one-layer"]
    code, out, _ = cli("claims", "check", "--run", "tiny", "--claim", "weight-banding", "--json", "--no-save")
    # A flatten head: "no bands" is what random weights give too, so it cannot confirm the claim.
    described = json.loads(out)
    assert code == 0 and described["results"][0]["verdict"]["status"] in (INCONCLUSIVE, NOT_SUPPORTED)
    assert described["kind"] == "claims" and described["run"] == "tiny" and described["saved"] is None
    assert {"claim", "verdict", "numbers", "headline", "settings"} <= set(described["results"][0])
    code, out, _ = cli("claims", "check", "--run", "tiny", "--claim", "weight-banding", "--json", "--null-models", "2")
    described = json.loads(out)
    assert code == 0 and described["saved"].endswith("claims.json") and "data" not in described["results"][0]


def test_cli_bad_options_are_exit_2(cli):
    code, _, err = cli("claims", "check", "--null-models", "1")
    assert code == 2 and "--null-models" in err


def test_any_conv_net_through_model_run():
    from torch import nn

    from interp.claims import model_run

    torch.manual_seed(100)
    net = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 5), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8 * 10 * 10, 10))
    run = model_run(net, name="my-net", input_shape=(3, 32, 32))
    results = check_claims(run, ["gabor-first-layer", "curve-detectors", "weight-banding"], null_models=3)
    assert [r.status for r in results] == [NOT_SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE]
    assert results[1].layer == "3" and "cannot tell" in results[2].verdict.reason
    assert hook_count(net) == 0
    odd = model_run(net, input_shape=(3, 32, 48))
    assert check_claims(odd, ["curve-detectors"])[0].status == INCONCLUSIVE


def test_first_layer_and_tail_figures_render(tmp_path):
    model = create_model("tutorial")
    set_conv1(model, [gabor(o) for o in (0, 30, 60, 90, 120, 150)])
    results = check_claims(as_run(model), ["gabor-first-layer", "orientation-tiling", "high-low-frequency"],
                           null_models=3)
    tails = create_model("tutorial")
    plant_exponential(tails)
    results += check_claims(as_run(tails), ["exponential-tail"], images=exponential_images(300))
    save_claims(results, tmp_path)
    names = sorted(f for r in results for f in r.figures.values())
    key = {r.claim: settings_hash(r.settings) for r in results}
    assert names == [f"exponential-tail-{key['exponential-tail']}-tails.png",
                     f"gabor-first-layer-{key['gabor-first-layer']}-filters.png",
                     f"high-low-frequency-{key['high-low-frequency']}-scatter.png",
                     f"orientation-tiling-{key['orientation-tiling']}-orientations.png"]
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)


def test_save_claims_keeps_every_verdict(tmp_path):
    """Checking one claim again never wipes the others; other settings are kept beside the new result."""
    run = random_run(100)
    first = check_claims(run, ["weight-banding", "gabor-first-layer"], null_models=3)
    save_claims(first, tmp_path / "claims")
    figure = first[1].figures["filters"]
    assert (tmp_path / "claims" / figure).exists()
    second = check_claims(run, ["weight-banding"], null_models=3)  # same settings: replaces its earlier result
    save_claims(second, tmp_path / "claims")
    assert [r.claim for r in load_claims(tmp_path / "claims")] == ["weight-banding", "gabor-first-layer"]
    assert load_claims(tmp_path / "claims", earlier=True) == []
    assert (tmp_path / "claims" / figure).exists()  # the other claim's figure stays
    third = check_claims(run, ["gabor-first-layer"], null_models=3, seed=1)  # other settings: both kept
    save_claims(third, tmp_path / "claims")
    latest = {r.claim: r for r in load_claims(tmp_path / "claims")}
    assert latest["gabor-first-layer"].settings["seed"] == 1
    (older,) = load_claims(tmp_path / "claims", earlier=True)
    assert older.claim == "gabor-first-layer" and older.settings["seed"] == 0
    assert (tmp_path / "claims" / older.figures["filters"]).exists()
    assert (tmp_path / "claims" / latest["gabor-first-layer"].figures["filters"]).exists()
    assert older.figures["filters"] != latest["gabor-first-layer"].figures["filters"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claims"]  # no temporary folder left


def test_a_bare_model_is_a_clear_error():
    from interp.errors import InterpError

    with pytest.raises(InterpError, match="model_run"):
        check_claims(create_model("tutorial"), ["curve-detectors"])
