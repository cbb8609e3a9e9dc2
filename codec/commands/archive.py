"""``archive encode`` / ``archive decode``: collections on Ray Data (codec/archive/; pip install 'sdcodec[ray]')."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Optional

import typer

from sdcodec.codec.commands.options import (
    Bpp,
    Device,
    MaxPixels,
    Model,
    OutputQuality,
    Psnr,
    Quality,
    Quiet,
    Recursive,
    Size,
    rate_options_given,
)
from sdcodec.codec.commands.reporting import fail, notifier, reported_errors

archive_app = typer.Typer(
    help="Encode or decode whole collections on Ray Data (local or s3:// gs:// URIs), with a resumable manifest.",
    no_args_is_help=True,
)
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
Effort = Annotated[int, typer.Option("--effort", "-e", min=1, max=4, help="As for encode.")]
Decoder = Annotated[Optional[str], typer.Option("--decoder", help="Decoder SPEC of the files' latent space.")]
RestoreSteps = Annotated[Optional[int], typer.Option("--restore-steps", min=0, help="As for decode.")]
ImageFormat = Annotated[
    str, typer.Option("--format", help="Output image format, as decode's: png (default), webp, jpg, avif, tiff, ...")
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
        if summary.noted:
            notice(f"{summary.noted} output(s) with notes (first: {summary.first_note}); all are in {summary.manifest}")
        if summary.failed:
            fail(
                f"{summary.failed} input(s) failed (first: {summary.first_error}); all errors are in {summary.manifest}"
            )


@archive_app.command("encode")
def archive_encode(
    sources: Sources,
    out: OutDir,
    model: Model = None,
    quality: Quality = None,
    bpp: Bpp = None,
    size: Size = None,
    psnr: Psnr = None,
    effort: Effort = 1,
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
    rate_options_given(quality, bpp, size, psnr)
    from sdcodec.codec.archive.jobs import encode_collection

    options = dict(model=model, quality=quality, bpp=bpp, size=size, psnr=psnr, effort=effort, device=device)
    options.update(max_pixels=max_pixels)
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
    model: Model = None,
    decoder: Decoder = None,
    restore_steps: RestoreSteps = None,
    image_format: ImageFormat = "png",
    output_quality: OutputQuality = None,
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
    from sdcodec.codec.archive.jobs import decode_collection
    from sdcodec.codec.commands.paths import output_suffix

    image_format = output_suffix(image_format, output_quality, None).lstrip(".")  # a usage error if unwritable
    options = dict(model=model, decoder=decoder, restore_steps=restore_steps, device=device, max_pixels=max_pixels)
    options.update(output_quality=output_quality)
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
