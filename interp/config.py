"""Frozen, JSON-serialisable configuration.

A :class:`RunConfig` fully determines a run: which registered model (and its family
config), which data (with the preprocessing that travels with the model: input shape,
class names, mean and std) and which training recipe. It is saved as ``config.json``
beside the weights, so a run folder is all one needs to rebuild the model.

``--set key=value`` overrides go through :func:`apply_overrides`, which checks the key
exists and parses the value with the field's type.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from .errors import InterpError, unknown

CONFIG_VERSION = 1


@dataclass(frozen=True)
class DataConfig:
    """Which data a run trains on, and the preprocessing that travels with the model."""

    name: str = "shapes"
    """``shapes``, ``cifar10``, an ImageFolder path, ``text:PATH``, ``induction``, ... ."""
    n_train: int = 0
    """Use only N training examples, a fixed pseudo-random sample (0: all)."""
    n_test: int = 0
    """Use only N test examples, a fixed pseudo-random sample (0: all)."""
    # Filled in from the data at training time; they travel with the run.
    input_shape: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    vocab: tuple[str, ...] = ()
    """Token strings for text runs (index = token id)."""
    options: dict = field(default_factory=dict)
    """Family-specific data options (window, block size, ...)."""
    skip_bad_images: bool = False
    """Image folders: leave out files that cannot be decoded (with a warning) instead of stopping."""


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. ``recipe='tutorial'`` is the PyTorch CIFAR-10 tutorial's loop."""

    recipe: str = "fast"
    epochs: int = 6
    batch_size: int = 64
    lr: float = 3e-3
    optimizer: str = "adamw"  # adamw | adam | sgd
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # onecycle | cosine | constant
    label_smoothing: float = 0.0
    augment: bool = True
    channels_last: bool = False
    """Image batches in channels-last memory layout (faster convolutions on CPU and GPU)."""
    precision: str = "auto"
    """auto (bf16 where the device computes it natively: AVX512-BF16/AMX CPUs, bf16 GPUs; else
    fp32), fp32, or bf16: autocast to bfloat16 (about 1.7x faster convs on CPUs with AVX512-BF16,
    4.5x slower where it is emulated, on AVX2-only CPUs)."""
    eval_flip: bool = False
    """Test-time augmentation: classify by the mean logits of each test image and its mirror image."""
    grad_clip: float = 0.0
    steps_per_epoch: int = 0
    """For sampled tasks (language models): optimiser steps per epoch (0: one pass)."""
    eval_every: int = 1
    """Evaluate on the held-out split every N epochs (0: only after the last)."""
    time_budget: float = 0.0
    """Stop after this many seconds of training (0: no budget)."""
    checkpoints: str = ""
    """Weight snapshots kept during training for ``interp dynamics`` (:mod:`interp.snapshots`):
    log, linear, N, log:N, linear:N; empty: none."""
    seed: int = 0


RECIPES: dict[str, dict[str, Any]] = {
    # Our default: in-memory tensors, AdamW with a one-cycle schedule, flips and crops.
    "fast": {},
    # The tutorial's 2 epochs at our speed (benchmark P1): large batches, a high one-cycle
    # rate, no augmentation (it costs accuracy in so few epochs), one evaluation at the end.
    "quick": dict(
        epochs=2, batch_size=128, lr=4e-3, augment=False, channels_last=True, eval_every=0,
    ),
    # https://pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html exactly.
    "tutorial": dict(
        epochs=2, batch_size=4, lr=0.001, optimizer="sgd", momentum=0.9, weight_decay=0.0,
        schedule="constant", augment=False, label_smoothing=0.0,
    ),
    # Our strong CNN (cifarnet, interp/zoo/strong.py) on CIFAR-10 at CPU speed: bf16 autocast
    # and channels-last convs, label smoothing, flips and translations, mirror-image TTA.
    "cifarnet": dict(
        epochs=8, batch_size=128, lr=3e-3, optimizer="adamw", weight_decay=0.05, schedule="onecycle",
        label_smoothing=0.2, augment=True, channels_last=True, precision="auto", eval_flip=True,
    ),
    # The word2vec exercise (one-hot skip-gram, softmax): Adam on small batches of pairs;
    # an epoch is steps_per_epoch steps (0: one pass). No weight decay on embeddings.
    "word2vec": dict(
        epochs=10, batch_size=64, lr=0.1, optimizer="adam", weight_decay=0.0, schedule="cosine",
        augment=False, steps_per_epoch=300,
    ),
    # Skip-gram with negative sampling as word2vec.c/gensim train it: SGD at 0.025 falling
    # linearly, applied by the task to the touched rows only; a batch is a span of text
    # giving about batch_size (center, context) pairs.
    "word2vec-sgns": dict(
        epochs=5, batch_size=4096, lr=0.025, optimizer="sgd", momentum=0.0, weight_decay=0.0,
        schedule="linear", augment=False,
    ),
}


def recipe(name: str, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` for a named recipe, with overrides.

    >>> recipe("tutorial").batch_size
    4
    """
    if name not in RECIPES:
        raise unknown("recipe", name, RECIPES)
    return replace(TrainConfig(recipe=name, **RECIPES[name]), **overrides)


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a run's model and its data pipeline."""

    model: str
    """Registered model name (``interp models``)."""
    family: str
    task: str
    model_config: dict
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    version: int = CONFIG_VERSION

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return from_dict(cls, d)


# --------------------------------------------------------------------------- helpers


def to_dict(obj: Any) -> Any:
    """A dataclass (recursively) as plain JSON types; tuples become lists."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(cls: type, d: dict, *, where: str = "config") -> Any:
    """Rebuild dataclass ``cls`` from :func:`to_dict` output, checking keys and types."""
    if not isinstance(d, dict):
        raise InterpError(f"{where}: expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    extra = set(d) - names
    if extra:
        raise InterpError(f"{where}: unknown keys {sorted(extra)}; valid keys: {sorted(names)}")
    kwargs = {}
    for f in fields(cls):
        if f.name in d:
            kwargs[f.name] = _coerce(hints[f.name], d[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if is_dataclass(tp):
        return from_dict(tp, value, where=where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InterpError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, where) for v in value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and not isinstance(value, tp):
        raise InterpError(f"{where}: expected {tp.__name__}, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise InterpError(f"{where}: expected int, got {value!r}")
    return value


MAX_SETTING = 2**63 - 1
"""The largest numeric ``--set`` value (seeds are 64-bit signed for torch's generators)."""


def parse_value(tp: Any, text: str, key: str) -> Any:
    """Parse a ``--set`` value for a field of type ``tp``.

    Every numeric setting is a count, size, rate or seed: finite and from 0 to
    :data:`MAX_SETTING`, the range named in the error.

    >>> parse_value(tuple[int, ...], "6,16", "channels")
    (6, 16)
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null", "") and type(None) in args:
            return None
        tp = [a for a in args if a is not type(None)][0]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    try:
        if tp is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp in (int, float):
            value = tp(text)
        elif tp is str:
            return text
        elif origin is tuple:
            item = args[0] if args else str
            parts = [p for p in text.replace(" ", "").split(",") if p]
            return tuple(parse_value(item, p, key) for p in parts)
        else:
            return text
    except (ValueError, InterpError):
        name = getattr(tp, "__name__", str(tp))
        if origin is tuple:
            name = f"comma-separated list of {getattr(args[0], '__name__', args[0])}"
        raise InterpError(f"--set {key}={text}: expected {name}") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_SETTING:
        kind = "a finite number" if tp is float else "a whole number"
        raise InterpError(f"--set {key}={text}: expected {kind} from 0 to {MAX_SETTING:,}")
    return value


def apply_overrides(obj: Any, overrides: dict[str, str], *, label: str) -> Any:
    """Return ``obj`` (a frozen dataclass) with string ``overrides`` parsed and applied.

    Raises :class:`InterpError` for a key the dataclass does not have, listing the keys.
    """
    hints = typing.get_type_hints(type(obj))
    valid = [f.name for f in fields(obj)]
    changes = {}
    for key, text in overrides.items():
        if key not in hints:
            raise unknown(f"{label} key", key, valid)
        changes[key] = parse_value(hints[key], text, key)
    return replace(obj, **changes)


def parse_set_options(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "model.b=x"]`` -> ``{"a": "1", "model.b": "x"}``."""
    result = {}
    for item in items or []:
        if "=" not in item:
            raise InterpError(f"--set {item!r}: expected key=value, for example --set pooling=avg")
        key, value = item.split("=", 1)
        result[key.strip()] = value.strip()
    return result
