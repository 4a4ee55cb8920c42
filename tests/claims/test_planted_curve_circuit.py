"""curve-circuit on planted truth: a hand-built net whose conv2:0 places oriented conv1 line units tangent
along a cap is supported; the same unit with its inputs at random cells and orientations is not; a net
whose conv2 holds only a straight-line detector has no curve detector to examine."""

from __future__ import annotations

import base64
import math

import pytest
import torch
from torch import nn

from interp.analysis.vision.tuning import Probe
from interp.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckOptions, check_claims, list_claims, model_run
from interp.analysis.vision.curve_circuit import (UnitReadout, axis_difference, cell_spacing, preferred_curves,
                                                 tangent_alignment, tangent_field, weight_patching_agreement)
from interp.claims.curve_circuit import examine_detector
from interp.claims.registry import default_claims
from interp.data import stimuli as S
from interp.hooks import hook_count

ORIENTATIONS = tuple(j * 22.5 for j in range(8))
"""conv1 holds a white-line and a black-line unit at each orientation: units 2j and 2j + 1."""
CAP = {"unit": "conv2:0", "orientation": 90.0, "radius": 4.2}
"""The curve planted in conv2:0: a cap (an upside-down U) of radius 4.2 px through the kernel's centre."""


class Planted(nn.Module):
    """conv1 3->16 k5 -> ReLU -> max-pool 2 -> conv2 16->4 k5 -> ReLU -> max-pool 2 -> fc (the tutorial's shape)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.relu1, self.pool1 = nn.Conv2d(3, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2)
        self.conv2, self.relu2, self.pool2 = nn.Conv2d(16, 4, 5), nn.ReLU(), nn.MaxPool2d(2, 2)
        self.flatten, self.fc1 = nn.Flatten(), nn.Linear(4 * 25, 2)

    def forward(self, x):
        for m in (self.conv1, self.relu1, self.pool1, self.conv2, self.relu2, self.pool2, self.flatten, self.fc1):
            x = m(x)
        return x


def line_filter(angle: float, polarity: float, k: int = 5) -> torch.Tensor:
    """An even Gabor whose bright bar runs along ``angle`` (degrees, y up), zero mean, unit norm."""
    c = (k - 1) / 2
    r = torch.arange(k, dtype=torch.float32)
    y, x = -(r[:, None] - c), r[None] - c
    t = math.radians(angle)
    w = torch.cos(2 * math.pi * 0.25 * (-x * math.sin(t) + y * math.cos(t))) * torch.exp(-(x * x + y * y) / 4.5)
    w = w - w.mean()
    return polarity * w / w.norm()


def arc_cells(radius: float = 4.2, spacing: float = 2.0, k: int = 5) -> list[tuple[int, int, float]]:
    """Kernel cells ``(row, col, tangent)`` within half a cell of the cap, over the stimulus arc's 150 degrees."""
    c = (k - 1) / 2
    cells = []
    for a in range(k):
        for b in range(k):
            x, y = (b - c) * spacing, -(a - c) * spacing + radius  # offset from the circle's centre
            angle = math.degrees(math.atan2(y, x))
            if abs(math.hypot(x, y) - radius) <= spacing / 2 and abs(angle - 90) <= 75:
                cells.append((a, b, (angle + 90) % 180))
    return cells


def nearest_orientation(angle: float) -> int:
    return min(range(len(ORIENTATIONS)), key=lambda j: float(axis_difference(torch.tensor(angle),
                                                                             torch.tensor(ORIENTATIONS[j]))))


def planted(layout: str = "arc", seed: int = 0) -> nn.Module:
    """``arc``: conv2:0 reads, at each cell along the cap, both line units of the cap's tangent there;
    ``random``: as many inputs at random cells and orientations; ``crossing``: the arc's cells, each
    reading the units orthogonal to the tangent there; ``line``: a straight horizontal line
    detector (the whole middle row reads the horizontal units). Other conv2 units are silent; the bias
    cancels 80% of the best straight line's drive (a threshold: the unit needs its whole pattern)."""
    model = Planted()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w1 = torch.stack([line_filter(o, p) for o in ORIENTATIONS for p in (1.0, -1.0)])
        model.conv1.weight.copy_(w1[:, None].expand(-1, 3, -1, -1) / 3)
        model.conv1.bias.zero_()
        model.conv2.weight.zero_()
        model.conv2.bias.zero_()
        if layout == "line":
            cells = [(2, b, 0.0) for b in range(5)]
        else:
            cells = arc_cells()
        for a, b, tangent in cells:
            j = nearest_orientation(tangent + (90.0 if layout == "crossing" else 0.0))
            if layout == "random":
                a, b = (int(v) for v in torch.randint(5, (2,), generator=g))
                j = int(torch.randint(len(ORIENTATIONS), (1,), generator=g))
            model.conv2.weight[0, 2 * j:2 * j + 2, a, b] += 1.0
        model.fc1.weight.normal_(0, 0.1, generator=g)
        model.fc1.bias.zero_()
        lines, _ = S.line_images(32, range(0, 360, 15), polarities=(1.0, -1.0), length=11.2, thickness=1.17,
                                 center=(1.0, 1.0))
        drive = model.conv2(model.pool1(model.relu1(model.conv1((lines - 0.5) / 0.25))))[:, 0, 5, 5]
        model.conv2.bias[0] = -0.8 * float(drive.max())
    return model.eval()


def planted_run(layout: str):
    return model_run(planted(layout), name=f"planted-{layout}")


# --------------------------------------------------------------------------- geometry


def test_tangent_field_of_a_cap_and_of_a_right_bulge():
    cap = tangent_field(5, 2.0, 90.0, 4.0)
    assert float(cap[2, 2]) == 0.0                               # the top of a cap runs horizontally
    assert float(axis_difference(cap[2, 0], torch.tensor(45.0))) < 1.0   # 4 px left, 4 px below the circle's top
    assert float(axis_difference(cap[2, 4], torch.tensor(135.0))) < 1.0
    bulge = tangent_field(5, 2.0, 0.0, 4.2)                      # a ")": vertical at its midpoint
    assert float(bulge[2, 2]) == 90.0
    mirrored = -tangent_field(5, 2.0, 180.0, 4.2).flip(1)         # "(" mirrored left-right is ")"
    assert float(axis_difference(bulge, mirrored).max()) < 1e-3


def test_cell_spacing_is_the_pooled_stride():
    probe = Probe.from_run(planted_run("arc"))
    assert cell_spacing(probe, "conv2") == 2.0
    assert cell_spacing(probe, "conv1") == 1.0


def test_alignment_is_zero_for_tangent_weights_and_not_for_crossing_ones():
    tangent = tangent_field(5, 2.0, 90.0, 4.2)
    kernels = torch.zeros(3, 5, 5)
    cells = [(2, 2), (2, 1), (3, 0)]
    for n, (a, b) in enumerate(cells):
        kernels[n, a, b] = 1.0 + n                               # weighted: the weights differ
    along = torch.stack([tangent[a, b] for a, b in cells])
    exact = tangent_alignment(kernels, along, tangent, permutations=200)
    assert exact.value < 1e-4 and exact.aligned and not exact.at_chance
    assert exact.null.median() > 20.0                            # the same units at random cells
    crossing = tangent_alignment(kernels, along + 90.0, tangent, permutations=200)
    assert crossing.value == pytest.approx(90.0, abs=1e-3) and crossing.at_chance and not crossing.aligned


# --------------------------------------------------------------------------- weights and patching


def test_readout_metric_is_the_tuning_response_and_leaves_no_hooks():
    run = planted_run("arc")
    probe = Probe.from_run(run)
    agree = weight_patching_agreement(probe, "conv1", "conv2", 0, 90.0, 4.2, permutations=50)
    expected = probe.responses("conv2", preferred_curves(probe, "conv2", 90.0, 4.2))[:, 0].mean()
    assert agree.metric_clean == pytest.approx(float(expected), rel=1e-4)
    assert len(agree.patching.edges) == 16 and str(agree.patching.edges[0]) == "conv1:0->conv2:0"
    silent = [e for e, s in agree.weights.as_dict().items() if s == 0]
    assert silent and all(agree.patching.as_dict()[e] == 0 for e in silent)   # no weight: no effect
    assert all(v < 0 for e, v in agree.patching.as_dict().items() if e not in silent)   # removing an input lowers it
    assert hook_count(run.model) == 0


def test_readout_passes_an_outer_stop_on_and_keeps_no_hooks_on_error():
    model = planted("arc")
    readout = UnitReadout(model, "conv2", (5, 5))
    with pytest.raises(RuntimeError):
        readout(torch.zeros(1, 5, 32, 32))                       # wrong channel count: conv1 raises
    assert hook_count(model) == 0
    assert readout(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


class FailsOnBigBatches(nn.Module):
    """Raises past conv2 once patching stacks copies of the clean batch (hooks are on by then)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        if len(x) > 24:
            raise RuntimeError("planted failure")
        return self.model(x)


def test_no_hooks_remain_when_patching_raises():
    model = planted("arc")
    model.flatten = FailsOnBigBatches(model.flatten)
    run = model_run(model, name="planted-failing")
    with pytest.raises(RuntimeError, match="planted failure"):
        weight_patching_agreement(Probe.from_run(run), "conv1", "conv2", 0, 90.0, 4.2, permutations=10)
    assert hook_count(model) == 0


# --------------------------------------------------------------------------- the claim on planted truth


@pytest.fixture(scope="module")
def arc_result():
    run = planted_run("arc")
    (result,) = check_claims(run, ["curve-circuit"], null_models=2)
    assert hook_count(run.model) == 0
    return result


def test_tangent_arc_is_supported(arc_result):
    r = arc_result
    assert r.status == SUPPORTED, r.verdict.reason
    assert r.numbers["detector"] == "conv2:0" and r.found == ["conv2:0"]
    assert r.numbers["tangent_error_deg"] < 12.0                 # the orientation grid is 22.5 deg
    assert r.headline["ci_high"] < r.headline["null_quantile"] < r.numbers["tangent_null_median"]
    assert r.numbers["weight_patching_spearman"] > r.numbers["spearman_null_q95"]
    examined = {row["unit"] for row in r.table}
    assert examined <= {f"conv1:{i}" for i in range(16)} and len(examined) == 10
    for row in r.table:
        assert row["error_at_peak"] <= 12.0 and row["patching"] < 0


def test_evidence_image_is_a_png_of_the_kernel(arc_result):
    png = base64.b64decode(arc_result.data["circuit_png"])
    assert png.startswith(b"\x89PNG")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (160, 160)                         # 5 x 5 cells of 32 px


def test_random_arrangement_is_not_supported():
    run = planted_run("random")
    result = examine_detector(run, "conv2", CAP, CheckOptions())
    assert result.status in (NOT_SUPPORTED, INCONCLUSIVE), result.verdict.reason   # 5 cells: may not decide
    assert result.numbers["tangent_error_deg"] > 25.0
    assert result.headline["ci_high"] >= result.headline["null_quantile"]
    assert hook_count(run.model) == 0


def test_inputs_crossing_the_curve_refute_the_arrangement():
    run = planted_run("crossing")
    result = examine_detector(run, "conv2", CAP, CheckOptions())
    assert result.status == NOT_SUPPORTED, result.verdict.reason
    assert result.numbers["tangent_error_deg"] > 70.0
    assert result.headline["ci_low"] >= result.headline["null_quantile"]
    assert "not arranged along the curve" in result.verdict.reason


def test_the_arc_examined_directly_agrees_with_the_full_check(arc_result):
    result = examine_detector(planted_run("arc"), "conv2", CAP, CheckOptions())
    assert result.status == SUPPORTED and result.numbers["tangent_error_deg"] < 12.0


def test_a_line_detector_net_has_no_curve_detector_to_examine():
    (result,) = check_claims(planted_run("line"), ["curve-circuit"], null_models=2)
    assert result.status == INCONCLUSIVE
    assert "no curve detector in conv2" in result.verdict.reason


def test_registered_and_applies_to_conv_nets_only():
    assert "curve-circuit" in [c.id for c in list_claims("vision")]
    assert "curve-circuit" not in [c.id for c in default_claims(planted_run("arc"))]   # checked when named
    one_conv = model_run(nn.Sequential(nn.Conv2d(3, 4, 5), nn.Flatten(), nn.Linear(4 * 28 * 28, 2)), name="one")
    (result,) = check_claims(one_conv, ["curve-circuit"])
    assert result.status == INCONCLUSIVE and "needs at least 2" in result.verdict.reason
