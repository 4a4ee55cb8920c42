"""What is measured at one training checkpoint, per example, so that every metric gets a bootstrap interval.

A *probe* holds the examples (seeded, fixed for the whole series: every checkpoint sees the
same ones); a *point* is one checkpoint's measurements on them, a dict of tensors whose
first dimension indexes the examples (``"k_composition"``, from the weights alone, has none).
:data:`METRICS` turn a point (and a resample of its examples) into one number.

>>> probe = transformer_probe(run, n_sequences=64, seed=0)
>>> point = transformer_point(load_snapshot(run, 120), probe)
>>> METRICS["induction"].value(point, probe)
0.62
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

Point = dict[str, torch.Tensor]
HEAD_SCORES = ("prev_token", "induction", "duplicate")
HEAD_LIFT = 2.0
"""A head score counts as risen at twice the best re-initialised model's (the head claims' x2 lift)."""


# ------------------------------------------------------------------ transformers


@dataclass
class TransformerProbe:
    """Repeated-token probes at several block lengths (head scores) and loss sequences (ICL, repeat losses)."""

    heads: dict[int, torch.Tensor]
    """{block length: tokens (n, T)}, :func:`~interp.analysis.language.tokens.length_probe`."""
    loss_tokens: torch.Tensor
    """(n, T+1): the run's validation text or task sequences."""
    repeated: torch.Tensor
    """(n, T) bool: loss positions whose token occurred earlier in the sequence (induction can predict the next)."""
    settings: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.loss_tokens)


def transformer_probe(run, *, n_sequences: int = 64, seed: int = 0) -> TransformerProbe:
    """The fixed examples every checkpoint of a language-model run is measured on."""
    from ..language.heads import repeated_positions
    from ..language.position import position_tokens
    from ..language.tokens import length_probe, token_digest

    heads = length_probe(run, n_sequences, seed=seed)
    loss_tokens = position_tokens(run, n_sequences, seed=seed + 1)
    settings = {"n_sequences": n_sequences, "seed": seed, "lengths": list(heads),
                "tokens": token_digest(torch.cat([loss_tokens.flatten()] + [t.flatten() for t in heads.values()]))}
    return TransformerProbe(heads, loss_tokens, repeated_positions(loss_tokens), settings)


@torch.no_grad()
def transformer_point(run, probe: TransformerProbe, *, composition: bool = True, bridge=None) -> Point:
    """Per-sequence head scores at every probe length, per-sequence loss by position, and the
    K-composition scores of a language-model run (a checkpoint: :func:`interp.snapshots.load_snapshot`).

    ``bridge``: a bridge of the same architecture to load the run's weights into (faster than booting one).
    """
    from ..language.bridge import reload_bridge, to_bridge
    from ..language.heads import cached_patterns, per_sequence_scores
    from ..language.position import per_sequence_position_loss

    bridge = reload_bridge(bridge, run) if bridge is not None else to_bridge(run)
    point: Point = {}
    for length, tokens in probe.heads.items():
        scores = per_sequence_scores(cached_patterns(bridge, tokens), tokens.cpu())
        for name in HEAD_SCORES:
            point[f"{name}@{length}"] = scores[name]  # (n, L, H)
    model = run.model
    was_training = model.training
    model.eval()
    try:
        point["loss"] = per_sequence_position_loss(model, probe.loss_tokens)  # (n, T)
    finally:
        model.train(was_training)
    if composition and bridge.cfg.n_layers >= 2:
        from ..language.circuits import composition_scores

        point["k_composition"] = composition_scores(run, "K")  # (L, H, L, H), from the weights
    return point


def head_table(point: Point, name: str, idx: torch.Tensor | None = None) -> torch.Tensor:
    """``(L, H)``: each head's ``name`` score, the minimum over probe lengths of its mean over sequences
    (so a head matching one repeat length by position is not an induction head)."""
    per_length = [t if idx is None else t[idx] for key, t in sorted(point.items()) if key.startswith(f"{name}@")]
    return torch.stack([t.mean(0) for t in per_length]).min(0).values


def _icl(loss: torch.Tensor) -> float:
    from ..language.position import icl_score

    return icl_score(loss.mean(0))


def _masked_mean(loss: torch.Tensor, mask: torch.Tensor) -> float:
    return float((loss * mask).sum() / mask.sum().clamp_min(1))


def _k_composition(point: Point) -> float:
    scores = point["k_composition"]  # [earlier layer, head, later layer, head]
    L = scores.shape[0]
    pairs = [scores[a, :, b, :].max() for a in range(L) for b in range(a + 1, L)]
    return float(torch.stack(pairs).max()) if pairs else float("nan")


# ------------------------------------------------------------------------- CNNs


@dataclass
class ImageProbe:
    """A seeded, class-stratified subset of the test images, normalised for the model."""

    images: torch.Tensor
    labels: torch.Tensor
    layers: list[str]
    n_classes: int
    settings: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.labels)


def image_probe(run, *, n_images: int = 1000, seed: int = 0) -> ImageProbe:
    """The fixed test images every checkpoint of an image classifier is measured on."""
    from ...data.samples import sample_images

    data = run.load_data(progress=False, split="test")
    x, y, sample = sample_images(data.test_x, data.test_y, n_images, seed=seed, classes=data.classes)
    layers = [layer.name for layer in run.layers if layer.kind in ("conv", "linear")][:-1]  # not the logits
    return ImageProbe(run.normalize(x), y, layers, len(data.classes),
                      {"n_images": sample.size, "seed": seed, "sample": sample.to_dict(), "layers": layers})


@torch.no_grad()
def image_point(run, probe: ImageProbe, *, batch_size: int = 250) -> Point:
    """Per-image correctness and loss, and each layer's per-image unit activations (ReLU, spatial mean)."""
    import torch.nn.functional as F

    from ...hooks import capture, eval_mode

    model = run.model
    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {}
    with eval_mode(model), capture(model, probe.layers) as acts:
        for i in range(0, probe.n, batch_size):
            x, y = probe.images[i:i + batch_size].to(device), probe.labels[i:i + batch_size].to(device)
            logits = model(x).float()
            parts.setdefault("correct", []).append((logits.argmax(1) == y).float().cpu())
            parts.setdefault("loss", []).append(F.cross_entropy(logits, y, reduction="none").cpu())
            for name in probe.layers:
                a = acts[name].float().relu()
                parts.setdefault(f"act:{name}", []).append((a.flatten(2).mean(2) if a.ndim == 4 else a).cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def class_selectivity(acts: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Each unit's class selectivity index (Morcos et al., 2018) ``(units,)``: (mu_max - mu_rest) /
    (mu_max + mu_rest) over its class-mean activations (0: no class preferred; 1: one class only).

    >>> class_selectivity(torch.tensor([[1.0], [0.0]]), torch.tensor([0, 1]), 2)
    tensor([1.])
    """
    onehot = torch.nn.functional.one_hot(labels, n_classes).float()  # (n, C)
    means = (onehot.T @ acts) / onehot.sum(0).clamp_min(1)[:, None]  # (C, units)
    top = means.max(0).values
    rest = (means.sum(0) - top) / max(n_classes - 1, 1)
    return ((top - rest) / (top + rest).clamp_min(1e-8)).clamp(0, 1)


# ----------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metric:
    """One number per checkpoint: ``value(point, probe, idx)`` with ``idx`` a resample of the examples
    (None: all of them); ``direction`` -1 when the change of interest is a fall (a loss)."""

    name: str
    title: str
    value: Callable[..., float]
    direction: int = 1
    resampled: bool = True
    lift: float = 1.0
    """A real rise reaches this many times the best re-initialised model (:func:`~.phase.detect_phase_change`)."""


def _mean(key):
    return lambda point, probe, idx=None: float((point[key] if idx is None else point[key][idx]).mean())


def _pick(point, idx, key):
    return point[key] if idx is None else point[key][idx]


def _repeat_loss(repeated: bool):
    """Mean loss at the positions whose token did (or did not) occur earlier in the sequence."""
    def value(point, probe, idx=None):
        mask = probe.repeated if repeated else ~probe.repeated
        loss = point["loss"]
        if idx is not None:
            loss, mask = loss[idx], mask[idx]
        return _masked_mean(loss, mask.float())
    return value


TRANSFORMER_METRICS = {
    "induction": Metric("induction", "best induction score",
                        lambda p, probe, idx=None: float(head_table(p, "induction", idx).max()), lift=HEAD_LIFT),
    "prev_token": Metric("prev_token", "best previous-token score",
                         lambda p, probe, idx=None: float(head_table(p, "prev_token", idx).max()), lift=HEAD_LIFT),
    "icl": Metric("icl", "in-context-learning score (late minus early loss)",
                  lambda p, probe, idx=None: _icl(_pick(p, idx, "loss")), direction=-1),
    "loss": Metric("loss", "loss", _mean("loss"), direction=-1),
    "loss_repeated": Metric("loss_repeated", "loss on repeated tokens", _repeat_loss(True), direction=-1),
    "loss_fresh": Metric("loss_fresh", "loss on tokens not seen before in the context", _repeat_loss(False),
                         direction=-1),
    "k_composition": Metric("k_composition", "strongest K-composition (earlier -> later head)",
                            lambda p, probe, idx=None: _k_composition(p), resampled=False),
}


def _selectivity(layer):
    def value(point, probe, idx=None):
        acts, labels = point[f"act:{layer}"], probe.labels
        if idx is not None:
            acts, labels = acts[idx], labels[idx]
        return float(class_selectivity(acts, labels, probe.n_classes).mean())
    return value


def image_metrics(probe: ImageProbe) -> dict[str, Metric]:
    """Accuracy, loss and each layer's mean class selectivity."""
    out = {"accuracy": Metric("accuracy", "test accuracy", _mean("correct")),
           "loss": Metric("loss", "test loss", _mean("loss"), direction=-1)}
    for layer in probe.layers:
        out[f"selectivity:{layer}"] = Metric(f"selectivity:{layer}", f"mean class selectivity of {layer}",
                                             _selectivity(layer))
    return out


def transformer_metrics(point: Point) -> dict[str, Metric]:
    """The transformer metrics a point supports (K-composition needs two layers)."""
    return {k: m for k, m in TRANSFORMER_METRICS.items() if k != "k_composition" or "k_composition" in point}
