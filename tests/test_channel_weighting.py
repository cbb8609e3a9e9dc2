"""Per-channel steps follow the decoder's sensitivity: the channel metric's diagonal, the gains."""

import numpy as np
import pytest
import torch

from sdcodec.codec.rate_distortion.channel_weighting import channel_metric, step_multipliers


def channel_gains_of(decoder, latent):
    return np.diag(channel_metric(decoder, latent))


class ScaledDecoder:
    """A linear 'decoder' whose channels have known gains (weight squared)."""

    def __init__(self, weights):
        self.weights = torch.tensor(weights, dtype=torch.float32).view(1, -1, 1, 1)

    def decode(self, latent):
        return (latent * self.weights).sum(dim=1, keepdim=True)

    decode_with_grad = decode


def test_gains_match_a_known_linear_decoder():
    decoder = ScaledDecoder([1.0, 2.0, 0.5, 4.0])
    gains = channel_gains_of(decoder, torch.zeros(4, 20, 20))
    np.testing.assert_allclose(gains / gains[0], [1, 4, 0.25, 16], rtol=0.15)
    np.testing.assert_array_equal(gains, channel_gains_of(decoder, torch.zeros(4, 20, 20)))  # deterministic


def test_gains_of_a_nonlinear_decoder_follow_its_local_slope():
    """A decoder whose channel 1 saturates (tanh of a large value) has almost no gain there."""

    class Saturating:
        def decode_with_grad(self, latent):
            return torch.tanh(latent).sum(dim=1, keepdim=True)

    latent = torch.zeros(2, 16, 16)
    latent[1] = 5.0
    gains = channel_gains_of(Saturating(), latent)
    assert gains[0] == pytest.approx(1.0, rel=0.2)  # tanh'(0) = 1
    assert gains[1] < 1e-6 * gains[0]


def test_multipliers_are_inverse_square_root_of_gains_with_unit_geometric_mean():
    assert step_multipliers(np.array([1.0, 4.0, 0.25, 1.0])) == (16, 8, 32, 16)
    assert step_multipliers(np.array([1.0, 1e9])) == (64, 4)  # clipped to [1/4, 4]


def test_gains_of_an_inference_mode_latent_the_size_of_the_crop():
    """encode_image's latent comes from inference mode; a latent no larger than the crop is not copied by cropping."""
    decoder = ScaledDecoder([1.0, 2.0])
    with torch.inference_mode():
        latent = torch.zeros(2, 8, 8)
    gains = channel_gains_of(decoder, latent)
    np.testing.assert_allclose(gains / gains[0], [1, 4], rtol=1e-6)
