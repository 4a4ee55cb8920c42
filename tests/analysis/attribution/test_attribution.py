"""Input and unit attribution: our wrappers against direct Captum calls, planted ground truth, hooks, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from interp.analysis.attribution.attribute import attribute
from interp.analysis.attribution.gallery import attribution_gallery
from interp.analysis.attribution.inputs import load_dataset_images, read_image
from interp.analysis.attribution.methods import ALL_METHODS, METHODS, AttributionOptions
from interp.analysis.attribution.units import class_unit_attribution, class_unit_summary, unit_attribution
from interp.errors import InterpError
from interp.hooks import hook_count, no_new_hooks
from interp.results.attribution import (
    load_attribution, load_class_unit_summary, load_gallery, load_unit_attribution, save_attribution,
    save_class_unit_summary, save_gallery, save_unit_attribution,
)
from interp.zoo import create_model

FAST = dict(steps=8, samples=3)


def tutorial_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("tutorial").eval()


def images(n: int = 3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g)


class TopLeftQuadrant(nn.Module):
    """A classifier that only sees the top-left 16x16 quadrant of a 32x32 image."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(4 * 16 * 16, 2)

    def forward(self, x):
        return self.fc1(self.flatten(self.relu1(self.conv1(x[:, :, :16, :16]))))


# --------------------------------------------------------------------------- against Captum


def direct_captum(method: str, model: nn.Module, x: torch.Tensor, t: torch.Tensor, opts: AttributionOptions):
    """The same computation written straight against Captum's API (the reference)."""
    import captum.attr as ca

    b = torch.zeros_like(x)  # a bare model's "black" baseline
    if method == "saliency":
        return ca.Saliency(model).attribute(x, target=t)
    if method == "ig":
        return ca.IntegratedGradients(model).attribute(x, baselines=b, target=t, n_steps=opts.steps)
    if method == "smoothgrad":
        out = []
        for i in range(len(x)):
            stdev = opts.noise * float(x[i].max() - x[i].min())
            torch.manual_seed(opts.seed + i)
            out.append(ca.NoiseTunnel(ca.Saliency(model)).attribute(
                x[i:i + 1], nt_type="smoothgrad", nt_samples=opts.samples, stdevs=stdev, target=t[i:i + 1]))
        return torch.cat(out)
    if method == "gradcam":
        cam = ca.LayerGradCam(model, model.conv2).attribute(x, target=t, relu_attributions=True)
        return ca.LayerAttribution.interpolate(cam, (32, 32), interpolate_mode="bilinear").expand_as(x)
    if method == "occlusion":
        return ca.Occlusion(model).attribute(x, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), baselines=b,
                                             target=t, perturbations_per_eval=64)
    if method == "guided-backprop":
        return ca.GuidedBackprop(model).attribute(x, target=t)
    if method == "deeplift":
        return ca.DeepLift(model).attribute(x, target=t, baselines=b)
    raise AssertionError(method)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_wrapper_equals_direct_captum_call(method):
    model = tutorial_net()
    x = images(3)
    t = torch.tensor([0, 3, 7])
    attr = attribute(model, x, t, [method], batch_size=2, **FAST)  # two chunks: batching must not matter
    expected = direct_captum(method, model, x.clone(), t, attr.options)
    assert attr.maps[method].shape == x.shape
    torch.testing.assert_close(attr.maps[method], expected.detach(), rtol=1e-4, atol=1e-6)
    assert hook_count(model) == 0


def test_run_inputs_are_normalised_and_baseline_is_black_in_normalised_space(tiny_run):
    import captum.attr as ca

    x, _ = load_dataset_images(tiny_run, [0, 1])
    attr = attribute(tiny_run, x, 2, ["ig"], steps=8)
    xn = tiny_run.normalize(x)
    black = tiny_run.normalize(torch.zeros(1, 3, 32, 32)).expand_as(xn)
    expected = ca.IntegratedGradients(tiny_run.model).attribute(xn, baselines=black, target=2, n_steps=8)
    torch.testing.assert_close(attr.maps["ig"], expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(attr.images, x.float() / 255, atol=1e-5, rtol=0)  # display is de-normalised
    assert attr.targets.tolist() == [2, 2]
    assert hook_count(tiny_run.model) == 0


def test_target_default_is_prediction_and_names_resolve():
    model = tutorial_net()
    model.classes = [f"c{i}" for i in range(10)]
    x = images(4)
    attr = attribute(model, x, None, ["saliency"])
    assert attr.targets.tolist() == model(x).argmax(1).tolist()
    assert attribute(model, x, "c4", ["saliency"]).targets.tolist() == [4] * 4
    assert attribute(model, x, ["c1", 2, "c3", 0], ["saliency"]).targets.tolist() == [1, 2, 3, 0]
    top = attr.top(5)
    assert len(top) == 4 and len(top[0]) == 5
    assert top[0][0][1] == pytest.approx(float(attr.probs[0].max()))


def test_smoothgrad_is_seeded_per_image_and_independent_of_batching():
    model = tutorial_net()
    x = images(3)
    a = attribute(model, x, 1, ["smoothgrad"], samples=4, batch_size=1).maps["smoothgrad"]
    b = attribute(model, x, 1, ["smoothgrad"], samples=4, batch_size=3).maps["smoothgrad"]
    c = attribute(model, x, 1, ["smoothgrad"], samples=4, seed=5).maps["smoothgrad"]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_mlp_gets_every_method_but_gradcam():
    torch.manual_seed(0)
    model = create_model("mlp", input_size=8).eval()
    x = torch.randn(2, 3, 8, 8)
    attr = attribute(model, x, 1, None, **FAST)
    assert attr.methods == [m for m in ALL_METHODS if m != "gradcam"]
    assert all(v.shape == x.shape for v in attr.maps.values())
    with pytest.raises(InterpError, match="gradcam needs a convolutional layer"):
        attribute(model, x, 1, ["gradcam"])
    assert hook_count(model) == 0


# --------------------------------------------------------------------------- planted ground truth


def test_occlusion_attributes_only_to_the_quadrant_the_model_sees():
    model = TopLeftQuadrant()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 + 0.5  # away from the zero baseline everywhere
    attr = attribute(model, x, 0, ["occlusion", "ig", "saliency"], steps=16)
    # Default window 4 px, stride 2: windows touching the quadrant reach 2 px past it, no further.
    occ = attr.pixel_map("occlusion").abs()
    # Float noise only outside (1e-8: batched forward passes sum in another order on some CPUs).
    noise = 1e-6 * occ.max()
    assert occ[:, 18:, :].max() <= noise and occ[:, :, 18:].max() <= noise
    assert occ[:, :16, :16].sum() / occ.sum() > 0.75
    # Windows aligned with the quadrant's edge: exactly nothing outside, something in every window inside.
    aligned = attribute(model, x, 0, ["occlusion"], window=4, stride=4).pixel_map("occlusion").abs()
    assert aligned[:, 16:, :].max() <= 1e-6 * aligned.max() and aligned[:, :, 16:].max() <= 1e-6 * aligned.max()
    assert (aligned[:, :16:4, :16:4] > 0).float().mean() > 0.9
    for method in ("ig", "saliency"):  # gradients outside the quadrant are exactly zero
        pm = attr.pixel_map(method).abs()
        assert pm[:, 16:, :].sum() == 0 and pm[:, :, 16:].sum() == 0
        assert pm[:, :16, :16].sum() > 0


def test_ig_completeness_within_one_percent_on_a_tiny_model():
    model = TopLeftQuadrant()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    attr = attribute(model, x, None, ["ig"], steps=256)  # ReLU kinks need fine steps
    c = attr.completeness
    # The reported numbers against a direct computation.
    idx = torch.arange(4)
    with torch.no_grad():
        difference = model(x)[idx, attr.targets] - model(torch.zeros_like(x))[idx, attr.targets]
    torch.testing.assert_close(c.output_difference.float(), difference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c.attribution_sum.float(), attr.maps["ig"].flatten(1).sum(1), rtol=1e-5, atol=1e-6)
    assert c.max_relative_error < 0.01
    assert "ig_completeness" in attr.summary()[0]


def test_ig_completeness_is_reported_and_fails_with_one_step():
    model = tutorial_net()
    x = images(2)
    rough = attribute(model, x, 0, ["ig"], steps=1, baseline="blur").completeness
    fine = attribute(model, x, 0, ["ig"], steps=64, baseline="blur").completeness
    assert fine.max_relative_error < rough.max_relative_error


# --------------------------------------------------------------------------- hooks


class FailsWithGrad(nn.Module):
    """The tutorial net, but forward fails inside every Captum method: with gradients on, or on a
    batch of perturbed copies (occlusion runs without gradients); only the plain prediction works."""

    def __init__(self):
        super().__init__()
        self.net = tutorial_net()

    def forward(self, x):
        out = self.net(x)
        if torch.is_grad_enabled() or len(x) > 1:
            raise RuntimeError("boom")
        return out


@pytest.mark.parametrize("method", ALL_METHODS)
def test_no_hooks_left_when_a_method_raises(method):
    model = FailsWithGrad()
    with pytest.raises(RuntimeError, match="boom"):
        attribute(model, images(1), 0, [method], gradcam_layer="net.conv2", **FAST)
    assert hook_count(model) == 0


@pytest.mark.parametrize("method", ["ig", "conductance", "grad-x-act"])
def test_no_hooks_left_when_a_unit_method_raises(method):
    model = FailsWithGrad()
    with pytest.raises(RuntimeError, match="boom"):
        unit_attribution(model, images(1), 0, layer="net.conv2", method=method, steps=2)
    assert hook_count(model) == 0


def test_no_new_hooks_removes_a_leaked_hook_but_keeps_the_users():
    model = tutorial_net()
    own = model.conv1.register_forward_hook(lambda *a: None)
    with pytest.raises(ValueError):
        with no_new_hooks(model):
            model.conv2.register_forward_hook(lambda *a: None)
            model.relu1.register_full_backward_hook(lambda *a: None)
            raise ValueError
    assert hook_count(model) == 1
    own.remove()


# --------------------------------------------------------------------------- errors


def test_errors_are_clear():
    model = tutorial_net()
    x = images(1)
    with pytest.raises(InterpError, match="unknown method 'sailency'.*saliency"):
        attribute(model, x, 0, "ig,sailency")
    with pytest.raises(InterpError, match="unknown attribution option 'stpes'"):
        attribute(model, x, 0, "ig", stpes=3)
    with pytest.raises(InterpError, match="unknown baseline"):
        attribute(model, x, 0, "ig", baseline="white")
    with pytest.raises(InterpError, match="2 targets for 1 images"):
        attribute(model, x, [0, 1], "ig")
    with pytest.raises(InterpError, match="out of range"):
        attribute(model, x, 12, "ig")
    with pytest.raises(InterpError, match="unknown layer"):
        attribute(model, x, 0, "gradcam", gradcam_layer="conv9")


def test_read_image(tmp_path):
    from PIL import Image

    notes = []
    Image.new("RGB", (32, 32), (255, 0, 0)).save(tmp_path / "red.png")
    img = read_image(tmp_path / "red.png", (3, 32, 32), notice=notes.append)
    assert img.shape == (1, 3, 32, 32) and img.dtype == torch.uint8 and notes == []
    assert img[0, :, 0, 0].tolist() == [255, 0, 0]
    Image.new("L", (64, 40), 128).save(tmp_path / "grey.png")
    img = read_image(tmp_path / "grey.png", (3, 32, 32), notice=notes.append)
    assert img.shape == (1, 3, 32, 32)
    assert "64x40" in notes[0] and "32x32" in notes[0]
    with pytest.raises(InterpError, match="missing.png not found"):
        read_image(tmp_path / "missing.png", (3, 32, 32))
    (tmp_path / "junk.png").write_text("not an image")
    with pytest.raises(InterpError, match="cannot read image file .*junk.png"):
        read_image(tmp_path / "junk.png", (3, 32, 32))


# --------------------------------------------------------------------------- save, load, gallery


def test_save_and_load_round_trip(tiny_run, tmp_path):
    x, y = load_dataset_images(tiny_run, [3, 4])
    attr = attribute(tiny_run, x, None, ["ig", "gradcam"], labels=y, sources=["test:3", "test:4"], steps=8)
    paths = save_attribution(attr)
    folder = tiny_run.report_dir() / "attribution"
    assert paths["png"] == folder / "batch-2.png" and paths["png"].stat().st_size > 1000
    meta = json.loads(paths["json"].read_text())
    assert meta["methods"] == ["ig", "gradcam"] and len(meta["images"][0]["top5"]) == 5
    assert meta["images"][0]["ig_completeness"]["relative_error"] >= 0
    back = load_attribution(paths["json"])
    for m in attr.methods:
        torch.testing.assert_close(back.maps[m], attr.maps[m])
    assert back.targets.tolist() == attr.targets.tolist() and back.labels.tolist() == y.tolist()
    assert back.options == attr.options and back.sources == attr.sources
    torch.testing.assert_close(back.completeness.attribution_sum, attr.completeness.attribution_sum)
    with pytest.raises(InterpError, match="not found"):
        load_attribution(tmp_path / "nothing.json")


def test_gallery_has_every_class(tiny_run):
    data = tiny_run.load_data(progress=False)
    gallery = attribution_gallery(tiny_run, per_class=1, methods="ig,gradcam", data=data, steps=4)
    assert [e.class_name for e in gallery.entries] == tiny_run.classes
    assert not (tiny_run.report_dir() / "attribution").exists()  # computing saves nothing
    paths = save_gallery(gallery)
    assert paths["folder"] == tiny_run.report_dir() / "attribution" / "gallery"
    index = json.loads(paths["json"].read_text())
    for e, saved in zip(gallery.entries, index["entries"]):
        assert int(data.test_y[e.indices[0]]) == tiny_run.classes.index(e.class_name)
        assert (paths["folder"] / saved["figure"]).is_file() and saved["figure"] == f"{e.class_name}.png"
    assert index["kind"] == "attribution-gallery" and len(index["entries"]) == len(tiny_run.classes)
    assert load_attribution(paths["json"]).maps["ig"].shape == (10, 3, 32, 32)
    back = load_gallery(paths["folder"])
    assert [(e.class_name, e.indices, e.rows) for e in back.entries] == \
        [(e.class_name, e.indices, e.rows) for e in gallery.entries]
    assert hook_count(tiny_run.model) == 0


# --------------------------------------------------------------------------- units


def test_unit_attribution_matches_captum_and_is_complete(tiny_run):
    import captum.attr as ca

    x, _ = load_dataset_images(tiny_run, [0, 1, 2])
    result = unit_attribution(tiny_run, x, 4, layer="conv2", steps=128)
    xn = tiny_run.normalize(x)
    black = tiny_run.normalize(torch.zeros(1, 3, 32, 32)).expand_as(xn)
    direct = ca.LayerIntegratedGradients(tiny_run.model, tiny_run.model.conv2).attribute(
        xn, baselines=black, target=4, n_steps=128)
    torch.testing.assert_close(result.scores, direct.sum((2, 3)), rtol=1e-4, atol=1e-5)
    assert result.scores.shape == (3, 16)
    # Layer completeness: the units' attributions add up to f(x) - f(baseline) (up to ReLU kinks on the path).
    torch.testing.assert_close(result.scores.sum(1), result.output_difference, rtol=0.05, atol=1e-3)
    top = result.ranking(3)
    assert top[0]["unit"] == f"conv2:{top[0]['index']}"
    assert top[0]["attribution"] == pytest.approx(float(result.mean().max()))
    assert hook_count(tiny_run.model) == 0


@pytest.mark.parametrize("method", ["conductance", "grad-x-act"])
def test_unit_methods_leave_no_hooks(tiny_run, method):
    x, _ = load_dataset_images(tiny_run, [0])
    result = unit_attribution(tiny_run, x, None, layer="fc1", method=method, steps=8)
    assert result.scores.shape == (1, 120)
    assert hook_count(tiny_run.model) == 0
    with pytest.raises(InterpError, match="unknown layer 'conv9'"):
        unit_attribution(tiny_run, x, None, layer="conv9")
    assert hook_count(tiny_run.model) == 0


def test_class_unit_summary(tiny_run):
    data = tiny_run.load_data(progress=False)
    summary = class_unit_summary(tiny_run, "conv2", per_class=3, steps=8, data=data, classes=["circle", "line"])
    assert summary.matrix.shape == (2, 16) and summary.counts == [3, 3]
    # The circle row is the mean over three circle test images, target circle: a seeded random
    # choice within the class (interp.data.samples.shuffled_classes), not its first three.
    from interp.data.samples import shuffled_classes

    k = tiny_run.classes.index("circle")
    idx = sorted(shuffled_classes(data.test_y, seed=0)[k][:3].tolist())
    assert idx != (data.test_y == k).nonzero().flatten()[:3].tolist()
    x, _ = load_dataset_images(tiny_run, idx, data=data)
    direct = unit_attribution(tiny_run, x, "circle", layer="conv2", steps=8).mean()
    torch.testing.assert_close(summary.matrix[0], direct)
    top = summary.top_units("circle", 4)
    assert [u["index"] for u in top] == torch.argsort(direct, descending=True)[:4].tolist()
    by_unit = summary.top_classes(top[0]["index"])
    assert {c["class"] for c in by_unit} == {"circle", "line"}
    paths = save_class_unit_summary(summary)
    meta = json.loads(paths["json"].read_text())
    assert meta["by_class"]["circle"][0]["unit"] == top[0]["unit"]
    assert set(meta["by_unit"]) == {f"conv2:{u}" for u in range(16)}
    torch.testing.assert_close(load_class_unit_summary(paths["json"]).matrix, summary.matrix)
    single = unit_attribution(tiny_run, x, "circle", layer="conv2", steps=4)
    torch.testing.assert_close(load_unit_attribution(save_unit_attribution(single)["npz"]).scores, single.scores)


# --------------------------------------------------------------------------- CLI


def test_cli_attribute(cli, tiny_run_dir, tmp_path):
    from PIL import Image

    code, out, err = cli("attribute", "--run", str(tiny_run_dir), "--index", "5", "--methods", "ig,occlusion",
                         "--steps", "8", "--no-progress", "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "top 5:" in out and "IG completeness" in out and "seconds per image" in out
    assert (tmp_path / "out" / "test-5.png").is_file() and (tmp_path / "out" / "test-5.npz").is_file()
    Image.new("RGB", (48, 48), (0, 200, 0)).save(tmp_path / "green.png")
    code, out, err = cli("attribute", "--run", str(tiny_run_dir), "--image", str(tmp_path / "green.png"),
                         "--target", "circle", "--methods", "saliency", "--no-progress", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "resized to 32x32" in err and "explaining circle" in out


@pytest.mark.parametrize("args, message", [
    (["--image", "nope.png"], "image file nope.png not found"),
    (["--index", "0", "--methods", "ig,sailency"], "unknown method 'sailency'; did you mean 'saliency'"),
    (["--index", "0", "--target", "cat"], "unknown class name 'cat'.*line, edge"),
    (["--index", "0", "--target", "10"], "class index 10 is out of range; classes: 0=line"),
    (["--index", "500"], "index 500 is out of range: the test split has 500 images"),
    (["--index", "0", "--split", "val"], "unknown split 'val'"),
    (["--index", "x"], "expected an image index"),
])
def test_cli_attribute_errors(cli, tiny_run_dir, args, message):
    code, out, err = cli("attribute", "--run", str(tiny_run_dir), "--no-progress", *args)
    assert code == 2
    assert err.count("\n") <= 2 and "Traceback" not in err
    import re

    assert re.search(message, err), err


def test_cli_attribute_unreadable_image(cli, tiny_run_dir, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    code, _, err = cli("attribute", "--run", str(tiny_run_dir), "--image", str(tmp_path / "bad.png"))
    assert code == 2 and "cannot read image file" in err and "bad.png" in err


def test_cli_attribute_units(cli, tiny_run_dir, tmp_path):
    code, out, err = cli("attribute", "units", "--run", str(tiny_run_dir), "--layer", "conv2", "--class", "circle",
                         "--per-class", "2", "--steps", "4", "--top", "3", "--no-progress", "--out", str(tmp_path))
    assert code == 0, err
    assert "conv2:" in out and (tmp_path / "units-conv2-class-circle.json").is_file()
    code, out, err = cli("attribute", "units", "--run", str(tiny_run_dir), "--layer", "conv2", "--per-class", "1",
                         "--steps", "4", "--no-progress", "--out", str(tmp_path))
    assert code == 0, err
    assert "circle" in out and (tmp_path / "class-units-conv2.json").is_file()
    code, _, err = cli("attribute", "units", "--run", str(tiny_run_dir), "--layer", "conv3")
    assert code == 2 and "unknown layer 'conv3'" in err
    code, _, err = cli("attribute", "units", "--run", str(tiny_run_dir), "--layer", "conv2", "--method", "lrp")
    assert code == 2 and "unknown unit attribution method 'lrp'" in err


def test_cli_attribute_gallery(cli, tiny_run_dir, tmp_path):
    code, out, err = cli("attribute", "gallery", "--run", str(tiny_run_dir), "--per-class", "1", "--methods", "saliency",
                         "--no-progress", "--out", str(tmp_path))
    assert code == 0, err
    assert "circle" in out and (tmp_path / "gallery.json").is_file() and (tmp_path / "circle.png").is_file()
    code, _, err = cli("attribute", "gallery", "--run", str(tiny_run_dir), "--per-class", "0")
    assert code == 2 and "argument --per-class: must be from 1 to 1,000, got 0" in err


def test_cli_help_has_examples(cli):
    for verb in ("", "pixels", "units", "trust", "gallery", "tokens"):
        code, out, _ = cli(*f"attribute {verb}".split(), "--help")
        assert code == 0 and "examples:" in out, verb


def test_every_registered_method_is_documented():
    assert set(METHODS) == {"saliency", "ig", "smoothgrad", "gradcam", "occlusion", "guided-backprop", "deeplift"}
    import interp.analysis.attribution.methods as module

    for name, method in METHODS.items():
        assert name in module.__doc__ and method.reduce in ("sum", "max", "mean")


# --------------------------------------------------------------------------- language models: tokens

VOCAB = tuple("abcdefgh .\n!")


def tiny_gpt() -> nn.Module:
    torch.manual_seed(0)
    return create_model("gpt", vocab_size=len(VOCAB), block_size=16, n_layer=1, n_head=2, n_embd=16).eval()


def test_token_attribution_matches_captum_and_is_complete(tmp_path):
    import captum.attr as ca

    from interp.analysis.attribution.tokens import attribute_tokens
    from interp.results.attribution import load_token_attribution, save_token_attribution

    model = tiny_gpt()
    result = attribute_tokens(model, "abc dea", vocab=VOCAB, steps=64, position=4)
    ids = torch.tensor([[VOCAB.index(c) for c in "abc dea"]])
    base = torch.full_like(ids, VOCAB.index(" "))
    lig = ca.LayerIntegratedGradients(lambda x: model(x)[:, 4, :], model.token_embedding)
    direct = lig.attribute(ids, baselines=base, target=result.target, n_steps=64).sum(-1)[0]
    torch.testing.assert_close(result.scores, direct.detach(), rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        assert result.target == int(model(ids)[0, 4].argmax())
    assert result.relative_error < 0.01
    assert result.scores[5:].abs().sum() == 0  # causal: later tokens cannot matter
    assert result.scores[3] == 0  # the space is the baseline token itself
    assert result.labels[3] == "␣" and hook_count(model) == 0
    named = attribute_tokens(model, "abc dea", "h", vocab=VOCAB, steps=4)
    assert named.target == VOCAB.index("h") and named.position == 6
    back = load_token_attribution(save_token_attribution(result, directory=tmp_path)["json"])
    torch.testing.assert_close(back.scores, result.scores)


def test_token_attribution_errors():
    from interp.analysis.attribution.tokens import attribute_tokens

    model = tiny_gpt()
    with pytest.raises(InterpError, match="unknown target token 'z'"):
        attribute_tokens(model, "abc", "z", vocab=VOCAB)
    with pytest.raises(InterpError, match="position 5 is out of range"):
        attribute_tokens(model, "abc", position=5, vocab=VOCAB)
    with pytest.raises(InterpError, match="context is 16"):
        attribute_tokens(model, "a" * 17, vocab=VOCAB)
    with pytest.raises(InterpError, match="outside the model's vocabulary"):
        attribute_tokens(model, "xyz", vocab=VOCAB)
    assert hook_count(model) == 0


def make_gpt_run(root) -> str:
    """A language-model run folder written by hand: config.json + model.safetensors."""
    from dataclasses import asdict

    from interp.config import DataConfig, RunConfig
    from interp.io import save_tensors, write_json

    model = tiny_gpt()
    config = RunConfig(model="gpt", family="gpt", task="language-model", model_config=asdict(model.config),
                       data=DataConfig(name="text:tiny.txt", vocab=VOCAB))
    write_json(root / "gpt-tiny" / "config.json", config.to_dict())
    save_tensors(root / "gpt-tiny" / "model.safetensors", model.state_dict())
    return str(root / "gpt-tiny")


def test_cli_attribute_tokens(cli, tmp_path, tiny_run_dir):
    run = make_gpt_run(tmp_path)
    code, out, err = cli("attribute", "tokens", "--run", run, "--prompt", "ab\\nca", "--steps", "8",
                         "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "Next token after position 4" in out and "completeness error" in out and "\\n" in out
    assert len(list((tmp_path / "out").glob("tokens-*.png"))) == 1
    code, _, err = cli("attribute", "tokens", "--run", run, "--prompt", "abz")
    assert code == 2 and "outside the model's vocabulary" in err
    code, _, err = cli("attribute", "tokens", "--run", run, "--prompt", "abc", "--target", "q")
    assert code == 2 and "unknown target token 'q'" in err
    code, _, err = cli("attribute", "tokens", "--run", str(tiny_run_dir), "--prompt", "abc")
    assert code == 2 and "attribute tokens needs a gpt" in err
    code, _, err = cli("attribute", "--run", run, "--index", "0")
    assert code == 2 and "interp attribute pixels needs an image classifier; for language models use: interp attribute tokens" in err


# --------------------------------------------------------------------------- results store, --json, report


def test_class_unit_attribution_is_a_seeded_choice_of_the_class(tiny_run):
    from interp.data.samples import shuffled_classes

    data = tiny_run.load_data(progress=False)
    result = class_unit_attribution(tiny_run, "circle", layer="conv2", per_class=2, steps=4, data=data)
    k = tiny_run.classes.index("circle")
    idx = sorted(shuffled_classes(data.test_y, seed=0)[k][:2].tolist())
    assert result.sources == [f"test:{i}" for i in idx] and result.targets.tolist() == [k, k]
    x, _ = load_dataset_images(tiny_run, idx, data=data)
    torch.testing.assert_close(result.scores, unit_attribution(tiny_run, x, k, layer="conv2", steps=4).scores)


def _same_tensors(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_store_round_trip_and_describe_of_every_attribution_kind(tiny_run, tmp_path):
    import interp.results as results
    from interp.analysis.attribution.tokens import attribute_tokens

    x, y = load_dataset_images(tiny_run, [0, 1])
    attr = attribute(tiny_run, x, None, "ig,saliency", labels=y, sources=["test:0", "test:1"], steps=4)
    data = tiny_run.load_data(progress=False)
    gallery = attribution_gallery(tiny_run, per_class=1, methods="saliency", data=data)
    units = unit_attribution(tiny_run, x, 1, layer="conv2", steps=4, sources=["test:0", "test:1"])
    summary = class_unit_summary(tiny_run, "conv1", per_class=1, steps=2, data=data, classes=["circle", "line"])
    tokens = attribute_tokens(tiny_gpt(), "abc dea", vocab=VOCAB, steps=4)
    tokens.prompt = "abc dea"
    for result in (attr, gallery, units, summary, tokens):
        saved = results.save(result, tmp_path / type(result).__name__)
        back = results.load(saved)
        assert type(back) is type(result)
        kind = results.kind_of(result).name
        assert json.loads(saved.read_text())["kind"] == kind
        described = results.describe(result)
        assert described["kind"] == kind
        json.dumps(described, allow_nan=False)
    back = results.load(tmp_path / "Attribution" / "batch-2.json")
    _same_tensors(back.maps, attr.maps)
    assert back.options == attr.options and back.sources == attr.sources
    back = results.load(tmp_path / "Gallery" / "gallery.json")
    _same_tensors(back.attribution.maps, gallery.attribution.maps)
    assert [e.indices for e in back.entries] == [e.indices for e in gallery.entries] and back.seed == gallery.seed
    back = results.load(tmp_path / "UnitAttribution" / "units-conv2.json")
    torch.testing.assert_close(back.scores, units.scores)
    torch.testing.assert_close(back.output_difference, units.output_difference)
    back = results.load(tmp_path / "ClassUnitSummary" / "class-units-conv1.json")
    torch.testing.assert_close(back.matrix, summary.matrix)
    assert back.counts == summary.counts and back.to_dict() == summary.to_dict()
    back = results.load(tmp_path / "TokenAttribution" / "tokens-abc-dea.json")
    torch.testing.assert_close(back.scores, tokens.scores)
    assert back.to_dict() == tokens.to_dict()


def test_a_result_of_other_settings_goes_beside_the_saved_one(tmp_path):
    model = tutorial_net()
    x = images(1)
    first = attribute(model, x, 0, ["ig"], steps=4, sources=["cat.png"])
    paths = save_attribution(first, tmp_path)
    assert paths["json"].name == "cat.json"
    again = save_attribution(attribute(model, x, 0, ["ig"], steps=4, sources=["cat.png"]), tmp_path)
    assert again["json"] == paths["json"]  # the same settings: a rerun replaces its own files
    other = save_attribution(attribute(model, x, 0, ["ig"], steps=8, sources=["cat.png"]), tmp_path)
    assert other["json"] != paths["json"] and other["json"].name.startswith("cat-")
    assert load_attribution(paths["json"]).options.steps == 4  # the first result is intact
    assert load_attribution(other["json"]).options.steps == 8


def test_cli_json_of_every_attribute_command(cli, tiny_run_dir, tmp_path):
    common = ("--run", str(tiny_run_dir), "--no-progress", "--json")
    code, out, err = cli("attribute", *common, "--index", "5", "--methods", "ig", "--steps", "4",
                         "--out", str(tmp_path / "a"))
    assert code == 0, err
    d = json.loads(out)
    assert d["kind"] == "attribution" and d["methods"] == ["ig"] and d["sources"] == ["test:5"]
    assert d["images"][0]["ig_completeness"]["relative_error"] >= 0 and d["saved"].endswith("test-5.json")
    assert set(d["files"]) == {"json", "npz", "png"}

    for extra, kind, keys in [
        (("--class", "circle", "--per-class", "2"), "unit-attribution", {"top", "mean", "sum_of_units"}),
        (("--index", "3"), "unit-attribution", {"top", "top_positive", "output_difference"}),
        (("--per-class", "1"), "class-unit-summary", {"by_class", "by_unit", "matrix", "counts"}),
    ]:
        code, out, err = cli("attribute", "units", *common, "--layer", "conv2", "--steps", "2", "--top", "3", *extra,
                             "--out", str(tmp_path / "u"))
        assert code == 0, err
        d = json.loads(out)
        assert d["kind"] == kind and keys <= set(d) and d["layer"] == "conv2"
        assert (tmp_path / "u" / d["saved"].rsplit("/", 1)[-1]).is_file()
    assert len(d["by_class"]) == len(json.loads(out)["classes"])

    code, out, err = cli("attribute", "gallery", *common, "--per-class", "1", "--methods", "saliency",
                         "--out", str(tmp_path / "g"))
    assert code == 0, err
    d = json.loads(out)
    assert d["kind"] == "attribution-gallery" and len(d["entries"]) == 10 and d["folder"] == str(tmp_path / "g")

    run = make_gpt_run(tmp_path)
    code, out, err = cli("attribute", "tokens", "--run", run, "--prompt", "abca", "--steps", "4", "--json",
                         "--out", str(tmp_path / "t"))
    assert code == 0, err
    d = json.loads(out)
    assert d["kind"] == "token-attribution" and d["labels"] == list("abca") and len(d["scores"]) == 4
    assert {"relative_error", "output_difference", "top5", "saved"} <= set(d)


def test_cli_help_shows_a_json_example(cli):
    for verb in ("pixels", "units", "trust", "gallery", "tokens"):
        code, out, _ = cli("attribute", verb, "--help")
        assert code == 0 and "--json" in out.split("examples:")[1], verb


def _saved_attribution_results(run, folder) -> None:
    """Small versions of what interp.pipelines.attribution.ensure saves for a report limited to conv1."""
    from interp.analysis.attribution.trust import trust_report
    from interp.results.attribution import save_trust

    data = run.load_data(progress=False)
    save_gallery(attribution_gallery(run, per_class=1, methods="saliency", data=data), folder / "gallery")
    save_trust(trust_report(run, sample=2, methods="saliency", data=data, curve_steps=4), folder)
    save_class_unit_summary(class_unit_summary(run, "conv1", per_class=1, steps=2, data=data), folder)


def _forbid_computing(monkeypatch) -> None:
    """Every attribution computation the pipeline or the report could call now raises."""
    import interp.analysis.attribution.gallery as gallery
    import interp.analysis.attribution.trust as trust
    import interp.analysis.attribution.units as units
    import interp.pipelines.attribution as pipeline

    def boom(*args, **kwargs):
        raise AssertionError("computed an attribution result that was already saved")

    for module in (gallery, pipeline):
        monkeypatch.setattr(module, "attribution_gallery", boom)
    for module in (trust, pipeline):
        monkeypatch.setattr(module, "trust_report", boom)
    for module in (units, pipeline):
        monkeypatch.setattr(module, "class_unit_summary", boom)
    monkeypatch.setattr(units, "unit_attribution", boom)


def test_report_pages_render_from_saved_results_without_computing(tiny_run, tmp_path, monkeypatch):
    from interp.pipelines.attribution import ensure
    from interp.report import ReportContext
    from interp.report.attribution_pages import contribute
    from interp.report.render import render_pages

    root = tmp_path / "report"
    _saved_attribution_results(tiny_run, root / "attribution")
    before = {p: p.read_bytes() for p in (root / "attribution").rglob("*") if p.is_file()}
    _forbid_computing(monkeypatch)
    ctx = ReportContext(run=tiny_run, root=root, layers=["conv1"], progress=False, log=None)
    ensure(ctx)  # everything is saved: nothing is computed, nothing rewritten
    assert {p: p.read_bytes() for p in (root / "attribution").rglob("*") if p.is_file()} == before
    contribute(ctx)
    render_pages(ctx)
    page = (root / "attribution.html").read_text()
    assert 'id="attribution"' in page and 'id="trust"' in page and "attribution/gallery/circle.png" in page
    assert 'id="class-units"' in (root / "conv1" / "index.html").read_text()
    assert 'id="classes"' in (root / "conv1" / "0.html").read_text()
    assert "conv2/index.html" not in ctx.pages  # outside the report's layers


def test_report_pages_leave_out_missing_results(tiny_run, tmp_path, monkeypatch):
    from interp.report import ReportContext
    from interp.report.attribution_pages import contribute

    _forbid_computing(monkeypatch)
    ctx = ReportContext(run=tiny_run, root=tmp_path / "empty", progress=False, log=None)
    contribute(ctx)
    assert ctx.pages == {} and ctx.nav == []
