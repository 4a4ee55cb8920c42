"""Gold pages: the report of tiny, fully seeded runs, compared with stored HTML.

The report is rendered with :func:`interp.report.render_report` from saved results only
(the results are computed once, by ``build_report``, then copied without their pages),
scrubbed of the values that change between runs or machines (:func:`scrub`), and compared
line by line with ``tests/report/gold/RUN/PAGE``. A difference fails with a unified diff.

When a page changes on purpose, regenerate the gold files and review them::

    INTERP_UPDATE_GOLD=1 OMP_NUM_THREADS=1 python -m pytest -q tests/report/test_report_gold.py
    git diff tests/report/gold

The gold files compare structure and text, not pictures: pages link their PNGs by relative
path (no data URIs), and the PNGs themselves are left to test_report.py's determinism test.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from pathlib import Path

import pytest

from interp.io import write_text
from interp.report import ReportContext, render_report
from interp.runs import load_run

GOLD = Path(__file__).parent / "gold"
UPDATE = os.environ.get("INTERP_UPDATE_GOLD") == "1"
REGENERATE = "INTERP_UPDATE_GOLD=1 OMP_NUM_THREADS=1 python -m pytest -q tests/report/test_report_gold.py"

# One page of each kind the runs have: model pages, conv and linear layer pages, a first-layer
# unit (RGB filter), a conv unit (linked inputs, neuron view, diversity row), a hidden linear unit
# (output units, classes), attribution, claims; a language model's home and transformer pages;
# a word-embedding page.
PAGES = {
    "tiny": ["index.html", "conv1/index.html", "conv1/0.html", "conv2/index.html", "conv2/5.html",
             "fc1/7.html", "fc3/index.html", "attribution.html", "claims.html"],
    "ind": ["index.html", "transformer.html"],
    "w2v": ["embeddings.html"],
}

# ------------------------------------------------------------------------------ scrubbing

# Which values vary was checked by building the tiny report twice, in two fresh folders
# (and rendering it again with another PYTHONHASHSEED): on one machine every page is
# byte-identical except the training time. Between machines, package versions differ,
# and so can the last bits of every float (BLAS and oneDNN pick kernels by CPU), so every
# decimal number, exponent and percentage becomes "N" (bar widths, drawn from percentages,
# become "Npx"). Integers are kept: unit indices, counts, ranks, shapes and verdicts
# come from the seeded run and only move when a computation really changes.
_VERSIONS = re.compile(r"<br>(?:[A-Za-z][\w.-]* \d[^\s·<]*(?: · |(?=</p>)))+</p>")
_BAR = re.compile(r'(class="bar" style="width: )\d+px')
_PERCENT = re.compile(r"[-−]?\d[\d,]*(?:\.\d+)?%")
_FLOAT = re.compile(r"(?<![\w.])[-−]?(?:\d[\d,]*\.\d+(?:e[+-]?\d+)?|\d+e[+-]\d+)(?!\w|\.?\d)")
# A line break before these tags, so a long generated line (a table row by row) diffs readably.
_BREAK_BEFORE = re.compile(r"(?<=\S)[ \t]*(?=<(?:tr|p|section|details|div|li|table|h\d)[\s>])")


def scrub(html: str) -> str:
    """The page with its volatile values replaced and one line per block-level tag.

    >>> scrub('<p>Trained for 1.8 s on cpu.<br>torch 2.14.1 · numpy 2.4.6</p>')
    '<p>Trained for N s on cpu.<br>VERSIONS</p>\\n'
    """
    html = _VERSIONS.sub("<br>VERSIONS</p>", html)
    html = _BAR.sub(r"\1Npx", html)
    html = _PERCENT.sub("N%", html)
    html = _FLOAT.sub("N", html)
    html = _BREAK_BEFORE.sub("\n", html)
    return "\n".join(line.rstrip() for line in html.splitlines()) + "\n"


def check_gold(name: str, rendered: str, gold_dir: Path = GOLD, update: bool = UPDATE) -> None:
    """Compare the scrubbed page ``rendered`` with ``gold_dir/name`` (or write it when ``update``)."""
    gold = gold_dir / name
    actual = scrub(rendered)
    if update:
        gold.parent.mkdir(parents=True, exist_ok=True)
        write_text(gold, actual)
        return
    if not gold.is_file():
        pytest.fail(f"no gold page {gold}; write it with: {REGENERATE}", pytrace=False)
    expected = gold.read_text()
    if actual == expected:
        return
    diff = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(), f"gold/{name}",
                                     f"rendered/{name}", n=2, lineterm=""))
    shown = "\n".join(diff[:40]) + (f"\n... ({len(diff) - 40} more diff lines)" if len(diff) > 40 else "")
    pytest.fail(f"{name} differs from its gold page:\n{shown}\n\nIf the change is intended, regenerate "
                f"the gold pages and review them:\n    {REGENERATE}\n    git diff tests/report/gold", pytrace=False)


# ------------------------------------------------------------------------------ the runs


def render_from_saved(run, results: Path, out: Path, **settings) -> Path:
    """Copy a report folder's saved results (not its pages) to ``out`` and render the report there."""
    shutil.copytree(results, out, ignore=shutil.ignore_patterns("*.html"))
    render_report(ReportContext(run=run, root=out, progress=False, log=None, **settings))
    return out


@pytest.fixture(scope="module")
def rendered(tiny_run_dir, tiny_report, tmp_path_factory) -> dict[str, Path]:
    """Report folders rendered from saved results: the tiny CNN (16 steps), an attention-only
    transformer (5 steps of induction data) and a word2vec model (40 steps)."""
    from interp.pipelines.report import build_report
    from interp.training.loop import train

    root = tmp_path_factory.mktemp("gold")
    folders = {"tiny": render_from_saved(load_run(tiny_run_dir), tiny_report.parent, root / "tiny", steps=16)}
    with pytest.MonkeyPatch.context() as mp:  # module scope: conftest's per-test folders are not set yet
        for kind in ("models", "reports", "cache", "data"):
            mp.setenv(f"INTERP_{kind.upper()}_DIR", str(root / kind))
        for name, model, data, epochs, overrides in (
                ("ind", "attn-only", "induction", 1, {"steps_per_epoch": "5", "n_embd": "32", "n_head": "2"}),
                ("w2v", "word2vec", "toy-royalty", 2, {"steps_per_epoch": "20"})):
            run = train(model, data, name=name, epochs=epochs, root=root / "models", device="cpu", seed=0,
                        progress=False, log=None, overrides=overrides)
            built = build_report(run, out=root / "built" / name, progress=False, log=None)
            folders[name] = render_from_saved(run, built.parent, root / name)
    return folders


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("page", [f"{run}/{page}" for run, pages in PAGES.items() for page in pages])
def test_page_matches_gold(rendered, page):
    run, path = page.split("/", 1)
    check_gold(page, (rendered[run] / path).read_text())


def test_every_gold_page_is_checked():
    """A gold page no test compares (a page renamed or dropped) is stale."""
    stored = sorted(p.relative_to(GOLD).as_posix() for p in GOLD.rglob("*.html"))
    assert stored == sorted(f"{run}/{page}" for run, pages in PAGES.items() for page in pages)


def test_scrub_replaces_volatile_values_and_keeps_the_rest():
    page = ('<p class="muted">\nTrained for 12.3 s on cpu.<br>captum 0.9.0 · torch 2.14.1+cpu</p>'
            '<tr><td>edge</td><td class="num">64.0%</td><td><span class="bar" style="width: 77px"></span></td></tr>'
            '<td class="num">-0.077</td><td>8.57e-04</td><td>1e-05</td><td>2,416</td><p>seed 0, lr 0.05.</p>'
            '<img src="featvis/conv2-channel-16steps-seed0-neg/5.png"><a href="../conv1/3.html">conv1:3</a>')
    out = scrub(page)
    for volatile in ("12.3", "0.9.0", "2.14.1", "64.0", "77px", "0.077", "8.57", "1e-05"):
        assert volatile not in out, volatile
    assert "Trained for N s on cpu.<br>VERSIONS</p>" in out and "seed 0, lr N.</p>" in out
    assert '<td class="num">N%</td>' in out and 'width: Npx' in out and '<td class="num">N</td>' in out
    for kept in ("2,416", "conv2-channel-16steps-seed0-neg/5.png", "../conv1/3.html", "conv1:3"):
        assert kept in out, kept
    assert out.count("\n<tr>") == 1  # one row, on a line of its own


def test_a_changed_page_fails_with_a_diff_and_how_to_regenerate(tmp_path):
    page = "<h1>Layer conv1</h1>\n<p>6 units</p>\n"
    check_gold("run/page.html", page, gold_dir=tmp_path, update=True)
    check_gold("run/page.html", page, gold_dir=tmp_path, update=False)  # unchanged: passes
    with pytest.raises(pytest.fail.Exception) as failed:
        check_gold("run/page.html", page.replace("6 units", "7 units"), gold_dir=tmp_path, update=False)
    message = str(failed.value)
    assert "-<p>6 units</p>" in message and "+<p>7 units</p>" in message
    assert "INTERP_UPDATE_GOLD=1" in message
