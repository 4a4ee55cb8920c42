"""Pretrained models by name: sources that give a model with its config, not a training recipe.

``load_run("inceptionv1")`` asks this registry when no run folder has that name. A source
is named here with the module that builds it, imported only when asked for (Lucent's
InceptionV1 pulls in Lucent), and returns a :class:`Pretrained`: the model in eval mode,
the :class:`~interp.config.RunConfig` (preprocessing, input shape) and a summary. The
:class:`~interp.runs.Run` is made by :mod:`interp.runs`, so no source imports it.

>>> load_pretrained("inceptionv1", weights="random").config.data.input_shape
(3, 224, 224)
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import InterpError, unknown

# name -> "module:function(weights, *, download, device, progress) -> Pretrained"
SOURCES = {
    "inceptionv1": "interp.zoo.inception:pretrained_inceptionv1",
}


@dataclass
class Pretrained:
    """A pretrained model with its run config and summary (where the weights came from)."""

    model: Any
    config: Any
    summary: dict = field(default_factory=dict)


def pretrained_names() -> list[str]:
    """The names ``load_run`` accepts for pretrained models."""
    return sorted(SOURCES)


def load_pretrained(name: str, weights: str | os.PathLike | None = None, *, download: bool = False,
                    device: Any = "cpu", progress: bool = True) -> Pretrained:
    """Build the pretrained model ``name`` (weights from ``weights``, a cache, or a download when allowed)."""
    if name not in SOURCES:
        raise unknown("pretrained model", name, SOURCES)
    module, function = SOURCES[name].split(":")
    built = getattr(importlib.import_module(module), function)(weights, download=download, device=device,
                                                             progress=progress)
    if not isinstance(built, Pretrained):
        raise InterpError(f"pretrained source {name!r} returned {type(built).__name__}, not Pretrained")
    return built
