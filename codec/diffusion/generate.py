"""The generative core: txt2img and img2img on diffusers' Stable Diffusion pipelines.

Both pipelines are assembled from one set of loaded components (codec.sd_pipeline), so nothing
is loaded twice. Prompts go through codec.conditioning (prompt editing and alternation, step by
step) and codec.prompt_weighting (emphasis, long prompts) and reach the pipeline as ``prompt_embeds``. Each image has its own seed (``seed``, ``seed + 1``, ...) and
its own CPU generator, so image n of a batch is reproduced by generating once with its seed,
on any device. Every result carries its parameters in the A1111 ``parameters`` text layout,
which prompt readers (A1111, ComfyUI, civitai, exiftool) understand.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from sdcodec.codec.diffusion.conditioning import check_prompt, encode_conditioning
from sdcodec.codec.diffusion.init_source import starting_point
from sdcodec.codec.diffusion.model_identity import model_hash, model_name
from sdcodec.codec.diffusion.parameters import format_parameters
from sdcodec.codec.diffusion.samplers import SCHEDULERS, make_scheduler, resolve_sampler  # noqa: F401 (SCHEDULERS re-exported)
from sdcodec.codec.diffusion.sd_pipeline import SDComponents, quiet_libraries

DEFAULT_STRENGTH = 0.75
MAX_SEED = 2**63 - 1

Progress = Callable[[int, int], None]  # (denoising steps done, total steps over all images)


@dataclass
class GeneratedImage:
    """One result: a PIL image, or the final latent when generated with ``output_type="latent"``."""

    seed: int
    parameters: str  # A1111 'parameters' text: prompt, negative prompt, settings line
    width: int  # the image's size (the latent may be padded up to multiples of 8)
    height: int
    image: Image.Image | None = None
    latent: torch.Tensor | None = None  # (C, h, w) float32 on CPU, in the U-Net's scaled units


def generate(components: SDComponents, prompt: str, **options) -> list[GeneratedImage]:
    """txt2img, or img2img when ``init_image`` or ``init_latent`` is given; see ``iter_generate``."""
    return list(iter_generate(components, prompt, **options))


def iter_generate(
    components: SDComponents,
    prompt: str,
    *,
    negative: str = "",
    seed: int | None = None,
    steps: int = 25,
    guidance: float = 7.5,
    width: int | None = None,
    height: int | None = None,
    scheduler: str = "ddim",
    num_images: int = 1,
    init_image: Image.Image | None = None,
    init_latent: torch.Tensor | np.ndarray | None = None,
    strength: float | None = None,
    crop_size: tuple[int, int] | None = None,
    output_type: str = "pil",
    progress: Progress | None = None,
) -> Iterator[GeneratedImage]:
    """Generate ``num_images`` images one after the other, yielding each as soon as it is done.

    txt2img: ``width`` x ``height`` (default 512 x 512). img2img starts from ``init_image`` or from
    ``init_latent`` ((C, h, w) in scaled units, e.g. a .sdz's), noised to ``strength`` (default
    0.75) of the schedule. An image keeps its exact size: it is padded by reflection to multiples
    of 8 and the result cropped back, unless ``width``/``height`` ask for a resize. A latent gives
    8h x 8w pixels, cropped to ``crop_size`` (width, height) when given (a .sdz's image size).
    ``seed=None`` picks a random seed (reported in each result). ``output_type``: "pil" or
    "latent" (latents stay padded; ``width``/``height`` of the result say the image size).
    Invalid options raise ``ValueError``.
    """
    img2img = init_image is not None or init_latent is not None
    init_image, init_latent, width, height, crop_size = starting_point(
        components, init_image, init_latent, width, height, crop_size
    )
    out_width, out_height = crop_size or (width, height)
    strength = (DEFAULT_STRENGTH if strength is None else strength) if img2img else None
    fields = dict(prompt=prompt, negative=negative, steps=steps, guidance=guidance, strength=strength)
    check_options(width=width, height=height, scheduler=scheduler, num_images=num_images, seed=seed, **fields)
    if output_type not in ("pil", "latent"):
        raise ValueError(f"output_type must be 'pil' or 'latent', not {output_type!r}")
    if seed is None:
        seed = random_seed()
    parameters = parameters_for(components, scheduler, width=out_width, height=out_height, **fields)
    conditioning = encode_conditioning(components, prompt, negative, steps)
    pipe = build_pipeline(components, scheduler, task="img2img" if img2img else "txt2img")
    inputs = _pipeline_inputs(components, init_image, init_latent, width, height, strength)
    for index in range(num_images):
        image_seed = seed + index
        callback = step_callback(conditioning, progress, index, num_images)
        result = run_pipeline(
            pipe, conditioning, steps, guidance, image_seed, callback, output_type=output_type, **inputs
        )
        done = GeneratedImage(image_seed, parameters(seed=image_seed), out_width, out_height)
        if output_type == "latent":
            done.latent = result.images[0].detach().to("cpu", torch.float32)
        else:
            done.image = result.images[0].crop((0, 0, out_width, out_height))
        yield done


def parameters_for(components: SDComponents, scheduler: str, **fields) -> Callable[..., str]:
    """A run's A1111 parameters text, with the sampler and model filled in from ``scheduler`` and
    ``components``; call it with the fields that differ per image (the seed)."""
    sampler = resolve_sampler(scheduler)
    model, digest = model_name(components.spec), model_hash(components.spec)
    named = dict(sampler=sampler.name, schedule_type=sampler.schedule_type, model=model, model_hash=digest)
    return functools.partial(format_parameters, **named, **fields)


def run_pipeline(pipe, conditioning, steps: int, guidance: float, seed: int, callback, **inputs):
    """One diffusers pipeline call from the conditioning's first-step texts, with a CPU generator
    seeded ``seed`` (the same image on any device) and ``callback`` at every step's end."""
    cond, uncond = conditioning.at(0)
    with torch.inference_mode():
        return pipe(
            prompt_embeds=cond,
            negative_prompt_embeds=uncond,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator("cpu").manual_seed(seed),
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["prompt_embeds"],
            **inputs,
        )


def _pipeline_inputs(components, init_image, init_latent, width, height, strength) -> dict:
    """What the pipeline starts from: a size (txt2img), or an image or latent and the strength (img2img)."""
    if init_latent is not None:
        return {"image": init_latent.unsqueeze(0).to(components.device, components.dtype), "strength": strength}
    if init_image is not None:
        return {"image": init_image, "strength": strength}
    return {"width": width, "height": height}


def step_callback(conditioning, progress: Progress | None, index: int, num_images: int):
    """The pipeline's step-end hook for image ``index``: progress over all images, and the next
    step's prompt embeddings when prompt editing or alternation changes them."""

    def on_step_end(pipeline, step, timestep, tensors):
        if progress is not None:
            per_image = pipeline.num_timesteps
            progress(index * per_image + step + 1, num_images * per_image)
        if not conditioning.changes:
            return {}
        # Prompt editing / alternation: the next step's texts. With guidance the pipeline
        # carries [uncond, cond] as one batch; without, cond alone.
        cond, uncond = conditioning.at(step + 1)
        return {"prompt_embeds": torch.cat([uncond, cond]) if pipeline.do_classifier_free_guidance else cond}

    return on_step_end


def check_options(
    *,
    steps: int,
    guidance: float,
    width: int,
    height: int,
    scheduler: str,
    num_images: int = 1,
    seed: int | None = None,
    strength: float | None = None,
    prompt: str = "",
    negative: str = "",
) -> None:
    """Raise ``ValueError`` (one line) for settings no pipeline run could use; the CLI maps it to exit 2."""
    resolve_sampler(scheduler)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if num_images < 1:
        raise ValueError(f"the number of images must be at least 1, got {num_images}")
    for name, size in (("width", width), ("height", height)):
        if size < 8 or size % 8:
            raise ValueError(f"{name} must be a positive multiple of 8, got {size}")
    if not np.isfinite(guidance) or guidance < 0:
        raise ValueError(f"guidance must be a finite number >= 0, got {guidance}")
    if seed is not None and not 0 <= seed <= MAX_SEED - num_images:
        raise ValueError(f"seed must be between 0 and {MAX_SEED - num_images}, got {seed}")
    if strength is not None:
        if not 0 < strength <= 1:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        if int(steps * strength) < 1:
            raise ValueError(f"strength {strength} x {steps} steps leaves no denoising step; raise either")
    for text in (prompt, negative):
        check_prompt(text, steps)


PIPELINE_CLASSES = {
    "txt2img": "StableDiffusionPipeline",
    "img2img": "StableDiffusionImg2ImgPipeline",
    "inpaint": "StableDiffusionInpaintPipeline",
}


def build_pipeline(components: SDComponents, scheduler: str, *, task: str = "txt2img"):
    """A diffusers SD pipeline for ``task`` (a key of ``PIPELINE_CLASSES``) over the already loaded
    components, with a fresh scheduler for ``scheduler`` (a --scheduler short name or an A1111
    sampler name, see codec.diffusion.samplers)."""
    import diffusers

    sampler = make_scheduler(resolve_sampler(scheduler), components.scheduler.config)
    with quiet_libraries():  # importing the pipelines makes transformers talk about image processors
        pipeline_class = getattr(diffusers, PIPELINE_CLASSES[task])
    pipe = pipeline_class(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        scheduler=sampler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def random_seed() -> int:
    """A fresh seed in A1111's range (0 .. 2**32 - 1), so front ends can reuse it."""
    return secrets.randbelow(2**32)
