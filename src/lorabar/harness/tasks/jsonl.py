"""One reader of JSON Lines (one JSON object per line), with one wording of its errors: every
task that reads ``.jsonl`` (your own data, FewGLUE's prompt tasks, SQuAD and ReCoRD) goes
through `jsonl_rows()`."""

from __future__ import annotations

import json

__all__ = ["jsonl_rows"]


def jsonl_rows(text: str, source: object) -> list[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line of ``text``; a line that is not one
    JSON object is a ``DataError`` naming ``source:line``."""
    from .data_folder import DataError

    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as err:
            raise DataError(
                f"{source}:{lineno}: not a JSON object ({err.__class__.__name__}: {err})"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{source}:{lineno}: a JSON {type(obj).__name__}, expected an object")
        rows.append((lineno, obj))
    return rows
