"""The one output guard: what a command may write, checked before it runs and again as it writes.

Every command names its inputs (data files and folders, the model, an adapter, a grid) and its
outputs, each with the *kind* of thing it writes there, and calls :func:`check_plan` before any
work.  An output

* is not an input of the same command (the same path, or the same file under another name),
  does not lie inside an input folder, and -- if it is a folder lorabar replaces -- holds no input;
* is not another output of the same command, nor inside or around one;
* is not a symbolic link, unless the user allows it (``--allow-symlink``);
* if it exists, is a lorabar file of the same kind, recognized by its content (:data:`KINDS`):
  a run result, an adapter report, a paired-differences table, a PNG that lorabar drew; a report
  or adapter folder carries the manifest lorabar wrote there (:data:`MANIFEST`), and only the
  files that manifest lists are ever removed -- a user's other files survive;
* can be written (its folder exists or can be made).

Writers go through :func:`write_text` / :func:`write_json` (atomic, re-checking the kind just
before the rename) and report folders through :func:`owned_files`.  Violations raise
:class:`OutputError` (a ``ValueError``: exit 2), naming the flag and the path.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FILE_KINDS", "FOLDER_KINDS", "Input", "KINDS", "MANIFEST", "Output", "OutputError",
           "add_to_manifest", "check_plan", "is_kind", "owned_files", "png_metadata",
           "publish_folder", "write_json", "write_text"]

MANIFEST = ".lorabar-manifest.json"
# an older report folder's manifest (a JSON list of the files it wrote)
LEGACY_MANIFESTS = (".lorabar-report.json",)
PNG_SOFTWARE = "lorabar"


class OutputError(ValueError):
    """An output that would lose or misplace a file (names the flag and the path)."""


@dataclass(frozen=True)
class Input:
    """A path a command reads, with the flag that named it."""

    flag: str
    path: str | os.PathLike


@dataclass(frozen=True)
class Output:
    """A path a command writes: ``kind`` is one of :data:`KINDS`."""

    flag: str
    path: str | os.PathLike
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Invalid output kind: {self.kind!r} (expected one of "
                             f"{sorted(KINDS)})")


def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_result(path: Path) -> bool:
    data = _json_object(path)
    return data is not None and isinstance(data.get("config"), dict) and "metrics" in data


def _is_layers(path: Path) -> bool:
    data = _json_object(path)
    return data is not None and isinstance(data.get("layers"), list) and "mean_abs_B" in data


def _is_png(path: Path) -> bool:
    """A PNG whose text chunks say lorabar drew it (:func:`png_metadata`)."""
    try:
        head = path.read_bytes()[:1 << 16]
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"Software\x00" + PNG_SOFTWARE.encode() in head


def _is_paired(path: Path) -> bool:
    try:
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return False
    return first.startswith("task,method,")


def _is_manifest(path: Path) -> bool:
    data = _json_object(path)
    return data is not None and isinstance(data.get("commands"), list) and "status" in data


FILE_KINDS = {"result": _is_result, "layers": _is_layers, "png": _is_png, "paired": _is_paired,
              "manifest": _is_manifest}
# "report"/"adapter": replaced whole, owned through a manifest; "figures": lorabar writes its
# files into it and lists them in a manifest (a folder without one must be empty); "folder":
# lorabar writes only its own sub-paths into it (runs/, a report/), the rest is left alone
FOLDER_KINDS = ("report", "adapter", "figures", "folder")
MANAGED = ("report", "adapter", "figures")
KINDS = (*FILE_KINDS, *FOLDER_KINDS)
WHAT = {"result": "a lorabar run result", "layers": "a lorabar adapter report",
        "png": "a figure lorabar drew", "paired": "a lorabar paired-differences table",
        "manifest": "a lorabar results manifest"}


def is_kind(path: str | os.PathLike, kind: str) -> bool:
    """Whether the existing file ``path`` is a lorabar file of ``kind`` (by its content)."""
    return FILE_KINDS[kind](Path(path))


def png_metadata() -> dict[str, str]:
    """The metadata every PNG lorabar draws carries (``savefig(..., metadata=png_metadata())``),
    so that a rerun recognizes it as its own."""
    return {"Software": PNG_SOFTWARE}


def owned_files(folder: str | os.PathLike) -> set[str] | None:
    """The names a lorabar manifest in ``folder`` lists (with the manifest itself), or ``None``
    when the folder carries no manifest."""
    folder = Path(folder)
    for name in (MANIFEST, *LEGACY_MANIFESTS):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        files = data.get("files") if isinstance(data, dict) else data
        if isinstance(files, list) and all(isinstance(f, str) and "/" not in f and f not in
                                           ("", ".", "..") for f in files):
            return set(files) | {name}
    return None


def add_to_manifest(out: Output, names: Iterable[str]) -> None:
    """Record in the manifest of the ``figures`` folder ``out`` the files lorabar wrote there."""
    folder = Path(out.path).expanduser()
    owned = (owned_files(folder) or set()) - {MANIFEST, *LEGACY_MANIFESTS}
    from ._io import write_text_atomic

    write_text_atomic(folder / MANIFEST, manifest_text(out.kind, owned | set(names)))


def manifest_text(kind: str, files: Iterable[str]) -> str:
    """The manifest lorabar writes into a report or adapter folder."""
    return json.dumps({"generator": "lorabar", "kind": kind, "files": sorted(files)}, indent=1)


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
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} is an input of this command "
                          f"({flag}); give another path")
    if path.is_dir() and _inside(p, path):
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} is inside {str(path)!r}, an "
                          f"input folder of this command ({flag}); write it elsewhere")
    if out.kind in MANAGED and _inside(path, p):
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} would be replaced whole, and "
                          f"it holds {str(path)!r}, an input of this command ({flag}); give a "
                          "folder of its own")


def _check_outputs(a: Output, b: Output) -> None:
    pa, pb = Path(a.path).expanduser(), Path(b.path).expanduser()
    if _same(pa, pb):
        raise OutputError(f"Invalid {a.flag}: {str(a.path)!r} is also {b.flag}; give each "
                          "output its own path")
    for x, y, px, py in ((a, b, pa, pb), (b, a, pb, pa)):
        if _inside(px, py) and y.kind != "folder":
            what = ("a file" if y.kind in FILE_KINDS else "a folder lorabar replaces whole")
            raise OutputError(f"Invalid {x.flag}: {str(x.path)!r} is inside {y.flag} "
                              f"{str(y.path)!r}, {what}; write it elsewhere")


def _check_existing(out: Output) -> None:
    p = Path(out.path).expanduser()
    if out.kind in FILE_KINDS:
        if p.is_dir():
            raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} is a folder (give a file "
                              "path)")
        if p.exists() and not is_kind(p, out.kind):
            raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} exists and is not "
                              f"{WHAT[out.kind]}; lorabar replaces only its own files of that "
                              "kind: give a new path")
        return
    if p.exists() and not p.is_dir():
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} is a file (give a folder)")
    if out.kind in MANAGED and p.is_dir() and any(p.iterdir()) and owned_files(p) is None:
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} exists, is not empty and is "
                          f"not a folder lorabar wrote (no {MANIFEST}); give a new folder")


def _check_writable(out: Output) -> None:
    p = Path(out.path).expanduser()
    here = p if out.kind in FOLDER_KINDS else p.parent
    while not here.exists():
        here = here.parent
    if not here.is_dir():
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} is under {str(here)!r}, which "
                          "is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=here, prefix=".lorabar-probe-")
    except OSError as err:
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} cannot be written "
                          f"({err.strerror} in {str(here)!r})") from None
    os.close(fd)
    os.unlink(tmp)


def check_output(out: Output, *, allow_symlink: bool = False) -> None:
    """The checks of one output on its own: symlink, existing content, writable."""
    p = Path(out.path).expanduser()
    if p.is_symlink() and not allow_symlink:
        raise OutputError(f"Invalid {out.flag}: {str(out.path)!r} is a symbolic link (to "
                          f"{os.readlink(p)!r}); give the real path, or pass --allow-symlink")
    _check_existing(out)
    _check_writable(out)


def check_plan(inputs: Iterable[Input], outputs: Iterable[Output], *,
               allow_symlink: bool = False) -> None:
    """Check every output of a command against its inputs and the other outputs (see the module
    docstring); raises :class:`OutputError` on the first problem, before anything is written."""
    inputs = [i for i in inputs if i.path not in (None, "")]
    outputs = [o for o in outputs if o.path not in (None, "")]
    for n, out in enumerate(outputs):
        for i in inputs:
            _check_input(out, i.flag, Path(i.path).expanduser())
        for other in outputs[n + 1:]:
            _check_outputs(out, other)
        check_output(out, allow_symlink=allow_symlink)


def write_text(out: Output, text: str, *, allow_symlink: bool = False) -> Path:
    """Write ``text`` to the file output ``out`` atomically, re-checking it just before."""
    from ._io import write_text_atomic

    check_output(out, allow_symlink=allow_symlink)
    path = Path(out.path).expanduser()
    if allow_symlink and path.is_symlink():
        path = path.resolve()
    write_text_atomic(path, text)
    return path


def write_json(out: Output, obj: object, *, allow_symlink: bool = False) -> Path:
    """:func:`write_text` of ``obj`` as JSON."""
    return write_text(out, json.dumps(obj, indent=1, default=float), allow_symlink=allow_symlink)


def publish_folder(tmp: str | os.PathLike, out: Output, *, force: bool = False) -> list[str]:
    """Put the finished folder ``tmp`` (built beside ``out``) at the report or adapter output
    ``out``: the files an earlier lorabar manifest there lists are replaced or removed, every
    other file of the folder (a user's README, notes) is carried over, a new manifest lists what
    lorabar wrote, and the swap is two renames (never a half-written folder).  Re-checks ``out``
    first (``force``: a folder without a manifest is written into too, files of the same names
    replaced).  Returns the names written."""
    import shutil

    from ._io import replace_dir

    if out.kind not in ("report", "adapter"):
        raise ValueError(f"publish_folder writes report or adapter folders, not {out.kind!r}")
    if not force:
        check_output(out, allow_symlink=False)
    tmp, target = Path(tmp), Path(out.path).expanduser()
    names = sorted(p.name for p in tmp.iterdir())
    if target.is_dir():
        owned = owned_files(target) or set()
        for item in target.iterdir():
            if item.name in owned or (tmp / item.name).exists():
                continue
            if item.is_dir() and not item.is_symlink():
                shutil.copytree(item, tmp / item.name, symlinks=True)
            else:
                shutil.copy2(item, tmp / item.name, follow_symlinks=False)
    (tmp / MANIFEST).write_text(manifest_text(out.kind, names))
    replace_dir(tmp, target)
    return names
