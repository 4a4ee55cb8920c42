"""Device choice, made explicitly per call (never at import time)."""

from __future__ import annotations

import torch

from .errors import InterpError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available, then Apple MPS, else CPU.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    device = device or "auto"
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = device.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise InterpError(f"unknown device {device!r}; use one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise InterpError("--device cuda asked for, but no CUDA GPU is available; use --device auto or cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InterpError("--device mps asked for, but MPS is not available; use --device auto or cpu")
    return torch.device(device)
