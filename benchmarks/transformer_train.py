"""P4 and P5: training ``gpt`` on Tiny Shakespeare, and what our training path costs.

P4: ``gpt`` on Tiny Shakespeare with a 300 s training budget on 2 CPU cores; the figure is
the validation loss at the end (the whole validation split, 10% of the text). The recipe:
3 layers x 96, context 64, batch 32, AdamW at 4e-3 with the one-cycle schedule, gradient
clipping at 1, bfloat16 autocast in training (``--set precision=bf16``: on CPUs with
AVX512-BF16 about twice as fast per step, see ours_bf16 in P5, at the same loss per step;
``--fp32`` turns it off; evaluation is always float32). The number
of steps is planned from a short calibration (timed on a throwaway model and counted
against the budget) so that the learning-rate schedule ends when the budget does; the
training core's time budget stops it regardless. Anchor: nanoGPT's CPU recipe (4 layers
x 128, block 64, batch 12, 2000 iterations) reaches 1.87 in 354 s. Goal: at most 1.70.

P5: time per training step (forward, backward, AdamW) of the same model and batch as
P4, four ways, interleaved so that machine load hits them alike:

- ours: :class:`interp.zoo.gpt.GPT`, the module ``interp train`` trains;
- plain: the same architecture written as in "Let's build GPT" (one Linear per head
  for query/key/value, explicit masked softmax);
- native: TransformerLens's own plain module (``NativeModel``), without the bridge;
- bridge: the TransformerBridge, hooks and all (what training "through TL" costs);
- ours_bf16: ours with the bfloat16 autocast of the P4 recipe (``precision=bf16``).

All get the same weights, and their logits (float32, eval mode) are compared. Goal: ours
at most 1.1x plain (both float32).

    python benchmarks/transformer_train.py --text ../shared/data/tinyshakespeare.txt
    python benchmarks/transformer_train.py --quick        # smoke run, a few seconds
    python benchmarks/transformer_train.py --only p5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

P4_MODEL = {"n_layer": "3", "n_embd": "96", "n_head": "4", "block_size": "64", "dropout": "0.0"}
P4_TRAIN = {"batch_size": "32", "lr": "4e-3", "grad_clip": "1.0", "schedule": "onecycle", "precision": "bf16"}
EPOCHS = 10
DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


# ------------------------------------------------------------------------------ P4


def calibrate(text: str, settings: dict, n_steps: int, device: str) -> float:
    """Seconds per training step of the P4 setup, on a throwaway model and the real batches.

    The fastest of three chunks of steps: what the machine does when nothing else runs
    (a passing load spike would otherwise plan far too few steps).
    """
    from dataclasses import replace

    from interp.training.language import LanguageModelTask
    from interp.training.loop import make_config, make_optimizer
    from interp.zoo import build_model

    config = make_config("gpt", f"text:{text}", overrides=settings)
    task = LanguageModelTask(torch.device(device), progress=False)
    chunk = max(1, n_steps // 3)
    config = task.prepare(replace(config, train=replace(config.train, steps_per_epoch=3 * chunk + 3)))
    model = build_model("gpt", config.model_config).to(device)
    optimizer = make_optimizer(model, config.train)
    times = []
    for i, batch in enumerate(task.train_batches(0, torch.Generator().manual_seed(0))):
        if i >= 3 and (i - 3) % chunk == 0:
            times.append(time.perf_counter())
        loss, _ = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    times.append(time.perf_counter())
    return min(b - a for a, b in zip(times, times[1:])) / chunk


def p4(text: str, budget: float, device: str, quick: bool, fp32: bool = False) -> dict:
    from interp.training.loop import train

    settings = {**P4_MODEL, **P4_TRAIN, **({"precision": "fp32"} if fp32 else {})}
    t0 = time.perf_counter()
    step_s = calibrate(text, settings, 6 if quick else 24, device)
    calibration_s = time.perf_counter() - t0
    remaining = budget - calibration_s
    steps_per_epoch = max(1, int(0.96 * remaining / step_s) // EPOCHS)
    print(f"P4: calibration {calibration_s:.1f}s ({step_s * 1000:.0f} ms/step); planning {EPOCHS} x "
          f"{steps_per_epoch} steps in the remaining {remaining:.0f}s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = train("gpt", f"text:{text}", name="p4", root=Path(tmp), epochs=EPOCHS, device=device, progress=False,
                    log=lambda line: print("   ", line, flush=True),
                    overrides={**settings, "steps_per_epoch": str(steps_per_epoch), "time_budget": str(remaining)})
        metrics, summary = run.metrics, run.summary
        sample = run.model.generate(torch.tensor([[run.config.data.vocab.index("\n")]]), 200,
                                    generator=torch.Generator().manual_seed(0))
        sample_text = "".join(run.config.data.vocab[i] for i in sample[0].tolist())
    return {
        "val_loss": round(summary["val_loss"], 4), "val_tokens": summary["val_tokens"],
        "best_epoch_val_loss": round(min(r["val_loss"] for r in metrics), 4),
        "train_seconds": summary["train_seconds"], "calibration_seconds": round(calibration_s, 1),
        "total_seconds": round(summary["train_seconds"] + calibration_s, 1),
        "steps": round(sum(r["tok_per_s"] * r["seconds"] for r in metrics) / (32 * 64)),
        "steps_per_epoch": steps_per_epoch,
        "stopped_early": summary.get("stopped_early"), "parameters": summary["parameters"],
        "tokens_per_s": round(statistics.median(r["tok_per_s"] for r in metrics)),
        "val_by_epoch": [round(r["val_loss"], 4) for r in metrics], "sample": sample_text,
        "precision": settings["precision"],
    }


# ------------------------------------------------------------------------------ P5


class LectureHead(nn.Module):
    """One causal self-attention head as in "Let's build GPT"."""

    def __init__(self, n_embd: int, head_size: int, block_size: int):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))

    def forward(self, x):
        T = x.shape[1]
        k, q = self.key(x), self.query(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
        wei = F.softmax(wei.masked_fill(self.tril[:T, :T] == 0, float("-inf")), dim=-1)
        return wei @ self.value(x)


class LectureBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block_size: int):
        super().__init__()
        self.heads = nn.ModuleList([LectureHead(n_embd, n_embd // n_head, block_size) for _ in range(n_head)])
        self.proj = nn.Linear(n_embd, n_embd)
        self.ffwd = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd))
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.proj(torch.cat([head(h) for head in self.heads], dim=-1))
        return x + self.ffwd(self.ln2(x))


class LectureGPT(nn.Module):
    """The plain PyTorch reference: the lecture's model, dropout 0."""

    def __init__(self, vocab_size: int, n_embd: int, n_head: int, n_layer: int, block_size: int):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[LectureBlock(n_embd, n_head, block_size) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
        return self.lm_head(self.ln_f(self.blocks(x)))

    @classmethod
    def from_ours(cls, model) -> "LectureGPT":
        cfg = model.config
        ref = cls(cfg.vocab_size, cfg.n_embd, cfg.n_head, cfg.n_layer, cfg.block_size)
        hs, C = cfg.head_size, cfg.n_embd
        with torch.no_grad():
            ref.token_embedding_table.weight.copy_(model.token_embedding.weight)
            ref.position_embedding_table.weight.copy_(model.position_embedding.weight)
            for ours, theirs in zip(model.blocks, ref.blocks):
                w_q, w_k, w_v = ours.attn.qkv.weight.split(C, dim=0)
                for h, head in enumerate(theirs.heads):
                    head.query.weight.copy_(w_q[h * hs:(h + 1) * hs])
                    head.key.weight.copy_(w_k[h * hs:(h + 1) * hs])
                    head.value.weight.copy_(w_v[h * hs:(h + 1) * hs])
                theirs.proj.load_state_dict(ours.attn.proj.state_dict())
                theirs.ffwd[0].load_state_dict(ours.mlp.fc.state_dict())
                theirs.ffwd[2].load_state_dict(ours.mlp.proj.state_dict())
                theirs.ln1.load_state_dict(ours.ln1.state_dict())
                theirs.ln2.load_state_dict(ours.ln2.state_dict())
            ref.ln_f.load_state_dict(model.ln_f.state_dict())
            ref.lm_head.load_state_dict(model.lm_head.state_dict())
        return ref


def native_from_ours(model):
    """TransformerLens's NativeModel (no bridge) with our weights; its head gets our bias."""
    from transformer_lens.model_bridge.sources.native.model import NativeModel

    from interp.zoo.gpt import bridge_config, bridge_state_dict

    native = NativeModel(bridge_config(model.config))
    native.head = nn.Linear(model.config.n_embd, model.config.vocab_size)
    renames = [("embed.", "tok_embed."), ("pos_embed.", "pos."), ("blocks.", "layers."), ("mlp.in.", "mlp.fc_in."),
               ("mlp.out.", "mlp.fc_out."), ("ln_final.", "ln_out."), ("unembed.", "head.")]
    state = {}
    for key, value in bridge_state_dict(model).items():
        for a, b in renames:
            key = key.replace(a, b) if key.startswith(a) or f".{a}" in key else key
        state[key] = value.clone()
    native.load_state_dict(state, strict=True)
    return native


class Stepper:
    """One implementation's model, optimiser and a timed training step."""

    def __init__(self, name: str, model: nn.Module, bf16: bool = False):
        self.name, self.model, self.bf16 = name, model.train(), bf16
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        self.times: list[float] = []

    def step(self, x, y):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.times.append(time.perf_counter() - t0)


def p5(rounds: int, steps_per_round: int, batch_size: int) -> dict:
    from interp.zoo import create_model
    from interp.analysis.language.bridge import to_bridge

    settings = {k: (float(v) if "." in v else int(v)) for k, v in P4_MODEL.items()}
    ours = create_model("gpt", vocab_size=65, **settings)
    x = torch.randint(0, 65, (batch_size, ours.config.block_size), generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 65, x.shape, generator=torch.Generator().manual_seed(1))
    plain, native, bridge = LectureGPT.from_ours(ours), native_from_ours(ours), to_bridge(ours)
    with torch.no_grad():
        reference = ours.eval()(x)
        max_diff = {name: (m.eval()(x) - reference).abs().max().item()
                    for name, m in (("plain", plain), ("native", native), ("bridge", bridge))}
    import copy

    steppers = [Stepper("ours", ours), Stepper("plain", plain), Stepper("native", native), Stepper("bridge", bridge),
                Stepper("ours_bf16", copy.deepcopy(ours), bf16=True)]
    for s in steppers:  # warm-up
        for _ in range(2):
            s.step(x, y)
        s.times.clear()
    for r in range(rounds):
        for s in (steppers if r % 2 == 0 else steppers[::-1]):
            for _ in range(steps_per_round):
                s.step(x, y)
    ms = {s.name: round(1000 * statistics.median(s.times), 2) for s in steppers}
    return {"ms_per_step": ms, "ours_over_plain": round(ms["ours"] / ms["plain"], 3),
            "ours_bf16_over_plain": round(ms["ours_bf16"] / ms["plain"], 3),
            "ours_over_native": round(ms["ours"] / ms["native"], 3), "bridge_over_ours": round(ms["bridge"] / ms["ours"], 3),
            "logits_max_abs_diff_vs_ours": max_diff, "batch": list(x.shape), "model": P4_MODEL,
            "steps_timed_each": rounds * steps_per_round}


# ---------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", default=str(DEFAULT_TEXT), help=f"Tiny Shakespeare file (default {DEFAULT_TEXT})")
    p.add_argument("--budget", type=float, default=300.0, help="P4 training budget in seconds (default 300)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--only", choices=("p4", "p5"), help="run one benchmark")
    p.add_argument("--quick", action="store_true", help="tiny budget and few steps (checks the script only)")
    p.add_argument("--fp32", action="store_true", help="P4: train in float32 instead of bfloat16 autocast")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on
    torch.set_num_threads(args.threads)
    machine = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads"
    record = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine, "quick": args.quick}
    if args.only in (None, "p5"):
        record["p5"] = p5(rounds=2 if args.quick else 6, steps_per_round=2 if args.quick else 10, batch_size=32)
        r = record["p5"]
        print(f"P5: ms/step {r['ms_per_step']}; ours/plain {r['ours_over_plain']} (goal <= 1.1; with bf16 "
              f"{r['ours_bf16_over_plain']}), "
              f"bridge/ours {r['bridge_over_ours']}; max |logit diff| vs ours {r['logits_max_abs_diff_vs_ours']}",
              flush=True)
    if args.only in (None, "p4"):
        if not Path(args.text).is_file():
            print(f"P4 skipped: no text file at {args.text} (pass --text)", file=sys.stderr)
        else:
            record["p4"] = p4(args.text, 20.0 if args.quick else args.budget, args.device, args.quick, args.fp32)
            r = record["p4"]
            print(f"P4: val loss {r['val_loss']} (goal <= 1.70; nanoGPT CPU recipe 1.87 in 354 s) after "
                  f"{r['total_seconds']}s ({r['steps']} steps, {r['tokens_per_s']} tok/s)\n{r['sample']}")
    if args.json:
        from interp.io import write_json

        write_json(args.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
