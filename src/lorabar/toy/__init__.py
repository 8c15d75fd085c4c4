"""The theory lab: the paper's toy scale-invariant problems, simulated fast, and its figures.

``lorabar toy all --out DIR`` regenerates Figs. 1, 2 and 4 and ``summary.json``; see
`lorabar.toy.simulate` for the problems and algorithms.
"""

from .fig4 import fig4_loss, fig4_trajectories
from .simulate import TOY_METHODS, PROBLEMS, ToyConfig, ToyResult, compiled, simulate

__all__ = [
    "TOY_METHODS",
    "PROBLEMS",
    "ToyConfig",
    "ToyResult",
    "compiled",
    "fig4_loss",
    "fig4_trajectories",
    "simulate",
]
