"""The model registry: names are data.

Each model family registers a builder with a frozen config dataclass and its defaults::

    @register_model("tutorial", family="cnn", task="image-classification",
                    config=CNNConfig, description="PyTorch CIFAR-10 tutorial net")
    def tutorial(cfg: CNNConfig) -> nn.Module: ...

``create_model("tutorial", pooling="avg")`` builds one; ``list_models("cnn*")`` lists.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from ..errors import InterpError, unknown

TASKS = ("image-classification", "language-model", "word-embedding")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    task: str
    config_cls: type
    defaults: dict
    builder: Callable[[Any], Any]
    description: str
    default_dataset: str
    recipe: str = "fast"
    """The training recipe (:data:`interp.config.RECIPES`) used when none is asked for."""
    trainable: bool = True
    """False for imported families (torchvision, timm): ``interp import`` brings their weights."""

    def default_config(self) -> Any:
        return self.config_cls(**self.defaults)

    def make_config(self, overrides: dict | None = None) -> Any:
        cfg = self.default_config()
        if overrides:
            valid = {f.name for f in fields(cfg)}
            bad = [k for k in overrides if k not in valid]
            if bad:
                raise unknown(f"{self.name} setting", bad[0], sorted(valid))
            cfg = replace(cfg, **overrides)
        return cfg


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, family: str, task: str, config: type, description: str,
                   default_dataset: str = "shapes", recipe: str = "fast", trainable: bool = True, **defaults: Any):
    """Decorator registering ``builder(cfg) -> nn.Module`` under ``name``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}")

    def decorate(builder):
        _REGISTRY[name] = ModelSpec(name, family, task, config, dict(defaults), builder,
                                    description, default_dataset, recipe, trainable)
        return builder

    return decorate


def _ensure_loaded() -> None:
    # Importing the family modules registers their models; done lazily so that
    # `import interp` stays cheap and nothing happens at import time.
    from . import cnn, gpt, imported, mlp, strong, word2vec  # noqa: F401


def get_spec(name: str) -> ModelSpec:
    """The registered :class:`ModelSpec` called ``name``; a clear error otherwise."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise unknown("model", name, sorted(_REGISTRY))
    return _REGISTRY[name]


def list_models(pattern: str = "*") -> list[ModelSpec]:
    """Registered models whose name matches a glob pattern, sorted by name.

    >>> [m.name for m in list_models("tut*")]
    ['tutorial']
    """
    _ensure_loaded()
    return [s for n, s in sorted(_REGISTRY.items()) if fnmatch.fnmatch(n, pattern)]


def build_model(name: str, config: Any):
    """Build model ``name`` from a config instance (or a dict of its fields)."""
    spec = get_spec(name)
    if isinstance(config, dict):
        from ..config import from_dict

        config = from_dict(spec.config_cls, config, where=f"{name} config")
    model = spec.builder(config)
    return model


def create_model(name: str, **overrides: Any):
    """Build a registered model with its default config plus ``overrides``.

    >>> sum(p.numel() for p in create_model("tutorial").parameters())
    62006
    """
    spec = get_spec(name)
    return build_model(name, spec.make_config(overrides))


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def check_positive(**values: float) -> None:
    for key, value in values.items():
        if value <= 0:
            raise InterpError(f"{key} must be > 0, got {value}")


def reinitialized(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with fresh weights drawn by the model's own initialisation, seeded.

    Models with their own initialiser (``_init_weights``, as our transformers) use it;
    others call each module's ``reset_parameters`` (PyTorch's defaults, which is how our
    conv nets are initialised). The caller's random stream is left untouched.

    >>> null = reinitialized(run.model, seed=1)
    """
    import copy

    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clone = copy.deepcopy(model)
        for module in clone.modules():
            if hasattr(module, "reset_parameters") and module is not clone:
                module.reset_parameters()
        init = getattr(clone, "_init_weights", None)
        if callable(init):
            clone.apply(init)
    clone.eval()
    return clone
