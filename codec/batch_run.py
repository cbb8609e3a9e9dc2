"""Encoding or decoding many files: one line per failure, the rest go on; optionally in parallel.

``--jobs N`` runs N worker processes (``spawn``: no fork of a process that holds torch threads),
each with one torch thread and its own model, loaded once on its first file (``model_cache``).
A model that cannot be loaded stops the batch (every file would fail the same way); any other
error fails its file only. Outputs follow the single-file rules: written whole or not at all,
never over an existing file without ``force``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from rich.console import Console

from sdcodec.codec.errors import ModelLoadError, SdcodecError
from sdcodec.codec.images.batch import BatchInputError, InputFile, expand_inputs, output_path
from sdcodec.codec.images.image_output import PALETTE_FORMATS, palette_notice
from sdcodec.codec.progress import Progress


@dataclasses.dataclass(frozen=True)
class EncodeSettings:
    """What ``encode_image`` is called with for every file (picklable: sent to the workers)."""

    model: str | None = None
    quality: int | None = None
    bpp: float | None = None
    size: int | None = None
    psnr: float | None = None
    caption: str = ""
    effort: int = 1
    tune: str = "psnr"
    device: str = "auto"
    max_pixels: int = 1 << 26
    force: bool = False
    strip_metadata: bool = False


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """What ``decode_image`` and the image writer are called with for every file."""

    model: str | None = None
    decoder: str | None = None
    restore_steps: int | None = None
    consistency: bool = True
    device: str = "auto"
    max_pixels: int = 1 << 26
    force: bool = False
    output_quality: int | None = None


@dataclasses.dataclass(frozen=True)
class FileResult:
    """One file's outcome; ``pixels`` is the image's size (for bits per pixel), ``error`` one line or None."""

    source: Path
    target: Path
    bytes_in: int = 0
    bytes_out: int = 0
    pixels: int = 0
    error: str | None = None
    fatal: bool = False  # the error would repeat for every file (the model does not load)
    warnings: tuple[str, ...] = ()  # what the file lost on the way (metadata, transparency, restoration)
    infos: tuple[str, ...] = ()  # one-time information met on the way (a cache being filled), not losses

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def bpp(self) -> float:
        """Bits per pixel of the .sdz side (the output when encoding, the input when decoding)."""
        sdz_bytes = self.bytes_out if self.target.suffix.lower() == ".sdz" else self.bytes_in
        return 8 * sdz_bytes / self.pixels if self.pixels else 0.0


# Notices that only say what a file's encode or decode is doing; the batch's progress bar says that.
ACTIVITY_NOTICES = ("encoding ", "decoding ", "refining ", "restoring ", "searching ", "searched ")
# Notices about the run rather than the file (the model's metric measured once into its cache):
# printed as they are, not as something this file lost.
INFORMATION_NOTICES = ("measuring ",)
# Notices about the output format that every file would repeat (GIF's palette): said once.
FORMAT_NOTICES = frozenset(palette_notice(image_format) for image_format in PALETTE_FORMATS)
# Every other notice reports something lost (metadata, transparency, restoration) and is printed
# with the file's name.


def _collect_notices(warnings: list[str], infos: list[str]) -> Callable[[str], None]:
    def notice(message: str) -> None:
        if message.startswith(INFORMATION_NOTICES):
            infos.append(message)
        elif not message.startswith(ACTIVITY_NOTICES):
            warnings.append(message)

    return notice


def encode_file(settings: EncodeSettings, source: Path, target: Path) -> FileResult:
    """Encode one file into one .sdz; every failure becomes the result's one-line error."""
    warnings: list[str] = []
    infos: list[str] = []

    def work() -> FileResult:
        from sdcodec.bitstream import read_sdz
        from sdcodec.codec.image_codec import encode_image
        from sdcodec.codec.images.output_files import check_output, write_output

        check_output(target, settings.force, source)
        options = dataclasses.asdict(settings)
        force = options.pop("force")
        data = encode_image(source, **options, notice=_collect_notices(warnings, infos))
        write_output(target, lambda out: out.write(data), force)
        header = read_sdz(data)
        pixels = header.width * header.height
        return FileResult(
            source, target, source.stat().st_size, len(data), pixels, warnings=tuple(warnings), infos=tuple(infos)
        )

    return _reported(work, source, target)


def decode_file(settings: DecodeSettings, source: Path, target: Path) -> FileResult:
    """Decode one .sdz into one image file (format from ``target``'s extension)."""
    warnings: list[str] = []
    infos: list[str] = []

    def work() -> FileResult:
        from sdcodec.codec.image_decoding import decode_image, read_file
        from sdcodec.codec.images.output_files import check_output, save_image

        check_output(target, settings.force, source)
        data = read_file(source)
        image = decode_image(
            data,
            model=settings.model,
            decoder=settings.decoder,
            restore_steps=settings.restore_steps,
            consistency=settings.consistency,
            device=settings.device,
            max_pixels=settings.max_pixels,
            notice=_collect_notices(warnings, infos),
        )
        save_image(image, target, settings.force, _collect_notices(warnings, infos), quality=settings.output_quality)
        pixels = image.width * image.height
        return FileResult(
            source, target, len(data), target.stat().st_size, pixels, warnings=tuple(warnings), infos=tuple(infos)
        )

    return _reported(work, source, target)


def _reported(work: Callable[[], FileResult], source: Path, target: Path) -> FileResult:
    from sdcodec.bitstream import BitstreamError
    from sdcodec.bitstream.errors import error_line

    try:
        return work()
    except MemoryError:
        return FileResult(source, target, error="out of memory (see --max-pixels)")
    except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the batch
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, BitstreamError):
            message = error_line(exc)
        elif not isinstance(exc, (SdcodecError, OSError)):
            message = f"{type(exc).__name__}: {message}"
        if str(source) not in message:
            message = f"{source}: {message}"
        return FileResult(source, target, error=message, fatal=isinstance(exc, ModelLoadError))


Work = Callable[[Path, Path], FileResult]  # a functools.partial of encode_file / decode_file


def run_batch(
    work: Work,
    paths: Sequence[str | Path],
    output_dir: Path,
    *,
    output_suffix: str,
    label: str,
    verb: str,
    recursive: bool = False,
    input_suffixes: Iterable[str] | None = None,
    jobs: int = 1,
    quiet: bool = False,
    console: Console | None = None,
) -> bool:
    """The whole batch command (``label``: "encoding", ``verb``: "encoded"): expand the inputs, map the names, run, print one line per failure
    and a summary; progress on stderr (``codec.progress``). Returns whether every file succeeded.
    An argument that names nothing raises ``BatchInputError`` before any work.
    """
    console = console or Console(stderr=True, highlight=False, soft_wrap=True)
    items = expand_inputs(paths, recursive, suffixes=input_suffixes)
    pairs, refused = plan_outputs(items, output_dir, output_suffix)
    for message in refused:
        console.print(f"error: {message}", style="red", markup=False, highlight=False)
    if not pairs and not refused:
        raise BatchInputError(
            "no input files found (a directory is searched for "
            + ("its subdirectories too" if recursive else "its own files; -r searches below")
            + ")"
        )
    said: set[str] = set()  # notices about the output format, printed once for the run
    with Progress(label, total=len(pairs), quiet=quiet, console=console) as progress:

        def done(result: FileResult) -> None:
            for info in () if quiet else result.infos:
                progress.print(info)
            for warning in () if quiet else result.warnings:
                if warning in FORMAT_NOTICES:
                    if warning not in said:
                        said.add(warning)
                        progress.print(warning, style="yellow")
                    continue
                progress.print(f"{result.source}: {warning}", style="yellow")
            if not result.ok:
                progress.print(f"error: {result.error}", style="red")
            progress.advance(result.source.name)

        results = run_files(work, pairs, jobs=jobs, done=done)
    cancelled = len(pairs) - len(results)
    if not quiet or refused or cancelled or not all(r.ok for r in results):
        console.print(summary(results, verb, skipped=len(refused) + cancelled), markup=False, highlight=False)
    return not refused and not cancelled and all(result.ok for result in results)


def plan_outputs(
    items: Sequence[InputFile], output_dir: Path, suffix: str
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(source, target) pairs, and one message per input refused before any work: two inputs that
    would write the same output, or an output directory that cannot be made. Directories are created."""
    pairs, refused, claimed = [], [], {}
    for item in items:
        target = output_path(item, output_dir, suffix)
        if target in claimed:
            refused.append(f"{item.path}: {claimed[target]} already writes {target}; skipped")
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            refused.append(f"{item.path}: cannot create directory {target.parent}: {exc.strerror or exc}")
            continue
        claimed[target] = item.path
        pairs.append((item.path, target))
    return pairs, refused


def run_files(
    work: Work, pairs: Sequence[tuple[Path, Path]], *, jobs: int = 1, done: Callable[[FileResult], None]
) -> list[FileResult]:
    """Run ``work`` on each (source, target), calling ``done`` as each finishes; stops early on a fatal error."""
    if jobs <= 1 or len(pairs) <= 1:
        results = []
        for source, target in pairs:
            results.append(work(source, target))
            done(results[-1])
            if results[-1].fatal:
                break
        return results
    return _run_in_processes(work, pairs, min(jobs, len(pairs)), done)


def _run_in_processes(
    work: Work, pairs: Sequence[tuple[Path, Path]], jobs: int, done: Callable[[FileResult], None]
) -> list[FileResult]:
    context = multiprocessing.get_context("spawn")
    results: list[FileResult] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_setup) as pool:
        pending = {pool.submit(work, source, target) for source, target in pairs}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                results.append(future.result())
                done(results[-1])
            if any(result.fatal for result in results):
                for future in pending:
                    future.cancel()
                break
    return results


def _worker_setup() -> None:
    """One torch thread per worker (the workers share the cores), quiet libraries, SIGINT left to the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from sdcodec.cli import quiet_libraries

    quiet_libraries()


def summary(results: Sequence[FileResult], verb: str, skipped: int = 0) -> str:
    """One line: files done and failed, bytes in and out, mean bits per pixel of the .sdz files."""
    good = [r for r in results if r.ok]
    failed = len(results) - len(good) + skipped
    bytes_in = sum(r.bytes_in for r in good)
    bytes_out = sum(r.bytes_out for r in good)
    line = f"{verb} {len(good)} file(s)"
    if failed:
        line += f", {failed} failed"
    if good:
        mean_bpp = sum(r.bpp for r in good) / len(good)
        line += f": {_size(bytes_in)} in, {_size(bytes_out)} out, mean {mean_bpp:.4f} bpp"
    return line


def _size(count: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("kB", 1_000)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"
