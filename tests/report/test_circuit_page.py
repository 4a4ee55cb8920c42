"""The circuit page: rendered from a saved circuit only, escaped, static, and clean in a real browser."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from test_report import page_urls
from test_report_browser import browser, watch  # noqa: F401  (browser: the module's headless Chromium fixture)

from interp.analysis.causal.circuit import find_circuit
from interp.io import encode_png, write_bytes, write_json
from interp.report import ReportContext, render_report
from interp.report.circuit_pages import MAX_DRAWN
from interp.results.circuits import save_circuit
from interp.runs import load_run

HOSTILE = "<img src=x onerror=alert(1)>"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def circuit_report(tiny_run_dir, tmp_path):
    """A report folder holding one saved circuit of a run with a hostile name and class name, a
    feature visualisation of conv2 (as ``interp visualize`` saves it) and unit pages for conv2."""
    run_dir = tmp_path / "models" / HOSTILE
    shutil.copytree(tiny_run_dir, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["classes"][0] = XSS
    (run_dir / "config.json").write_text(json.dumps(config))
    run = load_run(run_dir)
    root = tmp_path / "report"
    result = find_circuit(run, clean=XSS, corrupted=run.classes[1], n=8, n_random=3,
                          layers=["conv1", "conv2", "fc1"], top=50)
    save_circuit(result, root / "circuits" / "eap-logit-diff")
    units = {}
    for u in range(16):
        write_bytes(root / "featvis" / "conv2" / f"unit_{u:04d}.png",
                    encode_png(torch.full((8, 8, 3), 16 * u, dtype=torch.uint8)))
        units[str(u)] = {"images": [f"unit_{u:04d}.png"], "values": [1.0]}
    write_json(root / "featvis" / "conv2" / "index.json", {"kind": "featvis", "layer": "conv2", "units": units})
    ctx = ReportContext(run=run, root=root, progress=False, log=None)
    for u in range(16):
        ctx.page(f"conv2/{u}.html", f"conv2:{u}")
    render_report(ctx)   # every contributor: the circuit one is registered
    return root, result


def test_the_page_draws_the_circuit_from_the_saved_result(circuit_report):
    root, result = circuit_report
    page = (root / "circuits" / "eap-logit-diff.html").read_text()
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count('<line class="edge"') == min(MAX_DRAWN, result.size)
    widths = [float(w) for w in re.findall(r'<line class="edge"[^>]*stroke-width="([0-9.]+)"', svg)]
    assert max(widths) == 9.0 and min(widths) < max(widths)            # width ~ |score|
    strongest = result.edges[0]
    assert f"<title>{strongest.source}-&gt;{strongest.target}:" in svg
    assert 'href="../featvis/conv2/unit_' in svg                      # nodes drawn as their feature visualisation
    assert 'href="../conv2/' in svg                                   # and linked to their unit pages
    assert 'id="faithfulness"' in page and 'src="eap-logit-diff/faithfulness.png"' in page
    assert "random" in page and "95% quantile" in page
    listing = (root / "circuits.html").read_text()
    assert 'href="circuits/eap-logit-diff.html"' in listing
    assert 'href="circuits.html"' in (root / "index.html").read_text()
    for html in (root / "circuits.html", root / "circuits" / "eap-logit-diff.html"):
        urls = page_urls(html.read_text())
        for _tag, url in urls:
            if url.startswith("#"):
                continue
            assert not re.match(r"^[a-z]+:|^/", url), (html, url)             # relative only
            target = (html.parent / url.split("#")[0]).resolve()
            assert target.is_file() and root.resolve() in target.parents, f"{html.name}: missing {url}"


def test_user_strings_are_escaped_and_nothing_is_remote(circuit_report):
    root, _ = circuit_report
    pages = list(root.rglob("*.html"))
    for page in pages:
        html = page.read_text()
        assert HOSTILE not in html and XSS not in html, page
        assert not re.search(r"https?://", html), page
    circuit = (root / "circuits" / "eap-logit-diff.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in circuit
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (root / "circuits.html").read_text()


@pytest.mark.browser
def test_the_page_opens_in_chromium_without_errors(circuit_report, browser):  # noqa: F811
    root, result = circuit_report
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems = watch(page)
    for name in ("circuits/eap-logit-diff.html", "circuits.html"):
        page.goto((root / name).as_uri())
        page.wait_for_load_state("load")
    page.goto((root / "circuits" / "eap-logit-diff.html").as_uri())
    page.wait_for_load_state("load")
    assert page.evaluate("() => document.querySelectorAll('svg.circuit line.edge').length") == min(MAX_DRAWN,
                                                                                                 result.size)
    box = page.evaluate("() => { const b = document.querySelector('svg.circuit').getBoundingClientRect(); "
                        "return [b.width, b.height]; }")
    assert box[0] > 300 and box[1] > 200
    loaded = page.evaluate("() => Array.from(document.querySelectorAll('svg.circuit image')).map(i => "
                           "i.getBBox().width)")
    assert loaded and all(w > 0 for w in loaded)
    broken = page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [] and problems == []


def test_a_graph_of_named_nodes_is_laid_out_by_its_columns():
    """A transformer-like saved circuit: edges into a head's key input end at the head, columns
    come from the result, hostile node names stay text."""
    from interp.report.circuit_pages import diagram

    index = {"layers": ["embed", "layer 0", "logits"], "nodes": [["embed"], ["L0H0", XSS], ["logits"]], "size": 3,
             "circuit": [{"edge": "embed->L0H0.k", "source": "embed", "target": "L0H0.k", "score": -2.0},
                         {"edge": "L0H0->logits", "source": "L0H0", "target": "logits", "score": 1.0},
                         {"edge": f"{XSS}->logits", "source": XSS, "target": "logits", "score": 0.5}]}
    d = diagram(index, lambda node: None, {})
    assert [c["label"] for c in d["columns"]] == ["embed", "layer 0", "logits"]
    x = {n["id"]: n["x"] for n in d["nodes"]}
    assert set(x) == {"embed", "L0H0", XSS, "logits"} and x["embed"] < x["L0H0"] == x[XSS] < x["logits"]
    widths = {e["title"].split(":")[0]: e["width"] for e in d["edges"]}
    assert widths["embed->L0H0.k"] == 9.0 and widths["L0H0->logits"] == 4.5
    assert {e["colour"] for e in d["edges"] if e["title"].startswith("embed")} == {"#b2182b"}   # negative: red
