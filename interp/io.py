"""Atomic file writes: write to a temporary sibling, fsync, then rename into place.

An interrupted process therefore leaves either the old file or the new one, never a
half-written file. Folders are replaced the same way (:func:`atomic_dir`).
"""

from __future__ import annotations

import contextlib
import contextvars
import glob
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import InterpError


# Folders being built by atomic_dir. Files written inside one need no fsync of their
# own: the folder only becomes visible after one os.sync() and a rename at the end,
# and hundreds of per-file fsyncs (a report has thousands of files) cost seconds.
_STAGING: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("interp_staging", default=())


def _in_staging(path: Path) -> bool:
    resolved = path.resolve()
    return any(root == resolved or root in resolved.parents for root in _STAGING.get())


def _umask() -> int:
    # os.umask can only be read by setting it; set it back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed onto ``path``.

    >>> with atomic_path("out.bin") as tmp:
    ...     tmp.write_bytes(b"data")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _in_staging(path):  # a staging folder is new: nothing stale in it, and globbing it per file is slow
        remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    durable = not _in_staging(path)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temp_prefix(path: Path) -> str:
    # The writer's pid is in the name, so a later writer can tell a killed writer's leftovers
    # (its process is gone) from a live writer's work in progress.
    return f".{path.name}.{os.getpid()}-"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (someone else's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files and staging folders that killed writers left beside ``path``.

    A temporary is ``.NAME.PID-XXXX.tmp``; it is stale when process PID no longer exists.
    Returns what was removed.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    prefix = f".{path.name}."
    for leftover in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid_text = leftover.name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or process_alive(int(pid_text)):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def restore_interrupted_swap(path: str | os.PathLike) -> bool:
    """Put ``.NAME.old`` back as ``NAME`` when a kill between :func:`atomic_dir`'s two renames
    left only the old copy; returns whether it did."""
    path = Path(path)
    old = path.parent / f".{path.name}.old"
    if not path.exists() and old.is_dir():
        os.replace(old, path)
        return True
    return False


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (deterministic bytes)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in rows))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_saved_folder(directory: str | os.PathLike, what: str, make: str, again: str) -> tuple[dict, dict]:
    """``(index, tensors)`` of an analysis folder: ``index.json`` and the safetensors file it
    names under ``"data"``. A missing or damaged folder is a user error that says ``what``
    it should hold and how to ``make`` it, or to make it ``again``.

    >>> index, tensors = read_saved_folder("reports/run/examples/conv2", "dataset examples",
    ...     "compute them with: interp examples --layer LAYER", "compute them again")
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    file = directory / "index.json"
    if not file.exists():
        raise InterpError(f"no {what} in {directory} (index.json missing); {make}")
    try:
        index = json.loads(file.read_text())
        return index, load_file(str(directory / index["data"]))
    except Exception as e:  # JSON or safetensors damage
        raise InterpError(f"{what} in {directory} are corrupt ({e}); {again}") from None


def _json_default(obj: Any) -> Any:
    # numpy and torch scalars/arrays show up in metrics; store them as plain numbers.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Save a dict of tensors as safetensors, atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` as a whole.

    The previous folder stays intact until the new one is complete; the swap is two
    renames, so an interruption leaves the old folder (or, between the renames, the old
    folder under a ``.old`` name that the next call cleans up).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    restore_interrupted_swap(path)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a report folder must be readable
    token = _STAGING.set(_STAGING.get() + (tmp.resolve(),))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _STAGING.reset(token)
    if not _in_staging(path):
        os.sync()  # everything written inside is on disk before the folder appears
    old = path.parent / f".{path.name}.old"
    if old.exists():  # restore_interrupted_swap put it back if it was the only copy; here it is stale
        shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(path.parent)


# ------------------------------------------------------------------------------ encoders


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` floats in [0, 1] -> ``(H, W, 3)`` uint8."""
    import torch

    return image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu()


def encode_png(pixels: torch.Tensor) -> bytes:
    """``(H, W, 3)`` or ``(H, W)`` uint8 -> PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    # compress_level=1: five times faster than the default, and reports hold thousands
    Image.fromarray(pixels.contiguous().numpy()).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_png(path: str | os.PathLike) -> torch.Tensor:
    """A PNG file -> ``(3, H, W)`` floats in [0, 1]."""
    import torch
    from PIL import Image

    with Image.open(path) as im:
        data = torch.frombuffer(bytearray(im.convert("RGB").tobytes()), dtype=torch.uint8)
        return data.view(im.size[1], im.size[0], 3).permute(2, 0, 1).float() / 255


def npz_bytes(arrays: dict) -> bytes:
    """Arrays -> the bytes of a compressed ``.npz`` file."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def jsonable(obj: Any) -> Any:
    """``obj`` with tensors and arrays as lists and other odd values as strings: plain JSON."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def read_safetensors(file: str | os.PathLike, device: Any = "cpu", *, again: str = "get the file again") -> dict:
    """The tensors of a safetensors file, naming the file in any error (never unpickles)."""
    from safetensors.torch import load_file

    file = Path(file)
    if not file.is_file():
        raise InterpError(f"{file} does not exist or is not a file")
    try:
        return load_file(str(file), device=str(device))
    except Exception as e:  # safetensors raises its own error types for truncation/corruption
        raise InterpError(f"{file} is truncated or corrupt ({e}); {again}") from None
