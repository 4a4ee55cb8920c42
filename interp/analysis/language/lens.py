"""Logit lens and direct logit attribution for one prompt, through TransformerLens.

The logit lens reads the accumulated residual stream before every layer (and after
the last) through the final LayerNorm and the unembedding: "what would the model
predict if it stopped here?". TransformerLens's ``logit_lens`` does the reading; the
last entry reproduces the model's own log-probabilities.

Direct logit attribution splits the logit of the actual next token into each head's
direct contribution: the head's output (``hook_z`` times ``W_O``) scaled by the final
LayerNorm's cached scale, dotted with the token's unembedding column
(``ActivationCache.stack_head_results`` + ``logit_attrs``).

>>> lens = logit_lens(run, prompt_tokens(run, "ROMEO:\\nWhat"))
>>> lens.top_tokens[-1][-1]   # the model's top predictions after the last token
>>> dla = direct_logit_attribution(run, prompt_tokens(run, "ROMEO:\\nWhat"))
>>> save_lens(lens, dla, "reports/gpt/transformer")
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ...io import write_json
from ...plots import pyplot, save_figure
from .heads import _tensor_json, as_bridge, head_labels, run_vocabulary


def _labeler(model_or_run):
    """Token id -> printable label for a run; str(id) for a bare model."""
    if hasattr(model_or_run, "config") and hasattr(model_or_run.config, "data"):
        vocab = run_vocabulary(model_or_run)
        return lambda ids: vocab.labels(ids)
    return lambda ids: [str(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]


@dataclass
class LogitLens:
    """Per layer and position: the top-k next tokens and the actual next token's probability.

    ``layers`` name the residual stream read: ``embed`` (before block 0), ``after L0`` ...
    ``final`` (after the last block: the model's own prediction).
    """

    tokens: list[str]
    layers: list[str]
    top_tokens: list[list[list[str]]]  # [layer][position][k]
    top_probs: torch.Tensor  # (layers, positions, k)
    target_prob: torch.Tensor  # (layers, positions - 1): probability of the actual next token
    target_rank: torch.Tensor  # (layers, positions - 1): its rank (0 = top)
    run: str = ""

    def to_json(self) -> dict:
        return {"run": self.run, "tokens": self.tokens, "layers": self.layers, "top_tokens": self.top_tokens,
                "top_probs": _tensor_json(self.top_probs), "target_prob": _tensor_json(self.target_prob),
                "target_rank": self.target_rank.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "LogitLens":
        return cls(d["tokens"], d["layers"], d["top_tokens"], torch.tensor(d["top_probs"]),
                   torch.tensor(d["target_prob"]), torch.tensor(d["target_rank"]), d.get("run", ""))


def _layer_names(labels: list[str]) -> list[str]:
    names = []
    for label in labels:  # TransformerLens: "0_pre", "1_pre", ..., "final_post"
        if label == "final_post":
            names.append("final")
        elif label.endswith("_pre"):
            i = int(label.split("_")[0])
            names.append("embed" if i == 0 else f"after L{i - 1}")
        else:
            names.append(label)
    return names


def logit_lens(model_or_run, tokens: torch.Tensor, *, top_k: int = 5) -> LogitLens:
    """The logit lens on one prompt ``tokens`` ``(T,)``."""
    from transformer_lens.tools.analysis.logit_lens import logit_lens as tl_logit_lens

    bridge = as_bridge(model_or_run)
    labels = _labeler(model_or_run)
    x = tokens[None].to(bridge.cfg.device)
    with torch.no_grad():
        result = tl_logit_lens(bridge, x, positions=None, return_type="log_probs")
    logp = result.values[:, 0].float().cpu()  # (layers, T, vocab)
    probs = logp.exp()
    k = min(top_k, probs.shape[-1])
    top_p, top_i = probs.topk(k, dim=-1)
    targets = tokens[1:].cpu()
    target_logp = logp[:, :-1].gather(-1, targets[None, :, None].expand(len(logp), -1, 1))[..., 0]
    rank = (logp[:, :-1] > target_logp[..., None]).sum(-1)
    return LogitLens(
        tokens=labels(tokens), layers=_layer_names(result.labels),
        top_tokens=[[labels(top_i[layer, pos]) for pos in range(top_i.shape[1])] for layer in range(top_i.shape[0])],
        top_probs=top_p, target_prob=target_logp.exp(), target_rank=rank, run=getattr(model_or_run, "name", ""))


@dataclass
class DirectLogitAttribution:
    """Each head's direct contribution to the logit of the actual next token, per position."""

    tokens: list[str]
    targets: list[str]
    heads: list[str]
    attribution: torch.Tensor  # (n_layers * n_heads, positions - 1)
    run: str = ""

    def by_head(self) -> torch.Tensor:
        """Mean attribution over positions, per head."""
        return self.attribution.mean(-1)

    def to_json(self) -> dict:
        return {"run": self.run, "tokens": self.tokens, "targets": self.targets, "heads": self.heads,
                "attribution": _tensor_json(self.attribution)}

    @classmethod
    def from_json(cls, d: dict) -> "DirectLogitAttribution":
        return cls(d["tokens"], d["targets"], d["heads"], torch.tensor(d["attribution"]), d.get("run", ""))


def direct_logit_attribution(model_or_run, tokens: torch.Tensor) -> DirectLogitAttribution:
    """Direct logit attribution of every head for the next token at each position of ``tokens`` ``(T,)``."""
    bridge = as_bridge(model_or_run)
    labels = _labeler(model_or_run)
    x = tokens[None].to(bridge.cfg.device)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(x)
        stack = cache.stack_head_results(layer=-1)  # (heads, 1, T, d_model), before the final LayerNorm
        # logit_attrs applies the final LayerNorm's cached scale, then dots with W_U[:, target].
        attribution = cache.logit_attrs(stack[:, :, :-1], tokens=x[:, 1:], pos_slice=slice(0, -1))
    return DirectLogitAttribution(labels(tokens), labels(tokens[1:]), head_labels(bridge.cfg.n_layers, bridge.cfg.n_heads),
                                  attribution[:, 0].float().cpu(), getattr(model_or_run, "name", ""))


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


def save_lens(lens: LogitLens, dla: DirectLogitAttribution | None, out_dir: str | os.PathLike) -> dict[str, Path]:
    """``lens.json``/``lens.png`` and ``dla.json``/``dla.png`` under ``out_dir``."""
    out = Path(out_dir)
    write_json(out / "lens.json", lens.to_json())
    paths = {"lens_json": out / "lens.json", "lens_png": save_figure(plot_logit_lens(lens), out / "lens.png")}
    if dla is not None:
        write_json(out / "dla.json", dla.to_json())
        paths["dla_json"] = out / "dla.json"
        paths["dla_png"] = save_figure(plot_direct_logit_attribution(dla), out / "dla.png")
    return paths


def load_lens(out_dir: str | os.PathLike) -> tuple[LogitLens, DirectLogitAttribution | None]:
    out = Path(out_dir)
    lens = LogitLens.from_json(json.loads((out / "lens.json").read_text()))
    dla_file = out / "dla.json"
    dla = DirectLogitAttribution.from_json(json.loads(dla_file.read_text())) if dla_file.exists() else None
    return lens, dla
