"""Loss by token position and the in-context-learning score (Olsson et al., 2022).

>>> result = loss_by_position(run)       # held-out text, or the run's induction task
>>> result.icl_score                     # late-context loss minus early-context loss
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .tokens import run_vocabulary, task_tokens, token_digest


@dataclass
class PositionLoss:
    """Mean next-token loss at each position, and the in-context-learning score.

    ``icl_score`` = loss late in the context minus loss early in it (Olsson et al.'s
    "loss at token 500 minus loss at token 50", scaled to the context): the mean over
    the last 10% of positions minus the mean over positions 10-20% of the way in.
    Negative means the model predicts better with more context.
    """

    loss: torch.Tensor
    icl_score: float
    early: tuple[int, int]
    late: tuple[int, int]
    data: str = ""
    run: str = ""
    settings: dict = field(default_factory=dict)


def icl_windows(n_positions: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(early, late)`` half-open position ranges used by the in-context-learning score.

    >>> icl_windows(100)
    ((10, 20), (90, 100))
    """
    early = (max(1, round(0.1 * n_positions)), max(2, round(0.2 * n_positions)))
    late = (min(n_positions - 1, round(0.9 * n_positions)), n_positions)
    return early, late


def icl_score(loss: torch.Tensor) -> float:
    """Late-context loss minus early-context loss for a per-position loss curve.

    >>> icl_score(torch.linspace(3, 1, 20)) < 0
    True
    """
    (e0, e1), (l0, l1) = icl_windows(len(loss))
    return float(loss[l0:l1].mean() - loss[e0:e1].mean())


@torch.no_grad()
def per_sequence_position_loss(model, tokens: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Cross-entropy of predicting ``tokens[:, t+1]`` at each position ``t`` of each sequence ``(B, T-1)``.

    ``model`` is any callable mapping ``(B, T)`` ids to logits (our GPT or a bridge).
    """
    import torch.nn.functional as F

    device = next(model.parameters()).device
    out = []
    for i in range(0, len(tokens), batch_size):
        x = tokens[i:i + batch_size].to(device)
        logits = model(x[:, :-1]).float()
        out.append(F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none").cpu())  # (B, T-1)
    return torch.cat(out)


def per_position_loss(model, tokens: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Mean cross-entropy at each position ``(T-1,)`` (see :func:`per_sequence_position_loss`)."""
    return per_sequence_position_loss(model, tokens, batch_size=batch_size).mean(0)


def position_tokens(run, n_sequences: int = 256, *, seed: int = 0) -> torch.Tensor:
    """The default sequences ``(n, T+1)`` for loss by position: windows of the run's validation text
    (character runs) or sequences of its induction task."""
    context = run.config.model_config["block_size"]
    if run_vocabulary(run).is_char:
        from ...data.text import load_char_corpus, random_windows

        corpus = load_char_corpus(run.config.data.name, progress=False)
        return random_windows(corpus.val, n_sequences, context, torch.Generator().manual_seed(seed))
    return task_tokens(run, n_sequences, seed=seed, seq_len=context + 1)


def loss_by_position(model_or_run, tokens: torch.Tensor | None = None, *, n_sequences: int = 256,
                     seed: int = 0) -> PositionLoss:
    """Loss at each context position on held-out text (text runs) or task sequences.

    ``tokens`` ``(B, T+1)`` default to windows of the run's validation text, or to its
    induction task.
    """
    model = getattr(model_or_run, "model", model_or_run)
    data = "given tokens"
    if tokens is None:
        data = model_or_run.config.data.name
        tokens = position_tokens(model_or_run, n_sequences, seed=seed)
        settings = {"n_sequences": n_sequences, "seed": seed}
    else:
        settings = {"tokens": token_digest(tokens)}
    was_training = model.training
    model.eval()
    try:
        loss = per_position_loss(model, tokens)
    finally:
        model.train(was_training)
    early, late = icl_windows(len(loss))
    return PositionLoss(loss, icl_score(loss), early, late, data, getattr(model_or_run, "name", ""), settings)
