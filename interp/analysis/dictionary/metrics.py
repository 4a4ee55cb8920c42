"""How good a dictionary is, each number beside two baselines of the same layer.

Methods (rows of :class:`SAEMetrics`):

- ``sae``: the trained SAE;
- ``random``: as many random unit directions as the SAE has features, encoded the same way
  (TopK with the SAE's k, or for a ReLU SAE its measured mean L0 rounded, over the
  projections of the centred activations), decoded with the one least-squares-optimal scalar;
- ``neurons``: the layer's own basis, both signs (``+e_i`` and ``-e_i``, ``2 d_in`` features),
  encoded and decoded the same way (the scalar is 1: the basis is orthonormal).

Metrics, on the run's test split (SAEs train on the train split):

- ``fve``: fraction of variance explained, ``1 - sum||x - x_hat||^2 / sum||x - mean||^2``
  (95% bootstrap CI over sequences / images);
- ``l0``: mean number of active features per activation; ``dead``: the fraction of features
  that never fire on the evaluation set;
- ``loss_recovered``: ``(L_ablated - L_spliced) / (L_ablated - L_clean)`` with the layer's
  output replaced by the reconstruction (spliced) or by zeros (zero ablation); next-token
  cross-entropy for transformers, cross-entropy on the image's label for CNNs (CI over
  sequences / images);
- ``interp_proxy``: for each feature, the fraction of its top-20 activations that share the
  feature's most common token (text) or class (images), averaged over the features with at
  least 10 activations; ``interp_position``: the same for the most common position.
  A chance level is what the random baseline reaches.

>>> metrics = sae_metrics(trained, run, n=50_000)
>>> print(metrics.table())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ...stats import bootstrap_ci
from .activations import LayerSource, source_data

METHODS = ("sae", "random", "neurons")
TOP_K = 20
ABLATION = "zero"


class BaselineDictionary(nn.Module):
    """Fixed unit directions as a dictionary: TopK over the centred projections, a least-squares scale.

    >>> d = BaselineDictionary(torch.eye(4), k=2, mean=torch.zeros(4))
    >>> d(torch.tensor([[3.0, -1.0, 2.0, 0.5]]))
    tensor([[3., 0., 2., 0.]])
    """

    def __init__(self, directions: torch.Tensor, *, k: int, mean: torch.Tensor, scale: float = 1.0):
        super().__init__()
        self.register_buffer("W_dec", directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12))
        self.register_buffer("mean", mean.clone().float())
        self.k = int(min(max(1, k), len(directions)))
        self.scale = float(scale)

    @property
    def directions(self) -> torch.Tensor:
        return self.W_dec

    @property
    def width(self) -> int:
        return len(self.W_dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        proj = (x.float() - self.mean) @ self.W_dec.T
        values, indices = proj.topk(self.k, dim=-1)
        return torch.zeros_like(proj).scatter(-1, indices, torch.relu(values))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return self.mean + self.scale * (f @ self.W_dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def fit_scale(self, x: torch.Tensor) -> "BaselineDictionary":
        """The scalar ``s`` minimising ``||x - mean - s f W_dec||^2`` on ``x``."""
        y = self.encode(x) @ self.W_dec
        c = x.float() - self.mean
        self.scale = float((c * y).sum() / (y * y).sum().clamp_min(1e-12))
        return self


def random_dictionary(d_in: int, width: int, *, k: int, mean: torch.Tensor, seed: int = 0) -> BaselineDictionary:
    """``width`` random unit directions (seeded)."""
    g = torch.Generator().manual_seed(seed + 7919)
    return BaselineDictionary(torch.randn(width, d_in, generator=g), k=k, mean=mean)


def neuron_dictionary(d_in: int, *, k: int, mean: torch.Tensor) -> BaselineDictionary:
    """The layer's basis with both signs (``2 d_in`` features)."""
    eye = torch.eye(d_in)
    return BaselineDictionary(torch.cat([eye, -eye]), k=k, mean=mean)


@dataclass
class SAEMetrics:
    """Rows ``{"method", "features", "fve", "fve_ci", "l0", "dead", "loss_recovered", "loss_recovered_ci",
    "interp_proxy", "interp_position", "scored_features"}`` for sae, random and neurons."""

    run: str
    layer: str
    rows: list[dict]
    loss_clean: float
    loss_ablated: float
    ablation: str = ABLATION
    source: str = "transformer"
    settings: dict = field(default_factory=dict)
    sae_settings: dict = field(default_factory=dict)

    def row(self, method: str) -> dict:
        return next(r for r in self.rows if r["method"] == method)

    def table(self) -> str:
        """The rows as a plain-text table."""
        what = "token" if self.source == "transformer" else "class"
        lines = [f"{'method':<8} {'features':>8} {'FVE':>22} {'L0':>7} {'dead':>6} {'loss recovered':>24} "
                 f"{'same ' + what:>10} {'same pos':>8}"]
        for r in self.rows:
            fve = f"{r['fve']:.3f} [{r['fve_ci'][0]:.3f}, {r['fve_ci'][1]:.3f}]"
            lr = f"{r['loss_recovered']:.3f} [{r['loss_recovered_ci'][0]:.3f}, {r['loss_recovered_ci'][1]:.3f}]"
            lines.append(f"{r['method']:<8} {r['features']:>8} {fve:>22} {r['l0']:>7.2f} {r['dead']:>6.1%} {lr:>24} "
                         f"{r['interp_proxy']:>10.2f} {r['interp_position']:>8.2f}")
        lines.append(f"loss clean {self.loss_clean:.4f}, {self.ablation}-ablated {self.loss_ablated:.4f}; "
                     f"{self.settings.get('activations', 0):,} activations of the {self.settings.get('split')} split")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"run": self.run, "layer": self.layer, "rows": self.rows, "loss_clean": self.loss_clean,
                "loss_ablated": self.loss_ablated, "ablation": self.ablation, "source": self.source,
                "settings": self.settings, "sae_settings": self.sae_settings}

    @classmethod
    def from_dict(cls, d: dict) -> "SAEMetrics":
        return cls(d["run"], d["layer"], list(d["rows"]), float(d["loss_clean"]), float(d["loss_ablated"]),
                   d.get("ablation", ABLATION), d.get("source", "transformer"), dict(d.get("settings", {})),
                   dict(d.get("sae_settings", {})))


class _Tally:
    """Running sums for one dictionary over the evaluation stream."""

    def __init__(self, width: int):
        self.sse: list[torch.Tensor] = []  # per group
        self.loss: list[torch.Tensor] = []
        self.l0 = 0.0
        self.rows = 0
        self.fired = torch.zeros(width, dtype=torch.bool)
        self.top_values = torch.zeros(0, width)
        self.top_what = torch.zeros(0, width, dtype=torch.long)
        self.top_where = torch.zeros(0, width, dtype=torch.long)

    def add(self, f: torch.Tensor, recon: torch.Tensor, rows: torch.Tensor, group: torch.Tensor, n_groups: int,
            what: torch.Tensor, where: torch.Tensor) -> None:
        f = f.float().cpu()
        err = ((recon.float().cpu() - rows.cpu()) ** 2).sum(1)
        self.sse.append(torch.zeros(n_groups).index_add_(0, group, err))
        self.l0 += float((f > 0).sum())
        self.rows += len(f)
        self.fired |= (f > 0).any(0)
        values = torch.cat([self.top_values, f])
        whats = torch.cat([self.top_what, what[:, None].expand_as(f)])
        wheres = torch.cat([self.top_where, where[:, None].expand_as(f)])
        top, idx = values.topk(min(TOP_K, len(values)), dim=0)
        self.top_values, self.top_what, self.top_where = top, whats.gather(0, idx), wheres.gather(0, idx)

    def proxy(self) -> tuple[float, float, int]:
        """Mean modal-label share and modal-position share of the top activations, and how many features."""
        active = self.top_values > 0  # (K, width)
        scored = active.sum(0) >= TOP_K // 2
        if not scored.any():
            return float("nan"), float("nan"), 0
        shares = []
        for labels in (self.top_what, self.top_where):
            share = []
            for j in scored.nonzero()[:, 0].tolist():
                vals = labels[active[:, j], j]
                share.append(float(torch.bincount(vals - vals.min()).max()) / len(vals))
            shares.append(sum(share) / len(share))
        return shares[0], shares[1], int(scored.sum())


@torch.no_grad()
def sae_metrics(trained: Any, run: Any = None, *, n: int = 50_000, seed: int = 0, split: str = "test",
                batch_size: int = 8192, draws: int = 1000, device: Any = None) -> SAEMetrics:
    """Every metric of the module docstring for ``trained`` (a TrainedSAE) and both baselines.

    ``run`` defaults to ``trained.run`` (a run name); ``n`` activations of ``split`` are
    read (whole sequences / images, seeded, class-balanced for images).

    >>> m = sae_metrics(trained, run, n=20_000)
    >>> m.row("sae")["fve"] > m.row("random")["fve"]
    """
    run = run if run is not None else trained.run
    source = LayerSource(run, trained.layer, device=device)
    sae = trained.sae.to(source.device).eval()
    data = source_data(source.run, split, seed, n=n)
    labels = data.labels
    chunks = list(source.inputs(n, split=split, seed=seed, rows_per_pass=batch_size, data=data))

    dictionaries: dict[str, nn.Module] = {"sae": sae}
    tallies: dict[str, _Tally] = {}
    clean_loss, ablated_loss, sst = [], [], []
    total_rows = 0
    for c, (batch, index) in enumerate(chunks):
        rows, origin, logits = source.forward(batch, index)
        if c == 0:  # baselines fitted on the first chunk: a mean vector and one scalar
            d_in = rows.shape[1]
            mean = rows.mean(0).cpu()
            l0 = sae.k if sae.kind == "topk" else max(1, round(float((sae.encode(rows) > 0).sum(1).float().mean())))
            dictionaries["random"] = random_dictionary(d_in, sae.width, k=l0, mean=mean, seed=seed).fit_scale(rows.cpu())
            dictionaries["neurons"] = neuron_dictionary(d_in, k=l0, mean=mean).fit_scale(rows.cpu())
            for name, d in dictionaries.items():
                d.to(source.device)
                tallies[name] = _Tally(d.directions.shape[0])
            global_mean = mean
        B = len(index)
        group = torch.arange(B).repeat_interleave(len(rows) // B)  # rows come input by input
        # per-row label (token / class) and position code for the proxy
        if source.kind == "text":
            what, where = origin[:, 2], origin[:, 1]
        else:
            what, where = labels[origin[:, 0]], origin[:, 1] * 4096 + origin[:, 2]
        clean_loss.append(source.loss(batch, index, logits, labels))
        sst.append(torch.zeros(B).index_add_(0, group, ((rows.cpu() - global_mean) ** 2).sum(1)))
        _, _, abl_logits = source.forward(batch, index, replace=torch.zeros_like)
        ablated_loss.append(source.loss(batch, index, abl_logits, labels))
        for name, d in dictionaries.items():
            f = d.encode(rows)
            recon = d.decode(f)
            tallies[name].add(f, recon, rows, group, B, what, where)
            _, _, spliced = source.forward(batch, index, replace=lambda r, d=d: d(r))
            tallies[name].loss.append(source.loss(batch, index, spliced, labels))
        total_rows += len(rows)

    clean, ablated, sst = torch.cat(clean_loss), torch.cat(ablated_loss), torch.cat(sst)
    out = []
    for name, t in tallies.items():
        sse, spliced = torch.cat(t.sse), torch.cat(t.loss)
        fve_cols = torch.stack([sse, sst], 1)
        lr_cols = torch.stack([ablated, spliced, clean], 1)
        proxy, position, scored = t.proxy()
        out.append({
            "method": name, "features": int(t.fired.numel()),
            "fve": float(_fve(fve_cols[None])[0]),
            "fve_ci": list(bootstrap_ci(fve_cols, _fve, draws=draws, seed=seed)),
            "l0": t.l0 / max(t.rows, 1), "dead": float((~t.fired).float().mean()),
            "loss_recovered": float(_recovered(lr_cols[None])[0]),
            "loss_recovered_ci": list(bootstrap_ci(lr_cols, _recovered, draws=draws, seed=seed)),
            "loss_spliced": float(spliced.mean()),
            "interp_proxy": proxy, "interp_position": position, "scored_features": scored,
        })
    settings = {"n": n, "seed": seed, "split": split, "activations": total_rows, "groups": len(clean),
                "group": "sequence" if source.kind == "text" else "image", "top_k": TOP_K, "draws": draws,
                "baseline_k": dictionaries["random"].k, "random_scale": dictionaries["random"].scale,
                "data": data.name}
    return SAEMetrics(trained.run, trained.layer, out, float(clean.mean()), float(ablated.mean()), ABLATION,
                      trained.source, settings, dict(trained.settings))


def _fve(cols: torch.Tensor) -> torch.Tensor:
    """``(draws, n, [sse, sst]) -> (draws,)``."""
    s = cols.sum(1)
    return 1.0 - s[:, 0] / s[:, 1].clamp_min(1e-12)


def _recovered(cols: torch.Tensor) -> torch.Tensor:
    """``(draws, n, [ablated, spliced, clean]) -> (draws,)``."""
    m = cols.mean(1)
    return (m[:, 0] - m[:, 1]) / (m[:, 0] - m[:, 2]).clamp_min(1e-12)
