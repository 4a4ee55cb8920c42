"""Word-vector analyses: neighbours, analogies, word2viz axes, bias probe, plots, vectors files, CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from interp.analysis import embeddings as E
from interp.data.words import read_vectors, write_vectors
from interp.errors import InterpError


def hand_made() -> E.WordVectors:
    """Planted structure: a gender axis (dim 0), a royalty axis (dim 1), and unrelated words."""
    rows = {
        "man": [-1, 0, 0.1, 0], "woman": [1, 0, 0.1, 0],
        "king": [-1, 1, 0.1, 0], "queen": [1, 1, 0.1, 0],
        "boy": [-1, 0, -0.5, 0], "girl": [1, 0, -0.5, 0],
        "she": [1, 0, 0, 0.2], "he": [-1, 0, 0, 0.2],
        "rich": [0, 0.2, 0, 1], "poor": [0, 0.2, 0, -1],
        "nurse": [0.6, 0, 0, -0.3], "doctor": [-0.4, 0, 0, 0.5], "apple": [0, 0, 1, 0],
    }
    return E.WordVectors(list(rows), torch.tensor(list(rows.values()), dtype=torch.float32), "hand-made", "hand")


def test_analogy_on_hand_made_vectors():
    v = hand_made()
    result = E.analogy(v, "man", "king", "woman")
    assert result.answer == "queen"
    assert {"man", "king", "woman"}.isdisjoint(result.words)
    assert E.analogy(v, "man", "woman", "king").answer == "queen"
    assert E.analogy(v, "king", "queen", "man").answer == "woman"


def test_analogy_and_neighbors_match_brute_force():
    g = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(50)]
    v = E.WordVectors(words, torch.randn(50, 8, generator=g), "random", "random")
    u = v.matrix / v.matrix.norm(dim=1, keepdim=True)
    target = u[3] - u[1] + u[7]
    scores = {w: float(u[i] @ target / target.norm()) for i, w in enumerate(words) if i not in (1, 3, 7)}
    best = sorted(scores, key=scores.get, reverse=True)[:5]
    result = E.analogy(v, "w1", "w3", "w7", k=5)
    assert result.words == best
    assert result.scores == pytest.approx([scores[w] for w in best], abs=1e-5)
    near = E.nearest_neighbors(v, "w4", k=4)
    cos = {w: float(u[i] @ u[4]) for i, w in enumerate(words) if i != 4}
    assert near.words == sorted(cos, key=cos.get, reverse=True)[:4]
    far = E.nearest_neighbors(v, "w4", k=3, metric="euclidean")
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
    v = E.WordVectors(words, matrix, "random", "random")
    assert E.analogy(v, "w1", "w2", "w3", k=5).words == [w for w, _ in kv.most_similar(
        positive=["w2", "w3"], negative=["w1"], topn=5)]
    assert E.nearest_neighbors(v, "w5", k=5).words == [w for w, _ in kv.most_similar("w5", topn=5)]
    assert gensim.__version__


def test_projection_maths():
    v = hand_made()
    p = E.project(v, ["nurse", "doctor", "apple", "unicorn"], x="she,he", y="rich,poor")
    u = F.normalize(v.matrix, dim=1)
    axis = u[v.index["she"]] - u[v.index["he"]]
    expected = float(u[v.index["nurse"]] @ axis / axis.norm())
    assert p.words == ["nurse", "doctor", "apple"] and p.skipped == ["unicorn"]
    assert p.x[0] == pytest.approx(expected, abs=1e-6)
    assert p.x[0] > 0 > p.x[1] and p.x[2] == pytest.approx(0, abs=1e-6)
    assert p.y[1] > 0 > p.y[0]
    # Several pairs: the mean of the differences.
    two = E.make_axis(v, "she,he;woman,man")
    mean = ((u[v.index["she"]] - u[v.index["he"]]) + (u[v.index["woman"]] - u[v.index["man"]])) / 2
    assert torch.allclose(two.direction, mean)
    assert two.pairs == [("she", "he"), ("woman", "man")]


def test_axis_errors_name_the_missing_word():
    v = hand_made()
    with pytest.raises(InterpError, match=r"'shee' is not in the vocabulary.*did you mean 'she'"):
        E.make_axis(v, "shee,he")
    with pytest.raises(InterpError, match="not a word pair"):
        E.parse_axis("she,he,it")
    with pytest.raises(InterpError, match="empty"):
        E.parse_axis(" ; ")
    # Presets keep the pairs the vocabulary has, and fail only when none is left.
    assert E.make_axis(v, "she,he;female,male", lenient=True).pairs == [("she", "he")]
    with pytest.raises(InterpError, match="none of its pairs"):
        E.make_axis(v, "female,male", lenient=True)
    with pytest.raises(InterpError, match="unknown preset 'job'; did you mean 'jobs'"):
        E.preset_projection(v, "job")


def test_unknown_word_suggests_close_words():
    v = hand_made()
    with pytest.raises(InterpError, match=r"word 'kng' is not in the vocabulary of hand-made \(13 words\); "
                                          r"did you mean 'king'"):
        E.nearest_neighbors(v, "kng")
    assert E.nearest_neighbors(v, "King").word == "king"  # case-folded lookup


def test_bias_probe_orders_by_the_axis():
    v = hand_made()
    probe = E.bias_probe(v, ["doctor", "nurse", "apple", "pilot"])
    assert probe.words == ["nurse", "apple", "doctor"] and probe.skipped == ["pilot"]
    assert probe.scores == sorted(probe.scores, reverse=True)


def test_embedding_2d_raw_and_pca():
    v2 = E.WordVectors(["a", "b", "c"], torch.tensor([[0.0, 1.0], [2.0, 3.0], [-1.0, 0.5]]), "t", "t")
    raw = E.embedding_2d(v2, ["a", "b", "c"])
    assert raw.method == "raw" and raw.x == [0.0, 2.0, -1.0] and raw.y == [1.0, 3.0, 0.5]
    v = hand_made()
    pca = E.embedding_2d(v, v.words)
    centred = v.matrix - v.matrix.mean(0)
    s = torch.linalg.svdvals(centred)
    assert pca.method == "pca" and pca.explained == pytest.approx((s[:2] ** 2 / (s ** 2).sum()).tolist(), abs=1e-5)
    coords = torch.tensor([pca.x, pca.y]).T
    assert torch.allclose(coords.pow(2).sum(0), s[:2] ** 2, atol=1e-4)  # projections onto the components


def test_save_load_and_plots(tmp_path):
    v = hand_made()
    for result in (E.analogy(v, "man", "king", "woman"), E.nearest_neighbors(v, "king"),
                   E.project(v, ["nurse", "doctor"], "she,he", "rich,poor"), E.bias_probe(v, ["nurse", "doctor"]),
                   E.embedding_2d(v, v.words)):
        paths = E.save_result(result, tmp_path)
        assert E.load_result(paths["json"]) == result
        if "png" in paths:
            assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
    with pytest.raises(InterpError, match="not a saved embedding result"):
        (tmp_path / "bad.json").write_text("{}")
        E.load_result(tmp_path / "bad.json")


def test_report_set_from_vectors(tmp_path):
    report = E.run_embedding_analyses(hand_made(), tmp_path / "emb")
    assert report.plot == "plot-2d.png" and (tmp_path / "emb" / report.plot).exists()
    assert report.bias and report.projection
    assert "correlation, not causation" in report.note
    assert E.load_embedding_report(tmp_path / "emb") == report


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
    vectors = E.WordVectors.from_file(out)
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
    from interp.train import train

    root = tmp_path_factory.mktemp("models")
    train("word2vec", name="toy", epochs=2, root=root, device="cpu", progress=False, log=None,
          overrides={"steps_per_epoch": "50"})
    return root / "toy"


def test_from_run_and_no_hooks(toy_run_dir):
    from interp.hooks import hook_count
    from interp.runs import load_run

    run = load_run(toy_run_dir)
    v = E.WordVectors.from_run(run)
    assert v.dim == 2 and "king" in v and v.name == "toy"
    E.run_embedding_analyses(v, toy_run_dir.parent / "out")
    assert hook_count(run.model) == 0


def test_cli_commands(cli, toy_run_dir, tmp_path):
    run = str(toy_run_dir)
    code, out, err = cli("embed", "neighbors", "king", "--run", run, "--metric", "euclidean", "--k", "3")
    assert code == 0, err
    assert "prince" in out and "neighbors-king.json" in out
    code, out, _ = cli("embed", "analogy", "man", "king", "woman", "--run", run)
    assert code == 0 and "man is to king as woman is to" in out
    code, out, _ = cli("embed", "plot", "--run", run, "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "plot-2d.png").exists()
    code, out, _ = cli("embed", "axes", "--preset", "royalty", "--run", run, "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "axes-royalty.png").exists()
    code, out, _ = cli("embed", "axes", "--x", "royal,common", "--words", "king,man,dragon", "--run", run,
                       "--out", str(tmp_path))
    assert code == 0 and "left out): dragon" in out
    code, out, _ = cli("embed", "report", "--run", run, "--out", str(tmp_path / "rep"))
    assert code == 0 and (tmp_path / "rep" / "summary.json").exists()
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["plot"] == "plot-2d.png"


def test_cli_vectors_file(cli, tmp_path):
    path = tmp_path / "mini.txt"
    vectors = hand_made()
    write_vectors(path, vectors.words, vectors.matrix)
    code, out, err = cli("embed", "bias", "--vectors", str(path), "--out", str(tmp_path))
    assert code == 0, err
    assert out.index("nurse") < out.index("doctor") and (tmp_path / "bias-she-he.png").exists()
    code, out, _ = cli("embed", "axes", "--x", "she,he", "--y", "rich,poor", "--words", "doctor,nurse",
                       "--vectors", str(path), "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "axes-she-he--rich-poor.png").exists()


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
    code, _, err = cli("embed", *args, "--vectors", str(path), "--out", str(tmp_path))
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
