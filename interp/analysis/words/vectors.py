"""Word vectors: the words, their vectors and their training-text counts.

Vectors come from a word2vec run (:meth:`WordVectors.from_run`) or from a GloVe /
word2vec text file (:meth:`WordVectors.from_file`); the analyses of
:mod:`interp.analysis.words.geometry` take a :class:`WordVectors`. Loading a run by name
(``--run``) is :func:`interp.pipelines.words.load_vectors`.

>>> vectors = WordVectors.from_run(interp.load_run("word2vec"))   # or WordVectors.from_file("glove.6B.50d.txt")
>>> vectors.count("king"), vectors.dim
(5, 2)
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ...errors import InterpError

@dataclass
class WordVectors:
    """Words and their vectors (``matrix`` row ``i`` is ``words[i]``), with where they came from."""

    words: list[str]
    matrix: torch.Tensor
    """``(V, d)`` float32 on the CPU."""
    source: str
    """Human-readable origin: ``run toy`` or a file path."""
    name: str
    """Folder name for outputs: the run name, or ``vectors-STEM`` for a file."""
    corpus: str = ""
    """The training text, for messages (``Tiny Shakespeare``, a file path); empty when not known."""
    counts: list[int] | None = field(default=None, repr=False)
    """Each word's count in the training text (row ``i`` is ``words[i]``), or ``None`` when
    unknown; a run's counts are computed on first use, see :meth:`word_counts`."""
    counts_note: str = ""
    """Why ``counts`` is ``None`` (a vectors file records no counts, the text is gone, ...)."""
    min_count: int = 0
    """A run's ``min_count``: rarer words are not in its vocabulary (0: not a run)."""
    count_loader: Callable[[], tuple[list[int] | None, str]] | None = field(default=None, repr=False,
                                                                         compare=False)
    """Computes ``(counts, counts_note)`` the first time :meth:`word_counts` is asked (runs)."""
    frequency_ordered: bool = False
    """``words`` run from most to least frequent (runs; vectors files as GloVe and word2vec release them)."""
    index: dict[str, int] = field(init=False, repr=False)
    _unit: torch.Tensor | None = field(init=False, repr=False, default=None)

    def __post_init__(self):
        self.matrix = self.matrix.detach().float().cpu()
        if self.matrix.ndim != 2 or len(self.words) != len(self.matrix):
            raise ValueError(f"{len(self.words)} words for a matrix of shape {tuple(self.matrix.shape)}")
        self.index = {w: i for i, w in enumerate(self.words)}
        if self.counts is not None:
            self.counts = [int(c) for c in self.counts]
            if len(self.counts) != len(self.words):
                raise ValueError(f"{len(self.counts)} counts for {len(self.words)} words")
        elif not self.counts_note and self.count_loader is None:
            self.counts_note = f"word counts are unknown: the vectors ({self.source or 'no source'}) came without them"

    @classmethod
    def from_run(cls, run, *, count_loader: Callable[[], tuple[list[int] | None, str]] | None = None
                 ) -> "WordVectors":
        """The word vectors of a word2vec run (``run.config.data.vocab`` gives the words).

        The words' counts in the training text are recounted (as training counted them)
        when first asked for, if the text is still where the run found it; ``count_loader``
        replaces the recount (:func:`interp.pipelines.words.run_vectors` caches it).
        """
        from ...zoo.word2vec import embedding_matrix

        if run.config.task != "word-embedding":
            raise InterpError(f"run {run.name} is a {run.config.task} run ({run.config.model}); word vectors "
                              f"come from word2vec runs (interp train word2vec) or --vectors FILE")
        config = run.config
        return cls(list(config.data.vocab), embedding_matrix(run.model), f"run {run.name}", run.name,
                   corpus=corpus_label(config.data.name, config.data.n_train),
                   min_count=int(config.model_config.get("min_count", 1) or 1),
                   count_loader=count_loader or (lambda: training_counts(config)), frequency_ordered=True)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, limit: int = 0) -> "WordVectors":
        """Vectors from a GloVe or word2vec text file (the first ``limit`` words when > 0)."""
        from ...data.words import read_vectors

        words, matrix = read_vectors(path, limit=limit)
        name = Path(path).name.removesuffix(".gz").removesuffix(".txt").removesuffix(".bin")
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
        return cls(words, matrix, str(path), f"vectors-{stem}", frequency_ordered=True,
                   counts_note=f"word counts are unknown: a vectors file ({Path(path).name}) records none")

    def word_counts(self) -> list[int] | None:
        """Training-text counts aligned with ``words`` (``None`` when unknown: see ``counts_note``)."""
        if self.counts is None and self.count_loader is not None:
            loader, self.count_loader = self.count_loader, None
            try:
                counts, note = loader()
            except InterpError as e:
                counts, note = None, f"word counts are unknown: {e}"
            if counts is not None and len(counts) != len(self.words):
                counts, note = None, "word counts are unknown: the training text no longer gives this vocabulary"
            self.counts, self.counts_note = counts, note
        return self.counts

    def count(self, word: str) -> int | None:
        """How often ``word`` occurs in the training text (``None`` when unknown)."""
        counts = self.word_counts()
        return None if counts is None else counts[self.id(word)]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    @property
    def unit(self) -> torch.Tensor:
        """Rows scaled to unit length (zero rows stay zero)."""
        if self._unit is None:
            self._unit = F.normalize(self.matrix, dim=1)
        return self._unit

    def fingerprint(self) -> str:
        """A short hash of the words and their vectors: saved results of other vectors
        (a run trained again under the same name) are not mistaken for these.

        >>> WordVectors(["a"], torch.ones(1, 2), "t", "t").fingerprint()
        '6b7bde252a44df36'
        """
        import hashlib

        digest = hashlib.sha1("\n".join(self.words).encode())
        digest.update(self.matrix.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def id(self, word: str, *, role: str = "word") -> int:
        """Row of ``word``; an :class:`InterpError` naming close words when it is missing."""
        if word in self.index:
            return self.index[word]
        if word.lower() in self.index:
            return self.index[word.lower()]
        raise self.missing(word, role=role)

    def missing(self, word: str, *, role: str = "word") -> InterpError:
        near = close_words(word, self.words)
        message = f"{role} {word!r} is not in the vocabulary of {self.source} ({len(self):,} words)"
        if near:
            message += "; did you mean " + ", ".join(repr(w) for w in near) + "?"
        else:
            message += f"; for example: {', '.join(self.words[:8])}"
        return InterpError(message)


def close_words(word: str, vocabulary: Sequence[str], n: int = 3) -> list[str]:
    """Vocabulary words spelled like ``word`` (fast on 400k-word vocabularies)."""
    word = word.lower()
    if len(vocabulary) > 20_000:  # difflib over every word would take seconds
        vocabulary = [w for w in vocabulary if w[:1] == word[:1] and abs(len(w) - len(word)) <= 2]
    return difflib.get_close_matches(word, list(vocabulary), n=n, cutoff=0.6)


_CORPUS_LABELS = {"toy-royalty": "the embedded toy corpus", "toy": "the embedded toy corpus",
                  "tinyshakespeare": "Tiny Shakespeare", "text8": "text8"}


def corpus_label(name: str, n_train: int = 0) -> str:
    """A run's training text in words: ``Tiny Shakespeare``, ``the first 5,000 words of text8``."""
    label = _CORPUS_LABELS.get(name) or (name[5:] if name.startswith("text:") else name)
    return f"the first {n_train:,} words of {label}" if n_train > 0 else label


def corpus_file(name: str) -> Path | None:
    """The file a word2vec run read (``None`` for the embedded toy corpus); never downloads."""
    from ...data.paths import data_dir
    from ...data.words import TOY_DATASET

    if name in (TOY_DATASET, "toy"):
        return None
    if name == "tinyshakespeare":
        path = data_dir() / "tinyshakespeare" / "input.txt"
    elif name == "text8":
        path = data_dir() / "text8" / "text8"
    else:
        path = Path(name[5:] if name.startswith("text:") else name).expanduser()
    if not path.is_file():
        raise InterpError(f"the training text ({path}) is not there any more")
    return path


def training_counts(config) -> tuple[list[int] | None, str]:
    """``(counts, "")``: each vocabulary word's count in a word2vec run's training text,
    counted as training counted it, or ``(None, why)`` when that text cannot be read again
    or no longer gives the run's vocabulary. Reads the text, writes nothing, downloads nothing.

    >>> counts, why = training_counts(interp.load_run("word2vec").config)
    """
    from ...data.words import STOP_WORDS, build_vocabulary, load_word_corpus

    dc, opts = config.data, config.model_config
    min_count, stopwords = int(opts.get("min_count", 1) or 1), bool(opts.get("stopwords", False))
    try:
        corpus_file(dc.name)  # gone since training: say so rather than fail inside the reader
    except InterpError as e:
        return None, f"word counts are unknown: {e}"
    corpus = load_word_corpus(dc.name, progress=False).head(dc.n_train)
    vocab = build_vocabulary(corpus.sentences, min_count=min_count, stopwords=STOP_WORDS if stopwords else ())
    if vocab.words != tuple(dc.vocab):
        return None, (f"word counts are unknown: the training text ({corpus_label(dc.name)}) has changed since "
                      f"the run was trained (it no longer gives the run's vocabulary)")
    return vocab.counts.tolist(), ""

