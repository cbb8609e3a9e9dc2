"""``bench``: the rate-distortion benchmark of sdz against JPEG, WebP, AVIF and JPEG XL (benchmarks/run.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sdcodec.codec.commands.options import Model, Quiet
from sdcodec.codec.commands.reporting import notifier, reported_errors

ImageDir = Annotated[Optional[Path], typer.Argument(help="Images to benchmark on (default: ../shared/datasets/kodak).")]
Codecs = Annotated[str, typer.Option("--codecs", help="Comma-separated codecs: sdz, jpeg, webp, avif, jxl.")]
Decoder = Annotated[Optional[str], typer.Option("--decoder", help="Decoder SPEC for the sdz files.")]
RestoreSteps = Annotated[
    int, typer.Option("--restore-steps", min=0, help="U-Net restoration steps when decoding sdz files.")
]
SdzQualities = Annotated[
    Optional[str],
    typer.Option(
        "--sdz-qualities",
        help="Comma-separated sdz knobs: quality 1-100, or -N for a ceiling of N/1000 bpp "
        "(default: -80,-120,1,4,10,20,40; write --sdz-qualities=-80,...).",
    ),
]
Efforts = Annotated[
    str, typer.Option("--effort", help="Comma-separated sdz effort levels to sweep, e.g. 1,2 (one curve each).")
]
MaxImages = Annotated[Optional[int], typer.Option("--max-images", min=1, help="Use only the first N images.")]
ReportDir = Annotated[
    Path,
    typer.Option("--out", "-o", help="Report directory (results are cached there, so a rerun resumes)."),
]
CacheDir = Annotated[
    Optional[Path], typer.Option("--cache", help="Cache directory for the measurements (default: OUT/cache).")
]
CropImage = Annotated[
    Optional[str],
    typer.Option("--crop-image", help="Comma-separated image names for the crops (default: 4 spread over the set)."),
]


def integers(text: str, option: str) -> list[int]:
    """A comma-separated list of integers; anything else is a usage error naming the option."""
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{option} must be integers, got {text!r}") from None


def bench(
    image_dir: ImageDir = None,
    codecs: Codecs = "sdz,jpeg,webp,avif,jxl",
    model: Model = None,
    decoder: Decoder = None,
    restore_steps: RestoreSteps = 0,
    sdz_qualities: SdzQualities = None,
    efforts: Efforts = "1",
    max_images: MaxImages = None,
    out: ReportDir = Path("bench-out"),
    cache: CacheDir = None,
    crop_image: CropImage = None,
    quiet: Quiet = False,
) -> None:
    """Rate-distortion benchmark of sdz against JPEG, WebP, AVIF and JPEG XL, with a Markdown report."""
    names = [name.strip() for name in codecs.split(",") if name.strip()]
    knobs = integers(sdz_qualities, "--sdz-qualities") if sdz_qualities else None
    effort_levels = integers(efforts, "--effort")
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
