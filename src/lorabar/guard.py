"""The one output guard: what a command may write, checked before it runs and again as it writes.

Every command names its inputs (data files and folders, the model, an adapter, a grid) and its
outputs, each with the *kind* of thing it writes there, and calls `check_plan()` before any
work.  An output

* is not an input of the same command (the same path, or the same file under another name),
  does not lie inside an input folder, and -- if it is a folder lorabar replaces -- holds no input;
* is not another output of the same command, nor inside or around one;
* is not a symbolic link, unless the user allows it (``--allow-symlink``);
* if it exists, is lorabar's *of the same kind*, told by what the file says of itself, never by
  its shape ([`lorabar.filekinds`][lorabar.filekinds]): a JSON file's ``lorabar`` header (a run
  result from
  before headers: its digest), a PNG's ``Software: lorabar`` text chunk, a CSV's sha256 in its
  folder's manifest; a folder by its manifest's kind ([`lorabar.folders`][lorabar.folders]) -- a
  report is
  never written into an adapter folder, nor a results folder into either;
* inside a folder lorabar replaces or adds to, only the files its manifest lists (by relative
  path, subfolders included) are ever replaced or removed: a user's other files are carried
  over, and a write that would replace one of them is refused;
* can be written (its folder exists or can be made).

Writers go through `write_text()` / `write_json()` (atomic, re-checking the kind just
before the rename; JSON stamped with its kind), folders through [`lorabar.publish`][lorabar.publish]
(replaced whole, or files added).  Violations raise
`OutputError` (a ``ValueError``: exit 2), naming the flag and the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .filekinds import HEADER, JSON_KINDS, digest_ok, header_kind, stamp, with_digest
from .folders import FOLDER_KINDS, MANIFEST, manifest_text, read_folder_manifest

__all__ = [
    "FILE_KINDS",
    "FOLDER_KINDS",
    "Input",
    "KINDS",
    "MANIFEST",
    "Output",
    "OutputError",
    "check_folder_kind",
    "check_output",
    "check_plan",
    "is_kind",
    "owned_files",
    "png_metadata",
    "write_json",
    "write_text",
]

PNG_SOFTWARE = "lorabar"
UPGRADE = "lorabar upgrade"


class OutputError(ValueError):
    """An output that would lose or misplace a file (names the flag and the path)."""


@dataclass(frozen=True)
class Input:
    """A path a command reads, with the flag that named it."""

    flag: str
    path: str | os.PathLike


@dataclass(frozen=True)
class Output:
    """A path a command writes: ``kind`` is one of `KINDS`."""

    flag: str
    path: str | os.PathLike
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"Invalid output kind: {self.kind!r} (expected one of {sorted(KINDS)})"
            )


def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _is_json(kind: str):
    def recognise(path: Path) -> bool:
        data = _json_object(path)
        if data is None:
            return False
        if HEADER in data:
            return header_kind(data) == kind
        # from before headers, only what proves lorabar wrote it: a result's matching digest,
        # a comparison record's generator
        return {
            "result": lambda: isinstance(data.get("config"), dict) and digest_ok(data),
            "compare": lambda: data.get("generator") == "lorabar compare",
        }.get(kind, lambda: False)()

    return recognise


def _is_png(path: Path) -> bool:
    """A PNG whose text chunks say lorabar drew it (`png_metadata()`)."""
    try:
        head = path.read_bytes()[: 1 << 16]
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"Software\x00" + PNG_SOFTWARE.encode() in head


def _is_listed(path: Path) -> bool:
    """A file its folder's manifest lists with its current sha256 (a CSV lorabar wrote)."""
    manifest = read_folder_manifest(path.parent)
    return (
        manifest is not None
        and manifest.kind == "folder"
        and manifest.sha256.get(path.name) == _sha256(path)
    )


FILE_KINDS = {**{k: _is_json(k) for k in JSON_KINDS}, "png": _is_png, "paired": _is_listed}
# "report"/"adapter": replaced whole; "figures": lorabar adds its files; "folder": lorabar writes
# only its own sub-paths into it (runs/, a report/); all four known by their manifest's kind
MANAGED = ("report", "adapter", "figures")
KINDS = (*FILE_KINDS, *FOLDER_KINDS)
WHAT = {
    "result": "a lorabar run result",
    "layers": "a lorabar adapter report",
    "png": "a figure lorabar drew",
    "paired": "a lorabar paired-differences table",
    "manifest": "a lorabar results manifest",
    "compare": "a lorabar comparison record",
    "error": "a lorabar failed run's error record",
    "report": "a lorabar report folder",
    "adapter": "a lorabar adapter folder",
    "figures": "a lorabar figures folder",
    "folder": "a lorabar results folder",
}
# what a file of each kind looked like before files carried their kind
_OLD_SHAPES = {
    "result": lambda d: isinstance(d.get("config"), dict) and "metrics" in d,
    "layers": lambda d: isinstance(d.get("layers"), list) and "mean_abs_B" in d,
    "manifest": lambda d: isinstance(d.get("commands"), list) and "status" in d,
    "error": lambda d: isinstance(d.get("config"), dict) and "traceback" in d,
}


def is_kind(path: str | os.PathLike, kind: str) -> bool:
    """Whether the existing file ``path`` is a lorabar file of ``kind`` (what it says of itself)."""
    return FILE_KINDS[kind](Path(path))


def _older(path: Path, kind: str) -> bool:
    """Whether ``path`` looks like a ``kind`` file of a lorabar from before kinds were written."""
    if kind == "paired":
        try:
            return path.read_text(encoding="utf-8").startswith("task,method,")
        except (OSError, UnicodeDecodeError):
            return False
    data = _json_object(path)
    return data is not None and HEADER not in data and _OLD_SHAPES.get(kind, lambda d: False)(data)


def png_metadata() -> dict[str, str]:
    """The metadata every PNG lorabar draws carries (``savefig(..., metadata=png_metadata())``),
    so that a rerun recognizes it as its own."""
    return {"Software": PNG_SOFTWARE}


def owned_files(folder: str | os.PathLike) -> set[str] | None:
    """The relative paths a lorabar manifest in ``folder`` lists (with the manifest itself), or
    ``None`` when the folder carries no manifest."""
    manifest = read_folder_manifest(folder)
    return None if manifest is None else set(manifest.files) | {manifest.name}


def _real(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _same(a: Path, b: Path) -> bool:
    if _real(a) == _real(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(inner: Path, outer: Path) -> bool:
    inner, outer = _real(inner), _real(outer)
    return inner != outer and outer in inner.parents


def _check_input(out: Output, flag: str, path: Path) -> None:
    p = Path(out.path).expanduser()
    if _same(p, path):
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} is an input of this command "
            f"({flag}); give another path"
        )
    if path.is_dir() and _inside(p, path):
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} is inside {str(path)!r}, an "
            f"input folder of this command ({flag}); write it elsewhere"
        )
    if out.kind in MANAGED and _inside(path, p):
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} would be replaced whole, and "
            f"it holds {str(path)!r}, an input of this command ({flag}); give a "
            "folder of its own"
        )


def _check_outputs(a: Output, b: Output) -> None:
    pa, pb = Path(a.path).expanduser(), Path(b.path).expanduser()
    if _same(pa, pb):
        raise OutputError(
            f"Invalid {a.flag}: {str(a.path)!r} is also {b.flag}; give each output its own path"
        )
    for x, y, px, py in ((a, b, pa, pb), (b, a, pb, pa)):
        if _inside(px, py) and y.kind != "folder":
            what = "a file" if y.kind in FILE_KINDS else "a folder lorabar replaces whole"
            raise OutputError(
                f"Invalid {x.flag}: {str(x.path)!r} is inside {y.flag} "
                f"{str(y.path)!r}, {what}; write it elsewhere"
            )


def _check_file(out: Output, p: Path) -> None:
    if p.is_dir():
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} is a folder (give a file path)")
    if p.exists() and not is_kind(p, out.kind):
        older = (
            f"; if an older lorabar wrote it, bring it forward with `{UPGRADE} "
            f"{out.path}`, else give a new path"
            if _older(p, out.kind)
            else "; give a new path"
        )
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} exists and is not "
            f"{WHAT[out.kind]}; lorabar replaces only its own files of that "
            f"kind{older}"
        )


def check_folder_kind(out: Output, p: Path) -> None:
    """A folder is written only if its manifest's kind is the kind being written."""
    if p.exists() and not p.is_dir():
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} is a file (give a folder)")
    manifest = read_folder_manifest(p) if p.is_dir() else None
    if manifest is not None and manifest.kind != out.kind:
        what = WHAT.get(manifest.kind or "", "a lorabar folder of no known kind")
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} is {what}, not "
            f"{WHAT[out.kind]}; give a folder of its own"
        )


def _check_existing(out: Output) -> None:
    p = Path(out.path).expanduser()
    if out.kind in FILE_KINDS:
        _check_file(out, p)
        return
    check_folder_kind(out, p)
    if out.kind in MANAGED and p.is_dir() and read_folder_manifest(p) is None and any(p.iterdir()):
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} exists, is not empty and is "
            f"not a folder lorabar wrote (no {MANIFEST}); give a new folder"
        )


def _check_writable(out: Output) -> None:
    p = Path(out.path).expanduser()
    here = p if out.kind in FOLDER_KINDS else p.parent
    while not here.exists():
        here = here.parent
    if not here.is_dir():
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} is under {str(here)!r}, which "
            "is a file, not a folder"
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=here, prefix=".lorabar-probe-")
    except OSError as err:
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} cannot be written "
            f"({err.strerror} in {str(here)!r})"
        ) from None
    os.close(fd)
    os.unlink(tmp)


def check_output(out: Output, *, allow_symlink: bool = False, adopt: bool = False) -> None:
    """The checks of one output on its own: symlink, existing content (``adopt``: not checked,
    an existing file is brought forward as ``out.kind``), writable."""
    p = Path(out.path).expanduser()
    if p.is_symlink() and not allow_symlink:
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} is a symbolic link (to "
            f"{os.readlink(p)!r}); give the real path, or pass --allow-symlink"
        )
    if not adopt:
        _check_existing(out)
    _check_writable(out)


def check_plan(
    inputs: Iterable[Input], outputs: Iterable[Output], *, allow_symlink: bool = False
) -> None:
    """Check every output of a command against its inputs and the other outputs (see the module
    docstring); raises `OutputError` on the first problem, before anything is written."""
    inputs = [i for i in inputs if i.path not in (None, "")]
    outputs = [o for o in outputs if o.path not in (None, "")]
    for n, out in enumerate(outputs):
        for i in inputs:
            _check_input(out, i.flag, Path(i.path).expanduser())
        for other in outputs[n + 1 :]:
            _check_outputs(out, other)
        check_output(out, allow_symlink=allow_symlink)


def _list_in_folder(path: Path) -> None:
    """Record the CSV ``path`` with its sha256 in its folder's manifest (a results folder's)."""
    from ._io import write_text_atomic

    manifest = read_folder_manifest(path.parent)
    if manifest is not None and manifest.kind != "folder":
        raise OutputError(
            f"Invalid output: {str(path.parent)!r} is {WHAT.get(manifest.kind or '')}"
            ", not a results folder"
        )
    files = (manifest.files if manifest else frozenset()) | {path.name}
    digests = {**(manifest.sha256 if manifest else {}), path.name: _sha256(path)}
    write_text_atomic(path.parent / MANIFEST, manifest_text("folder", files, digests))


def write_text(out: Output, text: str, *, allow_symlink: bool = False, adopt: bool = False) -> Path:
    """Write ``text`` to the file output ``out`` atomically, re-checking it just before (a CSV
    is then listed with its sha256 in its folder's manifest: how a rerun knows it).  ``adopt``
    (``lorabar upgrade`` only, after its own checks): an existing file of an older lorabar is
    replaced although it does not yet say it is lorabar's."""
    from ._io import write_text_atomic

    check_output(out, allow_symlink=allow_symlink, adopt=adopt)
    path = Path(out.path).expanduser()
    if allow_symlink and path.is_symlink():
        path = path.resolve()
    write_text_atomic(path, text)
    if out.kind == "paired":
        _list_in_folder(path)
    return path


def write_json(out: Output, obj: dict, *, allow_symlink: bool = False, adopt: bool = False) -> Path:
    """`write_text()` of ``obj`` as JSON, stamped with its kind (`filekinds.stamp()`); a
    run result also signed (`filekinds.with_digest()`)."""
    if out.kind in JSON_KINDS:
        obj = stamp(out.kind, obj)
        if out.kind == "result":
            obj = with_digest(obj)
    return write_text(
        out, json.dumps(obj, indent=1, default=float), allow_symlink=allow_symlink, adopt=adopt
    )
