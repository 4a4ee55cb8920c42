"""Convolutional classifiers: the PyTorch CIFAR-10 tutorial net and its variants.

The tutorial net (https://pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html)::

    conv1 3->6 k5 -> ReLU -> max-pool 2 -> conv2 6->16 k5 -> ReLU -> max-pool 2
    -> flatten (16*5*5=400) -> fc1 400->120 -> ReLU -> fc2 120->84 -> ReLU -> fc3 84->10

62,006 parameters. Module names follow the tutorial (conv1, conv2, fc1, fc2, fc3) so
``--layer conv2`` means what the tutorial means. Every ReLU and pool is its own module
because Captum's DeepLift fails when one module is called twice.

Variants through :class:`CNNConfig`: pooling (max / avg / stride / none), kernel size,
channel widths and so the number of conv layers, batch norm, and the head (flatten+fc or
global average pooling).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InterpError
from .registry import register_model

POOLINGS = ("max", "avg", "stride", "none")
HEADS = ("flatten", "gap")


@dataclass(frozen=True)
class CNNConfig:
    channels: tuple[int, ...] = (6, 16)
    kernel_size: int = 5
    pooling: str = "max"
    """max / avg: a 2x2 pool after each conv; stride: each conv has stride 2; none."""
    padding: int = 0
    batch_norm: bool = False
    head: str = "flatten"
    """flatten: flatten then the fc layers; gap: global average pooling then the fc layers."""
    hidden: tuple[int, ...] = (120, 84)
    num_classes: int = 10
    in_channels: int = 3
    input_size: int = 32


def _check(cfg: CNNConfig) -> None:
    if cfg.pooling not in POOLINGS:
        raise InterpError(f"pooling must be one of {', '.join(POOLINGS)}; got {cfg.pooling!r}")
    if cfg.head not in HEADS:
        raise InterpError(f"head must be one of {', '.join(HEADS)}; got {cfg.head!r}")
    if not cfg.channels or min(cfg.channels) <= 0:
        raise InterpError(f"channels must be positive widths like 6,16; got {cfg.channels}")
    if cfg.kernel_size <= 0 or cfg.kernel_size % 2 == 0:
        raise InterpError(f"kernel_size must be odd and positive (3, 5, 7); got {cfg.kernel_size}")


class ConvNet(nn.Module):
    """A plain conv net with named layers conv1..convN and fc1..fcM (the last is the output)."""

    def __init__(self, cfg: CNNConfig):
        super().__init__()
        _check(cfg)
        self.config = cfg
        in_ch, size = cfg.in_channels, cfg.input_size
        stride = 2 if cfg.pooling == "stride" else 1
        for i, out_ch in enumerate(cfg.channels, start=1):
            self.add_module(f"conv{i}", nn.Conv2d(in_ch, out_ch, cfg.kernel_size, stride=stride, padding=cfg.padding))
            size = (size + 2 * cfg.padding - cfg.kernel_size) // stride + 1
            if cfg.batch_norm:
                self.add_module(f"bn{i}", nn.BatchNorm2d(out_ch))
            self.add_module(f"relu{i}", nn.ReLU())
            if cfg.pooling in ("max", "avg"):
                pool = nn.MaxPool2d(2, 2) if cfg.pooling == "max" else nn.AvgPool2d(2, 2)
                self.add_module(f"pool{i}", pool)
                size //= 2
            if size < 1:
                raise InterpError(
                    f"input of {cfg.input_size}px shrinks to nothing after conv{i}: use fewer conv "
                    f"layers, a smaller kernel_size, padding or pooling=none"
                )
            in_ch = out_ch
        n_conv = len(cfg.channels)
        if cfg.head == "gap":
            self.gap = nn.AdaptiveAvgPool2d(1)
            flat = in_ch
        else:
            flat = in_ch * size * size
        self.flatten = nn.Flatten()
        widths = [flat, *cfg.hidden, cfg.num_classes]
        for j in range(len(widths) - 1):
            self.add_module(f"fc{j + 1}", nn.Linear(widths[j], widths[j + 1]))
            if j < len(widths) - 2:
                self.add_module(f"relu{n_conv + j + 1}", nn.ReLU())
        # The ordered pipeline; forward walks it so each module is called exactly once.
        self._order = [name for name, _ in self.named_children() if name != "_order"]
        self.conv_output_size = size

    @property
    def layer_names(self) -> list[str]:
        """The layers whose outputs are units: conv1..convN, fc1..fcM."""
        return [n for n in self._order if n.startswith(("conv", "fc"))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        for name in self._order:
            x = getattr(self, name)(x)
        return x


@register_model("tutorial", family="cnn", task="image-classification", config=CNNConfig,
                description="PyTorch CIFAR-10 tutorial net (conv1, conv2, fc1-3; 62,006 params)")
def tutorial(cfg: CNNConfig) -> ConvNet:
    return ConvNet(cfg)


@register_model("cnn", family="cnn", task="image-classification", config=CNNConfig,
                description="Configurable conv net (tutorial shape, wider: channels 32,64)",
                channels=(32, 64), hidden=(256,), padding=2)
def cnn(cfg: CNNConfig) -> ConvNet:
    return ConvNet(cfg)


@register_model("cnn-gap", family="cnn", task="image-classification", config=CNNConfig,
                description="Conv net with global average pooling head (for weight banding)",
                channels=(32, 64, 64), hidden=(), padding=1, kernel_size=3, head="gap", batch_norm=True)
def cnn_gap(cfg: CNNConfig) -> ConvNet:
    return ConvNet(cfg)
