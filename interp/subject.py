"""One adapter between a model and every analysis: :class:`Subject`.

A Subject is a model with what analyses need to know about its inputs: the
preprocessing (per-channel mean/std, or any ``normalize`` callable), the input shape,
the class names and a name. It is built from a :class:`~interp.runs.Run` (all of that
travels in its config) or from any ``nn.Module`` (inputs are used as given), the way
timm's ``PretrainedCfg`` travels with a timm model.

>>> subject = as_subject(interp.load_run("tutorial"))
>>> subject.input_shape, subject.classes[:2], subject.mean
((3, 32, 32), ['airplane', 'automobile'], (0.49, 0.48, 0.45))
>>> as_subject(torchvision.models.resnet18()).input_shape is None   # a bare model: as given
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .errors import InterpError


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass
class Subject:
    """A model plus its input pipeline, class names and name (see the module docstring)."""

    model: nn.Module
    normalize: Callable[[torch.Tensor], torch.Tensor] = _identity
    """[0, 1] images -> model input (a run's mean/std; the identity for a bare model)."""
    input_shape: tuple[int, ...] | None = None
    classes: list[str] = field(default_factory=list)
    name: str = "model"
    mean: tuple[float, ...] | None = None
    """The per-channel mean and std behind ``normalize``, when it is that simple (a run)."""
    std: tuple[float, ...] | None = None
    run: Any = None
    """The run it came from, if any (its layer table, folders and config)."""

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def input_size(self) -> int | None:
        """The input's side in pixels, when known."""
        return self.input_shape[-1] if self.input_shape else None

    @property
    def run_name(self) -> str | None:
        """The run's name, or None for a bare model."""
        return self.name if self.run is not None else None

    def to_model_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] images -> model input (a bare model's inputs pass through as floats)."""
        images = images.to(self.device)
        if self.mean is None:
            return self.normalize(images.float())
        from .data.images import normalize

        return normalize(images, self.mean, self.std)  # uint8 is scaled to [0, 1] first

    def to_display(self, inputs: torch.Tensor) -> torch.Tensor:
        """Model inputs -> [0, 1] images for plotting (a bare model's are min-max rescaled per image)."""
        if self.mean is not None:
            from .data.images import denormalize

            return denormalize(inputs, self.mean, self.std).clamp(0, 1)
        flat = inputs.flatten(1)
        lo = flat.min(1).values.view(-1, 1, 1, 1)
        hi = flat.max(1).values.view(-1, 1, 1, 1)
        return ((inputs - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)

    def value_range(self, inputs: torch.Tensor) -> float:
        """Width of the input's value range: 1/std for a run (0..1 before normalising), else that of ``inputs``."""
        if self.std is not None:
            return float(sum(1.0 / s for s in self.std) / len(self.std))
        return float((inputs.max() - inputs.min()).item()) or 1.0

    def spatial_layers(self) -> list[str]:
        """Layers with (C, H, W) outputs, in forward order (a bare model: its Conv2d modules)."""
        if self.run is not None:
            return [info.name for info in self.run.layers if info.spatial]
        return [name for name, m in self.model.named_modules() if isinstance(m, nn.Conv2d)]


def as_subject(run_or_model: Any, normalize: Callable | None = None) -> Subject:
    """A :class:`Subject` from a Run, a Subject or a bare ``nn.Module``.

    ``normalize`` replaces the preprocessing (then ``mean``/``std`` are unknown).

    >>> as_subject(run).normalize(images)      # the run's mean/std applied
    """
    if isinstance(run_or_model, Subject):
        return run_or_model
    if isinstance(run_or_model, nn.Module):
        return Subject(run_or_model, normalize or _identity, None,
                       list(getattr(run_or_model, "classes", []) or []), type(run_or_model).__name__)
    model = getattr(run_or_model, "model", None)
    if not isinstance(model, nn.Module):
        raise InterpError(f"expected a run (interp.load_run) or an nn.Module, got {type(run_or_model).__name__}")
    config = getattr(run_or_model, "config", None)
    data = getattr(config, "data", None)
    shape = tuple(getattr(run_or_model, "input_shape", ()) or getattr(data, "input_shape", ()) or ()) or None
    mean, std = (tuple(data.mean), tuple(data.std)) if data is not None and data.mean and data.std else (None, None)
    if normalize is not None:
        mean = std = None
    return Subject(model, normalize or getattr(run_or_model, "normalize", _identity), shape,
                   list(getattr(data, "classes", None) or []), getattr(run_or_model, "name", "run"),
                   mean, std, run_or_model)
