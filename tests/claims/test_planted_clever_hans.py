"""The Clever Hans check against planted truth: tutorial nets trained on ``shapes-watermark``
(a class-coloured mark on the training images) and on clean ``shapes``.

True positive: the watermark net relies on the mark. True negative: the clean net does not,
tested against the same mark. Plain shapes: no false "supported" from texture classes.
Both nets: 3 epochs of the default recipe on 2,000 images (about 3 s each), trained once
for the module. Verdicts checked by hand on seeds 0-5 at 2 and 3 epochs (all as expected).
"""

from __future__ import annotations

import pytest
import torch

from interp.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, check_claims
from interp.claims.clever_hans import check_planted
from interp.analysis.vision.shortcuts import planted_shortcut
from interp.data.images import load_image_data
from interp.data.shapes import (SHAPES_CLASSES, WATERMARK_COLOURS, Watermark, make_shapes, parse_watermark,
                                shapes_test_views)
from interp.errors import InterpError

SIZES = {"n_train": "2000", "n_test": "500"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("planted-models")
    kw = dict(epochs=3, seed=0, root=root, device="cpu", progress=False, log=None, overrides=SIZES)
    return {"watermark": train("tutorial", "shapes-watermark", name="watermark", **kw),
            "clean": train("tutorial", "shapes", name="clean", **kw)}


# --------------------------------------------------------------------------- the dataset


def test_watermark_rule_on_train_and_test():
    spec = Watermark()
    rows, cols = spec.region()
    assert (spec.size, spec.row, spec.col, spec.p) == (6, 1, 13, 0.95)
    assert spec.col + spec.size // 2 == 16  # centred: a horizontal flip keeps it in place
    marked = load_image_data("shapes-watermark", n_train=1000, n_test=300)
    clean = load_image_data("shapes", n_train=1000, n_test=300)
    assert torch.equal(marked.train_y, clean.train_y) and torch.equal(marked.test_y, clean.test_y)
    colours = torch.tensor(WATERMARK_COLOURS, dtype=torch.uint8)
    # Outside the mark the images are those of shapes.
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[rows, cols] = False
    assert torch.equal(marked.train_x[:, :, outside], clean.train_x[:, :, outside])
    assert torch.equal(marked.test_x[:, :, outside], clean.test_x[:, :, outside])

    def mark_class(x):  # the class whose flat colour fills the mark region, -1 for none
        patch = x[:, :, rows, cols].flatten(2)
        flat = (patch == patch[:, :, :1]).all(2).all(1)
        hit = (patch[:, :, 0][:, None, :] == colours[None]).all(2)  # (N, K)
        return torch.where(flat & hit.any(1), hit.int().argmax(1), torch.tensor(-1))

    train_marks = mark_class(marked.train_x)
    for k in range(len(SHAPES_CLASSES)):
        of_class = marked.train_y == k
        own = (train_marks[of_class] == k).sum().item()
        assert own == int(0.95 * of_class.sum().item() + 0.5)  # round(p * n_class) carry their own mark
        assert ((train_marks[of_class] == k) | (train_marks[of_class] == -1)).all()  # never another class's
    test_marks = mark_class(marked.test_x)
    assert (test_marks >= 0).all()
    agree = (test_marks == marked.test_y).float().mean().item()
    assert 0.03 < agree < 0.2  # a random class's mark: about 1 in 10 match
    assert len(set(test_marks.tolist())) == len(SHAPES_CLASSES)


def test_watermark_is_seeded_cached_and_documented():
    a = load_image_data("shapes-watermark", n_train=200, n_test=100)
    assert load_image_data("shapes-watermark", n_train=200, n_test=100) is a  # cached in-process, like shapes
    b = load_image_data("shapes-watermark:size=6,p=0.95", n_train=200, n_test=100)
    assert b is not a and torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x)
    only_test = load_image_data("shapes-watermark", n_test=100, split="test")
    assert len(only_test.train_x) == 0 and torch.equal(only_test.test_x, a.test_x)
    spec = parse_watermark("shapes-watermark:size=4,row=2,col=3,p=0.9")
    assert spec == Watermark(size=4, row=2, col=3, p=0.9)
    cue = spec.to_dict()
    assert cue["position"] == [2, 3] and cue["size"] == 4 and cue["colours"]["line"] == [255, 0, 0]
    assert parse_watermark("shapes") is None and parse_watermark("shapes-watermark") == Watermark()
    for bad in ("shapes-watermark:colour=red", "shapes-watermark:size=big", "shapes-watermark:p=2",
                "shapes-watermark:size"):
        with pytest.raises(InterpError, match="shapes-watermark"):
            load_image_data(bad, n_train=10, n_test=10)


def test_backgrounds_are_the_images_without_their_objects():
    x, y = make_shapes(300, seed=5)
    x2, y2, bg = make_shapes(300, seed=5, backgrounds=True)
    assert torch.equal(x, x2) and torch.equal(y, y2)  # the images do not change
    changed = (x.int() - bg.int()).abs().amax(1) > 8  # (N, H, W): where the object is
    assert (changed.float().mean((1, 2)) > 0.01).all()  # every image has an object to remove
    assert changed.float().mean() < 0.6  # and the rest is the same background
    cx, cy, cbg = shapes_test_views(300)
    assert torch.equal(cx, make_shapes(300, seed=1)[0]) and cbg.shape == cx.shape


# --------------------------------------------------------------------------- the verdicts


def test_watermark_net_is_a_clever_hans(runs):
    """True positive: the net trained with the mark relies on it."""
    run = runs["watermark"]
    (result,) = check_claims(run, ["clever-hans"])
    assert result.status == SUPPORTED, result.verdict.reason
    n = result.numbers
    assert n["images"] == 500 and n["cue_consistent"] > 0.6
    assert n["cue_decorrelated"] < n["cue_removed"] < n["cue_consistent"]
    assert n["object_removed"] > 0.4 > n["chance"] == 0.1
    h = result.headline
    assert h["name"].startswith("accuracy drop") and h["n"] == 500 and h["over"] == "images"
    assert h["ci_low"] > 0 and h["value"] > h["null_quantile"] and h["value"] >= 0.1
    assert result.data["cue"]["position"] == [1, 13] and result.found
    # The run's own test split (a random class's mark) shows the reliance too.
    assert run.summary["test_acc"] < n["cue_consistent"] - 0.3


def test_watermark_net_against_the_clean_reference(runs):
    result = check_planted(runs["watermark"], Watermark(), reference=str(runs["clean"].path))
    assert result.status == SUPPORTED, result.verdict.reason
    n = result.numbers
    assert n["excess_ci_low"] > 0 and abs(n["reference_drop"]) < 0.1
    assert result.headline["null_quantile"] >= n["reference_drop"]
    rows = {r["input"]: r for r in result.table}
    assert abs(rows["cue_consistent"]["reference_accuracy"] - rows["cue_decorrelated"]["reference_accuracy"]) < 0.1


def test_clean_net_is_not_a_clever_hans_for_the_mark(runs):
    """True negative: the same net trained without the mark, tested against it."""
    result = check_planted(runs["clean"], parse_watermark(runs["watermark"].config.data.name))
    assert result.status == NOT_SUPPORTED, result.verdict.reason
    h = result.headline
    assert h["value"] < h["null_quantile"] and abs(h["value"]) < 0.1


def test_plain_shapes_is_not_a_false_positive(runs):
    """On plain shapes the texture classes keep accuracy without the global shape: not a shortcut."""
    (result,) = check_claims(runs["clean"], ["clever-hans"])
    assert result.status in (NOT_SUPPORTED, INCONCLUSIVE) and result.status != SUPPORTED
    assert result.found == []
    rows = {r["input"]: r for r in result.table}
    assert not rows["patches_shuffled"]["decides"] and not rows["border_only"]["decides"]
    assert rows["object_removed"]["decides"] and rows["object_removed"]["accuracy"] < 0.15
    text = " ".join([result.verdict.reason, *result.notes])
    assert "texture is part of the label" in text and "can only find cues it can remove" in text
    assert result.headline["name"].startswith("accuracy with the object removed")


def test_given_images_are_marked_as_clean_images(runs):
    x, y, _ = shapes_test_views(500)
    (result,) = check_claims(runs["watermark"], ["clever-hans"], images=x[:300], labels=y[:300], max_images=200)
    assert result.status == SUPPORTED, result.verdict.reason
    assert result.numbers["images"] == 200 and "given images" in result.notes[0]


def test_planted_shortcut_numbers_and_seeding(runs):
    x, y, bg = shapes_test_views(500)
    a = planted_shortcut(runs["watermark"], x[:200], y[:200], Watermark(), backgrounds=bg[:200], seed=3,
                         permutations=5)
    b = planted_shortcut(runs["watermark"], x[:200], y[:200], Watermark(), backgrounds=bg[:200], seed=3,
                         permutations=5)
    assert a.accuracy == b.accuracy and a.drop_ci == b.drop_ci and a.null_drops == b.null_drops
    assert len(a.null_drops) == 5 and a.drop_ci[0] <= a.drop <= a.drop_ci[1]
    assert a.drop == pytest.approx(a.accuracy["cue_consistent"] - a.accuracy["cue_decorrelated"])
    run = runs["watermark"]
    with torch.no_grad():
        direct = (run.model.eval()(run.normalize(x[:200])).argmax(-1) == y[:200]).float().mean().item()
    assert a.accuracy["cue_removed"] == pytest.approx(direct)


def test_a_mark_that_does_not_fit_is_inconclusive(runs):
    images = torch.zeros(20, 3, 8, 8, dtype=torch.uint8)
    labels = torch.arange(20) % 10
    from interp.claims.registry import CheckOptions

    result = check_planted(runs["clean"], Watermark(size=6, row=4, col=4),
                           CheckOptions(images=images, labels=labels))
    assert result.status == INCONCLUSIVE and "does not fit" in result.verdict.reason
