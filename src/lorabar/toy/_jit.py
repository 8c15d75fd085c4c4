"""Numba if available (``pip install 'lorabar[toy]'``), else plain Python running the same code.

The simulator's per-step math lives in one Python function; numba only compiles it.  Without
numba it runs unchanged but far slower (fine for a few thousand steps, not for the paper's 1e5).
"""

from __future__ import annotations

try:  # pragma: no cover - depends on the environment
    import numba

    HAVE_NUMBA = True

    def njit(**kwargs):
        return numba.njit(cache=True, **kwargs)

    prange = numba.prange
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

    def njit(**kwargs):
        def wrap(fn):
            return fn

        return wrap

    prange = range
