"""Reading a result folder: each file checked (complete, signed, named after its identity),
the runs compared for comparability (`check_comparable()`), failed runs set apart."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from ..run.identity import RUN_NAME, own_task_name, run_id
from ..run.registry import METHODS
from ...filekinds import header_kind
from ...guard import UPGRADE
from ..run.records import DIGEST, digest_ok
from ..run.result import RunRecord

REQUIRED = ("config", "key", "identity", "metrics", "primary_metric")
# what dev selection chooses among; every other identity field must agree across a report
TUNED = (
    ("lr", "bar")
    + tuple(sorted({h for m in METHODS.values() for h in m.hparams}))
    + ("weight_decay",)
)  # a recipe may set it per method (App. D.4: 0 for BAR on CoLA, RTE)
# shown as columns when --allow-mixed reports runs of different contexts side by side
MIXED_COLUMNS = ("model", "steps", "precision")


class BadResultError(ValueError):
    """A result file that does not parse or lacks what a report needs (names the file)."""


class AlteredResultError(BadResultError):
    """A result file whose content does not match the digest written with it (edited by hand),
    or that carries none (written by a lorabar before digests: ``lorabar upgrade`` checks and
    signs those)."""


def check_result(path: Path) -> dict:
    """The result in ``path``, checked: complete (`check_content()`), signed (its digest
    matches; `AlteredResultError` if not) and named after its identity."""
    data = check_content(path)
    if not digest_ok(data):
        if DIGEST in data:
            raise AlteredResultError(
                f"{path}: altered: its content does not match its digest "
                "(edited by hand? rerun the run); left out"
            )
        raise AlteredResultError(
            f"{path}: carries no digest (written by a lorabar before "
            f"digests? check and sign it with `{UPGRADE} "
            f"{path.parent}`); left out"
        )
    check_name(path, data)
    return data


def check_content(path: Path) -> dict:
    """The parsed result in ``path``, complete (what a report needs); `BadResultError`
    naming the file otherwise.  Its digest is not checked."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BadResultError(
            f"{path}: not a readable JSON result ({err}); a truncated write? "
            "Delete it and rerun its grid, or pass --skip-bad"
        ) from None
    if not isinstance(data, dict):
        raise BadResultError(
            f"{path}: not a result (a JSON {type(data).__name__}, expected an "
            "object); pass --skip-bad to leave it out"
        )
    if "identity" not in data and isinstance(data.get("config"), dict):
        raise BadResultError(
            f"{path}: no recorded identity (written by a lorabar from before "
            "run identities); re-key it with python scripts/rekey_results.py "
            "or rerun its grid, or pass --skip-bad"
        )
    missing = [k for k in REQUIRED if k not in data]
    config = data.get("config")
    if isinstance(config, dict):
        missing += [f"config.{k}" for k in ("task", "method", "seed") if k not in config]
    if missing:
        raise BadResultError(
            f"{path}: not a complete result: missing {', '.join(missing)}; "
            "pass --skip-bad to leave it out"
        )
    wrong = _wrong_types(data)
    if wrong:
        raise BadResultError(
            f"{path}: not a result: {', '.join(wrong)}; pass --skip-bad to leave it out"
        )
    metric, metrics = data["primary_metric"], data["metrics"]
    missing = [
        f"metrics.{s}.{metric}"
        for s in ("dev", "test")
        if not isinstance(metrics.get(s), dict) or metric not in metrics[s]
    ]
    if missing:
        raise BadResultError(
            f"{path}: not a complete result: missing {', '.join(missing)}; "
            "pass --skip-bad to leave it out"
        )
    return data


# what each field of a result must be (a file of the right keys and wrong types is no result)
_TYPES = (
    ("config", dict, "an object"),
    ("identity", dict, "an object"),
    ("metrics", dict, "an object"),
    ("primary_metric", str, "a string"),
    ("config.task", str, "a string"),
    ("config.method", str, "a string"),
    ("config.seed", int, "an integer"),
    ("identity.config", dict, "an object"),
    ("identity.data", dict, "an object"),
)


def _wrong_types(data: dict) -> list[str]:
    wrong = []
    for key, kind, what in _TYPES:
        value: object = data
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool):
            wrong.append(f"{key} is {type(value).__name__}, expected {what}")
    return wrong


def check_name(path: Path, data: dict) -> None:
    """Refuse a result whose file name is not the run its identity says."""
    stem = path.name[: -len(".json")]
    if RUN_NAME.match(stem):
        try:
            expected = run_id(data["identity"])
        except (KeyError, TypeError):
            expected = None
        if expected != stem:
            c = data["config"]
            raise BadResultError(
                f"{path}: its content is not the run its name says (it holds "
                f"{c['task']}/{c['method']}/seed {c['seed']}, whose file name "
                f"is {expected}.json); pass --skip-bad to leave it out"
            )


def other_kind(path: Path) -> bool:
    """Whether ``path`` says (by its header) that it is a lorabar file of another kind."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return header_kind(data) not in (None, "result")


def primary_from_task(data: dict) -> str:
    """The result's primary metric: a staged encoder task's is the task's (App. D.4's rule,
    `lorabar.harness.run.task_of.staged_primary_metric`), whatever an older lorabar recorded
    (MRPC by F1); else the one it records."""
    from ..run.task_of import staged_primary_metric

    metric = staged_primary_metric(data.get("kind", "encoder"), data["config"]["task"])
    if metric is not None:
        dev, test = data["metrics"]["dev"], data["metrics"]["test"]
        if metric in dev and metric in test:
            return metric
    return data["primary_metric"]


def record_of(data: dict, path: str | Path) -> RunRecord:
    """The `RunRecord` of a checked result's fields ``data`` read from ``path``: its primary
    metric (`primary_from_task()`), a task of your own data named from its content."""
    config = data["config"]
    if config["task"] == "custom":
        config = {**config, "task": own_task_name(config, data["identity"]["data"])}
    return RunRecord.of(data, str(path), config=config, primary_metric=primary_from_task(data))


def result_files(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """The result files of ``folder``: ``folder/*.json`` and, for a grid's output folder,
    ``folder/runs/*.json`` (every ``*.json`` below it with ``recursive``); error files of failed
    grid runs (``*.error.json``), hidden files (a report's manifest) and the folder's
    ``manifest.json`` ([`lorabar.harness.plan.manifest`][lorabar.harness.plan.manifest]) excluded,
    and the runs of other
    folders the manifest reuses (where the folder has no file of the same name) included."""
    from ..plan.manifest import RESULTS_MANIFEST, reused_files

    folder = Path(folder)
    if recursive:
        paths = folder.rglob("*.json")
    else:
        paths = list(folder.glob("*.json")) + list((folder / "runs").glob("*.json"))
    own = [
        p
        for p in paths
        if p.is_file()
        and not p.name.startswith(".")
        and not p.name.endswith(".error.json")
        and p.name != RESULTS_MANIFEST
    ]
    names = {p.name for p in own}
    return sorted(own + [p for name, p in reused_files(folder).items() if name not in names])


def load(
    folder: str | Path, *, skip_bad: bool = False, recursive: bool = False
) -> tuple[list[RunRecord], list[str]]:
    """Every result of ``folder`` (`result_files()`) and the messages of the files left out
    (``skip_bad``); without ``skip_bad`` a bad file raises `BadResultError`.  Two files
    holding the same run (the same identity) raise ``ValueError`` naming both."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Result folder {str(folder)!r} does not exist")
    out, skipped, seen = [], [], {}
    for path in result_files(folder, recursive=recursive):
        if other_kind(path):
            continue  # a file lorabar wrote that says it is no result (an adapter report)
        try:
            data = check_result(path)
        except BadResultError as err:
            if not skip_bad and not isinstance(err, AlteredResultError):
                raise
            skipped.append(
                str(err)
                .replace("; pass --skip-bad to leave it out", "")
                .replace(", or pass --skip-bad", "")
            )
            continue
        ident = json.dumps(data["identity"], sort_keys=True)
        if ident in seen:
            raise ValueError(
                f"{seen[ident]} and {path} hold the same run (the same identity); keep one of them"
            )
        seen[ident] = path
        out.append(record_of(data, path))
    if not out:
        where = "under" if recursive else "in"
        unsigned = sum("carries no digest" in s for s in skipped)
        if unsigned:
            raise ValueError(
                f"No result file {where} {str(folder)!r} can be trusted: {unsigned} "
                "carry no digest (written by a lorabar before digests); check and "
                f"sign them with `{UPGRADE} {folder}`"
            )
        raise ValueError(
            f"No result files (JSON with 'config' and 'metrics') {where} "
            f"{str(folder)!r}"
            + ("" if recursive else " or its runs/ folder (--recursive reads every subfolder)")
        )
    return out, skipped


def finite_metrics(r: RunRecord) -> bool:
    m = r["primary_metric"]
    values = [r["metrics"][s].get(m) for s in ("dev", "test")]
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def split_failed(results: list[RunRecord]) -> tuple[list[RunRecord], list[RunRecord]]:
    """``(runs with finite dev and test metrics, runs without: failed)``."""
    ok = [r for r in results if finite_metrics(r)]
    return ok, [r for r in results if not finite_metrics(r)]


def context_of(r: RunRecord) -> dict:
    """The run's identity minus what a report may vary: the seed (and so its data files), the
    task and method, and the tuned hyperparameters."""
    ident = r["identity"]
    config = {
        k: v for k, v in ident["config"].items() if k not in ("seed", "task", "method") + TUNED
    }
    return {
        **config,
        "model": ident["model"],
        "device": ident["device"],
        "precision": ident["precision"],
        "threads": ident.get("threads"),
    }


def _differing(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() & b.keys() if a[k] != b[k])


def show_value(key: str, value) -> str:
    if key == "model" and isinstance(value, dict):
        files = value.get("files") or {}
        digest = hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]
        return f"{value.get('name')}" + (f"@{digest}" if files else "")
    return str(value)


MIXED_HINT = (
    "report them from separate folders, or pass --allow-mixed to show them side by side "
    "(never paired)"
)


def check_comparable(
    results: list[RunRecord], *, allow_mixed: bool = False, hint: str = MIXED_HINT
) -> list[str]:
    """Raise ``ValueError`` naming two files if the runs are not comparable (see the module
    docstring); with ``allow_mixed``, return the context fields that differ instead (the
    columns `in_context()` compares the runs in)."""
    files: dict[tuple[str, str], tuple[str, str]] = {}
    for r in results:  # the same data file (role) of a task must have the same content
        for rel, digest in r["identity"]["data"].items():
            seen = files.setdefault((r["config"]["task"], rel), (digest, r.path))
            if seen[0] != digest:
                raise ValueError(
                    f"{seen[1]} and {r.path} read different contents of the data "
                    f"file {rel!r}; runs on different data are not compared "
                    "(report them from separate folders)"
                )
    groups: dict[str, tuple[dict, str]] = {}
    for r in results:
        ctx = context_of(r)
        groups.setdefault(json.dumps(ctx, sort_keys=True, default=str), (ctx, r.path))
    contexts = list(groups.values())
    differing: set[str] = set()
    for i, (a, pa) in enumerate(contexts):
        for b, pb in contexts[i + 1 :]:
            diff = _differing(a, b)
            if diff and not allow_mixed:
                shown = ", ".join(
                    f"{k} {show_value(k, a[k])} vs {show_value(k, b[k])}" for k in diff[:4]
                )
                raise ValueError(f"{pa} and {pb} are not comparable runs ({shown}); {hint}")
            differing.update(diff)
    if not differing:
        return []
    return list(MIXED_COLUMNS) + sorted(differing - set(MIXED_COLUMNS))


def in_context(results: list[RunRecord], columns: list[str]) -> list[RunRecord]:
    """Each run compared as its method in its context: the values of ``columns``
    (`check_comparable()`'s; none: as its method)."""
    if not columns:
        return list(results)
    out = []
    for r in results:
        ctx = context_of(r)
        out.append(
            r.in_context(tuple(show_value(k, ctx.get(k, "–")) for k in columns), tuple(columns))
        )
    return out


def load_results(
    folder: str | Path,
    *,
    skip_bad: bool = False,
    recursive: bool = False,
    allow_mixed: bool = False,
    hint: str = MIXED_HINT,
) -> list[RunRecord]:
    """The comparable, finished results of ``folder`` (`load()`, `check_comparable()`;
    runs with a non-finite metric left out)."""
    results = load(folder, skip_bad=skip_bad, recursive=recursive)[0]
    columns = check_comparable(results, allow_mixed=allow_mixed, hint=hint)
    return split_failed(in_context(results, columns))[0]
