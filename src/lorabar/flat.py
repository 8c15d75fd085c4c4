"""Flat-LoRA's random weight perturbation, for comparison with SAM and BAR.

Flat-LoRA (T. Li et al., "Flat-LoRA: Low-Rank Adaptation over a Flat Loss Landscape", ICML 2025;
code: github.com/nblt/Flat-LoRA) minimizes the expected loss under a random perturbation of the
*merged* weight ``W' = W + s B A`` instead of SAM's worst case, at about LoRA's cost: one forward
and backward pass per step.  Each step ``t`` of ``T``, for every LoRA layer (``W`` of shape
``(out, in)``), before the forward pass:

```
sigma_i = f(t) * rho / sqrt(in) * |W'_i|          (filter-wise: one scale per output row i)
eps_ij ~ N(0, sigma_i^2),   W <- W + eps            (the frozen base weight carries it)
f(t) = (1 - cos(pi t / T)) / 2                      (cosine, increasing from 0 to 1)
```

and after the backward pass ``W <- W - eps`` (the same draw, regenerated from the saved
generator state rather than stored, as the reference code does).  The gradient that reaches
``A`` and ``B`` is the one at the perturbed point.  What lorabar matches: the filter-wise scale
``rho / sqrt(in) * |row of W'|``, the cosine ramp of ``sigma``, a fresh draw every step
(``T = 1`` in their code), noise on the frozen base weight; what differs: the ramp counts
optimizer steps (their counter counts micro-batches) and draws come from a seeded
``torch.Generator`` (theirs from the wall clock), so runs are reproducible.  The restored ``W``
equals the original up to one rounding of ``(W + eps) - eps`` per step (float32: relative 1e-7).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from . import _validate as _v

__all__ = ["FlatLoRA", "FlatLayer"]


@dataclass(frozen=True, eq=False)
class FlatLayer:
    """One LoRA layer: its frozen base ``weight`` ``(out, in)``, ``A`` ``(r, in)``, ``B``
    ``(out, r)`` and the LoRA ``scaling`` ``s`` (merged weight ``W + s B A``)."""

    weight: Tensor
    A: Tensor
    B: Tensor
    scaling: float
    name: str = "layer"

    def __post_init__(self) -> None:
        w, a, b = self.weight, self.A, self.B
        if w.dim() != 2 or a.dim() != 2 or b.dim() != 2:
            raise ValueError(
                f"Invalid layer {self.name!r}: Flat-LoRA handles Linear layers "
                f"(2-D weight, A, B); got {w.dim()}-D, {a.dim()}-D, {b.dim()}-D"
            )
        if b.shape[0] != w.shape[0] or a.shape[1] != w.shape[1] or a.shape[0] != b.shape[1]:
            raise ValueError(
                f"Invalid layer {self.name!r}: W {tuple(w.shape)}, A "
                f"{tuple(a.shape)}, B {tuple(b.shape)} do not fit W + s B A"
            )


class FlatLoRA:
    """Random weight perturbation of the merged LoRA weights (see the module docstring).

    Example:

    ```
    flat = FlatLoRA.from_peft(model, rho=0.05, total_steps=1000, seed=0)
    for batch in loader:
        with flat.perturbed():          # W + eps during forward and backward
            loss_fn(batch).backward()
        optimizer.step(); optimizer.zero_grad()
        flat.advance()                  # t += 1 (the ramp)
    ```
    """

    def __init__(
        self, layers: Iterable[FlatLayer], rho: float, total_steps: int, *, seed: int = 0
    ) -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Invalid layers: empty (expected at least one FlatLayer)")
        _v.number("rho", rho)
        _v.integer("total_steps", total_steps, 1)
        self.rho = float(rho)
        self.total_steps = total_steps
        self.step = 0
        self._gens = {}
        for layer in self.layers:
            dev = layer.weight.device
            if dev not in self._gens:
                self._gens[dev] = torch.Generator(device=dev).manual_seed(seed)
        self._saved: list | None = None

    @classmethod
    def from_peft(
        cls,
        model: nn.Module,
        rho: float,
        total_steps: int,
        *,
        seed: int = 0,
        adapter: str | None = None,
    ) -> FlatLoRA:
        """Every PEFT ``LoraLayer`` wrapping a Linear layer whose adapter factors train (found
        by module type and adapter key, as
        [`lorabar.find_lora_pairs()`][lorabar.pairs.find_lora_pairs] does)."""
        from .pairs import lora_factors

        layers = []
        for name, module, key, a, b in lora_factors(model, None if adapter is None else [adapter]):
            base = module.get_base_layer()
            if a.requires_grad and b.requires_grad and isinstance(base, nn.Linear):
                layers.append(
                    FlatLayer(base.weight, a, b, float(module.scaling[key]), f"{name}[{key}]")
                )
        if not layers:
            raise ValueError(
                f"No trainable LoRA Linear layers found in {type(model).__name__} "
                "for Flat-LoRA (is the model wrapped with peft.get_peft_model?)"
            )
        return cls(layers, rho, total_steps, seed=seed)

    def factor(self, step: int | None = None) -> float:
        """The cosine ramp ``f(t) = (1 - cos(pi t / T)) / 2``."""
        t = self.step if step is None else step
        return 0.5 * (1.0 - math.cos(math.pi * min(t, self.total_steps) / self.total_steps))

    @torch.no_grad()
    def _sigmas(self) -> list[Tensor]:
        scale = self.factor() * self.rho
        out = []
        for layer in self.layers:
            merged = layer.weight.float() + layer.scaling * (layer.B.float() @ layer.A.float())
            norms = torch.linalg.vector_norm(merged, dim=1, keepdim=True)
            out.append((scale / math.sqrt(layer.weight.shape[1])) * norms)
        return out

    def _noise(self, layer: FlatLayer, sigma: Tensor) -> Tensor:
        gen = self._gens[layer.weight.device]
        z = torch.randn(
            layer.weight.shape, generator=gen, device=layer.weight.device, dtype=torch.float32
        )
        return (z * sigma).to(layer.weight.dtype)

    @torch.no_grad()
    def perturb(self) -> None:
        """``W <- W + eps`` for every layer (a no-op at ``rho = 0`` or ``f(t) = 0``)."""
        if self._saved is not None:
            raise RuntimeError("FlatLoRA.perturb called twice without restore")
        states = {d: g.get_state() for d, g in self._gens.items()}
        sigmas = self._sigmas() if self.factor() * self.rho > 0 else None
        self._saved = [states, sigmas]
        if sigmas is None:
            return
        for layer, sigma in zip(self.layers, sigmas, strict=True):
            layer.weight.add_(self._noise(layer, sigma))

    @torch.no_grad()
    def restore(self) -> None:
        """``W <- W - eps``: the same draws, regenerated from the saved generator states."""
        if self._saved is None:
            raise RuntimeError("FlatLoRA.restore called without perturb")
        states, sigmas = self._saved
        self._saved = None
        if sigmas is None:
            return
        for d, g in self._gens.items():
            g.set_state(states[d])
        for layer, sigma in zip(self.layers, sigmas, strict=True):
            layer.weight.sub_(self._noise(layer, sigma))

    @contextmanager
    def perturbed(self) -> Iterator[FlatLoRA]:
        """`perturb()` on entry, `restore()` on exit (also on error)."""
        self.perturb()
        try:
            yield self
        finally:
            self.restore()

    def advance(self) -> None:
        """Move the ramp one optimizer step on."""
        self.step += 1

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "rho": self.rho,
            "total_steps": self.total_steps,
            "generators": {str(d): g.get_state() for d, g in self._gens.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        for d, g in self._gens.items():
            if str(d) in state.get("generators", {}):
                g.set_state(state["generators"][str(d)])

    def __repr__(self) -> str:
        return (
            f"FlatLoRA(rho={self.rho}, layers={len(self.layers)}, step={self.step}/"
            f"{self.total_steps})"
        )
