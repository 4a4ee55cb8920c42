"""Head ablation: how much the loss on the induction task rises when one head is removed.

Each head's output (``blocks.L.attn.hook_z``, before ``W_O``) is replaced by zeros
(zero-ablation) or by its mean over the batch at each position (mean-ablation), through
TransformerLens's scoped ``run_with_hooks``; the loss is measured where induction can
help: at positions whose token appeared earlier in the sequence, predicting the next
token (which then repeats too).

>>> result = ablate_heads(run, kind="mean")
>>> result.delta            # (n_layers, n_heads): loss increase per ablated head
>>> interp.results.save(result, "reports/attn-only/transformer")   # ablation_mean.json + .png
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...errors import InterpError
from .bridge import as_bridge, check_heads
from .heads import check_forward_memory, repeated_positions
from .tokens import task_tokens, token_digest

KINDS = ("zero", "mean")


@dataclass
class AblationResult:
    """Loss with each head ablated (``ablated[layer, head]``) against the clean ``base_loss``."""

    kind: str
    base_loss: float
    ablated: torch.Tensor  # (n_layers, n_heads); NaN where a head was not ablated
    n_sequences: int
    run: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def delta(self) -> torch.Tensor:
        return self.ablated - self.base_loss

    def rows(self) -> list[dict]:
        L, H = self.ablated.shape
        return [{"head": f"L{layer}H{head}", "loss": float(self.ablated[layer, head]),
                 "delta": float(self.delta[layer, head])}
                for layer in range(L) for head in range(H) if not torch.isnan(self.ablated[layer, head])]


def induction_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss at positions whose token occurred earlier (where induction applies)."""
    where = repeated_positions(tokens).to(logits.device)  # (B, T-1)
    loss = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), tokens[:, 1:], reduction="none")
    return loss[where].mean()


def ablate_heads(model_or_run, *, kind: str = "zero", tokens: torch.Tensor | None = None, n_sequences: int = 64,
                 seed: int = 0, layers: list[int] | None = None, heads: list[int] | None = None) -> AblationResult:
    """Loss on repeated random sequences with each head zero- or mean-ablated in turn.

    ``tokens`` ``(B, T)`` default to the run's induction task (or repeated random blocks
    of its vocabulary). ``layers``/``heads`` restrict which heads are ablated.
    """
    if kind not in KINDS:
        raise InterpError(f"unknown ablation {kind!r}; use zero or mean")
    bridge = as_bridge(model_or_run)
    L, H = bridge.cfg.n_layers, bridge.cfg.n_heads
    restricted = {"layers": layers, "heads": heads} if layers is not None or heads is not None else {}
    layers, heads = check_heads(L, H, layers, heads)
    if tokens is None:
        if not hasattr(model_or_run, "config") or not hasattr(model_or_run.config, "data"):
            raise ValueError("pass tokens= when ablating a bare model or bridge")
        tokens = task_tokens(model_or_run, n_sequences, seed=seed)
        settings = {"n_sequences": n_sequences, "seed": seed}
    else:
        settings = {"tokens": token_digest(tokens)}
    settings.update(restricted)
    # kept: every layer's hook_z (n_heads x d_head per token) and the clean logits beside each ablated pass
    check_forward_memory(bridge, tuple(tokens.shape), f"{kind}-ablating every head",
                         kept_per_token=L * H * bridge.cfg.d_head + bridge.cfg.d_vocab)
    tokens = tokens.to(bridge.cfg.device)
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n.endswith("attn.hook_z"))
        base = induction_loss(logits, tokens).item()
        ablated = torch.full((L, H), float("nan"))
        for layer in layers:
            mean_z = cache["z", layer].mean(0, keepdim=True)  # (1, T, H, d_head)
            for head in heads:
                def hook(z, hook, head=head, mean_z=mean_z):
                    z[:, :, head] = 0.0 if kind == "zero" else mean_z[:, :, head]
                    return z

                out = bridge.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)])
                ablated[layer, head] = induction_loss(out, tokens).item()
    return AblationResult(kind, base, ablated, len(tokens), getattr(model_or_run, "name", ""), settings)
