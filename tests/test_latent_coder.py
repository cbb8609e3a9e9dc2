"""The latent coder: exact symbol round trips, determinism, rate control, corruption."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sdcodec import bitstream
from sdcodec.codec.coding import latent_coder
from sdcodec.codec.coding.latent_coder import decode_latent, encode_latent, quantize, read_symbols

REPO = Path(__file__).resolve().parents[1]


def correlated_latent(shape, seed=0, scale=1.0):
    """A latent with spatial and cross-channel correlation, like a real one."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=shape)
    smooth = (base + np.roll(base, 1, axis=1) + np.roll(base, 1, axis=2) + np.roll(base, 1, axis=0)) / 2
    return (scale * smooth).astype(np.float32)


def assert_symbols_round_trip(latent, step):
    data = encode_latent(latent, step=step)
    q, sdz = read_symbols(data)
    expected = quantize(latent_coder.as_latent_array(latent), sdz.quant_step)
    np.testing.assert_array_equal(q, expected)
    restored = decode_latent(data)
    assert restored.shape == latent.shape and restored.dtype == np.float32
    # Every reconstruction lies inside its bin, at most the offset away from the bin centre.
    np.testing.assert_array_equal(np.rint(restored.astype(np.float64) / sdz.quant_step), np.where(q == 0, 0, q))
    bound = (0.5 + sdz.recon_offset / 64) * sdz.quant_step
    assert np.abs(restored - latent).max() <= bound * (1 + 1e-6) + 1e-6 * np.abs(latent).max()
    return data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(1, 12), st.integers(1, 12)),
    step=st.floats(0.01, 8.0),
    scale=st.floats(0.0, 50.0),
    seed=st.integers(0, 2**16),
)
def test_property_round_trip_random_latents(shape, step, scale, seed):
    assert_symbols_round_trip(correlated_latent(shape, seed, scale), step)


@settings(max_examples=25, deadline=None)
@given(
    latent=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=6),
        elements=st.floats(-1e4, 1e4, width=32),
    ),
    step=st.floats(0.05, 4.0),
)
def test_property_round_trip_arbitrary_values(latent, step):
    assert_symbols_round_trip(latent, step)


def test_all_zero_latent_is_tiny():
    data = assert_symbols_round_trip(np.zeros((4, 32, 32), np.float32), 0.5)
    assert len(data) < 120


def test_one_by_one_latent():
    assert_symbols_round_trip(np.array([[[1.7]], [[-3.2]], [[0.0]], [[9.9]]], np.float32), 0.3)


def test_single_huge_outlier_uses_escape_and_round_trips():
    latent = correlated_latent((4, 16, 16))
    latent[2, 5, 7] = 1e6
    data = assert_symbols_round_trip(latent, 0.25)
    assert len(data) < len(encode_latent(correlated_latent((4, 16, 16)), step=0.25)) + 40


def test_wide_value_range_beyond_core_alphabet():
    latent = np.linspace(-3000, 3000, 4 * 20 * 20, dtype=np.float32).reshape(4, 20, 20)
    assert_symbols_round_trip(latent, 1.0)


def test_torch_tensor_and_batch_dimension_accepted():
    torch = pytest.importorskip("torch")
    latent = correlated_latent((4, 8, 8))
    assert encode_latent(torch.from_numpy(latent)[None], step=0.5) == encode_latent(latent, step=0.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_latent_is_refused(bad):
    latent = correlated_latent((4, 8, 8))
    latent[1, 2, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        encode_latent(latent, step=0.5)


def test_value_too_large_for_step_is_refused():
    with pytest.raises(ValueError, match="too large"):
        encode_latent(np.full((1, 2, 2), 1e30, np.float32), step=0.001)


@pytest.mark.parametrize("kwargs", [{}, {"step": 0.5, "max_bytes": 100}, {"step": 0.0}, {"step": -1.0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        encode_latent(correlated_latent((4, 8, 8)), **kwargs)


def test_reconstruction_is_better_than_bin_centre_on_peaked_data():
    rng = np.random.default_rng(3)
    latent = rng.laplace(scale=0.5, size=(4, 32, 32)).astype(np.float32)
    q, sdz = read_symbols(encode_latent(latent, step=1.0))
    ours = np.mean((decode_latent(encode_latent(latent, step=1.0)) - latent) ** 2)
    centre = np.mean((q * sdz.quant_step - latent) ** 2)
    assert sdz.recon_offset > 0 and ours < centre


def test_a_chosen_reconstruction_offset_is_stored_and_decoded_at():
    latent = np.random.default_rng(3).laplace(scale=0.5, size=(4, 32, 32)).astype(np.float32)
    centred = encode_latent(latent, step=1.0, recon_offset=0)
    q, sdz = read_symbols(centred)
    assert sdz.recon_offset == 0
    np.testing.assert_array_equal(decode_latent(centred), q.astype(np.float32))
    with pytest.raises(ValueError, match="reconstruction offset"):
        encode_latent(latent, step=1.0, recon_offset=32)


def test_same_input_same_bytes_in_another_process(tmp_path):
    latent = correlated_latent((4, 24, 20), seed=5)
    np.save(tmp_path / "latent.npy", latent)
    code = (
        "import sys, numpy as np;"
        "from sdcodec.codec.coding.latent_coder import encode_latent;"
        "sys.stdout.buffer.write(encode_latent(np.load(sys.argv[2]), step=0.3))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(REPO), str(tmp_path / "latent.npy")], capture_output=True, check=True
    )
    assert other.stdout == encode_latent(latent, step=0.3) == encode_latent(latent.copy(), step=0.3)


def test_rate_control_fits_and_is_tight():
    latent = correlated_latent((4, 32, 32), seed=9)
    for budget in (300, 800, 2000):
        result = latent_coder.encode_latent_detailed(latent, max_bytes=budget)
        assert len(result.data) <= budget
        # One step finer would no longer fit (the search ends within 0.4% of the step).
        finer = latent_coder.encode_latent_detailed(latent, step=result.step * 0.99)
        assert len(finer.data) > budget or finer.step == result.step
    small = latent_coder.encode_latent_detailed(latent, max_bytes=300)
    large = latent_coder.encode_latent_detailed(latent, max_bytes=2000)
    assert np.mean((decode_latent(large.data) - latent) ** 2) < np.mean((decode_latent(small.data) - latent) ** 2)


def test_rate_control_aims_instead_of_bisecting(monkeypatch):
    """A calibrated entropy estimate aims each trial: a handful of real encodes, not fifteen."""
    calls = []
    real = latent_coder._encode_at
    monkeypatch.setattr(latent_coder, "_encode_at", lambda *args: calls.append(args[1]) or real(*args))
    latent = correlated_latent((8, 48, 48), seed=3)
    for budget in (1500, 4000, 9000):
        calls.clear()
        result = latent_coder.encode_latent_detailed(latent, max_bytes=budget)
        assert len(result.data) <= budget
        assert len(calls) <= 9, f"{len(calls)} encodes for {budget} bytes"
        finer = latent_coder.encode_latent_detailed(latent, step=result.step * 0.99)
        assert len(finer.data) > budget or finer.step == result.step


def test_rate_control_impossible_budget_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot fit in 10 bytes"):
        encode_latent(correlated_latent((4, 16, 16)), max_bytes=10)


def test_file_corruption_always_raises_bitstream_error():
    data = encode_latent(correlated_latent((4, 3, 2), seed=1), step=0.4)
    for n in range(len(data)):
        with pytest.raises(bitstream.BitstreamError):
            decode_latent(data[:n])
    for i in range(len(data)):
        for bit in range(8):
            corrupt = bytearray(data)
            corrupt[i] ^= 1 << bit
            with pytest.raises(bitstream.BitstreamError):
                decode_latent(bytes(corrupt))
    with pytest.raises(bitstream.TrailingBytesError):
        decode_latent(data + b"\x00\x01")


def test_garbage_payload_with_valid_checksum_raises_payload_error():
    """Random payloads behind a valid header and CRC: refused with PayloadError, never another error."""
    good = bitstream.read_sdz(encode_latent(correlated_latent((4, 6, 6)), step=0.5))
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(30):
        payload = rng.integers(0, 256, size=int(rng.integers(0, 80)), dtype=np.uint8).tobytes()
        forged = bitstream.write_sdz(bitstream.SdzFile(**{**good.__dict__, "payload": payload}))
        try:
            out = decode_latent(forged)
        except bitstream.PayloadError:
            refused += 1
        else:  # a random payload may happen to be a valid one; then it decodes to a finite latent
            assert out.shape == (4, 6, 6) and np.isfinite(out).all()
    assert refused >= 25


def test_per_channel_steps_quantize_each_channel_with_its_own_step():
    latent = correlated_latent((4, 16, 16), seed=4)
    data = encode_latent(latent, step=0.5, channel_steps=(16, 4, 64, 32))
    q, sdz = read_symbols(data)
    steps = latent_coder.header_steps(sdz)
    np.testing.assert_allclose(steps.ravel(), [0.5, 0.125, 2.0, 1.0])
    np.testing.assert_array_equal(q, quantize(latent.astype(np.float64), steps))
    errors = np.abs(decode_latent(data) - latent).reshape(4, -1).max(axis=1)
    assert np.all(errors <= steps.ravel() * (0.5 + sdz.recon_offset / 64) + 1e-6)
