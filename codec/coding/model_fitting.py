"""Entropy model 1's per-file parameters: fitted by the encoder, stored as side information.

For every channel: the range of values coded directly (rarer ones escape), the earlier channel
used as a reference, an integer linear predictor, and scales shared across channels by activity
bucket. Fitting may use floats (only the encoder runs it); what is stored is integers, and the
decoder reads them back with ``read_side_info`` (bitstream/FORMAT.md describes the layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdcodec.bitstream.errors import FieldRangeError
from sdcodec.bitstream.varint import Reader, write_svarint, write_uvarint
from sdcodec.codec.coding import entropy_model as em


def _value_range(plane: np.ndarray) -> tuple[int, int]:
    """Values coded directly; rarer ones beyond go through the escape symbols.

    The full range when it is narrow, else the 1st..99th percentile widened by half, so a
    single outlier costs one escape instead of a wide alphabet for the whole channel.
    """
    low, high = int(plane.min()), int(plane.max())
    if high - low <= em.MAX_CORE_WIDTH:
        return low, high
    p1, p99 = (int(v) for v in np.percentile(plane, [1, 99], method="nearest"))
    margin = (p99 - p1) // 4 + 1
    low, high = max(low, p1 - margin), min(high, p99 + margin)
    if high - low > em.MAX_CORE_WIDTH:
        centre = int(np.median(plane))
        low, high = centre - em.MAX_CORE_WIDTH // 2, centre + em.MAX_CORE_WIDTH // 2
    return low, high


def _pick_references(q: np.ndarray) -> list[int]:
    """For each channel, the earlier channel it correlates with most (or -1 if none helps)."""
    flat = q.reshape(q.shape[0], -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.sqrt((flat**2).sum(axis=1))
    norms[norms == 0] = np.inf
    corr = np.abs(flat @ flat.T) / np.outer(norms, norms)
    refs = [-1]
    for c in range(1, q.shape[0]):
        best = int(np.argmax(corr[c, :c]))
        refs.append(best if corr[c, best] >= 0.1 else -1)
    return refs


def _fit_weights(plane: np.ndarray, features: np.ndarray) -> tuple[tuple[int, ...], int]:
    """Least-squares linear predictor (normal equations), rounded to integer weights."""
    x = np.vstack([features.astype(np.float64), np.ones(plane.size)])
    gram = x @ x.T
    solution = np.linalg.lstsq(gram, x @ plane.ravel().astype(np.float64), rcond=None)[0]  # copes with singular
    ints = np.rint(solution * em.WEIGHT_ONE)
    weights = np.clip(ints[:-1], -em.WEIGHT_LIMIT, em.WEIGHT_LIMIT)
    return tuple(int(v) for v in weights), int(np.clip(ints[-1], -(1 << 40), 1 << 40))


def _scale_costs(distance: np.ndarray, quarters: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    """costs[b, s]: approximate bits of this channel's symbols in bucket b under scale s."""
    phi = em.DECAY_RATES.astype(np.float64) / (1 << em.RATE_BITS)
    phase = np.mod(quarters, 4)
    log_norm = np.stack([np.log2((phi**r + phi ** (4 - r)) / (1 - phi**4)) for r in range(4)])  # (4, S)
    sum_distance = np.bincount(bucket, weights=distance.astype(np.float64), minlength=em.NUM_BUCKETS)
    counts = np.zeros((em.NUM_BUCKETS, 4))
    np.add.at(counts, (bucket, phase), 1)
    return -np.outer(sum_distance, np.log2(phi)) + counts @ log_norm


def _fit_scales(costs: np.ndarray) -> tuple[list[int], list[int]]:
    """Shared per-bucket scales plus one offset per channel, by alternating minimisation."""
    n_channels = costs.shape[0]
    scales = np.arange(em.NUM_SCALES)
    offsets = np.zeros(n_channels, dtype=int)
    base = np.zeros(em.NUM_BUCKETS, dtype=int)
    used = costs.sum(axis=(0, 2)) > 0
    for _ in range(4):
        for b in range(em.NUM_BUCKETS):
            idx = np.clip(scales[:, None] + offsets[None, :], 0, em.NUM_SCALES - 1)  # (S, C)
            base[b] = int(np.argmin(costs[np.arange(n_channels)[None, :], b, idx].sum(axis=1)))
        for c in range(n_channels):
            candidates = np.arange(-em.NUM_SCALES, em.NUM_SCALES)
            idx = np.clip(base[None, :] + candidates[:, None], 0, em.NUM_SCALES - 1)  # (O, B)
            offsets[c] = int(candidates[np.argmin(costs[c, np.arange(em.NUM_BUCKETS)[None, :], idx].sum(axis=1))])
    # Unused buckets copy their neighbour so the side information stays small.
    last = int(base[np.argmax(used)]) if used.any() else 0
    for b in range(em.NUM_BUCKETS):
        if used[b]:
            last = int(base[b])
        else:
            base[b] = last
    return [int(v) for v in base], [int(v) for v in offsets]


@dataclass
class ChannelPlan:
    params: em.ChannelParams
    quarters: np.ndarray
    bucket: np.ndarray


def fit_model(q: np.ndarray) -> tuple[em.ModelParams, list[ChannelPlan]]:
    """Choose every channel's range, reference, predictor and scales for symbols q (C, h, w)."""
    n_channels = q.shape[0]
    refs = _pick_references(q)
    errors = np.zeros((n_channels, q[0].size), dtype=np.int64)
    plans = []
    costs = np.zeros((n_channels, em.NUM_BUCKETS, em.NUM_SCALES))
    for c in range(n_channels):
        plane = q[c]
        values = plane.ravel()
        low, high = _value_range(plane)
        near = em.padded_plane_neighbours(em.pad(plane))
        reference = q[refs[c]].ravel() if refs[c] >= 0 else np.zeros_like(values)
        core = np.vstack([near, reference, values])
        core = np.clip(core, low - 1, high + 1)  # outliers must not steer the predictor
        weights, bias = _fit_weights(core[-1], core[:-1])
        params = em.ChannelParams(low, high, refs[c], weights, bias, 0)
        quarters = em.predict_quarters(params, near, reference)
        errors[c] = em.prediction_error(values, quarters)
        near_errors = em.padded_plane_neighbours(em.pad(errors[c].reshape(plane.shape)))
        bucket = em.activity_bucket(near_errors, errors[refs[c]] if refs[c] >= 0 else 0)
        coded = np.clip(values, low - 1, high + 1)
        costs[c] = _scale_costs(np.abs(4 * coded - quarters), quarters, bucket)
        plans.append(ChannelPlan(params, quarters, bucket))
    bucket_scales, offsets = _fit_scales(costs)
    for plan, offset in zip(plans, offsets):
        plan.params.scale_offset = offset
    return em.ModelParams([p.params for p in plans], bucket_scales), plans


def write_side_info(model: em.ModelParams) -> bytes:
    out = bytearray()
    previous = 0
    for scale in model.bucket_scales:
        write_svarint(scale - previous, out)
        previous = scale
    for c, p in enumerate(model.channels):
        write_svarint(p.low, out)
        write_uvarint(p.high - p.low, out)
        write_uvarint(c - p.reference if p.reference >= 0 else 0, out)
        for weight in p.weights:
            write_svarint(weight, out)
        write_svarint(p.bias, out)
        write_svarint(p.scale_offset, out)
    return bytes(out)


def read_side_info(reader: Reader, n_channels: int) -> em.ModelParams:
    scales, previous = [], 0
    for _ in range(em.NUM_BUCKETS):
        previous += reader.svarint("bucket scale", em.NUM_SCALES)
        if not 0 <= previous < em.NUM_SCALES:
            raise FieldRangeError(f"bucket scale {previous} is out of range")
        scales.append(previous)
    channels = []
    for c in range(n_channels):
        low = reader.svarint("channel low value", em.MAX_SYMBOL)
        high = low + reader.uvarint("channel value range", em.MAX_CORE_WIDTH)
        back = reader.uvarint("reference channel", c)
        weights = tuple(reader.svarint("prediction weight", em.WEIGHT_LIMIT) for _ in em.FEATURES)
        bias = reader.svarint("prediction bias", 1 << 40)
        offset = reader.svarint("scale offset", em.NUM_SCALES)
        channels.append(em.ChannelParams(low, high, c - back if back else -1, weights, bias, offset))
    return em.ModelParams(channels, scales)
