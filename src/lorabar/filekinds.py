"""What a file lorabar writes is: its kind, carried by the file itself.

A JSON file lorabar writes on its own (a run result, an adapter report, a results manifest, a
comparison's record, a failed run's error record) starts with a header object naming its kind and
writer:

```
{"lorabar": {"kind": "result", "version": "0.2.0"}, ...the content...}
```

A run result also ends with ``"digest": "sha256:<hex>"`` over everything before it
(`digest_of()`), so a result edited by hand no longer matches.  A PNG lorabar draws carries
``Software: lorabar`` in its text chunks; a CSV cannot carry a header, so the folder it lies in
lists it with its sha256 ([`lorabar.guard`][lorabar.guard]'s folder manifest).  Files inside a
folder that
lorabar replaces whole (a report, an adapter) are known by that folder's manifest.

[`lorabar.guard`][lorabar.guard] recognises a file by this header, never by its shape: a user's JSON
with a
``config`` object and a ``metrics`` key is not a result.  Files from a lorabar before headers
are brought forward, after checking, by ``lorabar upgrade`` (`lorabar.cli.upgrade`).
Imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json

__all__ = [
    "DIGEST",
    "HEADER",
    "JSON_KINDS",
    "digest_of",
    "digest_ok",
    "header_kind",
    "stamp",
    "unstamped",
    "with_digest",
]

HEADER = "lorabar"
DIGEST = "digest"
# the JSON kinds that carry a header (the guard's other kinds: png, paired, and the folders)
JSON_KINDS = ("result", "layers", "manifest", "compare", "error")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lorabar")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown"


def stamp(kind: str, content: dict) -> dict:
    """``content`` with the header of ``kind`` first (an existing header is replaced)."""
    if kind not in JSON_KINDS:
        raise ValueError(f"Invalid file kind: {kind!r} (expected one of {list(JSON_KINDS)})")
    return {HEADER: {"kind": kind, "version": _version()}, **unstamped(content)}


def unstamped(data: dict) -> dict:
    """``data`` without its header (what readers that know the kind work with)."""
    return {k: v for k, v in data.items() if k != HEADER}


def header_kind(data: object) -> str | None:
    """The kind the header of the parsed JSON ``data`` names, ``None`` if it has no header."""
    if not isinstance(data, dict):
        return None
    head = data.get(HEADER)
    kind = head.get("kind") if isinstance(head, dict) else None
    return kind if isinstance(kind, str) else None


def digest_of(record: dict) -> str:
    """``sha256:<hex>`` of a result's content without its ``digest`` field: the canonical JSON
    (sorted keys) of the record as a JSON file holds it, so a file read back gives the same."""
    body = json.loads(json.dumps({k: v for k, v in record.items() if k != DIGEST}, default=float))
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def with_digest(record: dict) -> dict:
    """``record`` with its `digest_of()` (the last field): a result edited by hand no longer
    matches it, and ``lorabar report`` leaves it out as altered."""
    body = {k: v for k, v in record.items() if k != DIGEST}
    return {**body, DIGEST: digest_of(body)}


def digest_ok(record: dict) -> bool:
    """Whether ``record`` carries a digest that matches its content."""
    return isinstance(record.get(DIGEST), str) and record[DIGEST] == digest_of(record)
