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


RDO_MAGNITUDE_CAP = 1 << 10  # |q| beyond this shares one histogram bin (its rate barely matters)


def magnitude_bits(q: np.ndarray) -> np.ndarray:
    """Bits (C, CAP + 1) of each magnitude in each channel, from the channel's histogram of |q|.

    A proxy for the context model's cost (which codes about 0.86x this zeroth-order entropy): it
    needs no coding pass and ranks the candidates of one symbol as the real coder does. Unseen
    magnitudes get half a count, so every value has a finite cost.
    """
    c = q.shape[0]
    magnitudes = np.minimum(np.abs(q), RDO_MAGNITUDE_CAP).reshape(c, -1)
    counts = np.stack([np.bincount(m, minlength=RDO_MAGNITUDE_CAP + 1) for m in magnitudes]) + 0.5
    return -np.log2(counts / counts.sum(axis=1, keepdims=True))


def symbol_bits(costs: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Bits of each symbol (C, h, w) under ``magnitude_bits`` costs, plus a sign bit if nonzero."""
    magnitudes = np.minimum(np.abs(q), RDO_MAGNITUDE_CAP).reshape(q.shape[0], -1)
    return np.take_along_axis(costs, magnitudes, axis=1).reshape(q.shape) + (q != 0)


def rdo_quantize(latent: np.ndarray, step, rate_weight: float) -> np.ndarray:
    """Symbols chosen for rate plus distortion: each rounded value, or one step nearer zero where cheaper.

    Rounding minimises each value's error but not error + lambda * bits: a value just above a half
    step costs a whole symbol's bits for a small error saving. For every nonzero symbol q this keeps
    q or takes ``q - sign(q)``, whichever has the lower ``e^2 + lambda * bits`` (RDOQ, as in HEVC
    encoders, with two candidates per symbol). Errors are in units of each channel's step, so a
    channel's error counts in proportion to its decoder gain (steps are 1 / sqrt(gain),
    ``channel_weighting``); bits are ``symbol_bits`` under the rounded symbols' histograms. lambda is
    the uniform quantizer's equal-slope point ``2 ln2 D``, D the rounded symbols' mean squared error
    in steps, times ``rate_weight`` (0 gives plain rounding). Errors use the reconstruction offset
    the rounded symbols get; the caller fits the offset again for the chosen ones. Deterministic.
    """
    q = quantize(latent, step)
    if rate_weight <= 0 or not q.any():
        return q
    magnitude = np.abs(latent / step)
    shrink = best_recon_offset(latent, q, step) / bitstream.container.RECON_OFFSET_SCALE
    nearer = q - np.sign(q)
    error = magnitude - np.maximum(np.abs(q) - shrink, 0)
    nearer_error = magnitude - np.maximum(np.abs(nearer) - shrink, 0)
    lam = rate_weight * 2 * np.log(2) * float(np.mean(error**2))
    costs = magnitude_bits(q)
    keep_cost = error**2 + lam * symbol_bits(costs, q)
    nearer_cost = nearer_error**2 + lam * symbol_bits(costs, nearer)
    return np.where(nearer_cost < keep_cost, nearer, q)


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
