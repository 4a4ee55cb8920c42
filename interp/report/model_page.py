"""The model page: architecture, training curves, accuracy, confusion matrix."""

from __future__ import annotations

import torch

from . import figures
from .registry import ReportContext, Section


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    summary = run.summary or {}
    cfg = run.config
    model_name = cfg.model if cfg.family in (cfg.model, "") else f"{cfg.model} ({cfg.family})"
    page = ctx.page("index.html", f"{run.name}", subtitle=(
        f"{model_name} trained on {cfg.data.name} · {summary.get('epochs', '?')} epochs"))
    ctx.nav.insert(0, ("Model", "index.html"))

    rows = [{"name": info.name, "kind": info.kind, "units": info.units,
             "shape": " × ".join(map(str, info.output_shape)), "parameters": info.parameters}
            for info in run.layers]
    settings = {k: v for k, v in sorted(cfg.model_config.items())}
    data = {"dataset": cfg.data.name, "input": " × ".join(map(str, cfg.data.input_shape)),
            "classes": len(cfg.data.classes), "vocabulary": len(cfg.data.vocab)}
    page.add(Section("architecture", "Architecture", "architecture.html", {
        # Models without unit-level layers (word2vec, transformers) list their modules instead.
        "layers": rows, "modules": [] if rows else module_rows(run.model),
        "settings": settings, "total": summary.get("parameters"),
        "train": {k: getattr(cfg.train, k) for k in ("recipe", "epochs", "batch_size", "lr", "optimizer",
                                                      "schedule", "weight_decay", "augment", "seed")},
        "data": {k: v for k, v in data.items() if v not in ("", 0)},
    }, order=10))

    metrics = run.metrics
    curves = figures.training_curves(metrics, ctx.path("figures/training.png"))
    page.add(Section("training", "Training", "training.html", {
        "figure": "figures/training.png" if curves else None,
        "seconds": summary.get("train_seconds"), "device": summary.get("device"),
        "versions": summary.get("versions", {}), "stopped_early": summary.get("stopped_early"),
        "last": metrics[-1] if metrics else {},
    }, order=20))

    if "per_class_acc" in summary:
        classes = summary.get("classes") or list(cfg.data.classes)
        figures.confusion_matrix(summary["confusion"], classes, ctx.path("figures/confusion.png"))
        page.add(Section("accuracy", "Test accuracy", "accuracy.html", {
            "overall": summary["test_acc"], "rows": list(zip(classes, summary["per_class_acc"])),
            "confusion": "figures/confusion.png",
        }, order=30))


def module_rows(model: torch.nn.Module) -> list[dict]:
    """One row per top-level module (a ModuleList's items each get one), with its parameters.

    >>> module_rows(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    [{'name': '0', 'kind': 'Linear', 'shapes': '2×3, 2', 'parameters': 8}]
    """
    rows = []
    children = []
    for name, child in model.named_children():
        if isinstance(child, torch.nn.ModuleList):
            children.extend((f"{name}.{i}", item) for i, item in enumerate(child))
        else:
            children.append((name, child))
    for name, child in children:
        params = list(child.parameters())
        rows.append({"name": name, "kind": type(child).__name__,
                     "shapes": ", ".join("×".join(map(str, p.shape)) for p in params[:4])
                               + (", …" if len(params) > 4 else ""),
                     "parameters": sum(p.numel() for p in params)})
    return rows
