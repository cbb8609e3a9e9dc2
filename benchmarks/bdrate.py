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
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

# Below this share of the shorter curve's quality range, a BD-rate speaks for a narrow interval only.
SMALL_OVERLAP = 0.5


@dataclass(frozen=True)
class BdRate:
    """A BD-rate and the quality interval [low, high] it was integrated over.

    `overlap` is that interval's share of the shorter curve's quality range (1: the shorter curve
    lies wholly inside the other); below SMALL_OVERLAP the figure describes a narrow interval only.
    """

    percent: float
    low: float
    high: float
    overlap: float

    @property
    def small_overlap(self) -> bool:
        return self.overlap < SMALL_OVERLAP


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
    detail = bd_rate_detail(anchor_rate, anchor_quality, test_rate, test_quality)
    return None if detail is None else detail.percent


def bd_rate_detail(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> BdRate | None:
    """`bd_rate` with the quality interval it covers; None where the curves do not overlap."""
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
    shorter_range = min(anchor.x[-1] - anchor.x[0], test.x[-1] - test.x[0])
    percent = (math.exp(test_mean - anchor_mean) - 1.0) * 100.0
    return BdRate(float(percent), float(low), float(high), float((high - low) / shorter_range))


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
