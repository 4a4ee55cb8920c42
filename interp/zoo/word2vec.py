"""word2vec: the exercise's two-layer skip-gram and skip-gram with negative sampling.

``word2vec`` is the classic exercise (two Keras ``Dense`` layers) written in PyTorch::

    one-hot word (V) -> hidden: Linear(V, d) -> output: Linear(d, V) -> softmax over contexts

trained with cross-entropy on (center, context) pairs, window 2, stop words removed,
``d = 2`` so the embedding can be plotted as it is. A word's vector is its column of
the first layer's weight (``hidden.weight[:, i]``), as the exercise reads it with
``get_weights()[0]``.

``word2vec-sgns`` is Mikolov et al.'s skip-gram with negative sampling for real corpora:
two ``nn.Embedding`` tables (``in_embed``: the word vectors, ``out_embed``: the context
vectors), ``d = 100``, trained the way word2vec.c and gensim train it: plain SGD with a
learning rate that falls linearly from 0.025, touching only the rows of each step's
words (:func:`sgns_sgd_step`), frequent-word subsampling and a dynamic window.

Data options live in the model config, so ``--set window=5 --set min_count=3`` work:
``window``, ``min_count``, ``stopwords`` (drop English stop words), ``subsample``
(threshold ``t``; 0 keeps every token), ``negatives`` and ``dynamic_window``.

>>> model = create_model("word2vec", vocab_size=40)
>>> embedding_matrix(model).shape
torch.Size([40, 2])
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InterpError
from .registry import register_model

TOY_DATASET = "toy-royalty"


@dataclass(frozen=True)
class Word2VecConfig:
    """The exercise: one-hot skip-gram with a full softmax."""

    vocab_size: int = 0
    """Filled from the data (the vocabulary after min-count and stop words)."""
    dim: int = 2
    window: int = 2
    """Context words on each side of the center."""
    min_count: int = 1
    """Drop words seen fewer times than this."""
    stopwords: bool = True
    """Remove English stop words before building pairs (as the exercise does)."""
    subsample: float = 0.0
    """Frequent-word subsampling threshold t (0: off; word2vec uses 1e-3 to 1e-5)."""


@dataclass(frozen=True)
class SGNSConfig:
    """Skip-gram with negative sampling (word2vec.c / gensim ``sg=1, negative=5``)."""

    vocab_size: int = 0
    """Filled from the data (the vocabulary after min-count)."""
    dim: int = 100
    window: int = 5
    """Largest distance between center and context (see dynamic_window)."""
    min_count: int = 5
    """Drop words seen fewer times than this."""
    negatives: int = 5
    """Noise words per (center, context) pair, drawn from unigram counts ** 0.75."""
    subsample: float = 1e-3
    """Frequent-word subsampling threshold t (0: keep every token)."""
    dynamic_window: bool = True
    """Each center draws its window size from 1..window, as word2vec does."""
    stopwords: bool = False
    """Remove English stop words (subsampling usually does this job)."""


def _check(cfg) -> None:
    if cfg.vocab_size < 0 or cfg.dim <= 0:
        raise InterpError(f"dim must be > 0 and vocab_size >= 0; got dim={cfg.dim}, vocab_size={cfg.vocab_size}")
    if cfg.window <= 0:
        raise InterpError(f"window must be >= 1, got {cfg.window}")
    if cfg.min_count <= 0:
        raise InterpError(f"min_count must be >= 1, got {cfg.min_count}")
    if cfg.subsample < 0:
        raise InterpError(f"subsample must be >= 0 (0: off), got {cfg.subsample}")
    if getattr(cfg, "negatives", 1) <= 0:
        raise InterpError(f"negatives must be >= 1, got {cfg.negatives}")


class OneHotSkipGram(nn.Module):
    """``hidden = Linear(V, d)`` on a one-hot word, ``output = Linear(d, V)``: context logits."""

    def __init__(self, cfg: Word2VecConfig):
        super().__init__()
        _check(cfg)
        self.config = cfg
        with warnings.catch_warnings():  # vocab_size 0 (filled from the data later) warns on init
            warnings.simplefilter("ignore", UserWarning)
            self.hidden = nn.Linear(cfg.vocab_size, cfg.dim)
            self.output = nn.Linear(cfg.dim, cfg.vocab_size)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        """Word ids ``(B,)`` or one-hot rows ``(B, V)`` -> context logits ``(B, V)``."""
        if words.dtype in (torch.int64, torch.int32):
            words = F.one_hot(words.long(), self.config.vocab_size).to(self.hidden.weight.dtype)
        return self.output(self.hidden(words))


class SkipGramNS(nn.Module):
    """Word vectors ``in_embed`` and context vectors ``out_embed``; scores are their dot products."""

    def __init__(self, cfg: SGNSConfig):
        super().__init__()
        _check(cfg)
        self.config = cfg
        self.in_embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.out_embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        # word2vec's initialisation: small uniform word vectors, zero context vectors.
        with torch.no_grad():
            self.in_embed.weight.uniform_(-0.5 / cfg.dim, 0.5 / cfg.dim)
            self.out_embed.weight.zero_()

    def forward(self, centers: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, T)``: word vector of each center against the context vectors of its targets."""
        h = self.in_embed(centers)                      # (B, d)
        u = self.out_embed(targets)                     # (B, T, d)
        return torch.bmm(u, h.unsqueeze(2)).squeeze(2)  # (B, T)


def sgns_loss(scores: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over pairs of ``-log s(pos) - sum log s(-neg)``; column 0 of ``scores`` is the true context.

    ``weights`` ``(B, 1 + K)`` (0 or 1) leaves out noise words that equal the context word.
    """
    signs = torch.full_like(scores, -1.0)
    signs[:, 0] = 1.0
    per = -F.logsigmoid(scores * signs)
    if weights is not None:
        per = per * weights
    return per.sum(1).mean()


class TargetGroups(NamedTuple):
    """A batch's target words grouped by word, for the context-table update (see :func:`group_targets`)."""

    order: torch.Tensor  # positions in targets.reshape(-1), grouped by word
    rows: torch.Tensor  # the center (row of the batch's center vectors) of each of those positions
    words: torch.Tensor  # the distinct target words, in group order
    offsets: torch.Tensor  # where each word's group starts in ``order``


def group_targets(targets: torch.Tensor, vocab_size: int,
                  center_of_pair: torch.Tensor | None = None) -> TargetGroups:
    """Group a ``(B, T)`` batch of target words by word, so the context-table update is a
    gather (``embedding_bag``) plus one ``index_add_`` of distinct rows instead of a scatter.

    ``center_of_pair`` ``(B,)``: the center each pair belongs to, when pairs are grouped
    by center (:func:`sgns_sgd_step`'s ``offsets``); by default pair ``i`` is center ``i``.

    The grouping is an argsort, which the batch producer computes off the update's thread,
    in numpy: its radix sort (16-bit keys, so vocabularies up to 65,536 words) is 20x
    faster than ``torch.sort`` here, its quicksort 5x, and its small ops cost less per call.

    >>> group_targets(torch.tensor([[2, 0], [0, 1]]), 3).words
    tensor([0, 1, 2])
    """
    keys = targets.reshape(-1).cpu().numpy()
    small = vocab_size <= 65536
    # Within a word the order does not matter (its rows are summed); any numpy sort is
    # deterministic for the same input.
    order = np.argsort(keys.astype(np.uint16), kind="stable") if small else np.argsort(keys)
    counts = np.bincount(keys, minlength=vocab_size)
    words = np.flatnonzero(counts)
    starts = np.cumsum(counts) - counts
    rows = order // targets.shape[1]  # the pair (batch row) of each grouped position
    if center_of_pair is not None:
        rows = center_of_pair.cpu().numpy()[rows]
    return TargetGroups(*(torch.from_numpy(a.astype(np.int64, copy=False)).to(targets.device)
                          for a in (order, rows, words, starts[words])))


def centers_of_pairs(offsets: torch.Tensor, n_pairs: int) -> torch.Tensor:
    """``(B,)``: for pairs grouped by center (center ``i`` owns pairs ``offsets[i]`` up to the
    next offset), the center of each pair.

    >>> centers_of_pairs(torch.tensor([0, 2, 3]), 5)
    tensor([0, 0, 1, 2, 2])
    """
    counts = torch.diff(offsets, append=offsets.new_tensor([n_pairs]))
    return torch.repeat_interleave(torch.arange(len(offsets), device=offsets.device), counts,
                                   output_size=n_pairs)


@torch.no_grad()
def sgns_sgd_step(model: SkipGramNS, centers: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                  lr: float, *, offsets: torch.Tensor | None = None, groups: TargetGroups | None = None,
                  sparse: bool | None = None) -> torch.Tensor:
    """One sparse SGD step on a batch of pairs, as word2vec.c does it; returns the batch's mean loss.

    ``targets`` ``(B, 1 + K)``: each pair's context word, then K noise words; ``weights``
    ``(B, 1 + K)``: 1, or 0 for a noise word equal to the context word (word2vec skips
    those). Each pair's gradient of its own loss is applied with step ``lr``, and only
    the rows of the batch's words change. Updates of one word within a batch add up
    where word2vec applies them one after another; the two agree while ``lr`` times a
    word's count in the batch stays small, which bounds the batch size (4,096 pairs is
    safe on Tiny Shakespeare; 16,384 diverges).

    ``centers`` ``(B,)``, one per pair; or, with ``offsets`` ``(C,)``, pairs grouped by
    center as skip-gram makes them (:func:`interp.data.words.skipgram_windows`): center
    ``i`` (of ``C``) owns pairs ``offsets[i]`` up to the next offset. Grouped, each
    center's vector is read once and gets one summed update, and the center vectors
    of a batch are few enough to stay in cache: about 30% less time per step on CPU.

    ``sparse`` (default: on CPU) never builds the ``(B, 1 + K, d)`` block of context
    rows: the scores are a sampled dense-dense product (``sampled_addmm``), and the
    context-table update sums each target word's ``g * h`` with ``embedding_bag`` over
    ``groups`` (:func:`group_targets`; computed here when not given) and adds the
    distinct rows once. Otherwise a gather, ``bmm`` and ``index_add_`` (better on GPUs).
    All give the same result.
    """
    w_in, w_out = model.in_embed.weight, model.out_embed.weight
    b, t = targets.shape
    v = len(w_out)
    if offsets is None:
        offsets = torch.arange(b, device=targets.device)
    h = w_in.index_select(0, centers)                                      # (C, d)
    flat = targets.reshape(-1)
    sparse = w_in.device.type == "cpu" if sparse is None else sparse
    if sparse and len(offsets) and int(torch.diff(offsets, append=offsets.new_tensor([b])).max()) * t > v:
        # sampled_addmm cannot hold more targets in one row than the vocabulary has words
        # (a tiny corpus: 3 words, 10 pairs of 6 targets per center); the dense path can.
        sparse = False
    if sparse:
        # CSR: row i (center i) holds the targets of all its pairs
        crow = F.pad(offsets, (0, 1), value=b).mul_(t)
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            pattern = torch.sparse_csr_tensor(crow, flat, torch.zeros(b * t, device=w_out.device),
                                              (len(centers), v), check_invariants=False)
        scores = torch.sparse.sampled_addmm(pattern, h, w_out.t(), beta=0.0).values().view(b, t)
    else:
        pair_center = centers_of_pairs(offsets, b)
        u = w_out[targets]                                                 # (B, T, d)
        h_pairs = h.index_select(0, pair_center)
        scores = torch.bmm(u, h_pairs.unsqueeze(2)).squeeze(2)
    # Few, fused ops: at 4,096 pairs a step, per-op overhead is a good part of the cost.
    labels = _labels(t, scores.device)                                     # 1 for the context, 0 for noise
    g = torch.sub(labels, torch.sigmoid(scores)).mul_(weights)             # label - sigmoid
    # The loss from g: 1 - |g| is the probability given to the right label (1 where the
    # weight is 0, adding nothing); cheaper than a separate loss function (log1p is
    # ten times slower than log here: not vectorised on CPU).
    loss = g.abs().neg_().add_(1.0).clamp_min_(1e-7).log_().sum().neg_() / max(b, 1)
    g.mul_(lr)  # here, not as index_add_'s alpha: that path is three times slower on CPU
    if sparse:
        # before w_out moves: each center's sum of g * context vector over all its targets
        grad_h = F.embedding_bag(flat, w_out, crow[:-1], mode="sum", per_sample_weights=g.view(-1))
        if groups is None:
            groups = group_targets(targets, v, centers_of_pairs(offsets, b) if len(centers) < b else None)
        per_word = F.embedding_bag(groups.rows, h, groups.offsets, mode="sum",
                                   per_sample_weights=g.view(-1).index_select(0, groups.order))
        w_out.index_add_(0, groups.words, per_word)
        w_in.index_add_(0, centers, grad_h)
    else:
        grad_h = torch.bmm(g.unsqueeze(1), u).squeeze(1)                   # (B, d), per pair
        w_out.index_add_(0, flat, (g.unsqueeze(2) * h_pairs.unsqueeze(1)).reshape(b * t, -1))
        w_in.index_add_(0, centers.index_select(0, pair_center), grad_h)
    return loss


@functools.lru_cache(maxsize=8)
def _labels(t: int, device: torch.device) -> torch.Tensor:
    """``(1, t)``: 1 for the context word (column 0), 0 for the noise words."""
    labels = torch.zeros(1, t, device=device)
    labels[0, 0] = 1.0
    return labels


def embedding_matrix(model: nn.Module) -> torch.Tensor:
    """The word vectors ``(V, d)`` of a word2vec model (detached, on the model's device).

    >>> embedding_matrix(create_model("word2vec-sgns", vocab_size=10)).shape
    torch.Size([10, 100])
    """
    if isinstance(model, OneHotSkipGram):
        return model.hidden.weight.detach().t()
    if isinstance(model, SkipGramNS):
        return model.in_embed.weight.detach()
    raise InterpError(f"{type(model).__name__} is not a word2vec model; word vectors come from "
                      f"word2vec or word2vec-sgns runs, or a --vectors file")


@register_model("word2vec", family="word2vec", task="word-embedding", config=Word2VecConfig,
                default_dataset=TOY_DATASET, recipe="word2vec",
                description="The classic exercise: one-hot Linear(V,2) -> Linear(2,V), softmax, window 2")
def word2vec(cfg: Word2VecConfig) -> OneHotSkipGram:
    return OneHotSkipGram(cfg)


@register_model("word2vec-sgns", family="word2vec", task="word-embedding", config=SGNSConfig,
                default_dataset="tinyshakespeare", recipe="word2vec-sgns",
                description="Skip-gram with negative sampling (nn.Embedding, d=100), sparse SGD like gensim")
def word2vec_sgns(cfg: SGNSConfig) -> SkipGramNS:
    return SkipGramNS(cfg)
