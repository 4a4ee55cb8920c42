"""find_circuit: one call from a run to a circuit judged against random circuits, and its place in the store."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

import interp.results
from interp.analysis.causal import circuit as circuit_module
from interp.analysis.causal import cnn as cnn_module
from interp.analysis.causal.circuit import CircuitResult, chosen_size, find_circuit
from interp.analysis.causal.cnn import CNNGraph
from interp.analysis.causal.discovery import FaithfulnessCurve
from interp.analysis.causal.graph import Edge
from interp.errors import InterpError
from interp.hooks import hook_count
from interp.results.circuits import load_circuit, save_circuit
from test_cnn_circuits import Planted  # the hand-built 3-edge circuit

LAYERS = ["conv1", "conv2", "fc1"]   # a part of the tutorial net: 6*16 + 16*120 edges, fast


@pytest.fixture
def small(tiny_run):
    """A circuit of the tiny run, clean class 0 against class 1, on conv1 -> conv2 -> fc1."""
    classes = tiny_run.classes
    return find_circuit(tiny_run, clean=classes[0], corrupted=classes[1], n=16, n_random=4, layers=LAYERS, top=30)


def test_find_circuit_records_the_graph_the_curve_and_the_kept_top_edges(tiny_run, small):
    classes = tiny_run.classes
    assert isinstance(small, CircuitResult) and small.run == "tiny" and small.model_kind == "cnn"
    assert small.layers == LAYERS and [len(n) for n in small.nodes] == [6, 16, 120]
    assert small.nodes[1][:2] == ["conv2:0", "conv2:1"]
    assert small.n_edges == 6 * 16 + 16 * 120 == len(small.scores.scores)
    assert small.method == "eap" and small.metric == "logit-diff"      # a corrupted class: logit-diff
    assert small.size == 30 and small.edges == small.scores.top(30)    # the kept circuit is the top-30 by |score|
    curve = small.curve
    assert 30 in curve.sizes and curve.sizes[-1] == small.n_edges and curve.sizes == sorted(set(curve.sizes))
    assert all(len(r) == 4 for r in curve.random)
    assert curve.faithfulness[-1] == pytest.approx(1.0)               # every edge kept: the full model
    at = small.at()
    assert at["size"] == 30 and at["ci"][0] <= at["faithfulness"] <= at["ci"][1]
    s = small.settings
    assert (s["method"], s["metric"], s["top"], s["n_random"], s["seed"], s["n"]) == ("eap", "logit-diff", 30, 4, 0, 16)
    assert (s["clean"], s["corrupted"], s["layers"]) == (classes[0], classes[1], LAYERS)
    assert s["graph"]["corrupted_class"] == classes[1] and s["graph"]["reference_sample"]["size"] == 256
    assert small.seconds > 0 and json.dumps(interp.results.describe(small), allow_nan=False)


def test_without_top_the_minimal_circuit_is_kept_else_the_most_faithful_size():
    def curve(faith, minimal):
        return FaithfulnessCurve(sizes=[1, 4, 16], faithfulness=faith, ci=[(0, 0)] * 3, random=[[0.0]] * 3,
                                 full_metric=1, empty_metric=0, n_edges=16, n_examples=8, method="eap",
                                 metric="class-logit", minimal_size=minimal)

    assert chosen_size(curve([0.1, 0.85, 1.0], 4), None) == 4
    assert chosen_size(curve([0.1, 0.6, 0.5], None), None) == 4     # none reaches 0.8: the best size
    assert chosen_size(curve([0.1, 0.85, 1.0], 4), 16) == 16


@pytest.mark.parametrize("method", ["eap", "patching"])
def test_find_circuit_keeps_exactly_a_planted_circuit(monkeypatch, method):
    clean = torch.randn(24, 3, 8, 8, generator=torch.Generator().manual_seed(5)) + 1.0
    corrupted = torch.randn(24, 3, 8, 8, generator=torch.Generator().manual_seed(6)) - 1.0
    model = Planted()

    def planted_graph(run, **_):
        return CNNGraph(model, clean, corrupted=corrupted, target=0, metric="class-logit")

    monkeypatch.setitem(circuit_module.GRAPH_BUILDERS, "cnn",
                        circuit_module.GraphKind(planted_graph, "interp.analysis.causal.cnn_edges"))
    run = SimpleNamespace(name="planted", config=SimpleNamespace(task="image-classification"))
    result = find_circuit(run, method=method, n_random=20)
    assert result.size == 3 and set(result.edges) == {Edge("conv1:0", "conv2:1"), Edge("conv1:2", "conv2:1"),
                                                      Edge("conv2:1", "fc:0")}
    assert result.beats_random() and result.at()["random_mean"] < 0.3
    assert result.layers == ["conv1", "conv2", "fc"]


def test_no_hooks_remain_after_find_circuit_also_on_error(tiny_run, monkeypatch):
    for method in ("eap", "eap-ig", "patching"):
        find_circuit(tiny_run, method=method, clean="circle", n=4, n_random=1, layers=["conv1", "conv2"],
                     steps=2, sizes=[1, 8])
        assert hook_count(tiny_run.model) == 0

    def broken(*_args):
        raise RuntimeError("metric failed")

    monkeypatch.setattr(cnn_module, "metric_values", broken)
    with pytest.raises(RuntimeError, match="metric failed"):
        find_circuit(tiny_run, clean="circle", n=4, n_random=1, layers=["conv1", "conv2"])
    assert hook_count(tiny_run.model) == 0


def test_clear_errors(tiny_run):
    classes = tiny_run.classes
    cases = [
        (dict(method="acdc"), "unknown method 'acdc'"),
        (dict(top=10**6), "not in 1..96"),
        (dict(metric="logit-diff", clean=classes[0]), "corrupted class"),
        (dict(clean=classes[0], corrupted=classes[0]), "both"),
        (dict(clean="circel"), "did you mean 'circle'"),
        (dict(n_random=0), "at least 1"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InterpError, match=message):
            find_circuit(tiny_run, n=4, n_random=kwargs.pop("n_random", 1), layers=["conv1", "conv2"], **kwargs)
    word_run = SimpleNamespace(name="w", config=SimpleNamespace(task="word-embedding"))
    with pytest.raises(InterpError, match="no graph for word-embedding"):
        find_circuit(word_run)


def test_save_load_round_trip_and_other_settings_go_beside(tiny_run, small, tmp_path):
    folder = save_circuit(small, tmp_path / "circuits" / "eap-logit-diff")
    assert folder == tmp_path / "circuits" / "eap-logit-diff"
    assert {p.name for p in folder.iterdir()} == {"index.json", "scores.safetensors", "edges.json", "faithfulness.png"}
    assert json.loads((folder / "index.json").read_text())["kind"] == "circuit"
    loaded = interp.results.load(folder)
    assert isinstance(loaded, CircuitResult)
    assert loaded.edges == small.edges and loaded.scores.edges == small.scores.edges
    assert torch.equal(loaded.scores.scores, small.scores.scores.double())
    assert loaded.curve.sizes == small.curve.sizes and loaded.curve.random == small.curve.random
    assert loaded.curve.ci == small.curve.ci and loaded.at() == small.at()
    assert loaded.settings == json.loads(json.dumps(small.settings)) and loaded.layers == small.layers
    assert loaded.nodes == small.nodes and loaded.size == small.size

    before = (folder / "index.json").read_bytes()
    other = find_circuit(tiny_run, clean=tiny_run.classes[0], corrupted=tiny_run.classes[1], n=16, n_random=4,
                         layers=LAYERS, top=10)
    beside = save_circuit(other, tmp_path / "circuits" / "eap-logit-diff")
    assert beside != folder and beside.name.startswith("eap-logit-diff-")
    assert (folder / "index.json").read_bytes() == before               # the first result is untouched
    assert load_circuit(beside).size == 10 and load_circuit(folder).size == 30
    assert save_circuit(small, tmp_path / "circuits" / "eap-logit-diff") == folder   # the same settings: replaced


def test_default_folder_is_the_runs_report(small, tmp_path):
    folder = save_circuit(small)
    assert folder.parent.name == "circuits" and folder.name == "eap-logit-diff" and folder.parent.parent.name == "tiny"


def test_a_damaged_result_is_a_clear_error(small, tmp_path):
    folder = save_circuit(small, tmp_path / "c")
    (folder / "edges.json").write_text("[[")
    with pytest.raises(InterpError, match="corrupt"):
        load_circuit(folder)


def test_spearman_and_average_ranks_match_scipy():
    from scipy.stats import rankdata, spearmanr

    from interp.analysis.causal.discovery import average_ranks, spearman

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 7, (200,), generator=g).double()  # many ties
    y = x + torch.randn(200, generator=g, dtype=torch.float64)
    assert torch.allclose(average_ranks(x), torch.tensor(rankdata(x.numpy()) - 1, dtype=torch.float64))
    assert abs(spearman(x, y) - spearmanr(x.numpy(), y.numpy()).statistic) < 1e-12
    assert spearman(torch.ones(5), torch.arange(5.0)) != spearman(torch.ones(5), torch.arange(5.0))  # NaN: constant
