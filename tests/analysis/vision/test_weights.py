"""Weight views: filters, strongest inputs by kernel norm, fc weights folded back onto the conv grid."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from interp.analysis.vision.weights import filter_images, layer_weights
from interp.results.vision import heatmap_row, load_weight_views, save_weight_views


def test_first_layer_filters_are_rgb_scaled_symmetrically(tiny_run):
    views = layer_weights(tiny_run, "conv1")
    w = tiny_run.model.conv1.weight.detach()
    assert views.filters.shape == (6, 3, 5, 5) and views.input_layer == "input"
    scale = w.abs().max()
    torch.testing.assert_close(views.filters, 0.5 + 0.5 * w / scale)
    assert views.filter_scale == pytest.approx(float(scale))
    assert views.filters.min() >= 0 and views.filters.max() <= 1
    assert torch.equal(filter_images(torch.zeros(1, 3, 2, 2), 1.0)[0], torch.full((1, 3, 2, 2), 0.5))


def test_deeper_conv_units_rank_inputs_by_kernel_norm(tiny_run):
    views = layer_weights(tiny_run, "conv2", [0, 9], top=4)
    assert views.filters is None and views.input_layer == "conv1"
    w = tiny_run.model.conv2.weight.detach()
    for unit in (0, 9):
        uw = views.unit(unit)
        norms = w[unit].flatten(1).norm(dim=1)
        assert uw.inputs == torch.argsort(norms, descending=True)[:4].tolist()
        torch.testing.assert_close(uw.norms, norms[uw.inputs])
        assert torch.equal(uw.kernels, w[unit, uw.inputs])
        assert uw.total_inputs == 6


def test_planted_strongest_input(tiny_run):
    run = copy.copy(tiny_run)
    run.model = copy.deepcopy(tiny_run.model)
    planted = torch.zeros(5, 5)
    planted[2] = 3.0  # a strong horizontal bar from conv1 unit 4
    with torch.no_grad():
        run.model.conv2.weight[7, 4] = planted
    uw = layer_weights(run, "conv2", [7], top=2).unit(7)
    assert uw.inputs[0] == 4 and torch.equal(uw.kernels[0], planted)


def test_fc_after_conv_is_folded_back_to_spatial_maps(tiny_run):
    views = layer_weights(tiny_run, "fc1", [0, 100], top=5)
    assert views.input_layer == "conv2" and views.settings["folded"]
    w = tiny_run.model.fc1.weight.detach().view(120, 16, 5, 5)  # pool2's (16, 5, 5) output, flattened
    uw = views.unit(100)
    assert uw.kernels.shape == (5, 5, 5) and uw.total_inputs == 16
    assert uw.inputs == torch.argsort(w[100].flatten(1).norm(dim=1), descending=True)[:5].tolist()
    assert torch.equal(uw.kernels, w[100, uw.inputs])
    after_fc = layer_weights(tiny_run, "fc2", [3], top=3)
    assert after_fc.input_layer == "fc1" and after_fc.unit(3).kernels.shape == (3, 1, 1)
    assert not after_fc.settings["folded"]


def test_heatmap_colours_red_excitatory_blue_inhibitory():
    row = heatmap_row(torch.tensor([[[1.0]], [[-1.0]], [[0.0]]]), min_tile=4, gap=0)
    red, blue, white = row[2, 1].int(), row[2, 5].int(), row[2, 9].int()
    assert red[0] > red[2] + 50 and blue[2] > blue[0] + 50
    assert (white > 230).all()


def test_save_and_load(tiny_run, tmp_path):
    views = layer_weights(tiny_run, "conv2", [1, 2], top=3)
    folder = save_weight_views(views, tmp_path / "weights" / "conv2")
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", "unit_0001.png", "unit_0002.png",
                                                       "weights.safetensors"]
    index = json.loads((folder / "index.json").read_text())
    assert index["units"]["2"]["inputs"] == views.unit(2).inputs and index["input_layer"] == "conv1"
    loaded = load_weight_views(folder)
    assert torch.equal(loaded.unit(2).kernels, views.unit(2).kernels) and loaded.units == [1, 2]
    first = save_weight_views(layer_weights(tiny_run, "conv1"), tmp_path / "weights" / "conv1")
    assert (first / "filters.png").exists() and (first / "unit_0005.png").exists()
    assert torch.equal(load_weight_views(first).filters, layer_weights(tiny_run, "conv1").filters)


def test_cli_weights_and_errors(tiny_run_dir, cli, tmp_path):
    code, out, err = cli("weights", "--run", str(tiny_run_dir), "--layer", "conv1")
    assert code == 0, err
    assert "first conv layer" in out
    assert (tmp_path / "reports" / "tiny" / "weights" / "conv1" / "filters.png").exists()
    code, out, err = cli("weights", "--run", str(tiny_run_dir), "--layer", "fc1", "--units", "0-3", "--top", "3")
    assert code == 0, err and "conv2:" in out
    for args, message in [
        (["--layer", "relu1"], "relu1 is a ReLU, not a conv or linear layer"),
        (["--layer", "conv5"], "unknown layer 'conv5'"),
        (["--layer", "conv2", "--units", "16"], "unit 16 is out of range for conv2, which has 16 units (0-15)"),
        (["--layer", "conv2", "--top", "0"], "argument --top: must be from 1 to 10,000, got 0"),
    ]:
        code, _, err = cli("weights", "--run", str(tiny_run_dir), *args)
        assert code == 2 and message in err, (args, err)


def test_inceptionv1_first_layer(monkeypatch):
    from interp.runs import load_run

    run = load_run("inceptionv1", weights="random")
    views = layer_weights(run, "conv2d0", "0-3")
    assert views.module == "conv2d0_pre_relu_conv" and views.filters.shape == (4, 3, 7, 7)
    deeper = layer_weights(run, "conv2d2", [0], top=3)
    assert deeper.input_layer == "conv2d1" and deeper.unit(0).kernels.shape == (3, 3, 3)


def test_weights_store_round_trip_and_description(tiny_run, tmp_path):
    import interp.results as results

    for layer in ("conv1", "fc1"):
        views = layer_weights(tiny_run, layer, "0-3", top=3)
        loaded = results.load(results.save(views, tmp_path / "weights" / layer))
        assert (loaded.layer, loaded.module, loaded.kind, loaded.input_layer, loaded.units) == \
            (views.layer, views.module, views.kind, views.input_layer, views.units)
        for a, b in zip(loaded.unit_weights, views.unit_weights):
            assert a.inputs == b.inputs and torch.equal(a.kernels, b.kernels) and torch.equal(a.norms, b.norms)
        assert (loaded.filters is None) == (views.filters is None)
        described = results.describe(views)
        json.dumps(described, allow_nan=False)
        assert described["kind"] == "weights" and described["unit_weights"][0]["inputs"] == views.unit_weights[0].inputs


def test_output_weights_are_the_strongest_connections(tiny_run, tmp_path):
    import interp.results as results
    from interp.analysis.vision.weights import output_weights

    out = output_weights(tiny_run, "conv2", "fc1", top=4)
    w = tiny_run.model.fc1.weight.detach().view(120, 16, 25)  # fc1 reads conv2's units in channel-major blocks
    norms = w.norm(dim=2).T  # (16 conv2 units, 120 fc1 units)
    for unit in (0, 9):
        expected = torch.sort(norms[unit], descending=True, stable=True).indices[:4]
        assert out.targets[unit].tolist() == expected.tolist()
        first = out.outputs(unit)[0]
        assert first["layer"] == "fc1" and first["unit"] == int(expected[0])
        assert first["sign"] == ("pos" if w[expected[0], unit].sum() >= 0 else "neg")
    assert output_weights(tiny_run, "conv1", "conv2").targets.shape == (6, 8)
    loaded = results.load(results.save(out, tmp_path / "conv2-outputs.json"))
    assert torch.equal(loaded.targets, out.targets) and torch.equal(loaded.signs, out.signs)
    torch.testing.assert_close(loaded.norms, out.norms)
    json.dumps(results.describe(out), allow_nan=False)


def test_cli_weights_json(tiny_run_dir, cli):
    from pathlib import Path

    code, out, err = cli("weights", "--run", str(tiny_run_dir), "--layer", "conv2", "--units", "0-1", "--top", "2",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {"kind", "layer", "module", "layer_kind", "input_layer", "units", "unit_weights", "path"} <= set(result)
    assert result["kind"] == "weights" and result["input_layer"] == "conv1" and result["units"] == [0, 1]
    assert len(result["unit_weights"][0]["inputs"]) == 2
    assert (Path(result["path"]) / "index.json").is_file()
