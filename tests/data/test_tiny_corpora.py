"""Word vectors from any text with a few distinct words, or one clear reason why not."""

from __future__ import annotations

import pytest
import torch

from interp.errors import InterpError
from interp.training.loop import train


def _train(tmp_path, text: str, model: str = "word2vec", **sets):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text)
    return train(model, str(corpus), epochs=2, progress=False, log=None, root=tmp_path / "models", name="w",
                 overwrite=True, device="cpu", overrides={k: str(v) for k, v in sets.items()})


@pytest.mark.parametrize("text, model, sets, reason", [
    ("", "word2vec", {}, "no words at all: is the file empty"),
    ("hello hello\n", "word2vec", {}, "1 distinct word; train on a text with more"),
    ("the of and the\n", "word2vec", {}, "3 of them stop words; keep them with --set stopwords=false"),
    ("cat dog cat dog\n", "word2vec-sgns", {}, "fewer than 2 occur min_count=5 times; lower --set min_count"),
    ("cat dog bird cat dog bird\n", "word2vec-sgns", {"min_count": 1}, "--set subsample=0 keeps them all"),
])
def test_each_too_small_corpus_says_what_would_fix_it(tmp_path, text, model, sets, reason):
    with pytest.raises(InterpError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        _train(tmp_path, text, model, **sets)


@pytest.mark.parametrize("model, sets", [
    ("word2vec", {}),
    ("word2vec-sgns", {"min_count": 1, "subsample": 0}),
])
def test_three_words_train_to_finite_vectors(tmp_path, model, sets):
    run = _train(tmp_path, "cat dog bird cat dog bird dog\n", model, **sets)
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert len(run.config.data.vocab) == 3


def test_sparse_step_falls_back_when_a_center_has_more_targets_than_the_vocabulary():
    """sampled_addmm refuses a CSR row with more entries than columns; the step must not."""
    from interp.zoo.word2vec import sgns_sgd_step

    torch.manual_seed(0)
    targets = torch.randint(0, 3, (4, 6))
    weights = torch.ones(4, 6)
    offsets = torch.tensor([0, 2])
    models = []
    for sparse in (True, False):
        torch.manual_seed(1)
        model = _tiny_sgns(3, 4)
        loss = sgns_sgd_step(model, torch.tensor([0, 1]), targets, weights, 0.1, offsets=offsets, sparse=sparse)
        models.append((model, loss))
    (m1, l1), (m2, l2) = models
    assert torch.allclose(l1, l2)
    assert torch.allclose(m1.in_embed.weight, m2.in_embed.weight)
    assert torch.allclose(m1.out_embed.weight, m2.out_embed.weight)


def _tiny_sgns(vocab: int, dim: int):
    from interp.zoo import create_model

    return create_model("word2vec-sgns", vocab_size=vocab, dim=dim)
