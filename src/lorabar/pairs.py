"""Scale-invariant factor pairs and their discovery in PEFT LoRA models.

A *factor pair* ``(x, y)`` enters the model only through a product, e.g. a LoRA update
``dW = s * B @ A``: scaling ``(c * x, y / c)`` leaves the loss unchanged (paper eq. (1a), Sec. 5.1).
lorabar follows PEFT's layout: ``x`` is the factor applied first (``lora_A``, shape ``(r, in,
...)``)
and ``y`` the one applied second (``lora_B``, shape ``(out, r, ...)``), so at LoRA's usual
initialization (A random, B = 0) the balancedness ``B = (|x|^2 - |y|^2) / 2`` is positive.

Pairs are found by module type (`peft.tuners.lora.LoraLayer`) and adapter key, never by
parameter-name substrings (which silently miss layer kinds; cf. PEFT issue #3499).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = [
    "FactorPair",
    "check_no_shared_storage",
    "find_lora_pairs",
    "lora_factors",
    "shares_storage",
]


@dataclass(frozen=True, eq=False)
class FactorPair:
    """Two tensors ``x`` and ``y`` whose product is what the model uses.

    Args:
        x: the factor applied first (LoRA ``A``, shape ``(r, in, ...)``), or any tensor.
        y: the factor applied second (LoRA ``B``, shape ``(out, r, ...)``), or any tensor.
        name: identifies the pair in logs and errors (layer and adapter for LoRA).
        adapter: the PEFT adapter key, when the pair comes from PEFT.

    When both factors have two or more dimensions their rank dimensions must agree
    (``x.shape[0] == y.shape[1]``); vectors (the paper's toy problems) are not checked.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str = "pair"
    adapter: str | None = field(default=None)

    def __post_init__(self) -> None:
        for arg in ("x", "y"):
            value = getattr(self, arg)
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"Invalid {arg}: expected a torch.Tensor, got {type(value).__name__}"
                )
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Invalid name: {self.name!r} (expected a non-empty str)")
        if self.x is self.y:
            raise ValueError(f"Invalid pair {self.name!r}: x and y are the same tensor")
        if shares_storage(self.x, self.y):
            raise ValueError(
                f"Invalid pair {self.name!r}: x and y share storage (views of one "
                "tensor); rescaling one would rescale the other"
            )
        if self.x.device != self.y.device:
            raise ValueError(
                f"Invalid pair {self.name!r}: x is on {self.x.device} but y is on {self.y.device}"
            )
        if self.x.dim() >= 2 and self.y.dim() >= 2 and self.x.shape[0] != self.y.shape[1]:
            raise ValueError(
                f"Invalid pair {self.name!r}: mismatched ranks, x.shape[0]={self.x.shape[0]} "
                f"but y.shape[1]={self.y.shape[1]} (x is LoRA's A of shape (r, in), "
                f"y is LoRA's B of shape (out, r))"
            )

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.x, self.y)


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors are views of one storage with overlapping bytes."""
    try:
        base_a, base_b = a.untyped_storage().data_ptr(), b.untyped_storage().data_ptr()
        start_a, start_b = a.data_ptr(), b.data_ptr()
    except (RuntimeError, NotImplementedError):  # meta, sparse or DTensor (FSDP2) tensors
        return False
    if base_a != base_b or base_a == 0:
        return False
    size_a = a.numel() * a.element_size()
    size_b = b.numel() * b.element_size()
    return start_a < start_b + size_b and start_b < start_a + size_a


def _lora_layer_type() -> type:
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError as err:  # pragma: no cover - exercised only without peft
        raise ImportError(
            "find_lora_pairs needs PEFT: pip install 'lorabar[hf]' (or pip install peft); "
            "for other models build lorabar.FactorPair(x=..., y=..., name=...) yourself"
        ) from err
    return LoraLayer


def _factor_weight(module_or_param: nn.Module | torch.Tensor) -> torch.Tensor:
    # lora_A / lora_B hold nn.Linear / nn.ConvNd modules; lora_embedding_A/B hold Parameters.
    if isinstance(module_or_param, torch.Tensor):
        return module_or_param
    weight = getattr(module_or_param, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(
            f"Unsupported LoRA factor of type {type(module_or_param).__name__}: no weight tensor"
        )
    return weight


def _adalora_layer_type() -> type | None:
    try:
        from peft.tuners.adalora import AdaLoraLayer
    except ImportError:  # pragma: no cover - older PEFT
        return None
    return AdaLoraLayer


def lora_factors(model: nn.Module, adapters: list[str] | None = None):
    """The one walk over a PEFT model's LoRA layers: ``(layer name, layer, adapter key, A, B)``
    for every adapter active in its layer (``layer.active_adapters``; ``adapters`` restricts the
    keys), in ``model.named_modules()`` order -- Linear and Conv (``lora_A``/``lora_B``) and
    Embedding (``lora_embedding_A``/``lora_embedding_B``) layers.  Used by
    `find_lora_pairs()` and [`lorabar.flat.FlatLoRA.from_peft()`][lorabar.flat.FlatLoRA.from_peft].

    Raises:
        ValueError: for a layer whose adapter is merged into the base weight, and for AdaLoRA.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Invalid model: expected a torch.nn.Module, got {type(model).__name__}")
    lora_layer = _lora_layer_type()
    adalora = _adalora_layer_type()
    for module_name, module in model.named_modules():
        if not isinstance(module, lora_layer):
            continue
        if adalora is not None and isinstance(module, adalora):
            raise ValueError(
                f"Unsupported adapter: {module_name!r} is an AdaLoRA layer; its update "
                "P diag(E) Q has three factors and pruned ranks, so it is not the two-factor "
                "scale-invariant pair BAR balances (use LoRA, rsLoRA, DoRA or LoRA+)"
            )
        if getattr(module, "merged", False):
            raise ValueError(
                f"Invalid model: the LoRA layer {module_name!r} has adapters "
                f"{list(getattr(module, 'merged_adapters', []))} merged into its base weight, so "
                "its factors no longer act on the output; call model.unmerge_adapter() before "
                "training (or merge_and_unload() only after it)"
            )
        active = set(getattr(module, "active_adapters", ()) or ())
        for a_dict, b_dict in (
            (module.lora_A, module.lora_B),
            (module.lora_embedding_A, module.lora_embedding_B),
        ):
            for key in a_dict.keys():
                if (adapters is not None and key not in adapters) or key not in active:
                    continue  # not asked for, or loaded but not active in this layer
                if key not in b_dict:
                    raise ValueError(
                        f"LoRA layer {module_name!r} has A but no B for adapter {key!r}"
                    )
                yield (
                    module_name,
                    module,
                    key,
                    _factor_weight(a_dict[key]),
                    _factor_weight(b_dict[key]),
                )


def find_lora_pairs(model: nn.Module, adapters: list[str] | None = None) -> list[FactorPair]:
    """Return one `FactorPair` per (LoRA layer, adapter) that trains: the adapter is
    active in that layer (``layer.active_adapters``) and both factors require gradients.

    Walks the model with `lora_factors()` (a deterministic order): ``lora_A[k]``/
    ``lora_B[k]`` (Linear and Conv layers) and ``lora_embedding_A[k]``/``lora_embedding_B[k]``
    (Embedding layers) for each adapter key ``k``.  DoRA's magnitude vector is not part of a
    pair.  An adapter that is loaded but not active (``load_adapter(..., is_trainable=True)``
    without ``set_adapter``) is skipped even if its factors require gradients: it does not shape
    the output, so it neither trains nor belongs in the balancedness.  ``adapters`` restricts the
    search to the given adapter keys.

    Raises:
        ValueError: if no trainable pair is found; if a layer's adapter is merged into the base
            weight (``merge_adapter()``: the factors no longer act; unmerge first); for AdaLoRA,
            whose SVD triplets ``P diag(E) Q`` are not a two-factor scale-invariant pair.
    """
    pairs = [
        FactorPair(x=x, y=y, name=f"{name}[{key}]", adapter=key)
        for name, _, key, x, y in lora_factors(model, adapters)
        if x.requires_grad and y.requires_grad
    ]
    if not pairs:
        lora_layer = _lora_layer_type()
        n_layers = sum(isinstance(m, lora_layer) for m in model.modules())
        which = "any adapter" if adapters is None else f"adapters {adapters}"
        raise ValueError(
            f"No trainable LoRA factor pairs found in {type(model).__name__}: searched "
            f"{n_layers} peft LoraLayer modules (lora_A/lora_B and lora_embedding_A/"
            f"lora_embedding_B) for {which}. Is the model wrapped with peft.get_peft_model and an "
            "adapter active? For other models pass explicit pairs: "
            "[lorabar.FactorPair(x=..., y=..., name=...)]"
        )
    return pairs


def check_no_shared_storage(pairs: Sequence[FactorPair]) -> None:
    """Refuse two pairs whose factors are views of one storage (a shared tensor would be
    rescaled twice per step)."""
    by_storage: dict[int, list[tuple[torch.Tensor, str]]] = {}
    for p in pairs:
        for t in p.tensors:
            try:
                key = t.untyped_storage().data_ptr()
            except (RuntimeError, NotImplementedError):
                continue
            if key:
                by_storage.setdefault(key, []).append((t, p.name))
    for group in by_storage.values():
        for i, (a, na) in enumerate(group):
            for b, nb in group[i + 1 :]:
                if na != nb and shares_storage(a, b):
                    raise ValueError(
                        f"Invalid pairs: a factor of {nb!r} shares storage with a "
                        f"factor of {na!r}; it would be rescaled twice per step"
                    )
