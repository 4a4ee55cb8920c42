"""Atomic file writes: write to a temporary sibling, fsync, then rename into place.

An interrupted process therefore leaves either the old file or the new one, never a
half-written file. Folders are replaced the same way (:func:`atomic_dir`).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import glob
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InterpError


# Folders being built by atomic_dir, each with the folder it will become. Files written
# inside one need no fsync of their own: the folder only becomes visible after one
# os.sync() and a rename at the end, and hundreds of per-file fsyncs (a report has
# thousands of files) cost seconds.
_STAGING: contextvars.ContextVar[tuple[tuple[Path, Path], ...]] = contextvars.ContextVar("interp_staging", default=())


def _staging_root(path: Path) -> tuple[Path, Path] | None:
    resolved = path.resolve()
    return next(((root, final) for root, final in _STAGING.get() if root == resolved or root in resolved.parents),
                None)


def _in_staging(path: Path) -> bool:
    return _staging_root(path) is not None


def shown_path(path: str | os.PathLike) -> Path:
    """``path`` as the user will find it: inside a folder being built, the folder it becomes
    (``reports/tiny/.weights.123-ab.tmp/unit_0000.png`` -> ``reports/tiny/weights/unit_0000.png``)."""
    path = Path(path)
    staging = _staging_root(path)
    if staging is None:
        return path
    root, final = staging
    return shown_path(final / path.resolve().relative_to(root))


# ------------------------------------------------------------------ write errors as user errors

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def nearest_existing(path: str | os.PathLike) -> Path:
    """``path`` or its nearest ancestor that exists (the folder a new path would be made in)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def write_error(error: OSError, path: str | os.PathLike) -> InterpError | None:
    """The one-line user error for an ``OSError`` raised while writing ``path`` (None when the
    error is not about the disk: a full disk, a read-only file system or a denied write).

    >>> str(write_error(OSError(errno.ENOSPC, "No space left on device"), "reports/x.json"))
    'disk full: cannot write reports/x.json (No space left on device); free some space and run again'
    """
    shown = shown_path(path)
    reason = error.strerror or str(error)
    if error.errno in DISK_FULL:
        return InterpError(f"disk full: cannot write {shown} ({reason}); free some space and run again")
    if error.errno in NOT_WRITABLE:
        folder = nearest_existing(shown if error.errno == errno.EROFS else shown.parent)
        where = "is on a read-only file system" if error.errno == errno.EROFS else "is not writable"
        return InterpError(f"cannot write {shown}: {folder} {where} ({reason}); choose a folder you can write "
                           f"(for a command: --out DIR) or change its permissions")
    return None


def _named_file(error: OSError, path: Path) -> Path:
    """The file to name for ``error``: the one it names, unless that is a temporary of ours
    (``.NAME.PID-XXXX.tmp``, never seen by the user) or a folder above ``path``; then ``path``."""
    named = Path(error.filename) if error.filename else None
    if named is None or (named.name.startswith(".") and named.name.endswith(".tmp")) or _inside(path, named):
        return path  # a temporary, or a folder made on the way to path: name what the user asked for
    return named


def _inside(file: Path, folder: Path) -> bool:
    file, folder = Path(os.path.abspath(file)), Path(os.path.abspath(folder))
    return file == folder or folder in file.parents


@contextlib.contextmanager
def write_errors(path: str | os.PathLike, *, only_inside: Path | None = None) -> Iterator[None]:
    """Turn a full disk, a read-only file system or a denied write while writing ``path`` into
    :func:`write_error`'s :class:`InterpError` (the ``OSError`` stays its ``__cause__``, so
    ``--debug`` shows it); other errors pass unchanged.

    With ``only_inside``, a denied access counts only when it names a file in that folder:
    a folder build also reads (a run, a dataset), and an unreadable input is not a write error.

    >>> with write_errors("reports/x.json"):
    ...     raise OSError(errno.EROFS, "Read-only file system")
    Traceback (most recent call last):
    interp.errors.InterpError: cannot write reports/x.json: ... is on a read-only file system ...
    """
    path = Path(path)
    try:
        yield
    except OSError as e:
        denied = e.errno in NOT_WRITABLE and e.errno != errno.EROFS
        if denied and only_inside is not None and not (e.filename and _inside(Path(e.filename), only_inside)):
            raise
        translated = write_error(e, _named_file(e, path)) if e.errno in DISK_FULL | NOT_WRITABLE else None
        if translated is None:
            raise
        raise translated from e


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
    durable = not _in_staging(path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if durable:  # a staging folder is new: nothing stale in it, and globbing it per file is slow
            remove_stale_temporaries(path)
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    group = _GROUP.get()
    try:
        with write_errors(path):
            yield tmp
            if group is None or not durable:  # inside a staging folder: that folder appears whole anyway
                _commit(tmp, path, durable)
            else:
                group.append((tmp, path, durable))  # renamed when the whole group is written
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_GROUP: contextvars.ContextVar[list | None] = contextvars.ContextVar("interp_write_group", default=None)


@contextlib.contextmanager
def atomic_group() -> Iterator[None]:
    """Files written with :func:`atomic_path` inside the block appear together at its end, in
    the order written, or (when anything in the block fails: a full disk at the third file)
    none of them do, so a result of several files (npz, png, then its json) is never half new.

    >>> with atomic_group():
    ...     write_bytes("r.npz", data); write_json("r.json", index)
    """
    if _GROUP.get() is not None:  # nested: the outer group commits
        yield
        return
    pending: list = []
    token = _GROUP.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _GROUP.reset(token)
    for i, (tmp, path, durable) in enumerate(pending):
        try:
            with write_errors(path):
                _commit(tmp, path, durable)
        except BaseException:
            for later, _, _ in pending[i:]:
                later.unlink(missing_ok=True)
            raise


def _commit(tmp: Path, path: Path, durable: bool) -> None:
    """Give ``tmp`` its final permissions, flush it (unless inside a staging folder) and rename it onto ``path``."""
    os.chmod(tmp, 0o666 & ~_umask())
    if durable:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


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
        _write_file(tmp, data)


def _write_file(file: Path, data: bytes) -> None:
    # The one place bytes go to disk (tests make it fail as a full disk would).
    with open(file, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (deterministic bytes)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in rows))


def read_json_object(file: str | os.PathLike) -> dict | None:
    """The JSON object in ``file``, or None when it is missing, unreadable, not JSON or not an
    object: for code that looks at files which may be anything (a folder's contents, saved results)."""
    try:
        data = json.loads(Path(file).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
    folder under a ``.old`` name that the next call cleans up). A full disk or a folder
    that cannot be written is an :class:`InterpError` naming the path, with the previous
    folder untouched and no temporary left.
    """
    path = Path(path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        restore_interrupted_swap(path)
        remove_stale_temporaries(path)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    token = _STAGING.set(_STAGING.get() + ((tmp.resolve(), path),))
    try:
        # A denied access inside the build is a write error only when it is about the
        # staging folder: the build also reads (a run, a dataset) and those errors are theirs.
        with write_errors(path, only_inside=tmp):
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a report folder must be readable
            yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _STAGING.reset(token)
    with write_errors(path):
        _swap_in(tmp, path)


def _swap_in(tmp: Path, path: Path) -> None:
    """Replace ``path`` by the finished folder ``tmp``: two renames, the old copy removed after."""
    try:
        if not _in_staging(path):
            os.sync()  # everything written inside is on disk before the folder appears
        old = path.parent / f".{path.name}.old"
        if old.exists():  # restore_interrupted_swap put it back if it was the only copy; here it is stale
            shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        restore_interrupted_swap(path)
        raise
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


def finite_json(value: Any) -> Any:
    """``value`` with NaN and infinities as None, recursively (strict JSON: ``allow_nan=False``).

    >>> finite_json({"a": [1.0, float("nan")], "b": (float("inf"),)})
    {'a': [1.0, None], 'b': [None]}
    """
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_tensor_file(path: Path, unreadable: Callable[[str], str]) -> Any:
    """What a weights file holds: a safetensors file's tensors, or a torch file read with
    ``weights_only=True`` (plain tensors and containers only: nothing of a user's file is ever
    unpickled). A file torch cannot read that way raises ``InterpError(unreadable(exception name))``.

    >>> load_tensor_file(Path("w.pt"), lambda why: f"w.pt is not a weights file ({why})")
    """
    import torch

    if path.suffix == ".safetensors":
        return read_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle of arbitrary objects, a truncated file, not a torch file
        # torch's own message suggests weights_only=False, which we never do for a user's file
        raise InterpError(unreadable(type(e).__name__)) from None


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
