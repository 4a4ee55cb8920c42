"""The in-context gain of a language model: next-token loss at new tokens minus at repeated ones.

What seeing a token earlier in the sequence buys (the signature of induction heads), per
sequence or pooled, and the logits with chosen heads zero-ablated together, to measure how
much of the gain those heads carry (:mod:`interp.claims.transformers` turns it into the
``induction-k-composition`` verdict).

>>> first, repeat = split_loss(model(tokens), tokens)      # gain = first - repeat
>>> first, repeat = per_sequence_loss(ablated_logits(bridge, tokens, [(1, 0)]), tokens)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .heads import repeated_positions


def _position_losses(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-token losses ``(B, T-1)`` and masks of the positions whose token is new / repeated in its
    sequence (position 0, BOS, is neither)."""
    repeated = repeated_positions(tokens.cpu())  # (B, T-1): token at t seen before
    loss = F.cross_entropy(logits[:, :-1].detach().float().transpose(1, 2).cpu(), tokens[:, 1:].cpu(),
                           reduction="none")
    first = ~repeated
    first[:, 0] = False
    return loss, first, repeated


def per_sequence_loss(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sequence's mean next-token loss at new tokens and at repeated ones ``(B,), (B,)`` (as
    :func:`split_loss`, one value per sequence: what bootstrap intervals resample)."""
    loss, first, repeated = _position_losses(logits, tokens)
    first, repeated = first.float(), repeated.float()
    return ((loss * first).sum(1) / first.sum(1).clamp_min(1),
            (loss * repeated).sum(1) / repeated.sum(1).clamp_min(1))


def split_loss(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[float, float]:
    """Mean next-token loss over every position whose token is new in the sequence, and over repeated ones.

    The in-context gain is the first minus the second: what seeing a token before buys.
    Position 0 (BOS) is left out. :func:`per_sequence_loss` gives the same per sequence.
    """
    loss, first, repeated = _position_losses(logits, tokens)
    return float(loss[first].mean()), float(loss[repeated].mean())


def ablated_logits(bridge, tokens: torch.Tensor, heads: list[tuple[int, int]]) -> torch.Tensor:
    """Logits with ``heads`` ([(layer, head)]) zero-ablated together at ``hook_z`` (scoped TransformerLens hooks)."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def make(hs):
        def hook(z, hook):
            z[:, :, hs] = 0.0
            return z
        return hook

    hooks = [(f"blocks.{layer}.attn.hook_z", make(hs)) for layer, hs in by_layer.items()]
    with torch.no_grad():
        return bridge.run_with_hooks(tokens.to(bridge.cfg.device), fwd_hooks=hooks)
