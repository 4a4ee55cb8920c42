import pytest
import torch

from interp.errors import InterpError
from interp.hooks import capture, hook_count
from interp.units import parse_unit, parse_unit_list
from interp.zoo import create_model


def test_capture_records_and_removes_hooks():
    model = create_model("tutorial")
    with capture(model, ["conv1", "fc3"]) as acts:
        assert hook_count(model) == 2
        logits = model(torch.zeros(2, 3, 32, 32))
    assert hook_count(model) == 0
    assert acts["conv1"].shape == (2, 6, 28, 28)
    torch.testing.assert_close(acts["fc3"], logits.detach())


def test_capture_removes_hooks_on_error():
    model = create_model("tutorial")
    with pytest.raises(RuntimeError):
        with capture(model, ["conv1", "conv2"]):
            model(torch.zeros(2, 4, 32, 32))  # wrong channel count
    assert hook_count(model) == 0


def test_capture_unknown_layer_registers_nothing():
    model = create_model("tutorial")
    with pytest.raises(InterpError, match="unknown layer 'conv3'.*Valid layers: conv1, conv2, fc1, fc2, fc3"):
        with capture(model, ["conv1", "conv3"]):
            pass
    assert hook_count(model) == 0


def test_unit_parsing():
    assert parse_unit("conv2").index is None
    assert parse_unit("conv2:5").index == 5
    assert str(parse_unit("blocks.0.attn.hook_pattern")) == "blocks.0.attn.hook_pattern"
    assert parse_unit_list("0,3,5-7", 16) == [0, 3, 5, 6, 7]
    assert parse_unit_list(None, 3) == [0, 1, 2]
    with pytest.raises(InterpError, match=r"unit 16 is out of range for conv2, which has 16 units \(0-15\)"):
        parse_unit_list("1,16", 16, layer="conv2")
    with pytest.raises(InterpError, match="bad unit list"):
        parse_unit_list("a-b", 16)
