"""``cifarnet``: our strong CIFAR-10 CNN, built to train fast on a CPU.

The shape follows the fast CIFAR-10 speedrun nets (David Page's ResNet speedruns, Keller
Jordan's airbench): a stem conv, then three groups of two 3x3 convs that each halve the
resolution with a 2x2 max-pool, batch norm and GELU after every conv, a global max-pool and
one linear layer::

    conv1 3->w0 (stem, 32x32)
    conv2 w0->w1, pool2 (16x16)   conv3 w1->w1
    conv4 w1->w2, pool4 (8x8)     conv5 w2->w2
    conv6 w2->w3, pool6 (4x4)     conv7 w3->w3
    gpool (global max) -> flatten -> fc w3->classes (logits scaled by ``logit_scale``)

With the default widths (32, 64, 128, 256) that is 1.17M parameters and 86M multiply-adds
(0.17 GFLOPs) per 32x32 image: on one CPU core with bf16 autocast and channels-last about 600
training images per second, so an epoch of CIFAR-10 takes under a minute on 2 cores. The
``cifarnet`` recipe (interp/config.py) reaches 85% test accuracy after 6 of its 8 epochs
and about 88% at the end (benchmarks/train_cifar.py p2). Every conv is followed by its own ``bnK`` and ``actK``
module, and every pool is its own module, so each module is called exactly once (Captum's
DeepLift needs that) and ``--layer conv5`` means one place in the network.

>>> model = create_model("cifarnet")
>>> model.layer_names
['conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'conv6', 'conv7', 'fc']
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InterpError
from .registry import register_model

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


@dataclass(frozen=True)
class CifarNetConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)
    """Stem width, then one width per group of two convs (each group halves the resolution)."""
    activation: str = "gelu"
    """gelu or relu."""
    logit_scale: float = 0.125
    """Multiplies the logits; a small scale keeps early training stable at high learning rates."""
    bn_momentum: float = 0.4
    """PyTorch convention (weight of the new batch); high because runs are a few epochs long."""
    num_classes: int = 10
    in_channels: int = 3
    input_size: int = 32


def _check(cfg: CifarNetConfig) -> None:
    if cfg.activation not in ACTIVATIONS:
        raise InterpError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {cfg.activation!r}")
    if len(cfg.widths) < 2 or min(cfg.widths) <= 0:
        raise InterpError(f"widths must be a stem width and at least one group width, "
                          f"all positive, like 32,64,128,256; got {cfg.widths}")
    groups = len(cfg.widths) - 1
    if cfg.input_size < 2**groups:
        raise InterpError(f"input of {cfg.input_size}px is too small for {groups} pooling groups; "
                          f"use fewer widths (each group after the stem halves the resolution)")
    if cfg.logit_scale <= 0:
        raise InterpError(f"logit_scale must be > 0, got {cfg.logit_scale}")


class CifarNet(nn.Module):
    """Stem conv plus groups of (conv, pool, conv), each conv with batch norm and activation."""

    def __init__(self, cfg: CifarNetConfig):
        super().__init__()
        _check(cfg)
        self.config = cfg
        act = ACTIVATIONS[cfg.activation]
        in_ch, k = cfg.in_channels, 1
        # (conv number, out channels, pool after this conv?)
        plan = [(cfg.widths[0], False)]
        for w in cfg.widths[1:]:
            plan += [(w, True), (w, False)]
        for out_ch, pool in plan:
            self.add_module(f"conv{k}", nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False))
            if pool:  # pool before the norm: the norm then sees the statistics the next conv sees
                self.add_module(f"pool{k}", nn.MaxPool2d(2))
            self.add_module(f"bn{k}", nn.BatchNorm2d(out_ch, momentum=cfg.bn_momentum))
            self.add_module(f"act{k}", act())
            in_ch, k = out_ch, k + 1
        self.gpool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_ch, cfg.num_classes, bias=False)
        self._order = [name for name, _ in self.named_children()]

    @property
    def layer_names(self) -> list[str]:
        """The layers whose outputs are units: conv1..convN and the output ``fc``."""
        return [n for n in self._order if n.startswith("conv") or n == "fc"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        for name in self._order:
            x = getattr(self, name)(x)
        return x * self.config.logit_scale


@register_model("cifarnet", family="cnn", task="image-classification", config=CifarNetConfig,
                description="Our strong CIFAR-10 CNN (conv1-conv7 with batch norm, fc; 1.2M params)",
                default_dataset="cifar10", recipe="cifarnet")
def cifarnet(cfg: CifarNetConfig) -> CifarNet:
    return CifarNet(cfg)
