"""numba's njit for sdcodec's kernels: cached on disk where possible, compiled in memory otherwise.

numba refuses ``cache=True`` at decoration time when neither ``__pycache__`` beside the module nor
a user cache directory is writable (a read-only install, a user without a home directory): every
import of the coder would fail. Here such a process compiles in memory instead (a few seconds).
"""

from __future__ import annotations

import numba


def compiled(function=None, **options):
    """``numba.njit(cache=True, nogil=True, **options)``, falling back to no cache; use bare or with options."""

    def decorate(function):
        try:
            return numba.njit(cache=True, nogil=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, **options)(function)

    return decorate(function) if function is not None else decorate
