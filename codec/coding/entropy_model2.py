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
    q: np.ndarray, min_gain: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel order and each channel's reference channels for symbols q (C, h, w).

    What the predictor can use of earlier channels is, to first order, what a least-squares fit on
    them explains (R², from the channels' covariance). The order starts with the channel most
    correlated with all others and then always takes the channel that the channels already chosen
    explain best; a channel's references are chosen one by one, each time the earlier channel that
    adds most to the R² of those already taken (forward selection), up to MAX_REFS and while the gain
    is at least ``min_gain``: by default max(0.05, 3 / sqrt(h w))², the square of the correlation the
    first encoder required (a channel adding less mostly feeds the predictor noise: with no threshold,
    level 1's sparse symbols at quality 10 coded 0.7% larger). Against ranking references by
    pairwise correlation, level 1's files on Kodak with TAEF2 are 0.1-0.4% smaller.
    Returns (order (C,), refs (C, MAX_REFS) with -1 for unused, nrefs (C,)), all int64.
    """
    channels = q.shape[0]
    if min_gain is None:
        min_gain = max(0.05, 3.0 / np.sqrt(max(q[0].size, 1))) ** 2
    cov = _channel_covariance(q)
    order = [int(np.argmax((_correlations(cov) ** 2).sum(axis=1)))]
    left = [c for c in range(channels) if c != order[0]]
    while left:
        order.append(left.pop(int(np.argmax(_explained(cov, order, left)))))
    order = np.array(order, dtype=np.int64)
    return (order, *choose_references(q, order, min_gain, cov))


def choose_references(
    q: np.ndarray, order: np.ndarray, min_gain: float, cov: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's references under a given channel order, by forward selection on R² (see above).

    Returns (refs (C, MAX_REFS) with -1 for unused, nrefs (C,)), int64; ``cov`` is q's channel
    covariance when the caller has it.
    """
    channels = q.shape[0]
    cov = _channel_covariance(q) if cov is None else cov
    order = [int(c) for c in order]
    refs = np.full((channels, MAX_REFS), -1, dtype=np.int64)
    nrefs = np.zeros(channels, dtype=np.int64)
    for k in range(1, channels):
        c, chosen = order[k], []
        while len(chosen) < MAX_REFS:
            candidates = [r for r in order[:k] if r not in chosen]
            if not candidates:
                break
            gains = _added_explained(cov, c, chosen, candidates)
            if gains.max() < min_gain:
                break
            chosen.append(candidates[int(np.argmax(gains))])
        refs[c, : len(chosen)] = chosen
        nrefs[c] = len(chosen)
    return refs, nrefs


def _channel_covariance(q: np.ndarray) -> np.ndarray:
    flat = q.reshape(q.shape[0], -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    return flat @ flat.T / max(flat.shape[1], 1)


def _correlations(cov: np.ndarray) -> np.ndarray:
    """|Pearson correlation| from a covariance; 0 on the diagonal and for a constant channel."""
    scale = np.sqrt(np.diag(cov))
    scale[scale == 0] = np.inf
    corr = np.abs(cov) / np.outer(scale, scale)
    np.fill_diagonal(corr, 0.0)
    return corr


def _solve(cov: np.ndarray, sources: list[int], right: np.ndarray) -> np.ndarray:
    """cov[S, S]^-1 right, with a ridge that keeps constant channels solvable."""
    ridge = 1e-9 * (1.0 + float(np.max(np.diag(cov))))
    return np.linalg.solve(cov[np.ix_(sources, sources)] + ridge * np.eye(len(sources)), right)


def _explained(cov: np.ndarray, sources: list[int], targets: list[int]) -> np.ndarray:
    """R² of each target channel under a least-squares fit on the source channels (0 for a constant one)."""
    cross = cov[np.ix_(sources, targets)]
    variance = np.diag(cov)[targets]
    return np.where(variance > 0, (cross * _solve(cov, sources, cross)).sum(axis=0) / np.maximum(variance, 1e-300), 0.0)


def _added_explained(cov: np.ndarray, target: int, sources: list[int], candidates: list[int]) -> np.ndarray:
    """R² each candidate adds to ``sources`` for ``target``: its squared partial covariance over both residual variances."""
    if cov[target, target] <= 0:
        return np.zeros(len(candidates))
    partial_cov = cov[candidates, target].astype(np.float64)
    partial_var = np.diag(cov)[candidates].astype(np.float64)
    if sources:
        weights = _solve(cov, sources, cov[np.ix_(sources, candidates + [target])])
        projected = cov[np.ix_(candidates, sources)] @ weights
        partial_cov = partial_cov - projected[:, -1]
        partial_var = partial_var - np.diag(projected[:, :-1])
    return np.where(partial_var > 0, partial_cov**2 / np.maximum(partial_var, 1e-300) / cov[target, target], 0.0)


def channel_correlations(q: np.ndarray) -> np.ndarray:
    """|Pearson correlation| (C, C) between the channels of q (C, h, w); 0 on the diagonal and for a constant channel."""
    return _correlations(_channel_covariance(q))
