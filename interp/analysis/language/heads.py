"""Attention heads: patterns, head-type scores and their training dynamics.

Everything runs through TransformerLens (:func:`interp.analysis.language.bridge.to_bridge`),
reading the standard hook ``blocks.L.attn.hook_pattern``. Saving and figures:
:mod:`interp.results.language`.

>>> run = interp.load_run("attn-only")
>>> scores = head_scores(run)            # previous-token, induction, duplicate, first-token
>>> scores.induction[1].max()
>>> pats = attention_patterns(run, prompt_tokens(run, "5 9 13 5 9"))
>>> interp.results.save(pats, "reports/attn-only/transformer")

Head scores are the attention mass a head puts on the keys its type predicts, averaged
over the query positions where such a key exists (so a perfect head scores 1):

- previous-token: key ``q-1``;
- duplicate-token: earlier positions holding the same token as ``q``;
- induction: the positions right after an earlier copy of the token at ``q``;
- first-token: key 0 (BOS where the vocabulary has one).

They are measured on the usual induction probe
(:func:`~interp.analysis.language.tokens.repeated_tokens`): BOS, a random block of half
the context, the same block again. A 1-layer model that attends to every earlier token
(all it can do on this task) scores about 1/q there. TransformerLens's ``head_detector``
scores the same masks but divides by all query positions, including those with nothing
to find; ours equals its score times ``seq_len / rows with a target`` (tests check this).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...budget import check_memory
from ...errors import InterpError
from .bridge import as_bridge
from .tokens import length_probe, run_vocabulary, token_digest

SCORE_NAMES = ("prev_token", "induction", "duplicate", "first_token")
SCORE_TITLES = {"prev_token": "previous-token", "induction": "induction", "duplicate": "duplicate-token",
                "first_token": "first-token"}


# ------------------------------------------------------------------- attention


@dataclass
class AttentionPatterns:
    """Attention of every head on one prompt: ``patterns[layer, head, query, key]``."""

    tokens: list[str]
    patterns: torch.Tensor
    run: str = ""
    settings: dict = field(default_factory=dict)


def cached_patterns(bridge, tokens: torch.Tensor) -> torch.Tensor:
    """``(B, n_layers, n_heads, T, T)`` attention patterns from ``hook_pattern`` (no hooks left behind)."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens.to(bridge.cfg.device),
                                         names_filter=lambda name: name.endswith("attn.hook_pattern"))
    return torch.stack([cache["pattern", layer] for layer in range(bridge.cfg.n_layers)], dim=1).cpu()


def forward_bytes(cfg, n_sequences: int, seq_len: int, *, kept_per_token: int = 0) -> int:
    """Bytes of one no-grad forward pass of ``n_sequences`` x ``seq_len`` tokens through a
    TransformerLens model (``cfg``: its config), keeping ``kept_per_token`` floats per token
    (a cache) on top of the pass's own peak: one layer's attention scores and pattern,
    the residual stream and its sub-layer outputs, the MLP's hidden layer and the logits.

    >>> cfg = SimpleNamespace(n_heads=4, d_model=64, d_mlp=256, d_vocab=65)
    >>> forward_bytes(cfg, 64, 64, kept_per_token=2 * 2 * 4 * 64) // 2**20      # MiB; patterns of 2 layers
    35
    """
    d_mlp = getattr(cfg, "d_mlp", None) or 0
    peak = 2 * cfg.n_heads * seq_len + 6 * cfg.d_model + d_mlp + cfg.d_vocab
    return 4 * n_sequences * seq_len * (peak + kept_per_token)


def check_forward_memory(bridge, tokens_shape: tuple[int, int], what: str, *, kept_per_token: int = 0) -> None:
    """:func:`~interp.budget.check_memory` for :func:`forward_bytes`, before the pass allocates."""
    n, seq_len = tokens_shape
    check_memory(forward_bytes(bridge.cfg, n, seq_len, kept_per_token=kept_per_token),
                 f"{what} ({n:,} sequences of {seq_len:,} tokens, {bridge.cfg.n_layers} layers, "
                 f"d_model {bridge.cfg.d_model})", hint="use fewer --sequences")


def pattern_floats_per_token(cfg, seq_len: int) -> int:
    """Floats per token that :func:`cached_patterns` keeps: every layer's and head's pattern
    row, twice (TransformerLens's cache and the stacked copy)."""
    return 2 * cfg.n_layers * cfg.n_heads * seq_len


def attention_patterns(model_or_run, tokens: torch.Tensor, *, labels: list[str] | None = None) -> AttentionPatterns:
    """Every head's attention pattern on one prompt ``tokens`` ``(T,)``.

    >>> pats = attention_patterns(run, prompt_tokens(run, "ROMEO:"))
    >>> pats.patterns.shape   # (n_layers, n_heads, 6, 6)
    """
    bridge = as_bridge(model_or_run)
    if tokens.ndim != 1:
        raise ValueError("attention_patterns takes one prompt, shape (T,)")
    if labels is None and hasattr(model_or_run, "config") and hasattr(model_or_run.config, "data"):
        labels = run_vocabulary(model_or_run).labels(tokens)
    labels = labels or [str(t) for t in tokens.tolist()]
    return AttentionPatterns(labels, cached_patterns(bridge, tokens[None])[0], getattr(model_or_run, "name", ""),
                             {"tokens": token_digest(tokens)})


# ------------------------------------------------------------------ head scores


def head_type_masks(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean ``(B, T, T)`` [query, key] masks of the keys each head type should attend to."""
    B, T = tokens.shape
    q = torch.arange(T)[:, None]
    k = torch.arange(T)[None, :]
    earlier = (k < q).expand(B, T, T)
    duplicate = (tokens[:, :, None] == tokens[:, None, :]) & earlier
    induction = torch.zeros_like(duplicate)
    induction[:, :, 1:] = duplicate[:, :, :-1]  # the key after each earlier copy of the query's token
    prev = (k == q - 1).expand(B, T, T)
    first = ((k == 0) & (q > 0)).expand(B, T, T)
    return {"prev_token": prev, "induction": induction, "duplicate": duplicate, "first_token": first}


def repeated_positions(tokens: torch.Tensor) -> torch.Tensor:
    """``(B, T-1)`` bool on ``tokens``' device: positions ``t`` whose token occurred earlier in its
    sequence, so an induction head can predict ``t+1`` (where induction losses are measured).

    >>> repeated_positions(torch.tensor([[5, 7, 5, 7]]))
    tensor([[False, False,  True]])
    """
    return head_type_masks(tokens.cpu())["duplicate"].any(-1)[:, :-1].to(tokens.device)


def _score_terms(patterns: torch.Tensor, tokens: torch.Tensor):
    """Per head type: each sequence's attention mass on the mask's keys summed over the query rows that
    have one ``(B, L, H)``, and how many such rows it has ``(B,)``."""
    for name, mask in head_type_masks(tokens).items():
        rows = mask.any(-1)  # (B, T)
        mass = (patterns * mask[:, None, None].to(patterns.dtype)).sum(-1)  # (B, L, H, T)
        yield name, (mass * rows[:, None, None].to(mass.dtype)).sum(-1), rows.sum(-1).to(mass.dtype)


def score_patterns(patterns: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Head-type scores ``(n_layers, n_heads)`` from patterns ``(B, L, H, T, T)`` and tokens ``(B, T)``.

    Each score: attention mass on the mask's keys, averaged over query rows that have one.
    """
    return {name: mass.sum(0) / rows.sum().clamp_min(1) for name, mass, rows in _score_terms(patterns, tokens)}


def per_sequence_scores(patterns: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Head-type scores of each sequence ``(B, n_layers, n_heads)`` (for bootstrap intervals over sequences).

    Their mean over sequences weights each sequence equally; :func:`score_patterns`
    weights each query row equally (the two agree when every sequence has as many rows).
    """
    return {name: mass / rows.clamp_min(1)[:, None, None] for name, mass, rows in _score_terms(patterns, tokens)}


LENGTH_DEPENDENT_RATIO = 2.0
"""A head whose best score over probe lengths is over twice its worst (and 0.1 above it) depends on the length."""


@dataclass
class HeadScores:
    """Scores ``(n_layers, n_heads)`` per head type, measured on ``n_sequences`` repeated random blocks.

    With several probe lengths (:func:`~interp.analysis.language.tokens.length_probe`), ``scores`` holds each head's
    minimum over the lengths and ``by_length`` the score at each; ``seq_len`` is the
    context and ``lengths`` the block lengths.
    """

    scores: dict[str, torch.Tensor]
    n_sequences: int
    seq_len: int
    run: str = ""
    lengths: tuple[int, ...] = ()
    by_length: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def prev_token(self) -> torch.Tensor:
        return self.scores["prev_token"]

    @property
    def induction(self) -> torch.Tensor:
        return self.scores["induction"]

    @property
    def duplicate(self) -> torch.Tensor:
        return self.scores["duplicate"]

    @property
    def first_token(self) -> torch.Tensor:
        return self.scores["first_token"]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(next(iter(self.scores.values())).shape)

    def best_over_lengths(self, name: str) -> torch.Tensor:
        """Each head's highest ``name`` score over the probe lengths (its score when there is one length)."""
        if not self.by_length:
            return self.scores[name]
        return torch.stack([s[name] for s in self.by_length.values()]).max(0).values

    def length_dependent(self, name: str = "induction") -> torch.Tensor:
        """Boolean ``(n_layers, n_heads)``: heads whose ``name`` score changes with the repeat length.

        Best over twice the worst and at least 0.1 above it: a head that matches the
        repeat by position (attends a fixed distance back) rather than by content.
        """
        best, worst = self.best_over_lengths(name), self.scores[name]
        return (best > LENGTH_DEPENDENT_RATIO * worst) & (best - worst >= 0.1)

    def rows(self) -> list[dict]:
        """One row per head: ``{"head": "L0H1", "layer", "index", score...}``."""
        n_layers, n_heads = self.shape
        flags = self.length_dependent() if self.by_length else None
        return [{"head": f"L{layer}H{head}", "layer": layer, "index": head,
                 **{name: float(self.scores[name][layer, head]) for name in self.scores},
                 **({"length_dependent": bool(flags[layer, head])} if flags is not None else {})}
                for layer in range(n_layers) for head in range(n_heads)]


def head_scores(model_or_run, *, tokens: torch.Tensor | None = None, probe: dict[int, torch.Tensor] | None = None,
                n_sequences: int = 64, seed: int = 0) -> HeadScores:
    """Previous-token, induction, duplicate-token and first-token score of every head.

    ``tokens`` ``(B, T)``: score on these sequences alone. Otherwise ``probe``
    (:func:`~interp.analysis.language.tokens.length_probe`, built for the run when not
    given: ``n_sequences`` repeated random blocks at each of several lengths) and each
    score is the head's minimum over the lengths, so a head that only matches one repeat length by position is not called
    an induction head; ``by_length`` keeps every length's scores.

    >>> scores = head_scores(run)
    >>> scores.induction, scores.length_dependent()
    """
    bridge = as_bridge(model_or_run)
    name = getattr(model_or_run, "name", "")
    if tokens is not None:
        check_forward_memory(bridge, tuple(tokens.shape), "scoring every head",
                             kept_per_token=pattern_floats_per_token(bridge.cfg, tokens.shape[1]))
        patterns = cached_patterns(bridge, tokens)
        return HeadScores(score_patterns(patterns, tokens.cpu()), len(tokens), tokens.shape[1], name,
                          settings={"tokens": token_digest(tokens)})
    if probe is None:
        if not hasattr(model_or_run, "config") or not hasattr(model_or_run.config, "data"):
            raise ValueError("pass tokens= or probe= when scoring a bare model or bridge")
        probe = length_probe(model_or_run, n_sequences, seed=seed)
        settings = {"n_sequences": n_sequences, "seed": seed}
    else:
        settings = {"probe": token_digest(torch.cat([t.flatten() for t in probe.values()])), "lengths": list(probe)}
    for t in probe.values():
        check_forward_memory(bridge, tuple(t.shape), "scoring every head",
                             kept_per_token=pattern_floats_per_token(bridge.cfg, t.shape[1]))
    by_length = {b: score_patterns(cached_patterns(bridge, t), t.cpu()) for b, t in probe.items()}
    names = next(iter(by_length.values())).keys()
    scores = {k: torch.stack([s[k] for s in by_length.values()]).min(0).values for k in names}
    first = next(iter(probe.values()))
    return HeadScores(scores, len(first), first.shape[1], name, tuple(probe), by_length, settings)


# ------------------------------------------------------------ training dynamics


@dataclass
class TrainingDynamics:
    """Head scores recorded after each epoch (``metrics.jsonl``), against training time.

    ``scores[name]`` is ``(n_epochs, n_layers, n_heads)``; ``seconds`` is cumulative
    training time; ``steps`` cumulative optimiser steps.
    """

    epochs: list[int]
    steps: list[int]
    seconds: list[float]
    val_loss: list[float | None]
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    run: str = ""


def training_dynamics(run) -> TrainingDynamics:
    """Read the head scores a language-model run recorded during training."""
    rows = [r for r in run.metrics if "head_scores" in r]
    if not rows:
        raise InterpError(f"run {run.name} recorded no head scores during training (they are recorded for runs on "
                          f"the induction task, e.g. interp train attn-only)")
    seconds, total = [], 0.0
    for r in run.metrics:
        total += r.get("seconds", 0.0)
        if "head_scores" in r:
            seconds.append(round(total, 3))
    names = list(rows[0]["head_scores"])
    per_epoch = run.config.train.steps_per_epoch or 1
    return TrainingDynamics(
        epochs=[r["epoch"] for r in rows], steps=[r["epoch"] * per_epoch for r in rows], seconds=seconds,
        val_loss=[r.get("val_loss") for r in rows],
        scores={n: torch.tensor([r["head_scores"][n] for r in rows]) for n in names}, run=run.name)
