"""P6: how fast a 2-layer attention-only transformer forms an induction head.

Trains ``attn-only`` (2 layers, 4 heads, d_model 64, LayerNorm, context 64) on the
induction task (BOS + a random block of 8-24 tokens from a vocabulary of 128, repeated
to fill the context) through ``interp.train``, which records every head's scores after
each epoch of ``--steps-per-epoch`` steps. Reports the training seconds until the best
layer-1 induction score reaches 0.3 (goal: at most 60 s on 2 CPU cores), then trains the
1-layer control on the same data for the same steps (goal: its induction score stays
below 0.1). Scores are measured on the usual probe: BOS, a random block, the block again.

    python benchmarks/induction.py                # the benchmark (about a minute)
    python benchmarks/induction.py --quick        # smoke run, a few seconds
    python benchmarks/induction.py --seeds 0,1,2  # the spread over seeds

``--json PATH`` writes the figures with the per-epoch trace; ``--plot DIR`` the training
dynamics plot of each 2-layer run (the induction phase change).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

THRESHOLD = 0.3
SETTINGS = {"n_embd": "64", "n_head": "4", "block_size": "64", "layer_norm": "true", "batch_size": "32",
            "lr": "3e-3", "grad_clip": "1.0"}


def run_once(n_layer: int, seed: int, epochs: int, steps: int, root: Path, device: str) -> dict:
    from interp.training.loop import train

    t0 = time.perf_counter()
    run = train("attn-only", "induction", name=f"p6-L{n_layer}-s{seed}", root=root, overwrite=True, epochs=epochs,
                seed=seed, device=device, progress=False, log=None,
                overrides={**SETTINGS, "n_layer": str(n_layer), "steps_per_epoch": str(steps)})
    wall = time.perf_counter() - t0
    elapsed, trace, reached = 0.0, [], None
    for row in run.metrics:
        elapsed += row["seconds"]
        induction = torch.tensor(row["head_scores"]["induction"])  # (layers, heads)
        best = induction[-1].max().item() if n_layer > 1 else induction.max().item()
        trace.append({"epoch": row["epoch"], "step": row["epoch"] * steps, "seconds": round(elapsed, 2),
                      "best_induction": round(best, 4), "val_loss": round(row["val_loss"], 4)})
        if reached is None and best >= THRESHOLD:
            reached = {"seconds": round(elapsed, 2), "step": row["epoch"] * steps}
    return {"n_layer": n_layer, "seed": seed, "reached": reached, "max_induction": max(t["best_induction"] for t in trace),
            "final_val_loss": run.summary["val_loss"], "train_seconds": round(elapsed, 2), "wall_seconds": round(wall, 1),
            "trace": trace, "run": run}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few steps only (checks the script, not the figure)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--epochs", type=int, default=40, help="epochs (head scores are recorded after each)")
    p.add_argument("--steps-per-epoch", type=int, default=10)
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--plot", metavar="DIR", help="also save the 2-layer runs' training dynamics (PNG + JSON) here")
    args = p.parse_args(argv)
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on
    torch.set_num_threads(args.threads)
    epochs, steps = (3, 4) if args.quick else (args.epochs, args.steps_per_epoch)
    seeds = [int(s) for s in args.seeds.split(",")]

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for n_layer in (2, 1):
                r = run_once(n_layer, seed, epochs, steps, Path(tmp), args.device)
                if n_layer == 2 and args.plot:
                    from interp.analysis.language.heads import training_dynamics
                    from interp.results.language import save_training_dynamics

                    save_training_dynamics(training_dynamics(r["run"]), Path(args.plot) / f"induction-seed{seed}")
                r.pop("run")
                results.append(r)
                what = (f"reached {THRESHOLD} at {r['reached']['seconds']:.1f}s (step {r['reached']['step']})"
                        if r["reached"] else f"never reached {THRESHOLD}")
                print(f"seed {seed}  {n_layer}-layer: best induction score {r['max_induction']:.3f}, {what}; "
                      f"final val loss {r['final_val_loss']:.3f}; {r['train_seconds']:.1f}s training", flush=True)
    record = {
        "benchmark": "P6", "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads",
        "settings": {**SETTINGS, "epochs": epochs, "steps_per_epoch": steps}, "quick": args.quick, "results": results,
    }
    if args.json:
        from interp.io import write_json

        write_json(args.json, record)
    two = [r for r in results if r["n_layer"] == 2]
    one = [r for r in results if r["n_layer"] == 1]
    times = [r["reached"]["seconds"] for r in two if r["reached"]]
    print(f"\nP6: seconds until the best layer-1 induction score >= {THRESHOLD}: "
          f"{', '.join(f'{t:.1f}' for t in times) or 'never'} (goal <= 60); "
          f"1-layer control max induction score: {', '.join(format(r['max_induction'], '.3f') for r in one)} "
          f"(goal < 0.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
