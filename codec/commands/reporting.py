"""How every command reports: one line on stderr per failure (exit 1), notices and progress on stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Optional, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")

stderr = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # an error stays one line


class Failure(Exception):
    """A runtime failure the CLI reports in one line with exit code 1."""


def fail(message: str) -> None:
    raise Failure(message)


@contextlib.contextmanager
def reported_errors(subject: str = "") -> Iterator[None]:
    """Turn every failure into one line on stderr and exit 1 (SDCODEC_DEBUG=1 shows tracebacks).

    ``subject`` (a file name, when a command handles several) starts the line unless the message names it.
    """
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
        from sdcodec.bitstream.errors import error_line
        from sdcodec.codec.errors import SdcodecError

        known = isinstance(exc, (Failure, SdcodecError, BitstreamError))
        prefix = "error" if known else f"error ({type(exc).__name__})"
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, BitstreamError):
            message = error_line(exc)
        if subject and subject not in message:
            message = f"{subject}: {message}"
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


@contextlib.contextmanager
def step_progress(quiet: bool) -> Iterator[Optional[Callable[[int, int], None]]]:
    """Denoising steps on stderr (codec/progress.py: a bar on a terminal, a line now and then otherwise)."""
    from sdcodec.codec.progress import Progress

    with Progress("denoising step", quiet=quiet, console=stderr, transient=True) as bar:
        yield None if quiet else lambda done, total: bar.update(done, total)


def usage_checked(check: Callable[..., T], *args, **kwargs) -> T:
    """Run a library check or parser whose ``ValueError`` is the user's mistake: a usage error (exit 2)."""
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
