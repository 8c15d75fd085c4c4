"""A content-addressed cache of the frozen features a probe head is fitted on.

Every method of a comparison on one task and seed fits its probe head on the same features: the
pretrained encoder's pooled output over the train split (the LoRA adapters are the identity at
initialization).  Computing them is about half a MiniLM run's fixed cost (2.7 s of 5.4 s on a
2-core Xeon, SST-2's 1024 training examples), so the first run stores them and the others read
them.  The key is the content of everything they depend on: the model's weights and buffers
(an ``--init-adapter`` start included), the tokenized inputs, the batch size (padding), pooling,
the autocast dtype, device kind, torch threads (the reduction order) and the torch and
transformers versions.  A hit returns the very tensor a recomputation would give, so a run is
the same bit for bit either way; a file whose stored key differs (or that cannot be read) is
recomputed and replaced.  Writes are atomic (a temporary file renamed into place), so parallel
workers of a grid share the cache safely.  Folder: ``$LORABAR_CACHE/probe`` (default
``~/.cache/lorabar/probe``); ``LORABAR_CACHE=off`` disables it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

__all__ = ["CACHE_ENV", "cache_folder", "cached_features", "feature_key"]

CACHE_ENV = "LORABAR_CACHE"
FORMAT = 1


def cache_folder() -> Path | None:
    """Where features are cached (``None``: caching is off)."""
    where = os.environ.get(CACHE_ENV)
    if where == "off":
        return None
    return Path(where).expanduser() / "probe" if where else \
        Path.home() / ".cache" / "lorabar" / "probe"


def feature_key(model: torch.nn.Module, inputs: list[dict], *, settings: dict) -> str:
    """``sha256`` of what the features depend on (see the module docstring)."""
    import transformers

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    for item in inputs:
        for name in sorted(item):
            h.update(name.encode())
            h.update(torch.as_tensor(item[name]).cpu().contiguous().numpy().tobytes())
    h.update(json.dumps({**settings, "threads": torch.get_num_threads(), "format": FORMAT,
                         "torch": torch.__version__, "transformers": transformers.__version__},
                        sort_keys=True).encode())
    return h.hexdigest()


def cached_features(key: str, compute) -> tuple[torch.Tensor, str]:
    """The features of ``key`` from the cache, else ``compute()`` (stored); and ``"cache"`` or
    ``"computed"``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    folder = cache_folder()
    path = folder / f"{key}.safetensors" if folder is not None else None
    if path is not None and path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                stored = (f.metadata() or {}).get("key")
            if stored == key:
                return load_file(str(path))["features"], "cache"
        except (OSError, SafetensorError, KeyError):
            pass  # unreadable: recompute and replace
    features = compute()
    if path is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            save_file({"features": features.contiguous()}, str(tmp), metadata={"key": key})
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written costs time, never a result
    return features, "computed"
