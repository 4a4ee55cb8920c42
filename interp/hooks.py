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
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from .errors import InterpError, unknown


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


@contextlib.contextmanager
def no_new_hooks(model: nn.Module) -> Iterator[None]:
    """Remove any hook added to ``model`` inside the block, also when the block raises.

    Captum's layer methods, GuidedBackprop and DeepLift register hooks and normally
    remove them; this makes it a guarantee (``hook_count(model)`` is what it was before).
    """
    attrs = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    before = {(id(m), a): set((getattr(m, a, None) or {}).keys()) for m in model.modules() for a in attrs}
    try:
        yield
    finally:
        for m in model.modules():
            for a in attrs:
                hooks = getattr(m, a, None)
                if not hooks:
                    continue
                for key in [k for k in hooks if k not in before.get((id(m), a), set())]:
                    del hooks[key]
                    for extra in ("_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                                  "_forward_pre_hooks_with_kwargs"):
                        getattr(m, extra, {}).pop(key, None)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside the block, the previous mode after it."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients inside the block; both restored after, also on error."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


class Recorder:
    """Scoped hooks that record the outputs of ``layers`` and stop the forward pass once
    all of them have run, so the layers above are never computed.

    >>> with Recorder(model, ["conv2"]) as rec:
    ...     acts = rec.run(x)          # {"conv2": tensor}
    """

    def __init__(self, model: nn.Module, layers: Sequence[str]):
        self.model = model
        self.layers = list(dict.fromkeys(layers))
        for name in self.layers:
            get_module(model, name)  # unknown layer -> a clear error before anything runs
        self.acts: dict[str, torch.Tensor] = {}
        self._stack: contextlib.ExitStack | None = None

    def _hook(self, name: str):
        def hook(_module, _inputs, output):
            self.acts[name] = output
            if len(self.acts) == len(self.layers):
                raise StopForward
        return hook

    def __enter__(self) -> "Recorder":
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(forward_hooks(self.model, {n: self._hook(n) for n in self.layers}))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.acts = {}
        run_until(self.model, x)
        missing = [n for n in self.layers if n not in self.acts]
        if missing:
            raise InterpError(f"layer {missing[0]!r} did not run in the model's forward pass; "
                              f"pick a layer the forward pass uses")
        return self.acts


def reused_modules(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Modules called more than once in one forward pass of ``example`` (torchvision's ResNet
    blocks call ``self.relu`` twice). Captum's DeepLift needs each nonlinearity called once.

    >>> reused_modules(torchvision.models.resnet18(), torch.zeros(1, 3, 64, 64))[:2]
    ['relu', 'layer1.0.relu']
    """
    calls: dict[str, int] = {}

    def count(name):
        def hook(_module, _inputs):
            calls[name] = calls.get(name, 0) + 1
        return hook

    leaves = {name: m for name, m in model.named_modules() if name and not any(True for _ in m.children())}
    handles = [m.register_forward_pre_hook(count(name)) for name, m in leaves.items()]
    try:
        with torch.no_grad(), eval_mode(model):
            model(example)
    finally:
        for h in handles:
            h.remove()
    return [name for name in leaves if calls.get(name, 0) > 1]
