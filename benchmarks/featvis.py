"""Benchmark P3: feature visualisation of a whole layer, interp vs a Lucent loop vs the compute floor.

The tutorial net's conv2, all 16 units, the same steps, image size (32 px) and
transforms (Lucid's chain shrunk for 32 px: pad 1, jitter, zoom, rotation) in each:

  (a) a loop of ``lucent.optvis.render.render_vis``, one call per unit, as a Lucent user
      writes it (``param.image(32)``, the run's normalisation as a transform, one model);
  (b) ``interp.visualize(model, "conv2")``: all units in one batch;
  (c) the raw compute floor: N forward+backward passes of one 16-image batch through the
      model (input gradients only, parameters frozen), without Lucent's machinery.

    python benchmarks/featvis.py              # 512 steps
    python benchmarks/featvis.py --quick      # 32 steps (a smoke test)
    python benchmarks/featvis.py --run tutorial --threads 2 --json out.json

Goals: (b) at least 50x faster than (a), and at most 1.5x (c). Timings do not depend on
the weights, so without --run a freshly initialised tutorial net is used. Prints the
three times, the ratios, and a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time


def lucent_transforms(size: int, normalize):
    """Lucent's own transform functions with the sizes interp uses for ``size`` px."""
    from lucent.optvis import transform

    from interp.analysis.vision.transforms import Transforms

    t = Transforms.for_size(size)
    d = 2 * t.jitter + 1  # Lucent's jitter(d) shifts by 0..d-1 px: the same number of shifts as ours
    scales = [1 + t.scale * (i - 3) / 3 for i in range(7)]
    angles = [t.rotate * (i - 3) / 3 for i in range(7)]
    return [transform.pad(t.jitter, mode="constant", constant_value=0.5), transform.jitter(d),
            transform.random_scale(scales), transform.random_rotate(angles), normalize]


def time_lucent(model, normalize, units, steps: int, size: int) -> tuple[float, int]:
    """(a): one render_vis call per unit; returns seconds and the hooks Lucent left behind."""
    from lucent.optvis import param, render

    from interp.hooks import hook_count

    model = copy.deepcopy(model)  # Lucent's leaked hooks must not slow (b) and (c)
    transforms = lucent_transforms(size, normalize)
    start = time.perf_counter()
    for unit in units:
        render.render_vis(model, f"conv2:{unit}", lambda: param.image(size), transforms=transforms,
                          thresholds=(steps,), show_image=False, progress=False, preprocess=False,
                          fixed_image_size=size)
    return time.perf_counter() - start, hook_count(model)


def time_interp(subject, units, steps: int, size: int) -> float:
    """(b): interp.visualize, all units in one batch, everything included (setup, final values)."""
    from interp.analysis.vision.featvis import visualize

    start = time.perf_counter()
    visualize(subject, "conv2", units, steps=steps, size=size)
    return time.perf_counter() - start


def time_floor(model, normalize, units, steps: int, size: int) -> float:
    """(c): forward + backward of one batch, nothing else."""
    import torch

    from interp.hooks import capture

    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(len(units), 3, size, size, requires_grad=True)
    index = torch.arange(len(units))
    unit_index = torch.tensor(units)
    start = time.perf_counter()
    with capture(model, ["conv2"], detach=False) as acts:
        for _ in range(steps):
            model(normalize(x))
            loss = acts["conv2"][index, unit_index].mean((1, 2)).sum()
            x.grad = None
            loss.backward()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a tutorial-net run (default: a freshly initialised tutorial net)")
    parser.add_argument("--steps", type=int, help="optimisation steps (default 512; 32 with --quick)")
    parser.add_argument("--quick", action="store_true", help="32 steps: a smoke test")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="time (b) and (c) this many times, keep the best")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on

    import torch

    from interp.subject import as_subject
    from interp.zoo import create_model

    torch.set_num_threads(args.threads)
    steps = args.steps or (32 if args.quick else 512)
    if args.run:
        from interp.runs import load_run

        run = load_run(args.run, device="cpu")
        model, normalize, subject = run.model, run.normalize, as_subject(run)
    else:
        torch.manual_seed(0)
        model = create_model("tutorial").eval()
        mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
        m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

        def normalize(x):
            return (x - m) / s
        subject = as_subject(model, normalize)
        subject.input_size, subject.mean, subject.std, subject.name = 32, mean, std, "tutorial"
    units, size = list(range(16)), 32

    # warm-up: first calls pay for imports and allocator growth
    time_interp(subject, units, 4, size)
    time_floor(model, normalize, units, 4, size)
    print(f"P3: tutorial conv2, {len(units)} units, {steps} steps, {size} px, {args.threads} threads", file=sys.stderr)
    floor = min(time_floor(model, normalize, units, steps, size) for _ in range(args.repeats))
    print(f"(c) fwd+bwd floor          : {floor:8.2f} s", flush=True)
    ours = min(time_interp(subject, units, steps, size) for _ in range(args.repeats))
    print(f"(b) interp.visualize       : {ours:8.2f} s", flush=True)
    lucent, leaked = time_lucent(model, normalize, units, steps, size)
    print(f"(a) Lucent render_vis loop : {lucent:8.2f} s   ({leaked} hooks left on the model)")
    print(f"(a)/(b) = {lucent / ours:6.1f}x faster than Lucent   (goal >= 50x)")
    print(f"(b)/(c) = {ours / floor:6.2f}x the compute floor     (goal <= 1.5x)")
    print()
    print("| steps | (a) Lucent loop | (b) interp | (c) floor | (a)/(b) | (b)/(c) |")
    print("|---|---|---|---|---|---|")
    print(f"| {steps} | {lucent:.2f} s | {ours:.2f} s | {floor:.2f} s | {lucent / ours:.1f}x | {ours / floor:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steps": steps, "units": len(units), "size": size, "threads": args.threads,
                       "lucent_s": lucent, "interp_s": ours, "floor_s": floor, "lucent_hooks_left": leaked,
                       "speedup_vs_lucent": lucent / ours, "ratio_to_floor": ours / floor,
                       "torch": torch.__version__, "python": platform.python_version()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
