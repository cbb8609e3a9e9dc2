"""Reference coders for the latent-level benchmark: what a context model has to beat."""

from __future__ import annotations

import math
import zlib

import numpy as np


def _count_bits(count: int) -> int:
    """Elias-gamma length of count + 1: what sending one histogram bin costs."""
    return 2 * int(math.log2(count + 1)) + 1


def static_histogram_bits(q: np.ndarray) -> float:
    """Per-channel zeroth-order entropy of q (C, h, w) plus the cost of sending each histogram.

    The histogram is sent as its value range (two 16-bit numbers) and one Elias-gamma code per
    bin, so the decoder can rebuild exactly the probabilities the coder used.
    """
    bits = 0.0
    for plane in q:
        values, counts = np.unique(plane, return_counts=True)
        full = np.zeros(values[-1] - values[0] + 1, dtype=np.int64)
        full[values - values[0]] = counts
        p = counts / counts.sum()
        bits += float(-(counts * np.log2(p)).sum()) + 32 + sum(_count_bits(int(c)) for c in full)
    return bits


def zlib_8bit_bytes(q: np.ndarray) -> int:
    """zlib level 9 over the symbols stored as bytes (clipped to 8 bits): Bühlmann's lossless stage."""
    shifted = np.clip(q - q.min(), 0, 255).astype(np.uint8)
    return len(zlib.compress(shifted.tobytes(), 9))
