"""Token sources of the language analyses: a run's vocabulary, prompts, induction probes, task
sequences, and text sampled from the model.

>>> prompt_tokens(run, "5 9 13 5 9")        # ids (T,), checked against vocabulary and context
>>> length_probe(run, 64)                    # {block length: (64, T) repeated random blocks}
>>> sample_text(run, "ROMEO:", n_tokens=100).text
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from ...errors import InterpError


def run_vocabulary(run):
    """The :class:`~interp.data.text.Vocabulary` a run was trained with."""
    from ...data.text import TokenizerVocabulary, Vocabulary

    tokenizer = getattr(run, "tokenizer", None)
    if tokenizer is not None:  # an imported Hugging Face model
        return TokenizerVocabulary(tokenizer, run.config.model_config["vocab_size"])
    vocab = tuple(run.config.data.vocab)
    if not vocab:
        raise InterpError(f"run {run.name} has no vocabulary; it is not a language-model run")
    return Vocabulary(vocab)


def token_digest(tokens: torch.Tensor) -> str:
    """A short stable key of a token tensor (results on different tokens must not share a file).

    >>> token_digest(torch.tensor([1, 2, 3]))
    'dfa5ec66'
    """
    t = tokens.detach().cpu().to(torch.int64).contiguous()
    return hashlib.sha1(str(tuple(t.shape)).encode() + t.numpy().tobytes()).hexdigest()[:8]


def prompt_tokens(run, prompt: str | None, *, seed: int = 0) -> torch.Tensor:
    """A prompt as token ids ``(T,)``, checked against the run's vocabulary and context.

    ``None`` gives a short induction probe (BOS, a random block, the block again) for
    token-task runs, and an error for text runs.
    """
    vocab = run_vocabulary(run)
    context = run.config.model_config["block_size"]
    if prompt is None:
        if vocab.is_char:
            raise InterpError("give a prompt with --prompt TEXT (characters of the run's training text)")
        # A short induction probe: BOS, 12 random tokens, the same 12 again (readable heatmaps).
        return repeated_tokens(run, 1, seed=seed, seq_len=min(25, context))[0]
    tokens = vocab.encode(prompt)
    if len(tokens) == 0:
        raise InterpError("the prompt is empty; give at least one character")
    if len(tokens) > context:
        raise InterpError(f"the prompt has {len(tokens)} tokens but the model's context is {context}; "
                          f"shorten it to at most {context}")
    return tokens


def repeated_tokens(run, n: int, *, seed: int = 0, seq_len: int | None = None,
                    block: int | None = None) -> torch.Tensor:
    """An induction probe: BOS (if the vocabulary has one), then a random block repeated to fill the context.

    ``block``: the block length (distinct tokens where the vocabulary allows); default
    half the context, ((seq_len - 1) // 2), as in the usual induction-score recipe. A head
    that merely attends to all earlier tokens then scores near 0 on the induction mask,
    and an induction head near 1. One length alone can be matched by position (a head
    that attends ``block - 1`` back); :func:`length_probe` spans several.
    """
    from ...data.text import repeated_random_tokens

    seq_len = seq_len or run.config.model_config["block_size"]
    vocab = run_vocabulary(run)
    block = block or (seq_len - 1) // 2
    g = torch.Generator().manual_seed(seed)
    return repeated_random_tokens(n, seq_len, len(vocab), g, bos=vocab.bos, min_block=block, max_block=block)


def probe_lengths(seq_len: int, n_tokens: int, count: int = 4, *, shortest: int | None = None,
                  longest: int | None = None) -> tuple[int, ...]:
    """Block lengths of the head-score probe: ``count`` geometrically spaced lengths, by default from
    about a fifth of half the context up to half the context (and no more than ``n_tokens``).

    >>> probe_lengths(64, 128)
    (7, 11, 19, 31)
    >>> probe_lengths(64, 128, shortest=8, longest=24)
    (8, 12, 17, 24)
    """
    longest = max(1, min(longest or (seq_len - 1) // 2, (seq_len - 1) // 2, n_tokens))
    shortest = min(longest, shortest or max(3, -(-longest // 5)))
    if longest == shortest:
        return (longest,)
    ratio = (longest / shortest) ** (1 / (count - 1))
    return tuple(sorted({int(round(shortest * ratio ** i)) for i in range(count)}))


def length_probe(run, n: int, *, seed: int = 0, lengths: tuple[int, ...] | None = None) -> dict[int, torch.Tensor]:
    """The head-score probe at several block lengths: ``{block length: tokens (n, T)}``.

    A real induction head scores high at every length; a head that attends a fixed
    distance back scores high at one length only (a 1-layer model trained on one
    repeat length does that), so :func:`~interp.analysis.language.heads.head_scores`
    reports each head's minimum.

    >>> probe = length_probe(run, 64)      # {7: ..., 11: ..., 19: ..., 31: ...} for a 64-token context (no known training range)
    """
    seq_len = run.config.model_config["block_size"]
    vocab = run_vocabulary(run)
    n_tokens = len(vocab) - (vocab.bos is not None)
    if lengths is None:
        opts = run.config.data.options if run.config.data.name == "induction" else {}
        lo, hi = opts.get("min_block", 8), opts.get("max_block", 24)
        # Trained on varying lengths: probe inside that range. Blocks longer than any it saw
        # underestimate real induction heads (0.85 -> 0.49 at 31 tokens after blocks of 8-24), and
        # no position trick solves varying lengths anyway; other runs get the wide spread.
        varying = bool(opts) and lo < hi
        lengths = probe_lengths(seq_len, n_tokens, shortest=lo if varying else None, longest=hi if varying else None)
    return {b: repeated_tokens(run, n, seed=seed + 1000 * i, block=b) for i, b in enumerate(lengths)}


def task_tokens(run, n: int, *, seed: int = 0, seq_len: int | None = None) -> torch.Tensor:
    """Sequences of the run's induction task (blocks of varying length, repeated to fill the
    context); for text runs, repeated random blocks of their vocabulary in the same way."""
    from ...data.text import InductionSpec, induction_batch, repeated_random_tokens

    g = torch.Generator().manual_seed(seed)
    cfg = run.config.model_config
    seq_len = seq_len or cfg["block_size"]
    if run.config.data.name == "induction":
        opts = run.config.data.options
        spec = InductionSpec(vocab_size=cfg["vocab_size"], seq_len=seq_len,
                             min_block=opts.get("min_block", 8), max_block=opts.get("max_block", 24))
        spec.check()
        return induction_batch(n, spec, g)
    vocab = run_vocabulary(run)
    return repeated_random_tokens(n, seq_len, len(vocab), g, bos=vocab.bos)


# ---------------------------------------------------------------------- sampling


@dataclass
class TextSample:
    """Text generated by a language-model run from ``prompt`` (``""``: its start token)."""

    text: str
    prompt: str
    n_tokens: int
    temperature: float
    seed: int
    run: str = ""
    settings: dict = field(default_factory=dict)


def start_tokens(run) -> torch.Tensor:
    """What generation starts from without a prompt: BOS, else a newline, else token 0 ``(1,)``."""
    vocab = run_vocabulary(run)
    if vocab.bos is not None:
        return torch.tensor([vocab.bos])
    return torch.tensor([vocab.tokens.index("\n") if "\n" in vocab.tokens else 0])


def sample_text(run, prompt: str | None = None, *, n_tokens: int = 200, temperature: float = 1.0,
                seed: int = 0) -> TextSample:
    """Sample ``n_tokens`` tokens from a run, continuing ``prompt`` (default: :func:`start_tokens`).

    The text holds the prompt followed by the continuation; the same seed gives the same text.

    >>> sample_text(run, "ROMEO:", n_tokens=50, temperature=0.8, seed=1).text
    """
    vocab = run_vocabulary(run)
    start = start_tokens(run) if prompt is None else prompt_tokens(run, prompt)
    g = torch.Generator().manual_seed(seed)
    out = run.model.generate(start[None].to(run.device), n_tokens, temperature=temperature, generator=g)
    settings = {"prompt": prompt or "", "n_tokens": n_tokens, "temperature": temperature, "seed": seed}
    return TextSample(vocab.decode(out[0].cpu()), prompt or "", n_tokens, temperature, seed, run.name, settings)
