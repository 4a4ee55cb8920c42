"""Issue #18: sparse autoencoders on two models trained inside the script, against two baselines.

Settings:

- ``gpt-resid``: a 3-layer char-GPT (3 x 96, context 64, the P4 architecture of
  benchmarks/transformer_train.py) trained for ``--gpt-steps`` steps on Tiny Shakespeare;
  a TopK SAE (k 16, width 768) on ``blocks.1.hook_resid_post``;
- ``gpt-mlp``: the same model's ``blocks.2.hook_mlp_out``;
- ``tutorial-conv2``: the tutorial net trained 4 epochs on 10,000 shapes images; a TopK SAE
  (k 4, width 128) on ``conv2`` (each position's 16 channels).

For each: FVE, L0, dead features, loss recovered (against zero ablation) and the
interpretability proxy for sae / random / neurons on ``--n`` test activations, with 95%
bootstrap CIs; and the cost of training: seconds per million activations (the activations
streamed from the model, the SAE's steps, both) and the peak RSS of a forked process that did
only the training, with how much it grew during the training (peak minus its RSS at the start,
the run loaded).

    python benchmarks/sae.py                       # about 6 minutes on 1 thread
    python benchmarks/sae.py --quick               # smoke run, about a minute
    python benchmarks/sae.py --threads 2 --json sae.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
GPT_MODEL = {"n_layer": "3", "n_embd": "96", "n_head": "4", "block_size": "64", "dropout": "0.0"}
GPT_TRAIN = {"batch_size": "32", "lr": "4e-3", "grad_clip": "1.0", "schedule": "onecycle", "precision": "fp32"}
SETTINGS = {
    "gpt-resid": ("gpt", "blocks.1.hook_resid_post", 16),
    "gpt-mlp": ("gpt", "blocks.2.hook_mlp_out", 16),
    "tutorial-conv2": ("tutorial", "conv2", 4),
}


def rss_mb() -> float:
    """The current resident set size in MB (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_models(root: Path, text: Path, quick: bool, gpt_steps: int) -> dict:
    from interp.training.loop import train

    runs = {}
    steps = 40 if quick else gpt_steps
    start = time.perf_counter()
    run = train("gpt", f"text:{text}", name="gpt", epochs=4, seed=0, root=root, device="cpu", progress=False,
                log=None, overrides={**GPT_MODEL, **GPT_TRAIN, "steps_per_epoch": str(max(1, steps // 4))})
    runs["gpt"] = {"run": run, "train_s": time.perf_counter() - start, "val_loss": run.summary.get("val_loss"),
                   "steps": steps}
    n_train, epochs = (2000, 2) if quick else (10_000, 4)
    start = time.perf_counter()
    run = train("tutorial", "shapes", name="tutorial", epochs=epochs, seed=0, root=root, device="cpu",
                progress=False, log=None, overrides={"n_train": str(n_train), "n_test": "2000"})
    runs["tutorial"] = {"run": run, "train_s": time.perf_counter() - start, "test_acc": run.summary.get("test_acc"),
                        "n_train": n_train, "epochs": epochs}
    return runs


def _stream_only(run, layer: str, tokens: int) -> float:
    from interp.analysis.dictionary.activations import LayerSource, layer_activations

    source = LayerSource(run, layer)
    start = time.perf_counter()
    for _ in layer_activations(run, source, n=tokens, batch_size=1024, seed=0, split="train"):
        pass
    return time.perf_counter() - start


def _train_child(run_path: str, layer: str, k: int, tokens: int, queue) -> None:
    from interp.analysis.dictionary.sae import train_sae
    from interp.results.sae import save_sae
    from interp.runs import load_run

    run = load_run(run_path)
    at_start = rss_mb()
    start = time.perf_counter()
    trained = train_sae(run, layer, k=k, tokens=tokens, progress=False)
    seconds = time.perf_counter() - start
    folder = save_sae(trained, Path(run_path).parent / f"sae-{layer}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"seconds": seconds, "folder": str(folder), "peak_mb": peak, "extra_mb": peak - at_start})


def measure(name: str, run, layer: str, k: int, tokens: int, n: int) -> dict:
    from interp.analysis.dictionary.metrics import sae_metrics
    from interp.results.sae import load_sae

    stream_s = _stream_only(run, layer, min(tokens, 200_000)) * tokens / min(tokens, 200_000)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_train_child, args=(str(run.path), layer, k, tokens, queue))
    child.start()
    out = queue.get()
    child.join()
    trained = load_sae(out["folder"])
    start = time.perf_counter()
    metrics = sae_metrics(trained, run, n=n, seed=0)
    metrics_s = time.perf_counter() - start
    curve = trained.curve[-1]
    return {"setting": name, "layer": layer, "k": k, "width": trained.sae.width, "d_in": trained.sae.d_in,
            "tokens": tokens, "train_s": round(out["seconds"], 2),
            "s_per_million": round(out["seconds"] / tokens * 1e6, 2),
            "stream_s_per_million": round(stream_s / tokens * 1e6, 2),
            "sae_steps_s_per_million": round((out["seconds"] - stream_s) / tokens * 1e6, 2),
            "peak_rss_mb": round(out["peak_mb"], 1), "training_rss_mb": round(out["extra_mb"], 1),
            "resamples": trained.settings.get("resamples"), "final_batch_fve": round(curve["fve"], 4),
            "dead_at_end": curve["dead"], "metrics_s": round(metrics_s, 2),
            "loss_clean": metrics.loss_clean, "loss_ablated": metrics.loss_ablated, "rows": metrics.rows,
            "table": metrics.table()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="Tiny Shakespeare (default ../shared/data)")
    parser.add_argument("--quick", action="store_true", help="smoke run: short training, few activations")
    parser.add_argument("--gpt-steps", type=int, default=1200, help="char-GPT training steps (default 1200)")
    parser.add_argument("--tokens", type=int, default=500_000, help="SAE training activations (default 500,000)")
    parser.add_argument("--n", type=int, default=50_000, help="test activations for the metrics (default 50,000)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--only", choices=sorted(SETTINGS), action="append", help="run only these settings")
    parser.add_argument("--json", type=Path, help="write every figure here as JSON")
    args = parser.parse_args(argv)
    if not args.text.is_file():
        print(f"Tiny Shakespeare not found at {args.text}; pass --text PATH", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from interp.device import machine_description

    print(f"machine: {machine_description()}; torch threads {args.threads}", flush=True)
    tokens, n = (30_000, 5_000) if args.quick else (args.tokens, args.n)
    results = {"machine": machine_description(), "threads": args.threads, "settings": []}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        runs = train_models(Path(tmp), args.text, args.quick, args.gpt_steps)
        g, t = runs["gpt"], runs["tutorial"]
        print(f"char-GPT 3x96: {g['steps']} steps in {g['train_s']:.0f}s, val loss {g['val_loss']:.3f}; tutorial net on "
              f"{t['n_train']:,} shapes, {t['epochs']} epochs in {t['train_s']:.0f}s, test acc {t['test_acc']:.3f}",
              flush=True)
        results["models"] = {name: {k: v for k, v in r.items() if k != "run"} for name, r in runs.items()}
        for name in args.only or SETTINGS:
            model, layer, k = SETTINGS[name]
            row = measure(name, runs[model]["run"], layer, k, tokens, n)
            results["settings"].append(row)
            print(f"\n== {name}: {layer} (d {row['d_in']}, width {row['width']}, k {k}), {tokens:,} training "
                  f"activations in {row['train_s']:.1f}s = {row['s_per_million']:.1f} s per million "
                  f"(stream {row['stream_s_per_million']:.1f}, SAE steps {row['sae_steps_s_per_million']:.1f}); "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB ({row['training_rss_mb']:+.0f} MB for training); "
                  f"{row['resamples']} resampling rounds, {row['dead_at_end']} dead at the end; metrics in "
                  f"{row['metrics_s']:.0f}s", flush=True)
            print(row["table"], flush=True)
        results["total_s"] = round(time.perf_counter() - start, 1)
    print(f"\ntotal {results['total_s']:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
