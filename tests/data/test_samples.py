"""The one sampling rule (interp.data.samples) and the analyses that take subsets with it.

Datasets here are sorted by class, like an ImageFolder: the first N images are one class,
so any "first N" slip shows as missing classes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from interp.claims import check_claims
from interp.claims.registry import CheckOptions
from interp.claims.evidence import claim_data
from interp.data.images import ImageData
from interp.data.samples import (Sample, per_class_sample, random_sample, sample_images, shuffled_classes,
                                 stratified_sample)
from interp.errors import InterpError
from interp.runs import Run
from interp.training.loop import make_config
from interp.zoo import create_model

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def sorted_labels(per_class=100, k=10):
    return torch.arange(k).repeat_interleave(per_class)


def sorted_data(per_class=20, k=10, size=32):
    """A tiny ImageData stored class by class; every image's pixels carry its label."""
    y = sorted_labels(per_class, k)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (len(y), 3, size, size), dtype=torch.uint8, generator=g)
    x[:, :, 12:20, 12:20] = (20 + 20 * y).to(torch.uint8).view(-1, 1, 1, 1)
    return ImageData("sorted", x.clone(), y.clone(), x, y, NAMES[:k], (0.5,) * 3, (0.25,) * 3)


class Reader(nn.Module):
    """Classifies by the brightness of the central square (the label's level)."""

    def __init__(self, k=10):
        super().__init__()
        levels = torch.tensor([(20 + 20 * c) / 255 for c in range(k)])
        self.levels = nn.Parameter((levels - 0.5) / 0.25, requires_grad=False)

    def forward(self, x):
        v = x[:, :, 12:20, 12:20].mean(dim=(1, 2, 3))
        return -100.0 * (v[:, None] - self.levels[None]).pow(2)


def as_run(model, data=None, name="sampled"):
    cfg = make_config("tutorial", "shapes")
    dc = replace(cfg.data, input_shape=(3, 32, 32), mean=(0.5,) * 3, std=(0.25,) * 3, classes=tuple(NAMES))
    run = Run(Path(name), replace(cfg, data=dc), model.eval())
    if data is not None:
        run.load_data = lambda **kwargs: data  # no dataset on disk: the run's test split is `data`
    return run


# --------------------------------------------------------------------------- the rule


def test_balanced_on_labels_sorted_by_class():
    s = stratified_sample(sorted_labels(), 100, classes=NAMES)
    assert s.size == 100 and s.class_counts == {name: 10 for name in NAMES}
    assert s.indices.dtype == torch.long and s.indices.tolist() == sorted(set(s.indices.tolist()))
    assert (s.seed, s.requested, s.population) == (0, 100, 1000)
    assert s.to_dict() == {"size": 100, "seed": 0, "requested": 100, "population": 1000,
                           "class_counts": {name: 10 for name in NAMES}}
    json.dumps(s.to_dict())
    assert s.describe().startswith("100 of 1,000 test images, seed 0, stratified: airplane 10, automobile 10")


def test_remainder_goes_to_some_classes_one_each():
    s = stratified_sample(sorted_labels(), 105, seed=3)
    counts = list(s.class_counts.values())
    assert s.size == 105 and sorted(counts) == [10] * 5 + [11] * 5
    assert list(s.class_counts) == [str(k) for k in range(10)]  # no names: str(label)


def test_seeded_deterministic_and_seed_dependent():
    labels = sorted_labels()
    a, b, c = (stratified_sample(labels, 50, seed=s) for s in (7, 7, 8))
    assert torch.equal(a.indices, b.indices) and a == b
    assert not torch.equal(a.indices, c.indices) and a.class_counts == c.class_counts
    state = torch.get_rng_state()
    stratified_sample(labels, 50, seed=7)
    assert torch.equal(state, torch.get_rng_state())  # never the global RNG


def test_within_class_not_the_first_images():
    s = stratified_sample(sorted_labels(), 100)
    first_of_each = [k * 100 + j for k in range(10) for j in range(10)]
    assert s.indices.tolist() != first_of_each


def test_larger_sample_contains_the_smaller():
    labels = sorted_labels()
    small, large = stratified_sample(labels, 200, seed=1), stratified_sample(labels, 500, seed=1)
    assert set(small.indices.tolist()) <= set(large.indices.tolist())


def test_a_class_smaller_than_its_share_gives_all_it_has():
    labels = torch.cat([torch.zeros(3, dtype=torch.long), torch.ones(50, dtype=torch.long),
                        torch.full((50,), 2, dtype=torch.long)])
    s = stratified_sample(labels, 30, classes=["few", "b", "c", "absent"])
    assert s.size == 30
    assert s.class_counts["few"] == 3 and s.class_counts["absent"] == 0
    assert sorted([s.class_counts["b"], s.class_counts["c"]]) == [13, 14]
    assert torch.equal(s.indices[:3], torch.arange(3))  # all of the small class


def test_n_larger_than_the_population_takes_everything():
    labels = sorted_labels(5, 4)
    s = stratified_sample(labels, 100, classes=["a", "b", "c", "d"])
    assert torch.equal(s.indices, torch.arange(20))
    assert s.class_counts == {"a": 5, "b": 5, "c": 5, "d": 5} and s.requested == 100 and s.population == 20
    assert s.describe().startswith("all 20 test images")
    x = torch.zeros(20, 1, 2, 2)
    xs, ys, s2 = sample_images(x, labels, 20)
    assert xs is x and ys is labels and s2.size == 20


@pytest.mark.parametrize("n", [0, -3])
def test_n_not_positive_is_an_error(n):
    with pytest.raises(InterpError, match="at least 1"):
        stratified_sample(sorted_labels(), n)
    with pytest.raises(InterpError, match="at least 1"):
        sample_images(torch.zeros(10, 1, 2, 2), None, n)


def test_stratified_sample_needs_labels():
    with pytest.raises(InterpError, match="labels"):
        stratified_sample(None, 10)
    with pytest.raises(InterpError, match="labels"):
        sample_images(torch.zeros(10, 1, 2, 2), torch.zeros(9, dtype=torch.long), 5)


def test_unlabelled_images_get_a_random_subset():
    x = torch.arange(100).view(100, 1, 1, 1)
    xs, ys, s = sample_images(x, None, 10, seed=0)
    assert ys is None and s.class_counts == {} and s.size == 10
    assert xs.flatten().tolist() != list(range(10))  # not the first N
    assert xs.flatten().tolist() == sorted(xs.flatten().tolist()) == s.indices.tolist()
    assert torch.equal(sample_images(x, None, 10, seed=0)[0], xs)
    assert not torch.equal(sample_images(x, None, 10, seed=1)[0], xs)
    assert "random" in s.describe() and s == random_sample(100, 10, seed=0)


def test_labelled_images_are_stratified():
    data = sorted_data(20)
    xs, ys, s = sample_images(data.test_x, data.test_y, 30, seed=2, classes=data.classes)
    assert torch.equal(ys, data.test_y[s.indices]) and torch.equal(xs, data.test_x[s.indices])
    assert torch.bincount(ys, minlength=10).tolist() == [3] * 10


def test_per_class_sample_and_shuffled_classes():
    labels = torch.cat([sorted_labels(10, 3), torch.full((2,), 3)])
    s = per_class_sample(labels, 4, seed=0, classes=["a", "b", "c", "d"])
    assert s.class_counts == {"a": 4, "b": 4, "c": 4, "d": 2} and s.size == 14
    order = shuffled_classes(labels, seed=0)
    assert sorted(order[1].tolist()) == list(range(10, 20)) and order[1].tolist() != list(range(10, 20))
    balanced = sorted_labels(10, 5)
    assert torch.equal(per_class_sample(balanced, 3, seed=4).indices, stratified_sample(balanced, 15, seed=4).indices)


def test_sample_is_a_small_frozen_record():
    s = stratified_sample(sorted_labels(), 10)
    with pytest.raises(Exception):
        s.seed = 1
    assert isinstance(s, Sample) and "10 of 1,000" in repr(s)


# --------------------------------------------------------------------------- where it is used


def test_image_data_subset_is_stratified():
    data = sorted_data(20)
    sub = data.subset(n_train=50, n_test=20)
    assert torch.bincount(sub.train_y, minlength=10).tolist() == [5] * 10
    assert torch.bincount(sub.test_y, minlength=10).tolist() == [2] * 10
    assert sub.test_y.tolist() == sorted(sub.test_y.tolist())  # stored order kept


def test_claim_data_is_not_the_first_n():
    data = sorted_data(20)
    run = as_run(Reader(), data)
    images, labels, sample = claim_data(run, CheckOptions(max_images=50, seed=0))
    assert len(images) == 50 and set(labels.tolist()) == set(range(10))  # first 50 would be classes 0-2
    assert sample.class_counts == {name: 5 for name in NAMES}
    assert torch.equal(images, data.test_x[sample.indices])
    # given images and labels follow the same rule
    x, y, s = claim_data(run, CheckOptions(images=data.test_x, labels=data.test_y, max_images=20, seed=1))
    assert torch.bincount(y, minlength=10).tolist() == [2] * 10 and s.seed == 1
    x, y, s = claim_data(run, CheckOptions(images=data.test_x, max_images=20))
    assert y is None and s.class_counts == {} and s.indices.tolist() != list(range(20))


def test_clever_hans_records_the_sample():
    data = sorted_data(20)
    (result,) = check_claims(as_run(Reader(), data), ["clever-hans"], max_images=50)
    assert result.numbers["images"] == 50
    assert result.numbers["class_counts"] == {name: 5 for name in NAMES}
    assert any("stratified" in note and "airplane 5" in note for note in result.notes)
    assert result.numbers["chance"] == pytest.approx(0.1)  # balanced classes: chance is 1/K
    json.dumps(result.to_dict())


def test_trust_sample_indices_stratified_with_labels():
    from interp.analysis.attribution.trust import draw_sample, sample_indices

    labels = sorted_labels(10)
    idx = sample_indices(100, 10, 0, labels)
    assert sorted(labels[idx].tolist()) == list(range(10))
    plain = sample_indices(100, 10, 0)
    assert plain == sorted(plain) and plain != list(range(10))
    assert draw_sample(100, 10, 0, labels, NAMES).class_counts == {name: 1 for name in NAMES}
    with pytest.raises(InterpError, match="at least 1"):
        sample_indices(100, 0)


def test_dataset_examples_record_class_counts():
    from interp.analysis.vision.examples import dataset_examples

    torch.manual_seed(0)
    data = sorted_data(4)
    ex = dataset_examples(as_run(create_model("tutorial")), "conv1", "0-1", k=2, data=data)
    assert ex.settings["class_counts"] == {name: 4 for name in NAMES} and ex.settings["n_images"] == 40


def test_gallery_is_a_seeded_choice_within_each_class():
    from interp.analysis.attribution.gallery import attribution_gallery

    torch.manual_seed(0)
    data = sorted_data(20)
    run = as_run(create_model("tutorial"))
    a = attribution_gallery(run, per_class=2, methods="saliency", data=data)
    first = [[20 * k, 20 * k + 1] for k in range(10)]
    assert [e.class_name for e in a.entries] == NAMES
    assert [e.indices for e in a.entries] != first
    assert all(len(e.indices) == 2 and all(20 * k <= i < 20 * k + 20 for i in e.indices)
               for k, e in enumerate(a.entries))
    assert a.seed == 0 and a.to_dict()["seed"] == 0 and a.class_counts == {name: 2 for name in NAMES}
    b = attribution_gallery(run, per_class=2, methods="saliency", data=data)
    c = attribution_gallery(run, per_class=2, methods="saliency", data=data, seed=5)
    assert [e.indices for e in b.entries] == [e.indices for e in a.entries]
    assert [e.indices for e in c.entries] != [e.indices for e in a.entries] and c.seed == 5
