import pytest
import torch

from interp.errors import InterpError
from interp.units import describe_layers
from interp.zoo import count_parameters, create_model, list_models


def test_tutorial_net_is_the_pytorch_tutorial():
    model = create_model("tutorial")
    assert count_parameters(model) == 62_006
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes["conv1.weight"] == (6, 3, 5, 5)
    assert shapes["conv2.weight"] == (16, 6, 5, 5)
    assert shapes["fc1.weight"] == (120, 400)
    assert shapes["fc2.weight"] == (84, 120)
    assert shapes["fc3.weight"] == (10, 84)
    assert model.layer_names == ["conv1", "conv2", "fc1", "fc2", "fc3"]


def test_tutorial_forward_matches_the_tutorial_code():
    """Same weights in the tutorial's own Net give the same logits."""
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):  # verbatim from the PyTorch CIFAR-10 tutorial
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    ours, ref = create_model("tutorial"), Net()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(ours(x), ref(x))


def test_each_relu_and_pool_module_is_called_once():
    model = create_model("tutorial")
    calls = {}
    handles = [m.register_forward_hook(lambda m, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
               for n, m in model.named_modules() if n]
    model(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    assert set(calls.values()) == {1}


@pytest.mark.parametrize("pooling", ["max", "avg", "stride", "none"])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_variants_build_and_run(pooling, kernel):
    model = create_model("tutorial", pooling=pooling, kernel_size=kernel)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_variants_batch_norm_gap_and_depth():
    model = create_model("cnn-gap")
    assert model.layer_names[:3] == ["conv1", "conv2", "conv3"]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    deep = create_model("tutorial", channels=(8, 16, 32), padding=2, batch_norm=True)
    assert [n for n in deep.layer_names if n.startswith("conv")] == ["conv1", "conv2", "conv3"]


def test_mlps_match_and_exceed_the_tutorial_parameter_count():
    small, large = count_parameters(create_model("mlp")), count_parameters(create_model("mlp-large"))
    assert abs(small - 62_006) / 62_006 < 0.02
    assert large > 10 * small


def test_layers_are_listed_with_shapes():
    infos = describe_layers(create_model("tutorial"), (3, 32, 32))
    table = {i.name: (i.kind, i.units, i.output_shape) for i in infos}
    assert table["conv1"] == ("conv", 6, (6, 28, 28))
    assert table["conv2"] == ("conv", 16, (16, 10, 10))
    assert table["fc3"] == ("linear", 10, (10,))


def test_unknown_model_lists_valid_ones():
    with pytest.raises(InterpError, match=r"unknown model 'tutoral'; did you mean 'tutorial'\?.*Valid models:.*mlp"):
        create_model("tutoral")


def test_kernel_too_large_for_input_is_a_clear_error():
    with pytest.raises(InterpError, match="shrinks to nothing"):
        create_model("tutorial", kernel_size=15)


def test_registry_lists_by_pattern():
    assert [m.name for m in list_models("mlp*")] == ["mlp", "mlp-large"]


# --- interp zoo: the grid over seeds, its statistics, findings and page -----------------

import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402

from interp.analysis.zoo_grid import summarize, zoo_findings  # noqa: E402
from interp.pipelines.zoo_grid import run_zoo  # noqa: E402
from interp.results.zoo import normalize_zoo, seed_run_name  # noqa: E402

TINY = {"n_train": "200", "n_test": "50"}


@pytest.fixture(scope="module")
def zoo2(tmp_path_factory):
    """Two entries x 2 seeds x 1 epoch on 200 shapes images (a few seconds), shared read-only."""
    root = tmp_path_factory.mktemp("zoo-models")
    return run_zoo("shapes", epochs=1, seeds=2, only=["tutorial-max", "mlp-small"], overrides=TINY,
                   device="cpu", progress=False, root=root, log=None)


def test_zoo_trains_every_seed_as_its_own_run(zoo2):
    saved = json.loads(zoo2["path"].read_text())
    assert saved["version"] == 2 and saved["seeds"] == 2
    assert [(r["entry"], r["seed"], r["run"]) for r in saved["seed_rows"]] == [
        ("tutorial-max", 0, "zoo-tutorial-max"), ("tutorial-max", 1, "zoo-tutorial-max-s1"),
        ("mlp-small", 0, "zoo-mlp-small"), ("mlp-small", 1, "zoo-mlp-small-s1")]
    for run in ("zoo-tutorial-max", "zoo-tutorial-max-s1", "zoo-mlp-small", "zoo-mlp-small-s1"):
        config = json.loads((zoo2["path"].parent / run / "config.json").read_text())
        assert config["train"]["seed"] == (1 if run.endswith("-s1") else 0)
    assert [r["entry"] for r in saved["rows"]] == ["tutorial-max", "mlp-small"]
    assert [r["run"] for r in saved["rows"]] == ["zoo-tutorial-max", "zoo-mlp-small"]  # seed 0 keeps the old name


def test_zoo_mean_and_spread_match_a_hand_computation(zoo2):
    saved = json.loads(zoo2["path"].read_text())
    for row in saved["rows"]:
        mine = [r for r in saved["seed_rows"] if r["entry"] == row["entry"]]
        accs = [r["test_acc"] for r in mine]
        mean = (accs[0] + accs[1]) / 2
        sd = abs(accs[0] - accs[1]) / math.sqrt(2)  # the sample sd of two values
        half = 12.706 * sd / math.sqrt(2)  # t(0.975, df=1) = 12.706
        assert row["test_accs"] == accs and row["seeds"] == 2
        assert row["test_acc"] == pytest.approx(mean) and row["test_acc_sd"] == pytest.approx(sd)
        assert row["test_acc_ci"] == pytest.approx([max(0, mean - half), min(1, mean + half)], abs=1e-4)
        assert (row["test_acc_min"], row["test_acc_max"]) == (min(accs), max(accs))
        assert row["parameters"] == mine[0]["parameters"]
        assert row["train_seconds"] == pytest.approx(sum(r["train_seconds"] for r in mine) / 2)


def test_summarize_with_one_seed_has_no_spread():
    s = summarize([0.5])
    assert s["seeds"] == 1 and s["test_acc"] == 0.5 and s["test_acc_sd"] is None and s["test_acc_ci"] is None
    s = summarize([0.5, 0.6, 0.7, 0.8])
    assert s["test_acc_sd"] == pytest.approx(statistics.stdev([0.5, 0.6, 0.7, 0.8]))
    half = 3.182 * s["test_acc_sd"] / 2  # t(0.975, df=3)
    assert s["test_acc_ci"] == pytest.approx([0.65 - half, 0.65 + half], abs=1e-3)


def _hand_made(seeds: int) -> dict:
    accs = {  # none >> max beyond the spread; avg ~ none within it; mlp-small << the CNN
        "tutorial-max": [0.58, 0.59, 0.60], "tutorial-none": [0.70, 0.71, 0.72],
        "tutorial-avg": [0.69, 0.715, 0.70], "mlp-small": [0.40, 0.41, 0.42],
    }
    params = {"tutorial-max": 62_006, "tutorial-none": 1_119_926, "tutorial-avg": 62_006, "mlp-small": 61_670}
    return {"seeds": seeds, "rows": [{"entry": e, "parameters": params[e], "train_seconds": 2.0,
                                      "test_accs": a[:seeds]} for e, a in accs.items()]}


def test_findings_say_which_differences_exceed_the_seed_spread():
    findings = normalize_zoo(_hand_made(3)).findings
    pooling = next(f for f in findings if f.startswith("Pooling:"))
    # best first, with its mean ± sd, seeds and parameters
    assert pooling.startswith("Pooling: no pooling (71.0% ± 1.0, 3 seeds, 1,119,926 parameters)")
    avg = pooling[pooling.index("avg pooling"):pooling.index("max pooling")]
    assert "by 0.8 points, within the seed spread" in avg
    maxp = pooling[pooling.index("max pooling"):]
    assert "max pooling (59.0% ± 1.0, 3 seeds, 62,006 parameters) by 12.0 points, larger than the seed spread" in maxp
    mlp = next(f for f in findings if f.startswith("MLP vs CNN"))
    assert "the small MLP (41.0% ± 1.0, 3 seeds, 61,670 parameters)" in mlp
    assert ("the tutorial CNN (59.0% ± 1.0, 3 seeds, 62,006 parameters): -18.0 points, "
            "larger than the seed spread") in mlp
    assert not any(f.startswith("Kernel") for f in findings)  # only one kernel entry: nothing to compare
    assert not any("Large" in f for f in findings)


def test_findings_follow_the_numbers_not_a_script():
    """Swap the winner: the text changes with the data."""
    data = _hand_made(3)
    for row in data["rows"]:
        if row["entry"] == "tutorial-max":
            row["test_accs"] = [0.80, 0.81, 0.82]
    pooling = next(f for f in normalize_zoo(data).findings if f.startswith("Pooling:"))
    assert pooling.startswith("Pooling: max pooling (81.0% ± 1.0")
    assert "So max pooling is ahead of every alternative beyond the seed spread." in pooling


def test_findings_with_one_seed_call_no_difference():
    findings = normalize_zoo(_hand_made(1)).findings
    assert "one seed per entry: no spread, so no difference can be called" in findings[0]
    pooling = next(f for f in findings if f.startswith("Pooling:"))
    assert "no pooling (70.0%, one seed, 1,119,926 parameters)" in pooling
    assert "no difference can be called" in pooling and "larger than the seed spread" not in pooling
    mlp = next(f for f in findings if f.startswith("MLP vs CNN"))
    assert "-18.0 points, one seed: no spread, so no difference can be called" in mlp


def test_version_1_json_is_normalized():
    old = {"dataset": "shapes", "epochs": 1, "settings": {}, "rows": [
        {"entry": "tutorial-max", "run": "zoo-tutorial-max", "model": "tutorial", "settings": {},
         "test_acc": 0.6, "parameters": 62006, "train_seconds": 3.0, "img_per_s": 1000.0}]}
    new = normalize_zoo(old)
    assert new.seeds == 1 and new.rows[0]["test_accs"] == [0.6] and new.rows[0]["test_acc_sd"] is None
    assert new.seed_rows[0]["run"] == "zoo-tutorial-max" and seed_run_name("x", 2) == "zoo-x-s2"
    assert new.findings == ["Only tutorial-max (60.0%, one seed, 62,006 parameters) was trained (one seed per "
                            "entry: no spread, so no difference can be called): nothing to compare."]


def test_zoo_page_has_findings_figures_and_report_links(zoo2, tmp_path):
    from interp.report.zoo_page import build_zoo_report

    reports = tmp_path / "reports"  # $INTERP_REPORTS_DIR of this test
    (reports / "zoo-tutorial-max").mkdir(parents=True)
    (reports / "zoo-tutorial-max" / "index.html").write_text("<html></html>")  # a built run report
    index = build_zoo_report(zoo2["path"], out=reports / "zoo")
    html = index.read_text()
    from markupsafe import escape

    saved = json.loads(zoo2["path"].read_text())
    assert saved["findings"] == zoo_findings(saved) and len(saved["findings"]) >= 2  # saved with the numbers
    for finding in saved["findings"]:
        assert str(escape(finding)) in html
    assert 'href="../zoo-tutorial-max/index.html"' in html  # built: linked
    assert "interp report --run" in html and "zoo-mlp-small" in html  # not built: the command to build it
    assert 'href="../zoo-mlp-small/index.html"' not in html
    assert (index.parent / "figures" / "acc_entries.png").stat().st_size > 1000
    assert "Reading the table" not in html
    row = json.loads(zoo2["path"].read_text())["rows"][0]
    assert f"{100 * row['test_accs'][0]:.1f}, {100 * row['test_accs'][1]:.1f}" in html  # per-seed values


def test_zoo_page_reads_a_single_seed_json(tmp_path):
    from interp.report.zoo_page import build_zoo_report

    old = {"dataset": "shapes", "epochs": 1, "settings": {"n_train": "<b>200</b>"}, "rows": [
        {"entry": e, "run": f"zoo-{e}", "model": m, "settings": {}, "test_acc": a, "parameters": p,
         "train_seconds": 1.0, "img_per_s": 900.0}
        for e, m, a, p in (("tutorial-max", "tutorial", 0.6, 62006), ("tutorial-none", "tutorial", 0.65, 1119926))]}
    path = tmp_path / "models" / "zoo.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    html = build_zoo_report(path).read_text()
    assert "one seed: no spread" in html and "no difference can be called" in html
    assert "no pooling (65.0%, one seed, 1,119,926 parameters)" in html
    assert "<b>200</b>" not in html and "&lt;b&gt;200&lt;/b&gt;" in html  # escaped


def test_zoo_page_shows_the_saved_findings_and_computes_nothing(tmp_path, monkeypatch):
    import interp.results as store
    from interp.report.zoo_page import build_zoo_report

    zoo = normalize_zoo(_hand_made(3))
    zoo.findings = ["A finding written when the numbers were saved."]
    path = store.save(zoo, tmp_path / "models")
    assert path == tmp_path / "models" / "zoo.json" and json.loads(path.read_text())["kind"] == "zoo"
    for name in ("interp.results.zoo.zoo_findings", "interp.analysis.zoo_grid.zoo_findings",
                 "interp.pipelines.zoo_grid.run_zoo"):
        monkeypatch.setattr(name, lambda *a, **k: pytest.fail("the page computed"))
    html = build_zoo_report(tmp_path / "models").read_text()  # the folder of zoo.json is enough
    assert "A finding written when the numbers were saved." in html
    assert store.load(tmp_path / "models") == zoo


def test_zoo_cli_rejects_bad_seeds_in_one_line(cli, tmp_path):
    for bad in ("0", "21"):
        code, out, err = cli("zoo", "--seeds", bad, "--only", "mlp-small", "--no-progress")
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--seeds" in err
    assert not (tmp_path / "models").exists()  # nothing trained
    code, _, err = cli("zoo", "--seeds", "2", "--set", "seed=4", "--only", "mlp-small")
    assert code == 2 and "conflicts with --seeds" in err


def test_zoo_help_ends_with_examples(cli):
    import contextlib
    import io

    from interp.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        main(["zoo", "--help"])
    text = buf.getvalue()
    assert "--seeds N" in text
    tail = text[text.rindex("examples:"):]
    assert "interp zoo --seeds" in tail and tail.strip().splitlines()[-1].startswith("  interp")
