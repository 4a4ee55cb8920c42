"""Saved circuits (:class:`~interp.analysis.causal.circuit.CircuitResult`): kind ``circuit``.

One folder per result, by default ``reports/RUN/circuits/METHOD-METRIC/`` (the folder the
report reads), replaced as a whole by a rerun with the same settings; a result of other
settings goes beside it (``METHOD-METRIC-HASH``, :func:`interp.outputs.result_folder`):

- ``index.json``: ``"kind": "circuit"``, the settings, the graph's layers and nodes, the
  kept circuit's edges with their scores, the faithfulness curve (top-k, its CI, every
  random draw) and where the other files are;
- ``scores.safetensors``: every edge's score (float64), in the order of ``edges.json``;
- ``faithfulness.png``: the curve of the top-k circuits against the random band (mean,
  5-95% of the random draws shaded), the 0.8 threshold and the minimal circuit.

>>> folder = save_circuit(find_circuit(run))          # reports/tiny/circuits/eap-class-logit
>>> interp.results.load(folder).at()["faithfulness"]
0.86
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..analysis.causal.circuit import CircuitResult
from ..analysis.causal.discovery import FaithfulnessCurve
from ..analysis.causal.graph import Edge, EdgeScores
from ..errors import InterpError
from ..io import atomic_dir, finite_json, jsonable, read_saved_folder, save_tensors, write_json
from ..outputs import result_folder
from ..plots import new_figure, save_figure
from .store import register

FOLDER = "circuits"
"""The folder of a run's report (``reports/RUN/circuits``) that holds these results."""
FILES = {"data": "scores.safetensors", "edges": "edges.json", "figure": "faithfulness.png"}


def circuits_dir(run_name: str, root: Path | None = None) -> Path:
    """``reports/RUN/circuits``."""
    from ..runs import reports_dir

    if not run_name:
        raise InterpError("a circuit of a bare model has no run name; give the folder to save it in")
    return (Path(root) if root is not None else reports_dir()) / run_name / FOLDER


def graph_key(result: CircuitResult) -> str:
    """What ``index.json`` says the result is of (``conv1,conv2,fc1``): folders are keyed by it
    and the settings (:func:`interp.outputs.result_folder`)."""
    return ",".join(result.layers)


def circuit_folder(result: CircuitResult, directory: str | os.PathLike | None = None) -> Path:
    """Where :func:`save_circuit` writes: ``directory`` (default ``reports/RUN/circuits/METHOD-METRIC``),
    or a sibling ``-HASH`` when a result of other settings is there already."""
    wanted = Path(directory) if directory is not None else \
        circuits_dir(result.run) / f"{result.method}-{result.metric}"
    return result_folder(wanted, graph_key(result), result.settings)


def _number(value) -> float:
    return float("nan") if value is None else float(value)


# ----------------------------------------------------------------------------- JSON


def _curve_json(curve: FaithfulnessCurve) -> dict:
    return {"sizes": curve.sizes, "faithfulness": curve.faithfulness, "ci": [list(c) for c in curve.ci],
            "random": curve.random, "random_mean": curve.random_mean, "random_high": curve.random_high,
            "full_metric": curve.full_metric, "empty_metric": curve.empty_metric, "n_edges": curve.n_edges,
            "n_examples": curve.n_examples, "method": curve.method, "metric": curve.metric,
            "threshold": curve.threshold, "minimal_size": curve.minimal_size,
            "minimal_edges": [str(e) for e in curve.minimal_edges], "settings": jsonable(curve.settings)}


def _curve(d: dict) -> FaithfulnessCurve:
    return FaithfulnessCurve(
        sizes=list(d["sizes"]), faithfulness=[_number(v) for v in d["faithfulness"]],
        ci=[(_number(a), _number(b)) for a, b in d["ci"]], random=[[_number(v) for v in r] for r in d["random"]],
        full_metric=d["full_metric"], empty_metric=d["empty_metric"], n_edges=d["n_edges"],
        n_examples=d["n_examples"], method=d["method"], metric=d["metric"], threshold=d["threshold"],
        minimal_size=d["minimal_size"], minimal_edges=[Edge.parse(e) for e in d["minimal_edges"]],
        settings=d.get("settings", {}))


def _summary(result: CircuitResult) -> dict:
    """The fields ``index.json`` and ``--json`` share (no per-edge scores of the whole graph)."""
    at = result.at()
    return {"run": result.run, "model_kind": result.model_kind, "method": result.method, "metric": result.metric,
            "layers": result.layers, "nodes": result.nodes, "n_edges": result.n_edges, "size": result.size,
            "at": {**at, "ci": list(at["ci"])}, "beats_random": result.beats_random(),
            "circuit": result.edge_rows(), "seconds": result.seconds, "scoring_seconds": result.scores.seconds,
            "curve": _curve_json(result.curve), "settings": jsonable(result.settings)}


def describe_circuit(result: CircuitResult) -> dict:
    """What ``interp circuit --json`` prints: the summary, the kept circuit's edges and the curve."""
    return finite_json(_summary(result))


# ----------------------------------------------------------------------------- figure


def plot_faithfulness(result: CircuitResult):
    """Faithfulness of the top-k circuits (with their CI) against random circuits of each size."""
    curve = result.curve
    fig, ax = new_figure(6.4, 3.6)
    sizes = curve.sizes
    low = [float(torch.tensor(r).quantile(0.05)) if r else float("nan") for r in curve.random]
    ax.fill_between(sizes, low, curve.random_high, color="0.82", label="random circuits (5-95%)")
    ax.plot(sizes, curve.random_mean, "--", color="0.45", lw=1, label="random circuits (mean)")
    ax.fill_between(sizes, [c[0] for c in curve.ci], [c[1] for c in curve.ci], color="tab:red", alpha=0.2, lw=0)
    ax.plot(sizes, curve.faithfulness, "-o", color="tab:red", ms=3, label=f"top-k by {result.method} (95% CI)")
    ax.axhline(curve.threshold, color="k", lw=0.8, ls=":", label=f"threshold {curve.threshold:g}")
    if curve.minimal_size is not None:
        ax.axvline(curve.minimal_size, color="tab:red", lw=0.8, ls=":",
                   label=f"minimal circuit: {curve.minimal_size} edges")
    if result.size != curve.minimal_size:
        ax.axvline(result.size, color="tab:blue", lw=0.8, ls="--", label=f"kept: {result.size} edges")
    if len(sizes) > 1 and sizes[-1] / sizes[0] > 20:
        ax.set_xscale("log")
    ax.set_xlabel(f"edges kept (of {curve.n_edges}; the rest mean-ablated)")
    ax.set_ylabel("faithfulness")
    ax.set_title(f"{result.metric}: (m(C) - m(empty)) / (m(full) - m(empty)), {curve.n_examples} examples",
                 fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="best")
    return fig


# ----------------------------------------------------------------------------- save and load


def save_circuit(result: CircuitResult, directory: str | os.PathLike | None = None) -> Path:
    """Write the result's folder (:func:`circuit_folder` decides where); returns the folder."""
    folder = circuit_folder(result, directory)
    with atomic_dir(folder) as tmp:
        save_tensors(tmp / FILES["data"], {"scores": result.scores.scores.to(torch.float64)})
        write_json(tmp / FILES["edges"], [[e.source, e.target] for e in result.scores.edges])
        save_figure(plot_faithfulness(result), tmp / FILES["figure"])
        write_json(tmp / "index.json", {
            "kind": "circuit", "layer": graph_key(result), **describe_circuit(result), "files": FILES,
            "data": FILES["data"], "scores": {"method": result.scores.method, "metric": result.scores.metric,
                                              "seconds": finite_json(result.scores.seconds),
                                              "settings": jsonable(result.scores.settings)}})
    return folder


def load_circuit(directory: str | os.PathLike) -> CircuitResult:
    """Read a folder written by :func:`save_circuit` (or its ``index.json``)."""
    directory = Path(directory)
    directory = directory.parent if directory.name == "index.json" else directory
    make = "find one with: interp circuit --run RUN"
    index, tensors = read_saved_folder(directory, "circuit", make, "run interp circuit again")
    try:
        edges = [Edge(s, t) for s, t in json.loads((directory / index["files"]["edges"]).read_text())]
        meta = index["scores"]
        scores = EdgeScores(edges, tensors["scores"], meta["method"], meta["metric"], _number(meta["seconds"]),
                            meta.get("settings", {}))
        return CircuitResult(run=index["run"], model_kind=index["model_kind"], layers=index["layers"],
                             nodes=index["nodes"], scores=scores, curve=_curve(index["curve"]), size=index["size"],
                             edges=[Edge(r["source"], r["target"]) for r in index["circuit"]],
                             seconds=_number(index["seconds"]), settings=index.get("settings", {}))
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise InterpError(f"the circuit in {directory} is incomplete or corrupt ({e}); run interp circuit "
                          f"again") from None


def saved_circuits(root: str | os.PathLike) -> list[tuple[Path, dict]]:
    """``(folder, index)`` of every circuit saved under ``root/circuits``, by folder name
    (unreadable folders left out: the report shows what it can read)."""
    base = Path(root) / FOLDER
    found = []
    for folder in sorted(p for p in base.glob("*") if p.is_dir() and not p.name.startswith(".")):
        try:
            index = json.loads((folder / "index.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(index, dict) and index.get("kind") == "circuit":
            found.append((folder, index))
    return found


register("circuit", CircuitResult, save=save_circuit, load=load_circuit, describe=describe_circuit)
