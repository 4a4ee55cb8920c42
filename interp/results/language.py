"""Saving, loading and describing the language results of :mod:`interp.analysis.language`.

Every result is one JSON file with its figure beside it, in the run's
``reports/RUN/transformer/`` folder (the layout the report reads):

- ``sample``: :class:`~interp.analysis.language.tokens.TextSample`, ``sample.json``;
- ``attention``: :class:`~interp.analysis.language.heads.AttentionPatterns`, ``attention.json``;
- ``head-scores``: :class:`~interp.analysis.language.heads.HeadScores`, ``heads.json``;
- ``training-dynamics``: :class:`~interp.analysis.language.heads.TrainingDynamics`, ``dynamics.json``;
- ``position-loss``: :class:`~interp.analysis.language.position.PositionLoss`, ``position_loss.json``;
- ``lens``: :class:`~interp.analysis.language.lens.LogitLens`, ``lens.json``;
- ``direct-logit-attribution``: :class:`~interp.analysis.language.lens.DirectLogitAttribution`, ``dla.json``;
- ``circuit-scores``: :class:`~interp.analysis.language.circuits.CircuitScores`, ``circuits.json``;
- ``ablation``: :class:`~interp.analysis.language.patching.AblationResult`, ``ablation_zero.json`` or
  ``ablation_mean.json``;

each but the sample with its figure beside it (``heads.png``; :mod:`interp.results.language_figures`).

Each file carries ``"kind"`` (so :func:`interp.results.load` reads it) and the
``"settings"`` it was computed with. The plain name always holds the latest result; a
result of other settings already there is moved aside to ``STEM-<settings hash>.json``
(and ``.png``), never overwritten.

>>> path = interp.results.save(head_scores(run), run.report_dir() / "transformer")   # .../heads.json
>>> interp.results.load(path).induction
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from ..analysis.language.circuits import CircuitScores
from ..analysis.language.heads import AttentionPatterns, HeadScores, TrainingDynamics
from ..analysis.language.lens import DirectLogitAttribution, LogitLens
from ..analysis.language.patching import AblationResult
from ..analysis.language.position import PositionLoss
from ..analysis.language.tokens import TextSample
from ..errors import InterpError
from ..io import write_json
from ..plots import save_figure
from . import language_figures as figures
from .store import register, settings_hash

FOLDER = "transformer"
"""The folder of a run's report (``reports/RUN/transformer``) that holds these results."""


def _floats(t: torch.Tensor) -> list:
    return t.detach().cpu().float().tolist()


def _without_nan(obj):
    """NaN (a head that was not ablated) as ``None``: strict JSON for ``--json``."""
    if isinstance(obj, dict):
        return {k: _without_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_without_nan(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


# ------------------------------------------------------------------ files


def _read(path: str | os.PathLike, stem: str, what: str, make: str) -> dict:
    """The JSON of a saved result: ``path`` is its file, or the folder holding ``STEM.json``."""
    path = Path(path)
    file = path / f"{stem}.json" if path.is_dir() else path
    if not file.is_file():
        raise InterpError(f"no saved {what} at {file}; compute it with: {make}")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InterpError(f"{file} is corrupt (not valid JSON: {e}); compute it again with: {make}") from None


def _set_aside(folder: Path, stem: str, settings: dict) -> None:
    """Move an existing ``STEM.json`` (and ``.png``) of other settings to ``STEM-<its settings hash>``."""
    file = folder / f"{stem}.json"
    if not file.is_file():
        return
    try:
        old = json.loads(file.read_text()).get("settings", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        old = {"unreadable": True}
    if old == settings:
        return  # the same settings: the new result replaces it
    key = settings_hash(old)
    for suffix in (".png", ".json"):  # the JSON last: it is what says a result is there
        src = folder / f"{stem}{suffix}"
        if src.is_file():
            os.replace(src, folder / f"{stem}-{key}{suffix}")


def _write(folder: str | os.PathLike, stem: str, kind: str, body: dict, figure=None) -> Path:
    """``STEM.json`` (+ ``STEM.png`` of ``figure``) under ``folder``, atomically, setting aside other settings."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    body = {"kind": kind, "settings": {}, **body}
    _set_aside(folder, stem, body["settings"])
    if figure is not None:
        save_figure(figure, folder / f"{stem}.png")
    write_json(folder / f"{stem}.json", body)
    return folder / f"{stem}.json"


def figure_path(json_path: str | os.PathLike) -> Path | None:
    """The PNG saved beside a result's JSON file, if there is one."""
    png = Path(json_path).with_suffix(".png")
    return png if png.is_file() else None


# ----------------------------------------------------------------- sample


def _sample_json(result: TextSample) -> dict:
    return {"run": result.run, "text": result.text, "prompt": result.prompt, "n_tokens": result.n_tokens,
            "temperature": result.temperature, "seed": result.seed, "settings": result.settings}


def save_sample(result: TextSample, folder: str | os.PathLike) -> Path:
    """``sample.json`` under ``folder``."""
    return _write(folder, "sample", "sample", _sample_json(result))


def load_sample(path: str | os.PathLike) -> TextSample:
    d = _read(path, "sample", "text sample", "interp report")
    return TextSample(d["text"], d["prompt"], d["n_tokens"], d["temperature"], d["seed"], d.get("run", ""),
                      d.get("settings", {}))


# -------------------------------------------------------------- attention


def _attention_json(result: AttentionPatterns) -> dict:
    return {"run": result.run, "tokens": result.tokens, "patterns": _floats(result.patterns),
            "settings": result.settings}


def save_attention(result: AttentionPatterns, folder: str | os.PathLike, *, layers: list[int] | None = None,
                   heads: list[int] | None = None) -> Path:
    """``attention.json`` + ``attention.png`` (only ``layers`` x ``heads`` drawn when given) under ``folder``."""
    body = _attention_json(result)
    shown = {k: v for k, v in (("layers", layers), ("heads", heads)) if v is not None}
    body["settings"] = {**result.settings, **shown}  # the figure differs, so they are settings too
    return _write(folder, "attention", "attention", body, figures.plot_attention(result, layers=layers, heads=heads))


def load_attention(path: str | os.PathLike) -> AttentionPatterns:
    d = _read(path, "attention", "attention patterns", "interp attention --run RUN")
    return AttentionPatterns(d["tokens"], torch.tensor(d["patterns"]), d.get("run", ""), d.get("settings", {}))


def _describe_attention(result: AttentionPatterns) -> dict:
    return {**_attention_json(result), "shape": list(result.patterns.shape)}


# ------------------------------------------------------------ head scores


def _head_scores_json(result: HeadScores) -> dict:
    return {"run": result.run, "n_sequences": result.n_sequences, "seq_len": result.seq_len,
            "scores": {k: _floats(v) for k, v in result.scores.items()}, "lengths": list(result.lengths),
            "by_length": {str(b): {k: _floats(v) for k, v in s.items()} for b, s in result.by_length.items()},
            "settings": result.settings}


def save_head_scores(result: HeadScores, folder: str | os.PathLike) -> Path:
    """``heads.json`` + ``heads.png`` under ``folder``."""
    return _write(folder, "heads", "head-scores", _head_scores_json(result), figures.plot_head_scores(result))


def load_head_scores(path: str | os.PathLike) -> HeadScores:
    d = _read(path, "heads", "head scores", "interp heads --run RUN")
    by_length = {int(b): {k: torch.tensor(v) for k, v in s.items()} for b, s in d.get("by_length", {}).items()}
    return HeadScores({k: torch.tensor(v) for k, v in d["scores"].items()}, d["n_sequences"], d["seq_len"],
                      d.get("run", ""), tuple(d.get("lengths", ())), by_length, d.get("settings", {}))


def _describe_head_scores(result: HeadScores) -> dict:
    return {**_head_scores_json(result), "rows": result.rows()}


# ------------------------------------------------------ training dynamics


def _dynamics_json(result: TrainingDynamics) -> dict:
    return {"run": result.run, "epochs": result.epochs, "steps": result.steps, "seconds": result.seconds,
            "val_loss": result.val_loss, "scores": {k: _floats(v) for k, v in result.scores.items()}}


def save_training_dynamics(result: TrainingDynamics, folder: str | os.PathLike) -> Path:
    """``dynamics.json`` + ``dynamics.png`` under ``folder``."""
    return _write(folder, "dynamics", "training-dynamics", _dynamics_json(result),
                  figures.plot_training_dynamics(result))


def load_training_dynamics(path: str | os.PathLike) -> TrainingDynamics:
    d = _read(path, "dynamics", "training dynamics", "interp heads --run RUN")
    return TrainingDynamics(d["epochs"], d["steps"], d["seconds"], d["val_loss"],
                            {k: torch.tensor(v) for k, v in d["scores"].items()}, d.get("run", ""))


# ---------------------------------------------------------- position loss


def _position_json(result: PositionLoss) -> dict:
    return {"run": result.run, "data": result.data, "loss": _floats(result.loss), "icl_score": result.icl_score,
            "early": list(result.early), "late": list(result.late), "settings": result.settings}


def save_position_loss(result: PositionLoss, folder: str | os.PathLike) -> Path:
    """``position_loss.json`` + ``position_loss.png`` under ``folder``."""
    return _write(folder, "position_loss", "position-loss", _position_json(result),
                  figures.plot_position_loss(result))


def load_position_loss(path: str | os.PathLike) -> PositionLoss:
    d = _read(path, "position_loss", "loss by position", "interp heads --run RUN")
    return PositionLoss(torch.tensor(d["loss"]), d["icl_score"], tuple(d["early"]), tuple(d["late"]),
                        d.get("data", ""), d.get("run", ""), d.get("settings", {}))


# ------------------------------------------------------------------- lens


def _lens_json(result: LogitLens) -> dict:
    return {"run": result.run, "tokens": result.tokens, "layers": result.layers, "top_tokens": result.top_tokens,
            "top_probs": _floats(result.top_probs), "target_prob": _floats(result.target_prob),
            "target_rank": result.target_rank.tolist(), "settings": result.settings}


def save_logit_lens(result: LogitLens, folder: str | os.PathLike) -> Path:
    """``lens.json`` + ``lens.png`` under ``folder``."""
    return _write(folder, "lens", "lens", _lens_json(result), figures.plot_logit_lens(result))


def load_logit_lens(path: str | os.PathLike) -> LogitLens:
    d = _read(path, "lens", "logit lens", "interp lens --run RUN")
    return LogitLens(d["tokens"], d["layers"], d["top_tokens"], torch.tensor(d["top_probs"]),
                     torch.tensor(d["target_prob"]), torch.tensor(d["target_rank"]), d.get("run", ""),
                     d.get("settings", {}))


def _dla_json(result: DirectLogitAttribution) -> dict:
    return {"run": result.run, "tokens": result.tokens, "targets": result.targets, "heads": result.heads,
            "attribution": _floats(result.attribution), "settings": result.settings}


def save_direct_logit_attribution(result: DirectLogitAttribution, folder: str | os.PathLike) -> Path:
    """``dla.json`` + ``dla.png`` under ``folder``."""
    return _write(folder, "dla", "direct-logit-attribution", _dla_json(result),
                  figures.plot_direct_logit_attribution(result))


def load_direct_logit_attribution(path: str | os.PathLike) -> DirectLogitAttribution:
    d = _read(path, "dla", "direct logit attribution", "interp lens --run RUN")
    return DirectLogitAttribution(d["tokens"], d["targets"], d["heads"], torch.tensor(d["attribution"]),
                                  d.get("run", ""), d.get("settings", {}))


def _describe_dla(result: DirectLogitAttribution) -> dict:
    by_head = result.by_head()
    return {**_dla_json(result), "by_head": {h: float(v) for h, v in zip(result.heads, by_head)}}


# --------------------------------------------------------------- circuits


def _circuits_json(result: CircuitScores) -> dict:
    return {"run": result.run, "heads": result.heads, "copying": _floats(result.copying),
            "composition": {k: _floats(v) for k, v in result.composition.items()}, "baseline": result.baseline,
            "settings": result.settings}


def save_circuit_scores(result: CircuitScores, folder: str | os.PathLike) -> Path:
    """``circuits.json`` + ``circuits.png`` under ``folder``."""
    return _write(folder, "circuits", "circuit-scores", _circuits_json(result), figures.plot_circuit_scores(result))


def load_circuit_scores(path: str | os.PathLike) -> CircuitScores:
    d = _read(path, "circuits", "circuit scores", "interp composition --run RUN")
    return CircuitScores(d["heads"], torch.tensor(d["copying"]),
                         {k: torch.tensor(v) for k, v in d["composition"].items()}, d["baseline"],
                         d.get("run", ""), d.get("settings", {}))


def _describe_circuits(result: CircuitScores) -> dict:
    strongest = {mode: [list(pair) for pair in result.strongest(mode)] for mode in result.composition} \
        if result.copying.shape[0] > 1 else {}
    return {**_circuits_json(result), "strongest": strongest}


# --------------------------------------------------------------- ablation


def _ablation_json(result: AblationResult) -> dict:
    # "ablation", not "kind": the file's "kind" names the result type for the store.
    return {"run": result.run, "ablation": result.kind, "base_loss": result.base_loss,
            "n_sequences": result.n_sequences, "ablated": _floats(result.ablated), "settings": result.settings}


def save_ablation(result: AblationResult, folder: str | os.PathLike) -> Path:
    """``ablation_zero.json`` or ``ablation_mean.json`` (+ ``.png``) under ``folder``."""
    return _write(folder, f"ablation_{result.kind}", "ablation", _ablation_json(result),
                  figures.plot_ablation(result))


def load_ablation(path: str | os.PathLike, kind: str = "zero") -> AblationResult:
    """A saved ablation: its file, or the folder and the ablation ``kind`` (zero or mean)."""
    d = _read(path, f"ablation_{kind}", f"{kind}-ablation", f"interp ablate --run RUN --kind {kind}")
    method = d.get("ablation", d.get("kind"))  # files written before the store said "kind": "zero"
    return AblationResult(method, d["base_loss"], torch.tensor(d["ablated"]), d["n_sequences"], d.get("run", ""),
                          d.get("settings", {}))


def _describe_ablation(result: AblationResult) -> dict:
    return _without_nan({**_ablation_json(result), "rows": result.rows()})


register("sample", TextSample, save=save_sample, load=load_sample, describe=_sample_json)
register("attention", AttentionPatterns, save=save_attention, load=load_attention, describe=_describe_attention)
register("head-scores", HeadScores, save=save_head_scores, load=load_head_scores, describe=_describe_head_scores)
register("training-dynamics", TrainingDynamics, save=save_training_dynamics, load=load_training_dynamics,
         describe=_dynamics_json)
register("position-loss", PositionLoss, save=save_position_loss, load=load_position_loss, describe=_position_json)
register("lens", LogitLens, save=save_logit_lens, load=load_logit_lens, describe=_lens_json)
register("direct-logit-attribution", DirectLogitAttribution, save=save_direct_logit_attribution,
         load=load_direct_logit_attribution, describe=_describe_dla)
register("circuit-scores", CircuitScores, save=save_circuit_scores, load=load_circuit_scores,
         describe=_describe_circuits)
register("ablation", AblationResult, save=save_ablation, load=load_ablation, describe=_describe_ablation)
