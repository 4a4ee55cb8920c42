"""Input attribution: which pixels did the model use for one decision?

One verb for every method, as in Captum: :func:`attribute` takes a run (or a bare
model), a batch of images and a target class, and returns an :class:`Attribution` whose
maps are shaped like the inputs, one per method::

    >>> run = interp.load_run("tutorial")
    >>> images, labels = load_examples(run, [0, 1, 2])          # test images 0-2, uint8
    >>> attr = attribute(run, images, target=None, methods=["ig", "gradcam"], steps=32)
    >>> attr.maps["ig"].shape                                    # like the inputs
    torch.Size([3, 3, 32, 32])
    >>> attr.completeness.max_relative_error < 0.05              # IG's sum vs f(x) - f(baseline)
    True
    >>> save_attribution(attr)                                   # reports/tutorial/attribution/...

The methods are Captum's, registered in :data:`METHODS` under short names. The name grid
is the same one level down: ``ig`` is IntegratedGradients here and
LayerIntegratedGradients in :mod:`interp.analysis.attribution.units`.

=============== ========================================== ============ ========
name            Captum                                     baseline     channels
=============== ========================================== ============ ========
saliency        Saliency (absolute gradient)               -            max
ig              IntegratedGradients                        ``baseline`` sum
smoothgrad      NoiseTunnel(Saliency), smoothgrad          -            max
gradcam         LayerGradCam, then LayerAttribution.       -            mean
                interpolate (bilinear) to the input size
occlusion       Occlusion (``window`` px, ``stride`` px)   ``baseline`` mean
guided-backprop GuidedBackprop                             -            sum
deeplift        DeepLift                                   ``baseline`` sum
=============== ========================================== ============ ========

The run's model takes normalised inputs, so baselines live in normalised space:
``black`` is a black image (0 before normalisation, ``-mean/std`` after), ``mean`` the
dataset's mean colour (0 after normalisation), ``blur`` a Gaussian-blurred copy of the
input. For a bare model (no normalisation known) ``black`` and ``mean`` are both zeros.
The last column says how a map's channels fold into one value per pixel
(:meth:`Attribution.pixel_map`): ``sum`` keeps IG's and DeepLift's completeness,
``max`` is Simonyan et al.'s convention for gradient magnitudes, ``mean`` is for maps
that are the same in every channel (Grad-CAM and occlusion, broadcast to the input).

Every Captum call runs inside :func:`no_new_hooks`, so the model is left with the hooks
it had (normally none), also when a method raises.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InterpError, unknown
from ...hooks import eval_mode, get_module, no_new_hooks
from ...io import npz_bytes, write_bytes, write_json
from ...subject import Subject, as_subject as subject_of
from ...plots import save_figure

# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class AttributionOptions:
    """Settings shared by the methods; every field can be passed to :func:`attribute`."""

    baseline: str = "black"
    """black | mean | blur: the reference input of ig, deeplift and occlusion (see module doc)."""
    steps: int = 50
    """Integrated Gradients: points on the path from the baseline (Captum's default, Gauss-Legendre)."""
    samples: int = 16
    """SmoothGrad: noisy copies averaged per image."""
    noise: float = 0.15
    """SmoothGrad: noise standard deviation as a fraction of the input's value range (Smilkov et al.: 10-20%).

    The range is that of valid images (0..1 before the run's normalisation); for a bare
    model, the image's own max - min."""
    window: int = 0
    """Occlusion: square window in pixels; 0 means an eighth of the input (4 px at 32 px)."""
    stride: int = 0
    """Occlusion: step between windows; 0 means half the window."""
    gradcam_layer: str = ""
    """Grad-CAM: the layer whose maps are weighted; empty means the last convolutional layer."""
    batch_size: int = 16
    """Images per Captum call (memory, not results: only SmoothGrad is random, and it is seeded per image)."""
    seed: int = 0
    """SmoothGrad noise: image i of the batch uses seed + i."""

    def check(self) -> "AttributionOptions":
        if self.baseline not in BASELINES:
            raise unknown("baseline", self.baseline, BASELINES)
        for name in ("steps", "samples", "batch_size"):
            if getattr(self, name) < 1:
                raise InterpError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("window", "stride"):
            if getattr(self, name) < 0:
                raise InterpError(f"{name} must be >= 0 (0 picks a default), got {getattr(self, name)}")
        if self.noise < 0:
            raise InterpError(f"noise must be >= 0, got {self.noise}")
        return self


BASELINES = ("black", "mean", "blur")


def make_options(options: AttributionOptions | None = None, **overrides: Any) -> AttributionOptions:
    """:class:`AttributionOptions` with keyword overrides; an unknown keyword is an error listing the valid ones."""
    options = options or AttributionOptions()
    valid = [f.name for f in fields(AttributionOptions)]
    for key in overrides:
        if key not in valid:
            raise unknown("attribution option", key, valid)
    return replace(options, **overrides).check()


# --------------------------------------------------------------------------- the subject


def as_subject(run_or_model: Any) -> Subject:
    """The :class:`~interp.subject.Subject` of a run or model, refusing runs that are not image classifiers."""
    config = getattr(run_or_model, "config", None)
    if config is not None and hasattr(run_or_model, "model") and config.task != "image-classification":
        raise InterpError(f"run {run_or_model.name} is a {config.task} run; image attribution needs an "
                          f"image classifier (for language models: "
                          f"interp.analysis.attribution.tokens.attribute_tokens)")
    if not isinstance(run_or_model, (Subject, nn.Module)) and config is None:
        raise TypeError(f"expected a Run or an nn.Module, got {type(run_or_model).__name__}")
    return subject_of(run_or_model)


# --------------------------------------------------------------------------- warnings


@contextlib.contextmanager
def quiet_captum() -> Iterator[None]:
    # GuidedBackprop and DeepLift warn on every call that they set (and will remove) hooks.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*hooks.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*backward hook.*")
        warnings.filterwarnings("ignore", message=".*did not already require gradients.*", category=UserWarning)
        yield


# --------------------------------------------------------------------------- baselines


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (N, C, H, W) batch, edges replicated."""
    radius = max(1, int(np.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def make_baseline(subject: Subject, inputs: torch.Tensor, kind: str) -> torch.Tensor:
    """The reference input for each image, in the model's (normalised) space.

    ``black``: a black image; ``mean``: the dataset mean colour (zero after normalising);
    ``blur``: the image blurred with sigma = an eighth of its size.
    """
    if kind == "blur":
        return gaussian_blur(inputs, sigma=max(inputs.shape[-1] / 8.0, 0.5))
    if kind == "black" and subject.mean is not None:
        black = subject.to_model_input(torch.zeros(1, *inputs.shape[1:], device=inputs.device))
        return black.expand_as(inputs).contiguous()
    if kind in ("black", "mean"):
        return torch.zeros_like(inputs)
    raise unknown("baseline", kind, BASELINES)


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """One attribution method: its short name, the Captum class behind it and how to show it."""

    name: str
    title: str
    captum: str
    reduce: str
    """How channels fold into one value per pixel: sum | max | mean."""
    signed: bool
    """Whether the map has meaningful signs (diverging colours) or is a magnitude."""
    compute: Callable[["MethodCall"], torch.Tensor]
    uses_baseline: bool = False
    needs_conv: bool = False


@dataclass
class MethodCall:
    """What a method's compute function gets: one chunk of images and the settings."""

    subject: Subject
    inputs: torch.Tensor  # (B, C, H, W) normalised, on the model's device
    targets: torch.Tensor  # (B,)
    baselines: torch.Tensor  # (B, C, H, W)
    options: AttributionOptions
    first_index: int  # position of the chunk's first image in the whole batch (seeds)

    @property
    def model(self) -> nn.Module:
        return self.subject.model


METHODS: dict[str, Method] = {}


def register_method(name: str, *, title: str, captum: str, reduce: str, signed: bool,
                    uses_baseline: bool = False, needs_conv: bool = False):
    """Decorator adding ``compute(call) -> maps`` to :data:`METHODS` under ``name``."""
    def decorate(compute):
        METHODS[name] = Method(name, title, captum, reduce, signed, compute, uses_baseline, needs_conv)
        return compute
    return decorate


@register_method("saliency", title="Saliency", captum="Saliency", reduce="max", signed=False)
def _saliency(call: MethodCall) -> torch.Tensor:
    from captum.attr import Saliency

    return Saliency(call.model).attribute(call.inputs, target=call.targets)


@register_method("ig", title="Integrated Gradients", captum="IntegratedGradients", reduce="sum", signed=True,
                 uses_baseline=True)
def _integrated_gradients(call: MethodCall) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    return IntegratedGradients(call.model).attribute(call.inputs, baselines=call.baselines, target=call.targets,
                                                     n_steps=call.options.steps)


@register_method("smoothgrad", title="SmoothGrad", captum="NoiseTunnel(Saliency)", reduce="max", signed=False)
def _smoothgrad(call: MethodCall) -> torch.Tensor:
    from captum.attr import NoiseTunnel, Saliency

    tunnel = NoiseTunnel(Saliency(call.model))
    maps = []
    # One image at a time with its own seed, so a map does not depend on the batch it came in.
    for i in range(len(call.inputs)):
        x = call.inputs[i:i + 1]
        with seeded(call.options.seed + call.first_index + i, x.device):
            maps.append(tunnel.attribute(x, nt_type="smoothgrad", nt_samples=call.options.samples,
                                         stdevs=smoothgrad_stdev(call.subject, x, call.options),
                                         target=call.targets[i:i + 1]))
    return torch.cat(maps)


@register_method("gradcam", title="Grad-CAM", captum="LayerGradCam", reduce="mean", signed=False, needs_conv=True)
def _gradcam(call: MethodCall) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    layer = get_module(call.model, gradcam_layer(call.subject, call.options))
    cam = LayerGradCam(call.model, layer).attribute(call.inputs, target=call.targets, relu_attributions=True)
    up = LayerAttribution.interpolate(cam, tuple(call.inputs.shape[-2:]), interpolate_mode="bilinear")
    return up.expand_as(call.inputs).contiguous()  # the same map in every channel, shaped like the inputs


@register_method("occlusion", title="Occlusion", captum="Occlusion", reduce="mean", signed=True, uses_baseline=True)
def _occlusion(call: MethodCall) -> torch.Tensor:
    from captum.attr import Occlusion

    c = call.inputs.shape[1]
    window, stride = occlusion_window(call.inputs.shape[-1], call.options)
    return Occlusion(call.model).attribute(call.inputs, sliding_window_shapes=(c, window, window),
                                           strides=(c, stride, stride), baselines=call.baselines,
                                           target=call.targets, perturbations_per_eval=64)


@register_method("guided-backprop", title="Guided Backprop", captum="GuidedBackprop", reduce="sum", signed=True)
def _guided_backprop(call: MethodCall) -> torch.Tensor:
    from captum.attr import GuidedBackprop

    return GuidedBackprop(call.model).attribute(call.inputs, target=call.targets)


@register_method("deeplift", title="DeepLift", captum="DeepLift", reduce="sum", signed=True, uses_baseline=True)
def _deeplift(call: MethodCall) -> torch.Tensor:
    from captum.attr import DeepLift

    return DeepLift(call.model).attribute(call.inputs, target=call.targets, baselines=call.baselines)


ALL_METHODS: tuple[str, ...] = tuple(METHODS)


def smoothgrad_stdev(subject: Subject, inputs: torch.Tensor, options: AttributionOptions) -> float:
    return options.noise * subject.value_range(inputs)


def occlusion_window(size: int, options: AttributionOptions) -> tuple[int, int]:
    """(window, stride) in pixels: by default an eighth of the input and half of that."""
    window = options.window or max(1, size // 8)
    stride = options.stride or max(1, window // 2)
    if window > size:
        raise InterpError(f"occlusion window {window} px is larger than the {size} px input")
    return window, stride


def gradcam_layer(subject: Subject, options: AttributionOptions) -> str:
    """The Grad-CAM layer: the option, else the last layer with spatial output."""
    if options.gradcam_layer:
        return options.gradcam_layer
    layers = subject.spatial_layers()
    if not layers:
        raise InterpError("gradcam needs a convolutional layer and this model has none; "
                          "leave gradcam out of --methods")
    return layers[-1]


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generator inside the block and restore its state after it."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def parse_methods(methods: str | Sequence[str] | None, subject: Subject | None = None) -> list[str]:
    """``"ig,saliency"`` or a list -> validated method names; ``None``/``"all"`` -> every applicable one."""
    if methods is None or methods == "all" or methods == ["all"]:
        if subject is not None and not subject.spatial_layers():  # an MLP: no layer for Grad-CAM
            return [n for n in ALL_METHODS if not METHODS[n].needs_conv]
        return list(ALL_METHODS)
    if isinstance(methods, str):
        methods = [m for m in methods.replace(" ", "").split(",") if m]
    if not methods:
        raise InterpError("no methods given; choose from " + ", ".join(ALL_METHODS))
    for m in methods:
        if m not in METHODS:
            raise unknown("method", m, ALL_METHODS)
    return list(dict.fromkeys(methods))


# --------------------------------------------------------------------------- targets


def resolve_class(value: int | str, classes: Sequence[str]) -> int:
    """A class index from an index or a class name; an error listing the classes otherwise.

    >>> resolve_class("circle", ["line", "circle"])
    1
    """
    listing = ", ".join(f"{i}={c}" for i, c in enumerate(classes)) if classes else ""
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        if value in classes:
            return list(classes).index(value)
        raise unknown("class name", value, classes)
    index = int(value)
    n = len(classes)
    if n and not 0 <= index < n:
        raise InterpError(f"class index {index} is out of range; classes: {listing}")
    if index < 0:
        raise InterpError(f"class index {index} is out of range (must be >= 0)")
    return index


def resolve_targets(target: Any, n: int, classes: Sequence[str], logits: torch.Tensor) -> torch.Tensor:
    """Per-image target classes: ``None`` (the prediction), one class for all, or one per image."""
    if target is None:
        return logits.argmax(1).cpu()
    if isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim == 0:
        target = int(target)
    if isinstance(target, (int, str, np.integer)):
        out = torch.full((n,), resolve_class(target, classes), dtype=torch.long)
    else:
        values = target.tolist() if isinstance(target, (torch.Tensor, np.ndarray)) else list(target)
        if len(values) != n:
            raise InterpError(f"got {len(values)} targets for {n} images; give one target or one per image")
        out = torch.tensor([resolve_class(v, classes) for v in values], dtype=torch.long)
    k = logits.shape[1]
    if (out >= k).any():
        raise InterpError(f"target {int(out.max())} is out of range for a model with {k} outputs")
    return out


# --------------------------------------------------------------------------- the result


@dataclass
class Attribution:
    """Maps for a batch of images, one per method, each shaped like the inputs.

    ``maps[method][i]`` explains ``targets[i]`` for image ``i``; ``pixel_map(method)``
    folds the channels into one value per pixel for plotting and ranking.
    """

    inputs: torch.Tensor
    """(N, C, H, W) the model's (normalised) inputs."""
    images: torch.Tensor
    """(N, C, H, W) the same images in [0, 1], for display."""
    targets: torch.Tensor
    """(N,) the class each map explains."""
    probs: torch.Tensor
    """(N, K) softmax of the model's output."""
    maps: dict[str, torch.Tensor]
    baselines: torch.Tensor
    """(N, C, H, W) the reference inputs of ig, deeplift and occlusion."""
    classes: list[str] = field(default_factory=list)
    labels: torch.Tensor | None = None
    """(N,) the true classes, where known (dataset images)."""
    sources: list[str] = field(default_factory=list)
    """Where each image came from: ``test:17``, a file path, ..."""
    options: AttributionOptions = field(default_factory=AttributionOptions)
    completeness: Any = None
    """:class:`~interp.analysis.attribution.trust.Completeness` of the IG maps (when ``ig`` ran)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per method for the whole batch."""
    run: str | None = None
    gradcam_layer: str | None = None

    @property
    def methods(self) -> list[str]:
        return list(self.maps)

    def __len__(self) -> int:
        return len(self.inputs)

    def class_name(self, index: int) -> str:
        return self.classes[index] if 0 <= index < len(self.classes) else str(index)

    def pixel_map(self, method: str) -> torch.Tensor:
        """(N, H, W): the method's map with channels folded as its registry entry says."""
        if method not in self.maps:
            raise unknown("method", method, self.methods)
        m = self.maps[method]
        how = METHODS[method].reduce if method in METHODS else "sum"
        if how == "max":
            return m.abs().amax(1)
        if how == "mean":
            return m.mean(1)
        return m.sum(1)

    def top(self, k: int = 5) -> list[list[tuple[str, float]]]:
        """Per image, the ``k`` most probable classes with their probabilities."""
        k = min(k, self.probs.shape[1])
        values, indices = self.probs.topk(k, dim=1)
        return [[(self.class_name(int(i)), float(v)) for v, i in zip(vs, idx)] for vs, idx in zip(values, indices)]

    def summary(self) -> list[dict]:
        """One plain dict per image: source, label, target, top-5, IG completeness."""
        rows = []
        top = self.top(5)
        for i in range(len(self)):
            row = {
                "source": self.sources[i] if i < len(self.sources) else f"#{i}",
                "target": self.class_name(int(self.targets[i])),
                "target_index": int(self.targets[i]),
                "target_prob": float(self.probs[i, self.targets[i]]),
                "top5": [{"class": c, "prob": p} for c, p in top[i]],
            }
            if self.labels is not None:
                row["label"] = self.class_name(int(self.labels[i]))
            if self.completeness is not None:
                row["ig_completeness"] = self.completeness.row(i)
            rows.append(row)
        return rows


# --------------------------------------------------------------------------- the verb


def attribute(run_or_model: Any, inputs: torch.Tensor, target: Any = None,
              methods: str | Sequence[str] | None = None, *, labels: torch.Tensor | None = None,
              sources: Sequence[str] | None = None, normalized: bool = False, progress: bool = False,
              options: AttributionOptions | None = None, **overrides: Any) -> Attribution:
    """Attribute the model's output for ``target`` to the input pixels with each method.

    ``run_or_model``: a run (images are uint8 or [0, 1] and get the run's normalisation)
    or an ``nn.Module`` (inputs are used as given). ``inputs``: (N, C, H, W) or (C, H, W).
    ``target``: ``None`` for each image's predicted class, a class index or name for
    all, or one per image. ``methods``: names from :data:`METHODS` (default: all that
    apply). ``normalized=True``: the inputs are already model inputs (an earlier
    result's ``inputs``). Keyword options: see :class:`AttributionOptions` (``steps=32``,
    ``baseline="mean"``, ``window=8`` ...).

    >>> attr = attribute(run, images, target="circle", methods="ig,occlusion", steps=32)
    >>> attr.pixel_map("ig").shape
    torch.Size([4, 32, 32])
    """
    from tqdm.auto import tqdm

    subject = as_subject(run_or_model)
    opts = make_options(options, **overrides)
    names = parse_methods(methods, subject)
    x = _check_inputs(subject, inputs, normalized)
    model = subject.model
    with eval_mode(model), torch.no_grad():
        logits = torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)])
    probs = logits.float().softmax(1).cpu()
    targets = resolve_targets(target, len(x), subject.classes, logits)
    baselines = make_baseline(subject, x, opts.baseline)
    layer = gradcam_layer(subject, opts) if "gradcam" in names else None
    if layer is not None:
        get_module(model, layer)  # an unknown --layer fails before any work

    maps: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    seconds = dict.fromkeys(names, 0.0)
    chunks = range(0, len(x), opts.batch_size)
    bar = tqdm(total=len(chunks) * len(names), desc="attribution", disable=not progress or None, leave=False)
    try:
        for start in chunks:
            stop = start + opts.batch_size
            call = MethodCall(subject, x[start:stop], targets[start:stop].to(x.device), baselines[start:stop],
                              opts, start)
            for name in names:
                t0 = time.perf_counter()
                maps[name].append(run_method(name, call).detach().cpu())
                seconds[name] += time.perf_counter() - t0
                bar.update(1)
    finally:
        bar.close()
    result = Attribution(
        inputs=x.detach().cpu(), images=subject.to_display(x).detach().cpu(), targets=targets, probs=probs,
        maps={n: torch.cat(v) for n, v in maps.items()}, baselines=baselines.detach().cpu(),
        classes=list(subject.classes), labels=None if labels is None else torch.as_tensor(labels).cpu(),
        sources=list(sources) if sources is not None else [f"#{i}" for i in range(len(x))],
        options=opts, seconds=seconds, run=subject.run_name, gradcam_layer=layer,
    )
    if "ig" in names:
        from .trust import ig_completeness

        result.completeness = ig_completeness(model, x, result.baselines.to(x.device), targets, result.maps["ig"])
    return result


def run_method(name: str, call: MethodCall) -> torch.Tensor:
    """One registered method on one chunk, in eval mode, leaving no hooks behind."""
    method = METHODS[name]
    with eval_mode(call.model), no_new_hooks(call.model), quiet_captum():
        maps = method.compute(call)
    if maps.shape != call.inputs.shape:  # a registry entry that breaks the contract
        raise RuntimeError(f"{name} returned maps of shape {tuple(maps.shape)}, expected {tuple(call.inputs.shape)}")
    return maps


def _check_inputs(subject: Subject, inputs: torch.Tensor, normalized: bool = False) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a tensor, got {type(inputs).__name__}")
    if inputs.dim() == 3:
        inputs = inputs.unsqueeze(0)
    if inputs.dim() != 4 or len(inputs) == 0:
        raise InterpError(f"expected a batch of images (N, C, H, W), got shape {tuple(inputs.shape)}")
    if subject.input_shape and tuple(inputs.shape[1:]) != tuple(subject.input_shape):
        c, h, w = subject.input_shape
        raise InterpError(f"images are {tuple(inputs.shape[1:])}, but the model expects {c}x{h}x{w} (C x H x W)")
    if normalized:
        return inputs.to(subject.device).float()
    return subject.to_model_input(inputs)


# --------------------------------------------------------------------------- inputs


def load_examples(run: Any, indices: Sequence[int], split: str = "test", *, data: Any = None,
                  progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and labels of dataset examples ``indices`` from ``split`` (test or train).

    ``data`` may be an already loaded :class:`~interp.data.ImageData` (saves reloading).
    """
    if split not in ("test", "train"):
        raise unknown("split", split, ["test", "train"])
    data = data if data is not None else run.load_data(progress=progress, split="test" if split == "test" else "both")
    x, y = (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)
    for i in indices:
        if not 0 <= int(i) < len(x):
            raise InterpError(f"index {i} is out of range: the {split} split has {len(x)} images (0-{len(x) - 1})")
    idx = torch.as_tensor([int(i) for i in indices], dtype=torch.long)
    return x[idx], y[idx]


def read_image(path: str | Path, input_shape: Sequence[int], *,
               notice: Callable[[str], None] | None = None) -> torch.Tensor:
    """An image file as a uint8 (1, C, H, W) tensor in the model's input shape.

    A missing or unreadable file is an :class:`InterpError` naming it; an image of
    another size is resized (bilinear) with a notice, since resizing changes what the
    model sees.
    """
    from PIL import Image, UnidentifiedImageError

    notice = notice or (lambda text: print(text, file=sys.stderr))
    path = Path(path).expanduser()
    c, h, w = input_shape
    if not path.is_file():
        raise InterpError(f"image file {path} not found" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB")
            img.load()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InterpError(f"cannot read image file {path}: {e}") from None
    if img.size != (w, h):
        notice(f"note: {path} is {img.size[0]}x{img.size[1]} px; the model expects {w}x{h} px, "
               f"so it was resized to {w}x{h}")
        img = img.resize((w, h), Image.BILINEAR)
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()


# --------------------------------------------------------------------------- save / load / plot


def attribution_dir(run_name: str | None, root: Path | None = None) -> Path:
    """``reports/RUN/attribution``: where this area's results go."""
    from ...runs import reports_dir

    if not run_name:
        raise InterpError("a result from a bare model has no run name; pass directory= to save it")
    return (Path(root) if root is not None else reports_dir()) / run_name / "attribution"


def default_name(attr: Attribution) -> str:
    """A file stem from the sources: ``test-17``, ``cat``, or ``batch-8``."""
    if len(attr.sources) == 1:
        stem = Path(attr.sources[0]).stem if ("/" in attr.sources[0] or "." in attr.sources[0]) else attr.sources[0]
        return safe_name(stem)
    return f"batch-{len(attr)}"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "attribution"


def save_attribution(attr: Attribution, directory: str | Path | None = None, name: str | None = None, *,
                     figure: bool = True) -> dict[str, Path]:
    """Write ``NAME.json`` (summary), ``NAME.npz`` (every tensor) and ``NAME.png`` (the figure).

    Default folder: ``reports/RUN/attribution/``. Returns the paths by kind.
    """
    directory = Path(directory) if directory is not None else attribution_dir(attr.run)
    name = safe_name(name or default_name(attr))
    paths = {"json": directory / f"{name}.json", "npz": directory / f"{name}.npz"}
    arrays = {
        "inputs": attr.inputs.numpy().astype(np.float32), "images": attr.images.numpy().astype(np.float32),
        "targets": attr.targets.numpy(), "probs": attr.probs.numpy(), "baselines": attr.baselines.numpy(),
        **{f"map:{m}": v.numpy().astype(np.float32) for m, v in attr.maps.items()},
    }
    if attr.labels is not None:
        arrays["labels"] = attr.labels.numpy()
    write_bytes(paths["npz"], npz_bytes(arrays))
    if figure:
        from .plots import plot_attribution

        paths["png"] = directory / f"{name}.png"
        save_figure(plot_attribution(attr), paths["png"])
    meta = {
        "kind": "attribution", "run": attr.run, "classes": attr.classes, "methods": attr.methods,
        "method_titles": {m: METHODS[m].title for m in attr.methods if m in METHODS},
        "captum": {m: METHODS[m].captum for m in attr.methods if m in METHODS},
        "sources": attr.sources, "options": asdict(attr.options), "seconds": attr.seconds,
        "gradcam_layer": attr.gradcam_layer, "images": attr.summary(),
        "completeness": attr.completeness.to_dict() if attr.completeness is not None else None,
        "files": {k: p.name for k, p in paths.items() if k != "json"},
    }
    write_json(paths["json"], meta)
    return paths


def load_attribution(path: str | Path) -> Attribution:
    """Read what :func:`save_attribution` wrote (give the .json, the .npz or the common stem)."""
    from .trust import Completeness

    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".json", ".npz", ".png") else path
    meta_file, npz_file = stem.with_suffix(".json"), stem.with_suffix(".npz")
    for f in (meta_file, npz_file):
        if not f.is_file():
            raise InterpError(f"{f} not found; save an attribution first (interp attribute ...)")
    try:
        meta = json.loads(meta_file.read_text())
        with np.load(npz_file, allow_pickle=False) as z:
            arrays = {k: torch.from_numpy(z[k]) for k in z.files}
    except (json.JSONDecodeError, OSError, ValueError) as e:
        raise InterpError(f"{stem}.json/.npz is corrupt: {e}") from None
    maps = {m: arrays[f"map:{m}"] for m in meta["methods"]}
    comp = meta.get("completeness")
    return Attribution(
        inputs=arrays["inputs"], images=arrays["images"], targets=arrays["targets"], probs=arrays["probs"],
        maps=maps, baselines=arrays["baselines"], classes=meta["classes"], labels=arrays.get("labels"),
        sources=meta["sources"], options=make_options(**meta["options"]), seconds=meta["seconds"],
        completeness=Completeness.from_dict(comp) if comp else None, run=meta["run"],
        gradcam_layer=meta.get("gradcam_layer"),
    )


# --------------------------------------------------------------------------- gallery


@dataclass
class GalleryEntry:
    """One class's row of the gallery: which test images, and where its figure is."""

    class_name: str
    indices: list[int]
    predictions: list[str]
    probs: list[float]
    figure: str
    """File name of the PNG, relative to the gallery folder."""


@dataclass
class Gallery:
    """A few test images per class with every method's map (for the model page)."""

    run: str
    methods: list[str]
    entries: list[GalleryEntry]
    attribution: Attribution
    directory: Path | None = None
    seed: int = 0
    """Seed of the choice of images within each class."""
    class_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": "attribution-gallery", "run": self.run, "methods": self.methods,
                "method_titles": {m: METHODS[m].title for m in self.methods},
                "entries": [asdict(e) for e in self.entries], "data": "gallery.npz",
                "seed": self.seed, "class_counts": dict(self.class_counts)}


def attribution_gallery(run: Any, per_class: int = 2, methods: str | Sequence[str] | None = None, *,
                        data: Any = None, directory: str | Path | None = None, save: bool = True,
                        seed: int = 0, progress: bool = False, **options: Any) -> Gallery:
    """Attribute ``per_class`` test images of every class (target: the prediction), a seeded random
    choice within each class (:func:`~interp.data.samples.per_class_sample`), not its first images.
    ``seed`` also seeds SmoothGrad's noise (as ``attribute(seed=...)``).

    Saves ``gallery/gallery.json`` (index), ``gallery/gallery.npz`` (every map) and one
    PNG per class under ``reports/RUN/attribution/``; the report links the PNGs.
    """
    if per_class < 1:
        raise InterpError(f"per_class must be at least 1, got {per_class}")
    subject = as_subject(run)
    data = data if data is not None else run.load_data(progress=progress, split="test")
    from ...data.samples import per_class_sample

    known = (data.test_y >= 0) & (data.test_y < len(subject.classes))  # the classes the model has
    drawn = per_class_sample(data.test_y[known], per_class, seed=seed, classes=subject.classes)
    picked = known.nonzero().flatten()[drawn.indices]
    chosen = sorted(picked.tolist(), key=lambda i: (int(data.test_y[i]), i))  # grouped by class
    images, labels = load_examples(run, chosen, "test", data=data)
    attr = attribute(run, images, None, methods, labels=labels, sources=[f"test:{i}" for i in chosen],
                     progress=progress, seed=seed, **options)
    from .plots import plot_attribution

    entries = []
    folder = Path(directory) if directory is not None else attribution_dir(subject.run_name) / "gallery"
    for k, name in enumerate(subject.classes):
        rows = [i for i in range(len(attr)) if int(attr.labels[i]) == k]
        if not rows:
            continue
        figure = f"{safe_name(name)}.png"
        entries.append(GalleryEntry(name, [chosen[i] for i in rows],
                                    [attr.class_name(int(attr.targets[i])) for i in rows],
                                    [float(attr.probs[i, attr.targets[i]]) for i in rows], figure))
        if save:
            save_figure(plot_attribution(subset(attr, rows)), folder / figure)
    gallery = Gallery(subject.run_name or "model", attr.methods, entries, attr, folder if save else None, seed,
                      drawn.class_counts)
    if save:
        save_attribution(attr, folder, "gallery", figure=False)
        index = gallery.to_dict()
        meta = json.loads((folder / "gallery.json").read_text())
        write_json(folder / "gallery.json", {**meta, **index})
    return gallery


def subset(attr: Attribution, rows: Sequence[int]) -> Attribution:
    """The same result restricted to images ``rows``."""
    idx = torch.as_tensor(list(rows), dtype=torch.long)
    comp = attr.completeness.subset(idx) if attr.completeness is not None else None
    return replace(attr, inputs=attr.inputs[idx], images=attr.images[idx], targets=attr.targets[idx],
                   probs=attr.probs[idx], maps={m: v[idx] for m, v in attr.maps.items()},
                   baselines=attr.baselines[idx], labels=None if attr.labels is None else attr.labels[idx],
                   sources=[attr.sources[i] for i in rows], completeness=comp)


# --------------------------------------------------------------------------- demo


def demo_stage(ctx: Any) -> None:
    """Demo: one attribution figure, the gallery, the trust checks and the class-to-unit summaries."""
    from .trust import save_trust, trust_report
    from .units import class_unit_summary, save_class_unit_summary

    run = ctx.run
    data = run.load_data(progress=False, split="test")
    quick = getattr(ctx, "quick", False)
    steps = 16 if quick else 32
    images, labels = load_examples(run, [0], data=data)
    attr = attribute(run, images, labels=labels, sources=["test:0"], steps=steps)
    paths = save_attribution(attr)
    print(f"   test:0 is {attr.class_name(int(labels[0]))}; predicted {attr.top(1)[0][0][0]} "
          f"({attr.top(1)[0][0][1]:.0%}); IG completeness error {attr.completeness.max_relative_error:.2%}")
    gallery = attribution_gallery(run, per_class=1 if quick else 2, data=data, steps=steps)
    trust = trust_report(run, sample=4 if quick else 16, data=data, steps=steps)
    trust_paths = save_trust(trust)
    print("   " + trust.headline())
    for layer in [info.name for info in run.layers][:-1]:  # every layer but the output (for the unit pages)
        summary = class_unit_summary(run, layer, per_class=5 if quick else 20, data=data, steps=steps)
        save_class_unit_summary(summary)
        if layer == "conv2":
            print("   units that make each class, conv2: " + "; ".join(
                f"{c} {summary.top_units(c, 1)[0]['unit']}" for c in summary.classes[:4]) + " ...")
    ctx.outputs["attribution figure"] = paths["png"]
    ctx.outputs["attribution gallery"] = gallery.directory
    ctx.outputs["attribution trust"] = trust_paths["curves_png"]
