"""Small I/O helpers shared by the theory lab and the experiment harness."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

_DIGESTS: dict[tuple[str, int, int], str] = {}
CACHE_ENV = "LORABAR_CACHE"


def cache_root() -> Path | None:
    """lorabar's cache folder: ``$LORABAR_CACHE``, else ``~/.cache/lorabar``; ``None`` when
    ``LORABAR_CACHE=off`` (nothing is kept between processes)."""
    where = os.environ.get(CACHE_ENV)
    if where == "off":
        return None
    return Path(where).expanduser() if where else Path.home() / ".cache" / "lorabar"


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's content (cached per process by path, size and mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``:
    an interrupted write never leaves a partial file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see `write_text_atomic()`)."""
    write_text_atomic(path, json.dumps(obj, indent=1, default=float))


def replace_dir(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the finished folder ``new`` at ``target`` (same file system), replacing what is there:
    two renames, so ``target`` is always either the old folder or the new one, never a partial
    one; if the second rename fails the old folder is put back."""
    import shutil

    new, target = Path(new), Path(target)
    os.chmod(new, 0o755)  # mkdtemp makes it 0o700
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old.", suffix=".tmp"))
    os.replace(target, old / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old / target.name, target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


class _NoBar:
    """What `progress_bar()` returns when disabled: counts, prints nothing."""

    n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def set_postfix(self, **_: object) -> None:
        pass

    def close(self) -> None:
        pass


class _LineBar(_NoBar):
    """Progress as whole lines (stderr is a log file, not a terminal): one line per run, or per
    tenth of the steps, instead of hundreds of carriage returns; each with the time so far and
    the estimated time left (the mean time per unit so far)."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        import time

        self.total, self.desc, self.unit, self.start = total, desc, unit, time.perf_counter()
        self.n, self.shown, self.postfix = 0, 0, ""

    def update(self, k: int = 1) -> None:
        self.n += k
        every = 1 if self.unit == "run" else max(1, self.total // 10)
        if self.n - self.shown >= every or self.n == self.total:
            self._line()

    def set_postfix(self, refresh: bool = True, **values: object) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def _line(self) -> None:
        import sys
        import time

        self.shown = self.n
        elapsed = time.perf_counter() - self.start
        eta = (
            f", ETA {elapsed / self.n * (self.total - self.n):.0f} s"
            if 0 < self.n < self.total
            else ""
        )
        tail = f", {self.postfix}" if self.postfix else ""
        units = "" if self.unit == "it" else f" {self.unit}s"
        print(
            f"{self.desc}: {self.n}/{self.total}{units} ({elapsed:.0f} s{eta}{tail})",
            file=sys.stderr,
            flush=True,
        )


def progress_bar(
    total: int, desc: str, *, enabled: bool = True, unit: str = "it", leave: bool = False
):
    """A tqdm progress bar (steps of a run, of a simulation) on a terminal; whole lines when
    stderr is not a terminal (a log file); a silent stand-in when disabled or tqdm is not
    installed."""
    import sys

    if not enabled:
        return _NoBar()
    if not sys.stderr.isatty():
        return _LineBar(total, desc, unit)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the exp and toy extras
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit != "it", leave=leave)


def existing(path: str | os.PathLike, flag: str, kind: str, what: str) -> Path:
    """``path`` if it is a ``kind`` (``"file"`` or ``"folder"``); else one error saying which
    it is: ``FileNotFoundError`` when nothing is there, ``ValueError`` when the other kind is
    (``Invalid DIR: 'x.csv' is a file, not a results folder``; "not found" misled there)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"Invalid {flag}: {str(path)!r} does not exist ({what} expected)")
    is_kind = p.is_file() if kind == "file" else p.is_dir()
    if not is_kind:
        other = "a folder" if p.is_dir() else "a file" if p.is_file() else "not a file or folder"
        raise ValueError(f"Invalid {flag}: {str(path)!r} is {other}, not {what}")
    return p
