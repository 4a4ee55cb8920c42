"""MLP baselines for image classification, trained by the same core as the CNNs.

``mlp`` with hidden=(20,) has 61,670 parameters on 32x32x3 inputs, about the tutorial
net's 62,006; ``mlp-large`` (512, 256) has 1.7M.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InterpError
from .registry import register_model


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (20,)
    num_classes: int = 10
    in_channels: int = 3
    input_size: int = 32


class MLP(nn.Module):
    """flatten -> fc1 -> ReLU -> ... -> fcN (logits)."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        if any(h <= 0 for h in cfg.hidden):
            raise InterpError(f"hidden sizes must be positive; got {cfg.hidden}")
        self.config = cfg
        self.flatten = nn.Flatten()
        widths = [cfg.in_channels * cfg.input_size**2, *cfg.hidden, cfg.num_classes]
        for j in range(len(widths) - 1):
            self.add_module(f"fc{j + 1}", nn.Linear(widths[j], widths[j + 1]))
            if j < len(widths) - 2:
                self.add_module(f"relu{j + 1}", nn.ReLU())
        self._order = [name for name, _ in self.named_children()]

    @property
    def layer_names(self) -> list[str]:
        return [n for n in self._order if n.startswith("fc")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._order:
            x = getattr(self, name)(x)
        return x


@register_model("mlp", family="mlp", task="image-classification", config=MLPConfig,
                description="MLP baseline, one hidden layer of 20 (~tutorial's parameter count)")
def mlp(cfg: MLPConfig) -> MLP:
    return MLP(cfg)


@register_model("mlp-large", family="mlp", task="image-classification", config=MLPConfig,
                description="MLP baseline, hidden 512,256 (1.7M params)", hidden=(512, 256))
def mlp_large(cfg: MLPConfig) -> MLP:
    return MLP(cfg)
