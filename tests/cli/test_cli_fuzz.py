"""Fuzz the CLI: hostile values for every option of every cheap subcommand.

Each case runs one subcommand in-process with one to three of its options set to values
from :data:`HOSTILE` (non-numbers, NaN, huge numbers, escape sequences, path tricks,
very long strings). Every case must end with exit code 0 or 2 (a one-line error), no
traceback, no temporary file left behind, within :data:`CALL_SECONDS`. The cases are
seeded: a failure names its seed and argv, and reruns identically.

``INTERP_FUZZ_CASES=500 pytest tests/cli/test_cli_fuzz.py`` runs more cases.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal

import pytest

CASES = int(os.environ.get("INTERP_FUZZ_CASES", "48"))
CALL_SECONDS = 60

HOSTILE = ["", "0", "-1", "1", "2", "nan", "inf", "-inf", "1e309", "18446744073709551616", "100000000",
           "x", "\x1b[31mred", "../../../x", ".", "..", "a" * 3000, "0-99999999999", "conv9", "1,2,,3", "\n",
           "☃", "conv1", "conv1:0", "0-3", "tiny"]

# Long by design (training, the demo, the zoo grid, a full report or claim check): their
# options' parsing is checked in test_cli.py; here they would mostly measure patience.
SKIP = {"demo", "zoo", "train", "report", "check"}
# Work-size options given small values unless the case fuzzes them.
CHEAP = {"--steps": "3", "--sample": "20", "--per-class": "1", "--n": "2", "--sequences": "2", "--tokens": "5",
         "--k": "3", "--top": "3", "--images": "2", "--examples": "2", "--size": "32"}


def _commands(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name in SKIP:
                    continue
                nested = _commands(sub, prefix + (name,))
                found += nested or [(prefix + (name,), sub)]
    return found


def _options(sub: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in sub._actions if a.option_strings and a.dest not in ("help", "debug")]


def _short(argv: list[str]) -> str:
    return repr([a if len(a) < 60 else a[:20] + f"...({len(a)} chars)" for a in argv])


def _case(seed: int, commands) -> list[str]:
    rng = random.Random(seed)
    path, sub = commands[seed % len(commands)]
    options = _options(sub)
    chosen = rng.sample(options, k=min(len(options), rng.randint(1, 3))) if options else []
    argv = list(path)
    given = set()
    for action in chosen:
        flag = action.option_strings[-1]
        given.add(flag)
        if action.nargs == 0:
            argv.append(flag)
        else:
            argv += [flag, rng.choice(HOSTILE)]
    names = {s for a in options for s in a.option_strings}
    for flag, value in (("--run", "tiny"), ("--device", "cpu"), *CHEAP.items()):
        if flag in names and flag not in given:
            argv += [flag, value]
    if "--no-progress" in names and "--no-progress" not in given:
        argv.append("--no-progress")
    return argv


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


@pytest.fixture
def fuzz_home(tmp_path, tiny_run_dir, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(tiny_run_dir, models / "tiny")
    home = tmp_path / "a" / "b" / "c" / "d" / "e"  # ../../../x stays inside tmp_path
    home.mkdir(parents=True)
    monkeypatch.chdir(home)
    return tmp_path


def test_cli_fuzz(fuzz_home, cli):
    from interp.cli import build_parser

    commands = _commands(build_parser())
    assert len(commands) > 15  # the walk found the subcommands
    old = signal.signal(signal.SIGALRM, _alarm)
    failures = []
    try:
        for seed in range(CASES):
            argv = _case(seed, commands)
            signal.alarm(CALL_SECONDS)
            try:
                code, out, err = cli(*argv)
            except _Timeout:
                failures.append(f"seed {seed}: {_short(argv)} ran over {CALL_SECONDS} s")
                continue
            except Exception as e:  # noqa: BLE001  an uncaught exception is a traceback for the user
                failures.append(f"seed {seed}: {_short(argv)} raised {type(e).__name__}: {e}")
                continue
            finally:
                signal.alarm(0)
            if code not in (0, 2) or "Traceback" in err:
                failures.append(f"seed {seed}: {_short(argv)} -> exit {code}: {err.strip()[-300:]}")
            if code == 2 and len(err.strip().splitlines()) != 1:
                failures.append(f"seed {seed}: {_short(argv)} -> an error of {len(err.strip().splitlines())} lines")
            left = [p for p in fuzz_home.rglob("*.tmp")]
            if left:
                failures.append(f"seed {seed}: {_short(argv)} left {left[:3]}")
                for p in left:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
    finally:
        signal.signal(signal.SIGALRM, old)
    assert not failures, "\n".join(failures)
