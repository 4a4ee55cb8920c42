"""Benchmark: interp on a shared machine (issue #21), and its start-up.

In one script run, for (a) ``interp visualize --layer conv2 --steps 128``, (b) one epoch of
``interp train tutorial --dataset shapes``, (c) ``interp report`` of a small run: the time
quiet, then with ``--busy`` CPU-bound processes started (and stopped) by this script
beside it, for interp's thread policy (``auto``) and the others it was chosen over
(``torch``: torch's defaults, OpenMP spin-waiting on every core; ``passive``: the same
with ``OMP_WAIT_POLICY=PASSIVE``; ``1``: one thread). Goal: loaded / quiet <= 2.5 for each
workload with ``auto`` (a fair share of 2 cores among 3 processes is 1.5-2.0), quiet no
worse than ``torch``.

Start-up: ``interp runs`` (goal <= 0.5 s), ``interp models`` (<= 1.1x a bare ``python -c
"import torch"``), a feature-visualisation command's time to its first step (<= 1.3x) and
a transformer command's whole run (``interp heads`` of a small attention-only model;
goal <= 1.5x for its start-up), each the median of ``--reps`` runs.

    python benchmarks/contention.py                 # everything, 3 repetitions (~15 min on 2 cores)
    python benchmarks/contention.py --quick         # 1 repetition, visualize and start-up only
    python benchmarks/contention.py --only startup

Prints a Markdown table for benchmarks/RESULTS.md, with the CPU, its capability and the
load before the run (other processes on the machine change every figure: say so).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTERP = [str(Path(sys.executable).with_name("interp"))]
POLICIES = {
    "auto": {},
    "torch": {"INTERP_THREADS": "torch"},
    "passive": {"INTERP_THREADS": "torch", "OMP_WAIT_POLICY": "PASSIVE"},
    "1": {"INTERP_THREADS": "1"},
}


def environment(root: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "INTERP_THREADS",
                                                            "OMP_WAIT_POLICY")}
    env.update({"INTERP_MODELS_DIR": str(root / "models"), "INTERP_REPORTS_DIR": str(root / "reports"),
                "INTERP_CACHE_DIR": str(root / "cache"), "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def timed(argv: list[str], env: dict, *, pattern: str | None = None) -> tuple[float, float | None, str]:
    """(wall seconds, the seconds matched by ``pattern`` in the output or None, output)."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    out = done.stdout + done.stderr
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{out[-2000:]}")
    reported = None
    if pattern:
        m = re.search(pattern, out)
        reported = float(m.group(1)) if m else None
    return wall, reported, out


class Busy:
    """``n`` CPU-bound processes beside the measured one (plain Python loops, no threads)."""

    def __init__(self, n: int):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


WORKLOADS = {
    # name: (argv after `interp`, regex of the seconds the command reports, or None for wall time)
    "visualize conv2 128 steps": (["visualize", "--run", "bench", "--layer", "conv2", "--steps", "128",
                                   "--out", "{out}"], r"Rendered .* in ([0-9.]+)s"),
    "train 1 epoch (shapes, 10k)": (["train", "tutorial", "--dataset", "shapes", "--epochs", "1", "--name", "{name}",
                                     "--set", "n_train=10000", "--no-progress"], r"training ([0-9.]+)s"),
    "report (2 layers, 32 steps)": (["report", "--run", "bench", "--layers", "conv1,conv2", "--steps", "32",
                                     "--out", "{out}", "--no-progress"], None),
}


def run_workload(name: str, root: Path, env: dict, counter: list[int]) -> float:
    argv, pattern = WORKLOADS[name]
    counter[0] += 1
    argv = [a.format(out=root / "out" / str(counter[0]), name=f"t{counter[0]}") for a in argv]
    wall, reported, _ = timed(INTERP + argv, env, pattern=pattern)
    return reported if reported is not None else wall


def median(values):
    return statistics.median(values) if values else float("nan")


def contention(root: Path, reps: int, busy: int, workloads: list[str], policies: list[str]) -> list[dict]:
    rows, counter = [], [0]
    for workload in workloads:
        for policy in policies:
            env = environment(root, POLICIES[policy])
            quiet = [run_workload(workload, root, env, counter) for _ in range(reps)]
            with Busy(busy):
                loaded = [run_workload(workload, root, env, counter) for _ in range(reps)]
            row = {"workload": workload, "policy": policy, "quiet": median(quiet), "loaded": median(loaded),
                   "quiet_all": quiet, "loaded_all": loaded}
            row["ratio"] = row["loaded"] / row["quiet"]
            rows.append(row)
            print(f"  {workload:30s} {policy:8s} quiet {row['quiet']:7.2f}s  loaded {row['loaded']:7.2f}s  "
                  f"x{row['ratio']:.1f}   (all: {[round(v, 2) for v in quiet]} / {[round(v, 2) for v in loaded]})",
                  flush=True)
    return rows


def first_step(argv: list[str], env: dict) -> float:
    """Seconds from launching the command to its first optimisation step (interp.threads' mark)."""
    env = {**env, "INTERP_FIRST_STEP_MARK": "1"}
    start = time.time()
    _, _, out = timed(INTERP + argv, env)
    m = re.search(r"INTERP_FIRST_STEP_MARK ([0-9.]+)", out)
    if not m:
        raise SystemExit(f"no first-step mark in the output of {argv}")
    return float(m.group(1)) - start


def startup(root: Path, reps: int) -> list[dict]:
    env = environment(root)
    torch_import = median([timed([sys.executable, "-c", "import torch"], env)[0] for _ in range(reps)])
    tl_import = median([timed([sys.executable, "-c", "import transformer_lens"], env)[0] for _ in range(reps)])
    rows = [{"what": "python -c 'import torch'", "seconds": torch_import, "goal": "-"},
            {"what": "python -c 'import transformer_lens'", "seconds": tl_import, "goal": "-"}]
    runs = median([timed(INTERP + ["runs"], env)[0] for _ in range(reps)])
    rows.append({"what": "interp runs", "seconds": runs, "goal": "<= 0.5 s"})
    models = median([timed(INTERP + ["models"], env)[0] for _ in range(reps)])
    rows.append({"what": "interp models", "seconds": models, "goal": f"<= 1.1x torch ({1.1 * torch_import:.2f} s)"})
    fv = median([first_step(["visualize", "--run", "bench", "--layer", "conv2", "--steps", "1", "--units", "0",
                             "--out", str(root / "out" / f"fs{i}")], env) for i in range(reps)])
    rows.append({"what": "interp visualize: to its first step", "seconds": fv,
                 "goal": f"<= 1.3x torch ({1.3 * torch_import:.2f} s)"})
    heads = median([timed(INTERP + ["heads", "--run", "attn", "--sequences", "8", "--json"], env)[0]
                    for _ in range(reps)])
    rows.append({"what": "interp heads (whole command, small model)", "seconds": heads,
                 "goal": f"start-up <= 1.5x torch ({1.5 * torch_import:.2f} s)"})
    for r in rows:
        r["x_torch"] = r["seconds"] / torch_import
        print(f"  {r['what']:45s} {r['seconds']:6.2f}s  {r['x_torch']:.2f}x torch   goal {r['goal']}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the measured one")
    parser.add_argument("--quick", action="store_true", help="1 repetition; visualize and start-up only")
    parser.add_argument("--only", choices=["contention", "startup"], default=None)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--workloads", default=None, help="comma-separated indexes into the workloads (0,1,2)")
    args = parser.parse_args()
    reps = 1 if args.quick else args.reps
    workloads = list(WORKLOADS)[:1] if args.quick else list(WORKLOADS)
    if args.workloads:
        workloads = [list(WORKLOADS)[int(i)] for i in args.workloads.split(",")]
    policies = [p for p in args.policies.split(",") if p]
    from interp.device import machine_description

    print(f"machine: {machine_description()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = environment(root, {"INTERP_THREADS": "2"})
        print("setting up: a tutorial run (shapes, 5,000 images, 1 epoch) and a small attention-only run", flush=True)
        timed(INTERP + ["train", "tutorial", "--dataset", "shapes", "--epochs", "1", "--name", "bench",
                        "--set", "n_train=5000", "--no-progress"], env)
        timed(INTERP + ["train", "attn-only", "--dataset", "induction", "--epochs", "2", "--name", "attn",
                        "--set", "steps_per_epoch=10", "--no-progress"], env)
        rows = startup_rows = []
        if args.only in (None, "contention"):
            print(f"contention: {reps} repetition(s), median; loaded = {args.busy} busy processes beside it")
            rows = contention(root, reps, args.busy, workloads, policies)
        if args.only in (None, "startup"):
            print("start-up (median of the repetitions):")
            startup_rows = startup(root, reps)
    print("\n| workload | policy | quiet s | loaded s | loaded / quiet |\n| --- | --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['workload']} | {r['policy']} | {r['quiet']:.2f} | {r['loaded']:.2f} | {r['ratio']:.1f} |")
    if startup_rows:
        print("\n| start-up | seconds | x import torch | goal |\n| --- | ---: | ---: | --- |")
        for r in startup_rows:
            print(f"| {r['what']} | {r['seconds']:.2f} | {r['x_torch']:.2f} | {r['goal']} |")


if __name__ == "__main__":
    main()
