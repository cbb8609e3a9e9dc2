"""Latent <-> .sdz bytes: uniform quantization, the context model, constriction's ANS coder.

>>> import numpy as np
>>> latent = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
>>> data = encode_latent(latent, step=0.5)
>>> restored = decode_latent(data)
>>> bool(np.abs(restored - latent).max() <= 0.5)
True
"""

from __future__ import annotations

from dataclasses import dataclass
import constriction
import numpy as np

import bitstream
from bitstream.errors import FieldRangeError, PayloadError, TruncatedError
from bitstream.varint import Reader, write_svarint, write_uvarint

from . import cm_coder
from . import entropy_model as em
from . import symbol_decoder

ENTROPY_MODEL_ID = 1  # the model new files use
# 1: the static raster context model of codec/entropy_model.py (decoder: symbol_decoder);
# 2: the adaptive context-mixing model of codec/entropy_model2.py (coder: cm_coder).
ENTROPY_MODELS = (1, 2)

_FAMILY = constriction.stream.model.Categorical(perfect=False)


# --- quantization -----------------------------------------------------------------------


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


# --- fitting the model (encoder only; float is fine here) -------------------------------


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
class _ChannelPlan:
    params: em.ChannelParams
    quarters: np.ndarray
    bucket: np.ndarray


def fit_model(q: np.ndarray) -> tuple[em.ModelParams, list[_ChannelPlan]]:
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
        plans.append(_ChannelPlan(params, quarters, bucket))
    bucket_scales, offsets = _fit_scales(costs)
    for plan, offset in zip(plans, offsets):
        plan.params.scale_offset = offset
    return em.ModelParams([p.params for p in plans], bucket_scales), plans


# --- side information -------------------------------------------------------------------


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


# --- entropy coding of symbols ----------------------------------------------------------


def _order(height: int, width: int) -> np.ndarray:
    """Flat (unpadded) indices of all positions in coding order."""
    rows, cols = em.decode_order(height, width)
    return rows * width + cols


class _RowMakers:
    """One RowMaker per distinct alphabet size, shared by the channels that have it."""

    def __init__(self, model: em.ModelParams):
        self.table = em.probability_tables(em.table_size_for(model.channels))
        self.cache: dict[int, em.RowMaker] = {}

    def __call__(self, params: em.ChannelParams) -> em.RowMaker:
        size = params.high - params.low + 3
        if size not in self.cache:
            self.cache[size] = em.RowMaker(size, self.table)
        return self.cache[size]


def encode_symbols(q: np.ndarray, entropy_model: int | None = None) -> tuple[bytes, float]:
    """Payload bytes for integer symbols (C, h, w), and the model's ideal code length in bits.

    ``entropy_model`` is a model id (default ``ENTROPY_MODEL_ID``); model 2's "ideal" length is its payload's.
    """
    entropy_model = ENTROPY_MODEL_ID if entropy_model is None else entropy_model
    if entropy_model == 2:
        return cm_coder.encode_symbols(q)
    if entropy_model != 1:
        raise ValueError(f"unknown entropy model {entropy_model} (known: {ENTROPY_MODELS})")
    model, plans = fit_model(q)
    makers = _RowMakers(model)
    order = _order(q.shape[1], q.shape[2])
    escapes = bytearray()
    coder = constriction.stream.stack.AnsCoder()
    ideal_bits = 0.0
    per_channel = []
    for c, plan in enumerate(plans):
        p = plan.params
        values = q[c].ravel()[order]
        scales = model.scales_of_buckets(c)[plan.bucket[order]]
        symbols = np.clip(values, p.low - 1, p.high + 1) - (p.low - 1)
        rows = makers(p).rows(p, plan.quarters[order], scales)
        chosen = rows[np.arange(len(symbols)), symbols]
        ideal_bits += float(-np.log2(chosen / rows.sum(axis=1)).sum())
        for value in values[(values < p.low) | (values > p.high)]:
            write_uvarint(int(p.low - 1 - value if value < p.low else value - p.high - 1), escapes)
        per_channel.append((symbols.astype(np.int32), rows))
    for symbols, rows in reversed(per_channel):
        coder.encode_reverse(symbols, _FAMILY, rows)
    side = write_side_info(model)
    out = bytearray()
    write_uvarint(len(side), out)
    out += side
    write_uvarint(len(escapes), out)
    out += escapes
    ideal_bits += 8 * len(out)
    out += coder.get_compressed().astype("<u4").tobytes()
    return bytes(out), ideal_bits


def _sub_reader(reader: Reader, what: str) -> Reader:
    """A reader over the next length-prefixed section; the outer reader skips past it."""
    length = reader.uvarint(f"{what} length")
    section = Reader(reader.data, reader.pos, reader.pos + length)
    reader.take(length, what)
    return section


def decode_symbols(payload: bytes, shape: tuple[int, int, int], entropy_model: int | None = None) -> np.ndarray:
    """Inverse of ``encode_symbols``; any inconsistency raises ``bitstream.PayloadError``.

    Memory is the output plus 4 bytes a value; time is linear in the number of values.
    """
    entropy_model = ENTROPY_MODEL_ID if entropy_model is None else entropy_model
    if entropy_model == 2:
        return cm_coder.decode_symbols(payload, shape)
    if entropy_model != 1:
        raise FieldRangeError(f"unknown entropy model {entropy_model}")
    n_channels = shape[0]
    try:
        reader = Reader(payload)
        side = _sub_reader(reader, "side information")
        model = read_side_info(side, n_channels)
        if side.remaining:
            raise PayloadError("corrupt payload: side information has unread bytes")
        escapes = _sub_reader(reader, "escape stream")
    except (TruncatedError, FieldRangeError) as exc:
        raise PayloadError(f"corrupt payload: {exc}") from None
    words = payload[reader.pos :]
    if len(words) % 4:
        raise PayloadError("payload's coded part is not a whole number of 32-bit words")
    escape_bytes = payload[escapes.pos : escapes.end]
    status, symbols = symbol_decoder.decode(np.frombuffer(words, dtype="<u4"), escape_bytes, model, shape)
    if status != symbol_decoder.OK:
        raise PayloadError(f"corrupt payload: {symbol_decoder.MESSAGES[status]}")
    return symbols


# --- the public latent-level API --------------------------------------------------------


@dataclass
class EncodedLatent:
    """A finished file with the figures the benchmarks report."""

    data: bytes
    step: float
    ideal_bits: float
    payload_bytes: int


def _encode_at(latent: np.ndarray, step_code: int, fields: dict) -> EncodedLatent:
    step = step_code / bitstream.STEP_SCALE
    multipliers = tuple(fields.get("channel_steps") or ())
    steps = channel_steps(step, multipliers, latent.shape[0])
    q = quantize(latent, steps)
    entropy_model = fields.get("entropy_model") or ENTROPY_MODEL_ID
    payload, ideal_bits = encode_symbols(q, entropy_model)
    c, h, w = latent.shape
    sdz = bitstream.SdzFile(
        latent_space=fields.get("latent_space", bitstream.RAW_LATENT_SPACE),
        width=fields.get("width") or 8 * w,
        height=fields.get("height") or 8 * h,
        latent_shape=(c, h, w),
        step_code=step_code,
        recon_offset=best_recon_offset(latent, q, steps),
        channel_steps=multipliers,
        entropy_model=entropy_model,
        payload=payload,
        caption=fields.get("caption", ""),
        restore_steps=fields.get("restore_steps") or 0,
        restore_guidance_tenths=round(10 * fields.get("restore_guidance", 1.0)),
        has_restore_hints=fields.get("restore_steps") is not None,
        alpha=fields.get("alpha"),
    )
    return EncodedLatent(bitstream.write_sdz(sdz), step, ideal_bits, len(payload))


def encode_latent_detailed(latent, *, step: float | None = None, max_bytes: int | None = None, **fields) -> EncodedLatent:
    """``encode_latent`` that also returns the step used and the model's ideal code length."""
    array = as_latent_array(latent)
    if (step is None) == (max_bytes is None):
        raise ValueError("give exactly one of step= or max_bytes=")
    if step is not None:
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"quantization step must be a positive number, got {step}")
        return _encode_at(array, bitstream.step_to_code(step), fields)
    return _fit_size(array, int(max_bytes), fields)


class _SizeEstimate:
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
        counts = np.bincount((q + self.CLIP + np.arange(c)[:, None] * (2 * self.CLIP + 1)).ravel(),
                             minlength=c * (2 * self.CLIP + 1)).reshape(c, -1)
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


def _fit_size(latent: np.ndarray, max_bytes: int, fields: dict) -> EncodedLatent:
    """Smallest step (so smallest error) whose file fits in max_bytes, to 0.4% of the step.

    File size falls as the step grows. The invariant is that ``best`` is the real file at ``high``
    and fits, and ``low`` was tried and did not (or is 1), so a rare non-monotone step can cost a
    little quality but never exceed the ceiling. Each trial is aimed by a calibrated entropy
    estimate (``_SizeEstimate``), nudged inside the bracket so that it always shrinks; after
    ``AIMED_TRIALS`` the search falls back to bisection, which bounds it whatever the estimate does.
    """
    multipliers = tuple(fields.get("channel_steps") or ())
    smallest_multiplier = min(multipliers or (16,)) / bitstream.container.CHANNEL_STEP_ONE
    spread = max(float(np.abs(latent).max()), 1e-3) / smallest_multiplier
    coarse = bitstream.step_to_code(4 * spread + 1)  # every symbol is 0 from here on
    smallest = _encode_at(latent, coarse, fields)
    if len(smallest.data) > max_bytes:
        raise ValueError(f"cannot fit in {max_bytes} bytes: the smallest file for this latent is {len(smallest.data)} bytes")
    best, low, high = smallest, 1, coarse  # invariant: high fits
    estimate = _SizeEstimate(latent, multipliers)
    trials = 0
    while high - low > max(1, high // 256):  # 0.4% resolution on the step is plenty
        margin = max(1, high // 512)
        aim = estimate.step_code_for(max_bytes, low, high) if trials < AIMED_TRIALS else (low + high) // 2
        aim = min(max(aim, low + margin), high - margin)  # strictly inside, so the bracket shrinks
        trial = _encode_at(latent, aim, fields)
        trials += 1
        estimate.calibrate(aim, len(trial.data))
        if len(trial.data) <= max_bytes:
            high, best = aim, trial
        else:
            low = aim
    return best


def encode_latent(latent, *, step: float | None = None, max_bytes: int | None = None, **fields) -> bytes:
    """Quantize and entropy-code a (C, h, w) latent into a complete .sdz file.

    ``step`` is the quantization step in the latent's own units (stored to 1/65536);
    ``max_bytes`` instead searches the step for the smallest-error file that fits.
    Extra keyword ``fields`` fill the container header (latent_space, width, height,
    caption, restore_steps, restore_guidance, alpha, channel_steps: per-channel step
    multipliers in 1/16, so channel c is quantized with ``step * channel_steps[c] / 16``),
    and ``entropy_model`` (1 or 2; default ``ENTROPY_MODEL_ID``) picks the entropy model.
    """
    return encode_latent_detailed(latent, step=step, max_bytes=max_bytes, **fields).data


def read_symbols(data: bytes, *, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, bitstream.SdzFile]:
    """Parse, validate and entropy-decode a file: integer symbols (C, h, w) and the header.

    A file declaring more than ``max_pixels`` image pixels (or a latent larger than a 32-channel
    one of that image) is refused with ``bitstream.TooLargeError`` before anything is allocated.
    """
    sdz = bitstream.read_sdz(data, max_pixels=max_pixels)
    if sdz.entropy_model not in ENTROPY_MODELS:
        raise bitstream.FieldRangeError(f"unknown entropy model {sdz.entropy_model}")
    return decode_symbols(sdz.payload, sdz.latent_shape, sdz.entropy_model), sdz


def decode_latent(data: bytes, *, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The dequantized latent (C, h, w) float32 of a .sdz file; raises ``BitstreamError``.

    ``max_pixels`` is the decoding ceiling (``bitstream.DEFAULT_MAX_PIXELS``, 8192 x 8192).
    """
    q, sdz = read_symbols(data, max_pixels=max_pixels)
    return dequantize(q, header_steps(sdz), sdz.recon_offset)


def header_steps(sdz: bitstream.SdzFile) -> np.ndarray:
    """The per-channel quantization steps (C, 1, 1) a file's symbols were made with."""
    return channel_steps(sdz.quant_step, sdz.channel_steps, sdz.latent_shape[0])
