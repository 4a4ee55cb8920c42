"""A small transformer as a circuit graph: embeddings, heads and MLPs write, head inputs read.

Nodes (TransformerLens bridge of a ``gpt`` or ``attn-only`` run): ``embed`` (token plus
position embeddings), every head ``L{l}H{h}``, ``mlp{l}`` where the model has MLPs, and
``logits``. The residual stream is a sum of what the writers wrote, so each reader's input
splits into one block per earlier writer, and each block is an edge. A head reads through
three edges per writer, one per input: ``L0H1->L1H2.k`` is what head 2 of layer 1 uses as
*keys* from head 1 of layer 0, the K-composition of an induction circuit.

Every edge ``w->r`` carries ``keep * a_w + (1 - keep) * ablated_w`` into reader ``r``: ``a_w``
is what the writer outputs in this very forward pass (it may itself be changed by edges
further up), ``ablated_w`` its value on the corrupted batch: the per-position *mean* over
it (``ablation="mean"``, the default: mean ablation, no token information left) or each
example's own value (``ablation="corrupt"``: interchange ablation, the empty circuit is
then exactly the model run on the corrupted tokens). ``keep`` is 1 or 0 for a circuit and
any number in between for EAP and EAP-IG (:mod:`.transformer_edges`), whose scores are gradients
with respect to it.

Why not TransformerLens's edges: its per-head writer (``attn.hook_result``) and split
Q/K/V reader hooks (``use_split_qkv_input``) raise ``NotImplementedError`` on the bridge
our models boot into (``AttentionBridge``), so each reader's input is mixed here and fed
through its own LayerNorm and Q/K/V (or MLP, or unembedding) input map at the bridge's
``hook_q``/``hook_k``/``hook_v``, ``mlp.hook_in`` and ``unembed.hook_in``; everything else
(attention, MLPs, unembedding) stays TransformerLens's, under its scoped ``hooks()``. A
graph checks at construction that this rebuilt forward pass equals the bridge's.

Clean inputs: the run's induction task (repeated random blocks). Corrupted: the same with
the repeat broken (:func:`broken_repeat`). Metrics, per example, measured on the positions
where induction applies (the token occurred earlier in the sequence, as
:func:`~interp.analysis.language.patching.induction_loss`):

- ``"loss"``: minus the mean next-token loss there (higher is better, like every metric);
- ``"logit-diff"``: the correct next token's logit minus the mean logit of all other
  tokens. The mean rather than the top rival: linear in the logits, so its gradient (EAP)
  is not carried by whichever wrong token happens to lead, and unchanged by the
  per-position constant that folding LayerNorm adds.

>>> graph = TransformerGraph(run, n=32, metric="loss")
>>> len(graph.edges), graph.edges[-1]            # 2 layers x 4 heads, attention only
(81, Edge('L1H3', 'logits'))
>>> graph.metric(None).mean(), graph.metric([]).mean()    # full model, every edge ablated
"""

from __future__ import annotations

from typing import Any, Callable, Collection

import torch
import torch.nn.functional as F

from ...errors import InterpError, unknown
from ...hooks import eval_mode
from ..language.bridge import as_bridge
from ..language.heads import head_type_masks, repeated_positions
from ..language.tokens import task_tokens, token_digest
from .graph import Edge

METRICS = ("loss", "logit-diff")
ABLATIONS = ("mean", "corrupt")
INPUTS = ("q", "k", "v")
MAX_ROWS = 128
"""Sequences per rebuilt forward pass (several settings of the edges share one pass). 128 rather
than 512: on 1 CPU thread the patching loop of the 4-head induction model took 2.8 s at 128 and
4.6 s at 512 (EAP-IG 1.2 s and 2.4 s): bigger batches leave the cache (benchmarks/circuits.py)."""
_REBUILD_TOLERANCE = 1e-3


# --------------------------------------------------------------------------- inputs


def broken_repeat(tokens: torch.Tensor, *, seed: int = 0, pool: torch.Tensor | None = None) -> torch.Tensor:
    """The sequences with their repeat broken: from the first token that repeats an earlier one to the
    end, every token is resampled from ``pool`` (default: the tokens the batch uses after position 0,
    so BOS stays out). Before that point the sequences are unchanged, so a causal model's activations
    there are the clean ones.

    >>> broken_repeat(torch.tensor([[0, 5, 7, 9, 5, 7, 9]]), seed=1, pool=torch.arange(1, 64))
    tensor([[ 0,  5,  7,  9, 53, 56, 57]])
    """
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be (B, T), got shape {tuple(tokens.shape)}")
    B, T = tokens.shape
    repeated = head_type_masks(tokens.cpu())["duplicate"].any(-1)  # (B, T)
    start = torch.where(repeated.any(1), repeated.float().argmax(1), torch.full((B,), T))
    pool = torch.unique(tokens[:, 1:].cpu()) if pool is None else torch.as_tensor(pool).cpu()
    g = torch.Generator().manual_seed(seed)
    resampled = pool[torch.randint(len(pool), (B, T), generator=g)]
    after = torch.arange(T)[None, :] >= start[:, None]
    return torch.where(after, resampled, tokens.cpu()).to(tokens.device)


# --------------------------------------------------------------------------- metrics


def negative_induction_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``(B,)``: minus each sequence's mean next-token loss at the induction positions."""
    where = repeated_positions(tokens).float()
    loss = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), tokens[:, 1:], reduction="none")
    return -(loss * where).sum(1) / where.sum(1).clamp_min(1)


def induction_logit_diff(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``(B,)``: correct next token's logit minus the mean of the other tokens' logits, averaged over
    the induction positions."""
    where = repeated_positions(tokens).float()
    logits = logits[:, :-1].float()
    correct = logits.gather(-1, tokens[:, 1:, None])[..., 0]
    others = (logits.sum(-1) - correct) / (logits.shape[-1] - 1)
    return ((correct - others) * where).sum(1) / where.sum(1).clamp_min(1)


_METRIC_FUNCTIONS = {"loss": negative_induction_loss, "logit-diff": induction_logit_diff}
Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits (B, T, V), tokens (B, T)) -> (B,)


def metric_function(metric: str | Metric) -> tuple[str, Metric]:
    """``(name, function)`` of a metric name, or of your own ``f(logits, tokens) -> (B,)``."""
    if callable(metric):
        return getattr(metric, "__name__", "custom"), metric
    if metric not in _METRIC_FUNCTIONS:
        raise unknown("metric", str(metric), METRICS)
    return metric, _METRIC_FUNCTIONS[metric]


# --------------------------------------------------------------------------- the graph


def _check_architecture(bridge) -> None:
    """Our gpt / attn-only bridges only: sequential pre-LN blocks, learned positions, the native adapter."""
    cfg = bridge.cfg
    if getattr(cfg, "architecture", None) != "TransformerLensNative" or cfg.normalization_type not in ("LN", None):
        raise InterpError(f"circuit graphs support our gpt and attn-only runs (TransformerLens's native "
                          f"architecture); this model is {getattr(cfg, 'architecture', None)!r} with normalization "
                          f"{cfg.normalization_type!r} (imported Hugging Face models are not supported yet)")


class TransformerGraph:
    """The edges of a transformer and its metric when only some of them carry clean values.

    ``model_or_run``: a run (or name, GPT, bridge). ``tokens`` ``(B, T)``: the clean inputs,
    default ``n`` sequences of the run's induction task (``seed``); ``corrupted``: default
    :func:`broken_repeat` of them (``seed + 1``). ``metric``: ``"loss"``, ``"logit-diff"`` or
    a function ``f(logits, tokens) -> (B,)``. ``ablation``: ``"mean"`` or ``"corrupt"``
    (module docstring).

    >>> graph = TransformerGraph(run, metric="logit-diff", ablation="corrupt")
    >>> graph.metric([Edge("embed", "logits")])      # (B,): only the direct path kept
    """

    def __init__(self, model_or_run: Any, tokens: torch.Tensor | None = None, *,
                 corrupted: torch.Tensor | None = None, n: int = 32, seed: int = 0,
                 metric: str | Metric = "loss", ablation: str = "mean"):
        if ablation not in ABLATIONS:
            raise unknown("ablation", str(ablation), ABLATIONS)
        self.metric_name, self.metric_fn = metric_function(metric)
        self.ablation = ablation
        self.bridge = as_bridge(model_or_run)
        _check_architecture(self.bridge)
        self.run_name = getattr(model_or_run, "name", "")
        device = self.bridge.cfg.device
        if tokens is None:
            if not hasattr(getattr(model_or_run, "config", None), "data"):
                raise InterpError("pass tokens= (B, T) for a bare model or bridge; a run draws its induction task")
            tokens = task_tokens(model_or_run, n, seed=seed)
        self.tokens = tokens.to(device)
        self.corrupted = (broken_repeat(tokens, seed=seed + 1) if corrupted is None else corrupted).to(device)
        if self.corrupted.shape != self.tokens.shape:
            raise InterpError(f"corrupted tokens {tuple(self.corrupted.shape)} must match the clean tokens "
                              f"{tuple(self.tokens.shape)}")
        self.seed = seed
        self._build_edges()
        self.edge_index = {e: i for i, e in enumerate(self.edges)}
        self._ablated = self._ablated_values()
        full = self.metric(None)
        with torch.no_grad():
            rebuilt = self.evaluate(torch.ones(1, len(self.edges)))[0].cpu()
        if not torch.allclose(full, rebuilt, atol=_REBUILD_TOLERANCE, rtol=_REBUILD_TOLERANCE):
            raise InterpError(f"this model's forward pass cannot be rebuilt edge by edge (metric "
                              f"{float(full.mean()):.4f} vs {float(rebuilt.mean()):.4f}); circuit graphs support "
                              f"our gpt and attn-only runs")

    # -- structure

    def _build_edges(self) -> None:
        """Writers in forward order, and for each reader group the edge ids of its (writer, reader) pairs.

        The writers a reader sees are always a prefix of the writer list, so a group is
        ``(prefix length, edge ids)``: ``(n, 3, H)`` for a layer's heads, ``(n,)`` otherwise.
        """
        cfg = self.bridge.cfg
        self.has_mlp = not cfg.attn_only
        writers, self.edges, self.groups = ["embed"], [], {}

        def add(sources, target):
            first = len(self.edges)
            self.edges.extend(Edge(w, target) for w in sources)
            return torch.arange(first, len(self.edges))

        for layer in range(cfg.n_layers):
            heads = [f"L{layer}H{h}" for h in range(cfg.n_heads)]
            ids = [[add(writers, f"{head}.{x}") for x in INPUTS] for head in heads]  # [head][input] -> (n,)
            self.groups[f"attn{layer}"] = (len(writers), torch.stack([torch.stack(i, 1) for i in ids], 2))
            writers = writers + heads
            if self.has_mlp:
                self.groups[f"mlp{layer}"] = (len(writers), add(writers, f"mlp{layer}"))
                writers = writers + [f"mlp{layer}"]
        self.groups["logits"] = (len(writers), add(writers, "logits"))
        self.writers = writers

    @property
    def nodes(self) -> list[str]:
        return self.writers + ["logits"]

    def keep_vector(self, kept: Collection[Edge | str] | None) -> torch.Tensor:
        """``(n_edges,)``: 1 for the kept edges (all when ``None``), 0 for the others."""
        if kept is None:
            return torch.ones(len(self.edges))
        keep = torch.zeros(len(self.edges))
        for edge in kept:
            edge = Edge.parse(edge) if isinstance(edge, str) else edge
            if edge not in self.edge_index:
                raise unknown("edge", str(edge), [str(e) for e in self.edges], list_all=False)
            keep[self.edge_index[edge]] = 1.0
        return keep

    # -- values

    def _writer_outputs(self, state: dict) -> torch.Tensor:
        """``(R, T, n, d)``: what the writers seen so far wrote, stacked in writer order."""
        return torch.cat(state["written"], 2)

    def _capturing_hooks(self, state: dict) -> list[tuple[str, Callable]]:
        """Hooks that record every writer's output and the live residual before each reader group."""
        cfg = self.bridge.cfg
        W_O = self.bridge.W_O  # (L, H, d_head, d_model)

        def embedding(name):
            def hook(t, hook):  # token and position embeddings: one writer, whichever fires first
                state[name] = t
                if "tok" in state and "pos" in state:
                    state["written"] = [(state.pop("tok") + state.pop("pos"))[:, :, None]]
            return hook

        def head_outputs(layer):
            def hook(z, hook):  # (R, T, H, d_head) -> each head's write into the residual stream
                state["written"].append(torch.einsum("rthe,hed->rthd", z, W_O[layer]))
            return hook

        def mlp_output(t, hook):
            state["written"].append(t[:, :, None])

        def residual(t, hook):
            state["resid"] = t

        hooks = [("hook_embed", embedding("tok")), ("hook_pos_embed", embedding("pos"))]
        for layer in range(cfg.n_layers):
            block = f"blocks.{layer}"
            hooks += [(f"{block}.hook_resid_pre", residual), (f"{block}.attn.hook_z", head_outputs(layer))]
            if self.has_mlp:
                hooks += [(f"{block}.hook_resid_mid", residual), (f"{block}.hook_mlp_out", mlp_output)]
        return hooks + [(f"blocks.{cfg.n_layers - 1}.hook_resid_post", residual)]

    def _ablated_values(self) -> torch.Tensor:
        """``(1 or B, T, n_writers, d)``: each writer's output on the corrupted batch (its mean over the batch)."""
        state: dict = {}
        with torch.no_grad(), eval_mode(self.bridge), self.bridge.hooks(fwd_hooks=self._capturing_hooks(state)):
            self.bridge(self.corrupted)
        values = self._writer_outputs(state)
        return values.mean(0, keepdim=True) if self.ablation == "mean" else values

    def _mixed(self, group: str, state: dict, keep: torch.Tensor) -> torch.Tensor:
        """A reader group's inputs: the live residual minus ``(1 - keep)`` of each edge's clean-minus-ablated value."""
        n, ids = self.groups[group]
        written = self._writer_outputs(state)
        if written.shape[2] != n:
            raise RuntimeError(f"{group} saw {written.shape[2]} writers, expected {n} (hooks fired out of order)")
        ablated = self._ablated[:, :, :n]
        if ablated.shape[0] not in (1, written.shape[0]):
            ablated = ablated.repeat(written.shape[0] // ablated.shape[0], 1, 1, 1)
        delta = written - ablated  # (R, T, n, d)
        drop = 1 - keep[:, ids]  # (R, n, 3, H) or (R, n)
        if drop.ndim == 4:
            return state["resid"][:, :, None, None] - torch.einsum("rtwd,rwxh->rtxhd", delta, drop)
        return state["resid"] - torch.einsum("rtwd,rw->rtd", delta, drop)

    def _norm(self, module, x: torch.Tensor) -> torch.Tensor:
        if self.bridge.cfg.normalization_type is None:
            return x
        return F.layer_norm(x, x.shape[-1:], module.weight, module.bias, self.bridge.cfg.eps)

    def _reading_hooks(self, state: dict, keep: torch.Tensor) -> list[tuple[str, Callable]]:
        """Hooks that replace each reader's input map's output by its value on the mixed input."""
        b, cfg = self.bridge, self.bridge.cfg
        hooks = []
        for layer in range(cfg.n_layers):
            weights = {"q": (b.W_Q[layer], b.b_Q[layer]), "k": (b.W_K[layer], b.b_K[layer]),
                       "v": (b.W_V[layer], b.b_V[layer])}

            def head_input(x_index, W, bias, layer=layer):
                def hook(t, hook):  # t (R, T, H, d_head): replaced by the head's own mixed input
                    group = f"attn{layer}"
                    if group not in state:  # the first of q, k, v to fire mixes all three
                        state[group] = self._norm(b.blocks[layer].ln1, self._mixed(group, state, keep))
                    x = state[group][:, :, x_index]  # (R, T, H, d)
                    return torch.einsum("rthd,hde->rthe", x, W) + bias
                return hook

            for i, name in enumerate(INPUTS):
                hooks.append((f"blocks.{layer}.attn.hook_{name}", head_input(i, *weights[name])))
            if self.has_mlp:
                hooks.append((f"blocks.{layer}.mlp.hook_in", lambda t, hook, layer=layer: self._norm(
                    b.blocks[layer].ln2, self._mixed(f"mlp{layer}", state, keep))))
        hooks.append(("unembed.hook_in", lambda t, hook: self._norm(b.ln_final, self._mixed("logits", state, keep))))
        return hooks

    # -- evaluation

    def evaluate(self, keep: torch.Tensor) -> torch.Tensor:
        """The metric ``(S, B)`` with each of ``S`` edge settings ``keep`` ``(S, n_edges)`` (0..1, may
        require grad), all in one forward pass of ``S * B`` sequences."""
        S, B = keep.shape[0], len(self.tokens)
        keep = keep.to(self.tokens.device).repeat_interleave(B, 0)  # row s * B + b: setting s, example b
        tokens = self.tokens.repeat(S, 1)
        state: dict = {}
        hooks = self._capturing_hooks(state) + self._reading_hooks(state, keep)
        with eval_mode(self.bridge), self.bridge.hooks(fwd_hooks=hooks):
            values = self.metric_fn(self.bridge(tokens), tokens)
        return values.reshape(S, B)

    def metric(self, kept: Collection[Edge] | None) -> torch.Tensor:
        """``(B,)`` metric on the clean tokens with only ``kept`` edges clean (``None``: the model as is)."""
        with torch.no_grad(), eval_mode(self.bridge):
            if kept is None:
                return self.metric_fn(self.bridge(self.tokens), self.tokens).detach().cpu()
            return self.evaluate(self.keep_vector(kept)[None])[0].detach().cpu()

    def columns(self) -> list[tuple[str, list[str]]]:
        """The nodes by column for a circuit diagram, inputs first: ``embed``, each layer's heads, its MLP,
        ``logits``. Edge targets of heads name the input (``L1H0.k``); its node is the part before the dot."""
        cfg = self.bridge.cfg
        columns = [("embed", ["embed"])]
        for layer in range(cfg.n_layers):
            columns.append((f"layer {layer}", [f"L{layer}H{h}" for h in range(cfg.n_heads)]))
            if self.has_mlp:
                columns.append((f"mlp{layer}", [f"mlp{layer}"]))
        return columns + [("logits", ["logits"])]

    @property
    def settings(self) -> dict:
        return {"ablation": self.ablation, "n_examples": len(self.tokens), "seq_len": self.tokens.shape[1],
                "tokens": token_digest(self.tokens), "corrupted": token_digest(self.corrupted)}

    def __repr__(self) -> str:
        return (f"TransformerGraph({self.run_name or 'model'}: {len(self.writers)} writers, {len(self.edges)} edges, "
                f"metric={self.metric_name}, ablation={self.ablation}, {len(self.tokens)} sequences)")
