"""The optimisation loop shared by :func:`~interp.analysis.vision.featvis.visualize`,
:func:`~interp.analysis.vision.natural.accentuate` and :func:`~interp.analysis.vision.render.render`.

What Lucent's ``render_vis`` lacks, added here:

- hooks only on the layers the objective reads, removed also on error (Lucent's
  ``render_vis`` leaves a forward hook on every module at every call), and the forward
  pass stops after the last of them;
- randomness from per-image ``torch.Generator`` streams (Lucent's transforms draw from
  ``np.random``): the same seed gives identical images, whatever else ran before, and a
  unit's image does not depend on which other units share its batch;
- batches sized for memory (:func:`chunk_units`).

>>> result = optimize_images(subject, ["conv2"], [image_seed(0, 3)], 32, gain, steps=256)
>>> result.images.shape, result.history.shape
(torch.Size([1, 3, 32, 32]), torch.Size([256, 1]))
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from ...errors import InterpError, unknown
from ...hooks import Recorder, forward_hooks, frozen
from ...subject import Subject
from ...threads import adapt as adapt_threads
from .param import image_param
from .transforms import TRANSFORM_STREAM, Transforms, affine_grid, affine_thetas

OBJECTIVES = ("channel", "neuron")
DEFAULT_LR = 0.05  # Lucent's render_vis default (Adam)
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of activations per chunk


# ------------------------------------------------------------------------------ the model


def probe(subject: Subject, layers: Sequence[str], size: int) -> tuple[dict[str, tuple[int, ...]], int]:
    """Output shapes of ``layers`` for one ``size`` px image, and the activation floats per
    image up to them (for chunk sizing). A size the model cannot take is a user error."""
    model = subject.model
    counted = [0]

    def count(_m, _i, output):
        if isinstance(output, torch.Tensor):
            counted[0] += output[0].numel()

    leaves = {n: count for n, m in model.named_modules() if n and not any(True for _ in m.children())}
    x = torch.full((1, 3, size, size), 0.5, device=subject.device)
    try:
        with torch.no_grad(), frozen(model), forward_hooks(model, leaves), Recorder(model, layers) as rec:
            acts = rec.run(subject.normalize(x))
    except RuntimeError as e:
        if size == subject.input_size:
            raise  # the model's own size: not a size problem
        first = str(e).strip().splitlines()[0][:200]
        needed = f"; use --size {subject.input_size} (the model's input size)" if subject.input_size else ""
        if subject.input_size and size < subject.input_size:
            raise InterpError(f"--size {size} is too small for {subject.name}: {', '.join(layers)} cannot be "
                              f"computed from a {size}x{size} image ({first}){needed}") from None
        raise InterpError(f"--size {size} does not fit {subject.name}: {', '.join(layers)} cannot be computed "
                          f"from a {size}x{size} image ({first}){needed}") from None
    shapes = {n: tuple(a.shape[1:]) for n, a in acts.items()}
    return shapes, counted[0]


# -------------------------------------------------------------------------- optimisation


@dataclass
class Optimized:
    """What :func:`optimize_images` returns: the final images, the per-step values, the time."""

    images: torch.Tensor  # (N, 3, S, S) in [0, 1], on the CPU
    history: torch.Tensor  # (steps, N) per-image objective, or (steps, 1) for a plain loss
    seconds: float


def optimize_images(subject: Subject, layers: Sequence[str], seeds: Sequence[int], size: int,
                    objective: Callable[[Callable[[str], torch.Tensor]], tuple[torch.Tensor, torch.Tensor]],
                    *, steps: int, lr: float = DEFAULT_LR, transforms: "Transforms | Sequence[Callable] | None" = None,
                    fft: bool = True, decorrelate: bool = True, transform_seed: int = 0,
                    on_step: Callable[[], None] | None = None, init: torch.Tensor | None = None) -> Optimized:
    """The optimisation loop: Adam on the parameterised images, ``steps`` times.

    ``objective(T)`` gets Lucent's ``T(name)`` lookup (module outputs by name, ``"input"``
    for the images) and returns ``(gain, per_image_values)``; Adam maximises the gain.
    One image per seed. With :class:`Transforms` (default) each image has its own random
    stream; a list of Lucent transform functions runs with numpy's global random state
    seeded for the call and restored after. ``init``: starting images instead of noise
    (see :func:`image_param`).
    """
    model, device = subject.model, subject.device
    transforms = Transforms.for_size(size) if transforms is None else transforms
    params, image_f = image_param(seeds, size, device, fft=fft, decorrelate=decorrelate, init=init)
    optimizer = _adam(params, lr)
    if isinstance(transforms, Transforms):
        to_input = _warp_and_normalize(subject, layers, transforms, seeds, steps, size)
        numpy_state = contextlib.nullcontext()
    else:
        from lucent.optvis.transform import compose

        composed = compose(list(transforms))

        def to_input(images: torch.Tensor, step: int) -> torch.Tensor:
            return subject.normalize(composed(images))
        numpy_state = numpy_seeded(transform_seed)

    history = []
    start = time.perf_counter()
    with numpy_state, frozen(model), torch.enable_grad(), Recorder(model, layers) as rec:
        for step in range(steps):
            adapt_threads()  # follows the cores other processes leave free (interp.threads)
            images = image_f()
            acts = rec.run(to_input(images, step))
            gain, values = objective(lookup(acts, images))
            optimizer.zero_grad(set_to_none=True)
            gain.backward()
            optimizer.step()
            history.append(values.detach().reshape(-1))
            if on_step is not None:
                on_step()
    with torch.no_grad():
        images = image_f().detach().cpu()
    return Optimized(images, torch.stack(history).cpu(), time.perf_counter() - start)


class AscentAdam:
    """``torch.optim.Adam(params, lr, maximize=True, fused=True)``, step for step, through the same
    fused kernel (``torch._fused_adam_``: one op per step instead of about ten, which matters when
    the model is as small as the tutorial net) but without ``torch.optim``: constructing any
    torch optimizer imports ``torch._dynamo`` (1.0-1.1 s, half of a feature visualisation's
    start-up on 2 cores). Where the fused kernel is missing (a device or torch without it), the
    same update written out. Tested equal to torch's Adam (tests/analysis/vision/test_featvis.py).

    >>> opt = AscentAdam([image], lr=0.05)
    >>> gain.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        self.fused = hasattr(torch, "_fused_adam_")

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[i] for i in live]
        grads = [self.params[i].grad for i in live]
        exp_avg, exp_avg_sq = [self.exp_avg[i] for i in live], [self.exp_avg_sq[i] for i in live]
        steps = [self.steps[i] for i in live]
        if not params:
            return
        torch._foreach_add_(steps, 1)
        beta1, beta2 = self.betas
        if self.fused:
            try:
                torch._fused_adam_(params, grads, exp_avg, exp_avg_sq, [], steps, amsgrad=False, lr=self.lr,
                                   beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps, maximize=True,
                                   grad_scale=None, found_inf=None)
                return
            except (RuntimeError, NotImplementedError):  # no fused kernel for this device or dtype
                self.fused = False
        for p, g, m, v, t in zip(params, grads, exp_avg, exp_avg_sq, steps):
            g = -g  # maximise
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            step = float(t)
            denominator = (v.sqrt() / math.sqrt(1 - beta2 ** step)).add_(self.eps)
            p.addcdiv_(m, denominator, value=-self.lr / (1 - beta1 ** step))


def _adam(params: list[torch.Tensor], lr: float) -> AscentAdam:
    return AscentAdam(params, lr)


GRID_BLOCK_BYTES = 32 << 20  # sampling grids precomputed a block of steps at a time


def _warp_and_normalize(subject: Subject, layers: Sequence[str], transforms: Transforms, seeds: Sequence[int],
                        steps: int, size: int) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """``to_input(images, step)``: this step's random warp of each image, then the model's normalisation."""
    device = subject.device
    # a second stream per image, distinct from the one that drew its starting spectrum
    draws = torch.stack([transforms.draws(steps, torch.Generator().manual_seed(s ^ TRANSFORM_STREAM))
                         for s in seeds], 1)
    thetas = affine_thetas(draws, size).to(device)  # (steps, N, 2, 3)
    n = len(seeds)
    block = max(1, min(steps, GRID_BLOCK_BYTES // (n * size * size * 2 * 4)))
    grids: dict[str, Any] = {"start": -1, "grid": None}
    fill = transforms.fill
    # with the run's per-channel mean and std, "+ fill" and the normalisation are one op
    affine = subject.mean is not None and subject.std is not None
    if affine:
        mean = torch.as_tensor(subject.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        std = torch.as_tensor(subject.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        scale, shift = 1 / std, (fill - mean) / std

    channels_last = _channels_last_ok(subject, layers, size)

    def to_input(images: torch.Tensor, step: int) -> torch.Tensor:
        start = step - step % block
        if grids["start"] != start:  # the sampling grids of a block of steps at once
            chunk = thetas[start:start + block]
            grids["start"], grids["grid"] = start, affine_grid(chunk.flatten(0, 1), size).view(len(chunk), n, size,
                                                                                             size, 2)
        # zero padding of (image - fill) is padding with the fill colour
        warped = F.grid_sample(images - fill, grids["grid"][step - start], align_corners=False)
        x = torch.addcmul(shift, warped, scale) if affine else subject.normalize(warped + fill)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    return to_input


def _channels_last_ok(subject: Subject, layers: Sequence[str], size: int) -> bool:
    """Whether to feed channels-last images: oneDNN's CPU convolutions run about twice as fast
    on them, but a model that ``.view()``s a conv output cannot take them (then: no)."""
    if subject.device.type != "cpu":
        return False
    x = torch.full((1, 3, size, size), 0.5, device=subject.device).contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad(), frozen(subject.model), Recorder(subject.model, layers) as rec:
            rec.run(subject.normalize(x))
    except RuntimeError:
        return False
    return True


def lookup(acts: dict[str, torch.Tensor], images: torch.Tensor) -> Callable[[str], torch.Tensor]:
    """Lucent's ``T``: ``T("conv2")`` is conv2's output, ``T("input")`` the images."""
    def T(name: str) -> torch.Tensor:
        if name == "input":
            return images
        if name not in acts:
            raise unknown("layer", name, list(acts) + ["input"])
        return acts[name]
    return T


@contextlib.contextmanager
def numpy_seeded(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for a block (Lucent's transforms use it) and restore it."""
    import numpy as np

    state = np.random.get_state()
    np.random.seed(seed % (2 ** 32))
    try:
        yield
    finally:
        np.random.set_state(state)


def discover_layers(subject: Subject, objective: Callable, size: int) -> list[str]:
    """The layers a Lucent objective reads, found by one probe pass with scoped hooks."""
    model = subject.model
    names = [n for n, _ in model.named_modules() if n]
    acts: dict[str, torch.Tensor] = {}

    def make(name):
        def hook(_m, _i, output):
            acts[name] = output
        return hook

    x = torch.full((1, 3, size, size), 0.5, device=subject.device)
    error = None
    with torch.no_grad(), frozen(model), forward_hooks(model, {n: make(n) for n in names}):
        try:
            model(subject.normalize(x))
        except RuntimeError as e:  # later layers may not fit this size; fine if unused
            error = e
    used: list[str] = []

    def T(name: str) -> torch.Tensor:
        if name == "input":
            return x
        if name not in acts:
            if name in names and error is not None:
                raise InterpError(f"--size {size} does not fit {subject.name}: layer {name!r} cannot be "
                                  f"computed ({str(error).splitlines()[0][:200]})")
            raise unknown("layer", name, getattr(model, "layer_names", None) or names)
        used.append(name)
        return acts[name]

    with torch.no_grad():
        objective(T)
    if not used:
        raise InterpError("the objective reads no layer of the model; use layer names like "
                          + ", ".join(repr(n) for n in (getattr(model, "layer_names", None) or names)[:3]))
    return list(dict.fromkeys(used))


def check_size(subject: Subject, size: int | None) -> int:
    """The image size to render: ``size``, or the model's input size when None."""
    if size is None:
        if subject.input_size is None:
            raise InterpError("give the image size (size=32): a bare module does not say its input size")
        return int(subject.input_size)
    if size < 2:
        raise InterpError(f"--size {size} is too small for {subject.name}; use at least the model's input size "
                          f"({subject.input_size or 'e.g. 32'})")
    return int(size)


def value_function(objective: Any, layer: str, custom: bool):
    """``value(T, units) -> (B,)``: the objective of each image for its own unit."""
    if custom:
        def custom_value(T, units):
            vals = []
            for b, u in enumerate(units.tolist()):
                obj = objective(layer, u)
                # Lucent's batch= indexing: the objective sees image b only
                vals.append(-obj(lambda name, b=b: T(name)[b:b + 1]))
            return torch.stack([v.reshape(()) for v in vals])
        return custom_value
    if objective == "neuron":
        def neuron_value(T, units):
            acts = T(layer)  # (B, C, H, W)
            h, w = acts.shape[2] // 2, acts.shape[3] // 2  # Lucent's centre neuron
            return acts[torch.arange(len(units), device=acts.device), units, h, w]
        return neuron_value

    def channel_value(T, units):
        acts = T(layer)
        picked = acts[torch.arange(len(units), device=acts.device), units]  # (B, H, W) or (B,)
        return picked.flatten(1).mean(1) if picked.dim() > 1 else picked
    return channel_value


def evaluate(subject: Subject, layers: Sequence[str], size: int, seeds, value_fn, units: torch.Tensor,
              fft: bool, decorrelate: bool, images: torch.Tensor | None = None) -> torch.Tensor:
    """The objective of each image without transforms (of the starting images when ``images`` is None)."""
    with torch.no_grad():
        if images is None:
            _, image_f = image_param(seeds, size, subject.device, fft=fft, decorrelate=decorrelate)
            images = image_f()
        with frozen(subject.model), Recorder(subject.model, layers) as rec:
            acts = rec.run(subject.normalize(images.to(subject.device)))
            return value_fn(lookup(acts, images), units).detach().cpu()


def chunk_units(subject: Subject, per_unit: int, floats_per_image: int, batch_size: int | None,
                 memory_budget: int) -> int:
    """Units per chunk: ``batch_size`` images, or as many as ``memory_budget`` bytes of activations allow."""
    if batch_size is not None:
        if batch_size < 1:
            raise InterpError(f"--batch-size must be at least 1, got {batch_size}")
        return max(1, batch_size // per_unit)
    # activations, their gradients and the autograd buffers: about 3 copies of the forward
    per_image = max(1, floats_per_image) * 4 * 3
    budget = memory_budget
    if subject.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(subject.device)
        budget = min(budget * 4, free // 2)
    return max(1, int(budget // (per_image * per_unit)))


