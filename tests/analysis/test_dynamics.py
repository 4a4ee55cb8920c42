"""Training dynamics: phase-change detection on planted series, the checkpoint pipeline, its store and CLI."""

import math

import pytest
import torch

from interp.analysis.dynamics.phase import detect_phase_change, seed_spread
from interp.analysis.dynamics.points import class_selectivity
from interp.errors import InterpError

STEPS = [0] + [round(300 ** (i / 29)) for i in range(30)]
STEPS = sorted(set(STEPS))


def _series(kind: str, at: int = 150, noise: float = 0.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.tensor(STEPS, dtype=torch.float64)
    if kind == "step":
        y = 0.05 + 0.6 * torch.sigmoid((x - at) / 8)
    elif kind == "steady":
        y = 0.05 + 0.6 * torch.log1p(x) / math.log1p(STEPS[-1])
    else:  # flat
        y = torch.full_like(x, 0.05)
    reps = y[None] + noise * torch.randn(200, len(STEPS), generator=g, dtype=torch.float64)
    return y.tolist(), reps


def test_an_abrupt_rise_is_a_phase_change_at_its_step():
    values, reps = _series("step", at=150, noise=0.005)
    pc = detect_phase_change(STEPS, values, reps, null=[0.04, 0.05, 0.06])
    assert pc.status == "phase change", pc.reason
    assert pc.interval[0] <= 150 <= pc.interval[1] + 20
    assert pc.share > 2 * pc.steady_share


def test_a_steady_rise_is_gradual_and_a_flat_one_no_change():
    values, reps = _series("steady", noise=0.002)
    assert detect_phase_change(STEPS, values, reps, null=[0.04, 0.05, 0.06]).status == "gradual"
    values, reps = _series("flat", noise=0.01)
    flat = detect_phase_change(STEPS, values, reps, null=[0.04, 0.05, 0.06])
    assert flat.status == "no change", flat.reason


def test_a_fall_is_found_with_direction_minus_one_and_noise_makes_it_inconclusive():
    values, reps = _series("step", at=100, noise=0.005)
    pc = detect_phase_change(STEPS, [-v for v in values], -reps, direction=-1, null=[-0.04, -0.05])
    assert pc.status == "phase change" and pc.jump < 0
    values, reps = _series("step", at=100, noise=0.4)  # noise as large as the change
    assert detect_phase_change(STEPS, values, reps, null=[0.0, 0.1]).status in ("inconclusive", "no change")


def test_too_few_checkpoints_and_seed_spread():
    assert detect_phase_change([0, 1, 2], [0, 1, 1]).status == "inconclusive"
    s = seed_spread([100, 120, None])
    assert s["with_change"] == 2 and s["mean"] == 110 and s["ci"][0] < 110 < s["ci"][1]


def test_class_selectivity_matches_the_definition():
    acts = torch.tensor([[3.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 2])
    sel = class_selectivity(acts, labels, 3)
    assert sel[0] == pytest.approx((3 - 1) / (3 + 1)) and sel[1] == pytest.approx(0.0)


# ------------------------------------------------------------------ the pipeline on tiny runs

TINY = {"steps_per_epoch": "5", "batch_size": "8", "n_layer": "2", "n_embd": "16", "n_head": "2",
        "block_size": "16", "checkpoints": "log:6"}
DATA = "induction:vocab_size=16,min_block=2,max_block=6"


@pytest.fixture
def tiny_lm():
    from interp.training.loop import train

    return train("attn-only", DATA, name="lm", epochs=4, device="cpu", progress=False, log=None, overrides=TINY)


def test_dynamics_of_a_tiny_lm_reuses_its_checkpoints_and_round_trips(tiny_lm, monkeypatch):
    import interp.pipelines.dynamics as pipeline
    from interp.hooks import hook_count
    from interp.results import load

    result = pipeline.dynamics(tiny_lm, n=16, null_models=2, progress=False, log=None)
    assert result.steps[0] == 0 and result.steps[-1] == 20 and len(result.steps) >= 6
    assert set(result.series) >= {"induction", "prev_token", "icl", "loss", "k_composition"}
    loss = result.series["loss"]
    assert loss.values[-1] < loss.values[0] and len(loss.null) == 2
    assert all(lo <= v <= hi for v, (lo, hi) in zip(loss.values, loss.ci))
    assert result.heads["induction"].shape == (len(result.steps), 2, 2)
    assert hook_count(tiny_lm.model) == 0

    calls = []
    original = pipeline.transformer_point
    monkeypatch.setattr(pipeline, "transformer_point", lambda *a, **k: calls.append(1))
    again = pipeline.dynamics(tiny_lm, n=16, null_models=2, progress=False, log=None)  # every point from the store
    assert calls == [] and again.series["loss"].values == loss.values
    monkeypatch.setattr(pipeline, "transformer_point", original)
    import shutil

    shutil.rmtree(tiny_lm.report_dir() / "dynamics-points")  # recomputed from scratch: the same series
    fresh = pipeline.dynamics(tiny_lm, n=16, null_models=2, progress=False, log=None, save=False)
    assert all(fresh.series[k].values == result.series[k].values for k in result.series)

    folder = tiny_lm.report_dir() / "dynamics"
    back = load(folder)
    assert back.steps == result.steps and back.series["icl"].phase.status == result.series["icl"].phase.status
    assert torch.equal(back.heads["induction"], result.heads["induction"])
    assert (folder / "dynamics.png").stat().st_size > 1000

    from interp.report.dynamics_section import contribute
    from interp.report.registry import ReportContext

    ctx = ReportContext(run=tiny_lm, root=tiny_lm.report_dir())
    contribute(ctx)  # the run page's "Over training" section renders what was saved
    section = next(s for s in ctx.pages["index.html"].sections if s.id == "dynamics")
    assert (ctx.root / section.data["figure"]).is_file()
    assert sorted(r["name"] for r in section.data["rows"]) == sorted(result.series)


def test_dynamics_of_a_cnn_and_its_errors(tiny_run, cli, tmp_path):
    from interp.pipelines.dynamics import dynamics
    from interp.training.loop import train

    with pytest.raises(InterpError, match="--checkpoints log"):
        dynamics(tiny_run, progress=False, log=None, save=False)
    run = train("tutorial", "shapes", name="cnn", epochs=2, device="cpu", progress=False, log=None,
                overrides={"n_train": "2000", "n_test": "200", "checkpoints": "log:5"})
    result = dynamics(run, n=100, null_models=2, progress=False, log=None)
    assert {"accuracy", "loss", "selectivity:conv1", "selectivity:conv2"} <= set(result.series)
    assert result.units["conv2"].shape == (len(result.steps), 16)
    assert result.series["accuracy"].values[-1] > result.series["accuracy"].null[0]
    claims = dynamics(run, metrics=["claims"], claims=["gabor-first-layer"], claim_null_models=2, n=100,
                      null_models=0, progress=False, log=None, save=False)
    row = claims.claims[0]
    assert row["claim"] == "gabor-first-layer" and len(row["statuses"]) == len(claims.steps)
    assert (row["first_supported"] is None) == (row["statuses"][-1] != "supported")
    code, out, err = cli("dynamics", "--run", "cnn", "--metrics", "heads")
    assert code == 2 and "heads" in err and "accuracy" in err and "Traceback" not in err
    code, out, err = cli("dynamics", "--run", "cnn", "--n", "100", "--null-models", "1", "--no-progress")
    assert code == 0 and "accuracy" in out and "at step" in out


@pytest.mark.slow
def test_two_layers_have_a_phase_change_with_the_icl_jump_and_one_layer_none(tmp_path):
    """The Induction Heads paper's result on the demo's recipe: the induction score's phase change
    is the ICL score's (within two checkpoints); a 1-layer model has neither."""
    from interp.pipelines.dynamics import dynamics
    from interp.training.loop import train

    recipe = {"steps_per_epoch": "10", "batch_size": "32", "grad_clip": "1.0", "checkpoints": "log"}
    two = train("attn-only", "induction", name="two", epochs=30, lr=3e-3, device="cpu", progress=False, log=None,
                overrides=recipe)
    one = train("attn-only", "induction", name="one", epochs=30, lr=3e-3, device="cpu", progress=False, log=None,
                overrides={**recipe, "n_layer": "1"})
    d2 = dynamics(two, progress=False, log=None)
    assert d2.series["induction"].phase.status == "phase change", d2.series["induction"].phase.reason
    assert d2.series["icl"].phase.status == "phase change"
    assert d2.coincide["induction~icl"] <= 2
    d1 = dynamics(one, progress=False, log=None)
    assert d1.series["induction"].phase.status == "no change", d1.series["induction"].phase.reason
    assert d1.series["icl"].phase.status != "phase change"
