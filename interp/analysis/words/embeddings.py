"""Exploring word vectors as word2viz does: neighbours, analogies, axes, a bias probe, 2-D plots.

Vectors come from a word2vec run or from a GloVe / word2vec text file; every analysis
takes a :class:`WordVectors` and returns a small data object that renders to a PNG and
saves as JSON (``save_result`` / ``load_result``).

>>> vectors = WordVectors.from_run(interp.load_run("word2vec"))   # or WordVectors.from_file("glove.6B.50d.txt")
>>> nearest_neighbors(vectors, "king", k=5)
>>> analogy(vectors, "man", "king", "woman")          # man is to king as woman is to ? -> queen
>>> project(vectors, ["doctor", "nurse"], x="she,he", y="rich,poor")
>>> bias_probe(vectors)                               # occupations on the she-he axis

The maths. Vectors are first scaled to unit length (as gensim and word2viz do). An axis
named ``a,b`` is the direction ``u_a - u_b``; with several pairs (``she,he;her,his``) it
is their mean difference. A word's coordinate on an axis is the cosine between its
vector and that direction, so +1 means "points exactly from b to a". An analogy
``a : b :: c : ?`` ranks words by cosine with ``u_b - u_a + u_c``, leaving out a, b and c
(3CosAdd, gensim's ``most_similar(positive=[b, c], negative=[a])``). That convention can
manufacture an answer: without it the nearest word is often b itself (Nissim, van Noord
& van der Goot 2020), so :func:`analogy` returns both rankings and says when this happens,
and it flags query words too rare in the training text for their vectors to mean much.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ...errors import InterpError
from ...io import write_json
from ...plots import new_figure, save_figure

AXIS_HELP = "an axis is 'a,b' (the direction from b to a) or several pairs 'she,he;her,his' (their mean)"

CORRELATION_NOTE = (
    "What the axes show is correlation, not causation. A word sits towards 'she' on the "
    "she–he axis because, in the training text, it appears in contexts more like those of "
    "'she' than of 'he'. That records how the text talks (who wrote it, about whom, when), "
    "not who does a job in the world, nor why, nor what the model would do if the world "
    "changed. The axis itself is a choice: other word pairs give other directions, and a "
    "word can move when the pairs change. To make a causal claim you must intervene, for "
    "example retrain on text with gendered words swapped and see whether the word moves; "
    "and the effect of an embedding's bias on a downstream system has to be measured in "
    "that system, not read off this plot."
)

# Occupations for the bias probe (the jobs of word2viz and of Bolukbasi et al., 2016).
OCCUPATIONS: tuple[str, ...] = (
    "doctor", "nurse", "surgeon", "physician", "engineer", "programmer", "scientist", "mathematician",
    "architect", "lawyer", "judge", "professor", "teacher", "librarian", "student", "secretary",
    "receptionist", "clerk", "manager", "banker", "accountant", "homemaker", "housekeeper", "maid",
    "nanny", "hairdresser", "dancer", "singer", "actor", "writer", "poet", "painter", "photographer",
    "pilot", "captain", "soldier", "sailor", "farmer", "carpenter", "mechanic", "plumber", "builder",
    "chef", "cook", "baker", "tailor", "waiter", "servant", "merchant", "shepherd", "priest",
)

GENDER_PAIRS: tuple[tuple[str, str], ...] = (
    ("woman", "man"), ("queen", "king"), ("girl", "boy"), ("princess", "prince"), ("mother", "father"),
    ("daughter", "son"), ("sister", "brother"), ("wife", "husband"), ("aunt", "uncle"), ("niece", "nephew"),
    ("lady", "lord"), ("madam", "sir"), ("actress", "actor"), ("waitress", "waiter"), ("duchess", "duke"),
)


@dataclass(frozen=True)
class Preset:
    """A word2viz view: the words to place and the axes to place them on."""

    x: str
    y: str | None
    words: tuple[str, ...]
    description: str


PRESETS: dict[str, Preset] = {
    "gender": Preset(
        x="she,he;her,his;female,male", y="young,old",
        words=tuple(w for pair in GENDER_PAIRS for w in pair),
        description="gendered word pairs on she-he against young-old"),
    "jobs": Preset(
        x="she,he", y="rich,poor", words=OCCUPATIONS,
        description="occupations on she-he against rich-poor"),
    "royalty": Preset(
        x="female,male;daughter,son;sister,brother;niece,nephew",
        y="royal,common;noble,humble;crowned,peasant",
        words=("king", "queen", "prince", "princess", "man", "woman", "boy", "girl"),
        description="the toy corpus's people on a female-male against a royal-common axis"),
}
"""Preset views for ``interp embed axes --preset NAME``. Preset axes use the pairs the
vocabulary has (an explicit ``--x``/``--y`` must have all its words)."""


# ------------------------------------------------------------------------- vectors


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
    def from_run(cls, run) -> "WordVectors":
        """The word vectors of a word2vec run (``run.config.data.vocab`` gives the words).

        The words' counts in the training text are recounted (as training counted them)
        when first asked for, if the text is still where the run found it.
        """
        from ...zoo.word2vec import embedding_matrix

        if run.config.task != "word-embedding":
            raise InterpError(f"run {run.name} is a {run.config.task} run ({run.config.model}); word vectors "
                              f"come from word2vec runs (interp train word2vec) or --vectors FILE")
        config = run.config
        return cls(list(config.data.vocab), embedding_matrix(run.model), f"run {run.name}", run.name,
                   corpus=corpus_label(config.data.name, config.data.n_train),
                   min_count=int(config.model_config.get("min_count", 1) or 1),
                   count_loader=lambda: training_counts(config), frequency_ordered=True)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, limit: int = 0) -> "WordVectors":
        """Vectors from a GloVe or word2vec text file (the first ``limit`` words when > 0)."""
        from ...data.words import read_vectors

        words, matrix = read_vectors(path, limit=limit)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).name.removesuffix(".gz").removesuffix(".txt"))
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

    def output_dir(self, root: Path | None = None) -> Path:
        """``reports/RUN/embeddings`` (or ``reports/vectors-NAME/embeddings``)."""
        from ...runs import reports_dir

        return (Path(root) if root is not None else reports_dir()) / self.name / "embeddings"


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


def _corpus_file(name: str) -> Path | None:
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


COUNT_CACHE_BYTES = 2_000_000
"""Counts of training texts larger than this are cached: recounting text8 takes seconds."""


def training_counts(config) -> tuple[list[int] | None, str]:
    """``(counts, "")``: each vocabulary word's count in a word2vec run's training text,
    counted as training counted it, or ``(None, why)`` when that text cannot be read again
    or no longer gives the run's vocabulary. Counts of large texts are cached
    (``$INTERP_CACHE_DIR``); nothing is downloaded."""
    import hashlib

    from ...data.paths import cache_dir
    from ...data.words import STOP_WORDS, build_vocabulary, load_word_corpus

    dc, opts = config.data, config.model_config
    min_count, stopwords = int(opts.get("min_count", 1) or 1), bool(opts.get("stopwords", False))
    try:
        path = _corpus_file(dc.name)
    except InterpError as e:
        return None, f"word counts are unknown: {e}"
    cache = None
    if path is not None and path.stat().st_size > COUNT_CACHE_BYTES:
        stat = path.stat()
        key = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, dc.n_train, min_count, stopwords])
        cache = cache_dir() / f"word-counts-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
        try:
            data = json.loads(cache.read_text())
            if data["words"] == list(dc.vocab):
                return [int(c) for c in data["counts"]], ""
        except (OSError, ValueError, KeyError, TypeError):
            pass
    corpus = load_word_corpus(dc.name, progress=False).head(dc.n_train)
    vocab = build_vocabulary(corpus.sentences, min_count=min_count, stopwords=STOP_WORDS if stopwords else ())
    if vocab.words != tuple(dc.vocab):
        return None, (f"word counts are unknown: the training text ({corpus_label(dc.name)}) has changed since "
                      f"the run was trained (it no longer gives the run's vocabulary)")
    counts = vocab.counts.tolist()
    if cache is not None:
        try:
            write_json(cache, {"words": list(vocab.words), "counts": counts})
        except OSError:
            pass
    return counts, ""


def load_vectors(run: str | None = None, vectors: str | None = None, *, limit: int = 0,
                 device: str = "cpu") -> WordVectors:
    """``WordVectors`` from a run name/path or a vectors file (what ``--run`` / ``--vectors`` pick)."""
    if vectors:
        if run:
            raise InterpError("give either --run or --vectors, not both")
        return WordVectors.from_file(vectors, limit=limit)
    from ...runs import load_run

    return WordVectors.from_run(load_run(run if run is not None else latest_embedding_run(), device=device))


def latest_embedding_run() -> Path:
    """The most recent word2vec run under ``models/``."""
    from ...runs import list_run_dirs, models_dir, read_config

    for path in reversed(list_run_dirs()):
        try:
            if read_config(path).task == "word-embedding":
                return path
        except InterpError:
            continue
    raise InterpError(f"no word2vec runs in {models_dir()}/; train one with `interp train word2vec`, "
                      f"or pass --vectors FILE (GloVe or word2vec text format)")


# ------------------------------------------------------------------- neighbours


@dataclass
class Neighbors:
    """The ``k`` words nearest to ``word``, best first."""

    word: str
    metric: str
    words: list[str]
    scores: list[float]
    """Cosine similarity (higher is nearer) or Euclidean distance (lower is nearer)."""
    source: str = ""

    def rows(self) -> list[dict]:
        return [{"rank": i + 1, "word": w, "score": s} for i, (w, s) in enumerate(zip(self.words, self.scores))]


METRICS = ("cosine", "euclidean")


def nearest_neighbors(vectors: WordVectors, word: str, k: int = 10, *, metric: str = "cosine") -> Neighbors:
    """Nearest words by cosine (default) or Euclidean distance (useful for a 2-D embedding).

    >>> nearest_neighbors(vectors, "king", k=3).words
    ['queen', 'prince', 'monarch']
    """
    if metric not in METRICS:
        raise InterpError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    i = vectors.id(word)
    if metric == "cosine":
        scores = vectors.unit @ vectors.unit[i]
        scores[i] = -float("inf")
        top = scores.topk(min(k, len(vectors) - 1))
        values = top.values
    else:
        dist = (vectors.matrix - vectors.matrix[i]).norm(dim=1)
        dist[i] = float("inf")
        top = dist.topk(min(k, len(vectors) - 1), largest=False)
        values = top.values
    return Neighbors(vectors.words[i], metric, [vectors.words[j] for j in top.indices.tolist()],
                     [round(v, 6) for v in values.tolist()], vectors.source)


RARE_COUNT = 20
"""A word seen fewer times than this in the training text gets a rare-word warning: a
vector fitted to a handful of contexts is mostly noise."""
SMALL_VOCABULARY = 1000
"""A vocabulary smaller than this gets a warning: the "nearest word" is the best of few."""

EXCLUSION_SOURCE = ('Nissim, van Noord & van der Goot 2020, "Fair is Better than Sensational: Man is to '
                    'Doctor as Woman is to Doctor", Computational Linguistics 46(2)')


@dataclass
class Analogy:
    """``a : b :: c : ?`` answered by the words nearest to ``b - a + c``, in two rankings.

    ``words``/``scores`` follow the usual convention (a, b and c can not be answers);
    ``words_including_queries``/``scores_including_queries`` leave nothing out. When the
    unrestricted top word is a query word (often b itself), the convention made the
    answer: ``answer_from_exclusion`` is set and ``exclusion_note`` says so (Nissim et
    al. 2020). Ranks are 1-based over the whole vocabulary; scores are cosines.
    """

    a: str
    b: str
    c: str
    words: list[str]
    """The answers with a, b and c left out (the convention), best first."""
    scores: list[float]
    source: str = ""
    words_including_queries: list[str] = field(default_factory=list)
    """The nearest words with nothing left out, best first."""
    scores_including_queries: list[float] = field(default_factory=list)
    query_ranks: dict[str, int] = field(default_factory=dict)
    """Where each query word lands in the unrestricted ranking."""
    rank_of_b_unrestricted: int | None = None
    answer_rank_including_queries: int | None = None
    """Where the (restricted) answer lands when nothing is left out."""
    answer_from_exclusion: bool = False
    """The unrestricted top word is a query word: the answer exists only because of the exclusion."""
    exclusion_note: str = ""
    expected: str | None = None
    """The ``expect`` word, with its ranks and cosine below."""
    expected_rank: int | None = None
    """Its rank with a, b and c left out (``None`` when it is one of them: excluded)."""
    expected_rank_including_queries: int | None = None
    expected_score: float | None = None
    counts: dict[str, int] | None = None
    """Training-text counts of the query (and expected) words; ``None`` when unknown."""
    counts_note: str = ""
    """Why the counts are unknown."""
    corpus: str = ""
    vocab_size: int = 0
    warnings: list[str] = field(default_factory=list)
    """Rare words, a small vocabulary: reasons to distrust the answer."""

    @property
    def answer(self) -> str:
        return self.words[0]

    @property
    def queries(self) -> dict[str, str]:
        return {"A": self.a, "B": self.b, "C": self.c}

    def query_role(self, word: str) -> str:
        """``"B"`` (or ``"A, C"``) when ``word`` is a query word, else ``""``."""
        return ", ".join(role for role, w in self.queries.items() if w == word)

    def rows(self) -> list[dict]:
        """The conventional ranking (query words left out)."""
        return [{"rank": i + 1, "word": w, "score": s} for i, (w, s) in enumerate(zip(self.words, self.scores))]

    def rows_including_queries(self) -> list[dict]:
        """The ranking with nothing left out; ``query`` names the role of a query word."""
        return [{"rank": i + 1, "word": w, "score": s, "query": self.query_role(w)}
                for i, (w, s) in enumerate(zip(self.words_including_queries, self.scores_including_queries))]

    @property
    def answers(self) -> list[dict]:
        return self.rows()

    @property
    def answers_including_queries(self) -> list[dict]:
        return self.rows_including_queries()

    def to_dict(self) -> dict:
        """Everything, with both rankings as ``answers`` and ``answers_including_queries``
        (rank, word, cosine), for ``--json``."""
        return {"kind": "analogy", **asdict(self), "answer": self.answer if self.words else None,
                "answers": self.answers, "answers_including_queries": self.answers_including_queries}


def analogy(vectors: WordVectors, a: str, b: str, c: str, k: int = 5, *, expect: str | None = None,
            rare: int = RARE_COUNT) -> Analogy:
    """``a`` is to ``b`` as ``c`` is to ? (3CosAdd on unit vectors), in two rankings.

    ``words`` leaves a, b and c out (the convention, gensim's ``most_similar``);
    ``words_including_queries`` does not. ``expect`` reports that word's rank and cosine in
    both. Query words seen fewer than ``rare`` times in the training text, and a small
    vocabulary, add to ``warnings``.

    >>> analogy(vectors, "man", "king", "woman").answer
    'queen'
    >>> analogy(vectors, "man", "doctor", "woman").words_including_queries[0]   # often b itself
    'doctor'
    """
    ids = [_analogy_id(vectors, w, role) for w, role in ((a, "A"), (b, "B"), (c, "C"))]
    expected_id = _analogy_id(vectors, expect, "expected word (--expect)") if expect is not None else None
    u = vectors.unit
    target = F.normalize(u[ids[1]] - u[ids[0]] + u[ids[2]], dim=0)
    scores = u @ target
    order = torch.sort(scores, descending=True, stable=True).indices  # ties: vocabulary order
    rank = torch.empty_like(order)
    rank[order] = torch.arange(1, len(order) + 1)
    is_query = torch.zeros(len(vectors), dtype=torch.bool)
    is_query[ids] = True
    restricted = order[~is_query[order]]
    top, top_all = restricted[:k].tolist(), order[:k].tolist()
    words = vectors.words
    a, b, c = (words[i] for i in ids)
    result = Analogy(
        a, b, c, [words[j] for j in top], [round(scores[j].item(), 6) for j in top], vectors.source,
        [words[j] for j in top_all], [round(scores[j].item(), 6) for j in top_all],
        {words[i]: int(rank[i]) for i in ids}, int(rank[ids[1]]),
        int(rank[restricted[0]]) if len(restricted) else None,
        corpus=vectors.corpus, vocab_size=len(vectors))
    if len(order) and bool(is_query[order[0]]):
        result.answer_from_exclusion = True
        result.exclusion_note = _exclusion_note(result, words[int(order[0])])
    if expected_id is not None:
        result.expected = words[expected_id]
        result.expected_score = round(scores[expected_id].item(), 6)
        result.expected_rank_including_queries = int(rank[expected_id])
        if not is_query[expected_id]:
            # query words ranked above it drop out of the conventional ranking
            result.expected_rank = int(rank[expected_id]) - int((rank[sorted(set(ids))] < rank[expected_id]).sum())
    checked = list(dict.fromkeys([a, b, c] + ([result.expected] if result.expected else [])))
    counts = vectors.word_counts()
    if counts is None:
        result.counts_note = vectors.counts_note or "word counts are unknown"
        if vectors.frequency_ordered:
            places = ", ".join(f"{w!r} #{vectors.index[w] + 1:,}" for w in checked)
            result.counts_note += (f"; by frequency rank (the list's order, most frequent first): "
                                   f"{places} of {len(vectors):,}")
    else:
        result.counts = {w: counts[vectors.index[w]] for w in checked}
        where = f" ({vectors.corpus})" if vectors.corpus else ""
        rare_words = [w for w in checked if result.counts[w] < rare]
        if rare_words:
            said = ", ".join(f"{w!r} occurs {_times(result.counts[w])}" for w in rare_words)
            its = "its vector" if len(rare_words) == 1 else "their vectors"
            result.warnings.append(f"{said} in the training text{where}: too rare for {its} to mean much "
                                   f"(fewer than {rare} occurrences)")
    if len(vectors) < SMALL_VOCABULARY:
        result.warnings.append(
            f"the vocabulary has only {len(vectors):,} words: the nearest word is the best of few candidates, "
            f"which says little about a relation between words")
    return result


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n:,} times"


def _analogy_id(vectors: WordVectors, word: str, role: str) -> int:
    """Row of a query word; missing, a clear error (with the run's min_count when there is one)."""
    try:
        return vectors.id(word, role=role if role.startswith("expected") else f"query word {role}")
    except InterpError as e:
        if vectors.min_count > 1:
            where = f" of {vectors.corpus}" if vectors.corpus else ""
            raise InterpError(f"{e} (the run keeps only words seen at least {vectors.min_count} times in the "
                              f"training text{where})") from None
        raise


def _exclusion_note(result: Analogy, top: str) -> str:
    role = result.query_role(top)
    who = f"{role} itself" if "," not in role else f"{role} themselves"
    answer = (f" and {result.answer!r} ranks #{result.answer_rank_including_queries}"
              if result.words and result.answer_rank_including_queries else "")
    return (f"without excluding the query words the nearest word is {top!r} ({who}){answer}: the analogy's "
            f"answer comes from the exclusion convention, Nissim et al. 2020")


# --------------------------------------------------------------------------- axes


@dataclass
class Axis:
    """A direction in the embedding: the mean of ``u_a - u_b`` over its word pairs."""

    name: str
    pairs: list[tuple[str, str]]
    direction: torch.Tensor = field(repr=False)


def parse_axis(spec: str) -> list[tuple[str, str]]:
    """``"she,he;her,his"`` -> ``[("she", "he"), ("her", "his")]``.

    >>> parse_axis("rich,poor")
    [('rich', 'poor')]
    """
    pairs = []
    for part in spec.split(";"):
        if not part.strip():
            continue
        words = [w.strip() for w in part.split(",")]
        if len(words) != 2 or not all(words):
            raise InterpError(f"axis {spec!r}: {part.strip()!r} is not a word pair; {AXIS_HELP}")
        pairs.append((words[0], words[1]))
    if not pairs:
        raise InterpError(f"axis {spec!r} is empty; {AXIS_HELP}")
    return pairs


def make_axis(vectors: WordVectors, spec: str, *, lenient: bool = False) -> Axis:
    """The axis for ``spec``; every word must be in the vocabulary unless ``lenient``
    (presets), which keeps the pairs that are and fails only when none is."""
    pairs = parse_axis(spec)
    usable = [p for p in pairs if p[0] in vectors and p[1] in vectors]
    if not lenient or not usable:
        for pair in pairs:
            for word in pair:
                if word not in vectors:
                    error = vectors.missing(word, role=f"axis word (in the pair {pair[0]},{pair[1]})")
                    if lenient:
                        error = InterpError(f"axis {spec!r}: none of its pairs is in the vocabulary of "
                                            f"{vectors.source}; {error}")
                    raise error
        usable = pairs
    u = vectors.unit
    diffs = torch.stack([u[vectors.index[a]] - u[vectors.index[b]] for a, b in usable])
    direction = diffs.mean(0)
    if direction.norm() < 1e-12:
        raise InterpError(f"axis {spec!r} has no direction: its words have the same vectors")
    name = ";".join(f"{a}-{b}" for a, b in usable) if len(usable) > 1 else f"{usable[0][0]}-{usable[0][1]}"
    return Axis(name, usable, direction)


@dataclass
class Projection:
    """Words placed on one or two axes: ``x[i]`` (and ``y[i]``) is the cosine of ``words[i]`` with the axis."""

    words: list[str]
    x: list[float]
    y: list[float] | None
    x_axis: str
    y_axis: str | None
    x_pairs: list[list[str]]
    y_pairs: list[list[str]] | None
    skipped: list[str]
    """Requested words not in the vocabulary (left out)."""
    source: str = ""
    title: str = ""

    def rows(self) -> list[dict]:
        ys = self.y if self.y is not None else [None] * len(self.words)
        return [{"word": w, "x": x, "y": y} for w, x, y in zip(self.words, self.x, ys)]


def axis_coordinates(vectors: WordVectors, words: Sequence[str], axis: Axis) -> list[float]:
    """Cosine of each word's vector with the axis direction."""
    ids = torch.tensor([vectors.index[w] for w in words], dtype=torch.long)
    return [round(v, 6) for v in (vectors.unit[ids] @ F.normalize(axis.direction, dim=0)).tolist()]


def project(vectors: WordVectors, words: Sequence[str], x: str, y: str | None = None, *,
            lenient: bool = False, title: str = "") -> Projection:
    """word2viz: each word's cosine with the x axis (and the y axis).

    Words missing from the vocabulary are skipped (listed in ``skipped``) when others
    remain, unless none does.

    >>> p = project(vectors, ["doctor", "nurse"], x="she,he", y="rich,poor")
    """
    x_axis = make_axis(vectors, x, lenient=lenient)
    y_axis = make_axis(vectors, y, lenient=lenient) if y else None
    words = list(dict.fromkeys(w.strip() for w in words if w.strip()))
    if not words:
        raise InterpError("no words to place; pass --words doctor,nurse,... or a --preset")
    kept = [w for w in words if w in vectors]
    skipped = [w for w in words if w not in vectors]
    if not kept:
        raise vectors.missing(skipped[0]) if len(skipped) == 1 else InterpError(
            f"none of the words {', '.join(skipped[:10])} is in the vocabulary of {vectors.source}")
    return Projection(
        kept, axis_coordinates(vectors, kept, x_axis),
        axis_coordinates(vectors, kept, y_axis) if y_axis else None,
        x_axis.name, y_axis.name if y_axis else None,
        [list(p) for p in x_axis.pairs], [list(p) for p in y_axis.pairs] if y_axis else None,
        skipped, vectors.source, title)


def preset_projection(vectors: WordVectors, name: str) -> Projection:
    """A :data:`PRESETS` view; its axes keep the pairs the vocabulary has."""
    if name not in PRESETS:
        from ...errors import unknown

        raise unknown("preset", name, PRESETS)
    p = PRESETS[name]
    return project(vectors, p.words, p.x, p.y, lenient=True, title=f"{name}: {p.description}")


@dataclass
class BiasProbe:
    """Words sorted by their coordinate on one axis (by default occupations on she-he)."""

    axis: str
    pairs: list[list[str]]
    words: list[str]
    scores: list[float]
    skipped: list[str]
    source: str = ""

    def rows(self) -> list[dict]:
        return [{"word": w, "score": s} for w, s in zip(self.words, self.scores)]


def bias_probe(vectors: WordVectors, words: Sequence[str] = OCCUPATIONS, axis: str = "she,he") -> BiasProbe:
    """Occupation words ranked by their cosine with the ``axis`` direction (most ``she`` first)."""
    proj = project(vectors, words, axis)
    order = sorted(range(len(proj.words)), key=lambda i: -proj.x[i])
    return BiasProbe(proj.x_axis, proj.x_pairs, [proj.words[i] for i in order], [proj.x[i] for i in order],
                     proj.skipped, vectors.source)


# ---------------------------------------------------------------- 2-D embedding


@dataclass
class Embedding2D:
    """Words at 2-D coordinates: the vectors themselves when ``d = 2``, else their top two principal components."""

    words: list[str]
    x: list[float]
    y: list[float]
    method: str
    """``raw`` (d = 2) or ``pca``."""
    explained: list[float] | None = None
    """Share of variance on each principal component (PCA only)."""
    source: str = ""

    def rows(self) -> list[dict]:
        return [{"word": w, "x": x, "y": y} for w, x, y in zip(self.words, self.x, self.y)]


def default_plot_words(vectors: WordVectors, top: int = 60) -> list[str]:
    """The ``top`` most frequent words that are not stop words (files and runs list words by frequency)."""
    from ...data.words import STOP_WORDS

    return [w for w in vectors.words if w not in STOP_WORDS and any(ch.isalpha() for ch in w)][:top]


def embedding_2d(vectors: WordVectors, words: Sequence[str] | None = None, *, top: int = 60) -> Embedding2D:
    """Coordinates for a labelled scatter plot of ``words`` (default: the most frequent words)."""
    words = list(words) if words else default_plot_words(vectors, top)
    ids = torch.tensor([vectors.id(w) for w in words], dtype=torch.long)
    m = vectors.matrix[ids]
    if vectors.dim == 2:
        return Embedding2D(words, m[:, 0].tolist(), m[:, 1].tolist(), "raw", None, vectors.source)
    if len(words) < 2:
        raise InterpError("a PCA plot needs at least 2 words")
    centred = m - m.mean(0)
    _, s, vt = torch.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    # Fix the sign of each component so the picture is the same on every machine.
    signs = torch.sign(coords[coords.abs().argmax(0), torch.arange(coords.shape[1])])
    coords = coords * signs
    var = s.pow(2)
    explained = (var[:2] / var.sum().clamp_min(1e-12)).tolist()
    return Embedding2D(words, coords[:, 0].tolist(), coords[:, 1].tolist(), "pca", explained, vectors.source)


# ---------------------------------------------------------------------- figures


def _merge_labels(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Points closer than 1.5% of the plot's extent share one label ("king / prince")."""
    if not points:
        return points
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    tol = 0.015 * max(max(xs) - min(xs), max(ys) - min(ys), 1e-12)
    groups: list[list[tuple[str, float, float]]] = []
    for point in points:
        for group in groups:
            if abs(group[0][1] - point[1]) <= tol and abs(group[0][2] - point[2]) <= tol:
                group.append(point)
                break
        else:
            groups.append([point])
    return [(" / ".join(p[0] for p in g), g[0][1], g[0][2]) for g in groups]


def _scatter(points: list[tuple[str, float, float]], path: Path, *, xlabel: str, ylabel: str, title: str,
             highlight: set[str] = frozenset(), zero_lines: bool = False) -> Path:
    fig, ax = new_figure(7.0, 6.0)
    ax.scatter([p[1] for p in points], [p[2] for p in points], s=14, color="#2c3e50")
    for label, x, y in _merge_labels(points):
        marked = any(w in highlight for w in label.split(" / "))
        color = "#c0392b" if marked else "#2c3e50"
        if marked:
            ax.scatter([x], [y], s=18, color=color)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=8, color=color)
    if zero_lines:
        ax.axhline(0, color="#bbbbbb", lw=0.8, zorder=0)
        ax.axvline(0, color="#bbbbbb", lw=0.8, zorder=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.margins(0.12)
    return save_figure(fig, Path(path))


def plot_embedding_2d(emb: Embedding2D, path: str | os.PathLike, *, highlight: Sequence[str] = ()) -> Path:
    """Labelled scatter of a 2-D embedding, as a PNG (atomic)."""
    if emb.method == "raw":
        xl, yl = "dimension 1", "dimension 2"
        title = f"word vectors ({emb.source})"
    else:
        xl, yl = (f"PC{i + 1} ({100 * e:.0f}% of variance)" for i, e in enumerate(emb.explained or [0, 0]))
        title = f"word vectors, first two principal components ({emb.source})"
    return _scatter(list(zip(emb.words, emb.x, emb.y)), Path(path), xlabel=xl, ylabel=yl, title=title,
                    highlight=set(highlight), zero_lines=True)


def plot_projection(proj: Projection, path: str | os.PathLike) -> Path:
    """word2viz-style labelled scatter on the two axes (ranks on y when there is one axis)."""
    if proj.y is not None:
        points = list(zip(proj.words, proj.x, proj.y))
        ylabel = f"cos(word, {proj.y_axis})"
    else:
        order = sorted(range(len(proj.words)), key=lambda i: proj.x[i])
        points = [(proj.words[i], proj.x[i], float(r)) for r, i in enumerate(order)]
        ylabel = "rank"
    return _scatter(points, Path(path), xlabel=f"cos(word, {proj.x_axis})", ylabel=ylabel,
                    title=proj.title or f"{proj.source}", zero_lines=True)


def plot_bias(probe: BiasProbe, path: str | os.PathLike) -> Path:
    """Horizontal bars: each word's coordinate on the axis, most positive at the top."""
    n = len(probe.words)
    fig, ax = new_figure(6.5, max(2.5, 0.22 * n + 1))
    ys = list(range(n))[::-1]
    colors = ["#c0392b" if s > 0 else "#2471a3" for s in probe.scores]
    ax.barh(ys, probe.scores, color=colors)
    ax.set_yticks(ys)
    ax.set_yticklabels(probe.words, fontsize=8)
    ax.axvline(0, color="#555555", lw=0.8)
    a, b = probe.pairs[0] if probe.pairs else ("+", "-")
    ax.set_xlabel(f"cos(word, {probe.axis})   ← {b}   |   {a} →")
    ax.set_title(f"bias probe ({probe.source})", fontsize=10)
    return save_figure(fig, Path(path))


# ------------------------------------------------------------------ save / load

RESULT_TYPES = {"neighbors": Neighbors, "analogy": Analogy, "projection": Projection, "bias": BiasProbe,
                "embedding2d": Embedding2D}


def result_kind(result: Any) -> str:
    for kind, cls in RESULT_TYPES.items():
        if isinstance(result, cls):
            return kind
    raise TypeError(f"not an embedding result: {type(result).__name__}")


def slug(text: str) -> str:
    """A file-name-safe version of an axis or word list."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80] or "x"


def default_stem(result: Any) -> str:
    kind = result_kind(result)
    if kind == "neighbors":
        return f"neighbors-{slug(result.word)}"
    if kind == "analogy":
        return f"analogy-{slug(result.a)}-{slug(result.b)}-{slug(result.c)}"
    if kind == "projection":
        return f"axes-{slug(result.x_axis)}" + (f"--{slug(result.y_axis)}" if result.y_axis else "")
    if kind == "bias":
        return f"bias-{slug(result.axis)}"
    return "plot-2d"


def save_result(result: Any, folder: str | os.PathLike, stem: str | None = None, *,
                highlight: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``STEM.json`` (and ``STEM.png`` for plots) under ``folder``; returns the paths.

    >>> save_result(analogy(vectors, "man", "king", "woman"), "reports/toy/embeddings")
    """
    folder = Path(folder)
    stem = stem or default_stem(result)
    kind = result_kind(result)
    paths = {"json": folder / f"{stem}.json"}
    write_json(paths["json"], {"kind": kind, **asdict(result)})
    if kind == "projection":
        paths["png"] = plot_projection(result, folder / f"{stem}.png")
    elif kind == "bias":
        paths["png"] = plot_bias(result, folder / f"{stem}.png")
    elif kind == "embedding2d":
        paths["png"] = plot_embedding_2d(result, folder / f"{stem}.png", highlight=highlight)
    return paths


def load_result(path: str | os.PathLike) -> Any:
    """Read back what :func:`save_result` wrote (the JSON file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        cls = RESULT_TYPES[data.pop("kind")]
        return cls(**data)
    except FileNotFoundError:
        raise InterpError(f"{path} not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InterpError(f"{path} is not a saved embedding result ({e})") from None


# ------------------------------------------------------------ the report's set

TOY_ANALOGIES = (("man", "king", "woman"), ("boy", "prince", "girl"), ("king", "queen", "prince"))
DEFAULT_ANALOGIES = (("man", "king", "woman"), ("man", "woman", "boy"), ("he", "she", "his"),
                     ("king", "queen", "lord"), ("france", "paris", "italy"), ("good", "better", "bad"))
DEFAULT_NEIGHBOR_WORDS = ("king", "queen", "man", "woman", "love", "good", "doctor", "nurse")


@dataclass
class EmbeddingReport:
    """The report page's material: a 2-D plot, an axes view, a bias probe, tables and a note."""

    source: str
    plot: str
    """File names relative to the folder of ``summary.json``."""
    projection: str | None
    bias: str | None
    neighbors: list[str]
    analogies: list[str]
    note: str = CORRELATION_NOTE
    skipped: list[str] = field(default_factory=list)
    """What could not be computed with this vocabulary, and why."""


def run_embedding_analyses(vectors: WordVectors, folder: str | os.PathLike | None = None, *,
                           neighbor_words: Sequence[str] | None = None,
                           analogies: Sequence[tuple[str, str, str]] | None = None,
                           k: int = 8) -> EmbeddingReport:
    """Compute and save the standard set (files under ``folder``, default ``reports/NAME/embeddings``).

    Writes ``summary.json`` listing the files; :func:`load_embedding_report` reads it back.
    """
    folder = Path(folder) if folder is not None else vectors.output_dir()
    skipped: list[str] = []
    toy = len(vectors) < 200 and all(w in vectors for w in ("royal", "peasant", *PRESETS["royalty"].words))
    highlight = [w for w in PRESETS["royalty"].words if w in vectors]
    small_2d = vectors.dim == 2 and len(vectors) <= 120  # plot every word of a toy run
    emb = embedding_2d(vectors, list(vectors.words) if small_2d else None)
    plot = save_result(emb, folder, "plot-2d", highlight=highlight)["png"].name

    projection = None
    for name in (("royalty", "gender", "jobs") if toy else ("jobs", "gender", "royalty")):
        try:
            proj = preset_projection(vectors, name)
        except InterpError as e:
            skipped.append(f"preset {name}: {e}")
            continue
        if len(proj.words) >= 2:
            projection = save_result(proj, folder, f"axes-{name}")["json"].name
            break
        skipped.append(f"preset {name}: only {len(proj.words)} of its words are in the vocabulary")

    bias = None
    try:
        probe = bias_probe(vectors)
        if len(probe.words) >= 2:
            bias = save_result(probe, folder)["json"].name
        else:
            skipped.append(f"bias probe: only {len(probe.words)} occupation words in the vocabulary")
    except InterpError as e:
        skipped.append(f"bias probe: {e}")

    neighbor_files = []
    for word in neighbor_words or [w for w in (PRESETS["royalty"].words[:4] if toy else DEFAULT_NEIGHBOR_WORDS)
                                   if w in vectors] or default_plot_words(vectors, 4):
        metric = "euclidean" if vectors.dim == 2 else "cosine"
        neighbor_files.append(save_result(nearest_neighbors(vectors, word, k, metric=metric), folder)["json"].name)

    analogy_files = []
    for a, b, c in analogies or (TOY_ANALOGIES if toy else DEFAULT_ANALOGIES):
        if all(w in vectors for w in (a, b, c)):
            analogy_files.append(save_result(analogy(vectors, a, b, c, k=5), folder)["json"].name)
        else:
            skipped.append(f"analogy {a}:{b}::{c}:? (a word is not in the vocabulary)")

    report = EmbeddingReport(vectors.source, plot, projection, bias, neighbor_files, analogy_files,
                             skipped=skipped)
    write_json(folder / "summary.json", asdict(report))
    return report


def load_embedding_report(folder: str | os.PathLike) -> EmbeddingReport:
    """Read ``summary.json`` written by :func:`run_embedding_analyses`."""
    path = Path(folder) / "summary.json"
    if not path.exists():
        raise InterpError(f"{path} not found; compute it with interp embed report --run RUN")
    return EmbeddingReport(**json.loads(path.read_text()))


# ------------------------------------------------------------------------- demo


def demo_stage(ctx) -> None:
    """``interp demo``: the word2vec exercise on the toy corpus, then its plot, axes and tables."""
    from ...training.loop import train

    steps = "60" if ctx.quick else "300"
    run = train("word2vec", "toy-royalty", name="demo-word2vec", overwrite=True, device="cpu",
                progress=ctx.progress, epochs=4 if ctx.quick else 10, overrides={"steps_per_epoch": steps},
                log=None)
    vectors = WordVectors.from_run(run)
    report = run_embedding_analyses(vectors)
    near = nearest_neighbors(vectors, "king", 3, metric="euclidean")
    print(f"word2vec (d=2) on the toy corpus: pair loss {run.summary['pair_loss']:.3f}; "
          f"nearest to 'king': {', '.join(near.words)}")
    ctx.outputs["word2vec run"] = run.path
    ctx.outputs["word embedding plot"] = vectors.output_dir() / report.plot
