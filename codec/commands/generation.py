"""``gen`` and ``img2img``: pictures from a prompt, or from an image and a prompt, into files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sdcodec.codec.commands.diffusion_options import (
    PROMPT_HELP,
    GenModel,
    Guidance,
    Negative,
    NoWatermark,
    Scheduler,
    Seed,
)
from sdcodec.codec.commands.options import Device, Force, Quiet, positive_float, rate_options_given
from sdcodec.codec.commands.reporting import notifier, reported_errors, step_progress, usage_checked

GEN_OUTPUT_HELP = (
    ".png/.jpg/.webp (parameters embedded) or .sdz (the latent, coded directly); "
    "{n} and {seed} are filled in, several images without them get -1, -2, ..."
)
Prompt = Annotated[Optional[str], typer.Argument(help=PROMPT_HELP)]
PromptFile = Annotated[
    Optional[Path],
    typer.Option(
        "--prompt-file",
        help="Prompts, one a line (instead of PROMPT), as A1111's prompts-from-file script; "
        "outputs default to gen-{n}-{seed}.png.",
    ),
]
NumImages = Annotated[int, typer.Option("--num-images", help="Images to generate with one model load.")]
SdzQuality = Annotated[
    Optional[int], typer.Option("--quality", "-Q", min=1, max=100, help="For .sdz output, as in encode.")
]
SdzBpp = Annotated[
    Optional[float],
    typer.Option(
        "--bpp", parser=positive_float, metavar="BPP", help="For .sdz output: ceiling in bits per pixel (> 0)."
    ),
]
SdzSize = Annotated[Optional[int], typer.Option("--size", min=1, help="For .sdz output: ceiling in bytes.")]
SdzCaption = Annotated[
    Optional[str],
    typer.Option(
        "--caption", help="For .sdz output: the stored caption (default: the generation parameters, prompt first)."
    ),
]
GenOutput = Annotated[
    Optional[Path], typer.Option("--output", "-o", help=GEN_OUTPUT_HELP + " (default: gen-{seed}.png).")
]
GenSteps = Annotated[int, typer.Option("--steps", help="Denoising steps.")]
GenWidth = Annotated[int, typer.Option("--width", "-W", help="Multiple of 8.")]
GenHeight = Annotated[int, typer.Option("--height", "-H", help="Multiple of 8.")]

Init = Annotated[Path, typer.Argument(help="Starting image, or a .sdz file (its latent is used directly).")]
Img2imgOutput = Annotated[
    Optional[Path], typer.Option("--output", "-o", help=GEN_OUTPUT_HELP + " (default: img2img-{seed}.png).")
]
Img2imgStrength = Annotated[
    float, typer.Option("--strength", "-s", help="How far to move from the input, in (0, 1]; 1 ignores it.")
]
Img2imgSteps = Annotated[
    int, typer.Option("--steps", help="Denoising steps of the full schedule (strength x steps are run).")
]
Img2imgWidth = Annotated[
    Optional[int],
    typer.Option("--width", "-W", help="Resize to this width (multiple of 8; default: keep the input's size)."),
]
Img2imgHeight = Annotated[
    Optional[int],
    typer.Option("--height", "-H", help="Resize to this height (multiple of 8; default: keep the input's size)."),
]


def run_generation(
    prompt: Optional[str], prompt_file: Optional[Path], output: Optional[Path], *, force: bool, quiet: bool, **fields
) -> None:
    """What gen and img2img share: usage checks here, then ``generate_jobs_to_files`` does the work.

    ``fields`` are the rest of ``GenerationRequest``'s (init, negative, seed, steps, ...).
    """
    from sdcodec.codec.diffusion import generate_files

    if (prompt is None) == (prompt_file is None):
        raise typer.BadParameter("give a PROMPT or --prompt-file (one of them)")
    default = f"{'img2img' if fields['init'] else 'gen'}{'-{n}' if prompt_file else ''}-{{seed}}.png"
    pattern = str(output or default)
    usage_checked(generate_files.check_pattern, pattern)
    given = rate_options_given(fields["quality"], fields["bpp"], fields["size"])
    if (given or fields["caption"] is not None) and Path(pattern).suffix.lower() != ".sdz":
        raise typer.BadParameter(f"{(given or ['--caption'])[0]} applies to .sdz output only")
    request = generate_files.GenerationRequest(prompt=prompt or "", pattern=pattern, **fields)
    usage_checked(generate_files.check_request, request)
    with reported_errors(), step_progress(quiet) as progress:
        requests = generate_files.requests_from_prompt_file(prompt_file, request) if prompt_file else [request]
        generate_files.generate_jobs_to_files(requests, force=force, notice=notifier(quiet), progress=progress)


def gen(
    prompt: Prompt = None,
    output: GenOutput = None,
    negative: Negative = "",
    seed: Seed = None,
    steps: GenSteps = 25,
    guidance: Guidance = 7.5,
    width: GenWidth = 512,
    height: GenHeight = 512,
    scheduler: Scheduler = "ddim",
    num_images: NumImages = 1,
    model: GenModel = None,
    quality: SdzQuality = None,
    bpp: SdzBpp = None,
    size: SdzSize = None,
    caption: SdzCaption = None,
    prompt_file: PromptFile = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    no_watermark: NoWatermark = False,
) -> None:
    """Generate images from a prompt (txt2img) with Stable Diffusion."""
    fields = dict(negative=negative, seed=seed, steps=steps, guidance=guidance, width=width, height=height)
    fields.update(scheduler=scheduler, num_images=num_images, model=model, device=device, quality=quality, bpp=bpp)
    fields.update(size=size, caption=caption, watermark=not no_watermark)
    run_generation(prompt, prompt_file, output, force=force, quiet=quiet, init=None, strength=None, **fields)


def img2img(
    input: Init,
    prompt: Prompt = None,
    output: Img2imgOutput = None,
    strength: Img2imgStrength = 0.75,
    negative: Negative = "",
    seed: Seed = None,
    steps: Img2imgSteps = 25,
    guidance: Guidance = 7.5,
    width: Img2imgWidth = None,
    height: Img2imgHeight = None,
    scheduler: Scheduler = "ddim",
    num_images: NumImages = 1,
    model: GenModel = None,
    quality: SdzQuality = None,
    bpp: SdzBpp = None,
    size: SdzSize = None,
    caption: SdzCaption = None,
    prompt_file: PromptFile = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    no_watermark: NoWatermark = False,
) -> None:
    """Redraw an image (or a .sdz file's latent) guided by a prompt (img2img)."""
    fields = dict(negative=negative, seed=seed, steps=steps, guidance=guidance, width=width, height=height)
    fields.update(scheduler=scheduler, num_images=num_images, model=model, device=device, quality=quality, bpp=bpp)
    fields.update(size=size, caption=caption, watermark=not no_watermark)
    run_generation(prompt, prompt_file, output, force=force, quiet=quiet, init=input, strength=strength, **fields)
