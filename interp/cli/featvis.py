"""Feature commands: visualize (Microscope-style unit images), examples (dataset examples), weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_device, add_no_progress, add_run, add_seed, load_run_announced, table

VISUALIZE_EPILOG = """\
examples:
  interp visualize --layer conv2                     # every unit of conv2 of the latest run
  interp visualize --layer conv2 --units 0,3,5-9 --negative --diversity 4
  interp visualize --layer fc1 --steps 1024 --seed 1
  interp visualize --layer conv2 --objective neuron  # the centre position only
  interp visualize --run inceptionv1 --weights inception5h.pth --layer mixed4a --units 0-15

Writes reports/RUN/featvis/LAYER/: unit_0005.png (+ _div1, _neg), grid.png, index.json.
All units are optimised together in one batch (memory-bounded chunks for wide layers);
the same --seed gives the same images.
"""

EXAMPLES_EPILOG = """\
examples:
  interp examples --layer conv2                # top and bottom 9 test images of every conv2 unit
  interp examples --layer fc1 --units 0-9 -k 16
  interp examples --run inceptionv1 --weights inception5h.pth --layer mixed3b --dataset ~/imagenet-val

Writes reports/RUN/examples/LAYER/: unit_0005_top.png, unit_0005_bottom.png (receptive-field
crops for conv units), index.json, examples.safetensors.
"""

WEIGHTS_EPILOG = """\
examples:
  interp weights --layer conv1                 # first layer: filters as RGB images
  interp weights --layer conv2 --top 6         # each unit's strongest conv1 inputs, as heatmaps
  interp weights --layer fc1 --units 0-9       # fc weights folded back onto conv2's 5x5 grid

Writes reports/RUN/weights/LAYER/: unit_0005.png, filters.png (first layer), index.json.
Red is excitatory, blue inhibitory.
"""


def _add_inception(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", metavar="PATH",
                   help="--run inceptionv1 only: inception5h.pth (or .safetensors); 'random' for untrained. "
                        "Default: the torch hub cache")
    p.add_argument("--download", action="store_true",
                   help="--run inceptionv1 only: download the weights into the torch hub cache if missing")


def _common(p: argparse.ArgumentParser) -> None:
    add_run(p)
    p.add_argument("--layer", required=True, help="layer name, e.g. conv2 (an unknown name lists the layers)")
    p.add_argument("--units", metavar="LIST", help="units like 0,3,5-9 (default: all)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: reports/RUN/<kind>/LAYER)")
    _add_inception(p)
    add_device(p)


def register(sub, common) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("visualize", parents=[common], help="feature visualisation of every unit of a layer",
                       formatter_class=fmt, epilog=VISUALIZE_EPILOG,
                       description="Render an image that maximally activates each unit of a layer (Lucent's FFT, "
                                   "decorrelated-colour parameterisation; transforms sized for the model's input).")
    _common(p)
    p.add_argument("--objective", default="channel", help="channel (mean over positions, default) or neuron "
                                                          "(centre position)")
    p.add_argument("--steps", type=int, default=512, help="optimisation steps (default 512)")
    p.add_argument("--size", type=int, help="image size in px (default: the model's input size)")
    p.add_argument("--diversity", type=int, default=1, metavar="K",
                   help="K different images per unit (Lucent's diversity term; default 1)")
    p.add_argument("--negative", action="store_true", help="also render images that minimise each unit")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05, Lucent's)")
    p.add_argument("--batch-size", type=int, help="images per chunk (default: sized to 1 GiB of activations)")
    add_no_progress(p)
    add_seed(p)
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("examples", parents=[common], help="top and bottom dataset examples of every unit",
                       formatter_class=fmt, epilog=EXAMPLES_EPILOG,
                       description="Find the test images that activate each unit of a layer most and least, in "
                                   "one pass, with the receptive-field crop for conv units.")
    _common(p)
    p.add_argument("-k", type=int, default=9, help="examples per unit and direction (default 9)")
    p.add_argument("--dataset", help="images to scan instead of the run's test split (a folder with test/)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    add_no_progress(p)
    p.set_defaults(func=cmd_examples)

    p = sub.add_parser("weights", parents=[common], help="weight views: filters, strongest inputs as heatmaps",
                       formatter_class=fmt, epilog=WEIGHTS_EPILOG,
                       description="Draw a layer's weights: the first conv layer's filters as RGB images; for "
                                   "deeper units their strongest inputs' kernels (red excitatory, blue inhibitory).")
    _common(p)
    p.add_argument("--top", type=int, default=8, help="inputs shown per unit, by kernel L2 norm (default 8)")
    p.set_defaults(func=cmd_weights)


def _load(args):
    return load_run_announced(args, weights=args.weights, download=args.download)


def _out(args, run, kind: str) -> Path:
    return Path(args.out) if args.out else run.report_dir() / kind / args.layer


def cmd_visualize(args) -> int:
    from ..analysis.featvis import save_featvis, visualize

    run = _load(args)
    result = visualize(run, args.layer, args.units, objective=args.objective, steps=args.steps, size=args.size,
                       diversity=args.diversity, negative=args.negative, seed=args.seed, lr=args.lr,
                       batch_size=args.batch_size, progress=not args.no_progress)
    path = save_featvis(result, _out(args, run, "featvis"))
    rows = []
    for i, u in enumerate(result.units):
        row = {"unit": f"{args.layer}:{u}", "start": float(result.initial_values[i].mean()),
               "final": float(result.values[i].mean())}
        if result.negative_values is not None:
            row["negative"] = float(result.negative_values[i].mean())
        rows.append(row)
    columns = [("unit", "unit"), ("start", "start"), ("final", "final")]
    if result.negative_values is not None:
        columns.append(("negative", "negative"))
    shown = rows if len(rows) <= 40 else rows[:40]
    print(table(shown, columns, {k: "{:.3f}".format for k in ("start", "final", "negative")}))
    if len(rows) > len(shown):
        print(f"... {len(rows) - len(shown)} more in {path / 'index.json'}")
    k = result.images.shape[1]
    s = result.settings
    print(f"\nRendered {len(result.units)} units of {args.layer} ({k} image{'s' if k > 1 else ''} each, {s['steps']} "
          f"steps, {s['size']} px) in {result.info['seconds']:.1f}s on {result.info['device']} -> {path}/")
    return 0


def cmd_examples(args) -> int:
    from ..analysis.examples import dataset_examples, save_examples

    run = _load(args)
    ex = dataset_examples(run, args.layer, args.units, k=args.k, data=args.dataset, batch_size=args.batch_size,
                          progress=not args.no_progress)
    path = save_examples(ex, _out(args, run, "examples"))
    rows = [{"unit": f"{args.layer}:{u}", "top": float(ex.top_values[i, 0]), "top_image": int(ex.top_indices[i, 0]),
             "bottom": float(ex.bottom_values[i, 0]), "bottom_image": int(ex.bottom_indices[i, 0])}
            for i, u in enumerate(ex.units)]
    print(table(rows[:40], [("unit", "unit"), ("top", "max act"), ("top_image", "image"), ("bottom", "min act"),
                            ("bottom_image", "image")], {"top": "{:.3f}".format, "bottom": "{:.3f}".format}))
    rf = ex.receptive_field
    where = f"receptive field {rf['size'][0]}x{rf['size'][1]} px" if rf else "whole images"
    print(f"\nTop/bottom {ex.k} of {ex.n_images} images ({ex.dataset}) for {len(ex.units)} units, {where} "
          f"-> {path}/", file=sys.stdout)
    return 0


def cmd_weights(args) -> int:
    from ..analysis.weights import layer_weights, save_weights

    run = _load(args)
    views = layer_weights(run, args.layer, args.units, top=args.top)
    path = save_weights(views, _out(args, run, "weights"))
    if views.filters is not None:
        print(f"{args.layer} is the first conv layer: {len(views.units)} filters drawn as RGB images "
              f"(grey = 0, full colour = |w| {views.filter_scale:.3f})")
    rows = [{"unit": f"{args.layer}:{w.unit}",
             "inputs": ", ".join(f"{w.input_layer or 'in'}:{i} ({n:.2f})" for i, n in zip(w.inputs[:4], w.norms.tolist()))}
            for w in views.unit_weights]
    print(table(rows[:40], [("unit", "unit"), ("inputs", "strongest inputs (kernel L2 norm)")]))
    print(f"\nWeight views of {len(views.units)} units of {args.layer} -> {path}/")
    return 0
