"""Uniform scalar quantization of latents: steps (one per channel), symbols, reconstruction points.

The encoder rounds to the nearest multiple of the channel's step (or, with ``rdo_quantize``, moves
a symbol one step towards zero where the bits saved are worth more than the error added); the
decoder puts each value back at ``sign(q) (|q| - shrink) step``, where the file's reconstruction
offset sets the shrink.
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


# --- rate-distortion optimised quantization (encoder only: the decoder never sees the difference) ---

RDO_MAGNITUDE_CAP = 1 << 10  # |q| from here on shares one histogram bin (its rate barely matters)
RDO_PASSES = 2  # the second pass prices symbols under the statistics of the first pass's choice
# Bucket of the causal neighbours' summed magnitudes (0, 1, 2, 3-4, 5+): the rate proxy's contexts.
ACTIVITY_BUCKET = np.array([0, 1, 2, 3, 3, 4])
CONTEXTS = int(ACTIVITY_BUCKET.max()) + 1


def neighbour_context(q: np.ndarray) -> np.ndarray:
    """Bucketed activity (0-4) of each symbol's west, north-west, north and north-east neighbours.

    The coder predicts and scales each symbol from these neighbours (``entropy_model``), so among
    zeros a zero is cheap and anything else dear; the proxy's histograms are kept per bucket.
    """
    magnitude = np.minimum(np.abs(q), len(ACTIVITY_BUCKET))
    padded = np.pad(magnitude, ((0, 0), (1, 0), (1, 1)))
    h, w = q.shape[1:]
    activity = padded[:, 1:, :w] + padded[:, :h, :w] + padded[:, :h, 1 : w + 1] + padded[:, :h, 2:]
    return ACTIVITY_BUCKET[np.minimum(activity, len(ACTIVITY_BUCKET) - 1)]


def _bin_index(q: np.ndarray, context: np.ndarray) -> np.ndarray:
    """(C, n) index of each symbol's (context, magnitude) bin."""
    c = q.shape[0]
    magnitude = np.minimum(np.abs(q), RDO_MAGNITUDE_CAP).reshape(c, -1)
    return context.reshape(c, -1) * (RDO_MAGNITUDE_CAP + 1) + magnitude


def magnitude_bits(q: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Bits (C, CONTEXTS * (CAP + 1)) of each magnitude per channel and context, from histograms of q.

    A proxy for the context model's cost that needs no coding pass. Unseen bins get half a count,
    so every value has a finite cost.
    """
    bins = CONTEXTS * (RDO_MAGNITUDE_CAP + 1)
    counts = np.stack([np.bincount(k, minlength=bins) for k in _bin_index(q, context)]) + 0.5
    totals = counts.reshape(q.shape[0], CONTEXTS, -1).sum(axis=2)
    return -np.log2(counts / np.repeat(totals, RDO_MAGNITUDE_CAP + 1, axis=1))


def symbol_bits(costs: np.ndarray, q: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Bits of each symbol (C, h, w) in its context under ``magnitude_bits`` costs, plus a sign bit if nonzero."""
    return np.take_along_axis(costs, _bin_index(q, context), axis=1).reshape(q.shape) + (q != 0)


def rdo_quantize(latent: np.ndarray, step, rate_weight: float) -> np.ndarray:
    """Symbols chosen for rate plus distortion: each rounded value, or one step nearer zero where cheaper.

    Rounding minimises each value's error but not error + lambda * bits: a value just past a half
    step can cost many bits (an isolated nonzero among zeros) for a small error saving. For every
    nonzero symbol q this keeps q or takes ``q - sign(q)``, whichever has the lower
    ``e^2 + lambda * bits`` (RDOQ, as HEVC encoders do, with two candidates per symbol).

    * e is in units of the channel's step: the steps are proportional to 1 / sqrt(decoder gain)
      (``channel_weighting``), so a unit of e costs about the same pixel error in every channel.
    * bits are ``symbol_bits``: per channel and neighbour context histograms of the symbols.
    * lambda is the uniform quantizer's equal-slope point ``2 ln2 D`` (D the rounded symbols'
      mean e^2) times ``rate_weight``; 0 gives plain rounding.

    Errors use the reconstruction offset of the rounded symbols; the caller fits the offset again
    for the chosen ones. Deterministic (no random numbers), numpy only.
    """
    q = quantize(latent, step)
    if rate_weight <= 0 or not q.any():
        return q
    magnitude = np.abs(latent / step)
    shrink = best_recon_offset(latent, q, step) / bitstream.container.RECON_OFFSET_SCALE
    nearer = q - np.sign(q)
    keep_distortion = (magnitude - np.maximum(np.abs(q) - shrink, 0)) ** 2
    nearer_distortion = (magnitude - np.maximum(np.abs(nearer) - shrink, 0)) ** 2
    lam = rate_weight * 2 * np.log(2) * float(keep_distortion.mean())
    chosen = q
    for _ in range(RDO_PASSES):
        context = neighbour_context(chosen)
        costs = magnitude_bits(chosen, context)
        keep_cost = keep_distortion + lam * symbol_bits(costs, q, context)
        nearer_cost = nearer_distortion + lam * symbol_bits(costs, nearer, context)
        chosen = np.where(nearer_cost < keep_cost, nearer, q)
    return chosen


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
