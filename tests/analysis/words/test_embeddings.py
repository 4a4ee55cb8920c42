"""Word-vector analyses: neighbours, analogies, word2viz axes, bias probe, plots, vectors files, CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from interp.analysis.words.geometry import (analogy, bias_probe, embedding_2d, make_axis, nearest_neighbors,
                                            parse_axis, preset_projection, project)
from interp.analysis.words.vectors import WordVectors
from interp.pipelines.words import run_embedding_analyses
from interp.results.words import load_embedding_report, load_result, save_result
from interp.data.words import read_vectors, write_vectors
from interp.errors import InterpError


def hand_made() -> WordVectors:
    """Planted structure: a gender axis (dim 0), a royalty axis (dim 1), and unrelated words."""
    rows = {
        "man": [-1, 0, 0.1, 0], "woman": [1, 0, 0.1, 0],
        "king": [-1, 1, 0.1, 0], "queen": [1, 1, 0.1, 0],
        "boy": [-1, 0, -0.5, 0], "girl": [1, 0, -0.5, 0],
        "she": [1, 0, 0, 0.2], "he": [-1, 0, 0, 0.2],
        "rich": [0, 0.2, 0, 1], "poor": [0, 0.2, 0, -1],
        "nurse": [0.6, 0, 0, -0.3], "doctor": [-0.4, 0, 0, 0.5], "apple": [0, 0, 1, 0],
    }
    return WordVectors(list(rows), torch.tensor(list(rows.values()), dtype=torch.float32), "hand-made", "hand")


def test_analogy_on_hand_made_vectors():
    v = hand_made()
    result = analogy(v, "man", "king", "woman")
    assert result.answer == "queen"
    assert {"man", "king", "woman"}.isdisjoint(result.words)
    assert analogy(v, "man", "woman", "king").answer == "queen"
    assert analogy(v, "king", "queen", "man").answer == "woman"


def test_analogy_and_neighbors_match_brute_force():
    g = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(50)]
    v = WordVectors(words, torch.randn(50, 8, generator=g), "random", "random")
    u = v.matrix / v.matrix.norm(dim=1, keepdim=True)
    target = u[3] - u[1] + u[7]
    scores = {w: float(u[i] @ target / target.norm()) for i, w in enumerate(words) if i not in (1, 3, 7)}
    best = sorted(scores, key=scores.get, reverse=True)[:5]
    result = analogy(v, "w1", "w3", "w7", k=5)
    assert result.words == best
    assert result.scores == pytest.approx([scores[w] for w in best], abs=1e-5)
    near = nearest_neighbors(v, "w4", k=4)
    cos = {w: float(u[i] @ u[4]) for i, w in enumerate(words) if i != 4}
    assert near.words == sorted(cos, key=cos.get, reverse=True)[:4]
    far = nearest_neighbors(v, "w4", k=3, metric="euclidean")
    dist = {w: float((v.matrix[i] - v.matrix[4]).norm()) for i, w in enumerate(words) if i != 4}
    assert far.words == sorted(dist, key=dist.get)[:3]


def test_against_gensim_when_installed():
    gensim = pytest.importorskip("gensim")
    from gensim.models import KeyedVectors

    g = torch.Generator().manual_seed(1)
    words = [f"w{i}" for i in range(40)]
    matrix = torch.randn(40, 6, generator=g)
    kv = KeyedVectors(6)
    kv.add_vectors(words, matrix.numpy())
    v = WordVectors(words, matrix, "random", "random")
    assert analogy(v, "w1", "w2", "w3", k=5).words == [w for w, _ in kv.most_similar(
        positive=["w2", "w3"], negative=["w1"], topn=5)]
    assert nearest_neighbors(v, "w5", k=5).words == [w for w, _ in kv.most_similar("w5", topn=5)]
    assert gensim.__version__


def test_projection_maths():
    v = hand_made()
    p = project(v, ["nurse", "doctor", "apple", "unicorn"], x="she,he", y="rich,poor")
    u = F.normalize(v.matrix, dim=1)
    axis = u[v.index["she"]] - u[v.index["he"]]
    expected = float(u[v.index["nurse"]] @ axis / axis.norm())
    assert p.words == ["nurse", "doctor", "apple"] and p.skipped == ["unicorn"]
    assert p.x[0] == pytest.approx(expected, abs=1e-6)
    assert p.x[0] > 0 > p.x[1] and p.x[2] == pytest.approx(0, abs=1e-6)
    assert p.y[1] > 0 > p.y[0]
    # Several pairs: the mean of the differences.
    two = make_axis(v, "she,he;woman,man")
    mean = ((u[v.index["she"]] - u[v.index["he"]]) + (u[v.index["woman"]] - u[v.index["man"]])) / 2
    assert torch.allclose(two.direction, mean)
    assert two.pairs == [("she", "he"), ("woman", "man")]


def test_axis_errors_name_the_missing_word():
    v = hand_made()
    with pytest.raises(InterpError, match=r"'shee' is not in the vocabulary.*did you mean 'she'"):
        make_axis(v, "shee,he")
    with pytest.raises(InterpError, match="not a word pair"):
        parse_axis("she,he,it")
    with pytest.raises(InterpError, match="empty"):
        parse_axis(" ; ")
    # Presets keep the pairs the vocabulary has, and fail only when none is left.
    assert make_axis(v, "she,he;female,male", lenient=True).pairs == [("she", "he")]
    with pytest.raises(InterpError, match="none of its pairs"):
        make_axis(v, "female,male", lenient=True)
    with pytest.raises(InterpError, match="unknown preset 'job'; did you mean 'jobs'"):
        preset_projection(v, "job")


def test_unknown_word_suggests_close_words():
    v = hand_made()
    with pytest.raises(InterpError, match=r"word 'kng' is not in the vocabulary of hand-made \(13 words\); "
                                          r"did you mean 'king'"):
        nearest_neighbors(v, "kng")
    assert nearest_neighbors(v, "King").word == "king"  # case-folded lookup


def test_bias_probe_orders_by_the_axis():
    v = hand_made()
    probe = bias_probe(v, ["doctor", "nurse", "apple", "pilot"])
    assert probe.words == ["nurse", "apple", "doctor"] and probe.skipped == ["pilot"]
    assert probe.scores == sorted(probe.scores, reverse=True)


def test_embedding_2d_raw_and_pca():
    v2 = WordVectors(["a", "b", "c"], torch.tensor([[0.0, 1.0], [2.0, 3.0], [-1.0, 0.5]]), "t", "t")
    raw = embedding_2d(v2, ["a", "b", "c"])
    assert raw.method == "raw" and raw.x == [0.0, 2.0, -1.0] and raw.y == [1.0, 3.0, 0.5]
    v = hand_made()
    pca = embedding_2d(v, v.words)
    centred = v.matrix - v.matrix.mean(0)
    s = torch.linalg.svdvals(centred)
    assert pca.method == "pca" and pca.explained == pytest.approx((s[:2] ** 2 / (s ** 2).sum()).tolist(), abs=1e-5)
    coords = torch.tensor([pca.x, pca.y]).T
    assert torch.allclose(coords.pow(2).sum(0), s[:2] ** 2, atol=1e-4)  # projections onto the components


def test_save_load_and_plots(tmp_path):
    v = hand_made()
    for result in (analogy(v, "man", "king", "woman"), nearest_neighbors(v, "king"),
                   project(v, ["nurse", "doctor"], "she,he", "rich,poor"), bias_probe(v, ["nurse", "doctor"]),
                   embedding_2d(v, v.words)):
        paths = save_result(result, tmp_path)
        assert load_result(paths["json"]) == result
        if "png" in paths:
            assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
    with pytest.raises(InterpError, match="not a saved embedding result"):
        (tmp_path / "bad.json").write_text("{}")
        load_result(tmp_path / "bad.json")


def test_report_set_from_vectors(tmp_path):
    report = run_embedding_analyses(hand_made(), tmp_path / "emb")
    assert report.plot == "plot-2d.png" and (tmp_path / "emb" / report.plot).exists()
    assert report.bias and report.projection
    assert "correlation, not causation" in report.note
    assert load_embedding_report(tmp_path / "emb") == report


# ------------------------------------------------------------------ vector files


def test_read_glove_and_word2vec_formats(tmp_path):
    glove = tmp_path / "g.txt"
    glove.write_text("the 0.1 0.2 0.3\nking 1 2 3\nthe 9 9 9\nnew york 4 5 6\n")
    words, m = read_vectors(glove)
    assert words == ["the", "king", "new york"]  # repeated word keeps the first; spaces allowed
    assert m.shape == (3, 3) and m[1].tolist() == [1.0, 2.0, 3.0]
    assert read_vectors(glove, limit=2)[0] == ["the", "king"]
    w2v = tmp_path / "w.txt.gz"
    with gzip.open(w2v, "wt") as f:
        f.write("2 2\nqueen 0.5 -0.5 \nprince 1e-3 2\n")
    words, m = read_vectors(w2v)
    assert words == ["queen", "prince"] and torch.allclose(m, torch.tensor([[0.5, -0.5], [0.001, 2.0]]))
    out = tmp_path / "round.txt"
    write_vectors(out, words, m)
    back_words, back = read_vectors(out)
    assert back_words == words and torch.allclose(back, m)
    vectors = WordVectors.from_file(out)
    assert vectors.name == "vectors-round" and vectors.dim == 2


@pytest.mark.parametrize("text, message", [
    ("a 1 2 3\nb 1 2\n", "line 2 has 2 values after the word, expected 3"),
    ("a 1 2\nb 1 x\n", "line 2: 'x' is not a number"),
    ("3 2\na 1 2\nb 3 4\n", "the header \\(line 1\\) says 3 words but the file has 2"),
    ("word\n", "line 1 has a word but no numbers"),
    ("", "holds no vectors"),
    ("a 1 inf\n", "has inf or nan values"),
])
def test_malformed_vectors_files(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InterpError, match=message):
        read_vectors(path)


def test_binary_and_missing_vectors_files(tmp_path):
    path = tmp_path / "v.bin"
    path.write_bytes(b"2 3\nking \xff\xfe\x00\x01")
    with pytest.raises(InterpError, match="line 2 is not UTF-8.*binary"):
        read_vectors(path)
    with pytest.raises(InterpError, match="not found"):
        read_vectors(tmp_path / "none.txt")


# ------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def toy_run_dir(tmp_path_factory) -> Path:
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("models")
    train("word2vec", name="toy", epochs=2, root=root, device="cpu", progress=False, log=None,
          overrides={"steps_per_epoch": "50"})
    return root / "toy"


def test_from_run_and_no_hooks(toy_run_dir):
    from interp.hooks import hook_count
    from interp.runs import load_run

    run = load_run(toy_run_dir)
    v = WordVectors.from_run(run)
    assert v.dim == 2 and "king" in v and v.name == "toy"
    run_embedding_analyses(v, toy_run_dir.parent / "out")
    assert hook_count(run.model) == 0


def test_cli_commands(cli, toy_run_dir, tmp_path):
    run = str(toy_run_dir)
    code, out, err = cli("embed", "neighbors", "king", "--run", run, "--metric", "euclidean", "--k", "3")
    assert code == 0, err
    assert "prince" in out and "neighbors-king.json" in out
    code, out, _ = cli("embed", "analogy", "man", "king", "woman", "--run", run)
    assert code == 0 and "man is to king as woman is to" in out
    code, out, _ = cli("embed", "plot", "--run", run, "--out", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "plot-2d.png").exists()
    code, out, _ = cli("embed", "axes", "--preset", "royalty", "--run", run, "--out", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "axes-royalty.png").exists()
    code, out, _ = cli("embed", "axes", "--x", "royal,common", "--words", "king,man,dragon", "--run", run,
                       "--out", str(tmp_path / "out"))
    assert code == 0 and "left out): dragon" in out
    code, out, _ = cli("embed", "report", "--run", run, "--out", str(tmp_path / "rep"))
    assert code == 0 and (tmp_path / "rep" / "summary.json").exists()
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["plot"] == "plot-2d.png"


def test_cli_vectors_file(cli, tmp_path):
    path = tmp_path / "mini.txt"
    vectors = hand_made()
    write_vectors(path, vectors.words, vectors.matrix)
    code, out, err = cli("embed", "bias", "--vectors", str(path), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert out.index("nurse") < out.index("doctor") and (tmp_path / "out" / "bias-she-he.png").exists()
    code, out, _ = cli("embed", "axes", "--x", "she,he", "--y", "rich,poor", "--words", "doctor,nurse",
                       "--vectors", str(path), "--out", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "axes-she-he--rich-poor.png").exists()


@pytest.mark.parametrize("args, message", [
    (["neighbors", "kng"], "'kng' is not in the vocabulary"),
    (["axes", "--x", "she,hex", "--words", "nurse"], "axis word (in the pair she,hex) 'hex'"),
    (["axes", "--words", "nurse"], "axes needs --x"),
    (["analogy", "man", "king", "womn"], "did you mean 'woman'"),
])
def test_cli_errors(cli, tmp_path, args, message):
    path = tmp_path / "mini.txt"
    vectors = hand_made()
    write_vectors(path, vectors.words, vectors.matrix)
    code, _, err = cli("embed", *args, "--vectors", str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and message in err and "Traceback" not in err


def test_cli_malformed_file_and_wrong_run(cli, tmp_path, tiny_run_dir):
    path = tmp_path / "bad.txt"
    path.write_text("a 1 2\nb 1 2\nc 3\n")
    code, _, err = cli("embed", "neighbors", "a", "--vectors", str(path))
    assert code == 2 and "line 3 has 1 values after the word, expected 2" in err
    code, _, err = cli("embed", "neighbors", "a", "--run", str(tiny_run_dir))
    assert code == 2 and "image-classification run" in err
    code, _, err = cli("embed", "neighbors", "a", "--run", str(tiny_run_dir), "--vectors", str(path))
    assert code == 2 and "either --run or --vectors" in err


def test_cli_no_word2vec_run(cli):
    code, _, err = cli("embed", "plot")
    assert code == 2 and "no word2vec runs" in err


# ------------------------------------------------- analogies that do not mislead


def planted() -> WordVectors:
    """Nissim et al.'s case by hand: doctor is an occupation word as near to man as to woman
    (no gender component) with a meaning of its own; nurse is an occupation word towards
    woman. man and woman differ only a little (a gender direction, dim 0), so b - a + c stays
    near doctor: without the exclusion doctor is its own analogy's answer."""
    # dims: gender (+ woman), occupation, person, doctor's own, nurse's own, fruit
    rows = {
        "man":    [-0.3, 0.0, 1.0, 0.0, 0.0, 0.0],
        "woman":  [0.3, 0.0, 1.0, 0.0, 0.0, 0.0],
        "doctor": [0.0, 1.0, 0.3, 0.8, 0.0, 0.0],
        "nurse":  [0.3, 1.0, 0.3, 0.0, 0.8, 0.0],
        "clerk":  [0.0, 0.6, 0.5, 0.0, 0.0, 0.2],
        "apple":  [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        "pear":   [0.1, 0.0, 0.1, 0.0, 0.0, 1.0],
    }
    return WordVectors(list(rows), torch.tensor(list(rows.values()), dtype=torch.float32), "planted", "planted")


def brute_force_ranking(v: WordVectors, a: str, b: str, c: str) -> list[str]:
    u = F.normalize(v.matrix, dim=1)
    target = F.normalize(u[v.index[b]] - u[v.index[a]] + u[v.index[c]], dim=0)
    cos = {w: float(u[i] @ target) for i, w in enumerate(v.words)}
    return sorted(v.words, key=lambda w: -cos[w])


def test_planted_analogy_answer_comes_from_the_exclusion():
    v = planted()
    u = F.normalize(v.matrix, dim=1)
    assert float(u[v.index["doctor"]] @ u[v.index["man"]]) == pytest.approx(
        float(u[v.index["doctor"]] @ u[v.index["woman"]]))  # doctor as near man as woman
    r = analogy(v, "man", "doctor", "woman", k=7)
    full = brute_force_ranking(v, "man", "doctor", "woman")
    assert r.words_including_queries == full[:7] and r.words_including_queries[0] == "doctor"
    assert r.words == [w for w in full if w not in ("man", "doctor", "woman")][:7] and r.answer == "nurse"
    assert len(r.words) == 4 and len(r.scores_including_queries) == 7
    assert r.scores_including_queries == sorted(r.scores_including_queries, reverse=True)
    assert r.rank_of_b_unrestricted == 1 and r.query_ranks == {w: full.index(w) + 1 for w in ("man", "doctor", "woman")}
    assert r.answer_rank_including_queries == 2
    assert r.answer_from_exclusion
    assert r.exclusion_note == ("without excluding the query words the nearest word is 'doctor' (B itself) and "
                                "'nurse' ranks #2: the analogy's answer comes from the exclusion convention, "
                                "Nissim et al. 2020")
    rows = r.rows_including_queries()
    assert rows[0] == {"rank": 1, "word": "doctor", "score": r.scores_including_queries[0], "query": "B"}
    d = r.to_dict()
    assert d["answers"][0] == {"rank": 1, "word": "nurse", "score": r.scores[0]}
    assert d["answers_including_queries"][0]["word"] == "doctor" and d["answer"] == "nurse"
    json.dumps(d)  # plain JSON
    # A sound analogy: nothing to flag.
    sound = analogy(hand_made(), "man", "king", "woman")
    assert sound.answer == "queen" and sound.words_including_queries[0] == "queen"
    assert not sound.answer_from_exclusion and sound.exclusion_note == ""
    assert sound.rank_of_b_unrestricted > 1


def test_expected_word_ranks_in_both_rankings():
    v = planted()
    full = brute_force_ranking(v, "man", "doctor", "woman")
    r = analogy(v, "man", "doctor", "woman", expect="nurse")
    assert (r.expected, r.expected_rank, r.expected_rank_including_queries) == ("nurse", 1, 2)
    assert r.expected_score == pytest.approx(r.scores[0])
    for word in ("clerk", "apple", "pear"):  # also beyond the k shown
        e = analogy(v, "man", "doctor", "woman", k=1, expect=word)
        restricted = [w for w in full if w not in ("man", "doctor", "woman")]
        assert e.expected_rank == restricted.index(word) + 1
        assert e.expected_rank_including_queries == full.index(word) + 1
    b = analogy(v, "man", "doctor", "woman", expect="Doctor")  # a query word: excluded by the convention
    assert b.expected == "doctor" and b.expected_rank is None and b.expected_rank_including_queries == 1
    with pytest.raises(InterpError, match=r"expected word \(--expect\) 'nurce' is not in the vocabulary.*"
                                          r"did you mean 'nurse'"):
        analogy(v, "man", "doctor", "woman", expect="nurce")
    with pytest.raises(InterpError, match=r"query word B 'doctr' is not in the vocabulary.*did you mean 'doctor'"):
        analogy(v, "man", "doctr", "woman")
    # A run's vocabulary drops words below min_count: the error says so.
    run_like = WordVectors(v.words, v.matrix, "run sh", "sh", corpus="Tiny Shakespeare", min_count=3)
    with pytest.raises(InterpError, match=r"query word C 'queen' is not in the vocabulary .*\(the run keeps only "
                                          r"words seen at least 3 times in the training text of Tiny Shakespeare\)"):
        analogy(run_like, "man", "doctor", "queen")


def test_rare_words_and_small_vocabulary_warn():
    base = planted()
    counts = {"man": 500, "woman": 480, "doctor": 3, "nurse": 1, "clerk": 40, "apple": 30, "pear": 25}
    v = WordVectors(base.words, base.matrix, "run shakespeare", "shakespeare", corpus="Tiny Shakespeare",
                      counts=[counts[w] for w in base.words])
    r = analogy(v, "man", "doctor", "woman")
    assert r.counts == {"man": 500, "doctor": 3, "woman": 480} and r.counts_note == ""
    assert r.warnings[0] == ("'doctor' occurs 3 times in the training text (Tiny Shakespeare): too rare for its "
                             "vector to mean much (fewer than 20 occurrences)")
    assert r.warnings[1].startswith("the vocabulary has only 7 words")
    e = analogy(v, "man", "doctor", "woman", expect="nurse")
    assert e.counts["nurse"] == 1 and "'doctor' occurs 3 times, 'nurse' occurs once" in e.warnings[0]
    assert "their vectors" in e.warnings[0]
    assert not analogy(v, "man", "clerk", "woman", rare=20).warnings[:-1]  # only the vocabulary's
    # No counts: said, never guessed.
    plain = analogy(planted(), "man", "doctor", "woman")
    assert plain.counts is None and "word counts are unknown" in plain.counts_note
    assert not any("occurs" in w for w in plain.warnings)


def test_rare_words_of_a_tiny_corpus(toy_run_dir):
    from collections import Counter

    from interp.data.words import TOY_CORPUS, tokenize
    from interp.runs import load_run

    v = WordVectors.from_run(load_run(toy_run_dir))
    counted = Counter(w for s in TOY_CORPUS for w in tokenize(s))
    assert v.word_counts() == [counted[w] for w in v.words] and v.count("king") == counted["king"] == 5
    r = analogy(v, "man", "king", "woman", expect="queen")
    assert r.counts == {"man": 5, "king": 5, "woman": 5, "queen": 5} and r.corpus == "the embedded toy corpus"
    assert r.warnings[0] == ("'man' occurs 5 times, 'king' occurs 5 times, 'woman' occurs 5 times, 'queen' occurs "
                             "5 times in the training text (the embedded toy corpus): too rare for their vectors "
                             "to mean much (fewer than 20 occurrences)")
    assert r.warnings[1].startswith(f"the vocabulary has only {len(v)} words")
    assert r.answer_from_exclusion == (r.words_including_queries[0] in ("man", "king", "woman"))


LINES = ["the doctor helps the patient", "a nurse helps the doctor", "the patient thanks the nurse"] * 8


def text_file_run(tmp_path):
    """A word2vec run on a small text file: ``(run, the file)``."""
    from interp.runs import load_run
    from interp.training.loop import train

    text = tmp_path / "corpus.txt"
    text.write_text("\n\n".join(LINES + ["a surgeon operates once"]) + "\n")
    train("word2vec", f"text:{text}", name="txt", epochs=1, root=tmp_path / "models", device="cpu",
          progress=False, log=None, overrides={"steps_per_epoch": "5"})
    return load_run(tmp_path / "models" / "txt"), text


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_counts_of_a_text_file_run(tmp_path, monkeypatch):
    import interp.pipelines.words as words_pipeline

    run, text = text_file_run(tmp_path)
    monkeypatch.setattr(words_pipeline, "COUNT_CACHE_BYTES", 0)  # the pipeline would cache even this text
    before = files_under(tmp_path)
    v = WordVectors.from_run(run)  # the analysis: counts, never caches
    assert v.count("doctor") == 16 and v.count("surgeon") == 1 and v.corpus == str(text)
    r = analogy(v, "patient", "doctor", "nurse", expect="surgeon")
    assert f"'surgeon' occurs once in the training text ({text})" in r.warnings[0]
    assert files_under(tmp_path) == before  # analysis is pure: not a file written or touched
    # A changed text is not trusted, and a missing one is said to be missing.
    text.write_text("\n\n".join(LINES[:3]) + "\n")
    changed = analogy(WordVectors.from_run(run), "patient", "doctor", "nurse")
    assert changed.counts is None and "has changed since the run was trained" in changed.counts_note
    text.unlink()
    gone = analogy(WordVectors.from_run(run), "patient", "doctor", "nurse")
    assert gone.counts is None and "is not there any more" in gone.counts_note
    assert "by frequency rank" in gone.counts_note
    with pytest.raises(InterpError, match="query word C 'nurze'.*did you mean 'nurse'"):
        analogy(v, "patient", "doctor", "nurze")


def test_the_pipeline_caches_the_counts_of_large_texts(tmp_path, monkeypatch):
    import interp.pipelines.words as words_pipeline

    run, text = text_file_run(tmp_path)
    assert words_pipeline.run_vectors(run).count("doctor") == 16
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("word-counts-*"))  # small text
    monkeypatch.setattr(words_pipeline, "COUNT_CACHE_BYTES", 0)  # cache even this small text
    v = words_pipeline.run_vectors(run)
    assert v.count("doctor") == 16 and v.count("surgeon") == 1
    cached = list((tmp_path / "cache").glob("word-counts-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["counts"] == v.word_counts()
    # The cache answers the second time (the text is not read again) ...
    with monkeypatch.context() as m:
        m.setattr("interp.data.words.load_word_corpus", lambda *a, **k: pytest.fail("recounted"))
        assert words_pipeline.run_vectors(run).word_counts() == v.word_counts()
    # ... but not for an edited text: it is counted again.
    text.write_text("\n\n".join(LINES[:3]) + "\n")
    assert words_pipeline.run_vectors(run).word_counts() is None


def test_vectors_file_counts_unknown(tmp_path):
    path = tmp_path / "mini.txt"
    p = planted()
    write_vectors(path, p.words, p.matrix)
    r = analogy(WordVectors.from_file(path), "man", "doctor", "woman")
    assert r.counts is None
    assert r.counts_note == ("word counts are unknown: a vectors file (mini.txt) records none; by frequency rank "
                             "(the list's order, most frequent first): 'man' #1, 'doctor' #3, 'woman' #2 of 7")


def test_analogy_save_load_and_older_files(tmp_path):
    r = analogy(planted(), "man", "doctor", "woman", expect="nurse")
    paths = save_result(r, tmp_path)
    assert paths["json"].name == "analogy-man-doctor-woman.json"
    assert load_result(paths["json"]) == r
    old = {"kind": "analogy", "a": "man", "b": "king", "c": "woman", "words": ["queen"], "scores": [0.9],
           "source": "old"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    back = load_result(tmp_path / "old.json")
    assert back.answer == "queen" and back.words_including_queries == [] and back.warnings == []


def test_cli_analogy_both_rankings_and_json(cli, tmp_path):
    path = tmp_path / "planted.txt"
    p = planted()
    write_vectors(path, p.words, p.matrix)
    args = ("embed", "analogy", "man", "doctor", "woman", "--vectors", str(path), "--out", str(tmp_path / "out"))
    code, out, err = cli(*args, "--expect", "nurse")
    assert code == 0, err
    assert "man is to doctor as woman is to nurse" in out
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert "A, B, C left out" in header and "nothing left out" in header
    first = next(line for line in out.splitlines() if line.startswith("1 "))
    assert first.split()[:2] == ["1", "nurse"] and "doctor (B)" in first
    assert "B 'doctor' #1" in out
    assert "Note: without excluding the query words the nearest word is 'doctor' (B itself)" in out
    assert "Nissim et al. 2020" in out and "Fair is Better than Sensational" in out
    assert "Expected 'nurse': #1 with A, B, C left out; #2 with nothing left out" in out
    assert "Word counts are unknown: a vectors file (planted.txt) records none" in out
    assert "Warning: the vocabulary has only 7 words" in out
    assert (tmp_path / "out" / "analogy-man-doctor-woman.json").exists()

    code, out, err = cli(*args, "--expect", "doctor", "--json", "--k", "3")
    assert code == 0, err
    data = json.loads(out)  # stdout is the JSON alone
    assert data["kind"] == "analogy" and data["answer"] == "nurse"
    assert [a["word"] for a in data["answers"]] == data["words"] and data["words"][0] == "nurse"
    assert data["answers_including_queries"][0] == {"rank": 1, "word": "doctor", "query": "B",
                                                    "score": data["scores_including_queries"][0]}
    assert len(data["answers"]) == 3 and data["rank_of_b_unrestricted"] == 1
    assert data["answer_from_exclusion"] is True and "exclusion convention" in data["exclusion_note"]
    assert data["expected"] == "doctor" and data["expected_rank"] is None
    assert data["expected_rank_including_queries"] == 1
    assert data["counts"] is None
    # Other settings (--expect doctor, --k 3): saved beside the first result, which is kept.
    saved = Path(data["saved"])
    assert saved.parent == tmp_path / "out" and saved.name.startswith("analogy-man-doctor-woman-")
    assert load_result(tmp_path / "out" / "analogy-man-doctor-woman.json").expected == "nurse"
    assert load_result(saved).expected == "doctor"

    code, _, err = cli(*args, "--expect", "nurce")
    assert code == 2 and "'nurce' is not in the vocabulary" in err and "did you mean 'nurse'" in err
    assert "Traceback" not in err


def test_cli_analogy_on_a_run_warns_of_rare_words(cli, toy_run_dir, tmp_path):
    code, out, err = cli("embed", "analogy", "man", "king", "woman", "--run", str(toy_run_dir), "--expect", "queen",
                         "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "Counts in the training text (the embedded toy corpus): man 5, king 5, woman 5, queen 5." in out
    assert "Warning: 'man' occurs 5 times" in out and "too rare for their vectors to mean much" in out
    assert "Expected 'queen': #" in out


def test_cli_analogy_help_ends_with_examples(cli):
    code, out, _ = cli("embed", "analogy", "--help")
    assert code == 0
    lines = out.rstrip().splitlines()
    examples = lines[lines.index("examples:") + 1:]
    assert examples and all(line.startswith("  interp embed analogy ") for line in examples)
    assert any("--expect" in line for line in examples) and any("--json" in line for line in examples)
    assert "--expect WORD" in out and "Nissim" in out


def test_report_page_shows_both_rankings(toy_run_dir, tmp_path):
    import shutil

    from interp.pipelines.report import build_report
    from interp.runs import load_run

    shutil.copytree(toy_run_dir, tmp_path / "toy")
    index = build_report(load_run(tmp_path / "toy"), out=tmp_path / "report", progress=False, log=None)
    page = (index.parent / "embeddings.html").read_text()
    assert "answers (a, b, c left out)" in page and "nearest words (nothing left out)" in page
    assert "Nissim" in page and "too rare for" in page
    summary = json.loads((tmp_path / "report" / "embeddings" / "summary.json").read_text())
    flagged = [json.loads((tmp_path / "report" / "embeddings" / name).read_text()) for name in summary["analogies"]]
    for a in flagged:
        top = a["words_including_queries"][0]
        noted = f"Note: without excluding the query words the nearest word is &#39;{top}&#39;"
        assert (noted in page) == a["answer_from_exclusion"]  # escaped by the template
        assert f"nearest word is '{top}'" not in page
        assert f"{a['a']} : {a['b']} :: {a['c']} : ?" in page
    assert any(a["answer_from_exclusion"] for a in flagged)  # b itself tops the toy analogies


# ------------------------------------------------------- results store, pipeline, report


def every_result() -> list:
    """One result of each saved kind (the report's set is built by the pipeline test below)."""
    v = hand_made()
    return [nearest_neighbors(v, "king", 3), analogy(v, "man", "king", "woman", expect="queen"),
            project(v, ["nurse", "doctor", "unicorn"], "she,he", "rich,poor"), bias_probe(v, ["nurse", "doctor"]),
            embedding_2d(v, v.words)]


def test_store_round_trip_and_describe_every_kind(tmp_path):
    import interp.results as store

    report = run_embedding_analyses(hand_made(), tmp_path / "set")
    results = every_result() + [report]
    kinds = ["neighbors", "analogy", "projection", "bias", "embedding2d", "embedding-report"]
    for result, kind in zip(results, kinds):
        path = store.save(result, tmp_path / kind)
        assert json.loads(path.read_text())["kind"] == kind
        assert store.load(path) == result
        described = store.describe(result)
        assert described["kind"] == kind
        json.dumps(described, allow_nan=False)  # plain JSON, no NaN or infinities
    assert store.describe(results[1])["answers"][0]["word"] == "queen"  # the analogy's two rankings
    assert set(kinds) <= set(store.list_kinds())
    # a .json path names the file itself
    assert store.save(results[0], tmp_path / "named" / "mine.json") == tmp_path / "named" / "mine.json"


def test_results_of_other_settings_go_beside_the_earlier_ones(tmp_path):
    v = hand_made()
    first = save_result(nearest_neighbors(v, "king", 3), tmp_path)["json"]
    again = save_result(nearest_neighbors(v, "king", 3), tmp_path)["json"]
    assert first == again == tmp_path / "neighbors-king.json"  # the same analysis: replaced in place
    other = save_result(nearest_neighbors(v, "king", 5), tmp_path)["json"]
    assert other != first and other.name.startswith("neighbors-king-")
    assert len(load_result(first).words) == 3 and len(load_result(other).words) == 5
    # a file that is not a saved result is never overwritten either
    (tmp_path / "bias-she-he.json").write_text("my notes")
    probe = save_result(bias_probe(v, ["nurse", "doctor"]), tmp_path)
    assert (tmp_path / "bias-she-he.json").read_text() == "my notes"
    assert probe["json"].name.startswith("bias-she-he-") and probe["png"].stem == probe["json"].stem


def test_ensure_reuses_the_saved_set_and_recomputes_for_other_vectors(toy_run_dir, tmp_path, monkeypatch):
    from interp.pipelines import words as pipeline
    from interp.report.registry import ReportContext
    from interp.runs import load_run

    run = load_run(toy_run_dir)
    ctx = ReportContext(run=run, root=tmp_path, log=None)
    pipeline.ensure(ctx)
    summary = load_embedding_report(tmp_path / "embeddings")
    assert summary.settings["vectors"] == WordVectors.from_run(run).fingerprint()
    monkeypatch.setattr(pipeline, "run_embedding_analyses", lambda *a, **k: pytest.fail("recomputed"))
    pipeline.ensure(ctx)  # saved with these vectors and settings: reused
    monkeypatch.undo()
    from interp.zoo.word2vec import embedding_matrix

    embedding_matrix(run.model).add_(1.0)  # other vectors (a run trained again under the same name)
    calls = []
    monkeypatch.setattr(pipeline, "run_embedding_analyses", lambda *a, **k: calls.append(a))
    pipeline.ensure(ctx)
    assert len(calls) == 1


def test_report_page_renders_from_saved_results_without_computing(toy_run_dir, tmp_path, monkeypatch):
    from interp.analysis.words import geometry
    from interp.report import ReportContext, render_report
    from interp.runs import load_run

    run = load_run(toy_run_dir)
    run_embedding_analyses(WordVectors.from_run(run), tmp_path / "embeddings")
    for name in ("nearest_neighbors", "analogy", "project", "bias_probe", "embedding_2d"):
        monkeypatch.setattr(geometry, name, lambda *a, **k: pytest.fail("the report computed"))
    monkeypatch.setattr(WordVectors, "from_run", lambda *a, **k: pytest.fail("the report loaded vectors"))
    render_report(ReportContext(run=run, root=tmp_path, log=None))
    page = (tmp_path / "embeddings.html").read_text()
    assert 'id="plot"' in page and 'id="tables"' in page and "plot-2d.png" in page
    assert "correlation, not causation" in page.lower()


def test_report_without_saved_set_names_the_command(toy_run_dir, tmp_path):
    from interp.report import ReportContext, render_report
    from interp.runs import load_run

    render_report(ReportContext(run=load_run(toy_run_dir), root=tmp_path, log=None))
    assert not (tmp_path / "embeddings.html").exists()
    assert "not computed yet: interp report --run toy" in (tmp_path / "index.html").read_text()


@pytest.mark.parametrize("args, keys", [
    (["neighbors", "king", "--k", "3"], {"word", "metric", "words", "scores"}),
    (["analogy", "man", "king", "woman"], {"a", "b", "c", "answer", "answers", "answers_including_queries"}),
    (["axes", "--x", "she,he", "--y", "rich,poor", "--words", "doctor,nurse"], {"words", "x", "y", "x_axis", "figure"}),
    (["plot", "--words", "king,queen,man"], {"words", "x", "y", "method", "explained", "figure"}),
    (["bias", "--words", "doctor,nurse"], {"axis", "pairs", "words", "scores", "figure"}),
    (["report"], {"plot", "projection", "bias", "neighbors", "analogies", "note", "settings"}),
])
def test_cli_json(cli, tmp_path, args, keys):
    path = tmp_path / "mini.txt"
    vectors = hand_made()
    write_vectors(path, vectors.words, vectors.matrix)
    code, out, err = cli("embed", *args, "--vectors", str(path), "--out", str(tmp_path / "out"), "--json")
    assert code == 0, err
    data = json.loads(out)  # stdout is the JSON alone
    assert keys <= set(data) and data["kind"]
    assert Path(data["saved"]).exists() and Path(data["saved"]).parent == tmp_path / "out"
    if "figure" in keys:
        assert Path(data["figure"]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("verb", ["neighbors", "analogy", "axes", "plot", "bias", "report"])
def test_cli_help_has_a_json_example(cli, verb):
    code, out, _ = cli("embed", verb, "--help")
    assert code == 0 and "--json" in out
    examples = out[out.rindex("examples:"):].splitlines()[1:]
    assert examples and all(line.startswith(f"  interp embed {verb} ") for line in examples if line.strip())
    assert any(line.rstrip().endswith("--json") for line in examples)
