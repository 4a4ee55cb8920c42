"""Head analyses on planted and tiny models: head scores, copying and composition, lens, ablation."""

import copy

import pytest
import torch

import json

from interp import results
from interp.analysis.language.bridge import bridge_hook_count, to_bridge
from interp.analysis.language.circuits import circuit_scores, copying_score, ov_copying_scores, random_composition_baseline
from interp.analysis.language.heads import attention_patterns, head_scores, head_type_masks, score_patterns
from interp.analysis.language.lens import direct_logit_attribution, logit_lens
from interp.analysis.language.patching import ablate_heads, induction_loss
from interp.analysis.language.position import icl_score, loss_by_position
from interp.data.text import repeated_random_tokens
from interp.errors import InterpError
from interp.hooks import hook_count
from interp.results.language import (load_ablation, load_attention, load_head_scores, load_logit_lens,
                                     load_position_loss, save_ablation, save_attention, save_head_scores,
                                     save_logit_lens, save_position_loss)
from interp.zoo import create_model

V, T = 8, 16  # planted model: 8 tokens (0 = BOS), context 16


def planted_model(c: float = 40.0):
    """2-layer attention-only model: L0H0 a previous-token head, L1H0 an induction head, others off.

    Residual stream (32 dims): tokens one-hot in 0..7, positions one-hot in 8..23, and
    8 dims (24..31) where L0H0 writes the previous token. Heads have 16 dims.
    """
    model = create_model("attn-only", n_layer=2, n_head=2, n_embd=32, block_size=T, vocab_size=V, layer_norm=False)
    tok, pos, prev = 0, V, V + T
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for t in range(V):
            model.token_embedding.weight[t, tok + t] = 1
        for i in range(T):
            model.position_embedding.weight[i, pos + i] = 1
        C = 32
        a0, a1 = model.blocks[0].attn, model.blocks[1].attn
        # L0H0: query = position i, key at position k = position k + 1 -> attends to i - 1.
        for i in range(T):
            a0.qkv.weight[i, pos + i] = c
        for k in range(T - 1):
            a0.qkv.weight[C + k + 1, pos + k] = 1
        for t in range(V):  # value: the token; output: into the previous-token subspace
            a0.qkv.weight[2 * C + t, tok + t] = 1
            a0.proj.weight[prev + t, t] = 1
        # L1H0: query = current token, key = previous token at k -> attends just after an earlier copy.
        for t in range(V):
            a1.qkv.weight[t, tok + t] = c
            a1.qkv.weight[C + t, prev + t] = 1
            a1.qkv.weight[2 * C + t, tok + t] = 1
            a1.proj.weight[tok + t, t] = 1  # copy the attended token to the output
        model.lm_head.weight.copy_(model.token_embedding.weight)
    return model.eval()


def _tokens(n=32, seed=0):
    return repeated_random_tokens(n, T, V, torch.Generator().manual_seed(seed), bos=0, min_block=3, max_block=7)


def test_planted_heads_score_high_where_planted_and_low_elsewhere():
    model = planted_model()
    scores = head_scores(model, tokens=_tokens())
    assert scores.prev_token[0, 0] > 0.95
    assert scores.induction[1, 0] > 0.9
    for (layer, head) in [(0, 1), (1, 0), (1, 1)]:
        assert scores.prev_token[layer, head] < 0.3
    for (layer, head) in [(0, 0), (0, 1), (1, 1)]:
        assert scores.induction[layer, head] < 0.3
    assert scores.duplicate.max() < 0.3
    # Heads that are switched off attend uniformly; their first-token score is the mean of 1/(q+1).
    uniform = torch.tensor([1 / (q + 1) for q in range(1, T)]).mean()
    torch.testing.assert_close(scores.first_token[0, 1], uniform, rtol=0, atol=1e-5)


def test_scores_agree_with_transformer_lens_head_detector():
    """TL's detector divides the same masked mass by all T query rows; ours by the rows with a target."""
    from transformer_lens.head_detector import (compute_head_attention_similarity_score,
                                                get_duplicate_token_head_detection_pattern,
                                                get_induction_head_detection_pattern,
                                                get_previous_token_head_detection_pattern)

    model = create_model("attn-only", n_layer=2, n_head=2, n_embd=16, block_size=T, vocab_size=V)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    bridge = to_bridge(model)
    tokens = _tokens(1, seed=5)
    _, cache = bridge.run_with_cache(tokens)
    ours = score_patterns(torch.stack([cache["pattern", l] for l in range(2)], 1), tokens)
    masks = head_type_masks(tokens)
    detectors = {"prev_token": get_previous_token_head_detection_pattern,
                 "duplicate": get_duplicate_token_head_detection_pattern,
                 "induction": get_induction_head_detection_pattern}
    for name, detector in detectors.items():
        detection = detector(tokens)
        torch.testing.assert_close(detection.bool(), masks[name][0])
        rows = masks[name][0].any(-1).sum().item()
        for layer in range(2):
            for head in range(2):
                theirs = compute_head_attention_similarity_score(cache["pattern", layer][0, head], detection,
                                                                 exclude_bos=False, exclude_current_token=False,
                                                                 error_measure="mul")
                assert ours[name][layer, head].item() == pytest.approx(theirs * T / rows, abs=1e-5)


def test_copying_score_of_identity_ov_is_one_and_of_its_negation_minus_one():
    model = create_model("attn-only", n_layer=1, n_head=1, n_embd=16, block_size=8, vocab_size=24, layer_norm=False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        W_V = torch.randn(16, 16, generator=g) + 4 * torch.eye(16)
        model.blocks[0].attn.qkv.weight[32:48] = W_V
        model.lm_head.weight.copy_(model.token_embedding.weight)  # W_U = W_E^T
        model.blocks[0].attn.proj.weight.copy_(torch.linalg.inv(W_V))  # W_OV = I
    assert ov_copying_scores(model)[0, 0].item() == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():
        model.blocks[0].attn.proj.weight.neg_()  # W_OV = -I
    assert ov_copying_scores(model)[0, 0].item() == pytest.approx(-1.0, abs=1e-5)
    assert copying_score(torch.eye(3)).item() == pytest.approx(1.0)
    rotation = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues +-i: no copying
    assert copying_score(rotation).item() == pytest.approx(0.0, abs=1e-6)


def test_composition_scores_and_random_baseline():
    model = planted_model()
    result = circuit_scores(model, n_baseline=50)
    K = result.composition["K"]
    assert K.shape == (2, 2, 2, 2)
    # The induction head's keys read what the previous-token head writes; the dead heads compose with nothing.
    # Both are rank-8 identities between subspaces: |AB| / (|A| |B|) = 1 / sqrt(8), twice chance.
    assert K[0, 0, 1, 0].item() == pytest.approx(8 ** -0.5, abs=1e-5) and K[0, 0, 1, 0] > 1.8 * result.baseline["K"]
    assert result.composition["Q"][0, 0, 1, 0] == 0 and result.composition["V"][0, 0, 1, 0] == 0
    assert K[0, 1].abs().max() == 0 and K[1].abs().max() == 0  # no composition into the same or earlier layer
    assert result.strongest("K", 1)[0][:2] == ("L0H0", "L1H0")
    # Baseline against a brute-force estimate with explicit products.
    g = torch.Generator().manual_seed(1)
    d, h, n = 32, 16, 200
    brute = []
    for _ in range(n):
        left = torch.randn(d, h, generator=g) @ torch.randn(h, d, generator=g)
        right = torch.randn(d, h, generator=g) @ torch.randn(h, d, generator=g)
        brute.append(((left @ right).norm() / (left.norm() * right.norm())).item())
    assert random_composition_baseline(d, h, "Q", n_samples=400) == pytest.approx(sum(brute) / n, rel=0.05)


def test_direct_logit_attribution_matches_a_manual_decomposition():
    model = planted_model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    tokens = _tokens(1, seed=2)[0]
    dla = direct_logit_attribution(model, tokens)
    bridge = to_bridge(model)
    _, cache = bridge.run_with_cache(tokens[None])
    targets = tokens[1:]
    for layer in range(2):
        z = cache["z", layer][0]  # (T, heads, d_head)
        W_O = bridge.W_O[layer]  # (heads, d_head, d_model)
        for head in range(2):
            out = z[:, head] @ W_O[head]  # no LayerNorm in this model: the direct effect is linear
            manual = (out[:-1] * bridge.W_U[:, targets].T).sum(-1)
            torch.testing.assert_close(dla.attribution[layer * 2 + head], manual, rtol=1e-4, atol=1e-5)


def test_logit_lens_final_layer_is_the_model():
    model = create_model("gpt", n_layer=2, n_embd=32, n_head=4, block_size=T, vocab_size=V).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(4)))
    tokens = _tokens(1)[0]
    lens = logit_lens(model, tokens, top_k=3)
    assert lens.layers == ["embed", "after L0", "final"]
    probs = model(tokens[None])[0].softmax(-1).detach()
    torch.testing.assert_close(lens.target_prob[-1], probs[torch.arange(T - 1), tokens[1:]], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(lens.top_probs[-1], probs.topk(3).values, rtol=1e-4, atol=1e-5)


def test_ablation_matches_zeroing_the_head_in_the_module():
    model = planted_model()
    tokens = _tokens(16)
    result = ablate_heads(model, kind="zero", tokens=tokens)
    for layer in range(2):
        for head in range(2):
            reference = copy.deepcopy(model)
            with torch.no_grad():
                reference.blocks[layer].attn.proj.weight[:, head * 16:(head + 1) * 16] = 0
                expected = induction_loss(reference(tokens), tokens).item()
            assert result.ablated[layer, head].item() == pytest.approx(expected, abs=1e-4)
    # Removing the previous-token or the induction head hurts most.
    assert result.delta[0, 0] > 0.5 and result.delta[1, 0] > 0.5
    mean = ablate_heads(model, kind="mean", tokens=tokens, layers=[1])
    assert torch.isnan(mean.ablated[0]).all() and not torch.isnan(mean.ablated[1]).any()


def test_no_hooks_left_on_success_or_error():
    model = planted_model()
    bridge = to_bridge(model)
    tokens = _tokens(4)
    head_scores(bridge, tokens=tokens)
    ablate_heads(bridge, tokens=tokens)
    direct_logit_attribution(bridge, tokens[0])
    assert bridge_hook_count(bridge) == 0 and hook_count(model) == 0
    with pytest.raises(InterpError, match="unknown head 5"):
        ablate_heads(bridge, tokens=tokens, heads=[5])
    with pytest.raises(Exception):
        ablate_heads(bridge, tokens=torch.full((2, T), V + 3))  # out-of-vocabulary ids fail inside the forward
    assert bridge_hook_count(bridge) == 0 and hook_count(model) == 0


def test_loss_by_position_and_icl_score():
    model = planted_model()
    tokens = _tokens(32)
    result = loss_by_position(model, tokens)
    assert result.loss.shape == (T - 1,)
    # The planted induction circuit predicts the repeats: loss falls along the context.
    assert result.icl_score < 0
    assert icl_score(torch.linspace(3, 1, 20)) < 0 and icl_score(torch.ones(20)) == 0


def test_results_save_and_load(tmp_path):
    model = planted_model()
    tokens = _tokens(8)
    pats = attention_patterns(model, tokens[0])
    assert pats.patterns.shape == (2, 2, T, T)
    path = save_attention(pats, tmp_path)
    assert path == tmp_path / "attention.json"
    assert (tmp_path / "attention.png").read_bytes()[:4] == b"\x89PNG"
    assert torch.allclose(load_attention(tmp_path).patterns, pats.patterns)
    scores = head_scores(model, tokens=tokens)
    save_head_scores(scores, tmp_path)
    loaded = load_head_scores(tmp_path)
    for name in scores.scores:
        torch.testing.assert_close(loaded.scores[name], scores.scores[name])
    position = loss_by_position(model, tokens)
    save_position_loss(position, tmp_path)
    assert load_position_loss(tmp_path).icl_score == pytest.approx(position.icl_score)
    lens = logit_lens(model, tokens[0])
    save_logit_lens(lens, tmp_path)
    assert load_logit_lens(tmp_path).top_tokens == lens.top_tokens
    ablation = ablate_heads(model, tokens=tokens)
    save_ablation(ablation, tmp_path)
    assert torch.allclose(load_ablation(tmp_path).ablated, ablation.ablated)
    for stem in ("attention", "heads", "position_loss", "lens", "ablation_zero"):
        assert (tmp_path / f"{stem}.png").is_file()


def _every_result(model, tokens):
    """One result of each language kind the planted model gives (training dynamics and samples need a run)."""
    from interp.analysis.language.heads import TrainingDynamics
    from interp.analysis.language.tokens import TextSample

    dynamics = TrainingDynamics([1, 2], [10, 20], [0.5, 1.0], [2.0, None],
                                {"induction": torch.rand(2, 2, 2, generator=torch.Generator().manual_seed(0))}, "r")
    return {
        "sample": TextSample("ab\nc", "", 3, 0.8, 0, "r", {"seed": 0}),
        "attention": attention_patterns(model, tokens[0]),
        "head-scores": head_scores(model, tokens=tokens),
        "training-dynamics": dynamics,
        "position-loss": loss_by_position(model, tokens),
        "lens": logit_lens(model, tokens[0]),
        "direct-logit-attribution": direct_logit_attribution(model, tokens[0]),
        "circuit-scores": circuit_scores(model, n_baseline=10),
        "ablation": ablate_heads(model, kind="mean", tokens=tokens, layers=[1]),  # NaN rows for layer 0
    }


def _equal(a, b):
    """Dataclass results equal field by field (tensors by value, NaN equal to NaN)."""
    import dataclasses

    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            torch.testing.assert_close(y, x.float() if x.is_floating_point() else x, equal_nan=True, msg=f.name)
        elif isinstance(x, dict) and x and isinstance(next(iter(x.values())), (torch.Tensor, dict)):
            assert x.keys() == y.keys(), f.name
            for k in x:
                inner_x, inner_y = (x[k], y[k]) if isinstance(x[k], dict) else ({0: x[k]}, {0: y[k]})
                for kk in inner_x:
                    torch.testing.assert_close(inner_y[kk], inner_x[kk], msg=f"{f.name}[{k}]")
        else:
            assert (list(y) if isinstance(x, tuple) else y) == (list(x) if isinstance(x, tuple) else x), f.name


def test_store_round_trip_and_describe_for_every_language_kind(tmp_path):
    model = planted_model()
    tokens = _tokens(8)
    for kind, result in _every_result(model, tokens).items():
        assert results.kind_of(result).name == kind
        path = results.save(result, tmp_path / kind)
        index = json.loads(path.read_text())
        assert index["kind"] == kind and "settings" in index
        _equal(result, results.load(path))
        described = results.describe(result)
        assert described["kind"] == kind
        json.dumps(described, allow_nan=False)  # --json prints strict JSON, NaN included as null


def test_other_settings_are_set_aside_never_overwritten(tmp_path):
    model = planted_model()
    first = head_scores(model, tokens=_tokens(8, seed=0))
    second = head_scores(model, tokens=_tokens(8, seed=1))
    save_head_scores(first, tmp_path)
    save_head_scores(first, tmp_path)  # the same settings: replaced in place, nothing set aside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heads.json", "heads.png"]
    save_head_scores(second, tmp_path)
    aside = sorted(tmp_path.glob("heads-*.json"))
    assert len(aside) == 1 and aside[0].with_suffix(".png").is_file()
    assert load_head_scores(tmp_path).settings == second.settings  # the plain name holds the latest
    torch.testing.assert_close(load_head_scores(aside[0]).induction, first.induction)


def test_old_ablation_files_without_a_store_kind_still_load(tmp_path):
    (tmp_path / "ablation_mean.json").write_text(json.dumps(
        {"run": "r", "kind": "mean", "base_loss": 1.0, "n_sequences": 4, "ablated": [[1.5, 2.0]]}))
    old = load_ablation(tmp_path, "mean")
    assert old.kind == "mean" and old.delta.tolist() == [[0.5, 1.0]]
