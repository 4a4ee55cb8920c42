"""Open every page of a tiny run's report in a real headless Chromium (Debian's package)."""

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def watch(page) -> list[str]:
    """What goes wrong on ``page`` from now on (console errors, page errors, failed or network
    requests, dialogs), collected into the list returned."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    page.on("request", lambda r: None if r.url.startswith(("file://", "data:")) else problems.append(
        f"network request: {r.url}"))
    page.on("dialog", lambda d: problems.append(f"dialog opened: {d.message}"))
    return problems


def test_every_page_loads_cleanly(browser, tiny_report):
    index = tiny_report
    root = index.parent
    pages = sorted(root.rglob("*.html"))
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems = watch(page)
    for html in pages:
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        broken = page.evaluate(
            "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        problems += [f"{html.name}: broken image {src}" for src in broken]
        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        for href in hrefs:
            target = href.split("#")[0]
            assert target.startswith("file://"), (html, href)
            assert Path(target[len("file://"):]).is_file(), f"{html}: dead link {href}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(index.as_uri())
    page.screenshot(path=str(ARTIFACTS / "report-index.png"), full_page=True)
    assert problems == []
