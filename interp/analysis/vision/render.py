"""Free-form Lucent objectives: :func:`render` optimises images for any ``Objective``.

>>> from lucent.optvis import objectives
>>> r = render(run, objectives.channel("conv2", 3) - objectives.channel("conv2", 5))
>>> r.images.shape
torch.Size([1, 3, 32, 32])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ...errors import InterpError
from ...subject import as_subject
from .optimize import DEFAULT_LR, check_size, discover_layers, optimize_images, probe
from .param import image_seed
from .transforms import Transforms


@dataclass
class Rendering:
    """Images optimised for one free-form objective (see :func:`render`)."""

    images: torch.Tensor  # (B, 3, H, W) in [0, 1]
    loss: torch.Tensor  # (steps,) Lucent's loss (to minimise) at each step
    layers: list[str]
    settings: dict


def render(run: Any, objective: Any, *, batch: int = 1, steps: int = 512, size: int | None = None,
           seed: int = 0, lr: float = DEFAULT_LR, transforms: Transforms | Sequence[Callable] | None = None,
           fft: bool = True, decorrelate: bool = True, normalize: Callable | None = None,
           progress: bool = False) -> Rendering:
    """Optimise ``batch`` images for any Lucent objective: what ``render_vis`` does, with
    scoped hooks, seeded randomness and the run's own preprocessing.

    ``objective`` is a Lucent ``Objective`` (arithmetic allowed) or a ``"layer:unit"``
    string; layer names are the model's module names.

    >>> from lucent.optvis import objectives
    >>> r = render(run, objectives.channel("conv2", 3) - objectives.channel("conv2", 5))
    """
    from lucent.optvis import objectives
    from tqdm.auto import tqdm

    subject = as_subject(run, normalize)
    size = check_size(subject, size)
    if isinstance(objective, str):
        if ":" not in objective:
            raise InterpError(f"bad objective {objective!r}: give a Lucent Objective or 'layer:unit', like conv2:3")
        objective = objectives.as_objective(objective)
    if not callable(objective):
        raise InterpError(f"expected a Lucent Objective, got {type(objective).__name__}")
    layers = discover_layers(subject, objective, size)
    probe(subject, [n for n in layers], size)

    def gain_fn(T):
        loss = objective(T)  # Lucent objectives are losses
        return -loss, loss.detach().reshape(1)

    seeds = [image_seed(seed, 0, k) for k in range(batch)]
    with tqdm(total=steps, desc="render", unit="step", disable=not progress or None, leave=False) as bar:
        result = optimize_images(subject, layers, seeds, size, gain_fn, steps=steps, lr=lr, transforms=transforms,
                                 fft=fft, decorrelate=decorrelate, transform_seed=seed, on_step=bar.update)
    tf = Transforms.for_size(size) if transforms is None else transforms
    settings = {"objective": getattr(objective, "description", str(objective)), "batch": batch, "steps": steps,
                "size": size, "seed": seed, "lr": lr,
                "transforms": tf.to_dict() if isinstance(tf, Transforms) else {"kind": "lucent"}}
    return Rendering(result.images, result.history[:, 0], layers, settings)
