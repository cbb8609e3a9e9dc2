"""The context model that drives the entropy coder, built so decoding is bit-exact anywhere.

Each integer symbol q[c, i, j] is coded in raster order, channel by channel, with a
two-sided geometric ("discrete Laplace") distribution whose

* centre is a linear prediction from already-decoded neighbours: west, north, north-west,
  north-east, and the same position in a reference channel decoded earlier;
* scale is picked from the local activity: the prediction errors of those neighbours.

Every number the decoder derives its probabilities from is an integer: the prediction
weights, the per-channel ranges and the scale choices are integers sent in the payload's
side information, predictions and activities are integer arithmetic on decoded symbols,
and the probability tables are built by integer recurrences from integer decay rates that
are themselves computed with Python's correctly rounded ``decimal`` module. Float
arithmetic only appears in the encoder's *choices* (fitting weights, picking scales),
which the decoder never repeats.

Symbols are coded in wavefronts ``t = 2 i + j`` (every causal neighbour of a position lies
on an earlier front); ``symbol_decoder`` decodes them in one compiled loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal

import numpy as np

# --- integer probability tables ---------------------------------------------------------

NUM_SCALES = 64
RATE_BITS = 20  # decay rates are integers in units of 2**-20
TABLE_TOP = 1 << 24  # table value at distance 0


def _decay_rates() -> np.ndarray:
    """Per-quarter-symbol decay of a Laplace with scale 0.04 * 2**(s/4) symbols, as integers.

    ``decimal`` is correctly rounded by specification, so every machine gets the same ints.
    """
    ctx = Context(prec=40)  # a local context: importing the codec leaves the caller's decimal settings alone
    rates = []
    for s in range(NUM_SCALES):
        scale = ctx.multiply(Decimal("0.04"), ctx.power(Decimal(2), ctx.divide(Decimal(s), 4)))
        rate = ctx.exp(ctx.divide(Decimal(-1), ctx.multiply(4, scale)))
        rates.append(int(ctx.multiply(rate, 1 << RATE_BITS).to_integral_value(context=ctx)))
    return np.array(rates, dtype=np.int64)


DECAY_RATES = _decay_rates()


def integer_probability_tables(max_distance: int) -> np.ndarray:
    """``table[s, d]`` (int64): unnormalised probability of a value d quarter-symbols away.

    Built by the integer recurrence ``t[d+1] = max(1, t[d] * rate >> RATE_BITS)``.
    """
    table = np.empty((NUM_SCALES, max_distance + 1), dtype=np.int64)
    column = np.full(NUM_SCALES, TABLE_TOP, dtype=np.int64)
    for d in range(max_distance + 1):
        table[:, d] = column
        column = np.maximum(1, (column * DECAY_RATES) >> RATE_BITS)
    return table


def probability_tables(max_distance: int) -> np.ndarray:
    """``integer_probability_tables`` as float64 (exact: entries are < 2**25), the form constriction takes."""
    return integer_probability_tables(max_distance).astype(np.float64)


# --- activity buckets -------------------------------------------------------------------

# Activity is 2*(eW + eN) + eNW + eNE + 2*eR in quarter-symbol units; buckets are about
# half an octave wide.
ACTIVITY_THRESHOLDS = np.array(
    [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 90, 128, 181, 256, 362, 512, 724, 1024, 1448, 2048], dtype=np.int64
)
NUM_BUCKETS = len(ACTIVITY_THRESHOLDS) + 1
ERROR_CAP = 1 << 20  # prediction errors are capped before entering the activity

WEIGHT_ONE = 64  # prediction weights are integers in units of 1/64
WEIGHT_LIMIT = 1 << 12
FEATURES = ("west", "north", "north_west", "north_east", "reference")
MAX_CORE_WIDTH = 512  # at most this many values between the escape symbols
MAX_SYMBOL = 1 << 40  # |latent / step| above this is refused


@dataclass
class ChannelParams:
    """Side information of one channel: its value range, predictor and scale offset."""

    low: int  # smallest value coded directly; below it, the low escape symbol
    high: int  # largest value coded directly
    reference: int  # earlier channel used as a feature, or -1
    weights: tuple[int, ...]  # one per FEATURES entry, units of 1/WEIGHT_ONE
    bias: int  # units of 1/WEIGHT_ONE symbols
    scale_offset: int


@dataclass
class ModelParams:
    channels: list[ChannelParams]
    bucket_scales: list[int]  # scale index per activity bucket, shared by all channels

    def scales_of_buckets(self, channel: int) -> np.ndarray:
        """Scale index per activity bucket for one channel (index it with the buckets)."""
        base = np.asarray(self.bucket_scales, dtype=np.int64)
        return np.clip(base + self.channels[channel].scale_offset, 0, NUM_SCALES - 1)


# --- shared integer arithmetic (encoder and decoder call exactly these) -----------------

ACTIVITY_WEIGHTS = np.array([2, 2, 1, 1], dtype=np.int64)
LOOKUP_MAX_ALPHABET = 64  # above this, rows are gathered from the table directly


def predict_quarters(params: ChannelParams, near: np.ndarray, reference) -> np.ndarray:
    """Predicted value in quarter-symbol units from neighbour values ``near`` (4, n).

    Clamped to the channel's coded range [low - 1, high + 1].
    """
    acc = np.asarray(params.weights[:4], dtype=np.int64) @ near + params.weights[4] * reference + params.bias
    quarters = (acc * 4 + WEIGHT_ONE // 2) // WEIGHT_ONE
    return np.minimum(np.maximum(quarters, 4 * (params.low - 1)), 4 * (params.high + 1))


def activity_bucket(near_errors: np.ndarray, reference_errors) -> np.ndarray:
    """Bucket of 2*(eW + eN) + eNW + eNE + 2*eR, the neighbours' prediction errors."""
    return np.searchsorted(ACTIVITY_THRESHOLDS, ACTIVITY_WEIGHTS @ near_errors + 2 * reference_errors, side="right")


def prediction_error(values: np.ndarray, quarters: np.ndarray) -> np.ndarray:
    return np.minimum(np.abs(4 * values - quarters), ERROR_CAP)


class RowMaker:
    """Builds one unnormalised integer row per symbol over an alphabet of ``size`` values.

    For a channel with alphabet [low-1, high+1], entries are ``table[scale, |4 * value - quarters|]``;
    they depend only on the scale and on the offset ``quarters - 4 * (low - 1)``, so one RowMaker
    serves every channel of the same alphabet size, and for small alphabets all possible rows are
    precomputed once. Entries are float64 holding exact integers, the form constriction takes.
    """

    def __init__(self, size: int, table: np.ndarray):
        self.size = size
        self.table = table
        offsets = np.arange(4 * (size - 1) + 1, dtype=np.int64)
        self.distance_of = np.abs(4 * np.arange(size, dtype=np.int64)[None, :] - offsets[:, None])
        self.lookup = table[:, self.distance_of] if size <= LOOKUP_MAX_ALPHABET else None

    def rows(self, params: ChannelParams, quarters: np.ndarray, scales: np.ndarray) -> np.ndarray:
        offsets = quarters - 4 * (params.low - 1)
        if self.lookup is not None:
            return self.lookup[scales, offsets]
        return self.table[scales[:, None], self.distance_of[offsets]]


def table_size_for(params: list[ChannelParams]) -> int:
    """Largest quarter-symbol distance any row of these channels can ask for."""
    return max(4 * (p.high - p.low + 2) for p in params)


# --- the neighbourhood on padded planes -------------------------------------------------


def pad(plane: np.ndarray) -> np.ndarray:
    """Zero border: one row above, one column on each side (neighbours outside are 0)."""
    return np.pad(plane, ((1, 0), (1, 1)))


def padded_plane_neighbours(padded: np.ndarray) -> np.ndarray:
    """(4, h*w): west, north, north-west, north-east of every position of a padded plane."""
    near = (padded[1:, :-2], padded[:-1, 1:-1], padded[:-1, :-2], padded[:-1, 2:])
    return np.stack([n.ravel() for n in near])


def decode_order(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of all positions in coding order: wavefronts ``t = 2 i + j``, rows ascending.

    Every causal neighbour of a position (west, north-west, north, north-east) lies on an
    earlier front; ``symbol_decoder`` walks the same order one position at a time.
    """
    rows, cols = np.divmod(np.arange(height * width, dtype=np.int64), width)
    order = np.lexsort((rows, 2 * rows + cols))
    return rows[order], cols[order]
