"""The documentation site (issue 16): built with ``mkdocs build --strict``, offline, read in Chromium.

The build is the one `.ci/run` relies on: a broken link, a missing reference or a docstring
warning fails it. The built site is then opened from disk (``file://``, as a user who downloads
it would) in headless Chromium: the navigation leads to every page, search answers (through our
own worker shim, ``docs/javascripts/iframe-worker.js``: nothing is fetched from a CDN), and the
screenshots are real pages, not blank ones. Set ``FISHERLAB_DOCS_SHOTS=DIR`` to keep the
screenshots for a look.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from browser_support import MIN_PIXEL_STD, console_errors, headless, pixels

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 600
# Pages every reader must reach from the home page's navigation, by their nav titles.
NAV_TITLES = (
    "Getting started",
    "GLMs for R and statsmodels users",
    "Which standard error should I report?",
    "Black-box simulators",
    "Networks",
    "Experiment design and forecasting",
    "Data beyond memory",
    "Theory: the identities",
    "Python API",
    "Errors",
    "Command line",
    "Architecture",
    "Changelog",
    "How to cite",
)
# Where a page loads anything from (scripts, stylesheets, images, fonts, frames).
_FETCHED = re.compile(
    r"<(?:script|img|iframe|source)\b[^>]*\bsrc=\"([^\"]+)\"|<link\b[^>]*\bhref=\"([^\"]+)\""
)
_CSS_URL = re.compile(r"url\(\s*['\"]?(https?:)?//", re.IGNORECASE)


class _Links(HTMLParser):
    """Anchors of a page: (href, class, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            a = dict(attrs)
            self._open.append([a.get("href") or "", a.get("class") or "", ""])

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            href, cls, text = self._open.pop()
            self.links.append((href, cls, " ".join(text.split())))


def _links(html: str) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def _dom(page: pathlib.Path, workdir: pathlib.Path, query: str = "") -> tuple[str, str]:
    """The page's DOM after its scripts ran (search answers within the virtual time), and the log."""
    out = headless(page.as_uri() + query, "--virtual-time-budget=8000", "--dump-dom", workdir=workdir)
    return out.stdout, out.stderr


def _shot(page: pathlib.Path, workdir: pathlib.Path, name: str, query: str = "") -> None:
    png = workdir / f"{name}.png"
    out = headless(
        page.as_uri() + query,
        "--virtual-time-budget=8000",
        "--window-size=1280,900",
        f"--screenshot={png}",
        workdir=workdir,
    )
    assert console_errors(out.stderr) == [], (name, console_errors(out.stderr))
    image = pixels(png)
    assert image.shape[:2] == (900, 1280), name
    assert float(image[..., :3].std()) > MIN_PIXEL_STD, f"{name}: the screenshot is blank"
    keep = os.environ.get("FISHERLAB_DOCS_SHOTS")
    if keep:
        pathlib.Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, pathlib.Path(keep) / png.name)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("site") / "site"
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_site_builds_strictly_and_fetches_nothing(site: pathlib.Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= len(NAV_TITLES)
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for src, href in _FETCHED.findall(html):
            url = src or href
            # Links to elsewhere are fine (<a href>); nothing a page loads may come from the web.
            assert not re.match(r"(https?:)?//", url), f"{page.relative_to(site)} loads {url}"
    for sheet in site.rglob("*.css"):
        assert not _CSS_URL.search(sheet.read_text(encoding="utf-8")), f"{sheet.name} fetches a remote url()"
    # Formulas are MathML made at build time (docs/mathml_hook.py): no TeX is left for a script,
    # and the table of contents shows a heading's formula as text.
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert 'class="arithmatex">\\(' not in html and 'class="arithmatex">\\[' not in html, page.name
        # the docstrings' reStructuredText (:math:, .. math::, :func: ...) is rendered, not shown
        assert not re.search(r":(math|mod|attr|class|func|meth|data):<code>|<p>\.\. math::", html), page.name
    theory = (site / "identities.html").read_text(encoding="utf-8")
    assert theory.count("<math") > 50
    toc = [text for _, cls, text in _links(theory) if "md-nav__link" in cls]
    assert any("Σ-1" in text for text in toc) and not any("\\(" in text for text in toc), toc
    # The offline plugin's index for file:// (the worker reads it from a script, not by fetch).
    assert (site / "search" / "search_index.js").stat().st_size > 10_000


def test_navigation_search_and_reference_in_chromium(site: pathlib.Path, tmp_path: pathlib.Path) -> None:
    index = site / "index.html"
    dom, log = _dom(index, tmp_path)
    assert console_errors(log) == []
    nav = {text: href for href, cls, text in _links(dom) if "md-nav__link" in cls and href}
    for title in NAV_TITLES:
        assert title in nav, f"the navigation lacks {title!r}: {sorted(nav)}"
        target = (index.parent / nav[title].split("#")[0]).resolve()
        assert target.is_file(), f"{title!r} links to {nav[title]}, which is not in the site"

    # A followed link shows its page: the API reference renders the docstrings of public names.
    api, log = _dom(site / "reference" / "api.html", tmp_path)
    assert console_errors(log) == []
    for anchor in ("fisherlab.fit", "fisherlab.fisher", "fisherlab.InfoMatrix", "fisherlab.glm"):
        assert f'id="{anchor}"' in api, anchor
    cli, _ = _dom(site / "reference" / "cli.html", tmp_path)
    assert "fisherlab fit" in cli and "--formula" in cli

    # Search, from disk: a guide's topic and a function's name find their pages.
    for query, expected in (
        ("sandwich", "guides/which_se.html"),
        ("observed_information", "reference/api.html"),
    ):
        dom, log = _dom(index, tmp_path, f"?q={query}")
        assert console_errors(log) == [], query
        hits = [href for href, cls, _ in _links(dom) if "md-search-result__link" in cls]
        assert hits, f"search for {query!r} found nothing"
        assert any(expected in href for href in hits), (query, hits[:10])


def test_screenshots_are_pages(site: pathlib.Path, tmp_path: pathlib.Path) -> None:
    _shot(site / "index.html", tmp_path, "home")
    _shot(site / "index.html", tmp_path, "search", "?q=standard%20error")
    _shot(site / "reference" / "api.html", tmp_path, "reference")
    _shot(site / "getting_started.html", tmp_path, "getting_started")
