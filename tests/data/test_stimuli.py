"""Synthetic stimuli: the angle convention, positions, polarity and determinism."""

from __future__ import annotations

import math

import pytest
import torch

from interp.data import stimuli as S


def _luma(images):
    return images[:, 0]


def test_grating_orientation_is_the_direction_of_the_bars():
    images, p = S.grating_images(32, [0, 90], [0.125], [0])
    horizontal, vertical = _luma(images)
    # Orientation 0: horizontal bars, constant along x (each row is one value).
    assert horizontal.std(dim=1).max() < 1e-5 and horizontal.std(dim=0).min() > 0.1
    # Orientation 90: vertical bars, constant along y.
    assert vertical.std(dim=0).max() < 1e-5 and vertical.std(dim=1).min() > 0.1
    assert p["orientation"].tolist() == [0.0, 90.0]


def test_grating_phase_zero_is_bright_at_the_centre_and_counter_clockwise_angles():
    # 45 degrees counter-clockwise with y up: the bars run from bottom-left to top-right.
    images, _ = S.grating_images(33, [45, 135], [0.1], [0])
    g45, g135 = _luma(images)
    assert float(g45[16, 16]) == pytest.approx(1.0, abs=1e-5)
    # Along the bar direction the value stays the same: up-right from the centre is (row-, col+).
    assert float(g45[10, 22]) == pytest.approx(float(g45[16, 16]), abs=1e-4)
    assert float(g135[10, 10]) == pytest.approx(float(g135[16, 16]), abs=1e-4)
    assert float(g45[10, 10]) < 0.9


def test_grating_phases_shift_the_pattern():
    images, p = S.grating_images(33, [0], [0.25], [0, 90, 180, 270])
    centre = _luma(images)[:, 16, 16]
    assert centre.tolist() == pytest.approx([1.0, 0.5, 0.0, 0.5], abs=1e-5)
    assert torch.allclose(_luma(images)[0] + _luma(images)[2], torch.ones(33, 33), atol=1e-5)  # opposite phases
    # Phase 90 moves the bright bar a quarter period (1 px) against the wave vector (which points up).
    assert float(_luma(images)[1][17, 16]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("orientation", [0, 90, 180, 270])
def test_curve_orientation_is_the_direction_the_curve_bulges(orientation):
    """90 is a cap, 270 a cup, 0 a ")" and 180 a "(": the midpoint sits at the centre, the arc's body
    curves back towards the centre of curvature, which lies opposite to the orientation."""
    images, _ = S.curve_images(33, [orientation], [8.0], length=24.0, thickness=2.0)
    img = _luma(images)[0]
    a = math.radians(orientation)
    ux, uy = math.cos(a), -math.sin(a)  # the bulge direction in image coordinates (y down)

    def at(distance, sideways=0.0):
        return float(img[round(16 + distance * uy + sideways * ux), round(16 + distance * ux - sideways * uy)])

    assert at(0) > 0.9                      # the midpoint
    assert at(3) == pytest.approx(0.5)      # beyond it, in the bulge direction: empty
    assert at(-8) == pytest.approx(0.5)     # the centre of curvature: empty
    ink = torch.nonzero(img > 0.75).float() - 16  # (row, col) offsets of the stroke
    along = ink[:, 1] * ux + ink[:, 0] * uy       # projection on the bulge direction
    assert along.max() <= 1.5 and along.min() < -2.5  # the whole arc lies behind its midpoint


def test_curve_flanks_fall_away_from_the_bulge():
    images, _ = S.curve_images(33, [90], [6.0], length=18.0, thickness=2.0)
    img = _luma(images)[0]
    ink = torch.nonzero(img > 0.75)
    rows = ink[:, 0].float()
    assert rows.min() >= 15 and rows.max() > 18  # nothing above the midpoint, flanks below


def test_curves_polarity_and_grid_order():
    images, p = S.curve_images(32, [0, 90], [4.0, 8.0], polarities=(1.0, -1.0))
    assert images.shape == (8, 3, 32, 32)
    assert p["orientation"].tolist() == [0, 0, 0, 0, 90, 90, 90, 90]
    assert p["polarity"].tolist() == [1, -1] * 4
    assert images[0].max() > 0.9 and images[1].min() < 0.1  # white then black
    assert images.min() >= 0 and images.max() <= 1


def test_line_is_the_tangent_of_the_curve_at_its_midpoint():
    lines, _ = S.line_images(33, [90], length=20.0, thickness=2.0)
    img = _luma(lines)[0]
    assert img[16, 8] > 0.9 and img[16, 24] > 0.9  # horizontal through the centre
    assert float(img[8, 16]) == pytest.approx(0.5) and float(img[24, 16]) == pytest.approx(0.5)


def test_center_offsets_move_the_stimulus():
    centred, _ = S.curve_images(33, [90], [6.0], thickness=2.0)
    moved, _ = S.curve_images(33, [90], [6.0], thickness=2.0, center=(-4.0, 3.0))
    assert torch.allclose(torch.roll(centred, shifts=(-4, 3), dims=(2, 3))[..., 6:-6, 6:-6], moved[..., 6:-6, 6:-6],
                          atol=1e-5)


def test_high_low_puts_the_high_frequency_side_in_the_orientation_direction():
    images, p, controls = S.high_low_images(32, [0, 90, 180, 270], n_textures=2, seed=3)
    assert images.shape == (8, 3, 32, 32) and controls.shape == (4, 3, 32, 32)

    def roughness(x):  # mean absolute difference between horizontal neighbours
        return (x[:, 1:] - x[:, :-1]).abs().mean().item()

    right_high = _luma(images)[0]  # orientation 0: high frequency on the right
    assert roughness(right_high[:, 20:]) > 3 * roughness(right_high[:, :12])
    left_high = _luma(images)[4]  # orientation 180
    assert roughness(left_high[:, :12]) > 3 * roughness(left_high[:, 20:])
    up_high = _luma(images)[2]  # orientation 90: high frequency above (y up)
    assert roughness(up_high[:12]) > 3 * roughness(up_high[20:])
    high, low = _luma(controls)[0], _luma(controls)[1]
    assert roughness(high) > 3 * roughness(low)
    # Same mean and contrast on both sides: the frequency, not the brightness, differs.
    assert abs(float(high.mean() - low.mean())) < 0.05
    assert float(high.std()) == pytest.approx(float(low.std()), rel=0.35)


def test_high_low_is_deterministic_and_seeded():
    a = S.high_low_images(16, [0], n_textures=2, seed=1)[0]
    b = S.high_low_images(16, [0], n_textures=2, seed=1)[0]
    c = S.high_low_images(16, [0], n_textures=2, seed=2)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_drawing_angle_converts_our_convention():
    assert float(S.drawing_angle(90.0)) == pytest.approx(-math.pi / 2)
    assert float(S.drawing_angle(-45.0)) == pytest.approx(math.pi / 4)


def test_high_low_grain_makes_coarser_texture():
    fine = S.high_low_images(32, [0], n_textures=1, seed=0)[2][0, 0]
    coarse = S.high_low_images(32, [0], n_textures=1, grain=2, seed=0)[2][0, 0]
    assert torch.equal(coarse[0::2, 0::2], coarse[1::2, 1::2])  # 2 x 2 blocks
    assert not torch.equal(fine[0::2, 0::2], fine[1::2, 1::2])
