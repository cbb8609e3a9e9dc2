"""Inpainting: repaint the white part of a mask, keep the rest, on diffusers' inpaint pipeline.

One diffusers class, ``StableDiffusionInpaintPipeline``, covers both kinds of checkpoint: an
inpainting one (a 9-channel U-Net that also sees the mask and the masked image) and an ordinary
one (4 channels), for which it blends the latents at every step: after each denoising step the
unmasked area is replaced by the input's latent noised to the next step's level, so only the
masked area is drawn. Around the pipeline this module adds what A1111 users expect:

- ``mask_blur``: the mask is blurred (Gaussian, radius in pixels) and the result pasted over the
  original through it, so pixels outside the blurred mask are exactly the input's and the seam is
  soft (the VAE round trip would otherwise change the whole picture slightly);
- ``only_masked``: for large images, only the mask's bounding box plus ``padding`` pixels is
  inpainted (at its own resolution) and pasted back; the cost follows the box, not the image;
- a .sdz start: its latent is used as the initial latent (no VAE encode) with an ordinary
  checkpoint; an inpainting checkpoint needs the pixels, so the latent is decoded first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter

from sdcodec.codec.diffusion.conditioning import encode_conditioning
from sdcodec.codec.diffusion.generate import (
    GeneratedImage,
    Progress,
    build_pipeline,
    check_options,
    parameters_for,
    random_seed,
    run_pipeline,
    step_callback,
)
from sdcodec.codec.diffusion.sd_pipeline import SDComponents

DEFAULT_MASK_BLUR = 4
DEFAULT_PADDING = 32


@dataclass
class Canvas:
    """What inpainting starts from: pixels, and for a .sdz also its latent (scaled units, padded size)."""

    image: Image.Image  # RGB; the picture the result is pasted into
    latent: torch.Tensor | None = None  # (C, ceil(h/8), ceil(w/8)) when the start is a .sdz


def read_canvas(path, components: SDComponents) -> Canvas:
    """An image file, or a .sdz file: its latent, and its pixels decoded by the pipeline's VAE."""
    from sdcodec.codec.diffusion.init_source import read_init
    from sdcodec.codec.errors import LatentSpaceMismatch

    source = read_init(path)
    if source.latent is None:
        return Canvas(image=source.image)
    if source.latent_space != components.latent_space:
        raise LatentSpaceMismatch(
            f"{path} is in the {source.latent_space} latent space but {components.spec} works in {components.latent_space}"
        )
    latent = torch.from_numpy(source.latent)
    return Canvas(image=decode_latent(components, latent).crop((0, 0, *source.size)), latent=latent)


def read_mask(path) -> Image.Image:
    """A mask file as 8-bit grey (white: repaint); colour masks count by their luminance."""
    from sdcodec.codec.images import image_io

    return Image.fromarray(image_io.load_image(path).rgb, "RGB").convert("L")


def is_inpainting_model(components: SDComponents) -> bool:
    """An inpainting checkpoint's U-Net takes 9 channels: latent, mask, masked-image latent."""
    return components.unet.config.in_channels == 9


def inpaint(
    components: SDComponents,
    prompt: str,
    canvas: Canvas,
    mask: Image.Image,
    *,
    negative: str = "",
    seed: int | None = None,
    steps: int = 25,
    guidance: float = 7.5,
    scheduler: str = "ddim",
    strength: float = 1.0,
    mask_blur: int = DEFAULT_MASK_BLUR,
    only_masked: bool = False,
    padding: int = DEFAULT_PADDING,
    progress: Progress | None = None,
) -> GeneratedImage:
    """Repaint where ``mask`` is white (grey: partly) and return the whole picture.

    ``mask`` must have the canvas's size. ``strength`` in (0, 1]: how far the masked area moves
    from the canvas (1: drawn from pure noise). Raises ``ValueError`` (one line) for bad input.
    """
    width, height = canvas.image.size
    fields = dict(prompt=prompt, negative=negative, steps=steps, guidance=guidance, strength=strength)
    check_options(width=_ceil8(width), height=_ceil8(height), scheduler=scheduler, seed=seed, **fields)
    mask = check_mask(mask, canvas.image.size)
    if mask_blur < 0 or padding < 0:
        raise ValueError("mask blur and padding must be 0 or more pixels")
    seed = random_seed() if seed is None else seed
    original = _padded_original(components, canvas)
    box, work_mask = _work_area(mask, mask_blur, original.size, padding if only_masked else None)
    inputs = _pipeline_start(components, canvas, original, box)
    conditioning = encode_conditioning(components, prompt, negative, steps)
    pipe = build_pipeline(components, scheduler, task="inpaint")
    callback = step_callback(conditioning, progress, 0, 1)
    size = {"width": box[2] - box[0], "height": box[3] - box[1], "strength": strength}
    result = run_pipeline(pipe, conditioning, steps, guidance, seed, callback, mask_image=work_mask, **size, **inputs)
    repainted = Image.composite(result.images[0], original.crop(box), work_mask)
    picture = original.copy()
    picture.paste(repainted, box[:2])
    parameters = parameters_for(components, scheduler, seed=seed, width=width, height=height, **fields)()
    extra = f"Mask blur: {mask_blur}" + (
        f", Inpaint area: Only masked, Masked area padding: {padding}" if only_masked else ""
    )
    image = picture.crop((0, 0, width, height))
    return GeneratedImage(seed=seed, parameters=with_fields(parameters, extra), width=width, height=height, image=image)


def _work_area(mask: Image.Image, mask_blur: int, padded_size, padding: int | None):
    """The box that is inpainted (the whole padded picture, or with ``padding`` the mask's box) and
    the blurred mask cropped to it."""
    soft_mask = mask.filter(ImageFilter.GaussianBlur(mask_blur)) if mask_blur else mask
    padded_mask = Image.new("L", padded_size, 0)
    padded_mask.paste(soft_mask, (0, 0))
    box = mask_box(padded_mask, padding) if padding is not None else (0, 0, *padded_size)
    return box, padded_mask.crop(box)


def _pipeline_start(components: SDComponents, canvas: Canvas, original: Image.Image, box) -> dict:
    """The pipeline's start inside ``box``: a .sdz's latent for an ordinary checkpoint, else the pixels."""
    latent = canvas.latent
    if latent is not None and not is_inpainting_model(components):
        start = latent[:, box[1] // 8 : box[3] // 8, box[0] // 8 : box[2] // 8][None]
        inputs = {"image": start.to(components.device, components.dtype)}
        inputs["masked_image_latents"] = inputs["image"]  # unused by a 4-channel U-Net, but skips a pixel-space product
        return inputs
    return {"image": original.crop(box)}


def with_fields(parameters: str, fields: str) -> str:
    """A1111 parameters text with ``fields`` ("Name: value, ...") added to its settings line, before
    ``Version`` when there is one (A1111 keeps it last)."""
    head, marker, version = parameters.rpartition(", Version: ")
    return f"{head}, {fields}{marker}{version}" if marker else f"{parameters}, {fields}"


def check_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The mask as 8-bit grey of the canvas's size; ``ValueError`` when it does not fit or is empty."""
    if mask.size != size:
        raise ValueError(f"the mask is {mask.width}x{mask.height} but the image is {size[0]}x{size[1]}")
    mask = mask.convert("L")
    if mask.getextrema()[1] == 0:
        raise ValueError("the mask has no white pixel: nothing to repaint")
    return mask


def mask_box(mask: Image.Image, padding: int) -> tuple[int, int, int, int]:
    """The mask's bounding box grown by ``padding`` and out to multiples of 8, within the image."""
    left, top, right, bottom = mask.getbbox()
    left, top = max(0, left - padding) // 8 * 8, max(0, top - padding) // 8 * 8
    right = min(mask.width, _ceil8(right + padding))
    bottom = min(mask.height, _ceil8(bottom + padding))
    return left, top, right, bottom


def decode_latent(components: SDComponents, latent: torch.Tensor) -> Image.Image:
    """A latent (C, h, w, scaled units) through the pipeline's VAE: an 8w x 8h RGB image."""
    vae = components.vae
    with torch.inference_mode():
        pixels = vae.decode(latent[None].to(components.device, vae.dtype) / vae.config.scaling_factor).sample
    array = ((pixels[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def _padded_original(components: SDComponents, canvas: Canvas) -> Image.Image:
    """The canvas padded by reflection to multiples of 8 (the strip is cropped off at the end)."""
    width, height = canvas.image.size
    array = np.asarray(canvas.image.convert("RGB"))
    padded = np.pad(array, ((0, _ceil8(height) - height), (0, _ceil8(width) - width), (0, 0)), mode="symmetric")
    return Image.fromarray(padded, "RGB")


def _ceil8(size: int) -> int:
    return -(-size // 8) * 8
