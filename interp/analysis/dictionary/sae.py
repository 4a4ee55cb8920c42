"""Sparse autoencoders on a layer's activations: TopK (Gao et al., 2024) or ReLU + L1.

NOTE: the names here (SparseAutoencoder, its encode/decode/directions/config, TrainedSAE,
train_sae) are an interface shared with the feature dashboards
(interp/analysis/dictionary/dashboard.py, interp/report/sae_pages.py): change them together.

``f = TopK(ReLU((s * x - b_dec) W_enc + b_enc))`` (or plain ReLU), ``x_hat = (f W_dec + b_dec) / s``.
``s`` is one fixed scalar, set from the first batch so that ``E||s x||^2 = d_in`` (so one
learning rate and one L1 coefficient suit any layer); it is stored in the config. The SAE
takes and returns the layer's own (unscaled) activations; feature activations are in the
scaled units. Training (Gao et al.): ``b_dec`` starts at the first batch's mean, ``W_enc``
at ``W_dec.T``; the decoder rows are kept at unit norm (the gradient's component along
each row is removed before the step, the rows renormalised after it); features that have
not fired for ``dead_window`` activations are resampled toward badly reconstructed inputs,
at most ``resample_rounds`` times. The loss is the mean squared error summed over the
(scaled) dimensions, plus ``l1 * sum_j f_j ||W_dec[j]||`` for the ReLU kind.

>>> trained = train_sae(run, "blocks.1.hook_resid_post", k=16, tokens=200_000)
>>> trained.sae.encode(x).count_nonzero(1).max() <= 16
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ...errors import InterpError

KINDS = ("topk", "relu")
WIDTH_FACTOR = 8
MIN_TOKENS = 1_000


class SparseAutoencoder(nn.Module):
    """x (N, d_in) -> features (N, width) -> reconstruction (N, d_in).

    >>> sae = SparseAutoencoder(16, 64, k=4)
    >>> sae(torch.randn(3, 16)).shape, sae.encode(torch.randn(3, 16)).count_nonzero(1).tolist()
    (torch.Size([3, 16]), [4, 4, 4])
    """

    def __init__(self, d_in: int, width: int, *, kind: str = "topk", k: int = 16, l1: float = 0.0,
                 scale: float = 1.0, seed: int = 0):
        super().__init__()
        if kind not in KINDS:
            raise InterpError(f"unknown SAE kind {kind!r}; use one of {', '.join(KINDS)}")
        if kind == "topk" and not 1 <= k < width:
            raise InterpError(f"k must be between 1 and width - 1 ({width - 1}), got {k}")
        self.d_in, self.width, self.kind, self.k, self.l1 = int(d_in), int(width), kind, int(k), float(l1)
        g = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(width, d_in, generator=g)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(width))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations ``(N, width)`` (before ReLU / TopK)."""
        return (x.to(self.W_enc.dtype) * self.scale - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Non-negative feature activations ``(N, width)``; TopK keeps ``k`` per row."""
        pre = self.pre_activations(x)
        if self.kind == "relu":
            return torch.relu(pre)
        values, indices = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(N, d_in)`` in the layer's own units."""
        return (f @ self.W_dec + self.b_dec) / self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @property
    def directions(self) -> torch.Tensor:
        """The feature directions ``(width, d_in)`` in activation space: ``W_dec``'s unit-norm rows."""
        return self.W_dec

    def config(self) -> dict:
        """JSON-ready: everything that builds the module (weights aside)."""
        return {"d_in": self.d_in, "width": self.width, "kind": self.kind, "k": self.k if self.kind == "topk" else None,
                "l1": self.l1, "scale": float(self.scale)}

    @classmethod
    def from_config(cls, config: dict) -> "SparseAutoencoder":
        return cls(config["d_in"], config["width"], kind=config["kind"], k=config.get("k") or 1,
                   l1=config.get("l1", 0.0), scale=config.get("scale", 1.0))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the gradient's component along each decoder row (the row stays unit norm to first order)."""
        if self.W_dec.grad is not None:
            g = self.W_dec.grad
            g -= (g * self.W_dec).sum(1, keepdim=True) * self.W_dec


@dataclass
class TrainedSAE:
    """An SAE, the layer it reads and everything that determined it."""

    sae: SparseAutoencoder
    run: str
    layer: str
    settings: dict
    curve: list[dict] = field(default_factory=list)
    source: str = "transformer"  # "transformer" | "cnn"

    def __repr__(self) -> str:
        c = self.curve[-1] if self.curve else {}
        return (f"TrainedSAE({self.run!r}, {self.layer!r}, {self.sae.kind}, width={self.sae.width}, "
                f"fve={c.get('fve', float('nan')):.3f}, l0={c.get('l0', float('nan')):.1f})")


def check_settings(d_in: int | None, width: int | None, k: int | None, l1: float | None, tokens: int,
                   batch_size: int = 1024) -> tuple[str, int | None, int]:
    """``(kind, width, k)`` after the checks every entry point shares; a clear error otherwise.

    ``k=None`` and ``l1=None``: TopK with ``k = min(16, d_in // 2)``.
    """
    if k is not None and l1 is not None:
        raise InterpError("give either k (TopK SAE) or l1 (ReLU + L1 SAE), not both")
    if l1 is not None and l1 < 0:
        raise InterpError(f"l1 must be non-negative, got {l1}")
    if width is not None and width < 2:
        raise InterpError(f"width must be at least 2, got {width}")
    if tokens < MIN_TOKENS:
        raise InterpError(f"tokens must be at least {MIN_TOKENS:,} activations to train on, got {tokens:,}")
    if batch_size < 1:
        raise InterpError(f"batch_size must be at least 1, got {batch_size}")
    kind = "relu" if l1 is not None else "topk"
    if d_in is not None:
        width = width or WIDTH_FACTOR * d_in
        if kind == "topk" and k is None:
            k = max(1, min(16, d_in // 2))
    if kind == "topk" and k is not None:
        if k < 1:
            raise InterpError(f"k must be at least 1, got {k}")
        if width is not None and k >= width:
            raise InterpError(f"k ({k}) must be smaller than the width ({width})")
    return kind, width, k


class Trainer:
    """The training loop over a stream of activation batches (used by :func:`train_sae`).

    >>> trainer = Trainer(d_in=16, width=64, kind="topk", k=4, total=100_000)
    >>> for batch in batches: trainer.step(batch)
    """

    def __init__(self, d_in: int, width: int, *, kind: str = "topk", k: int = 16, l1: float = 0.0,
                 lr: float = 1e-3, total: int = 200_000, seed: int = 0, dead_window: int | None = None,
                 resample_rounds: int = 4, log_every: int = 20, device: Any = "cpu"):
        self.sae = SparseAutoencoder(d_in, width, kind=kind, k=k, l1=l1, seed=seed).to(device)
        self.optimizer = torch.optim.Adam(self.sae.parameters(), lr=lr, betas=(0.9, 0.999))
        self.lr, self.total = lr, total
        # Dead = silent for this many activations: a quarter of training, at least 10k rows.
        self.dead_window = dead_window or max(10_000, total // 4)
        self.resample_rounds = resample_rounds
        self.resamples = 0
        self.log_every = log_every
        self.seen = 0
        self.steps = 0
        self.last_fired = torch.zeros(width, dtype=torch.long, device=device)  # activations seen when last fired
        self.curve: list[dict] = []
        self.generator = torch.Generator().manual_seed(seed + 1)
        self._acc = {"sse": 0.0, "sst": 0.0, "l0": 0.0, "rows": 0}

    @torch.no_grad()
    def _initialise(self, x: torch.Tensor) -> None:
        sq = (x ** 2).sum(1).mean()
        self.sae.scale.fill_(math.sqrt(self.sae.d_in / max(float(sq), 1e-12)))
        self.sae.b_dec.copy_((x * self.sae.scale).mean(0))

    def _lr(self) -> float:
        # Constant, then a linear decay to 0 over the last 20% (Gao et al.).
        frac = self.seen / max(1, self.total)
        return self.lr * min(1.0, max(0.0, (1.0 - frac) / 0.2))

    def step(self, x: torch.Tensor) -> None:
        sae = self.sae
        x = x.to(sae.W_enc.device, torch.float32)
        if self.steps == 0:
            self._initialise(x)
        xs = x * sae.scale
        f = sae.encode(x)
        recon = f @ sae.W_dec + sae.b_dec  # scaled units
        err = ((recon - xs) ** 2).sum(1)
        loss = err.mean()
        if sae.kind == "relu" and sae.l1 > 0:
            loss = loss + sae.l1 * (f * sae.W_dec.norm(dim=1)).sum(1).mean()
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sae.project_decoder_grad()
        self.optimizer.step()
        sae.normalize_decoder()

        with torch.no_grad():
            self.seen += len(x)
            self.steps += 1
            fired = (f > 0).any(0)
            self.last_fired[fired] = self.seen
            a = self._acc
            a["sse"] += float(err.sum())
            a["sst"] += float(((xs - xs.mean(0)) ** 2).sum())
            a["l0"] += float((f > 0).sum())
            a["rows"] += len(x)
            if self.steps % self.log_every == 0:
                self._log()
            dead = self.dead_mask()
            if (dead.any() and self.resamples < self.resample_rounds and self.seen < 0.8 * self.total
                    and self.seen >= self.dead_window):
                self._resample(dead, xs, err)

    def dead_mask(self) -> torch.Tensor:
        """Features that have not fired in the last ``dead_window`` activations (none before that many)."""
        if self.seen < self.dead_window:
            return torch.zeros_like(self.last_fired, dtype=torch.bool)
        return self.seen - self.last_fired >= self.dead_window

    def _log(self) -> None:
        a = self._acc
        if a["rows"]:
            self.curve.append({"step": self.steps, "activations_seen": self.seen,
                               "mse": a["sse"] / a["rows"] / self.sae.d_in,
                               "fve": 1.0 - a["sse"] / max(a["sst"], 1e-12), "l0": a["l0"] / a["rows"],
                               "dead": int(self.dead_mask().sum())})
        self._acc = {"sse": 0.0, "sst": 0.0, "l0": 0.0, "rows": 0}

    @torch.no_grad()
    def _resample(self, dead: torch.Tensor, xs: torch.Tensor, err: torch.Tensor) -> None:
        """Point dead features at inputs drawn with probability ~ their squared error (Anthropic 2023)."""
        sae = self.sae
        idx = dead.nonzero()[:, 0]
        p = (err ** 2).cpu() + 1e-12
        pick = torch.multinomial(p, len(idx), replacement=len(idx) > len(p), generator=self.generator)
        residual = xs[pick.to(xs.device)] - sae.b_dec
        direction = residual / residual.norm(dim=1, keepdim=True).clamp_min(1e-8)
        live = ~dead
        enc_norm = sae.W_enc[:, live].norm(dim=0).mean() if live.any() else torch.tensor(1.0)
        sae.W_dec[idx] = direction
        sae.W_enc[:, idx] = direction.T * enc_norm * 0.2
        sae.b_enc[idx] = 0.0
        for param, dim in ((sae.W_dec, 0), (sae.W_enc, 1), (sae.b_enc, 0)):
            state = self.optimizer.state.get(param, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key].index_fill_(dim, idx, 0.0)
        self.last_fired[idx] = self.seen  # a fresh window to prove themselves
        self.resamples += 1

    def finish(self) -> list[dict]:
        if self._acc["rows"]:
            self._log()
        return self.curve


def train_sae(run: Any, layer: str, *, width: int | None = None, k: int | None = None, l1: float | None = None,
              tokens: int = 200_000, batch_size: int = 1024, lr: float | None = None, seed: int = 0,
              device: Any = "cpu", progress: bool = True, split: str = "train",
              resample_rounds: int = 4) -> TrainedSAE:
    """Train an SAE on ``tokens`` activations of ``layer``, streamed ``batch_size`` at a time.

    ``k`` (TopK, the default kind; ``None``: ``min(16, d_in // 2)``) or ``l1`` (ReLU + L1);
    ``width`` defaults to ``8 * d_in``; ``lr`` to :func:`default_lr` of the width. The activations come from the run's training split
    (metrics use the test split, :func:`~interp.analysis.dictionary.metrics.sae_metrics`).

    >>> trained = train_sae(run, "conv2", k=4, tokens=100_000)
    >>> trained.curve[-1]["fve"] > 0.5
    """
    from tqdm.auto import tqdm

    from ...device import resolve_device
    from ...runs import load_run
    from .activations import LayerSource, layer_activations

    check_settings(None, width, k, l1, tokens, batch_size)
    if isinstance(run, str) or hasattr(run, "__fspath__"):
        run = load_run(run)
    device = resolve_device(device)
    torch.manual_seed(seed)
    source = LayerSource(run, layer)
    stream = layer_activations(run, source, n=tokens, batch_size=batch_size, seed=seed, split=split)
    first = next(stream)
    d_in = first.acts.shape[1]
    kind, width, k = check_settings(d_in, width, k, l1, tokens, batch_size)
    lr = lr or default_lr(width)
    trainer = Trainer(d_in, width, kind=kind, k=k or 1, l1=l1 or 0.0, lr=lr, total=tokens, seed=seed,
                      resample_rounds=resample_rounds, device=device)
    bar = tqdm(total=tokens, desc=f"sae {layer}", unit="act", unit_scale=True, disable=None if progress else True,
               leave=False)
    try:
        for batch in _chain(first, stream):
            trainer.step(batch.acts)
            bar.update(len(batch.acts))
    finally:
        bar.close()
    curve = trainer.finish()
    sae = trainer.sae.cpu().eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    settings = {"width": width, "kind": kind, "k": k if kind == "topk" else None, "l1": l1 if kind == "relu" else None,
                "tokens": tokens, "batch_size": batch_size, "lr": lr, "seed": seed, "split": split,
                "resample_rounds": resample_rounds, "dead_window": trainer.dead_window,
                "resamples": trainer.resamples, "activations_seen": trainer.seen}
    return TrainedSAE(sae, getattr(run, "name", str(run)), layer, settings, curve,
                      "transformer" if source.kind == "text" else "cnn")


def default_lr(width: int) -> float:
    """Adam's learning rate for a width: Gao et al.'s ``2e-4 / sqrt(width / 2^14)``, at most 1e-2.

    >>> round(default_lr(768), 5)
    0.00092
    """
    return min(1e-2, 2e-4 * math.sqrt(2 ** 14 / width))


def _chain(first, rest):
    yield first
    yield from rest
