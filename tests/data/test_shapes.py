"""Tests for the procedural ``shapes`` dataset and its drawing primitives."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from interp.data import drawing as D
from interp.data.shapes import SHAPES_CLASSES, make_shapes, shapes_splits

C = len(SHAPES_CLASSES)


# --------------------------------------------------------------------------- #
# Dataset
# --------------------------------------------------------------------------- #
def test_class_list():
    assert len(SHAPES_CLASSES) >= 10
    assert len(set(SHAPES_CLASSES)) == len(SHAPES_CLASSES)
    assert all(isinstance(c, str) and c for c in SHAPES_CLASSES)


@pytest.mark.parametrize("size", [32, 48])
def test_shapes_and_dtypes(size):
    x, y = make_shapes(37, seed=0, size=size)
    assert x.shape == (37, 3, size, size) and x.dtype == torch.uint8
    assert y.shape == (37,) and y.dtype == torch.int64
    assert int(y.min()) >= 0 and int(y.max()) < C
    # Images are not degenerate: real dynamic range in every image.
    xf = x.float()
    assert (xf.amax((1, 2, 3)) - xf.amin((1, 2, 3)) > 40).all()


def test_empty():
    x, y = make_shapes(0)
    assert x.shape == (0, 3, 32, 32) and y.shape == (0,)


def test_deterministic_same_seed():
    x1, y1 = make_shapes(300, seed=7)
    x2, y2 = make_shapes(300, seed=7)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_different_seed_differs():
    x1, y1 = make_shapes(300, seed=0)
    x2, y2 = make_shapes(300, seed=1)
    assert not torch.equal(y1, y2)
    assert (x1 != x2).float().mean() > 0.5


def test_uses_only_its_own_generator():
    state = torch.random.get_rng_state()
    make_shapes(50, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    # ... and is unaffected by the global seed.
    torch.manual_seed(123)
    a = make_shapes(20, seed=3)[0]
    torch.manual_seed(456)
    assert torch.equal(a, make_shapes(20, seed=3)[0])


@pytest.mark.parametrize("n", [10, 103, 1000])
def test_balanced_and_every_class_present(n):
    _, y = make_shapes(n, seed=0)
    counts = torch.bincount(y, minlength=C)
    assert (counts > 0).all()
    assert int(counts.max() - counts.min()) <= 1
    # Exactly the multiset {i % C}, i.e. shuffled rather than re-sampled.
    assert torch.equal(torch.sort(y).values, torch.sort(torch.arange(n) % C).values)
    assert not torch.equal(y, torch.arange(n) % C)


def test_splits():
    d = shapes_splits(n_train=120, n_test=60, seed=0)
    assert set(d) == {"train", "test", "classes"}
    assert d["classes"] == list(SHAPES_CLASSES)
    (xtr, ytr), (xte, yte) = d["train"], d["test"]
    assert xtr.shape == (120, 3, 32, 32) and ytr.shape == (120,)
    assert xte.shape == (60, 3, 32, 32) and yte.shape == (60,)
    assert not torch.equal(xtr[:60], xte)  # different seeds
    d2 = shapes_splits(n_train=120, n_test=60, seed=0)
    assert torch.equal(d["train"][0], d2["train"][0]) and torch.equal(d["test"][0], d2["test"][0])


def test_classes_not_separable_by_mean_colour():
    # Colour is a nuisance shared by every class: per-class mean colours agree.
    x, y = make_shapes(2000, seed=0)
    means = torch.stack([x[y == k].float().mean((0, 2, 3)) for k in range(C)]) / 255
    assert (means.amax(0) - means.amin(0)).max() < 0.1


class _TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 5, padding=2)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, C)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(x.amax((2, 3)))


def test_learnable_by_tiny_convnet():
    """A tiny conv net trained briefly on 2000 images clearly beats chance (10%)."""
    xtr, ytr = make_shapes(2000, seed=10)
    xte, yte = make_shapes(1000, seed=11)
    xtr, xte = xtr.float() / 127.5 - 1, xte.float() / 127.5 - 1
    # One intra-op thread: for such small convs threading barely helps, and on
    # an oversubscribed CI box OpenMP spin-waiting makes it 10x+ slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = _TinyNet()
            opt = torch.optim.Adam(net.parameters(), lr=3e-3)
            for _ in range(300):
                idx = torch.randint(0, len(ytr), (64,))
                loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            acc = (net(xte).argmax(1) == yte).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    # Chance is 0.10 (sd ~0.01 on 1000 images); this setup reaches ~0.5.
    assert acc > 0.3, acc


# --------------------------------------------------------------------------- #
# Drawing primitives
# --------------------------------------------------------------------------- #
def test_coord_grid_centred():
    y, x = D.coord_grid(4, 6)
    assert y.shape == x.shape == (4, 6)
    assert x.sum() == 0 and y.sum() == 0
    assert x[0].tolist() == [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
    assert y[:, 0].tolist() == [-1.5, -0.5, 0.5, 1.5]


def test_coverage_ramp():
    assert D.coverage(torch.tensor([-1.0, -0.5, 0.0, 0.25, 0.5, 3.0])).tolist() == [1, 1, 0.5, 0.25, 0, 0]


@pytest.mark.parametrize("angle", [0.0, math.pi / 2, 0.3, 1.1, 2.5])
def test_grating_mean_and_range(angle):
    g = D.grating(32, 32, angle=angle, freq=1 / 8, phase=0.7)
    assert g.shape == (1, 32, 32)
    assert g.min() >= 0 and g.max() <= 1
    assert abs(g.mean().item() - 0.5) < 0.02
    assert g.max() - g.min() > 0.95


def test_grating_period_phase_and_orientation():
    period = 8
    g = D.grating(33, 33, angle=0.0, freq=1 / period)[0]
    # Crest at the centre with phase 0, constant along the stripes (angle 0 ->
    # modulation along x, stripes vertical), and periodic with the period.
    assert g[16, 16].item() == pytest.approx(1.0)
    assert torch.allclose(g, g[:1].expand_as(g))
    assert torch.allclose(g[:, :-period], g[:, period:], atol=1e-5)
    # Exact mean over one period along x.
    assert g[0, :period].mean().item() == pytest.approx(0.5, abs=1e-6)
    # Phase pi flips it; angle pi/2 transposes it.
    assert torch.allclose(D.grating(33, 33, 0.0, 1 / period, math.pi)[0], 1 - g, atol=1e-5)
    assert torch.allclose(D.grating(33, 33, math.pi / 2, 1 / period)[0], g.T, atol=1e-5)


def test_line_mask_symmetric_about_axis():
    h = D.line_mask(32, 32, angle=0.0, thickness=3.0)[0]
    assert torch.equal(h, h.flip(0))  # symmetric about its (horizontal) axis
    assert torch.allclose(h.sum(0), torch.full((32,), 3.0))  # thickness exact
    v = D.line_mask(32, 32, angle=math.pi / 2, thickness=2.0)[0]
    assert torch.allclose(v, v.flip(1), atol=1e-5) and torch.allclose(v.sum(1), torch.full((32,), 2.0), atol=1e-5)
    d = D.line_mask(32, 32, angle=math.pi / 4, thickness=2.0)[0]
    assert torch.allclose(d, d.T, atol=1e-6) and torch.allclose(d, d.flip(0, 1), atol=1e-6)
    # Off-centre line: mass centred on cy.
    m = D.line_mask(32, 32, angle=0.0, thickness=2.0, cy=5.0)[0]
    y, _ = D.coord_grid(32, 32)
    assert (m * y).sum() / m.sum() == pytest.approx(5.0, abs=1e-4)


def test_segment_and_finite_line():
    m = D.segment_mask(32, 32, -8.0, 0.0, 8.0, 0.0, thickness=2.0)[0]
    assert torch.equal(m, m.flip(0)) and torch.equal(m, m.flip(1))
    assert m.sum().item() == pytest.approx(16 * 2 + math.pi, rel=0.05)  # body + round caps
    ln = D.line_mask(32, 32, angle=0.0, thickness=2.0, length=16.0)[0]
    assert torch.allclose(ln, m)


def test_halfplane_complementary():
    a = torch.tensor([0.0, 0.7, 2.0])
    m1 = D.halfplane_mask(32, 32, a, cx=1.3, cy=-2.0)
    m2 = D.halfplane_mask(32, 32, a + math.pi, cx=1.3, cy=-2.0)
    assert torch.allclose(m1 + m2, torch.ones_like(m1), atol=1e-5)
    # angle 0 covers the right side (+x), boundary at cx.
    m = D.halfplane_mask(32, 32, 0.0, cx=3.5)[0]
    _, x = D.coord_grid(32, 32)
    assert (m[x > 4] == 1).all() and (m[x < 3] == 0).all()


def test_disc_and_ring():
    d = D.disc_mask(64, 64, radius=10.0)[0]
    assert d.sum().item() == pytest.approx(math.pi * 100, rel=0.01)
    r = D.ring_mask(64, 64, radius=10.0, thickness=2.0)[0]
    assert r.sum().item() == pytest.approx(2 * math.pi * 10 * 2, rel=0.02)
    assert r[32, 32] == 0


@pytest.mark.parametrize("radius,angle", [(5.0, 0.0), (10.0, 2.0), (14.0, -1.2)])
def test_arc_mask_lies_at_radius_and_angle(radius, angle):
    cx, cy = 1.5, -2.0
    t = 2.0
    m = D.arc_mask(48, 48, radius=radius, thickness=t, angle=angle, span=math.pi / 2, cx=cx, cy=cy)[0]
    y, x = D.coord_grid(48, 48)
    rr = torch.hypot(x - cx, y - cy)
    assert (m * rr).sum() / m.sum() == pytest.approx(radius, abs=0.15)
    assert (m[(rr - radius).abs() > t / 2 + 1] == 0).all()
    # Mass direction points at `angle` (the arc bulges towards it).
    mx, my = (m * (x - cx)).sum(), (m * (y - cy)).sum()
    assert math.atan2(my, mx) == pytest.approx(math.atan2(math.sin(angle), math.cos(angle)), abs=0.02)
    # Nothing on the opposite side of the circle.
    opposite = torch.cos(torch.atan2(y - cy, x - cx) - angle) < 0
    assert (m[opposite] == 0).all()


def test_arc_full_span_is_ring():
    a = D.arc_mask(32, 32, radius=8.0, thickness=2.0, angle=0.4, span=2 * math.pi)
    assert torch.allclose(a, D.ring_mask(32, 32, radius=8.0, thickness=2.0), atol=1e-5)


def test_gaussian_mask():
    g = D.gaussian_mask(33, 33, sigma=3.0, cx=2.0)[0]
    assert g.max().item() == pytest.approx(1.0)
    assert g[16, 18].item() == pytest.approx(1.0)
    assert g.sum().item() == pytest.approx(2 * math.pi * 9, rel=0.01)


def test_batched_params_match_single_renders():
    r = torch.tensor([4.0, 7.0, 10.0])
    a = torch.tensor([0.0, 1.0, 2.0])
    batch = D.arc_mask(32, 32, r, 2.0, a, 2.0)
    assert batch.shape == (3, 32, 32)
    for i in range(3):
        assert torch.allclose(batch[i], D.arc_mask(32, 32, r[i].item(), 2.0, a[i].item(), 2.0)[0])
    with pytest.raises(ValueError):
        D.grating(8, 8, torch.zeros(2), torch.ones(3))


def test_composite_and_solid():
    bg = D.solid(2, 8, 8, torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.4, 0.6]]))
    assert bg.shape == (2, 3, 8, 8)
    m = D.halfplane_mask(8, 8, torch.tensor([0.0, math.pi]))
    out = D.composite(bg, m, [1.0, 0.5, 0.0])
    assert out[0, :, 0, 7].tolist() == [1.0, 0.5, 0.0] and out[0, :, 0, 0].tolist() == [0, 0, 0]
    assert out[1, :, 0, 0].tolist() == [1.0, 0.5, 0.0]
    assert torch.allclose(out[1, :, 0, 7], torch.tensor([0.2, 0.4, 0.6]))
    half = D.composite(bg, m, [1.0, 1.0, 1.0], alpha=0.5)
    assert torch.allclose(half[0, :, 0, 7], torch.full((3,), 0.5))
    # A full image as the fill (texture).
    tex = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(D.composite(bg, torch.ones(2, 8, 8), tex), tex)


def test_noise_is_seeded_and_sized():
    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return D.noise_background(torch.full((4, 3), 0.5), 32, 32, g, smooth_amp=0.2, pixel_std=0.05)

    a, b = draw(0), draw(0)
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, draw(1))
    assert abs(a.mean().item() - 0.5) < 0.05
    g = torch.Generator().manual_seed(0)
    s = D.smooth_noise(8, 32, 32, g, cells=4)
    assert s.shape == (8, 1, 32, 32) and s.abs().max() <= 0.5
    # Low frequency: neighbouring pixels differ far less than the overall range.
    assert (s[..., 1:] - s[..., :-1]).abs().max() < 0.15
    p = D.pixel_noise(16, 32, 32, torch.linspace(0.0, 0.3, 16), torch.Generator().manual_seed(0), channels=3)
    assert p.shape == (16, 3, 32, 32) and p[0].abs().max() == 0
    assert p[-1].std().item() == pytest.approx(0.3, rel=0.05)


def test_uint8_roundtrip():
    x = torch.tensor([-0.2, 0.0, 0.5, 1.0, 1.3])
    assert D.to_uint8(x).tolist() == [0, 0, 128, 255, 255]
    u = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(D.to_uint8(D.to_float(u)), u)


def test_large_shapes_splits_are_cached_on_disk_keyed_by_generator(monkeypatch, tmp_path):
    """The embedded data are generated once per generator version; a corrupt cache is rebuilt."""
    import interp.data.images as images
    from interp.data import shapes

    monkeypatch.setattr(images, "SHAPES_DISK_CACHE_MIN", 300)  # tiny splits stand in for 60,000 images
    images._shapes.cache_clear()
    first = images._shapes(200, 100)
    (entry,) = (tmp_path / "cache").glob("shapes-200-100-*.safetensors")
    assert shapes.generator_version() in entry.name
    images._shapes.cache_clear()
    monkeypatch.setattr(shapes, "shapes_splits", lambda *a, **k: pytest.fail("regenerated despite the cache"))
    again = images._shapes(200, 100)
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    assert (first.mean, first.std, first.classes) == (again.mean, again.std, again.classes)

    monkeypatch.undo()
    monkeypatch.setattr(images, "SHAPES_DISK_CACHE_MIN", 300)
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))
    entry.write_bytes(b"not a safetensors file")
    images._shapes.cache_clear()
    rebuilt = images._shapes(200, 100)
    assert torch.equal(first.train_x, rebuilt.train_x)
    # a changed generator is a new key: the old entry is replaced, never served
    monkeypatch.setattr(shapes, "generator_version", lambda: "changed00000")
    images._shapes.cache_clear()
    images._shapes(200, 100)
    assert [p.name for p in (tmp_path / "cache").glob("shapes-200-100-*")] == ["shapes-200-100-seed0-changed00000.safetensors"]
    images._shapes.cache_clear()


def test_small_shapes_splits_are_not_written_to_disk(tmp_path):
    import interp.data.images as images

    images._shapes.cache_clear()
    images._shapes(200, 100)
    assert not list((tmp_path / "cache").glob("shapes-*"))
    images._shapes.cache_clear()
