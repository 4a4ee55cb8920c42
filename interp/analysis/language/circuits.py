"""Weight-based circuit analysis: OV and QK circuits, copying scores, composition scores.

Following "A Mathematical Framework for Transformer Circuits" (Elhage et al., 2021):

- the full OV circuit of a head, ``W_E W_OV W_U`` (vocab x vocab, as a TransformerLens
  ``FactoredMatrix`` so the product is never materialised), says which output token a
  head promotes when it attends to a given token;
- its **copying score** is ``sum(eigenvalues) / sum(|eigenvalues|)``: 1 for a head that
  copies (a positive-definite-like OV circuit), -1 for one that suppresses what it reads;
- **composition scores** ``|W_A W_B|_F / (|W_A|_F |W_B|_F)`` between a head's OV output
  and a later head's query (Q), key (K) or value (V) input measure how much a later head
  reads what an earlier one writes. They are shown beside the score of random Gaussian
  matrices of the same shapes, which is far from 0 in small models.

Weights are analysed after TransformerLens's weight processing (``to_bridge(fold_ln=True)``,
:mod:`interp.analysis.language.bridge`:
LayerNorm scales folded into the weights that read them, the unembedding centred), as
HookedTransformer did by default; for models without LayerNorm only the centring applies.

>>> result = circuit_scores(run)
>>> result.copying            # (n_layers, n_heads)
>>> result.composition["K"]   # (n_layers, n_heads, n_layers, n_heads), earlier -> later
>>> result.baseline["K"]      # the same score for random matrices
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .bridge import as_bridge, check_heads, head_labels

MODES = ("Q", "K", "V")


def ov_circuit(bridge, layer: int, head: int):
    """The full OV circuit ``W_E W_V W_O W_U`` of one head as a ``FactoredMatrix`` (vocab x vocab)."""
    check_heads(bridge.cfg.n_layers, bridge.cfg.n_heads, [layer], [head])
    return bridge.W_E @ bridge.OV[layer, head] @ bridge.W_U


def qk_circuit(bridge, layer: int, head: int):
    """The token-token QK circuit ``W_E W_Q W_K^T W_E^T`` of one head (query token x key token)."""
    check_heads(bridge.cfg.n_layers, bridge.cfg.n_heads, [layer], [head])
    return bridge.W_E @ bridge.QK[layer, head] @ bridge.W_E.T


def copying_score(matrix) -> torch.Tensor:
    """``sum(eig) / sum(|eig|)`` of a square (Factored)Matrix, over its leading dimensions.

    >>> copying_score(torch.eye(4))
    tensor(1.)
    """
    if hasattr(matrix, "eigenvalues"):
        eig = matrix.eigenvalues
    else:
        eig = torch.linalg.eigvals(matrix.double())
    return (eig.sum(-1).real / eig.abs().sum(-1).clamp_min(1e-30)).float()


def ov_copying_scores(model_or_run) -> torch.Tensor:
    """The copying score of every head's full OV circuit, ``(n_layers, n_heads)``."""
    bridge = as_bridge(model_or_run, fold_ln=True)
    with torch.no_grad():
        full = bridge.W_E @ bridge.OV @ bridge.W_U  # FactoredMatrix (L, H, vocab, vocab)
        return copying_score(full).cpu()


def diagonal_top(model_or_run, *, chunk: int = 1024) -> torch.Tensor:
    """For each head, the fraction of tokens its full OV circuit maps most strongly onto themselves ``(L, H)``.

    That is the behavioural definition of a copying head: attending to token t raises the
    logit of t above every other token's. The (vocab x vocab) circuit is never formed: rows
    are computed ``chunk`` tokens at a time (GPT-2's would be 50,257^2 floats, 10 GB, per head).

    >>> diagonal_top(run).shape     # a 2-layer, 4-head model
    torch.Size([2, 4])
    """
    bridge = as_bridge(model_or_run, fold_ln=True)
    L, H = bridge.cfg.n_layers, bridge.cfg.n_heads
    out = torch.zeros(L, H)
    with torch.no_grad():
        W_E, W_U = bridge.W_E, bridge.W_U
        for layer in range(L):
            for head in range(H):
                ov = bridge.OV[layer, head]
                left = W_E @ ov.A @ ov.B  # (vocab, d_model)
                hits = 0
                for start in range(0, len(left), chunk):
                    rows = (left[start:start + chunk] @ W_U).argmax(-1)
                    hits += int((rows == torch.arange(start, start + len(rows), device=rows.device)).sum())
                out[layer, head] = hits / len(left)
    return out


def composition_scores(model_or_run, mode: str) -> torch.Tensor:
    """TransformerLens's Q, K or V composition scores ``(L, H, L, H)``: [earlier head, later head]."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    bridge = as_bridge(model_or_run, fold_ln=True)
    with torch.no_grad():
        scores = bridge.all_composition_scores(mode).scores.float().cpu()
    return scores.nan_to_num(0.0)  # a head with all-zero weights composes with nothing (0 / 0)


def random_composition_baseline(d_model: int, d_head: int, mode: str, *, n_samples: int = 200,
                                seed: int = 0) -> float:
    """Mean composition score of Gaussian matrices with a model's shapes (the chance level)."""
    from transformer_lens import FactoredMatrix
    from transformer_lens.utilities.matrix import composition_scores as tl_composition

    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(n_samples, *shape, generator=g)

    left = FactoredMatrix(randn(d_model, d_head), randn(d_head, d_model))  # W_V W_O of the earlier head
    # The later head's W_V W_O (V), W_Q W_K^T (Q) or its transpose (K): the same shapes.
    right = FactoredMatrix(randn(d_model, d_head), randn(d_head, d_model))
    if mode == "K":
        right = right.T
    return float(tl_composition(left, right, broadcast_dims=False).mean())


@dataclass
class CircuitScores:
    """Copying scores per head and composition scores between heads of different layers."""

    heads: list[str]
    copying: torch.Tensor  # (L, H)
    composition: dict[str, torch.Tensor] = field(default_factory=dict)  # mode -> (L, H, L, H)
    baseline: dict[str, float] = field(default_factory=dict)  # mode -> random-matrix score
    run: str = ""
    settings: dict = field(default_factory=dict)

    def strongest(self, mode: str, n: int = 5) -> list[tuple[str, str, float]]:
        """The ``n`` largest ``(earlier head, later head, score)`` pairs for a mode."""
        scores = self.composition[mode]
        L, H = scores.shape[:2]
        flat = scores.flatten()
        order = flat.argsort(descending=True)[:n]
        out = []
        for i in order.tolist():
            l1, h1, l2, h2 = (i // (H * L * H)), (i // (L * H)) % H, (i // H) % L, i % H
            if flat[i] > 0:
                out.append((f"L{l1}H{h1}", f"L{l2}H{h2}", float(flat[i])))
        return out


def circuit_scores(model_or_run, *, n_baseline: int = 200, seed: int = 0) -> CircuitScores:
    """Copying scores, Q/K/V composition scores and their random baselines for a model."""
    bridge = as_bridge(model_or_run, fold_ln=True)
    cfg = bridge.cfg
    return CircuitScores(
        heads=head_labels(cfg.n_layers, cfg.n_heads),
        copying=ov_copying_scores(bridge),
        composition={mode: composition_scores(bridge, mode) for mode in MODES},
        baseline={mode: random_composition_baseline(cfg.d_model, cfg.d_head, mode, n_samples=n_baseline, seed=seed)
                  for mode in MODES},
        run=getattr(model_or_run, "name", ""),
        settings={"n_baseline": n_baseline, "seed": seed},
    )
