"""Options and printing shared by the subcommands."""

from __future__ import annotations

import argparse
import math
import sys


def add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", metavar="RUN", default=None,
                   help="run name (under models/) or path; default: the most recent run")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if available, else CPU), cpu, cuda, cuda:N")


def add_no_progress(p: argparse.ArgumentParser, help: str = "no progress bars") -> None:
    p.add_argument("--no-progress", action="store_true", help=help)


def add_seed(p: argparse.ArgumentParser, default: int = 0) -> None:
    p.add_argument("--seed", type=SEED, default=default, help=f"random seed (default {default})")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON (the dict interp.results.describe returns) instead of text")


def print_json(result, **extra) -> None:
    """Print a result object as JSON on stdout (``interp.results.describe``), with ``extra`` keys
    (where it was saved, for example) added at the top level."""
    import json

    from ..results import describe

    print(json.dumps({**describe(result), **{k: str(v) if hasattr(v, "__fspath__") else v
                                            for k, v in extra.items()}}, indent=2, allow_nan=False))


def load_run_announced(args, **kwargs):
    """Load ``--run`` (default: latest) and say which run was used when it was implicit."""
    from ..runs import load_run

    run = load_run(args.run, device=getattr(args, "device", "cpu"), **kwargs)
    if args.run is None:
        print(f"Using the most recent run: {run.name} ({run.path})", file=sys.stderr)
    return run


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def escaped_text(value: str) -> str:
    r"""An argparse ``type`` for prompts: ``\n`` is a newline, ``\t`` a tab, ``\\`` a backslash; any
    other backslash stays as typed. The same in every command that takes a prompt.

    >>> escaped_text(r"ROMEO:\nWhat say")
    'ROMEO:\nWhat say'
    """
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in _ESCAPES:
            out.append(_ESCAPES[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)



def int_in(lo: int, hi: int):
    """An argparse ``type``: a whole number from ``lo`` to ``hi``, the range named in the error.

    Bounds are stated up front so that no value starts work that cannot end (``--tokens
    100000000``) or allocates what the machine does not have (``--size 100000``).
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo:,} to {hi:,}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo:,} to {hi:,}, got {value:,}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def float_in(lo: float, hi: float, *, above: bool = False):
    """An argparse ``type``: a finite number from ``lo`` (or, with ``above``, more than ``lo``) to ``hi``."""
    low = f"more than {lo:g}" if above else f"from {lo:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {low} to {hi:g}, got {text!r}") from None
        if not math.isfinite(value) or value < lo or (above and value == lo) or value > hi:
            raise argparse.ArgumentTypeError(f"must be a finite number {low} to {hi:g}, got {text}")
        return value

    parse.__name__ = "float"
    return parse


SEED = int_in(0, 2**63 - 1)
"""Seeds torch accepts on every path (``torch.manual_seed`` takes 64 bits; generators want them signed)."""
