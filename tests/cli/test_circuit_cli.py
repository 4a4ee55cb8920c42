"""`interp circuit` end to end on the tiny run."""

from __future__ import annotations

import json

import pytest

FAST = ("--n", "8", "--random", "3", "--layers", "conv1,conv2,fc1")


def test_circuit_prints_edges_faithfulness_and_the_random_band(cli, tiny_run_dir, tmp_path):
    code, out, err = cli("circuit", "--run", str(tiny_run_dir), "--clean", "circle", "--corrupted", "line",
                         "--top", "25", *FAST)
    assert code == 0, err
    assert "scored by eap on logit-diff" in out and "circle against line" in out
    assert "conv" in out.splitlines()[3] and "->" in out.splitlines()[3]          # the first edge row
    assert "Kept 25 of 2,016 edges (--top): faithfulness" in out and "95% CI" in out
    assert "random band at that size: mean" in out and "95% quantile" in out
    folder = tmp_path / "reports" / "tiny" / "circuits" / "eap-logit-diff"
    assert f"Saved -> {folder}/" in out
    index = json.loads((folder / "index.json").read_text())
    assert index["kind"] == "circuit" and index["size"] == 25 and len(index["circuit"]) == 25


def test_json_parses_and_says_where_it_was_saved(cli, tiny_run_dir, tmp_path):
    code, out, err = cli("circuit", "--run", str(tiny_run_dir), "--clean", "circle", "--metric", "class-prob",
                         "--method", "patching", "--json", *FAST)
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "circuit" and data["method"] == "patching" and data["metric"] == "class-prob"
    assert data["size"] == len(data["circuit"]) and data["at"]["size"] == data["size"]
    assert data["path"] == str(tmp_path / "reports" / "tiny" / "circuits" / "patching-class-prob")


@pytest.mark.parametrize("argv, message", [
    (("--metric", "accuracy"), "invalid choice: 'accuracy'"),
    (("--method", "acdc"), "invalid choice: 'acdc'"),
    (("--clean", "circel"), "did you mean 'circle'"),
    (("--clean", "circle", "--corrupted", "circle"), "both 'circle'"),
    (("--top", "100000"), "not in 1..2016"),
    (("--metric", "logit-diff"), "corrupted class"),
    (("--corrupted", "line"), "give one (--clean CLASS)"),
])
def test_user_errors_are_one_line_with_exit_2(cli, tiny_run_dir, argv, message):
    code, out, err = cli("circuit", "--run", str(tiny_run_dir), *FAST, *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_out_keeps_other_settings_beside_and_refuses_a_foreign_folder(cli, tiny_run_dir, tmp_path):
    out = tmp_path / "mine"
    assert cli("circuit", "--run", str(tiny_run_dir), "--out", str(out), "--top", "5", *FAST)[0] == 0
    assert cli("circuit", "--run", str(tiny_run_dir), "--out", str(out), "--top", "6", *FAST)[0] == 0
    beside = [p.name for p in tmp_path.iterdir() if p.name.startswith("mine-")]
    assert json.loads((out / "index.json").read_text())["size"] == 5 and len(beside) == 1
    assert json.loads((tmp_path / beside[0] / "index.json").read_text())["size"] == 6
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    code, _, err = cli("circuit", "--run", str(tiny_run_dir), "--out", str(notes), *FAST)
    assert code == 2 and "not an interp result" in err and (notes / "todo.txt").read_text() == "mine"


def test_help_has_examples(cli):
    code, out, _ = cli("circuit", "--help")
    assert code == 0 and "examples:" in out and "--corrupted" in out


@pytest.fixture(scope="module")
def attn_run_dir(tmp_path_factory):
    """A 2-layer attention-only model trained briefly on the induction task (a few seconds)."""
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("circuit-attn")
    train("attn-only", "induction", name="attn", epochs=3, root=root, device="cpu", progress=False, log=None,
          overrides={"steps_per_epoch": "10", "batch_size": "16", "n_head": "2"})
    return root / "attn"


def test_a_transformer_run_gets_its_circuit_over_heads(cli, attn_run_dir, tmp_path):
    code, out, err = cli("circuit", "--run", str(attn_run_dir), "--corrupted", "broken-repeat", "--n", "8",
                         "--random", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "circuit" and data["model_kind"] == "transformer" and data["metric"] == "loss"
    assert data["n_edges"] == 29  # 2 layers x 2 heads: embed, 2 heads and 2 heads into q/k/v of later heads, logits
    readers = {e["target"].split(".")[0] for e in data["circuit"]}
    assert readers <= {"L0H0", "L0H1", "L1H0", "L1H1", "logits"} and data["size"] == len(data["circuit"])
    code, _, err = cli("circuit", "--run", str(attn_run_dir), "--clean", "circle")
    assert code == 2 and "induction task" in err
