"""One training core for every model family.

>>> run = interp.train("tutorial", "shapes", epochs=2, name="tiny")
>>> run.summary["test_acc"]

The loop is the same for every task (:mod:`interp.training.tasks`): per-epoch batches drawn from
a generator seeded by (seed, epoch), a per-step learning-rate schedule that is a pure
function of the step, a NaN/inf check on every loss, and an atomic checkpoint (weights
plus optimiser state, as safetensors) after every epoch. Because nothing else carries
state across epochs, ``resume`` reproduces an uninterrupted run exactly on CPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import shutil
import sys
import time
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import DataConfig, RunConfig, TrainConfig, apply_overrides, recipe as make_recipe, to_dict
from ..device import PRECISIONS, resolve_device, resolve_precision
from ..errors import InterpError, unknown
from ..io import read_jsonl, save_tensors, write_json, write_jsonl
from ..runs import (LOCK_FILE, Run, check_run_name, check_weights, load_run, load_weights, models_dir, read_config,
                    read_json, run_lock)
from ..snapshots import parse_schedule, save_snapshot, snapshot_steps
from ..threads import adapt as adapt_threads
from ..zoo import build_model, count_parameters, get_spec

OPTIMIZERS = ("adamw", "adam", "sgd")
# Filled from the data or chosen by other options: not for --set.
NOT_SETTABLE = {"input_shape", "classes", "mean", "std", "vocab", "recipe", "num_classes", "in_channels",
                "input_size"}
SCHEDULES = ("onecycle", "cosine", "constant", "linear")


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the run keeps its last epoch checkpoint and can resume."""


# ----------------------------------------------------------------------------- config


def make_config(model: str = "tutorial", dataset: str | None = None, *, recipe: str | None = None,
                epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
                seed: int | None = None, overrides: dict[str, str] | None = None) -> RunConfig:
    """A validated :class:`RunConfig` for a registered model.

    ``overrides`` are ``--set`` strings: ``model.X``, ``train.X``, ``data.X``, or a bare
    ``X`` looked up in the model config, then the training config, then the data config.

    >>> make_config("tutorial", overrides={"pooling": "avg"}).model_config["pooling"]
    'avg'
    """
    spec = get_spec(model)
    if not spec.trainable:
        raise InterpError(f"{model} models are imported, not trained here: interp import {model}:ARCH --name NAME "
                          f"--weights FILE (see: interp import --help)")
    model_cfg = spec.default_config()
    train_cfg = make_recipe(recipe or spec.recipe)  # None: the model's own recipe (word2vec: sparse SGD)
    data = DataConfig(name=dataset or spec.default_dataset)
    buckets: dict[str, dict[str, str]] = {"model": {}, "train": {}, "data": {}}
    settable = {section: [f.name for f in fields(obj) if f.name not in NOT_SETTABLE]
                for section, obj in (("model", model_cfg), ("train", train_cfg), ("data", data))}
    for key, value in (overrides or {}).items():
        section, _, field_name = key.rpartition(".")
        if section and section not in buckets:
            raise InterpError(f"--set {key}: the prefix must be model., train. or data.")
        if not section:
            section = next((s for s, names in settable.items() if field_name in names), "")
        if not section or field_name not in settable[section]:
            valid = settable[section] if section else sorted({n for names in settable.values() for n in names})
            raise unknown("--set key", field_name, valid)
        buckets[section][field_name] = value
    model_cfg = apply_overrides(model_cfg, buckets["model"], label=f"{model} model setting")
    train_cfg = apply_overrides(train_cfg, buckets["train"], label="training setting")
    data = apply_overrides(data, buckets["data"], label="data setting")
    explicit = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed).items() if v is not None}
    train_cfg = replace(train_cfg, **explicit)
    _check_train(train_cfg)
    # Build once so a bad combination (e.g. a kernel too large for the input) fails now.
    build_model(model, model_cfg)
    return RunConfig(model=spec.name, family=spec.family, task=spec.task,
                     model_config=to_dict(model_cfg), data=data, train=train_cfg)


def _check_train(cfg: TrainConfig) -> None:
    for key in ("epochs", "batch_size", "lr"):
        value = getattr(cfg, key)
        if value <= 0:
            raise InterpError(f"{key.replace('_', '-')} must be > 0, got {value}")
    if cfg.optimizer not in OPTIMIZERS:
        raise unknown("optimizer", cfg.optimizer, OPTIMIZERS)
    if cfg.schedule not in SCHEDULES:
        raise unknown("schedule", cfg.schedule, SCHEDULES)
    if cfg.precision not in PRECISIONS:
        raise unknown("precision", cfg.precision, PRECISIONS)
    parse_schedule(cfg.checkpoints)


# --------------------------------------------------------------------------- helpers


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Learning rate at optimiser step ``step`` of ``total`` (a pure function: resumable)."""
    if cfg.schedule == "constant" or total <= 1:
        return cfg.lr
    progress = step / total
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "linear":  # word2vec's: straight down to lr/250 (0.025 -> 0.0001)
        return cfg.lr * (1 - (1 - 0.004) * progress)
    # onecycle: linear warm-up over the first 15% from lr/10, then linear decay to lr/100.
    warm = 0.15
    if progress < warm:
        return cfg.lr * (0.1 + 0.9 * progress / warm)
    return cfg.lr * (1 - (1 - 0.01) * (progress - warm) / (1 - warm))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and norm parameters (1-D tensors), as usual.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("interp", "torch", "torchvision", "captum", "torch-lucent", "transformer-lens", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------- checkpoints


def save_checkpoint(run_dir: Path, model, optimizer, epoch: int, elapsed: float) -> None:
    """Weights and optimiser state in one safetensors file (flat tensors + JSON metadata)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    extras = {}
    for idx, state in opt_state["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                extras[f"{idx}.{key}"] = value
    meta = {"epoch": str(epoch), "elapsed": repr(elapsed), "param_groups": json.dumps(opt_state["param_groups"]),
            "optim_extras": json.dumps(extras)}
    # model.safetensors first: a crash between the two renames leaves the checkpoint one epoch
    # older than the weights, so --resume redoes that epoch and rewrites both; the other order
    # could give a "finished" run whose weights are older than its summary.
    save_tensors(run_dir / "model.safetensors", dict(model.state_dict()), metadata={"epoch": str(epoch)})
    save_tensors(run_dir / "checkpoint.safetensors", tensors, metadata=meta)


def load_checkpoint(run_dir: Path, model, optimizer, device) -> tuple[int, float]:
    """Restore weights and optimiser state; returns (epochs done, seconds trained)."""
    from safetensors import safe_open

    file = run_dir / "checkpoint.safetensors"
    tensors = load_weights(file, device)
    with safe_open(str(file), "pt") as f:
        meta = f.metadata() or {}
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    check_weights(model, weights, file)
    model.load_state_dict(weights)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            idx, name = key[6:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for key, value in json.loads(meta.get("optim_extras", "{}")).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["epoch"]), float(meta.get("elapsed", "0"))


def _write_state(run_dir: Path, status: str, epoch: int, **extra: Any) -> None:
    previous = read_json(run_dir / "state.json") or {}
    write_json(run_dir / "state.json", {**previous, "status": status, "epoch": epoch, "updated": _now(), **extra})


# ------------------------------------------------------------------------ the loop


def _unique_name(base: str, root: Path) -> str:
    name, i = base, 2
    while (root / name).exists():
        name, i = f"{base}-{i}", i + 1
    return name


def train(model: str = "tutorial", dataset: str | None = None, *, name: str | None = None,
          device: str = "auto", progress: bool = True, root: Path | None = None, overwrite: bool = False,
          recipe: str | None = None, epochs: int | None = None, batch_size: int | None = None,
          lr: float | None = None, seed: int | None = None, overrides: dict[str, str] | None = None,
          log: Callable[[str], None] | None = print) -> Run:
    """Train a registered model and save it as a run folder; returns the loaded :class:`Run`.

    >>> run = train("tutorial", "shapes", epochs=2, name="tutorial-shapes")
    """
    config = make_config(model, dataset, recipe=recipe, epochs=epochs, batch_size=batch_size, lr=lr,
                         seed=seed, overrides=overrides)
    return train_config(config, name=name, device=device, progress=progress, root=root,
                        overwrite=overwrite, log=log)


def train_config(config: RunConfig, *, name: str | None = None, device: str = "auto", progress: bool = True,
                 root: Path | None = None, overwrite: bool = False,
                 log: Callable[[str], None] | None = print) -> Run:
    """Train from a full :class:`RunConfig` (see :func:`make_config`)."""
    from .tasks import make_task

    root = Path(root) if root is not None else models_dir()
    name = check_run_name(name) if name else _unique_name(config.model, root)
    run_dir = root / name
    with contextlib.ExitStack() as stack:
        if run_dir.exists():
            if not (run_dir / LOCK_FILE).exists() and not overwrite:
                raise InterpError(f"run {name!r} already exists in {root}/; continue it with "
                                  f"`interp train --resume {name}`, pick another --name, or pass --overwrite")
            stack.enter_context(run_lock(run_dir, log=log))  # a live writer -> a clear error
            if not overwrite:
                raise InterpError(f"run {name!r} already exists in {root}/; continue it with "
                                  f"`interp train --resume {name}`, pick another --name, or pass --overwrite")
        dev = resolve_device(device)
        task = make_task(config.task, dev, progress=progress)
        config = task.prepare(config)  # loads data before the folder changes: a bad dataset leaves it as it was
        if run_dir.exists():
            _clear_run_folder(run_dir)
        else:
            try:
                run_dir.mkdir(parents=True)
            except FileExistsError:
                raise InterpError(f"run {name!r} was just created by another process; pick another --name") from None
            stack.enter_context(run_lock(run_dir, log=log))
        write_json(run_dir / "config.json", config.to_dict())
        _write_state(run_dir, "running", 0, created=_now(), device=str(dev))
        try:
            torch.manual_seed(config.train.seed)
            model = build_model(config.model, config.model_config).to(dev)
            optimizer = make_optimizer(model, config.train)
        except Exception:
            _write_state(run_dir, "failed", 0)
            raise
        return _fit(run_dir, config, task, model, optimizer, 0, 0.0, dev, progress, log)


def _clear_run_folder(run_dir: Path) -> None:
    """Empty a run folder for --overwrite, keeping the lock this process holds on it."""
    for child in run_dir.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def resume(name: str, *, device: str = "auto", progress: bool = True, root: Path | None = None,
           log: Callable[[str], None] | None = print) -> Run:
    """Continue an interrupted run from its last checkpoint.

    >>> run = resume("tutorial")  # after Ctrl-C in `interp train tutorial`
    """
    from ..runs import resolve_run_path

    run_dir = resolve_run_path(name, root)
    config = read_config(run_dir)
    state = read_json(run_dir / "state.json") or {}
    if state.get("status") == "finished":
        raise InterpError(f"run {run_dir.name!r} is finished ({state.get('epoch')}/{config.train.epochs} epochs); "
                          f"nothing to resume. Train a new run with --name, e.g. --name {run_dir.name}-more")
    with run_lock(run_dir, log=log):  # resuming a run that is still training -> a clear error
        return _resume_locked(run_dir, config, device, progress, log)


def _resume_locked(run_dir: Path, config: RunConfig, device: str, progress: bool, log) -> Run:
    from .tasks import make_task

    dev = resolve_device(device)
    task = make_task(config.task, dev, progress=progress)
    task.prepare(config)
    model = build_model(config.model, config.model_config).to(dev)
    optimizer = make_optimizer(model, config.train)
    if (run_dir / "checkpoint.safetensors").exists():
        start, elapsed = load_checkpoint(run_dir, model, optimizer, dev)
    else:  # interrupted during the first epoch: start over from the seeded init
        torch.manual_seed(config.train.seed)
        model = build_model(config.model, config.model_config).to(dev)
        optimizer = make_optimizer(model, config.train)
        start, elapsed = 0, 0.0
    if log:
        log(f"Resuming {run_dir.name} from epoch {start}/{config.train.epochs}")
    return _fit(run_dir, config, task, model, optimizer, start, elapsed, dev, progress, log)


def _fit(run_dir: Path, config: RunConfig, task, model, optimizer, start_epoch: int, elapsed: float,
         device: torch.device, progress: bool, log) -> Run:
    from tqdm.auto import tqdm

    cfg = config.train
    steps_per_epoch = task.steps_per_epoch()
    total_steps = steps_per_epoch * cfg.epochs
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("epoch", 0) <= start_epoch]
    write_jsonl(run_dir / "metrics.jsonl", rows)
    unit = getattr(task, "unit", "ex")
    updates_weights = getattr(task, "updates_weights", False)
    epoch = start_epoch
    stopped_early = None
    final: dict[str, Any] | None = None
    reuse_last = getattr(task, "final_extends_evaluation", False)
    # Snapshots for `interp dynamics`: the weights after these optimiser steps (0: the init).
    snapshot_at = set(snapshot_steps(cfg.checkpoints, total_steps))
    if start_epoch == 0 and 0 in snapshot_at:
        save_snapshot(run_dir, model, 0, epoch=0.0, seconds=0.0)
    steps_done = start_epoch * steps_per_epoch
    _write_state(run_dir, "running", start_epoch)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            torch.manual_seed(_epoch_seed(cfg.seed, epoch))  # dropout and any torch.rand in the model
            generator = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
            model.train()
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = 0
            # disable=None: tqdm draws only on a terminal, so logs and CI output stay readable.
            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step",
                       disable=not progress or None, leave=False, dynamic_ncols=True)
            for step, batch in enumerate(task.train_batches(epoch, generator)):
                adapt_threads()  # follows the cores other processes leave free (interp.threads)
                lr = lr_at(epoch * steps_per_epoch + step, total_steps, cfg)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                if updates_weights:  # the task applies its own (sparse) update with this lr
                    loss, stats = task.train_step(model, batch, lr)
                else:
                    loss, stats = task.loss(model, batch)
                if not torch.isfinite(loss):
                    raise InterpError(
                        f"training diverged: the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}. "
                        f"The last good checkpoint (epoch {epoch}) is kept in {run_dir}. Try a lower --lr "
                        f"(now {cfg.lr}) or --set grad_clip=1.0"
                    )
                if not updates_weights:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                steps_done = epoch * steps_per_epoch + step + 1
                if steps_done in snapshot_at:
                    save_snapshot(run_dir, model, steps_done, epoch=steps_done / steps_per_epoch,
                                  seconds=elapsed + time.perf_counter() - t0)
                n = stats["n"]
                loss_sum += loss.detach() * n
                if "correct" in stats:
                    correct += stats["correct"]
                seen += n
                if progress and (step % 20 == 0 or step == steps_per_epoch - 1):
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(loss=f"{loss.item():.3f}", **{f"{unit}/s": f"{rate:,.0f}"})
                bar.update(1)
                if cfg.time_budget and elapsed + time.perf_counter() - t0 >= cfg.time_budget:
                    stopped_early = f"time budget of {cfg.time_budget:g}s reached"
                    break
            bar.close()
            train_seconds = time.perf_counter() - t0
            elapsed += train_seconds
            row = {"epoch": epoch + 1, "train_loss": (loss_sum / max(seen, 1)).item(), "lr": lr,
                   "seconds": round(train_seconds, 3), f"{unit}_per_s": round(seen / max(train_seconds, 1e-9), 1)}
            if "correct" in stats:
                row["train_acc"] = (correct / max(seen, 1)).item()
            if _eval_due(cfg, epoch, stopped_early):
                # Where the task's final evaluation is its usual one plus extras (the
                # confusion matrix...), the last epoch's serves as the final one instead of
                # evaluating the whole test split twice.
                last = (epoch + 1 == cfg.epochs or stopped_early is not None) and reuse_last
                metrics = task.evaluate(model, final=last)
                final = metrics if last else None
                row.update({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))})
            if hasattr(task, "epoch_metrics"):
                row.update(task.epoch_metrics(model))
            rows.append(row)
            write_jsonl(run_dir / "metrics.jsonl", rows)
            save_checkpoint(run_dir, model, optimizer, epoch + 1, elapsed)
            _write_state(run_dir, "running", epoch + 1)
            if log:
                log(_epoch_line(row, cfg.epochs))
            if stopped_early:
                break
    except KeyboardInterrupt:
        _write_state(run_dir, "interrupted", epoch)
        raise TrainingInterrupted(
            f"interrupted during epoch {epoch + 1}; the checkpoint of epoch {epoch} is kept. "
            f"Continue with: interp train --resume {run_dir.name}"
        ) from None
    except Exception:  # any failure: marked, so the run is never the default --run
        _write_state(run_dir, "failed", epoch)
        raise
    if stopped_early and snapshot_at and steps_done not in snapshot_at:  # the weights training ended with
        save_snapshot(run_dir, model, steps_done, epoch=steps_done / steps_per_epoch, seconds=elapsed)
    if final is None:  # resumed after the last epoch's checkpoint, or no evaluation ran
        final = task.evaluate(model, final=True)
    summary = {
        **final,
        "model": config.model, "dataset": config.data.name, "parameters": count_parameters(model),
        "epochs": len(rows), "train_seconds": round(elapsed, 2), "device": str(device),
        "precision": resolve_precision(config.train.precision, device),
        "torch_threads": torch.get_num_threads(), "versions": library_versions(),
        "finished": _now(),
    }
    if stopped_early:
        summary["stopped_early"] = stopped_early
    # The weights the summary describes, whatever epoch the last checkpoint pair holds.
    save_tensors(run_dir / "model.safetensors", dict(model.state_dict()), metadata={"epoch": str(summary["epochs"])})
    write_json(run_dir / "summary.json", summary)
    _write_state(run_dir, "finished", len(rows) if stopped_early else cfg.epochs)
    return load_run(run_dir, device=device)


def _eval_due(cfg: TrainConfig, epoch: int, stopped_early: str | None) -> bool:
    """Evaluate every ``eval_every`` epochs and always after the last one."""
    every = cfg.eval_every
    last = epoch + 1 == cfg.epochs or stopped_early is not None
    return last or (every > 0 and (epoch + 1) % every == 0)


def _epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    for key in ("train_acc", "test_loss", "test_acc", "val_loss"):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts)
