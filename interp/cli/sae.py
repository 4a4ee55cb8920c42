"""``interp sae``: train a sparse autoencoder on a layer, and measure it against two baselines."""

from __future__ import annotations

import argparse
import sys

from .common import add_device, add_json, add_run, add_seed, float_in, int_in, load_run_announced, print_json

DEFAULT_VERBS = {"sae": "train"}

EPILOG = """\
examples:
  interp sae train --run tiny-gpt --layer blocks.1.hook_resid_post           # TopK, k 16, width 8 x d_model
  interp sae train --run tiny-gpt --layer blocks.0.hook_mlp_out --k 8 --width 512 --tokens 500000
  interp sae train --run tutorial --layer conv2 --k 4                        # CNN: each position's channels
  interp sae train --run tutorial --layer conv2 --l1 0.01                    # ReLU + L1 instead of TopK
  interp sae metrics --sae reports/tiny-gpt/sae/blocks.1.hook_resid_post-topk16 --n 100000

Trains on --tokens activations of the run's training split (streamed, memory bounded), then
measures on the test split: fraction of variance explained, L0, dead features, loss recovered
with the reconstruction spliced into the model (against zero ablation) and an automatic
interpretability proxy (how many of a feature's top-20 activations share one token / class /
position), each beside random directions (same count, same k) and the layer's own neurons.
Writes reports/RUN/sae/LAYER-KEY/ (sae.safetensors, index.json, training.png, metrics-HASH.json
and .png); an SAE of other settings goes beside it (LAYER-KEY-HASH).
"""


def register(sub, common) -> None:
    p = sub.add_parser("sae", parents=[common], help="sparse autoencoders: train on a layer, measure vs baselines",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Sparse autoencoders (TopK or ReLU + L1) on a layer's activations, with "
                                   "metrics beside random-direction and neuron baselines.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    t = verbs.add_parser("train", parents=[common], help="train an SAE on a layer and print its metrics",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                         description="Train an SAE on a layer (a TransformerLens hook name for transformers, a "
                                     "module path for CNNs), save it and print its metrics table.")
    add_run(t)
    t.add_argument("--layer", required=True, metavar="LAYER",
                   help="blocks.N.hook_resid_post, blocks.N.hook_mlp_out, ... (transformer) or conv2 (CNN)")
    t.add_argument("--width", type=int_in(2, 1_000_000), metavar="W", help="features (default 8 x the layer's width)")
    kind = t.add_mutually_exclusive_group()
    kind.add_argument("--k", type=int_in(1, 100_000), metavar="K",
                      help="TopK SAE with K active features per activation (default: min(16, d/2))")
    kind.add_argument("--l1", type=float_in(0.0, 1e6), metavar="C", help="ReLU SAE with L1 coefficient C instead")
    t.add_argument("--tokens", type=int_in(1, 1_000_000_000), default=200_000, metavar="N",
                   help="activations to train on (default 200,000)")
    t.add_argument("--batch-size", type=int_in(1, 1_000_000), default=1024, help="activations per step (default 1024)")
    t.add_argument("--lr", type=float_in(0.0, 1.0, above=True), help="Adam learning rate (default by width)")
    t.add_argument("--n", type=int_in(1, 100_000_000), default=50_000, metavar="N",
                   help="test activations for the metrics (default 50,000)")
    add_seed(t)
    t.add_argument("--out", metavar="DIR", help="output folder (default reports/RUN/sae/LAYER-KEY)")
    add_device(t)
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json(t)
    t.set_defaults(func=cmd_train)

    m = verbs.add_parser("metrics", parents=[common], help="recompute a saved SAE's metrics",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                         description="Measure a saved SAE (its folder) on the run's test split, beside the baselines.")
    m.add_argument("--sae", required=True, metavar="DIR", help="the SAE's folder (reports/RUN/sae/LAYER-KEY)")
    m.add_argument("--run", metavar="RUN", help="run name or path (default: the one the SAE was trained on)")
    m.add_argument("--n", type=int_in(1, 100_000_000), default=50_000, metavar="N",
                   help="test activations (default 50,000)")
    add_seed(m)
    add_device(m)
    add_json(m)
    m.set_defaults(func=cmd_metrics)


def cmd_train(args) -> int:
    from ..analysis.dictionary.metrics import sae_metrics
    from ..analysis.dictionary.sae import check_settings, train_sae
    from ..errors import InterpError
    from ..outputs import check_writable
    from ..results.sae import save_sae, save_sae_metrics

    check_settings(None, args.width, args.k, args.l1, args.tokens, args.batch_size)
    run = load_run_announced(args)
    if args.out:
        from pathlib import Path

        out = Path(args.out).expanduser()
        if out.exists() and not out.is_dir():
            raise InterpError(f"--out {args.out} is an existing file; give a folder (new or empty) for the SAE")
        check_writable(out.parent, f"--out {args.out}")
    else:
        check_writable(run.report_dir())
    trained = train_sae(run, args.layer, width=args.width, k=args.k, l1=args.l1, tokens=args.tokens,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                        progress=not args.no_progress)
    folder = save_sae(trained, args.out)
    metrics = sae_metrics(trained, run, n=args.n, seed=args.seed)
    file = save_sae_metrics(metrics, folder)
    if args.json:
        print_json(metrics, sae=folder, metrics_file=file)
        return 0
    print(f"SAE of {run.name} {args.layer}: {trained.sae.kind}, width {trained.sae.width}"
          + (f", k {trained.sae.k}" if trained.sae.kind == "topk" else f", l1 {trained.sae.l1:g}")
          + f", {trained.settings['activations_seen']:,} training activations, "
            f"{trained.settings['resamples']} resampling rounds")
    print(metrics.table())
    print(f"Saved -> {folder}/  (sae.safetensors, training.png, {file.name} and .png)")
    return 0


def cmd_metrics(args) -> int:
    from ..analysis.dictionary.metrics import sae_metrics
    from ..results.sae import load_sae, save_sae_metrics
    from ..runs import load_run

    trained = load_sae(args.sae)
    run = load_run(args.run or trained.run, device=args.device)
    if args.run is None:
        print(f"Using the SAE's run: {run.name} ({run.path})", file=sys.stderr)
    metrics = sae_metrics(trained, run, n=args.n, seed=args.seed)
    file = save_sae_metrics(metrics, args.sae)
    if args.json:
        print_json(metrics, metrics_file=file)
        return 0
    print(metrics.table())
    print(f"Saved -> {file}  (and {file.with_suffix('.png').name})")
    return 0
