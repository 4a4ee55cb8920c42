"""Sparse autoencoders: planted directions recovered, baselines, splicing hooks, storage."""

from __future__ import annotations

import pytest
import torch

from interp.analysis.dictionary.activations import (LayerSource, class_balanced_order, layer_activations,
                                                    source_data)
from interp.analysis.dictionary.metrics import random_dictionary, sae_metrics
from interp.analysis.dictionary.sae import SparseAutoencoder, Trainer, train_sae
from interp.errors import InterpError
from interp.hooks import hook_count

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 30
TINY_GPT = {"n_layer": "2", "n_embd": "32", "n_head": "4", "block_size": "16", "batch_size": "8",
            "steps_per_epoch": "4"}


def planted(n: int, d: int = 16, m: int = 32, active: int = 3, seed: int = 123):
    """Rows that are non-negative ``active``-sparse combinations of ``m`` known unit directions, plus noise."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(m, d, generator=g)
    directions /= directions.norm(dim=1, keepdim=True)
    which = torch.rand(n, m, generator=g).argsort(1)[:, :active]
    coef = torch.zeros(n, m).scatter(1, which, torch.rand(n, active, generator=g) + 0.5)
    return directions, coef @ directions + 0.01 * torch.randn(n, d, generator=g)


def fit(x: torch.Tensor, *, seed: int = 0, batch_size: int = 256, **kw) -> Trainer:
    trainer = Trainer(x.shape[1], kw.pop("width", 64), total=len(x), seed=seed, lr=kw.pop("lr", 1e-2), **kw)
    for i in range(0, len(x), batch_size):
        trainer.step(x[i:i + batch_size])
    trainer.finish()
    return trainer


def recovered(truth: torch.Tensor, found: torch.Tensor) -> float:
    """Fraction of true directions whose best match among ``found`` has cosine >= 0.9."""
    found = found / found.norm(dim=1, keepdim=True)
    return float(((truth @ found.T).max(1).values >= 0.9).float().mean())


# ----------------------------------------------------------------------------- planted truth


@pytest.fixture(scope="module")
def toy():
    truth, x = planted(60_000)
    return truth, x, fit(x, k=3)


def test_topk_sae_recovers_planted_directions_and_random_directions_do_not(toy):
    truth, x, trainer = toy
    sae = trainer.sae
    assert recovered(truth, sae.directions.detach()) >= 0.8
    assert recovered(truth, random_dictionary(16, 64, k=3, mean=torch.zeros(16)).directions) <= 0.1
    assert trainer.curve[-1]["fve"] > 0.8 and trainer.curve[-1]["l0"] <= 3
    norms = sae.W_dec.detach().norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_relu_l1_sae_recovers_planted_directions():
    truth, x = planted(60_000, seed=7)
    trainer = fit(x, kind="relu", l1=1.0, batch_size=64)  # ReLU SAEs need more, smaller steps than TopK
    assert recovered(truth, trainer.sae.directions.detach()) >= 0.8
    f = trainer.sae.encode(x[:1000])
    assert (f >= 0).all() and f.count_nonzero(1).float().mean() < 32  # sparse, unlike a dense code


def test_training_is_deterministic_for_a_seed():
    _, x = planted(6_000)
    a, b, c = fit(x, seed=0, k=3), fit(x, seed=0, k=3), fit(x, seed=1, k=3)
    torch.testing.assert_close(a.sae.W_dec, b.sae.W_dec, rtol=0, atol=0)
    assert not torch.allclose(a.sae.W_dec, c.sae.W_dec)


def test_topk_encode_keeps_k_and_scale_round_trips():
    sae = SparseAutoencoder(8, 32, k=4, scale=3.0)
    x = torch.randn(50, 8)
    f = sae.encode(x)
    assert (f.count_nonzero(1) <= 4).all() and (f >= 0).all()
    # decode is in the layer's units: with W_dec = 0 it returns b_dec / scale
    with torch.no_grad():
        sae.W_dec.zero_()
        sae.b_dec.fill_(6.0)
    torch.testing.assert_close(sae.decode(f), torch.full((50, 8), 2.0))
    with pytest.raises(InterpError, match="k must be between"):
        SparseAutoencoder(8, 4, k=4)


def test_dead_features_are_resampled():
    _, x = planted(40_000)
    trainer = Trainer(16, 64, k=3, total=len(x), lr=1e-2, dead_window=2_000)
    with torch.no_grad():  # half the features can never win TopK: pointing away from every input
        trainer.sae.W_enc[:, :32] *= -10
    for i in range(0, len(x), 256):
        trainer.step(x[i:i + 256])
    assert trainer.resamples >= 1
    assert trainer.finish()[-1]["dead"] < 32


# ----------------------------------------------------------------------------- a tiny char GPT


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    from interp.runs import load_run
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("sae-gpt")
    (root / "tiny.txt").write_text(TEXT)
    train("gpt", f"text:{root / 'tiny.txt'}", name="tiny-gpt", epochs=2, root=root, device="cpu", progress=False,
          log=None, overrides=TINY_GPT)
    return load_run(root / "tiny-gpt")


def test_text_origins_point_into_the_source_windows(gpt_run):
    batches = list(layer_activations(gpt_run, "blocks.1.hook_resid_post", n=600, batch_size=256, seed=3))
    assert [len(b.acts) for b in batches] == [256, 256, 88] and batches[0].acts.shape[1] == 32
    data = source_data(gpt_run, seed=3, n=600)
    origin = torch.cat([b.origin for b in batches])
    assert (data.tokens[origin[:, 0], origin[:, 1]] == origin[:, 2]).all()
    # a larger n reads a prefix of the same windows
    assert torch.equal(source_data(gpt_run, seed=3, n=6000).tokens[:len(data.tokens)], data.tokens)
    # the rows are the hook's values at those positions
    source = LayerSource(gpt_run, "blocks.1.hook_resid_post")
    _, cache = source.model.run_with_cache(data.tokens[:, :-1])
    want = cache["blocks.1.hook_resid_post"][origin[:5, 0], origin[:5, 1]]
    torch.testing.assert_close(torch.cat([b.acts for b in batches])[:5], want, rtol=1e-4, atol=1e-5)


def test_splice_leaves_no_hooks_and_identity_splice_changes_nothing(gpt_run):
    from interp.analysis.language.bridge import bridge_hook_count

    source = LayerSource(gpt_run, "blocks.0.hook_mlp_out")
    batch = source_data(gpt_run, n=160).tokens[:10]
    index = torch.arange(10)
    _, _, clean = source.forward(batch, index)
    _, _, same = source.forward(batch, index, replace=lambda rows: rows.clone())
    torch.testing.assert_close(same, clean)
    _, _, zero = source.forward(batch, index, replace=torch.zeros_like)
    assert not torch.allclose(zero, clean)
    assert bridge_hook_count(source.model) == 0

    def broken(rows):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        source.forward(batch, index, replace=broken)
    assert bridge_hook_count(source.model) == 0


def test_loss_recovered_on_the_char_gpt_beats_random(gpt_run):
    trained = train_sae(gpt_run, "blocks.1.hook_resid_post", k=8, tokens=20_000, batch_size=256, progress=False,
                        lr=5e-3)
    assert trained.source == "transformer" and trained.settings["activations_seen"] == 20_000
    metrics = sae_metrics(trained, gpt_run, n=2_000, draws=100)
    sae, rand = metrics.row("sae"), metrics.row("random")
    assert metrics.loss_ablated > metrics.loss_clean
    assert sae["fve"] > rand["fve"] and sae["loss_recovered"] > rand["loss_recovered"]
    assert sae["fve_ci"][0] <= sae["fve"] <= sae["fve_ci"][1]
    assert sae["l0"] <= 8 and rand["l0"] <= 8 and metrics.row("neurons")["features"] == 64
    assert "sae" in metrics.table()


def test_unknown_hook_lists_the_valid_ones(gpt_run):
    with pytest.raises(InterpError, match="did you mean 'blocks.1.hook_resid_post'.*Valid layers: blocks.0"):
        LayerSource(gpt_run, "blocks.1.hook_resid_pots")
    with pytest.raises(InterpError, match="not one vector per position"):
        next(layer_activations(gpt_run, "blocks.0.attn.hook_pattern", n=100))


# ----------------------------------------------------------------------------- the tiny CNN


def test_cnn_rows_are_channel_vectors_at_each_position(tiny_run):
    from interp.hooks import capture

    batches = list(layer_activations(tiny_run, "conv2", n=1000, batch_size=300, seed=1, split="test"))
    acts = torch.cat([b.acts for b in batches])
    origin = torch.cat([b.origin for b in batches])
    data = source_data(tiny_run, seed=1)
    assert acts.shape[1] == 16 and len(acts) == 1000
    with torch.no_grad(), capture(tiny_run.model, ["conv2"]) as out:
        tiny_run.model(tiny_run.normalize(data.images[origin[:20, 0]]))
    want = out["conv2"][torch.arange(20), :, origin[:20, 1], origin[:20, 2]]
    torch.testing.assert_close(acts[:20], want, rtol=1e-4, atol=1e-5)
    assert hook_count(tiny_run.model) == 0
    # images are read class-balanced: the first 2 x n_classes images hold every class twice
    n_classes = len(data.classes)
    first = data.order[:2 * n_classes]
    assert torch.bincount(data.labels[first], minlength=n_classes).tolist() == [2] * n_classes


def test_class_balanced_order_is_stratified_and_complete():
    labels = torch.tensor([0] * 6 + [1] * 3 + [2] * 3)
    order = class_balanced_order(labels, seed=0)
    assert sorted(order.tolist()) == list(range(12))
    assert sorted(labels[order[:6]].tolist()) == [0, 0, 1, 1, 2, 2]


def test_cnn_splice_hooks_are_gone_after_an_error(tiny_run):
    source = LayerSource(tiny_run, "conv2")
    images = source_data(tiny_run).images[:4]

    def broken(rows):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        source.forward(images, torch.arange(4), replace=broken)
    assert hook_count(tiny_run.model) == 0
    _, _, clean = source.forward(images, torch.arange(4))
    _, _, same = source.forward(images, torch.arange(4), replace=lambda r: r.clone())
    torch.testing.assert_close(same, clean)


# ----------------------------------------------------------------------------- storage


def test_store_round_trip_and_other_settings_never_overwrite(tiny_run, tmp_path):
    from interp.results import load, save
    from interp.results.sae import load_sae_metrics, save_sae_metrics

    a = train_sae(tiny_run, "conv2", k=4, tokens=3_000, batch_size=256, progress=False)
    b = train_sae(tiny_run, "conv2", k=4, tokens=3_000, batch_size=256, progress=False, seed=1)
    folder_a = save(a, tmp_path / "conv2")
    metrics = sae_metrics(a, tiny_run, n=500, draws=50)
    file = save_sae_metrics(metrics, folder_a)
    folder_b = save(b, tmp_path / "conv2")
    assert folder_a == tmp_path / "conv2" and folder_b != folder_a and folder_b.parent == folder_a.parent
    back = load(folder_a)
    assert back.layer == "conv2" and back.settings == a.settings and back.curve == a.curve
    x = torch.randn(7, 16)
    torch.testing.assert_close(back.sae.encode(x), a.sae.encode(x))
    torch.testing.assert_close(back.sae(x), a.sae(x))
    assert save(a, tmp_path / "conv2") == folder_a and file.is_file()  # same settings: same folder, metrics kept
    again = load_sae_metrics(file)
    assert [r["method"] for r in again.rows] == ["sae", "random", "neurons"]
    assert [r["loss_recovered_ci"] for r in again.rows] == [r["loss_recovered_ci"] for r in metrics.rows]
    assert file.with_suffix(".png").is_file() and (folder_a / "training.png").is_file()
    assert load(file).row("sae")["fve"] == pytest.approx(metrics.row("sae")["fve"])


def test_default_folder_is_in_the_runs_report(tiny_run):
    from interp.results.sae import sae_dir, save_sae

    trained = train_sae(tiny_run, "conv2", k=4, tokens=2_000, batch_size=256, progress=False)
    folder = save_sae(trained)
    assert folder == sae_dir(tiny_run.name) / "conv2-topk4"
