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

Weights are analysed after TransformerLens's weight processing (``to_bridge(fold_ln=True)``:
LayerNorm scales folded into the weights that read them, the unembedding centred), as
HookedTransformer did by default; for models without LayerNorm only the centring applies.

>>> result = circuit_scores(run)
>>> result.copying            # (n_layers, n_heads)
>>> result.composition["K"]   # (n_layers, n_heads, n_layers, n_heads), earlier -> later
>>> result.baseline["K"]      # the same score for random matrices
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...io import write_json
from ...plots import pyplot, save_figure
from .heads import _tensor_json, as_bridge, check_heads, head_labels

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

    def to_json(self) -> dict:
        return {"run": self.run, "heads": self.heads, "copying": _tensor_json(self.copying),
                "composition": {k: _tensor_json(v) for k, v in self.composition.items()},
                "baseline": self.baseline}

    @classmethod
    def from_json(cls, d: dict) -> "CircuitScores":
        return cls(d["heads"], torch.tensor(d["copying"]), {k: torch.tensor(v) for k, v in d["composition"].items()},
                   d["baseline"], d.get("run", ""))


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
    )


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


def save_circuit_scores(result: CircuitScores, out_dir: str | os.PathLike) -> dict[str, Path]:
    out = Path(out_dir)
    write_json(out / "circuits.json", result.to_json())
    return {"json": out / "circuits.json", "png": save_figure(plot_circuit_scores(result), out / "circuits.png")}


def load_circuit_scores(out_dir: str | os.PathLike) -> CircuitScores:
    return CircuitScores.from_json(json.loads((Path(out_dir) / "circuits.json").read_text()))
