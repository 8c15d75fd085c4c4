"""Writing a folder lorabar owns: built beside its place, then swapped in whole
(:func:`publish_folder`: reports, adapters) or its files added (:func:`merge_folder`: figures),
keeping every file the folder's manifest does not list (:mod:`lorabar.folders`).  Every check
of :mod:`lorabar.guard` is made again just before; a file of the user's that a write would
replace is refused by name (:class:`lorabar.guard.OutputError`), before anything moves."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .folders import MANIFEST, files_under, manifest_text, read_folder_manifest
from .guard import Output, OutputError, check_folder_kind, check_output

__all__ = ["merge_folder", "publish_folder", "staging"]


def _inside(inner: Path, outer: Path) -> bool:
    inner, outer = inner.expanduser().resolve(), outer.expanduser().resolve()
    return inner != outer and outer in inner.parents


def _copy(src: Path, dst: Path) -> None:
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir() and not src.is_symlink():
        dst.mkdir(exist_ok=True)  # an empty folder of the user's
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def _collides(tmp: Path, rel: str) -> bool:
    """Whether the new folder ``tmp`` has ``rel``, or a file where ``rel``'s folders would be."""
    dst = tmp / rel
    return dst.exists() or dst.is_symlink() or _collides_above(tmp, rel)


def _collides_above(tmp: Path, rel: str) -> bool:
    """Whether a file (or link) sits in ``tmp`` where one of ``rel``'s folders would be."""
    return any(p.is_file() or p.is_symlink() for p in (tmp / rel).parents if _inside(p, tmp))


def _carry_over(target: Path, tmp: Path, out: Output, force: bool) -> None:
    """Copy into ``tmp`` every file of ``target`` lorabar did not write; refuse one that the
    new folder would replace (``force``: replace it)."""
    manifest = read_folder_manifest(target)
    try:
        found = files_under(target)
    except OSError as err:
        raise OutputError(
            f"Invalid {out.flag}: {str(out.path)!r} holds {err.filename!r}, which "
            f"cannot be read ({err.strerror}): what it holds could not be carried "
            "over; make it readable, move it away, or give another folder"
        ) from None
    for rel in found:
        listed = manifest is not None and rel in manifest.files
        # an older manifest listed a subfolder whole: what lorabar writes again is its own
        if listed or (manifest is not None and manifest.owns(rel) and _collides(tmp, rel)):
            continue
        if _collides(tmp, rel):
            if force:
                continue
            raise OutputError(
                f"Invalid {out.flag}: {str(out.path)!r} holds {rel!r}, which "
                "lorabar did not write, and the new folder has a file of that "
                "name; move it away, or give another folder"
            )
        _copy(target / rel, tmp / rel)


def publish_folder(tmp: str | os.PathLike, out: Output, *, force: bool = False) -> list[str]:
    """Put the finished folder ``tmp`` (built beside ``out``) at the report or adapter output
    ``out``: the files an earlier lorabar manifest there lists are replaced or removed, every
    other file of the folder, subfolders included (a user's README, notes), is carried over, a
    new manifest lists every file lorabar wrote by its relative path, and the swap is two
    renames (never a half-written folder).  Re-checks ``out`` first (``force``: a folder without
    a manifest is written into too, files of the same names replaced; a folder of another kind
    is still refused).  Returns the relative paths written."""
    from ._io import replace_dir

    if out.kind not in ("report", "adapter"):
        raise ValueError(f"publish_folder writes report or adapter folders, not {out.kind!r}")
    if force:
        check_folder_kind(out, Path(out.path).expanduser())
    else:
        check_output(out, allow_symlink=False)
    tmp, target = Path(tmp), Path(out.path).expanduser()
    names = files_under(tmp)
    if target.is_dir():
        _carry_over(target, tmp, out, force)
    (tmp / MANIFEST).write_text(manifest_text(out.kind, names))
    replace_dir(tmp, target)
    return names


def merge_folder(tmp: str | os.PathLike, out: Output, *, allow_symlink: bool = False) -> list[Path]:
    """Move the files of ``tmp`` into the ``figures`` folder ``out``: a file already there is
    replaced only if the folder's manifest lists it (lorabar wrote it), else nothing is moved
    and `OutputError` names it; the manifest (written first) then lists the new files
    too.  Returns the paths written."""
    from ._io import write_text_atomic

    if out.kind != "figures":
        raise ValueError(f"merge_folder adds to figures folders, not {out.kind!r}")
    check_output(out, allow_symlink=allow_symlink)
    tmp, target = Path(tmp), Path(out.path).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    manifest = read_folder_manifest(target)
    owned = manifest.files if manifest else frozenset()
    new = files_under(tmp)
    for rel in new:  # every move checked before the first
        dst = target / rel
        mine = rel in owned and not (dst.is_dir() and not dst.is_symlink())
        if not mine and _collides(target, rel) or _collides_above(target, rel):
            raise OutputError(
                f"Invalid {out.flag}: {str(out.path)!r} holds {rel!r} (or a file "
                "where its folder goes), which lorabar did not write; move it "
                "away, or give another folder"
            )
    write_text_atomic(target / MANIFEST, manifest_text("figures", owned | set(new)))
    for rel in new:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, target / rel)
    return [target / rel for rel in new]


@contextlib.contextmanager
def staging(out: Output):
    """A temporary folder beside the output ``out`` (same file system: moves are renames) to
    build a folder's files in before `publish_folder()` or `merge_folder()`; removed
    afterwards."""
    import shutil

    target = Path(out.path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
