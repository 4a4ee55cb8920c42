"""Universality: do two networks learn the same features? Unit matching and CKA between two runs.

Zoom In's third claim is that analogous features form across models and tasks. Two
measurements, both on the same images:

- :func:`match_units`: the Pearson correlation of every unit of a layer of run A with every
  unit of a layer of run B, **per position** (each (image, y, x) is one sample; the maps are
  average-pooled to the smaller grid when their sizes differ). Per position rather than
  spatially averaged because a spatial mean of a first-layer filter is a linear function of
  the image's mean colour, so every pair of units would correlate. Signed, not absolute:
  a unit and its negation are different features after the ReLU. Each unit of A gets its
  best match in B, the mutual best matches are flagged, and the one-to-one (Hungarian)
  matching is computed with SciPy (Li et al., "Convergent learning", ICLR 2016).
- :func:`linear_cka`: linear centred kernel alignment (Kornblith et al., ICML 2019), with
  the debiased variant (unbiased HSIC); :func:`layer_similarity` computes it per layer on
  per-image flattened activations, with a bootstrap CI over images.

The nulls: the same comparison against copies of run B whose weights are re-initialised
(:func:`~interp.zoo.registry.reinitialized`) or shuffled within each parameter tensor
(:func:`shuffled_copy`): what matching and CKA give when nothing was learnt in common.

>>> m = match_units(run_a, run_b, "conv1", images)
>>> m.pairs()[:2]                      # [(unit of A, its best unit of B, r), ...], strongest first
[(3, 5, 0.97), (0, 2, 0.91)]
>>> m.mean_best, m.bootstrap_ci()      # mean best-match r and its 95% CI over images
>>> layer_similarity(run_a, run_b, ["conv1", "conv2"], images, null_models=4).rows()
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ...errors import InterpError
from ...hooks import capture, eval_mode, get_module
from ...stats import bootstrap_ci
from ...subject import Subject, as_subject

NULL_KINDS = ("reinitialized", "shuffled")
BATCH = 256


# ----------------------------------------------------------------------------- activations


def activations(run: Any, layer: str, images: torch.Tensor, *, batch_size: int = BATCH) -> torch.Tensor:
    """The output of ``layer`` on ``images`` (uint8 or [0, 1], ``(N, C, H, W)``), preprocessed as the run
    expects; ``(N, units, H, W)`` for conv layers, ``(N, units)`` otherwise. Leaves no hook behind."""
    subject = as_subject(run)
    get_module(subject.model, layer)  # did-you-mean error for a typo
    if images.dim() != 4 or len(images) == 0:
        raise InterpError(f"give images as a non-empty (N, C, H, W) tensor; got shape {tuple(images.shape)}")
    out = []
    with torch.no_grad(), eval_mode(subject.model), capture(subject.model, [layer]) as acts:
        for start in range(0, len(images), batch_size):
            subject.model(subject.to_model_input(images[start:start + batch_size]))
            out.append(acts[layer].float().cpu())
    return torch.cat(out)


def _same_grid(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both maps as ``(N, C, H, W)`` on the smaller of the two grids (a vector is a 1x1 map)."""
    a = a[:, :, None, None] if a.dim() == 2 else a
    b = b[:, :, None, None] if b.dim() == 2 else b
    size = (min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1]))
    return F.adaptive_avg_pool2d(a, size), F.adaptive_avg_pool2d(b, size)


# ----------------------------------------------------------------------------- unit matching


@dataclass
class UnitMatch:
    """Unit-by-unit correlations of a layer of run A with a layer of run B.

    ``correlation[i, j]``: Pearson r of unit i of A and unit j of B over every (image, position);
    ``best[i]`` / ``best_r[i]``: A's unit i's best match in B and its r; ``mutual[i]``: unit i is
    also ``best[i]``'s best match; ``assignment[i]`` / ``assignment_r[i]``: the one-to-one matching
    that maximises the total r (-1 where B has fewer units); ``moments``: per-image sums behind
    the correlations, so :meth:`bootstrap_ci` resamples images without running the models again.
    """

    layer_a: str
    layer_b: str
    correlation: torch.Tensor  # (Ua, Ub)
    best: torch.Tensor  # (Ua,) long
    best_r: torch.Tensor  # (Ua,)
    mutual: torch.Tensor  # (Ua,) bool
    assignment: torch.Tensor  # (Ua,) long, -1 = unmatched
    assignment_r: torch.Tensor  # (Ua,), nan = unmatched
    n_images: int
    positions: int
    """Positions per image the correlations pool (after pooling to a common grid)."""
    moments: dict = field(default_factory=dict, repr=False)

    @property
    def mean_best(self) -> float:
        """The mean over A's units of their best match's r: the statistic the claim turns on."""
        return float(self.best_r.mean())

    @property
    def mean_assigned(self) -> float:
        """The mean r of the one-to-one matching (each unit of B used at most once)."""
        r = self.assignment_r[~torch.isnan(self.assignment_r)]
        return float(r.mean()) if len(r) else float("nan")

    def pairs(self, top: int | None = None) -> list[tuple[int, int, float]]:
        """``(unit of A, best unit of B, r)``, strongest first (``top`` of them)."""
        order = torch.argsort(self.best_r, descending=True, stable=True).tolist()
        rows = [(i, int(self.best[i]), float(self.best_r[i])) for i in order]
        return rows[:top] if top is not None else rows

    def bootstrap_ci(self, *, draws: int = 1000, seed: int = 0) -> tuple[float, float]:
        """95% bootstrap interval of :attr:`mean_best` over images (the models are not run again)."""
        return bootstrap_ci(torch.arange(self.n_images, dtype=torch.float64),
                            lambda idx: mean_best_of_draws(self.moments, idx), draws=draws, seed=seed)


def _moments(a: torch.Tensor, b: torch.Tensor) -> dict:
    """Per-image sums over positions: ``sa (N, Ua)``, ``saa``, ``sb``, ``sbb``, ``sab (N, Ua, Ub)``, ``count``."""
    a = a.double().flatten(2)  # (N, Ua, P)
    b = b.double().flatten(2)
    return {"sa": a.sum(2), "saa": (a * a).sum(2), "sb": b.sum(2), "sbb": (b * b).sum(2),
            "sab": torch.einsum("nup,nvp->nuv", a, b), "count": a.shape[2]}


def correlation_from_moments(m: dict, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Pearson r of every (A unit, B unit) pair from per-image sums, images weighted by ``weights``
    (``(N,)`` or ``(draws, N)``; default all 1); ``(Ua, Ub)`` or ``(draws, Ua, Ub)``."""
    n_images = m["sa"].shape[0]
    w = torch.ones(n_images, dtype=torch.float64) if weights is None else weights.double()
    total = w.sum(-1, keepdim=True) * m["count"]  # (..., 1)
    mean_a, mean_b = (w @ m["sa"]) / total, (w @ m["sb"]) / total
    var_a = ((w @ m["saa"]) / total - mean_a ** 2).clamp_min(0)
    var_b = ((w @ m["sbb"]) / total - mean_b ** 2).clamp_min(0)
    sab = (w @ m["sab"].flatten(1)).view(*w.shape[:-1], *m["sab"].shape[1:]) / total[..., None]
    cov = sab - mean_a[..., :, None] * mean_b[..., None, :]
    scale = (var_a[..., :, None] * var_b[..., None, :]).sqrt()
    # A dead unit (no variance) correlates with nothing: r = 0 rather than nan.
    return torch.where(scale > 1e-12, cov / scale.clamp_min(1e-12), torch.zeros_like(cov)).clamp(-1, 1)


def mean_best_of_draws(m: dict, idx: torch.Tensor) -> torch.Tensor:
    """:attr:`UnitMatch.mean_best` for each row of resampled image indices ``(draws, N)``."""
    n = m["sa"].shape[0]
    idx = idx.long()
    weights = torch.zeros(idx.shape[0], n, dtype=torch.float64).scatter_add_(
        1, idx, torch.ones_like(idx, dtype=torch.float64))
    return correlation_from_moments(m, weights).amax(-1).mean(-1)


def _assignment(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The one-to-one matching maximising the summed r (SciPy's Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(r.numpy(), maximize=True)
    assignment = torch.full((r.shape[0],), -1, dtype=torch.long)
    assignment[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    values = torch.full((r.shape[0],), float("nan"), dtype=r.dtype)
    matched = assignment >= 0
    values[matched] = r[matched.nonzero().flatten(), assignment[matched]]
    return assignment, values


def match_from_activations(a: torch.Tensor, b: torch.Tensor, layer_a: str = "a", layer_b: str = "b") -> UnitMatch:
    """:class:`UnitMatch` of two activation tensors of the same images (``(N, U, H, W)`` or ``(N, U)``).

    >>> match_from_activations(x, x[:, [2, 0, 1]]).best.tolist()
    [1, 2, 0]
    """
    if len(a) != len(b):
        raise InterpError(f"the two activations are of {len(a)} and {len(b)} images; give the same images to both")
    a, b = _same_grid(a, b)
    m = _moments(a, b)
    r = correlation_from_moments(m).float()
    best_r, best = r.max(1)
    back = r.argmax(0)  # B's best match in A
    mutual = back[best] == torch.arange(r.shape[0])
    assignment, assignment_r = _assignment(r)
    return UnitMatch(layer_a, layer_b, r, best, best_r, mutual, assignment, assignment_r, len(a),
                     a.shape[-2] * a.shape[-1], m)


def _layer_pair(layer: str | tuple[str, str]) -> tuple[str, str]:
    return (layer, layer) if isinstance(layer, str) else (layer[0], layer[1])


def match_units(run_a: Any, run_b: Any, layer: str | tuple[str, str], images: torch.Tensor, *,
                batch_size: int = BATCH) -> UnitMatch:
    """Match the units of ``layer`` in ``run_a`` to those in ``run_b`` by their correlation on ``images``.

    ``layer``: one name for both runs, or ``(layer in A, layer in B)`` for two architectures.
    Runs, Subjects or bare modules; each gets its own preprocessing (:func:`~interp.subject.as_subject`).

    >>> match_units(run, sibling, "conv1", images).pairs(3)
    """
    layer_a, layer_b = _layer_pair(layer)
    return match_from_activations(activations(run_a, layer_a, images, batch_size=batch_size),
                                  activations(run_b, layer_b, images, batch_size=batch_size), layer_a, layer_b)


# ----------------------------------------------------------------------------- nulls


def shuffled_copy(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with each parameter tensor's entries permuted at random (seeded): the same
    weight distribution per layer, no learnt structure. Buffers (batch-norm statistics) are kept."""
    g = torch.Generator().manual_seed(int(seed))
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for p in clone.parameters():
            flat = p.detach().flatten()
            p.copy_(flat[torch.randperm(flat.numel(), generator=g).to(flat.device)].view_as(p))
    return clone.eval()


def null_subject(run: Any, kind: str, seed: int) -> Subject:
    """``run`` (its preprocessing kept) with a ``reinitialized`` or weight-``shuffled`` copy of its model."""
    from ...zoo import reinitialized

    if kind not in NULL_KINDS:
        raise InterpError(f"the null is one of {', '.join(NULL_KINDS)}; got {kind!r}")
    subject = as_subject(run)
    model = reinitialized(subject.model, seed) if kind == "reinitialized" else shuffled_copy(subject.model, seed)
    return dataclasses.replace(subject, model=model, name=f"{subject.name} ({kind} {seed})")


def null_matches(run_a: Any, run_b: Any, layer: str | tuple[str, str], images: torch.Tensor, *, copies: int = 8,
                 kind: str = "reinitialized", seed: int = 1) -> list[UnitMatch]:
    """:func:`match_units` of ``run_a`` against ``copies`` null copies of ``run_b`` (seeds ``seed, seed+1, ...``).

    >>> [m.mean_best for m in null_matches(run, sibling, "conv1", images, copies=4)]
    """
    layer_a, layer_b = _layer_pair(layer)
    acts_a = activations(run_a, layer_a, images)
    return [match_from_activations(acts_a, activations(null_subject(run_b, kind, s), layer_b, images), layer_a,
                                   layer_b) for s in range(seed, seed + copies)]


# ----------------------------------------------------------------------------- CKA


def _centered_gram(x: torch.Tensor) -> torch.Tensor:
    x = x.double().flatten(1)
    x = x - x.mean(0, keepdim=True)
    return x @ x.T


def _hsic_unbiased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Song et al.'s (2012) unbiased HSIC of two Gram matrices (n >= 4)."""
    n = k.shape[-1]
    k = k - torch.diag_embed(torch.diagonal(k, dim1=-2, dim2=-1))
    l = l - torch.diag_embed(torch.diagonal(l, dim1=-2, dim2=-1))
    kl = (k * l).sum((-2, -1))
    k1, l1 = k.sum(-1), l.sum(-1)
    return (kl + k1.sum(-1) * l1.sum(-1) / ((n - 1) * (n - 2)) - 2 * (k1 * l1).sum(-1) / (n - 2)) / (n * (n - 3))


def cka_from_grams(k: torch.Tensor, l: torch.Tensor, *, debiased: bool = False) -> torch.Tensor:
    """Linear CKA from (uncentred) Gram matrices ``(..., n, n)``."""
    if debiased:
        if k.shape[-1] < 4:
            raise InterpError(f"debiased CKA needs at least 4 samples; got {k.shape[-1]}")
        kl, kk, ll = _hsic_unbiased(k, l), _hsic_unbiased(k, k), _hsic_unbiased(l, l)
    else:
        n = k.shape[-1]
        h = torch.eye(n, dtype=k.dtype) - 1.0 / n
        k, l = h @ k @ h, h @ l @ h
        kl, kk, ll = (k * l).sum((-2, -1)), (k * k).sum((-2, -1)), (l * l).sum((-2, -1))
    denom = (kk * ll).clamp_min(0).sqrt()
    return torch.where(denom > 1e-12, kl / denom.clamp_min(1e-12), torch.zeros_like(kl))


def linear_cka(x: torch.Tensor, y: torch.Tensor, *, debiased: bool = False) -> float:
    """Linear CKA of two representations of the same ``n`` samples, ``x (n, p)`` and ``y (n, q)``
    (more dimensions are flattened): 1 for the same representation up to rotation and scale, near 0
    for unrelated ones (exactly 0 in expectation with ``debiased=True``).

    >>> linear_cka(x, x @ torch.linalg.qr(torch.randn(8, 8))[0])
    1.0
    """
    if len(x) != len(y):
        raise InterpError(f"CKA compares the same samples; got {len(x)} and {len(y)} rows")
    return float(cka_from_grams(_centered_gram(x), _centered_gram(y), debiased=debiased))


@dataclass
class LayerSimilarity:
    """CKA of run A's and run B's layers on the same images, per layer pair, with a bootstrap 95% CI over
    images and (``null_models`` > 0) the CKA of A against null copies of B."""

    layers: list[tuple[str, str]]
    cka: list[float]
    ci: list[tuple[float, float]]
    null: list[list[float]]
    n_images: int
    debiased: bool
    null_kind: str

    def rows(self) -> list[dict]:
        """One dict per layer pair: ``layer``, ``cka``, ``ci_low``, ``ci_high``, ``null_max``."""
        return [{"layer": a if a == b else f"{a} ~ {b}", "cka": c, "ci_low": lo, "ci_high": hi,
                 "null_max": max(n) if n else None} for (a, b), c, (lo, hi), n in zip(self.layers, self.cka,
                                                                                     self.ci, self.null)]


def _bootstrap_cka(k: torch.Tensor, l: torch.Tensor, *, debiased: bool, draws: int, seed: int) -> tuple[float, float]:
    def statistic(idx: torch.Tensor) -> torch.Tensor:
        out = []
        for chunk in idx.long().split(50):  # (50, n, n) at a time keeps memory small
            kk = k[chunk[:, :, None], chunk[:, None, :]]
            ll = l[chunk[:, :, None], chunk[:, None, :]]
            out.append(cka_from_grams(kk, ll, debiased=debiased))
        return torch.cat(out)

    return bootstrap_ci(torch.arange(len(k), dtype=torch.float64), statistic, draws=draws, seed=seed)


def layer_similarity(run_a: Any, run_b: Any, layers: Sequence[str | tuple[str, str]], images: torch.Tensor, *,
                     debiased: bool = False, null_models: int = 0, null_kind: str = "reinitialized",
                     seed: int = 0, draws: int = 1000) -> LayerSimilarity:
    """Linear CKA of each layer of ``run_a`` with the same (or paired) layer of ``run_b`` on ``images``,
    each image's activations flattened into one sample; CI by resampling images.

    >>> layer_similarity(run, sibling, ["conv1", "conv2"], images, null_models=4).rows()
    [{'layer': 'conv1', 'cka': 0.93, 'ci_low': 0.9, 'ci_high': 0.95, 'null_max': 0.6}, ...]
    """
    pairs = [_layer_pair(layer) for layer in layers]
    nulls = [null_subject(run_b, null_kind, s) for s in range(seed + 1, seed + 1 + null_models)]
    cka, ci, null = [], [], []
    for layer_a, layer_b in pairs:
        k = _centered_gram(activations(run_a, layer_a, images))
        l = _centered_gram(activations(run_b, layer_b, images))
        cka.append(float(cka_from_grams(k, l, debiased=debiased)))
        ci.append(_bootstrap_cka(k, l, debiased=debiased, draws=draws, seed=seed))
        null.append([float(cka_from_grams(k, _centered_gram(activations(s, layer_b, images)), debiased=debiased))
                     for s in nulls])
    return LayerSimilarity(pairs, cka, ci, null, len(images), debiased, null_kind)
