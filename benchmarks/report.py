"""P8: the full report of the tutorial net, cold and re-rendered from saved results.

    python benchmarks/report.py [--run RUN] [--steps N] [--quick]

Without --run it trains the tutorial net on the embedded shapes data first (not timed).
"Cold" builds the report into an empty folder: feature visualisation of every unit of
conv1, conv2 and the fc layers (channel with diversity and negative, neuron for conv
layers), dataset examples, weight views, attribution (gallery, trust checks, class-to-unit
lists) and claim checks, then every page. "Re-render" builds it again into the same folder,
reusing every saved result. Goals: cold <= 60 s, re-render <= 5 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="an existing tutorial-net run (default: train one on shapes)")
    parser.add_argument("--steps", type=int, default=None, help="visualisation steps (default: the report's)")
    parser.add_argument("--quick", action="store_true", help="a small run and 32 steps (smoke test)")
    args = parser.parse_args()
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on

    import torch

    from interp.pipelines.report import build_report
    from interp.report.vision import REPORT_STEPS
    from interp.runs import load_run
    from interp.training.loop import train

    work = Path(tempfile.mkdtemp(prefix="interp-p8-"))
    if args.run:
        run = load_run(args.run)
    else:
        overrides = {"n_train": "5000", "n_test": "1000"} if args.quick else {}
        run = train("tutorial", "shapes", name="p8-tutorial", root=work / "models", device="cpu",
                    progress=False, log=None, epochs=2 if args.quick else None, overrides=overrides)
    steps = args.steps or (32 if args.quick else None)
    out = work / "report"
    t0 = time.perf_counter()
    index = build_report(run, out=out, steps=steps, device="cpu", progress=False, log=None)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_report(run, out=out, steps=steps, device="cpu", progress=False, log=None)
    warm = time.perf_counter() - t0
    pages = len(list(out.rglob("*.html")))
    files = len([p for p in out.rglob("*") if p.is_file()])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"P8 report of {run.name} ({run.config.model}, test acc {run.summary['test_acc']:.1%}), "
          f"{steps or REPORT_STEPS} visualisation steps, torch threads {torch.get_num_threads()}")
    print(f"  cold build:  {cold:6.1f} s   (goal <= 60 s)")
    print(f"  re-render:   {warm:6.1f} s   (goal <= 5 s)")
    print(f"  {pages} pages, {files} files, peak RSS {peak:.0f} MiB -> {index}")


if __name__ == "__main__":
    main()
