"""Weight views: what a unit's weights say about its inputs.

- The first conv layer: each filter as an RGB image, scaled symmetrically around zero
  (grey is 0, the strongest weight of the layer is full colour or black).
- A unit of a deeper conv layer: its input units ranked by the L2 norm of their
  kernels, each kernel drawn as a heatmap, red excitatory and blue inhibitory, as in
  the Circuits weight explorer.
- An fc layer after a conv: the unit's weights folded back into ``(channel, H, W)``
  spatial maps and shown the same way (an fc layer after an fc gets 1x1 "kernels").

>>> views = layer_weights(run, "conv2", top=6)
>>> views.unit_weights[5].inputs        # conv1 units feeding conv2:5, strongest first
[3, 0, 5, 1, 4, 2]
- A unit's strongest output units (:func:`output_weights`): the units of the next layer
  it feeds most strongly.

>>> interp.results.save(views, run.report_dir() / "weights" / "conv2")

Files (:func:`interp.results.vision.save_weight_views`): ``unit_0005.png`` (the filter, or the
heatmap row), ``filters.png`` (first layer: all filters), ``index.json``,
``weights.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from ...errors import InterpError
from ...hooks import Recorder, forward_hooks, frozen, get_module
from ...subject import as_subject


@dataclass
class UnitWeights:
    """One unit's strongest inputs: ``inputs[i]`` (a unit of ``input_layer``) reaches it
    through ``kernels[i]`` (``(kh, kw)`` raw weights), whose L2 norm is ``norms[i]``."""

    layer: str
    unit: int
    input_layer: str | None
    inputs: list[int]
    norms: torch.Tensor  # (n,)
    kernels: torch.Tensor  # (n, kh, kw)
    total_inputs: int


@dataclass
class WeightViews:
    """Weight views of some units of one layer (see the module docstring).

    ``filters`` (first conv layer only) holds every selected filter as an RGB image
    ``(U, 3, kh, kw)`` in [0, 1]; ``filter_scale`` is the ``|w|`` shown as full colour.
    """

    layer: str
    module: str
    kind: str  # "conv" | "linear"
    input_layer: str | None
    units: list[int]
    unit_weights: list[UnitWeights]
    filters: torch.Tensor | None = None
    filter_scale: float | None = None
    settings: dict = field(default_factory=dict)

    def unit(self, unit: int) -> UnitWeights:
        for w in self.unit_weights:
            if w.unit == unit:
                return w
        raise InterpError(f"unit {unit} of {self.layer} is not in these weight views")

    def __repr__(self) -> str:
        first = ", first layer (RGB filters)" if self.filters is not None else ""
        return (f"WeightViews({self.layer!r}, {self.kind}, {len(self.units)} units, "
                f"inputs from {self.input_layer}{first})")


def weight_module(model: nn.Module, layer: str) -> tuple[str, nn.Module]:
    """The conv or linear module holding ``layer``'s weights.

    A model may map layer names to weight modules in ``layer_weights`` (InceptionV1's
    ``conv2d0`` is a ReLU whose weights live in ``conv2d0_pre_relu_conv``).
    """
    name = dict(getattr(model, "layer_weights", {}) or {}).get(layer, layer)
    module = get_module(model, name)
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        raise InterpError(f"{layer} is a {type(module).__name__}, not a conv or linear layer: it has no weights "
                          f"to show; pick a conv or fc layer")
    return name, module


def filter_images(weight: torch.Tensor, scale: float | None = None) -> tuple[torch.Tensor, float]:
    """``(out, 3, kh, kw)`` conv weights -> RGB images in [0, 1] with 0 at grey (0.5).

    >>> filter_images(torch.tensor([[[[1.0]], [[0.0]], [[-0.5]]]]))[0].flatten().tolist()
    [1.0, 0.5, 0.25]
    """
    scale = float(weight.abs().max()) if scale is None else scale
    return (0.5 + 0.5 * weight / max(scale, 1e-12)).clamp(0, 1), scale


def layer_weights(run: Any, layer: str, units: str | Sequence[int] | None = None, *, top: int = 8) -> WeightViews:
    """Weight views of every selected unit of ``layer`` (a conv or linear layer).

    >>> layer_weights(run, "conv1").filters.shape     # first layer: RGB filters
    torch.Size([6, 3, 5, 5])
    >>> layer_weights(run, "fc1", "0-3").unit(0).kernels.shape   # folded to conv2's 5x5 grid
    torch.Size([8, 5, 5])
    """
    from ...units import parse_unit_list

    subject = as_subject(run)
    model = subject.model
    module_name, module = weight_module(model, layer)
    if top < 1:
        raise InterpError(f"--top must be at least 1, got {top}")
    weight = module.weight.detach().cpu().float()
    n_out = weight.shape[0]
    if isinstance(units, str) or units is None:
        unit_list = parse_unit_list(units, n_out, layer=layer)
    else:
        unit_list = parse_unit_list(",".join(str(int(u)) for u in units), n_out, layer=layer)

    trace = _trace(subject, module_name)
    kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
    if kind == "conv":
        groups = module.groups
        per_group_in, per_group_out = weight.shape[1], n_out // groups
        kernels_of = lambda u: weight[u]  # (in/groups, kh, kw)
        offset_of = lambda u: (u // per_group_out) * per_group_in
        n_in = weight.shape[1] * groups
    else:
        fold = _fold_shape(trace, module_name, weight.shape[1])
        kernels_of = lambda u: weight[u].view(*fold) if fold else weight[u].view(-1, 1, 1)
        offset_of = lambda u: 0
        n_in = fold[0] if fold else weight.shape[1]
    input_layer = _input_layer(model, trace, module_name, n_in)
    if input_layer is None and kind == "conv" and _is_first_conv(model, trace, module_name):
        input_layer = "input"  # the image's colour channels

    views = []
    for u in unit_list:
        kernels = kernels_of(u)
        norms = kernels.flatten(1).norm(dim=1)
        order = torch.sort(norms, descending=True, stable=True).indices[:top]
        views.append(UnitWeights(layer, u, input_layer, (order + offset_of(u)).tolist(), norms[order],
                                 kernels[order].clone(), n_in))

    filters = scale = None
    if kind == "conv" and weight.shape[1] == 3 and _is_first_conv(model, trace, module_name):
        filters, scale = filter_images(weight)
        filters = filters[unit_list]
    settings = {"layer": layer, "module": module_name, "top": top, "rank": "L2 norm of each input's kernel",
                "colours": "red excitatory, blue inhibitory; symmetric around 0 per unit",
                "folded": kind == "linear" and kernels_of(unit_list[0]).shape[-1] > 1}
    return WeightViews(layer, module_name, kind, input_layer, unit_list, views, filters, scale, settings)


def _trace(subject, module_name: str) -> list[tuple[str, tuple[int, ...]]]:
    """Leaf modules (and named layers) in execution order up to ``module_name``, with output shapes."""
    model = subject.model
    if subject.input_size is None:
        raise InterpError("weight views of a bare module need its input size; pass a run")
    names = set(getattr(model, "layer_names", []) or [])
    watched = {n for n, m in model.named_modules() if n and (n in names or not any(True for _ in m.children()))}
    watched.add(module_name)
    order: list[tuple[str, tuple[int, ...]]] = []

    def make(name):
        def hook(_m, _i, output):
            if isinstance(output, torch.Tensor):
                order.append((name, tuple(output.shape[1:])))
        return hook

    x = torch.zeros(1, 3, subject.input_size, subject.input_size, device=subject.device)
    with torch.no_grad(), frozen(model), forward_hooks(model, {n: make(n) for n in watched}):
        model(subject.normalize(x))
    for i, (name, _) in enumerate(order):
        if name == module_name:
            return order[: i + 1]
    raise InterpError(f"{module_name} did not run in the model's forward pass")


def _fold_shape(trace, module_name: str, in_features: int) -> tuple[int, int, int] | None:
    """The ``(C, H, W)`` a linear layer's input was flattened from, if it came from a conv stack."""
    for _name, shape in reversed(trace[:-1]):
        numel = 1
        for d in shape:
            numel *= d
        if numel != in_features:
            return None  # fed by something else (an fc layer of another width)
        if len(shape) == 3:
            return shape
    return None


def _input_layer(model: nn.Module, trace, module_name: str, n_in: int) -> str | None:
    """The most recent named layer before the weights with ``n_in`` units (through ReLU/pool)."""
    names = set(getattr(model, "layer_names", []) or [])
    for name, shape in reversed(trace[:-1]):
        if name in names and shape and shape[0] == n_in:
            return name
    return None


def _is_first_conv(model: nn.Module, trace, module_name: str) -> bool:
    """Whether ``module_name`` is the first conv to run (the one that sees the image)."""
    modules = dict(model.named_modules())
    for name, _ in trace:
        if isinstance(modules.get(name), nn.Conv2d):
            return name == module_name
    return False


# ------------------------------------------------------------------------------ outputs


@dataclass
class OutputWeights:
    """Each unit's strongest output units: ``targets[i, j]`` (a unit of ``next_layer``) is
    the j-th strongest unit that ``units[i]`` feeds, by the L2 norm ``norms[i, j]`` of the
    connecting weights; ``signs[i, j]`` is the sign of their sum (+1 or -1)."""

    layer: str
    next_layer: str
    units: list[int]
    targets: torch.Tensor  # (U, top) long
    norms: torch.Tensor  # (U, top)
    signs: torch.Tensor  # (U, top) +1 / -1

    def outputs(self, unit: int) -> list[dict]:
        """``[{"layer", "unit", "norm", "sign": "pos" | "neg"}, ...]`` of one unit, strongest first."""
        i = self.units.index(unit)
        return [{"layer": self.next_layer, "unit": int(t), "norm": float(n), "sign": "pos" if s >= 0 else "neg"}
                for t, n, s in zip(self.targets[i].tolist(), self.norms[i].tolist(), self.signs[i].tolist())]


def output_weights(run: Any, layer: str, next_layer: str, *, top: int = 8) -> OutputWeights | None:
    """For each unit of ``layer``, the units of ``next_layer`` it feeds most strongly (L2 norm
    of the connecting weights, signed by their sum); ``None`` when the next layer's weights
    do not read ``layer``'s units one block per unit (conv -> conv, fc -> fc, conv -> fc).

    >>> out = output_weights(run, "conv2", "fc1", top=8)
    >>> out.targets.shape, out.outputs(5)[0]["layer"]      # (conv2's 16 units, 8 strongest)
    (torch.Size([16, 8]), 'fc1')
    """
    subject = as_subject(run)
    n = _units_of(subject, layer)
    _, module = weight_module(subject.model, next_layer)
    w = module.weight.detach().float().cpu()
    if w.dim() == 4 and w.shape[1] == n:  # conv -> conv: (out, in, kh, kw)
        per_unit = w.transpose(0, 1).flatten(2)  # (in, out, k*k)
    elif w.dim() == 2 and w.shape[1] == n:  # fc -> fc
        per_unit = w.T.unsqueeze(-1)  # (in, out, 1)
    elif w.dim() == 2 and w.shape[1] % n == 0:  # conv -> flatten -> fc: channel-major blocks
        per_unit = w.view(w.shape[0], n, -1).transpose(0, 1)  # (in, out, h*w)
    else:
        return None
    norms = per_unit.norm(dim=2)  # (in, out)
    signs = torch.where(per_unit.sum(dim=2) >= 0, 1, -1)
    order = torch.sort(norms, dim=1, descending=True, stable=True).indices[:, :top]
    return OutputWeights(layer, next_layer, list(range(n)), order, norms.gather(1, order), signs.gather(1, order))


def _units_of(subject, layer: str) -> int:
    """The number of units of ``layer`` (its output channels), from one forward pass."""
    get_module(subject.model, layer)
    if subject.input_size is None:
        raise InterpError("output weights of a bare module need its input size; pass a run")
    x = torch.zeros(1, 3, subject.input_size, subject.input_size, device=subject.device)
    with torch.no_grad(), frozen(subject.model), Recorder(subject.model, [layer]) as rec:
        return int(rec.run(subject.normalize(x))[layer].shape[1])
