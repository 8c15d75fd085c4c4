"""lorabar: balancedness-aware regularization (BAR) and SAM for LoRA finetuning.

Reference implementation of B. Li, L. Zhang, N. He, "Implicit Regularization of Sharpness-Aware
Minimization for Scale-Invariant Problems" (NeurIPS 2024).  The core (this namespace) needs only
torch; PEFT is imported lazily by :func:`find_lora_pairs`.
"""

from . import functional, schedules
from .bar import BAR, BARConfig
from .metrics import Balancedness, balancedness
from .pairs import FactorPair, find_lora_pairs
from .penalty import balance_penalty
from .sam import SAM, sam_step

__version__ = "0.1.0"

__all__ = [
    "BAR",
    "BARConfig",
    "Balancedness",
    "FactorPair",
    "SAM",
    "__version__",
    "balance_penalty",
    "balancedness",
    "find_lora_pairs",
    "functional",
    "sam_step",
    "schedules",
]
