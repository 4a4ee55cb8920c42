"""Clever Hans checks: perturbations, accuracy, and the verdict on a planted shortcut model.

The data carries its label twice: as the brightness of a central square (the "object")
and of a small patch in the top-left corner (a "watermark"). A model that reads the
watermark is a Clever Hans: its accuracy survives when only the border is left. A model
that reads the object loses it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from interp.claims import NOT_SUPPORTED, SUPPORTED, check_claims
from interp.analysis.vision.shortcuts import PERTURBATIONS, accuracy, perturb, perturbation_accuracy
from interp.errors import InterpError
from interp.runs import Run
from interp.training.loop import make_config
from interp.zoo import create_model

N_CLASSES = 10


def level(labels):
    return 0.1 + 0.08 * labels.float()


def cue_data(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % N_CLASSES
    x = 0.5 + 0.05 * torch.randn(n, 3, 32, 32, generator=g)
    lv = level(labels).view(-1, 1, 1, 1)
    x[:, :, 12:20, 12:20] = lv  # the object
    x[:, :, 0:4, 0:4] = lv      # the watermark
    return x.clamp(0, 1), labels


class PatchReader(nn.Module):
    """Classifies by the brightness of one patch of the (normalised) input: the nearest class level."""

    def __init__(self, rows, cols):
        super().__init__()
        self.rows, self.cols = rows, cols
        self.levels = nn.Parameter((level(torch.arange(N_CLASSES)) - 0.5) / 0.25, requires_grad=False)

    def forward(self, x):
        v = x[:, :, self.rows, self.cols].mean(dim=(1, 2, 3))
        return -100.0 * (v[:, None] - self.levels[None]).pow(2)


def as_run(model, name="planted"):
    cfg = make_config("tutorial", "shapes")
    data = replace(cfg.data, input_shape=(3, 32, 32), mean=(0.5,) * 3, std=(0.25,) * 3,
                   classes=tuple(str(i) for i in range(N_CLASSES)))
    return Run(Path(name), replace(cfg, data=data), model.eval())


WATERMARK = PatchReader(slice(0, 4), slice(0, 4))
OBJECT = PatchReader(slice(12, 20), slice(12, 20))


def check(run, **kwargs):
    images, labels = cue_data()
    (result,) = check_claims(run, ["clever-hans"], images=images, labels=labels, **kwargs)
    return result


# --------------------------------------------------------------------------- perturbations


def test_perturbations_keep_shape_and_range():
    x = torch.rand(3, 3, 32, 32)
    for kind in PERTURBATIONS:
        y = perturb(x, kind)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1, kind


def test_border_only_and_centre_masked():
    x = torch.rand(4, 3, 32, 32)
    mean = x.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
    border = perturb(x, "border_only")
    assert torch.equal(border[:, :, :4], x[:, :, :4]) and torch.equal(border[:, :, :, -4:], x[:, :, :, -4:])
    assert torch.allclose(border[:, :, 4:28, 4:28], mean.expand(4, 3, 24, 24))
    centre = perturb(x, "centre_masked")
    assert torch.allclose(centre[:, :, 8:24, 8:24], mean.expand(4, 3, 16, 16))
    assert torch.equal(centre[:, :, :8], x[:, :, :8])


def test_patches_shuffled_is_a_permutation_of_patches():
    x = torch.rand(2, 3, 32, 32)
    y = perturb(x, "patches_shuffled", seed=1)
    assert not torch.equal(x, y)
    patches = lambda t: sorted(tuple(p.flatten().tolist()) for p in t.unfold(1, 8, 8).unfold(2, 8, 8)  # noqa: E731
                               .reshape(3, 16, 64).transpose(0, 1))
    for i in range(2):
        assert patches(x[i]) == patches(y[i])
    assert torch.equal(y, perturb(x, "patches_shuffled", seed=1))  # seeded


def test_grayscale_and_low_pass():
    x = torch.rand(2, 3, 32, 32)
    g = perturb(x, "grayscale")
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    lum = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(g[:, 0], lum, atol=1e-6)
    blurred = perturb(x, "low_pass")
    rough = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731
    assert rough(blurred) < 0.25 * rough(x)
    assert torch.allclose(blurred.mean(), x.mean(), atol=0.01)


def test_unknown_perturbation_is_a_clear_error():
    with pytest.raises(InterpError, match="unknown perturbation 'blur'.*low_pass"):
        perturb(torch.rand(1, 3, 8, 8), "blur")


def test_accuracy_against_direct_computation():
    images, labels = cue_data(100)
    run = as_run(OBJECT)
    direct = (OBJECT(run.normalize(images)).argmax(-1) == labels).float().mean().item()
    assert accuracy(run, images, labels, batch_size=7) == pytest.approx(direct)
    assert direct == 1.0


# --------------------------------------------------------------------------- the verdict


def test_watermark_reader_is_a_clever_hans():
    result = check(as_run(WATERMARK))
    assert result.status == SUPPORTED
    assert "border_only" in result.found
    rows = {r["input"]: r for r in result.table}
    assert rows["full"]["accuracy"] == 1.0 and rows["border_only"]["accuracy"] == 1.0


def test_object_reader_is_not_a_clever_hans():
    result = check(as_run(OBJECT))
    assert result.status == NOT_SUPPORTED and result.found == []
    rows = {r["input"]: r for r in result.table}
    assert rows["full"]["accuracy"] == 1.0
    assert rows["border_only"]["accuracy"] <= 0.2 and rows["grayscale"]["accuracy"] == 1.0


@pytest.mark.parametrize("seed", [100, 101])
def test_random_classifier_is_not_supported(seed):
    torch.manual_seed(seed)
    result = check(as_run(create_model("tutorial")))
    assert result.status == NOT_SUPPORTED and "chance" in result.verdict.reason


def test_perturbation_accuracy_retention():
    images, labels = cue_data(200)
    result = perturbation_accuracy(as_run(WATERMARK), images, labels)
    assert result.chance == pytest.approx(0.1)
    assert result.retention("border_only") == pytest.approx(1.0)
    assert result.p_values["border_only"] < 1e-10


def test_clever_hans_needs_labels_with_images():
    images, _ = cue_data(20)
    with pytest.raises(InterpError, match="labels"):
        check_claims(as_run(OBJECT), ["clever-hans"], images=images)


def test_clever_hans_on_a_trained_run(tiny_run):
    # Plain shapes: decided by removing the object (the generator renders its background), not by
    # border_only / patches_shuffled, which the texture classes survive by definition.
    (result,) = check_claims(tiny_run, ["clever-hans"], max_images=300)
    assert result.status == NOT_SUPPORTED, result.verdict.reason
    assert result.numbers["images"] == 300 and result.numbers["full"] > result.numbers["chance"]
    assert result.numbers["object_removed"] < result.headline["null_quantile"]


def test_binomial_tail_against_scipy():
    from interp.stats import binomial_tail

    stats = pytest.importorskip("scipy.stats")
    for k, n, p in [(3, 6, 0.01), (50, 400, 0.1), (0, 5, 0.3), (11, 1000, 0.0019), (7, 7, 0.5)]:
        assert binomial_tail(k, n, p) == pytest.approx(float(stats.binom.sf(k - 1, n, p)), rel=1e-9, abs=1e-300)


def test_one_class_of_images_is_a_clear_error(tiny_run):
    from interp.errors import InterpError

    images = torch.zeros(20, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(InterpError, match="at least 2 classes"):
        check_claims(tiny_run, ["clever-hans"], images=images, labels=torch.zeros(20, dtype=torch.long))
