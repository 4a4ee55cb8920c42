"""cifarnet (interp/zoo/strong.py), its recipe, and the training-path speed-ups P1/P2 rely on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from interp.errors import InterpError
from interp.hooks import hook_count
from interp.zoo import create_model, get_spec

TINY = {"widths": (4, 8, 8, 16)}  # same architecture, a few thousand parameters
TINY_SET = ["--set", "widths=4,8,8,16", "--set", "n_train=256", "--set", "n_test=64"]


def test_registered_with_its_layers_and_recipe():
    spec = get_spec("cifarnet")
    assert (spec.family, spec.task, spec.recipe) == ("cnn", "image-classification", "cifarnet")
    model = create_model("cifarnet")
    assert model.layer_names == [f"conv{i}" for i in range(1, 8)] + ["fc"]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    widths = create_model("cifarnet", widths=(8, 16, 32)).layer_names
    assert widths == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc"]


def test_every_module_is_called_once_and_layers_are_what_they_say():
    model = create_model("cifarnet", **TINY).eval()
    calls: dict[str, int] = {}
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
               for n, m in model.named_children()]
    x = torch.randn(3, 3, 32, 32)
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    assert calls == {n: 1 for n, _ in model.named_children()}
    assert hook_count(model) == 0
    # A reference forward written out by hand: the module order is the architecture.
    h = x
    for k in range(1, 8):
        h = getattr(model, f"conv{k}")(h)
        if k in (2, 4, 6):
            h = F.max_pool2d(h, 2)
        h = F.gelu(getattr(model, f"bn{k}")(h))
    ref = model.fc(h.amax(dim=(2, 3))) * model.config.logit_scale
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("overrides, message", [
    ({"activation": "tanh"}, "activation must be one of gelu, relu"),
    ({"widths": (8,)}, "widths must be a stem width and at least one group width"),
    ({"widths": (8, 8, 8, 8, 8, 8, 8)}, "too small for 6 pooling groups"),
])
def test_bad_config_is_a_clear_error(overrides, message):
    with pytest.raises(InterpError, match=message):
        create_model("cifarnet", **overrides)


def test_bad_setting_on_the_command_line_exits_2(cli):
    code, out, err = cli("train", "cifarnet", "--dataset", "shapes", "--set", "activation=tanh", "--no-progress")
    assert code == 2 and "activation must be one of gelu, relu" in err and "Traceback" not in err
    code, out, err = cli("train", "cifarnet", "--dataset", "shapes", "--set", "precision=fp8", "--no-progress")
    assert code == 2 and "precision" in err and "bf16" in err


def test_a_training_step_lowers_the_loss_in_fp32_and_bf16():
    for precision in (None, torch.bfloat16):
        torch.manual_seed(0)
        model = create_model("cifarnet", **TINY)
        x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

        def loss_now():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision is not None):
                return F.cross_entropy(model(x).float(), y)

        before = loss_now()
        for _ in range(5):
            opt.zero_grad()
            loss_now().backward()
            opt.step()
        assert loss_now().item() < before.item()


def test_round_trip_through_a_run(tmp_path):
    from interp.runs import load_run
    from interp.training.loop import train

    run = train("cifarnet", "shapes", name="strong", root=tmp_path, epochs=1, device="cpu", progress=False,
                log=None, overrides={"widths": "4,8,8,16", "n_train": "256", "n_test": "64"})
    cfg = run.config
    assert cfg.train.recipe == "cifarnet" and cfg.train.precision == "auto" and cfg.train.eval_flip
    assert run.summary["precision"] == "fp32"  # auto: what the tests' CPU is said to compute natively (conftest)
    assert tuple(cfg.model_config["widths"]) == (4, 8, 8, 16)
    assert 0.0 <= run.summary["test_acc"] <= 1.0
    again = load_run(tmp_path / "strong")
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(again.model(again.normalize(x)), run.model(run.normalize(x)))
    assert [layer.name for layer in again.layers] == again.model.layer_names
    assert again.layer("conv7").units == 16 and again.layer("fc").units == 10


def test_cli_trains_cifarnet(cli, tmp_path):
    code, out, err = cli("train", "cifarnet", "--dataset", "shapes", "--epochs", "1", "--name", "c",
                         "--no-progress", *TINY_SET)
    assert code == 0, err
    assert "test_acc" in out


# ------------------------------------------------------ the training path's speed-ups


def _reference_crop_flip(x, generator, pad=4):
    # The first implementation (four broadcast index tensors): the fast one must match it.
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = torch.arange(h)[None, :] + dy[:, None]
    cols = torch.arange(w)[None, :].expand(b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + dx[:, None]
    bi = torch.arange(b)[:, None, None, None]
    ci = torch.arange(c)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def test_fast_crop_flip_matches_the_reference():
    from interp.training.classification import random_crop_flip

    x = torch.randn(16, 3, 32, 32)
    fast = random_crop_flip(x, torch.Generator().manual_seed(5))
    torch.testing.assert_close(fast, _reference_crop_flip(x, torch.Generator().manual_seed(5)), rtol=0, atol=0)
    assert not torch.equal(fast, x)  # it did move something


def test_flip_tta_bf16_and_channels_last_in_prediction():
    from dataclasses import replace

    from interp.config import recipe
    from interp.data import load_image_data
    from interp.training.classification import ImageClassificationTask
    from interp.training.loop import make_config

    data = load_image_data("shapes", n_train=64, n_test=32, progress=False)
    model = create_model("cifarnet", **TINY).eval()
    task = ImageClassificationTask(torch.device("cpu"), progress=False)
    config = make_config("cifarnet", "shapes")
    plain = replace(config, train=recipe("fast"))
    task.attach(data, plain)
    x = data.normalize(data.test_x)
    with torch.no_grad():
        direct = model(x)
        mirrored = (model(x) + model(x.flip(3))) / 2
    torch.testing.assert_close(task.predict(model, data.test_x), direct, rtol=1e-4, atol=1e-4)
    task.attach(data, replace(config, train=recipe("fast", eval_flip=True, channels_last=True)))
    torch.testing.assert_close(task.predict(model, data.test_x), mirrored, rtol=1e-4, atol=1e-4)
    task.attach(data, replace(config, train=recipe("fast", precision="bf16")))
    bf16 = task.predict(model, data.test_x)
    assert bf16.dtype == torch.float32
    assert (bf16 - direct).abs().max() < 0.05 * direct.abs().max() + 1e-3  # bf16 is close, not equal


def test_a_subset_of_a_class_sorted_dataset_has_every_class():
    from interp.data import ImageData

    y = torch.arange(10).repeat_interleave(100)  # stored class by class, as an image folder is
    x = torch.zeros(1000, 3, 4, 4, dtype=torch.uint8)
    data = ImageData("sorted", x, y, x, y, [str(i) for i in range(10)], (0.5,) * 3, (0.25,) * 3)
    sub = data.subset(200, 50)
    assert len(sub.train_y) == 200 and len(sub.test_y) == 50
    assert set(sub.train_y.tolist()) == set(range(10)) and len(set(sub.test_y.tolist())) >= 8
    assert torch.equal(sub.train_y, data.subset(200, 50).train_y)  # deterministic
    assert data.subset(0, 0).train_y is y  # 0 keeps a split whole


@pytest.mark.slow
def test_benchmark_quick_run(shared_data, capsys, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    monkeypatch.setattr(sys, "argv", ["train_cifar.py", "all", "--quick"])
    bench = runpy.run_path(str(Path(__file__).resolve().parents[2] / "benchmarks" / "train_cifar.py"))
    assert bench["main"](["all", "--quick", "--data", str(shared_data / "cifar10-jpeg")]) == 0
    out = capsys.readouterr().out
    assert "(a)/(b) = " in out and "(a0)/(b) = " in out and "P2: best test acc" in out
