"""Entropy model 2's coder: one compiled kernel that encodes or decodes, sharing every model update.

Encoding and decoding run the *same* function (``_kernel``) with a ``decoding`` flag: the only
difference is whether each binary decision is written to or read from the arithmetic coder.
Every probability, context and weight update in between is shared code, so the decoder cannot
drift from the encoder, and every quantity is integer arithmetic on decoded symbols and the
tables of ``entropy_model2`` (no float anywhere), so decoding is bit-exact on every machine.

Per symbol v at (channel c, row i, column j), planes in the encoder's channel order, raster
order inside a plane:

1. *Prediction*: a normalised LMS filter (integer weights, one set per channel, reset at each
   channel) over the causal neighbours W, N, NW, NE, WW, NN of the same channel and, for each of
   up to ``MAX_REFS`` earlier-coded reference channels, its values at (i, j) and at the four
   positions around it (an earlier channel is complete, so below and right are known too).
   P is in 1/16 symbol; the symbol is coded as the residual e = v - round(P).
2. *Binarisation*: a zero flag, a sign, then |e| - 1 in unary up to ``UNARY_STEPS``; beyond, an
   Elias-gamma escape (adaptive length bits, flat mantissa bits), so outliers cost O(log |e|).
3. *Probability of each bit*: ``NUM_INPUTS - 1`` adaptive binary counters, each picked by a
   context (local activity, the fraction of P, signed neighbour residuals, residuals of the
   reference channels at (i, j), neighbour values around round(P), ...) together with the bit's
   place in the binarisation; their stretched probabilities plus a bias are mixed by a
   fixed-point logistic mixer (weight set chosen by bit place and activity) and refined by an
   APM (interpolated SSE table), all integer.
4. *Coding*: a carry-less 32-bit binary arithmetic coder (as in lpaq1) with 16-bit probabilities.

The payload is the coder's byte stream and nothing else: it starts with the channel order
and each channel's reference channels, coded as fixed-length fields through the same coder,
and ends with a 16-bit end marker. A valid stream is consumed exactly (the decoder checks it).
"""

from __future__ import annotations

import numpy as np

from sdcodec.codec.coding import entropy_model2 as em2
from sdcodec.codec.coding.compiled import compiled

SQUASH = em2.SQUASH
STRETCH = em2.STRETCH
RECIPROCALS = em2.RECIPROCALS

MASK32 = 0xFFFFFFFF
HALF = 1 << 15  # probability 1/2: the flat bits of fixed-length fields and escape mantissas

# Status codes of the decoder; ``MESSAGES`` turns them into PayloadError text.
OK = 0
BAD_ORDER = 1
BAD_REFERENCES = 2
ESCAPE_TOO_LONG = 3
VALUE_TOO_LARGE = 4
DATA_EXHAUSTED = 5
DATA_LEFT_OVER = 6
BAD_END_MARKER = 7

MESSAGES = {
    BAD_ORDER: "the channel order is not a permutation",
    BAD_REFERENCES: "a reference channel is out of range",
    ESCAPE_TOO_LONG: "an escape code is too long",
    VALUE_TOO_LARGE: "a decoded value is out of range",
    DATA_EXHAUSTED: "the coded data ends early",
    DATA_LEFT_OVER: "coded data is left over after the last symbol",
    BAD_END_MARKER: "the end marker is wrong (truncated or corrupt data)",
}
# 16 flat bits after the last symbol: a stream that was cut or corrupted decodes them wrongly
# (odds 1 in 65536 otherwise), so such defects are reported instead of giving wrong symbols.
END_MARKER = 0xA53C

MAX_REFS = em2.MAX_REFS
REF_BITS = em2.REF_COUNT_BITS
assert (1 << REF_BITS) > MAX_REFS, "the reference count field must hold MAX_REFS"
PAD = em2.PAD
NUM_SPATIAL = len(em2.SPATIAL_NEIGHBOURS)
NUM_FIRST_REF = len(em2.REFERENCE_NEIGHBOURS)
NUM_NEAR_REF = em2.NEAR_REFERENCE
# Feature layout: spatial neighbours | first reference | other references | bias.
NUM_FEATURES = NUM_SPATIAL + NUM_FIRST_REF + NUM_NEAR_REF * (MAX_REFS - 1) + 1
BIAS_FEATURE = 8
CLIP = em2.FEATURE_CLIP
MU_SHIFT = em2.LMS_MU_SHIFT
WEIGHT_LIMIT = 1 << 22  # LMS weights stay within +-1024 (Q12)
OUTLIER_MARGIN = em2.OUTLIER_MARGIN

NUM_ACTIVITY = em2.NUM_ACTIVITY
BIT_PLACES = em2.BIT_PLACES  # 0 zero flag, 1 sign, 2.. unary steps (the last place is shared)
UNARY_STEPS = em2.UNARY_STEPS
MAX_GAMMA_BITS = 42
MAX_SYMBOL = em2.MAX_SYMBOL
NUM_TABLES = 7  # context counters per bit
NUM_INPUTS = NUM_TABLES + 1  # and the bias
COUNTER_LIMIT = em2.COUNTER_LIMIT
MIXER_RATE = em2.MIXER_RATE
MIXER_INIT = em2.MIXER_INIT
MIXER_SHIFT = em2.MIXER_GROUP_SHIFT
MIXER_GROUPS = (NUM_ACTIVITY + (1 << MIXER_SHIFT) - 1) >> MIXER_SHIFT
MIXER_LIMIT = 1 << 24  # mixer weights stay within +-256 (Q16)
APM_RATE = em2.APM_RATE
SMALL_LATENT = 1 << 14  # up to this many values the encoder also tries coding without references


def _flat_offsets(offsets, width: int) -> np.ndarray:
    """(row, column) offsets as offsets into a padded plane of ``width + 2 * PAD`` columns."""
    return np.array([dy * (width + 2 * PAD) + dx for dy, dx in offsets], dtype=np.int64)


# --- the binary arithmetic coder --------------------------------------------------------
# coder[0] = low, coder[1] = high, coder[2] = the decoder's window, coder[3] = byte position.


@compiled(inline="always")
def _code_bit(decoding, coder, buf, bit, p):
    """Encode ``bit``, or decode and return it, with P(bit = 1) = p / 65536 (p in [32, 65504])."""
    low = coder[0]
    high = coder[1]
    span = high - low
    middle = low + (span >> 16) * p + (((span & 0xFFFF) * p) >> 16)
    if decoding:
        bit = 1 if coder[2] <= middle else 0
    if bit:
        high = middle
    else:
        low = middle + 1
    while ((low ^ high) & 0xFF000000) == 0:
        pos = coder[3]
        if decoding:
            coder[2] = ((coder[2] << 8) & MASK32) | (buf[pos] if pos < buf.shape[0] else 255)
        elif pos < buf.shape[0]:
            buf[pos] = high >> 24
        coder[3] = pos + 1
        low = (low << 8) & MASK32
        high = ((high << 8) & MASK32) | 255
    coder[0] = low
    coder[1] = high
    return bit


@compiled
def _code_uniform(decoding, coder, buf, value, bits):
    """A fixed-length field of ``bits`` flat bits, most significant first."""
    out = 0
    for b in range(bits - 1, -1, -1):
        out = (out << 1) | _code_bit(decoding, coder, buf, (value >> b) & 1, HALF)
    return out


@compiled
def _bits_for(count):
    """Bits of a fixed-length field holding 0 .. count - 1."""
    bits = 0
    while (1 << bits) < count:
        bits += 1
    return bits


# --- adaptive counters, mixer, APM ------------------------------------------------------


@compiled(inline="always")
def _update_counter(table, index, bit):
    """Probability in 22 bits (high part) and a hit count (low 10 bits); rate 1 / (n + 1.5)."""
    state = table[index]
    n = state & 1023
    p = state >> 10
    p += (((bit << 22) - p) * RECIPROCALS[n]) >> 16
    if n < COUNTER_LIMIT:
        n += 1
    table[index] = (p << 10) | n


@compiled(inline="always")
def _squash(x):
    if x > 2047:
        x = 2047
    elif x < -2047:
        x = -2047
    return SQUASH[x + 2048]


@compiled
def _activity_bucket(activity):
    """Buckets 1.5x wide from one symbol of summed neighbour error (activity in 1/16 symbol)."""
    bucket = 0
    threshold = 16
    while bucket < NUM_ACTIVITY - 1 and activity >= threshold:
        bucket += 1
        threshold = (threshold * 3) >> 1
    return bucket


@compiled(inline="always")
def _signed_level(error):
    """A residual in 1/16 symbol as -3..3: |e| < 1/2, < 3/2, < 7/2, larger."""
    a = abs(error)
    level = 0 if a < 8 else (1 if a < 24 else (2 if a < 56 else 3))
    return level if error >= 0 else -level


@compiled(inline="always")
def _clamp(x, limit):
    return -limit if x < -limit else (limit if x > limit else x)


# --- the kernel -------------------------------------------------------------------------


@compiled
def _code_header(decoding, coder, buf, order, refs, nrefs):
    """Channel order (a permutation, each entry an index into the channels left) and references."""
    channels = order.shape[0]
    left = np.arange(channels)
    for k in range(channels - 1):
        remaining = channels - k
        index = 0
        if not decoding:
            while left[index] != order[k]:
                index += 1
        index = _code_uniform(decoding, coder, buf, index, _bits_for(remaining))
        if index >= remaining:
            return BAD_ORDER
        order[k] = left[index]
        left[index] = left[remaining - 1]
    order[channels - 1] = left[0]
    for k in range(1, channels):
        c = order[k]
        limit = min(k, MAX_REFS)
        count = _code_uniform(decoding, coder, buf, nrefs[c], REF_BITS)
        if count > limit:
            return BAD_REFERENCES
        nrefs[c] = count
        bits = _bits_for(k)
        for r in range(count):
            position = 0
            if not decoding:
                while order[position] != refs[c, r]:
                    position += 1
            position = _code_uniform(decoding, coder, buf, position, bits)
            if position >= k:
                return BAD_REFERENCES
            refs[c, r] = order[position]
    return OK


@compiled
def _new_tables(channels):
    """Fresh counters (one block per context table), mixer weights, APM, and escape counters."""
    sizes = np.array(
        [
            NUM_ACTIVITY * 16,  # activity, prediction fraction (1/16)
            channels * NUM_ACTIVITY,  # channel, activity
            7 * 7 * 4,  # signed residuals W, N; fraction (1/4)
            7 * 7 * 8,  # signed residuals of references 1 and 2 at (i, j); activity / 2
            7 * 4 * 8,  # round(P) near zero; fraction; activity / 2
            7 * 7 * 7,  # signed residuals NW, NE, reference 1
            7 * 7 * 4,  # W - round(P), N - round(P); fraction
        ],
        dtype=np.int64,
    )
    starts = np.zeros(NUM_TABLES + 1, dtype=np.int64)
    for t in range(NUM_TABLES):
        starts[t + 1] = starts[t] + sizes[t] * BIT_PLACES
    counters = np.full(starts[NUM_TABLES], 1 << 31, dtype=np.int64)  # p = 1/2, n = 0
    mixer = np.full((BIT_PLACES * MIXER_GROUPS, NUM_INPUTS), MIXER_INIT, dtype=np.int64)
    apm = np.empty((BIT_PLACES * MIXER_GROUPS, 33), dtype=np.int64)
    for k in range(33):
        apm[:, k] = _squash((k - 16) * 128) * 16  # the identity, in 1/2**20
    escapes = np.full(MAX_GAMMA_BITS + 2, 1 << 31, dtype=np.int64)
    return starts, counters, mixer, apm, escapes


# Long on purpose (about 160 lines): the encoder and the decoder run this one function, so every
# model update is shared code, and the four steps per symbol (prediction, contexts, bits, learning)
# share a dozen arrays and running values; split into numba functions they would pass all of them
# and gain only a reading order the numbered comments already give. The small helpers above are
# inlined into it. For the same reason the compiled code stays in this one file: numba's disk cache
# watches only the file of the function it compiles, so a helper edited in another file could run
# under a stale cached kernel (see entropy_model2's note on its constants).
@compiled
def _kernel(decoding, values, order, refs, nrefs, buf, coder, spatial, near):
    """Encode ``values`` (C, h, w) into ``buf``, or decode ``buf`` into ``values``; returns a status.

    ``spatial`` and ``near`` are the predictor's neighbour offsets in the flat padded planes.
    Encoding writes past ``buf``'s end only by counting: ``coder[3]`` is the size it needed.
    """
    status = _code_header(decoding, coder, buf, order, refs, nrefs)
    if status != OK:
        return status
    channels, height, width = values.shape
    stride = width + 2 * PAD
    # Clipped values and residuals (1/16 symbol) on zero-padded flat planes: no bounds checks.
    planes = np.zeros((channels, (height + 2 * PAD) * stride), dtype=np.int16)
    residuals = np.zeros((channels, (height + 2 * PAD) * stride), dtype=np.int16)
    starts, counters, mixer, apm, escapes = _new_tables(channels)
    weights = np.zeros(NUM_FEATURES, dtype=np.int64)
    features = np.zeros(NUM_FEATURES, dtype=np.int64)
    slots = np.zeros(NUM_TABLES, dtype=np.int64)
    stretched = np.zeros(NUM_INPUTS, dtype=np.int64)
    end = buf.shape[0] + 3  # a valid stream is read exactly to its end plus the coder's 3 pad bytes

    for k in range(channels):
        c = order[k]
        plane = planes[c]
        errors = residuals[c]
        n_refs = nrefs[c]
        first = refs[c, 0] if n_refs > 0 else c
        # The spatial weights carry over from the previous channel; the reference weights restart.
        if k == 0:
            weights[:] = 0
        weights[NUM_SPATIAL:] = 0
        features[:] = 0
        features[NUM_FEATURES - 1] = BIAS_FEATURE
        for i in range(height):
            for j in range(width):
                at = (i + PAD) * stride + j + PAD
                # 1. prediction (1/16 symbol) by the LMS filter
                for m in range(NUM_SPATIAL):
                    features[m] = plane[at + spatial[m]]
                e_ref0 = 0
                e_ref1 = 0
                ref_activity = 0
                if n_refs > 0:
                    ref_plane = planes[first]
                    for m in range(NUM_FIRST_REF):
                        features[NUM_SPATIAL + m] = ref_plane[at + near[m]]
                    ref_errors = residuals[first]
                    e_ref0 = ref_errors[at]
                    ref_activity = 2 * abs(e_ref0) + (abs(ref_errors[at + stride]) + abs(ref_errors[at + 1])) // 2
                    for r in range(1, n_refs):
                        ref_plane = planes[refs[c, r]]
                        base_feature = NUM_SPATIAL + NUM_FIRST_REF + NUM_NEAR_REF * (r - 1)
                        for m in range(NUM_NEAR_REF):
                            features[base_feature + m] = ref_plane[at + near[m]]
                    if n_refs > 1:
                        e_ref1 = residuals[refs[c, 1], at]
                        ref_activity += abs(e_ref1)
                acc = 0
                norm = 64
                for m in range(NUM_FEATURES):
                    acc += weights[m] * features[m]
                    norm += features[m] * features[m]
                prediction = _clamp(acc >> 12, CLIP * 16)
                base = (prediction + 8) >> 4
                fraction = prediction - (base << 4) + 8  # 0..15
                quarter = fraction >> 2

                # 2. contexts
                e_w = errors[at - 1]
                e_n = errors[at - stride]
                e_nw = errors[at - stride - 1]
                e_ne = errors[at - stride + 1]
                activity = 2 * abs(e_w) + 2 * abs(e_n) + abs(e_nw) + abs(e_ne) + ref_activity
                bucket = _activity_bucket(activity)
                slots[0] = bucket * 16 + fraction
                slots[1] = c * NUM_ACTIVITY + bucket
                slots[2] = ((_signed_level(e_w) + 3) * 7 + _signed_level(e_n) + 3) * 4 + quarter
                slots[3] = ((_signed_level(e_ref0) + 3) * 7 + _signed_level(e_ref1) + 3) * 8 + (bucket >> 1)
                slots[4] = ((_clamp(base, 3) + 3) * 4 + quarter) * 8 + (bucket >> 1)
                slots[5] = ((_signed_level(e_nw) + 3) * 7 + _signed_level(e_ne) + 3) * 7 + _signed_level(e_ref0) + 3
                slots[6] = ((_clamp(features[0] - base, 3) + 3) * 7 + _clamp(features[1] - base, 3) + 3) * 4 + quarter
                for t in range(NUM_TABLES):
                    slots[t] = starts[t] + slots[t] * BIT_PLACES
                selector_base = bucket >> MIXER_SHIFT

                # 3. the residual, bit by bit: zero flag, sign, unary magnitude, escape
                residual = 0 if decoding else values[c, i, j] - base
                magnitude = abs(residual)
                sign = 0
                place = 0
                while True:
                    if place == 0:
                        bit = 1 if residual != 0 else 0
                    elif place == 1:
                        bit = 1 if residual > 0 else 0
                    else:
                        bit = 1 if magnitude > place - 1 else 0
                    row = place if place < BIT_PLACES else BIT_PLACES - 1
                    for t in range(NUM_TABLES):
                        stretched[t] = STRETCH[counters[slots[t] + row] >> 20]
                    stretched[NUM_TABLES] = 256
                    selector = row * MIXER_GROUPS + selector_base
                    dot = 0
                    for t in range(NUM_INPUTS):
                        dot += mixer[selector, t] * stretched[t]
                    dot = _clamp(dot >> 16, 2047)
                    p_mix = SQUASH[dot + 2048]
                    position = (dot + 2048) * 32  # the APM interpolates between 33 points
                    low = position >> 12
                    weight = position & 4095
                    p_apm = (apm[selector, low] * (4096 - weight) + apm[selector, low + 1] * weight) >> 16
                    p = min(max((p_mix + 3 * p_apm) >> 2, em2.PROB_MIN), em2.PROB_ONE - em2.PROB_MIN)
                    bit = _code_bit(decoding, coder, buf, bit, p)
                    error = ((bit << 16) - p_mix) * MIXER_RATE
                    for t in range(NUM_INPUTS):
                        mixer[selector, t] = _clamp(mixer[selector, t] + ((stretched[t] * error) >> 24), MIXER_LIMIT)
                    for t in range(NUM_TABLES):
                        _update_counter(counters, slots[t] + row, bit)
                    nearer = low if weight < 2048 else low + 1
                    apm[selector, nearer] += ((bit << 20) - apm[selector, nearer]) >> APM_RATE
                    if place == 0:
                        if bit == 0:
                            break
                    elif place == 1:
                        sign = bit
                    elif bit == 0:
                        magnitude = place - 1
                        break
                    place += 1
                    if place == UNARY_STEPS + 2:  # |e| > UNARY_STEPS: the escape
                        excess = _code_escape(decoding, coder, buf, escapes, magnitude - UNARY_STEPS - 1)
                        if excess < 0:
                            return ESCAPE_TOO_LONG
                        magnitude = UNARY_STEPS + 1 + excess
                        break
                if decoding:
                    residual = 0 if place == 0 else (magnitude if sign else -magnitude)
                    value = base + residual
                    if abs(value) > MAX_SYMBOL:
                        return VALUE_TOO_LARGE
                    values[c, i, j] = value
                    if coder[3] > end:
                        return DATA_EXHAUSTED
                else:
                    value = values[c, i, j]

                # 4. learn: the LMS step, normalised by the features' energy. An error far beyond the
                # local activity is an outlier: the predictor sees it clipped, so it learns nothing
                # wild from it and its neighbours are not predicted from it.
                target = _clamp(value * 16 - prediction, (activity >> 2) + OUTLIER_MARGIN)
                plane[at] = _clamp((prediction + target + 8) >> 4, CLIP)
                errors[at] = _clamp(target, 32767)
                gain = (target << (28 - MU_SHIFT)) // norm
                for m in range(NUM_FEATURES):
                    weights[m] = _clamp(weights[m] + ((gain * features[m]) >> 12), WEIGHT_LIMIT)
    if _code_uniform(decoding, coder, buf, END_MARKER, 16) != END_MARKER:
        return BAD_END_MARKER
    if decoding and coder[3] != end:
        return DATA_EXHAUSTED if coder[3] > end else DATA_LEFT_OVER
    return OK


@compiled
def _code_escape(decoding, coder, buf, counters, excess):
    """Elias gamma of ``excess + 1``: its bit length in adaptive unary, then flat mantissa bits.

    Returns the decoded excess, or a negative number when the length code runs past its limit.
    """
    value = excess + 1
    length = 0
    if not decoding:
        while (value >> (length + 1)) > 0:
            length += 1
    n = 0
    while True:
        p = min(max(counters[n] >> 16, em2.PROB_MIN), em2.PROB_ONE - em2.PROB_MIN)
        bit = _code_bit(decoding, coder, buf, 1 if n < length else 0, p)
        _update_counter(counters, n, bit)
        if bit == 0:
            break
        n += 1
        if n > MAX_GAMMA_BITS:
            return -(1 << 50)
    out = 1
    for b in range(n - 1, -1, -1):
        out = (out << 1) | _code_bit(decoding, coder, buf, (value >> b) & 1, HALF)
    return out - 1


# --- Python entry points ----------------------------------------------------------------


def _offsets(width: int) -> tuple[np.ndarray, np.ndarray]:
    return _flat_offsets(em2.SPATIAL_NEIGHBOURS, width), _flat_offsets(em2.REFERENCE_NEIGHBOURS, width)


def encode(values: np.ndarray, order: np.ndarray, refs: np.ndarray, nrefs: np.ndarray) -> bytes:
    """The model-2 byte stream of int64 symbols (C, h, w) under the given channel order and references."""
    values = np.array(values, dtype=np.int64, order="C")  # a writable copy: the kernel is shared with the decoder
    check_choices(values.shape[0], order, refs, nrefs)
    capacity = values.size // 2 + 1024
    while True:
        buf = np.zeros(capacity, dtype=np.uint8)
        coder = np.array([0, MASK32, 0, 0], dtype=np.int64)
        status = _kernel(
            False,
            values,
            order.astype(np.int64),
            refs.astype(np.int64),
            nrefs.astype(np.int64),
            buf,
            coder,
            *_offsets(values.shape[2]),
        )
        if status != OK:
            raise ValueError(f"model 2 cannot code these symbols ({MESSAGES[status]})")
        used = int(coder[3])
        if used + 1 <= capacity:
            buf[used] = coder[0] >> 24  # flush: any value from here on lies inside [low, high]
            return bytes(buf[: used + 1])
        capacity = used + 1024


def check_choices(channels: int, order: np.ndarray, refs: np.ndarray, nrefs: np.ndarray) -> None:
    """Refuse (ValueError) a channel order or references the decoder would reject."""
    if (
        sorted(order.tolist()) != list(range(channels))
        or nrefs.shape != (channels,)
        or refs.shape != (channels, MAX_REFS)
    ):
        raise ValueError("order must be a permutation of the channels, with refs (C, MAX_REFS) and nrefs (C,)")
    position = {int(c): k for k, c in enumerate(order)}
    for c in range(channels):
        if not 0 <= nrefs[c] <= min(MAX_REFS, position[c]) or any(
            position.get(int(r), channels) >= position[c] for r in refs[c, : nrefs[c]]
        ):
            raise ValueError(f"channel {c}: references must be distinct channels coded before it, at most {MAX_REFS}")
        if len(set(refs[c, : nrefs[c]].tolist())) != nrefs[c]:
            raise ValueError(f"channel {c}: references must be distinct")


def decode(data: bytes, shape: tuple[int, int, int]) -> tuple[int, np.ndarray]:
    """(status, symbols (C, h, w) int64) of a model-2 byte stream."""
    channels = shape[0]
    buf = np.frombuffer(data, dtype=np.uint8).copy()  # writable: the kernel is shared with the encoder
    window = 0
    for k in range(4):
        window = (window << 8) | (int(buf[k]) if k < buf.shape[0] else 255)
    coder = np.array([0, MASK32, window, 4], dtype=np.int64)
    values = np.zeros(shape, dtype=np.int64)
    order = np.zeros(channels, dtype=np.int64)
    refs = np.full((channels, MAX_REFS), -1, dtype=np.int64)
    nrefs = np.zeros(channels, dtype=np.int64)
    status = _kernel(True, values, order, refs, nrefs, buf, coder, *_offsets(shape[2]))
    return status, values


def encode_symbols(q: np.ndarray) -> tuple[bytes, float]:
    """Model-2 payload of integer symbols (C, h, w), and its length in bits (the coder's own size).

    Raises ValueError for values beyond +-MAX_SYMBOL.
    """
    q = np.ascontiguousarray(q, dtype=np.int64)
    if q.size and np.abs(q).max() > MAX_SYMBOL:
        raise ValueError("symbols beyond +-2**40 cannot be coded")
    order, refs, nrefs = em2.choose_order_and_references(q)
    payload = encode(q, order, refs, nrefs)
    if q.size <= SMALL_LATENT and nrefs.any():  # cheap to try: is the reference header worth its bits?
        plain = encode(q, np.arange(q.shape[0]), np.full_like(refs, -1), np.zeros_like(nrefs))
        payload = min(payload, plain, key=len)
    return payload, 8.0 * len(payload)


def decode_symbols(payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of ``encode_symbols``; any defect of the payload raises ``bitstream.PayloadError``.

    Memory: the output plus 4 bytes a value (two int16 planes); time linear in the number of
    values (at most ``UNARY_STEPS`` + 2 modelled and 2 * 43 escape decisions per value), and a
    stream that runs out of bytes stops at the next value.
    """
    from sdcodec.bitstream.errors import PayloadError

    if not payload:
        raise PayloadError("corrupt payload: the model-2 stream is empty")
    status, values = decode(payload, shape)
    if status != OK:
        raise PayloadError(f"corrupt payload: {MESSAGES[status]}")
    return values
