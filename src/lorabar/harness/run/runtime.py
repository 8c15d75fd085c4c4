"""Device and precision, resolved at run time and recorded (never hard-coded).

``device``: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; under
``torchrun`` on CUDA each rank takes ``cuda:LOCAL_RANK``.

``precision`` (parameters always stay float32; only the compute is autocast):

```
auto  ->  bf16           on CUDA with bf16 support, or a CPU with native bf16
                         (AVX512-BF16 or AMX: torch.cpu._is_avx512_bf16_supported() /
                         _is_amx_tile_supported())
          fp16 + GradScaler  on CUDA without bf16
          fp32           otherwise (on an AVX2-only CPU, bf16 autocast is emulated, ~8.6x slower)
fp32 | bf16 | fp16 (+ GradScaler) as asked; bf16 on a CPU without native support runs but
warns once that it is slow.
```

``LORABAR_NATIVE_BF16=0`` (or ``1``) overrides the CPU detection, e.g. to reproduce on a bf16
machine what ``auto`` does on one without it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from .registry import DEVICES, PRECISIONS

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "Runtime",
    "cpu_has_native_bf16",
    "cpu_name",
    "resolve_device",
    "resolve_precision",
]

NATIVE_BF16_ENV = "LORABAR_NATIVE_BF16"
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_warned: set[str] = set()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); see NATIVE_BF16_ENV."""
    forced = os.environ.get(NATIVE_BF16_ENV)
    if forced is not None:
        if forced not in ("0", "1"):
            raise ValueError(f"Invalid {NATIVE_BF16_ENV}: {forced!r} (expected 0 or 1)")
        return forced == "1"
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(spec: str = "auto", *, local_rank: int | None = None) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` under torchrun ->
    ``cuda:LOCAL_RANK``.  Raises ``ValueError`` for an unknown or unavailable device."""
    if not isinstance(spec, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", spec):
        raise ValueError(f"Invalid device: {spec!r} (expected {DEVICES})")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"Invalid device: {spec!r} (CUDA is not available here; use --device cpu or auto)"
            )
        if spec == "cuda" and local_rank is not None:
            spec = f"cuda:{local_rank}"
        index = int(spec.split(":")[1]) if ":" in spec else None
        if index is not None and index >= torch.cuda.device_count():
            raise ValueError(
                f"Invalid device: {spec!r} (only {torch.cuda.device_count()} CUDA devices)"
            )
    return torch.device(spec)


def _cuda_bf16(device: torch.device) -> bool:
    return bool(torch.cuda.is_bf16_supported())


def resolve_precision(spec: str, device: torch.device) -> str:
    """The precision ``spec`` means on ``device`` (see the module docstring)."""
    if spec not in PRECISIONS:
        raise ValueError(f"Invalid precision: {spec!r} (expected one of {PRECISIONS})")
    if spec == "auto":
        if device.type == "cuda":
            return "bf16" if _cuda_bf16(device) else "fp16"
        if device.type == "cpu" and cpu_has_native_bf16():
            return "bf16"
        return "fp32"
    if spec == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        if "bf16-cpu" not in _warned:
            _warned.add("bf16-cpu")
            warnings.warn(
                "precision bf16 on a CPU without native bf16 (no AVX512-BF16/AMX): "
                "autocast is emulated and several times slower than fp32; "
                "use --precision auto or fp32",
                RuntimeWarning,
                stacklevel=2,
            )
    return spec


@dataclass(frozen=True)
class Runtime:
    """A resolved device and precision: autocast, GradScaler and a record of what was used."""

    device: torch.device
    precision: str
    requested_device: str = "auto"
    requested_precision: str = "auto"

    @classmethod
    def resolve(
        cls, device: str = "auto", precision: str = "auto", *, local_rank: int | None = None
    ) -> Runtime:
        dev = resolve_device(device, local_rank=local_rank)
        return cls(dev, resolve_precision(precision, dev), device, precision)

    @property
    def dtype(self) -> torch.dtype:
        """The autocast compute dtype (float32 means no autocast)."""
        return _DTYPES.get(self.precision, torch.float32)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> Any:
        """A fresh ``torch.amp.GradScaler`` for fp16, else ``None``."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    def synchronize(self) -> None:
        """Wait for queued device work (CUDA), so that a wall-clock time means something."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def to_device(self, batch: Any) -> Any:
        """``batch`` (tensors, or dicts/lists/tuples of them) on this device."""
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, list | tuple):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    def describe(self) -> dict:
        """What a result records as ``"runtime"``."""
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        else:
            name = cpu_name()
        return {
            "device": self.device.type if self.device.index is None else str(self.device),
            "precision": self.precision,
            "requested_device": self.requested_device,
            "requested_precision": self.requested_precision,
            "device_name": name,
            "cpu": cpu_name(),
            "cpu_native_bf16": cpu_has_native_bf16(),
            "grad_scaler": self.precision == "fp16",
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        }
