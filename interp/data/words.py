"""Word corpora for word2vec: tokens, vocabulary, subsampling, skip-gram pairs, vector files.

Sources (``load_word_corpus(name)``):

- ``toy-royalty``: a few dozen short sentences about kings, queens, princes, princesses,
  men, women, boys and girls, written for this project (:data:`TOY_CORPUS`); no download.
- ``tinyshakespeare``: through :mod:`interp.data.text` (downloads once),
  or pass the file: ``../shared/data/tinyshakespeare.txt``.
- ``text8``: Matt Mahoney's first 10^8 bytes of cleaned Wikipedia, downloaded into
  ``$INTERP_DATA_DIR/text8/`` only when a user asks for it.
- ``text:PATH`` or a plain ``PATH``: any UTF-8 text file.

A text is lower-cased and split into words (letters, digits, inner apostrophes); a
sentence is a paragraph (text between blank lines), cut into pieces of at most
:data:`MAX_SENTENCE` words, so no window reaches across a paragraph (gensim's
``LineSentence``/``Text8Corpus`` cut at the same length).

>>> corpus = load_word_corpus("toy-royalty")
>>> vocab = build_vocabulary(corpus.sentences, min_count=1, stopwords=STOP_WORDS)
>>> encoded = encode(corpus.sentences, vocab)
>>> centers, contexts = skipgram_pairs(encoded.ids, encoded.sentence_ids, window=2)
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import torch

from ..errors import InterpError
from ..io import atomic_path
from .download import Remote, download
from .paths import data_dir
from .text import tinyshakespeare_path

TOY_DATASET = "toy-royalty"
WORD_DATASETS = (TOY_DATASET, "tinyshakespeare", "text8", "text:PATH", "PATH")
# No checksum is published for text8.zip; its size is the check (as in TensorFlow's word2vec tutorial).
TEXT8 = Remote("http://mattmahoney.net/dc/text8.zip", size=31_344_016)
MAX_SENTENCE = 10_000
TOKEN_PATTERN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")

# Written for this project. Each sentence says what a person is: royal or common
# (royal, noble, crowned / common, humble, peasant) and male or female (son, brother,
# nephew / daughter, sister, niece). Once stop words are gone a person word's contexts
# are one word of each kind, so king and queen share the royal contexts and king and man
# the male ones: a 2-D embedding gets a royalty direction and a gender direction.
TOY_CORPUS: tuple[str, ...] = (
    "The king is a royal son.",
    "This king was a noble brother.",
    "Every king is a crowned nephew.",
    "That king was a royal brother.",
    "The king is also a noble nephew.",
    "The prince is a noble brother.",
    "This prince was a crowned nephew.",
    "Every prince is a royal son.",
    "That prince was a noble nephew.",
    "The prince is also a crowned son.",
    "The queen is a crowned niece.",
    "This queen was a royal daughter.",
    "Every queen is a noble sister.",
    "That queen was a crowned daughter.",
    "The queen is also a royal sister.",
    "The princess is a royal daughter.",
    "This princess was a noble sister.",
    "Every princess is a crowned niece.",
    "That princess was a royal sister.",
    "The princess is also a noble niece.",
    "The man is a humble brother.",
    "This man was a peasant nephew.",
    "Every man is a common son.",
    "That man was a humble nephew.",
    "The man is also a peasant son.",
    "The boy is a peasant nephew.",
    "This boy was a common son.",
    "Every boy is a humble brother.",
    "That boy was a peasant son.",
    "The boy is also a common brother.",
    "The woman is a common daughter.",
    "This woman was a humble sister.",
    "Every woman is a peasant niece.",
    "That woman was a common sister.",
    "The woman is also a humble niece.",
    "The girl is a humble sister.",
    "This girl was a peasant niece.",
    "Every girl is a common daughter.",
    "That girl was a humble niece.",
    "The girl is also a peasant daughter.",
)

# A common English stop-word list (pronouns, articles, auxiliaries, prepositions,
# conjunctions), as the exercise removes them before building pairs.
STOP_WORDS: frozenset[str] = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its
itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
shall may might must us upon thou thee thy thine ye o
""".split())


# ----------------------------------------------------------------------------- text


def tokenize(text: str) -> list[str]:
    """Lower-cased words: letters and digits with inner apostrophes kept.

    >>> tokenize("The King's crown, O'er the realm!")
    ['the', "king's", 'crown', "o'er", 'the', 'realm']
    """
    return TOKEN_PATTERN.findall(text.lower())


def split_sentences(text: str, max_len: int = MAX_SENTENCE) -> list[list[str]]:
    """Paragraphs (blank-line separated) as token lists, cut every ``max_len`` tokens."""
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        tokens = tokenize(paragraph)
        for i in range(0, len(tokens), max_len):
            sentences.append(tokens[i:i + max_len])
    return sentences


@dataclass
class WordCorpus:
    """A corpus as sentences of word strings."""

    name: str
    sentences: list[list[str]]

    @property
    def n_tokens(self) -> int:
        return sum(len(s) for s in self.sentences)

    def head(self, n_tokens: int) -> "WordCorpus":
        """The first ``n_tokens`` words (0: all), for quick runs."""
        if n_tokens <= 0 or n_tokens >= self.n_tokens:
            return self
        out, left = [], n_tokens
        for sentence in self.sentences:
            if left <= 0:
                break
            out.append(sentence[:left])
            left -= len(out[-1])
        return WordCorpus(self.name, out)


def read_text(path: str | os.PathLike) -> str:
    path = Path(path).expanduser()
    if path.is_dir():
        raise InterpError(f"{path} is a folder; word2vec needs one text file (e.g. ../shared/data/tinyshakespeare.txt)")
    if not path.is_file():
        raise InterpError(f"text file {path} not found; pass an existing file, e.g. "
                          f"--dataset ../shared/data/tinyshakespeare.txt, or --dataset {TOY_DATASET}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InterpError(f"{path} is not UTF-8 text (byte {e.start}); word2vec reads plain text files") from None


def load_word_corpus(name: str, *, progress: bool = True) -> WordCorpus:
    """A corpus by name (see the module docstring) as sentences of words.

    >>> load_word_corpus("toy-royalty").sentences[0]
    ['the', 'king', 'rules', 'the', 'kingdom', 'from', 'the', 'throne']
    """
    if name in (TOY_DATASET, "toy"):
        return WordCorpus(TOY_DATASET, [tokenize(s) for s in TOY_CORPUS])
    if name == "text8":
        return WordCorpus("text8", split_sentences(read_text(text8_path(progress=progress))))
    if name == "tinyshakespeare":
        path = tinyshakespeare_path(progress=progress, offline_hint=(
            "Without internet, pass a local copy: --dataset ../shared/data/tinyshakespeare.txt (or any text file)"))
        return WordCorpus(name, split_sentences(read_text(path)))
    path = name[5:] if name.startswith("text:") else name
    if name.startswith("text:") or Path(path).expanduser().exists() or "/" in path or path.endswith(".txt"):
        if not path:
            raise InterpError("dataset 'text:' needs a path, e.g. text:../shared/data/tinyshakespeare.txt")
        return WordCorpus(name, split_sentences(read_text(path)))
    raise InterpError(f"unknown word dataset {name!r}; use {TOY_DATASET} (embedded), tinyshakespeare, "
                      f"text8 (downloads), or a text file path (text:PATH)")


def text8_path(*, progress: bool = True) -> Path:
    """``$INTERP_DATA_DIR/text8/text8``, downloaded (31 MB zip) the first time it is asked for."""
    path = data_dir() / "text8" / "text8"
    if path.exists():
        return path
    zip_path = path.parent / "text8.zip"
    hint = "Without internet, pass a local text file, e.g. --dataset ../shared/data/tinyshakespeare.txt"
    if not zip_path.is_file():
        download(TEXT8, zip_path, what="text8 (31 MB)", progress=progress, offline_hint=hint)
    try:
        with zipfile.ZipFile(zip_path) as archive, atomic_path(path) as tmp:
            tmp.write_bytes(archive.read("text8"))
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise InterpError(f"{zip_path} is not text8's zip ({e}); delete it to download it again. {hint}") from None
    zip_path.unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------- vocabulary


@dataclass
class Vocabulary:
    """Words sorted by count (most frequent first, ties alphabetical) and their counts."""

    words: tuple[str, ...]
    counts: torch.Tensor
    """int64 ``(V,)`` corpus counts."""
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index


def build_vocabulary(sentences: Iterable[Sequence[str]], *, min_count: int = 1,
                     stopwords: Iterable[str] = ()) -> Vocabulary:
    """Words seen at least ``min_count`` times, stop words left out.

    >>> build_vocabulary([["a", "king", "a"]], min_count=2).words
    ('a',)
    """
    counts = Counter(w for s in sentences for w in s)
    for word in set(stopwords):
        counts.pop(word, None)
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return Vocabulary(tuple(kept), torch.tensor([counts[w] for w in kept], dtype=torch.int64))


@dataclass
class EncodedCorpus:
    """The in-vocabulary tokens as ids, with the sentence each one belongs to."""

    ids: torch.Tensor
    """int64 ``(N,)`` word ids, sentences concatenated."""
    sentence_ids: torch.Tensor
    """int64 ``(N,)``: tokens with equal values share a sentence (windows stay inside)."""
    raw_tokens: int
    """All tokens of the text, also those dropped (gensim's "raw words")."""


def encode(sentences: Sequence[Sequence[str]], vocab: Vocabulary) -> EncodedCorpus:
    """Word ids of the in-vocabulary tokens; out-of-vocabulary words and stop words drop out."""
    index = vocab.index
    ids, sids = [], []
    for s, sentence in enumerate(sentences):
        kept = [index[w] for w in sentence if w in index]
        ids.extend(kept)
        sids.extend([s] * len(kept))
    return EncodedCorpus(torch.tensor(ids, dtype=torch.int64), torch.tensor(sids, dtype=torch.int64),
                         sum(len(s) for s in sentences))


# --------------------------------------------------------------- skip-gram sampling


def keep_probabilities(counts: torch.Tensor, threshold: float) -> torch.Tensor:
    """Probability of keeping each word under frequent-word subsampling.

    word2vec's (and gensim's) formula, with ``f`` the word's share of the corpus and
    ``t`` the threshold: ``p = (sqrt(f / t) + 1) * t / f``, capped at 1. ``t = 0`` keeps all.
    """
    if threshold <= 0:
        return torch.ones(len(counts))
    f = counts.double() / counts.sum().clamp_min(1)
    return (((f / threshold).sqrt() + 1) * threshold / f).clamp(max=1.0).float()


def subsample(ids: torch.Tensor, keep: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Boolean mask of the tokens kept this epoch (``keep`` from :func:`keep_probabilities`)."""
    return torch.rand(len(ids), generator=generator) < keep[ids]


def skipgram_pairs(ids: torch.Tensor, sentence_ids: torch.Tensor, window: int, *,
                   radius: torch.Tensor | None = None,
                   centers: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All (center, context) id pairs within ``window`` positions, inside one sentence.

    ``radius`` (``(N,)`` ints in 1..window) gives each center its own window, as
    word2vec's dynamic window does (nearer words are then sampled more often); ``None``
    uses the full window for every center, as the exercise does. ``centers`` limits
    the centres to a slice of positions (contexts may lie outside it). Pairs come out
    center by center, each center's contexts from left to right.

    >>> ids = torch.tensor([0, 1, 2]); same = torch.zeros(3, dtype=torch.long)
    >>> skipgram_pairs(ids, same, window=1)
    (tensor([0, 1, 1, 2]), tensor([1, 0, 2, 1]))
    """
    center_pos, context_pos = _pair_positions(ids, sentence_ids, window, radius, centers)
    return ids.index_select(0, center_pos), ids.index_select(0, context_pos)


class Windows(NamedTuple):
    """Skip-gram pairs grouped by center: center ``i`` pairs with ``contexts[offsets[i]:offsets[i + 1]]``."""

    centers: torch.Tensor   # (C,) the word of each center position that has a context
    offsets: torch.Tensor   # (C,) where each center's contexts start in ``contexts``
    contexts: torch.Tensor  # (P,) the context words, center by center


def skipgram_windows(ids: torch.Tensor, sentence_ids: torch.Tensor, window: int, *,
                     radius: torch.Tensor | None = None, centers: slice | None = None) -> Windows:
    """The pairs of :func:`skipgram_pairs`, each center once with the contexts of its window.

    The SGNS update reads and updates a center's vector once for all its pairs.

    >>> ids = torch.tensor([0, 1, 2]); same = torch.zeros(3, dtype=torch.long)
    >>> skipgram_windows(ids, same, window=1)
    Windows(centers=tensor([0, 1, 2]), offsets=tensor([0, 1, 3]), contexts=tensor([1, 0, 2, 1]))
    """
    center_pos, context_pos = _pair_positions(ids, sentence_ids, window, radius, centers)
    positions, counts = torch.unique_consecutive(center_pos, return_counts=True)
    offsets = counts.cumsum(0).sub_(counts)
    return Windows(ids.index_select(0, positions), offsets, ids.index_select(0, context_pos))


def _pair_positions(ids: torch.Tensor, sentence_ids: torch.Tensor, window: int, radius: torch.Tensor | None,
                    centers: slice | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (center, context) of every pair, center by center (see :func:`skipgram_pairs`)."""
    n = len(ids)
    start, stop = (0, n) if centers is None else (max(centers.start or 0, 0), min(centers.stop or n, n))
    pos = torch.arange(start, stop)
    offsets = torch.tensor([d for d in range(-window, window + 1) if d != 0])
    ctx = pos[:, None] + offsets[None, :]                               # (C, 2 * window)
    inside = (ctx >= 0) & (ctx < n)
    ctx = ctx.clamp_(0, max(n - 1, 0)).reshape(-1)
    # index_select on flat views throughout: several times faster than advanced indexing
    ok = inside & (sentence_ids.index_select(0, ctx).view(-1, len(offsets)) == sentence_ids[start:stop, None])
    if radius is not None:
        ok &= radius[start:stop, None] >= offsets.abs()[None, :]
    flat = ok.view(-1).nonzero().squeeze(1)                             # pair k: row flat // W, column flat % W
    center_pos = flat.div(len(offsets), rounding_mode="floor").add_(start)
    return center_pos, ctx.index_select(0, flat)


def expected_pair_count(sentence_ids: torch.Tensor, keep: torch.Tensor, window: int, *,
                        dynamic: bool, seed: int = 0) -> float:
    """Expected skip-gram pairs per epoch, given each token's keep probability ``keep``.

    Windows are taken after subsampling, as word2vec takes them, so a window reaches
    past dropped words and the count depends on which words an epoch keeps: it is
    averaged over a few seeded subsampling draws (up to 8, fewer on large corpora; one
    when every word is kept), and is exact over the dynamic window's radius. Without
    subsampling it is exact. It sizes an epoch's steps so that they hold about
    ``batch_size`` pairs each.

    >>> expected_pair_count(torch.zeros(4, dtype=torch.long), torch.ones(4), 1, dynamic=False)
    6.0
    """
    n = len(sentence_ids)
    if n == 0:
        return 0.0
    every_word = bool((keep >= 1).all())
    draws = 1 if every_word else max(1, min(8, 2_000_000 // n))
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(draws):
        kept = torch.rand(n, generator=generator) < keep  # all True where every keep is 1
        sids = sentence_ids[kept]
        if len(sids) == 0:
            continue
        # Each kept word's kept neighbours on either side within its sentence.
        _, inverse, counts = torch.unique_consecutive(sids, return_inverse=True, return_counts=True)
        starts = counts.cumsum(0) - counts
        left = torch.arange(len(sids)) - starts[inverse]
        right = counts[inverse] - 1 - left
        total += (_window_reach(left, window, dynamic) + _window_reach(right, window, dynamic)).sum().item()
    return total / draws


def _window_reach(neighbours: torch.Tensor, window: int, dynamic: bool) -> torch.Tensor:
    """Expected contexts on one side of a center with ``neighbours`` words on that side: the
    window (or, dynamic, a radius drawn uniformly from 1..window) caps them."""
    k = neighbours.clamp(max=window).double()
    if not dynamic:
        return k
    # mean over r = 1..window of min(r, k) = (k (k + 1) / 2 + (window - k) k) / window
    return (k * (k + 1) / 2 + (window - k) * k) / window


class NoiseSampler:
    """Negative samples from the unigram distribution raised to ``power`` (0.75 in word2vec).

    Walker's alias method: exact sampling at the cost of two table lookups per sample,
    with tables the size of the vocabulary (word2vec.c uses a 10^8-entry table instead).

    >>> sampler = NoiseSampler(torch.tensor([10, 1]))
    >>> sampler.sample((4, 5), torch.Generator().manual_seed(0)).shape
    torch.Size([4, 5])
    """

    def __init__(self, counts: torch.Tensor, power: float = 0.75):
        weights = counts.double().pow(power)
        self.probs = weights / weights.sum()
        self.threshold, self.alias = _alias_tables(self.probs)
        # Row 2i holds alias[i], row 2i + 1 holds i: the sample is one lookup at 2i + stay,
        # which is faster than torch.where over the two candidates.
        self._outcomes = torch.stack([self.alias, torch.arange(len(self.alias))], 1).reshape(-1)

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        n = math.prod(shape)
        column = torch.randint(0, len(self.alias), (n,), generator=generator)
        # index_select, not [column]: several times faster for small tables on CPU
        stay = torch.rand(n, generator=generator) < self.threshold.index_select(0, column)
        return self._outcomes.index_select(0, torch.add(stay, column, alpha=2)).view(shape)


def _alias_tables(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vose's alias tables: column ``i`` keeps ``i`` with probability ``threshold[i]``, else ``alias[i]``."""
    n = len(probs)
    scaled = (probs * n).tolist()
    threshold = [1.0] * n
    alias = list(range(n))
    small = [i for i, p in enumerate(scaled) if p < 1.0]
    large = [i for i, p in enumerate(scaled) if p >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        threshold[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return torch.tensor(threshold, dtype=torch.float32), torch.tensor(alias, dtype=torch.int64)


# ----------------------------------------------------------------- vector files


def read_vectors(path: str | os.PathLike, *, limit: int = 0) -> tuple[list[str], torch.Tensor]:
    """Words and vectors from a GloVe or word2vec text file (``.gz`` too), or word2vec's
    binary format (:func:`interp.data.vectors.read_word2vec_binary`, recognised by its content).

    GloVe: one ``word x1 x2 ... xd`` per line. word2vec text format: the same after a
    ``count dim`` header line. ``limit`` reads only the first N words (such files are
    sorted by frequency). A repeated word keeps its first vector. Malformed lines raise
    :class:`InterpError` with the line number.

    >>> words, matrix = read_vectors("glove.6B.50d.txt", limit=50000)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InterpError(f"vectors file {path} not found; pass a GloVe or word2vec text file "
                          f"(e.g. glove.6B.100d.txt)")
    if path.suffix != ".gz":
        from .vectors import is_word2vec_binary, read_word2vec_binary

        if is_word2vec_binary(path):
            return read_word2vec_binary(path, limit=limit)
    opener = gzip.open if path.suffix == ".gz" else open
    words: list[str] = []
    rows: list[list[float]] = []
    seen: set[str] = set()
    dim = 0
    header: tuple[int, int] | None = None
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise InterpError(
                        f"{path}: line {lineno} is not UTF-8 text, and the file is not word2vec's binary "
                        f"format (a 'count dim' header, then binary vectors) either"
                    ) from None
                parts = line.rstrip("\r\n ").split(" ")
                if parts == [""]:
                    continue
                if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    header = (int(parts[0]), int(parts[1]))
                    dim = header[1]
                    if dim <= 0:
                        raise InterpError(f"{path}: line 1 (the header) says the vectors have {dim} dimensions")
                    continue
                if not dim:
                    dim = len(parts) - 1
                    if dim <= 0:
                        raise InterpError(f"{path}: line {lineno} has a word but no numbers; expected "
                                          f"'word x1 x2 ... xd' (GloVe) or a 'count dim' header (word2vec)")
                if len(parts) < dim + 1:
                    raise InterpError(f"{path}: line {lineno} has {len(parts) - 1} values after the word, "
                                      f"expected {dim} as on the lines before it")
                # Some GloVe releases have words with spaces: the last `dim` fields are the numbers.
                word = " ".join(parts[:-dim])
                try:
                    values = [float(x) for x in parts[-dim:]]
                except ValueError:
                    bad = next(x for x in parts[-dim:] if not _is_float(x))
                    raise InterpError(f"{path}: line {lineno}: {bad!r} is not a number "
                                      f"(expected the word, then {dim} numbers)") from None
                if word in seen:
                    continue
                seen.add(word)
                words.append(word)
                rows.append(values)
                if limit and len(words) >= limit:
                    break
    except (OSError, EOFError) as e:  # unreadable, or a truncated .gz
        raise InterpError(f"cannot read vectors file {path}: {e}") from None
    if not words:
        raise InterpError(f"{path} holds no vectors; expected lines like 'word 0.1 -0.3 ...'")
    if header and not limit and len(words) < header[0]:
        raise InterpError(f"{path}: the header (line 1) says {header[0]} words but the file has "
                          f"{len(words)}; the file is truncated or the header is wrong")
    matrix = torch.tensor(rows, dtype=torch.float32)
    finite = torch.isfinite(matrix).all(1)
    if not finite.all():
        bad_row = int((~finite).nonzero()[0])
        raise InterpError(f"{path}: the vector of {words[bad_row]!r} has inf or nan values")
    return words, matrix


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_vectors(path: str | os.PathLike, words: Sequence[str], matrix: torch.Tensor) -> Path:
    """Write vectors in word2vec text format (``count dim`` header, then one word per line), atomically."""
    path = Path(path)
    lines = [f"{len(words)} {matrix.shape[1]}"]
    for word, row in zip(words, matrix.tolist()):
        lines.append(word + " " + " ".join(f"{x:.6g}" for x in row))
    opener = gzip.open if path.suffix == ".gz" else open
    with atomic_path(path) as tmp, opener(tmp, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path
