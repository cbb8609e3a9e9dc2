"""Entropy model 2's integer definitions: the tables and constants its coder derives probabilities from.

Model 2 is adaptive: nothing is fitted per file except the channel order. Every probability is
computed while coding, from already-coded symbols, by integer arithmetic on the tables below,
so encoder and decoder (both in ``cm_coder``) reach the same numbers on every machine.

* ``SQUASH`` and ``STRETCH`` map between probabilities (16-bit) and the logistic domain
  (units of 1/256 nat) where the mixer adds its inputs. They are built here from Python's
  ``decimal`` module, whose ``exp`` and ``ln`` are correctly rounded by specification, so the
  integer tables are the same everywhere; ``TABLE_DIGEST`` in the tests pins them.
* ``RECIPROCALS`` are the adaptation rates of the binary counters (1 / (n + 1.5) in 1/65536).

The parameters at the end of the file define the bitstream as much as the tables do: changing any
of them makes a new model (a new id). ``cm_coder``'s kernels are compiled with them as constants
and cached by numba, which watches only cm_coder.py: after an edit here, clear codec/__pycache__.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np

PROB_BITS = 16  # probabilities of a 1 bit, in 1/65536, kept in [PROB_MIN, 65536 - PROB_MIN]
PROB_ONE = 1 << PROB_BITS
PROB_MIN = 32
STRETCH_LIMIT = 2047  # logistic domain: [-2047, 2047] in units of 1/256 (about +-8 nats)
STRETCH_INDEX_BITS = 12  # STRETCH is indexed by the top 12 bits of a 16-bit probability


def _squash_table() -> np.ndarray:
    """``SQUASH[x + 2048]`` = round(65536 / (1 + exp(-x / 256))), clamped to [PROB_MIN, 65536 - PROB_MIN]."""
    out = np.empty(2 * STRETCH_LIMIT + 3, dtype=np.int64)
    with localcontext() as ctx:
        ctx.prec = 20
        for k in range(out.shape[0]):
            x = Decimal(k - STRETCH_LIMIT - 1) / 256
            p = Decimal(PROB_ONE) / (1 + (-x).exp())
            out[k] = min(max(int(p.to_integral_value()), PROB_MIN), PROB_ONE - PROB_MIN)
    return out


def _stretch_table() -> np.ndarray:
    """``STRETCH[p >> 4]`` = round(256 ln(p / (1 - p))) at the bucket's centre, clamped to +-2047."""
    size = 1 << STRETCH_INDEX_BITS
    out = np.empty(size, dtype=np.int64)
    with localcontext() as ctx:
        ctx.prec = 20
        for k in range(size):
            p = (Decimal(k) + Decimal("0.5")) / size
            x = 256 * (p / (1 - p)).ln()
            out[k] = min(max(int(x.to_integral_value()), -STRETCH_LIMIT), STRETCH_LIMIT)
    return out


SQUASH = _squash_table()
STRETCH = _stretch_table()
RECIPROCALS = np.array([(2 * PROB_ONE) // (2 * n + 3) for n in range(1024)], dtype=np.int64)

# --- the model's fixed parameters (changing any of them is a new model id) --------------

MAX_SYMBOL = 1 << 40  # |value| above this is refused, as in model 1
MAX_REFS = 6  # reference channels per channel
REF_COUNT_BITS = 3  # the header field holding a channel's number of references
# The predictor's inputs, as (row, column) offsets from the coded position: causal neighbours in
# the channel itself, and positions around it in a reference channel (complete, so any side).
# The best reference (the first) gives all of REFERENCE_NEIGHBOURS, the others the first five.
SPATIAL_NEIGHBOURS = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0), (-2, 1), (-1, -2), (-1, 2), (-2, -1))
REFERENCE_NEIGHBOURS = (
    (0, 0),
    (0, -1),
    (-1, 0),
    (0, 1),
    (1, 0),
    (-1, -1),
    (-1, 1),
    (1, -1),
    (1, 1),
    (0, -2),
    (0, 2),
    (-2, 0),
    (2, 0),
)
NEAR_REFERENCE = 5  # positions read from the second and later references
PAD = 2  # planes are zero-padded by 2 on every side, enough for every offset above
FEATURE_CLIP = 32767  # values enter the predictor clipped to +-FEATURE_CLIP (planes are int16)
OUTLIER_MARGIN = 1024  # errors beyond activity / 4 + 64 symbols (1/16 units) are clipped for learning
LMS_MU_SHIFT = 7  # LMS step 2**(4 - LMS_MU_SHIFT) of the normalised gradient
NUM_ACTIVITY = 16  # activity buckets
BIT_PLACES = 16  # contexts per binarisation place: zero flag, sign, 14 unary steps (the last shared)
UNARY_STEPS = 20  # unary magnitude steps before the Elias-gamma escape
COUNTER_LIMIT = 30  # counters adapt at 1 / (n + 1.5) until n reaches this
MIXER_RATE = 48  # mixer step, in 1/2**24 of (stretch x error in 1/65536)
MIXER_GROUP_SHIFT = 2  # the mixer's weight set: bit place and activity bucket >> 2
MIXER_INIT = 1 << 13  # each input starts at weight 1/8
APM_RATE = 6  # the APM moves 1/64 of the way to each bit


# --- the encoder's choices (float is fine here: the decoder reads them from the payload) -


def choose_order_and_references(
    q: np.ndarray, min_correlation: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel order and each channel's reference channels for symbols q (C, h, w).

    The order starts with the channel most correlated with all others and then always takes
    the channel best correlated with one already chosen, so every channel after the first has
    a good reference; a channel's references are the (up to MAX_REFS) earlier channels it
    correlates with most, those with |correlation| below ``min_correlation`` left out (by
    default 0.05, or three times the noise level 1 / sqrt(h w) of a correlation on small planes).
    Returns (order (C,), refs (C, MAX_REFS) with -1 for unused, nrefs (C,)), all int64.
    """
    channels = q.shape[0]
    if min_correlation is None:
        min_correlation = max(0.05, 3.0 / np.sqrt(q[0].size))
    corr = channel_correlations(q)
    order = [int(np.argmax((corr**2).sum(axis=1)))]
    left = sorted(set(range(channels)) - set(order))
    while left:
        best = max(left, key=lambda c: corr[c, order].max())
        order.append(best)
        left.remove(best)
    refs = np.full((channels, MAX_REFS), -1, dtype=np.int64)
    nrefs = np.zeros(channels, dtype=np.int64)
    for k in range(1, channels):
        c = order[k]
        earlier = np.array(order[:k])
        ranked = earlier[np.argsort(-corr[c, earlier], kind="stable")][:MAX_REFS]
        chosen = [int(r) for r in ranked if corr[c, r] >= min_correlation]
        refs[c, : len(chosen)] = chosen
        nrefs[c] = len(chosen)
    return np.array(order, dtype=np.int64), refs, nrefs


def channel_correlations(q: np.ndarray) -> np.ndarray:
    """|Pearson correlation| (C, C) between the channels of q (C, h, w); 0 on the diagonal and for a constant channel."""
    channels = q.shape[0]
    flat = q.reshape(channels, -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.sqrt((flat**2).sum(axis=1))
    norms[norms == 0] = np.inf
    corr = np.abs(flat @ flat.T) / np.outer(norms, norms)
    np.fill_diagonal(corr, 0.0)
    return corr
