"""Entropy model 2 (codec/entropy_model2.py, codec/cm_coder.py): exact, deterministic, hostile-input safe."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdcodec import bitstream
from sdcodec.bitstream.errors import PayloadError
from sdcodec.codec.coding import cm_coder, latent_coder
from sdcodec.codec.coding import entropy_model2 as em2

REPO = Path(__file__).resolve().parents[1]

# SHA-256 of SQUASH, STRETCH and RECIPROCALS as little-endian int64: the integer tables every
# model-2 probability comes from. A change here changes the bitstream (that is a new model id).
TABLE_DIGEST = "59e4f01876c490f314e469e5bd9cb7058232367555209f9c4143d9c6483fc3a9"


def _round_trip(q: np.ndarray) -> bytes:
    payload, bits = cm_coder.encode_symbols(q)
    assert bits == 8 * len(payload)
    decoded = cm_coder.decode_symbols(payload, q.shape)
    assert decoded.dtype == np.int64
    np.testing.assert_array_equal(decoded, q)
    return payload


def _correlated_latent(rng, shape, scale=3.0):
    """Spatially smooth channels that share a common component, like an autoencoder's latent."""
    c, h, w = shape
    common = rng.normal(size=(h, w))
    common = common + np.roll(common, 1, 0) + np.roll(common, 1, 1)
    mix = rng.normal(size=(c, 1, 1))
    return np.rint(scale * (mix * common + 0.5 * rng.normal(size=shape))).astype(np.int64)


# --- the integer tables -----------------------------------------------------------------


def test_tables_are_the_pinned_integers():
    digest = hashlib.sha256()
    for table in (em2.SQUASH, em2.STRETCH, em2.RECIPROCALS):
        assert table.dtype == np.int64
        digest.update(np.ascontiguousarray(table, "<i8").tobytes())
    assert digest.hexdigest() == TABLE_DIGEST


def test_squash_and_stretch_are_monotone_inverses():
    assert np.all(np.diff(em2.SQUASH) >= 0) and np.all(np.diff(em2.STRETCH) >= 0)
    assert em2.SQUASH.min() >= em2.PROB_MIN and em2.SQUASH.max() <= em2.PROB_ONE - em2.PROB_MIN
    assert em2.SQUASH[2048] == em2.PROB_ONE // 2
    # stretch(squash(x)) comes back to x within the 12-bit resolution of STRETCH's index
    x = np.arange(-1500, 1501)
    back = em2.STRETCH[em2.SQUASH[x + 2048] >> 4]
    assert np.abs(back - x).max() <= 12


# --- round trips ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 12), st.integers(1, 12)),
    spread=st.sampled_from([0, 1, 3, 40, 5000]),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_latents_round_trip(shape, spread, seed):
    rng = np.random.default_rng(seed)
    q = np.rint(rng.laplace(scale=max(spread, 1e-9), size=shape)).astype(np.int64)
    _round_trip(q)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-em2.MAX_SYMBOL, em2.MAX_SYMBOL), min_size=1, max_size=64), st.integers(1, 4))
def test_adversarial_values_round_trip(values, channels):
    """Arbitrary integers up to +-2**40, including the limits: the escape path and feature clipping."""
    q = np.resize(np.array(values, dtype=np.int64), channels * len(values)).reshape(channels, 1, len(values))
    _round_trip(q)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 300), (2, 300, 1), (3, 1, 2), (1, 2, 1), (40, 3, 3), (6, 2, 50)])
def test_degenerate_shapes_round_trip(shape):
    rng = np.random.default_rng(sum(shape))
    _round_trip(np.cumsum(rng.integers(-2, 3, size=shape), axis=2))
    _round_trip(np.zeros(shape, dtype=np.int64))


def test_escapes_and_extremes():
    rng = np.random.default_rng(5)
    q = rng.integers(-3, 4, size=(3, 16, 16))
    q[0, 0, 0] = em2.MAX_SYMBOL
    q[0, 5, 7] = -em2.MAX_SYMBOL
    q[1, 15, 15] = em2.UNARY_STEPS + 1  # the first escaped magnitude
    q[1, 3, 3] = -(em2.UNARY_STEPS + 2)
    ordinary = q.copy()
    ordinary[0, 0, 0] = ordinary[0, 5, 7] = ordinary[1, 15, 15] = ordinary[1, 3, 3] = 0
    # Four outliers cost a few bytes of escape each, not a wide alphabet for the whole channel.
    assert len(_round_trip(q)) < len(cm_coder.encode_symbols(ordinary)[0]) + 4 * 12
    q[2] = 10**6  # a whole channel far beyond the predictor's clip still round-trips
    _round_trip(q)
    with pytest.raises(ValueError):
        cm_coder.encode_symbols(np.full((1, 1, 1), em2.MAX_SYMBOL + 1))


def test_encoder_choices_are_validated():
    q = np.zeros((3, 4, 4), dtype=np.int64)
    refs = np.full((3, em2.MAX_REFS), -1)
    with pytest.raises(ValueError):
        cm_coder.encode(q, np.array([0, 0, 1]), refs, np.zeros(3, dtype=np.int64))  # not a permutation
    refs[0, 0] = 1  # channel 0 is coded first, so channel 1 cannot be its reference
    with pytest.raises(ValueError):
        cm_coder.encode(q, np.array([0, 1, 2]), refs, np.array([1, 0, 0]))


def test_channel_order_and_references_are_used():
    """Channels that copy each other cost little once the copy's source is a reference."""
    rng = np.random.default_rng(2)
    base = _correlated_latent(rng, (1, 32, 32))[0]
    q = np.stack([base, rng.integers(-4, 5, size=base.shape), -base, base + 1])
    order, refs, nrefs = em2.choose_order_and_references(q)
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    for c in (0, 2, 3):  # whichever of the copies comes later references an earlier copy
        if order.tolist().index(c) > 0 and c != order[0]:
            assert set(refs[c, : nrefs[c]].tolist()) & {0, 2, 3}
    payload = _round_trip(q)
    without = cm_coder.encode(q, np.arange(4), np.full((4, em2.MAX_REFS), -1), np.zeros(4, dtype=np.int64))
    assert len(payload) < 0.75 * len(without)


def test_references_are_what_explains_a_channel_not_what_correlates_with_it_alone():
    """t = a + 0.6 b beside six near-copies of a: pairwise correlation ranks the copies above b (and
    fills the six references without it); forward selection takes a, then b, which explain t whole."""
    rng = np.random.default_rng(5)
    a, b = (rng.normal(0, 8, (48, 48)) for _ in range(2))
    copies = [a + rng.normal(0, 0.8, a.shape) for _ in range(6)]
    q = np.rint(np.stack([a, b, *copies, a + 0.6 * b])).astype(np.int64)
    t = q.shape[0] - 1
    corr = em2.channel_correlations(q)
    assert sorted(corr[t, :t], reverse=True).index(corr[t, 1]) >= em2.MAX_REFS  # b is not among the top six
    order = np.arange(q.shape[0])  # t last: every other channel may be its reference
    refs, nrefs = em2.choose_references(q, order, min_gain=0.0025)
    assert refs[t, :2].tolist() == [0, 1]  # a explains most, then b adds the rest
    by_correlation = refs.copy()
    by_correlation[t, : nrefs[t]] = np.argsort(-corr[t, :t], kind="stable")[: nrefs[t]]
    assert 1 not in by_correlation[t].tolist()
    assert len(cm_coder.encode(q, order, refs, nrefs)) < len(cm_coder.encode(q, order, by_correlation, nrefs))


def test_model2_beats_model1_on_a_correlated_latent():
    rng = np.random.default_rng(3)
    q = _correlated_latent(rng, (8, 48, 48))
    model1, _ = latent_coder.encode_symbols(q, 1)
    model2 = _round_trip(q)
    assert len(model2) < len(model1)


# --- determinism ------------------------------------------------------------------------


def test_encoding_is_identical_in_a_fresh_process():
    rng = np.random.default_rng(11)
    q = _correlated_latent(rng, (4, 20, 24))
    here = cm_coder.encode_symbols(q)[0]
    script = (
        "import sys, hashlib, numpy as np; from sdcodec.codec.coding import cm_coder;"
        "q = np.frombuffer(sys.stdin.buffer.read(), dtype='<i8').reshape(4, 20, 24);"
        "p = cm_coder.encode_symbols(q)[0];"
        "assert np.array_equal(cm_coder.decode_symbols(p, q.shape), q);"
        "print(hashlib.sha256(p).hexdigest())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=q.astype("<i8").tobytes(),
        capture_output=True,
        cwd=REPO,
        env={"PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=True,
    )
    assert result.stdout.decode().strip() == hashlib.sha256(here).hexdigest()


# --- corrupt payloads -------------------------------------------------------------------


def _decode_outcome(payload: bytes, shape) -> str:
    """'ok' (a well-formed array) or 'error' (PayloadError); anything else fails the test."""
    try:
        out = cm_coder.decode_symbols(payload, shape)
    except PayloadError:
        return "error"
    assert out.shape == shape and out.dtype == np.int64 and np.abs(out).max() <= em2.MAX_SYMBOL
    return "ok"


def test_truncation_and_trailing_bytes_raise_payload_error():
    rng = np.random.default_rng(4)
    q = _correlated_latent(rng, (3, 12, 12))
    payload = cm_coder.encode_symbols(q)[0]
    with pytest.raises(PayloadError):
        cm_coder.decode_symbols(b"", q.shape)
    for cut in range(len(payload)):
        with pytest.raises(PayloadError):
            cm_coder.decode_symbols(payload[:cut], q.shape)
    for tail in (b"\x00", b"\xff", b"\x00\x00\x00\x00", bytes(100)):
        with pytest.raises(PayloadError):
            cm_coder.decode_symbols(payload + tail, q.shape)


def test_bit_flips_never_raise_anything_but_payload_error():
    rng = np.random.default_rng(6)
    q = _correlated_latent(rng, (4, 10, 10))
    payload = bytearray(cm_coder.encode_symbols(q)[0])
    outcomes = []
    for position in range(len(payload)):
        for bit in (0, 3, 7):
            mutant = bytearray(payload)
            mutant[position] ^= 1 << bit
            outcomes.append(_decode_outcome(bytes(mutant), q.shape))
    assert outcomes.count("error") > len(outcomes) // 2  # most corruption is detected, not just survived


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.tuples(st.integers(1, 40), st.integers(1, 20), st.integers(1, 20)))
def test_random_bytes_never_raise_anything_but_payload_error(data, shape):
    _decode_outcome(data, shape)


def test_garbage_for_a_large_latent_stops_early():
    """A short payload declaring a big latent fails at the end of its bytes, not after the whole latent."""
    shape = (32, 256, 256)  # two million values: decoding them all would take about half a second
    rng = np.random.default_rng(9)
    for _ in range(3):
        start = time.perf_counter()
        assert _decode_outcome(rng.bytes(64), shape) == "error"
        assert time.perf_counter() - start < 2.0


# --- through the container --------------------------------------------------------------


def test_files_record_and_decode_either_model():
    rng = np.random.default_rng(8)
    latent = rng.normal(size=(4, 12, 10))
    for model in (1, 2):
        data = latent_coder.encode_latent(latent, step=0.4, entropy_model=model)
        symbols, sdz = latent_coder.read_symbols(data)
        assert sdz.entropy_model == model
        np.testing.assert_array_equal(symbols, latent_coder.quantize(latent, 0.4 * np.ones((4, 1, 1))))
    with pytest.raises(ValueError):
        latent_coder.encode_latent(latent, step=0.4, entropy_model=3)


def test_unknown_model_id_is_refused():
    data = latent_coder.encode_latent(np.zeros((1, 2, 2)), step=1.0, entropy_model=2)
    sdz = dataclasses.replace(bitstream.read_sdz(data), entropy_model=3)
    with pytest.raises(bitstream.BitstreamError):
        latent_coder.read_symbols(bitstream.write_sdz(sdz))
