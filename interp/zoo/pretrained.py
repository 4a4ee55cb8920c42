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


def _vgg19_layers() -> dict[str, str]:
    # Lucid/Microscope names -> torchvision module paths: VGG19 is the same network in both
    # (16 convs of 3x3, then fc6-fc8), so the k-th conv is the k-th Conv2d in `features`.
    convs = [f"conv{block}_{i}" for block, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for i in range(1, n + 1)]
    indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    return {**{name: f"features.{i}" for name, i in zip(convs, indices)},
            "fc6": "classifier.0", "fc7": "classifier.3", "fc8": "classifier.6"}


MICROSCOPE_MODELS = {
    "inceptionv1": {"source": "inceptionv1", "layers": (
        "conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b", "mixed4a", "mixed4b", "mixed4c", "mixed4d",
        "mixed4e", "mixed5a", "mixed5b"), "note": "Lucid's InceptionV1 (GoogLeNet), the Circuits model"},
    "vgg19": {"source": "torchvision:vgg19", "layers": tuple(f"{k}={v}" for k, v in _vgg19_layers().items()),
              "note": "the same architecture as Microscope's VGG19; torchvision's weights, not Caffe's"},
    "resnet50": {"source": "torchvision:resnet50", "layers": ("layer1", "layer2", "layer3", "layer4", "fc"),
                 "note": "torchvision's ResNet-50 is v1.5 (stride in the 3x3 conv); Microscope's ResNet-v1-50 "
                         "strides in the 1x1: features differ in detail"},
    "alexnet": {"source": "torchvision:alexnet", "layers": ("features.0", "features.3", "features.6",
                                                           "features.8", "features.10", "classifier.6"),
                "note": "torchvision's AlexNet is the one-GPU variant (64 conv1 filters, no groups), not "
                        "Microscope's Caffe AlexNet (96 filters in two groups)"},
}
"""Microscope's models and how to get each here, with the layers Microscope shows (for VGG19
as ``Lucid name=module path``). Where torchvision's network differs from Microscope's, the
note says how, so a comparison does not assume more than it has."""


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
