"""Property-based tests of the own-data readers (lorabar.harness.tasks.own_data): generated CSV,
TSV, JSONL and Parquet files -- random quoting, encodings, label types, column mixes, quoted
newlines -- are either read to the same rows as an independent reader (pandas, json) or refused
with a ``file:line`` message, never a traceback."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorabar.harness.tasks.data_folder import DataError
from lorabar.harness.tasks.own_data import normalize_label, parse_number, read_rows

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# texts: anything but NUL and lone surrogates (neither can be written as UTF-8 text)
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
LABEL = st.one_of(
    st.integers(-5, 5),
    st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 2)),
    st.sampled_from(["pos", "neg", " 1 ", "1.0", "2", "x y"]),
)
ROWS = st.lists(st.tuples(TEXT, LABEL), min_size=1, max_size=8)


def _expected_label(value):
    """The normalization, stated independently: numbers (and text of a finite decimal number)
    by value, an int when integral; other text stripped."""
    if isinstance(value, str):
        text = value.strip()
        numeric = re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text)
        if not numeric or not math.isfinite(float(text)):
            return text
        value = float(text)
    return int(value) if float(value).is_integer() else float(value)


def _refused_well(err: DataError, path: Path) -> bool:
    return str(path) in str(err)


@SETTINGS
@given(
    rows=ROWS,
    delimiter=st.sampled_from([",", "\t"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]),
)
def test_delimited_files_read_like_pandas_or_refuse_with_file_line(
    rows, delimiter, quoting, encoding
):
    import pandas as pd

    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, quoting=quoting, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows([[t, y] for t, y in rows])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("d.csv" if delimiter == "," else "d.tsv")
        try:
            path.write_bytes(buf.getvalue().encode(encoding))
        except UnicodeEncodeError:
            return  # latin-1 cannot hold every generated text: nothing to read
        try:
            got = read_rows(path)
        except DataError as err:
            assert _refused_well(err, path), err
            if encoding == "latin-1":
                assert re.search(r":\d+: not valid UTF-8", str(err))
            return
        want = pd.read_csv(
            path,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            quoting=csv.QUOTE_MINIMAL,
        )
        want = want[~(want == "").all(axis=1)]  # a row of empty fields is no example
        assert [r["text"] for _, r in got] == list(want["text"])
        assert [r["label"] for _, r in got] == list(want["label"])


@SETTINGS
@given(rows=ROWS, fmt=st.sampled_from(["jsonl", "parquet"]))
def test_jsonl_and_parquet_read_like_an_independent_reader(rows, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"d.{fmt}"
        records = [{"text": t, "label": y} for t, y in rows]
        if fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            want = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        else:
            import pandas as pd
            import pyarrow as pa
            import pyarrow.parquet as pq

            as_text = [{"text": r["text"], "label": str(r["label"])} for r in records]
            pq.write_table(pa.Table.from_pylist(as_text), path)
            want = pd.read_parquet(path).to_dict("records")
        got = read_rows(path)
        assert [r for _, r in got] == want
        assert [n for n, _ in got] == list(range(1, len(want) + 1))


@SETTINGS
@given(
    value=st.one_of(
        LABEL,
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
        st.sampled_from(["", "  ", "nan", "inf", "-inf", "1e400"]),
        st.floats(allow_nan=True, allow_infinity=True),
    )
)
def test_a_label_is_normalized_or_refused_naming_its_line(value):
    try:
        got = normalize_label("f.jsonl", 7, {"label": value}, "label")
    except DataError as err:
        assert str(err).startswith("f.jsonl:7: label column 'label'")
        return
    assert not isinstance(value, bool) and value is not None
    want = _expected_label(value)
    assert got == want and type(got) is type(want)
    if isinstance(got, float):
        assert math.isfinite(got) and not got.is_integer()


@SETTINGS
@given(text=st.text(max_size=12))
def test_parse_number_takes_finite_decimals_only(text):
    value = parse_number(text)
    if value is None:
        return
    assert math.isfinite(value) and re.fullmatch(r"\s*[+-]?[0-9.]+([eE][+-]?\d+)?\s*", text)


@pytest.mark.parametrize(
    "text, value", [("1", 1.0), (" -0.5 ", -0.5), ("1e3", 1000.0), (".5", 0.5)]
)
def test_parse_number_named_cases(text, value):
    assert parse_number(text) == value
    for bad in ("nan", "inf", "1_000", "0x10", "", "1,5"):
        assert parse_number(bad) is None


@SETTINGS
@given(
    columns=st.lists(
        st.sampled_from(["text", "label", "extra", "Text"]), min_size=1, max_size=4, unique=True
    ),
    labels=st.lists(st.sampled_from(["a", "b", 1, 0, "1", 2.0]), min_size=2, max_size=6),
)
def test_column_mixes_load_or_refuse_naming_file_and_line(columns, labels):
    """Any set and order of columns: the examples are the text and label columns' values, or a
    DataError names the file and the line (a missing column, one class, mixed label types)."""
    from lorabar.harness.tasks.own_data import load_user_data

    rows = [{c: (y if c == "label" else f"{c} {i}") for c in columns} for i, y in enumerate(labels)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for split in ("train", "dev", "test"):
            path = Path(tmp) / f"{split}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            paths.append(path)
        try:
            own = load_user_data(*paths, text_column="text", label_column="label")
        except DataError as err:
            assert re.match(rf"{re.escape(str(paths[0]))}(:\d+)?: ", str(err)), err
            return
    assert "text" in columns and "label" in columns
    values = [_expected_label(y) for y in labels]
    assert [e.text_a for e in own.splits["train"]] == [r["text"] for r in rows]
    assert [own.task.labels[e.label] for e in own.splits["train"]] == [str(v) for v in values]


@SETTINGS
@given(
    labels=st.lists(
        st.sampled_from(["1", "1.0", "01", "1.1", "1.10", "2", "2e0", "7"]), min_size=2, max_size=8
    )
)
def test_one_number_written_two_ways_is_refused_unless_asked(labels):
    """Classes are the labels as written: two spellings of one number are refused naming both
    lines, or, with numeric_labels, one class; other numbers stay distinct classes."""
    import tempfile
    from pathlib import Path

    from lorabar.harness.tasks.own_data import load_user_data

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_text("text,label\n" + "".join(f"x{i},{y}\n" for i, y in enumerate(labels)))
        numbers = {}
        for y in labels:
            numbers.setdefault(float(y), set()).add(y)
        clash = any(len(spellings) > 1 for spellings in numbers.values())
        for asked in (False, True):
            try:
                own = load_user_data(
                    path, path, path, text_column="text", label_column="label", numeric_labels=asked
                )
            except DataError as err:
                if "one number" in str(err):
                    assert clash and not asked
                    continue
                assert len(numbers) < 2 and "at least two classes" in str(err)
                continue
            assert not clash or asked
            assert len(own.task.labels) == len(numbers)  # one class per number, never fewer


def test_a_parquet_column_named_twice_is_one_line(tmp_path):
    """The hostile round's case: a 7-line pyarrow dump of the schema; now one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    pq.write_table(
        pa.Table.from_arrays(
            [pa.array(["a", "b"]), pa.array([0, 1]), pa.array([1, 0])],
            names=["text", "label", "label"],
        ),
        path,
    )
    with pytest.raises(
        DataError,
        match=r"dup.parquet: column name\(s\) \['label'\] appear more "
        r"than once",
    ) as err:
        read_rows(path)
    assert "\n" not in str(err.value)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not a parquet file")
    with pytest.raises(DataError, match=r"bad.parquet: not a readable Parquet file") as err:
        read_rows(tmp_path / "bad.parquet")
    assert "\n" not in str(err.value)
