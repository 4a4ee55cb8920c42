"""Clever Hans checks: does a classifier's accuracy survive inputs that should not suffice?

A model that still classifies well when the object is masked out, when only the image
border is left, or when the image is cut into shuffled patches is probably using a
shortcut (a watermark, a background, a texture) rather than what the task is about:
Lapuschkin et al.'s "Clever Hans" predictors. For text models the analogue is a cue
token: does the model's behaviour hinge on one token?

>>> acc = perturbation_accuracy(run, images, labels)   # {"full": 0.93, "border_only": 0.11, ...}
>>> check_claims(run, ["clever-hans"])[0].verdict

Perturbations (images in [0, 1], ``[N, C, H, W]``; masked areas take the mean colour of
all the images, so neither a new cue nor what was masked leaks in):

- ``grayscale``: luminance only (a control: shape tasks should keep their accuracy);
- ``centre_masked``: the central square of half the side is hidden;
- ``border_only``: only an outer frame of 1/8 of the side is left;
- ``patches_shuffled``: a 4 x 4 grid of patches is shuffled (local texture stays, global shape goes);
- ``low_pass``: Gaussian blur with sigma = side / 16 (fine detail goes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from ..errors import InterpError
from ..plots import pyplot
from .registry import (INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, Claim, ClaimResult, binomial_tail,
                       register_claim, run_kind)

PERTURBATIONS = ("grayscale", "centre_masked", "border_only", "patches_shuffled", "low_pass")
SHOULD_DESTROY = ("border_only", "patches_shuffled")
"""Perturbations that leave too little of an object-centred image to classify it: the defaults
whose surviving accuracy is flagged (override with ``destroy=``)."""


def _mean_fill(images: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    # The mean colour of the whole batch, the same for every image: a per-image mean would
    # leak what was masked (a bright object makes a brighter mean).
    mean = images.mean(dim=(0, 2, 3), keepdim=True)
    return torch.where(keep, images, mean.expand_as(images))


def perturb(images: torch.Tensor, kind: str, *, seed: int = 0) -> torch.Tensor:
    """One of :data:`PERTURBATIONS` applied to float images ``[N, C, H, W]`` in [0, 1].

    >>> perturb(torch.rand(2, 3, 32, 32), "border_only").shape
    torch.Size([2, 3, 32, 32])
    """
    x = images.float()
    n, c, h, w = x.shape
    if kind == "grayscale":
        if c != 3:
            return x
        lum = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return lum.expand_as(x).contiguous()
    if kind in ("centre_masked", "border_only"):
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        if kind == "centre_masked":
            inside = ((yy >= h // 4) & (yy < h - h // 4) & (xx >= w // 4) & (xx < w - w // 4))
            keep = ~inside
        else:
            b = max(1, h // 8)
            keep = (yy < b) | (yy >= h - b) | (xx < b) | (xx >= w - b)
        return _mean_fill(x, keep.view(1, 1, h, w))
    if kind == "patches_shuffled":
        g = torch.Generator().manual_seed(seed)
        ph, pw = h // 4, w // 4
        x = x[:, :, :4 * ph, :4 * pw]
        patches = x.unfold(2, ph, ph).unfold(3, pw, pw)  # (N, C, 4, 4, ph, pw)
        patches = patches.reshape(n, c, 16, ph, pw)
        order = torch.stack([torch.randperm(16, generator=g) for _ in range(n)])
        patches = patches[torch.arange(n)[:, None], :, order].transpose(1, 2)  # (N, C, 16, ph, pw)
        out = patches.reshape(n, c, 4, 4, ph, pw).permute(0, 1, 2, 4, 3, 5).reshape(n, c, 4 * ph, 4 * pw)
        return F.pad(out, (0, w - 4 * pw, 0, h - 4 * ph), mode="replicate") if (h % 4 or w % 4) else out
    if kind == "low_pass":
        sigma = h / 16
        radius = max(1, int(math.ceil(2.5 * sigma)))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-t * t / (2 * sigma * sigma))
        k = k / k.sum()
        x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    raise InterpError(f"unknown perturbation {kind!r}; use one of {', '.join(PERTURBATIONS)}")


@torch.no_grad()
def accuracy(run, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 256) -> float:
    """Top-1 accuracy of a run's classifier on [0, 1] float (or uint8) images."""
    model = run.model.eval()
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    correct = 0
    for x, y in zip(images.split(batch_size), labels.split(batch_size)):
        logits = model(run.normalize(x.to(device)))
        correct += int((logits.argmax(-1).cpu() == y).sum())
    return correct / max(len(labels), 1)


@dataclass
class PerturbationAccuracy:
    """Accuracy on full and perturbed images, with chance level and how much of the gain over chance survives."""

    full: float
    perturbed: dict[str, float]
    chance: float
    n: int
    destroy: tuple[str, ...] = SHOULD_DESTROY
    p_values: dict[str, float] = field(default_factory=dict)
    """Binomial p-value of each accuracy against chance."""

    def retention(self, kind: str) -> float:
        """``(acc - chance) / (full - chance)``: 1 keeps all of the gain over chance, 0 none."""
        gain = self.full - self.chance
        return (self.perturbed[kind] - self.chance) / gain if gain > 0 else float("nan")


def _binomial_p(acc: float, n: int, chance: float) -> float:
    return binomial_tail(round(acc * n), n, chance)


def perturbation_accuracy(run, images: torch.Tensor, labels: torch.Tensor, *,
                          kinds: Sequence[str] = PERTURBATIONS, destroy: Sequence[str] = SHOULD_DESTROY,
                          seed: int = 0) -> PerturbationAccuracy:
    """Accuracy on the images and on each perturbation of them."""
    for kind in (*kinds, *destroy):
        if kind not in PERTURBATIONS:
            raise InterpError(f"unknown perturbation {kind!r}; use one of {', '.join(PERTURBATIONS)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    n_classes = len(run.classes) or int(labels.max()) + 1
    chance = max(torch.bincount(labels, minlength=n_classes).float().max().item() / len(labels), 1 / n_classes)
    full = accuracy(run, x, labels)
    perturbed = {k: accuracy(run, perturb(x, k, seed=seed), labels) for k in kinds}
    p_values = {k: _binomial_p(v, len(labels), chance) for k, v in {"full": full, **perturbed}.items()}
    return PerturbationAccuracy(full, perturbed, chance, len(labels), tuple(destroy), p_values)


# -------------------------------------------------------------------------- the claim


def _applies_classifier(run) -> str | None:
    if run_kind(run) not in ("vision", "classifier"):
        return "the check is for image classifiers trained as runs of this project"
    return None


def check_clever_hans(run, options: CheckOptions) -> ClaimResult:
    from .vision import claim_data

    claim = CLEVER_HANS
    thr = claim.thresholds
    images, labels = claim_data(run, options)
    if labels is None:
        raise InterpError("the Clever Hans check needs the labels of the images: pass labels= with images=")
    result = perturbation_accuracy(run, images, labels, seed=options.seed)
    rows = [{"input": "full", "accuracy": round(result.full, 4), "retention": 1.0, "should_destroy": False,
             "p_vs_chance": result.p_values["full"]}]
    for k, v in result.perturbed.items():
        r = result.retention(k)
        rows.append({"input": k, "accuracy": round(v, 4), "retention": round(r, 3) if r == r else None,
                     "should_destroy": k in result.destroy, "p_vs_chance": result.p_values[k]})
    survived = [k for k in result.destroy if result.retention(k) >= thr["retention"]
                and result.p_values[k] <= thr["p_value"]]
    numbers = {"images": result.n, "chance": round(result.chance, 4), "full": round(result.full, 4),
               **{k: round(v, 4) for k, v in result.perturbed.items()}}
    evidence = dict(layer="input", table=rows, numbers=numbers, found=survived,
                    data={"accuracy": {"full": result.full, **result.perturbed}, "chance": result.chance,
                          "destroy": list(result.destroy)})
    if result.p_values["full"] > thr["p_value"]:
        return claim.result(NOT_SUPPORTED, f"the model is at chance on full images ({result.full:.1%}, chance "
                            f"{result.chance:.1%}): there is no accuracy for a shortcut to explain", **evidence)
    if survived:
        detail = ", ".join(f"{k} {result.perturbed[k]:.1%} (keeps {result.retention(k):.0%} of the gain over chance)"
                           for k in survived)
        return claim.result(SUPPORTED, f"accuracy survives inputs that should destroy it: {detail}; full images "
                            f"{result.full:.1%}, chance {result.chance:.1%}", **evidence)
    detail = ", ".join(f"{k} {result.perturbed[k]:.1%}" for k in result.destroy)
    return claim.result(NOT_SUPPORTED, f"accuracy falls towards chance when the object is removed ({detail}; full "
                        f"{result.full:.1%}, chance {result.chance:.1%})", **evidence)


def plot_clever_hans(result: ClaimResult) -> dict:
    plt = pyplot()
    acc = result.data.get("accuracy")
    if not acc:
        return {}
    names = list(acc)
    destroy = set(result.data.get("destroy", []))
    colours = ["#1f77b4" if n == "full" else ("#d62728" if n in destroy else "#7f7f7f") for n in names]
    fig, ax = plt.subplots(figsize=(5.6, 3.0), layout="tight")
    ax.bar(range(len(names)), [acc[n] for n in names], color=colours)
    ax.axhline(result.data["chance"], ls="--", color="black", lw=0.8, label="chance")
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("red: inputs that should not suffice", fontsize=8)
    return {"accuracy": fig}


# -------------------------------------------------------------------------- text: cue tokens


@dataclass
class CueEffect:
    """How much replacing a token changes a language model's next-token predictions.

    ``effect``: mean KL divergence (nats) between the predictions with and without the
    token, over the positions from its first occurrence on, in sequences that contain it;
    ``placebo``: the same for other tokens (the null).
    """

    cue: str
    effect: float
    placebo: dict[str, float]
    sequences: int


@torch.no_grad()
def replacement_effect(model, tokens: torch.Tensor, token: int, replacement: int) -> tuple[float, int]:
    """Mean KL(original || replaced) of next-token predictions after ``token``'s first occurrence."""
    has = (tokens == token).any(1)
    x = tokens[has]
    if len(x) == 0:
        return float("nan"), 0
    p = next(model.parameters())
    logp = F.log_softmax(model(x.to(p.device)).float(), -1).cpu()
    y = x.clone()
    y[y == token] = replacement
    logq = F.log_softmax(model(y.to(p.device)).float(), -1).cpu()
    kl = (logp.exp() * (logp - logq)).sum(-1)  # (B, T)
    after = (x == token).int().cumsum(1) > 0
    return float(kl[after].mean()), len(x)


def cue_effect(run, cue: str, tokens: torch.Tensor, *, n_placebo: int = 8, seed: int = 0) -> CueEffect:
    """The effect of replacing ``cue`` (a token of the run's vocabulary) and of replacing placebo tokens."""
    from ..analysis.heads import run_vocabulary

    vocab = run_vocabulary(run)
    ids = vocab.encode(cue)
    if len(ids) != 1:
        raise InterpError(f"the cue must be one token of the model's vocabulary; {cue!r} is {len(ids)} tokens")
    cue_id = int(ids[0])
    counts = torch.bincount(tokens.flatten(), minlength=len(vocab))
    candidates = [t for t in range(len(vocab)) if t != cue_id and t != vocab.bos and counts[t] > 0]
    g = torch.Generator().manual_seed(seed)
    placebo_ids = [candidates[i] for i in torch.randperm(len(candidates), generator=g)[:n_placebo].tolist()]
    # The replacement: a token the sequences never use when there is one, else the rarest other token.
    replacement = int(torch.argsort(counts + torch.where(torch.arange(len(vocab)) == cue_id, 10**9, 0))[0])
    effect, n = replacement_effect(run.model, tokens, cue_id, replacement)
    if n == 0:
        raise InterpError(f"the cue {cue!r} never occurs in the evaluation sequences; pick a token the data uses")
    placebo = {vocab.tokens[t]: replacement_effect(run.model, tokens, t, replacement)[0] for t in placebo_ids
               if t != replacement}
    return CueEffect(cue, effect, placebo, n)


def _applies_language(run) -> str | None:
    return None if run_kind(run) == "transformer" else "the check is for language-model runs"


def _text_tokens(run, options: CheckOptions) -> torch.Tensor:
    from ..analysis.heads import run_vocabulary, task_tokens

    if run_vocabulary(run).is_char:
        from ..data.text import load_char_corpus, random_windows

        corpus = load_char_corpus(run.config.data.name, progress=options.progress)
        return random_windows(corpus.val, 128, run.config.model_config["block_size"] - 1,
                              torch.Generator().manual_seed(options.seed))
    return task_tokens(run, 128, seed=options.seed)


def check_cue_token(run, options: CheckOptions) -> ClaimResult:
    claim = CUE_TOKEN
    if not options.cue:
        return claim.result(INCONCLUSIVE, "no suspected cue token given; pass one with --cue TOKEN (Python: cue=...)")
    run.model.eval()
    tokens = _text_tokens(run, options)
    result = cue_effect(run, options.cue, tokens, seed=options.seed)
    placebo = [v for v in result.placebo.values() if v == v]
    null = claim.thresholds["factor"] * max(placebo) if placebo else float("nan")
    rows = [{"token": options.cue, "kl_after_replacing": round(result.effect, 5), "cue": True}]
    rows += [{"token": t, "kl_after_replacing": round(v, 5), "cue": False} for t, v in result.placebo.items()]
    floor = claim.thresholds["min_effect"]
    supported = bool(placebo) and result.effect > null and result.effect >= floor
    evidence = dict(layer="input tokens", table=rows, found=[options.cue] if supported else [],
                    numbers={"cue_effect": round(result.effect, 5), "placebo_max": round(max(placebo, default=0), 5),
                             "sequences_with_cue": result.sequences},
                    data={"effects": {r["token"]: r["kl_after_replacing"] for r in rows}})
    factor = claim.thresholds["factor"]
    if supported:
        return claim.result(SUPPORTED, f"replacing {options.cue!r} changes the predictions by {result.effect:.3f} "
                            f"nats (KL), more than {factor}x the largest effect of replacing one of {len(placebo)} "
                            f"other tokens ({max(placebo):.3f})", **evidence)
    return claim.result(NOT_SUPPORTED, f"replacing {options.cue!r} changes the predictions by {result.effect:.3f} "
                        f"nats (KL), not clearly more than other tokens (up to {max(placebo, default=0):.3f}) or "
                        f"below {floor}", **evidence)


# -------------------------------------------------------------------------- registration


CLEVER_HANS = register_claim(Claim(
    id="clever-hans",
    statement="The classifier's accuracy survives inputs that should not suffice (only the border, shuffled "
              "patches): it relies on a shortcut, a Clever Hans.",
    source="Lapuschkin et al., 'Unmasking Clever Hans predictors and assessing what machines really learn', "
           "Nature Communications 2019",
    url="https://www.nature.com/articles/s41467-019-08987-4",
    applies_to="image classifiers, on their test images",
    kind="classifier",
    thresholds={"retention": 0.5, "p_value": 0.01, "should_destroy": list(SHOULD_DESTROY)},
    check=check_clever_hans, applies=_applies_classifier, plot=plot_clever_hans,
))

CUE_TOKEN = register_claim(Claim(
    id="cue-token",
    statement="The language model's predictions hinge on a suspected cue token: replacing it changes them more "
              "than replacing other tokens.",
    source="Lapuschkin et al. 2019 (Clever Hans), applied to tokens; the cue comes from the user",
    url="https://www.nature.com/articles/s41467-019-08987-4",
    applies_to="language-model runs, with a cue token (--cue)",
    kind="transformer",
    thresholds={"min_effect": 0.01, "factor": 1.5,
                "null": "factor x the largest effect of replacing one of 8 other tokens (placebos)"},
    check=check_cue_token, applies=_applies_language, on_request=True,
))
