"""``interp sae``: train and metrics on the tiny tutorial run, and its one-line errors."""

from __future__ import annotations

import json

import pytest


def test_sae_train_then_metrics(cli, tiny_run_dir, tmp_path):
    out = tmp_path / "sae"
    code, stdout, err = cli("sae", "train", "--run", str(tiny_run_dir), "--layer", "conv2", "--k", "4",
                            "--tokens", "3000", "--batch-size", "256", "--n", "500", "--out", str(out),
                            "--no-progress")
    assert code == 0, err
    assert "sae " in stdout and "random " in stdout and "neurons " in stdout and "loss recovered" in stdout
    assert (out / "sae.safetensors").is_file() and (out / "index.json").is_file()
    assert len(list(out.glob("metrics-*.json"))) == 1
    code, stdout, err = cli("sae", "metrics", "--sae", str(out), "--run", str(tiny_run_dir), "--n", "400", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["kind"] == "sae-metrics" and [r["method"] for r in result["rows"]] == ["sae", "random", "neurons"]
    assert result["settings"]["activations"] == 400
    assert len(list(out.glob("metrics-*.json"))) == 2  # other settings: a file beside the first


@pytest.mark.parametrize("args, message", [
    (["--layer", "conv3"], "unknown layer 'conv3'; did you mean 'conv2'"),
    (["--layer", "conv2", "--k", "3", "--l1", "0.1"], "not allowed with argument --k"),
    (["--layer", "conv2", "--k", "200"], "k (200) must be smaller than the width (128)"),
    (["--layer", "conv2", "--width", "8", "--k", "8"], "k (8) must be smaller than the width (8)"),
    (["--layer", "conv2", "--tokens", "10"], "tokens must be at least 1,000"),
])
def test_sae_errors_are_one_line_exit_2(cli, tiny_run_dir, args, message):
    code, stdout, err = cli("sae", "train", "--run", str(tiny_run_dir), "--no-progress", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_sae_help_has_examples(cli):
    code, stdout, _ = cli("sae", "train", "--help")
    assert code == 0 and "examples:" in stdout and "interp sae metrics --sae" in stdout
