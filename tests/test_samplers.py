"""A1111 sampler names, Karras sigma schedules, and the infotext fields they write."""

from __future__ import annotations

import numpy as np
import pytest
from diffusers import DDIMScheduler

from sdcodec.codec.diffusion.generate import generate
from sdcodec.codec.diffusion.parameters import parse_parameters
from sdcodec.codec.diffusion.samplers import SCHEDULERS, make_scheduler, resolve_sampler
from sdcodec.codec.diffusion.sd_pipeline import load_sd_components


def sd_scheduler_config():
    """Stable Diffusion 1.x's training schedule, as many checkpoints ship it: 'leading' timestep
    spacing written out (which, kept, would start Euler's Karras schedule at sigma 11 instead of 14.6)."""
    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        clip_sample=False,
        timestep_spacing="leading",
    ).config


def a1111_karras_sigmas(config, steps: int, rho: float = 7.0) -> np.ndarray:
    """A1111's Karras schedule (k-diffusion's get_sigmas_karras between the model's smallest and
    largest sigma, then 0), written out from its definition."""
    betas = np.linspace(config.beta_start**0.5, config.beta_end**0.5, config.num_train_timesteps) ** 2
    alphas_cumprod = np.cumprod(1 - betas)
    model_sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
    low, high = model_sigmas[0] ** (1 / rho), model_sigmas[-1] ** (1 / rho)
    ramp = np.linspace(0, 1, steps)
    return np.append((high + ramp * (low - high)) ** rho, 0.0)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("DPM++ 2M Karras", ("DPM++ 2M", "DPMSolverMultistepScheduler", True)),
        ("dpm++ 2m  karras", ("DPM++ 2M", "DPMSolverMultistepScheduler", True)),
        ("DPM++ 2M", ("DPM++ 2M", "DPMSolverMultistepScheduler", False)),
        ("DPM++ 2M SDE Karras", ("DPM++ 2M SDE", "DPMSolverMultistepScheduler", True)),
        ("Euler a", ("Euler a", "EulerAncestralDiscreteScheduler", False)),
        ("Euler Karras", ("Euler", "EulerDiscreteScheduler", True)),
        ("LMS Karras", ("LMS", "LMSDiscreteScheduler", True)),
        ("PLMS", ("PLMS", "PNDMScheduler", False)),
        ("euler-a", ("Euler a", "EulerAncestralDiscreteScheduler", False)),
        ("dpm++", ("DPM++ 2M", "DPMSolverMultistepScheduler", False)),
    ],
)
def test_names_resolve_as_a1111_names_them(name, expected):
    sampler = resolve_sampler(name)
    assert (sampler.name, sampler.scheduler_class, sampler.karras) == expected


@pytest.mark.parametrize(
    "name, message",
    [("DPM++ 3M", "unknown sampler"), ("Euler a Karras", "no Karras"), ("DDIM Karras", "no Karras"), ("", "unknown")],
)
def test_unknown_names_and_unsupported_karras_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        resolve_sampler(name)


@pytest.mark.parametrize("name", ["DPM++ 2M Karras", "Euler Karras", "LMS Karras", "DPM++ 2M SDE Karras"])
def test_karras_schedulers_use_a1111s_sigmas(name):
    scheduler = make_scheduler(resolve_sampler(name), sd_scheduler_config())
    assert scheduler.config.use_karras_sigmas
    scheduler.set_timesteps(20)
    expected = a1111_karras_sigmas(scheduler.config, 20)
    np.testing.assert_allclose(scheduler.sigmas.numpy(), expected, rtol=2e-5, atol=1e-6)


def test_without_karras_the_schedule_is_the_samplers_own():
    plain = make_scheduler(resolve_sampler("DPM++ 2M"), sd_scheduler_config())
    assert not plain.config.use_karras_sigmas
    assert plain.config.algorithm_type == "dpmsolver++" and plain.config.solver_order == 2
    plain.set_timesteps(20)
    assert not np.allclose(plain.sigmas.numpy(), a1111_karras_sigmas(plain.config, 20), rtol=1e-2)


def test_short_scheduler_names_are_kept():
    assert sorted(SCHEDULERS) == ["ddim", "dpm++", "euler", "euler-a", "pndm"]
    assert SCHEDULERS["euler-a"][2] == "Euler a"


@pytest.fixture(scope="module")
def components(tiny_pipeline_dir):
    return load_sd_components(str(tiny_pipeline_dir), device="cpu")


def test_a_karras_sampler_generates_and_says_so_in_the_infotext(components):
    (karras,) = generate(components, "a cat", seed=1, steps=3, width=64, height=64, scheduler="DPM++ 2M Karras")
    (plain,) = generate(components, "a cat", seed=1, steps=3, width=64, height=64, scheduler="DPM++ 2M")
    assert "Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5" in karras.parameters
    settings = parse_parameters(karras.parameters)
    assert (settings["Sampler"], settings["Schedule type"]) == ("DPM++ 2M", "Karras")
    assert "Schedule type" not in parse_parameters(plain.parameters)
    assert not np.array_equal(np.asarray(karras.image), np.asarray(plain.image))
