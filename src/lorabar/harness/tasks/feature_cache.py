"""The probe head's frozen features and its fit, computed once per task, seed and model.

Every method of a comparison on one task and seed fits its probe head on the same features: the
pretrained encoder's pooled output over the train split (the LoRA adapters are the identity at
initialization), then the same logistic (ridge) regression on them.  Before this cache a MiniLM
run spent about 2.7 s of its 5.4 s fixed cost computing the features (2-core Xeon, SST-2's 1024
training examples); the fit itself is fast, but a fresh process first imports scikit-learn
(0.75 s).  Both go through `
content_cache` (kinds ``probe`` and ``probe-fit``):

- the features' key is the content of the model's weights and buffers (an ``--init-adapter``
  start included), the tokenized inputs, the batch size (padding), pooling, the autocast dtype,
  device kind, torch threads (the reduction order), the torch and transformers versions and the
  source of the module defining the model's class;
- the fit's key is the features' key, the train labels (after any label noise), the head kind,
  the scikit-learn version and the fitting code's source; a hit skips the features too.

A hit returns the very numbers a recomputation would give, so a run is the same bit for bit
either way (tested).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from .content_cache import cached, content_hash

__all__ = ["cached_features", "cached_fit", "feature_key", "fit_key"]

_FORMAT = 1


def feature_key(model: torch.nn.Module, inputs: list[dict], *, settings: dict) -> str:
    """``sha256`` of what the features depend on (see the module docstring)."""
    import transformers

    parts: list = []
    for name, t in sorted(model.state_dict().items()):
        parts += [name, t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()]
    for item in inputs:
        for name in sorted(item):
            parts += [name, torch.as_tensor(item[name]).cpu().contiguous().numpy().tobytes()]
    parts.append(
        {
            **settings,
            "threads": torch.get_num_threads(),
            "format": _FORMAT,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }
    )
    return content_hash(*parts)


def cached_features(key: str, compute) -> tuple[torch.Tensor, str]:
    """The features of ``key`` from the cache, else ``compute()`` (stored); and ``"cache"`` or
    ``"computed"``."""
    (tensors, _), source = cached("probe", key, lambda: ({"features": compute()}, {}))
    return tensors["features"], source


def fit_key(features_key: str, labels, *, regression: bool, code: str) -> str:
    """``sha256`` of what the probe's fit depends on besides its features (the module
    docstring); ``code``: the fitting code's hash."""
    import sklearn

    y = np.asarray(labels, dtype=np.float64 if regression else np.int64)
    return content_hash(
        features_key,
        y.tobytes(),
        {"regression": regression, "format": _FORMAT, "code": code, "sklearn": sklearn.__version__},
    )


def cached_fit(key: str, fit) -> tuple[tuple[np.ndarray, np.ndarray, dict], str]:
    """``(weight, bias, info)`` of the probe of ``key`` from the cache, else ``fit()`` (stored);
    and ``"cache"`` or ``"computed"``.  Weights stay float64 (as fitted)."""

    def compute():
        weight, bias, info = fit()
        return (
            {
                "weight": torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float64)),
                "bias": torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float64)),
            },
            {"probe": json.loads(json.dumps(info))},
        )

    (tensors, info), source = cached("probe-fit", key, compute)
    return (tensors["weight"].numpy(), tensors["bias"].numpy(), info["probe"]), source
