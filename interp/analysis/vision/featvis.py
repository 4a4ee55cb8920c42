"""Feature visualisation: every unit of a layer rendered in one batched optimisation.

Lucent (torch-lucent) supplies the image parameterisation (an FFT spectrum with
decorrelated colour, :func:`lucent.optvis.param.spatial.fft_image`) and the objectives
(``channel``, ``neuron``, ``direction``, ``diversity``, objective arithmetic); this module
adds what it lacks:

- all units of a layer are optimised together, one image per unit (``U*K`` images for
  ``K`` diverse images per unit, twice that with negatives), in memory-bounded chunks;
- hooks only on the layers the objective reads, removed also on error (Lucent's
  ``render_vis`` leaves a forward hook on every module at every call), and the forward
  pass stops after the last of them;
- randomness from per-image ``torch.Generator`` streams (Lucent's transforms draw from
  ``np.random``): the same seed gives identical images, whatever else ran before, and a
  unit's image does not depend on which other units share its batch;
- transforms sized for the model's input: Lucid's 224 px jitter, zoom and rotation
  shrunk for 32 px models, so that their images stay crisp (:meth:`Transforms.for_size`).

>>> result = visualize(run, "conv2", steps=512)
>>> result.images.shape              # (units, diversity, 3, H, W), floats in [0, 1]
torch.Size([16, 1, 3, 32, 32])
>>> save_featvis(result, run.report_dir() / "featvis" / "conv2")

Every rendering records how well each unit's image 0 did (:class:`UnitQuality`, in
``result.quality`` and in ``index.json``): the activation reached and at the start, the
unit's rank among the layer's units on its own image (specificity), failure flags (the
objective did not rise, or the image is flat: :data:`QUALITY_RULES`) and, after
:meth:`FeatureVis.attach_natural` with :func:`natural_max`, the best natural image's
activation and the ratio. :func:`accentuate` is feature accentuation (Hamblin, Fel, Serre
et al. 2024): optimisation from a natural image, kept close to it.

>>> result.attach_natural(natural_max(run, "conv2", sample=2000))
>>> [q.unit for q in result.quality if q.failed], result.quality[5].rank, result.quality[5].ratio

Files (stable names, linked from the report): ``unit_0005.png`` (the image),
``unit_0005_div1.png`` ... (diverse images), ``unit_0005_neg.png`` (negative),
``grid.png`` (all units), ``index.json`` (files, values, settings, quality),
``history.safetensors`` (the objective at every step).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InterpError, unknown
from ...hooks import Recorder, StopForward, forward_hooks, frozen, get_module, run_until
from ...io import atomic_dir, decode_png, encode_png, jsonable, save_tensors, to_uint8, write_bytes, write_json
from ...subject import Subject, as_subject

OBJECTIVES = ("channel", "neuron")
DEFAULT_STEPS = 512
"""Optimisation steps of :func:`visualize`, ``interp visualize`` and the report's main images."""
LUCID_SIZE = 224
"""The image size Lucid's transform defaults were made for (InceptionV1's input)."""
DEFAULT_LR = 0.05  # Lucent's render_vis default (Adam)
DEFAULT_DIVERSITY_WEIGHT = 2.0
"""Weight of the diversity penalty relative to the objective's own size (see :func:`diversity_penalty`)."""
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of activations per chunk
TRANSFORM_STREAM = 0x5DEECE66D  # xor-ed into an image's seed for its transform draws


# ----------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class Transforms:
    """Random transforms applied to the images at every step ("transformation robustness").

    Lucid's ``standard_transforms`` for 224 px images pad 12 px, jitter 8 px, zoom
    0.9-1.1, rotate -10..10 degrees and jitter 4 px again. A 32 px CIFAR image would be
    shifted by a third of its width by that, and its features smeared, so
    :meth:`for_size` scales them with the image size. All transforms of one step are
    composed into a single affine warp per image (one ``grid_sample``), with the areas
    moved in filled with grey, as Lucid's constant padding does.

    >>> Transforms.for_size(32)
    Transforms(jitter=1, scale=0.031, rotate=3.1, fill=0.5)
    """

    jitter: int
    """Random translation of up to this many whole pixels in each direction."""
    scale: float
    """Random zoom by a factor in ``[1 - scale, 1 + scale]``."""
    rotate: float
    """Random rotation of up to this many degrees either way."""
    fill: float = 0.5
    """Grey value of the areas moved into view."""

    @classmethod
    def for_size(cls, size: int) -> "Transforms":
        """Lucid's transforms shrunk for ``size`` px images (Lucid's own at 224 px and above).

        Jitter scales with the size (Lucid's 8 + 4 px at 224 is about 6 px either way,
        so 1 px at 32); zoom and rotation shrink more gently (small images tolerate a
        little, and a little still helps against pixel-level noise).
        """
        f = min(1.0, size / LUCID_SIZE)
        return cls(jitter=max(1, round(6 * f)), scale=round(0.1 * f ** 0.6, 3), rotate=round(10 * f ** 0.6, 1))

    def to_dict(self) -> dict:
        return {"kind": "affine", "jitter_px": self.jitter, "scale": [round(1 - self.scale, 4),
                round(1 + self.scale, 4)], "rotate_deg": self.rotate, "fill": self.fill}

    def draws(self, steps: int, generator: torch.Generator) -> torch.Tensor:
        """``(steps, 4)`` random draws for one image: dx, dy (pixels), zoom, angle (radians)."""
        shift = torch.randint(-self.jitter, self.jitter + 1, (steps, 2), generator=generator).float()
        u = torch.rand(steps, 2, generator=generator) * 2 - 1
        zoom = 1 + self.scale * u[:, 0]
        angle = math.radians(self.rotate) * u[:, 1]
        return torch.cat([shift, zoom[:, None], angle[:, None]], dim=1)


def affine_thetas(draws: torch.Tensor, size: int) -> torch.Tensor:
    """``(..., 4)`` draws -> ``(..., 2, 3)`` sampling matrices for ``F.affine_grid``.

    The warp zooms and rotates the image about its centre and then shifts it; the grid
    maps each output pixel back to where it samples the image (the inverse map). With
    zoom 1 and angle 0 a whole-pixel shift lands exactly on pixel centres.
    """
    dx, dy, zoom, angle = draws.unbind(-1)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    tx, ty = 2 * dx / size, 2 * dy / size  # pixels -> normalised coordinates
    # inverse of (rotate * zoom): R(-angle) / zoom, applied to (output - shift)
    row0 = torch.stack([cos, sin, -(cos * tx + sin * ty)], dim=-1)
    row1 = torch.stack([-sin, cos, -(-sin * tx + cos * ty)], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """``F.affine_grid(theta, [M, C, size, size], align_corners=False)`` for ``(M, 2, 3)`` thetas.

    The same grid from two broadcast sums per coordinate: a grid is linear in the pixel
    coordinates, and torch's version (a batched product with an inner size of 3 over a
    materialised base grid) costs several times more, which showed at 4,096 grids a block.
    """
    centres = (torch.arange(size, dtype=theta.dtype, device=theta.device) * 2 + 1) / size - 1
    x, y = centres.view(1, 1, size), centres.view(1, size, 1)
    grid = torch.empty(len(theta), size, size, 2, dtype=theta.dtype, device=theta.device)
    for k in range(2):  # output coordinate k = theta[k, 0] * x + theta[k, 1] * y + theta[k, 2]
        a, b, c = (theta[:, k, j].view(-1, 1, 1) for j in range(3))
        torch.add(a * x + c, b * y, out=grid[..., k])
    return grid


# ----------------------------------------------------------------------- parameterisation


@contextlib.contextmanager
def _lucent_device(device: torch.device) -> Iterator[None]:
    # Lucent picks its device in a module global at import time ("cuda:0" whenever CUDA
    # exists); set it to ours while Lucent builds the parameters, then put it back.
    from lucent.optvis.param import spatial

    old = spatial.device
    spatial.device = device
    try:
        yield
    finally:
        spatial.device = old


def image_param(seeds: Sequence[int], size: int, device: torch.device, *, fft: bool = True,
                decorrelate: bool = True, sd: float = 0.01,
                init: torch.Tensor | None = None) -> tuple[list[torch.Tensor], Callable[[], torch.Tensor]]:
    """Lucent's image parameterisation for ``len(seeds)`` images, seeded per image.

    Returns ``(params, image_f)`` like Lucent's ``param.image``: ``image_f()`` gives
    ``(N, 3, size, size)`` images in ``[0, 1]``. With ``fft`` it is Lucent's ``fft_image``
    (spectrum scaled by 1/frequency, inverse real FFT, divided by 4) followed by its colour
    decorrelation and a sigmoid, computed in an equivalent cheaper order: the spectrum is
    stored channel-first, ``(3, N, size, size // 2 + 1, 2)``, so the colour matrix mixes it
    with one small matrix product before the (per-channel, linear) inverse FFT, instead of a
    batched product over every pixel after it. The same values as Lucent's, to float
    rounding (a test checks); Adam, being elementwise, does not see the layout. The initial
    values come from one ``torch.Generator`` per image, never global state.

    ``init``: ``(N, 3, size, size)`` images in ``[0, 1]`` to start from instead of noise
    (feature accentuation, :func:`accentuate`). The parameters are set by inverting the
    sigmoid (pixels clamped to ``[INIT_EPS, 1 - INIT_EPS]``, half an 8-bit level), the colour
    decorrelation and, for ``fft``, the scaled inverse FFT, so ``image_f()`` starts at the
    images to within ``INIT_EPS``.
    """
    from lucent.optvis.param.color import color_correlation_normalized

    n = len(seeds)
    colour = torch.tensor(color_correlation_normalized, device=device)
    if not fft:
        from lucent.optvis.param.spatial import pixel_image

        with _lucent_device(device), torch.random.fork_rng(devices=[]):
            params, raw_f = pixel_image((n, 3, size, size), sd=sd)
        (tensor,) = params
        with torch.no_grad():
            if init is not None:
                start = _logit(init, n, size).to(tensor.device)
                if decorrelate:
                    start = torch.einsum("dc,bchw->bdhw", torch.linalg.inv(colour), start)
                tensor.copy_(start)
            else:
                noise = torch.stack([torch.randn(tensor.shape[1:], generator=torch.Generator().manual_seed(s))
                                     for s in seeds])
                tensor.copy_(noise.mul_(sd).to(tensor.device))

        def pixel_f() -> torch.Tensor:
            image = raw_f()
            if decorrelate:
                image = torch.einsum("dc,bchw->bdhw", colour, image)  # per-pixel colour mixing
            return torch.sigmoid(image)

        return params, pixel_f

    from lucent.optvis.param.spatial import rfft2d_freqs

    freqs = rfft2d_freqs(size, size)
    # Lucent's fft_image: scale 1 / max(freq, 1 / size), then irfft (ortho) and "/ 4".
    scale = torch.tensor(1.0 / np.maximum(freqs, 1.0 / size) / 4.0, dtype=torch.float32, device=device)
    scale = scale[None, None, :, :, None]
    shape = (3, *freqs.shape, 2)
    if init is not None:
        # image = sigmoid(irfft(C @ spectrum * scale)): invert each step (irfft of an rfft is exact)
        target = _logit(init, n, size).to(device)
        mixed = torch.view_as_real(torch.fft.rfftn(target, s=(size, size), norm="ortho")).transpose(0, 1)
        mixed = mixed / scale
        start = (torch.linalg.inv(colour) @ mixed.reshape(3, -1)).view_as(mixed) if decorrelate else mixed
        spectrum = start.contiguous().requires_grad_(True)
    else:
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds], 1)
        spectrum = noise.mul_(sd).to(device).requires_grad_(True)           # (3, N, H, W // 2 + 1, 2)

    def image_f() -> torch.Tensor:
        spec = (colour @ spectrum.view(3, -1)).view_as(spectrum) if decorrelate else spectrum
        image = torch.fft.irfftn(torch.view_as_complex(spec * scale), s=(size, size), norm="ortho")
        return torch.sigmoid(image).transpose(0, 1)                         # (N, 3, H, W)

    return [spectrum], image_f


INIT_EPS = 0.5 / 255
"""Starting images are clamped to ``[INIT_EPS, 1 - INIT_EPS]`` (the sigmoid never reaches 0 or 1)."""


def _logit(images: torch.Tensor, n: int, size: int) -> torch.Tensor:
    images = torch.as_tensor(images).detach()
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if tuple(images.shape) != (n, 3, size, size):
        raise InterpError(f"starting images must be ({n}, 3, {size}, {size}) floats in [0, 1]; "
                          f"got {tuple(images.shape)}")
    return torch.logit(images.clamp(INIT_EPS, 1 - INIT_EPS))


def image_seed(seed: int, unit: int, k: int = 0, negative: bool = False) -> int:
    """The seed of one image: a function of (seed, unit, diversity index, sign) only."""
    return (((seed * 1_000_003 + unit) * 1009 + k) * 2 + int(negative)) % (2 ** 63 - 1)


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
    """The optimisation loop shared by :func:`visualize` and :func:`render`.

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


def _adam(params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    # maximize=True saves negating the objective; the fused kernel (one op per step instead
    # of about ten) matters when the model itself is as small as the tutorial net
    try:
        return torch.optim.Adam(params, lr=lr, maximize=True, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or torch without the fused kernel
        return torch.optim.Adam(params, lr=lr, maximize=True)


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


# ------------------------------------------------------------------------- visualisation


@dataclass
class FeatureVis:
    """Feature visualisations of some units of one layer.

    ``images[i, k]`` is the k-th (diverse) image of ``units[i]``; ``values[i, k]`` its
    objective value (the unit's mean activation for ``channel``, its centre activation
    for ``neuron``) on the final image without transforms; ``initial_values`` the same on
    the starting noise; ``history[s, i, k]`` the value at step ``s`` (under transforms);
    ``quality[i]`` how well image 0 did (:class:`UnitQuality`).
    """

    layer: str
    units: list[int]
    images: torch.Tensor  # (U, K, 3, H, W) float in [0, 1]
    values: torch.Tensor  # (U, K)
    initial_values: torch.Tensor  # (U, K)
    history: torch.Tensor  # (steps, U, K)
    settings: dict
    negative_images: torch.Tensor | None = None  # (U, K, 3, H, W): the unit minimised
    negative_values: torch.Tensor | None = None
    negative_initial_values: torch.Tensor | None = None
    negative_history: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    """Run details that do not change the images: device, chunk size, seconds."""
    quality: list["UnitQuality"] | None = None
    """Per unit (aligned with ``units``), how well image 0 did: the activation reached and at
    the start, its specificity, failure flags, the best natural image's activation (after
    :meth:`attach_natural`). See :class:`UnitQuality`."""
    natural_source: dict | None = None
    """Where ``quality[i].natural`` comes from: dataset, images scanned, sample (or None)."""

    def attach_natural(self, natural: "NaturalMax") -> "FeatureVis":
        """Record each unit's best natural activation (from :func:`natural_max`) in ``quality``."""
        if self.quality is None:
            raise InterpError("this rendering has no quality record; render it again with visualize()")
        if natural.layer != self.layer:
            raise InterpError(f"natural activations of {natural.layer}, not {self.layer}")
        objective = self.settings.get("objective")
        if natural.objective != objective:
            raise InterpError(f"natural activations for the {natural.objective} objective; this rendering "
                              f"used {objective!r}")
        for q in self.quality:
            if q.unit in natural.units:
                i = natural.units.index(q.unit)
                q.natural, q.natural_index = float(natural.values[i]), int(natural.indices[i])
        self.natural_source = natural.source()
        return self

    def failed_units(self) -> list[int]:
        """Units whose image 0 is flagged (see :class:`UnitQuality`)."""
        return [q.unit for q in self.quality or [] if q.failed]

    def index(self, unit: int) -> int:
        try:
            return self.units.index(unit)
        except ValueError:
            raise InterpError(f"unit {unit} of {self.layer} was not rendered; rendered units: "
                              f"{unit_ranges(self.units)}") from None

    def image(self, unit: int, k: int = 0, negative: bool = False) -> torch.Tensor:
        """The ``(3, H, W)`` image of one unit."""
        images = self.negative_images if negative else self.images
        if images is None:
            raise InterpError("no negative images: render with negative=True (--negative)")
        return images[self.index(unit), k]

    def __repr__(self) -> str:
        neg = ", negative" if self.negative_images is not None else ""
        return (f"FeatureVis({self.layer!r}, {len(self.units)} units, {self.images.shape[1]} image(s) each{neg}, "
                f"objective={self.settings.get('objective')!r}, steps={self.settings.get('steps')})")


def visualize(run: Any, layer: str, units: str | Sequence[int] | None = None, *,
              objective: str | Callable = "channel", steps: int = DEFAULT_STEPS, size: int | None = None,
              diversity: int = 1, negative: bool = False, seed: int = 0, lr: float = DEFAULT_LR,
              transforms: Transforms | Sequence[Callable] | None = None,
              diversity_weight: float = DEFAULT_DIVERSITY_WEIGHT, fft: bool = True, decorrelate: bool = True,
              batch_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
              normalize: Callable | None = None, progress: bool = False) -> FeatureVis:
    """Render every selected unit of ``layer``: all units in one batched optimisation.

    ``objective`` is ``"channel"`` (the unit's mean activation), ``"neuron"`` (its
    activation at the centre position) or a function ``(layer, unit) -> Lucent
    Objective`` (e.g. ``lambda l, u: objectives.neuron(l, u, x=1, y=1)``), evaluated
    per image. ``diversity=K`` renders K images per unit with Lucent's diversity term
    (weight ``diversity_weight``); ``negative=True`` also minimises each unit. Images
    are ``size`` px (default: the model's input size). Units go in chunks of at most
    ``batch_size`` images (default: as many as ``memory_budget`` bytes of activations
    allow), each unit's images in one chunk. ``fv.quality`` records how well each unit's
    image 0 did (:class:`UnitQuality`; specificity only for the built-in objectives).

    >>> fv = visualize(run, "conv2", "0-3", steps=256, diversity=2, negative=True)
    >>> fv.images.shape, fv.negative_images.shape
    (torch.Size([4, 2, 3, 32, 32]), torch.Size([4, 2, 3, 32, 32]))
    """
    from ...units import parse_unit_list

    subject = as_subject(run, normalize)
    get_module(subject.model, layer)
    size = _check_size(subject, size)
    custom = callable(objective) and not isinstance(objective, str)
    if not custom and objective not in OBJECTIVES:
        raise unknown("objective", str(objective), OBJECTIVES)
    if steps < 1:
        raise InterpError(f"--steps must be at least 1, got {steps}")
    if diversity < 1:
        raise InterpError(f"--diversity must be at least 1 (images per unit), got {diversity}")
    layers = [layer]
    shapes, floats_per_image = probe(subject, layers, size)
    shape = shapes[layer]
    if custom:
        first = objective(layer, 0)
        layers = list(dict.fromkeys([layer, *discover_layers(subject, first, size)]))
        if len(layers) > 1:
            shapes, floats_per_image = probe(subject, layers, size)
    if objective == "neuron" and len(shape) != 3:
        raise InterpError(f"the neuron objective needs a layer with spatial positions; {layer} has none "
                          f"(output shape {tuple(shape)}): use --objective channel")
    n_units = shape[0]
    if isinstance(units, str) or units is None:
        unit_list = parse_unit_list(units, n_units, layer=layer)
    else:
        unit_list = parse_unit_list(",".join(str(int(u)) for u in units), n_units, layer=layer)
    if not unit_list:
        raise InterpError(f"no units selected; {layer} has units 0-{n_units - 1}")

    signs = [1.0, -1.0] if negative else [1.0]
    per_unit = diversity * len(signs)
    chunk_units = _chunk_units(subject, per_unit, floats_per_image, batch_size, memory_budget)
    chunks = [unit_list[i:i + chunk_units] for i in range(0, len(unit_list), chunk_units)]

    from tqdm.auto import tqdm

    bar = tqdm(total=steps * len(chunks), desc=f"visualize {layer}", unit="step", disable=not progress or None,
               leave=False)
    n_signs = len(signs)
    u_, k_ = len(unit_list), diversity
    images = torch.zeros(u_, n_signs, k_, 3, size, size)
    values = torch.zeros(u_, n_signs, k_)
    initial = torch.zeros(u_, n_signs, k_)
    history = torch.zeros(steps, u_, n_signs, k_)
    seconds = 0.0
    value_fn = _value_function(objective, layer, custom)
    try:
        for c, chunk in enumerate(chunks):
            # batch layout: unit-major, then sign, then diversity index (diversity groups are contiguous)
            batch_units = torch.tensor([u for u in chunk for _ in signs for _ in range(k_)], device=subject.device)
            batch_signs = torch.tensor([s for _ in chunk for s in signs for _ in range(k_)], device=subject.device)
            seeds = [image_seed(seed, u, k, s < 0) for u in chunk for s in signs for k in range(k_)]

            def gain_fn(T, batch_units=batch_units, batch_signs=batch_signs):
                vals = value_fn(T, batch_units)
                gain = (batch_signs * vals).sum() if negative else vals.sum()
                if k_ > 1:
                    gain = gain - diversity_weight * diversity_penalty(T(layer), vals, k_)
                return gain, vals

            initial_vals = _evaluate(subject, layers, size, seeds, value_fn, batch_units, fft, decorrelate)
            result = optimize_images(subject, layers, seeds, size, gain_fn, steps=steps, lr=lr,
                                     transforms=transforms, fft=fft, decorrelate=decorrelate,
                                     transform_seed=seed + c, on_step=bar.update)
            final_vals = _evaluate(subject, layers, size, None, value_fn, batch_units, fft, decorrelate,
                                   images=result.images)
            lo = unit_list.index(chunk[0])
            sl = slice(lo, lo + len(chunk))
            images[sl] = result.images.view(len(chunk), n_signs, k_, 3, size, size)
            values[sl] = final_vals.view(len(chunk), n_signs, k_)
            initial[sl] = initial_vals.view(len(chunk), n_signs, k_)
            history[:, sl] = result.history.view(steps, len(chunk), n_signs, k_)
            seconds += result.seconds
    finally:
        bar.close()

    tf = Transforms.for_size(size) if transforms is None else transforms
    settings = {
        "layer": layer, "objective": objective if not custom else getattr(objective, "__name__", "custom"),
        "steps": steps, "size": size, "diversity": diversity, "negative": negative, "seed": seed, "lr": lr,
        "optimizer": "adam", "diversity_weight": diversity_weight if diversity > 1 else None,
        "param": {"kind": "fft" if fft else "pixel", "decorrelate": decorrelate, "sd": 0.01,
                  "source": ("Lucent's fft_image maths (lucent.optvis.param.spatial), colour decorrelation applied "
                             "to the spectrum" if fft else "lucent.optvis.param.spatial.pixel_image")},
        "transforms": tf.to_dict() if isinstance(tf, Transforms) else {"kind": "lucent", "functions": [
            getattr(t, "__qualname__", type(t).__name__) for t in tf]},
        "value": {"channel": "mean activation over positions", "neuron": "activation at the centre position"}
        .get(objective if not custom else "", "the objective's value (minus Lucent's loss)"),
    }
    info = {"device": str(subject.device), "chunks": len(chunks), "images_per_chunk": len(chunks[0]) * per_unit,
            "seconds": round(seconds, 3), "run": subject.name}
    fv = FeatureVis(layer, unit_list, images[:, 0], values[:, 0], initial[:, 0], history[:, :, 0], settings,
                    info=info)
    if negative:
        fv.negative_images, fv.negative_values = images[:, 1], values[:, 1]
        fv.negative_initial_values, fv.negative_history = initial[:, 1], history[:, :, 1]
    fv.quality = assess(subject, fv, specific=not custom)
    return fv


def _check_size(subject: Subject, size: int | None) -> int:
    if size is None:
        if subject.input_size is None:
            raise InterpError("give the image size (size=32): a bare module does not say its input size")
        return int(subject.input_size)
    if size < 2:
        raise InterpError(f"--size {size} is too small for {subject.name}; use at least the model's input size "
                          f"({subject.input_size or 'e.g. 32'})")
    return int(size)


def _value_function(objective: Any, layer: str, custom: bool):
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


def diversity_penalty(acts: torch.Tensor, values: torch.Tensor, k: int) -> torch.Tensor:
    """Lucent's diversity term, per group of ``k`` consecutive images, vectorised and scaled.

    Lucent's ``diversity(layer)`` is ``-sum_{i != j} <G_i, G_j> / batch`` over the
    normalised Gram matrices ``G`` of the batch's activations. Here each unit's ``k``
    images form their own group, so images of different units are not pushed apart, and
    each group's similarity is weighted by its mean ``|objective|`` (not differentiated):
    Lucid's fixed weight (``channel - 1e2 * diversity``) suits one layer of one model, a
    relative one suits any layer. Returned as a penalty (positive similarity) to add to
    the loss.
    """
    b, c = acts.shape[:2]
    flat = acts.reshape(b, c, -1)
    grams = F.normalize(torch.bmm(flat, flat.transpose(1, 2)).reshape(b, -1), p=2, dim=1)
    groups = grams.view(b // k, k, -1)
    sim = torch.bmm(groups, groups.transpose(1, 2))  # (G, k, k)
    off_diagonal = sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(1)
    scale = values.detach().abs().view(b // k, k).mean(1)
    return (scale * off_diagonal / k).sum()


def _evaluate(subject: Subject, layers: Sequence[str], size: int, seeds, value_fn, units: torch.Tensor,
              fft: bool, decorrelate: bool, images: torch.Tensor | None = None) -> torch.Tensor:
    """The objective of each image without transforms (of the starting images when ``images`` is None)."""
    with torch.no_grad():
        if images is None:
            _, image_f = image_param(seeds, size, subject.device, fft=fft, decorrelate=decorrelate)
            images = image_f()
        with frozen(subject.model), Recorder(subject.model, layers) as rec:
            acts = rec.run(subject.normalize(images.to(subject.device)))
            return value_fn(lookup(acts, images), units).detach().cpu()


def _chunk_units(subject: Subject, per_unit: int, floats_per_image: int, batch_size: int | None,
                 memory_budget: int) -> int:
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


def unit_ranges(units: Sequence[int]) -> str:
    """Units as ranges, the way ``--units`` takes them.

    >>> unit_ranges([0, 1, 2, 5, 7, 8])
    '0-2,5,7-8'
    """
    parts, units = [], sorted(units)
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1] == units[j] + 1:
            j += 1
        parts.append(str(units[i]) if i == j else f"{units[i]}-{units[j]}")
        i = j + 1
    return ",".join(parts)


# ------------------------------------------------------------------------------- quality

RISE_MARGIN = 0.05
"""An optimisation "did not rise" when ``reached <= start + RISE_MARGIN * |start| + RISE_FLOOR``."""
RISE_FLOOR = 1e-6
FLAT_STD = 0.02
"""An image is "flat" when the standard deviation of all its values (channels and positions
together, on [0, 1]) is below this: a near-uniform, near-grey image, like the noise an
optimisation starts from (std about 0.003) when it never moved. A saturated uniform
colour (e.g. pure red, std 0.47) is not flat: it is what a colour unit wants."""
FAILURE_MESSAGES = {"not-rising": "the objective did not rise", "flat": "the image is flat"}
QUALITY_RULES = {
    "not-rising": f"reached <= start + {RISE_MARGIN} * |start| + {RISE_FLOOR}",
    "flat": f"std of the image's pixel values (all channels, [0, 1]) < {FLAT_STD}",
    "specificity": "rank of the unit among all units of the layer on its own image, by the objective's value "
                   "(z-scored across the layer's units on that image; ties count against the unit); 1 = specific",
    "ratio": "reached / natural (the best natural image's value of the same objective); none when natural <= 0",
}


@dataclass
class UnitQuality:
    """How well one unit's image did (image 0 of a :class:`FeatureVis`).

    ``reached`` and ``start``: the objective on the final image and on the starting noise
    (step 0), without transforms. ``rank``: 1 when, on its own image, the unit is the most
    active unit of its layer (by the same objective, z-scored across the layer's units:
    ``z = (a_own - mean) / std`` over the units); ``z`` that score. ``natural``: the
    largest value of the objective over natural images (see :func:`natural_max`), with the
    image's index. ``failures``: ``"not-rising"`` and/or ``"flat"`` (see
    :data:`QUALITY_RULES`); an image with failures is shown, flagged, never hidden.
    """

    unit: int
    reached: float
    start: float
    pixel_std: float
    rank: int | None = None
    z: float | None = None
    natural: float | None = None
    natural_index: int | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """reached / natural; None without a natural value or when it is not positive (no
        natural image drives the unit up: a ratio would then say nothing)."""
        if self.natural is None or self.natural <= 1e-12:
            return None
        return self.reached / self.natural

    @property
    def specific(self) -> bool | None:
        return None if self.rank is None else self.rank == 1

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def failure_text(self) -> str:
        """``"optimisation failed: the objective did not rise / the image is flat"``, or ``""``."""
        if not self.failures:
            return ""
        return "optimisation failed: " + " / ".join(FAILURE_MESSAGES.get(f, f) for f in self.failures)

    def to_dict(self) -> dict:
        def r(v):
            return None if v is None else round(float(v), 6)
        # the ratio from the rounded values, so that from_dict(to_dict()) gives the same dict
        rounded = UnitQuality(self.unit, r(self.reached), r(self.start), 0.0, natural=r(self.natural))
        return {"unit": int(self.unit), "reached": r(self.reached), "start": r(self.start),
                "pixel_std": r(self.pixel_std), "rank": self.rank, "z": r(self.z), "specific": self.specific,
                "natural": r(self.natural), "natural_index": self.natural_index, "ratio": r(rounded.ratio),
                "failed": self.failed, "failures": list(self.failures), "failure": self.failure_text()}

    @classmethod
    def from_dict(cls, d: dict) -> "UnitQuality":
        return cls(int(d["unit"]), float(d["reached"]), float(d["start"]), float(d["pixel_std"]), d.get("rank"),
                   d.get("z"), d.get("natural"), d.get("natural_index"), list(d.get("failures", [])))


def image_std(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` -> ``(N,)``: the std of each image's values (what "flat" is judged by)."""
    return images.detach().float().flatten(1).std(1, unbiased=False)


def failure_reasons(reached: float, start: float, pixel_std: float) -> list[str]:
    """The failure flags of one image (see :data:`QUALITY_RULES`)."""
    reasons = []
    if not reached > start + RISE_MARGIN * abs(start) + RISE_FLOOR:
        reasons.append("not-rising")
    if pixel_std < FLAT_STD:
        reasons.append("flat")
    return reasons


def layer_values(run: Any, layer: str, images: torch.Tensor, *, objective: str = "channel",
                 batch_size: int = 256, normalize: Callable | None = None) -> torch.Tensor:
    """``(N, C)``: the objective's value for every unit of ``layer`` on each image.

    ``images`` are ``(N, 3, H, W)`` floats in [0, 1] or uint8. ``objective`` ``"channel"``
    is a unit's mean over positions, ``"neuron"`` its centre activation (Lucent's).
    """
    subject = as_subject(run, normalize)
    if objective not in OBJECTIVES:
        raise unknown("objective", str(objective), OBJECTIVES)
    out = []
    with torch.no_grad(), frozen(subject.model), Recorder(subject.model, [layer]) as rec:
        for batch in images.split(batch_size):
            x = batch.float() / 255 if batch.dtype == torch.uint8 else batch.float()
            acts = rec.run(subject.normalize(x.to(subject.device)))[layer]
            if acts.dim() == 4 and objective == "neuron":
                acts = acts[:, :, acts.shape[2] // 2, acts.shape[3] // 2]
            elif acts.dim() > 2:
                acts = acts.flatten(2).mean(2)
            out.append(acts.float().cpu())
    return torch.cat(out)


def specificity(run: Any, layer: str, images: torch.Tensor, units: Sequence[int], *, objective: str = "channel",
                normalize: Callable | None = None) -> tuple[list[int], list[float]]:
    """For each image (the image of ``units[i]``), the rank of its own unit among all units
    of the layer (1 = the most active) and its z-score across the layer's units.

    The values are the objective's (mean over positions for ``channel``) on each image
    without transforms; a unit tied with others counts as below them.
    """
    vals = layer_values(run, layer, images, objective=objective, normalize=normalize)  # (N, C)
    own = vals[torch.arange(len(units)), torch.as_tensor(list(units))]
    others = vals >= own[:, None]
    others[torch.arange(len(units)), torch.as_tensor(list(units))] = False
    ranks = (1 + others.sum(1)).tolist()
    std = vals.std(1, unbiased=False)
    z = torch.where(std > 0, (own - vals.mean(1)) / std.clamp_min(1e-12), torch.zeros_like(own))
    return [int(r) for r in ranks], [float(v) for v in z]


def assess(run: Any, fv: "FeatureVis", *, specific: bool = True,
           normalize: Callable | None = None) -> list[UnitQuality]:
    """The :class:`UnitQuality` of every unit's image 0 (specificity unless ``specific=False``)."""
    images = fv.images[:, 0]
    stds = image_std(images).tolist()
    reached, start = fv.values[:, 0].tolist(), fv.initial_values[:, 0].tolist()
    ranks: list[int | None] = [None] * len(fv.units)
    zs: list[float | None] = [None] * len(fv.units)
    objective = fv.settings.get("objective")
    if specific and objective in OBJECTIVES:
        ranks, zs = specificity(run, fv.layer, images, fv.units, objective=objective, normalize=normalize)
    return [UnitQuality(u, reached[i], start[i], stds[i], ranks[i], zs[i],
                        failures=failure_reasons(reached[i], start[i], stds[i])) for i, u in enumerate(fv.units)]


def specific_share(quality: Sequence[UnitQuality]) -> tuple[int, int]:
    """``(units whose own image ranks them first, units with a rank)``."""
    ranked = [q for q in quality if q.rank is not None]
    return sum(q.rank == 1 for q in ranked), len(ranked)


# ----------------------------------------------------------------------- natural images


@dataclass
class NaturalMax:
    """Each unit's best natural image: the largest value of the objective over a dataset.

    ``indices[i]`` is the image's position in the dataset's test split (the whole split,
    even when only a ``sample`` of it was scanned); ``values[i]`` the objective there (the
    unit's mean activation over positions for ``channel``, as in :func:`visualize`).
    """

    layer: str
    units: list[int]
    values: torch.Tensor  # (U,)
    indices: torch.Tensor  # (U,) long
    objective: str
    dataset: str
    n_images: int
    sample: dict | None = None
    """:meth:`~interp.data.samples.Sample.to_dict` of the scanned subset, None for the whole split."""

    def value(self, unit: int) -> float:
        return float(self.values[self.units.index(unit)])

    def source(self) -> dict:
        return {"dataset": self.dataset, "n_images": self.n_images, "objective": self.objective,
                "sample": self.sample, "split": "test"}

    def to_dict(self) -> dict:
        return {**self.source(), "layer": self.layer, "units": list(self.units),
                "values": [round(float(v), 6) for v in self.values], "indices": [int(i) for i in self.indices]}

    @classmethod
    def from_dict(cls, d: dict) -> "NaturalMax":
        return cls(d["layer"], [int(u) for u in d["units"]], torch.tensor(d["values"], dtype=torch.float32),
                   torch.tensor(d["indices"], dtype=torch.long), d["objective"], d["dataset"], int(d["n_images"]),
                   d.get("sample"))


def split_images(run: Any, data: Any = None, *, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                               list | None, str]:
    """``(images, labels, classes, name)`` of the test split: the run's, or ``data`` (an ImageData, a
    folder path, or a uint8 tensor ``(N, 3, H, W)``, which has no labels, classes or name)."""
    if isinstance(data, torch.Tensor):
        return data, None, None, "tensor"
    if data is None:
        if not hasattr(run, "load_data"):
            raise InterpError("give the images: data=ImageData, a folder path or a uint8 tensor "
                              "(a bare module has no dataset)")
        if getattr(getattr(run, "config", None), "family", "") == "inception":
            raise InterpError("InceptionV1 comes without a dataset; give one with --dataset FOLDER "
                              "(train/ and test/ subfolders of 224 px images)")
        data = run.load_data(progress=progress, split="test")
    elif isinstance(data, (str, Path)):
        from ...data.images import load_image_data

        data = load_image_data(str(data), progress=progress)
    labels = getattr(data, "test_y", None)
    if labels is not None and len(labels) != len(data.test_x):
        labels = None
    return data.test_x, labels, getattr(data, "classes", None), str(getattr(data, "name", "data"))


def natural_max(run: Any, layer: str, units: str | Sequence[int] | None = None, *, objective: str = "channel",
                data: Any = None, sample: int | None = None, seed: int = 0, batch_size: int = 256,
                normalize: Callable | None = None, progress: bool = False) -> NaturalMax:
    """The best natural image of each unit: the max of the objective over the test split, or
    over a seeded stratified ``sample`` of it (:func:`interp.data.samples.stratified_sample`).

    The objective is the one :func:`visualize` maximises (``channel``: the mean over
    positions, not the max over positions that dataset examples rank by), so
    ``visualize(...).values / natural_max(...).values`` compares like with like. Ties go to
    the earlier image.

    >>> nat = natural_max(run, "conv2", sample=2000)
    >>> fv = visualize(run, "conv2").attach_natural(nat)
    >>> fv.quality[0].ratio
    """
    from ...data.samples import random_sample, stratified_sample
    from ...units import parse_unit_list

    images, labels, classes, name = split_images(run, data, progress=progress)
    if images.dim() != 4 or len(images) == 0:
        raise InterpError(f"expected (N, 3, H, W) test images, got {tuple(images.shape)}")
    chosen = None
    if sample is not None and sample < len(images):
        chosen = (stratified_sample(labels, sample, seed=seed, classes=classes) if labels is not None
                  else random_sample(len(images), sample, seed=seed))
        index = chosen.indices
    else:
        index = torch.arange(len(images))
    vals = layer_values(run, layer, images[index], objective=objective, batch_size=batch_size, normalize=normalize)
    n_units = vals.shape[1]
    unit_list = (parse_unit_list(units, n_units, layer=layer) if units is None or isinstance(units, str)
                 else parse_unit_list(",".join(str(int(u)) for u in units), n_units, layer=layer))
    picked = vals[:, unit_list]
    best, where = picked.max(0)  # first maximum: the earlier image on ties
    return NaturalMax(layer, unit_list, best, index[where], objective, name, len(index),
                      chosen.to_dict() if chosen is not None else None)


# ---------------------------------------------------------------------- accentuation

ACCENT_STEPS = 64
ACCENT_WEIGHT = 1.0
ACCENT_REFERENCE = 0.1
"""RMS pixel distance (on [0, 1]) at which the accentuation penalty equals ``weight`` times the
unit's activation on its starting image."""


@dataclass
class Accentuation:
    """Feature accentuations (Hamblin, Fel, Serre et al. 2024): each unit's image optimised
    from a natural image, kept close to it. See :func:`accentuate`."""

    layer: str
    units: list[int]
    images: torch.Tensor  # (U, 3, H, W) in [0, 1]: the accentuated images
    start_images: torch.Tensor  # (U, 3, H, W): the natural images they started from
    values: torch.Tensor  # (U,) the objective on the accentuated images
    start_values: torch.Tensor  # (U,) the objective on the natural images
    initial_values: torch.Tensor  # (U,) the objective on the parameterisation's step-0 image
    distances: torch.Tensor  # (U,) RMS pixel distance (on [0, 1]) from the start
    history: torch.Tensor  # (steps, U) the objective at each step (under transforms)
    settings: dict
    info: dict = field(default_factory=dict)

    def index(self, unit: int) -> int:
        try:
            return self.units.index(unit)
        except ValueError:
            raise InterpError(f"unit {unit} of {self.layer} was not accentuated; units: "
                              f"{unit_ranges(self.units)}") from None


def accentuate(run_or_subject: Any, layer: str, units: str | Sequence[int] | None, images: torch.Tensor, *,
               steps: int = ACCENT_STEPS, weight: float = ACCENT_WEIGHT, seed: int = 0, lr: float = DEFAULT_LR,
               objective: str = "channel", transforms: Transforms | None = None, fft: bool = True,
               decorrelate: bool = True, batch_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
               normalize: Callable | None = None, progress: bool = False) -> Accentuation:
    """Feature accentuation: optimise each unit's image starting from a natural image.

    ``images[i]`` (``(U, 3, H, W)``, floats in [0, 1] or uint8) is the start for
    ``units[i]``, typically its best natural image (:func:`natural_max`). The image is
    parameterised as in :func:`visualize` (Lucent's decorrelated FFT, by default), with
    the parameters set so that step 0 is the natural image (:func:`image_param`'s
    ``init``). Each step maximises ``value - weight * s * (d / ACCENT_REFERENCE) ** 2``,
    ``d`` the RMS pixel distance from the start and ``s`` the unit's value on the start
    (at least 1e-6), so the penalty is on the objective's own scale; fewer ``steps`` keep
    it closer too. Transforms as in :func:`visualize` (:meth:`Transforms.for_size`).

    >>> nat = natural_max(run, "conv2")
    >>> start = run.load_data(split="test").test_x[nat.indices]
    >>> acc = accentuate(run, "conv2", nat.units, start, steps=64)
    >>> acc.values / acc.start_values            # how much more the unit responds
    """
    from ...units import parse_unit_list

    subject = as_subject(run_or_subject, normalize)
    get_module(subject.model, layer)
    if objective not in OBJECTIVES:
        raise unknown("objective", str(objective), OBJECTIVES)
    if steps < 0:
        raise InterpError(f"steps must be at least 0, got {steps}")
    images = torch.as_tensor(images).detach()
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise InterpError(f"starting images must be (units, 3, H, H); got {tuple(images.shape)}")
    size = images.shape[-1]
    shapes, floats_per_image = probe(subject, [layer], size)
    n_units = shapes[layer][0]
    unit_list = (parse_unit_list(units, n_units, layer=layer) if units is None or isinstance(units, str)
                 else parse_unit_list(",".join(str(int(u)) for u in units), n_units, layer=layer))
    if len(unit_list) != len(images):
        raise InterpError(f"one starting image per unit: {len(unit_list)} units, {len(images)} images")
    if objective == "neuron" and len(shapes[layer]) != 3:
        raise InterpError(f"the neuron objective needs a layer with spatial positions; {layer} has none")
    start_images = images.clamp(0, 1)
    value_fn = _value_function(objective, layer, False)
    chunk_units = _chunk_units(subject, 1, floats_per_image, batch_size, memory_budget)
    u_ = len(unit_list)
    out = torch.zeros(u_, 3, size, size)
    values, start_values, initial, history = (torch.zeros(u_), torch.zeros(u_), torch.zeros(u_),
                                              torch.zeros(steps, u_))
    seconds = 0.0
    from tqdm.auto import tqdm

    with tqdm(total=steps * math.ceil(u_ / chunk_units), desc=f"accentuate {layer}", unit="step",
              disable=not progress or None, leave=False) as bar:
        for lo in range(0, u_, chunk_units):
            sl = slice(lo, min(u_, lo + chunk_units))
            chunk = unit_list[sl]
            x0 = start_images[sl].to(subject.device)
            batch_units = torch.tensor(chunk, device=subject.device)
            seeds = [image_seed(seed, u, 0) for u in chunk]
            nat = _evaluate(subject, [layer], size, None, value_fn, batch_units, fft, decorrelate, images=x0)
            scale = nat.abs().clamp_min(1e-6).to(subject.device)
            with torch.no_grad():
                _, start_f = image_param(seeds, size, subject.device, fft=fft, decorrelate=decorrelate, init=x0)
                first = start_f()
            init_vals = _evaluate(subject, [layer], size, None, value_fn, batch_units, fft, decorrelate, images=first)

            def gain_fn(T, batch_units=batch_units, x0=x0, scale=scale):
                vals = value_fn(T, batch_units)
                d2 = (T("input") - x0).pow(2).flatten(1).mean(1)
                return (vals - weight * scale * d2 / ACCENT_REFERENCE ** 2).sum(), vals

            if steps:
                result = optimize_images(subject, [layer], seeds, size, gain_fn, steps=steps, lr=lr,
                                         transforms=transforms, fft=fft, decorrelate=decorrelate,
                                         transform_seed=seed, on_step=bar.update, init=x0)
                final, seconds = result.images, seconds + result.seconds
                history[:, sl] = result.history
            else:
                final = first.cpu()
            out[sl] = final
            values[sl] = _evaluate(subject, [layer], size, None, value_fn, batch_units, fft, decorrelate,
                                   images=final)
            start_values[sl], initial[sl] = nat, init_vals
    distances = (out - start_images).pow(2).flatten(1).mean(1).sqrt()
    tf = Transforms.for_size(size) if transforms is None else transforms
    settings = {"layer": layer, "objective": objective, "steps": steps, "weight": weight,
                "reference_distance": ACCENT_REFERENCE, "seed": seed, "lr": lr, "size": size,
                "param": {"kind": "fft" if fft else "pixel", "decorrelate": decorrelate,
                          "init": "the natural image (sigmoid, colour decorrelation and FFT inverted)"},
                "transforms": tf.to_dict(),
                "penalty": "weight * |value on the start| * (rms pixel distance / reference_distance) ** 2",
                "method": "feature accentuation (Hamblin, Fel, Serre et al. 2024): optimised from a natural image"}
    info = {"device": str(subject.device), "seconds": round(seconds, 3), "run": subject.name}
    return Accentuation(layer, unit_list, out, start_images.cpu(), values, start_values, initial, distances, history,
                        settings, info)


def accent_file(unit: int, which: str = "") -> str:
    """``unit_0005.png`` (the accentuated image), ``unit_0005_start.png`` (the natural start)."""
    return f"unit_{unit:04d}" + (f"_{which}" if which else "") + ".png"


def save_accentuation(acc: Accentuation, directory: str | Path, *, natural: NaturalMax | None = None) -> Path:
    """PNGs (accentuated and start), ``index.json`` (values, distances, settings, and the
    natural source when given); the folder is replaced atomically."""
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        units = {}
        for i, u in enumerate(acc.units):
            write_bytes(tmp / accent_file(u), encode_png(to_uint8(acc.images[i])))
            write_bytes(tmp / accent_file(u, "start"), encode_png(to_uint8(acc.start_images[i])))
            entry = {"image": accent_file(u), "start_image": accent_file(u, "start"),
                     "value": round(float(acc.values[i]), 6), "start_value": round(float(acc.start_values[i]), 6),
                     "initial_value": round(float(acc.initial_values[i]), 6),
                     "distance": round(float(acc.distances[i]), 6)}
            if natural is not None and u in natural.units:
                j = natural.units.index(u)
                entry["natural_index"] = int(natural.indices[j])
                entry["natural_value"] = round(float(natural.values[j]), 6)
            units[str(u)] = entry
        index = {"kind": "accentuation", "layer": acc.layer, "settings": jsonable(acc.settings),
                 "info": jsonable(acc.info), "units": units}
        if natural is not None:
            index["natural"] = natural.to_dict()
        save_tensors(tmp / "history.safetensors", {"history": acc.history.contiguous()})
        write_json(tmp / "index.json", index)
    return directory


def load_accentuation(directory: str | Path) -> Accentuation:
    """Read a folder written by :func:`save_accentuation` (images 8-bit quantised)."""
    directory = Path(directory)
    index = _read_index(directory)
    if index is None or index.get("kind") != "accentuation":
        raise InterpError(f"no feature accentuation in {directory} (index.json missing)")
    from safetensors.torch import load_file

    units = sorted(int(u) for u in index["units"])
    entries = [index["units"][str(u)] for u in units]
    hist_file = directory / "history.safetensors"
    history = load_file(str(hist_file))["history"] if hist_file.exists() else torch.zeros(0, len(units))

    def vals(key):
        return torch.tensor([e[key] for e in entries], dtype=torch.float32)

    return Accentuation(index["layer"], units, torch.stack([decode_png(directory / e["image"]) for e in entries]),
                        torch.stack([decode_png(directory / e["start_image"]) for e in entries]), vals("value"),
                        vals("start_value"), vals("initial_value"), vals("distance"), history, index["settings"],
                        index.get("info", {}))


# ------------------------------------------------------------------------ saved renderings


def settings_key(settings: dict) -> str:
    """A folder-name suffix for the settings that tell renderings apart:
    ``channel-512steps-seed0-neg``, ``channel-256steps-div4-seed0``."""
    parts = [str(settings.get("objective")), f"{settings.get('steps')}steps"]
    if int(settings.get("diversity") or 1) > 1:
        parts.append(f"div{settings['diversity']}")
    parts.append(f"seed{settings.get('seed', 0)}")
    if settings.get("negative"):
        parts.append("neg")
    return "-".join(parts)


def settings_match(saved: dict, wanted: dict) -> bool:
    """Whether a saved rendering has the ``wanted`` settings: each wanted key equal, except
    that a rendering with negatives also serves one without (each image has its own seed
    and transform stream, so the maximising images do not depend on whether negatives
    were rendered beside them)."""
    for key, value in wanted.items():
        have = saved.get(key)
        if key == "negative" and not value:
            continue
        if isinstance(value, float) and isinstance(have, (int, float)):
            if not math.isclose(value, have, rel_tol=1e-9):
                return False
        elif have != value:
            return False
    return True


# --------------------------------------------------------------- free-form Lucent objectives


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
    size = _check_size(subject, size)
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


# ------------------------------------------------------------------------------ files


def unit_file(unit: int, k: int = 0, negative: bool = False) -> str:
    """The stable PNG name of one image: ``unit_0005.png``, ``unit_0005_div1.png``, ``unit_0005_neg.png``."""
    return f"unit_{unit:04d}" + ("_neg" if negative else "") + (f"_div{k}" if k else "") + ".png"


def image_grid(tiles: Sequence[torch.Tensor], *, columns: int | None = None, min_tile: int = 64,
               gap: int = 2, background: int = 255) -> torch.Tensor:
    """``(3, h, w)`` float tiles -> one ``(H, W, 3)`` uint8 grid, enlarged (nearest) so a tile
    is at least ``min_tile`` px, on a ``background`` grey level (white)."""
    n = len(tiles)
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    h, w = tiles[0].shape[1:]
    zoom = max(1, math.ceil(min_tile / max(h, w)))
    th, tw = h * zoom, w * zoom
    grid = torch.full((rows * (th + gap) + gap, columns * (tw + gap) + gap, 3), background, dtype=torch.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        big = to_uint8(tile).repeat_interleave(zoom, 0).repeat_interleave(zoom, 1)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        grid[y:y + th, x:x + tw] = big
    return grid


def save_featvis(result: FeatureVis, directory: str | Path) -> Path:
    """Write PNGs, ``grid.png``, ``history.safetensors`` and ``index.json`` into ``directory``.

    The folder is replaced atomically. Units rendered earlier with the same settings
    stay (rendering ``--units 0-7`` then ``8-15`` fills one folder); different settings
    replace the folder. Returns the folder.
    """
    directory = Path(directory)
    old = _read_index(directory)
    keep: dict[str, dict] = {}
    if old and old.get("settings") == jsonable(result.settings):
        keep = {u: e for u, e in old.get("units", {}).items() if int(u) not in result.units}
    with atomic_dir(directory) as tmp:
        entries: dict[str, dict] = {}
        tensors: dict[str, torch.Tensor] = {}
        for u, entry in keep.items():
            for name in entry["images"] + entry.get("negative_images", []):
                shutil.copy2(directory / name, tmp / name)
            entries[u] = entry
        if keep and (directory / "history.safetensors").exists():
            from safetensors.torch import load_file

            old_hist = load_file(str(directory / "history.safetensors"))
            tensors.update({k: v for k, v in old_hist.items() if str(int(k.split("_")[1])) in keep})
        k_ = result.images.shape[1]
        for i, u in enumerate(result.units):
            entry = {"images": [], "values": [round(float(v), 6) for v in result.values[i]],
                     "initial_values": [round(float(v), 6) for v in result.initial_values[i]]}
            for k in range(k_):
                entry["images"].append(unit_file(u, k))
                write_bytes(tmp / unit_file(u, k), encode_png(to_uint8(result.images[i, k])))
            tensors[f"unit_{u:04d}"] = result.history[:, i]
            if result.negative_images is not None:
                entry["negative_images"] = []
                entry["negative_values"] = [round(float(v), 6) for v in result.negative_values[i]]
                entry["negative_initial_values"] = [round(float(v), 6) for v in result.negative_initial_values[i]]
                for k in range(k_):
                    entry["negative_images"].append(unit_file(u, k, True))
                    write_bytes(tmp / unit_file(u, k, True), encode_png(to_uint8(result.negative_images[i, k])))
                tensors[f"unit_{u:04d}_neg"] = result.negative_history[:, i]
            if result.quality is not None:
                entry["quality"] = result.quality[i].to_dict()
            entries[str(u)] = entry
        order = sorted(entries, key=int)
        tiles = [_tile(tmp, entries[u]["images"][0]) for u in order]
        write_bytes(tmp / "grid.png", encode_png(image_grid(tiles)))
        index = {"kind": "featvis", "layer": result.layer, "settings": jsonable(result.settings),
                 "info": jsonable(result.info), "grid": "grid.png", "history": "history.safetensors",
                 "units": {u: entries[u] for u in order}}
        if all("quality" in entries[u] for u in order):
            ranked = [entries[u]["quality"] for u in order if entries[u]["quality"].get("rank") is not None]
            index["quality"] = {"rules": QUALITY_RULES,
                                "failed_units": [int(u) for u in order if entries[u]["quality"]["failed"]],
                                "specific_units": sum(q["rank"] == 1 for q in ranked), "ranked_units": len(ranked),
                                "natural": jsonable(result.natural_source)}
        if result.negative_images is not None and all("negative_images" in entries[u] for u in order):
            write_bytes(tmp / "grid_neg.png",
                        encode_png(image_grid([_tile(tmp, entries[u]["negative_images"][0]) for u in order])))
            index["grid_negative"] = "grid_neg.png"
        save_tensors(tmp / "history.safetensors", {k: v.contiguous() for k, v in tensors.items()})
        write_json(tmp / "index.json", index)
    return directory


def load_featvis(directory: str | Path) -> FeatureVis:
    """Read a folder written by :func:`save_featvis` (images come back 8-bit quantised)."""
    directory = Path(directory)
    index = _read_index(directory)
    if index is None:
        raise InterpError(f"no feature visualisation in {directory} (index.json missing); "
                          f"render one with: interp visualize --layer LAYER")
    from safetensors.torch import load_file

    hist_file = directory / index.get("history", "history.safetensors")
    hist = load_file(str(hist_file)) if hist_file.exists() else {}
    units = sorted(int(u) for u in index["units"])
    entries = [index["units"][str(u)] for u in units]

    def stack(key):
        return torch.stack([torch.stack([decode_png(directory / f) for f in e[key]]) for e in entries])

    def values(key):
        return torch.tensor([e[key] for e in entries], dtype=torch.float32)

    def history(suffix):
        found = [hist.get(f"unit_{u:04d}{suffix}") for u in units]
        return torch.stack(found, 1) if found and all(h is not None for h in found) else torch.zeros(0)

    fv = FeatureVis(index["layer"], units, stack("images"), values("values"), values("initial_values"),
                    history(""), index["settings"], info=index.get("info", {}))
    if entries and all("quality" in e for e in entries):
        fv.quality = [UnitQuality.from_dict(e["quality"]) for e in entries]
        fv.natural_source = (index.get("quality") or {}).get("natural")
    if entries and all("negative_images" in e for e in entries):
        fv.negative_images, fv.negative_values = stack("negative_images"), values("negative_values")
        fv.negative_initial_values, fv.negative_history = values("negative_initial_values"), history("_neg")
    return fv


def _tile(directory: Path, name: str) -> torch.Tensor:
    return decode_png(directory / name)


def _read_index(directory: Path) -> dict | None:
    file = directory / "index.json"
    if not file.exists():
        return None
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InterpError(f"{file} is corrupt (not valid JSON: {e}); delete the folder and render again") from None


# ------------------------------------------------------------------------------ the demo


def demo_stage(ctx) -> None:
    """``interp demo`` stage: feature visualisation, dataset examples and weights of conv1/conv2."""
    from .examples import dataset_examples, save_examples
    from .weights import layer_weights, save_weights

    run = ctx.run
    root = run.report_dir()
    steps = 128 if ctx.quick else 512
    # conv1's output is linear in the image, so its mean over positions barely depends on
    # the pattern: its centre neuron shows the filter; conv2 (after ReLU and pooling) tiles
    for layer, objective in (("conv1", "neuron"), ("conv2", "channel")):
        fv = visualize(run, layer, objective=objective, steps=steps, negative=True, progress=ctx.progress)
        path = save_featvis(fv, root / "featvis" / layer)
        print(f"  featvis {layer}: {len(fv.units)} units in {fv.info['seconds']:.1f}s -> {path}")
        examples = dataset_examples(run, layer, k=9, progress=ctx.progress)
        save_examples(examples, root / "examples" / layer)
        save_weights(layer_weights(run, layer), root / "weights" / layer)
    ctx.outputs["feature visualisation"] = root / "featvis" / "conv2" / "grid.png"
    ctx.outputs["dataset examples"] = root / "examples" / "conv2"
    ctx.outputs["weights"] = root / "weights" / "conv1"
