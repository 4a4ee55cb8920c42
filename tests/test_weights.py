"""Weight views: filters, strongest inputs by kernel norm, fc weights folded back onto the conv grid."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from interp.analysis.vision.weights import filter_images, heatmap_row, layer_weights, load_weights, save_weights


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
    folder = save_weights(views, tmp_path / "weights" / "conv2")
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", "unit_0001.png", "unit_0002.png",
                                                       "weights.safetensors"]
    index = json.loads((folder / "index.json").read_text())
    assert index["units"]["2"]["inputs"] == views.unit(2).inputs and index["input_layer"] == "conv1"
    loaded = load_weights(folder)
    assert torch.equal(loaded.unit(2).kernels, views.unit(2).kernels) and loaded.units == [1, 2]
    first = save_weights(layer_weights(tiny_run, "conv1"), tmp_path / "weights" / "conv1")
    assert (first / "filters.png").exists() and (first / "unit_0005.png").exists()
    assert torch.equal(load_weights(first).filters, layer_weights(tiny_run, "conv1").filters)


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
