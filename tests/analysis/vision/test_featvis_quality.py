"""Feature-visualisation quality: main images, failure flags, specificity, accentuation, report reuse."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

from interp.analysis.vision.featvis import visualize
from interp.analysis.vision.natural import accentuate, natural_max
from interp.analysis.vision.param import INIT_EPS
from interp.analysis.vision.quality import (FLAT_STD, NaturalMax, UnitQuality, failure_reasons, image_std, layer_values,
                                            specificity)
from interp.results.vision import load_featvis, save_featvis
from interp.hooks import hook_count

STEPS = 32


@pytest.fixture
def report_run(tiny_run_dir, tmp_path, monkeypatch):
    """A copy of the tiny run, and reports of only the model page and the layer/unit pages
    (the attribution and claims pages, slow and unaffected here, are left out)."""
    import interp.pipelines.report as report_pipeline
    import interp.report as report_pkg
    from interp.pipelines import vision as vision_pipeline
    from interp.report import model_page, vision
    from interp.runs import load_run

    monkeypatch.setattr(report_pkg, "load_contributors", lambda: [model_page.contribute, vision.contribute])
    monkeypatch.setattr(report_pipeline, "ensure_functions", lambda: [vision_pipeline.ensure])
    dst = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_run_dir, dst)
    return load_run(dst)


class Colours(nn.Module):
    """Six 1x1 units, each responding to one colour (zero-mean weights: grey gives 0)."""

    layer_names = ["conv", "relu"]
    COLOURS = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float32)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, len(self.COLOURS), 1, bias=False)
        self.relu = nn.ReLU()
        w = self.COLOURS - self.COLOURS.mean(1, keepdim=True)
        with torch.no_grad():
            self.conv.weight.copy_((w / w.norm(dim=1, keepdim=True))[:, :, None, None])

    def forward(self, x):
        return self.relu(self.conv(x))


class DeadUnit(nn.Module):
    """A conv layer whose unit 0 has zero weights (its activation cannot depend on the image)."""

    layer_names = ["conv", "relu"]

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.conv.weight[0] = 0
            self.conv.bias[0] = -1.0  # and a dead ReLU after it
            self.conv.bias[1:] = 0.5  # the others are alive on the grey start

    def forward(self, x):
        return self.relu(self.conv(x))


# ------------------------------------------------------------------ main image


def test_main_image_reaches_at_least_the_diversity_image_0(tiny_run):
    main = visualize(tiny_run, "conv2", steps=STEPS)
    diverse = visualize(tiny_run, "conv2", steps=STEPS, diversity=4)
    assert main.images.shape[1] == 1
    # the same unit, the same steps and seed: the diversity penalty only costs activation
    assert (main.values[:, 0] >= diverse.values[:, 0] - 1e-3).all(), (main.values[:, 0], diverse.values[:, 0])
    assert main.values[:, 0].mean() > diverse.values[:, 0].mean()
    assert hook_count(tiny_run.model) == 0


def test_quality_is_recorded_saved_and_loaded(tiny_run, tmp_path):
    fv = visualize(tiny_run, "conv2", [0, 3, 5], steps=8)
    assert [q.unit for q in fv.quality] == [0, 3, 5]
    for i, q in enumerate(fv.quality):
        assert q.reached == pytest.approx(float(fv.values[i, 0]))
        assert q.start == pytest.approx(float(fv.initial_values[i, 0]))
        assert 1 <= q.rank <= 16 and q.z is not None
        assert q.natural is None and q.ratio is None
    natural = natural_max(tiny_run, "conv2", [0, 3, 5], sample=100)
    fv.attach_natural(natural)
    assert fv.quality[1].natural == pytest.approx(natural.value(3))
    assert fv.quality[1].ratio == (pytest.approx(fv.quality[1].reached / natural.value(3))
                                   if natural.value(3) > 0 else None)
    folder = save_featvis(fv, tmp_path / "conv2")
    index = json.loads((folder / "index.json").read_text())
    entry = index["units"]["3"]["quality"]
    assert {"reached", "start", "natural", "natural_index", "ratio", "rank", "z", "specific", "failed",
            "failures", "pixel_std"} <= set(entry)
    assert index["quality"]["natural"]["dataset"] == "shapes" and index["quality"]["natural"]["n_images"] == 100
    loaded = load_featvis(folder)
    assert [q.to_dict() for q in loaded.quality] == [q.to_dict() for q in fv.quality]
    assert UnitQuality.from_dict(fv.quality[0].to_dict()).to_dict() == fv.quality[0].to_dict()
    assert NaturalMax.from_dict(natural.to_dict()).to_dict() == natural.to_dict()
    assert hook_count(tiny_run.model) == 0


def test_natural_max_is_the_max_of_the_channel_objective(tiny_run):
    data = tiny_run.load_data(progress=False, split="test")
    natural = natural_max(tiny_run, "conv2", data=data)
    values = layer_values(tiny_run, "conv2", data.test_x)  # (N, 16): mean over positions
    torch.testing.assert_close(natural.values, values.max(0).values)
    assert torch.equal(natural.indices, values.argmax(0))
    assert natural.n_images == len(data.test_x) and natural.sample is None
    sampled = natural_max(tiny_run, "conv2", data=data, sample=50, seed=1)
    assert sampled.n_images == 50 and sampled.sample["seed"] == 1
    assert (sampled.values <= natural.values + 1e-6).all()
    assert hook_count(tiny_run.model) == 0


# ------------------------------------------------------------------ failure flags


def test_failure_flag_for_a_unit_whose_objective_cannot_rise():
    model = DeadUnit()
    fv = visualize(model, "relu", size=16, steps=24)
    dead, alive = fv.quality[0], fv.quality[1]
    assert dead.reached == dead.start == 0.0
    assert dead.failed and "not-rising" in dead.failures
    assert "flat" in dead.failures  # it never left the grey noise it started from
    assert dead.failure_text() == "optimisation failed: the objective did not rise / the image is flat"
    assert not alive.failed, alive
    assert fv.failed_units() == [q.unit for q in fv.quality if q.failed] and 0 in fv.failed_units()
    assert hook_count(model) == 0


def test_failure_flag_for_a_flat_image():
    grey = torch.full((1, 3, 8, 8), 0.5)
    grey[0, :, 0, 0] = 0.52
    assert float(image_std(grey)[0]) < FLAT_STD
    assert failure_reasons(2.0, 0.1, float(image_std(grey)[0])) == ["flat"]
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0  # a uniform saturated colour is what a colour unit wants: not flat
    assert float(image_std(red)[0]) > FLAT_STD
    assert failure_reasons(2.0, 0.1, float(image_std(red)[0])) == []
    assert failure_reasons(1.02, 1.0, 0.3) == ["not-rising"]  # a 2% rise is no rise
    assert failure_reasons(-0.5, -1.0, 0.3) == []


def test_cli_table_has_the_quality_columns(tiny_run_dir, cli):
    code, out, err = cli("visualize", "--run", str(tiny_run_dir), "--layer", "conv2", "--units", "0-3", "--steps",
                         "6", "--natural", "100", "--no-progress")
    assert code == 0, err
    header = out.splitlines()[0]
    for column in ("start", "reached", "natural max", "reached/natural", "specificity rank", "failed"):
        assert column in header, header
    assert "Specificity:" in out and "Natural max: the best of 100 test images of shapes" in out
    code, out, err = cli("visualize", "--run", str(tiny_run_dir), "--layer", "conv2", "--units", "0", "--steps",
                         "2", "--natural", "0", "--no-progress")
    assert code == 0, err
    assert "natural max" not in out.splitlines()[0] and "Natural max omitted: skipped" in out


def test_cli_default_steps_are_the_visualisers():
    from interp.analysis.vision.featvis import DEFAULT_STEPS
    from interp.cli import build_parser
    from interp.cli.featvis import DEFAULT_STEPS as CLI_STEPS
    from interp.report.vision import REPORT_STEPS

    args = build_parser().parse_args(["visualize", "--layer", "conv2"])
    assert args.steps == CLI_STEPS == DEFAULT_STEPS == REPORT_STEPS == 512


# ------------------------------------------------------------------ specificity


def test_specificity_on_planted_colour_units():
    model = Colours()
    # 256 steps: at 128 the magenta unit's image (red 0.61, blue 0.54) ties the red unit to 1e-4 on an Intel Xeon
    fv = visualize(model, "relu", size=16, steps=256)
    assert [q.rank for q in fv.quality] == [1] * 6, [q.to_dict() for q in fv.quality]
    assert all(q.specific and q.z > 1 for q in fv.quality)
    assert not fv.failed_units()
    # each unit's image is its colour
    mean_rgb = fv.images[:, 0].mean((2, 3))
    for i, colour in enumerate(Colours.COLOURS):
        assert torch.corrcoef(torch.stack([mean_rgb[i], colour]))[0, 1] > 0.9
    # and images of the wrong colour rank their unit low
    ranks, _ = specificity(model, "relu", fv.images[[1, 2], 0], [0, 0])
    assert all(r > 1 for r in ranks)
    assert hook_count(model) == 0


# ------------------------------------------------------------------ accentuation


def test_accentuation_starts_at_the_natural_image_and_stays_close(tiny_run):
    data = tiny_run.load_data(progress=False, split="test")
    units = [0, 4, 9, 13]
    natural = natural_max(tiny_run, "conv2", units, data=data)
    start = data.test_x[natural.indices]
    still = accentuate(tiny_run, "conv2", units, start, steps=0)
    assert (still.images - start.float() / 255).abs().max() <= INIT_EPS + 1e-5  # step 0 is the natural image
    torch.testing.assert_close(still.initial_values, natural.values, atol=0.05, rtol=0.02)
    torch.testing.assert_close(still.start_values, natural.values, atol=1e-4, rtol=1e-4)

    acc = accentuate(tiny_run, "conv2", units, start, steps=STEPS, weight=1.0)
    assert torch.equal(acc.start_images, start.float() / 255)
    assert (acc.values > acc.start_values + 0.05 * acc.start_values.abs()).all(), (acc.start_values, acc.values)
    assert (acc.distances < 0.25).all(), acc.distances
    assert (acc.distances > 0).all()
    close = accentuate(tiny_run, "conv2", units, start, steps=STEPS, weight=20.0)
    assert (close.distances < acc.distances).all()
    assert acc.history.shape == (STEPS, 4)
    assert hook_count(tiny_run.model) == 0


# ------------------------------------------------------------------ the report


def test_report_keeps_a_rendering_with_other_settings(report_run, cli):
    from interp.pipelines.report import build_report

    code, _, err = cli("visualize", "--run", str(report_run.path), "--layer", "conv2", "--steps", "8", "--natural",
                       "0", "--no-progress")
    assert code == 0, err
    saved = report_run.report_dir() / "featvis" / "conv2-channel-8steps-seed0"  # not the default settings
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    index = build_report(report_run, steps=12, layers=["conv2"], progress=False, log=None)
    root = index.parent
    after = {p.name: p.read_bytes() for p in (root / "featvis" / "conv2-channel-8steps-seed0").iterdir()}
    assert after == before  # the user's 8-step rendering is untouched
    assert json.loads((saved / "index.json").read_text())["settings"]["steps"] == 8
    unit = (root / "conv2" / "3.html").read_text()
    assert "featvis/conv2-channel-12steps-seed0-neg/unit_0003.png" in unit
    assert "featvis/conv2/unit_0003.png" not in unit
    assert "channel objective, 12 steps, 1 image per unit (its own optimisation)" in unit
    assert "4 images per unit (optimised jointly with a diversity penalty" in unit
    assert "Feature accentuation" in unit and "How well the main image did" in unit
    assert "12 steps" in (root / "conv2" / "index.html").read_text()
    assert hook_count(report_run.model) == 0

    # a rendering with the wanted settings is reused, not rendered again
    code, _, err = cli("visualize", "--run", str(report_run.path), "--layer", "conv2", "--steps", "12",
                       "--negative", "--natural", "0", "--no-progress")
    assert code == 0, err
    user_index = report_run.report_dir() / "featvis" / "conv2-channel-12steps-seed0-neg" / "index.json"
    older = json.loads(user_index.read_text())  # as saved before quality records existed
    for entry in older["units"].values():
        del entry["quality"]
    del older["quality"]
    user_index.write_text(json.dumps(older))
    logged = []
    build_report(report_run, steps=12, layers=["conv2"], progress=False, log=logged.append)
    assert not any("feature visualisation of conv2 (channel, 12 steps)" in line for line in logged), logged
    unit = (root / "conv2" / "3.html").read_text()
    assert "featvis/conv2-channel-12steps-seed0-neg/unit_0003.png" in unit
    assert " of 16" in unit and "specificity rank" in unit  # quality computed from the saved images
    assert json.loads(user_index.read_text()) == older  # and not written into the user's folder
    assert (root / "featvis" / "conv2-channel-12steps-seed0-neg" / "index.json").is_file()  # kept, not deleted


def test_report_flags_failed_units(report_run):
    from safetensors.torch import load_file, save_file

    from interp.pipelines.report import build_report
    from interp.runs import load_run

    weights = report_run.path / "model.safetensors"
    state = load_file(str(weights))
    state["conv2.weight"][3] = 0  # unit 3's activation no longer depends on the image
    save_file(state, str(weights))
    run = load_run(report_run.path)
    index = build_report(run, steps=8, layers=["conv2"], progress=False, log=None)
    root = index.parent
    layer = (root / "conv2" / "index.html").read_text()
    assert "Optimisation failed" in layer and 'href="3.html">unit 3</a>: optimisation failed: the objective did not ' \
                                             'rise / the image is flat' in layer
    unit = (root / "conv2" / "3.html").read_text()
    assert "optimisation failed: the objective did not rise / the image is flat" in unit
    assert "unit_0003.png" in unit  # shown, flagged, not hidden
    main = next(p for p in (root / "featvis").iterdir() if p.name.startswith("conv2-channel-8steps-seed0-neg"))
    quality = json.loads((main / "index.json").read_text())["quality"]
    assert 3 in quality["failed_units"]
    assert 'failed</span>' in index.read_text()
    assert hook_count(run.model) == 0


# ------------------------------------------------------------------ results store


def test_accentuation_natural_and_quality_store_round_trips(tiny_run, tmp_path):
    import interp.results as results
    from interp.analysis.vision.quality import LayerQuality

    data = tiny_run.load_data(progress=False, split="test")
    natural = natural_max(tiny_run, "conv2", [1, 6], data=data, sample=80)
    acc = accentuate(tiny_run, "conv2", natural.units, data.test_x[natural.indices], steps=3)
    folder = results.save(acc, tmp_path / "accentuation", natural=natural)
    loaded = results.load(folder)
    assert loaded.units == [1, 6] and loaded.settings == json.loads(json.dumps(acc.settings))
    assert (loaded.images - acc.images).abs().max() <= 0.5 / 255 + 1e-6
    torch.testing.assert_close(loaded.values, acc.values, atol=1e-5, rtol=0)
    torch.testing.assert_close(loaded.history, acc.history)

    file = results.save(natural, tmp_path / "natural.json")
    assert results.load(file).to_dict() == natural.to_dict()

    fv = visualize(tiny_run, "conv2", [1, 6], steps=3)
    record = LayerQuality("conv2", "featvis/conv2", fv.quality, fv.settings)
    again = results.load(results.save(record, tmp_path / "conv2.quality.json"))
    assert [q.to_dict() for q in again.quality] == [q.to_dict() for q in fv.quality]
    assert (again.layer, again.folder) == ("conv2", "featvis/conv2")
    for result in (acc, natural, record):
        described = results.describe(result)
        json.dumps(described, allow_nan=False)
        assert described["layer"] == "conv2"


def test_report_pages_render_from_saved_results_without_computing(report_run, monkeypatch):
    """Once the pipeline has saved the results, the pages come from them alone."""
    from interp.pipelines import vision as pipeline
    from interp.pipelines.report import build_report
    from interp.report import ReportContext, render_report, vision

    root = build_report(report_run, steps=4, layers=["conv1"], progress=False, log=None).parent
    before = (root / "conv1" / "2.html").read_text()

    def computing(*args, **kwargs):
        raise AssertionError("the report computed something")

    import interp.analysis.vision.examples as examples
    import interp.analysis.vision.featvis as featvis
    import interp.analysis.vision.natural as natural
    import interp.analysis.vision.quality as quality
    import interp.analysis.vision.weights as weights

    for module, name in [(featvis, "visualize"), (natural, "natural_max"), (natural, "accentuate"),
                         (quality, "assess"), (examples, "dataset_examples"), (weights, "layer_weights"),
                         (weights, "output_weights")] + [(pipeline, n) for n in (
                             "visualize", "natural_max", "accentuate", "assess", "dataset_examples", "layer_weights",
                             "output_weights")]:
        monkeypatch.setattr(module, name, computing)
    for page in root.rglob("*.html"):
        page.unlink()
    ctx = ReportContext(run=report_run, root=root, layers=["conv1"], steps=4, progress=False, log=None)
    render_report(ctx)
    assert (root / "conv1" / "2.html").read_text() == before
    assert "conv1/index.html" in ctx.pages and 'id="layers"' in (root / "index.html").read_text()

    # a report folder without the results shows no layer pages (and computes nothing)
    empty = ReportContext(run=report_run, root=root.parent / "empty", layers=["conv1"], steps=4, progress=False,
                          log=None)
    vision.contribute(empty)
    assert empty.pages == {}
