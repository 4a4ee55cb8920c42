"""The ``interp`` command: a thin layer over the Python API.

Each module in :data:`COMMAND_MODULES` adds its subcommands with ``register(subparsers,
common)``; handlers parse arguments, call one library function and print. One grammar: a noun,
then a verb where a noun has several (``interp attribute units``, ``interp embed neighbors``,
``interp claims check``); a module's ``ALIASES`` keep earlier spellings working
(``attribute-units``) and its ``DEFAULT_VERBS`` name the verb a bare noun means. User errors
(:class:`~interp.errors.InterpError`) print one line and exit with code 2; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

COMMAND_MODULES = ("core", "imports", "featvis", "report", "attribution", "transformers", "embeddings", "claims",
                   "circuit", "dynamics", "sae")

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
    common.add_argument("--threads", default=argparse.SUPPRESS, metavar="N",
                        help="CPU threads for torch (default auto: the cores no other process is using, "
                             "re-checked as work goes on; also INTERP_THREADS=N, or torch for torch's own default)")
    parser = Parser(prog="interp", description=DESCRIPTION,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    parser.add_argument("--threads", default=None, metavar="N", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub, common)
    return parser


def normalize_argv(argv: list[str], parser: argparse.ArgumentParser | None = None) -> list[str]:
    """Earlier spellings and bare nouns in the one grammar: ``attribute-units --layer conv2`` is
    ``attribute units --layer conv2``, ``attribute --index 0`` is ``attribute pixels --index 0``.

    >>> normalize_argv(["--debug", "attribute-units", "--layer", "conv2"])
    ['--debug', 'attribute', 'units', '--layer', 'conv2']
    """
    parser = parser or build_parser()
    aliases, default_verbs = {}, {}
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        aliases.update(getattr(module, "ALIASES", {}))
        default_verbs.update(getattr(module, "DEFAULT_VERBS", {}))
    argv = list(argv)
    # The command is the first word that is not a top-level option or its value
    # (--debug and -h take none, --threads one).
    at = next((i for i, word in enumerate(argv)
               if not word.startswith("-") and (i == 0 or argv[i - 1] != "--threads")), None)
    if at is None:
        return argv
    if argv[at] in aliases:
        argv[at:at + 1] = aliases[argv[at]]
    noun = argv[at]
    if noun in default_verbs:
        following = next((i for i in range(at + 1, len(argv)) if argv[i] != "--debug"), len(argv))
        word = argv[following] if following < len(argv) else None
        # A verb, or a plain `interp attribute --help` (which lists the verbs), stays as typed.
        if word not in _verbs_of(parser, noun) and word not in ("-h", "--help"):
            argv.insert(at + 1, default_verbs[noun])
    return argv


def _verbs_of(parser: argparse.ArgumentParser, noun: str) -> set[str]:
    def subcommands(p):
        return next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})
    return set(subcommands(subcommands(parser)[noun]))


def main(argv: list[str] | None = None) -> int:
    from ..errors import InterpError

    parser = build_parser()
    args = parser.parse_args(normalize_argv(sys.argv[1:] if argv is None else argv, parser))
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        from ..threads import configure_threads

        # before any command imports torch, so its OpenMP pool starts at the chosen size
        configure_threads(args.threads)
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
