"""lorabar.harness.report.forest: one forest plot across studies.  The reader of paired.csv's
average rows (named cases, then a property: any text is read or refused with file:line, never
a wrong number), and the committed figure carrying the numbers of the committed files."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorabar.harness.report.forest import Average, read_averages, studies_figure

ROOT = Path(__file__).resolve().parents[1]
HEAD = "task,method,n,mean_diff,ci_low,ci_high,verdict,margin,p_holm,verdict_holm\n"


def test_the_average_rows_are_read_and_the_rest_skipped():
    text = HEAD + (
        "sst2,LoRA-SAM,5,0.28,-0.88,1.43,inconclusive,0.5,1.000,inconclusive\n"
        "average (6 tasks),LoRA-SAM,5,0.07,-0.60,0.75,inconclusive,0.5,1.000,x\n"
    )
    assert read_averages(text, "s") == [
        Average("s", "LoRA-SAM", 6, 5, 0.07, -0.6, 0.75, "inconclusive")
    ]


@pytest.mark.parametrize(
    "row,message",
    [
        ("average (x tasks),A,5,0.1,0,1,better,0.5,1,better", r"p.csv:2: 'x' is not a number"),
        ("average (2 tasks),A,5,2,0,1,better,0.5,1,better", r"p.csv:2: not an interval"),
        ("average (2 tasks),A,5,nan,0,1,better,0.5,1,better", r"p.csv:2: 'nan' is not a finite"),
        (
            "average (2 tasks),A,5,0.5,0,1,great,0.5,1,better",
            r"p.csv:2: not an interval with its "
            r"verdict",
        ),
        ("average (2 tasks),A,5", r"p.csv:2: 3 fields, the header has 10"),
    ],
)
def test_a_malformed_average_row_is_refused_at_its_line(row, message):
    with pytest.raises(ValueError, match=message):
        read_averages(HEAD + row + "\n", "s", "p.csv")
    with pytest.raises(ValueError, match=r"p.csv:1: not a paired-differences table"):
        read_averages("a,b\n" + row, "s", "p.csv")


CELL = st.sampled_from(
    [
        "average (2 tasks)",
        "average (x tasks)",
        "sst2",
        "0.5",
        "-1",
        "nan",
        "better",
        "equivalent",
        "",
        "1e3",
        "A",
    ]
) | st.text(max_size=6)


@given(st.lists(st.lists(CELL, min_size=0, max_size=11), max_size=5))
def test_any_table_is_read_as_valid_intervals_or_refused(rows):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    try:
        found = read_averages(HEAD + buf.getvalue(), "s", "p.csv")
    except ValueError as err:
        assert str(err).startswith("p.csv:")
        return
    for a in found:
        assert a.low <= a.mean <= a.high and a.verdict in (
            "better",
            "worse",
            "equivalent",
            "inconclusive",
            "identical",
        )


def _script():
    spec = importlib.util.spec_from_file_location(
        "forest_plot", ROOT / "scripts" / "forest_plot.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(png: Path) -> list[dict]:
    from PIL import Image

    with Image.open(png) as image:
        return json.loads(image.text["lorabar-rows"])


def test_the_committed_forest_plot_carries_the_committed_numbers(tmp_path):
    script = _script()
    fresh = [asdict(a) for a in script.averages()]
    assert len(fresh) == 19 and _rows(ROOT / "docs" / "results" / "forest.png") == fresh
    drawn = studies_figure(script.averages()[:2], tmp_path / "f.png", paper=script.PAPER)
    assert _rows(drawn) == fresh[:2]
