"""Rate-distortion quantization (RDOQ): which symbols move towards zero, and what stays exact."""

import numpy as np

from sdcodec.codec.coding import latent_coder
from sdcodec.codec.coding.quantizer import (
    channel_steps,
    magnitude_bits,
    neighbour_context,
    quantize,
    rdo_quantize,
    symbol_bits,
)


def peaked_latent(shape=(4, 32, 32), seed=0, scale=0.6):
    """Laplacian values, peaked at zero as real latents are."""
    return np.random.default_rng(seed).laplace(scale=scale, size=shape)


def test_weight_zero_is_plain_rounding():
    latent = peaked_latent()
    steps = channel_steps(0.7, (16, 8, 32, 20), 4)
    np.testing.assert_array_equal(rdo_quantize(latent, steps, 0.0), quantize(latent, steps))


def test_a_rare_symbol_just_past_half_a_step_is_zeroed_and_a_clear_one_is_kept():
    # Values inside the zero bin (error about 1/15 step^2 each) and three rare nonzero symbols:
    # each costs about 8 bits, which at lambda = 2 ln2 D (0.09 step^2 a bit) outweighs the 0.2
    # step^2 that zeroing 0.55 adds, but not the 1.7 step^2 that zeroing 1.4 would add.
    latent = np.random.default_rng(4).uniform(-0.45, 0.45, size=(1, 16, 16))
    latent[0, 0, :3] = (0.55, 0.6, 1.4)
    rounded = quantize(latent, 1.0)
    chosen = rdo_quantize(latent, 1.0, 1.0)
    np.testing.assert_array_equal(rounded[0, 0, :3], (1, 1, 1))
    np.testing.assert_array_equal(chosen[0, 0, :3], (0, 0, 1))
    assert (chosen[0, 1:] == 0).all()


def test_moves_are_one_step_towards_zero_and_lower_the_real_rate_distortion_cost():
    """Only nonzero symbols move, by one step towards zero, and the real coder's bits fall by more
    than the error added is worth at the operating point's lambda."""
    latent = peaked_latent(shape=(4, 40, 40), seed=1)
    rounded = quantize(latent, 1.0)
    chosen = rdo_quantize(latent, 1.0, 1.0)
    moved = chosen != rounded
    assert moved.any() and not (moved & (rounded == 0)).any()
    np.testing.assert_array_equal(chosen[moved], rounded[moved] - np.sign(rounded[moved]))
    # The moved values are those nearest their lower bin.
    assert np.abs(np.abs(latent[moved]) - np.abs(rounded[moved])).mean() > 0.3

    def bits_and_squared_error(weight):
        data = latent_coder.encode_latent(latent, step=1.0, rdo_weight=weight)
        return 8 * len(data), float(((latent_coder.decode_latent(data) - latent) ** 2).sum())

    plain_bits, plain_error = bits_and_squared_error(0.0)
    rdo_bits, rdo_error = bits_and_squared_error(1.0)
    lam = 2 * np.log(2) * plain_error / latent.size
    assert rdo_bits < plain_bits and rdo_error > plain_error
    assert rdo_error + lam * rdo_bits < plain_error + lam * plain_bits
    # A larger weight moves more symbols.
    assert (rdo_quantize(latent, 1.0, 2.0) != rounded).sum() > moved.sum()


def test_a_symbol_among_zeros_costs_more_than_among_nonzeros():
    q = np.zeros((1, 12, 12), dtype=np.int64)
    q[0, :, 6:] = np.random.default_rng(0).integers(-3, 4, size=(12, 6))
    q[0, 5, 2] = 1  # alone among zeros
    context = neighbour_context(q)
    assert context[0, 5, 2] == 0 and context[0, 5, 9] > 0
    bits = symbol_bits(magnitude_bits(q, context), q, context)
    ones = np.abs(q[0]) == 1
    assert bits[0, 5, 2] > bits[0][ones & (context[0] > 0)].max()
    assert bits[0, 0, 0] < bits[0][(q[0] == 0) & (context[0] > 1)].min()  # and a zero cheaper than among them


def test_files_are_smaller_still_decodable_and_deterministic():
    latent = peaked_latent(shape=(4, 40, 40), seed=2).astype(np.float32)
    plain = latent_coder.encode_latent(latent, step=0.5, channel_steps=(16, 12, 24, 16))
    rdo = latent_coder.encode_latent(latent, step=0.5, channel_steps=(16, 12, 24, 16), rdo_weight=1.0)
    assert len(rdo) < len(plain)
    assert rdo == latent_coder.encode_latent(latent.copy(), step=0.5, channel_steps=(16, 12, 24, 16), rdo_weight=1.0)
    q, sdz = latent_coder.read_symbols(rdo)
    steps = latent_coder.header_steps(sdz)
    np.testing.assert_array_equal(q, rdo_quantize(latent.astype(np.float64), steps, 1.0))
    restored = latent_coder.decode_latent(rdo)
    # Every value is at most one step and a half (plus the reconstruction offset) from its reconstruction.
    assert (np.abs(restored - latent) <= 1.5 * steps + 1e-6).all()


def test_size_ceilings_still_hold_exactly():
    latent = peaked_latent(shape=(4, 32, 32), seed=3).astype(np.float32)
    for budget in (300, 900, 2500):
        result = latent_coder.encode_latent_detailed(latent, max_bytes=budget, rdo_weight=1.0)
        assert len(result.data) <= budget
        finer = latent_coder.encode_latent_detailed(latent, step=result.step * 0.99, rdo_weight=1.0)
        assert len(finer.data) > budget or finer.step == result.step
