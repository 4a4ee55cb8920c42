"""Training tasks: what the training core needs to know about a kind of model.

A task loads its data, fills the data-dependent parts of the run config (class names,
normalisation, vocabulary, output sizes), yields training batches, computes the loss and
evaluates. :mod:`interp.train` runs the same loop for every task.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol

import torch


class Task(Protocol):
    def prepare(self, config) -> Any:
        """Load the data; return the config with data-dependent fields filled in."""

    unit: str
    """What one example is, for throughput figures: "img", "tok", "pair"."""

    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch."""

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[Any]:
        """This epoch's batches, in an order that depends only on the generator."""

    def loss(self, model, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimise and running stats (``n`` examples, ``correct`` ...)."""

    def evaluate(self, model, *, final: bool = False) -> dict[str, Any]:
        """Held-out metrics; ``final=True`` may add detail (per-class, confusion)."""

    # Optional: ``epoch_metrics(model) -> dict`` adds numbers to each epoch's metrics row
    # (for example head scores, so training dynamics can be plotted).
    # Optional: ``updates_weights = True`` with ``train_step(model, batch, lr) -> (loss, stats)``:
    # the task applies its own update (word2vec's sparse SGD) and the core skips
    # backward() and the optimiser; schedule, checkpoints and metrics are unchanged.
    # Optional: ``final_extends_evaluation = True`` when ``evaluate(final=True)`` is the
    # per-epoch evaluation plus extras on the same data: the core then uses the last
    # epoch's evaluation as the final one (not, e.g., for language models, whose final
    # evaluation covers the whole validation split).


def make_task(task: str, device: torch.device, *, progress: bool = True) -> Task:
    """The :class:`Task` implementation for a task name of the model registry."""
    if task == "image-classification":
        from .classification import ImageClassificationTask

        return ImageClassificationTask(device, progress=progress)
    if task == "language-model":
        from .language import LanguageModelTask

        return LanguageModelTask(device, progress=progress)
    if task == "word-embedding":
        from .embedding import WordEmbeddingTask

        return WordEmbeddingTask(device, progress=progress)
    raise ValueError(f"no training task for {task!r}")
