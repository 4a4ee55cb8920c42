"""Benchmark: seconds per image for each attribution method on the tutorial net (CPU threads fixed).

Every method of ``interp attribute`` at its default settings (IG 50 steps, SmoothGrad 16
samples, occlusion 4 px window / 2 px stride on 32 px images) on the first N test images
of a tutorial-net run trained on shapes. Two figures per method: images attributed one
at a time (what ``interp attribute --index N`` does) and in batches of 16 (the gallery and
the trust checks).

    python benchmarks/attribution.py                  # 100 images; trains a run in a temp folder
    python benchmarks/attribution.py --run tutorial   # an existing run instead
    python benchmarks/attribution.py --quick          # 5 images, a smaller training run (smoke test)

Prints a Markdown table for benchmarks/RESULTS.md; ``--json PATH`` also saves the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path


def trained_run(args, root: Path):
    from interp.runs import load_run
    from interp.training.loop import train

    if args.run:
        return load_run(args.run, device="cpu")
    n_train, epochs = (2000, 1) if args.quick else (10000, 3)
    print(f"No --run given: training the tutorial net on {n_train} shapes images for {epochs} epochs "
          f"in {root} ...", file=sys.stderr)
    return train("tutorial", "shapes", name="bench-tutorial", root=root, epochs=epochs, device="cpu",
                 progress=False, log=None, overrides={"n_train": str(n_train), "n_test": "1000"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="run name or path (default: train one in a temporary folder)")
    parser.add_argument("--images", type=int, default=100, help="test images (default 100)")
    parser.add_argument("--quick", action="store_true", help="5 images and a smaller training run")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per call in the batched column")
    parser.add_argument("--methods", default="all", help="methods to time (default all)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on

    import torch

    from interp.analysis.attribution.attribute import attribute
    from interp.analysis.attribution.inputs import load_dataset_images
    from interp.analysis.attribution.methods import parse_methods

    torch.set_num_threads(args.threads)
    n = 5 if args.quick else args.images
    with tempfile.TemporaryDirectory(prefix="interp-bench-") as tmp:
        run = trained_run(args, Path(tmp))
        data = run.load_data(progress=False)
        images, labels = load_dataset_images(run, list(range(min(n, len(data.test_y)))), data=data)
        n = len(images)
        methods = parse_methods(args.methods)
        attribute(run, images[:2], None, methods)  # warm-up: imports, allocator, first autograd graphs
        rows = []
        for method in methods:
            t0 = time.perf_counter()
            for i in range(n):
                attribute(run, images[i:i + 1], None, [method])
            single = (time.perf_counter() - t0) / n
            t0 = time.perf_counter()
            attribute(run, images, None, [method], batch_size=args.batch_size)
            batched = (time.perf_counter() - t0) / n
            rows.append({"method": method, "single_s": single, "batched_s": batched})
            print(f"  {method:<16} {single:.4f} s/image one at a time, {batched:.4f} s/image batched",
                  file=sys.stderr)
        acc = (run.summary or {}).get("test_acc")

    print(f"\n### Attribution: seconds per image per method ({n} test images, tutorial net on shapes, "
          f"{args.threads} CPU threads)\n")
    print(f"Run: {run.name}" + (f" (test accuracy {acc:.1%})" if isinstance(acc, float) else "")
          + f"; torch {torch.__version__}; {platform.processor() or platform.machine()}. "
            "Defaults: IG 50 steps, SmoothGrad 16 samples, occlusion window 4 px stride 2, Grad-CAM on conv2.\n")
    print(f"| method | s/image, one at a time | s/image, batches of {args.batch_size} |")
    print("| --- | ---: | ---: |")
    for r in rows:
        print(f"| {r['method']} | {r['single_s']:.4f} | {r['batched_s']:.4f} |")
    total_single = sum(r["single_s"] for r in rows)
    total_batched = sum(r["batched_s"] for r in rows)
    print(f"| **all {len(rows)}** | **{total_single:.4f}** | **{total_batched:.4f}** |")
    if args.json:
        Path(args.json).write_text(json.dumps({"images": n, "threads": args.threads, "run": run.name,
                                               "test_acc": acc, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
