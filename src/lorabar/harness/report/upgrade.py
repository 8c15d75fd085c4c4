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

A result whose digest does not match (edited by hand), stamped or not, and a listed
``paired.csv`` edited since, are never signed: they are reported and left alone.  Look-alikes
are checked to the field (an adapter report's layers, an error record's place in ``runs/``).
Files that already say what they are, and files of no lorabar shape, are left alone.  The whole
plan is built and checked before anything is written (a symbolic link named is refused);
``check`` writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...filekinds import DIGEST, HEADER, digest_ok, header_kind
from ..plan.manifest import RESULTS_MANIFEST, Manifest
from ..plan.protocol import RECORD
from ..run.identity import RUN_NAME, run_id
from .load import BadResultError, check_content, check_name

__all__ = ["Step", "apply_upgrade", "plan_upgrade"]


@dataclass(frozen=True)
class Step:
    """One file to bring forward (``kind``: what it becomes) or to report (``kind`` None)."""

    path: Path
    kind: str | None
    why: str


ALTERED = "altered: its content does not match its digest; left alone"


def _result_step(path: Path, data: dict) -> Step:
    if DIGEST in data:
        return Step(path, None, ALTERED)
    try:
        check_name(path, check_content(path))
        run_id(data["identity"])  # an identity a run could have
    except (BadResultError, KeyError, TypeError) as err:
        why = (
            str(err).removeprefix(f"{path}: ")
            if isinstance(err, BadResultError)
            else f"its identity is not a run's ({err.__class__.__name__}: {err})"
        )
        return Step(path, None, f"not signed: {why}")
    return Step(path, "result", "checked, then signed")


def _is_layers(data: dict) -> bool:
    """What ``lorabar inspect --json`` wrote, to the field (not a user's look-alike)."""
    layer = {"name": str, "norm_A": float, "norm_B": float, "B": float}
    numbers = all(
        isinstance(data.get(k), int | float) for k in ("mean_abs_B", "max_abs_B", "r", "lora_alpha")
    )
    layers = data.get("layers")
    return (
        numbers
        and isinstance(layers, list)
        and all(
            isinstance(x, dict)
            and all(isinstance(x.get(k), t if t is str else int | float) for k, t in layer.items())
            for x in layers
        )
    )


def _is_error(path: Path, data: dict) -> bool:
    """A grid's ``runs/<run id>.error.json``: a run's config, its error and traceback."""
    config = data.get("config")
    return (
        path.parent.name == "runs"
        and RUN_NAME.match(path.name[: -len(".error.json")]) is not None
        and isinstance(config, dict)
        and {"task", "method", "seed"} <= set(config)
        and isinstance(data.get("error"), str)
        and isinstance(data.get("traceback"), str)
    )


def _json_step(path: Path) -> Step | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if HEADER in data:  # says what it is; a signed kind whose digest no longer matches: said
        return (
            Step(path, None, ALTERED)
            if header_kind(data) == "result" and not digest_ok(data)
            else None
        )
    if isinstance(data.get("config"), dict) and "metrics" in data:
        return None if DIGEST in data and digest_ok(data) else _result_step(path, data)
    if _is_layers(data):
        return Step(path, "layers", "an adapter report: checked, then stamped")
    if path.name == RESULTS_MANIFEST and isinstance(data.get("commands"), list):
        Manifest.from_json(data, str(path))  # a ValueError naming the file and the key
        return Step(path, "manifest", "a results manifest: checked, then stamped")
    if path.name.endswith(".error.json") and _is_error(path, data):
        return Step(path, "error", "a failed run's error record: checked, then stamped")
    if path.name == RECORD and data.get("generator") == "lorabar compare":
        return Step(path, "compare", "a comparison record: stamped")
    return None


def _paired_step(path: Path) -> Step | None:
    from ...folders import read_folder_manifest
    from ...guard import is_kind

    try:
        looks = path.read_text(encoding="utf-8").startswith("task,method,")
    except (OSError, UnicodeDecodeError):
        return None
    if not looks or is_kind(path, "paired") or not (path.parent / RECORD).is_file():
        return None
    manifest = read_folder_manifest(path.parent)
    if manifest is not None and path.name in manifest.sha256:  # listed, and changed since
        return Step(
            path,
            None,
            "edited since lorabar wrote it (its sha256 no longer matches "
            "the folder's manifest); left alone",
        )
    return Step(path, "paired", "a comparison's paired differences: listed with its sha256")


def plan_upgrade(paths: list[str | Path]) -> list[Step]:
    """Every file under ``paths`` (files or folders, searched recursively) to bring forward or
    to report; a path that does not exist is a ``FileNotFoundError``."""
    steps: list[Step] = []
    for given in paths:
        root = Path(given).expanduser()
        if root.is_symlink():
            raise ValueError(f"Invalid PATH: {str(given)!r} is a symbolic link; give the real path")
        if not root.exists():
            raise FileNotFoundError(f"Invalid PATH: {str(given)!r} does not exist")
        files = (
            [root]
            if root.is_file()
            else sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        )
        for path in files:
            step = (
                _json_step(path)
                if path.suffix == ".json"
                else _paired_step(path)
                if path.name == "paired.csv"
                else None
            )
            if step is not None and step.path not in {s.path for s in steps}:
                steps.append(step)
    from ...guard import Output, check_output

    for step in steps:  # every write checked before the first
        if step.kind is not None:
            check_output(Output("PATH", step.path, step.kind), adopt=True)
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
