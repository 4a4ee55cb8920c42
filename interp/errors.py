"""User-facing errors.

Anything a user can fix (a typo in a layer name, a missing file, a bad option) raises
:class:`InterpError`. The CLI prints its message on one line and exits with code 2; the
traceback is shown only with ``--debug``. Library users catch it like any exception.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class InterpError(Exception):
    """An error the user can fix; the message says what is wrong and what would be right.

    >>> raise InterpError("unknown model 'tutoral'; did you mean 'tutorial'?")
    Traceback (most recent call last):
    interp.errors.InterpError: unknown model 'tutoral'; did you mean 'tutorial'?
    """


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices most similar to ``name`` (case-insensitive), best first."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[f] for f in found]


def unknown(kind: str, name: str, choices: Iterable[str], *, list_all: bool = True) -> InterpError:
    """Build the standard "unknown X" error with suggestions.

    >>> str(unknown("layer", "conv3", ["conv1", "conv2", "fc1"]))
    "unknown layer 'conv3'; did you mean 'conv1', 'conv2'? Valid layers: conv1, conv2, fc1"
    """
    choices = list(choices)
    message = f"unknown {kind} {name!r}"
    near = close_matches(name, choices)
    if near:
        message += "; did you mean " + ", ".join(repr(c) for c in near) + "?"
    elif list_all and choices:
        message += "."
    if list_all and choices:
        shown = choices if len(choices) <= 40 else choices[:40] + ["..."]
        message += f" Valid {kind}s: " + ", ".join(shown)
    return InterpError(message)
