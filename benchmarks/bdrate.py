"""Bjøntegaard delta rate (BD-rate) with piecewise-cubic (PCHIP) interpolation.

BD-rate is the average difference in log-rate between two rate-quality curves over the
quality interval both cover, expressed as a percentage: -20 means the test codec needs 20%
fewer bits than the anchor for the same quality. The log-rate of each curve is interpolated
as a function of quality with scipy's PchipInterpolator (monotone piecewise cubic, the
variant used since VCEG-AL22 / JVET common test conditions) and integrated exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> float | None:
    """BD-rate in percent of the test curve against the anchor; None where the curves do not overlap.

    Rates must be positive (bytes or bpp); quality is any metric (its direction does not matter:
    the comparison is at equal quality). Each curve needs at least two distinct quality values.
    """
    anchor = _log_rate_of_quality(anchor_rate, anchor_quality)
    test = _log_rate_of_quality(test_rate, test_quality)
    if anchor is None or test is None:
        return None
    low = max(anchor.x[0], test.x[0])
    high = min(anchor.x[-1], test.x[-1])
    if not high > low:
        return None
    anchor_mean = anchor.integrate(low, high) / (high - low)
    test_mean = test.integrate(low, high) / (high - low)
    return float((math.exp(test_mean - anchor_mean) - 1.0) * 100.0)


def _log_rate_of_quality(rate: Sequence[float], quality: Sequence[float]) -> PchipInterpolator | None:
    """PCHIP of log(rate) over quality, from points sorted by quality (duplicate qualities averaged)."""
    rate = np.asarray(rate, dtype=np.float64)
    quality = np.asarray(quality, dtype=np.float64)
    if rate.shape != quality.shape:
        raise ValueError("rate and quality must have the same length")
    keep = np.isfinite(rate) & np.isfinite(quality) & (rate > 0)
    rate, quality = rate[keep], quality[keep]
    if len(rate) == 0:
        return None
    qualities, inverse = np.unique(quality, return_inverse=True)
    if len(qualities) < 2:
        return None
    log_rate = np.bincount(inverse, weights=np.log(rate)) / np.bincount(inverse)
    return PchipInterpolator(qualities, log_rate)
