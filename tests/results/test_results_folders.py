"""``interp.results.load(folder)``: the folder a result was saved in loads, when it is unambiguous.

A user passes the folder they see (``reports/RUN/claims/``), not the JSON file inside it;
a folder with several results is a clear error that lists them.
"""

from __future__ import annotations

import json

import pytest
import torch

import interp.results as store
from interp.analysis.language.tokens import TextSample
from interp.analysis.words.geometry import analogy, nearest_neighbors
from interp.analysis.words.vectors import WordVectors
from interp.claims import SUPPORTED, ClaimResult, ClaimSet, Verdict
from interp.errors import InterpError
from interp.pipelines.words import run_embedding_analyses


def claim(name="curve-detectors") -> ClaimResult:
    return ClaimResult(name, Verdict(SUPPORTED, "made up for the test"), "a statement", "a source", run="tiny",
                       layer="conv2", found=["conv2:3"], settings={"seed": 0})


def vectors() -> WordVectors:
    rows = {"man": [-1, 0, 0.1], "woman": [1, 0, 0.1], "king": [-1, 1, 0.1], "queen": [1, 1, 0.1],
            "she": [1, 0, 0], "he": [-1, 0, 0], "apple": [0, 0, 1]}
    return WordVectors(list(rows), torch.tensor(list(rows.values()), dtype=torch.float32), "hand-made", "hand")


def test_claims_load_from_their_folder(tmp_path):
    folder = tmp_path / "reports" / "tiny" / "claims"
    store.save(ClaimSet([claim(), claim("weight-banding")]), folder)
    loaded = store.load(folder)
    assert isinstance(loaded, ClaimSet)
    assert [r.claim for r in loaded.results] == ["curve-detectors", "weight-banding"]
    assert [r.to_dict() for r in loaded.results] == [r.to_dict() for r in store.load(folder / "claims.json").results]


def test_an_attribution_gallery_loads_from_its_folder(tiny_run, tmp_path):
    from interp.analysis.attribution.gallery import attribution_gallery

    gallery = attribution_gallery(tiny_run, per_class=1, methods="saliency")
    store.save(gallery, tmp_path / "gallery")
    back = store.load(tmp_path / "gallery")
    assert [e.indices for e in back.entries] == [e.indices for e in gallery.entries]
    torch.testing.assert_close(back.attribution.maps["saliency"], gallery.attribution.maps["saliency"])


def test_the_embedding_set_loads_from_its_folder_though_its_results_lie_beside_it(tmp_path):
    report = run_embedding_analyses(vectors(), tmp_path / "embeddings", neighbor_words=["king"], analogies=[])
    assert len(list((tmp_path / "embeddings").glob("*.json"))) > 1  # summary.json and the results it lists
    assert store.load(tmp_path / "embeddings") == report


def test_a_folder_holding_one_result_loads_it(tmp_path):
    sample = TextSample("abc", "a", 3, 1.0, 0, run="tiny")
    store.save(sample, tmp_path / "language")
    assert store.load(tmp_path / "language") == sample


def test_a_folder_of_several_results_names_them(tmp_path):
    v = vectors()
    store.save(nearest_neighbors(v, "king", 2), tmp_path / "words")
    store.save(analogy(v, "man", "king", "woman"), tmp_path / "words")
    (tmp_path / "words" / "notes.json").write_text(json.dumps({"not": "a result"}))  # not a candidate
    with pytest.raises(InterpError, match=r"holds 2 saved results: analogy-man-king-woman\.json \(analogy\), "
                                          r"neighbors-king\.json \(neighbors\); load one of them by its file"):
        store.load(tmp_path / "words")


def test_a_folder_without_results_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(InterpError, match="no saved result in .*empty"):
        store.load(tmp_path / "empty")
    with pytest.raises(InterpError, match="no saved result at .*missing"):
        store.load(tmp_path / "missing")
