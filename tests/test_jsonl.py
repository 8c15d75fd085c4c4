"""lorabar.harness.tasks.jsonl: the one JSON Lines reader.  Named cases, then a property: any
text gives its objects with their line numbers, or one DataError naming file:line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorabar.harness.tasks.data_folder import DataError
from lorabar.harness.tasks.jsonl import jsonl_rows


def test_objects_with_their_lines_blank_lines_skipped():
    assert jsonl_rows('{"a": 1}\n\n  \n{"b": 2}\n', "f.jsonl") == [(1, {"a": 1}), (4, {"b": 2})]


@pytest.mark.parametrize(
    "line,message",
    [
        ("{nope", r"f.jsonl:2: not a JSON object \(JSON"),
        (
            "[1, 2]",
            r"f.jsonl:2: a JSON list, expected an "
            r"object",
        ),
        ('"x"', r"f.jsonl:2: a JSON str, expected"),
    ],
)
def test_a_line_that_is_not_an_object_is_named(line, message):
    with pytest.raises(DataError, match=message):
        jsonl_rows('{"ok": 1}\n' + line + "\n", "f.jsonl")


LINE = st.one_of(
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3).map(json.dumps),
    st.sampled_from(["", " ", "[1]", "3", "{", "null", '{"a": 1} x']),
    st.text(max_size=8).filter(lambda s: "\n" not in s and "\r" not in s),
)


@given(st.lists(LINE, max_size=8))
def test_any_text_is_read_or_refused_at_its_line(lines):
    text = "\n".join(lines)
    try:
        rows = jsonl_rows(text, "f.jsonl")
    except DataError as err:
        n = int(str(err).split(":")[1])
        assert (
            json.loads(text.splitlines()[n - 1]).__class__ is not dict
            if _parses(text.splitlines()[n - 1])
            else True
        )
        return
    assert [row for _, row in rows] == [json.loads(x) for x in text.splitlines() if x.strip()]


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
