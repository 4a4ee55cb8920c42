"""Unit addressing: ``"conv2"`` (a layer), ``"conv2:5"`` (unit 5), ``"0,3,5-9"`` (a unit list).

Layers are the model's own module names (``conv1``, ``fc1``...; the model lists them in
``layer_names``); transformer layers use TransformerLens hook names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import InterpError, unknown
from .hooks import capture


@dataclass(frozen=True)
class Unit:
    layer: str
    index: int | None = None

    def __str__(self) -> str:
        return self.layer if self.index is None else f"{self.layer}:{self.index}"


@dataclass(frozen=True)
class LayerInfo:
    """One analysable layer: its module name, kind, number of units and output shape."""

    name: str
    kind: str  # "conv" | "linear" | other module class name, lowercased
    units: int
    output_shape: tuple[int, ...]  # without the batch dimension
    parameters: int

    @property
    def spatial(self) -> bool:
        return len(self.output_shape) == 3


def parse_unit(text: str) -> Unit:
    """``"conv2:5"`` -> ``Unit("conv2", 5)``; ``"conv2"`` -> ``Unit("conv2")``.

    >>> parse_unit("mixed3b:379")
    Unit(layer='mixed3b', index=379)
    """
    layer, sep, index = text.rpartition(":") if ":" in text else (text, "", "")
    if not sep:
        return Unit(text)
    if not index.isdigit():
        raise InterpError(f"bad unit {text!r}: expected LAYER or LAYER:INDEX, like conv2:5")
    return Unit(layer, int(index))


def parse_unit_list(text: str | None, n_units: int, *, layer: str = "layer") -> list[int]:
    """``"0,3,5-9"`` -> ``[0, 3, 5, 6, 7, 8, 9]``; ``None`` or ``"all"`` -> every unit.

    Raises :class:`InterpError` for an index outside ``0..n_units-1``.
    """
    if text is None or text.strip().lower() in ("", "all"):
        return list(range(n_units))
    result: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                if lo < 0 or hi >= n_units:  # before expanding: 0-99999999999 must not fill memory
                    bad = lo if lo < 0 else hi
                    raise InterpError(f"unit {bad} is out of range for {layer}, which has {n_units} units "
                                      f"(0-{n_units - 1})")
                result.extend(range(lo, hi + 1))
            else:
                result.append(int(part))
        except ValueError:
            raise InterpError(f"bad unit list {text!r}: expected indices and ranges like 0,3,5-9") from None
    bad = [i for i in result if not 0 <= i < n_units]
    if bad:
        raise InterpError(f"unit {bad[0]} is out of range for {layer}, which has {n_units} units (0-{n_units - 1})")
    return list(dict.fromkeys(result))


def describe_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerInfo]:
    """Name, kind, units and output shape of every layer in ``model.layer_names``.

    Found by one forward pass of a zero input with scoped hooks.
    """
    names = list(getattr(model, "layer_names", []))
    if not names:
        return []
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), capture(model, names) as acts:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    modules = dict(model.named_modules())
    infos = []
    for name in names:
        out = acts[name]
        module = modules[name]
        kind = {nn.Conv2d: "conv", nn.Linear: "linear"}.get(type(module), type(module).__name__.lower())
        shape = tuple(out.shape[1:])
        infos.append(LayerInfo(name, kind, shape[0], shape,
                               sum(p.numel() for p in module.parameters())))
    return infos


def find_layer(layers: list[LayerInfo], name: str) -> LayerInfo:
    """The :class:`LayerInfo` called ``name``, or an error listing the valid layers."""
    for info in layers:
        if info.name == name:
            return info
    raise unknown("layer", name, [i.name for i in layers])
