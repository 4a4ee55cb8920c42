import pytest
import torch

from interp.errors import InterpError
from interp.units import describe_layers
from interp.zoo import count_parameters, create_model, list_models


def test_tutorial_net_is_the_pytorch_tutorial():
    model = create_model("tutorial")
    assert count_parameters(model) == 62_006
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes["conv1.weight"] == (6, 3, 5, 5)
    assert shapes["conv2.weight"] == (16, 6, 5, 5)
    assert shapes["fc1.weight"] == (120, 400)
    assert shapes["fc2.weight"] == (84, 120)
    assert shapes["fc3.weight"] == (10, 84)
    assert model.layer_names == ["conv1", "conv2", "fc1", "fc2", "fc3"]


def test_tutorial_forward_matches_the_tutorial_code():
    """Same weights in the tutorial's own Net give the same logits."""
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):  # verbatim from the PyTorch CIFAR-10 tutorial
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    ours, ref = create_model("tutorial"), Net()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(ours(x), ref(x))


def test_each_relu_and_pool_module_is_called_once():
    model = create_model("tutorial")
    calls = {}
    handles = [m.register_forward_hook(lambda m, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
               for n, m in model.named_modules() if n]
    model(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    assert set(calls.values()) == {1}


@pytest.mark.parametrize("pooling", ["max", "avg", "stride", "none"])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_variants_build_and_run(pooling, kernel):
    model = create_model("tutorial", pooling=pooling, kernel_size=kernel)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_variants_batch_norm_gap_and_depth():
    model = create_model("cnn-gap")
    assert model.layer_names[:3] == ["conv1", "conv2", "conv3"]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    deep = create_model("tutorial", channels=(8, 16, 32), padding=2, batch_norm=True)
    assert [n for n in deep.layer_names if n.startswith("conv")] == ["conv1", "conv2", "conv3"]


def test_mlps_match_and_exceed_the_tutorial_parameter_count():
    small, large = count_parameters(create_model("mlp")), count_parameters(create_model("mlp-large"))
    assert abs(small - 62_006) / 62_006 < 0.02
    assert large > 10 * small


def test_layers_are_listed_with_shapes():
    infos = describe_layers(create_model("tutorial"), (3, 32, 32))
    table = {i.name: (i.kind, i.units, i.output_shape) for i in infos}
    assert table["conv1"] == ("conv", 6, (6, 28, 28))
    assert table["conv2"] == ("conv", 16, (16, 10, 10))
    assert table["fc3"] == ("linear", 10, (10,))


def test_unknown_model_lists_valid_ones():
    with pytest.raises(InterpError, match=r"unknown model 'tutoral'; did you mean 'tutorial'\?.*Valid models:.*mlp"):
        create_model("tutoral")


def test_kernel_too_large_for_input_is_a_clear_error():
    with pytest.raises(InterpError, match="shrinks to nothing"):
        create_model("tutorial", kernel_size=15)


def test_registry_lists_by_pattern():
    assert [m.name for m in list_models("mlp*")] == ["mlp", "mlp-large"]
