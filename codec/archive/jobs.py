"""The archive commands' library side: a collection's rows and options -> one Ray job (``ray_jobs``)."""

from __future__ import annotations

from collections.abc import Callable

from sdcodec.codec.archive import inputs, ray_jobs

MANIFEST_NAME = "manifest.parquet"


def default_manifest(output_dir: str) -> str:
    return output_dir.rstrip("/") + "/" + MANIFEST_NAME


def encode_collection(
    sources: list[str],
    output_dir: str,
    *,
    encode_options: dict,
    manifest: str | None = None,
    recursive: bool = False,
    notice: Callable[[str], None] = lambda message: None,
    **job_options,
) -> ray_jobs.JobSummary:
    """Encode every image of ``sources`` to ``output_dir`` (same relative names, ``.sdz``) on Ray.

    ``encode_options`` are ``sdcodec.encode_image``'s keyword arguments; ``job_options`` are
    ``ray_jobs.run_job``'s (``ray_options``, ``force``).
    """
    rows = inputs.list_rows(
        sources, output_dir, output_suffix=".sdz", input_suffixes=inputs.image_suffixes(), recursive=recursive
    )
    preload = encode_options.get("model")
    return ray_jobs.run_job(
        "encode",
        rows,
        encode_options,
        manifest or default_manifest(output_dir),
        preload=preload,
        notice=notice,
        **job_options,
    )


def decode_collection(
    sources: list[str],
    output_dir: str,
    *,
    decode_options: dict,
    image_format: str = "png",
    manifest: str | None = None,
    recursive: bool = False,
    notice: Callable[[str], None] = lambda message: None,
    **job_options,
) -> ray_jobs.JobSummary:
    """Decode every .sdz of ``sources`` to ``output_dir`` as ``image_format`` files on Ray (see ``encode_collection``)."""
    rows = inputs.list_rows(
        sources, output_dir, output_suffix="." + image_format, input_suffixes=inputs.SDZ_SUFFIXES, recursive=recursive
    )
    preload = decode_options.get("decoder") or decode_options.get("model")
    return ray_jobs.run_job(
        "decode",
        rows,
        decode_options,
        manifest or default_manifest(output_dir),
        preload=preload,
        notice=notice,
        **job_options,
    )
