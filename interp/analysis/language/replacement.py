"""What replacing one token does to a language model's next-token predictions.

The measurement behind the ``cue-token`` claim (:mod:`interp.claims.cue_token`): replace a
suspected cue token in the run's own sequences and measure the change of the predictions
(KL), next to the same for other tokens (placebos, the null).

>>> effect = cue_effect(run, "e", tokens)
>>> effect.effect, max(effect.placebo.values())      # nats of KL: the cue's, the placebos' largest
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...errors import InterpError
from .tokens import run_vocabulary


@dataclass
class CueEffect:
    """How much replacing a token changes a language model's next-token predictions.

    ``effect``: mean KL divergence (nats) between the predictions with and without the
    token, over the positions from its first occurrence on, in sequences that contain it;
    ``placebo``: the same for other tokens (the null).
    """

    cue: str
    effect: float
    placebo: dict[str, float]
    sequences: int


@torch.no_grad()
def replacement_effect(model, tokens: torch.Tensor, token: int, replacement: int) -> tuple[float, int]:
    """Mean KL(original || replaced) of next-token predictions after ``token``'s first occurrence."""
    has = (tokens == token).any(1)
    x = tokens[has]
    if len(x) == 0:
        return float("nan"), 0
    p = next(model.parameters())
    logp = F.log_softmax(model(x.to(p.device)).float(), -1).cpu()
    y = x.clone()
    y[y == token] = replacement
    logq = F.log_softmax(model(y.to(p.device)).float(), -1).cpu()
    kl = (logp.exp() * (logp - logq)).sum(-1)  # (B, T)
    after = (x == token).int().cumsum(1) > 0
    return float(kl[after].mean()), len(x)


def cue_effect(run, cue: str, tokens: torch.Tensor, *, n_placebo: int = 8, seed: int = 0) -> CueEffect:
    """The effect of replacing ``cue`` (a token of the run's vocabulary) and of replacing placebo tokens."""
    vocab = run_vocabulary(run)
    ids = vocab.encode(cue)
    if len(ids) != 1:
        raise InterpError(f"the cue must be one token of the model's vocabulary; {cue!r} is {len(ids)} tokens")
    cue_id = int(ids[0])
    counts = torch.bincount(tokens.flatten(), minlength=len(vocab))
    candidates = [t for t in range(len(vocab)) if t != cue_id and t != vocab.bos and counts[t] > 0]
    g = torch.Generator().manual_seed(seed)
    placebo_ids = [candidates[i] for i in torch.randperm(len(candidates), generator=g)[:n_placebo].tolist()]
    # The replacement: a token the sequences never use when there is one, else the rarest other token.
    replacement = int(torch.argsort(counts + torch.where(torch.arange(len(vocab)) == cue_id, 10**9, 0))[0])
    effect, n = replacement_effect(run.model, tokens, cue_id, replacement)
    if n == 0:
        raise InterpError(f"the cue {cue!r} never occurs in the evaluation sequences; pick a token the data uses")
    placebo = {vocab.tokens[t]: replacement_effect(run.model, tokens, t, replacement)[0] for t in placebo_ids
               if t != replacement}
    return CueEffect(cue, effect, placebo, n)
