"""Decode-time restoration: a few conditioned U-Net denoising steps on the dequantized latent.

Quantization leaves an error of variance about step^2 / 12 in the U-Net's (scaled) latent units.
Read as diffusion noise, the dequantized latent ``x`` is a noisy sample at the timestep ``t`` whose
noise-to-signal ratio (1 - alpha_bar_t) / alpha_bar_t matches that variance: ``sqrt(alpha_bar_t) * x``
is what the U-Net expects at ``t``. A few deterministic DDIM steps from ``t`` to 0 then replace the
quantization error by what the model, conditioned on the file's caption, considers likely detail.
Finally every value is projected back into its quantization bin, so the restored latent never
contradicts the transmitted symbols (Bühlmann 2022 used the empty prompt and two U-Net evaluations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from sdcodec.codec.diffusion.parameters import caption_prompt
from sdcodec.codec.diffusion.prompt_weighting import PromptSyntaxError, literal_prompt
from sdcodec.codec.diffusion.sd_pipeline import SDComponents, encode_prompt, load_sd_components
from sdcodec.codec.errors import ModelLoadError

if TYPE_CHECKING:  # diffusers is imported where a schedule is built: encoding needs only the hint below
    from diffusers import DDIMScheduler

# Quantization noise std (step / sqrt(12)) below which the encoder does not recommend restoration
# (a heuristic, not a measurement): 0.07 matches SD 1.x timestep ~5, noise that is hardly visible
# after the VAE decoder, while each U-Net call costs seconds on a CPU.
FINE_NOISE_STD = 0.07
# U-Net evaluations the encoder recommends for coarser steps (Bühlmann's choice).
COARSE_STEPS = 2
# The projection keeps this fraction of a step away from the bin edges, so re-quantizing the
# restored latent gives the transmitted symbol under any rounding rule (half-even or half-up).
BIN_MARGIN = 1e-3


def restoration_timestep(alphas_cumprod: torch.Tensor, quant_step: float | torch.Tensor) -> int:
    """The timestep t whose noise-to-signal ratio (1 - a_t) / a_t is closest to step^2 / 12.

    With per-channel steps the noise variance is their mean of step^2 / 12. The ratio grows
    with t, so the choice is monotone (non-decreasing) in the step.
    """
    alphas = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
    noise_to_signal = (1 - alphas) / alphas
    target = float(torch.as_tensor(quant_step, dtype=torch.float64).pow(2).mean()) / 12
    return int(torch.argmin((noise_to_signal - target).abs()))


def recommended_restore_steps(quant_step: float) -> int:
    """The encoder's hint for the header: 0 for fine steps, ``COARSE_STEPS`` for coarse ones.

    Rule: if the quantization noise std ``step / sqrt(12)`` is below ``FINE_NOISE_STD`` (0.07,
    i.e. step < ~0.24 in U-Net units, start timestep ~5 on SD 1.x) the hint is 0: too little
    noise to remove for seconds of U-Net time per step; otherwise 2 U-Net evaluations from
    the matching timestep.
    """
    noise_std = float(quant_step) / 12**0.5
    return 0 if noise_std < FINE_NOISE_STD else COARSE_STEPS


def ddim_timesteps(start: int, num_steps: int, num_train_timesteps: int) -> tuple[int, list[int]]:
    """``(num_inference_steps, timesteps)`` for a DDIMScheduler to walk from ``start`` to clean.

    ``DDIMScheduler.step`` goes from ``t`` to ``t - num_train_timesteps // num_inference_steps``
    (to the clean latent when that is negative), so the stride is fixed by ``num_inference_steps``.
    We take the smallest such stride that reaches past 0 within ``num_steps`` steps, and start
    exactly at ``start``. Fewer steps come back when no stride fits ``num_steps`` equal jumps
    (a tiny ``start`` below num_steps * (num_steps - 1), or the schedule's last few timesteps).
    """
    num_steps = max(1, min(num_steps, start + 1))
    for num_inference_steps in range(num_train_timesteps, 0, -1):
        stride = num_train_timesteps // num_inference_steps
        if stride * num_steps > start:
            break
    timesteps = [start - i * stride for i in range(num_steps) if start - i * stride >= 0]
    return num_inference_steps, timesteps


def restore_latent(
    latent: torch.Tensor,
    *,
    symbols: torch.Tensor,
    quant_step: float | torch.Tensor,
    components: SDComponents,
    caption: str = "",
    num_steps: int = 2,
    guidance: float = 1.0,
    consistency: bool = True,
    seed: int = 0,
    eta: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Restore a dequantized latent (C,h,w or 1,C,h,w, U-Net units) with ``num_steps`` DDIM steps.

    ``symbols`` are the transmitted integers, ``quant_step`` their bin width (a number, or per-channel
    steps shaped (C, 1, 1)). The caption's
    prompt (``parameters.caption_prompt``: the caption, or the prompt of a parameters caption;
    empty when none) conditions the U-Net; ``guidance != 1`` adds classifier-free guidance with
    the empty prompt as the unconditional. ``consistency`` clamps the result into each symbol's
    bin. ``eta > 0`` adds DDIM's per-step noise, drawn from a generator seeded with ``seed`` (the
    decoder passes a seed derived from the file, so a file always decodes to the same pixels).
    ``progress(done, total)`` is called after each U-Net step. ``num_steps <= 0`` returns ``latent``.
    """
    if num_steps <= 0:
        return latent
    unet, device, dtype = components.unet, components.device, components.dtype
    batched = latent.dim() == 4
    x0 = (latent if batched else latent.unsqueeze(0)).to(device=device, dtype=torch.float32)

    scheduler, start = _ddim_schedule(components, quant_step, num_steps)
    text, use_guidance = _caption_embeddings(components, caption, guidance)
    generator = torch.Generator(device=device).manual_seed(seed)

    sample = scheduler.alphas_cumprod[start].to(device).sqrt() * x0
    with torch.no_grad():
        for i, t in enumerate(scheduler.timesteps):
            model_input = torch.cat([sample, sample]) if use_guidance else sample
            model_input = scheduler.scale_model_input(model_input, t).to(dtype)
            noise_pred = unet(model_input, t, encoder_hidden_states=text).sample.float()
            if use_guidance:
                noise_uncond, noise_cond = noise_pred.chunk(2)
                noise_pred = noise_uncond + guidance * (noise_cond - noise_uncond)
            sample = scheduler.step(noise_pred, t, sample, eta=eta, generator=generator).prev_sample
            if progress is not None:
                progress(i + 1, len(scheduler.timesteps))

    if consistency:
        sample = project_to_bins(sample, symbols.to(device).reshape(sample.shape), quant_step)
    restored = sample if batched else sample.squeeze(0)
    return restored.to(device=latent.device, dtype=latent.dtype)


def _ddim_schedule(components: SDComponents, quant_step, num_steps: int) -> tuple[DDIMScheduler, int]:
    """Deterministic DDIM from the pipeline's own noise schedule, from the timestep whose noise
    matches the quantization noise; returns the scheduler (timesteps set) and that start."""
    from diffusers import DDIMScheduler

    # Never clip latents to [-1, 1], and let the last step land on the clean latent (alpha_bar = 1).
    scheduler = DDIMScheduler.from_config(
        components.scheduler.config, clip_sample=False, thresholding=False, set_alpha_to_one=True
    )
    start = restoration_timestep(scheduler.alphas_cumprod, quant_step)
    num_inference_steps, timesteps = ddim_timesteps(start, num_steps, scheduler.config.num_train_timesteps)
    scheduler.set_timesteps(num_inference_steps, device=components.device)
    scheduler.timesteps = torch.tensor(timesteps, dtype=torch.long, device=components.device)
    return scheduler, start


def _caption_embeddings(components: SDComponents, caption: str, guidance: float) -> tuple[torch.Tensor, bool]:
    """The U-Net's text input for a file's caption ([uncond, cond] with guidance), and whether guidance is on."""
    prompt = caption_prompt(caption)  # a caption written by gen holds parameters: only the prompt conditions
    use_guidance = guidance != 1.0 and prompt != ""  # with no prompt, cond == uncond
    try:
        cond, uncond = encode_prompt(components, prompt, "")
    except PromptSyntaxError:  # a caption no A1111 prompt could be, e.g. '(a:1.2.3)': read it literally
        cond, uncond = encode_prompt(components, literal_prompt(prompt), "")
    text = torch.cat([uncond, cond]) if use_guidance else cond
    return text.to(device=components.device, dtype=components.dtype), use_guidance


def project_to_bins(latent: torch.Tensor, symbols: torch.Tensor, quant_step: float | torch.Tensor) -> torch.Tensor:
    """Clamp each value into its quantization bin [(q - 0.5) * step, (q + 0.5) * step] (minus a hair)."""
    q = symbols.to(latent.dtype)
    step = torch.as_tensor(quant_step, dtype=latent.dtype, device=latent.device)
    half = 0.5 - BIN_MARGIN
    return torch.clamp(latent, (q - half) * step, (q + half) * step)


def load_restorer(
    spec: str | None = None, *, device: str = "auto", latent_space: str | None = None
) -> tuple[SDComponents | None, str]:
    """Load the full pipeline for restoration: ``(components, "")``, or ``(None, reason)`` without a U-Net.

    ``None`` comes with a one-line reason the CLI prints as a notice before falling back to the
    plain VAE decode: a tiny autoencoder (``taesd:``/``taef2:``), a VAE-only directory, weights
    that cannot be loaded, or (with ``latent_space``, the file's) a U-Net of another latent space.
    ``spec=None`` means the default pipeline (``SDCODEC_MODEL`` or SD 1.5).
    """
    try:
        components = load_sd_components(spec, device=device)
    except ModelLoadError as error:
        return None, f"no restoration: {error}"
    if latent_space is not None and components.latent_space != latent_space:
        return None, (
            f"no restoration: {components.spec} works in {components.latent_space} latents, "
            f"the file is in {latent_space}"
        )
    return components, ""
