"""Tokenized splits, computed once per task, seed and tokenizer and reused by the other runs.

A run's examples are tokenized into one list of items per split, each item a dict of token-id
lists (``input_ids``, ``token_type_ids``) and integer fields (``mask_pos``).  On the few-shot
splits this takes 0.1-0.2 s; on full GLUE SST-2 (68k examples) 3.3 s (MiniLM's fast tokenizer,
2-core Xeon) -- the same for every method of a comparison.  The splits are stored through
`content_cache` (kind ``tokens``) as flat int64 columns with offsets
(`pack()` / `unpack()`, exact inverses: tested on arbitrary items), under a key of the
tokenizer's fingerprint, the encoder's settings and the examples' text, in order.

The fingerprint of a fast tokenizer is its serialized state (vocabulary, normalizer,
pre-tokenizer, post-processor; not the truncation and padding that each call sets from its own
arguments, which the settings carry), its class and the tokenizers and transformers versions; the
settings include the source of the module that defines the encoding function (an edit to it
never reads a stale entry).  An encoder whose tokenizer has no fingerprint (a slow tokenizer) is
not cached.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .content_cache import cached, content_hash

__all__ = ["cached_splits", "pack", "splits_key", "tokenizer_fingerprint", "unpack"]

_FORMAT = 1
Items = list[dict]


def tokenizer_fingerprint(tokenizer) -> str | None:
    """What a tokenizer's output depends on, or ``None`` when it cannot be read (slow
    tokenizers).  A tokenizer of lorabar's own (tiny models) names it in ``fingerprint``."""
    if isinstance(getattr(tokenizer, "fingerprint", None), str):
        return tokenizer.fingerprint
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    import json

    import tokenizers
    import transformers

    state = json.loads(backend.to_str())
    for transient in ("truncation", "padding"):  # set by each call from its own arguments
        state.pop(transient, None)
    return content_hash(
        type(tokenizer).__name__,
        state,
        {
            "tokenizers": tokenizers.__version__,
            "transformers": transformers.__version__,
            "padding_side": tokenizer.padding_side,
            "truncation_side": tokenizer.truncation_side,
            "model_input_names": list(tokenizer.model_input_names),
        },
    )


def splits_key(fingerprint: str, settings: dict, splits: dict[str, list]) -> str:
    """``sha256`` of the fingerprint, the encoder's settings and every split's texts in order."""
    parts: list = [fingerprint, {**settings, "format": _FORMAT}]
    for name in sorted(splits):
        parts.append(name)
        for e in splits[name]:
            parts += [e.text_a, "\x00" if e.text_b is None else "\x01" + e.text_b]
    return content_hash(*parts)


def pack(items: Items, prefix: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Flat int64 columns of ``items`` and their field names in order: a list field ``f`` as
    ``prefix/f`` (all values) and ``prefix/f/offsets`` (n + 1 boundaries), an integer field as
    ``prefix/f/int``; the count as ``prefix/#n``."""
    out: dict[str, torch.Tensor] = {f"{prefix}/#n": torch.tensor([len(items)])}
    fields = list(items[0]) if items else []
    for field in fields:
        values = [it[field] for it in items]
        if isinstance(values[0], list):
            lengths = torch.tensor([len(v) for v in values], dtype=torch.int64)
            out[f"{prefix}/{field}"] = torch.tensor(
                [x for v in values for x in v], dtype=torch.int64
            )
            out[f"{prefix}/{field}/offsets"] = torch.cat(
                [torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)]
            )
        else:
            out[f"{prefix}/{field}/int"] = torch.tensor(values, dtype=torch.int64)
    return out, fields


def unpack(tensors: dict[str, torch.Tensor], prefix: str, fields: list[str]) -> Items:
    """The items `pack()` stored under ``prefix``, as Python ints and lists, their fields in
    ``fields``' order."""
    items: Items = [{} for _ in range(int(tensors[f"{prefix}/#n"][0]))]
    for field in fields:
        if f"{prefix}/{field}/int" in tensors:
            column = tensors[f"{prefix}/{field}/int"].tolist()
            for it, v in zip(items, column, strict=True):
                it[field] = v
            continue
        flat = tensors[f"{prefix}/{field}"].tolist()
        bounds = tensors[f"{prefix}/{field}/offsets"].tolist()
        if len(bounds) != len(items) + 1:
            raise ValueError(f"{prefix}/{field}: {len(bounds)} offsets for {len(items)} items")
        for i, it in enumerate(items):
            it[field] = flat[bounds[i] : bounds[i + 1]]
    return items


def cached_splits(
    key: str | None, encode: Callable[[], dict[str, Items]]
) -> tuple[dict[str, Items], str]:
    """Every split's items from the cache (``key``), else ``encode()`` (stored); and
    ``"cache"``, ``"computed"`` or ``"not cached"`` (``key`` is ``None``)."""
    if key is None:
        return encode(), "not cached"

    def compute():
        tensors, fields = {}, {}
        for name, items in encode().items():
            columns, fields[name] = pack(items, name)
            tensors.update(columns)
        return tensors, {"fields": fields}

    (tensors, info), source = cached("tokens", key, compute)
    return {name: unpack(tensors, name, f) for name, f in info["fields"].items()}, source
