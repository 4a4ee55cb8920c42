"""The attribution methods: Captum's input-attribution classes under short names, and their settings.

:data:`METHODS` maps a short name to a :class:`Method` (the Captum class behind it and
how its maps are shown); :func:`run_method` runs one on a chunk of images.
:func:`interp.analysis.attribution.attribute.attribute` is the verb that uses them::

    >>> attr = attribute(run, images, target=None, methods=["ig", "gradcam"], steps=32)
    >>> METHODS["ig"].captum, METHODS["ig"].reduce
    ('IntegratedGradients', 'sum')

The name grid is the same one level down: ``ig`` is IntegratedGradients here and
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
(:meth:`~interp.analysis.attribution.attribute.Attribution.pixel_map`): ``sum`` keeps IG's
and DeepLift's completeness, ``max`` is Simonyan et al.'s convention for gradient
magnitudes, ``mean`` is for maps that are the same in every channel (Grad-CAM and
occlusion, broadcast to the input).

Every Captum call runs inside :func:`~interp.hooks.no_new_hooks`, so the model is left
with the hooks it had (normally none), also when a method raises.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InterpError, unknown
from ...hooks import eval_mode, get_module, no_new_hooks
from ...subject import Subject

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
        names = list(ALL_METHODS)
        if subject is not None and not subject.spatial_layers():  # an MLP: no layer for Grad-CAM
            names = [n for n in names if not METHODS[n].needs_conv]
        if subject is not None and "deeplift" in names and _reused_nonlinearities(subject):
            names.remove("deeplift")  # it would fail (see below); "all" means all that apply
        return names
    if isinstance(methods, str):
        methods = [m for m in methods.replace(" ", "").split(",") if m]
    if not methods:
        raise InterpError("no methods given; choose from " + ", ".join(ALL_METHODS))
    for m in methods:
        if m not in METHODS:
            raise unknown("method", m, ALL_METHODS)
    if subject is not None and "deeplift" in methods:
        reused = _reused_nonlinearities(subject)
        if reused:
            raise InterpError(f"deeplift needs every activation module to be called once per forward pass, but "
                              f"{subject.name} calls {reused[0]} more than once ({len(reused)} such modules; "
                              f"torchvision's ResNets reuse self.relu); leave deeplift out of --methods")
    return list(dict.fromkeys(methods))


def _reused_nonlinearities(subject: Subject) -> list[str]:
    """Modules without parameters that one forward pass calls more than once: Captum's DeepLift
    stores one input per module and refuses (or would be wrong) otherwise."""
    from ...hooks import reused_modules

    if not subject.input_shape:
        return []
    modules = dict(subject.model.named_modules())
    example = torch.zeros(1, *subject.input_shape, device=subject.device)
    return [n for n in reused_modules(subject.model, example) if not any(True for _ in modules[n].parameters())]


def run_method(name: str, call: MethodCall) -> torch.Tensor:
    """One registered method on one chunk, in eval mode, leaving no hooks behind."""
    method = METHODS[name]
    with eval_mode(call.model), no_new_hooks(call.model), quiet_captum():
        maps = method.compute(call)
    if maps.shape != call.inputs.shape:  # a registry entry that breaks the contract
        raise RuntimeError(f"{name} returned maps of shape {tuple(maps.shape)}, expected {tuple(call.inputs.shape)}")
    return maps


