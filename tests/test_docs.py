"""The README and the documentation state nothing a run can change without a test noticing:
the demo block is the demo's own plan, the method table the registry's, every claimed interval
the committed paired.csv's; the README stays a front door (<= 250 lines); no test counts."""

from __future__ import annotations

import csv
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
LABELS = {
    "SAM": "LoRA-SAM",
    "oBAR": "LoRA-oBAR",
    "nBAR": "LoRA-nBAR",
    "sBAR": "LoRA-sBAR",
    "LoRA+": "LoRA+",
    "Flat-LoRA": "Flat-LoRA",
}


def test_readme_is_a_front_door():
    assert len(README.splitlines()) <= 250


def test_the_demo_block_is_the_demos_plan():
    from lorabar.apps.demo import real_plan

    block = README.split("<!-- demo-plan:", 1)[1].split("```\n", 1)[1].split("\n```", 1)[0]
    assert block == real_plan()
    assert (ROOT / "docs" / "snippets" / "demo_plan.txt").read_text().rstrip("\n") == real_plan()


def test_the_methods_page_is_the_registry():
    from lorabar.harness.run.registry import methods_table

    assert methods_table() in (ROOT / "docs" / "methods.md").read_text()


def _number(text: str) -> str:
    return text.replace("−", "-").replace("+", "")


def test_every_claimed_interval_is_in_its_paired_csv():
    table = README.split("<!-- claims:", 1)[1].split("\n\n", 1)[0]
    checked = 0
    for row in table.splitlines():
        link = re.search(r"\]\((docs/results/[^)]+/paired\.csv)\)", row)
        if not link:
            continue
        with open(ROOT / link.group(1)) as f:
            averages = {r[1]: r[3:7] for r in csv.reader(f) if r[0].startswith("average")}
        words = {}
        for label, mean, lo, hi, word in re.findall(
            r"([A-Za-z+-]+) ([+−-]?[\d.]+) \[([+−-]?[\d.]+), ([+−-]?[\d.]+)\] ([a-z]+)", row
        ):
            assert averages[LABELS[label]] == [_number(mean), _number(lo), _number(hi), word], (
                link.group(1),
                label,
            )
            words[label] = word
            checked += 1
        here = row.split("|")[3]
        if "not reproduced" in here:  # the paper's claim: SAM and BAR better than LoRA
            assert "better" not in [words.get(m) for m in ("SAM", "oBAR", "nBAR")], row
        # "SAM worse", "BAR equivalent" (oBAR and nBAR), "LoRA+ better": the intervals' words
        for label, word in re.findall(
            r"(SAM|oBAR|nBAR|BAR|LoRA\+) (better|worse|equivalent|"
            r"inconclusive)",
            here,
        ):
            for one in ("oBAR", "nBAR") if label == "BAR" else (label,):
                assert words[one] == word, (row, one)
    assert checked >= 15


# Words the verdict rule replaced (lorabar.harness.report.verdicts): an interval that covers 0
# is "inconclusive" or, within the margin, "equivalent"; never one of these.
RETIRED = ("no difference", "within noise", "matches LoRA", "SAM and BAR match")


def test_no_page_says_what_an_interval_cannot():
    found = [
        f"{page.relative_to(ROOT)}: {phrase!r}"
        for page in PROSE
        if page.name != "changes.md"
        for phrase in RETIRED
        if phrase in page.read_text()
    ]
    assert found == []


PROSE = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "grids" / "README.md"]


def test_prose_is_clean():
    """One lint over every page: no test counts written into prose (they go stale), and every
    markdown table renders as one (a bare | inside a cell, e.g. 'final mean |B|', splits the
    row: every row of a table has as many cells as its header)."""
    problems = []
    for page in PROSE:
        text = page.read_text()
        where = page.relative_to(ROOT)
        if re.search(r"\b\d+ (tests|passed)\b", text):
            problems.append(f"{where}: a test count is written")
        header = None
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.startswith("|"):
                header = None
                continue
            header = _cells(line) if header is None else header
            if _cells(line) != header:
                problems.append(f"{where}:{n}: {_cells(line)} cells, header {header}")
    assert problems == []


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def _cells(line: str) -> int:
    """The cells of a markdown table row: unescaped pipes minus one."""
    return len(re.findall(r"(?<!\\)\|", line)) - 1
