"""Dataset examples: really the top-k (against a brute-force pass), receptive-field crops, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from interp.analysis.vision.examples import dataset_examples
from interp.results.vision import load_examples, save_examples
from interp.errors import InterpError
from interp.hooks import capture, hook_count


@pytest.fixture
def images(tiny_run):
    """60 test images, with two exact duplicates so that ties occur."""
    data = tiny_run.load_data(progress=False, split="test")
    x = data.test_x[:60].clone()
    x[41], x[57] = x[3], x[12]
    return x


def brute_force(run, layer, images, units, k):
    """Every activation at once, sorted per unit (stable: ties keep the earlier image)."""
    with torch.no_grad(), capture(run.model, [layer]) as acts:
        run.model(run.normalize(images))
    a = acts[layer][:, units]
    if a.dim() == 4:
        hi, hi_pos = a.flatten(2).max(2)
        lo, lo_pos = a.flatten(2).min(2)
    else:
        hi = lo = a
        hi_pos = lo_pos = None
    top = torch.sort(hi, dim=0, descending=True, stable=True).indices[:k].T  # (U, k)
    bottom = torch.sort(lo, dim=0, descending=False, stable=True).indices[:k].T
    return hi, hi_pos, top, lo, lo_pos, bottom


@pytest.mark.parametrize("layer, units", [("conv2", None), ("fc1", [0, 5, 17, 119]), ("conv1", [2])])
def test_top_k_matches_brute_force(tiny_run, images, layer, units):
    k = 7
    ex = dataset_examples(tiny_run, layer, units, k=k, data=images, batch_size=16)  # 4 streaming batches
    unit_list = ex.units
    hi, hi_pos, top, lo, lo_pos, bottom = brute_force(tiny_run, layer, images, unit_list, k)
    assert torch.equal(ex.top_indices, top)
    assert torch.equal(ex.bottom_indices, bottom)
    cols = torch.arange(len(unit_list))
    torch.testing.assert_close(ex.top_values, hi[top, cols[:, None]])
    torch.testing.assert_close(ex.bottom_values, lo[bottom, cols[:, None]])
    assert (ex.top_values[:, :-1] >= ex.top_values[:, 1:]).all()
    if hi_pos is not None:
        width = 10 if layer == "conv2" else 28
        flat = ex.top_positions[..., 0] * width + ex.top_positions[..., 1]
        assert torch.equal(flat, hi_pos[top, cols[:, None]])
        flat = ex.bottom_positions[..., 0] * width + ex.bottom_positions[..., 1]
        assert torch.equal(flat, lo_pos[bottom, cols[:, None]])
    else:
        assert ex.top_positions is None and ex.top_crops.shape == (len(unit_list), k, 3, 32, 32)
    assert hook_count(tiny_run.model) == 0


def test_ties_go_to_the_earlier_image(tiny_run):
    import copy

    from interp.subject import Subject

    # With fc1's weights zeroed every image gives exactly fc1's bias: an exact tie, which
    # identical images would not guarantee (a batch of 1 and a batch of 2 may round apart).
    model = copy.deepcopy(tiny_run.model)
    with torch.no_grad():
        model.fc1.weight.zero_()
    subject = Subject(model, tiny_run.normalize, (3, 32, 32), name="zeroed", mean=tiny_run.config.data.mean,
                      std=tiny_run.config.data.std)
    images = tiny_run.load_data(progress=False, split="test").test_x[:5]
    ex = dataset_examples(subject, "fc1", [0], k=3, data=images, batch_size=2)
    assert ex.top_indices[0].tolist() == [0, 1, 2]
    assert ex.bottom_indices[0].tolist() == [0, 1, 2]


def test_crops_are_the_receptive_fields_of_the_original_images(tiny_run, images):
    ex = dataset_examples(tiny_run, "conv2", [3, 9], k=4, data=images, batch_size=32)
    assert ex.top_crops.shape == (2, 4, 3, 14, 14) and ex.top_crops.dtype == torch.uint8
    assert ex.receptive_field["size"] == [14, 14]
    for which in ("top", "bottom"):
        for i in range(2):
            for j in range(4):
                y, x = getattr(ex, f"{which}_positions")[i, j].tolist()
                box = getattr(ex, f"{which}_boxes")[i, j].tolist()
                assert box == [2 * y, 2 * y + 13, 2 * x, 2 * x + 13]
                image = images[getattr(ex, f"{which}_indices")[i, j]]
                assert torch.equal(getattr(ex, f"{which}_crops")[i, j], image[:, 2 * y:2 * y + 14, 2 * x:2 * x + 14])


def test_clipped_fields_keep_their_place(tiny_run):
    from interp.analysis.vision.examples import crop_boxes

    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).remainder(250).to(torch.uint8).view(2, 3, 8, 8)
    boxes = torch.tensor([[[0, 2, 3, 7]]])  # a 5x5 field clipped by 2 rows at the top
    crop = crop_boxes(images, torch.tensor([[1]]), boxes, (5, 5))[0, 0]
    assert (crop[:, :2] == 128).all()
    assert torch.equal(crop[:, 2:], images[1, :, 0:3, 3:8])


def test_no_hooks_after_an_error_mid_stream(tiny_run, images, monkeypatch):
    calls = {"n": 0}
    normalize = tiny_run.normalize

    def failing(x):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return normalize(x)

    monkeypatch.setattr(tiny_run, "normalize", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        dataset_examples(tiny_run, "conv2", k=3, data=images, batch_size=16)
    assert hook_count(tiny_run.model) == 0


def test_save_and_load(tiny_run, images, tmp_path):
    ex = dataset_examples(tiny_run, "conv2", [0, 12], k=5, data=images)
    folder = save_examples(ex, tmp_path / "examples" / "conv2")
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "examples.safetensors", "index.json", "unit_0000_bottom.png", "unit_0000_top.png",
        "unit_0012_bottom.png", "unit_0012_top.png"])
    index = json.loads((folder / "index.json").read_text())
    assert index["units"]["12"]["top"]["indices"] == ex.top_indices[1].tolist()
    assert index["units"]["12"]["top"]["file"] == "unit_0012_top.png"
    loaded = load_examples(folder)
    for name in ("top_indices", "top_values", "bottom_indices", "top_crops", "bottom_crops", "top_boxes"):
        assert torch.equal(getattr(loaded, name), getattr(ex, name)), name
    assert loaded.units == [0, 12] and loaded.receptive_field == ex.receptive_field


def test_cli_examples(tiny_run_dir, cli, tmp_path):
    code, out, err = cli("examples", "--run", str(tiny_run_dir), "--layer", "conv2", "-k", "4", "--no-progress")
    assert code == 0, err
    folder = tmp_path / "reports" / "tiny" / "examples" / "conv2"
    assert (folder / "unit_0015_top.png").exists() and "receptive field 14x14" in out
    code, _, err = cli("examples", "--run", str(tiny_run_dir), "--layer", "conv3", "--no-progress")
    assert code == 2 and "unknown layer 'conv3'" in err and "conv1, conv2, fc1" in err
    code, _, err = cli("examples", "--run", str(tiny_run_dir), "--layer", "fc2", "--units", "84", "--no-progress")
    assert code == 2 and "unit 84 is out of range for fc2, which has 84 units (0-83)" in err
    code, _, err = cli("examples", "--run", str(tiny_run_dir), "--layer", "fc2", "-k", "0", "--no-progress")
    assert code == 2 and "argument -k: must be from 1 to 1,000, got 0" in err


def test_inceptionv1_needs_a_dataset(monkeypatch):
    from interp.runs import load_run

    run = load_run("inceptionv1", weights="random")
    with pytest.raises(InterpError, match="comes without a dataset.*--dataset"):
        dataset_examples(run, "mixed3a")


def test_missing_or_corrupt_examples_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InterpError, match=r"no dataset examples in .* \(index.json missing\); compute them with"):
        load_examples(tmp_path)
    (tmp_path / "index.json").write_text('{"data": "examples.safetensors"}')
    (tmp_path / "examples.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InterpError, match="dataset examples .* are corrupt .*compute them again"):
        load_examples(tmp_path)


def test_examples_store_round_trip_and_description(tiny_run, images, tmp_path):
    import interp.results as results

    ex = dataset_examples(tiny_run, "conv2", [2, 7], k=3, data=images)
    folder = results.save(ex, tmp_path / "examples" / "conv2")
    loaded = results.load(folder)
    for name in ("top_indices", "top_values", "bottom_indices", "bottom_values", "top_crops", "bottom_crops",
                 "top_positions", "bottom_boxes"):
        assert torch.equal(getattr(loaded, name), getattr(ex, name)), name
    assert (loaded.layer, loaded.units, loaded.dataset, loaded.settings) == (ex.layer, ex.units, ex.dataset,
                                                                               ex.settings)
    described = results.describe(ex)
    json.dumps(described, allow_nan=False)
    assert described["kind"] == "examples" and described["top"]["indices"] == ex.top_indices.tolist()
    assert described["receptive_field"]["size"] == [14, 14] and "top_crops" not in described


def test_cli_examples_json(tiny_run_dir, cli):
    code, out, err = cli("examples", "--run", str(tiny_run_dir), "--layer", "fc1", "--units", "0-4", "-k", "2",
                         "--no-progress", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {"kind", "layer", "units", "dataset", "n_images", "k", "top", "bottom", "settings", "path"} <= set(result)
    assert result["kind"] == "examples" and result["units"] == [0, 1, 2, 3, 4] and result["k"] == 2
    assert len(result["top"]["values"]) == 5 and result["top"]["positions"] is None  # fc units: whole images
    assert (Path(result["path"]) / "index.json").is_file()
