"""interp: circuits-style interpretability for small models.

>>> import interp
>>> run = interp.train("tutorial", "shapes", epochs=2, name="tiny")
>>> run = interp.load_run("tiny")
>>> run.layer("conv2")
LayerInfo(name='conv2', kind='conv', units=16, output_shape=(16, 10, 10), parameters=2416)

Nothing happens at import time: no device choice, no downloads, no heavy imports until a
function is called.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "InterpError", "Run", "attribute", "configure_threads", "build_report", "capture", "check_claims", "create_model",
    "dataset_examples", "dynamics", "head_scores", "load_snapshot", "hook_count", "layer_weights", "list_claims", "list_models", "load_run",
    "make_config", "parse_unit", "resume", "to_bridge", "train", "visualize", "WordVectors",
]

_LAZY = {
    "InterpError": ("errors", "InterpError"),
    "configure_threads": ("threads", "configure_threads"),
    "Run": ("runs", "Run"),
    "load_run": ("runs", "load_run"),
    "capture": ("hooks", "capture"),
    "hook_count": ("hooks", "hook_count"),
    "create_model": ("zoo", "create_model"),
    "list_models": ("zoo", "list_models"),
    "make_config": ("training.loop", "make_config"),
    "train": ("training.loop", "train"),
    "resume": ("training.loop", "resume"),
    "parse_unit": ("units", "parse_unit"),
    "visualize": ("analysis.vision.featvis", "visualize"),
    "dataset_examples": ("analysis.vision.examples", "dataset_examples"),
    "layer_weights": ("analysis.vision.weights", "layer_weights"),
    "attribute": ("analysis.attribution.attribute", "attribute"),
    "head_scores": ("analysis.language.heads", "head_scores"),
    "to_bridge": ("analysis.language.bridge", "to_bridge"),
    "WordVectors": ("analysis.words.vectors", "WordVectors"),
    "check_claims": ("claims.registry", "check_claims"),
    "list_claims": ("claims.registry", "list_claims"),
    "build_report": ("pipelines.report", "build_report"),
    "dynamics": ("pipelines.dynamics", "dynamics"),
    "load_snapshot": ("snapshots", "load_snapshot"),
}


def __getattr__(name: str):
    # Lazy attributes keep `import interp` (and so `interp --help`) fast.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'interp' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
