"""Names the core accepts, importable without torch (the command line lists them in ``--help``)."""

from __future__ import annotations

__all__ = [
    "BAR_MODES",
    "DEFAULT_MU0",
    "DEFAULT_SCHEDULE",
    "PERTURBATIONS",
    "SBAR_NORMS",
    "SCHEDULES",
]

BAR_MODES = ("nbar", "obar", "sbar")  # lorabar.BAR(mode=...)
SBAR_NORMS = ("pair", "global")  # lorabar.BAR(mode="sbar", norm=...)
SCHEDULES = ("constant", "linear", "cosine")  # lorabar.schedules
PERTURBATIONS = ("sync", "per_rank")  # lorabar.distributed.ddp_sam_step(perturbation=...)

# One set of BAR defaults for lorabar.BAR, BARCallback and the harness (RunConfig):
# the paper's smallest mu0, and a schedule that needs no horizon.
DEFAULT_MU0 = 0.5
DEFAULT_SCHEDULE = "constant"
