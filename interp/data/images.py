"""Image classification data as in-memory uint8 tensors.

Sources (``load_image_data(name)``):

- ``shapes``: the embedded procedural dataset (:mod:`interp.data.shapes`), no download.
- ``shapes-watermark[:size=6,row=1,col=13,p=0.95]``: ``shapes`` with a planted shortcut, a
  class-coloured mark on the training images and a random class's on the test images.
- ``cifar10``: the authors' binary release of CIFAR-10 (:mod:`interp.data.cifar10`),
  downloaded into ``$INTERP_DATA_DIR`` (default ``~/.cache/interp/data``) the first time a
  user asks for it.
- any folder with ``train/<class>/*`` and ``test/<class>/*`` images (an ImageFolder
  layout, e.g. ``../shared/data/cifar10-jpeg``): decoded once and cached as uint8
  tensors under ``$INTERP_CACHE_DIR`` (default ``~/.cache/interp/cache``), outside the
  dataset folder, which may be read-only.

Normalisation (per-channel mean and std of the training split), class names and input
size travel with the data and then with the run.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InterpError
from .paths import cache_dir
from .samples import stratified_sample

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
BUILTIN_IMAGE_DATASETS = ("shapes", "shapes-watermark", "cifar10")


@dataclass
class ImageData:
    """Train and test splits as uint8 ``(N, C, H, W)`` tensors with int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float images -> the model's normalised input."""
        return normalize(x, self.mean, self.std)

    def subset(self, n_train: int = 0, n_test: int = 0) -> "ImageData":
        """``n_train`` / ``n_test`` examples of each split (0 keeps a split whole).

        A fixed (seed 0) stratified random sample kept in stored order
        (:func:`~interp.data.samples.stratified_sample`), not the first N: an image folder
        is stored class by class, so its first N images would all be one class.
        """
        tx, ty = _sample(self.train_x, self.train_y, n_train)
        vx, vy = _sample(self.test_x, self.test_y, n_test)
        return ImageData(self.name, tx, ty, vx, vy, self.classes, self.mean, self.std)


def _sample(x: torch.Tensor, y: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not n or n >= len(y):
        return x, y
    idx = stratified_sample(y, n, seed=0).indices
    return x[idx], y[idx]


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Map uint8 (0..255) or float (0..1) images to ``(x - mean) / std`` per channel."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def denormalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Inverse of :func:`normalize`, giving [0, 1] floats."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x * s + m


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale (chunked: no big float copy)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for chunk in x.split(8192):
        c = chunk.to(torch.float64).div_(255.0)
        total += c.sum(dim=(0, 2, 3))
        total_sq += c.pow(2).sum(dim=(0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / n
    std = (total_sq / n - mean**2).clamp_min(1e-12).sqrt()
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def load_image_data(name: str, *, n_train: int = 0, n_test: int = 0, progress: bool = True,
                    split: str = "both", skip_bad: bool = False) -> ImageData:
    """Load an image dataset by name or folder path.

    ``split="test"`` skips work for the training split where that saves time (the
    generated ``shapes`` data); the returned train tensors are then empty.

    >>> data = load_image_data("shapes", n_train=100, n_test=50)
    >>> data.train_x.shape, data.classes[:2]
    (torch.Size([100, 3, 32, 32]), ['line', 'edge'])
    """
    if split not in ("both", "test"):
        raise ValueError(f"split must be 'both' or 'test', got {split!r}")
    if name == "shapes":
        return _shapes(0 if split == "test" else (n_train or 50_000), n_test or 10_000)
    if name.split(":", 1)[0] == "shapes-watermark":  # shapes with a planted shortcut (interp.data.shapes)
        from .shapes import parse_watermark

        return _shapes_watermark(parse_watermark(name), name, 0 if split == "test" else (n_train or 50_000),
                                 n_test or 10_000)
    if name == "cifar10":
        data = load_cifar10(progress=progress)
    else:
        path = Path(name).expanduser()
        if not path.exists():
            raise InterpError(
                f"unknown dataset {name!r}: not a built-in dataset ({', '.join(BUILTIN_IMAGE_DATASETS)}) "
                f"and no folder at {path}. Give one of those names or a folder with train/ and test/ subfolders."
            )
        data = load_image_folder(path, progress=progress, skip_bad=skip_bad)
    return data.subset(n_train, n_test)


def load_cifar10(*, progress: bool = True) -> ImageData:
    """CIFAR-10 as :class:`ImageData` (50,000 train, 10,000 test), downloaded the first time.

    >>> data = load_cifar10()        # downloads 162 MB the first time
    """
    from .cifar10 import cifar10_archive, read_cifar10_archive

    train_x, train_y, test_x, test_y, classes = read_cifar10_archive(cifar10_archive(progress=progress))
    mean, std = channel_stats(train_x)
    return ImageData("cifar10", train_x, train_y, test_x, test_y, classes, mean, std)


@functools.lru_cache(maxsize=2)
def _shapes(n_train: int, n_test: int) -> ImageData:
    # Cached in-process: training, examples and reports of one session reuse the same
    # tensors (never modified in place) instead of regenerating them.
    from .shapes import SHAPES_CLASSES, generator_version, shapes_splits

    # Large splits are also cached on disk like image folders (3.5 s quiet for 60,000 images on
    # two cores, 20-40 s on a loaded machine; the cache reads in well under a second); small ones
    # (tests, quick runs) are generated faster than a file is written.
    cache_file = None
    if n_train + n_test >= SHAPES_DISK_CACHE_MIN:
        cache_file = cache_dir() / f"shapes-{n_train}-{n_test}-seed0-{generator_version()}.safetensors"
        cached = _read_cache(cache_file)
        if cached is not None:
            return ImageData("shapes", cached["train_x"], cached["train_y"], cached["test_x"], cached["test_y"],
                             list(SHAPES_CLASSES), tuple(cached["mean"].tolist()), tuple(cached["std"].tolist()))
    splits = shapes_splits(n_train=n_train, n_test=n_test, seed=0, progress=cache_file is not None)
    (tx, ty), (vx, vy) = splits["train"], splits["test"]
    mean, std = channel_stats(tx if n_train else vx)
    if cache_file is not None:
        _write_cache(cache_file, {"train_x": tx, "train_y": ty, "test_x": vx, "test_y": vy,
                                  "mean": torch.tensor(mean, dtype=torch.float64),
                                  "std": torch.tensor(std, dtype=torch.float64)},
                     stale=f"shapes-{n_train}-{n_test}-seed0-*.safetensors")
    return ImageData("shapes", tx, ty, vx, vy, list(splits["classes"]), mean, std)


SHAPES_DISK_CACHE_MIN = 20_000
"""Generated ``shapes`` splits of at least this many images in all are cached on disk."""


def _read_cache(cache_file: Path) -> dict | None:
    """A cached dataset's tensors, or None when there is none; a corrupt cache is removed and
    rebuilt, never trusted."""
    if not cache_file.exists():
        return None
    from safetensors.torch import load_file

    try:
        return load_file(str(cache_file))
    except Exception:
        cache_file.unlink(missing_ok=True)
        return None


def _write_cache(cache_file: Path, tensors: dict, *, stale: str) -> None:
    """Write a cache entry atomically, then remove the entries it replaces (``stale``: a glob
    of the same dataset's other keys): they can never be read again. A cache that cannot be
    written (read-only or full disk) is skipped with a warning: the data are in memory."""
    from ..io import save_tensors

    try:
        save_tensors(cache_file, tensors)
    except (OSError, InterpError) as e:
        print(f"warning: could not cache the dataset in {cache_file.parent} ({e}); it will be "
              f"rebuilt next time", file=sys.stderr)
        return
    for old in cache_file.parent.glob(stale):
        if old != cache_file:
            old.unlink(missing_ok=True)


@functools.lru_cache(maxsize=2)
def _shapes_watermark(spec, name: str, n_train: int, n_test: int) -> ImageData:
    """``shapes`` with the planted mark ``spec`` (:class:`~interp.data.shapes.Watermark`) stamped on the
    training split by class and on the test split by a random class; cached like ``shapes``."""
    clean = _shapes(n_train, n_test)
    k = len(clean.classes)
    tx = spec.stamp(clean.train_x, spec.train_marks(clean.train_y))
    vx = spec.stamp(clean.test_x, spec.test_marks(clean.test_y, k))
    mean, std = channel_stats(tx if n_train else vx)
    return ImageData(name, tx, clean.train_y, vx, clean.test_y, list(clean.classes), mean, std)


# ----------------------------------------------------------------------- image folders


def _list_split(split_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names and ``(file path, label)`` pairs, both sorted by name.

    Plain strings and ``os.scandir``: with 60,000 files, ``Path`` objects made listing and
    sorting take most of a cached dataset's load time.
    """
    with os.scandir(split_dir) as entries:
        classes = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    files = []
    for label, cls in enumerate(classes):
        folder = os.path.join(split_dir, cls)
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)
        files.extend((os.path.join(folder, name), label) for name in names)
    return classes, files


def _fingerprint(files: list[tuple[str, int]]) -> str:
    h = hashlib.sha1()
    for f, label in files:
        st = os.stat(f)
        h.update(f"{f}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class BadImage(InterpError):
    """An image file that cannot be decoded (truncated, not an image, a decompression bomb, ...)."""


def _decode_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image, UnidentifiedImageError

    # SyntaxError: PIL's parsers raise it for some malformed headers; DecompressionBombError:
    # more than twice Image.MAX_IMAGE_PIXELS (a bomb), refused before decoding.
    return UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError


def _decode_one(path: str | Path, size: tuple[int, int] | None):
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != size:
                im = im.resize(size, Image.BILINEAR)
            return torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.size[1], im.size[0], 3)
    except _decode_errors() as e:
        raise BadImage(f"cannot decode image {path}: {type(e).__name__}: {e}") from None


def _decode_split(files, size, desc: str, progress: bool, skip_bad: bool) -> tuple[torch.Tensor, list[int]]:
    """The files decoded at ``size``, and the indices of those skipped (only with ``skip_bad``)."""
    from tqdm.auto import tqdm

    w, h = size
    out = torch.empty(len(files), h, w, 3, dtype=torch.uint8)
    bad: list[int] = []

    def decode(fl):
        try:
            return _decode_one(fl[0], size)
        except BadImage as e:
            if not skip_bad:
                raise BadImage(f"{e}. Remove or replace the file, or skip unreadable images with "
                               f"--skip-bad-images") from None
            return e

    workers = max(2, min(8, (os.cpu_count() or 2) * 2))
    with ThreadPoolExecutor(workers) as pool:
        # PIL releases the GIL while decoding, so threads overlap decodes.
        results = pool.map(decode, files, chunksize=64)
        for i, arr in enumerate(tqdm(results, total=len(files), desc=desc, unit="img",
                                     disable=not progress or None, leave=False)):
            if isinstance(arr, BadImage):
                bad.append(i)
                print(f"warning: skipped {arr}", file=sys.stderr)
            else:
                out[i] = arr
    keep = torch.ones(len(files), dtype=torch.bool)
    keep[bad] = False
    return out[keep].permute(0, 3, 1, 2).contiguous(), bad


def load_image_folder(path: str | os.PathLike, *, progress: bool = True, skip_bad: bool = False) -> ImageData:
    """Load ``path/train/<class>/*`` and ``path/test/<class>/*``, decoding once and caching.

    Every image is resized to the size of the first training image when sizes differ. An
    image that cannot be decoded stops the load with its name, or with ``skip_bad`` is
    left out with a warning. The decoded size of the whole folder is checked against the
    memory budget (:mod:`interp.budget`) before anything is decoded.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise InterpError(f"dataset folder {path} does not exist")
    missing = [s for s in ("train", "test") if not (path / s).is_dir()]
    if missing:
        raise InterpError(
            f"dataset folder {path} has no {' or '.join(m + '/' for m in missing)} subfolder; "
            f"expected train/<class>/*.jpg and test/<class>/*.jpg"
        )
    train_classes, train_files = _list_split(path / "train")
    test_classes, test_files = _list_split(path / "test")
    for split, files in (("train", train_files), ("test", test_files)):
        if not files:
            raise InterpError(f"dataset folder {path / split} has no images in class subfolders "
                              f"(expected {split}/<class>/*.jpg)")
    if test_classes != train_classes:
        raise InterpError(f"train/ and test/ of {path} have different class folders: "
                          f"{train_classes} vs {test_classes}")

    key = hashlib.sha1((str(path) + ("|skip-bad" if skip_bad else "")).encode()).hexdigest()[:12]
    fp = _fingerprint(train_files + test_files)
    cache_file = cache_dir() / f"imagefolder-{path.name}-{key}-{fp}.safetensors"
    t = _read_cache(cache_file)
    if t is not None:
        mean, std = tuple(t["mean"].tolist()), tuple(t["std"].tolist())
        return ImageData(str(path), t["train_x"], t["train_y"], t["test_x"], t["test_y"], train_classes, mean, std)

    from PIL import Image

    from ..budget import check_memory

    try:
        with Image.open(train_files[0][0]) as first:
            size = first.size
    except _decode_errors() as e:
        raise BadImage(f"cannot decode image {train_files[0][0]} (the first training image, which sets the "
                       f"folder's image size): {type(e).__name__}: {e}") from None
    n = len(train_files) + len(test_files)
    check_memory(2 * n * size[0] * size[1] * 3, f"decoding {n:,} images of {size[0]}x{size[1]} px "
                 f"(the size of {Path(train_files[0][0]).name}, the first training image)",
                 hint="Resize the folder's images first (the tutorial nets take 32x32)")
    if progress:
        print(f"Decoding {n} images from {path} once; cached in {cache_file.parent}", file=sys.stderr)
    tx, bad_train = _decode_split(train_files, size, "decode train", progress, skip_bad)
    vx, bad_test = _decode_split(test_files, size, "decode test", progress, skip_bad)
    skipped_train, skipped_test = set(bad_train), set(bad_test)
    ty = torch.tensor([label for i, (_, label) in enumerate(train_files) if i not in skipped_train],
                      dtype=torch.int64)
    vy = torch.tensor([label for i, (_, label) in enumerate(test_files) if i not in skipped_test],
                      dtype=torch.int64)
    if bad_train or bad_test:
        print(f"warning: {len(bad_train) + len(bad_test)} unreadable image(s) left out of {path}",
              file=sys.stderr)
        if not len(tx) or not len(vx):
            raise InterpError(f"no readable images left in {path / ('train' if not len(tx) else 'test')}")
    mean, std = channel_stats(tx)
    # The folder's files changed since an older entry was written (CIFAR-10's is 185 MB):
    # that entry can never be read again, so it goes once its replacement is in place.
    _write_cache(cache_file, {"train_x": tx, "train_y": ty, "test_x": vx, "test_y": vy,
                              "mean": torch.tensor(mean, dtype=torch.float64),
                              "std": torch.tensor(std, dtype=torch.float64)},
                 stale=f"imagefolder-{glob.escape(path.name)}-{key}-*.safetensors")
    return ImageData(str(path), tx, ty, vx, vy, train_classes, mean, std)
