"""#17 figures: a 2-layer induction run with ~30 snapshots, its full dynamics, and the phase change over 3 seeds.

    OMP_NUM_THREADS=1 python benchmarks/dynamics.py [--seeds 3]

Prints wall seconds of training and of the dynamics (uncached), their ratio (goal <= 1x), the
induction/ICL phase-change steps per seed and their mean with a CI over seeds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-dynamics-"))
    os.environ["INTERP_MODELS_DIR"] = str(root / "models")
    os.environ["INTERP_REPORTS_DIR"] = str(root / "reports")
    from interp.device import machine_description
    from interp.pipelines.dynamics import dynamics
    from interp.training.loop import train

    print(machine_description())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    recipe = {"steps_per_epoch": "10", "batch_size": "32", "grad_clip": "1.0", "checkpoints": "log"}
    t = time.perf_counter()
    run = train("attn-only", "induction", name="ind", epochs=30, lr=3e-3, device="cpu", progress=False, log=None,
                overrides=recipe)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    result = dynamics(run, progress=False, log=None, seeds=1)
    dyn_s = time.perf_counter() - t
    print(f"training (30 epochs x 10 steps, {len(result.steps)} snapshots): {train_s:.1f} s "
          f"(in the loop {run.summary['train_seconds']:.1f} s)")
    print(f"dynamics, uncached: {dyn_s:.1f} s = {dyn_s / train_s:.2f}x the training")
    for name, s in result.series.items():
        print(f"  {name:14s} {s.phase.status:13s} step {s.phase.step}  share {s.phase.share:.2f} "
              f"[{s.phase.share_ci[0]:.2f}, {s.phase.share_ci[1]:.2f}]")
    print(f"coincide: {result.coincide}")
    if args.seeds > 1:
        t = time.perf_counter()
        over = dynamics(run, seeds=args.seeds, progress=False, log=None)
        print(f"{args.seeds} seeds (training the siblings + their dynamics): {time.perf_counter() - t:.1f} s")
        for row in over.seeds:
            print(f"  seed {row['seed']}: induction {row['phase'].get('induction')}, icl {row['phase'].get('icl')}")
        for name in ("induction", "icl", "loss"):
            print(f"  {name}: {over.seed_summary.get(name)}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
