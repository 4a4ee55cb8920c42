"""Weight snapshots taken during training: ``checkpoints/step-000123.safetensors`` in a run folder.

``interp train ... --checkpoints log`` keeps about 30 snapshots, log-spaced in optimiser steps
(dense early, where most of the change happens, sparse late), each the model's weights after
that many steps (step 0 is the initialisation). They are what ``interp dynamics`` analyses.

>>> snapshot_steps("log:8", total_steps=1000)
[0, 1, 3, 7, 19, 52, 139, 373, 1000]
>>> [s.step for s in list_snapshots(run.path)][:3]
[0, 1, 2]

Each file is written atomically, so a killed training leaves complete snapshots only; a
resumed run redoes its last epoch and writes that epoch's snapshots again, identical on CPU.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InterpError

if TYPE_CHECKING:
    import torch

SNAPSHOT_DIR = "checkpoints"
DEFAULT_COUNT = 30
MAX_COUNT = 500
"""At most this many snapshots per run: a bounded folder whatever the schedule asks."""
SCHEDULE_HELP = "log (about 30, log-spaced: more early), linear, N (N log-spaced), log:N or linear:N; none: off"
_FILE = re.compile(r"^step-(\d{6,})\.safetensors$")


def parse_schedule(text: str | None) -> tuple[str, int] | None:
    """``"log"`` -> ``("log", 30)``, ``"linear:12"`` -> ``("linear", 12)``, ``"40"`` -> ``("log", 40)``;
    ``""``/``"none"`` -> None.

    >>> parse_schedule("linear:12")
    ('linear', 12)
    """
    text = (text or "").strip().lower()
    if text in ("", "none", "off", "0"):
        return None
    kind, _, count = text.partition(":")
    if kind.isdigit() and not count:
        kind, count = "log", kind
    if kind not in ("log", "linear") or (count and not count.isdigit()):
        raise InterpError(f"--checkpoints {text!r}: expected {SCHEDULE_HELP}")
    n = int(count) if count else DEFAULT_COUNT
    if not 2 <= n <= MAX_COUNT:
        raise InterpError(f"--checkpoints {text!r}: the count must be between 2 and {MAX_COUNT}, got {n}")
    return kind, n


def snapshot_steps(schedule: str | None, total_steps: int) -> list[int]:
    """The optimiser steps (0 to ``total_steps``, both included) after which a snapshot is kept.

    ``log:N``: 0 and N points geometrically spaced from 1 to the last step (rounded; a short
    run gets fewer distinct steps); ``linear:N``: N + 1 evenly spaced points.
    """
    parsed = parse_schedule(schedule)
    if parsed is None or total_steps < 1:
        return []
    kind, n = parsed
    if kind == "linear":
        points = {round(total_steps * i / n) for i in range(n + 1)}
    else:
        points = {0} | {round(math.exp(math.log(total_steps) * i / (n - 1))) for i in range(n)}
    return sorted(points)


@dataclass(frozen=True)
class Snapshot:
    """One saved snapshot: its file and the optimiser step it was taken after."""

    step: int
    path: Path

    @property
    def epoch(self) -> float | None:
        """Fractional epoch recorded in the file (None for a file without it)."""
        value = self.metadata().get("epoch")
        return float(value) if value is not None else None

    def metadata(self) -> dict[str, str]:
        from safetensors import safe_open

        with safe_open(str(self.path), "pt") as f:
            return dict(f.metadata() or {})


def snapshot_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / SNAPSHOT_DIR / f"step-{step:06d}.safetensors"


def save_snapshot(run_dir: Path, model: torch.nn.Module, step: int, *, epoch: float, seconds: float) -> Path:
    """Write the model's weights after ``step`` optimiser steps (atomically; replaces a snapshot of the same step)."""
    from .io import save_tensors

    path = snapshot_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    # clone: tied weights share one storage, which safetensors refuses
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_tensors(path, weights, metadata={"step": str(step), "epoch": f"{epoch:.6f}", "seconds": f"{seconds:.3f}"})
    return path


def list_snapshots(run_dir: Path) -> list[Snapshot]:
    """The run's snapshots, by step (temporary files of an interrupted write are not listed)."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    if not folder.is_dir():
        return []
    found = [Snapshot(int(m.group(1)), p) for p in folder.iterdir() if (m := _FILE.match(p.name)) and p.is_file()]
    return sorted(found, key=lambda s: s.step)


def load_snapshot(run, step: int | Snapshot, *, device: str | torch.device = "cpu"):
    """A copy of ``run`` (an :class:`interp.runs.Run`) whose model holds the weights of one snapshot.

    >>> early = load_snapshot(run, 0)   # the initialisation
    """
    import copy
    from dataclasses import replace

    from .runs import check_weights, load_weights

    snap = step if isinstance(step, Snapshot) else next((s for s in list_snapshots(run.path) if s.step == step), None)
    if snap is None:
        steps = [s.step for s in list_snapshots(run.path)]
        raise InterpError(f"run {run.name} has no snapshot at step {step}"
                          + (f"; it has {len(steps)} ({steps[0]}..{steps[-1]})" if steps else
                             "; train with --checkpoints log to keep snapshots"))
    model = copy.deepcopy(run.model)
    weights = load_weights(snap.path, device)
    check_weights(model, weights, snap.path)
    model.load_state_dict(weights)
    model.to(device).eval()
    return replace(run, model=model, state={**run.state, "snapshot_step": snap.step})
