"""The results index's first picture: every committed study's average paired differences to
LoRA (`lorabar.harness.report.forest`), drawn from their paired.csv files.

    python scripts/forest_plot.py [OUT.png]     (default: docs/results/forest.png)

tests/test_forest.py redraws it and checks that the committed figure carries the same numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lorabar.harness.report.forest import read_averages, studies_figure
from lorabar.harness.report.paper_gains import PAPER_GAINS

ROOT = Path(__file__).resolve().parents[1]
# (label, report folder), in the README's claims order; the paper's methods only
STUDIES = [
    ("faithful 300 steps", "faithful"),
    ("faithful 1000 steps", "faithful_1000"),
    ("own lr (Table 6)", "faithful_paper_lr"),
    ("at lr 3e-3", "faithful_lr3e-3"),
    ("noisy labels", "noise"),
    ("full GLUE", "glue"),
    ("trainable head", "practical"),
]
METHODS = ("LoRA-SAM", "LoRA-oBAR", "LoRA-nBAR")
PAPER = {
    "LoRA-SAM": PAPER_GAINS[("sam", "average")],
    "LoRA-oBAR": PAPER_GAINS[("obar", "average")],
    "LoRA-nBAR": PAPER_GAINS[("nbar", "average")],
}


def averages() -> list:
    rows = []
    for label, folder in STUDIES:
        path = ROOT / "docs" / "results" / folder / "paired.csv"
        found = read_averages(path.read_text(encoding="utf-8"), label, str(path.relative_to(ROOT)))
        rows += sorted(
            (a for a in found if a.method in METHODS), key=lambda a: METHODS.index(a.method)
        )
    return rows


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "results" / "forest.png"
    print(studies_figure(averages(), out, paper=PAPER))
