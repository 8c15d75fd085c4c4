"""The user's own data: ``--train/--dev/--test`` files for the encoder harness.

Formats, by file name: ``.csv`` and ``.tsv`` (a header row names the columns; strict UTF-8,
strict quoting), ``.jsonl`` (one JSON object per line), ``.json`` (one JSON list of objects),
``.parquet``, or a folder written by ``datasets.Dataset.save_to_disk``.  Columns:
``text_column`` (and ``text_pair_column`` for pairs) and ``label_column``.  Classification: the
label set is the train split's (integers sorted numerically, strings alphabetically; a label
column of mixed types is refused), and every dev/test label must be in it; regression
(``task_type="regression"``): labels are numbers.  Every problem names ``file:line`` (the row's
line in a text file, its 1-based row number in Parquet/Arrow) and raises :class:`DataError`.

Every file read is recorded (:func:`lorabar.experiments.data.recording`), so its content hash
is part of a run's identity.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .data import DataError, Example, Task, csv_records, note_read, read_data_text

__all__ = ["FORMATS", "UserData", "load_user_data", "read_rows", "text_field"]

FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet", "a datasets.save_to_disk folder")


@dataclass(frozen=True)
class UserData:
    """The three splits and the :class:`~lorabar.experiments.data.Task` that describes them."""

    task: Task
    splits: dict[str, list[Example]]
    paths: dict[str, Path]


def _rows_text(path: Path, delimiter: str) -> list[tuple[int, dict]]:
    rows, header = [], None
    for start, fields in csv_records(path, delimiter=delimiter):
        if header is None:
            header = fields
            if len(set(header)) != len(header):
                raise DataError(f"{path}:1: the header repeats a column name: {header}")
            continue
        if not fields or all(not f for f in fields):
            continue
        if len(fields) != len(header):
            raise DataError(f"{path}:{start}: {len(fields)} fields, but the header has "
                            f"{len(header)} ({header})")
        rows.append((start, dict(zip(header, fields))))
    return rows


def _rows_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for lineno, line in enumerate(read_data_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as err:
            raise DataError(f"{path}:{lineno}: not a JSON object ({err.__class__.__name__}: "
                            f"{err})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: a JSON {type(obj).__name__}, expected an object")
        rows.append((lineno, obj))
    return rows


def _rows_json(path: Path) -> list[tuple[int, dict]]:
    text = read_data_text(path)
    try:
        data = json.loads(text)
    except ValueError as err:
        line = getattr(err, "lineno", "?")
        raise DataError(f"{path}:{line}: not valid JSON ({err})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON list of objects (one per example); for one "
                        "object per line name the file .jsonl")
    return [(i + 1, r) for i, r in enumerate(data)]


def _rows_arrow(table, path: Path) -> list[tuple[int, dict]]:
    return [(i + 1, r) for i, r in enumerate(table.to_pylist())]


def _rows_parquet(path: Path) -> list[tuple[int, dict]]:
    import pyarrow.parquet as pq

    note_read(path)
    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises many kinds
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None
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
    if path.is_dir():
        if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
            raise DataError(f"{path}: a folder, but not one written by datasets' save_to_disk "
                            "(no dataset_info.json / state.json)")
        rows = _rows_saved(path)
    elif not path.is_file():
        raise DataError(f"Missing data file {str(path)!r}")
    else:
        suffix = path.suffix.lower()
        readers = {".csv": lambda p: _rows_text(p, ","), ".tsv": lambda p: _rows_text(p, "\t"),
                   ".jsonl": _rows_jsonl, ".json": _rows_json, ".parquet": _rows_parquet}
        if suffix not in readers:
            raise DataError(f"{path}: unknown format {suffix!r} (expected one of {list(FORMATS)})")
        rows = readers[suffix](path)
    if not rows:
        raise DataError(f"{path}: no examples (the file is empty or holds only a header)")
    return rows


def text_field(path, lineno: int, row: dict, column: str, *, strip: bool = True) -> str:
    """The text in ``row[column]`` (stripped unless ``strip=False``); a missing column or an
    empty text is a :class:`DataError` naming ``file:line``."""
    if column not in row:
        raise DataError(f"{path}:{lineno}: no column {column!r} (columns: {sorted(row)})")
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{path}:{lineno}: column {column!r} holds {value!r}, expected text")
    return value.strip() if strip else value


def _raw_label(path: Path, lineno: int, row: dict, column: str):
    if column not in row:
        raise DataError(f"{path}:{lineno}: no column {column!r} (columns: {sorted(row)})")
    value = row[column]
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{path}:{lineno}: label column {column!r} holds {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        value = value.strip()
    return value


def load_user_data(train: str | Path, dev: str | Path, test: str | Path, *, text_column: str,
                   label_column: str, text_pair_column: str | None = None,
                   task_type: str = "classification") -> UserData:
    """Load and check the three splits (see the module docstring)."""
    paths = {"train": Path(train).expanduser(), "dev": Path(dev).expanduser(),
             "test": Path(test).expanduser()}
    raw = {split: read_rows(p) for split, p in paths.items()}
    labels: tuple[str, ...] = ()
    if task_type == "classification":
        seen = {_raw_label(paths["train"], n, r, label_column) for n, r in raw["train"]}
        kinds = {type(v) for v in seen}
        if len(kinds) > 1 or not kinds <= {int, str}:
            raise DataError(f"{paths['train']}: label column {label_column!r} mixes types "
                            f"{sorted(k.__name__ for k in kinds)}; use integers or strings")
        ordered = sorted(seen)
        labels = tuple(str(v) for v in ordered)
        if len(labels) < 2:
            raise DataError(f"{paths['train']}: the train split holds only class "
                            f"{labels[0] if labels else None!r} ({len(raw['train'])} examples); "
                            "a classification task needs at least two classes")
    splits = {}
    for split, rows in raw.items():
        path, out = paths[split], []
        for lineno, row in rows:
            a = text_field(path, lineno, row, text_column)
            b = text_field(path, lineno, row, text_pair_column) if text_pair_column else None
            value = _raw_label(path, lineno, row, label_column)
            if task_type == "classification":
                if str(value) not in labels:
                    raise DataError(f"{path}:{lineno}: label {value!r} is not one of the train "
                                    f"split's labels {list(labels)}")
                label: int | float = labels.index(str(value))
            else:
                try:
                    label = float(value)
                except (TypeError, ValueError):
                    raise DataError(f"{path}:{lineno}: label {value!r} is not a number "
                                    "(task_type regression)") from None
                if not math.isfinite(label):
                    raise DataError(f"{path}:{lineno}: label {value!r} is not finite")
            out.append(Example(a, b, label))
        splits[split] = out
    metrics = ("accuracy",) if task_type == "classification" else ("pearson", "spearman")
    task = Task("custom", "", "", "", True, lambda f: ("", None, ""), labels, metrics=metrics)
    return UserData(task, splits, paths)
