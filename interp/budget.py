"""The memory budget: how much RAM a command may plan to allocate before it starts.

Commands that allocate in proportion to their input (decoding an image folder, a
batch of optimised images, a token buffer) estimate the bytes first and refuse with one
clear error when the estimate is over the budget, instead of failing with a MemoryError
(or the kernel's OOM killer) halfway. The budget is half the memory available now, or
``$INTERP_MEMORY_BUDGET`` (bytes, or with a unit: ``8G``, ``512M``).

>>> check_memory(10_000 * 32 * 32 * 3, "decoding 10,000 images of 32x32 px")   # fine
>>> memory_budget() > 0
True
"""

from __future__ import annotations

import os

from .errors import InterpError

ENV = "INTERP_MEMORY_BUDGET"
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` on Linux; else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def parse_size(text: str) -> int:
    """``"8G"`` -> 8 GiB in bytes; a plain number is bytes."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B") if text.strip() else ""
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = value[:-1] if unit else value
    try:
        size = float(number) * _UNITS[unit]
    except ValueError:
        raise InterpError(f"{ENV}={text!r} is not a size; give bytes or a number with K, M, G or T "
                          f"(e.g. {ENV}=8G)") from None
    if not size > 0 or size != size or size == float("inf"):
        raise InterpError(f"{ENV}={text!r} must be a positive size (e.g. {ENV}=8G)")
    return int(size)


def memory_budget() -> int:
    """Bytes a command may plan to allocate: ``$INTERP_MEMORY_BUDGET``, else half the available memory."""
    text = os.environ.get(ENV)
    return parse_size(text) if text else available_memory() // 2


def _gb(n: float) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n / (1 << 10):.0f} KiB"


def check_memory(estimate: float, what: str, *, hint: str = "") -> None:
    """Raise a clear error before any allocation when ``what`` needs more than the budget."""
    budget = memory_budget()
    if estimate > budget:
        source = f"${ENV}" if os.environ.get(ENV) else "half the memory available now"
        raise InterpError(f"{what} needs about {_gb(estimate)}, over the memory budget of {_gb(budget)} "
                          f"({source}; set {ENV}, e.g. {ENV}=16G, to change it)" + (f". {hint}" if hint else ""))
