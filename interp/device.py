"""Device choice, made explicitly per call (never at import time)."""

from __future__ import annotations

import functools

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


PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (``/proc/cpuinfo``); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively, so bf16 autocast speeds training up.

    CUDA: the GPU supports bf16 (Ampere and later). CPU: AVX512-BF16 or AMX; with AVX2 only
    oneDNN emulates bf16 and autocast made the P1 recipe 4.5x slower (90.3 s vs 20.1 s
    fp32 on a 2-core EPYC without AVX-512, issue #21). MPS and anything else: no.

    >>> native_bf16("cpu")   # on an AVX2-only laptop
    False
    """
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    return False


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``auto`` -> ``bf16`` where the device computes it natively (:func:`native_bf16`), else
    ``fp32``; an explicit ``fp32``/``bf16`` is kept (bf16 still works elsewhere, only slower).

    >>> resolve_precision("fp32", "cpu")
    'fp32'
    """
    if precision not in PRECISIONS:
        raise InterpError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` says."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                        platform.processor() or platform.machine())
    except OSError:
        return platform.processor() or platform.machine()


def machine_description() -> str:
    """One line for benchmark output: CPU model, usable cores, torch and its CPU capability,
    whether bf16 is native, the load average (other processes change every timing).

    >>> machine_description()
    'AMD EPYC, 2 cores, torch 2.14.1, capability AVX512, native bf16: yes, load 0.31'
    """
    import os

    from .threads import available_cores

    cpu = cpu_model()
    load = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {available_cores()} cores, torch {torch.__version__}, capability "
            f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if native_bf16('cpu') else 'no'}"
            f"{gpu}, load {load}")
