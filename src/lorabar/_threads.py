"""How OpenMP threads wait, chosen before torch starts its thread pool (torch-free).

Measured on a 2-core Intel Xeon (MiniLM-L6 + LoRA, batch 16 x 64, fp32; ``benchmarks/
bench_threads.py``, docs/guides/performance.md): 2 torch threads with OpenMP's default (active,
spinning) waiting take 0.215 s/step on an idle machine but 1.02 s beside one busy process and
2.90 s beside two; with ``OMP_WAIT_POLICY=PASSIVE`` they take 0.242, 0.425 and 0.424 s -- the
best or within 6% whenever anything else runs, 13% slower only when nothing does.  So the
command line sets ``PASSIVE`` when the machine is busy at start (the 1-minute load average is
at least ``BUSY_LOAD``) and leaves OpenMP's default otherwise; a policy the user set is kept.
The wait policy changes no result (only how idle threads wait), so it is not part of a run's
identity; the run records it (``runtime.omp_wait_policy``).
"""

from __future__ import annotations

import os

__all__ = ["BUSY_LOAD", "choose_wait_policy"]

BUSY_LOAD = 0.5  # runnable processes, averaged over a minute: something else is running


def choose_wait_policy(environ: dict | None = None) -> str:
    """Set ``OMP_WAIT_POLICY`` in ``environ`` (default ``os.environ``) unless already set:
    ``PASSIVE`` on a busy machine, nothing otherwise.  Returns what applies and why."""
    environ = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in environ:
        return f"{environ['OMP_WAIT_POLICY']} (set by you)"
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return "default (load unknown)"
    if load >= BUSY_LOAD:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return f"PASSIVE (load {load:.2f} at start)"
    return f"default (load {load:.2f} at start)"
