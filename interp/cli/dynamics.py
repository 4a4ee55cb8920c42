"""``interp dynamics``: analyses at every weight snapshot of a run, and the phase changes among them."""

from __future__ import annotations

import argparse

from ..terminal import printable, table
from .common import add_device, add_json, add_no_progress, add_run, add_seed, int_in, load_run_announced, print_json

EPILOG = """\
examples:
  interp train attn-only --dataset induction --checkpoints log --name ind   # snapshots, log-spaced
  interp dynamics --run ind                            # head scores, ICL score, losses, K-composition
  interp dynamics --run ind --metrics heads,icl --seeds 3   # phase-change step over 3 training seeds
  interp train tutorial --dataset shapes --checkpoints log:20 --name tiny
  interp dynamics --run tiny --metrics accuracy,units,claims --claims gabor-first-layer

Language models: the best induction and previous-token scores (min over repeat lengths, mean
over 64 probe sequences), the in-context-learning score (late minus early loss), the loss on
repeated and on fresh tokens, the strongest K-composition. Image classifiers: test accuracy and
loss on 1,000 stratified test images, each layer's class selectivity, and (with --metrics
claims) each claim check's verdict at every checkpoint. Every metric gets a 95% bootstrap
interval over the probe's examples and its value on --null-models re-initialised models; a
phase change is a real change (beyond the re-initialised models) that is abrupt: its three
steepest log-step intervals hold over twice the share of the change a steady rise would.
Writes reports/RUN/dynamics/ (index.json, data.safetensors, dynamics.png); measurements per
checkpoint are kept beside it, so a run trained further computes only its new checkpoints.
"""


def register(sub, common) -> None:
    p = sub.add_parser("dynamics", parents=[common], help="analyses over training: phase changes, claims as they emerge",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Evaluate analyses at every weight snapshot of a run trained with "
                                   "--checkpoints, and find where each metric changes abruptly.")
    add_run(p)
    p.add_argument("--metrics", metavar="LIST",
                   help="language models: heads,icl,loss,composition (default all); image classifiers: "
                        "accuracy,units,claims (default accuracy,units)")
    p.add_argument("--claims", metavar="IDS", help="claim checks for --metrics claims (default gabor-first-layer)")
    p.add_argument("--n", type=int_in(8, 100_000), metavar="N",
                   help="probe size: sequences (default 64) or test images (default 1000)")
    p.add_argument("--null-models", type=int_in(0, 100), default=4, metavar="N",
                   help="re-initialised models giving each metric its null (default 4)")
    p.add_argument("--seeds", type=int_in(1, 10), default=1, metavar="N",
                   help="also train (or reuse) N-1 runs of the same recipe with other seeds: the phase-change "
                        "step with a CI over seeds")
    add_seed(p)
    add_device(p)
    add_no_progress(p)
    add_json(p)
    p.set_defaults(func=cmd_dynamics)


def _split(text):
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def cmd_dynamics(args) -> int:
    from ..pipelines.dynamics import dynamics

    run = load_run_announced(args)
    result = dynamics(run, metrics=_split(args.metrics), claims=_split(args.claims), n=args.n, seed=args.seed,
                      null_models=args.null_models, seeds=args.seeds, device=args.device,
                      progress=not args.no_progress, log=None if args.json else print)
    if args.json:
        print_json(result)
        return 0
    print(printable(f"Dynamics of {result.run}: {len(result.steps)} snapshots (steps {result.steps[0]}-"
                    f"{result.steps[-1]}), {result.elapsed:.1f}s"))
    rows = [{"metric": name, "first": s.values[0], "last": s.values[-1],
             "null": (min(s.null), max(s.null)) if s.null else None, "status": s.phase.status,
             "step": s.phase.step if s.phase.status == "phase change" else None,
             "step_ci": s.phase.step_ci if s.phase.status == "phase change" else None}
            for name, s in result.series.items()]
    print(table(rows, [("metric", "metric"), ("first", "at init"), ("last", "at end"), ("null", "re-init range"),
                       ("status", "change"), ("step", "at step"), ("step_ci", "95% CI")],
                {"first": "{:.3f}".format, "last": "{:.3f}".format,
                 "null": lambda v: f"{v[0]:.3f}-{v[1]:.3f}" if v else "-",
                 "step": lambda v: "-" if v is None else str(v),
                 "step_ci": lambda v: "-" if v is None else f"{v[0]}-{v[1]}"}))
    for pair, apart in result.coincide.items():
        if apart is not None:
            print(f"{pair.replace('~', ' and ')}: phase changes {apart} checkpoint{'s' * (apart != 1)} apart")
    for row in result.claims:
        first = row["first_supported"]
        print(f"{row['claim']}: " + (f"supported from step {first} on" if first is not None
                                    else f"not supported at the end ({row['statuses'][-1]})"))
    for name, summary in result.seed_summary.items():
        if summary.get("mean") is not None:
            ci = summary.get("ci")
            print(f"{name}: phase change on {summary['with_change']} of {summary['seeds']} seeds, mean step "
                  f"{summary['mean']:.0f}" + (f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else ""))
    return 0
