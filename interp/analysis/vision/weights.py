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
>>> save_weights(views, run.report_dir() / "weights" / "conv2")

Files: ``unit_0005.png`` (the filter, or the heatmap row), ``filters.png`` (first layer:
all filters), ``index.json``, ``weights.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ...errors import InterpError
from ...hooks import forward_hooks, get_module
from ...io import atomic_dir, read_saved_folder, save_tensors, write_bytes, write_json
from ...hooks import frozen
from ...io import encode_png
from ...subject import as_subject
from .featvis import image_grid


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


# ------------------------------------------------------------------------------ drawing


def heatmap_row(kernels: torch.Tensor, *, vmax: float | None = None, min_tile: int = 48, gap: int = 4) -> torch.Tensor:
    """``(n, kh, kw)`` weights -> ``(H, W, 3)`` uint8 row of heatmaps: red > 0, blue < 0, white 0.

    One symmetric colour scale for the row (``vmax``: the largest ``|w|``), so kernels
    compare by strength.
    """
    from matplotlib import colormaps

    vmax = float(kernels.abs().max()) if vmax is None else vmax
    scaled = (0.5 + 0.5 * kernels / max(vmax, 1e-12)).clamp(0, 1)
    rgb = torch.from_numpy(colormaps["RdBu_r"](scaled.numpy())[..., :3]).float()  # (n, kh, kw, 3)
    return image_grid([t.permute(2, 0, 1) for t in rgb], columns=len(kernels), min_tile=min_tile, gap=gap,
                      background=96)  # dark gaps: white is a zero weight


def weight_file(unit: int) -> str:
    return f"unit_{unit:04d}.png"


def save_weights(views: WeightViews, directory: str | Path) -> Path:
    """Write ``unit_NNNN.png`` per unit (+ ``filters.png``), ``index.json`` and
    ``weights.safetensors`` into ``directory`` (replaced atomically)."""
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        units, tensors = {}, {}
        for i, w in enumerate(views.unit_weights):
            if views.filters is not None:
                picture = image_grid([views.filters[i]], min_tile=96, gap=0)
            else:
                picture = heatmap_row(w.kernels)
            write_bytes(tmp / weight_file(w.unit), encode_png(picture))
            units[str(w.unit)] = {"file": weight_file(w.unit), "inputs": w.inputs,
                                  "norms": [round(float(v), 6) for v in w.norms],
                                  "vmax": round(float(w.kernels.abs().max()), 6), "total_inputs": w.total_inputs}
            tensors[f"unit_{w.unit:04d}_kernels"] = w.kernels
            tensors[f"unit_{w.unit:04d}_norms"] = w.norms
        index = {"kind": "weights", "layer": views.layer, "module": views.module, "layer_kind": views.kind,
                 "input_layer": views.input_layer, "units_list": views.units, "settings": views.settings,
                 "data": "weights.safetensors", "units": units}
        if views.filters is not None:
            tensors["filters"] = views.filters
            write_bytes(tmp / "filters.png", encode_png(image_grid(list(views.filters), min_tile=48)))
            index["filters"] = "filters.png"
            index["filter_scale"] = views.filter_scale
        save_tensors(tmp / "weights.safetensors", tensors)
        write_json(tmp / "index.json", index)
    return directory


def load_weights(directory: str | Path) -> WeightViews:
    """Read a folder written by :func:`save_weights`."""
    index, t = read_saved_folder(directory, "weight views", "draw them with: interp weights --layer LAYER",
                                 "draw them again")
    views = [UnitWeights(index["layer"], u, index["input_layer"], index["units"][str(u)]["inputs"],
                         t[f"unit_{u:04d}_norms"], t[f"unit_{u:04d}_kernels"], index["units"][str(u)]["total_inputs"])
             for u in index["units_list"]]
    return WeightViews(index["layer"], index["module"], index["layer_kind"], index["input_layer"],
                       index["units_list"], views, t.get("filters"), index.get("filter_scale"),
                       index.get("settings", {}))
