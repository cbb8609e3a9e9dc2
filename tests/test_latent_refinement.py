"""Encoder-side latent search (--effort 2-4): better decoded images at about the same size, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdcodec.codec.coding import latent_coder
from sdcodec.codec.rate_distortion import latent_refinement
from sdcodec.codec.rate_distortion.latent_refinement import Refinement, refine_latent


class ConvDecoder:
    """A fixed random transposed convolution: 4-channel latent -> 3 x 8h x 8w pixels, differentiable."""

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.weight = torch.randn(4, 3, 8, 8, generator=generator) * 0.2

    def decode_with_grad(self, latent):
        return torch.sigmoid(torch.nn.functional.conv_transpose2d(latent, self.weight, stride=8))


def quantized_error(decoder, target, latent, steps):
    symbols = torch.round(latent / steps)
    with torch.no_grad():
        return float(torch.mean((decoder.decode_with_grad((symbols * steps)[None]) - target) ** 2))


def make_problem(decoder, seed: int, side: int, encoder_noise: float):
    """(decoder, target pixels, an imperfect encoder's latent, steps 0.5, the coder's bits for it)."""
    generator = torch.Generator().manual_seed(seed)
    truth = torch.randn(4, side, side, generator=generator)
    target = decoder.decode_with_grad(truth[None]).detach()
    encoder_output = truth + encoder_noise * torch.randn(4, side, side, generator=generator)
    steps = torch.full((4, 1, 1), 0.5)
    bits = 8 * len(latent_coder.encode_latent(encoder_output, step=0.5))
    return decoder, target, encoder_output, steps, bits


@pytest.fixture(scope="module")
def problem():
    return make_problem(ConvDecoder(), seed=1, side=12, encoder_noise=0.3)


def test_refinement_lowers_the_error_of_the_quantized_latent(problem):
    decoder, target, latent, steps, bits = problem
    before = quantized_error(decoder, target, latent, steps)
    refined = refine_latent(decoder, target, latent, steps, bits, Refinement(12, 0.05))
    assert quantized_error(decoder, target, refined, steps) < 0.7 * before
    assert refined.shape == latent.shape and torch.isfinite(refined).all()


def test_refinement_is_deterministic_and_zero_iterations_change_nothing(problem):
    decoder, target, latent, steps, bits = problem
    first = refine_latent(decoder, target, latent, steps, bits, Refinement(4, 0.05))
    torch.testing.assert_close(
        first, refine_latent(decoder, target, latent, steps, bits, Refinement(4, 0.05)), rtol=0, atol=0
    )
    assert refine_latent(decoder, target, latent, steps, bits, Refinement(0)) is latent


def test_tiles_refine_every_part_of_a_large_latent(problem, monkeypatch):
    decoder, target, latent, steps, bits = problem
    monkeypatch.setattr(latent_refinement, "TILE", 5)  # 12x12 -> tiles of 5, 5 and 2 per side
    monkeypatch.setattr(latent_refinement, "MARGIN", 2)
    refined = refine_latent(decoder, target, latent, steps, bits, Refinement(12, 0.05))
    assert quantized_error(decoder, target, refined, steps) < 0.8 * quantized_error(decoder, target, latent, steps)
    changed = (refined != latent).any(dim=0)
    assert changed[:5, :5].any() and changed[10:, 10:].any() and changed[5:10, :5].any()


def test_adams_step_in_latent_units_never_falls_below_the_tuned_steps(problem):
    """Adam's first update moves every value by its learning rate in the variable's units: one step
    at and above TUNED_STEP, TUNED_STEP below it (a fine step used to move the latent too little)."""
    decoder, target, latent, _, bits = problem
    tuned = latent_refinement.TUNED_STEP
    for step, expected in ((0.2, tuned), (0.5, tuned), (tuned, tuned), (2.0, 2.0)):
        steps = torch.full((4, 1, 1), step)
        moved = (refine_latent(decoder, target, latent, steps, bits, Refinement(1, 0.05)) - latent).abs()
        assert float(moved.median()) == pytest.approx(0.05 * expected, rel=0.02)


@pytest.mark.parametrize("encoder_noise", [0.02, 0.1])
def test_a_fine_step_does_not_overshoot_a_latent_that_was_already_close(encoder_noise):
    """The stretched step overshoots where the amortization gap is small (up to four times the error here,
    unguarded): the search keeps its best measured iterate, so the file is never worse than the start."""
    decoder, target, latent, _, _ = make_problem(ConvDecoder(), seed=3, side=16, encoder_noise=encoder_noise)
    steps = torch.full((4, 1, 1), 0.3)
    bits = 8 * len(latent_coder.encode_latent(latent, step=0.3))
    refined = refine_latent(decoder, target, latent, steps, bits, Refinement(6, 0.05))
    assert quantized_error(decoder, target, refined, steps) <= quantized_error(decoder, target, latent, steps)
    assert 8 * len(latent_coder.encode_latent(refined, step=0.3)) <= bits


@pytest.mark.slow
def test_effort_on_a_real_autoencoder_buys_quality_not_bits(taef2_spec, kodak_dir):
    from PIL import Image

    import sdcodec

    image = Image.open(kodak_dir / "kodim23.png").convert("RGB").crop((320, 160, 416, 256))
    reference = np.asarray(image).astype(np.float64)

    def encode(effort, **rate):
        data = sdcodec.encode_image(image, model=taef2_spec, device="cpu", effort=effort, **rate)
        decoded = np.asarray(sdcodec.decode_image(data, model=taef2_spec, device="cpu")).astype(np.float64)
        return data, 10 * np.log10(255**2 / np.mean((decoded - reference) ** 2))

    fast, fast_psnr = encode(1, quality=40, rdo_weight=0, entropy_model=1)  # the same latent and coder, rounded
    refined, refined_psnr = encode(2, quality=40)
    assert refined_psnr > fast_psnr + 0.5
    assert len(refined) < 1.05 * len(fast)
    assert encode(2, quality=40)[0] == refined  # deterministic
    capped, _ = encode(2, size=len(fast))
    assert len(capped) <= len(fast)


def test_effort_out_of_range_is_a_clear_error(taef2_spec):
    import sdcodec

    with pytest.raises(sdcodec.SdcodecError, match="effort must be between 1 and 4"):
        sdcodec.encode_image(np.zeros((8, 8, 3), dtype=np.uint8), model=taef2_spec, effort=9)


@pytest.mark.slow
def test_tune_ssim_buys_ms_ssim_at_the_same_size(taef2_spec, kodak_dir):
    from PIL import Image

    import sdcodec
    from sdcodec.benchmarks.metrics import ms_ssim

    image = Image.open(kodak_dir / "kodim05.png").convert("RGB").crop((300, 200, 492, 392))  # 192 px: 5 scales
    reference = np.asarray(image)

    def encode(tune):
        data = sdcodec.encode_image(image, model=taef2_spec, device="cpu", effort=2, tune=tune, quality=35)
        decoded = np.asarray(sdcodec.decode_image(data, model=taef2_spec, device="cpu"))
        return len(data), ms_ssim(reference, decoded)[0]

    psnr_bytes, psnr_ms_ssim = encode("psnr")
    ssim_bytes, ssim_ms_ssim = encode("ssim")
    assert ssim_ms_ssim > psnr_ms_ssim + 0.002
    assert ssim_bytes < 1.03 * psnr_bytes


def test_at_one_quality_a_searched_file_has_level_1s_size_and_a_better_image(taef2_spec, kodak_dir):
    """--quality sets the size at every effort (as cwebp -m and cjxl -e keep the quality setting's
    meaning): the search spends level 1's bytes on a better image, never more bytes."""
    from PIL import Image

    import sdcodec
    from sdcodec.benchmarks.metrics import psnr

    image = Image.open(kodak_dir / "kodim23.png").convert("RGB").crop((256, 128, 352, 224))
    reference = np.asarray(image)
    for quality in (5, 40):
        files = {
            e: sdcodec.encode_image(image, model=taef2_spec, device="cpu", quality=quality, effort=e) for e in (1, 2)
        }
        decoded = {
            e: np.asarray(sdcodec.decode_image(data, model=taef2_spec, device="cpu")) for e, data in files.items()
        }
        assert 0.9 * len(files[1]) <= len(files[2]) <= len(files[1])
        assert psnr(reference, decoded[2]) > psnr(reference, decoded[1]) + 0.2


def test_unknown_or_unavailable_tunes_are_one_line_errors(taef2_spec, monkeypatch):
    import sys

    from PIL import Image

    import sdcodec
    from sdcodec.codec.rate_distortion import distortion

    image = Image.new("RGB", (16, 16), (90, 120, 30))
    with pytest.raises(sdcodec.SdcodecError, match="unknown tune 'vmaf'"):
        sdcodec.encode_image(image, model=taef2_spec, effort=2, tune="vmaf")
    monkeypatch.setitem(sys.modules, "lpips", None)  # as on a machine without the package
    monkeypatch.setattr(distortion, "_LPIPS", {})
    with pytest.raises(sdcodec.SdcodecError, match="--tune lpips needs the lpips package") as caught:
        sdcodec.encode_image(image, model=taef2_spec, effort=2, tune="lpips")
    assert "\n" not in str(caught.value)


def test_mixed_targets_start_at_one_and_fall_with_the_error():
    from sdcodec.codec.rate_distortion.distortion import make_distortion

    generator = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 48, 48, generator=generator)
    start = (target + 0.2 * torch.randn(1, 3, 48, 48, generator=generator)).clamp(0, 1)
    measure = make_distortion("ssim", start, target)
    assert float(measure(start, target)) == pytest.approx(1.0)
    assert float(measure((start + target) / 2, target)) < 0.7
    assert float(measure(target, target)) == pytest.approx(0.0, abs=1e-6)


class HalfConvDecoder(ConvDecoder):
    """The same decoder computing in fp16 (as decoders do on GPUs), its output cast back to fp32."""

    def decode_with_grad(self, latent):
        pixels = torch.nn.functional.conv_transpose2d(latent.half(), self.weight.half(), stride=8)
        return torch.sigmoid(pixels.float())


@pytest.fixture(scope="module")
def large_half_problem():
    """A 512x512-pixel problem: the gradient of a mean over 786,432 values underflows fp16 unscaled."""
    return make_problem(HalfConvDecoder(), seed=2, side=64, encoder_noise=0.1)


def test_an_fp16_decoder_still_refines_every_value(large_half_problem, monkeypatch):
    decoder, target, latent, steps, bits = large_half_problem
    refined = refine_latent(decoder, target, latent, steps, bits, Refinement(6, 0.05))
    assert (refined == latent).float().mean() < 0.001  # (nearly) every value got a gradient
    assert quantized_error(decoder, target, refined, steps) < quantized_error(decoder, target, latent, steps)
    monkeypatch.setattr(latent_refinement, "_loss_scale", lambda *_: 1.0)  # unscaled, fp16 flushes gradients
    stuck = refine_latent(decoder, target, latent, steps, bits, Refinement(6, 0.05))
    assert (stuck == latent).float().mean() > 0.05


def test_loss_scaling_leaves_fp32_results_bit_identical(problem, monkeypatch):
    decoder, target, latent, steps, bits = problem
    scaled = refine_latent(decoder, target, latent, steps, bits, Refinement(6, 0.05))
    monkeypatch.setattr(latent_refinement, "_loss_scale", lambda *_: 1.0)
    torch.testing.assert_close(
        scaled, refine_latent(decoder, target, latent, steps, bits, Refinement(6, 0.05)), rtol=0, atol=0
    )
