"""Image parameterisation: Lucent's decorrelated FFT (or pixel) images, seeded per image.

>>> params, image_f = image_param([image_seed(0, 5)], 32, torch.device("cpu"))
>>> image_f().shape                      # (N, 3, size, size), floats in [0, 1]
torch.Size([1, 3, 32, 32])
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ...errors import InterpError


@contextlib.contextmanager
def lucent_device(device: torch.device) -> Iterator[None]:
    """Lucent's module-global device set to ``device`` for a block, then put back."""
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
    (feature accentuation, :func:`~interp.analysis.vision.natural.accentuate`). The
    parameters are set by inverting the sigmoid (pixels clamped to ``[INIT_EPS, 1 -
    INIT_EPS]``, half an 8-bit level), the colour decorrelation and, for ``fft``, the scaled
    inverse FFT, so ``image_f()`` starts at the images to within ``INIT_EPS``.
    """
    from lucent.optvis.param.color import color_correlation_normalized

    n = len(seeds)
    colour = torch.tensor(color_correlation_normalized, device=device)
    if not fft:
        from lucent.optvis.param.spatial import pixel_image

        with lucent_device(device), torch.random.fork_rng(devices=[]):
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
