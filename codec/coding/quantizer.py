"""Uniform scalar quantization of latents: steps (one per channel), symbols, reconstruction points.

The encoder rounds to the nearest multiple of the channel's step; the decoder puts each value
back at ``sign(q) (|q| - shrink) step``, where the file's reconstruction offset sets the shrink.
"""

from __future__ import annotations

import numpy as np

from sdcodec import bitstream
from sdcodec.codec.coding import entropy_model as em


def as_latent_array(latent) -> np.ndarray:
    """A (C, h, w) float64 copy of a numpy array or torch tensor; refuses non-finite values."""
    if hasattr(latent, "detach"):
        latent = latent.detach().cpu().float().numpy()
    array = np.asarray(latent, dtype=np.float64)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"latent must have shape (C, h, w), got {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError("latent contains NaN or infinite values")
    return array


def channel_steps(step: float, multipliers: tuple[int, ...], channels: int) -> np.ndarray:
    """Per-channel steps (C, 1, 1): ``step * multiplier / 16``, or ``step`` everywhere."""
    if not multipliers:
        return np.full((channels, 1, 1), step)
    return step * np.asarray(multipliers, dtype=np.float64).reshape(-1, 1, 1) / bitstream.container.CHANNEL_STEP_ONE


def quantize(latent: np.ndarray, step) -> np.ndarray:
    """Nearest integer multiple of ``step`` (the bin of q is [(q - 1/2) step, (q + 1/2) step]).

    ``step`` is a number or per-channel steps of shape (C, 1, 1).
    """
    scaled = latent / step
    largest = np.abs(scaled).max()
    if largest > em.MAX_SYMBOL:
        raise ValueError(f"latent values are too large for quantization step {np.min(step):g} (|value / step| > 2**40)")
    return np.rint(scaled).astype(np.int64)


def best_recon_offset(latent: np.ndarray, q: np.ndarray, step) -> int:
    """How far towards zero (1/64 steps) to put reconstruction points: the mean in-bin offset.

    Latents are peaked at zero, so inside a bin the values lean towards zero; reconstructing
    at their mean instead of the bin centre lowers the error at no cost in bits.
    """
    nonzero = q != 0
    if not nonzero.any():
        return 0
    lean = (np.abs(q) - np.abs(latent) / step)[nonzero]
    return int(np.clip(round(float(lean.mean()) * bitstream.container.RECON_OFFSET_SCALE), 0, 31))


def dequantize(q: np.ndarray, step, recon_offset: int) -> np.ndarray:
    """Reconstruction points (float32) of symbols q (C, h, w): ``sign(q) (|q| - shrink) step``.

    Computed in float64 one channel at a time, so the temporaries stay one channel large.
    """
    shrink = recon_offset / bitstream.container.RECON_OFFSET_SCALE
    steps = np.broadcast_to(np.asarray(step, dtype=np.float64).reshape(-1, 1, 1), (q.shape[0], 1, 1))
    out = np.empty(q.shape, dtype=np.float32)
    for c in range(q.shape[0]):
        out[c] = np.sign(q[c]) * np.maximum(np.abs(q[c]) - shrink, 0) * steps[c]
    return out


def header_steps(sdz: bitstream.SdzFile) -> np.ndarray:
    """The per-channel quantization steps (C, 1, 1) a file's symbols were made with."""
    return channel_steps(sdz.quant_step, sdz.channel_steps, sdz.latent_shape[0])
