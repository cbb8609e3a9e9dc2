"""Uniform scalar quantization of latents: steps (one per channel), symbols, reconstruction points.

The encoder rounds to the nearest multiple of the channel's step (or, with ``rdo_quantize``, moves
a symbol one step towards zero where the bits saved are worth more than the error added, and
shapes the errors across channels with the decoder's channel metric); the
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


def rdo_quantize(latent: np.ndarray, step, rate_weight: float, metric: np.ndarray | None = None) -> np.ndarray:
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

    ``metric`` (C, C), the decoder's channel metric ``J^T J`` in latent units
    (``channel_weighting.channel_metric``), then shapes the errors across channels: see
    ``shape_errors``. Errors use the reconstruction offset of the rounded symbols; the caller fits
    the offset again for the chosen ones. Deterministic (no random numbers), numpy only.
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
    if metric is None:
        return chosen
    context = neighbour_context(chosen)
    costs = magnitude_bits(chosen, context)
    return shape_errors(latent / step, chosen, shrink, step_metric(metric, step, q.shape[0]), lam, costs, context)


# --- error shaping across channels with the decoder's channel metric ---

SHAPING_SWEEPS = 2  # coordinate-descent sweeps over the channels (a third changes almost nothing)


def step_metric(metric: np.ndarray, step, channels: int) -> np.ndarray:
    """The channel metric (C, C) in units of each channel's step, scaled to a mean diagonal of 1.

    With steps proportional to 1 / sqrt(gain) the diagonal is about 1 everywhere, so the scale is
    that of ``rdo_quantize``'s squared errors and its lambda applies unchanged.
    """
    metric = np.asarray(metric, dtype=np.float64)
    if metric.shape != (channels, channels):
        raise ValueError(f"channel metric must have shape ({channels}, {channels}), got {metric.shape}")
    steps = np.broadcast_to(np.asarray(step, dtype=np.float64).reshape(-1), (channels,))
    scaled = metric * np.outer(steps, steps)
    return scaled / float(np.mean(np.diag(scaled)))


def shape_errors(
    scaled: np.ndarray,
    q: np.ndarray,
    shrink: float,
    metric: np.ndarray,
    lam: float,
    costs: np.ndarray,
    context: np.ndarray,
) -> np.ndarray:
    """Symbols moved one step either way where ``e^T M e + lambda * bits`` falls, channel by channel.

    The decoder mixes channels: its Jacobian's columns for two channels at one position are far from
    orthogonal (on TAEF2 the metric's eigenvalues span 0.1 to 4 times its mean diagonal), so the pixel
    error of a position is ``e^T M e`` over its C channel errors e (in steps), not their plain sum of
    squares. Errors that the decoder partly cancels are cheap: moving one symbol can lower the
    pixel error of the whole position even where it raises its own. This is coordinate descent on
    that cost, exact for each channel given the others: every position of channel c tries q + 1
    and q - 1 against the current errors of the other channels, and ``g = M e`` is updated after
    each channel. Bits are ``symbol_bits`` under fixed contexts. ``scaled`` is latent / step.
    """
    channels = q.shape[0]
    x = scaled.reshape(channels, -1)
    chosen = q.reshape(channels, -1).copy()
    contexts = context.reshape(channels, -1)

    def reconstruction(v):
        return np.sign(v) * np.maximum(np.abs(v) - shrink, 0)

    def bits(c, v):
        return symbol_bits(costs[c : c + 1], v[None], contexts[c : c + 1])[0]

    errors = x - reconstruction(chosen)
    gradient = metric @ errors  # half the gradient of e^T M e
    for _ in range(SHAPING_SWEEPS):
        moved_any = False
        for c in range(channels):
            current = chosen[c]
            current_bits = bits(c, current)
            best_cost = np.zeros(current.shape)
            best = current
            for delta in (1, -1):
                candidate = current + delta
                change = (x[c] - reconstruction(candidate)) - errors[c]
                cost = change * (2 * gradient[c] + change * metric[c, c]) + lam * (bits(c, candidate) - current_bits)
                better = cost < best_cost
                best_cost = np.where(better, cost, best_cost)
                best = np.where(better, candidate, best)
            moved = best != current
            if not moved.any():
                continue
            moved_any = True
            change = np.where(moved, (x[c] - reconstruction(best)) - errors[c], 0.0)
            chosen[c] = best
            errors[c] += change
            gradient += np.outer(metric[:, c], change)
        if not moved_any:
            break
    return chosen.reshape(q.shape)


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
