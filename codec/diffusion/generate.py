"""The generative core: txt2img and img2img on diffusers' Stable Diffusion pipelines.

Both pipelines are assembled from one set of loaded components (codec.sd_pipeline), so nothing
is loaded twice. Prompts go through codec.conditioning (prompt editing and alternation, step by
step) and codec.prompt_weighting (emphasis, long prompts) and reach the pipeline as ``prompt_embeds``. Each image has its own seed (``seed``, ``seed + 1``, ...) and
its own CPU generator, so image n of a batch is reproduced by generating once with its seed,
on any device. Every result carries its parameters in the A1111 ``parameters`` text layout,
which prompt readers (A1111, ComfyUI, civitai, exiftool) understand.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sdcodec.codec.diffusion.conditioning import check_prompt, encode_conditioning
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


@dataclass
class InitSource:
    """Where img2img starts: an image, or the latent of a .sdz (used as is, no VAE round trip)."""

    image: Image.Image | None = None
    latent: np.ndarray | None = None  # (C, h, w) float32, scaled units
    latent_space: str | None = None  # the .sdz's latent space
    size: tuple[int, int] | None = None  # (width, height) of the .sdz's image


def read_init(path: str | Path) -> InitSource:
    """Read an img2img input: a .sdz file (recognised by its magic bytes) or any image file."""
    from sdcodec import bitstream
    from sdcodec.codec.image_codec import read_file, read_latent
    from sdcodec.codec.images import image_io

    data = read_file(path)
    if data.startswith(bitstream.MAGIC):
        latent, header = read_latent(data)
        return InitSource(latent=latent, latent_space=header.latent_space, size=(header.width, header.height))
    loaded = image_io.load_image(path)
    return InitSource(image=Image.fromarray(loaded.rgb, "RGB"))


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
    if init_image is not None and init_latent is not None:
        raise ValueError("give init_image or init_latent, not both")
    img2img = init_image is not None or init_latent is not None
    init_image, init_latent, width, height, crop_size = _starting_point(
        components, init_image, init_latent, width, height, crop_size
    )
    out_width, out_height = crop_size or (width, height)
    if img2img and strength is None:
        strength = DEFAULT_STRENGTH
    check_options(
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        scheduler=scheduler,
        num_images=num_images,
        seed=seed,
        strength=strength if img2img else None,
        prompt=prompt,
        negative=negative,
    )
    if output_type not in ("pil", "latent"):
        raise ValueError(f"output_type must be 'pil' or 'latent', not {output_type!r}")
    if seed is None:
        seed = random_seed()
    sampler = resolve_sampler(scheduler)
    name, digest = model_name(components.spec), model_hash(components.spec)

    conditioning = encode_conditioning(components, prompt, negative, steps)
    cond, uncond = conditioning.at(0)
    pipe = build_pipeline(components, scheduler, task="img2img" if img2img else "txt2img")
    inputs: dict = {"width": width, "height": height}
    if init_latent is not None:
        inputs = {"image": init_latent.unsqueeze(0).to(components.device, components.dtype), "strength": strength}
    elif init_image is not None:
        inputs = {"image": init_image, "strength": strength}

    for index in range(num_images):
        image_seed = seed + index

        def on_step_end(pipeline, step, timestep, tensors, index=index):
            if progress is not None:
                per_image = pipeline.num_timesteps
                progress(index * per_image + step + 1, num_images * per_image)
            if not conditioning.changes:
                return {}
            # Prompt editing / alternation: the next step's texts. With guidance the pipeline
            # carries [uncond, cond] as one batch; without, cond alone.
            cond, uncond = conditioning.at(step + 1)
            return {"prompt_embeds": torch.cat([uncond, cond]) if pipeline.do_classifier_free_guidance else cond}

        with torch.inference_mode():
            result = pipe(
                prompt_embeds=cond,
                negative_prompt_embeds=uncond,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=torch.Generator("cpu").manual_seed(image_seed),
                output_type=output_type,
                callback_on_step_end=on_step_end,
                callback_on_step_end_tensor_inputs=["prompt_embeds"],
                **inputs,
            )
        parameters = format_parameters(
            prompt=prompt,
            negative=negative,
            steps=steps,
            sampler=sampler.name,
            schedule_type=sampler.schedule_type,
            guidance=guidance,
            seed=image_seed,
            width=out_width,
            height=out_height,
            model=name,
            model_hash=digest,
            strength=strength if img2img else None,
        )
        done = GeneratedImage(seed=image_seed, parameters=parameters, width=out_width, height=out_height)
        if output_type == "latent":
            done.latent = result.images[0].detach().to("cpu", torch.float32)
        else:
            done.image = result.images[0].crop((0, 0, out_width, out_height))
        yield done


def _starting_point(components, init_image, init_latent, width, height, crop_size):
    """The img2img start (image or latent) at its final size, and the generation size and crop.

    txt2img: 512 x 512 unless asked. An image keeps its size (reflection-padded to multiples of 8,
    cropped back after) unless ``width``/``height`` resize it; a latent fixes the size itself.
    """
    if init_latent is not None:
        init_latent = torch.as_tensor(init_latent).detach().to("cpu", torch.float32)
        channels = components.unet.config.in_channels
        if init_latent.ndim != 3 or init_latent.shape[0] != channels:
            raise ValueError(f"init_latent must have shape ({channels}, h, w), got {tuple(init_latent.shape)}")
        latent_size = (init_latent.shape[2] * 8, init_latent.shape[1] * 8)
        if (width or latent_size[0], height or latent_size[1]) != latent_size:
            raise ValueError(f"the initial latent is {latent_size[0]}x{latent_size[1]}; width/height cannot change it")
        width, height = latent_size
        if crop_size is not None and not (0 < crop_size[0] <= width and 0 < crop_size[1] <= height):
            raise ValueError(f"crop size {crop_size} does not fit the {width}x{height} latent")
    elif init_image is not None:
        init_image = init_image.convert("RGB")
        if width is None and height is None:
            crop_size = init_image.size
            init_image = _pad_to_multiple_of_8(init_image)
            width, height = init_image.size
        else:
            width = _nearest_multiple_of_8(init_image.width) if width is None else width
            height = _nearest_multiple_of_8(init_image.height) if height is None else height
            crop_size = None
            init_image = init_image.resize((width, height), Image.LANCZOS)
    else:
        width = 512 if width is None else width
        height = 512 if height is None else height
        crop_size = None
    return init_image, init_latent, width, height, crop_size


def _pad_to_multiple_of_8(image: Image.Image) -> Image.Image:
    from sdcodec.codec.images import image_io

    padded = image_io.pad_to_multiple(image_io.to_tensor(np.asarray(image)))
    return image_io.to_pil(padded)


def _nearest_multiple_of_8(size: int) -> int:
    return max(8, round(size / 8) * 8)


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
