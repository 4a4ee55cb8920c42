"""CIFAR-10 from its authors' binary release: fixed-size records read with numpy, no pickle.

The release (https://www.cs.toronto.edu/~kriz/cifar.html, 170,052,171 bytes) is a tar.gz of
five training batches and one test batch, each 10,000 records of one label byte and
3,072 pixel bytes (32x32 red, then green, then blue, row by row), plus
``batches.meta.txt`` with the class names. It is downloaded once into
``$INTERP_DATA_DIR/cifar10/`` and read straight from the archive: only the seven expected
members, by name, each checked to hold whole records; nothing is extracted, nothing unpickled.

>>> data = interp.data.images.load_cifar10()        # downloads 162 MB the first time
>>> data.train_x.shape, data.classes[:3]
(torch.Size([50000, 3, 32, 32]), ['airplane', 'automobile', 'bird'])
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torch

from ..errors import InterpError
from .download import Remote, download
from .paths import data_dir

CIFAR10_BINARY = Remote(
    "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    size=170_052_171,
)
ARCHIVE_NAME = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
META = "batches.meta.txt"
RECORD_BYTES = 1 + 3 * 32 * 32


def cifar10_archive(*, progress: bool = True) -> Path:
    """``$INTERP_DATA_DIR/cifar10/cifar-10-binary.tar.gz``, downloaded when not there yet."""
    path = data_dir() / "cifar10" / ARCHIVE_NAME
    if path.is_file():
        return path
    return download(
        CIFAR10_BINARY, path, what="CIFAR-10 (162 MB)", progress=progress,
        offline_hint=(f"Without internet, fetch that file elsewhere and put it at {path}, or pass a "
                      f"local copy as an image folder: --dataset PATH (with train/ and test/ subfolders, "
                      f"e.g. ../shared/data/cifar10-jpeg)"))


def read_cifar10_archive(path: str | Path):
    """``(train_x, train_y, test_x, test_y, classes)`` from the binary release's tar.gz.

    Images are uint8 ``(N, 3, 32, 32)``, labels int64. A member that is missing or does not
    hold whole records raises :class:`InterpError` naming it.
    """
    path = Path(path)
    wanted = {f"{FOLDER}/{name}": name for name in (*TRAIN_BATCHES, TEST_BATCH, META)}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:  # one pass over the stream; other members are skipped unread
                if member.isfile() and member.name in wanted:
                    found[wanted[member.name]] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise InterpError(f"{path} is not a readable CIFAR-10 archive ({e}); delete it to download it "
                          f"again, or pass an image folder with --dataset PATH") from None
    missing = sorted(set(wanted.values()) - set(found))
    if missing:
        raise InterpError(f"{path} is not CIFAR-10's binary release: it lacks {FOLDER}/{missing[0]}"
                          f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}")
    train_x, train_y = zip(*(_records(found[name], name, path) for name in TRAIN_BATCHES))
    test_x, test_y = _records(found[TEST_BATCH], TEST_BATCH, path)
    classes = [line.strip() for line in found[META].decode("ascii", "replace").splitlines() if line.strip()]
    if len(classes) != 10:
        raise InterpError(f"{path}: {META} names {len(classes)} classes, expected CIFAR-10's 10")
    return torch.cat(train_x), torch.cat(train_y), test_x, test_y, classes


def _records(raw: bytes, name: str, archive: Path) -> tuple[torch.Tensor, torch.Tensor]:
    if not raw or len(raw) % RECORD_BYTES:
        raise InterpError(f"{archive}: {name} holds {len(raw):,} bytes, not a whole number of "
                          f"{RECORD_BYTES:,}-byte CIFAR-10 records")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = torch.from_numpy(records[:, 0].astype(np.int64))
    if int(labels.max()) > 9:
        raise InterpError(f"{archive}: {name} has label {int(labels.max())}; CIFAR-10's are 0-9")
    images = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy())
    return images, labels
