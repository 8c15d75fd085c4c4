"""Where the data is and which files a run read: the data directory (``--data-dir`` or
``$LORABAR_DATA_DIR``), strict UTF-8 reading of a data file (`read_data_text()`), and the record
of every file read (`recording()`: a run's identity hashes exactly the files its task read)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["DATA_ENV", "DataError", "note_read", "read_data_text", "recording", "resolve_data_dir"]

DATA_ENV = "LORABAR_DATA_DIR"


class DataError(ValueError):
    """A data file is missing or malformed (the message names the file and line)."""


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """The data directory from the argument or ``$LORABAR_DATA_DIR``; a clear error otherwise."""
    value = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if value is None:
        raise FileNotFoundError(
            f"No data directory: pass --data-dir DIR or set {DATA_ENV}=DIR, where DIR holds the "
            "task folders (e.g. DIR/sst2/k-shot-1k-test/SST-2/512-13/train.tsv); in this "
            "project's workspace that is ../shared/data"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"Data directory {str(path)!r} does not exist (from --data-dir or ${DATA_ENV})"
        )
    return path


_RECORDERS: list[list[Path]] = []


@contextlib.contextmanager
def recording():
    """``with recording() as files:`` -- ``files`` lists every data file read inside the block
    (resolved paths, in the order first read)."""
    files: list[Path] = []
    _RECORDERS.append(files)
    try:
        yield files
    finally:
        _RECORDERS.remove(files)


def note_read(path: str | os.PathLike) -> None:
    """Record that ``path`` was read (for `recording()`); `read_data_text()` does it for
    text files, binary readers (Parquet, Arrow) call this."""
    resolved = Path(path).resolve()
    for files in _RECORDERS:
        if resolved not in files:
            files.append(resolved)


def read_data_text(path: str | os.PathLike) -> str:
    """The text of a data file, strictly UTF-8 (a leading BOM is dropped); an undecodable byte
    raises `DataError` naming ``file:line``, the column and the byte."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror})") from None
    note_read(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(
            f"{path}:{line}: not valid UTF-8: byte 0x{raw[err.start]:02x} at column "
            f"{column} (data files must be UTF-8; convert it, e.g. with "
            "iconv)"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text
