"""Users' own word vectors (issue #16): word2vec's binary format beside the text formats, and
named releases (glove-6B-50d) fetched only with --download."""

from __future__ import annotations

import struct

import pytest
import torch

from interp.data.vectors import is_word2vec_binary, read_word2vec_binary, resolve_vectors
from interp.data.words import read_vectors, write_vectors
from interp.errors import InterpError

WORDS = ["king", "queen", "man", "woman", "doctor", "nurse", "king"]  # a repeat keeps the first


def _write_binary(path, words, matrix, *, count=None, newline=True):
    with open(path, "wb") as f:
        f.write(f"{count or len(words)} {matrix.shape[1]}\n".encode())
        for word, row in zip(words, matrix):
            f.write(word.encode() + b" " + struct.pack(f"<{len(row)}f", *row.tolist()) + (b"\n" if newline else b""))
    return path


@pytest.mark.parametrize("newline", [True, False])
def test_binary_and_text_files_read_the_same(tmp_path, newline):
    matrix = torch.randn(len(WORDS), 5, generator=torch.Generator().manual_seed(0))
    binary = _write_binary(tmp_path / "v.bin", WORDS, matrix, newline=newline)
    text = write_vectors(tmp_path / "v.txt", WORDS[:6], matrix[:6])
    assert is_word2vec_binary(binary) and not is_word2vec_binary(text)
    words_b, m_b = read_vectors(binary)
    words_t, m_t = read_vectors(text)
    assert words_b == words_t == WORDS[:6]
    torch.testing.assert_close(m_b, matrix[:6])
    torch.testing.assert_close(m_t, m_b, atol=1e-5, rtol=1e-5)  # text keeps 6 significant digits
    assert read_vectors(binary, limit=2)[0] == ["king", "queen"]


def test_a_binary_header_that_lies_is_refused_before_allocating(tmp_path):
    matrix = torch.ones(2, 3)
    lying = _write_binary(tmp_path / "big.bin", ["a", "b"], matrix, count=10**12)
    with pytest.raises(InterpError, match="cannot hold; the file is truncated"):
        read_word2vec_binary(lying)
    cut = _write_binary(tmp_path / "cut.bin", ["a", "b"], matrix)
    cut.write_bytes(cut.read_bytes()[:-7])
    with pytest.raises(InterpError, match="truncated"):
        read_word2vec_binary(cut)


def test_named_vectors_are_fetched_only_with_download(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_DATA_DIR", str(tmp_path))
    with pytest.raises(InterpError, match="not downloaded yet.*add --download"):
        resolve_vectors("glove-6B-50d")
    with pytest.raises(InterpError, match="did you mean 'glove-6B-50d'"):
        resolve_vectors("glove-6b-50d")
    cached = tmp_path / "vectors" / "glove.6B.50d.txt"  # what a download leaves
    cached.parent.mkdir()
    cached.write_text("the 0.1 0.2\n")
    assert resolve_vectors("glove-6B-50d") == cached
    assert resolve_vectors(str(tmp_path / "own.txt")) == tmp_path / "own.txt"  # a path is a path


def test_cli_embed_reads_a_binary_file(cli, tmp_path):
    matrix = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    binary = _write_binary(tmp_path / "mine.bin", WORDS[:6], matrix)
    code, out, err = cli("embed", "neighbors", "king", "--vectors", str(binary), "--k", "2",
                         "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "queen" in out or "man" in out or "doctor" in out
    code, _, err = cli("embed", "neighbors", "king", "--run", "x", "--download")
    assert code == 2
