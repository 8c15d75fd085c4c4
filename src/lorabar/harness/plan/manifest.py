"""A results folder's manifest: which commands made it, from which grids, where its report is,
whether it is current, and which code its runs ran.

``OUT/manifest.json``:

```
{"commands": ["lorabar compare --grid grids/faithful_tune.toml ... --out results/faithful"],
 "grids": ["grids/faithful_tune.toml"],
 "report": "docs/results/faithful",
 "status": "current",            # current | superseded | invalid
 "superseded_by": null,           # with status superseded: the folder that replaces it
 "reason": null,                  # with status superseded or invalid: why, one sentence
 "revisions": ["9c6a0ee...", "f22eff9..."],   # the runs' code revisions, oldest first
 "reuses": ["../faithful/runs/sst2_lora_s13_4f1c0a9b2e.json"]}  # runs of other folders
```

``reuses``: finished runs of other folders that count as this folder's (paths relative to it),
instead of copies: ``--reuse DIR`` adds a planned run whose finished result (same identity) is in
``DIR/runs``; the report reads them and a grid skips them.  A reference that no longer resolves
to a finished result of its name is an error naming the manifest.

``lorabar grid`` and ``lorabar compare`` add their command line, grid and report folder when they
start and the runs' revisions when they end; ``status``, ``superseded_by`` and ``reason`` are the
maintainer's to set by hand and are never changed by a command.  ``lorabar report`` states the
status, the commands and the revision range in the first lines of ``report.md``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ...filekinds import HEADER

__all__ = [
    "RESULTS_MANIFEST",
    "STATUSES",
    "Manifest",
    "add_reuses",
    "read_manifest",
    "record_command",
    "record_revisions",
    "reused_files",
    "revisions_of",
]

RESULTS_MANIFEST = "manifest.json"
STATUSES = ("current", "superseded", "invalid")


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What ``OUT/manifest.json`` holds (see the module docstring); checked on construction."""

    commands: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()
    report: str | None = None
    status: str = "current"
    superseded_by: str | None = None
    reason: str | None = None
    revisions: tuple[str, ...] = ()
    reuses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("commands", "grids", "revisions", "reuses"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
                raise ValueError(
                    f"Invalid manifest: {name} = {value!r} (expected a list of non-empty strings)"
                )
        for name in ("report", "superseded_by", "reason"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(
                    f"Invalid manifest: {name} = {value!r} (expected a non-empty string or null)"
                )
        if self.status not in STATUSES:
            raise ValueError(
                f"Invalid manifest: status = {self.status!r} (expected one of {list(STATUSES)})"
            )
        if (self.status == "superseded") != (self.superseded_by is not None):
            raise ValueError(
                "Invalid manifest: superseded_by goes with status 'superseded' "
                f"(status {self.status!r}, superseded_by {self.superseded_by!r})"
            )
        if self.status != "current" and self.reason is None:
            raise ValueError(f"Invalid manifest: status {self.status!r} needs a reason")
        bad = [r for r in self.reuses if not r.endswith(".json") or Path(r).is_absolute()]
        if bad or len(set(Path(r).name for r in self.reuses)) != len(self.reuses):
            raise ValueError(
                f"Invalid manifest: reuses = {list(self.reuses)!r} (expected "
                "relative paths of result files, one per run name)"
            )

    @classmethod
    def from_json(cls, data: object, source: str = RESULTS_MANIFEST) -> Manifest:
        if not isinstance(data, dict):
            raise ValueError(f"Invalid manifest {source}: expected a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {HEADER})
        if unknown:
            raise ValueError(
                f"Invalid manifest {source}: unknown keys {unknown} (expected {sorted(names)})"
            )
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != HEADER}
        try:
            return cls(**fields)
        except ValueError as err:
            raise ValueError(
                str(err).replace("Invalid manifest:", f"Invalid manifest {source}:")
            ) from None

    def to_json(self) -> dict:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def headline(self) -> str:
        """The status line a report starts with."""
        state = {
            "current": "current",
            "superseded": f"superseded by {self.superseded_by}: {self.reason}",
            "invalid": f"INVALID: {self.reason}",
        }[self.status]
        span = (
            ""
            if not self.revisions
            else f"; code revisions {self.revisions[0][:12]}"
            + (
                f" .. {self.revisions[-1][:12]} ({len(self.revisions)})"
                if len(self.revisions) > 1
                else ""
            )
        )
        return f"Status: {state}{span}."


def read_manifest(folder: str | Path) -> Manifest | None:
    """The manifest of a results folder, ``None`` if it has none; a file that is not a manifest
    is one ``ValueError`` naming it and the key."""
    path = Path(folder) / RESULTS_MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"Invalid manifest {path}: not readable JSON ({err})") from None
    return Manifest.from_json(data, str(path))


def _write(folder: Path, manifest: Manifest) -> None:
    from ...guard import Output, write_json

    write_json(Output("--out", folder / RESULTS_MANIFEST, "manifest"), manifest.to_json())


def record_command(
    folder: str | Path, command: str, *, grid: str | None = None, report: str | None = None
) -> Manifest:
    """Add ``command`` (and its grid, report folder) to ``folder``'s manifest, keeping the rest."""
    folder = Path(folder)
    had = read_manifest(folder) or Manifest()
    new = dataclasses.replace(
        had,
        commands=had.commands + (() if command in had.commands else (command,)),
        grids=had.grids + (() if grid is None or grid in had.grids else (grid,)),
        report=report if report is not None else had.report,
    )
    if new != had:
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder, new)
    return new


def revisions_of(records: list[dict]) -> tuple[str, ...]:
    """The distinct code revisions runs recorded, ordered by their first run's creation time."""
    first: dict[str, str] = {}
    for r in records:
        env = r.get("environment") or {}
        rev, when = env.get("git_revision"), str(env.get("created") or "")
        if isinstance(rev, str) and rev and (rev not in first or when < first[rev]):
            first[rev] = when
    return tuple(sorted(first, key=lambda rev: (first[rev], rev)))


def record_revisions(folder: str | Path, records: list[dict]) -> None:
    """Set the manifest's ``revisions`` from the folder's runs (if it has a manifest)."""
    folder = Path(folder)
    had = read_manifest(folder)
    if had is not None and had.revisions != (new := revisions_of(records)):
        _write(folder, dataclasses.replace(had, revisions=new))


def reused_files(folder: str | Path) -> dict[str, Path]:
    """The run files ``folder``'s manifest reuses, by file name (``{}`` without a manifest);
    a reference to a missing file is one ``ValueError`` naming the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    files = {}
    for ref in manifest.reuses if manifest else ():
        path = folder / ref
        if not path.is_file():
            raise ValueError(
                f"Invalid manifest {folder / RESULTS_MANIFEST}: reuses {ref!r}, which "
                "does "
                "not exist (moved or deleted?)"
            )
        files[path.name] = path
    return files


def add_reuses(folder: str | Path, paths: list[Path]) -> None:
    """Record ``paths`` (finished runs of other folders) as reused by ``folder``."""
    import os

    folder = Path(folder)
    had = read_manifest(folder) or Manifest()
    refs = [os.path.relpath(p, folder) for p in paths]
    new = tuple(sorted(set(had.reuses) | set(refs)))
    if new != had.reuses:
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder, dataclasses.replace(had, reuses=new))
