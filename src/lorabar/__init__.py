"""lorabar: balancedness-aware regularization (BAR) and SAM for LoRA finetuning.

Reference implementation of B. Li, L. Zhang, N. He, "Implicit Regularization of Sharpness-Aware
Minimization for Scale-Invariant Problems" (NeurIPS 2024).  The core (this namespace) needs only
torch; PEFT is imported lazily by `find_lora_pairs()`.  The names below are imported on
first use (PEP 562), so ``import lorabar`` -- and ``lorabar --help`` or the theory lab, which
need no torch -- does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the submodule that defines it
_LAZY = {
    "BAR": "bar",
    "BARConfig": "bar",
    "Balancedness": "metrics",
    "balancedness": "metrics",
    "FactorPair": "pairs",
    "find_lora_pairs": "pairs",
    "balance_penalty": "penalty",
    "SAM": "sam",
    "sam_step": "sam_loop",
    "SBAR": "sbar",
    "SBARConfig": "sbar",
}
_SUBMODULES = ("functional", "schedules")

__all__ = [
    "BAR",
    "SAM",
    "SBAR",
    "BARConfig",
    "Balancedness",
    "FactorPair",
    "SBARConfig",
    "__version__",
    "balance_penalty",
    "balancedness",
    "find_lora_pairs",
    "functional",
    "sam_step",
    "schedules",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import functional, schedules
    from .bar import BAR, BARConfig
    from .metrics import Balancedness, balancedness
    from .pairs import FactorPair, find_lora_pairs
    from .penalty import balance_penalty
    from .sam import SAM
    from .sam_loop import sam_step
    from .sbar import SBAR, SBARConfig


def _installed_version() -> str:
    """The version of the installed distribution (pyproject.toml's, the one source of it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lorabar")
    except PackageNotFoundError:  # pragma: no cover - imported from a source tree, not installed
        return "unknown (not installed)"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _installed_version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'lorabar' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
