"""Attention heads: patterns, head-type scores, loss by position and training dynamics.

Everything runs through TransformerLens (:func:`interp.zoo.gpt.to_bridge`), reading the
standard hook ``blocks.L.attn.hook_pattern``.

>>> run = interp.load_run("attn-only")
>>> scores = head_scores(run)            # previous-token, induction, duplicate, first-token
>>> scores.induction[1].max()
>>> pats = attention_patterns(run, prompt_tokens(run, "5 9 13 5 9"))
>>> save_attention(pats, "reports/attn-only/transformer")

Head scores are the attention mass a head puts on the keys its type predicts, averaged
over the query positions where such a key exists (so a perfect head scores 1):

- previous-token: key ``q-1``;
- duplicate-token: earlier positions holding the same token as ``q``;
- induction: the positions right after an earlier copy of the token at ``q``;
- first-token: key 0 (BOS where the vocabulary has one).

They are measured on the usual induction probe (:func:`repeated_tokens`): BOS, a
random block of half the context, the same block again. A 1-layer model that attends
to every earlier token (all it can do on this task) scores about 1/q there.
TransformerLens's ``head_detector`` scores the same masks but divides by all query
positions, including those with nothing to find; ours equals its score times
``seq_len / rows with a target`` (tests check this).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...errors import InterpError
from ...io import write_json
from ...plots import pyplot, save_figure

SCORE_NAMES = ("prev_token", "induction", "duplicate", "first_token")
SCORE_TITLES = {"prev_token": "previous-token", "induction": "induction", "duplicate": "duplicate-token",
                "first_token": "first-token"}


# ----------------------------------------------------------------------- helpers


def as_bridge(model_or_run: Any, **kwargs):
    """A bridge as is, or :func:`~interp.zoo.gpt.to_bridge` of a GPT, run or run name."""
    if hasattr(model_or_run, "run_with_cache") and hasattr(model_or_run, "cfg"):
        return model_or_run
    from ...zoo.gpt import to_bridge

    return to_bridge(model_or_run, **kwargs)


def bridge_hook_count(bridge) -> int:
    """Hooks on the bridge's hook points (what ``run_with_hooks`` adds); 0 after every analysis.

    :func:`interp.hooks.hook_count` of a whole bridge also counts the pre-hooks the bridge
    wires into itself on its first forward pass, which are part of its machinery.
    """
    from ...hooks import hook_count

    return sum(hook_count(point) for point in bridge.hook_dict.values())


def head_labels(n_layers: int, n_heads: int) -> list[str]:
    return [f"L{layer}H{head}" for layer in range(n_layers) for head in range(n_heads)]


def check_heads(n_layers: int, n_heads: int, layers: list[int] | None = None,
                heads: list[int] | None = None) -> tuple[list[int], list[int]]:
    """Validate layer and head indices (``None``: all); an :class:`InterpError` says the valid range."""
    layers = list(range(n_layers)) if layers is None else list(layers)
    heads = list(range(n_heads)) if heads is None else list(heads)
    for layer in layers:
        if not 0 <= layer < n_layers:
            raise InterpError(f"unknown layer {layer}: the model has {n_layers} layer{'s' * (n_layers > 1)} "
                              f"(0-{n_layers - 1})")
    for head in heads:
        if not 0 <= head < n_heads:
            raise InterpError(f"unknown head {head}: each layer has {n_heads} head{'s' * (n_heads > 1)} "
                              f"(0-{n_heads - 1})")
    return layers, heads


def _tensor_json(t: torch.Tensor) -> list:
    return t.detach().cpu().float().tolist()


# ------------------------------------------------------------------ token sources


def run_vocabulary(run):
    """The :class:`~interp.data.text.Vocabulary` a run was trained with."""
    from ...data.text import Vocabulary

    vocab = tuple(run.config.data.vocab)
    if not vocab:
        raise InterpError(f"run {run.name} has no vocabulary; it is not a language-model run")
    return Vocabulary(vocab)


def prompt_tokens(run, prompt: str | None, *, seed: int = 0) -> torch.Tensor:
    """A prompt as token ids ``(T,)``, checked against the run's vocabulary and context.

    ``None`` gives a short induction probe (BOS, a random block, the block again) for
    token-task runs, and an error for text runs.
    """
    vocab = run_vocabulary(run)
    context = run.config.model_config["block_size"]
    if prompt is None:
        if vocab.is_char:
            raise InterpError("give a prompt with --prompt TEXT (characters of the run's training text)")
        # A short induction probe: BOS, 12 random tokens, the same 12 again (readable heatmaps).
        return repeated_tokens(run, 1, seed=seed, seq_len=min(25, context))[0]
    tokens = vocab.encode(prompt)
    if len(tokens) == 0:
        raise InterpError("the prompt is empty; give at least one character")
    if len(tokens) > context:
        raise InterpError(f"the prompt has {len(tokens)} tokens but the model's context is {context}; "
                          f"shorten it to at most {context}")
    return tokens


def repeated_tokens(run, n: int, *, seed: int = 0, seq_len: int | None = None,
                    block: int | None = None) -> torch.Tensor:
    """An induction probe: BOS (if the vocabulary has one), then a random block repeated to fill the context.

    ``block``: the block length (distinct tokens where the vocabulary allows); default
    half the context, ((seq_len - 1) // 2), as in the usual induction-score recipe. A head
    that merely attends to all earlier tokens then scores near 0 on the induction mask,
    and an induction head near 1. One length alone can be matched by position (a head
    that attends ``block - 1`` back); :func:`length_probe` spans several.
    """
    from ...data.text import repeated_random_tokens

    seq_len = seq_len or run.config.model_config["block_size"]
    vocab = run_vocabulary(run)
    block = block or (seq_len - 1) // 2
    g = torch.Generator().manual_seed(seed)
    return repeated_random_tokens(n, seq_len, len(vocab), g, bos=vocab.bos, min_block=block, max_block=block)


def probe_lengths(seq_len: int, n_tokens: int, count: int = 4, *, shortest: int | None = None,
                  longest: int | None = None) -> tuple[int, ...]:
    """Block lengths of the head-score probe: ``count`` geometrically spaced lengths, by default from
    about a fifth of half the context up to half the context (and no more than ``n_tokens``).

    >>> probe_lengths(64, 128)
    (7, 11, 19, 31)
    >>> probe_lengths(64, 128, shortest=8, longest=24)
    (8, 12, 17, 24)
    """
    longest = max(1, min(longest or (seq_len - 1) // 2, (seq_len - 1) // 2, n_tokens))
    shortest = min(longest, shortest or max(3, -(-longest // 5)))
    if longest == shortest:
        return (longest,)
    ratio = (longest / shortest) ** (1 / (count - 1))
    return tuple(sorted({int(round(shortest * ratio ** i)) for i in range(count)}))


def length_probe(run, n: int, *, seed: int = 0, lengths: tuple[int, ...] | None = None) -> dict[int, torch.Tensor]:
    """The head-score probe at several block lengths: ``{block length: tokens (n, T)}``.

    A real induction head scores high at every length; a head that attends a fixed
    distance back scores high at one length only (a 1-layer model trained on one
    repeat length does that), so :func:`head_scores` reports each head's minimum.

    >>> probe = length_probe(run, 64)      # {7: ..., 11: ..., 19: ..., 31: ...} for a 64-token context (no known training range)
    """
    seq_len = run.config.model_config["block_size"]
    vocab = run_vocabulary(run)
    n_tokens = len(vocab) - (vocab.bos is not None)
    if lengths is None:
        opts = run.config.data.options if run.config.data.name == "induction" else {}
        lo, hi = opts.get("min_block", 8), opts.get("max_block", 24)
        # Trained on varying lengths: probe inside that range. Blocks longer than any it saw
        # underestimate real induction heads (0.85 -> 0.49 at 31 tokens after blocks of 8-24), and
        # no position trick solves varying lengths anyway; other runs get the wide spread.
        varying = bool(opts) and lo < hi
        lengths = probe_lengths(seq_len, n_tokens, shortest=lo if varying else None, longest=hi if varying else None)
    return {b: repeated_tokens(run, n, seed=seed + 1000 * i, block=b) for i, b in enumerate(lengths)}


def task_tokens(run, n: int, *, seed: int = 0, seq_len: int | None = None) -> torch.Tensor:
    """Sequences of the run's induction task (blocks of varying length, repeated to fill the
    context); for text runs, repeated random blocks of their vocabulary in the same way."""
    from ...data.text import InductionSpec, induction_batch, repeated_random_tokens

    g = torch.Generator().manual_seed(seed)
    cfg = run.config.model_config
    seq_len = seq_len or cfg["block_size"]
    if run.config.data.name == "induction":
        opts = run.config.data.options
        spec = InductionSpec(vocab_size=cfg["vocab_size"], seq_len=seq_len,
                             min_block=opts.get("min_block", 8), max_block=opts.get("max_block", 24))
        spec.check()
        return induction_batch(n, spec, g)
    vocab = run_vocabulary(run)
    return repeated_random_tokens(n, seq_len, len(vocab), g, bos=vocab.bos)


# ------------------------------------------------------------------- attention


@dataclass
class AttentionPatterns:
    """Attention of every head on one prompt: ``patterns[layer, head, query, key]``."""

    tokens: list[str]
    patterns: torch.Tensor
    run: str = ""

    def to_json(self) -> dict:
        return {"run": self.run, "tokens": self.tokens, "patterns": _tensor_json(self.patterns)}

    @classmethod
    def from_json(cls, d: dict) -> "AttentionPatterns":
        return cls(d["tokens"], torch.tensor(d["patterns"]), d.get("run", ""))


def cached_patterns(bridge, tokens: torch.Tensor) -> torch.Tensor:
    """``(B, n_layers, n_heads, T, T)`` attention patterns from ``hook_pattern`` (no hooks left behind)."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens.to(bridge.cfg.device),
                                         names_filter=lambda name: name.endswith("attn.hook_pattern"))
    return torch.stack([cache["pattern", layer] for layer in range(bridge.cfg.n_layers)], dim=1).cpu()


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
    return AttentionPatterns(labels, cached_patterns(bridge, tokens[None])[0], getattr(model_or_run, "name", ""))


def plot_attention(result: AttentionPatterns, *, layers: list[int] | None = None, heads: list[int] | None = None):
    """A grid of heatmaps (rows: layers, columns: heads), token labels on both axes."""
    plt = pyplot()
    n_layers, n_heads, T, _ = result.patterns.shape
    layers, heads = check_heads(n_layers, n_heads, layers, heads)
    cell = max(2.4, min(0.22 * T, 7.0))
    fig, axes = plt.subplots(len(layers), len(heads), figsize=(cell * len(heads) + 0.6, cell * len(layers) + 0.4),
                             squeeze=False, layout="constrained")
    fontsize = max(4, min(9, int(200 / max(T, 1))))
    for i, layer in enumerate(layers):
        for j, head in enumerate(heads):
            ax = axes[i][j]
            ax.imshow(result.patterns[layer, head].numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
            ax.set_title(f"L{layer}H{head}", fontsize=10)
            ax.set_xticks(range(T))
            ax.set_yticks(range(T))
            ax.set_xticklabels(result.tokens, rotation=90, fontsize=fontsize)
            ax.set_yticklabels(result.tokens, fontsize=fontsize)
            if j == 0:
                ax.set_ylabel("query")
            if i == len(layers) - 1:
                ax.set_xlabel("key")
    fig.suptitle(f"Attention patterns{' of ' + result.run if result.run else ''}")
    return fig


def save_attention(result: AttentionPatterns, out_dir: str | os.PathLike, **plot_kwargs) -> dict[str, Path]:
    """``attention.json`` + ``attention.png`` under ``out_dir``."""
    out = Path(out_dir)
    write_json(out / "attention.json", result.to_json())
    png = save_figure(plot_attention(result, **plot_kwargs), out / "attention.png")
    return {"json": out / "attention.json", "png": png}


def load_attention(out_dir: str | os.PathLike) -> AttentionPatterns:
    return AttentionPatterns.from_json(json.loads((Path(out_dir) / "attention.json").read_text()))


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

    With several probe lengths (:func:`length_probe`), ``scores`` holds each head's
    minimum over the lengths and ``by_length`` the score at each; ``seq_len`` is the
    context and ``lengths`` the block lengths.
    """

    scores: dict[str, torch.Tensor]
    n_sequences: int
    seq_len: int
    run: str = ""
    lengths: tuple[int, ...] = ()
    by_length: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

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

    def to_json(self) -> dict:
        return {"run": self.run, "n_sequences": self.n_sequences, "seq_len": self.seq_len,
                "scores": {k: _tensor_json(v) for k, v in self.scores.items()},
                "lengths": list(self.lengths),
                "by_length": {str(b): {k: _tensor_json(v) for k, v in s.items()} for b, s in self.by_length.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "HeadScores":
        by_length = {int(b): {k: torch.tensor(v) for k, v in s.items()} for b, s in d.get("by_length", {}).items()}
        return cls({k: torch.tensor(v) for k, v in d["scores"].items()}, d["n_sequences"], d["seq_len"],
                   d.get("run", ""), tuple(d.get("lengths", ())), by_length)


def head_scores(model_or_run, *, tokens: torch.Tensor | None = None, probe: dict[int, torch.Tensor] | None = None,
                n_sequences: int = 64, seed: int = 0) -> HeadScores:
    """Previous-token, induction, duplicate-token and first-token score of every head.

    ``tokens`` ``(B, T)``: score on these sequences alone. Otherwise ``probe``
    (:func:`length_probe`, built for the run when not given: ``n_sequences`` repeated
    random blocks at each of several lengths) and each score is the head's minimum over
    the lengths, so a head that only matches one repeat length by position is not called
    an induction head; ``by_length`` keeps every length's scores.

    >>> scores = head_scores(run)
    >>> scores.induction, scores.length_dependent()
    """
    bridge = as_bridge(model_or_run)
    name = getattr(model_or_run, "name", "")
    if tokens is not None:
        patterns = cached_patterns(bridge, tokens)
        return HeadScores(score_patterns(patterns, tokens.cpu()), len(tokens), tokens.shape[1], name)
    if probe is None:
        if not hasattr(model_or_run, "config") or not hasattr(model_or_run.config, "data"):
            raise ValueError("pass tokens= or probe= when scoring a bare model or bridge")
        probe = length_probe(model_or_run, n_sequences, seed=seed)
    by_length = {b: score_patterns(cached_patterns(bridge, t), t.cpu()) for b, t in probe.items()}
    names = next(iter(by_length.values())).keys()
    scores = {k: torch.stack([s[k] for s in by_length.values()]).min(0).values for k in names}
    first = next(iter(probe.values()))
    return HeadScores(scores, len(first), first.shape[1], name, tuple(probe), by_length)


def plot_head_scores(result: HeadScores):
    """One heatmap per score type (rows: layers, columns: heads), values written in."""
    plt = pyplot()
    n_layers, n_heads = result.shape
    names = list(result.scores)
    fig, axes = plt.subplots(1, len(names), figsize=(max(2.2, 0.55 * n_heads + 1.2) * len(names), 0.5 * n_layers + 1.8),
                             squeeze=False, layout="constrained")
    for ax, name in zip(axes[0], names):
        values = result.scores[name].numpy()
        ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        for layer in range(n_layers):
            for head in range(n_heads):
                v = values[layer, head]
                ax.text(head, layer, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if v > 0.6 else "white")
        ax.set_title(SCORE_TITLES.get(name, name), fontsize=10)
        ax.set_xticks(range(n_heads))
        ax.set_yticks(range(n_layers))
        ax.set_xlabel("head")
    axes[0][0].set_ylabel("layer")
    blocks = (f", blocks of {', '.join(map(str, result.lengths))} tokens; each head's minimum"
              if len(result.lengths) > 1 else "")
    fig.suptitle(f"Head scores{' of ' + result.run if result.run else ''} ({result.n_sequences} repeated random "
                 f"sequences of {result.seq_len} tokens{blocks})", fontsize=10)
    return fig


def save_head_scores(result: HeadScores, out_dir: str | os.PathLike) -> dict[str, Path]:
    out = Path(out_dir)
    write_json(out / "heads.json", result.to_json())
    return {"json": out / "heads.json", "png": save_figure(plot_head_scores(result), out / "heads.png")}


def load_head_scores(out_dir: str | os.PathLike) -> HeadScores:
    return HeadScores.from_json(json.loads((Path(out_dir) / "heads.json").read_text()))


# ------------------------------------------------------- loss by token position


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

    def to_json(self) -> dict:
        return {"run": self.run, "data": self.data, "loss": _tensor_json(self.loss), "icl_score": self.icl_score,
                "early": list(self.early), "late": list(self.late)}

    @classmethod
    def from_json(cls, d: dict) -> "PositionLoss":
        return cls(torch.tensor(d["loss"]), d["icl_score"], tuple(d["early"]), tuple(d["late"]), d.get("data", ""),
                   d.get("run", ""))


def icl_windows(n_positions: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(early, late)`` half-open position ranges used by the in-context-learning score."""
    early = (max(1, round(0.1 * n_positions)), max(2, round(0.2 * n_positions)))
    late = (min(n_positions - 1, round(0.9 * n_positions)), n_positions)
    return early, late


def icl_score(loss: torch.Tensor) -> float:
    """Late-context loss minus early-context loss for a per-position loss curve."""
    (e0, e1), (l0, l1) = icl_windows(len(loss))
    return float(loss[l0:l1].mean() - loss[e0:e1].mean())


@torch.no_grad()
def per_position_loss(model, tokens: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Mean cross-entropy of predicting ``tokens[:, t+1]`` at each position ``t`` ``(T-1,)``.

    ``model`` is any callable mapping ``(B, T)`` ids to logits (our GPT or a bridge).
    """
    import torch.nn.functional as F

    device = next(model.parameters()).device
    total = torch.zeros(tokens.shape[1] - 1)
    for i in range(0, len(tokens), batch_size):
        x = tokens[i:i + batch_size].to(device)
        logits = model(x[:, :-1]).float()
        loss = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # (B, T-1)
        total += loss.sum(0).cpu()
    return total / len(tokens)


def loss_by_position(model_or_run, tokens: torch.Tensor | None = None, *, n_sequences: int = 256,
                     seed: int = 0) -> PositionLoss:
    """Loss at each context position on held-out text (text runs) or task sequences.

    ``tokens`` ``(B, T+1)`` default to windows of the run's validation text, or to its
    induction task.
    """
    model = getattr(model_or_run, "model", model_or_run)
    data = "given tokens"
    if tokens is None:
        run = model_or_run
        data = run.config.data.name
        context = run.config.model_config["block_size"]
        if run_vocabulary(run).is_char:
            from ...data.text import load_char_corpus, random_windows

            corpus = load_char_corpus(data, progress=False)
            tokens = random_windows(corpus.val, n_sequences, context, torch.Generator().manual_seed(seed))
        else:
            tokens = task_tokens(run, n_sequences, seed=seed, seq_len=context + 1)
    was_training = model.training
    model.eval()
    try:
        loss = per_position_loss(model, tokens)
    finally:
        model.train(was_training)
    early, late = icl_windows(len(loss))
    return PositionLoss(loss, icl_score(loss), early, late, data, getattr(model_or_run, "name", ""))


def plot_position_loss(result: PositionLoss):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
    ax.plot(range(len(result.loss)), result.loss.numpy(), color="#1f77b4")
    for (a, b), label, color in ((result.early, "early", "#2ca02c"), (result.late, "late", "#d62728")):
        ax.axvspan(a - 0.5, b - 0.5, color=color, alpha=0.12, label=f"{label} ({a}-{b - 1})")
    ax.set_xlabel("token position")
    ax.set_ylabel("loss (nats)")
    ax.set_title(f"Loss by position; in-context-learning score {result.icl_score:+.3f}", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def save_position_loss(result: PositionLoss, out_dir: str | os.PathLike) -> dict[str, Path]:
    out = Path(out_dir)
    write_json(out / "position_loss.json", result.to_json())
    return {"json": out / "position_loss.json",
            "png": save_figure(plot_position_loss(result), out / "position_loss.png")}


def load_position_loss(out_dir: str | os.PathLike) -> PositionLoss:
    return PositionLoss.from_json(json.loads((Path(out_dir) / "position_loss.json").read_text()))


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

    def to_json(self) -> dict:
        return {"run": self.run, "epochs": self.epochs, "steps": self.steps, "seconds": self.seconds,
                "val_loss": self.val_loss, "scores": {k: _tensor_json(v) for k, v in self.scores.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "TrainingDynamics":
        return cls(d["epochs"], d["steps"], d["seconds"], d["val_loss"],
                   {k: torch.tensor(v) for k, v in d["scores"].items()}, d.get("run", ""))


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


def plot_training_dynamics(result: TrainingDynamics, names: tuple[str, ...] = ("induction", "prev_token")):
    """Each head's scores against training time, with the validation loss: the phase change."""
    plt = pyplot()
    names = [n for n in names if n in result.scores]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.2 * (len(names) + 1), 3.4), squeeze=False,
                             layout="constrained")
    x = result.seconds
    cmap = plt.get_cmap("tab10")
    for ax, name in zip(axes[0], names):
        values = result.scores[name]  # (E, L, H)
        _, n_layers, n_heads = values.shape
        for layer in range(n_layers):
            for head in range(n_heads):
                ax.plot(x, values[:, layer, head].numpy(), color=cmap(layer % 10), alpha=0.85,
                        linestyle=("-", "--", ":", "-.")[head % 4], label=f"L{layer}H{head}")
        ax.set_ylim(0, 1)
        ax.set_xlabel("training seconds")
        ax.set_title(f"{SCORE_TITLES.get(name, name)} score", fontsize=10)
    if names:
        axes[0][0].legend(fontsize=6, ncol=2)
    ax = axes[0][-1]
    loss = [(s, v) for s, v in zip(x, result.val_loss) if v is not None]
    if loss:
        ax.plot([s for s, _ in loss], [v for _, v in loss], color="black")
    ax.set_xlabel("training seconds")
    ax.set_title("validation loss", fontsize=10)
    fig.suptitle(f"Training dynamics{' of ' + result.run if result.run else ''}", fontsize=10)
    return fig


def save_training_dynamics(result: TrainingDynamics, out_dir: str | os.PathLike) -> dict[str, Path]:
    out = Path(out_dir)
    write_json(out / "dynamics.json", result.to_json())
    return {"json": out / "dynamics.json", "png": save_figure(plot_training_dynamics(result), out / "dynamics.png")}


def load_training_dynamics(out_dir: str | os.PathLike) -> TrainingDynamics:
    return TrainingDynamics.from_json(json.loads((Path(out_dir) / "dynamics.json").read_text()))
