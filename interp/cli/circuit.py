"""``interp circuit``: find a circuit (scored edges, kept top-k, judged against random circuits)."""

from __future__ import annotations

import argparse

from ..terminal import circuit_verdict, printable, table
from .common import add_device, add_json, add_run, add_seed, int_in, load_run_announced, print_json

# = interp.analysis.causal.graph.METHODS and .cnn.METRICS, which include .transformer.METRICS (not
# imported: registering commands must not load torch).
METHODS = ("eap", "eap-ig", "patching")
METRICS = ("logit-diff", "loss", "class-prob", "class-logit")
SHOWN_EDGES = 15

EPILOG = """\
examples:
  interp circuit --run tiny --clean circle --corrupted square       # logit-diff circle vs square, EAP
  interp circuit --clean circle --corrupted mean --metric class-prob  # every edge at its mean as the baseline
  interp circuit --method patching --top 40 --n 64                   # exact patching, keep 40 edges
  interp circuit --method eap-ig --steps 32 --random 20 --seed 1
  interp circuit --layers conv1,conv2,fc1 --json                     # a part of the net, result as JSON
  interp circuit --run attn-only --method eap-ig                      # a transformer: the induction task,
                                                                      # metric loss, every edge at its mean
  interp circuit --run attn-only --corrupted broken-repeat --metric logit-diff

Scores every edge (CNN: a channel of one layer feeding a unit of the next; transformer: a head,
MLP or the embedding feeding a later head's query/key/value, an MLP or the logits) by how much patching it
from the clean to the corrupted input changes the metric; keeps the top-k edges with every
other edge mean-ablated, and draws faithfulness (m(C) - m(empty)) / (m(full) - m(empty)) for
several k beside --random circuits of each size. Without --top the circuit kept is the smallest
reaching 0.8 (else the most faithful size). Writes reports/RUN/circuits/METHOD-METRIC/
(index.json, scores.safetensors, edges.json, faithfulness.png); other settings go beside it
(METHOD-METRIC-HASH). `interp report` then draws the circuit page.
"""


def register(sub, common) -> None:
    p = sub.add_parser("circuit", parents=[common], help="find a circuit: edge scores, top-k vs random circuits",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Circuit discovery on a CNN or transformer run: edge attribution patching (EAP), EAP with "
                                   "integrated gradients, or exact activation patching, then the faithfulness "
                                   "of the top-k circuits against random circuits of the same size.")
    add_run(p)
    p.add_argument("--method", choices=METHODS, default="eap", help="edge scores (default eap)")
    p.add_argument("--metric", choices=METRICS, default=None,
                   help="what the circuit must reproduce (CNN default: logit-diff with a corrupted class, "
                        "else class-logit; transformer: loss (default) or logit-diff on the induction task)")
    p.add_argument("--clean", metavar="CLASS", help="the clean images' class (name or index; default: every class)")
    p.add_argument("--corrupted", metavar="CLASS|mean", default="mean",
                   help="CNN: the corrupted images' class, 'mean' (every edge at its mean: default) or "
                        "'mean-image'; transformer: 'mean' or 'broken-repeat' (the repeat resampled)")
    p.add_argument("--top", type=int_in(1, 100_000_000), metavar="K",
                   help="edges kept (default: the smallest circuit reaching 0.8 faithfulness)")
    p.add_argument("--n", type=int_in(1, 4096), default=32, metavar="N", help="clean images (default 32)")
    p.add_argument("--random", type=int_in(1, 1000), default=10, metavar="N",
                   help="random circuits per size, the null (default 10)")
    p.add_argument("--steps", type=int_in(1, 1024), default=16, help="EAP-IG interpolation steps (default 16)")
    p.add_argument("--layers", metavar="LIST", help="conv/linear layers in forward order (default: all)")
    add_seed(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default: reports/RUN/circuits/METHOD-METRIC)")
    add_device(p)
    add_json(p)
    p.set_defaults(func=cmd_circuit)


def cmd_circuit(args) -> int:
    from ..analysis.causal.circuit import find_circuit
    from ..outputs import check_output_folder, check_writable
    from ..results.circuits import save_circuit

    if args.out:
        check_output_folder(args.out, "circuit")
    run = load_run_announced(args)
    if not args.out:
        check_writable(run.report_dir())
    layers = [s for s in args.layers.split(",") if s] if args.layers else None
    result = find_circuit(run, method=args.method, metric=args.metric, top=args.top, n_random=args.random,
                          seed=args.seed, clean=args.clean, corrupted=args.corrupted, n=args.n, layers=layers,
                          steps=args.steps)
    path = save_circuit(result, args.out)
    if args.json:
        print_json(result, path=path)
        return 0
    print(_headline(result))
    print(table(result.edge_rows(SHOWN_EDGES), [("rank", "rank"), ("edge", "edge"), ("score", "score")],
                {"score": "{:+.4g}".format}))
    if result.size > SHOWN_EDGES:
        print(f"... {result.size - SHOWN_EDGES} more edges in the circuit ({path / 'index.json'})")
    print()
    print(table(result.curve.rows(), [("size", "edges kept"), ("faithfulness", "faithfulness"), ("ci_low", "CI low"),
                                      ("ci_high", "CI high"), ("random_mean", "random mean"),
                                      ("random_high", "random 95%")], {k: "{:.3f}".format for k in (
                                          "faithfulness", "ci_low", "ci_high", "random_mean", "random_high")}))
    print()
    print(circuit_verdict(result))
    print(f"Saved -> {path}/  (faithfulness.png; `interp report` draws the circuit page)")
    return 0


def _headline(result) -> str:
    s = result.settings
    graph = s.get("graph", {})
    if result.model_kind == "transformer":
        return printable(f"Circuit of {result.run}: {result.n_edges:,} edges between heads, MLPs, the embedding and "
                         f"the logits, scored by {result.method} on {result.metric}; {s.get('n')} sequences of the "
                         f"induction task against their {s.get('corrupted')} values ({result.seconds:.1f}s)")
    clean = graph.get("clean_class") or "every class (stratified)"
    against = graph.get("corrupted_class") or f"the {graph.get('corrupted', s.get('corrupted'))} activations"
    return printable(f"Circuit of {result.run}: {result.n_edges:,} edges between {', '.join(result.layers)}, "
                     f"scored by {result.method} on {result.metric}; {graph.get('n', s.get('n'))} images of "
                     f"{clean} against {against} ({result.seconds:.1f}s)")

