"""report.html: one self-contained file — charts embedded, nothing fetched, raw HTML escaped.

The unit tests read the file as text; the end-to-end test opens the report of a real smoke
run (the session's shared one, see conftest.py) in the system's headless Chromium (never a
downloaded browser), recording every request the page makes.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from analysis_fixtures import FakeRun, make_run
from conftest import SharedRun

from harness import schema
from harness.charts.paths import CAPTIONS, OVERVIEW_CAPTION
from harness.report.build import build_all
from harness.report.html import render_html, write_html
from harness.report.markdown import headline
from harness.results.folder import load

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHART_LINK = re.compile(r"!\[[^\]]*\]\((charts/[^)]+\.png)\)")


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def chart_links(run_dir: Path) -> list[str]:
    return CHART_LINK.findall((run_dir / schema.REPORT_MD).read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> FakeRun:
    run = make_run(tmp_path_factory.mktemp("html"), measurement=True, cpu_scenario=True)
    build_all(run.run_dir)
    return run


def test_report_html_is_one_self_contained_file(built: FakeRun) -> None:
    html = (built.run_dir / schema.REPORT_HTML).read_text()
    tags = parse(html)
    for tag, attrs in tags.tags:
        for name in ("src", "href"):
            value = attrs.get(name, "")
            assert not value.lower().startswith(("http://", "https://", "//")), (tag, value)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not [tag for tag, _ in tags.tags if tag in ("script", "link", "iframe", "object")]
    images = [attrs["src"] for tag, attrs in tags.tags if tag == "img"]
    links = chart_links(built.run_dir)
    assert len(images) == len(links) > 10
    assert all(src.startswith("data:image/png;base64,") for src in images)
    # Each image is the chart report.md links, byte for byte, in the same order.
    for src, link in zip(images, links, strict=True):
        assert base64.b64decode(src.split(",", 1)[1]) == (built.run_dir / link).read_bytes()
    csp = [
        a for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_report_html_has_the_report_with_captions_and_contents(built: FakeRun) -> None:
    html = (built.run_dir / schema.REPORT_HTML).read_text()
    text = " ".join("".join(parse(html).text).split())
    assert "Findings by scenario" in text and "Generator-bound cells" in text
    assert (
        "At 100 users on io, fastapi-uvicorn served 1,890.0 rps, 24.5× flask-gunicorn-sync" in text
    )
    for caption in [*CAPTIONS.values(), OVERVIEW_CAPTION]:
        assert f"<figcaption>{caption}</figcaption>" in html, caption
    assert html.count("<figure>") == len(chart_links(built.run_dir))
    assert '<div class="toc">' in html and 'href="#findings-by-scenario"' in html
    assert '<td class="num">1,890.0</td>' in html  # numbers right-aligned
    assert "@media print" in html


def test_raw_html_and_links_elsewhere_are_neutralised(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    path = run.run_dir / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["scenarios"]["io"]["description"] = (
        "Waits <script>alert(1)</script> [see the docs](https://example.com/docs) "
        "![remote](https://example.com/x.png) <img src=http://example.com/y.png>"
    )
    failed = next(c for c in manifest["cells"] if c["status"] == schema.STATUS_FAILED)
    failed["error"] = '<iframe src="https://example.com/z"></iframe> broke'
    path.write_text(json.dumps(manifest))
    build_all(run.run_dir)
    html = (run.run_dir / schema.REPORT_HTML).read_text()
    tags = parse(html)
    assert not [tag for tag, _ in tags.tags if tag in ("script", "iframe")]
    for _, attrs in tags.tags:
        assert not any("example.com" in attrs.get(name, "") for name in ("src", "href"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<span>see the docs</span> (https://example.com/docs)" in html  # words stay, as text
    assert "[image not available: remote]" in html


def test_images_outside_the_run_folder_are_not_embedded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nnot for the report")
    run_dir = tmp_path / "run"
    (run_dir / "charts").mkdir(parents=True)
    (run_dir / "charts" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nchart")
    text = "# t\n\n![a](charts/a.png)\n\n![b](../secret.png)\n\n![c](/etc/passwd)\n"
    html = render_html(text, run_dir)
    images = [attrs["src"] for tag, attrs in parse(html).tags if tag == "img"]
    assert images == [
        "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nchart").decode()
    ]
    assert "[image not available: b]" in html and "[image not available: c]" in html


def test_write_html_reads_report_md(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / schema.REPORT_MD).write_text("# gatebench run r\n\n## Findings by scenario\n\n- a\n")
    html = write_html(run_dir).read_text()
    assert "<title>gatebench run r</title>" in html and "<li>a</li>" in html


# ---- end to end: a real run, opened in a real browser -----------------------------------------


@pytest.mark.e2e
@pytest.mark.solo
def test_report_html_in_a_browser_makes_no_requests(smoke_run: SharedRun, tmp_path: Path) -> None:
    from playwright import sync_api

    # Never skipped: `make test` installs Debian's chromium (see the Makefile's browser step).
    assert CHROMIUM.is_file(), f"no system Chromium at {CHROMIUM}: apt-get install chromium"
    run_dir, done = smoke_run.run_dir, smoke_run.done
    assert done.returncode == 0, done.stderr
    report = run_dir / schema.REPORT_HTML
    assert report.is_file()
    links = chart_links(run_dir)
    assert links and all((run_dir / link).is_file() for link in links)
    expected = headline(load(run_dir), "io")[0].replace("**", "")
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
            )
            # The page opens short: the answer open, every other section folded.
            folded = " ".join(page.inner_text("body").split())
            opened = page.evaluate(
                "Array.from(document.querySelectorAll('details')).map(d => d.open)"
            )
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            text = " ".join(page.inner_text("body").split())
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requests, "the page itself was not requested"
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    assert len(images) == len(links)
    assert all(complete and width > 0 for complete, width in images), images
    assert opened[0] is True and not any(opened[1:]), opened
    assert "The answer" in folded and " ".join(expected.split()) not in folded
    assert "Findings by scenario" in folded  # a folded section still shows its heading
    assert "Findings by scenario" in text and " ".join(expected.split()) in text
    screenshot = tmp_path / "report.png"  # not in the shared run folder: it is read-only
    assert screenshot.is_file() and screenshot.stat().st_size > 100_000
