"""mkdocs hook: the front page carries the README's sections, written once (in the README).

A page line ``<!-- readme: Install -->`` is replaced by the README section of that heading (up
to the next ``## ``), its links made relative to ``docs/`` (``docs/results/x.md`` ->
``results/x.md``; a link to a file outside ``docs/`` becomes its text and path, as code).
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"^<!-- readme: (.+?) -->$", re.M)


def section(text: str, heading: str) -> str:
    """The body of ``## heading`` in ``text`` (without the heading), links rebased to docs/."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise ValueError(f"README.md has no section '## {heading}'")

    def rebase(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"[a-z]+:|#", target):
            return m.group(0)
        if target.startswith("docs/"):
            return f"{m.group(1)}({target[len('docs/') :]})"
        return f"{m.group(1)[1:-1]} (`{target}` in the repository)"

    return re.sub(r"(\[[^\]]*\])\(([^)\s]+)\)", rebase, match.group(1)).strip("\n")


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - mkdocs' API
    if "<!-- readme:" not in markdown:
        return markdown
    text = README.read_text(encoding="utf-8")
    return MARKER.sub(lambda m: section(text, m.group(1)), markdown)
