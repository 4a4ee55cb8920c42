"""Scoped hooks: every hook registered here is removed on exit, also on error.

>>> with capture(model, ["conv1", "conv2"]) as acts:
...     model(x)
>>> acts["conv2"].shape
torch.Size([8, 16, 10, 10])
>>> hook_count(model)
0
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from .errors import unknown


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (dotted path), with a did-you-mean error."""
    modules = dict(model.named_modules())
    if name not in modules:
        choices = getattr(model, "layer_names", None) or [n for n in modules if n]
        raise unknown("layer", name, choices)
    return modules[name]


def hook_count(model: nn.Module) -> int:
    """Number of hooks (forward, pre-forward, backward) currently on any submodule."""
    total = 0
    for m in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            total += len(getattr(m, attr, None) or {})
    return total


@contextlib.contextmanager
def forward_hooks(model: nn.Module, hooks: dict[str, Callable]) -> Iterator[None]:
    """Register ``{module_name: hook(module, input, output)}``; remove them all on exit."""
    handles = []
    try:
        for name, fn in hooks.items():
            handles.append(get_module(model, name).register_forward_hook(fn))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def capture(model: nn.Module, layers: Iterable[str], *, detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` during forward passes inside the block.

    The dict holds the most recent output of each layer. With ``detach=False`` the
    tensors keep their graph, so an objective on them can be backpropagated.
    """
    acts: dict[str, torch.Tensor] = {}

    def make(name):
        def hook(_module, _inputs, output):
            acts[name] = output.detach() if detach else output
        return hook

    with forward_hooks(model, {name: make(name) for name in layers}):
        yield acts


class StopForward(Exception):
    """Raised by a hook to stop a forward pass once the wanted layer has run."""


@contextlib.contextmanager
def capture_until(model: nn.Module, layer: str, *, detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Like :func:`capture` for one layer, but aborts the forward pass right after it.

    Use with :func:`run_until`; saves the cost of the layers above (dataset examples).
    """
    acts: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        acts[layer] = output.detach() if detach else output
        raise StopForward

    with forward_hooks(model, {layer: hook}):
        yield acts


def run_until(model: nn.Module, x: torch.Tensor) -> None:
    try:
        model(x)
    except StopForward:
        pass
