"""Small decoder-only transformers: ``gpt`` and ``attn-only``, analysable with TransformerLens.

``gpt`` is the model of Karpathy's "Let's build GPT" lecture (``gpt.py`` of ng-video-lecture)::

    token embedding + learned position embedding
    n_layer x [ x + attn(ln1(x)) ;  x + mlp(ln2(x)) ]      pre-LayerNorm blocks
    ln_f -> lm_head (Linear with bias)
    attn: n_head causal heads of size n_embd // n_head, query/key/value without bias,
          output projection with bias, scores scaled by head_size ** -0.5
    mlp:  Linear(n_embd, 4 n_embd) -> ReLU -> Linear(4 n_embd, n_embd)

``attn-only`` is the same model without MLPs (LayerNorm optional, on by default: without
it the tiny initial embeddings keep attention uniform for much longer): the toy models
of "A Mathematical Framework for Transformer Circuits", for the induction task.

Where we differ from Karpathy's code, and why:

- ``dropout`` defaults to 0.0 (his 0.2): for a few minutes of CPU training dropout only
  slows learning. It is configurable and, as in his code, only active in training mode;
  analyses run in eval mode, where the two agree exactly.
- The query, key and value projections of all heads are one fused ``Linear(n_embd,
  3 n_embd)`` (his: one small Linear per head), and attention uses
  ``F.scaled_dot_product_attention``. Both compute the same function, faster.
- Weights are initialised as in his code (normal, std 0.02; zero biases).
- The lm_head keeps its bias, as in his code. TransformerLens's native model has a
  bias-free head; its bridge gives that head a bias buffer (``unembed.bias``, TL's
  ``b_U``), into which :func:`~interp.analysis.language.bridge.to_bridge` loads ours, so
  nothing is lost.

We train this plain module (training through the bridge's hook points costs more; see
P5 in ``benchmarks/transformer_train.py``) and analyse it through
:func:`interp.analysis.language.bridge.to_bridge`,
which boots TransformerLens's native architecture with the same shapes and loads our
weights into it. The bridge's
logits equal the module's (tests check 1e-5), and every TransformerLens tool works on
it with its standard hook names (``blocks.0.attn.hook_pattern``, ``blocks.0.hook_resid_pre``).

>>> from interp.zoo import create_model
>>> from interp.analysis.language.bridge import to_bridge
>>> model = create_model("attn-only", n_layer=2, vocab_size=16, block_size=32)
>>> bridge = to_bridge(model)
>>> logits, cache = bridge.run_with_cache(torch.zeros(1, 8, dtype=torch.long))
>>> cache["blocks.1.attn.hook_pattern"].shape
torch.Size([1, 4, 8, 8])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InterpError
from .registry import register_model

__all__ = ["GPT", "GPTConfig", "bridge_config", "bridge_state_dict"]


@dataclass(frozen=True)
class GPTConfig:
    """Everything that determines a ``gpt`` or ``attn-only`` model."""

    vocab_size: int = 65
    """Filled in from the data at training time."""
    block_size: int = 64
    """Context length (learned position embeddings)."""
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    mlp: bool = True
    """False: attention-only blocks."""
    layer_norm: bool = True
    """False: no LayerNorm anywhere (ln1, ln2, ln_f are identities)."""
    dropout: float = 0.0
    """Karpathy's dropout sites (attention weights, head outputs, MLP output); training only."""

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head


def check_config(cfg: GPTConfig) -> None:
    """Raise :class:`InterpError` for an inconsistent configuration."""
    for key in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
        value = getattr(cfg, key)
        if value <= 0:
            raise InterpError(f"{key} must be > 0, got {value}")
    if cfg.n_embd % cfg.n_head:
        near = cfg.n_head * max(1, round(cfg.n_embd / cfg.n_head))
        raise InterpError(f"n_embd ({cfg.n_embd}) must be divisible by n_head ({cfg.n_head}): each head gets "
                          f"n_embd / n_head dimensions; try n_embd={near}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise InterpError(f"dropout must be in [0, 1), got {cfg.dropout}")


class CausalSelfAttention(nn.Module):
    """``n_head`` causal heads; ``qkv`` holds [W_Q; W_K; W_V] of all heads, head-major."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if q.device.type == "cpu" and q.dtype == torch.bfloat16:
            # Under bf16 autocast, attend in float32 all the same: on CPU the bf16 flash-attention
            # backward is several times slower than the float32 one, eating the matmuls' gain.
            with torch.autocast("cpu", enabled=False):
                y = self._attend(q.float(), k.float(), v.float())
        else:
            y = self._attend(q, k, v)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side, as torch.cat in the lecture
        return self.resid_dropout(self.proj(y))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)


class FeedForward(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.relu(self.fc(x))))


def _norm(cfg: GPTConfig) -> nn.Module:
    return nn.LayerNorm(cfg.n_embd) if cfg.layer_norm else nn.Identity()


class Block(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` unless attention-only."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = _norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = _norm(cfg) if cfg.mlp else None
        self.mlp = FeedForward(cfg) if cfg.mlp else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        if self.mlp is not None:
            x = x + self.mlp(self.ln2(x))
        return x


class GPT(nn.Module):
    """Token ids ``(B, T)`` -> next-token logits ``(B, T, vocab_size)``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        check_config(cfg)
        self.config = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.position_embedding = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = _norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.config.block_size:
            raise InterpError(f"input of {T} tokens is longer than the context ({self.config.block_size} tokens)")
        pos = torch.arange(T, device=idx.device)
        x = self.token_embedding(idx) + self.position_embedding(pos)  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab_size)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` ``(B, T)``; the context is cropped.

        ``temperature`` 0 picks the most likely token. Sampling draws from ``generator``
        only (on the CPU, so a seed gives the same text on every device).
        """
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.config.block_size:])[:, -1, :].float().cpu()
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                probs = F.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)
            idx = torch.cat([idx, nxt.to(idx.device)], dim=1)
        return idx


@register_model("gpt", family="gpt", task="language-model", config=GPTConfig, default_dataset="tinyshakespeare",
                description="Karpathy's 'Let's build GPT', char-level (pre-LN, ReLU MLP; 3 layers x 96 by default)",
                n_layer=3, n_embd=96, n_head=4, block_size=64)
def gpt(cfg: GPTConfig) -> GPT:
    return GPT(cfg)


@register_model("attn-only", family="gpt", task="language-model", config=GPTConfig, default_dataset="induction",
                description="Attention-only transformer (no MLP; --set layer_norm=false to drop LN) for toy tasks",
                n_layer=2, n_head=4, n_embd=64, block_size=64, mlp=False, layer_norm=True, vocab_size=128)
def attn_only(cfg: GPTConfig) -> GPT:
    return GPT(cfg)


# ----------------------------------------------------------------------- the bridge


def bridge_config(cfg: GPTConfig):
    """The ``TransformerBridgeConfig`` of TransformerLens's native model with our shapes."""
    from transformer_lens.config import TransformerBridgeConfig

    return TransformerBridgeConfig(
        d_model=cfg.n_embd, d_head=cfg.head_size, n_heads=cfg.n_head, n_layers=cfg.n_layer,
        n_ctx=cfg.block_size, d_vocab=cfg.vocab_size, d_mlp=4 * cfg.n_embd, act_fn="relu",
        normalization_type="LN" if cfg.layer_norm else None, attn_only=not cfg.mlp, eps=1e-5,
        architecture="TransformerLensNative", model_name="interp-gpt",
        seed=0,  # boot_native then initialises under a forked RNG: the caller's stream is untouched
    )


def bridge_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our weights under the bridge's state-dict names (``blocks.0.attn.q.weight``, ...).

    Query, key and value get zero biases (the lecture's projections have none).
    """
    cfg = model.config
    C = cfg.n_embd
    out = {"embed.weight": model.token_embedding.weight, "pos_embed.weight": model.position_embedding.weight}
    for i, block in enumerate(model.blocks):
        p = f"blocks.{i}."
        if cfg.layer_norm:
            out[p + "ln1.weight"], out[p + "ln1.bias"] = block.ln1.weight, block.ln1.bias
        w_q, w_k, w_v = block.attn.qkv.weight.split(C, dim=0)
        for name, w in (("q", w_q), ("k", w_k), ("v", w_v)):
            out[p + f"attn.{name}.weight"] = w
            out[p + f"attn.{name}.bias"] = torch.zeros(C, dtype=w.dtype, device=w.device)
        out[p + "attn.o.weight"], out[p + "attn.o.bias"] = block.attn.proj.weight, block.attn.proj.bias
        if cfg.mlp:
            if cfg.layer_norm:
                out[p + "ln2.weight"], out[p + "ln2.bias"] = block.ln2.weight, block.ln2.bias
            out[p + "mlp.in.weight"], out[p + "mlp.in.bias"] = block.mlp.fc.weight, block.mlp.fc.bias
            out[p + "mlp.out.weight"], out[p + "mlp.out.bias"] = block.mlp.proj.weight, block.mlp.proj.bias
    if cfg.layer_norm:
        out["ln_final.weight"], out["ln_final.bias"] = model.ln_f.weight, model.ln_f.bias
    out["unembed.weight"], out["unembed.bias"] = model.lm_head.weight, model.lm_head.bias
    return {k: v.detach() for k, v in out.items()}
