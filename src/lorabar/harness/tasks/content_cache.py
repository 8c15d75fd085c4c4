"""A content-addressed store for what the runs of a comparison would otherwise each recompute.

An entry is one safetensors file ``$LORABAR_CACHE/<kind>/<key>.safetensors``: named tensors, the
``key`` it was written for, a small JSON ``info`` and a digest of the tensors' bytes, in the
file's metadata.  The key is a ``sha256`` of the content of everything the entry depends on (the
caller builds it), so a hit is exactly what a recomputation would give.  A read checks the stored
key and the digest; a file that cannot be read, whose stored key differs or whose tensors do not
match their digest (a damaged file) is recomputed and replaced -- the cache never decides a number,
it only saves time.  Writes go to a temporary file renamed into place, so parallel workers of a
grid share the cache safely (the last identical writer wins).  ``LORABAR_CACHE=DIR`` moves it
(default ``~/.cache/lorabar``); ``LORABAR_CACHE=off`` disables it.

Users: `lorabar.harness.tasks.feature_cache` (the probe head's frozen features and its fit)
and `lorabar.harness.tasks.token_cache` (tokenized splits).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from ..._io import cache_root

__all__ = ["cache_folder", "cached", "code_hash", "content_hash"]

Entry = tuple[dict[str, torch.Tensor], dict]


def cache_folder(kind: str) -> Path | None:
    """Where entries of ``kind`` live (``None``: caching is off)."""
    root = cache_root()
    return None if root is None else root / kind


def content_hash(*parts) -> str:
    """``sha256`` of ``parts`` in order: ``bytes`` as they are, ``str`` as UTF-8, anything else
    as sorted JSON; each part is length-prefixed, so two different part lists never collide by
    concatenation."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        elif not isinstance(part, bytes | bytearray | memoryview):
            part = json.dumps(part, sort_keys=True).encode()
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def code_hash(obj) -> str:
    """``sha256`` of the source of the module that defines ``obj``: part of a key whose entry
    that code computes, so an edit to it (between releases too) never reads a stale entry."""
    import inspect

    return content_hash(inspect.getsource(inspect.getmodule(obj)))


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    parts: list = []
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        parts += [
            name,
            str(t.dtype),
            list(t.shape),
            t.reshape(-1).view(torch.uint8).numpy().tobytes(),
        ]
    return content_hash(*parts)


def _read(path: Path, key: str) -> Entry | None:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") != key:
                return None
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
        if meta.get("digest") != _digest(tensors):
            return None
        return tensors, json.loads(meta.get("info", "{}"))
    except (OSError, SafetensorError, KeyError, ValueError, RuntimeError):
        return None  # unreadable: recompute and replace


def _write(path: Path, key: str, entry: Entry) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in entry[0].items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file(
            tensors,
            str(tmp),
            metadata={
                "key": key,
                "digest": _digest(tensors),
                "info": json.dumps(entry[1], sort_keys=True),
            },
        )
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written costs time, never a result


def cached(kind: str, key: str, compute: Callable[[], Entry]) -> tuple[Entry, str]:
    """The entry ``key`` of ``kind`` from the cache, else ``compute()`` (then stored); and
    ``"cache"`` or ``"computed"``.  ``compute`` returns ``(tensors, info)``: a dict of tensors
    and a JSON-able dict."""
    folder = cache_folder(kind)
    path = folder / f"{key}.safetensors" if folder is not None else None
    if path is not None:
        hit = _read(path, key)
        if hit is not None:
            return hit, "cache"
    entry = compute()
    if path is not None:
        _write(path, key, entry)
    return entry, "computed"
