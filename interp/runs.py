"""The run folder: everything about one trained model, loadable without unpickling.

::

    models/NAME/
      config.json          RunConfig: model, data (with preprocessing), training recipe
      model.safetensors    the latest good weights
      checkpoint.safetensors  weights + optimiser state for --resume (flat tensors + JSON metadata)
      metrics.jsonl        one line per epoch
      state.json           status (running / interrupted / failed / finished), epochs done
      summary.json         final test metrics, parameter count, timings, library versions

>>> run = load_run("models/tutorial")
>>> run.model(run.normalize(images))  # logits
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .config import RunConfig
from .errors import InterpError, close_matches
from .io import process_alive, read_jsonl, read_safetensors

if TYPE_CHECKING:  # torch is imported where it is used: `interp runs` only reads JSON files
    import torch

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def models_dir() -> Path:
    """Where runs live: ``$INTERP_MODELS_DIR`` or ``./models``."""
    return Path(os.environ.get("INTERP_MODELS_DIR", "models"))


def reports_dir() -> Path:
    """Where reports go: ``$INTERP_REPORTS_DIR`` or ``./reports``."""
    return Path(os.environ.get("INTERP_REPORTS_DIR", "reports"))


def check_run_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InterpError(f"bad run name {name!r}: use letters, digits, '.', '_' and '-' (e.g. tutorial-avg)")
    return name


def is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def list_run_dirs(root: Path | None = None) -> list[Path]:
    """Run folders under ``root``, most recently updated last."""
    root = Path(root) if root is not None else models_dir()
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_run_dir(p)]
    return sorted(runs, key=lambda p: (_mtime(p), p.name))


def _mtime(path: Path) -> float:
    for name in ("state.json", "config.json"):
        if (path / name).exists():
            return (path / name).stat().st_mtime
    return 0.0


def usable_as_default(path: Path) -> bool:
    """Whether a run may be the default ``--run``: it has weights and did not fail."""
    try:
        state = read_json(path / "state.json") or {}
    except InterpError:
        return False
    return (path / "model.safetensors").is_file() and state.get("status") != "failed"


def resolve_run_path(name_or_path: str | os.PathLike | None, root: Path | None = None) -> Path:
    """A run folder from a name (under ``models/``), a path, or ``None`` (the latest run with weights
    that did not fail: a half-made or failed training is never picked by default)."""
    root = Path(root) if root is not None else models_dir()
    if name_or_path is None:
        runs = list_run_dirs(root)
        if not runs:
            raise InterpError(f"no runs in {root}/ yet; train one with: interp train tutorial")
        usable = [p for p in runs if usable_as_default(p)]
        if not usable:
            raise InterpError(f"no run in {root}/ has weights from a training that did not fail "
                              f"({', '.join(p.name for p in runs[-5:])}); pass --run NAME, resume one with "
                              f"`interp train --resume NAME`, or train one with: interp train tutorial")
        return usable[-1]
    if len(str(name_or_path)) > 1024 or "\0" in str(name_or_path):
        raise InterpError(f"--run: {str(name_or_path)[:40]!r}... is not a run name or path (too long, or a NUL "
                          f"byte); give a name under {root}/ or a folder path")
    candidate = Path(name_or_path).expanduser()
    for path in (candidate, root / str(name_or_path)):
        try:
            is_dir = path.is_dir()
        except OSError as e:  # a component longer than the file system allows (ENAMETOOLONG)
            raise InterpError(f"--run {str(name_or_path)[:40]!r}...: not a usable path ({e.strerror})") from None
        if is_dir:
            if not (path / "config.json").exists():
                raise InterpError(f"run folder {path} has no config.json; it is not a run (or it is damaged)")
            return path
    names = [p.name for p in list_run_dirs(root)]
    message = f"no run called {str(name_or_path)!r} in {root}/"
    near = close_matches(str(name_or_path), names)
    if near:
        message += "; did you mean " + ", ".join(repr(n) for n in near) + "?"
    elif names:
        message += f"; runs there: {', '.join(names[-10:])}"
    else:
        message += "; train one with: interp train tutorial"
    raise InterpError(message)


def read_config(path: Path) -> RunConfig:
    file = path / "config.json"
    try:
        return RunConfig.from_dict(json.loads(file.read_text()))
    except FileNotFoundError:
        raise InterpError(f"{file} is missing; the run folder is incomplete") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InterpError(f"{file} is corrupt (not valid JSON: {e})") from None
    except (InterpError, TypeError, KeyError) as e:
        raise InterpError(f"{file} is not a valid run config: {e}") from None


def read_json(file: Path) -> Any:
    if not file.exists():
        return None
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InterpError(f"{file} is corrupt (not valid JSON: {e})") from None


def load_weights(file: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file, naming the file in any error (never unpickles)."""
    if not file.exists():
        raise InterpError(f"{file} is missing; the run has no saved weights (was training interrupted "
                          f"before the first epoch ended?)")
    return read_safetensors(file, device, again="retrain, or resume from its checkpoint")


@dataclass
class Run:
    """A trained model with its config, metrics and summary; see :func:`load_run`."""

    path: Path
    config: RunConfig
    model: torch.nn.Module
    state: dict = field(default_factory=dict)
    summary: dict | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def device(self) -> torch.device:
        import torch

        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def metrics(self) -> list[dict]:
        return read_jsonl(self.path / "metrics.jsonl")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.data.input_shape)

    @property
    def classes(self) -> list[str]:
        return list(self.config.data.classes)

    @property
    def tokenizer(self):
        """The Hugging Face tokenizer of an imported language model (``hf/`` in the run folder), else None."""
        return self.model.tokenizer if self.config.family == "hf" else None

    @cached_property
    def layers(self):
        """:class:`~interp.units.LayerInfo` for every analysable layer."""
        from .units import describe_layers

        return describe_layers(self.model, self.input_shape) if self.input_shape else []

    def layer(self, name: str):
        from .units import find_layer

        return find_layer(self.layers, name)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] images -> model input (the run's mean and std)."""
        from .data.images import normalize

        return normalize(x, self.config.data.mean, self.config.data.std)

    def load_data(self, *, progress: bool = True, split: str = "both"):
        """The run's dataset (for image runs an :class:`~interp.data.ImageData`).

        ``split="test"`` when only the test split is needed (faster for generated data).
        Normalisation always comes from the run's config, as in training.
        """
        from dataclasses import replace

        from .data.images import load_image_data

        dc = self.config.data
        if self.config.task != "image-classification":
            raise InterpError(f"run {self.name} is a {self.config.task} run; it has no image data")
        if "crop" in dc.options:  # an imported classifier: an evaluation folder in its own preprocessing
            from .data.evaluation import load_evaluation_folder

            if dc.name == "none":
                raise InterpError(f"run {self.name} was imported without a dataset; import it again with "
                                  f"--dataset FOLDER (a folder of <class>/*.jpg) and --overwrite")
            data = load_evaluation_folder(dc.name, classes=list(dc.classes), resize=int(dc.options["resize"]),
                                          crop=int(dc.options["crop"]), mean=tuple(dc.mean), std=tuple(dc.std),
                                          progress=progress, skip_bad=dc.skip_bad_images)
            return data.subset(0, dc.n_test)
        data = load_image_data(dc.name, n_train=dc.n_train, n_test=dc.n_test, progress=progress, split=split,
                               skip_bad=dc.skip_bad_images)
        return replace(data, mean=tuple(dc.mean), std=tuple(dc.std), classes=list(dc.classes))

    def report_dir(self, root: Path | None = None) -> Path:
        return (Path(root) if root is not None else reports_dir()) / self.name

    def __repr__(self) -> str:
        acc = (self.summary or {}).get("test_acc")
        acc_text = f", test_acc={acc:.3f}" if isinstance(acc, float) else ""
        return f"Run({self.name!r}, model={self.config.model!r}, data={self.config.data.name!r}{acc_text})"


def load_run(name_or_path: str | os.PathLike | None = None, *, device: str | torch.device = "cpu",
             root: Path | None = None, weights: str | os.PathLike | None = None, download: bool = False) -> Run:
    """Rebuild a run's model and metadata from its folder (latest run when ``None``).

    ``"inceptionv1"`` (when no run folder has that name) is pretrained InceptionV1, with
    ``weights`` (a path, or ``"random"``) or the torch hub cache, downloading only with
    ``download=True`` (see :mod:`interp.zoo.pretrained`).

    >>> run = load_run("tutorial")          # models/tutorial
    >>> run.layer("conv2").units
    16
    """
    from .device import resolve_device
    from .zoo import build_model

    from .zoo.pretrained import load_pretrained, pretrained_names

    folders = Path(root) if root is not None else models_dir()
    if str(name_or_path) in pretrained_names() and not folders.joinpath(str(name_or_path)).is_dir():
        built = load_pretrained(str(name_or_path), weights, download=download, device=device)
        return Run(models_dir() / str(name_or_path), built.config, built.model, state={"status": "pretrained"},
                   summary=built.summary)
    if weights is not None or download:
        raise InterpError(f"--weights and --download apply only to a pretrained model "
                          f"(--run {' or '.join(pretrained_names())})")
    path = resolve_run_path(name_or_path, root)
    config = read_config(path)
    device = resolve_device(device)
    model = build_model(config.model, config.model_config)
    weights = load_weights(path / "model.safetensors")
    check_weights(model, weights, path / "model.safetensors")
    model.load_state_dict(weights)
    model.to(device).eval()
    if config.family == "hf":
        model.folder = path / "hf"  # its architecture config and tokenizer
    return Run(path, config, model, state=read_json(path / "state.json") or {},
               summary=read_json(path / "summary.json"))


def check_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], file: Path) -> None:
    """Raise a clear error unless ``weights`` has exactly the model's keys with the model's shapes.

    The model is the one config.json builds, so a mismatch means the folder's files disagree
    (a config edited by hand, weights copied from another run); the message names the
    first bad key and both shapes.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    if missing or unexpected:
        parts = ([f"missing {len(missing)} tensor{'s' if len(missing) > 1 else ''} (first: {missing[0]})"]
                 if missing else []) + ([f"{len(unexpected)} the model does not have (first: {unexpected[0]})"]
                                        if unexpected else [])
        raise InterpError(f"{file} does not match the model that config.json describes: {'; '.join(parts)}. "
                          f"The folder's config and weights come from different models; retrain the run")
    for key, tensor in expected.items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise InterpError(f"{file} does not match the model that config.json describes: {key} has shape "
                              f"{tuple(weights[key].shape)} in the file but {tuple(tensor.shape)} in the model. "
                              f"The folder's config and weights come from different models; retrain the run")


def create_run(path: Path, config: RunConfig, model: torch.nn.Module, *, summary: dict,
               status: str = "imported", overwrite: bool = False, extra: Any = None) -> Path:
    """Write a complete run folder (config.json, model.safetensors, state.json, summary.json)
    for a model that was not trained here; the folder appears whole or not at all.

    An existing run of that name is replaced only with ``overwrite`` and never while another
    process writes it (its lock is held during the swap). ``extra(folder)`` writes more files
    into the staging folder (a Hugging Face model's tokenizer and config under ``hf/``).
    """
    from .io import atomic_dir, save_tensors, write_json

    path = Path(path)
    if path.exists() and not overwrite:
        raise InterpError(f"{path} already exists; choose another --name or pass --overwrite to replace it")
    if path.exists() and not path.is_dir():
        raise InterpError(f"{path} is a file, not a run folder; choose another --name")
    with (run_lock(path) if path.is_dir() else contextlib.nullcontext()), atomic_dir(path) as tmp:
        write_json(tmp / "config.json", config.to_dict())
        # clone: tied weights (an LM head sharing the embedding) are one storage, which safetensors refuses
        save_tensors(tmp / "model.safetensors", {k: v.detach().clone().contiguous()
                                                 for k, v in model.state_dict().items()})
        if extra is not None:
            extra(tmp)
        write_json(tmp / "state.json", {"status": status, "epoch": 0, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})
        write_json(tmp / "summary.json", summary)
    return path


def run_table(root: Path | None = None) -> list[dict]:
    """One row per run (name, model, dataset, status, accuracy, date), oldest first."""
    rows = []
    for path in list_run_dirs(root):
        try:
            config = read_config(path)
            state = read_json(path / "state.json") or {}
            summary = read_json(path / "summary.json") or {}
        except InterpError as e:
            rows.append({"name": path.name, "model": "?", "dataset": "?", "status": f"damaged: {e}",
                         "accuracy": None, "date": ""})
            continue
        rows.append({
            "name": path.name, "model": config.model, "dataset": config.data.name,
            "status": state.get("status", "?"), "epochs": f"{state.get('epoch', 0)}/{config.train.epochs}",
            "accuracy": summary.get("test_acc"), "val_loss": summary.get("val_loss"),
            "date": state.get("updated", ""),
        })
    return rows


# --------------------------------------------------------------------------- the writer's lock

LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: Path, *, log: Any = None) -> Iterator[Path]:
    """Hold ``run_dir``'s writer lock (``.lock``: pid, host, start time) inside the block.

    A second writer (a training of the same name, ``--overwrite`` or ``--resume`` of a
    live run) gets a clear error naming the holder. A lock left by a process of this
    host that no longer exists is stale: it is taken over, and ``log`` says so.

    >>> with run_lock(Path("models/tutorial")):
    ...     ...   # train, write checkpoints
    """
    import socket

    lock = Path(run_dir) / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
                pid, host = int(holder["pid"]), str(holder["host"])
            except (OSError, ValueError, KeyError, TypeError):
                holder, pid, host = {}, -1, "?"
            if attempt == 0 and (pid == -1 or (host == me["host"] and not process_alive(pid))):
                if log:
                    log(f"removing a stale lock of {Path(run_dir).name} (process {pid} on {host} is gone)")
                lock.unlink(missing_ok=True)
                continue
            raise InterpError(f"run {Path(run_dir).name!r} is being written by process {pid} on {host} "
                              f"(since {holder.get('started', '?')}); wait for it to finish or stop it. If no "
                              f"such process is running, delete {lock}") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
