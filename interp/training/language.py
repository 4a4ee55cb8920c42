"""Language modelling: next-token prediction on character text or synthetic token tasks.

Each optimiser step samples ``batch_size`` random windows of ``block_size + 1`` tokens
from the training split (or fresh task sequences) with the epoch's generator, so an
epoch is ``steps_per_epoch`` steps (default :data:`DEFAULT_STEPS`) rather than a pass
over the data. Validation uses a fixed set of windows (cheap, comparable across
epochs); the final evaluation reads the whole validation split and adds the loss by
position and the in-context-learning score.

Runs on the induction task also record head scores after every epoch
(``metrics.jsonl``: ``head_scores``), from which :func:`interp.analysis.language.heads.training_dynamics`
plots the induction phase change.

>>> interp.train("attn-only", "induction", epochs=30, overrides={"steps_per_epoch": "20"})
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from ..data.text import CharCorpus, InductionSpec, induction_batch, load_char_corpus, random_windows
from ..device import resolve_precision
from ..errors import InterpError

DEFAULT_STEPS = {"text": 250, "induction": 50}
"""Optimiser steps per epoch when ``train.steps_per_epoch`` is 0."""
EVAL_SEQUENCES = 256
"""Validation windows evaluated after each epoch (``data.n_test`` overrides)."""
INDUCTION_DEFAULTS = {"vocab_size": 128, "min_block": 8, "max_block": 24}
HEAD_SCORE_SEQUENCES = 64
EVAL_SEED = 1234


def is_token_task(name: str) -> bool:
    return name == "induction" or name.startswith("induction:")


def parse_task_options(name: str) -> dict[str, int]:
    """``"induction:vocab_size=64,max_block=16"`` -> ``{"vocab_size": 64, "max_block": 16}``."""
    _, _, text = name.partition(":")
    options = {}
    for item in filter(None, text.replace(" ", "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise InterpError(f"bad dataset {name!r}: expected induction:KEY=N,..., e.g. "
                              f"induction:vocab_size=64,min_block=4,max_block=12")
        options[key] = int(value)
    return options


class LanguageModelTask:
    unit = "tok"

    def __init__(self, device: torch.device, *, progress: bool = True):
        self.device = device
        self.progress = progress
        self.corpus: CharCorpus | None = None
        self.spec: InductionSpec | None = None

    # -- setup -------------------------------------------------------------------
    def prepare(self, config):
        """Load the text (or set up the task); fill the vocabulary, vocab and context sizes."""
        dc = config.data
        model_cfg = dict(config.model_config)
        options = dict(dc.options)
        if is_token_task(dc.name):
            options.update(parse_task_options(dc.name))
            unknown = set(options) - set(INDUCTION_DEFAULTS)
            if unknown:
                raise InterpError(f"unknown induction option(s) {sorted(unknown)}; valid: {sorted(INDUCTION_DEFAULTS)}")
            options = {**INDUCTION_DEFAULTS, **options}
            self.spec = InductionSpec(vocab_size=options["vocab_size"], seq_len=model_cfg["block_size"] + 1,
                                      min_block=options["min_block"], max_block=options["max_block"])
            self.spec.check()
            vocab = self.spec.vocabulary()
        else:
            self.corpus = load_char_corpus(dc.name, progress=self.progress)
            vocab = self.corpus.vocab
            if dc.vocab and tuple(dc.vocab) != vocab.tokens:  # resuming on a text that has changed
                raise InterpError(f"the characters of {dc.name} differ from the run's vocabulary; the file has "
                                  f"changed since the run started, so it cannot be resumed on it")
        model_cfg["vocab_size"] = len(vocab)
        kind = "induction" if self.spec else "text"
        train_cfg = config.train
        if not train_cfg.steps_per_epoch:
            train_cfg = replace(train_cfg, steps_per_epoch=DEFAULT_STEPS[kind])
        config = replace(config, model_config=model_cfg, train=train_cfg,
                         data=replace(dc, name="induction" if self.spec else dc.name, vocab=tuple(vocab.tokens),
                                      options=options))
        self.attach(config)
        return config

    def attach(self, config) -> None:
        self.config = config
        self.train_cfg = config.train
        self.bf16 = resolve_precision(config.train.precision, self.device) == "bf16"  # once, not per batch
        self.block_size = config.model_config["block_size"]
        self.collect_head_scores = self.spec is not None
        g = torch.Generator().manual_seed(EVAL_SEED)
        n_eval = config.data.n_test or EVAL_SEQUENCES
        if self.spec is not None:
            self.val = induction_batch(n_eval, self.spec, g)
            self.final_val = self.val
            # The head-score probe of interp.analysis.language.tokens.repeated_tokens: BOS, a block, the block again.
            block = min((self.block_size - 1) // 2, self.spec.vocab_size - 1)
            probe = replace(self.spec, seq_len=self.block_size, min_block=block, max_block=block)
            self.score_tokens = induction_batch(HEAD_SCORE_SEQUENCES, probe, g)
        else:
            train, val = self.corpus.train, self.corpus.val
            if config.data.n_train:
                train = train[:config.data.n_train]
            if len(train) < self.block_size + 2:
                raise InterpError(f"the training split of {config.data.name} has {len(train)} characters, fewer than "
                                  f"one context of {self.block_size + 1}; use a longer text or a smaller block_size")
            self.train_ids = train.to(self.device)
            self.val = random_windows(val, n_eval, self.block_size, g)
            # The whole validation split in non-overlapping windows of block_size + 1.
            n = (len(val) - 1) // self.block_size
            self.final_val = torch.stack([val[i * self.block_size:(i + 1) * self.block_size + 1] for i in range(n)]) \
                if n else self.val

    # -- training ----------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        return self.train_cfg.steps_per_epoch

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[Any]:
        bs = self.train_cfg.batch_size
        for _ in range(self.steps_per_epoch()):
            if self.spec is not None:
                batch = induction_batch(bs, self.spec, generator).to(self.device)
            else:
                start = torch.randint(0, len(self.train_ids) - self.block_size - 1, (bs,), generator=generator)
                batch = self.train_ids[start.to(self.device)[:, None] + torch.arange(self.block_size + 1, device=self.device)]
            yield batch[:, :-1], batch[:, 1:]

    def loss(self, model, batch):
        x, y = batch
        # train.precision=bf16 (or auto where bf16 is native): the forward pass autocasts to bfloat16
        # (about 2x faster steps on CPUs with AVX512-BF16, the same loss per step); evaluation
        # stays in float32.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        return loss, {"n": y.numel()}

    # -- evaluation --------------------------------------------------------------
    @torch.no_grad()
    def position_loss(self, model, windows: torch.Tensor) -> torch.Tensor:
        from ..analysis.language.position import per_position_loss

        was_training = model.training
        model.eval()
        try:
            return per_position_loss(model, windows)
        finally:
            model.train(was_training)

    def evaluate(self, model, *, final: bool = False) -> dict[str, Any]:
        if not final:
            return {"val_loss": self.position_loss(model, self.val).mean().item()}
        from ..analysis.language.position import icl_score

        per_pos = self.position_loss(model, self.final_val)
        metrics = {"val_loss": per_pos.mean().item(), "val_tokens": int(self.final_val[:, 1:].numel()),
                   "loss_by_position": [round(v, 5) for v in per_pos.tolist()], "icl_score": icl_score(per_pos)}
        if self.collect_head_scores:
            metrics["head_scores"] = self.epoch_metrics(model)["head_scores"]
        return metrics

    def epoch_metrics(self, model) -> dict[str, Any]:
        """Head scores of every head after an epoch, for runs on the induction task."""
        if not self.collect_head_scores:
            return {}
        from ..analysis.language.heads import cached_patterns, score_patterns
        from ..analysis.language.bridge import to_bridge

        patterns = cached_patterns(to_bridge(model), self.score_tokens)  # a copy in eval mode: no dropout
        scores = score_patterns(patterns, self.score_tokens)
        return {"head_scores": {name: [[round(v, 4) for v in row] for row in s.tolist()] for name, s in scores.items()}}
