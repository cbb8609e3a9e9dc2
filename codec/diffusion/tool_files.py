"""inpaint / outpaint / upscale from files to one image file: what those CLI commands run once their
options are parsed. Outputs are checked before any model loads, carry their parameters (A1111's
``parameters`` text) and, unless asked otherwise, the invisible watermark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sdcodec.codec.errors import SdcodecError
from sdcodec.codec.images.output_files import check_output, write_output

IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".webp")
Notice = Callable[[str], None]


@dataclass
class Diffusion:
    """The settings every diffusion tool shares (the CLI's --negative, --seed, --steps, ...)."""

    negative: str = ""
    seed: int | None = None
    steps: int = 25
    guidance: float = 7.5
    scheduler: str = "ddim"
    model: str | None = None
    device: str = "auto"
    extra: dict = field(default_factory=dict)  # tool-specific keywords (strength, mask_blur, ...)


def inpaint_file(
    image: Path,
    mask: Path,
    prompt: str,
    output: str,
    settings: Diffusion,
    *,
    force=False,
    watermark=True,
    notice: Notice = lambda message: None,
    progress=None,
) -> Path:
    """Repaint ``image`` (a picture or a .sdz) where ``mask`` is white; write the result to ``output``."""
    from sdcodec.codec.diffusion.inpaint import inpaint, is_inpainting_model, read_canvas, read_mask

    seed, path = _output(output, settings, force, image, mask)
    mask_image = read_mask(mask)
    components = _components(settings)
    canvas = read_canvas(image, components)
    kind = "an inpainting checkpoint" if is_inpainting_model(components) else "latent blending at every step"
    notice(f"inpainting {canvas.image.width}x{canvas.image.height} with {components.spec} ({kind}), seed {seed}")
    result = _run(inpaint, components, prompt, canvas, mask_image, settings=settings, seed=seed, progress=progress)
    return _write(result, path, force, watermark, notice)


def outpaint_file(
    image: Path,
    prompt: str,
    output: str,
    extend: tuple[int, int, int, int],
    settings: Diffusion,
    *,
    force=False,
    watermark=True,
    notice: Notice = lambda message: None,
    progress=None,
) -> Path:
    """Grow ``image`` by ``extend`` (left, right, top, bottom pixels), draw the new area, write it to ``output``."""
    from sdcodec.codec.diffusion.inpaint import read_canvas
    from sdcodec.codec.diffusion.outpaint import outpaint

    seed, path = _output(output, settings, force, image)
    components = _components(settings)
    canvas = read_canvas(image, components)
    notice(f"outpainting {canvas.image.width}x{canvas.image.height} by {extend} with {components.spec}, seed {seed}")
    result = _run(outpaint, components, prompt, canvas, extend, settings=settings, seed=seed, progress=progress)
    return _write(result, path, force, watermark, notice)


def upscale_file(
    image: Path,
    prompt: str,
    output: str,
    settings: Diffusion,
    *,
    scale: int,
    decoder: str | None = None,
    force=False,
    watermark=True,
    notice: Notice = lambda message: None,
    progress=None,
) -> Path:
    """Upscale ``image`` (a picture or a .sdz) ``scale`` times into ``output`` (see codec.diffusion.upscale)."""
    from sdcodec import bitstream
    from sdcodec.codec.diffusion.generate import GeneratedImage
    from sdcodec.codec.diffusion.upscale import decode_larger
    from sdcodec.codec.image_decoding import read_file

    seed, path = _output(output, settings, force, image)
    is_sdz = read_file(image).startswith(bitstream.MAGIC)
    if settings.model is None:
        if not is_sdz:
            raise SdcodecError("upscaling an image needs --model (a diffusers upscaler); only a .sdz can do without")
        picture = decode_larger(image, scale, decoder=decoder, device=settings.device, notice=notice)
        upscaler = "Lanczos"
    else:
        picture = _model_upscale(image, prompt, settings, scale, decoder, is_sdz, seed, notice, progress)
        upscaler = settings.model
    parameters = f"{prompt}\nPostprocess upscale by: {scale}, Postprocess upscaler: {upscaler}, Seed: {seed}"
    result = GeneratedImage(seed=seed, parameters=parameters, width=picture.width, height=picture.height, image=picture)
    return _write(result, path, force, watermark, notice)


def _model_upscale(image: Path, prompt: str, settings: Diffusion, scale, decoder, is_sdz, seed, notice, progress):
    """Upscale with a diffusers upscaler: a .sdz's latent as it is (x2, same latent space), else pixels."""
    import torch

    from sdcodec.codec.diffusion.init_source import read_init
    from sdcodec.codec.diffusion.upscale import load_upscaler, scale_of, upscale

    pipe = load_upscaler(settings.model, device=settings.device)
    if scale_of(pipe) != scale:
        raise SdcodecError(f"{settings.model} upscales x{scale_of(pipe)}, not x{scale}; pass --scale {scale_of(pipe)}")
    source = read_init(image) if is_sdz else None
    latent, start = None, None
    if source is not None and scale == 2 and source.latent_space == _latent_space(pipe):
        latent = torch.from_numpy(source.latent)  # SD latents go in as they are
        notice(f"upscaling the .sdz's latent x2 with {settings.model}, seed {seed}")
    else:
        start = _pixels(image, decoder, settings.device, is_sdz)
        notice(f"upscaling {start.width}x{start.height}{' (decoded)' if is_sdz else ''} x{scale} with {settings.model}")
    try:
        picture = upscale(
            pipe,
            prompt,
            image=start,
            latent=latent,
            negative=settings.negative,
            steps=settings.steps,
            guidance=settings.guidance,
            seed=seed,
            progress=progress,
            **settings.extra,
        )
    except ValueError as exc:
        raise SdcodecError(str(exc)) from None
    if source is not None and latent is not None:
        picture = picture.crop((0, 0, source.size[0] * 2, source.size[1] * 2))
    return picture


def _pixels(image: Path, decoder: str | None, device: str, is_sdz: bool):
    """An image file's RGB pixels, or a .sdz decoded (without restoration) by ``decoder``."""
    from PIL import Image

    from sdcodec.codec.image_decoding import decode_image
    from sdcodec.codec.images import image_io

    if is_sdz:
        return decode_image(image, model=decoder, restore_steps=0, device=device).convert("RGB")
    return Image.fromarray(image_io.load_image(image).rgb, "RGB")


def _output(pattern: str, settings: Diffusion, force: bool, *inputs: Path) -> tuple[int, Path]:
    """The seed (``settings.seed`` or a random one) and the output path with ``{seed}``/``{n}`` filled, checked."""
    from sdcodec.codec.diffusion.generate import random_seed

    seed = random_seed() if settings.seed is None else settings.seed
    path = Path(str(pattern).replace("{seed}", str(seed)).replace("{n}", "1"))
    if path.suffix.lower() not in IMAGE_OUTPUTS:
        raise SdcodecError(f"cannot write {path.name!r}: use an extension among {', '.join(IMAGE_OUTPUTS)}")
    check_output(path, force, *inputs)
    return seed, path


def _components(settings: Diffusion):
    from sdcodec.codec.diffusion.sd_pipeline import load_sd_components

    return load_sd_components(settings.model, device=settings.device)


def _run(tool, *args, settings: Diffusion, seed: int, progress):
    """Call an inpaint-like tool with the shared settings; its ``ValueError`` becomes one error line."""
    try:
        return tool(
            *args,
            negative=settings.negative,
            seed=seed,
            steps=settings.steps,
            guidance=settings.guidance,
            scheduler=settings.scheduler,
            progress=progress,
            **settings.extra,
        )
    except ValueError as exc:
        raise SdcodecError(str(exc)) from None


def _latent_space(pipe) -> str | None:
    from sdcodec.codec.diffusion.sd_pipeline import latent_space_of

    try:
        return latent_space_of(pipe.vae)
    except Exception:  # noqa: BLE001 - an unknown space only means: decode to pixels first
        return None


def _write(result, path: Path, force: bool, watermark: bool, notice: Notice) -> Path:
    from sdcodec.codec.diffusion.parameters import image_bytes
    from sdcodec.codec.diffusion.watermark import marked_output

    if watermark:
        result.image = marked_output(result.image, notice)
    data = image_bytes(result, path.suffix)
    write_output(path, lambda out: out.write(data), force)
    notice(f"wrote {path}: {result.width}x{result.height}, seed {result.seed}, {len(data)} bytes")
    return path
