"""The static report: structure, escaping, no network, atomic writes, determinism."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from interp.pipelines.report import build_report
from interp.runs import load_run

XSS = "<script>alert(1)</script>"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.urls.append((tag, value))


def page_urls(html: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


def check_static_and_linked(root: Path) -> list[Path]:
    """Every src/href is relative (or data:/#anchor) and points to a file inside the report."""
    pages = sorted(root.rglob("*.html"))
    assert pages
    for page in pages:
        for tag, url in page_urls(page.read_text()):
            assert not re.match(r"^[a-z]+:", url) or url.startswith("data:"), (page, url)
            assert not url.startswith("//") and not url.startswith("/"), (page, url)
            if url.startswith(("#", "data:")):
                continue
            target = (page.parent / url.split("#")[0]).resolve()
            assert target.is_file(), f"{page.relative_to(root)} links to missing {url}"
            assert root.resolve() in target.parents, (page, url)
    return pages


@pytest.fixture
def report_run(tiny_run_dir, tmp_path):
    import shutil

    dst = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_run_dir, dst)
    return load_run(dst)


def test_report_structure(tiny_report):
    index = tiny_report
    root = index.parent
    html = index.read_text()
    for section in ('id="architecture"', 'id="training"', 'id="accuracy"', 'id="layers"'):
        assert section in html
    for layer in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        assert f'href="{layer}/index.html"' in html
    assert (root / "figures" / "training.png").stat().st_size > 1000
    assert (root / "style.css").is_file()
    # every unit of every layer has a page, linked from its layer page
    for layer, units in (("conv1", 6), ("conv2", 16), ("fc1", 120), ("fc2", 84), ("fc3", 10)):
        layer_html = (root / layer / "index.html").read_text()
        for u in range(units):
            assert (root / layer / f"{u}.html").is_file()
            assert f'href="{u}.html"' in layer_html
    unit = (root / "conv2" / "5.html").read_text()
    for section in ("featvis", "examples", "weights", "outputs", "classes"):
        assert f'id="{section}"' in unit, section
    assert "neuron (centre position)" in unit and "negative (minimise)" in unit and "Diversity" in unit
    assert 'href="../conv1/' in unit  # top input units link to conv1's unit pages
    assert 'href="../fc1/' in unit  # output units link to fc1's unit pages
    assert 'href="4.html"' in unit and 'href="6.html"' in unit  # prev / next
    first = (root / "conv1" / "0.html").read_text()
    assert "The filter as an RGB image" in first
    assert 'id="trust"' in (root / "attribution.html").read_text()
    claims = (root / "claims.html").read_text()
    assert 'id="claim-gabor-first-layer"' in claims and "verdict" in claims
    check_static_and_linked(root)


def test_user_strings_are_escaped(report_run):
    config = json.loads((report_run.path / "config.json").read_text())
    config["data"]["classes"][0] = XSS
    (report_run.path / "config.json").write_text(json.dumps(config))
    summary = json.loads((report_run.path / "summary.json").read_text())
    summary["classes"][0] = XSS
    (report_run.path / "summary.json").write_text(json.dumps(summary))
    index = build_report(load_run(report_run.path), progress=False, log=None, steps=16, layers=["conv1"])
    for page in index.parent.rglob("*.html"):
        assert XSS not in page.read_text(), page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index.read_text()


def test_interrupted_build_leaves_previous_report(report_run, tiny_report, monkeypatch):
    import shutil

    index = report_run.report_dir() / "index.html"
    shutil.copytree(tiny_report.parent, index.parent)  # a finished report; its results are reused below
    before = {p: p.read_bytes() for p in index.parent.rglob("*") if p.is_file()}

    from interp.report import registry

    def explode(ctx):
        (ctx.root / "index.html").write_text("half-written")
        raise KeyboardInterrupt

    real = registry.load_contributors
    monkeypatch.setattr(registry, "load_contributors", lambda: real() + [explode])
    import interp.report as report_pkg

    monkeypatch.setattr(report_pkg, "load_contributors", registry.load_contributors)
    with pytest.raises(KeyboardInterrupt):
        build_report(report_run, progress=False, log=None, steps=16)
    after = {p: p.read_bytes() for p in index.parent.rglob("*") if p.is_file()}
    assert after == before
    leftovers = [p.name for p in index.parent.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_report_is_deterministic(report_run, tiny_report, tmp_path):
    """Pages and pictures are byte-identical; only the results' JSON may record timings."""
    a = tiny_report.parent
    b = build_report(report_run, out=tmp_path / "b", progress=False, log=None, steps=16).parent
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    compared = [rel for rel in files_a if rel.suffix in (".html", ".png", ".css")]
    assert len(compared) > 50
    for rel in compared:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_report_cli(cli, report_run):
    code, out, err = cli("report", "--run", str(report_run.path), "--steps", "16", "--layers", "conv1",
                         "--no-progress")
    assert code == 0, err
    assert "index.html" in out
    code, _, err = cli("report", "--run", str(report_run.path), "--layers", "conv9")
    assert code == 2 and "unknown layer 'conv9'" in err


def test_zoo_page(cli, tmp_path):
    code, out, err = cli("zoo", "--epochs", "1", "--only", "tutorial-k3,mlp-small", "--set", "n_train=200",
                         "--set", "n_test=50", "--no-progress", "--device", "cpu")
    assert code == 0, err
    index = tmp_path / "reports" / "zoo" / "index.html"
    html = index.read_text()
    assert "tutorial-k3" in html and "mlp-small" in html
    assert "filters_tutorial-k3.png" in html and "filters_mlp-small" not in html  # an MLP has no conv filters
    check_static_and_linked(index.parent)


def test_embedding_run_report(tmp_path):
    from interp.training.loop import train

    run = train("word2vec", "toy-royalty", name="w2v", epochs=2, device="cpu", progress=False, log=None,
                overrides={"steps_per_epoch": "20"})
    index = build_report(run, progress=False, log=None)
    page = (index.parent / "embeddings.html").read_text()
    for section in ('id="plot"', 'id="tables"', 'id="caveat"'):
        assert section in page
    assert "correlation, not causation" in page.lower()
    home = index.read_text()
    assert 'href="embeddings.html"' in home
    # no unit-level layers: the architecture lists the modules, the data its vocabulary
    assert "<td>hidden</td><td>Linear</td>" in home and "<td>output</td><td>Linear</td>" in home
    assert "<td>vocabulary</td>" in home and "<td>classes</td>" not in home
    assert "word2vec (word2vec)" not in home
    check_static_and_linked(index.parent)


def test_transformer_run_report(tmp_path):
    from interp.training.loop import train

    run = train("attn-only", "induction", name="ind", epochs=1, device="cpu", progress=False, log=None,
                overrides={"steps_per_epoch": "5", "n_embd": "32", "n_head": "2"})
    index = build_report(run, progress=False, log=None)
    page = (index.parent / "transformer.html").read_text()
    for section in ('id="heads"', 'id="attention"', 'id="circuits"', 'id="ablation"', 'id="position"'):
        assert section in page, section
    assert "L1H1" in page
    assert 'href="transformer.html"' in index.read_text()
    assert "<td>blocks.0</td>" in index.read_text()
    check_static_and_linked(index.parent)
