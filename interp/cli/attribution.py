"""Attribution commands: ``interp attribute pixels|units|trust|gallery|tokens``.

``interp attribute`` without a verb means ``pixels``, and the first spellings
(``attribute-units``, ``attribute-trust``, ...) stay as aliases: see :data:`ALIASES`.
"""

from __future__ import annotations

import argparse

from ..terminal import table
from .common import (
    SEED, add_device, add_json, add_no_progress, add_run, escaped_text, float_in, int_in, load_run_announced, print_json,
)

METHOD_HELP = "saliency, ig, smoothgrad, gradcam, occlusion, guided-backprop, deeplift, or all (default all)"


VERBS = ("pixels", "units", "trust", "gallery", "tokens")

ALIASES = {f"attribute-{verb}": ("attribute", verb) for verb in VERBS}
"""The first spellings, still accepted (scripts and notes use them): ``attribute-units`` is
``attribute units``."""

DEFAULT_VERBS = {"attribute": "pixels"}
"""``interp attribute --index 0`` (no verb) is ``interp attribute pixels --index 0``."""


def register(sub, common) -> None:
    noun = sub.add_parser(
        "attribute", parents=[common], help="attribution: pixels, units, trust, gallery, tokens",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Attribute a model's decisions with Captum: to input pixels, to the units of a layer,\n"
                    "or to prompt tokens; check how far the maps can be trusted. Without a verb,\n"
                    "`interp attribute ...` is `interp attribute pixels ...`.",
        epilog="examples:\n"
               "  interp attribute pixels --index 0            # test image 0, its predicted class\n"
               "  interp attribute units --layer conv2 --class circle\n"
               "  interp attribute trust --sample 16\n"
               "  interp attribute gallery --per-class 2\n"
               "  interp attribute tokens --run gpt --prompt 'ROMEO:\\nWhat say'\n"
               "\nthe first spellings still work: attribute-units, attribute-trust, attribute-gallery,\n"
               "attribute-tokens")
    sub = noun.add_subparsers(dest="verb", metavar="VERB")
    p = sub.add_parser(
        "pixels", parents=[common], help="which pixels did the model use for one prediction",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Attribute one prediction to the input pixels with Captum's methods and save a figure\n"
                    "(input, top-5 prediction, one map per method) plus the data (npz + JSON) under\n"
                    "reports/RUN/attribution/. Integrated Gradients also reports completeness: the sum of\n"
                    "its attributions against f(input) - f(baseline).",
        epilog="examples:\n"
               "  interp attribute pixels --index 0                       # test image 0, its predicted class\n"
               "  interp attribute pixels --index 12 --target circle --methods ig,gradcam,occlusion\n"
               "  interp attribute pixels --run tutorial --image cat.png --target cat\n"
               "  interp attribute pixels --index 3,4,5 --steps 100 --baseline mean\n"
               "  interp attribute pixels --index 0 --methods ig --json     # the summary as JSON, with the saved path\n"
               "\nbaselines (ig, deeplift, occlusion) live in the model's normalised input space:\n"
               "  black = a black image, mean = the dataset mean colour, blur = the image blurred")
    add_run(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", metavar="PATH", help="an image file (resized to the model's input, with a notice)")
    source.add_argument("--index", metavar="N", help="dataset image index, or several: 3,4,5")
    p.add_argument("--split", default="test", help="split for --index: test (default) or train")
    p.add_argument("--target", metavar="CLASS", help="class name or index to explain (default: the prediction)")
    p.add_argument("--methods", default="all", metavar="LIST", help=METHOD_HELP)
    _add_attribution_options(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/RUN/attribution)")
    p.add_argument("--name", help="file name stem (default from the image: test-12, cat, ...)")
    add_no_progress(p)
    add_device(p)
    add_json(p)
    p.set_defaults(func=cmd_attribute)

    p = sub.add_parser(
        "units", parents=[common], help="which units of a layer contribute to a class",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Attribute a class to the units of one layer (LayerIntegratedGradients by default,\n"
                    "summed over space). With --index or --image: for that input. With --class: over that\n"
                    "class's test images. With neither: the per-class summary over the test set (top\n"
                    "units for every class, top classes for every unit), saved for the report.",
        epilog="examples:\n"
               "  interp attribute units --layer conv2                  # every class: which conv2 units make it\n"
               "  interp attribute units --layer conv2 --class circle --top 5\n"
               "  interp attribute units --layer conv2 --index 7 --method conductance\n"
               "  interp attribute units --layer fc1 --image cat.png --target cat\n"
               "  interp attribute units --layer conv2 --class circle --json")
    add_run(p)
    p.add_argument("--layer", required=True, help="layer whose units are ranked (e.g. conv2, fc1)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--image", metavar="PATH", help="an image file")
    source.add_argument("--index", metavar="N", help="dataset image index, or several: 3,4,5")
    source.add_argument("--class", dest="class_", metavar="CLASS", help="a class: average over its test images")
    p.add_argument("--split", default="test", help="split for --index: test (default) or train")
    p.add_argument("--target", metavar="CLASS", help="with --index/--image: the class to explain (default: prediction)")
    p.add_argument("--method", default="ig", help="ig (LayerIntegratedGradients, default), conductance "
                                                  "(LayerConductance) or grad-x-act (LayerGradientXActivation)")
    p.add_argument("--top", type=int_in(1, 10_000), default=10, help="units to list (default 10)")
    p.add_argument("--per-class", type=int_in(1, 10_000), default=50, help="test images per class (default 50)")
    p.add_argument("--correct-only", action="store_true", help="use only correctly classified test images")
    p.add_argument("--steps", type=int_in(1, 10_000), default=32, help="integration steps (default 32)")
    p.add_argument("--baseline", default="black", help="black (default), mean or blur")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/RUN/attribution)")
    add_no_progress(p)
    add_device(p)
    add_json(p)
    p.set_defaults(func=cmd_attribute_units)

    p = sub.add_parser(
        "trust", parents=[common], help="how far can the attribution maps be trusted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Three checks on a random sample of test images: IG completeness; deletion and\n"
                    "insertion curves per method with their area (Petsiuk et al.); and the model-\n"
                    "randomisation sanity check (Adebayo et al.): the Spearman rank correlation between\n"
                    "maps of the trained model and of a weight-randomised copy (low is good).",
        epilog="examples:\n"
               "  interp attribute trust                      # 16 test images, every method\n"
               "  interp attribute trust --sample 64 --methods ig,gradcam,guided-backprop\n"
               "  interp attribute trust --sample 8 --json        # the table and curves as JSON")
    add_run(p)
    p.add_argument("--sample", type=int_in(1, 10_000), default=16, help="test images in the sample (default 16)")
    p.add_argument("--methods", default="all", metavar="LIST", help=METHOD_HELP)
    p.add_argument("--curve-steps", type=int_in(2, 1024), default=32, help="points on each deletion/insertion curve (default 32)")
    _add_attribution_options(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/RUN/attribution)")
    add_no_progress(p)
    add_device(p)
    add_json(p)
    p.set_defaults(func=cmd_attribute_trust)

    p = sub.add_parser(
        "gallery", parents=[common], help="maps of a few test images per class, for the report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Attribute a seeded random choice of test images of every class (target: the\n"
                    "prediction) with every method; saves one figure per class and the data under\n"
                    "reports/RUN/attribution/gallery/.",
        epilog="examples:\n"
               "  interp attribute gallery\n"
               "  interp attribute gallery --per-class 4 --methods ig,gradcam\n"
               "  interp attribute gallery --per-class 1 --methods saliency --json")
    add_run(p)
    p.add_argument("--per-class", type=int_in(1, 1000), default=2, help="test images per class (default 2)")
    p.add_argument("--methods", default="all", metavar="LIST", help=METHOD_HELP)
    _add_attribution_options(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/RUN/attribution/gallery)")
    add_no_progress(p)
    add_device(p)
    add_json(p)
    p.set_defaults(func=cmd_attribute_gallery)

    p = sub.add_parser(
        "tokens", parents=[common], help="which prompt tokens made a language model predict the next one",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Attribute a gpt / attn-only run's next-token prediction to the prompt's tokens with\n"
                    "LayerIntegratedGradients on the token embedding; prints the tokens with their scores\n"
                    "and saves coloured tokens (PNG, HTML snippet) and JSON under reports/RUN/attribution/.",
        epilog="examples:\n"
               "  interp attribute tokens --run gpt --prompt 'ROMEO:\\nWhat say'\n"
               "  interp attribute tokens --run gpt --prompt 'To be or not to b' --target e\n"
               "  interp attribute tokens --run attn-only --prompt '<bos> 5 9 13 5 9' --position -1\n"
               "  interp attribute tokens --run gpt --prompt 'To be or not to b' --json")
    add_run(p)
    p.add_argument("--prompt", type=escaped_text,
                   help="the prompt; \\n and \\t stand for a newline and a tab (token-task runs: "
                                    "token names separated by spaces; default for them: a random induction sequence)")
    p.add_argument("--target", metavar="TOKEN", help="the next token to explain (default: the most likely)")
    p.add_argument("--position", type=int, default=-1, help="which position's prediction (default -1: the last)")
    p.add_argument("--steps", type=int_in(1, 10_000), default=50, help="integration steps (default 50)")
    p.add_argument("--baseline-token", metavar="TOKEN",
                   help="token that replaces every prompt token in the baseline (default: space, else token 0)")
    p.add_argument("--seed", type=SEED, default=0, help="seed for the default induction prompt (default 0)")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/RUN/attribution)")
    p.add_argument("--name", help="file name stem (default from the prompt)")
    add_device(p)
    add_json(p)
    p.set_defaults(func=cmd_attribute_tokens)


def _add_attribution_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method settings")
    g.add_argument("--steps", type=int_in(1, 10_000), default=50, help="Integrated Gradients steps (default 50)")
    g.add_argument("--baseline", default="black", help="black (default), mean or blur: ig/deeplift/occlusion reference")
    g.add_argument("--samples", type=int_in(1, 1024), default=16, help="SmoothGrad noisy samples (default 16)")
    g.add_argument("--noise", type=float_in(0, 10), default=0.15, help="SmoothGrad noise, fraction of the value range (0.15)")
    g.add_argument("--window", type=int_in(0, 4096), default=0, help="occlusion window in px (default: input size / 8)")
    g.add_argument("--gradcam-layer", default="", help="Grad-CAM layer (default: the last conv layer)")
    g.add_argument("--seed", type=SEED, default=0, help="seed for SmoothGrad noise and sampling (default 0)")


def _options(args) -> dict:
    return {"steps": args.steps, "baseline": args.baseline, "samples": args.samples, "noise": args.noise,
            "window": args.window, "gradcam_layer": args.gradcam_layer, "seed": args.seed}


def _check_out(args) -> None:
    """``--out``, before any work: never a folder the user owns for something else (see interp.outputs)."""
    from ..outputs import check_output_folder

    if args.out:
        check_output_folder(args.out, "attribution")


def _parse_indices(text: str) -> list[int]:
    from ..errors import InterpError

    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise InterpError(f"--index {text!r}: expected an image index like 7, or several like 3,4,5") from None
    if not values:
        raise InterpError("--index needs at least one image index")
    for v in values:
        if v < 0:
            raise InterpError(f"index {v} is out of range: indices start at 0")
    return values


def _load_inputs(run, args, progress: bool):
    """(images, labels or None, sources) from --image or --index."""
    from ..analysis.attribution.inputs import load_dataset_images, read_image

    if args.image:
        return read_image(args.image, run.input_shape), None, [str(args.image)]
    indices = _parse_indices(args.index)
    if args.split not in ("test", "train"):
        from ..errors import unknown

        raise unknown("split", args.split, ["test", "train"])
    images, labels = load_dataset_images(run, indices, args.split, progress=progress)
    return images, labels, [f"{args.split}:{i}" for i in indices]


def _check_image_run(run, command: str) -> None:
    from ..errors import InterpError

    if run.config.task != "image-classification":
        hint = "; for language models use: interp attribute tokens" if run.config.task == "language-model" else ""
        raise InterpError(f"run {run.name} is a {run.config.task} run; interp {command} needs an image "
                          f"classifier{hint}")


def cmd_attribute(args) -> int:
    from ..analysis.attribution.attribute import attribute, resolve_class
    from ..analysis.attribution.methods import parse_methods
    from ..results.attribution import save_attribution

    progress = not args.no_progress and not args.json
    parse_methods(args.methods)  # a typo fails before the run and data load
    _check_out(args)
    run = load_run_announced(args)
    _check_image_run(run, "attribute pixels")
    if args.target is not None:
        resolve_class(args.target, run.classes)
    images, labels, sources = _load_inputs(run, args, progress)
    attr = attribute(run, images, args.target, args.methods, labels=labels, sources=sources, progress=progress,
                     **_options(args))
    paths = save_attribution(attr, args.out, args.name)
    if args.json:
        print_json(attr, saved=paths["json"], files={k: str(p) for k, p in paths.items()})
        return 0
    for row in attr.summary():
        label = f" (label {row['label']})" if "label" in row else ""
        print(f"{row['source']}{label}: explaining {row['target']} (p={row['target_prob']:.3f})")
        print("  top 5: " + ", ".join(f"{t['class']} {t['prob']:.3f}" for t in row["top5"]))
        if "ig_completeness" in row:
            c = row["ig_completeness"]
            print(f"  IG completeness: sum of attributions {c['attribution_sum']:.4f} vs f(x)-f(baseline) "
                  f"{c['output_difference']:.4f} (error {100 * c['relative_error']:.2f}%)")
    per_image = {m: s / len(attr) for m, s in attr.seconds.items()}
    print("seconds per image: " + ", ".join(f"{m} {s:.3f}" for m, s in per_image.items()))
    print(f"Saved: {paths['png']}  (+ {paths['npz'].name}, {paths['json'].name})")
    return 0


def cmd_attribute_units(args) -> int:
    from ..analysis.attribution.attribute import resolve_class
    from ..analysis.attribution.units import UNIT_METHODS, class_unit_attribution, class_unit_summary, unit_attribution
    from ..errors import InterpError, unknown
    from ..results.attribution import save_class_unit_summary, save_unit_attribution

    progress = not args.no_progress and not args.json
    if args.method not in UNIT_METHODS:
        raise unknown("unit attribution method", args.method, UNIT_METHODS)
    if args.top < 1 or args.per_class < 1:
        raise InterpError("--top and --per-class must be at least 1")
    _check_out(args)
    run = load_run_announced(args)
    _check_image_run(run, "attribute units")
    layer = run.layer(args.layer).name
    if args.target is not None:
        resolve_class(args.target, run.classes)
    if not (args.image or args.index or args.class_):
        summary = class_unit_summary(run, layer, per_class=args.per_class, method=args.method, steps=args.steps,
                                     baseline=args.baseline, correct_only=args.correct_only, progress=progress)
        paths = save_class_unit_summary(summary, args.out)
        if args.json:
            print_json(summary, saved=paths["json"])
            return 0
        rows = []
        for c in summary.classes:
            top = summary.top_units(c, min(args.top, 5))
            rows.append({"class": c, "n": summary.counts[summary.classes.index(c)],
                         "units": ", ".join(f"{u['index']} ({u['attribution']:+.2f})" for u in top)})
        print(f"Top {layer} units per class ({args.method}, mean over test images of the class):")
        print(table(rows, [("class", "class"), ("n", "images"), ("units", f"{layer} units (attribution)")]))
        print(f"Saved: {paths['png']}  (+ {paths['json'].name}: top units per class, top classes per unit)")
        return 0
    if args.class_:
        result = class_unit_attribution(run, args.class_, layer=layer, per_class=args.per_class, method=args.method,
                                        steps=args.steps, baseline=args.baseline, progress=progress)
        name = f"class-{run.classes[int(result.targets[0])]}"
    else:
        images, _, sources = _load_inputs(run, args, progress)
        result = unit_attribution(run, images, args.target, layer=layer, method=args.method, steps=args.steps,
                                  baseline=args.baseline, sources=sources, progress=progress)
        name = sources[0].replace(":", "-").rsplit("/", 1)[-1] if len(sources) == 1 else f"batch-{len(sources)}"
    paths = save_unit_attribution(result, args.out, name)
    if args.json:
        print_json(result, saved=paths["json"], top=result.ranking(args.top))
        return 0
    targets = sorted({run.classes[t] for t in result.targets.tolist()})
    print(f"{layer} units for {', '.join(targets)} ({args.method}, {len(result.scores)} image(s)):")
    rows = result.ranking(args.top)
    print(table(rows, [("unit", "unit"), ("attribution", "attribution")], {"attribution": lambda v: f"{v:+.4f}"}))
    if result.output_difference is not None:
        print(f"sum over all units {float(result.scores.sum(1).mean()):.4f} vs f(x)-f(baseline) "
              f"{float(result.output_difference.mean()):.4f} (mean over images)")
    print(f"Saved: {paths['png']}  (+ {paths['json'].name})")
    return 0


def cmd_attribute_trust(args) -> int:
    from ..analysis.attribution.methods import parse_methods
    from ..analysis.attribution.trust import trust_report
    from ..results.attribution import save_trust

    progress = not args.no_progress and not args.json
    parse_methods(args.methods)
    _check_out(args)
    run = load_run_announced(args)
    _check_image_run(run, "attribute trust")
    report = trust_report(run, args.sample, args.methods, seed=args.seed, curve_steps=args.curve_steps,
                          progress=progress, **{k: v for k, v in _options(args).items() if k != "seed"})
    paths = save_trust(report, args.out)
    if args.json:
        print_json(report, saved=paths["json"])
        return 0
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{len(report.sources)} test images. Deletion AUC: lower is better; insertion AUC: higher is better; "
          f"randomisation rho: lower is better.")
    print(table(report.table(), [("title", "method"), ("deletion_auc", "deletion AUC"),
                                 ("insertion_auc", "insertion AUC"), ("randomization_spearman", "randomisation rho")],
                {"deletion_auc": fmt, "insertion_auc": fmt, "randomization_spearman": fmt}))
    if report.completeness is not None:
        err = report.completeness.relative_error
        print(f"IG completeness error: median {100 * float(err.median()):.2f}%, max {100 * float(err.max()):.2f}% "
              f"({args.steps} steps)")
    print(f"Saved: {paths['curves_png']}, {paths['sanity_png'].name}  (+ {paths['json'].name})")
    return 0


def cmd_attribute_gallery(args) -> int:
    from ..analysis.attribution.gallery import attribution_gallery
    from ..analysis.attribution.methods import parse_methods
    from ..results.attribution import save_gallery

    progress = not args.no_progress and not args.json
    parse_methods(args.methods)
    _check_out(args)
    run = load_run_announced(args)
    _check_image_run(run, "attribute gallery")
    gallery = attribution_gallery(run, args.per_class, args.methods, progress=progress, **_options(args))
    paths = save_gallery(gallery, args.out)
    if args.json:
        print_json(gallery, saved=paths["json"], folder=paths["folder"])
        return 0
    for e in gallery.entries:
        print(f"  {e.class_name:<14} test {', '.join(map(str, e.indices))}: predicted "
              f"{', '.join(f'{p} ({q:.2f})' for p, q in zip(e.predictions, e.probs))}")
    print(f"Saved: {paths['folder']}/ ({len(gallery.entries)} figures + {paths['json'].name}, {paths['npz'].name})")
    return 0


def cmd_attribute_tokens(args) -> int:
    from ..analysis.language.tokens import prompt_tokens
    from ..analysis.attribution.tokens import attribute_tokens
    from ..errors import InterpError
    from ..results.attribution import save_token_attribution

    _check_out(args)
    run = load_run_announced(args)
    if run.config.task != "language-model":
        raise InterpError(f"run {run.name} is a {run.config.task} run; attribute tokens needs a gpt or attn-only "
                          f"run (for images: interp attribute pixels)")
    prompt = args.prompt  # escapes decoded by the option's type (cli.common.escaped_text)
    tokens = prompt_tokens(run, prompt, seed=args.seed)
    result = attribute_tokens(run, tokens, args.target, position=args.position, steps=args.steps,
                              baseline_token=args.baseline_token)
    result.prompt = prompt or ""
    paths = save_token_attribution(result, args.out, args.name)
    if args.json:
        print_json(result, saved=paths["json"])
        return 0
    print(f"Next token after position {result.position}: {result.target_label!r}  (top 5: "
          + ", ".join(f"{t!r} {p:.3f}" for t, p in result.top) + ")")
    width = max(len(label) for label in result.labels)
    for i, (label, score) in enumerate(zip(result.labels, result.scores.tolist())):
        bar = ("+" if score >= 0 else "-") * min(40, round(40 * abs(score) / (float(result.scores.abs().max()) or 1)))
        print(f"  {i:>3} {label:<{width}} {score:+.4f} {bar}")
    print(f"sum of scores {float(result.scores.sum()):.4f} vs logit change {result.output_difference:.4f} "
          f"(completeness error {100 * result.relative_error:.2f}%; baseline token {result.baseline_token!r})")
    print(f"Saved: {paths['png']}  (+ {paths['html'].name}, {paths['json'].name})")
    return 0
