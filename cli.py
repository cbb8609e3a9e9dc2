"""The ``sdcodec`` command line: parses, calls ``sdcodec``'s library and benchmarks, prints. Nothing else.

Exit codes: 0 success, 1 runtime failure (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
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
from typer.core import TyperGroup


class ShortUsageErrors(TyperGroup):
    """Usage errors in two lines on stderr (what is wrong, where help is), exit 2; the rest as typer does."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's UsageError and ClickException (typer does not export them)
            usage_error = getattr(exc, "exit_code", 1) == 2 and hasattr(exc, "format_message")
            if not hasattr(exc, "show"):
                raise
            if not usage_error or type(exc).__name__ == "NoArgsIsHelpError":  # bare `sdcodec`: the help
                exc.show()
                sys.exit(getattr(exc, "exit_code", 1))
            command = exc.ctx.command_path if getattr(exc, "ctx", None) else (prog_name or "sdcodec")
            typer.echo(f"error: {exc.format_message()}", err=True)
            typer.echo(f"see '{command} --help'", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="sdcodec",
    cls=ShortUsageErrors,
    help="A perceptual image codec on Stable Diffusion's latent space, and its generative core.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click messages: usage errors stay short
)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # an error stays one line

MODEL_HELP = (
    "Model SPEC: hub id, local diffusers dir, taesd:DIR or taef2:DIR (default: $SDCODEC_MODEL, else the SD 1.x VAE)."
)
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (fp16 on GPUs)."


def device_name(value: str) -> str:
    """A device name torch knows (availability is checked when the model loads: exit 1 there)."""
    name = value.strip().lower()
    kind, _, index = name.partition(":")
    if name in ("auto", "cpu", "mps", "cuda") or (kind == "cuda" and index.isdigit()):
        return name
    raise typer.BadParameter(f"{value!r} is not a device; use auto, cpu, cuda, cuda:N or mps")


def positive_float(value: str) -> float:
    """A finite number above 0 (typer's min= would show and allow 0)."""
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number") from None
    if not (number > 0 and math.isfinite(number)):
        raise typer.BadParameter(f"must be a number above 0, got {value}")
    return number


# Options several commands share, declared once.
Device = Annotated[str, typer.Option("--device", parser=device_name, metavar="DEVICE", help=DEVICE_HELP)]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels", min=1, help="Refuse images (and files declaring images) larger than this many pixels."
    ),
]
Bpp = Annotated[
    Optional[float],
    typer.Option(
        "--bpp", parser=positive_float, metavar="BPP", help="Ceiling in bits per pixel (> 0): the best file that fits."
    ),
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


# Batch mode (several inputs into -o DIR): codec/images/batch.py names the files, codec/batch_run.py runs them.
OutputDir = Annotated[
    Optional[Path],
    typer.Option(
        "--output-dir",
        "-o",
        help="Write one output per input into this directory (created if missing): photo.png -> DIR/photo.sdz, "
        "a.sdz -> DIR/a.png. Every argument is then an input: files, directories, glob patterns.",
    ),
]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="With -o: search directories at every level.")]
Jobs = Annotated[
    int,
    typer.Option(
        "--jobs", "-j", min=1, help="With -o: files in parallel (processes with one model and one CPU thread each)."
    ),
]


def single_file_paths(paths: list[str]) -> tuple[Path, Path]:
    """INPUT OUTPUT of the one-file form; anything else is a usage error that says how to batch."""
    if len(paths) != 2:
        raise typer.BadParameter(
            f"give INPUT OUTPUT, or several inputs with -o DIR (got {len(paths)} path(s))", param_hint="INPUT OUTPUT"
        )
    if os.path.isdir(paths[0]):
        raise typer.BadParameter(f"{paths[0]} is a directory: encode or decode its files with -o DIR")
    return Path(paths[0]), Path(paths[1])


def output_suffix(image_format: Optional[str], output_quality: Optional[int], output: Optional[Path]) -> str:
    """The extension of the image decode writes: --format's (png by default) for - and -o DIR, else the
    output file's. A format that does not exist, or --output-quality for a lossless one, is a usage error."""
    from sdcodec.codec.images.image_output import OutputError, check_quality, output_format
    from sdcodec.codec.images.standard_streams import is_stream

    suffix = f".{(image_format or 'png').lower().lstrip('.')}"
    named = output is not None and not is_stream(output)
    if named and image_format is not None and output.suffix.lower() != suffix:
        raise typer.BadParameter("--format is for output to - or -o DIR; a file name's extension picks its format")
    try:
        image_type = output_format(suffix)
        if named:
            try:
                image_type = output_format(output.name)
            except OutputError:
                return output.suffix  # reported as a runtime error, as before (exit 1)
        check_quality(image_type, output_quality)
    except OutputError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--format'" if image_format else "'--output-quality'") from None
    return suffix


def batch(work, paths, output_dir: Path, suffix: str, words, *, recursive, jobs, quiet, sdz=False) -> None:
    """Run a batch command (codec/batch_run.py); exit 1 when any file failed."""
    from sdcodec.codec.images.standard_streams import is_stream

    if any(is_stream(p) for p in (*paths, output_dir)):
        raise typer.BadParameter("- (stdin/stdout) is for one file: INPUT OUTPUT without -o")
    with reported_errors():
        from sdcodec.codec.batch_run import run_batch

        all_done = run_batch(
            work,
            paths,
            output_dir,
            output_suffix=suffix,
            label=words[0],
            verb=words[1],
            recursive=recursive,
            input_suffixes={".sdz"} if sdz else None,
            jobs=jobs,
            quiet=quiet,
            console=stderr,
        )
    if not all_done:
        raise typer.Exit(1)


def check_output(path: Path, force: bool, *inputs: Path) -> None:
    from sdcodec.codec.images.output_files import check_output as check

    check(path, force, *inputs)


def show_version(value: bool) -> None:
    if value:
        from sdcodec import __version__

        print(f"sdcodec {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", "-V", is_eager=True, callback=show_version, help="Print the version and exit."
    ),
) -> None:
    """A perceptual image codec on Stable Diffusion's latent space, and its generative core."""


@app.command()
def encode(
    paths: list[str] = typer.Argument(  # str: reading is checked where it happens (exit 1, not 2)
        ...,
        metavar="PATH",
        help="INPUT OUTPUT: an image (any Pillow format; - reads stdin) and the .sdz file to write "
        "(- writes stdout). Or INPUT... -o DIR: any number of images, directories and glob patterns.",
        show_default=False,
    ),
    output_dir: OutputDir = None,
    recursive: Recursive = False,
    jobs: Jobs = 1,
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
    strip: bool = typer.Option(False, "--strip", help="Drop the input's ICC profile and EXIF (kept by default)."),
) -> None:
    """Encode an image into a .sdz file, or many into a directory (-o DIR)."""
    rate_options_given(quality, bpp, size)
    settings = dict(model=model, quality=quality, bpp=bpp, size=size, caption=caption, effort=effort)
    settings.update(tune=tune.value, device=device, max_pixels=max_pixels, strip_metadata=strip)
    if output_dir is not None:
        from sdcodec.codec.batch_run import EncodeSettings, encode_file

        work = functools.partial(encode_file, EncodeSettings(**settings, force=force))
        batch(work, paths, output_dir, ".sdz", ("encoding", "encoded"), recursive=recursive, jobs=jobs, quiet=quiet)
        return
    input, output = single_file_paths(paths)
    with reported_errors():
        from sdcodec.codec.images import standard_streams as streams

        notice = notifier(quiet)
        if streams.is_stream(output):
            streams.check_stdout()
        else:
            check_output(output, force, *([] if streams.is_stream(input) else [input]))
        from sdcodec import encode_image

        data = encode_image(streams.stdin_image() if streams.is_stream(input) else input, notice=notice, **settings)
        from sdcodec.bitstream import describe
        from sdcodec.codec.images.output_files import write_output

        if streams.is_stream(output):
            streams.write_stdout(data)
        else:
            write_output(output, lambda out: out.write(data), force)
        notice(
            f"wrote {'<stdout>' if streams.is_stream(output) else output}: {len(data)} bytes, {describe(data)['bpp']:.4f} bpp"
        )


@app.command()
def decode(
    paths: list[str] = typer.Argument(  # str: reading is checked where it happens (exit 1, not 2)
        ...,
        metavar="PATH",
        help="INPUT OUTPUT: a .sdz file (- reads stdin) and the image to write, its format from the "
        "extension (- writes stdout, as --format). Or INPUT... -o DIR: any number of .sdz files, "
        "directories and glob patterns.",
        show_default=False,
    ),
    output_dir: OutputDir = None,
    recursive: Recursive = False,
    jobs: Jobs = 1,
    image_format: Optional[str] = typer.Option(
        None, "--format", help="Image format for - and -o DIR outputs: png (default), webp, jpg, avif, tiff, ..."
    ),
    output_quality: Optional[int] = typer.Option(
        None,
        "--output-quality",
        min=1,
        max=100,
        help="Quality of a lossy output format (1-100). Without it WebP is written lossless, "
        "JPEG at 95 with 4:4:4 chroma, AVIF at 90 with 4:4:4; PNG and TIFF are always lossless.",
    ),
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
    """Decode a .sdz file into an image, or many into a directory (-o DIR)."""
    settings = dict(model=model, decoder=decoder, restore_steps=restore_steps, consistency=not no_consistency)
    settings.update(device=device, max_pixels=max_pixels)
    if output_dir is not None:
        suffix = output_suffix(image_format, output_quality, None)
        from sdcodec.codec.batch_run import DecodeSettings, decode_file

        work = functools.partial(decode_file, DecodeSettings(**settings, force=force, output_quality=output_quality))
        batch(
            work,
            paths,
            output_dir,
            suffix,
            ("decoding", "decoded"),
            recursive=recursive,
            jobs=jobs,
            quiet=quiet,
            sdz=True,
        )
        return
    input, output = single_file_paths(paths)
    suffix = output_suffix(image_format, output_quality, output)
    with reported_errors():
        from sdcodec.codec.images import standard_streams as streams
        from sdcodec.codec.images.image_output import image_file_bytes, output_format
        from sdcodec.codec.images.output_files import write_output

        notice = notifier(quiet)
        to_stdout = streams.is_stream(output)
        image_type = output_format(suffix if to_stdout else output.name)
        if to_stdout:
            streams.check_stdout()
        else:
            check_output(output, force, *([] if streams.is_stream(input) else [input]))
        from sdcodec.codec.image_codec import decode_image

        image = decode_image(streams.read_bytes(input), notice=notice, **settings)
        data, mode = image_file_bytes(image, image_type, quality=output_quality, notice=notice)
        if to_stdout:
            streams.write_stdout(data)
        else:
            write_output(output, lambda out: out.write(data), force)
        notice(f"wrote {'<stdout>' if to_stdout else output}: {image.width}x{image.height} {mode} {image_type}")


@app.command()
def info(
    input: Path = typer.Argument(..., help="The .sdz file to describe (- reads stdin)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Describe a .sdz file without decoding it."""
    with reported_errors():
        from sdcodec.bitstream import describe
        from sdcodec.codec.diffusion.parameters import caption_parameters
        from sdcodec.codec.images.standard_streams import read_bytes

        facts = describe(read_bytes(input))
        generation = caption_parameters(facts["caption"])  # a .sdz from gen: its A1111 parameters
        if generation is not None:
            facts["generation_parameters"] = generation
        if as_json:
            print(json.dumps(facts, ensure_ascii=False))
            return
        console = Console(highlight=False, soft_wrap=True, emoji=False)  # ":dog:" in a prompt stays text
        width = max(map(len, facts))
        for key, value in facts.items():
            if key == "generation_parameters":
                console.print(f"{key:>{width}}", markup=False)
                for name, setting in value.items():
                    console.print(f"{'':>{width}}  {name}: {printable(setting)}", markup=False)
                continue
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
PROMPT_HELP = (
    "What to draw; (word:1.3), (word), [word] set emphasis, BREAK starts a new chunk, "
    "[a:b:0.5] switches text mid-way, [a|b] alternates (A1111's syntax)."
)
PromptFile = Annotated[
    Optional[Path],
    typer.Option(
        "--prompt-file",
        help="Prompts, one a line (instead of PROMPT), as A1111's prompts-from-file script; "
        "outputs default to gen-{n}-{seed}.png.",
    ),
]
Negative = Annotated[str, typer.Option("--negative", "-n", help="What to steer away from (same emphasis syntax).")]
Seed = Annotated[
    Optional[int], typer.Option("--seed", help="Seed of the first image (+1 for each next one); random when absent.")
]
Guidance = Annotated[float, typer.Option("--guidance", "-g", help="Classifier-free guidance scale (<= 1: off).")]
Scheduler = Annotated[
    str,
    typer.Option(
        "--scheduler",
        "--sampler",
        help='ddim, pndm, euler, euler-a, dpm++, or an A1111 sampler name, e.g. "DPM++ 2M Karras", "Euler a".',
    ),
]
NumImages = Annotated[int, typer.Option("--num-images", help="Images to generate with one model load.")]
GenModel = Annotated[Optional[str], typer.Option("--model", "-m", help=GEN_MODEL_HELP)]
NoWatermark = Annotated[
    bool, typer.Option("--no-watermark", help="Leave image outputs without the invisible watermark (see `watermark`).")
]
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


@contextlib.contextmanager
def step_progress(quiet: bool) -> Iterator[Optional[Callable[[int, int], None]]]:
    """Denoising steps on stderr (codec/progress.py: a bar on a terminal, a line now and then otherwise)."""
    from sdcodec.codec.progress import Progress

    with Progress("denoising step", quiet=quiet, console=stderr, transient=True) as bar:
        yield None if quiet else lambda done, total: bar.update(done, total)


def run_generation(
    *,
    prompt: Optional[str],
    prompt_file: Optional[Path],
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
    watermark: bool = True,
) -> None:
    """What gen and img2img share: usage checks here, then ``generate_to_files`` does the work."""
    from sdcodec.codec.diffusion.generate import check_options
    from sdcodec.codec.diffusion.generate_files import (
        OUTPUT_FORMATS,
        GenerationRequest,
        generate_jobs_to_files,
        requests_from_prompt_file,
    )

    if (prompt is None) == (prompt_file is None):
        raise typer.BadParameter("give a PROMPT or --prompt-file (one of them)")
    prompt = prompt or ""

    pattern = str(output or f"{'img2img' if input else 'gen'}{'-{n}' if prompt_file else ''}-{{seed}}.png")
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
            prompt=prompt,
            negative=negative,
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
        watermark=watermark,
    )
    with reported_errors(), step_progress(quiet) as progress:
        requests = requests_from_prompt_file(prompt_file, request) if prompt_file else [request]
        generate_jobs_to_files(requests, force=force, notice=notifier(quiet), progress=progress)


@app.command()
def gen(
    prompt: Optional[str] = typer.Argument(None, help=PROMPT_HELP),
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
    prompt_file: PromptFile = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    no_watermark: NoWatermark = False,
) -> None:
    """Generate images from a prompt (txt2img) with Stable Diffusion."""
    run_generation(
        prompt=prompt,
        prompt_file=prompt_file,
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
        watermark=not no_watermark,
    )


@app.command()
def img2img(
    input: Path = typer.Argument(..., help="Starting image, or a .sdz file (its latent is used directly)."),
    prompt: Optional[str] = typer.Argument(None, help=PROMPT_HELP),
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
    prompt_file: PromptFile = None,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    no_watermark: NoWatermark = False,
) -> None:
    """Redraw an image (or a .sdz file's latent) guided by a prompt (img2img)."""
    run_generation(
        prompt=prompt,
        prompt_file=prompt_file,
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
        watermark=not no_watermark,
    )


# --- generative tools (watermark, inpaint, outpaint, upscale) ------------------------------


@app.command()
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


ToolOutput = Annotated[
    Optional[str], typer.Option("--output", "-o", help=".png/.jpg/.webp (parameters embedded); {seed} is filled in.")
]
Steps = Annotated[int, typer.Option("--steps", help="Denoising steps of the full schedule (strength x steps are run).")]
MaskBlur = Annotated[
    Optional[int],
    typer.Option(
        "--mask-blur",
        min=0,
        help="Blur of the mask's edge in pixels, for a soft seam (default: inpaint 4, outpaint 8).",
    ),
]


def diffusion_settings(prompt, negative, seed, steps, guidance, scheduler, model, device, **extra):
    """The shared diffusion settings, checked here so that bad values are usage errors (exit 2)."""
    from sdcodec.codec.diffusion.generate import check_options
    from sdcodec.codec.diffusion.tool_files import Diffusion

    try:
        check_options(
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
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    extra = {key: value for key, value in extra.items() if value is not None}
    return Diffusion(negative, seed, steps, guidance, scheduler, model, device, extra)


@app.command()
def inpaint(
    image: Path = typer.Argument(..., help="The picture, or a .sdz file (its latent is the start)."),
    mask: Path = typer.Argument(..., help="Mask of the same size: white is repainted, black kept, grey blended."),
    prompt: str = typer.Argument(..., help=PROMPT_HELP),
    output: ToolOutput = "inpaint-{seed}.png",
    strength: float = typer.Option(1.0, "--strength", "-s", help="How far the masked area moves, in (0, 1]."),
    mask_blur: MaskBlur = None,
    only_masked: bool = typer.Option(
        False, "--only-masked", help="Inpaint only the mask's box (+ --padding) and paste it back: for large images."
    ),
    padding: int = typer.Option(32, "--padding", min=0, help="With --only-masked: pixels around the mask's box."),
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

    settings = diffusion_settings(
        prompt,
        negative,
        seed,
        steps,
        guidance,
        scheduler,
        model,
        device,
        strength=strength,
        mask_blur=mask_blur,
        only_masked=only_masked,
        padding=padding,
    )
    with reported_errors(), step_progress(quiet) as progress:
        inpaint_file(
            image,
            mask,
            prompt,
            output,
            settings,
            force=force,
            watermark=not no_watermark,
            notice=notifier(quiet),
            progress=progress,
        )


@app.command()
def outpaint(
    image: Path = typer.Argument(..., help="The picture, or a .sdz file (decoded first)."),
    prompt: str = typer.Argument(..., help=PROMPT_HELP),
    extend: str = typer.Option(
        ..., "--extend", help="Pixels to add: left,right,top,bottom (multiples of 8), e.g. 0,128,0,0."
    ),
    output: ToolOutput = "outpaint-{seed}.png",
    strength: float = typer.Option(
        0.8, "--strength", "-s", help="How far the new area moves from the stretched edges, in (0, 1]."
    ),
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

    try:
        sides = parse_extend(extend)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = diffusion_settings(
        prompt, negative, seed, steps, guidance, scheduler, model, device, strength=strength, mask_blur=mask_blur
    )
    with reported_errors(), step_progress(quiet) as progress:
        outpaint_file(
            image,
            prompt,
            output,
            sides,
            settings,
            force=force,
            watermark=not no_watermark,
            notice=notifier(quiet),
            progress=progress,
        )


@app.command()
def upscale(
    image: Path = typer.Argument(..., help="The picture, or a .sdz file."),
    prompt: str = typer.Argument("", help="What the picture shows (guides the upscaler)."),
    output: ToolOutput = "upscale-{seed}.png",
    scale: int = typer.Option(2, "--scale", help="2 or 4; a model's class fixes it (x2 latent, x4 upscaler)."),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        "-m",
        help="A diffusers upscaler (dir or hub id): stabilityai/sd-x2-latent-upscaler (x2) or "
        "stabilityai/stable-diffusion-x4-upscaler (x4). Without it a .sdz is decoded, then resized (Lanczos).",
    ),
    decoder: Optional[str] = typer.Option(
        None, "--decoder", help="For a .sdz that is decoded: the autoencoder (default: the file's own)."
    ),
    noise_level: Optional[int] = typer.Option(
        None, "--noise-level", min=0, help="x4 only: noise added to the input (default 20)."
    ),
    negative: Negative = "",
    seed: Seed = None,
    steps: int = typer.Option(20, "--steps", min=1, help="Denoising steps."),
    guidance: Optional[float] = typer.Option(
        None, "--guidance", "-g", help="Classifier-free guidance (default: 9 for x4, 0 (off) for x2)."
    ),
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
    with reported_errors(), step_progress(quiet) as progress:
        upscale_file(
            image,
            prompt,
            output,
            settings,
            scale=scale,
            decoder=decoder,
            force=force,
            watermark=not no_watermark,
            notice=notifier(quiet),
            progress=progress,
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


# --- archive: collections on Ray Data (codec/archive/; pip install 'sdcodec[ray]') ---------------

archive_app = typer.Typer(
    help="Encode or decode whole collections on Ray Data (local or s3:// gs:// URIs), with a resumable manifest.",
    no_args_is_help=True,
)
app.add_typer(archive_app, name="archive")
Sources = Annotated[
    list[str], typer.Argument(help="Files, directories, globs, or Parquet/CSV manifests (column path), local or URIs.")
]
OutDir = Annotated[str, typer.Option("--out", "-o", help="Output directory or URI (same relative names).")]
JobManifest = Annotated[
    Optional[str], typer.Option("--manifest", help="The Parquet manifest (default: OUT/manifest.parquet).")
]
Address = Annotated[
    Optional[str],
    typer.Option("--ray", help="Ray cluster address (or auto); default: $RAY_ADDRESS, else a local Ray is started."),
]
Actors = Annotated[
    Optional[int],
    typer.Option("--actors", min=1, help="Model replicas (default: one per CPU, or --actors-per-gpu per GPU)."),
]
ActorsPerGpu = Annotated[
    int, typer.Option("--actors-per-gpu", min=1, help="Replicas sharing a GPU (one entropy-codes while another runs).")
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Images per actor call.")]
ObjectStoreMb = Annotated[int, typer.Option("--object-store-mb", min=64, help="A local start's object store size.")]
JobForce = Annotated[
    bool, typer.Option("--force", "-f", help="Redo every input and replace existing files the manifest does not list.")
]


def run_archive(job: Callable[..., object], quiet: bool, ray: dict, **arguments) -> None:
    """Run one archive job; exit 1 with one line when any input failed (each error is in the manifest)."""
    with reported_errors():
        from sdcodec.codec.archive.ray_jobs import RayOptions

        notice = notifier(quiet)
        summary = job(notice=notice, ray_options=RayOptions(**ray), **arguments)
        notice(
            f"{summary.done} done, {summary.skipped} already done, {summary.failed} failed; manifest {summary.manifest}"
        )
        if summary.failed:
            fail(
                f"{summary.failed} input(s) failed (first: {summary.first_error}); all errors are in {summary.manifest}"
            )


@archive_app.command("encode")
def archive_encode(
    sources: Sources,
    out: OutDir,
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    quality: Quality = None,
    bpp: Bpp = None,
    size: Size = None,
    effort: int = typer.Option(1, "--effort", "-e", min=1, max=4, help="As for encode."),
    device: Device = "auto",
    recursive: Recursive = False,
    manifest: JobManifest = None,
    address: Address = None,
    actors: Actors = None,
    actors_per_gpu: ActorsPerGpu = 1,
    batch_size: BatchSize = 4,
    object_store_mb: ObjectStoreMb = 256,
    force: JobForce = False,
    quiet: Quiet = False,
    max_pixels: MaxPixels = 1 << 26,
) -> None:
    """Encode a collection of images to .sdz files on Ray, skipping inputs already done."""
    rate_options_given(quality, bpp, size)
    from sdcodec.codec.archive.jobs import encode_collection

    options = dict(
        model=model, quality=quality, bpp=bpp, size=size, effort=effort, device=device, max_pixels=max_pixels
    )
    ray = dict(address=address, actors=actors, actors_per_gpu=actors_per_gpu, batch_size=batch_size)
    run_archive(
        encode_collection,
        quiet,
        ray | {"object_store_mb": object_store_mb},
        sources=sources,
        output_dir=out,
        encode_options=options,
        recursive=recursive,
        manifest=manifest,
        force=force,
    )


@archive_app.command("decode")
def archive_decode(
    sources: Sources,
    out: OutDir,
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    decoder: Optional[str] = typer.Option(None, "--decoder", help="Decoder SPEC of the files' latent space."),
    restore_steps: Optional[int] = typer.Option(None, "--restore-steps", min=0, help="As for decode."),
    image_format: str = typer.Option("png", "--format", help="Output image format: png, jpg, webp or tiff."),
    device: Device = "auto",
    recursive: Recursive = False,
    manifest: JobManifest = None,
    address: Address = None,
    actors: Actors = None,
    actors_per_gpu: ActorsPerGpu = 1,
    batch_size: BatchSize = 4,
    object_store_mb: ObjectStoreMb = 256,
    force: JobForce = False,
    quiet: Quiet = False,
    max_pixels: MaxPixels = 1 << 26,
) -> None:
    """Decode a collection of .sdz files to images on Ray, skipping inputs already done."""
    if image_format not in ("png", "jpg", "jpeg", "webp", "tif", "tiff"):
        raise typer.BadParameter(f"--format must be png, jpg, webp or tiff, got {image_format!r}")
    from sdcodec.codec.archive.jobs import decode_collection

    options = dict(model=model, decoder=decoder, restore_steps=restore_steps, device=device, max_pixels=max_pixels)
    ray = dict(address=address, actors=actors, actors_per_gpu=actors_per_gpu, batch_size=batch_size)
    run_archive(
        decode_collection,
        quiet,
        ray | {"object_store_mb": object_store_mb},
        sources=sources,
        output_dir=out,
        decode_options=options,
        image_format=image_format,
        recursive=recursive,
        manifest=manifest,
        force=force,
    )


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
