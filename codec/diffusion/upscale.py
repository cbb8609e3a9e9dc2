"""Upscaling: latent-diffusion super-resolution with diffusers' upscalers, or a .sdz decoded larger.

With a model, diffusers does the work: ``StableDiffusionUpscalePipeline`` (x4, e.g.
stabilityai/stable-diffusion-x4-upscaler: the low-resolution image conditions a U-Net whose
latent, decoded by its own 4x VAE, is the big image) or ``StableDiffusionLatentUpscalePipeline``
(x2, e.g. stabilityai/sd-x2-latent-upscaler: it works on SD latents, so a .sdz's latent goes in
as is, without a decode and re-encode). The model's class fixes the scale.

Without a model, a .sdz is decoded by its own autoencoder and then resized with Lanczos
(Pillow): a plain resize, no new detail; the notice says so.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from sdcodec.codec.diffusion.generate import Progress, random_seed

SCALE_OF_PIPELINE = {"StableDiffusionUpscalePipeline": 4, "StableDiffusionLatentUpscalePipeline": 2}
DEFAULT_STEPS = 20
DEFAULT_NOISE_LEVEL = 20  # x4 only: noise added to the low-resolution input (diffusers' default)


def default_guidance(scale: int) -> float:
    """x4: diffusers' default 9.0; x2: 0 (no classifier-free guidance), as the model card runs it."""
    return 9.0 if scale == 4 else 0.0


def load_upscaler(spec: str, *, device: str = "auto"):
    """Load (once per process) a diffusers upscaler pipeline; ``ModelLoadError`` (one line) when it
    cannot, or when ``spec`` is another kind of pipeline."""
    from sdcodec.codec import model_cache
    from sdcodec.codec.autoencoders.base import compute_dtype, resolve_device

    torch_device = resolve_device(device)
    return model_cache.cached(
        "upscaler", spec, str(torch_device), lambda: _load(spec, torch_device, compute_dtype(torch_device))
    )


def scale_of(pipe) -> int:
    return SCALE_OF_PIPELINE[type(pipe).__name__]


def upscale(
    pipe,
    prompt: str = "",
    *,
    image: Image.Image | None = None,
    latent: torch.Tensor | None = None,
    negative: str = "",
    steps: int = DEFAULT_STEPS,
    guidance: float | None = None,
    noise_level: int = DEFAULT_NOISE_LEVEL,
    seed: int | None = None,
    progress: Progress | None = None,
) -> Image.Image:
    """The image (RGB), or for the x2 model also a latent ((C, h, w), SD's scaled units), upscaled.

    The image's sides are rounded down to multiples of 8 first (x2: of the VAE's 8x grid);
    ``ValueError`` for settings the model cannot use.
    """
    scale = scale_of(pipe)
    if (image is None) == (latent is None):
        raise ValueError("give an image or a latent to upscale")
    if latent is not None and scale != 2:
        raise ValueError("only the x2 latent upscaler takes a latent; decode it first for the x4 model")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    guidance = default_guidance(scale) if guidance is None else guidance
    seed = random_seed() if seed is None else seed
    device, dtype = pipe.unet.device, pipe.unet.dtype
    if latent is not None:
        start = latent[None].to(device, dtype)
    else:
        image = image.convert("RGB")
        if image.width < 8 or image.height < 8:
            raise ValueError(f"a {image.width}x{image.height} image is too small to upscale")
        start = image.crop((0, 0, image.width // 8 * 8, image.height // 8 * 8))
    options = {"noise_level": noise_level} if scale == 4 else {}

    def on_step(step, timestep, latents):
        if progress is not None:
            progress(step + 1, steps)

    with torch.inference_mode():
        result = pipe(
            prompt=prompt,
            negative_prompt=negative or None,
            image=start,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator("cpu").manual_seed(seed),
            callback=on_step,
            **options,
        )
    return result.images[0]


def decode_larger(path: str | Path, scale: int, *, decoder: str | None = None, device: str = "auto", notice=None):
    """A .sdz decoded by its autoencoder (or ``decoder``) and then resized ``scale`` times with Lanczos."""
    from sdcodec.codec.image_decoding import decode_image

    decoded = decode_image(path, model=decoder, restore_steps=0, device=device).convert("RGB")
    if notice is not None:
        notice(
            f"no upscaler model: decoded at {decoded.width}x{decoded.height}, then resized x{scale} with Lanczos "
            "(no new detail; give --model for latent-diffusion upscaling)"
        )
    return decoded.resize((decoded.width * scale, decoded.height * scale), Image.LANCZOS)


def _load(spec: str, device: torch.device, dtype: torch.dtype):
    import diffusers

    from sdcodec.codec.diffusion.sd_pipeline import quiet_libraries
    from sdcodec.codec.errors import ModelLoadError
    from sdcodec.codec.hub import from_pretrained

    with quiet_libraries():
        pipe = from_pretrained(diffusers.DiffusionPipeline, spec, torch_dtype=dtype)
    if type(pipe).__name__ not in SCALE_OF_PIPELINE:
        raise ModelLoadError(
            f"{spec} is a {type(pipe).__name__}, not an upscaler (StableDiffusionUpscalePipeline for x4, "
            "StableDiffusionLatentUpscalePipeline for x2)"
        )
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
