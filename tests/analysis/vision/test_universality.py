"""Universality measures: linear CKA against its invariances and a permutation null; unit matching
recovers a planted permutation of channels exactly."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from interp.analysis.vision.universality import (activations, correlation_from_moments, layer_similarity,
                                                 linear_cka, match_from_activations, match_units, null_subject,
                                                 shuffled_copy)
from interp.data.samples import sample_images
from interp.errors import InterpError
from interp.hooks import hook_count
from interp.subject import as_subject


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- CKA


def test_cka_of_a_representation_with_itself_and_its_rotation_is_one():
    x = torch.randn(150, 12, generator=gen())
    q = torch.linalg.qr(torch.randn(12, 12, generator=gen(1)))[0]
    for debiased in (False, True):
        assert linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-9)
        # orthogonal rotation, isotropic scaling and a shift of every feature leave CKA at 1
        assert linear_cka(x, 3.0 * x @ q + 5.0, debiased=debiased) == pytest.approx(1.0, abs=1e-9)


def test_cka_is_not_invariant_to_a_non_orthogonal_map():
    x = torch.randn(150, 12, generator=gen())
    squash = torch.diag(torch.tensor([10.0] + [0.1] * 11))
    assert linear_cka(x, x @ squash) < 0.5


def test_cka_of_independent_noise_is_within_its_permutation_null():
    x, y = torch.randn(200, 10, generator=gen()), torch.randn(200, 10, generator=gen(1))
    related = x @ torch.randn(10, 10, generator=gen(2)) + 0.5 * y
    g = gen(3)
    perms = [torch.randperm(200, generator=g) for _ in range(200)]
    null = torch.tensor([linear_cka(x, y[p]) for p in perms])
    observed = linear_cka(x, y)
    assert (null >= observed).float().mean() > 0.01  # not beyond chance
    assert linear_cka(x, related) > float(torch.tensor([linear_cka(x, related[p]) for p in perms]).max())
    # the biased estimator sits well above 0 for p/n = 0.05; the debiased one is centred on 0
    assert observed > 0.02 and abs(linear_cka(x, y, debiased=True)) < 0.02


def test_cka_needs_the_same_samples():
    with pytest.raises(InterpError, match="same samples"):
        linear_cka(torch.randn(10, 3), torch.randn(11, 3))


# --------------------------------------------------------------------------- matching


def test_correlations_from_moments_match_torch_corrcoef():
    a, b = torch.randn(30, 4, 5, 5, generator=gen()), torch.randn(30, 3, 5, 5, generator=gen(1))
    b[:, 0] += a[:, 2]
    m = match_from_activations(a, b)
    flat = torch.cat([a.transpose(0, 1).flatten(1), b.transpose(0, 1).flatten(1)]).double()
    reference = torch.corrcoef(flat)[:4, 4:]
    assert torch.allclose(m.correlation.double(), reference, atol=1e-5)
    assert m.best[2] == 0 and m.positions == 25 and m.n_images == 30
    weights = torch.ones(30, dtype=torch.float64)
    assert torch.allclose(correlation_from_moments(m.moments, weights[None])[0].float(), m.correlation, atol=1e-6)


def test_maps_of_different_sizes_are_pooled_to_the_smaller_grid():
    a = torch.randn(20, 3, 8, 8, generator=gen())
    b = torch.nn.functional.avg_pool2d(a, 2)[:, [1, 2, 0]]
    m = match_from_activations(a, b)
    assert m.positions == 16 and m.best.tolist() == [2, 0, 1]
    assert torch.allclose(m.best_r, torch.ones(3), atol=1e-5)


@pytest.fixture
def images(tiny_run):
    data = tiny_run.load_data(progress=False, split="test")
    return sample_images(data.test_x, data.test_y, 64, seed=0, classes=data.classes)[0]


def permuted_conv1(run, perm: torch.Tensor):
    """The same function with conv1's channels in the order ``perm`` (conv2's inputs follow)."""
    subject = as_subject(run)
    model = copy.deepcopy(subject.model)
    with torch.no_grad():
        model.conv1.weight.copy_(model.conv1.weight[perm])
        model.conv1.bias.copy_(model.conv1.bias[perm])
        model.conv2.weight.copy_(model.conv2.weight[:, perm])
    return dataclasses.replace(subject, model=model, name="permuted")


def test_matching_recovers_a_permutation_of_conv1_exactly(tiny_run, images):
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    other = permuted_conv1(tiny_run, perm)
    m = match_units(tiny_run, other, "conv1", images)
    inverse = torch.argsort(perm)  # unit i of A is unit inverse[i] of the permuted copy
    assert m.best.tolist() == inverse.tolist() and m.assignment.tolist() == inverse.tolist()
    assert torch.allclose(m.best_r, torch.ones(6), atol=1e-5) and bool(m.mutual.all())
    assert m.mean_best == pytest.approx(1.0, abs=1e-5) and m.bootstrap_ci(draws=100)[0] == pytest.approx(1.0, abs=1e-5)
    # downstream the function is unchanged, so conv2 matches itself unit for unit
    assert match_units(tiny_run, other, "conv2", images).best.tolist() == list(range(16))
    assert hook_count(tiny_run.model) == 0 and hook_count(other.model) == 0


def test_a_trained_net_matches_itself_better_than_its_null_copies(tiny_run, images):
    own = match_units(tiny_run, tiny_run, "conv2", images).mean_best
    shuffled = match_units(tiny_run, null_subject(tiny_run, "shuffled", 0), "conv2", images)
    assert own == pytest.approx(1.0, abs=1e-5) and shuffled.mean_best < 0.9
    lo, hi = shuffled.bootstrap_ci(draws=200)
    assert lo <= shuffled.mean_best <= hi and hi - lo > 0


def test_a_layer_typo_is_a_did_you_mean_error(tiny_run, images):
    with pytest.raises(InterpError, match="unknown layer 'conv'; did you mean"):
        match_units(tiny_run, tiny_run, "conv", images)
    assert hook_count(tiny_run.model) == 0


def test_activations_leave_no_hook_when_the_model_raises(tiny_run):
    with pytest.raises(RuntimeError):
        activations(tiny_run, "conv1", torch.zeros(2, 3, 8, 8, dtype=torch.uint8))  # too small for conv2
    assert hook_count(tiny_run.model) == 0


# --------------------------------------------------------------------------- nulls and layer similarity


def test_shuffled_copy_keeps_each_tensor_s_values_but_not_their_order(tiny_run):
    copy_ = shuffled_copy(tiny_run.model, seed=0)
    for (name, p), q in zip(tiny_run.model.named_parameters(), copy_.parameters()):
        assert torch.equal(p.detach().flatten().sort().values, q.detach().flatten().sort().values), name
        assert not torch.equal(p, q), name
    assert torch.equal(shuffled_copy(tiny_run.model, 0).conv1.weight, copy_.conv1.weight)  # seeded
    with pytest.raises(InterpError, match="reinitialized, shuffled"):
        null_subject(tiny_run, "random", 0)


def test_layer_similarity_of_a_run_with_itself_is_one_and_above_its_null(tiny_run, images):
    sim = layer_similarity(tiny_run, tiny_run, ["conv1", "conv2"], images, null_models=2, draws=100)
    rows = sim.rows()
    assert [r["layer"] for r in rows] == ["conv1", "conv2"]
    for row in rows:
        assert row["cka"] == pytest.approx(1.0, abs=1e-6) and row["ci_low"] == pytest.approx(1.0, abs=1e-6)
        assert row["null_max"] < 1.0 - 1e-3
    debiased = layer_similarity(tiny_run, null_subject(tiny_run, "reinitialized", 5), [("conv2", "conv2")], images,
                                debiased=True, draws=100)
    assert debiased.cka[0] < 0.99 and debiased.ci[0][0] <= debiased.cka[0] <= debiased.ci[0][1]
