"""Text data for language models: character corpora and synthetic token tasks.

Sources (``DataConfig.name``):

- ``text:PATH``: any UTF-8 text file, tokenised by character (e.g.
  ``text:../shared/data/tinyshakespeare.txt``).
- ``tinyshakespeare``: Karpathy's Tiny Shakespeare, downloaded into
  ``$INTERP_DATA_DIR/tinyshakespeare/`` the first time a user asks for it.
- ``induction``: the synthetic induction task (:func:`induction_batch`), generated on
  the fly; nothing to download. Options go after a colon:
  ``induction:vocab_size=64,min_block=4,max_block=12`` (defaults 128, 8, 24).

A character corpus is split 90/10 (first 90% train, last 10% validation, as in
"Let's build GPT"); its vocabulary (the sorted distinct characters) travels with the run.

>>> corpus = load_char_corpus("text:../shared/data/tinyshakespeare.txt")
>>> corpus.vocab.decode(corpus.vocab.encode("To be"))
'To be'
"""

from __future__ import annotations

import functools

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InterpError
from .download import Remote
from .download import download as fetch
from .paths import data_dir

TINYSHAKESPEARE = Remote(
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", size=1_115_394)
BOS = "<bos>"
TEXT_DATASETS = ("tinyshakespeare", "text:PATH", "induction")


@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id. Character vocabularies encode text; token vocabularies
    (synthetic tasks, several characters per token) encode whitespace-separated names.

    >>> v = Vocabulary(("a", "b", "c"))
    >>> v.encode("cab").tolist()
    [2, 0, 1]
    """

    tokens: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def is_char(self) -> bool:
        return all(len(t) == 1 for t in self.tokens)

    @property
    def bos(self) -> int | None:
        """Id of the beginning-of-sequence token, if the vocabulary has one."""
        return self.tokens.index(BOS) if BOS in self.tokens else None

    def encode(self, text: str) -> torch.Tensor:
        """Text -> int64 ids; an :class:`InterpError` names every unknown character or token."""
        index = {t: i for i, t in enumerate(self.tokens)}
        pieces = list(text) if self.is_char else text.split()
        unknown = sorted({p for p in pieces if p not in index})
        if unknown:
            if self.is_char:
                shown = ", ".join(repr(c) for c in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
                raise InterpError(f"the prompt has characters outside the model's vocabulary: {shown}. "
                                  f"The vocabulary is: {''.join(self.tokens)!r}")
            shown = ", ".join(repr(c) for c in unknown[:20])
            raise InterpError(f"the prompt has unknown tokens: {shown}. This model's tokens are "
                              f"{self.tokens[0]}, {self.tokens[1]} ... {self.tokens[-1]}, separated by spaces")
        return torch.tensor([index[p] for p in pieces], dtype=torch.long)

    def decode(self, ids) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return ("" if self.is_char else " ").join(self.tokens[i] for i in ids)

    def labels(self, ids) -> list[str]:
        """Printable label per token (for plot axes): newlines and spaces made visible."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return [{"\n": "\\n", " ": "␣", "\t": "\\t"}.get(self.tokens[i], self.tokens[i]) for i in ids]


class TokenizerVocabulary:
    """A Hugging Face tokenizer with :class:`Vocabulary`'s interface (``tokens``, ``bos``,
    ``encode``, ``decode``, ``labels``), so the language analyses take an imported GPT-2 or
    Pythia as they take our character models.

    >>> vocab = TokenizerVocabulary(AutoTokenizer.from_pretrained("models/gpt2/hf"), 50257)
    >>> vocab.decode(vocab.encode("Hello world"))
    'Hello world'
    """

    is_char = False

    def __init__(self, tokenizer, vocab_size: int):
        self.tokenizer = tokenizer
        self.size = int(vocab_size)

    def __len__(self) -> int:
        return self.size

    @functools.cached_property
    def tokens(self) -> tuple[str, ...]:
        """Each id decoded on its own (``" the"``, not the byte-level ``"Ġthe"``)."""
        return tuple(self.tokenizer.decode([i]) for i in range(self.size))

    @property
    def bos(self) -> int | None:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None and 0 <= bos < self.size else None

    def encode(self, text: str) -> torch.Tensor:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if any(not 0 <= i < self.size for i in ids):
            raise InterpError(f"the tokenizer gave ids outside the model's {self.size}-token vocabulary; "
                              f"the run's tokenizer and model disagree")
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return self.tokenizer.decode(ids)

    def labels(self, ids) -> list[str]:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return [self.tokens[i].replace("\n", "\\n").replace("\t", "\\t").replace(" ", "␣") for i in ids]


@dataclass
class CharCorpus:
    """A character-level corpus: ids of the train and validation splits plus the vocabulary."""

    name: str
    vocab: Vocabulary
    train: torch.Tensor
    val: torch.Tensor


# ------------------------------------------------------------------- char corpora


def read_text_file(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file, with clear errors for a missing, empty or binary file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InterpError(f"text file {str(path)!r} does not exist; pass a UTF-8 text file, e.g. "
                          f"--text ../shared/data/tinyshakespeare.txt")
    if not path.is_file():
        raise InterpError(f"{str(path)!r} is not a file; pass a UTF-8 text file with --text PATH")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InterpError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not text.strip():
        raise InterpError(f"text file {path} is empty; a character model needs some text to learn from")
    return text


def tinyshakespeare_path(*, download: bool = True, progress: bool = True, offline_hint: str | None = None) -> Path:
    """The cached Tiny Shakespeare file, downloaded on first use when ``download``.

    ``offline_hint`` ends the error when the download fails (default: the character
    models' ``--text`` option); word2vec passes its own ``--dataset``.
    """
    path = data_dir() / "tinyshakespeare" / "input.txt"
    if path.is_file():
        return path
    if not download:
        raise InterpError(f"Tiny Shakespeare is not downloaded yet (expected at {path})")
    if offline_hint is None:
        local = Path("../shared/data/tinyshakespeare.txt")
        copy = f" (there is a copy at {local})" if local.is_file() else ""
        offline_hint = (f"Without internet, pass a local copy{copy}: interp train gpt --text "
                        f"../shared/data/tinyshakespeare.txt, or put the file at {path}")
    return fetch(TINYSHAKESPEARE, path, what="Tiny Shakespeare", progress=progress, offline_hint=offline_hint)


def split_corpus(name: str, text: str, train_fraction: float = 0.9) -> CharCorpus:
    """Character ids for ``text``: the first ``train_fraction`` train, the rest validation."""
    vocab = Vocabulary(tuple(sorted(set(text))))
    ids = vocab.encode(text)
    n = int(train_fraction * len(ids))
    return CharCorpus(name, vocab, ids[:n], ids[n:])


def load_char_corpus(name: str, *, progress: bool = True) -> CharCorpus:
    """``text:PATH`` or ``tinyshakespeare`` as a :class:`CharCorpus` (90/10 split)."""
    if name.startswith("text:"):
        path = name[len("text:"):]
        if not path:
            raise InterpError("dataset 'text:' needs a path, e.g. --text ../shared/data/tinyshakespeare.txt")
        return split_corpus(name, read_text_file(path))
    if name == "tinyshakespeare":
        return split_corpus(name, read_text_file(tinyshakespeare_path(progress=progress)))
    if Path(name).expanduser().is_file():  # a bare path works too
        return split_corpus(name, read_text_file(name))
    raise InterpError(f"unknown text dataset {name!r}; use tinyshakespeare (downloads), text:PATH "
                      f"(or --text PATH) for a text file, or induction")


def random_windows(ids: torch.Tensor, batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` random windows of ``length + 1`` consecutive ids, ``(B, length + 1)``.

    Inputs are ``w[:, :-1]``, targets ``w[:, 1:]``.
    """
    if len(ids) < length + 2:
        raise InterpError(f"the text split has {len(ids)} characters, fewer than one context of {length + 1}; "
                          f"use a longer text or a smaller block_size")
    start = torch.randint(0, len(ids) - length - 1, (batch_size,), generator=generator)
    return ids[start[:, None] + torch.arange(length + 1)]


# ------------------------------------------------------------ synthetic token tasks


@dataclass(frozen=True)
class InductionSpec:
    """The induction task: BOS, then a random block of random length, repeated to fill the context.

    Tokens ``1 .. vocab_size-1`` are the random tokens (distinct within a block); 0 is BOS.
    The block length varies from sequence to sequence, so no fixed offset (no position
    trick) predicts the repeat: only copying the token after the earlier occurrence does.
    """

    vocab_size: int = 128
    seq_len: int = 64
    min_block: int = 8
    max_block: int = 24

    def check(self) -> None:
        if self.vocab_size < 3:
            raise InterpError(f"induction vocab_size must be at least 3, got {self.vocab_size}")
        if not 1 <= self.min_block <= self.max_block:
            raise InterpError(f"induction block lengths need 1 <= min_block <= max_block, got "
                              f"{self.min_block}..{self.max_block}")
        if self.max_block > self.vocab_size - 1:
            raise InterpError(f"induction max_block ({self.max_block}) must not exceed the {self.vocab_size - 1} "
                              f"non-BOS tokens")
        if self.seq_len < 2 * self.max_block + 1:
            raise InterpError(f"the context ({self.seq_len}) must hold BOS and two copies of the longest block "
                              f"({self.max_block}): use block_size >= {2 * self.max_block + 1} or a smaller max_block")

    def vocabulary(self) -> Vocabulary:
        return Vocabulary((BOS, *(str(i) for i in range(1, self.vocab_size))))


def induction_batch(batch_size: int, spec: InductionSpec, generator: torch.Generator, *,
                    return_lengths: bool = False):
    """Induction sequences ``(B, seq_len)``: ``[BOS, b_1..b_L, b_1..b_L, b_1 ...]``.

    ``L`` is drawn uniformly from ``min_block..max_block`` per sequence. With
    ``return_lengths`` also returns the block length of each sequence.

    >>> x = induction_batch(2, InductionSpec(vocab_size=16, seq_len=12, min_block=3, max_block=5), g)
    """
    lengths = torch.randint(spec.min_block, spec.max_block + 1, (batch_size,), generator=generator)
    # Distinct tokens per block: the first max_block of a random permutation of 1..V-1.
    blocks = torch.rand(batch_size, spec.vocab_size - 1, generator=generator).argsort(dim=1)[:, :spec.max_block] + 1
    pos = torch.arange(spec.seq_len - 1)
    body = blocks.gather(1, pos[None, :] % lengths[:, None])
    tokens = torch.cat([torch.zeros(batch_size, 1, dtype=torch.long), body], dim=1)
    return (tokens, lengths) if return_lengths else tokens


def repeated_random_tokens(batch_size: int, seq_len: int, vocab_size: int, generator: torch.Generator, *,
                           bos: int | None = None, min_block: int = 8, max_block: int = 24) -> torch.Tensor:
    """Repeated random blocks over any vocabulary (for head scores on any model).

    Like :func:`induction_batch`, but the first token is ``bos`` when given (else a
    random token) and block tokens are drawn from every other id.
    """
    pool = torch.tensor([i for i in range(vocab_size) if i != bos])
    max_block = max(1, min(max_block, len(pool), (seq_len - 1) // 2))
    min_block = max(1, min(min_block, max_block))
    spec = InductionSpec(vocab_size=len(pool) + 1, seq_len=seq_len, min_block=min_block, max_block=max_block)
    tokens = induction_batch(batch_size, spec, generator)
    mapped = pool[tokens.clamp_min(1) - 1]
    first = (torch.full((batch_size,), bos, dtype=torch.long) if bos is not None
             else pool[torch.randint(len(pool), (batch_size,), generator=generator)])
    mapped[:, 0] = first
    return mapped
