"""Word embeddings: skip-gram pairs from a word corpus, for the two word2vec models.

``word2vec`` (the exercise): every (center, context) pair of the corpus is built once;
an epoch is ``steps_per_epoch`` batches drawn from shuffled passes over them; loss is
softmax cross-entropy over the vocabulary; the core's optimiser (Adam) updates.

``word2vec-sgns``: each epoch subsamples frequent words and draws every center's
window size afresh, as word2vec does. A batch is a contiguous stretch of the text's
pairs (about ``batch_size`` of them, in whole windows: grouped by center), so an epoch
walks the corpus in order (like word2vec and gensim) and the learning rate falls with the
words processed. Each pair gets ``negatives`` noise words. The task applies the sparse SGD
update itself (:func:`interp.zoo.word2vec.sgns_sgd_step`, ``updates_weights``); with more than one
torch thread the batches are drawn in a background thread while the main thread
updates (same results). Throughput is raw corpus tokens per second (``tok_per_s``: all
words of the text, also those below min-count, as gensim's "raw words").

Evaluation: ``pair_loss``, the loss on a fixed sample of training pairs (word2vec has
no held-out objective), and for the toy corpus ``toy_relations``: the share of planted
relations (king nearer queen than girl, ...) that hold.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import replace
from typing import Any, Callable, Iterator, NamedTuple

import torch
import torch.nn.functional as F

from ..data.words import (STOP_WORDS, TOY_DATASET, NoiseSampler, build_vocabulary, encode, expected_pair_count,
                          keep_probabilities, load_word_corpus, skipgram_pairs, skipgram_windows, subsample)
from ..errors import InterpError
from ..threads import pinned
from ..zoo.word2vec import TargetGroups, centers_of_pairs, group_targets

EVAL_PAIRS = 5000
BLOCK_TOKENS = 20_000
"""SGNS draws the pairs of this many corpus tokens at once: enough to amortise the ops,
few enough that an epoch's first batch is ready quickly (the update waits for it) and a
block's pairs stay in cache."""
EVAL_SEED = 1234
TOY_RELATIONS = (
    # (word, nearer, farther): cosine(word, nearer) > cosine(word, farther) in a sound embedding.
    ("king", "queen", "girl"), ("queen", "king", "boy"), ("prince", "princess", "woman"),
    ("princess", "prince", "man"), ("man", "woman", "princess"), ("woman", "man", "prince"),
    ("boy", "girl", "queen"), ("girl", "boy", "king"),
)


class SGNSBatch(NamedTuple):
    """One SGNS step: pairs grouped by center (see :func:`interp.zoo.word2vec.sgns_sgd_step`)."""

    centers: torch.Tensor         # (C,) center words
    offsets: torch.Tensor         # (C,) where each center's pairs start
    targets: torch.Tensor         # (B, 1 + negatives) context word, then noise words, per pair
    weights: torch.Tensor         # (B, 1 + negatives) 0 for a noise word equal to the context
    raw_tokens: int               # the raw corpus tokens this step stands for
    groups: TargetGroups | None   # the targets grouped by word (CPU update), else None


def _why_so_few(sentences, opts) -> str:
    """What removed the words, and the setting that would keep them."""
    distinct = {w for s in sentences for w in s}
    if not distinct:
        return " (the corpus has no words at all: is the file empty?)"
    if len(distinct) < 2:
        return f" (the corpus has {len(distinct)} distinct word; train on a text with more)"
    kept = distinct - set(STOP_WORDS) if opts["stopwords"] else distinct
    if len(kept) < 2:
        return (f" ({len(distinct)} distinct words, {len(distinct) - len(kept)} of them stop words; keep them "
                f"with --set stopwords=false)")
    return f" ({len(kept)} distinct words, but fewer than 2 occur min_count={opts['min_count']} times; lower " \
           f"--set min_count)"


class WordEmbeddingTask:
    unit = "pair"
    updates_weights = False

    def __init__(self, device: torch.device, *, progress: bool = True):
        self.device = device
        self.progress = progress

    # -- setup -------------------------------------------------------------------
    def prepare(self, config):
        """Tokenise, build the vocabulary and the pairs; fill ``vocab`` and ``vocab_size``."""
        dc = config.data
        opts = dict(config.model_config)
        self.sgns = "negatives" in opts
        self.train_cfg = config.train
        self.is_toy = dc.name in (TOY_DATASET, "toy")
        self.window = opts["window"]
        corpus = load_word_corpus(dc.name, progress=self.progress).head(dc.n_train)
        vocab = build_vocabulary(corpus.sentences, min_count=opts["min_count"],
                                 stopwords=STOP_WORDS if opts["stopwords"] else ())
        where = (f"corpus {dc.name!r} ({corpus.n_tokens:,} words, {len(corpus.sentences):,} sentences) "
                 f"with min_count={opts['min_count']}, window={self.window}"
                 f"{', stop words removed' if opts['stopwords'] else ''}")
        if len(vocab) < 2:
            raise InterpError(f"{where} is too small: only {len(vocab)} word(s) remain in the vocabulary"
                              f"{_why_so_few(corpus.sentences, opts)}. Word vectors need at least two "
                              f"distinct words that occur together")
        encoded = encode(corpus.sentences, vocab)
        self.words = vocab.words
        self.ids, self.sentence_ids, self.raw_tokens = encoded.ids, encoded.sentence_ids, encoded.raw_tokens
        self.keep = keep_probabilities(vocab.counts, opts["subsample"])
        self.stats = {"raw_tokens": self.raw_tokens, "vocab_size": len(vocab), "corpus_tokens": len(self.ids)}
        if self.sgns:
            self._prepare_sgns(opts, vocab, where)
        else:
            self._prepare_exercise(where)
        model_cfg = {**opts, "vocab_size": len(vocab)}
        return replace(config, data=replace(dc, vocab=tuple(vocab.words)), model_config=model_cfg)

    def _prepare_exercise(self, where: str) -> None:
        self.centers, self.contexts = skipgram_pairs(self.ids, self.sentence_ids, self.window)
        if len(self.centers) == 0:
            raise InterpError(f"{where} gives no (center, context) pairs: every sentence is shorter than two "
                              f"kept words. Lower --set min_count, keep stop words (--set stopwords=false), "
                              f"or use a larger corpus")
        self.stats["pairs"] = len(self.centers)

    def _prepare_sgns(self, opts: dict, vocab, where: str) -> None:
        self.unit = "tok"
        self.updates_weights = True
        self.negatives = opts["negatives"]
        self.dynamic = opts["dynamic_window"]
        self.noise = NoiseSampler(vocab.counts)
        self.vocab_size = len(vocab)
        expected = expected_pair_count(self.sentence_ids, self.keep[self.ids], self.window, dynamic=self.dynamic)
        if expected < 1:
            kept = float(self.keep[self.ids].mean()) if len(self.ids) else 0.0
            why = (f"subsampling (subsample={opts['subsample']:g}) keeps about {kept:.0%} of its tokens, since in "
                   f"so small a corpus every word is a large share of it; --set subsample=0 keeps them all"
                   if kept < 0.5 else "its sentences are shorter than two kept words; lower --set min_count, "
                                      "or use a larger corpus")
            raise InterpError(f"{where} gives no (center, context) pairs: {why}")
        self.stats["pairs_per_epoch"] = round(expected)
        # Blocks of text whose pairs and noise words are drawn at once (memory stays bounded
        # on large corpora); each gets its share of the epoch's steps.
        n = len(self.ids)
        # A short first block: the update thread waits for the epoch's first batch.
        first = min(BLOCK_TOKENS // 8, n)
        self.block_bounds = [0] + list(range(first, n, BLOCK_TOKENS)) + [n]
        total_steps = max(1, round(expected / self.train_cfg.batch_size))
        cum = [round(total_steps * b / n) for b in self.block_bounds]
        self.block_steps = [max(1, cum[i + 1] - cum[i]) for i in range(len(cum) - 1)]
        self.n_steps = sum(self.block_steps)
        # Fixed evaluation pairs: random centers, one random context each, fixed noise words.
        g = torch.Generator().manual_seed(EVAL_SEED)
        n = len(self.ids)
        pos = torch.randint(0, n, (4 * EVAL_PAIRS,), generator=g)
        offset = torch.randint(1, self.window + 1, (len(pos),), generator=g)
        ctx = pos + torch.where(torch.rand(len(pos), generator=g) < 0.5, offset, -offset)
        ok = (ctx >= 0) & (ctx < n)
        pos, ctx = pos[ok], ctx[ok]
        ok = self.sentence_ids[pos] == self.sentence_ids[ctx]
        pos, ctx = pos[ok][:EVAL_PAIRS], ctx[ok][:EVAL_PAIRS]
        self.eval_batch = (self.ids[pos], *self._targets(self.ids[ctx], g))  # (centers, targets, weights)

    # -- batches -----------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        if self.sgns:
            return self.n_steps
        return self.train_cfg.steps_per_epoch or math.ceil(len(self.centers) / self.train_cfg.batch_size)

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[Any]:
        if self.sgns:
            threads = torch.get_num_threads()
            if threads == 1 or self.device.type != "cpu":
                yield from self._sgns_batches(generator)
                return
            # The update's ops are too small for intra-op threads to pay off (and OpenMP
            # degrades badly on a busy machine), so use the cores as a pipeline instead:
            # one thread draws the next batches while this one applies the updates. The
            # generator is used in the same order, so results do not change.
            with pinned(1):
                yield from prefetched(lambda: self._sgns_batches(generator))
            return
        bs, steps, n = self.train_cfg.batch_size, self.steps_per_epoch(), len(self.centers)
        passes = math.ceil(steps * bs / n)
        order = torch.cat([torch.randperm(n, generator=generator) for _ in range(passes)])
        for step in range(steps):
            idx = order[step * bs:(step + 1) * bs]
            yield self.centers[idx].to(self.device), self.contexts[idx].to(self.device)

    def _targets(self, contexts: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(targets, weights)`` ``(P, 1 + negatives)``: each context word, then its noise words."""
        noise = self.noise.sample((len(contexts), self.negatives), generator)
        targets = torch.cat([contexts[:, None], noise], 1)
        weights = torch.ones(targets.shape)
        weights[:, 1:] = (noise != contexts[:, None]).float()  # word2vec skips a noise word equal to the context
        return targets, weights

    def _sgns_batches(self, generator: torch.Generator) -> Iterator[SGNSBatch]:
        """The epoch in text order: subsample, the pairs of each block at once, noise words per step."""
        mask = subsample(self.ids, self.keep, generator)
        kept = mask.nonzero().squeeze(1)
        ids, sids = self.ids[kept], self.sentence_ids[kept]
        radius = torch.randint(1, self.window + 1, (len(kept),), generator=generator) if self.dynamic else None
        starts = torch.searchsorted(kept, torch.tensor(self.block_bounds)).tolist()
        n = len(self.ids)
        on_cpu = self.device.type == "cpu"
        for block, steps in enumerate(self.block_steps):
            windows = skipgram_windows(ids, sids, self.window, radius=radius,
                                       centers=slice(starts[block], starts[block + 1]))
            pairs = len(windows.contexts)
            # Steps end between centers (a center's pairs stay in one step), about as many
            # pairs each: cut at the first center boundary at or after each even share.
            bounds = torch.cat([windows.offsets, torch.tensor([pairs])])
            seg_cuts = torch.searchsorted(bounds, torch.linspace(0, pairs, steps + 1).ceil().long()).tolist()
            cuts = bounds[seg_cuts].tolist()
            lo, hi = self.block_bounds[block] / n, self.block_bounds[block + 1] / n
            # The raw tokens a step stands for: its share of the block's text (sums exactly).
            done = [round(self.raw_tokens * (lo + (hi - lo) * (c / pairs if pairs else i / steps)))
                    for i, c in enumerate(cuts)]
            # Noise words for the whole block at once (a block is small enough to stay in
            # cache); per step there is only slicing and the grouping left.
            targets, weights = self._targets(windows.contexts, generator)
            center_of_pair = centers_of_pairs(windows.offsets, pairs) if on_cpu else None
            for i in range(steps):
                (sa, sb), (a, b) = seg_cuts[i:i + 2], cuts[i:i + 2]
                # The CPU update groups the targets by word; sorting them here keeps the
                # sort off the update's thread.
                groups = (group_targets(targets[a:b], self.vocab_size, center_of_pair[a:b] - sa)
                          if on_cpu else None)
                batch = (windows.centers[sa:sb], windows.offsets[sa:sb] - a, targets[a:b], weights[a:b])
                yield SGNSBatch(*(x.to(self.device) for x in batch), done[i + 1] - done[i], groups)

    # -- the loss and the update ------------------------------------------------
    def loss(self, model, batch):
        if self.sgns:
            from ..zoo.word2vec import sgns_loss

            centers = batch.centers.index_select(0, centers_of_pairs(batch.offsets, len(batch.targets)))
            return sgns_loss(model(centers, batch.targets), batch.weights), {"n": batch.raw_tokens}
        centers, contexts = batch
        return F.cross_entropy(model(centers), contexts), {"n": len(centers)}

    def train_step(self, model, batch: SGNSBatch, lr: float):
        """The SGNS update (sparse SGD); the core calls this instead of backward + optimiser."""
        from ..zoo.word2vec import sgns_sgd_step

        if len(batch.targets) == 0:  # a span whose tokens were all subsampled away
            return torch.zeros((), device=self.device), {"n": batch.raw_tokens}
        loss = sgns_sgd_step(model, batch.centers, batch.targets, batch.weights, lr, offsets=batch.offsets,
                             groups=batch.groups)
        return loss, {"n": batch.raw_tokens}

    # -- evaluation --------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model, *, final: bool = False) -> dict[str, Any]:
        from ..zoo.word2vec import embedding_matrix, sgns_loss

        was_training = model.training
        model.eval()
        try:
            if self.sgns:
                centers, targets, weights = (x.to(self.device) for x in self.eval_batch)
                metrics = {"pair_loss": sgns_loss(model(centers, targets), weights).item()}
            else:
                logits = model(self.centers.to(self.device))
                metrics = {"pair_loss": F.cross_entropy(logits, self.contexts.to(self.device)).item()}
        finally:
            model.train(was_training)
        if self.is_toy:
            relations = relation_score(embedding_matrix(model).float().cpu(), self.words)
            if relations is not None:
                metrics["toy_relations"] = relations
        if final:
            metrics.update(self.stats)
        return metrics


def prefetched(make_items: Callable[[], Iterator[Any]], depth: int = 32) -> Iterator[Any]:
    """Items of ``make_items()`` produced by a background thread, ``depth`` ahead; errors re-raised here.

    Closing the returned generator (a ``break`` in the consumer) stops the thread.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in make_items():
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer, which raises it
            put(e)

    thread = threading.Thread(target=work, name="interp-word2vec-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def relation_score(matrix: torch.Tensor, words, relations=TOY_RELATIONS) -> float | None:
    """Share of ``(word, nearer, farther)`` triples whose cosines are ordered as named; None if none apply."""
    index = {w: i for i, w in enumerate(words)}
    usable = [r for r in relations if all(w in index for w in r)]
    if not usable:
        return None
    unit = F.normalize(matrix, dim=1)
    held = sum(float(unit[index[a]] @ unit[index[b]] > unit[index[a]] @ unit[index[c]]) for a, b, c in usable)
    return held / len(usable)

