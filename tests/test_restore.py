"""Decode-time restoration (codec.restore) with a tiny random SD pipeline, loaded like a real one."""

from __future__ import annotations

import copy
import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch
from diffusers import DDIMScheduler
from tiny_sd import make_tiny_vae

from sdcodec.codec.diffusion.restore import (
    BIN_MARGIN,
    FINE_NOISE_STD,
    ddim_timesteps,
    load_restorer,
    project_to_bins,
    recommended_restore_steps,
    restoration_timestep,
    restore_latent,
)

SD_ALPHAS = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear").alphas_cumprod
COARSE = 1.5  # quantization step in U-Net units: start timestep ~140 on SD's schedule


@pytest.fixture(scope="module")
def components(tiny_pipeline_dir):
    loaded, reason = load_restorer(str(tiny_pipeline_dir), device="cpu")
    assert loaded is not None, reason
    return loaded


def quantized(step: float, seed: int = 0, shape=(4, 8, 8)):
    """(dequantized latent, symbols): reconstruction points off-centre inside their bins, as a real decoder's."""
    generator = torch.Generator().manual_seed(seed)
    latent = torch.randn(shape, generator=generator)
    symbols = torch.round(latent / step)
    offset = (torch.rand(shape, generator=generator) - 0.5) * 0.6  # within +-0.3 step of the centre
    return (symbols + offset) * step, symbols


# --- timestep choice -------------------------------------------------------------------------------


def brute_force_timestep(alphas, step: float) -> int:
    target = step**2 / 12
    ratios = [(1 - float(a)) / float(a) for a in alphas]
    return min(range(len(ratios)), key=lambda t: abs(ratios[t] - target))


@pytest.mark.parametrize("t", [0, 1, 10, 76, 140, 500, 999])
def test_timestep_matches_formula_at_exact_points(t):
    a = float(SD_ALPHAS[t])
    step = math.sqrt(12 * (1 - a) / a)  # the step whose quantization noise is exactly t's noise level
    assert restoration_timestep(SD_ALPHAS, step) == t


def test_timestep_equals_brute_force_argmin_and_is_monotone():
    steps = [0.01 * 1.1**k for k in range(80)]  # 0.01 .. ~18
    chosen = [restoration_timestep(SD_ALPHAS, s) for s in steps]
    assert chosen == [brute_force_timestep(SD_ALPHAS, s) for s in steps]
    assert all(a <= b for a, b in zip(chosen, chosen[1:]))
    assert chosen[0] == 0 and chosen[-1] > 500  # spans the schedule


def test_timestep_follows_the_models_schedule():
    linear = DDIMScheduler(beta_schedule="linear").alphas_cumprod  # noisier early: smaller t for the same step
    assert restoration_timestep(linear, COARSE) < restoration_timestep(SD_ALPHAS, COARSE)
    assert restoration_timestep(linear, COARSE) == brute_force_timestep(linear, COARSE)


@pytest.mark.parametrize("num_steps", [1, 2, 3, 4, 6])
def test_ddim_schedule_starts_at_t_and_reaches_clean_latent(num_steps):
    for start in range(1000):
        num_inference_steps, timesteps = ddim_timesteps(start, num_steps, 1000)
        stride = 1000 // num_inference_steps  # DDIMScheduler.step's jump
        assert timesteps[0] == start
        assert timesteps == [start - i * stride for i in range(len(timesteps))]
        assert timesteps[-1] >= 0 and timesteps[-1] - stride < 0  # the last step lands on alpha_bar = 1
        if num_steps * (num_steps - 1) <= start < 990:  # room for num_steps equal strides
            assert len(timesteps) == num_steps
        else:  # a tiny t (or the schedule's very end) may take fewer steps, never more
            assert 1 <= len(timesteps) <= num_steps


def test_recommended_steps_rule():
    threshold = FINE_NOISE_STD * math.sqrt(12)
    assert recommended_restore_steps(0.05) == 0
    assert recommended_restore_steps(threshold * 0.99) == 0
    assert recommended_restore_steps(threshold * 1.01) == 2
    assert recommended_restore_steps(COARSE) == 2
    hints = [recommended_restore_steps(0.02 * k) for k in range(1, 200)]
    assert all(a <= b for a, b in zip(hints, hints[1:]))


# --- the restoration loop --------------------------------------------------------------------------


class OracleUNet(torch.nn.Module):
    """Predicts exactly the noise separating x_t from ``target``: a perfect denoiser for that latent.

    Records the timesteps it is called at, so the tests can see the loop's schedule.
    """

    def __init__(self, target: torch.Tensor, alphas_cumprod: torch.Tensor):
        super().__init__()
        self.target, self.alphas, self.calls = target.unsqueeze(0), alphas_cumprod, []
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device and dtype

    def forward(self, sample, timestep, encoder_hidden_states):
        a = self.alphas[int(timestep)]
        self.calls.append(int(timestep))
        target = self.target.expand_as(sample)
        return SimpleNamespace(sample=(sample - a.sqrt() * target) / (1 - a).sqrt())


def test_zero_noise_prediction_is_identity(components):
    """With a U-Net that predicts no noise, scaling by sqrt(alpha_bar) and the DDIM steps undo each other."""
    unet = copy.deepcopy(components.unet)
    torch.nn.init.zeros_(unet.conv_out.weight)
    torch.nn.init.zeros_(unet.conv_out.bias)
    silent = dataclasses.replace(components, unet=unet)
    latent, symbols = quantized(COARSE)
    restored = restore_latent(latent, symbols=symbols, quant_step=COARSE, components=silent, consistency=False)
    torch.testing.assert_close(restored, latent, rtol=0, atol=1e-5)


@pytest.mark.parametrize("num_steps", [1, 2, 4])
def test_perfect_denoiser_recovers_the_original_latent(components, num_steps):
    generator = torch.Generator().manual_seed(3)
    original = torch.randn(4, 8, 8, generator=generator)
    symbols = torch.round(original / COARSE)
    dequantized = symbols * COARSE  # bin centres: error up to half a step
    scheduler = DDIMScheduler.from_config(components.scheduler.config)
    oracle = OracleUNet(original, scheduler.alphas_cumprod)
    restored = restore_latent(
        dequantized,
        symbols=symbols,
        quant_step=COARSE,
        components=dataclasses.replace(components, unet=oracle),
        num_steps=num_steps,
    )
    assert oracle.calls[0] == restoration_timestep(scheduler.alphas_cumprod, COARSE)
    assert len(oracle.calls) == num_steps and oracle.calls == sorted(oracle.calls, reverse=True)
    assert (dequantized - original).abs().max() > 0.3 * COARSE
    torch.testing.assert_close(restored, original, rtol=0, atol=1e-4)


def test_consistency_requantizes_to_the_transmitted_symbols(components):
    latent, symbols = quantized(COARSE, seed=1)
    free = restore_latent(latent, symbols=symbols, quant_step=COARSE, components=components, consistency=False)
    kept = restore_latent(latent, symbols=symbols, quant_step=COARSE, components=components)
    assert not torch.equal(torch.round(free / COARSE), symbols)  # the random U-Net does push values out
    assert not torch.equal(kept, latent)  # and restoration changed the latent
    assert torch.equal(torch.round(kept / COARSE), symbols)
    assert torch.equal(torch.floor(kept / COARSE + 0.5), symbols)  # round-half-up quantizers agree too
    assert torch.equal(kept, project_to_bins(free, symbols, COARSE))


def test_projection_keeps_in_bin_values_and_clamps_the_rest():
    symbols = torch.tensor([0.0, 1.0, -2.0, 3.0])
    values = torch.tensor([0.2, 0.4, -2.6, 3.9])
    projected = project_to_bins(values, symbols, 1.0)
    half = 0.5 - BIN_MARGIN
    torch.testing.assert_close(projected, torch.tensor([0.2, 1 - half, -2 - half, 3 + half]))


def test_deterministic_bit_for_bit(components):
    latent, symbols = quantized(COARSE, seed=2)
    run = lambda **kw: restore_latent(
        latent, symbols=symbols, quant_step=COARSE, components=components, caption="a red barn", **kw
    )
    assert torch.equal(run(), run())
    assert torch.equal(run(guidance=3.0), run(guidance=3.0))
    assert torch.equal(run(num_steps=3, eta=1.0, seed=7), run(num_steps=3, eta=1.0, seed=7))
    assert not torch.equal(run(num_steps=3, eta=1.0, seed=7), run(num_steps=3, eta=1.0, seed=8))
    assert torch.equal(run(seed=7), run(seed=8))  # eta = 0: the seed has nothing to draw


def test_zero_steps_returns_the_input_unchanged(components):
    latent, symbols = quantized(COARSE)
    assert restore_latent(latent, symbols=symbols, quant_step=COARSE, components=components, num_steps=0) is latent


def test_caption_and_guidance_change_the_result(components):
    latent, symbols = quantized(COARSE, seed=4)
    run = lambda caption, guidance=1.0: restore_latent(
        latent,
        symbols=symbols,
        quant_step=COARSE,
        components=components,
        caption=caption,
        guidance=guidance,
        consistency=False,
    )
    plain = run("")
    assert not torch.equal(run("a red barn"), plain)
    assert not torch.equal(run("a red barn"), run("a blue sea"))
    assert not torch.equal(run("a red barn", guidance=3.0), run("a red barn"))
    assert torch.equal(run("", guidance=3.0), plain)  # no caption: conditional == unconditional


def test_batched_input_and_progress(components):
    latent, symbols = quantized(COARSE, seed=5)
    seen = []
    batched = restore_latent(
        latent.unsqueeze(0),
        symbols=symbols,
        quant_step=COARSE,
        components=components,
        num_steps=3,
        progress=lambda done, total: seen.append((done, total)),
    )
    single = restore_latent(latent, symbols=symbols, quant_step=COARSE, components=components, num_steps=3)
    assert batched.shape == (1, 4, 8, 8) and torch.equal(batched.squeeze(0), single)
    assert seen == [(1, 3), (2, 3), (3, 3)]


# --- loading and fallback --------------------------------------------------------------------------


def test_full_pipeline_loads_with_a_unet(components):
    assert components.unet is not None and components.latent_space == "sd1"


def test_vae_only_directory_falls_back_with_a_reason(tmp_path):
    vae_dir = make_tiny_vae(tmp_path / "vae_only")
    restorer, reason = load_restorer(str(vae_dir), device="cpu")
    assert restorer is None
    assert "unet" in reason and "\n" not in reason


@pytest.mark.parametrize("spec", ["taef2:/nowhere", "taesd:/nowhere"])
def test_tiny_autoencoder_specs_fall_back(spec):
    restorer, reason = load_restorer(spec, device="cpu")
    assert restorer is None and spec in reason and "\n" not in reason


def test_missing_weights_fall_back(tmp_path):
    restorer, reason = load_restorer(str(tmp_path / "missing"), device="cpu")
    assert restorer is None and "missing" in reason


def test_other_latent_space_falls_back(components):
    restorer, reason = load_restorer(components.spec, device="cpu", latent_space="flux2")
    assert restorer is None and "flux2" in reason and "sd1" in reason
    restorer, reason = load_restorer(components.spec, device="cpu", latent_space="sd1")
    assert restorer is components and reason == ""
