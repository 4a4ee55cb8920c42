"""Circuits for the demo and notebooks: find one with :func:`~interp.analysis.causal.circuit.find_circuit`,
save it where ``interp report`` draws its page, say in one line how faithful it is.

>>> path = save_circuit_of(run, method="eap-ig")      # reports/RUN/circuits/eap-ig-loss/
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def save_circuit_of(run: Any, *, log: Callable[[str], None] | None = print, **settings) -> Path:
    """Find ``run``'s circuit with ``settings`` (those of ``find_circuit``), save it in the run's
    report folder (another setting beside, never over), log the verdict line; returns the folder."""
    from ..analysis.causal.circuit import find_circuit
    from ..results.circuits import save_circuit
    from ..terminal import circuit_verdict

    result = find_circuit(run, **settings)
    path = save_circuit(result)
    if log:
        log(f"  circuit ({result.method} on {result.metric}, {result.seconds:.1f}s): {circuit_verdict(result)}")
    return path
