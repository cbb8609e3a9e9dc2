"""Error shaping across channels: the decoder's channel metric, and the quantizer that uses it."""

import numpy as np
import pytest
import torch

from sdcodec.codec.coding import latent_coder
from sdcodec.codec.coding.quantizer import (
    best_recon_offset,
    channel_steps,
    dequantize,
    magnitude_bits,
    neighbour_context,
    quantize,
    rdo_quantize,
    step_metric,
    symbol_bits,
)
from sdcodec.codec.rate_distortion.channel_weighting import channel_metric


class MixingDecoder:
    """A linear 'decoder' whose three output planes mix the latent's channels by a known matrix."""

    def __init__(self, mixing):
        self.mixing = torch.tensor(mixing, dtype=torch.float32)

    def decode_with_grad(self, latent):
        return torch.einsum("oc,bchw->bohw", self.mixing, latent)


def test_metric_of_a_mixing_decoder_is_its_gram_matrix():
    mixing = [[1.0, 1.0, 0.0], [0.5, -1.0, 0.0], [0.0, 0.0, 2.0]]
    decoder = MixingDecoder(mixing)
    latent = torch.zeros(3, 20, 20)
    metric = channel_metric(decoder, latent, probes=8)
    expected = np.asarray(mixing).T @ np.asarray(mixing) / 3  # J_p^T J_p per position over 3 pixel values a position
    np.testing.assert_allclose(metric, expected, atol=0.08 * expected.max())
    assert metric[0, 1] > 0.1 and abs(metric[0, 2]) < 0.05  # coupled channels, and independent ones


def shaping_cost(latent, q, steps, metric, rate_weight, bits=None):
    """e^T M e + lambda * bits in the quantizer's own units and lambda (the rounded symbols' mean e^2),
    with the proxy's bits unless the real coder's are given."""
    rounded = quantize(latent, steps)
    shrink = best_recon_offset(latent, rounded, steps) / 64
    errors = (latent / steps - np.sign(q) * np.maximum(np.abs(q) - shrink, 0)).reshape(latent.shape[0], -1)
    rounded_errors = np.abs(latent / steps) - np.maximum(np.abs(rounded) - shrink, 0)
    lam = rate_weight * 2 * np.log(2) * float((rounded_errors**2).mean())
    if bits is None:
        context = neighbour_context(q)
        bits = symbol_bits(magnitude_bits(q, context), q, context).sum()
    return float(np.einsum("cn,cd,dn->", errors, step_metric(metric, steps, latent.shape[0]), errors)) + lam * bits


def correlated_case(seed=0):
    """Two channels the decoder mostly adds (errors of opposite signs cancel), and one on its own."""
    latent = np.random.default_rng(seed).laplace(scale=0.8, size=(3, 24, 24))
    metric = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return latent, channel_steps(1.0, (16, 16, 16), 3), metric


def test_shaping_lowers_the_metric_cost_below_diagonal_rdoq():
    latent, steps, metric = correlated_case()
    plain = rdo_quantize(latent, steps, 2.0)
    shaped = rdo_quantize(latent, steps, 2.0, metric)
    assert np.abs(shaped - quantize(latent, steps)).max() <= 2  # moves of a step around RDOQ's choice
    assert shaping_cost(latent, shaped, steps, metric, 2.0) < shaping_cost(latent, plain, steps, metric, 2.0)
    # The error the decoder sees (rate weight 0: e^T M e alone) falls by a tenth or more.
    assert shaping_cost(latent, shaped, steps, metric, 0.0) < 0.9 * shaping_cost(latent, plain, steps, metric, 0.0)
    # The uncoupled channel has nothing to shape against: it keeps RDOQ's choice but for rate moves.
    assert (shaped[:2] != plain[:2]).sum() > 4 * (shaped[2] != plain[2]).sum()


def test_shaped_errors_lean_against_each_other_where_the_decoder_adds_channels():
    latent, steps, metric = correlated_case(seed=1)
    errors = {}
    for name, m in (("plain", None), ("shaped", metric)):
        q = rdo_quantize(latent, steps, 2.0, m)
        shrink = best_recon_offset(latent, q, steps)
        errors[name] = (latent - dequantize(q, steps, shrink)).reshape(3, -1)
    # The sum of channels 0 and 1 is what the decoder sees: its error shrinks, though each channel's grows.
    assert np.mean(errors["shaped"][:2].sum(axis=0) ** 2) < 0.8 * np.mean(errors["plain"][:2].sum(axis=0) ** 2)


def test_files_with_shaping_decode_exactly_are_deterministic_and_keep_ceilings():
    latent, _, metric = correlated_case(seed=2)
    latent = latent.astype(np.float32)
    fields = dict(channel_steps=(16, 12, 24), rdo_weight=2.0, channel_metric=metric)
    data = latent_coder.encode_latent(latent, step=0.6, **fields)
    assert data == latent_coder.encode_latent(latent.copy(), step=0.6, **fields)
    q, sdz = latent_coder.read_symbols(data)
    np.testing.assert_array_equal(
        q, rdo_quantize(latent.astype(np.float64), latent_coder.header_steps(sdz), 2.0, metric)
    )
    for budget in (400, 1200):
        result = latent_coder.encode_latent_detailed(latent, max_bytes=budget, **fields)
        assert len(result.data) <= budget


def test_a_metric_of_the_wrong_size_is_refused():
    latent, steps, _ = correlated_case()
    with pytest.raises(ValueError, match="channel metric"):
        rdo_quantize(latent, steps, 2.0, np.eye(4))


def test_on_taef2_the_shaped_symbols_cost_less_with_the_real_coder(taef2_spec, kodak_dir):
    """A real TAEF2 latent and level 1's metric (the model's): e^T M e + lambda * (the real coder's bits)
    is lower for the shaped symbols than for rounding and for diagonal RDOQ, at three qualities."""
    from PIL import Image

    from sdcodec.codec import autoencoders
    from sdcodec.codec.coding.symbol_coder import ENTROPY_MODEL_ID, encode_symbols
    from sdcodec.codec.image_codec import quality_to_step
    from sdcodec.codec.images import image_io
    from sdcodec.codec.rate_distortion import channel_weighting, model_metric

    autoencoder = autoencoders.load_autoencoder(taef2_spec, device="cpu")
    image = np.asarray(Image.open(kodak_dir / "kodim05.png").convert("RGB"))[128:320, 256:448]
    with torch.inference_mode():
        latent = autoencoder.encode(image_io.to_tensor(image))[0]
    metric = model_metric.model_metric(autoencoder)  # level 1's
    off_diagonal = metric / np.sqrt(np.outer(np.diag(metric), np.diag(metric))) - np.eye(len(metric))
    assert np.abs(off_diagonal).max() > 0.3  # the decoder does couple channels
    latent = latent.double().numpy()
    multipliers = channel_weighting.step_multipliers(np.diag(metric))
    for quality in (25, 35, 45):
        steps = channel_steps(quality_to_step(quality), multipliers, latent.shape[0])
        costs = {}
        for name, q in (
            ("rounded", quantize(latent, steps)),
            ("rdoq", rdo_quantize(latent, steps, 2.0)),
            ("shaped", rdo_quantize(latent, steps, 2.0, metric)),
        ):
            bits = encode_symbols(q, ENTROPY_MODEL_ID)[1]
            costs[name] = shaping_cost(latent, q, steps, metric, 2.0, bits=bits)
        assert costs["shaped"] < costs["rdoq"] < costs["rounded"], (quality, costs)


def test_every_effort_codes_the_same_symbols_with_entropy_model_2_unless_asked_for_model_1(taef2_spec, kodak_dir):
    from PIL import Image

    import sdcodec
    from sdcodec import bitstream
    from sdcodec.codec.image_codec import DEFAULT_ENTROPY_MODEL

    image = Image.open(kodak_dir / "kodim23.png").convert("RGB").crop((256, 128, 448, 320))
    default = sdcodec.encode_image(image, model=taef2_spec, device="cpu", quality=40)
    model_1 = sdcodec.encode_image(image, model=taef2_spec, device="cpu", quality=40, entropy_model=1)
    assert DEFAULT_ENTROPY_MODEL == 2
    assert bitstream.read_sdz(default).entropy_model == 2 and bitstream.read_sdz(model_1).entropy_model == 1
    np.testing.assert_array_equal(latent_coder.read_symbols(default)[0], latent_coder.read_symbols(model_1)[0])
    assert len(default) < len(model_1)
    effort_2 = sdcodec.encode_image(image.crop((0, 0, 64, 64)), model=taef2_spec, device="cpu", quality=40, effort=2)
    header = bitstream.read_sdz(effort_2)
    assert header.entropy_model == 2
    assert header.recon_offset == 0  # the search measured its latent at the bin centres


def test_rate_search_with_level_1_quantizer_and_coder_needs_few_encodes(monkeypatch):
    """RDOQ, shaping and model 2 change the size by a factor the rounded estimate cannot see: once a
    trial has failed, the search aims between its two real sizes, so a handful of encodes suffice."""
    calls = []
    real = latent_coder._encode_at
    monkeypatch.setattr(latent_coder, "_encode_at", lambda *args: calls.append(args[1]) or real(*args))
    latent = np.random.default_rng(5).laplace(scale=0.8, size=(3, 64, 64))
    metric = correlated_case()[2]
    fields = dict(channel_steps=(16, 12, 24), rdo_weight=2.0, channel_metric=metric, entropy_model=2)
    for budget in (1500, 4000, 9000):
        calls.clear()
        result = latent_coder.encode_latent_detailed(latent, max_bytes=budget, **fields)
        assert len(result.data) <= budget
        assert len(calls) <= 8, f"{len(calls)} encodes for {budget} bytes"  # 16 when aimed by the estimate alone
        finer = latent_coder.encode_latent_detailed(latent, step=result.step * 0.99, **fields)
        assert len(finer.data) > budget or finer.step == result.step
