"""The ``sdcodec`` command line: parses, calls ``sdcodec``'s library and benchmarks, prints. Nothing else.

Exit codes: 0 success, 1 runtime failure (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="sdcodec",
    help="A perceptual image codec on Stable Diffusion's latent space, and its generative core.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click messages: usage errors stay short
)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one line

MODEL_HELP = (
    "Model SPEC: hub id, local diffusers dir, taesd:DIR or taef2:DIR (default: $SDCODEC_MODEL, else the SD 1.x VAE)."
)
DEVICE_HELP = "auto, cpu, cuda or mps (fp16 on GPUs)."

# Options several commands share, declared once.
Device = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels", min=1, help="Refuse images (and files declaring images) larger than this many pixels."
    ),
]
Bpp = Annotated[
    Optional[float], typer.Option("--bpp", min=0.0, help="Ceiling in bits per pixel: the best file that fits.")
]
Size = Annotated[Optional[int], typer.Option("--size", min=1, help="Ceiling in bytes: the best file that fits.")]
Quality = Annotated[
    Optional[int],
    typer.Option("--quality", "-Q", min=1, max=100, help="1-100, higher is finer and larger (default 50)."),
]


class Tune(str, Enum):
    """What --effort 2-4 optimise (codec/rate_distortion/distortion.py)."""

    psnr = "psnr"
    ssim = "ssim"
    lpips = "lpips"


def rate_options_given(quality: Optional[int], bpp: Optional[float], size: Optional[int]) -> list[str]:
    """The rate options a user gave; more than one is a usage error."""
    given = [name for name, value in (("--quality", quality), ("--bpp", bpp), ("--size", size)) if value is not None]
    if len(given) > 1:
        raise typer.BadParameter(f"give only one of --quality, --bpp and --size (got {', '.join(given)})")
    return given


class Failure(Exception):
    """A runtime failure the CLI reports in one line with exit code 1."""


def fail(message: str) -> None:
    raise Failure(message)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn every failure into one line on stderr and exit 1 (SDCODEC_DEBUG=1 shows tracebacks)."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        stderr.print("interrupted", style="red")
        raise typer.Exit(130) from None
    except MemoryError:
        if os.environ.get("SDCODEC_DEBUG"):
            raise
        out_of_memory()
    except Exception as exc:  # noqa: BLE001 - the contract is: never a traceback
        if os.environ.get("SDCODEC_DEBUG"):
            raise
        from sdcodec.bitstream import BitstreamError
        from sdcodec.codec.errors import SdcodecError

        known = isinstance(exc, (Failure, SdcodecError, BitstreamError))
        prefix = "error" if known else f"error ({type(exc).__name__})"
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, BitstreamError):
            message = f"invalid .sdz file: {message}"
        stderr.print(f"{prefix}: {message}", style="red", markup=False)
        raise typer.Exit(1) from None


OUT_OF_MEMORY = "error: out of memory (the input is too large for this machine; see --max-pixels)\n"


def out_of_memory() -> None:
    """One fixed line (no formatting, no rich: those could run out of memory again), then exit 1."""
    try:
        sys.stderr.write(OUT_OF_MEMORY)
        sys.stderr.flush()
    except MemoryError:
        os.write(2, OUT_OF_MEMORY.encode())
    raise typer.Exit(1)


def printable(text: str) -> str:
    """Text safe for a terminal: control, format (bidi) and separator characters escaped as \\xNN / \\uNNNN."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def notifier(quiet: bool) -> Callable[[str], None]:
    """Progress and notices on stderr; silent with -q."""
    if quiet:
        return lambda message: None
    return lambda message: stderr.print(message, style="dim", markup=False)


def check_output(path: Path, force: bool, *inputs: Path) -> None:
    from sdcodec.codec.images.output_files import check_output as check

    check(path, force, *inputs)


@app.command()
def encode(
    input: Path = typer.Argument(..., help="Image to encode (any Pillow format)."),
    output: Path = typer.Argument(..., help="The .sdz file to write."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    quality: Quality = None,
    bpp: Bpp = None,
    size: Size = None,
    caption: str = typer.Option("", "--caption", help="Text stored in the file; conditions restoration on decode."),
    effort: int = typer.Option(
        1,
        "--effort",
        "-e",
        min=1,
        max=4,
        help="1: fast. 2-4: search the latent through the decoder for a better image at the same size "
        "(4, 12, 30 decoder passes; on a CPU level 2 takes about 3.5x the time of level 1).",
    ),
    tune: Tune = typer.Option(
        Tune.psnr,
        "--tune",
        help="What --effort 2-4 optimise: psnr (MSE), ssim (MS-SSIM with some MSE), lpips (needs its weights).",
    ),
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    max_pixels: MaxPixels = 1 << 26,
) -> None:
    """Encode an image into a .sdz file."""
    rate_options_given(quality, bpp, size)
    with reported_errors():
        notice = notifier(quiet)
        check_output(output, force, input)
        from sdcodec import encode_image

        data = encode_image(
            input,
            model=model,
            quality=quality,
            bpp=bpp,
            size=size,
            caption=caption,
            device=device,
            notice=notice,
            effort=effort,
            tune=tune.value,
            max_pixels=max_pixels,
        )
        from sdcodec.bitstream import describe
        from sdcodec.codec.images.output_files import write_output

        write_output(output, lambda out: out.write(data), force)
        notice(f"wrote {output}: {len(data)} bytes, {describe(data)['bpp']:.4f} bpp")


@app.command()
def decode(
    input: Path = typer.Argument(..., help="The .sdz file to decode."),
    output: Path = typer.Argument(..., help="Image to write; the format follows the extension."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Model SPEC; a full SD pipeline also enables restoration."
    ),
    decoder: Optional[str] = typer.Option(
        None, "--decoder", help="Decoder SPEC of the file's latent space, e.g. taesd:DIR for a fast preview."
    ),
    restore_steps: Optional[int] = typer.Option(
        None, "--restore-steps", min=0, help="U-Net restoration steps (default: the file's hint; 0 = off)."
    ),
    no_consistency: bool = typer.Option(
        False, "--no-consistency", help="Do not project restored latents back into their quantization bins."
    ),
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    max_pixels: MaxPixels = 1 << 26,
) -> None:
    """Decode a .sdz file into an image."""
    with reported_errors():
        notice = notifier(quiet)
        check_output(output, force, input)
        from sdcodec.codec.image_codec import decode_image, read_file
        from sdcodec.codec.images.output_files import save_image

        image = decode_image(
            read_file(input),
            model=model,
            decoder=decoder,
            restore_steps=restore_steps,
            consistency=not no_consistency,
            device=device,
            notice=notice,
            max_pixels=max_pixels,
        )
        save_image(image, output, force, notice)
        notice(f"wrote {output}: {image.width}x{image.height} {image.mode}")


@app.command()
def info(
    input: Path = typer.Argument(..., help="The .sdz file to describe."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Describe a .sdz file without decoding it."""
    with reported_errors():
        from sdcodec.bitstream import describe
        from sdcodec.codec.image_codec import read_file

        facts = describe(read_file(input))
        if as_json:
            print(json.dumps(facts, ensure_ascii=False))
            return
        console = Console(highlight=False, soft_wrap=True)
        width = max(map(len, facts))
        for key, value in facts.items():
            shown = (
                f"{value:.4f}"
                if isinstance(value, float)
                else ("x".join(map(str, value)) if isinstance(value, list) else value)
            )
            console.print(f"{key:>{width}}  {printable(str(shown))}", markup=False)


# --- generation commands (gen, img2img) ---------------------------------------------------

GEN_MODEL_HELP = (
    "A full Stable Diffusion pipeline: hub id or local diffusers dir (default: $SDCODEC_MODEL "
    "when it is one, else stable-diffusion-v1-5/stable-diffusion-v1-5)."
)
GEN_OUTPUT_HELP = (
    ".png/.jpg/.webp (parameters embedded) or .sdz (the latent, coded directly); "
    "{n} and {seed} are filled in, several images without them get -1, -2, ..."
)
PROMPT_HELP = "What to draw; (word:1.3), (word), [word] set emphasis, BREAK starts a new chunk."
Negative = Annotated[str, typer.Option("--negative", "-n", help="What to steer away from (same emphasis syntax).")]
Seed = Annotated[
    Optional[int], typer.Option("--seed", help="Seed of the first image (+1 for each next one); random when absent.")
]
Guidance = Annotated[float, typer.Option("--guidance", "-g", help="Classifier-free guidance scale (<= 1: off).")]
Scheduler = Annotated[str, typer.Option("--scheduler", help="ddim, pndm, euler, euler-a or dpm++.")]
NumImages = Annotated[int, typer.Option("--num-images", help="Images to generate with one model load.")]
GenModel = Annotated[Optional[str], typer.Option("--model", "-m", help=GEN_MODEL_HELP)]
SdzQuality = Annotated[
    Optional[int], typer.Option("--quality", "-Q", min=1, max=100, help="For .sdz output, as in encode.")
]
SdzBpp = Annotated[Optional[float], typer.Option("--bpp", min=0.0, help="For .sdz output: ceiling in bits per pixel.")]
SdzSize = Annotated[Optional[int], typer.Option("--size", min=1, help="For .sdz output: ceiling in bytes.")]
SdzCaption = Annotated[
    Optional[str], typer.Option("--caption", help="For .sdz output: the stored caption (default: the prompt).")
]


@contextlib.contextmanager
def step_progress(quiet: bool) -> Iterator[Optional[Callable[[int, int], None]]]:
    """Per-step progress on stderr: a bar on a terminal, one line per step otherwise; none with -q."""
    if quiet:
        yield None
        return
    if not stderr.is_terminal:
        yield lambda done, total: stderr.print(f"step {done}/{total}", style="dim", markup=False)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("denoising"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("denoising", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def run_generation(
    *,
    prompt: str,
    input: Optional[Path],
    output: Optional[Path],
    negative: str,
    seed: Optional[int],
    steps: int,
    guidance: float,
    width: Optional[int],
    height: Optional[int],
    scheduler: str,
    num_images: int,
    strength: Optional[float],
    model: Optional[str],
    quality: Optional[int],
    bpp: Optional[float],
    size: Optional[int],
    caption: Optional[str],
    device: str,
    force: bool,
    quiet: bool,
) -> None:
    """What gen and img2img share: usage checks here, then ``generate_to_files`` does the work."""
    from sdcodec.codec.diffusion.generate import check_options
    from sdcodec.codec.diffusion.generate_files import OUTPUT_FORMATS, GenerationRequest, generate_to_files

    pattern = str(output or f"{'img2img' if input else 'gen'}-{{seed}}.png")
    suffix = Path(pattern).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise typer.BadParameter(
            f"cannot write {Path(pattern).name!r}: use an extension among {', '.join(OUTPUT_FORMATS)}"
        )
    given = rate_options_given(quality, bpp, size)
    if (given or caption is not None) and suffix != ".sdz":
        raise typer.BadParameter(f"{(given or ['--caption'])[0]} applies to .sdz output only")
    try:
        check_options(
            steps=steps,
            guidance=guidance,
            width=512 if width is None else width,
            height=512 if height is None else height,
            scheduler=scheduler,
            num_images=num_images,
            seed=seed,
            strength=strength,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    request = GenerationRequest(
        prompt=prompt,
        pattern=pattern,
        init=input,
        negative=negative,
        seed=seed,
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        scheduler=scheduler,
        num_images=num_images,
        strength=strength,
        model=model,
        device=device,
        quality=quality,
        bpp=bpp,
        size=size,
        caption=caption,
    )
    with reported_errors(), step_progress(quiet) as progress:
        generate_to_files(request, force=force, notice=notifier(quiet), progress=progress)


@app.command()
def gen(
    prompt: str = typer.Argument(..., help=PROMPT_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help=GEN_OUTPUT_HELP + " (default: gen-{seed}.png)."),
    negative: Negative = "",
    seed: Seed = None,
    steps: int = typer.Option(25, "--steps", help="Denoising steps."),
    guidance: Guidance = 7.5,
    width: int = typer.Option(512, "--width", "-W", help="Multiple of 8."),
    height: int = typer.Option(512, "--height", "-H", help="Multiple of 8."),
    scheduler: Scheduler = "ddim",
    num_images: NumImages = 1,
    model: GenModel = None,
    quality: SdzQuality = None,
    bpp: SdzBpp = None,
    size: SdzSize = None,
    caption: SdzCaption = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Generate images from a prompt (txt2img) with Stable Diffusion."""
    run_generation(
        prompt=prompt,
        input=None,
        output=output,
        negative=negative,
        seed=seed,
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        scheduler=scheduler,
        num_images=num_images,
        strength=None,
        model=model,
        quality=quality,
        bpp=bpp,
        size=size,
        caption=caption,
        device=device,
        force=force,
        quiet=quiet,
    )


@app.command()
def img2img(
    input: Path = typer.Argument(..., help="Starting image, or a .sdz file (its latent is used directly)."),
    prompt: str = typer.Argument(..., help=PROMPT_HELP),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help=GEN_OUTPUT_HELP + " (default: img2img-{seed}.png)."
    ),
    strength: float = typer.Option(
        0.75, "--strength", "-s", help="How far to move from the input, in (0, 1]; 1 ignores it."
    ),
    negative: Negative = "",
    seed: Seed = None,
    steps: int = typer.Option(25, "--steps", help="Denoising steps of the full schedule (strength x steps are run)."),
    guidance: Guidance = 7.5,
    width: Optional[int] = typer.Option(
        None, "--width", "-W", help="Resize to this width (multiple of 8; default: keep the input's size)."
    ),
    height: Optional[int] = typer.Option(
        None, "--height", "-H", help="Resize to this height (multiple of 8; default: keep the input's size)."
    ),
    scheduler: Scheduler = "ddim",
    num_images: NumImages = 1,
    model: GenModel = None,
    quality: SdzQuality = None,
    bpp: SdzBpp = None,
    size: SdzSize = None,
    caption: SdzCaption = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Redraw an image (or a .sdz file's latent) guided by a prompt (img2img)."""
    run_generation(
        prompt=prompt,
        input=input,
        output=output,
        negative=negative,
        seed=seed,
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        scheduler=scheduler,
        num_images=num_images,
        strength=strength,
        model=model,
        quality=quality,
        bpp=bpp,
        size=size,
        caption=caption,
        device=device,
        force=force,
        quiet=quiet,
    )


# --- benchmark command --------------------------------------------------------------------


@app.command()
def bench(
    image_dir: Optional[Path] = typer.Argument(
        None, help="Images to benchmark on (default: ../shared/datasets/kodak)."
    ),
    codecs: str = typer.Option(
        "sdz,jpeg,webp,avif,jxl", "--codecs", help="Comma-separated codecs: sdz, jpeg, webp, avif, jxl."
    ),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    decoder: Optional[str] = typer.Option(None, "--decoder", help="Decoder SPEC for the sdz files."),
    restore_steps: int = typer.Option(
        0, "--restore-steps", min=0, help="U-Net restoration steps when decoding sdz files."
    ),
    sdz_qualities: Optional[str] = typer.Option(
        None,
        "--sdz-qualities",
        help="Comma-separated sdz knobs: quality 1-100, or -N for a ceiling of N/1000 bpp "
        "(default: -80,-120,1,4,10,20,40; write --sdz-qualities=-80,...).",
    ),
    efforts: str = typer.Option(
        "1", "--effort", help="Comma-separated sdz effort levels to sweep, e.g. 1,2 (one curve each)."
    ),
    max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Use only the first N images."),
    out: Path = typer.Option(
        Path("bench-out"), "--out", "-o", help="Report directory (results are cached there, so a rerun resumes)."
    ),
    cache: Optional[Path] = typer.Option(
        None, "--cache", help="Cache directory for the measurements (default: OUT/cache)."
    ),
    crop_image: Optional[str] = typer.Option(
        None, "--crop-image", help="Comma-separated image names for the crops (default: 4 spread over the set)."
    ),
    quiet: Quiet = False,
) -> None:
    """Rate-distortion benchmark of sdz against JPEG, WebP, AVIF and JPEG XL, with a Markdown report."""
    names = [name.strip() for name in codecs.split(",") if name.strip()]
    try:
        knobs = [int(k) for k in sdz_qualities.split(",")] if sdz_qualities else None
    except ValueError:
        raise typer.BadParameter(f"--sdz-qualities must be integers, got {sdz_qualities!r}") from None
    try:
        effort_levels = [int(e) for e in efforts.split(",")]
    except ValueError:
        raise typer.BadParameter(f"--effort must be integers, got {efforts!r}") from None
    if not all(1 <= e <= 4 for e in effort_levels):
        raise typer.BadParameter(f"--effort levels are 1 to 4, got {efforts!r}")
    with reported_errors():
        from sdcodec.benchmarks.run import run_bench

        run_bench(
            image_dir,
            names,
            out,
            model=model,
            decoder=decoder,
            restore_steps=restore_steps,
            sdz_knobs=knobs,
            sdz_efforts=effort_levels,
            max_images=max_images,
            cache_dir=cache,
            crop_image=crop_image,
            quiet=quiet,
        )
        notifier(quiet)(f"report written to {out / 'report.md'}")


def quiet_libraries() -> None:
    """Library warnings and log chatter stay off stderr unless SDCODEC_DEBUG is set."""
    if os.environ.get("SDCODEC_DEBUG"):
        return
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    for variable in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY", "HF_HUB_VERBOSITY"):
        os.environ.setdefault(variable, "error")


def terminate(signum, frame) -> None:
    """SIGTERM unwinds like an exception, so partial outputs are removed on the way out."""
    raise SystemExit(128 + signum)


def main() -> None:
    quiet_libraries()
    signal.signal(signal.SIGTERM, terminate)
    try:
        app()
    except MemoryError:
        os.write(2, OUT_OF_MEMORY.encode())
        sys.exit(1)


if __name__ == "__main__":
    main()
