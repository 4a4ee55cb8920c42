"""The figures of the language results, drawn at save time by :mod:`interp.results.language`.

Each ``plot_*`` takes one result object and returns a matplotlib figure (through
:func:`interp.plots.pyplot`); :func:`interp.plots.save_figure` writes it.

>>> fig = plot_head_scores(head_scores(run))
>>> save_figure(fig, "reports/attn-only/transformer/heads.png")
"""

from __future__ import annotations

import torch

from ..analysis.language.bridge import check_heads
from ..analysis.language.circuits import CircuitScores
from ..analysis.language.heads import SCORE_TITLES, AttentionPatterns, HeadScores, TrainingDynamics
from ..analysis.language.lens import DirectLogitAttribution, LogitLens
from ..analysis.language.patching import AblationResult
from ..analysis.language.position import PositionLoss
from ..plots import pyplot


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


def plot_position_loss(result: PositionLoss):
    """The loss curve over context positions, the early and late windows of the ICL score shaded."""
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


def plot_logit_lens(result: LogitLens):
    """Probability of the actual next token, per layer (rows) and position (columns), top-1 written in."""
    plt = pyplot()
    n_layers, n_pos = result.target_prob.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.42 * n_pos + 2), 0.55 * n_layers + 1.8))
    ax.imshow(result.target_prob.numpy(), cmap="Greens", vmin=0.0, vmax=1.0, aspect="auto")
    fontsize = max(5, min(8, int(240 / max(n_pos, 1))))
    for layer in range(n_layers):
        for pos in range(n_pos):
            p = float(result.target_prob[layer, pos])
            ax.text(pos, layer, result.top_tokens[layer][pos][0], ha="center", va="center", fontsize=fontsize,
                    color="white" if p > 0.6 else "black")
    ax.set_yticks(range(n_layers))
    ax.set_yticklabels(result.layers)
    ax.set_xticks(range(n_pos))
    ax.set_xticklabels([f"{a}→{b}" for a, b in zip(result.tokens[:-1], result.tokens[1:])], rotation=90,
                       fontsize=fontsize)
    ax.set_xlabel("position (input → actual next token); text: top-1 prediction")
    ax.set_title("Logit lens: probability of the actual next token", fontsize=10)
    return fig


def plot_direct_logit_attribution(result: DirectLogitAttribution):
    """Heads (rows) by position (columns): red raises the next token's logit, blue lowers it."""
    plt = pyplot()
    values = result.attribution.numpy()
    n_heads, n_pos = values.shape
    bound = float(abs(values).max()) or 1.0
    fig, ax = plt.subplots(figsize=(max(4.0, 0.42 * n_pos + 2.5), 0.32 * n_heads + 1.8))
    im = ax.imshow(values, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    fig.colorbar(im, ax=ax, label="logit contribution")
    fontsize = max(5, min(8, int(240 / max(n_pos, 1))))
    ax.set_yticks(range(n_heads))
    ax.set_yticklabels(result.heads, fontsize=7)
    ax.set_xticks(range(n_pos))
    ax.set_xticklabels([f"{a}→{b}" for a, b in zip(result.tokens[:-1], result.targets)], rotation=90,
                       fontsize=fontsize)
    ax.set_title("Direct logit attribution of each head to the actual next token", fontsize=10)
    return fig


def plot_circuit_scores(result: CircuitScores):
    """Copying score per head; for each mode, composition of earlier heads (rows) into later heads (columns)."""
    plt = pyplot()
    L, H = result.copying.shape
    modes = list(result.composition) if L > 1 else []
    side = max(2.6, 0.32 * (L - 1) * H + 1.2)
    fig, axes = plt.subplots(1, 1 + len(modes), figsize=(max(2.8, 0.55 * H + 1.4) + side * len(modes), side + 0.6),
                             squeeze=False, layout="constrained")
    ax = axes[0][0]
    ax.imshow(result.copying.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for layer in range(L):
        for head in range(H):
            v = float(result.copying[layer, head])
            ax.text(head, layer, f"{v:+.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(range(H))
    ax.set_yticks(range(L))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title("OV copying score", fontsize=10)
    if modes:
        # Earlier heads (layers 0..L-2) x later heads (layers 1..L-1), one colour scale for all modes.
        mats = {m: result.composition[m][:-1, :, 1:, :].reshape((L - 1) * H, (L - 1) * H).numpy() for m in modes}
        vmax = max(max(float(m.max()) for m in mats.values()), 2 * max(result.baseline.values(), default=0)) or 1.0
        for ax, mode in zip(axes[0][1:], modes):
            im = ax.imshow(mats[mode], cmap="magma", vmin=0, vmax=vmax)
            ax.set_xticks(range((L - 1) * H))
            ax.set_xticklabels(result.heads[H:], rotation=90, fontsize=6)
            ax.set_yticks(range((L - 1) * H))
            ax.set_yticklabels(result.heads[:-H], fontsize=6)
            ax.set_xlabel("later head")
            ax.set_title(f"{mode}-composition\n(random matrices: {result.baseline.get(mode, float('nan')):.2f})",
                         fontsize=9)
        axes[0][1].set_ylabel("earlier head")
        fig.colorbar(im, ax=list(axes[0][1:]), shrink=0.8, label="composition score")
    fig.suptitle(f"Circuits{' of ' + result.run if result.run else ''}", fontsize=10)
    return fig


def plot_ablation(result: AblationResult):
    """Loss increase per ablated head (rows: layers, columns: heads); red hurts, blue helps."""
    plt = pyplot()
    delta = result.delta.numpy()
    L, H = delta.shape
    bound = float(abs(torch.nan_to_num(result.delta)).max()) or 1.0
    fig, ax = plt.subplots(figsize=(max(3.0, 0.6 * H + 1.8), 0.5 * L + 1.6))
    im = ax.imshow(delta, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    for layer in range(L):
        for head in range(H):
            if delta[layer, head] == delta[layer, head]:  # not NaN
                ax.text(head, layer, f"{delta[layer, head]:+.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(H))
    ax.set_yticks(range(L))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    fig.colorbar(im, ax=ax, label="loss increase (nats)")
    ax.set_title(f"{result.kind}-ablation on the induction task (clean loss {result.base_loss:.3f})", fontsize=9)
    return fig
