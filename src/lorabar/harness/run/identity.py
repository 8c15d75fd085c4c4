"""A run's identity: everything that changes its result, and the file name derived from it.

A result is reused (``lorabar grid`` skips the run) and compared (``lorabar report`` pairs and
averages runs) only by its identity:

```
{"config":    RunConfig.key()        every field that changes training or evaluation,
 "device":    "cpu" | "cuda"         the resolved device kind (never "auto"),
 "precision": "fp32" | "bf16" | "fp16"   the resolved precision (never "auto"),
 "threads":   n | None               torch's CPU threads on the CPU (they change the float
                                     reduction order); None on CUDA,
 "data":      {path: sha256}         the split files the task read, relative to the data
                                     folder (content, not folder name; {} for generated data);
              {role: sha256}         for your own data (task "custom"): the content of the
                                     file (or datasets folder) playing each role, train, dev
                                     and test -- swapping two files is another run,
 "model":     {"name", "files": {file: sha256}}   the weights, config and tokenizer files
                                     (the GGUF for SmolLM2; none for "tiny", built from code)}
```

The file name is ``<task>_<method>_s<seed>_<digest>.json`` with ``digest`` the first 10 hex digits
of the SHA-1 of the identity's canonical JSON (`run_id()`).  File digests are cached per
process by (path, size, mtime), so a grid hashes each file once.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ... import _validate as _v
from ..._io import file_sha256
from .config_key import OWN_DATA_COLUMNS

__all__ = [
    "ROLES",
    "RUN_NAME",
    "content_digest",
    "data_files",
    "data_identity",
    "file_sha256",
    "model_identity",
    "own_task_name",
    "role_identity",
    "run_id",
    "run_identity",
]

RUN_NAME = re.compile(r"^(?P<task>[a-z0-9]+)_(?P<method>[a-z0-9]+)_s(?P<seed>\d+)_[0-9a-f]{10}$")
_FILES: dict[tuple, list[Path]] = {}
# documentation and VCS files in a model folder do not change the model
_NOT_MODEL = re.compile(r"^(README.*|.*\.md|\..*|LICENSE.*)$", re.IGNORECASE)


def data_identity(cfg, files: list[Path] | None = None) -> dict[str, str]:
    """``{path relative to the data folder: sha256}`` of the files ``cfg``'s task reads.

    ``files``: the files already read (the engine records them while it loads the task); without
    it the task's splits are loaded once to find them (cached per process)."""
    if getattr(cfg, "task", None) == "custom":
        role = role_identity(cfg)  # first: test = train is refused before the files are parsed
        if files is None:  # the plan: parse and check the files (the engine has read them)
            data_files(cfg)
        return role
    if files is None:
        files = data_files(cfg)
    if not files:
        return {}
    root = _data_root(cfg)
    out = {}
    for path in files:
        path = Path(path).resolve()
        try:
            rel = path.relative_to(root).as_posix() if root else None
        except ValueError:
            rel = None
        if rel is None:  # the user's own files: by name (the content is what identifies them)
            rel, n = path.name, 2
            while rel in out:
                rel, n = f"{path.name}#{n}", n + 1
        out[rel] = file_sha256(path)
    return dict(sorted(out.items()))


ROLES = ("train", "dev", "test")


def data_files(cfg) -> list[Path]:
    """The data files ``cfg``'s task reads.  The task's splits are loaded once to find them --
    and so checked: a malformed file raises its ``DataError`` here, at plan time (cached per
    process)."""
    from ..tasks.data_folder import recording

    columns = tuple(getattr(cfg, k, None) for k in ("train", "dev", "test", *OWN_DATA_COLUMNS))
    key = (
        cfg.kind,
        cfg.task,
        cfg.seed,
        getattr(cfg, "setting", None),
        str(_data_root(cfg)),
        columns,
    )
    if key not in _FILES:
        from .task_of import make_task

        with recording() as read:
            make_task(cfg)
        _FILES[key] = list(read)
    return _FILES[key]


def content_digest(path: str | Path) -> str:
    """The SHA-256 of a file, or of a folder's files (names and contents, e.g. a datasets
    ``save_to_disk`` folder)."""
    path = Path(path).expanduser()
    if path.is_dir():
        files = {
            p.relative_to(path).as_posix(): file_sha256(p)
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
        return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return file_sha256(path)


def role_identity(cfg) -> dict[str, str]:
    """``{"train": sha256, "dev": sha256, "test": sha256}`` of the user's own files; a test
    split with the content of the train or the dev split is refused (``DataError``): it would
    report accuracy on the training data, or a test metric chosen on the test data itself."""
    from ..tasks.data_folder import DataError

    out = {}
    for role in ROLES:
        path = Path(getattr(cfg, role)).expanduser()
        if not path.exists():
            raise DataError(f"Invalid --{role}: {str(path)!r} does not exist")
        out[role] = content_digest(path)
    for role, why in (
        ("train", "test accuracy on the training data means nothing"),
        (
            "dev",
            "settings chosen on dev would be chosen on the test data, and its "
            "metric would not be a held-out one",
        ),
    ):
        if out["test"] == out[role]:
            same = (
                "is"
                if Path(cfg.test).expanduser().resolve()
                == Path(getattr(cfg, role)).expanduser().resolve()
                else "has the same content as"
            )
            raise DataError(
                f"Invalid --test: {cfg.test!r} {same} --{role} "
                f"{getattr(cfg, role)!r}; {why}: give a held-out file"
            )
    return out


def own_task_name(config: dict, data: dict) -> str:
    """The name of an own-data task in reports: the train file's stem and 6 hex digits of the
    three roles' contents (two datasets are never one task)."""
    digest = hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:6]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "", Path(str(config.get("train") or "custom")).stem)
    return f"{stem or 'custom'}-{digest}"


def _data_root(cfg) -> Path | None:
    from ..tasks.data_folder import resolve_data_dir

    try:
        return resolve_data_dir(cfg.data_dir).resolve()
    except FileNotFoundError:
        return None  # generated data (task "synthetic") or the user's own files


def model_files(name: str) -> list[Path]:
    """The files that define model ``name`` (see the module docstring)."""
    if name in ("tiny", "tiny-mlm"):
        return []
    if name == "minilm":
        from ..models.encoder_model import resolve_model_path

        folder = Path(resolve_model_path(name))
    elif name == "smollm2":
        from ..models.causal_lm import smollm2_gguf

        return [smollm2_gguf()]
    else:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            return []  # a hub id: identified by its name (and revision, when given in the id)
    return sorted(p for p in folder.iterdir() if p.is_file() and not _NOT_MODEL.match(p.name))


def model_identity(name: str) -> dict:
    """``{"name": name, "files": {file name: sha256}}`` (see `model_files()`)."""
    return {"name": name, "files": {p.name: file_sha256(p) for p in model_files(name)}}


def run_identity(
    cfg, *, device: str, precision: str, threads: int, data_files: list[Path] | None = None
) -> dict:
    """The identity of ``cfg`` run on ``device`` (kind) in ``precision`` with ``threads`` torch
    threads (all three resolved, as the run uses them)."""
    if device not in ("cpu", "cuda") or precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(
            f"run_identity needs the resolved device kind and precision, got "
            f"{device!r}, {precision!r}"
        )
    _v.integer("threads", threads, 1)  # the resolved thread count
    out = {
        "config": cfg.key(),
        "device": device,
        "precision": precision,
        "threads": threads if device == "cpu" else None,
        "data": data_identity(cfg, data_files),
        "model": model_identity(cfg.model),
    }
    init = getattr(cfg, "init_adapter", None)
    if init is not None:  # the adapter the LoRA factors start from, by content
        if not Path(init).expanduser().is_dir():
            raise ValueError(
                f"Invalid --init-adapter: {init!r} is not a folder (an adapter "
                "saved with --save-adapter)"
            )
        out["init"] = content_digest(init)
    return out


def run_id(identity: dict) -> str:
    """``<task>_<method>_s<seed>_<10 hex digits of the identity's SHA-1>``."""
    c = identity["config"]
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return f"{c['task']}_{c['method']}_s{c['seed']}_{digest}"
