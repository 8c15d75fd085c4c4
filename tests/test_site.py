"""The documentation site as a reader meets it: built once (mkdocs build --strict), its API pages
hold no raw Sphinx markup, every link from the front page opens as a file (no server), and the
front page carries the README's install lines, commands and claims table."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a Sphinx role, an rST example or literal block, a cross-reference left unresolved ([a][b])
RAW = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj):`|Example::|^\s*\S.*::\s*$"
    r"|\]\[[\w.]*\]",
    re.M,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_the_api_reference_holds_no_raw_sphinx_markup(site):
    text = _text(site / "api.html")
    assert "lorabar.guard" in text and "FactorPair" in text
    assert not RAW.findall(text), RAW.findall(text)[:5]
    assert 'class="autorefs' in (site / "api.html").read_text()  # cross-references are links


def test_raw_markup_is_caught():
    """The check above can fail: it finds each form it guards against."""
    for raw in (
        ":class:`lorabar.BAR`",
        ":meth:`~x.y`",
        "Example::",
        "  Config (TOML)::",
        "[lorabar.guard.publish_folder()][lorabar.guard.publish_folder]",
        "[x][]",
    ):
        assert RAW.search(raw), raw


def _links(page: Path) -> list[str]:
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', page.read_text(encoding="utf-8"))
    return [h for h in hrefs if not urlsplit(h).scheme and not h.startswith(("#", "//"))]


def test_every_link_from_the_front_page_opens_as_a_file(site):
    seen, todo, broken = set(), [site / "index.html"], []
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        for href in _links(page):
            target = (page.parent / unquote(urlsplit(href).path)).resolve()
            if not target.is_file():
                broken.append(f"{page.relative_to(site)} -> {href}")
            elif target.suffix == ".html":
                todo.append(target)
    assert not broken, broken[:10]
    assert len(seen) > 20  # the whole site, reached from the front page


def test_the_front_page_carries_the_readmes_install_commands_and_claims(site):
    text = _text(site / "index.html")
    for words in (
        'pip install -e ".[hf]"',
        "./scripts/run-demo",
        "Which of the paper's claims hold here",
        "not reproduced",
        "inconclusive",
    ):
        assert words in text, words
