"""Saving :class:`~interp.analysis.dynamics.series.Dynamics`: ``reports/RUN/dynamics/`` (or a sibling keyed by
its settings), with the Induction Heads paper's figure drawn at save time.

::

    dynamics/index.json        kind "dynamics": steps, every series with CI, null and phase change
    dynamics/data.safetensors  head scores (checkpoints, L, H) and unit selectivity (checkpoints, units)
    dynamics/dynamics.png      the metrics against steps, each phase change shaded
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..analysis.dynamics.phase import PhaseChange
from ..analysis.dynamics.series import Dynamics, MetricSeries
from ..errors import InterpError
from ..io import atomic_dir, finite_json, jsonable, read_saved_folder, save_tensors, write_json
from ..outputs import result_folder
from ..plots import DPI, pyplot, save_figure
from .store import register

FILES = {"data": "data.safetensors", "figure": "dynamics.png"}
PLOTTED = {"transformer": ["loss", "icl", "induction", "prev_token", "k_composition"],
           "cnn": ["accuracy", "loss"]}


def describe_dynamics(result: Dynamics) -> dict:
    """What ``interp dynamics --json`` prints and ``index.json`` holds."""
    return finite_json(jsonable({
        "run": result.run, "model_kind": result.kind, "steps": result.steps, "epochs": result.epochs,
        "seconds": result.seconds, "elapsed": result.elapsed, "coincide": result.coincide,
        "series": {name: {"title": s.title, "direction": s.direction, "values": s.values,
                          "ci": [list(c) for c in s.ci] if s.ci else None, "null": s.null,
                          "phase": s.phase.to_dict()} for name, s in result.series.items()},
        "claims": result.claims, "seeds": result.seeds, "seed_summary": result.seed_summary,
        "settings": result.settings}))


def plot_dynamics(result: Dynamics):
    """One panel per metric against training steps (log axis), the 95% band, the null and the phase change shaded."""
    names = [n for n in PLOTTED[result.kind] if n in result.series]
    names += [n for n in result.series if n not in names and n.startswith("selectivity")]
    fig, axes = pyplot().subplots(max(len(names), 1), 1, figsize=(6.4, 1.7 * max(len(names), 1)), dpi=DPI,
                                  layout="tight", sharex=True, squeeze=False)
    axes = list(axes[:, 0])
    x = [s + 1 for s in result.steps]  # step 0 (the init) on a log axis
    for ax, name in zip(axes, names):
        s = result.series[name]
        if s.ci:
            ax.fill_between(x, [c[0] for c in s.ci], [c[1] for c in s.ci], color="tab:blue", alpha=0.2, lw=0)
        ax.plot(x, s.values, "-o", ms=2.5, color="tab:blue")
        if s.null:
            ax.axhspan(min(s.null), max(s.null), color="0.8", alpha=0.7, lw=0, label="re-initialised models")
        p = s.phase
        if p.status == "phase change" and p.interval:
            ax.axvspan(p.interval[0] + 1, p.interval[1] + 1, color="tab:orange", alpha=0.3, lw=0,
                       label=f"phase change (step {p.step})")
        ax.set_ylabel(name.replace("_", " "), fontsize=8)
        ax.set_title(f"{s.title}: {p.status}", fontsize=8, loc="left")
        ax.legend(frameon=False, fontsize=6, loc="best")
    axes[-1].set_xscale("log")
    axes[-1].set_xlabel("optimiser steps + 1")
    return fig


def dynamics_folder(result: Dynamics, directory: str | os.PathLike) -> Path:
    return result_folder(directory, "dynamics", result.settings)


def save_dynamics(result: Dynamics, directory: str | os.PathLike) -> Path:
    """Write the result under ``directory`` (a sibling folder when one of other settings is there)."""
    folder = dynamics_folder(result, directory)
    with atomic_dir(folder) as tmp:
        tensors = {f"heads.{k}": v for k, v in result.heads.items()}
        tensors.update({f"units.{k}": v for k, v in result.units.items()})
        save_tensors(tmp / FILES["data"], tensors or {"empty": torch.zeros(0)})
        save_figure(plot_dynamics(result), tmp / FILES["figure"])
        write_json(tmp / "index.json", {"kind": "dynamics", "layer": "dynamics", **describe_dynamics(result),
                                        "files": FILES, "data": FILES["data"]})
    return folder


def _nan(v):
    return float("nan") if v is None else v


def load_dynamics(directory: str | os.PathLike) -> Dynamics:
    """Read a folder written by :func:`save_dynamics`."""
    directory = Path(directory)
    directory = directory.parent if directory.name == "index.json" else directory
    index, tensors = read_saved_folder(directory, "dynamics", "compute it with: interp dynamics --run RUN",
                                       "run interp dynamics again")
    try:
        series = {}
        for name, d in index["series"].items():
            p = dict(d["phase"])
            for key in ("share", "steady_share", "jump", "peak"):
                p[key] = _nan(p.get(key))
            for key in ("interval", "step_ci", "share_ci", "jump_ci", "peak_ci"):
                p[key] = tuple(_nan(v) for v in p[key]) if p.get(key) is not None else None
            series[name] = MetricSeries(name, d["title"], d["direction"], [_nan(v) for v in d["values"]],
                                        [tuple(c) for c in d["ci"]] if d["ci"] else None, d["null"],
                                        PhaseChange(**p))
        return Dynamics(run=index["run"], kind=index["model_kind"], steps=index["steps"], epochs=index["epochs"],
                        seconds=index["seconds"], series=series,
                        heads={k[6:]: v for k, v in tensors.items() if k.startswith("heads.")},
                        units={k[6:]: v for k, v in tensors.items() if k.startswith("units.")},
                        claims=index.get("claims", []), seeds=index.get("seeds", []),
                        seed_summary=index.get("seed_summary", {}), coincide=index.get("coincide", {}),
                        settings=index.get("settings", {}), elapsed=index.get("elapsed") or 0.0)
    except (KeyError, TypeError, ValueError) as e:
        raise InterpError(f"the dynamics in {directory} are incomplete or corrupt ({e}); run interp dynamics "
                          f"again") from None


register("dynamics", Dynamics, save=save_dynamics, load=load_dynamics, describe=describe_dynamics)
