"""Feature commands: visualize (Microscope-style unit images), examples (dataset examples), weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..terminal import table
from .common import (add_device, add_json, add_no_progress, add_run, add_seed, float_in, int_in, load_run_announced,
                     print_json)

DEFAULT_STEPS = 512
"""= interp.analysis.vision.featvis.DEFAULT_STEPS (not imported: registering commands must not load torch; a test checks)."""

NATURAL_SAMPLE = 2000
"""Test images scanned for the best natural image in ``interp visualize``'s table."""

VISUALIZE_EPILOG = """\
examples:
  interp visualize --layer conv2                     # every unit of conv2 of the latest run
  interp visualize --layer conv2 --units 0,3,5-9 --negative --diversity 4
  interp visualize --layer fc1 --steps 1024 --seed 1
  interp visualize --layer conv2 --objective neuron  # the centre position only
  interp visualize --run inceptionv1 --weights inception5h.pth --layer mixed4a --units 0-15
  interp visualize --layer conv2 --units 0-3 --json  # values, quality and the folder as JSON

Writes reports/RUN/featvis/LAYER/: unit_0005.png (+ _div1, _neg), grid.png, index.json.
All units are optimised together in one batch (memory-bounded chunks for wide layers);
the same --seed gives the same images.

The table: the objective at the start and reached (on the image without transforms), the
best natural test image's value of the same objective (max over a seeded stratified sample
of --natural N test images, when the run's data is at hand), reached / natural, the
specificity rank (1 = on its own image the unit is the layer's most active) and a flag
when the optimisation failed (the objective did not rise, or the image is flat).
"""

EXAMPLES_EPILOG = """\
examples:
  interp examples --layer conv2                # top and bottom 9 test images of every conv2 unit
  interp examples --layer fc1 --units 0-9 -k 16
  interp examples --run inceptionv1 --weights inception5h.pth --layer mixed3b --dataset ~/imagenet-val
  interp examples --layer conv2 -k 4 --json    # indices, activations and boxes as JSON

Writes reports/RUN/examples/LAYER/: unit_0005_top.png, unit_0005_bottom.png (receptive-field
crops for conv units), index.json, examples.safetensors.
"""

WEIGHTS_EPILOG = """\
examples:
  interp weights --layer conv1                 # first layer: filters as RGB images
  interp weights --layer conv2 --top 6         # each unit's strongest conv1 inputs, as heatmaps
  interp weights --layer fc1 --units 0-9       # fc weights folded back onto conv2's 5x5 grid
  interp weights --layer conv2 --json          # each unit's strongest inputs as JSON

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
    add_json(p)


def register(sub, common) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("visualize", parents=[common], help="feature visualisation of every unit of a layer",
                       formatter_class=fmt, epilog=VISUALIZE_EPILOG,
                       description="Render an image that maximally activates each unit of a layer (Lucent's FFT, "
                                   "decorrelated-colour parameterisation; transforms sized for the model's input).")
    _common(p)
    p.add_argument("--objective", default="channel", help="channel (mean over positions, default) or neuron "
                                                          "(centre position)")
    p.add_argument("--steps", type=int_in(1, 100_000), default=DEFAULT_STEPS, help=f"optimisation steps (default {DEFAULT_STEPS})")
    p.add_argument("--size", type=int_in(8, 2048), help="image size in px (default: the model's input size)")
    p.add_argument("--diversity", type=int_in(1, 64), default=1, metavar="K",
                   help="K different images per unit (Lucent's diversity term; default 1)")
    p.add_argument("--negative", action="store_true", help="also render images that minimise each unit")
    p.add_argument("--lr", type=float_in(0, 100, above=True), default=0.05, help="Adam learning rate (default 0.05, Lucent's)")
    p.add_argument("--batch-size", type=int_in(1, 65_536), help="images per chunk (default: sized to 1 GiB of activations)")
    p.add_argument("--natural", type=int_in(0, 1_000_000), default=NATURAL_SAMPLE, metavar="N",
                   help=f"compare with the best of N test images (seeded, stratified; default {NATURAL_SAMPLE}; "
                        f"0 skips; only when the run's data is at hand: generated, or CIFAR-10 downloaded)")
    add_no_progress(p)
    add_seed(p)
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("examples", parents=[common], help="top and bottom dataset examples of every unit",
                       formatter_class=fmt, epilog=EXAMPLES_EPILOG,
                       description="Find the test images that activate each unit of a layer most and least, in "
                                   "one pass, with the receptive-field crop for conv units.")
    _common(p)
    p.add_argument("-k", type=int_in(1, 1000), default=9, help="examples per unit and direction (default 9)")
    p.add_argument("--dataset", help="images to scan instead of the run's test split (a folder with test/)")
    p.add_argument("--batch-size", type=int_in(1, 65_536), default=256, help="images per forward pass (default 256)")
    add_no_progress(p)
    p.set_defaults(func=cmd_examples)

    p = sub.add_parser("weights", parents=[common], help="weight views: filters, strongest inputs as heatmaps",
                       formatter_class=fmt, epilog=WEIGHTS_EPILOG,
                       description="Draw a layer's weights: the first conv layer's filters as RGB images; for "
                                   "deeper units their strongest inputs' kernels (red excitatory, blue inhibitory).")
    _common(p)
    p.add_argument("--top", type=int_in(1, 10_000), default=8, help="inputs shown per unit, by kernel L2 norm (default 8)")
    p.set_defaults(func=cmd_weights)


def _load(args, kind: str):
    """The run, once ``--out`` (or, without it, the run's report folder) is known to be usable:
    nothing a user owns is replaced, and a folder that cannot be written fails before the work."""
    from ..outputs import check_output_folder, check_writable

    if args.out:
        check_output_folder(args.out, kind)
    run = load_run_announced(args, weights=args.weights, download=args.download)
    if not args.out:
        check_writable(run.report_dir())
    return run


def _out(args, run, kind: str, result) -> Path:
    """Where to save: ``--out``, else ``reports/RUN/KIND/LAYER`` (``LAYER-units-RANGES`` for some
    of the units, so the whole-layer folder the report reads only ever holds whole layers); in
    both, a result of other settings already there stays and the new one goes beside it
    (``LAYER-HASH``)."""
    from ..analysis.vision.featvis import unit_ranges
    from ..outputs import result_folder

    units = list(result.units)
    if args.out:
        folder = Path(args.out)
    elif len(units) < run.layer(args.layer).units:
        folder = run.report_dir() / kind / f"{args.layer}-units-{unit_ranges(units).replace(',', '_')}"
    else:
        folder = run.report_dir() / kind / args.layer
    return result_folder(folder, args.layer, result.settings, units)


def featvis_folder(run, layer: str, settings: dict, units: list[int] | None) -> Path:
    """Where ``interp visualize`` saves: ``featvis/LAYER`` for the whole layer with the default settings
    (what the report reuses), ``featvis/LAYER-<settings>[-units-<ranges>]`` for anything else, so a
    rendering with other settings or of some units never replaces another one."""
    from ..analysis.vision.featvis import DEFAULT_STEPS, unit_ranges
    from ..results.vision import settings_key

    default = {"objective": "channel", "steps": DEFAULT_STEPS, "diversity": 1, "seed": 0, "negative": False}
    key = settings_key(settings)
    if units is None and key == settings_key(default):
        return run.report_dir() / "featvis" / layer
    suffix = f"-units-{unit_ranges(units).replace(',', '_')}" if units is not None else ""
    return run.report_dir() / "featvis" / f"{layer}-{key}{suffix}"


def _cheap_data(run, n: int):
    """The run's test split when it is at hand without a download or a folder scan, else
    ``(None, why)``."""
    if n <= 0:
        return None, "skipped (--natural 0)"
    config = getattr(run, "config", None)
    if config is None or getattr(config, "task", "") != "image-classification" or not hasattr(run, "load_data"):
        return None, "no dataset for this model"
    if getattr(config, "family", "") == "inception":
        return None, "InceptionV1 comes without a dataset"
    name = config.data.name
    if name == "cifar10":
        from ..data.cifar10 import ARCHIVE_NAME
        from ..data.paths import data_dir

        if not (data_dir() / "cifar10" / ARCHIVE_NAME).is_file():
            return None, "CIFAR-10 is not downloaded (interp examples fetches it)"
    elif name.split(":", 1)[0] not in ("shapes", "shapes-watermark"):
        return None, f"the dataset {name} is a folder (not scanned here; the report scans it)"
    return run.load_data(progress=False, split="test"), ""


def cmd_visualize(args) -> int:
    from ..analysis.vision.featvis import visualize
    from ..analysis.vision.natural import natural_max
    from ..analysis.vision.quality import specific_share
    from ..results.vision import save_featvis

    run = _load(args, "featvis")
    result = visualize(run, args.layer, args.units, objective=args.objective, steps=args.steps, size=args.size,
                       diversity=args.diversity, negative=args.negative, seed=args.seed, lr=args.lr,
                       batch_size=args.batch_size, progress=not args.no_progress)
    natural_note = ""
    if result.quality is not None and args.objective in ("channel", "neuron") and result.settings["size"] == \
            (getattr(run, "input_shape", None) or (0,))[-1]:
        data, natural_note = _cheap_data(run, args.natural)
        if data is not None:
            result.attach_natural(natural_max(run, args.layer, result.units, objective=args.objective, data=data,
                                              sample=args.natural, seed=args.seed))
    elif result.quality is not None:
        natural_note = "not compared (a custom size or objective)"
    if args.out:  # units rendered earlier with the same settings stay: save_featvis merges them
        from ..outputs import result_folder

        out = result_folder(args.out, args.layer, result.settings)
    else:
        out = featvis_folder(run, args.layer, result.settings, None if args.units is None else list(result.units))
    path = save_featvis(result, out)
    if args.json:
        print_json(result, path=path)
        return 0
    quality = result.quality or []
    has_natural = any(q.natural is not None for q in quality)
    rows = []
    for i, u in enumerate(result.units):
        row = {"unit": f"{args.layer}:{u}", "start": float(result.initial_values[i].mean()),
               "final": float(result.values[i].mean())}
        if result.negative_values is not None:
            row["negative"] = float(result.negative_values[i].mean())
        if quality:
            q = quality[i]
            row.update({"reached": q.reached, "natural": q.natural, "ratio": q.ratio,
                        "rank": "-" if q.rank is None else str(q.rank),
                        "failed": "FAILED: " + ", ".join(q.failures) if q.failed else "no"})
        rows.append(row)
    k = result.images.shape[1]
    columns = [("unit", "unit"), ("start", "start")]
    columns.append(("final", "final (mean of images)" if k > 1 else "reached"))
    if result.negative_values is not None:
        columns.append(("negative", "negative"))
    if quality:
        if k > 1:
            columns.append(("reached", "reached (image 0)"))
        if has_natural:
            columns += [("natural", "natural max"), ("ratio", "reached/natural")]
        columns += [("rank", "specificity rank"), ("failed", "failed")]
    shown = rows if len(rows) <= 40 else rows[:40]

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"
    print(table(shown, columns, {k_: fmt for k_ in ("start", "final", "negative", "reached", "natural", "ratio")}))
    if len(rows) > len(shown):
        print(f"... {len(rows) - len(shown)} more in {path / 'index.json'}")
    s = result.settings
    print(f"\nRendered {len(result.units)} units of {args.layer} ({k} image{'s' if k > 1 else ''} each, {s['steps']} "
          f"steps, {s['size']} px) in {result.info['seconds']:.1f}s on {result.info['device']} -> {path}/")
    if quality:
        specific, ranked = specific_share(quality)
        if ranked:
            print(f"Specificity: {specific} of {ranked} units rank first among the {args.layer} units on their own "
                  f"image.")
        failed = [q for q in quality if q.failed]
        if failed:
            print(f"Optimisation failed for {len(failed)} unit{'s' if len(failed) > 1 else ''}: "
                  + "; ".join(f"{args.layer}:{q.unit} ({q.failure_text().split(': ', 1)[1]})" for q in failed))
        if has_natural:
            src = result.natural_source or {}
            print(f"Natural max: the best of {src.get('n_images')} test images of {src.get('dataset')} "
                  f"(seed {args.seed}, stratified), same objective.")
        elif natural_note:
            print(f"Natural max omitted: {natural_note}.")
    return 0


def cmd_examples(args) -> int:
    from ..analysis.vision.examples import dataset_examples
    from ..results.vision import save_examples

    run = _load(args, "examples")
    ex = dataset_examples(run, args.layer, args.units, k=args.k, data=args.dataset, batch_size=args.batch_size,
                          progress=not args.no_progress)
    path = save_examples(ex, _out(args, run, "examples", ex))
    if args.json:
        print_json(ex, path=path)
        return 0
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
    from ..analysis.vision.weights import layer_weights
    from ..results.vision import save_weight_views

    run = _load(args, "weights")
    views = layer_weights(run, args.layer, args.units, top=args.top)
    path = save_weight_views(views, _out(args, run, "weights", views))
    if args.json:
        print_json(views, path=path)
        return 0
    if views.filters is not None:
        print(f"{args.layer} is the first conv layer: {len(views.units)} filters drawn as RGB images "
              f"(grey = 0, full colour = |w| {views.filter_scale:.3f})")
    rows = [{"unit": f"{args.layer}:{w.unit}",
             "inputs": ", ".join(f"{w.input_layer or 'in'}:{i} ({n:.2f})" for i, n in zip(w.inputs[:4], w.norms.tolist()))}
            for w in views.unit_weights]
    print(table(rows[:40], [("unit", "unit"), ("inputs", "strongest inputs (kernel L2 norm)")]))
    print(f"\nWeight views of {len(views.units)} units of {args.layer} -> {path}/")
    return 0
