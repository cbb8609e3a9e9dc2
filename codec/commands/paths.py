"""The paths encode and decode take: INPUT OUTPUT (``-`` for stdin/stdout), or INPUT... -o DIR (a batch)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from sdcodec.codec.commands.reporting import reported_errors, stderr


def single_file_paths(paths: list[str]) -> tuple[Path, Path]:
    """INPUT OUTPUT of the one-file form; anything else is a usage error that says how to batch."""
    if len(paths) != 2:
        raise typer.BadParameter(
            f"give INPUT OUTPUT, or several inputs with -o DIR (got {len(paths)} path(s))", param_hint="INPUT OUTPUT"
        )
    if os.path.isdir(paths[0]):
        raise typer.BadParameter(f"{paths[0]} is a directory: encode or decode its files with -o DIR")
    return Path(paths[0]), Path(paths[1])


def one_file_output(paths: list[str], output_dir: Optional[Path], is_output_file) -> Optional[list[str]]:
    """``-o out.sdz`` (or ``-o out.png`` for decode) with one input: INPUT OUTPUT, as cwebp and ``gen -o`` read it.

    ``-o`` names a directory for a batch; a name with the output's extension that is not an existing
    directory is a file the user meant. Returns the one-file form's paths, or None to keep -o DIR.
    With several inputs (or a directory or glob pattern) such a name is a usage error, not a directory
    called "out.sdz".
    """
    from sdcodec.codec.images.standard_streams import is_stream

    if output_dir is None or is_stream(output_dir) or output_dir.is_dir() or not output_dir.suffix:
        return None
    if not is_output_file(output_dir.name):
        return None
    single = len(paths) == 1 and not os.path.isdir(paths[0]) and not any(ch in paths[0] for ch in "*?[")
    if not single:
        raise typer.BadParameter(
            f"{output_dir} names a file, but -o with several inputs takes a directory: "
            "write one file with INPUT OUTPUT (or INPUT -o FILE), several with -o DIR",
            param_hint="'-o'",
        )
    return [paths[0], str(output_dir)]


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
