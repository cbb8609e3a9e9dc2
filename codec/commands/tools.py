"""The generative tools: ``inpaint``, ``outpaint``, ``upscale``, and ``watermark`` (the invisible mark's check)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from sdcodec.codec.commands.diffusion_options import (
    PROMPT_HELP,
    GenModel,
    Guidance,
    Negative,
    NoWatermark,
    Scheduler,
    Seed,
)
from sdcodec.codec.commands.options import Device, Force, Quiet
from sdcodec.codec.commands.reporting import (
    fail,
    notifier,
    printable,
    reported_errors,
    step_progress,
    usage_checked,
)

ToolOutput = Annotated[
    Optional[str], typer.Option("--output", "-o", help=".png/.jpg/.webp (parameters embedded); {seed} is filled in.")
]
Prompt = Annotated[str, typer.Argument(help=PROMPT_HELP)]
Steps = Annotated[int, typer.Option("--steps", help="Denoising steps of the full schedule (strength x steps are run).")]
MaskBlur = Annotated[
    Optional[int],
    typer.Option(
        "--mask-blur",
        min=0,
        help="Blur of the mask's edge in pixels, for a soft seam (default: inpaint 4, outpaint 8).",
    ),
]
InpaintImage = Annotated[Path, typer.Argument(help="The picture, or a .sdz file (its latent is the start).")]
Mask = Annotated[Path, typer.Argument(help="Mask of the same size: white is repainted, black kept, grey blended.")]
InpaintStrength = Annotated[float, typer.Option("--strength", "-s", help="How far the masked area moves, in (0, 1].")]
OnlyMasked = Annotated[
    bool,
    typer.Option(
        "--only-masked", help="Inpaint only the mask's box (+ --padding) and paste it back: for large images."
    ),
]
Padding = Annotated[int, typer.Option("--padding", min=0, help="With --only-masked: pixels around the mask's box.")]
OutpaintImage = Annotated[Path, typer.Argument(help="The picture, or a .sdz file (decoded first).")]
Extend = Annotated[
    str,
    typer.Option("--extend", help="Pixels to add: left,right,top,bottom (multiples of 8), e.g. 0,128,0,0."),
]
OutpaintStrength = Annotated[
    float,
    typer.Option("--strength", "-s", help="How far the new area moves from the stretched edges, in (0, 1]."),
]
UpscaleImage = Annotated[Path, typer.Argument(help="The picture, or a .sdz file.")]
UpscalePrompt = Annotated[str, typer.Argument(help="What the picture shows (guides the upscaler).")]
Scale = Annotated[int, typer.Option("--scale", help="2 or 4; a model's class fixes it (x2 latent, x4 upscaler).")]
UpscaleModel = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        help="A diffusers upscaler (dir or hub id): stabilityai/sd-x2-latent-upscaler (x2) or "
        "stabilityai/stable-diffusion-x4-upscaler (x4). Without it a .sdz is decoded, then resized (Lanczos).",
    ),
]
UpscaleDecoder = Annotated[
    Optional[str],
    typer.Option("--decoder", help="For a .sdz that is decoded: the autoencoder (default: the file's own)."),
]
NoiseLevel = Annotated[
    Optional[int], typer.Option("--noise-level", min=0, help="x4 only: noise added to the input (default 20).")
]
UpscaleSteps = Annotated[int, typer.Option("--steps", min=1, help="Denoising steps.")]
UpscaleGuidance = Annotated[
    Optional[float],
    typer.Option("--guidance", "-g", help="Classifier-free guidance (default: 9 for x4, 0 (off) for x2)."),
]


def watermark(
    images: list[Path] = typer.Argument(..., help="Images to check (PNG, JPEG, WebP, ...; at least 256x256)."),
) -> None:
    """Say whether images carry Stable Diffusion's invisible watermark (exit 0: all do, 3: one does not)."""
    from PIL import Image

    from sdcodec.codec.diffusion.watermark import detect
    from sdcodec.codec.images.image_io import load_image

    console = Console(highlight=False, soft_wrap=True)
    unmarked = 0
    with reported_errors():
        for path in images:
            try:
                found = detect(Image.fromarray(load_image(path).rgb, "RGB"))
            except ValueError as exc:
                fail(f"{path}: {exc}")
            verdict = "watermark present" if found.present else "no watermark"
            console.print(
                f"{printable(str(path))}: {verdict} ({found.matching_bits}/{found.total_bits} bits match, "
                f"{found.method})",
                markup=False,
            )
            unmarked += not found.present
    if unmarked:
        raise typer.Exit(3)


def diffusion_settings(prompt, negative, seed, steps, guidance, scheduler, model, device, **extra):
    """The shared diffusion settings, checked here so that bad values are usage errors (exit 2)."""
    from sdcodec.codec.diffusion.generate import check_options
    from sdcodec.codec.diffusion.tool_files import Diffusion

    usage_checked(
        check_options,
        steps=steps,
        guidance=guidance,
        width=512,
        height=512,
        scheduler=scheduler,
        seed=seed,
        strength=extra.get("strength"),
        prompt=prompt,
        negative=negative,
    )
    extra = {key: value for key, value in extra.items() if value is not None}
    return Diffusion(negative, seed, steps, guidance, scheduler, model, device, extra)


def run_tool(tool_file, *arguments, quiet: bool, **options) -> None:
    """Run one of codec/diffusion/tool_files.py's tools: denoising progress and notices on stderr, one-line errors."""
    with reported_errors(), step_progress(quiet) as progress:
        tool_file(*arguments, notice=notifier(quiet), progress=progress, **options)


def inpaint(
    image: InpaintImage,
    mask: Mask,
    prompt: Prompt,
    output: ToolOutput = "inpaint-{seed}.png",
    strength: InpaintStrength = 1.0,
    mask_blur: MaskBlur = None,
    only_masked: OnlyMasked = False,
    padding: Padding = 32,
    negative: Negative = "",
    seed: Seed = None,
    steps: Steps = 25,
    guidance: Guidance = 7.5,
    scheduler: Scheduler = "ddim",
    model: GenModel = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    no_watermark: NoWatermark = False,
) -> None:
    """Repaint the white part of a mask (an inpainting checkpoint, or any SD checkpoint by latent blending)."""
    from sdcodec.codec.diffusion.tool_files import inpaint_file

    extra = dict(strength=strength, mask_blur=mask_blur, only_masked=only_masked, padding=padding)
    settings = diffusion_settings(prompt, negative, seed, steps, guidance, scheduler, model, device, **extra)
    run_tool(inpaint_file, image, mask, prompt, output, settings, force=force, quiet=quiet, watermark=not no_watermark)


def outpaint(
    image: OutpaintImage,
    prompt: Prompt,
    extend: Extend,
    output: ToolOutput = "outpaint-{seed}.png",
    strength: OutpaintStrength = 0.8,
    mask_blur: MaskBlur = None,
    negative: Negative = "",
    seed: Seed = None,
    steps: Steps = 25,
    guidance: Guidance = 7.5,
    scheduler: Scheduler = "ddim",
    model: GenModel = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    no_watermark: NoWatermark = False,
) -> None:
    """Grow a picture on its sides and draw the new area to match (outpainting)."""
    from sdcodec.codec.diffusion.outpaint import parse_extend
    from sdcodec.codec.diffusion.tool_files import outpaint_file

    sides = usage_checked(parse_extend, extend)
    extra = dict(strength=strength, mask_blur=mask_blur)
    settings = diffusion_settings(prompt, negative, seed, steps, guidance, scheduler, model, device, **extra)
    run_tool(
        outpaint_file, image, prompt, output, sides, settings, force=force, quiet=quiet, watermark=not no_watermark
    )


def upscale(
    image: UpscaleImage,
    prompt: UpscalePrompt = "",
    output: ToolOutput = "upscale-{seed}.png",
    scale: Scale = 2,
    model: UpscaleModel = None,
    decoder: UpscaleDecoder = None,
    noise_level: NoiseLevel = None,
    negative: Negative = "",
    seed: Seed = None,
    steps: UpscaleSteps = 20,
    guidance: UpscaleGuidance = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    no_watermark: NoWatermark = False,
) -> None:
    """Upscale a picture with a latent-diffusion upscaler, or decode a .sdz larger."""
    from sdcodec.codec.diffusion.tool_files import Diffusion, upscale_file

    if scale not in (2, 4):
        raise typer.BadParameter(f"--scale must be 2 or 4, not {scale}")
    if noise_level is not None and scale != 4:
        raise typer.BadParameter("--noise-level applies to the x4 upscaler only")
    extra = {} if noise_level is None else {"noise_level": noise_level}
    settings = Diffusion(negative, seed, steps, guidance, "ddim", model, device, extra)
    options = dict(scale=scale, decoder=decoder, force=force, watermark=not no_watermark)
    run_tool(upscale_file, image, prompt, output, settings, quiet=quiet, **options)
