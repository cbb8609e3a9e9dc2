"""The headroom benchmark's tools measure what they claim (issue 15's bounds rest on them)."""

import numpy as np

from sdcodec.benchmarks import bench_entropy_headroom as headroom
from sdcodec.codec.coding import entropy_model2 as em2


def _correlated_channels(seed: int = 0) -> tuple[np.ndarray, float]:
    """Two channels: an AR(1)x(1) field on integers, and that field plus small noise; and the noise's variance."""
    rng = np.random.default_rng(seed)
    height, width = 48, 48
    field = np.zeros((height, width))
    innovation = rng.normal(0.0, 4.0, (height, width))
    for i in range(height):
        for j in range(width):
            west = field[i, j - 1] if j else 0.0
            north = field[i - 1, j] if i else 0.0
            field[i, j] = 0.55 * west + 0.4 * north + innovation[i, j]
    second = field + rng.normal(0.0, 1.0, (height, width))
    return np.round(np.stack([field, second])).astype(np.int64), 1.0 + 1.0 / 6  # noise plus rounding


def test_rls_predicts_a_linear_field_from_its_neighbours_and_its_reference():
    q, second_noise = _correlated_channels()
    predicted = headroom.rls_predictions(q)
    order, _, nrefs = em2.choose_order_and_references(q)
    first, second = int(order[0]), int(order[1])
    assert nrefs[second] == 1
    inner = (slice(8, None), slice(2, None))  # past the start-up and the zero border
    first_mse = ((q[first] - predicted[first])[inner] ** 2).mean()
    second_mse = ((q[second] - predicted[second])[inner] ** 2).mean()
    # the spatial predictor works: the innovations' variance is 16 (plus rounding), the field's about 44
    assert first_mse < 20.0 < 0.5 * q[first].var()
    assert second_mse < 2.0 * second_noise  # the reference carries the other channel whole (16 -> about 1)


def test_every_earlier_channel_variant_reads_the_same_first_channel():
    q, _ = _correlated_channels(1)
    order, _, _ = em2.choose_order_and_references(q)
    first = int(order[0])
    np.testing.assert_allclose(headroom.rls_predictions(q, True)[first], headroom.rls_predictions(q)[first])


def test_density_inputs_follow_model_2s_coding_order():
    q, _ = _correlated_channels(2)
    order, _, _ = em2.choose_order_and_references(q)
    plain, targets, channels = headroom.density_inputs(q, with_rls=False)
    with_rls, targets_rls, _ = headroom.density_inputs(q, with_rls=True)
    assert plain.shape == (q.size, 48) and with_rls.shape == (q.size, 48 + 17)
    np.testing.assert_array_equal(targets, np.concatenate([q[c].ravel() for c in order]))
    np.testing.assert_array_equal(targets_rls, targets)
    np.testing.assert_array_equal(channels[:: q[0].size], order)
    # the west neighbour of the second coded position is the first value; the RLS column is its prediction
    assert plain[1, 0] == targets[0]
    np.testing.assert_allclose(with_rls[:, 48], np.concatenate([headroom.rls_predictions(q)[c].ravel() for c in order]))
