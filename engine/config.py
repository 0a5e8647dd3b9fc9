"""Numba flags, in one place.

``cache=True`` keeps compiled kernels on disk between processes; ``fastmath`` stays off
because every value is an integer amount of money; ``nogil`` lets server threads run
kernels side by side.
"""

from __future__ import annotations

import numba

NJIT_FLAGS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def njit(fn=None, **extra):
    """``numba.njit`` with the project's flags."""
    flags = {**NJIT_FLAGS, **extra}
    if fn is None:
        return lambda f: numba.njit(**flags)(f)
    return numba.njit(**flags)(fn)
