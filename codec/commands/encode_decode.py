"""``encode``, ``decode`` and ``info``: images to .sdz files and back, one file or a directory of them."""

from __future__ import annotations

import functools
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from sdcodec.codec.commands.options import (
    Bpp,
    Device,
    Force,
    Jobs,
    MaxPixels,
    Model,
    OutputDir,
    OutputQuality,
    Psnr,
    Quality,
    Quiet,
    Recursive,
    Size,
    rate_options_given,
)
from sdcodec.codec.commands.paths import batch, one_file_output, output_suffix, single_file_paths
from sdcodec.codec.commands.reporting import notifier, printable, reported_errors


class Tune(str, Enum):
    """What --effort 2-4 optimise (codec/rate_distortion/distortion.py)."""

    psnr = "psnr"
    ssim = "ssim"
    lpips = "lpips"


# str, not Path: reading is checked where it happens (exit 1, not 2).
EncodePaths = Annotated[
    list[str],
    typer.Argument(
        metavar="PATH",
        help="INPUT OUTPUT: an image (any Pillow format; - reads stdin) and the .sdz file to write "
        "(- writes stdout). Or INPUT... -o DIR: any number of images, directories and glob patterns.",
        show_default=False,
    ),
]
Caption = Annotated[str, typer.Option("--caption", help="Text stored in the file; conditions restoration on decode.")]
Effort = Annotated[
    int,
    typer.Option(
        "--effort",
        "-e",
        min=1,
        max=4,
        help="1: fast. 2-4: search the latent through the decoder for a better image at the same size "
        "(4, 12, 30 decoder passes; TAEF2 on a CPU: 11x, 30x and 69x the time of level 1; "
        "a GPU is the place for 3-4). At one --quality every level writes level 1's size.",
    ),
]
TuneOption = Annotated[
    Tune,
    typer.Option(
        "--tune",
        help="What --effort 2-4 optimise: psnr (MSE), ssim (MS-SSIM with some MSE), lpips (needs its weights).",
    ),
]
Strip = Annotated[bool, typer.Option("--strip", help="Drop the input's ICC profile and EXIF (kept by default).")]

DecodePaths = Annotated[
    list[str],
    typer.Argument(
        metavar="PATH",
        help="INPUT OUTPUT: a .sdz file (- reads stdin) and the image to write, its format from the "
        "extension (- writes stdout, as --format). Or INPUT... -o DIR: any number of .sdz files, "
        "directories and glob patterns.",
        show_default=False,
    ),
]
ImageFormat = Annotated[
    Optional[str],
    typer.Option("--format", help="Image format for - and -o DIR outputs: png (default), webp, jpg, avif, tiff, ..."),
]
DecodeModel = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model SPEC; a full SD pipeline also enables restoration."),
]
Decoder = Annotated[
    Optional[str],
    typer.Option("--decoder", help="Decoder SPEC of the file's latent space, e.g. taesd:DIR for a fast preview."),
]
RestoreSteps = Annotated[
    Optional[int],
    typer.Option("--restore-steps", min=0, help="U-Net restoration steps (default: the file's hint; 0 = off)."),
]
NoConsistency = Annotated[
    bool,
    typer.Option("--no-consistency", help="Do not project restored latents back into their quantization bins."),
]


def _is_image_name(name: str) -> bool:
    """Whether decode could write an image called ``name`` (its extension is a Pillow output format)."""
    from sdcodec.codec.images.image_output import OutputError, output_format

    try:
        output_format(name)
    except OutputError:
        return False
    return True


def encode(
    paths: EncodePaths,
    output_dir: OutputDir = None,
    recursive: Recursive = False,
    jobs: Jobs = 1,
    model: Model = None,
    quality: Quality = None,
    bpp: Bpp = None,
    size: Size = None,
    psnr: Psnr = None,
    caption: Caption = "",
    effort: Effort = 1,
    tune: TuneOption = Tune.psnr,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    max_pixels: MaxPixels = 1 << 26,
    strip: Strip = False,
) -> None:
    """Encode an image into a .sdz file, or many into a directory (-o DIR)."""
    rate_options_given(quality, bpp, size, psnr)
    settings = dict(model=model, quality=quality, bpp=bpp, size=size, psnr=psnr, caption=caption, effort=effort)
    settings.update(tune=tune.value, device=device, max_pixels=max_pixels, strip_metadata=strip)
    one_file = one_file_output(paths, output_dir, lambda name: name.lower().endswith(".sdz"))
    if one_file:
        paths, output_dir = one_file, None
    if output_dir is not None:
        from sdcodec.codec.batch_run import EncodeSettings, encode_file

        work = functools.partial(encode_file, EncodeSettings(**settings, force=force))
        batch(work, paths, output_dir, ".sdz", ("encoding", "encoded"), recursive=recursive, jobs=jobs, quiet=quiet)
        return
    input, output = single_file_paths(paths)
    if output.suffix.lower() != ".sdz" and _is_image_name(output.name):
        # A .sdz in a file called photo.webp would fool every viewer: the user meant another command.
        raise typer.BadParameter(
            f"{output} names an image format, but encode writes a .sdz file: name it "
            f"{output.with_suffix('.sdz').name} (decode writes images)",
            param_hint="OUTPUT",
        )
    with reported_errors():
        from sdcodec.codec.images.standard_streams import check_destination, is_stream, stdin_image, write_destination

        notice = notifier(quiet)
        check_destination(output, force, input)
        from sdcodec import encode_image
        from sdcodec.bitstream import describe

        data = encode_image(stdin_image() if is_stream(input) else input, notice=notice, **settings)
        written = write_destination(output, data, force)
        notice(f"wrote {written}: {len(data)} bytes, {describe(data)['bpp']:.4f} bpp")


def decode(
    paths: DecodePaths,
    output_dir: OutputDir = None,
    recursive: Recursive = False,
    jobs: Jobs = 1,
    image_format: ImageFormat = None,
    output_quality: OutputQuality = None,
    model: DecodeModel = None,
    decoder: Decoder = None,
    restore_steps: RestoreSteps = None,
    no_consistency: NoConsistency = False,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    max_pixels: MaxPixels = 1 << 26,
) -> None:
    """Decode a .sdz file into an image, or many into a directory (-o DIR)."""
    settings = dict(model=model, decoder=decoder, restore_steps=restore_steps, consistency=not no_consistency)
    settings.update(device=device, max_pixels=max_pixels)
    one_file = one_file_output(paths, output_dir, _is_image_name)
    if one_file:
        paths, output_dir = one_file, None
    if output_dir is not None:
        suffix = output_suffix(image_format, output_quality, None)
        from sdcodec.codec.batch_run import DecodeSettings, decode_file

        work = functools.partial(decode_file, DecodeSettings(**settings, force=force, output_quality=output_quality))
        words = ("decoding", "decoded")
        batch(work, paths, output_dir, suffix, words, recursive=recursive, jobs=jobs, quiet=quiet, sdz=True)
        return
    input, output = single_file_paths(paths)
    suffix = output_suffix(image_format, output_quality, output)
    with reported_errors():
        from sdcodec.codec.images import standard_streams as streams
        from sdcodec.codec.images.image_output import image_file_bytes, output_format

        notice = notifier(quiet)
        image_type = output_format(suffix if streams.is_stream(output) else output.name)
        streams.check_destination(output, force, input)
        from sdcodec.codec.image_decoding import decode_image

        image = decode_image(streams.read_bytes(input), notice=notice, **settings)
        data, mode = image_file_bytes(image, image_type, quality=output_quality, notice=notice)
        written = streams.write_destination(output, data, force)
        notice(f"wrote {written}: {image.width}x{image.height} {mode} {image_type}")


def info(
    inputs: list[Path] = typer.Argument(
        ..., metavar="FILE", help="The .sdz files to describe (- reads stdin), as in `sdcodec info *.sdz`."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file, a line each (JSON Lines)."),
) -> None:
    """Describe .sdz files without decoding them.

    With several files each table starts with the file's name (JSON: a "file" entry); a file that
    cannot be read is one error line, the others are still described, and the exit code is 1.
    """
    several = len(inputs) > 1
    failed = False
    for position, input in enumerate(inputs):
        try:
            with reported_errors(str(input) if several else ""):
                _print_info(input, as_json, name=str(input) if several else None, first=position == 0)
        except typer.Exit as stop:
            if stop.exit_code != 1:  # interrupted
                raise
            failed = True
    if failed:
        raise typer.Exit(1)


def _print_info(input: Path, as_json: bool, *, name: str | None, first: bool) -> None:
    """One file's facts: a table (headed by ``name`` when given) or one JSON line."""
    from sdcodec.bitstream import describe
    from sdcodec.codec.diffusion.parameters import caption_parameters
    from sdcodec.codec.images.standard_streams import read_bytes

    facts = describe(read_bytes(input))
    generation = caption_parameters(facts["caption"])  # a .sdz from gen: its A1111 parameters
    if generation is not None:
        facts["generation_parameters"] = generation
    if name is not None:
        facts = {"file": name, **facts}
    if as_json:
        print(json.dumps(facts, ensure_ascii=False), flush=True)
        return
    console = Console(highlight=False, soft_wrap=True, emoji=False)  # ":dog:" in a prompt stays text
    if name is not None and not first:
        console.print()
    for line in fact_lines(facts):
        console.print(line, markup=False)


def fact_lines(facts: dict) -> list[str]:
    """``info``'s table: names right-aligned, sizes as WxH, floats to 4 places, text made printable."""
    width = max(map(len, facts))
    lines = []
    for key, value in facts.items():
        if key == "generation_parameters":
            lines.append(f"{key:>{width}}")
            lines += [f"{'':>{width}}  {name}: {printable(setting)}" for name, setting in value.items()]
            continue
        if isinstance(value, float):
            shown = f"{value:.4f}"
        else:
            shown = "x".join(map(str, value)) if isinstance(value, list) else value
        lines.append(f"{key:>{width}}  {printable(str(shown))}")
    return lines
