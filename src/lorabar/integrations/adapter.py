"""Balancedness of a saved PEFT LoRA adapter, read from its files (no base model), and its
rebalancing.

A PEFT adapter folder holds ``adapter_config.json`` and ``adapter_model.safetensors`` (or the
older ``adapter_model.bin``) whose LoRA keys follow PEFT's format:
``<module>.lora_A.weight`` / ``<module>.lora_B.weight`` (Linear and Conv layers) and
``<module>.lora_embedding_A`` / ``<module>.lora_embedding_B`` (Embedding layers), the adapter name
removed.  For each pair, with ``A`` applied first (as `lorabar.pairs`):

```
B = (|A|^2 - |B|^2) / 2                 (the paper's balancedness, eq. 1)
```

Rebalancing rescales every pair ``(A s, B / s)`` with ``s = sqrt(|B| / |A|)``, so that
``|A s| = |B / s| = sqrt(|A| |B|)`` while the update ``s_lora B A`` -- hence every output of
the model, DoRA's magnitudes included -- is unchanged (up to one rounding).  A pair with a zero
factor cannot be balanced without changing the product (or stalling it at the saddle A = B = 0):
it is left as is and reported.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "AdapterLayer",
    "check_ranks",
    "inspect_adapter",
    "load_adapter_tensors",
    "rebalance_adapter",
]

_SUFFIXES = ((".lora_A.weight", ".lora_B.weight"), (".lora_embedding_A", ".lora_embedding_B"))
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True)
class AdapterLayer:
    """One LoRA pair of a saved adapter: ``name`` (the module path), the state-dict keys of its
    two factors, their norms and ``B = (|A|^2 - |B|^2) / 2``."""

    name: str
    key_A: str
    key_B: str
    norm_A: float
    norm_B: float

    @property
    def B(self) -> float:  # noqa: N802 - the paper's symbol
        return 0.5 * (self.norm_A**2 - self.norm_B**2)

    def as_dict(self) -> dict:
        return {"name": self.name, "norm_A": self.norm_A, "norm_B": self.norm_B, "B": self.B}


def nested_adapters(folder: Path) -> list[str]:
    """Subfolders of ``folder`` that hold adapters of their own (PEFT saves every adapter but
    the default one as ``folder/<adapter name>/``).  A lorabar run folder's ``lorabar/`` (the
    same adapter, saved with the whole model, beside the run's record) and an older one's
    ``portable/`` (the same adapter with its keys relative to the encoder) are not others."""
    folder = Path(folder)
    run = (folder / "lorabar_run.json").is_file()

    def same_adapter(p: Path) -> bool:
        return (p.name == "lorabar" and (p / "lorabar_run.json").is_file()) or (
            run and p.name == "portable" and (p / "head.json").is_file()
        )

    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_dir() and (p / "adapter_config.json").is_file() and not same_adapter(p)
    )


def _weights_file(folder: Path) -> Path:
    from .._io import existing

    existing(folder, "ADAPTER", "folder", "an adapter folder with adapter_config.json and weights")
    nested = nested_adapters(folder)
    if not (folder / "adapter_config.json").is_file():
        hint = (
            f"; it holds adapters in subfolders {nested}: inspect each, e.g. "
            f"{str(folder / nested[0])!r}"
            if nested
            else ""
        )
        raise FileNotFoundError(
            f"Not a PEFT adapter folder: {str(folder)!r} has no "
            f"adapter_config.json (written by model.save_pretrained){hint}"
        )
    if nested:
        raise ValueError(
            f"Invalid adapter folder: {str(folder)!r} holds several adapters (the "
            f"default one and {nested} in subfolders); inspect each on its own, e.g. "
            f"{str(folder / nested[0])!r} -- none is left out silently"
        )
    for name in WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"Not a PEFT adapter folder: {str(folder)!r} has no {' or '.join(WEIGHTS)}"
    )


def _read_weights(path: Path) -> tuple[dict, dict]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    return torch.load(path, map_location="cpu", weights_only=True), {}


def load_adapter_tensors(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """``(state_dict, adapter_config, safetensors metadata)`` of a saved adapter."""
    folder = Path(folder)
    path = _weights_file(folder)
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"Invalid adapter_config.json in {str(folder)!r}: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"Invalid adapter_config.json in {str(folder)!r}: a JSON "
            f"{type(config).__name__}, expected an object (PEFT's LoraConfig)"
        )
    try:
        tensors, metadata = _read_weights(path)
    except Exception as err:  # noqa: BLE001 - safetensors and pickle raise many kinds
        raise ValueError(
            f"Invalid adapter weights {str(path)!r}: not a readable "
            f"{path.suffix} file ({type(err).__name__}: {err}); a truncated copy?"
        ) from None
    bad = (
        [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
        if isinstance(tensors, dict)
        else ["(the file holds no state dict)"]
    )
    if bad:
        raise ValueError(
            f"Invalid adapter weights {str(path)!r}: not a state dict of tensors (e.g. {bad[0]!r})"
        )
    return tensors, config, metadata


def _pairs(tensors: dict[str, torch.Tensor]) -> list[tuple[str, str, str]]:
    out = []
    for key in tensors:
        for a_suffix, b_suffix in _SUFFIXES:
            if key.endswith(a_suffix):
                name = key[: -len(a_suffix)]
                b_key = name + b_suffix
                if b_key not in tensors:
                    raise ValueError(f"Invalid adapter: {key!r} has no matching {b_key!r}")
                out.append((name, key, b_key))
    return out


def check_ranks(folder, found: list[tuple[str, str, str]], tensors: dict, config: dict) -> None:
    """Refuse factors that cannot multiply (``A`` of rank r, ``B`` of another: ``B @ A`` does
    not exist) and ranks that disagree with ``adapter_config.json``'s ``r`` (unless its
    ``rank_pattern`` sets ranks per layer): such an adapter loads nowhere, and measuring or
    "rebalancing" it would pretend it does."""
    r = config.get("r")
    for name, ka, kb in found:
        a, b = tensors[ka], tensors[kb]
        if a.dim() < 2 or b.dim() < 2 or a.shape[0] != b.shape[1]:
            raise ValueError(
                f"Invalid adapter {str(folder)!r}: layer {name!r}: {ka} has shape "
                f"{tuple(a.shape)} and {kb} {tuple(b.shape)}; the factors cannot "
                "multiply (A's rows must be B's columns)"
            )
        if isinstance(r, int) and not config.get("rank_pattern") and a.shape[0] != r:
            raise ValueError(
                f"Invalid adapter {str(folder)!r}: layer {name!r} has rank "
                f"{a.shape[0]} but adapter_config.json says r = {r}"
            )


def inspect_adapter(folder: str | Path) -> dict:
    """Per-layer ``|A|``, ``|B|`` and ``B``, most unbalanced first, plus a summary.

    Returns ``{"adapter": folder, "peft_type", "r", "lora_alpha", "layers": [{"name", "norm_A",
    "norm_B", "B"}, ...], "mean_abs_B", "max_abs_B"}``.
    """
    tensors, config, _ = load_adapter_tensors(folder)
    found = _pairs(tensors)
    if not found:
        raise ValueError(
            f"No LoRA factor pairs in {str(folder)!r}: no keys ending in "
            f"{_SUFFIXES[0][0]!r} or {_SUFFIXES[1][0]!r} (is it a LoRA adapter?)"
        )
    check_ranks(folder, found, tensors, config)
    layers = []
    for name, ka, kb in found:
        na = float(torch.linalg.vector_norm(tensors[ka], dtype=torch.float64))
        nb = float(torch.linalg.vector_norm(tensors[kb], dtype=torch.float64))
        if not (math.isfinite(na) and math.isfinite(nb)):
            bad = ka if not math.isfinite(na) else kb
            raise ValueError(
                f"Invalid adapter {str(folder)!r}: layer {name!r} has a non-finite "
                f"factor ({bad} holds NaN or inf); it cannot be measured or "
                "rebalanced"
            )
        layers.append(AdapterLayer(name, ka, kb, na, nb))
    layers.sort(key=lambda layer: (-abs(layer.B), layer.name))
    abs_b = [abs(layer.B) for layer in layers]
    return {
        "adapter": str(folder),
        "peft_type": config.get("peft_type"),
        "r": config.get("r"),
        "lora_alpha": config.get("lora_alpha"),
        "layers": [layer.as_dict() for layer in layers],
        "mean_abs_B": sum(abs_b) / len(abs_b),
        "max_abs_B": max(abs_b),
    }


def rebalance_adapter(folder: str | Path, out: str | Path, *, force: bool = False) -> dict:
    """Write to ``out`` the adapter with every pair rescaled to ``|A| = |B|`` (same outputs).

    Every other file of ``folder`` (``adapter_config.json``, a README) is copied; the weights
    keep their dtypes and safetensors metadata.  ``out`` must not exist or be empty unless
    it is a folder lorabar wrote (its manifest's files are replaced, a user's other files kept),
    or ``force`` (files of the same names replaced); built beside and renamed into place.
    Returns ``{"rebalanced": n, "left_alone": [names of pairs with a zero factor]}``; a
    non-finite factor raises ``ValueError`` naming its layer, before anything is written.
    """

    from ..guard import Output
    from ..publish import publish_folder, staging

    folder, out = Path(folder), Path(out)
    check_rebalance_out(folder, out, force=force)
    inspect_adapter(folder)  # refuses non-finite factors and several adapters in one folder
    tensors, _, metadata = load_adapter_tensors(folder)
    new = dict(tensors)
    done, left = 0, []
    for name, ka, kb in _pairs(tensors):
        a, b = tensors[ka], tensors[kb]
        na = float(torch.linalg.vector_norm(a, dtype=torch.float64))
        nb = float(torch.linalg.vector_norm(b, dtype=torch.float64))
        if na == 0.0 or nb == 0.0:
            left.append(name)
            continue
        s = math.sqrt(nb / na)
        new[ka] = (a.double() * s).to(a.dtype)
        new[kb] = (b.double() / s).to(b.dtype)
        done += 1
    from safetensors.torch import save_file

    with staging(Output("--rebalance", out, "adapter")) as tmp:  # built beside, then swapped
        for item in folder.iterdir():
            if item.is_file() and item.name not in WEIGHTS and not item.name.startswith(".lorabar"):
                shutil.copy2(item, tmp / item.name)
        save_file(
            {k: v.contiguous() for k, v in new.items()},
            str(tmp / "adapter_model.safetensors"),
            metadata=metadata or {"format": "pt"},
        )
        publish_folder(tmp, Output("--rebalance", out, "adapter"), force=force)
    return {"rebalanced": done, "left_alone": left}


def check_rebalance_out(folder: Path, out: Path, *, force: bool = False) -> None:
    """Refuse (``ValueError``) an output folder that is, or is inside, the adapter folder, or
    that exists and is not empty (unless ``force``)."""
    src, dst = Path(folder).resolve(), Path(out).expanduser().resolve()
    where = (
        "the adapter folder itself"
        if dst == src
        else "inside the adapter folder"
        if src in dst.parents
        else "a folder that holds the adapter"
        if dst in src.parents
        else None
    )
    if where:
        raise ValueError(f"Invalid --rebalance: {str(out)!r} is {where}; give a new folder")
    if dst.exists() and not dst.is_dir():
        raise ValueError(f"Invalid --rebalance: {str(out)!r} is a file (give a folder)")
    from ..guard import owned_files

    if dst.is_dir() and any(dst.iterdir()) and owned_files(dst) is None and not force:
        raise ValueError(
            f"Invalid --rebalance: {str(out)!r} exists, is not empty and is not a "
            "folder lorabar wrote; give a new folder, or pass --force to write "
            "into it"
        )


def plot_layers(report: dict, path: str | Path) -> Path:
    """A per-layer bar chart of B (most unbalanced first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = report["layers"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(layers) + 2), 4))
    ax.bar(range(len(layers)), [layer["B"] for layer in layers], color="C0")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(
        [layer["name"].removeprefix("base_model.model.") for layer in layers],
        rotation=90,
        fontsize=6,
    )
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set(ylabel="B = (|A|² − |B|²)/2", title=f"{report['adapter']}: per-layer balancedness")
    fig.tight_layout()
    path = Path(path)
    from ..guard import png_metadata

    fig.savefig(path, dpi=110, metadata=png_metadata())
    plt.close(fig)
    return path
