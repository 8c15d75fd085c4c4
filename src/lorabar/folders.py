"""What lorabar owns inside a folder: the folder's manifest, ``.lorabar-manifest.json``.

A folder lorabar writes carries a manifest naming the folder's kind and every file lorabar wrote
there, by its path relative to the folder (``portable/adapter_config.json``, never a whole
subfolder):

```
{"generator": "lorabar", "kind": "adapter", "listing": "files",
 "files": ["adapter_config.json", "lorabar/adapter_config.json", ...],
 "sha256": {"paired.csv": "<hex>"}}      # only for files that cannot name their kind
```

A manifest without ``"listing": "files"`` is an older lorabar's, which listed a subfolder by its
name: there, a listed name that is a folder owns what lorabar writes into it again.

The kinds: ``report`` and ``adapter`` (replaced whole,
[`publish_folder()`][lorabar.publish.publish_folder]), ``figures`` (lorabar adds its files,
[`merge_folder()`][lorabar.publish.merge_folder]) and ``folder`` (a results folder: lorabar
writes its own sub-paths; the manifest lists the CSV files it wrote there with their sha256,
since a CSV cannot carry a header).  Everything not listed is the user's: it is carried over,
never replaced.  Reading only; the writers are in [`lorabar.publish`][lorabar.publish].
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "FOLDER_KINDS",
    "LEGACY_MANIFESTS",
    "MANIFEST",
    "FolderManifest",
    "files_under",
    "manifest_text",
    "read_folder_manifest",
]

MANIFEST = ".lorabar-manifest.json"
# an older report folder's manifest (a JSON list of the files it wrote)
LEGACY_MANIFESTS = (".lorabar-report.json",)
FOLDER_KINDS = ("report", "adapter", "figures", "folder")


def _safe(name: object) -> bool:
    """A relative path that stays inside its folder."""
    if (
        not isinstance(name, str)
        or not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
    ):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


@dataclass(frozen=True)
class FolderManifest:
    """A folder's manifest: its kind, the files lorabar wrote (relative paths) and the sha256 of
    those that cannot name their own kind; ``name`` is the manifest's file name."""

    kind: str | None
    files: frozenset[str]
    sha256: dict[str, str] = field(default_factory=dict)
    name: str = MANIFEST
    older: bool = False  # an older lorabar's, which listed subfolders whole

    def owns(self, rel: str) -> bool:
        """Whether lorabar wrote ``rel``: a listed file, or (older manifests only) a file inside
        a folder listed whole."""
        return rel in self.files or (
            self.older and any(rel.startswith(f + "/") for f in self.files)
        )


def read_folder_manifest(folder: str | os.PathLike) -> FolderManifest | None:
    """The manifest of ``folder``, ``None`` if it has none that parses (or one that names a path
    outside the folder)."""
    folder = Path(folder)
    for name in (MANIFEST, *LEGACY_MANIFESTS):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if name in LEGACY_MANIFESTS:
            data = {"kind": "report", "files": data}
        if not isinstance(data, dict):
            continue
        files, digests = data.get("files"), data.get("sha256", {})
        if not isinstance(files, list) or not all(_safe(f) for f in files):
            continue
        if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
            continue
        kind = data.get("kind")
        return FolderManifest(
            kind if kind in FOLDER_KINDS else None,
            frozenset(files),
            {k: v for k, v in digests.items() if k in files},
            name,
            older=data.get("listing") != "files",
        )
    return None


def manifest_text(kind: str, files, sha256: dict[str, str] | None = None) -> str:
    """The manifest lorabar writes into a folder of ``kind``."""
    body = {"generator": "lorabar", "kind": kind, "listing": "files", "files": sorted(files)}
    if sha256:
        body["sha256"] = dict(sorted(sha256.items()))
    return json.dumps(body, indent=1)


def files_under(folder: str | os.PathLike) -> list[str]:
    """Every file (and symbolic link, and empty folder) below ``folder``, as relative POSIX
    paths, links never followed; the manifest itself left out.  A subfolder that cannot be read
    is an ``OSError`` (what it holds cannot be carried over)."""
    folder = Path(folder)
    found = []

    def unreadable(err: OSError) -> None:
        raise err

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        here = Path(root)
        for d in list(dirs):
            if (here / d).is_symlink():
                dirs.remove(d)
                files.append(d)
        if not dirs and not files and here != folder:
            found.append(PurePosixPath(here.relative_to(folder)).as_posix())
        found += [PurePosixPath((here / f).relative_to(folder)).as_posix() for f in files]
    return sorted(f for f in found if f not in (MANIFEST, *LEGACY_MANIFESTS))
