"""``interp report``: the static HTML report of a run."""

from __future__ import annotations

import argparse

from .common import SEED, add_device, add_no_progress, add_run, int_in, load_run_announced


def register(sub, common) -> None:
    p = sub.add_parser(
        "report", parents=[common], help="write the static HTML report of a run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compute what is missing (reusing saved results) and write reports/RUN/index.html:\n"
                    "model page, a page per layer with every unit, and a Microscope-style page per unit.\n"
                    "The report is static and self-contained: open it from disk or any static host.",
        epilog="examples:\n"
               "  interp report                      # the most recent run\n"
               "  interp report --run tutorial --layers conv1,conv2 --steps 128\n"
               "  interp report --out /tmp/site      # write somewhere else")
    add_run(p)
    p.add_argument("--layers", help="comma-separated layers to visualise (default: every layer)")
    p.add_argument("--steps", type=int_in(1, 100_000), help="feature-visualisation steps (default: the visualiser's)")
    p.add_argument("--out", help="output folder (default reports/RUN)")
    p.add_argument("--seed", type=SEED, default=0)
    add_no_progress(p)
    add_device(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from ..outputs import check_output_folder, check_writable
    from ..pipelines.report import build_report

    if args.out:
        check_output_folder(args.out, "report")
    run = load_run_announced(args)
    if not args.out:
        check_writable(run.report_dir().parent)
    layers = [s for s in args.layers.split(",") if s] if args.layers else None
    if layers:
        for name in layers:
            run.layer(name)  # unknown layer -> clear error before any work
    index = build_report(run, out=args.out, layers=layers, steps=args.steps, device=args.device,
                         progress=not args.no_progress, seed=args.seed)
    print(f"Report: {index}")
    return 0
