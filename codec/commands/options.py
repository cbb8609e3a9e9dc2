"""Options that several commands share, declared once as ``Annotated`` aliases, and their parsers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

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


Model = Annotated[Optional[str], typer.Option("--model", "-m", help=MODEL_HELP)]
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
Psnr = Annotated[
    Optional[float],
    typer.Option(
        "--psnr",
        parser=positive_float,
        metavar="DB",
        help="Target PSNR in dB (> 0): the smallest file found whose image reaches it, as cwebp -psnr "
        "(an encode and a decode for each of about 8 qualities and 3 sizes tried; efforts 2-4 then refine "
        "smaller files).",
    ),
]
OutputQuality = Annotated[
    Optional[int],
    typer.Option(
        "--output-quality",
        min=1,
        max=100,
        help="Quality of a lossy output format (1-100). Without it WebP is written lossless, "
        "JPEG at 95 with 4:4:4 chroma, AVIF at 90 with 4:4:4; PNG and TIFF are always lossless.",
    ),
]
Quality = Annotated[
    Optional[int],
    typer.Option("--quality", "-Q", min=1, max=100, help="1-100, higher is finer and larger (default 50)."),
]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="With -o: search directories at every level.")]

# Batch mode (several inputs into -o DIR): codec/images/batch.py names the files, codec/batch_run.py runs them.
OutputDir = Annotated[
    Optional[Path],
    typer.Option(
        "--output-dir",
        "-o",
        help="Write one output per input into this directory (created if missing): photo.png -> DIR/photo.sdz, "
        "a.sdz -> DIR/a.png. Every argument is then an input: files, directories, glob patterns. "
        "With one input, a name with the output's extension (-o photo.sdz, -o photo.png) is that file.",
    ),
]
Jobs = Annotated[
    int,
    typer.Option(
        "--jobs", "-j", min=1, help="With -o: files in parallel (processes with one model and one CPU thread each)."
    ),
]


def rate_options_given(
    quality: Optional[int], bpp: Optional[float], size: Optional[int], psnr: Optional[float] = None
) -> list[str]:
    """The rate options a user gave; more than one is a usage error."""
    options = (("--quality", quality), ("--bpp", bpp), ("--size", size), ("--psnr", psnr))
    given = [name for name, value in options if value is not None]
    if len(given) > 1:
        names = ", ".join(name for name, _ in options if psnr is not None or name != "--psnr")
        raise typer.BadParameter(f"give only one of {names} (got {', '.join(given)})")
    return given
