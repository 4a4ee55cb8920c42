"""Downloads of public datasets, only when a user asks for one: streamed, checked, atomic.

A file arrives under a temporary name and is renamed onto its path only once it is
complete and its SHA-256 (or, where none is published, its size) matches, so an
interrupted or corrupted download never leaves a file that looks finished.

>>> from interp.data.text import TINYSHAKESPEARE
>>> download(TINYSHAKESPEARE, Path("input.txt"), what="Tiny Shakespeare")
PosixPath('input.txt')
"""

from __future__ import annotations

import hashlib
import http.client
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import InterpError
from ..io import atomic_path

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Remote:
    """Where a file lives, and what it must hash to (SHA-256 hex) or weigh (bytes)."""

    url: str
    sha256: str | None = None
    size: int | None = None


def download(remote: Remote, path: str | Path, *, what: str, offline_hint: str = "",
             progress: bool = True, timeout: float = 60) -> Path:
    """Fetch ``remote.url`` into ``path`` with a progress bar; check it, then rename it in place.

    Any failure (no network, HTTP error, wrong checksum or size) raises one
    :class:`InterpError` that names ``what`` and ends with ``offline_hint``.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    if progress:
        print(f"Downloading {what} from {remote.url} into {path.parent} ...", file=sys.stderr)
    digest = hashlib.sha256()
    received = 0
    try:
        with atomic_path(path) as tmp, urllib.request.urlopen(remote.url, timeout=timeout) as response, \
                open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or remote.size
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name,
                      disable=not progress or None, leave=False) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            out.flush()
            _check(remote, digest.hexdigest(), received)  # before the rename: a bad file never lands
    except (OSError, http.client.HTTPException, ValueError) as e:  # no network, HTTP errors, a cut, a bad checksum
        hint = f" {offline_hint}" if offline_hint else ""
        raise InterpError(f"could not download {what} from {remote.url} ({e}).{hint}") from None
    return path


def _check(remote: Remote, sha256: str, size: int) -> None:
    if remote.size is not None and size != remote.size:
        raise ValueError(f"got {size:,} bytes, expected {remote.size:,}")
    if remote.sha256 is not None and sha256 != remote.sha256:
        raise ValueError(f"SHA-256 {sha256[:16]}... does not match the published {remote.sha256[:16]}...")
