"""Saved sparse autoencoders (kind ``sae``) and their metrics (kind ``sae-metrics``).

An SAE is a run-like folder, by default ``reports/RUN/sae/LAYER-KEY/`` (``KEY``: ``topk16``,
``l1-0.001``...), replaced as a whole by a rerun with the same settings; one of other
settings goes beside it (``LAYER-KEY-HASH``, :func:`interp.outputs.result_folder`):

- ``sae.safetensors``: ``W_enc``, ``b_enc``, ``W_dec``, ``b_dec``, ``scale``;
- ``index.json``: ``"kind": "sae"``, the run, layer, source, the module's config, the
  settings that determined it and the training curve;
- ``training.png``: FVE, L0 and dead features against the activations seen.

Metrics live in the SAE's folder, one JSON per setting (``metrics-HASH.json``,
``"kind": "sae-metrics"``) with a bar chart ``metrics-HASH.png`` (sae vs random vs neurons).

>>> folder = save_sae(train_sae(run, "conv2"))        # reports/tiny/sae/conv2-topk8
>>> interp.results.load(folder).sae.width
128
>>> save_sae_metrics(sae_metrics(trained, run))       # reports/tiny/sae/conv2-topk8/metrics-1a2b3c4d.json
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..analysis.dictionary.metrics import SAEMetrics
from ..analysis.dictionary.sae import SparseAutoencoder, TrainedSAE
from ..errors import InterpError
from ..io import atomic_dir, finite_json, jsonable, read_saved_folder, save_tensors, write_json
from ..outputs import result_folder
from ..plots import new_figure, save_figure
from .store import register, settings_hash

FOLDER = "sae"
FILES = {"data": "sae.safetensors", "figure": "training.png"}
COLOURS = {"sae": "tab:red", "random": "0.6", "neurons": "tab:blue"}


def sae_dir(run_name: str, root: Path | None = None) -> Path:
    """``reports/RUN/sae``."""
    from ..runs import reports_dir

    if not run_name:
        raise InterpError("an SAE of a bare model has no run name; give the folder to save it in")
    return (Path(root) if root is not None else reports_dir()) / run_name / FOLDER


def sae_key(settings: dict) -> str:
    """The readable part of a folder name: ``topk16`` or ``l1-0.001``.

    >>> sae_key({"kind": "topk", "k": 16})
    'topk16'
    """
    if settings.get("kind") == "relu":
        return f"l1-{settings.get('l1'):g}"
    return f"topk{settings.get('k')}"


def sae_folder(run: str, layer: str, settings: dict, directory: str | os.PathLike | None = None) -> Path:
    """Where an SAE of these settings is (or goes): ``directory`` or ``reports/RUN/sae/LAYER-KEY``,
    or a sibling ``-HASH`` when an SAE of other settings is there."""
    wanted = Path(directory) if directory is not None else sae_dir(run) / f"{layer}-{sae_key(settings)}"
    return result_folder(wanted, layer, settings)


def describe_sae(trained: TrainedSAE) -> dict:
    return finite_json({"run": trained.run, "layer": trained.layer, "source": trained.source,
                    "config": trained.sae.config(), "settings": jsonable(trained.settings),
                    "curve": jsonable(trained.curve)})


def plot_training(trained: TrainedSAE):
    """FVE, L0 and dead features against the activations seen."""
    fig, ax = new_figure(6.4, 3.2)
    seen = [r["activations_seen"] for r in trained.curve]
    ax.plot(seen, [r["fve"] for r in trained.curve], color="tab:red", label="FVE (batch)")
    ax.set_ylim(min([0.0] + [r["fve"] for r in trained.curve]), 1.0)
    ax.set_xlabel("activations seen")
    ax.set_ylabel("fraction of variance explained")
    right = ax.twinx()
    right.plot(seen, [r["l0"] for r in trained.curve], color="tab:blue", lw=1, label="L0")
    right.plot(seen, [r["dead"] for r in trained.curve], color="0.4", lw=1, ls="--", label="dead features")
    right.set_ylabel("L0 / dead features")
    lines = ax.get_lines() + right.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], frameon=False, fontsize=7, loc="lower right")
    ax.set_title(f"{trained.run} {trained.layer}: {trained.sae.kind} SAE, width {trained.sae.width}", fontsize=9)
    return fig


def save_sae(trained: TrainedSAE, directory: str | os.PathLike | None = None) -> Path:
    """Write the SAE's folder (see the module docstring); metrics saved in it earlier are kept."""
    folder = sae_folder(trained.run, trained.layer, trained.settings, directory)
    sae = trained.sae
    with atomic_dir(folder) as tmp:
        save_tensors(tmp / FILES["data"], {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec,
                                           "b_dec": sae.b_dec, "scale": sae.scale.reshape(1)})
        if trained.curve:
            save_figure(plot_training(trained), tmp / FILES["figure"])
        if folder.is_dir():  # the same settings again: the same SAE, so its metrics stay valid
            for old in [*folder.glob("metrics-*.json"), *folder.glob("metrics-*.png")]:
                shutil.copy2(old, tmp / old.name)
        write_json(tmp / "index.json", {"kind": "sae", **describe_sae(trained), "files": FILES,
                                        "data": FILES["data"]})
    return folder


def load_sae(directory: str | os.PathLike) -> TrainedSAE:
    """Read a folder written by :func:`save_sae` (or its ``index.json``)."""
    directory = Path(directory)
    directory = directory.parent if directory.name == "index.json" else directory
    index, tensors = read_saved_folder(directory, "SAE", "train one with: interp sae train --run RUN --layer LAYER",
                                       "train it again")
    try:
        sae = SparseAutoencoder.from_config(index["config"])
        state = {k: tensors[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
        state["scale"] = tensors["scale"].reshape(())
        sae.load_state_dict(state)
        for p in sae.parameters():
            p.requires_grad_(False)
        return TrainedSAE(sae.eval(), index["run"], index["layer"], index.get("settings", {}),
                          list(index.get("curve", [])), index.get("source", "transformer"))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise InterpError(f"the SAE in {directory} is incomplete or corrupt ({e}); train it again") from None


def saved_saes(root: str | os.PathLike) -> list[tuple[Path, dict]]:
    """``(folder, index)`` of every SAE under ``root/sae`` (``root``: a run's report folder)."""
    found = []
    for folder in sorted(p for p in (Path(root) / FOLDER).glob("*") if p.is_dir() and not p.name.startswith(".")):
        try:
            index = json.loads((folder / "index.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(index, dict) and index.get("kind") == "sae":
            found.append((folder, index))
    return found


# ----------------------------------------------------------------------------- metrics


def describe_metrics(metrics: SAEMetrics) -> dict:
    return finite_json(jsonable(metrics.to_dict()))


def plot_metrics(metrics: SAEMetrics):
    """Bars of FVE, loss recovered and the interpretability proxy (95% CIs), and L0, per method."""
    import numpy as np

    fig, ax = new_figure(6.4, 3.2)
    panels = [("fve", "FVE"), ("loss_recovered", "loss recovered"), ("interp_proxy", "same " +
              ("token" if metrics.source == "transformer" else "class"))]
    x = np.arange(len(panels))
    width = 0.8 / len(metrics.rows)
    for i, row in enumerate(metrics.rows):
        values = [row.get(key) for key, _ in panels]
        values = [float("nan") if v is None else float(v) for v in values]
        errors = [[0.0] * len(panels), [0.0] * len(panels)]
        for j, (key, _) in enumerate(panels):
            ci = row.get(f"{key}_ci")
            if ci and None not in ci:
                errors[0][j], errors[1][j] = max(0.0, values[j] - ci[0]), max(0.0, ci[1] - values[j])
        ax.bar(x + (i - (len(metrics.rows) - 1) / 2) * width, values, width, yerr=errors, capsize=2,
               color=COLOURS.get(row["method"], "0.3"),
               label=f"{row['method']} ({row['features']} features, L0 {row['l0']:.1f})")
    ax.set_xticks(x, [label for _, label in panels])
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylim(min(0.0, *[r.get("loss_recovered") or 0.0 for r in metrics.rows]), 1.05)
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    ax.set_title(f"{metrics.run} {metrics.layer}: {metrics.settings.get('activations', 0):,} test activations, "
                 f"{metrics.ablation}-ablation baseline", fontsize=9)
    return fig


def metrics_file(metrics: SAEMetrics, path: str | os.PathLike | None = None) -> Path:
    """``PATH.json`` as given, else ``FOLDER/metrics-HASH.json`` (FOLDER: the SAE's, by default)."""
    if path is not None and str(path).endswith(".json"):
        return Path(path)
    folder = Path(path) if path is not None else sae_folder(metrics.run, metrics.layer, metrics.sae_settings)
    return folder / f"metrics-{settings_hash(jsonable(metrics.settings))}.json"


def save_sae_metrics(metrics: SAEMetrics, path: str | os.PathLike | None = None) -> Path:
    """Write the metrics JSON and its bar chart (same name, ``.png``); returns the JSON file."""
    file = metrics_file(metrics, path)
    figure = file.with_suffix(".png")
    save_figure(plot_metrics(metrics), figure)
    write_json(file, {"kind": "sae-metrics", **describe_metrics(metrics), "figure": figure.name})
    return file


def load_sae_metrics(file: str | os.PathLike) -> SAEMetrics:
    file = Path(file)
    try:
        d = json.loads(file.read_text())
        if d.get("kind") != "sae-metrics":
            raise ValueError(f"kind is {d.get('kind')!r}")
        rows = [{k: (float("nan") if v is None and k in ("interp_proxy", "interp_position") else v)
                 for k, v in r.items()} for r in d["rows"]]
        d["rows"] = rows
        return SAEMetrics.from_dict(d)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InterpError(f"the SAE metrics in {file} are unreadable ({e}); compute them again with: "
                          f"interp sae metrics --sae FOLDER") from None


def saved_metrics(folder: str | os.PathLike) -> list[tuple[Path, SAEMetrics]]:
    """Every metrics file in an SAE's folder, by name (unreadable ones left out)."""
    found = []
    for file in sorted(Path(folder).glob("metrics-*.json")):
        try:
            found.append((file, load_sae_metrics(file)))
        except InterpError:
            continue
    return found


register("sae", TrainedSAE, save=save_sae, load=load_sae, describe=describe_sae)
register("sae-metrics", SAEMetrics, save=save_sae_metrics, load=load_sae_metrics, describe=describe_metrics)
