"""Pretrained word vectors by name, and word2vec's binary format.

``resolve_vectors("glove-6B-50d", download=True)`` fetches Stanford's GloVe release once
into ``$INTERP_DATA_DIR/vectors/`` (the vectors word2viz uses), checks the extracted file
(400,000 words of the named dimension) and returns its path; without ``download`` a
missing file is a clear error. Any path is taken as it is.

``read_word2vec_binary`` reads the format of the original word2vec tool and of
``KeyedVectors.save_word2vec_format(binary=True)``: a ``count dim`` text header, then per
word its UTF-8 bytes, a space and ``dim`` little-endian float32 values.

>>> path = resolve_vectors("glove-6B-50d", download=True)
>>> words, matrix = read_vectors(path, limit=50000)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch

from ..errors import InterpError, unknown
from .download import Remote, download
from .paths import data_dir

GLOVE_6B = Remote("https://nlp.stanford.edu/data/glove.6B.zip")
NAMED_VECTORS = {f"glove-6B-{d}d": (GLOVE_6B, f"glove.6B.{d}d.txt", 400_000, d) for d in (50, 100, 200, 300)}
"""name -> (archive, member, words, dimension): what the extracted file must hold."""

MAX_WORD_BYTES = 1 << 16


def resolve_vectors(name_or_path: str | os.PathLike, *, download_ok: bool = False, progress: bool = True) -> Path:
    """A vectors file: the path itself when it exists, else a named release from the data cache
    (downloaded and checked only with ``download_ok``)."""
    path = Path(name_or_path).expanduser()
    if path.exists() or str(name_or_path) not in NAMED_VECTORS:
        if not path.exists() and not any(sep in str(name_or_path) for sep in ("/", ".")):
            raise unknown("named vectors", str(name_or_path), NAMED_VECTORS)
        return path
    remote, member, n_words, dim = NAMED_VECTORS[str(name_or_path)]
    target = data_dir() / "vectors" / member
    if target.is_file():
        return target
    if not download_ok:
        raise InterpError(f"{name_or_path} is not downloaded yet (it would be {target}); add --download to fetch "
                          f"Stanford's GloVe release (822 MB zip, once), or pass a vectors file with --vectors PATH")
    archive = target.parent / "glove.6B.zip"
    if not archive.is_file():
        download(remote, archive, what="GloVe 6B (822 MB)", progress=progress,
                 offline_hint="Without internet, pass a local vectors file with --vectors PATH")
    from ..io import atomic_path

    try:
        with zipfile.ZipFile(archive) as z, atomic_path(target) as tmp:
            tmp.write_bytes(z.read(member))
            _check_release(tmp, n_words, dim)
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise InterpError(f"{archive} is not GloVe's 6B release ({e}); delete it to download it again") from None
    return target


def _check_release(path: Path, n_words: int, dim: int) -> None:
    lines = 0
    with open(path, "rb") as f:
        for lines, line in enumerate(f, 1):
            if lines == 1 and len(line.split()) != dim + 1:
                raise InterpError(f"{path.name}: {len(line.split()) - 1} values per word, expected {dim}")
    if lines != n_words:
        raise InterpError(f"{path.name}: {lines:,} words, expected {n_words:,}; the download is damaged")


def is_word2vec_binary(path: Path) -> bool:
    """Whether ``path`` starts with a ``count dim`` header followed by binary floats."""
    with open(path, "rb") as f:
        header = f.readline(256)
        body = f.read(4096)
    parts = header.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start < len(body) - 4  # not a multi-byte character cut by the 4096-byte read
    return False


def read_word2vec_binary(path: str | os.PathLike, *, limit: int = 0) -> tuple[list[str], torch.Tensor]:
    """Words and vectors of a binary word2vec file (see the module docstring); the header is
    checked against the file size before anything is allocated."""
    import numpy as np

    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.readline(256).split()
        count, dim = int(header[0]), int(header[1])
        if count <= 0 or dim <= 0 or count * (dim * 4 + 2) > size:
            raise InterpError(f"{path}: the header says {count:,} words of {dim} dimensions, which a "
                              f"{size:,}-byte file cannot hold; the file is truncated or not word2vec binary")
        n = min(count, limit) if limit else count
        words, seen, rows = [], set(), np.empty((n, dim), dtype=np.float32)
        kept = 0
        for i in range(n):
            raw = bytearray()
            while (byte := f.read(1)) != b" ":
                if not byte:
                    raise InterpError(f"{path}: ends inside word {i + 1} of {count:,}; the file is truncated")
                if byte != b"\n" or raw:  # a newline after the previous vector belongs to no word
                    raw += byte
                if len(raw) > MAX_WORD_BYTES:
                    raise InterpError(f"{path}: word {i + 1} is longer than {MAX_WORD_BYTES:,} bytes; "
                                      f"not a word2vec binary file")
            vector = f.read(4 * dim)
            if len(vector) != 4 * dim:
                raise InterpError(f"{path}: ends inside the vector of word {i + 1}; the file is truncated")
            word = raw.decode("utf-8", errors="replace")
            if word in seen:
                continue
            seen.add(word)
            words.append(word)
            rows[kept] = np.frombuffer(vector, dtype="<f4")
            kept += 1
    matrix = torch.from_numpy(rows[:kept].copy())
    if not torch.isfinite(matrix).all():
        bad = int((~torch.isfinite(matrix).all(1)).nonzero()[0])
        raise InterpError(f"{path}: the vector of {words[bad]!r} has inf or nan values")
    return words, matrix
