"""Foundation commands: models, train, runs, zoo, demo."""

from __future__ import annotations

import argparse
import sys

from ..terminal import format_summary, pct, table
from .common import SEED, add_device, add_no_progress, float_in, int_in


def register(sub, common) -> None:
    p = sub.add_parser("models", parents=[common], help="list the models that can be trained",
                       description="List registered models with their family, task and parameter count.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  interp models\n  interp models 'tutorial*'\n  interp models | head -5\n"
                              "  interp models --pretrained      # Microscope's models and their layers")
    p.add_argument("pattern", nargs="?", default="*", help="glob filter, e.g. 'cnn*'")
    p.add_argument("--pretrained", action="store_true",
                   help="list the pretrained models (Microscope's) and how to get each")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "train", parents=[common], help="train a model into models/NAME/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a registered model and save it as a run folder (config.json, model.safetensors,\n"
                    "metrics.jsonl, summary.json). A checkpoint is written after every epoch; Ctrl-C\n"
                    "leaves a resumable run.",
        epilog="examples:\n"
               "  interp train tutorial                          # tutorial net on the embedded shapes data\n"
               "  interp train tutorial --dataset ../shared/data/cifar10-jpeg --epochs 4\n"
               "  interp train tutorial --set pooling=avg --set kernel_size=3 --name tut-avg-k3\n"
               "  interp train tutorial --recipe tutorial        # the PyTorch tutorial's exact loop\n"
               "  interp train tutorial --dataset ../shared/data/cifar10-jpeg --recipe quick   # bf16 where native\n"
               "     (the tutorial's 2 epochs: 57% in about 5 s on 2 CPU cores with AVX512-BF16)\n"
               "  interp train --resume tutorial                 # continue an interrupted run\n"
               "  interp train attn-only --dataset induction --checkpoints log   # snapshots for interp dynamics\n"
               "  interp train word2vec                          # the word2vec exercise on the embedded toy corpus\n"
               "  interp train word2vec-sgns --dataset ../shared/data/tinyshakespeare.txt --set min_count=3\n"
               "     (word2vec settings: dim, window, min_count, negatives, subsample, dynamic_window, stopwords)")
    p.add_argument("model", nargs="?", help="registered model (see `interp models`)")
    p.add_argument("--dataset", help="shapes (default), shapes-watermark (shapes with a planted class-coloured "
                                     "mark on the training split: a known Clever Hans shortcut), cifar10 "
                                     "(downloads), or a folder with train/ and test/; "
                                     "language models: tinyshakespeare (downloads), induction, text:PATH; "
                                     "word2vec: toy-royalty (embedded), a text file, text8 (downloads)")
    p.add_argument("--text", metavar="PATH", help="train a language model (gpt) on this UTF-8 text file, "
                                                  "e.g. ../shared/data/tinyshakespeare.txt (= --dataset text:PATH)")
    p.add_argument("--epochs", type=int_in(1, 100_000), help="training epochs (recipe default otherwise)")
    p.add_argument("--batch-size", type=int_in(1, 65_536), help="batch size")
    p.add_argument("--lr", type=float_in(0, 100, above=True), help="peak learning rate")
    p.add_argument("--seed", type=SEED, help="random seed (default 0)")
    p.add_argument("--recipe", default=None,
                   help="fast (AdamW, one-cycle, augmentation; the default for image models), quick (2 epochs "
                        "of batch 128, no augmentation: the tutorial's budget at our speed), tutorial (its exact "
                        "loop), cifarnet, or word2vec / word2vec-sgns (the defaults of those models); default: "
                        "the model's own")
    p.add_argument("--name", help="run name (default: the model name, made unique)")
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE",
                   help="override a model, training or data setting, e.g. pooling=avg, kernel_size=3, "
                        "channels=8,16, batch_norm=true, train.weight_decay=0; repeatable")
    p.add_argument("--resume", metavar="NAME", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--checkpoints", metavar="SCHEDULE",
                   help="keep weight snapshots during training for `interp dynamics`: log (about 30, log-spaced: "
                        "more early), linear, N (N log-spaced), log:N or linear:N (= --set checkpoints=...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run of the same name")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image folders: leave out files that cannot be decoded (each named in a warning) "
                        "instead of stopping at the first (= --set skip_bad_images=true)")
    add_no_progress(p)
    add_device(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", parents=[common], help="list trained runs",
                       description="List the runs under models/ with model, dataset, status, accuracy and date.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  interp runs\n  INTERP_MODELS_DIR=~/experiments/models interp runs")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser(
        "zoo", parents=[common], help="train and compare an architecture grid over several seeds",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the tutorial net with max/avg/strided/no pooling and kernels 3/5/7, and two MLPs,\n"
                    "each with seeds 0..N-1 (runs zoo-ENTRY, zoo-ENTRY-s1, ...). Prints and saves\n"
                    "(models/zoo.json, reports/zoo/index.html) the mean accuracy, its spread over seeds and a\n"
                    "95% interval per entry, and findings computed from those numbers: which differences are\n"
                    "larger than the seed spread (Welch t-test, p < 0.05) and which are not.",
        epilog="examples:\n"
               "  interp zoo                                      # the whole grid, 3 seeds, 4 epochs, shapes data\n"
               "  interp zoo --seeds 5                            # tighter intervals: 5 seeds per entry\n"
               "  interp zoo --seeds 1 --epochs 1                 # quick look: one seed, so no spread to judge by\n"
               "  interp zoo --only tutorial-max,tutorial-none,mlp-small --seeds 3\n"
               "  interp zoo --dataset ../shared/data/cifar10-jpeg --set n_train=10000 --seeds 3\n"
               "  interp report --run zoo-tutorial-max            # the seed-0 run's report, linked from the page")
    p.add_argument("--dataset", default="shapes", help="dataset for every model (default shapes)")
    p.add_argument("--epochs", type=int_in(1, 10_000), default=4, help="epochs per model (default 4)")
    p.add_argument("--seeds", type=int_in(1, 20), default=3, metavar="N",
                   help="train every entry with seeds 0..N-1 (1 to 20, default 3); the spread over seeds "
                        "decides which differences are real")
    p.add_argument("--only", help="comma-separated subset of the grid's entry names")
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE",
                   help="a setting applied to every entry, e.g. n_train=10000 or batch_size=128")
    add_no_progress(p)
    add_device(p)
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("demo", parents=[common], help="run the whole pipeline on embedded data",
                       description="Train the tutorial net on the embedded shapes data and run every analysis "
                                   "stage on it, ending with a report. No download; a few minutes on 2 CPU cores.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  interp demo\n  interp demo --quick            # smaller data, fewer steps\n"
                              "  interp demo --device cuda")
    p.add_argument("--quick", action="store_true", help="smaller data and fewer steps (a smoke test)")
    add_no_progress(p)
    add_device(p)
    p.set_defaults(func=cmd_demo)


def cmd_models(args) -> int:
    from ..zoo import count_parameters, create_model, list_models

    if args.pretrained:
        return _print_pretrained()
    rows = []
    for spec in list_models(args.pattern):
        if not spec.trainable:
            continue  # imported families: named below, not trained here
        try:
            params = f"{count_parameters(create_model(spec.name)):,}"
            if getattr(spec.default_config(), "vocab_size", None) == 0:  # filled from the data (word2vec)
                params = "depends on data"
        except Exception:  # a model needing data-dependent sizes
            params = "depends on data"
        rows.append({"name": spec.name, "family": spec.family, "task": spec.task, "params": params,
                     "description": spec.description})
    print(table(rows, [("name", "model"), ("family", "family"), ("task", "task"), ("params", "parameters"),
                       ("description", "description")]))
    print("\nYour own models: interp import torchvision:ARCH | timm:NAME | hf:FOLDER --name NAME "
          "(see interp import --help);\npretrained by name: interp models --pretrained")
    return 0


def _print_pretrained() -> int:
    from ..zoo.pretrained import MICROSCOPE_MODELS, pretrained_names

    for name, spec in MICROSCOPE_MODELS.items():
        how = f"--run {name}" if name in pretrained_names() else \
            f"interp import {spec['source']} --name {name} --download (or --weights FILE)"
        print(f"{name}: {how}\n  {spec['note']}\n  layers: {', '.join(spec['layers'])}\n")
    return 0


def cmd_train(args) -> int:
    from ..config import parse_set_options
    from ..training.loop import resume, train

    progress = not args.no_progress
    if args.resume:
        if args.checkpoints:
            from ..errors import InterpError

            raise InterpError("--checkpoints cannot change on --resume: the schedule is part of the run's config")
        if args.model:
            print(f"note: --resume continues {args.resume} with its saved config; ignoring {args.model!r}",
                  file=sys.stderr)
        run = resume(args.resume, device=args.device, progress=progress)
    else:
        if not args.model:
            from ..errors import InterpError

            raise InterpError("which model? e.g. `interp train tutorial` (see `interp models`), "
                              "or `interp train --resume NAME`")
        dataset = args.dataset
        if args.text:
            if dataset:
                from ..errors import InterpError

                raise InterpError("give either --text PATH or --dataset, not both")
            dataset = f"text:{args.text}"
        run = train(args.model, dataset, name=args.name, device=args.device, progress=progress,
                    recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    seed=args.seed, overwrite=args.overwrite,
                    overrides={**parse_set_options(args.sets),
                               **({"skip_bad_images": "true"} if args.skip_bad_images else {}),
                               **({"checkpoints": args.checkpoints} if args.checkpoints else {})})
    print(format_summary(run))
    return 0


def cmd_runs(args) -> int:
    from ..runs import models_dir, run_table

    rows = run_table()
    if not rows:
        print(f"No runs in {models_dir()}/ yet. Train one: interp train tutorial")
        return 0
    print(table(rows, [("name", "run"), ("model", "model"), ("dataset", "dataset"), ("status", "status"),
                       ("epochs", "epochs"), ("accuracy", "test acc"), ("date", "updated")],
                {"accuracy": pct}))
    return 0


def cmd_zoo(args) -> int:
    from ..config import parse_set_options
    from ..analysis.zoo_grid import zoo_findings
    from ..pipelines.zoo_grid import check_seeds, format_zoo_table, run_zoo
    from ..report.zoo_page import build_zoo_report

    check_seeds(args.seeds)  # before anything is trained
    only = [s for s in args.only.split(",") if s] if args.only else None
    result = run_zoo(dataset=args.dataset, epochs=args.epochs, seeds=args.seeds, device=args.device,
                     progress=not args.no_progress, only=only, overrides=parse_set_options(args.sets))
    print(format_zoo_table(result["rows"]))
    print("\nFindings:")
    for finding in zoo_findings(result):
        print(f"- {finding}")
    page = build_zoo_report(result["path"])
    print(f"\nSaved: {result['path']}\nPage:  {page}")
    return 0


def cmd_demo(args) -> int:
    from ..pipelines.demo import run_demo

    run_demo(device=args.device, quick=args.quick, progress=not args.no_progress)
    return 0
