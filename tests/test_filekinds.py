"""lorabar.filekinds: the header a JSON file carries, and a result's digest.  Named cases, then
properties: any JSON value is read without an exception, and a stamp round-trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorabar.filekinds import (
    HEADER,
    JSON_KINDS,
    digest_ok,
    header_kind,
    stamp,
    unstamped,
    with_digest,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_a_stamp_comes_first_and_names_kind_and_version():
    data = stamp("result", {"config": {}, HEADER: {"kind": "layers"}})
    assert list(data) == [HEADER, "config"] and header_kind(data) == "result"
    assert set(data[HEADER]) == {"kind", "version"}
    with pytest.raises(ValueError, match=r"Invalid file kind: 'png' \(expected one of"):
        stamp("png", {})


def test_a_digest_covers_the_header():
    signed = with_digest(stamp("result", {"metrics": {"dev": 1}}))
    assert digest_ok(signed)
    assert not digest_ok({**signed, HEADER: {"kind": "layers", "version": "x"}})


@given(JSON)
def test_any_json_value_has_a_kind_or_none(value):
    kind = header_kind(json.loads(json.dumps(value)))
    assert kind is None or isinstance(kind, str)


@given(st.dictionaries(st.text(max_size=8), JSON, max_size=5), st.sampled_from(JSON_KINDS))
def test_a_stamp_round_trips(content, kind):
    data = json.loads(json.dumps(stamp(kind, content)))
    assert header_kind(data) == kind
    assert unstamped(data) == unstamped(json.loads(json.dumps(content)))
