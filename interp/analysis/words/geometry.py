"""Exploring word vectors as word2viz does: neighbours, analogies, axes, a bias probe, 2-D coordinates.

Every analysis takes a :class:`~interp.analysis.words.vectors.WordVectors` and returns a
small data object; :mod:`interp.results.words` saves it as JSON and draws its figure.

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

from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from ...errors import InterpError
from .vectors import WordVectors

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
        (rank, word, cosine): what ``interp.results.describe`` gives for ``--json``."""
        return {**asdict(self), "answer": self.answer if self.words else None,
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

