"""``lorabar upgrade``: bring files an older lorabar wrote forward, checked, then signed.

Files from before kinds ([`lorabar.filekinds`][lorabar.filekinds]) or digests are not trusted:
``report`` leaves
a result without a digest out, and no command replaces a file that does not say it is lorabar's.
For the paths the user names, `plan_upgrade()` finds each such file and checks it as its
reader would:

* a run result without a digest: complete and named after its identity
  (`lorabar.harness.report.load.check_content()`), then stamped and signed;
* an adapter report (``layers``, ``mean_abs_B``), a results manifest (validated as
  [`lorabar.harness.plan.manifest.Manifest`][lorabar.harness.plan.manifest.Manifest]), a comparison
  record, a failed run's error
  record: stamped with their kind;
* a comparison's ``paired.csv`` beside its record: listed with its sha256 in the folder's
  manifest.

A result whose digest does not match (edited by hand) is never signed: it is reported and left
alone.  Files that already say what they are, and files of no lorabar shape, are left alone.  The
whole plan is built and checked before anything is written; ``check`` writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...filekinds import DIGEST, HEADER, digest_ok
from ..plan.manifest import RESULTS_MANIFEST, Manifest
from ..plan.protocol import RECORD
from .load import BadResultError, check_content, check_name

__all__ = ["Step", "apply_upgrade", "plan_upgrade"]


@dataclass(frozen=True)
class Step:
    """One file to bring forward (``kind``: what it becomes) or to report (``kind`` None)."""

    path: Path
    kind: str | None
    why: str


def _json_step(path: Path) -> Step | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or HEADER in data:
        return None
    if isinstance(data.get("config"), dict) and "metrics" in data:
        if DIGEST in data:
            return None if digest_ok(data) else Step(path, None, "altered: its content does "
                                                     "not match its digest; left alone")
        try:
            check_name(path, check_content(path))
        except BadResultError as err:
            return Step(path, None, f"not signed: {str(err).removeprefix(f'{path}: ')}")
        return Step(path, "result", "checked, then signed")
    if isinstance(data.get("layers"), list) and "mean_abs_B" in data:
        return Step(path, "layers", "an adapter report: stamped")
    if path.name == RESULTS_MANIFEST and isinstance(data.get("commands"), list):
        Manifest.from_json(data, str(path))  # a ValueError naming the file and the key
        return Step(path, "manifest", "a results manifest: checked, then stamped")
    if path.name.endswith(".error.json") and isinstance(data.get("config"), dict) \
            and "traceback" in data:
        return Step(path, "error", "a failed run's error record: stamped")
    if path.name == RECORD and data.get("generator") == "lorabar compare":
        return Step(path, "compare", "a comparison record: stamped")
    return None


def _paired_step(path: Path) -> Step | None:
    from ...guard import is_kind

    try:
        looks = path.read_text(encoding="utf-8").startswith("task,method,")
    except (OSError, UnicodeDecodeError):
        return None
    if not looks or is_kind(path, "paired") or not (path.parent / RECORD).is_file():
        return None
    return Step(path, "paired", "a comparison's paired differences: listed with its sha256")


def plan_upgrade(paths: list[str | Path]) -> list[Step]:
    """Every file under ``paths`` (files or folders, searched recursively) to bring forward or
    to report; a path that does not exist is a ``FileNotFoundError``."""
    steps: list[Step] = []
    for given in paths:
        root = Path(given).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"Invalid PATH: {str(given)!r} does not exist")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*")
                                                      if p.is_file() and not p.is_symlink())
        for path in files:
            step = (_json_step(path) if path.suffix == ".json" else
                    _paired_step(path) if path.name == "paired.csv" else None)
            if step is not None and step.path not in {s.path for s in steps}:
                steps.append(step)
    return steps


def apply_upgrade(steps: list[Step]) -> int:
    """Write every step that brings a file forward; returns how many were written."""
    from ...guard import Output, write_json, write_text

    done = 0
    for step in steps:
        if step.kind is None:
            continue
        out = Output("PATH", step.path, step.kind)
        if step.kind == "paired":
            write_text(out, step.path.read_bytes().decode(), adopt=True)  # CRLF kept
        else:
            write_json(out, json.loads(step.path.read_text(encoding="utf-8")), adopt=True)
        done += 1
    return done
