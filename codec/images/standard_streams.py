"""``-`` as a file name: standard input for what is read, standard output for what is written.

When a command writes its result to standard output, nothing else may go there: progress and
notices already go to stderr. Binary data is not written to a terminal (as gzip refuses to).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from sdcodec.codec.errors import SdcodecError
from sdcodec.codec.images.output_files import check_output, write_output

STREAM = "-"


def is_stream(path: str | Path) -> bool:
    """Whether a command-line path means standard input or output."""
    return str(path) == STREAM


def read_stdin() -> bytes:
    """All of standard input; refused when it is a terminal (the command would wait for typed bytes)."""
    if sys.stdin is None or sys.stdin.isatty():
        raise SdcodecError("standard input is a terminal; pipe a file in (< file or |) or name the file")
    return sys.stdin.buffer.read()


def stdin_image() -> io.BytesIO:
    """Standard input as a named, seekable file for the image loader (its errors then name <stdin>)."""
    stream = io.BytesIO(read_stdin())
    stream.name = "<stdin>"
    return stream


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, or standard input's for ``-``."""
    if is_stream(path):
        return read_stdin()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SdcodecError(f"cannot read {path}: {exc.strerror or exc}") from None


def check_stdout() -> None:
    """Refuse before any work when standard output is a terminal (binary data would garble it)."""
    if sys.stdout.isatty():
        raise SdcodecError("refusing to write binary data to a terminal; redirect standard output (> file or |)")


def write_stdout(data: bytes) -> None:
    check_stdout()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def check_destination(output: str | Path, force: bool, source: str | Path) -> None:
    """Refuse before any work: a terminal as standard output, or an output file that must not be
    written (it exists and ``force`` is off, or it is the input)."""
    if is_stream(output):
        check_stdout()
    else:
        check_output(Path(output), force, *([] if is_stream(source) else [Path(source)]))


def write_destination(output: str | Path, data: bytes, force: bool) -> str:
    """``data`` to standard output, or whole or not at all to the file; returns the name a notice shows."""
    if is_stream(output):
        write_stdout(data)
        return "<stdout>"
    write_output(Path(output), lambda out: out.write(data), force)
    return str(output)
