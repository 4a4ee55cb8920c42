"""The ``interp`` command: a thin layer over the Python API.

Each module in :data:`COMMAND_MODULES` adds its subcommands with ``register(subparsers,
common)``; handlers parse arguments, call one library function and print. User errors
(:class:`~interp.errors.InterpError`) print one line and exit with code 2; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

COMMAND_MODULES = ("core", "featvis", "report", "attribution", "transformers", "embeddings", "claims")

DESCRIPTION = """\
interp: circuits-style interpretability for small models.

Train models (CNNs, MLPs, word2vec, small transformers), visualise their features,
attribute their decisions, analyse attention heads, check published claims, and write
static HTML reports.

Start with:  interp demo          (the whole pipeline on embedded data, a few minutes)
             interp models        (what can be trained)
             interp train tutorial --dataset shapes
"""


class Parser(argparse.ArgumentParser):
    """argparse with user errors as one line, like every other error of the CLI (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    # --debug works before or after the subcommand; SUPPRESS keeps a subparser's default
    # from overwriting a --debug given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks for errors")
    parser = Parser(prog="interp", description=DESCRIPTION,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..errors import InterpError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader stopped reading (`interp models | head`): nothing is wrong, say nothing. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except InterpError as e:
        if args.debug:
            traceback.print_exc()
        print(f"interp: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("interp: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from ..training.loop import TrainingInterrupted

        if isinstance(e, TrainingInterrupted):
            print(f"interp: {e}", file=sys.stderr)
            return 130
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
