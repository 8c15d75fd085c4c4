"""The user's own data: ``--train/--dev/--test`` files for the encoder harness.

Formats, by file name: ``.csv`` and ``.tsv`` (a header row names the columns; strict UTF-8,
strict quoting), ``.jsonl`` (one JSON object per line), ``.json`` (one JSON list of objects),
``.parquet``, or a folder written by ``datasets.Dataset.save_to_disk``.  Columns:
``text_column`` (and ``text_pair_column`` for pairs) and ``label_column``.  Classification: the
label set is the train split's, after one normalization for every format
(`normalize_label()`: a number is a number whether a CSV or a JSON file holds it; other text
stays a string; numbers sorted numerically, strings alphabetically; numbers mixed with strings
are refused), and every dev/test label must be in it.  One number written two ways -- ``1`` and
``1.0``, ``1.1`` and ``1.10``, ``01`` and ``1`` -- is refused naming both lines
(`check_spellings()`) unless ``numeric_labels`` makes them one class.  Regression
(``task_type="regression"``): labels are finite decimal numbers (`parse_number()`) that
vary in every split.  Every problem names ``file:line`` (the row's line in a text file, its
1-based row number in Parquet/Arrow) and raises `DataError`.

Every file read is recorded (`lorabar.harness.tasks.data_folder.recording()`), so its content hash
is part of a run's identity.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from .jsonl import jsonl_rows
from .data_folder import (
    DataError,
    Example,
    Task,
    check_classes,
    csv_records,
    note_read,
    read_data_text,
)

__all__ = [
    "FORMATS",
    "UserData",
    "check_spellings",
    "count_shared",
    "load_user_data",
    "normalize_label",
    "parse_number",
    "read_rows",
    "spelling",
    "text_field",
]

FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet", "a datasets.save_to_disk folder")


@dataclass(frozen=True)
class UserData:
    """The three splits and the `Task` that describes them."""

    task: Task
    splits: dict[str, list[Example]]
    paths: dict[str, Path]
    shared: dict[str, int]  # dev/test examples whose text is also a train example's


def _rows_text(path: Path, delimiter: str) -> list[tuple[int, dict]]:
    rows, header = [], None
    for start, fields in csv_records(path, delimiter=delimiter, multiline=True):
        if header is None:
            header = fields
            if len(set(header)) != len(header):
                raise DataError(f"{path}:1: the header repeats a column name: {header}")
            continue
        if not fields or all(not f for f in fields):
            continue
        if len(fields) != len(header):
            raise DataError(
                f"{path}:{start}: {len(fields)} fields, but the header has {len(header)} ({header})"
            )
        rows.append((start, dict(zip(header, fields))))
    return rows


def _rows_jsonl(path: Path) -> list[tuple[int, dict]]:
    return jsonl_rows(read_data_text(path), path)


def _rows_json(path: Path) -> list[tuple[int, dict]]:
    text = read_data_text(path)
    try:
        data = json.loads(text)
    except ValueError as err:
        line = getattr(err, "lineno", "?")
        raise DataError(f"{path}:{line}: not valid JSON ({err})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(
            f"{path}: expected a JSON list of objects (one per example); for one "
            "object per line name the file .jsonl"
        )
    return [(i + 1, r) for i, r in enumerate(data)]


def _rows_arrow(table, path: Path) -> list[tuple[int, dict]]:
    return [(i + 1, r) for i, r in enumerate(table.to_pylist())]


def _rows_parquet(path: Path) -> list[tuple[int, dict]]:
    import pyarrow.parquet as pq

    note_read(path)
    try:
        names = pq.read_schema(path).names
        twice = sorted({n for n in names if names.count(n) > 1})
        table = None if twice else pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises many kinds
        first = str(err).strip().split("\n")[0]  # pyarrow appends the schema, line by line
        raise DataError(f"{path}: not a readable Parquet file ({first})") from None
    if table is None:
        raise DataError(
            f"{path}: column name(s) {twice} appear more than once; a column is named once"
        )
    return _rows_arrow(table, path)


def _rows_saved(path: Path) -> list[tuple[int, dict]]:
    for name in sorted(p.name for p in path.iterdir() if p.is_file()):
        note_read(path / name)  # the arrow shards and the dataset's json: its content
    try:
        from datasets import load_from_disk
    except ImportError as err:  # pragma: no cover - datasets comes with the hf extra (TRL)
        raise DataError(f"{path}: a datasets folder needs the package datasets") from err
    try:
        ds = load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001
        raise DataError(f"{path}: not a folder written by datasets' save_to_disk ({err})") from None
    if not hasattr(ds, "to_list"):
        raise DataError(f"{path}: a DatasetDict; give one split's folder (e.g. {path}/train)")
    return [(i + 1, r) for i, r in enumerate(ds.to_list())]


def read_rows(path: str | Path) -> list[tuple[int, dict]]:
    """``(line or row number, {column: value})`` of every example in ``path``."""
    path = Path(path).expanduser()
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        except (OSError, ValueError, KeyError, TypeError):
            splits = sorted(p.name for p in path.iterdir() if p.is_dir())
        raise DataError(
            f"{path}: a DatasetDict folder with splits {list(splits)}; give one "
            f"split's folder (e.g. {path / str(splits[0]) if splits else path}) to "
            "each of --train, --dev and --test"
        )
    if path.is_dir():
        if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
            raise DataError(
                f"{path}: a folder, but not one written by datasets' save_to_disk "
                "(no dataset_info.json / state.json)"
            )
        rows = _rows_saved(path)
    elif not path.is_file():
        raise DataError(f"Missing data file {str(path)!r}")
    else:
        suffix = path.suffix.lower()
        readers = {
            ".csv": lambda p: _rows_text(p, ","),
            ".tsv": lambda p: _rows_text(p, "\t"),
            ".jsonl": _rows_jsonl,
            ".json": _rows_json,
            ".parquet": _rows_parquet,
        }
        if suffix not in readers:
            raise DataError(f"{path}: unknown format {suffix!r} (expected one of {list(FORMATS)})")
        rows = readers[suffix](path)
    if not rows:
        raise DataError(f"{path}: no examples (the file is empty or holds only a header)")
    return rows


def text_field(path, lineno: int, row: dict, column: str, *, strip: bool = True) -> str:
    """The text in ``row[column]`` (stripped unless ``strip=False``); a missing column or an
    empty text is a `DataError` naming ``file:line``."""
    if column not in row:
        raise DataError(f"{path}:{lineno}: no column {column!r} (columns: {sorted(row)})")
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{path}:{lineno}: column {column!r} holds {value!r}, expected text")
    return value.strip() if strip else value


_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def parse_number(text: str) -> float | None:
    """``text`` as a finite decimal number (``1``, ``-0.5``, ``1e3``), else ``None``: no
    ``nan``/``inf``, no ``1_000``, no hex -- what a data file's number column should hold."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def normalize_label(path, lineno: int, row: dict, column: str) -> int | float | str:
    """One label normalization for every format: a number -- ``1``, ``1.0`` or ``"1"`` -- is the
    same class (an ``int`` when integral, else a ``float``); any other text stays a string
    (stripped); ``true``/``false``, null, empty, lists and objects are refused naming
    ``file:line``."""
    if column not in row:
        raise DataError(f"{path}:{lineno}: no column {column!r} (columns: {sorted(row)})")
    value = row[column]
    if isinstance(value, bool) or value is None or not isinstance(value, int | float | str):
        what = type(value).__name__ if value is not None else "nothing"
        raise DataError(
            f"{path}:{lineno}: label column {column!r} holds {value!r} ({what}); a "
            "label is one number or one string"
        )
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise DataError(f"{path}:{lineno}: label column {column!r} is empty")
        number = parse_number(value)
        if number is None:
            return value
        value = number
    if not math.isfinite(value):
        raise DataError(f"{path}:{lineno}: label column {column!r} holds {value!r}, not finite")
    return int(value) if float(value).is_integer() else float(value)


def _regression_label(path, lineno: int, value) -> float:
    if isinstance(value, str):
        raise DataError(
            f"{path}:{lineno}: label {value!r} is not a finite decimal number "
            "(task_type regression)"
        )
    return float(value)


def _class_names(path: Path, values: set, column: str) -> tuple[str, ...]:
    kinds = {str if isinstance(v, str) else float for v in values}
    if len(kinds) > 1:
        raise DataError(
            f"{path}: label column {column!r} mixes numbers and strings "
            f"(e.g. {sorted(map(str, values))[:4]}); use numbers or strings"
        )
    names = tuple(str(v) for v in sorted(values))
    check_classes(path, names)
    return names


def count_shared(a: list[Example], b: list[Example]) -> int:
    """How many examples of ``a`` have the same text (and pair) as one of ``b``."""
    seen = {(e.text_a, e.text_b) for e in b}
    return sum((e.text_a, e.text_b) in seen for e in a)


def spelling(value) -> str:
    """A label as its file writes it: text stripped, a JSON number as Python writes it."""
    return value.strip() if isinstance(value, str) else repr(value)


def check_spellings(paths: dict, raw: dict, values: dict, column: str) -> None:
    """Refuse two spellings of one number (``1.1`` and ``1.10``, ``01`` and ``1``, ``1`` and
    ``1.0``) as one class, naming both ``file:line``: they may be two classes the user meant
    (``--numeric-labels`` makes them one)."""
    first: dict = {}
    for split, rows in raw.items():
        for (lineno, row), value in zip(rows, values[split]):
            if isinstance(value, str):
                continue
            written = spelling(row[column])
            seen = first.setdefault(value, (written, f"{paths[split]}:{lineno}"))
            if seen[0] != written:
                raise DataError(
                    f"{paths[split]}:{lineno}: label {written!r} and {seen[1]}: "
                    f"label {seen[0]!r} are one number ({value!r}); write each class "
                    "one way, or pass --numeric-labels to make them one class"
                )


def load_user_data(
    train: str | Path,
    dev: str | Path,
    test: str | Path,
    *,
    text_column: str,
    label_column: str,
    text_pair_column: str | None = None,
    task_type: str = "classification",
    numeric_labels: bool = False,
) -> UserData:
    """Load and check the three splits (see the module docstring)."""
    paths = {
        "train": Path(train).expanduser(),
        "dev": Path(dev).expanduser(),
        "test": Path(test).expanduser(),
    }
    raw = {split: read_rows(p) for split, p in paths.items()}
    values = {
        split: [normalize_label(paths[split], n, r, label_column) for n, r in rows]
        for split, rows in raw.items()
    }
    if task_type == "classification" and not numeric_labels:
        check_spellings(paths, raw, values, label_column)
    labels: tuple[str, ...] = ()
    if task_type == "classification":
        labels = _class_names(paths["train"], set(values["train"]), label_column)
    splits = {}
    for split, rows in raw.items():
        path, out = paths[split], []
        for (lineno, row), value in zip(rows, values[split]):
            a = text_field(path, lineno, row, text_column)
            b = text_field(path, lineno, row, text_pair_column) if text_pair_column else None
            if task_type == "classification":
                if str(value) not in labels:
                    raise DataError(
                        f"{path}:{lineno}: label {value!r} is not one of the train "
                        f"split's labels {list(labels)}"
                    )
                label: int | float = labels.index(str(value))
            else:
                label = _regression_label(path, lineno, value)
            out.append(Example(a, b, label, f"{path}:{lineno}"))
        splits[split] = out
        if task_type == "regression" and len({e.label for e in out}) < 2:
            raise DataError(
                f"{path}: every regression label is {out[0].label!r}; with one "
                "value there is nothing to learn or correlate (Pearson and Spearman "
                "are undefined): give labels that vary"
            )
    metrics = ("accuracy",) if task_type == "classification" else ("pearson", "spearman")
    task = Task("custom", "", "", "", True, lambda f: ("", None, ""), labels, metrics=metrics)
    shared = {s: count_shared(splits[s], splits["train"]) for s in ("dev", "test")}
    return UserData(task, splits, paths, shared)
