"""Character corpora, vocabularies and the synthetic induction task."""

import pytest
import torch

from interp.data.text import (BOS, InductionSpec, induction_batch, load_char_corpus, random_windows,
                              read_text_file, repeated_random_tokens, split_corpus, tinyshakespeare_path)
from interp.errors import InterpError


def test_vocabulary_round_trip_and_unknown_characters_are_named():
    corpus = split_corpus("t", "hello world\n" * 10)
    vocab = corpus.vocab
    assert vocab.tokens == tuple(sorted(set("hello world\n")))
    assert vocab.decode(vocab.encode("hello")) == "hello"
    with pytest.raises(InterpError) as e:
        vocab.encode("hello WORLD!")
    message = str(e.value)
    for ch in "WORLD!":
        assert repr(ch) in message
    assert "'h'" not in message.split("vocabulary is")[0]  # only the unknown ones are listed


def test_token_vocabulary_encodes_names():
    vocab = InductionSpec(vocab_size=8, seq_len=17, min_block=2, max_block=4).vocabulary()
    assert vocab.tokens[0] == BOS and len(vocab) == 8 and vocab.bos == 0 and not vocab.is_char
    assert vocab.encode("<bos> 3 5 3").tolist() == [0, 3, 5, 3]
    assert vocab.decode([0, 3]) == "<bos> 3"
    with pytest.raises(InterpError, match="unknown tokens: '9'"):
        vocab.encode("<bos> 9")


def test_split_is_90_10_in_order(tmp_path):
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    (tmp_path / "t.txt").write_text(text)
    corpus = load_char_corpus(f"text:{tmp_path / 't.txt'}")
    assert len(corpus.train) == 900 and len(corpus.val) == 100
    assert corpus.vocab.decode(corpus.train[:5]) == text[:5]
    assert corpus.vocab.decode(corpus.val) == text[900:]
    assert torch.equal(load_char_corpus(str(tmp_path / "t.txt")).train, corpus.train)  # a bare path works too


def test_missing_empty_and_binary_text_files(tmp_path):
    with pytest.raises(InterpError, match="does not exist"):
        read_text_file(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(InterpError, match="is empty"):
        read_text_file(tmp_path / "empty.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x80abc")
    with pytest.raises(InterpError, match="not UTF-8"):
        read_text_file(tmp_path / "bin.txt")
    with pytest.raises(InterpError, match="needs a path"):
        load_char_corpus("text:")
    with pytest.raises(InterpError, match="unknown text dataset"):
        load_char_corpus("wikitext")


def test_tinyshakespeare_offline_error_says_how_to_pass_the_file(monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(InterpError) as e:
        tinyshakespeare_path(progress=False)
    assert "--text" in str(e.value) and "tinyshakespeare.txt" in str(e.value)


def test_tinyshakespeare_uses_the_cached_copy(tmp_path, monkeypatch):
    from interp.data.paths import data_dir

    target = data_dir() / "tinyshakespeare" / "input.txt"
    target.parent.mkdir(parents=True)
    target.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n")
    corpus = load_char_corpus("tinyshakespeare")
    assert corpus.vocab.decode(corpus.train[:6]) == "First "


def test_shared_tinyshakespeare_has_65_characters(shared_data):
    path = shared_data / "tinyshakespeare.txt"
    if not path.exists():
        pytest.skip("no tinyshakespeare.txt in shared data")
    corpus = load_char_corpus(f"text:{path}")
    assert len(corpus.vocab) == 65
    assert len(corpus.train) + len(corpus.val) == 1_115_394


def test_random_windows_are_consecutive_and_seeded():
    ids = torch.arange(100)
    a = random_windows(ids, 8, 10, torch.Generator().manual_seed(3))
    b = random_windows(ids, 8, 10, torch.Generator().manual_seed(3))
    assert a.shape == (8, 11) and torch.equal(a, b)
    assert torch.equal(a - a[:, :1], torch.arange(11).expand(8, 11))
    with pytest.raises(InterpError, match="fewer than one context"):
        random_windows(torch.arange(5), 2, 10, torch.Generator())


def test_induction_sequences_repeat_a_block_of_varying_length():
    spec = InductionSpec(vocab_size=32, seq_len=40, min_block=4, max_block=12)
    g = torch.Generator().manual_seed(0)
    tokens, lengths = induction_batch(256, spec, g, return_lengths=True)
    assert tokens.shape == (256, 40)
    assert (tokens[:, 0] == 0).all() and (tokens[:, 1:] > 0).all() and (tokens < 32).all()
    # The block lengths vary from sequence to sequence, over the whole range.
    assert set(lengths.tolist()) == set(range(4, 13))
    for row, L in zip(tokens, lengths.tolist()):
        body = row[1:]
        assert torch.equal(body[L:], body[:-L])  # period L
        assert len(set(body[:L].tolist())) == L  # distinct tokens within a block
    again = induction_batch(256, spec, torch.Generator().manual_seed(0))
    assert torch.equal(tokens, again)


def test_induction_spec_checks():
    with pytest.raises(InterpError, match="two copies of the longest block"):
        InductionSpec(vocab_size=128, seq_len=32, min_block=8, max_block=24).check()
    with pytest.raises(InterpError, match="min_block <= max_block"):
        InductionSpec(min_block=10, max_block=5).check()
    with pytest.raises(InterpError, match="must not exceed"):
        InductionSpec(vocab_size=10, seq_len=100, min_block=2, max_block=20).check()


def test_repeated_random_tokens_over_a_char_vocabulary():
    g = torch.Generator().manual_seed(1)
    tokens = repeated_random_tokens(16, 33, 65, g, bos=None, min_block=4, max_block=16)
    assert tokens.shape == (16, 33) and tokens.max() < 65
    with_bos = repeated_random_tokens(4, 20, 10, g, bos=3)
    assert (with_bos[:, 0] == 3).all() and not (with_bos[:, 1:] == 3).any()
