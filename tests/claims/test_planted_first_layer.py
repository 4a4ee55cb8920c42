"""gabor-first-layer on planted first layers: the verdict must follow what was planted.

Each test writes conv1 by hand in a tiny conv net and runs the claim through
:func:`interp.claims.check_claims`. Gabors and colour-contrast filters are "supported";
white noise, Gaussian-blurred white noise (smooth, but no more Gabor-like than its
smoothness gives: the false positive of a white-noise null) and planted Gabors with
their pixels shuffled are "not supported". The null is matched to each filter's power
spectrum (:func:`interp.analysis.vision.gabor.spectrum_matched_null`).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from interp.claims import NOT_SUPPORTED, SUPPORTED, check_claims, model_run
from interp.analysis.vision import gabor as G

# --------------------------------------------------------------------------- planting helpers


def tiny_net(filters: int = 6, k: int = 5, seed: int = 0) -> nn.Module:
    """conv1 (3 -> filters, k x k) -> ReLU -> global pool -> linear; conv1 holds PyTorch's init for ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, filters, k), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(filters, 10))


def planted_run(weights: torch.Tensor):
    """A run around a tiny net whose conv1 weights are ``weights (F, 3, k, k)``."""
    net = tiny_net(weights.shape[0], weights.shape[-1])
    with torch.no_grad():
        net[0].weight.copy_(weights)
    return model_run(net, name="planted", input_shape=(3, 32, 32))


def check(weights: torch.Tensor, claim: str = "gabor-first-layer"):
    (result,) = check_claims(planted_run(weights), [claim])
    return result


def gabor(orientation: float, freq: float = 0.25, phase: float = 0.0, sigma: float = 1.3, k: int = 5) -> torch.Tensor:
    """A k x k Gabor whose bars run along ``orientation`` (degrees), from :func:`gabor_kernels`."""
    p = torch.tensor([[math.radians(orientation + 90), freq, math.radians(phase), sigma, 0.0, 0.0]])
    return G.gabor_kernels(p, k)[0]


def coloured(pattern: torch.Tensor, colour=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """``colour[c] * pattern`` on each channel, at unit norm."""
    w = pattern[None] * torch.tensor(colour, dtype=torch.float32).view(3, 1, 1)
    return w / w.norm()


def noisy(w: torch.Tensor, scale: float = 0.01, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return w + scale * torch.randn(w.shape, generator=g)


def planted_gabors(n: int = 6, k: int = 5, seed: int = 0) -> torch.Tensor:
    """``n`` luminance Gabors (colour (1, 1, 1)) at spread orientations and four phases, with 1% noise."""
    freqs, sigmas = (0.22, 0.25, 0.3), (1.2, 1.3, 1.4)
    scale = k / 5
    ws = [coloured(gabor(i * 180 / n, freqs[i % 3] / scale, 90 * (i % 4), sigmas[(i // 3) % 3] * scale, k))
          for i in range(n)]
    return noisy(torch.stack(ws), seed=seed)


def planted_colour_contrast(k: int = 5) -> torch.Tensor:
    """Colour against colour: red | green and blue | yellow halves (odd, low-frequency Gabors), and a red
    centre flanked by green (an even Gabor times a red-minus-green colour)."""
    return torch.stack([
        coloured(gabor(0, 0.1, 90, 1.5, k), (1.0, -1.0, 0.0)),
        coloured(gabor(60, 0.1, 90, 1.5, k), (-0.5, -0.5, 1.0)),
        coloured(gabor(120, 0.22, 0, 1.2, k), (1.0, -1.0, 0.0)),
    ])


def blurred_noise(seed: int, sigma: float = 1.5, filters: int = 6, k: int = 5, pad: str = "replicate") -> torch.Tensor:
    """PyTorch's conv init for ``seed``, each channel blurred by a Gaussian of ``sigma`` pixels."""
    w = tiny_net(filters, k, seed)[0].weight.detach()
    r = torch.arange(-3, 4, dtype=torch.float32)
    g = torch.exp(-r * r / (2 * sigma * sigma))
    kernel = (g[:, None] * g[None]) / g.sum() ** 2
    x = F.pad(w.reshape(-1, 1, k, k), (3, 3, 3, 3), mode=pad) if pad != "zeros" else F.pad(w.reshape(-1, 1, k, k),
                                                                                            (3, 3, 3, 3))
    return F.conv2d(x, kernel[None, None]).reshape(w.shape) * 3


def shuffled(w: torch.Tensor, seed: int) -> torch.Tensor:
    """Each filter's pixels permuted (one permutation per filter, the same on every channel)."""
    g = torch.Generator().manual_seed(seed)
    n, C, k, _ = w.shape
    return torch.stack([f.flatten(1)[:, torch.randperm(k * k, generator=g)].reshape(C, k, k) for f in w])


# --------------------------------------------------------------------------- the null and the rules


def test_spectrum_matched_null_keeps_spectrum_norm_and_colour():
    w = torch.cat([planted_gabors(2), planted_colour_contrast()])  # 2 luminance, 3 colour-opponent
    copies = 8
    null = G.spectrum_matched_null(w, copies=copies, seed=3)
    assert null.shape == (5 * copies, 3, 5, 5)
    assert torch.equal(null, G.spectrum_matched_null(w, copies=copies, seed=3))  # seeded
    assert not torch.allclose(null, G.spectrum_matched_null(w, copies=copies, seed=4))
    parent = w.repeat_interleave(copies, 0)
    assert torch.allclose(null.flatten(1).norm(dim=1), parent.flatten(1).norm(dim=1), rtol=1e-4)
    # The periodic half of the copies has exactly each channel's power spectrum.
    periodic = torch.arange(len(null)) % copies < copies - copies // 2
    power = lambda x: torch.fft.fft2(x).abs().pow(2)  # noqa: E731
    assert torch.allclose(power(null[periodic]), power(parent[periodic]), rtol=1e-3, atol=1e-6)
    # One phase field for all channels: a luminance filter stays luminance, an opponent one opponent.
    fits = G.fit_gabors(null)
    lum = fits.luminance.reshape(5, copies)
    assert bool((lum[:2] > 0.99).all()) and bool((lum[2:] < 0.1).all())


def test_band_pass_rejects_blobs_and_ramps():
    blob = G.gabor_kernels(torch.tensor([[0.0, 0.0, 0.0, 1.2, 0.0, 0.0]]), 5)[0]
    x = torch.arange(5.0) - 2
    ramp = x[None].expand(5, -1)
    w = torch.stack([coloured(blob), coloured(ramp), coloured(gabor(30)), coloured(gabor(100, 0.3, 90, 1.2))])
    fits = G.fit_gabors(w)
    assert bool((fits.cycles[:2] < G.BANDPASS_CYCLES).all()) and bool((fits.cycles[2:] >= G.BANDPASS_CYCLES).all())
    assert bool((fits.r2 > 0.9).all())  # all four are fitted well: the band-pass rule decides
    assert G.gabor_families(fits, 0.5) == ["other", "other", "gabor", "gabor"]


def test_orientation_is_measured_on_the_filter_not_the_fit():
    # A plaid (two orthogonal Gabors): its best single Gabor (R^2 0.6, band-pass) is oriented, the filter is not.
    plaid = coloured(gabor(0, 0.3, 90, 1.5) + 0.8 * gabor(90, 0.3, 90, 1.5))
    fits = G.fit_gabors(plaid[None])
    assert float(fits.r2[0]) > 0.5 and float(fits.cycles[0]) >= G.BANDPASS_CYCLES
    assert float(fits.osi[0]) > 0.6 and float(fits.own_osi[0]) < G.OSI_GABOR
    assert G.gabor_families(fits, 0.5) == ["other"]


# --------------------------------------------------------------------------- planted verdicts


@pytest.mark.parametrize("n", [6, 16])
def test_planted_gabors_supported(n):
    result = check(planted_gabors(n))
    assert result.status == SUPPORTED, result.verdict.reason
    assert result.numbers["gabor"] >= 0.8
    for key in ("matched_null_rate", "white_noise_null_rate", "r2_threshold", "osi_threshold", "p_value"):
        assert key in result.numbers
    assert result.numbers["p_value"] <= 0.01 and result.numbers["matched_null_rate"] < 0.05
    assert result.thresholds["osi_gabor"] == G.OSI_GABOR and "osi_null_q99" in result.thresholds
    assert any("spectrum-matched" in note for note in result.notes)


def test_planted_gabors_7x7_supported():
    result = check(planted_gabors(8, k=7))
    assert result.status == SUPPORTED, result.verdict.reason
    assert result.numbers["gabor"] >= 0.8


def test_planted_colour_contrast_with_gabors_supported():
    w = torch.cat([planted_gabors(3), noisy(planted_colour_contrast(), seed=1)])
    result = check(w)
    assert result.status == SUPPORTED, result.verdict.reason
    families = [row["family"] for row in result.table]
    assert families[3:] == ["colour contrast"] * 3
    assert families[:3].count("gabor") >= 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_white_noise_not_supported(seed):
    w = tiny_net(seed=seed)[0].weight.detach()
    result = check(w)
    assert result.status == NOT_SUPPORTED
    assert result.numbers["gabor"] + result.numbers["colour_contrast"] < 0.5


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_blurred_white_noise_not_supported(seed):
    """The false positive the matched null fixes: against white noise half or more of these smooth filters
    count as structured (the old null said "supported", p ~ 1e-13); against their own spectra they do not."""
    result = check(blurred_noise(seed))
    assert result.status == NOT_SUPPORTED, result.verdict.reason
    assert result.numbers["structured"] < 0.5
    assert result.numbers["white_noise_structured"] >= 0.5
    assert "no more than smoothness alone gives (spectrum-matched null)" in result.verdict.reason


@pytest.mark.parametrize("pad,sigma,seed", [("zeros", 1.0, 0), ("zeros", 2.0, 1), ("reflect", 1.0, 0),
                                            ("circular", 2.0, 1)])
def test_other_blurs_not_supported(pad, sigma, seed):
    # Zero-padded copies catch smooth non-periodic filters, periodic copies a circular blur's near-flat patches.
    assert check(blurred_noise(seed, sigma, pad=pad)).status == NOT_SUPPORTED


def test_blurred_white_noise_7x7_not_supported():
    assert check(blurred_noise(0, 1.5, filters=8, k=7)).status == NOT_SUPPORTED


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_shuffled_gabors_not_supported(seed):
    result = check(shuffled(planted_gabors(6), seed))
    assert result.status == NOT_SUPPORTED, result.verdict.reason


def test_orientation_tiling_uses_the_same_families():
    assert check(planted_gabors(6), "orientation-tiling").status == SUPPORTED
    assert check(blurred_noise(0), "orientation-tiling").status == NOT_SUPPORTED
