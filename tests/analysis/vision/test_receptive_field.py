"""Receptive fields (interp.analysis.vision.receptive_field) against the gradient's support.

The reference: the input pixels where d(position's activations)/d(input) is non-zero, for
a model with random weights, pooled over random inputs in float64 (max-pooling sends the
gradient to one pixel per window, so one input alone can miss the field's edges).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from interp.analysis.vision.receptive_field import receptive_field
from interp.analysis.vision.tuning import Probe
from interp.errors import InterpError
from interp.hooks import capture_until, hook_count, run_until
from interp.zoo import create_model


class Dilated(nn.Module):
    """A dilated conv, a padded overlapping max-pool and a strided dilated conv."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, dilation=2, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(3, 2, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2, dilation=3, padding=2)

    def forward(self, x):
        return self.conv2(self.pool1(self.relu1(self.conv1(x))))


def deep_max_pool(levels: int = 3) -> nn.Sequential:
    """Padded 3x3 convs, each followed by a 5x5 max-pool of stride 2: fields grow past the image's edges."""
    layers = []
    for i in range(levels):
        layers += [nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(5, 2, padding=2)]
    return nn.Sequential(*layers, nn.Conv2d(4, 4, 3, padding=1))


MODELS = {
    "tutorial": lambda: create_model("tutorial"),                            # max-pool, kernel 5
    "tutorial-padded": lambda: create_model("tutorial", padding=2),          # max-pool, kernel 5, padding
    "tutorial-strided": lambda: create_model("tutorial", pooling="stride"),  # strided convs, no pool
    "cnn-gap": lambda: create_model("cnn-gap"),                              # kernel 3, batch norm
    "dilated": Dilated,
    "deep-max-pool": deep_max_pool,
}


def conv_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def gradient_box(model: nn.Module, layer: str, position: tuple[int, int], shape=(3, 32, 32), samples: int = 32):
    """``(top, bottom, left, right)`` of the pixels with a non-zero gradient of ``position`` (all channels)."""
    model = copy.deepcopy(model).double().eval()
    x = torch.randn(samples, *shape, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    with torch.enable_grad(), capture_until(model, layer, detach=False) as acts:
        run_until(model, x)
        y, x_ = position
        (grad,) = torch.autograd.grad(acts[layer][:, :, y, x_].sum(), x)
    support = grad.abs().sum((0, 1)) > 0
    rows, cols = torch.nonzero(support.any(1)).flatten(), torch.nonzero(support.any(0)).flatten()
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


CASES = [(name, layer) for name, build in MODELS.items() for layer in conv_names(build())]


@pytest.mark.parametrize("name, layer", CASES)
def test_boxes_are_the_gradient_support(name, layer):
    torch.manual_seed(0)
    model = MODELS[name]()
    shape = (3, 64, 64) if name == "deep-max-pool" else (3, 32, 32)
    rf = receptive_field(model, layer, shape)
    last_y, last_x = len(rf.rows) - 1, len(rf.cols) - 1
    # The centre (where the tuning probes read), and the corners, whose fields the image clips.
    for position in {rf.position, (0, 0), (last_y, last_x), (0, last_x)}:
        assert rf.box(*position) == gradient_box(model, layer, position, shape), (name, layer, position)


def test_fields_that_reach_past_the_image_are_clipped():
    model = deep_max_pool()
    rf = receptive_field(model, "9", (3, 64, 64))  # the fourth conv
    # 3 + 4 + 2*2 + 4*2 + 2*4 + 4*4 + 2*8: each layer's kernel extent times the stride below it
    assert rf.size == (59, 59)
    assert rf.box(0, 0) == (0, 29, 0, 29) == gradient_box(model, "9", (0, 0), (3, 64, 64))
    assert rf.box(7, 7) == (27, 63, 27, 63)


def test_the_tutorial_fields_by_hand():
    model = create_model("tutorial")
    rf1, rf2 = receptive_field(model, "conv1", (3, 32, 32)), receptive_field(model, "conv2", (3, 32, 32))
    assert rf1.size == (5, 5) and rf2.size == (14, 14)
    h = torch.arange(10)
    # conv2 position h: conv1 rows 2h..2h+9 after pooling, so input rows 2h..2h+13
    assert torch.equal(rf2.rows, torch.stack([2 * h, 2 * h + 13], 1)) and torch.equal(rf2.cols, rf2.rows)
    assert rf2.position == (5, 5) and rf2.center == (1.0, 1.0)  # rows 10..23 of 0..31: 1 px below the centre
    padded = receptive_field(create_model("tutorial", padding=2), "conv1", (3, 32, 32))
    assert padded.size == (5, 5) and padded.rows[0].tolist() == [0, 2] and padded.rows[5].tolist() == [3, 7]
    strided = receptive_field(create_model("tutorial", pooling="stride"), "conv2", (3, 32, 32))
    assert strided.size == (13, 13) and strided.rows[1].tolist() == [4, 16]


def test_the_field_does_not_depend_on_the_weights():
    model = create_model("tutorial")
    before = receptive_field(model, "conv2", (3, 32, 32))
    with torch.no_grad():
        model.conv1.weight.zero_()  # a gradient would see nothing through these; the architecture still does
        model.conv2.weight[:, :, 0].zero_()
    after = receptive_field(model, "conv2", (3, 32, 32))
    assert torch.equal(before.rows, after.rows) and torch.equal(before.cols, after.cols)


def test_a_layer_without_positions():
    model = create_model("tutorial")
    assert receptive_field(model, "fc1", (3, 32, 32)) is None
    with pytest.raises(InterpError, match="no spatial output"):
        Probe(model, lambda x: x, (3, 32, 32)).receptive_field("fc1")
    with pytest.raises(InterpError, match="input_shape"):
        receptive_field(model, "conv1")  # a bare module does not say its input size
    assert hook_count(model) == 0


def test_the_probe_and_the_examples_use_the_same_field(tiny_run):
    from interp.analysis.vision.examples import dataset_examples

    probe_rf = Probe.from_run(tiny_run).receptive_field("conv2")
    images = tiny_run.load_data(progress=False, split="test").test_x[:8]
    ex = dataset_examples(tiny_run, "conv2", [0], k=2, data=images)
    assert ex.receptive_field == probe_rf.to_dict()
