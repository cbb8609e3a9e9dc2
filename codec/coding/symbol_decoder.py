"""Entropy model 1's decoder as one compiled loop: cost linear in the latent, whatever its shape.

The encoder codes with constriction (``AnsCoder.encode_reverse`` with
``Categorical(perfect=False)`` rows); this module decodes the same bits without it, one
position at a time in the model's wavefront order, inside a numba kernel. A per-front
Python loop costs ~50 us a front, so a 1 x 1 x 1,000,000 latent (a million one-position
fronts) took minutes; here every position costs the same few dozen nanoseconds.

Bit-exactness with constriction rests on reproducing two things exactly:

* its ANS stack coder (32-bit words, 64-bit state, 24-bit probabilities): the state is
  read from the end of the word array, ``state = (state >> 24) * p + (quantile - left)``,
  refilled with one word whenever it drops below 2**32;
* its lazy categorical quantization of our integer rows (``from_floating_point_probabilities_fast``):
  ``scale = float(2**24 - n) / total`` and ``left(k) = int(float(cum_k) * scale) + k``.
  Our rows hold integers below 2**25, so every cumulative sum is exact in float64 and the
  only rounding is that one IEEE multiplication, the same on every machine.

Every other quantity is integer arithmetic shared with ``entropy_model``.
"""

from __future__ import annotations

import numpy as np

from sdcodec.codec.coding import entropy_model as em
from sdcodec.codec.coding.compiled import compiled

PRECISION = 24
QUANTILE_MASK = (1 << PRECISION) - 1
STATE_REFILL = 1 << 32

# Status codes of the kernel; the caller turns them into PayloadError messages.
OK = 0
ZERO_LAST_WORD = 1
ESCAPE_TRUNCATED = 2
ESCAPE_TOO_LARGE = 3
DATA_LEFT_OVER = 4
ESCAPES_LEFT_OVER = 5

MESSAGES = {
    ZERO_LAST_WORD: "the coded part ends in a zero word",
    ESCAPE_TRUNCATED: "the escape stream ends early",
    ESCAPE_TOO_LARGE: "an escaped value is out of range",
    DATA_LEFT_OVER: "coded data is left over after the last symbol",
    ESCAPES_LEFT_OVER: "unused escaped values",
}


@compiled
def _read_escape(escapes, cursor):
    """One uvarint of at most 10 bytes and at most MAX_SYMBOL (as ``Reader.uvarint``); -1/-2 on error."""
    value = np.int64(0)
    shift = 0
    for _ in range(10):
        if cursor[0] >= escapes.shape[0]:
            return np.int64(-1)
        byte = np.int64(escapes[cursor[0]])
        cursor[0] += 1
        bits = byte & 0x7F
        if bits != 0:
            if shift > 40:
                return np.int64(-2)
            value |= bits << shift
        shift += 7
        if byte & 0x80 == 0:
            return value if value <= (np.int64(1) << 40) else np.int64(-2)
    return np.int64(-2)


@compiled
def _decode_symbol(state, row_total, size, table, scale_index, offset):
    """Quantile -> (symbol, left cumulative, probability) under constriction's lazy quantization."""
    quantile = np.int64(state & np.uint64(QUANTILE_MASK))
    scale = np.float64((1 << PRECISION) - size) / np.float64(row_total)
    cumulative = np.int64(0)
    left = np.int64(0)
    for k in range(size - 1):
        cumulative += table[scale_index, abs(4 * k - offset)]
        right = np.int64(np.float64(cumulative) * scale) + k + 1
        if right > quantile:
            return k, left, right - left
        left = right
    return size - 1, left, np.int64(1 << PRECISION) - left


@compiled
def _row_total(table, scale_index, offset, size):
    total = np.int64(0)
    for k in range(size):
        total += table[scale_index, abs(4 * k - offset)]
    return total


# Long on purpose (about 80 lines): one compiled loop over every value (diagonal wavefront order),
# in which the rANS state, the word position, the cached row totals and the escape cursor advance
# together; numba helpers would have to pass all of that state and return several values per
# symbol, for no gain in clarity. Its small steps (_row_total, _decode_symbol, _read_escape) are
# helpers already.
@compiled
def decode_kernel(
    words, escapes, lows, highs, refs, weights, biases, channel_scales, table, thresholds, values, errors
):
    """Fill ``values`` (C, h, w) int64 and ``errors`` (C, h, w) int32; returns a status code.

    ``channel_scales[c, b]`` is channel c's scale index for activity bucket b. Totals of the
    rows a channel uses are cached per (scale, offset), so a wide alphabet costs its width
    once per distinct row, not once per symbol.
    """
    n_channels, height, width = values.shape
    pos = words.shape[0]
    state = np.uint64(0)
    if pos > 0:
        first = words[pos - 1]
        pos -= 1
        if first == 0:
            return ZERO_LAST_WORD
        state = np.uint64(first)
        if pos > 0:
            state = (state << np.uint64(32)) | np.uint64(words[pos - 1])
            pos -= 1
    cursor = np.zeros(1, dtype=np.int64)
    n_thresholds = thresholds.shape[0]
    for c in range(n_channels):
        low, high, ref = lows[c], highs[c], refs[c]
        size = high - low + 3
        w_west, w_north, w_nw, w_ne, w_ref = weights[c, 0], weights[c, 1], weights[c, 2], weights[c, 3], weights[c, 4]
        bias = biases[c]
        lowest, highest = 4 * (low - 1), 4 * (high + 1)
        totals = np.full((table.shape[0], 4 * (size - 1) + 1), -1, dtype=np.int64)
        plane, error_plane = values[c], errors[c]
        for t in range(2 * (height - 1) + width):
            first_row = max(0, (t - width + 2) // 2)
            last_row = min(height - 1, t // 2)
            for i in range(first_row, last_row + 1):
                j = t - 2 * i
                west = plane[i, j - 1] if j > 0 else 0
                e_west = error_plane[i, j - 1] if j > 0 else 0
                north = north_west = north_east = np.int64(0)
                e_north = e_nw = e_ne = np.int64(0)
                if i > 0:
                    north, e_north = plane[i - 1, j], error_plane[i - 1, j]
                    if j > 0:
                        north_west, e_nw = plane[i - 1, j - 1], error_plane[i - 1, j - 1]
                    if j < width - 1:
                        north_east, e_ne = plane[i - 1, j + 1], error_plane[i - 1, j + 1]
                reference = values[ref, i, j] if ref >= 0 else 0
                e_ref = errors[ref, i, j] if ref >= 0 else 0
                acc = w_west * west + w_north * north + w_nw * north_west + w_ne * north_east + w_ref * reference + bias
                quarters = min(max((acc * 4 + em.WEIGHT_ONE // 2) // em.WEIGHT_ONE, lowest), highest)
                activity = 2 * e_west + 2 * e_north + e_nw + e_ne + 2 * e_ref
                bucket = 0
                while bucket < n_thresholds and thresholds[bucket] <= activity:
                    bucket += 1
                scale_index = channel_scales[c, bucket]
                offset = quarters - lowest
                total = totals[scale_index, offset]
                if total < 0:
                    total = _row_total(table, scale_index, offset, size)
                    totals[scale_index, offset] = total
                symbol, left, probability = _decode_symbol(state, total, size, table, scale_index, offset)
                quantile = state & np.uint64(QUANTILE_MASK)
                state = (state >> np.uint64(PRECISION)) * np.uint64(probability) + (quantile - np.uint64(left))
                if state < np.uint64(STATE_REFILL) and pos > 0:
                    state = (state << np.uint64(32)) | np.uint64(words[pos - 1])
                    pos -= 1
                value = symbol + low - 1
                if symbol == 0 or symbol == size - 1:
                    extra = _read_escape(escapes, cursor)
                    if extra == -1:
                        return ESCAPE_TRUNCATED
                    if extra < 0:
                        return ESCAPE_TOO_LARGE
                    value = low - 1 - extra if symbol == 0 else high + 1 + extra
                plane[i, j] = value
                error_plane[i, j] = min(abs(4 * value - quarters), em.ERROR_CAP)
    if pos != 0 or state != 0:
        return DATA_LEFT_OVER
    return OK if cursor[0] == escapes.shape[0] else ESCAPES_LEFT_OVER


def decode(
    words: np.ndarray, escapes: bytes, model: em.ModelParams, shape: tuple[int, int, int]
) -> tuple[int, np.ndarray]:
    """Run the kernel over a parsed payload: (status, symbols (C, h, w) int64)."""
    channels = model.channels
    values = np.zeros(shape, dtype=np.int64)
    errors = np.zeros(shape, dtype=np.int32)  # capped at ERROR_CAP = 2**20
    status = decode_kernel(
        np.ascontiguousarray(words, dtype=np.uint32),
        np.frombuffer(escapes, dtype=np.uint8),
        np.array([p.low for p in channels], dtype=np.int64),
        np.array([p.high for p in channels], dtype=np.int64),
        np.array([p.reference for p in channels], dtype=np.int64),
        np.array([p.weights for p in channels], dtype=np.int64).reshape(len(channels), len(em.FEATURES)),
        np.array([p.bias for p in channels], dtype=np.int64),
        np.stack([model.scales_of_buckets(c) for c in range(len(channels))]).astype(np.int64),
        em.integer_probability_tables(em.table_size_for(channels)),
        em.ACTIVITY_THRESHOLDS,
        values,
        errors,
    )
    return status, values
