"""Rate control: the smallest quantization step whose file fits a byte budget (``--size``/``--bpp``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sdcodec import bitstream
from sdcodec.codec.coding.quantizer import channel_steps


class SizeEstimate:
    """Bytes of a file as a function of its step code, from zeroth-order entropy: cheap, for aiming.

    The context model codes about 0.86x the zeroth-order entropy of the same symbols; rather than
    assume that, ``calibrate`` scales the estimate by the last real file, so each aim is exact where
    the last trial was and the search needs a few real encodes instead of fifteen.
    """

    CLIP = 1 << 10  # symbols beyond +-CLIP count as one value: a rare outlier barely moves the estimate
    SUBSAMPLE = 8  # every 8th value of each channel: the estimate only aims, calibration absorbs the rest
    TYPICAL_SCALE = 0.86  # context-model bytes / zeroth-order bytes on Kodak latents (see the README)

    def __init__(self, latent: np.ndarray, multipliers: tuple[int, ...]):
        flat = latent.reshape(latent.shape[0], -1)
        self.latent = flat[:, :: self.SUBSAMPLE][:, :, None]  # (C, n, 1) for channel_steps' (C, 1, 1)
        self.values = flat.shape[1]
        self.multipliers = multipliers
        self.scale = self.TYPICAL_SCALE

    def raw_bytes(self, step_code: int) -> float:
        c = self.latent.shape[0]
        steps = channel_steps(step_code / bitstream.STEP_SCALE, self.multipliers, c)
        q = np.clip(np.rint(self.latent / steps), -self.CLIP, self.CLIP).astype(np.int64).reshape(c, -1)
        counts = np.bincount(
            (q + self.CLIP + np.arange(c)[:, None] * (2 * self.CLIP + 1)).ravel(), minlength=c * (2 * self.CLIP + 1)
        ).reshape(c, -1)
        p = counts / q.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            bits = -(counts * np.where(p > 0, np.log2(p), 0)).sum() * self.values / q.shape[1]
        return bits / 8 + 64  # + header and side information, roughly

    def calibrate(self, step_code: int, real_bytes: int) -> None:
        self.scale = real_bytes / self.raw_bytes(step_code)

    def step_code_for(self, max_bytes: int, low: int, high: int) -> int:
        """The step code in (low, high) where the calibrated estimate crosses max_bytes (bisection)."""
        while high - low > 1:
            middle = (low + high) // 2
            if self.scale * self.raw_bytes(middle) <= max_bytes:
                high = middle
            else:
                low = middle
        return high


AIMED_TRIALS = 8


def fit_size(latent: np.ndarray, max_bytes: int, multipliers: tuple[int, ...], encode_at: Callable):
    """The file from ``encode_at(step_code)`` with the smallest step (so the smallest error) that
    fits in max_bytes, to 0.4% of the step. ``multipliers`` are the per-channel step multipliers.

    File size falls as the step grows. The invariant is that ``best`` is the real file at ``high``
    and fits, and ``low`` was tried and did not (or is 1), so a rare non-monotone step can cost a
    little quality but never exceed the ceiling. Each trial is aimed by a calibrated entropy
    estimate (``SizeEstimate``) until a trial has failed, then between the bracket's two real
    sizes (``interpolated_code``), nudged inside the bracket so that it always shrinks; after
    ``AIMED_TRIALS`` the search falls back to bisection, which bounds it whatever the estimate does.
    """
    smallest_multiplier = min(multipliers or (16,)) / bitstream.container.CHANNEL_STEP_ONE
    spread = max(float(np.abs(latent).max()), 1e-3) / smallest_multiplier
    coarse = bitstream.step_to_code(4 * spread + 1)  # every symbol is 0 from here on
    smallest = encode_at(coarse)
    if len(smallest.data) > max_bytes:
        raise ValueError(
            f"cannot fit in {max_bytes} bytes: the smallest file for this latent is {len(smallest.data)} bytes"
        )
    best, low, high = smallest, 1, coarse  # invariant: high fits
    sizes = {coarse: len(smallest.data)}  # real file sizes of the trials
    estimate = SizeEstimate(latent, multipliers)
    trials = 0
    while high - low > max(1, high // 256):  # 0.4% resolution on the step is plenty
        margin = max(1, high // 512)
        if trials >= AIMED_TRIALS:
            aim = (low + high) // 2
        elif low in sizes:
            aim = interpolated_code(max_bytes, low, sizes[low], high, sizes[high])
        else:
            aim = estimate.step_code_for(max_bytes, low, high)
        aim = min(max(aim, low + margin), high - margin)  # strictly inside, so the bracket shrinks
        trial = encode_at(aim)
        trials += 1
        sizes[aim] = len(trial.data)
        estimate.calibrate(aim, len(trial.data))
        if len(trial.data) <= max_bytes:
            high, best = aim, trial
        else:
            low = aim
    return best


def interpolated_code(max_bytes: int, low: int, low_bytes: int, high: int, high_bytes: int) -> int:
    """Where max_bytes falls between two real trials, with log size linear in log step (regula falsi).

    Once both ends of the bracket are real files this aims better than the estimate, whose symbols
    are rounded: the encoder's quantizer (RDOQ, error shaping) and entropy model change the size by
    a factor that drifts with the step, which a one-point calibration cannot follow. (The Illinois
    method's halving, against creeping from one side, took 6.0 encodes on Kodak instead of 5.6.)
    """
    above = np.log(low_bytes / max_bytes)  # > 0: low does not fit
    below = np.log(max_bytes / high_bytes)  # >= 0: high fits
    if above <= 0 or below < 0 or above + below <= 0:  # not monotone here: nothing to interpolate
        return (low + high) // 2
    fraction = above / (above + below)
    return int(round(np.exp(np.log(low) + fraction * (np.log(high) - np.log(low)))))
