"""The model page: architecture, training curves, accuracy, confusion matrix."""

from __future__ import annotations

from . import figures
from .registry import ReportContext, Section


def contribute(ctx: ReportContext) -> None:
    run = ctx.run
    summary = run.summary or {}
    cfg = run.config
    page = ctx.page("index.html", f"{run.name}", subtitle=(
        f"{cfg.model} ({cfg.family}) trained on {cfg.data.name} · {summary.get('epochs', '?')} epochs"))
    ctx.nav.insert(0, ("Model", "index.html"))

    rows = [{"name": info.name, "kind": info.kind, "units": info.units,
             "shape": " × ".join(map(str, info.output_shape)), "parameters": info.parameters}
            for info in run.layers]
    settings = {k: v for k, v in sorted(cfg.model_config.items())}
    page.add(Section("architecture", "Architecture", "architecture.html", {
        "layers": rows, "settings": settings, "total": summary.get("parameters"),
        "train": {k: getattr(cfg.train, k) for k in ("recipe", "epochs", "batch_size", "lr", "optimizer",
                                                      "schedule", "weight_decay", "augment", "seed")},
        "data": {"dataset": cfg.data.name, "input": " × ".join(map(str, cfg.data.input_shape)),
                 "classes": len(cfg.data.classes)},
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
