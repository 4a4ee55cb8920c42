"""The gpt / attn-only zoo, their TransformerLens bridge, language-model runs and the transformer CLI."""

import json

import pytest
import torch

from interp.analysis.language.bridge import bridge_hook_count, to_bridge
from interp.errors import InterpError
from interp.hooks import hook_count
from interp.zoo import create_model
from interp.zoo.gpt import GPT, bridge_state_dict

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 30
TINY = {"n_layer": "2", "n_embd": "32", "n_head": "4", "block_size": "16", "batch_size": "8",
        "steps_per_epoch": "4"}


def _perturbed(model: GPT, scale: float = 0.3, seed: int = 0) -> GPT:
    """Random weights everywhere, LayerNorm gains and all biases included (init zeroes them)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, text_file):
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("gpt-models")
    train("gpt", f"text:{text_file}", name="tiny-gpt", epochs=2, root=root, device="cpu", progress=False, log=None,
          overrides=TINY)
    return root / "tiny-gpt"


# ------------------------------------------------------------------- the models


@pytest.mark.parametrize("settings", [
    dict(n_layer=2, n_embd=32, n_head=4, block_size=16, vocab_size=11),                            # gpt
    dict(n_layer=2, n_embd=32, n_head=4, block_size=16, vocab_size=11, mlp=False, layer_norm=False),  # attn-only
    dict(n_layer=1, n_embd=24, n_head=3, block_size=8, vocab_size=5, mlp=False, layer_norm=True),
])
def test_bridge_logits_equal_the_module(settings):
    model = _perturbed(create_model("gpt", **settings))
    bridge = to_bridge(model)
    assert not bridge.training and not any(m.training for m in bridge.modules())
    x = torch.randint(0, settings["vocab_size"], (3, settings["block_size"]), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(bridge(x), model(x), rtol=0, atol=1e-5)
    # Folded weights (LayerNorm into the next weights, centred unembedding) change logits by a constant only.
    folded = to_bridge(model, fold_ln=True)
    with torch.no_grad():
        diff = folded(x) - model(x)
    torch.testing.assert_close(diff - diff.mean(-1, keepdim=True), torch.zeros_like(diff), rtol=0, atol=1e-5)


def test_bridge_has_the_standard_hook_names_and_tl_matrices():
    model = _perturbed(create_model("gpt", n_layer=2, n_embd=32, n_head=4, block_size=16, vocab_size=11))
    bridge = to_bridge(model)
    _, cache = bridge.run_with_cache(torch.zeros(1, 6, dtype=torch.long))
    for name in ("blocks.0.attn.hook_pattern", "blocks.1.hook_resid_pre", "blocks.0.attn.hook_z",
                 "blocks.1.hook_resid_post", "hook_embed", "hook_pos_embed"):
        assert name in cache
    assert cache["blocks.0.attn.hook_pattern"].shape == (1, 4, 6, 6)
    assert bridge.OV.shape == (2, 4, 32, 32) and bridge.QK.shape == (2, 4, 32, 32)
    # TransformerLens's W_U and b_U are our lm_head (bias included).
    torch.testing.assert_close(bridge.W_U, model.lm_head.weight.T)
    torch.testing.assert_close(bridge.b_U, model.lm_head.bias)
    assert bridge_hook_count(bridge) == 0 and hook_count(model) == 0


def test_state_dict_mapping_covers_every_weight():
    model = create_model("gpt", n_layer=2, n_embd=32, n_head=4, block_size=16, vocab_size=11)
    mapped = bridge_state_dict(model)
    n_ours = sum(p.numel() for p in model.parameters())
    zero_qkv_biases = 2 * 3 * 32
    assert sum(v.numel() for v in mapped.values()) == n_ours + zero_qkv_biases


def test_dropout_only_in_training_mode():
    model = create_model("gpt", n_layer=1, n_embd=16, n_head=2, block_size=8, vocab_size=7, dropout=0.5)
    x = torch.randint(0, 7, (2, 8))
    model.eval()
    torch.testing.assert_close(model(x), to_bridge(model)(x), rtol=0, atol=1e-5)
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(x), model(x))


def test_inconsistent_config_is_one_clear_error():
    from interp.training.loop import make_config

    with pytest.raises(InterpError, match=r"n_embd \(30\) must be divisible by n_head \(4\)"):
        make_config("gpt", overrides={"n_embd": "30", "n_head": "4"})
    with pytest.raises(InterpError, match="n_layer must be > 0"):
        make_config("attn-only", overrides={"n_layer": "0"})


def test_too_long_input_is_refused():
    model = create_model("gpt", n_layer=1, n_embd=16, n_head=2, block_size=8, vocab_size=7)
    with pytest.raises(InterpError, match="longer than the context"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_generate_is_seeded():
    model = _perturbed(create_model("gpt", n_layer=1, n_embd=16, n_head=2, block_size=8, vocab_size=7))
    start = torch.zeros(1, 1, dtype=torch.long)
    a = model.generate(start, 20, generator=torch.Generator().manual_seed(4))
    b = model.generate(start, 20, generator=torch.Generator().manual_seed(4))
    assert a.shape == (1, 21) and torch.equal(a, b)
    greedy = model.generate(start, 5, temperature=0)
    assert torch.equal(greedy, model.generate(start, 5, temperature=0))


# ------------------------------------------------------------------------ runs


def test_text_run_round_trips(text_run):
    from interp.runs import load_run

    run = load_run(text_run)
    cfg = run.config
    assert cfg.task == "language-model" and cfg.family == "gpt"
    assert "".join(cfg.data.vocab) == "".join(sorted(set(TEXT)))
    assert cfg.model_config["vocab_size"] == len(set(TEXT))
    assert cfg.train.steps_per_epoch == 4
    summary = run.summary
    assert summary["val_loss"] > 0 and len(summary["loss_by_position"]) == 16 and "icl_score" in summary
    assert [r["epoch"] for r in run.metrics] == [1, 2] and all("val_loss" in r for r in run.metrics)
    # Weights, config and logits survive the round trip; the bridge of the loaded run agrees.
    again = load_run(text_run)
    x = torch.randint(0, len(cfg.data.vocab), (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(run.model(x), again.model(x), rtol=0, atol=0)
        torch.testing.assert_close(to_bridge(run)(x), run.model(x), rtol=0, atol=1e-5)
    assert json.loads((text_run / "config.json").read_text()) == cfg.to_dict()


def test_training_is_deterministic(tmp_path, text_file, text_run):
    from interp.runs import load_run
    from interp.training.loop import train

    run = train("gpt", f"text:{text_file}", name="again", epochs=2, root=tmp_path, device="cpu", progress=False,
                log=None, overrides=TINY)
    first = load_run(text_run)
    for (name, a), (_, b) in zip(run.model.state_dict().items(), first.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_bf16_training_evaluates_in_float32(tmp_path, text_file):
    from interp.training.loop import train

    run = train("gpt", f"text:{text_file}", name="bf16", epochs=1, root=tmp_path, device="cpu", progress=False,
                log=None, overrides={**TINY, "precision": "bf16"})
    assert run.config.train.precision == "bf16"
    assert all(p.dtype == torch.float32 for p in run.model.parameters())
    assert 0 < run.summary["val_loss"] < 10


def test_induction_run_records_head_scores(tmp_path):
    from interp.analysis.language.heads import training_dynamics
    from interp.training.loop import train

    run = train("attn-only", "induction:vocab_size=16,min_block=3,max_block=6", name="ind", epochs=2, root=tmp_path,
                device="cpu", progress=False, log=None,
                overrides={"n_embd": "16", "block_size": "16", "batch_size": "8", "steps_per_epoch": "3"})
    assert run.config.data.name == "induction"
    assert run.config.data.options == {"vocab_size": 16, "min_block": 3, "max_block": 6}
    assert run.config.data.vocab[0] == "<bos>" and len(run.config.data.vocab) == 16
    rows = run.metrics
    assert all(len(r["head_scores"]["induction"]) == 2 for r in rows)
    dynamics = training_dynamics(run)
    assert dynamics.scores["induction"].shape == (2, 2, 4)
    assert dynamics.seconds == sorted(dynamics.seconds)


# ------------------------------------------------------------------------- CLI


def _error(cli, *argv):
    code, out, err = cli(*argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    return err


def test_train_with_text_option(cli, text_file):
    code, out, err = cli("train", "gpt", "--text", str(text_file), "--epochs", "1", "--no-progress", "--device", "cpu",
                         *[f"--set={k}={v}" for k, v in TINY.items()])
    assert code == 0, err
    assert "validation loss" in out


def test_train_errors(cli, tmp_path, text_file):
    err = _error(cli, "train", "gpt", "--text", str(tmp_path / "missing.txt"), "--no-progress")
    assert "does not exist" in err
    (tmp_path / "empty.txt").write_text("")
    err = _error(cli, "train", "gpt", "--text", str(tmp_path / "empty.txt"), "--no-progress")
    assert "is empty" in err
    err = _error(cli, "train", "gpt", "--text", str(text_file), "--set", "n_embd=30", "--no-progress")
    assert "n_embd (30) must be divisible by n_head (4)" in err
    err = _error(cli, "train", "gpt", "--text", str(text_file), "--dataset", "induction")
    assert "either --text PATH or --dataset" in err
    err = _error(cli, "train", "attn-only", "--dataset", "induction:vocab_size", "--no-progress")
    assert "induction:KEY=N" in err


def test_sample(cli, text_run):
    code, out, err = cli("sample", "--run", str(text_run), "--prompt", "First", "--tokens", "30", "--seed", "1")
    assert code == 0, err
    assert out.startswith("First") and len(out.rstrip("\n")) >= 30
    assert cli("sample", "--run", str(text_run), "--prompt", "First", "--tokens", "30", "--seed", "1")[1] == out


def test_prompt_errors(cli, text_run):
    err = _error(cli, "sample", "--run", str(text_run), "--prompt", "Zero#")
    assert "'Z'" in err and "'#'" in err and "'e'" not in err.split("vocabulary is")[0]
    err = _error(cli, "attention", "--run", str(text_run), "--prompt", "a" * 17)
    assert "17 tokens" in err and "context is 16" in err
    err = _error(cli, "attention", "--run", str(text_run))
    assert "--prompt" in err
    err = _error(cli, "attention", "--run", str(text_run), "--prompt", "First", "--layer", "2")
    assert "unknown layer 2" in err and "0-1" in err
    err = _error(cli, "attention", "--run", str(text_run), "--prompt", "First", "--head", "4")
    assert "unknown head 4" in err and "0-3" in err
    err = _error(cli, "ablate", "--run", str(text_run), "--layer", "x")
    assert "bad --layer" in err


def test_transformer_commands_need_a_transformer_run(cli, tiny_run_dir):
    err = _error(cli, "heads", "--run", str(tiny_run_dir))
    assert "needs a transformer run" in err


def test_analysis_commands_write_json_and_png(cli, text_run, tmp_path):
    from interp.runs import reports_dir

    out_dir = reports_dir() / "tiny-gpt" / "transformer"
    commands = [
        ("attention", "--prompt", "First Citizen"),
        ("heads", "--sequences", "8"),
        ("lens", "--prompt", "First Citizen"),
        ("ablate", "--kind", "both", "--sequences", "8"),
        ("composition",),
    ]
    for name, *rest in commands:
        code, out, err = cli(name, "--run", str(text_run), *rest)
        assert code == 0, (name, err)
        assert "Saved:" in out
    for stem in ("attention", "heads", "lens", "dla", "ablation_zero", "ablation_mean", "circuits", "position_loss"):
        assert (out_dir / f"{stem}.json").is_file(), stem
        assert (out_dir / f"{stem}.png").read_bytes()[:4] == b"\x89PNG", stem
    code, out, _ = cli("heads", "--run", str(text_run), "--sequences", "8")
    assert "L1H3" in out and "induction" in out and "In-context-learning score" in out


def test_save_transformer_results_for_a_text_run(text_run, tmp_path):
    from interp.pipelines.language import save_transformer_results
    from interp.runs import load_run

    paths = save_transformer_results(load_run(text_run), out_dir=tmp_path)
    for name in ("heads", "position_loss", "attention", "lens", "dla", "circuits", "ablation_zero", "ablation_mean"):
        assert paths[name].is_file() and paths[name].with_suffix(".png").is_file(), name
    assert paths["sample"].is_file()
    assert "dynamics" not in paths  # head scores are recorded during training for induction runs only
    # missing_only keeps what is saved: nothing is computed again, a deleted result is.
    paths["circuits"].unlink()
    again = save_transformer_results(load_run(text_run), out_dir=tmp_path, missing_only=True)
    assert list(again) == ["circuits"]


def test_transformer_page_renders_from_saved_results_without_computing(text_run, tmp_path, monkeypatch):
    import interp.pipelines.language as pipeline
    from interp.analysis.language import circuits, heads, lens, patching, position, tokens
    from interp.report import transformer_pages
    from interp.report.registry import ReportContext
    from interp.runs import load_run

    run = load_run(text_run)
    empty = ReportContext(run=run, root=tmp_path / "empty", log=None)
    transformer_pages.contribute(empty)  # nothing saved: the page is there, with nothing to show
    assert empty.pages["transformer.html"].sections == []

    pipeline.save_transformer_results(run, out_dir=tmp_path / "transformer")

    def refuse(*args, **kwargs):
        raise AssertionError("the report computed a result instead of reading it")

    for module, name in [(heads, "head_scores"), (heads, "attention_patterns"), (tokens, "sample_text"),
                         (circuits, "circuit_scores"), (patching, "ablate_heads"), (lens, "logit_lens"),
                         (lens, "direct_logit_attribution"), (position, "loss_by_position"),
                         (pipeline, "save_transformer_results")]:
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(run.model, "generate", refuse)
    ctx = ReportContext(run=run, root=tmp_path, log=None)
    transformer_pages.contribute(ctx)
    sections = {s.id: s for s in ctx.pages["transformer.html"].sections}
    assert set(sections) == {"sample", "heads", "attention", "position", "circuits", "lens", "ablation"}
    assert sections["sample"].data["text"].startswith("\n")
    assert [a["kind"] for a in sections["ablation"].data["ablations"]] == ["zero", "mean"]
    assert len(sections["circuits"].data["copying"]) == len(sections["circuits"].data["heads"]) == 8


JSON_COMMANDS = {
    "sample": (("--prompt", "First", "--tokens", "10"), {"text", "prompt", "temperature", "seed"}),
    "attention": (("--prompt", "First Citizen"), {"tokens", "patterns", "shape", "saved"}),
    "heads": (("--sequences", "4"), {"scores", "rows", "lengths", "position_loss", "saved"}),
    "lens": (("--prompt", "First Citizen"), {"layers", "top_tokens", "target_prob", "direct_logit_attribution",
                                             "saved"}),
    "ablate": (("--kind", "both", "--sequences", "4", "--layer", "1"), {"ablation", "base_loss", "rows", "more",
                                                                       "saved"}),
    "composition": ((), {"copying", "composition", "baseline", "strongest", "saved"}),
}


@pytest.mark.parametrize("command", list(JSON_COMMANDS))
def test_json_output(cli, text_run, command):
    from pathlib import Path

    rest, keys = JSON_COMMANDS[command]
    code, out, err = cli(command, "--run", str(text_run), *rest, "--json")
    assert code == 0, err
    result = json.loads(out)  # stdout holds the JSON alone
    assert keys <= set(result), keys - set(result)
    if "saved" in result:
        saved = json.loads(Path(result["saved"]).read_text())
        assert saved["kind"] == result["kind"]
    if command == "ablate":
        assert result["ablation"] == "zero" and result["more"][0]["ablation"] == "mean"
        assert result["ablated"][0] == [None] * 4  # layer 0 not ablated: NaN as null
    if command == "sample":
        assert result["kind"] == "sample" and result["text"].startswith("First")


@pytest.mark.slow
def test_demo_stage_forms_an_induction_head(tmp_path):
    from interp.pipelines.language import demo_stage
    from interp.pipelines.demo import DemoContext

    ctx = DemoContext(device="cpu", quick=False, progress=False)
    demo_stage(ctx)
    assert ctx.extra["induction_score"] > 0.3
    for stem in ("heads", "attention", "dynamics", "ablation_zero"):
        assert (ctx.outputs["transformer plots"] / f"{stem}.png").is_file()
