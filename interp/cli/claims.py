"""``interp claims list`` and ``interp claims check``: published claims, checked on a model."""

from __future__ import annotations

import argparse
import json
import sys

from ..terminal import claims_table, table
from .common import add_device, add_json, add_no_progress, add_seed, int_in, print_json

EPILOG_CHECK = """\
examples:
  interp claims check                                   # every claim that applies to the latest run
  interp claims check --run tutorial --claim curve-detectors --claim gabor-first-layer
  interp claims check --run attn-only --json            # transformer claims, as JSON (kind, run, results, saved)
  interp claims check --run inceptionv1 --weights ~/Downloads/inception5h.pth
  interp claims check --run inceptionv1 --download      # fetch Lucent's InceptionV1 weights (27 MB) first
  interp claims check --run gpt --claim cue-token --cue e
  interp claims check --run tutorial --seeds 3          # train (or reuse) seeds 1 and 2 too; how many agree
  interp train tutorial --dataset shapes-watermark --name marked   # a planted shortcut: a class-coloured mark
  interp claims check --run marked --claim clever-hans --reference tutorial

Verdicts are supported / not supported / inconclusive (with the reason); the exit code is
0 whatever the verdicts, 2 for an error (unknown claim id, missing weights, bad option).
Results and figures go to reports/RUN/claims/ (claims.json + PNG), which the report shows.
"""


def register(sub, common) -> None:
    p = sub.add_parser("claims", parents=[common], help="check published claims (Circuits, Microscope) on a model",
                       description="Published claims about what networks learn (curve detectors, Gabor filters, "
                                   "induction heads, ...), each a check that returns a verdict with evidence.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  interp claims list\n  interp claims check --run tutorial\n")
    claims_sub = p.add_subparsers(dest="claims_command", metavar="COMMAND")

    q = claims_sub.add_parser("list", parents=[common], help="list the claims with their sources",
                              description="List every claim: id, what it needs, its statement and source.",
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="examples:\n  interp claims list\n  interp claims list --json")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.set_defaults(func=cmd_list)

    q = claims_sub.add_parser("check", parents=[common], help="check claims on a run and write the claims page",
                              description="Check claims on a run and save the verdicts with their evidence "
                                          "(reports/RUN/claims/).",
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG_CHECK)
    q.add_argument("--run", metavar="RUN", default=None,
                   help="run name (under models/) or path, or inceptionv1; default: the most recent run")
    q.add_argument("--claim", dest="claims", metavar="ID", action="extend", nargs="+",
                   help="claim ids to check (see `interp claims list`); default: every claim that applies")
    add_json(q)
    q.add_argument("--weights", metavar="PATH", help="InceptionV1 weights (Lucent's inception5h.pth); implies "
                                                     "--run inceptionv1")
    q.add_argument("--download", action="store_true", help="download the InceptionV1 weights if they are missing")
    q.add_argument("--layer", help="the layer the unit-level vision claims examine (default: the second conv layer)")
    q.add_argument("--cue", metavar="TOKEN", help="the suspected cue token for the cue-token claim")
    q.add_argument("--reference", metavar="RUN",
                   help="a run of the same model trained without the suspected cue (e.g. on clean shapes), for the "
                        "clever-hans check to compare with")
    q.add_argument("--null-models", type=int_in(2, 256), default=None, metavar="N",
                   help="re-initialised copies of the model that form the null, 2 to 256 (default: 32 for the "
                        "unit-level vision claims, 8 for the others)")
    q.add_argument("--images", type=int_in(1, 100_000), default=1000, metavar="N",
                   help="test images for the data-based claims (default 1000)")
    q.add_argument("--seeds", type=int_in(1, 10), default=1, metavar="N",
                   help="check on N training seeds of the run's recipe: trains (or reuses) RUN-seed1 ... and "
                        "reports each seed's verdict and how many agree; a verdict that changes with the seed is "
                        "inconclusive (default 1: this run only)")
    q.add_argument("--no-save", action="store_true", help="print only; do not write reports/RUN/claims/")
    add_no_progress(q, "do not say which claim is being checked")
    add_seed(q)
    add_device(q)
    q.set_defaults(func=cmd_check)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def cmd_list(args) -> int:
    from ..claims import list_claims

    claims = list_claims()
    if args.json:
        print(json.dumps([{"id": c.id, "kind": c.kind, "statement": c.statement, "source": c.source, "url": c.url,
                           "applies_to": c.applies_to, "thresholds": c.thresholds} for c in claims], indent=2,
                         default=str))
        return 0
    rows = [{"id": c.id, "kind": c.kind, "applies": c.applies_to, "statement": c.statement} for c in claims]
    print(table(rows, [("id", "claim"), ("kind", "needs"), ("statement", "statement")]))
    print("\nSources: interp claims list --json (article and section of each claim)")
    return 0


def _load(args):
    from ..errors import InterpError
    from .common import load_run_announced

    inception = args.run == "inceptionv1" or args.weights is not None or args.download
    if inception:
        if args.run not in (None, "inceptionv1"):
            raise InterpError(f"--weights and --download are for InceptionV1; drop them, or use --run inceptionv1 "
                              f"instead of --run {args.run}")
        from ..runs import load_run

        return load_run("inceptionv1", weights=args.weights, download=args.download, device=args.device)
    return load_run_announced(args)


def _reference(name: str | None):
    if name is None:
        return None
    from ..runs import load_run

    return load_run(name)


def cmd_check(args) -> int:
    from ..claims import CheckOptions, ClaimSet, check_claims, get_claim
    from ..results.claims import claims_dir, save_claims

    for claim_id in args.claims or []:
        get_claim(claim_id)  # an unknown id fails before any model is loaded
    run = _load(args)  # --null-models, --images and --seeds are range-checked by their argparse types
    options = CheckOptions(device=args.device, progress=not args.no_progress, seed=args.seed,
                           null_models=args.null_models, layer=args.layer, max_images=args.images, cue=args.cue,
                           reference=_reference(args.reference))
    log = None if args.no_progress else (lambda msg: print(msg, file=sys.stderr))
    per_run = []
    if args.seeds > 1:
        from ..claims.seeds import check_across_seeds

        results, per_run = check_across_seeds(run, args.claims, args.seeds, options=options, log=log)
    else:
        results = check_claims(run, args.claims, options=options, log=log)
    if not args.no_save:
        for other, other_results in per_run:
            if other is not run:
                save_claims(other_results, claims_dir(other))
    saved = None if args.no_save else save_claims(results, claims_dir(run))
    if args.json:
        print_json(ClaimSet(results, run=run.name), saved=saved)
    else:
        for other, other_results in per_run:
            print(f"Seed {other.config.train.seed} ({other.name}):\n")
            print(claims_table(other_results) + "\n")
        across = f" across {args.seeds} training seeds" if per_run else ""
        print(f"Claims on {run.name} ({run.config.model}){across}:\n")
        print(claims_table(results))
    if saved is not None:
        print(f"\nSaved: {saved}", file=sys.stderr)
    return 0
