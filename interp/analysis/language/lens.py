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
>>> interp.results.save(lens, "reports/gpt/transformer")     # lens.json + lens.png (interp.results.language)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .bridge import as_bridge, head_labels
from .tokens import run_vocabulary, token_digest


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
    settings: dict = field(default_factory=dict)


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
        top_probs=top_p, target_prob=target_logp.exp(), target_rank=rank, run=getattr(model_or_run, "name", ""),
        settings={"tokens": token_digest(tokens), "top_k": top_k})


@dataclass
class DirectLogitAttribution:
    """Each head's direct contribution to the logit of the actual next token, per position."""

    tokens: list[str]
    targets: list[str]
    heads: list[str]
    attribution: torch.Tensor  # (n_layers * n_heads, positions - 1)
    run: str = ""
    settings: dict = field(default_factory=dict)

    def by_head(self) -> torch.Tensor:
        """Mean attribution over positions, per head."""
        return self.attribution.mean(-1)


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
                                  attribution[:, 0].float().cpu(), getattr(model_or_run, "name", ""),
                                  {"tokens": token_digest(tokens)})
