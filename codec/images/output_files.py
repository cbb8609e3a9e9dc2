"""Output files that cannot leave debris, and that never replace what they should not.

On Linux the output is written as an unnamed file (``O_TMPFILE``) in the target directory and
linked into place only when complete: a process killed at any moment, even by SIGKILL, leaves
the directory exactly as it was, because an unnamed file vanishes with its last descriptor.
Without ``--force`` the link is made with ``link(2)``, which fails if the name exists, so the
no-overwrite rule holds at the moment of writing: of two concurrent writers one fails cleanly.
With ``--force`` the finished file is linked under a hidden temporary name and renamed over the
target (the only window in which a SIGKILL can leave a file behind is between those two calls).
Where ``O_TMPFILE`` is unsupported, a hidden ``.NAME.XXXX.part`` file is written instead and
removed on failure, on SIGINT and on SIGTERM (which the CLI turns into an orderly exit).

Only regular files are ever replaced: a FIFO, device, socket, directory or symbolic link as the
output is refused, with or without ``--force``. Standard library only; no torch.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sdcodec.codec.errors import SdcodecError

# Tests set this to exercise the .part fallback on machines that do support O_TMPFILE.
FORCE_FALLBACK_ENV = "SDCODEC_NO_TMPFILE"


class OutputError(SdcodecError):
    """The output path cannot or must not be written."""


def check_output(path: Path, force: bool, *inputs: Path) -> None:
    """Everything about the output that can be known before the work starts; raises OutputError.

    Called before any model is loaded, so a bad output location costs nothing.
    """
    for source in inputs:
        if path.exists() and source.exists() and path.resolve() == source.resolve():
            raise OutputError(f"{path} is also the input; choose another output file")
    directory = path.parent
    if not directory.exists():
        raise OutputError(f"directory {directory} does not exist")
    if not directory.is_dir():
        raise OutputError(f"{directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"directory {directory} is not writable")
    _check_replaceable(path, force)


def _check_replaceable(path: Path, force: bool) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(f"{path} is a symbolic link; refusing to replace it (write to its target's path instead)")
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise OutputError(f"{path} is {kind}; refusing to replace it, with or without --force")
    if not force:
        raise OutputError(f"{path} exists; pass --force to overwrite it")


def write_output(path: Path, write: Callable[[BinaryIO], None], force: bool) -> None:
    """Write a file through ``write(file_object)``; it appears at ``path`` complete or not at all."""
    path = Path(path)
    _check_replaceable(path, force)
    handle = None if os.environ.get(FORCE_FALLBACK_ENV) else _open_unnamed(path.parent)
    if handle is None:
        _write_through_part_file(path, write, force)
        return
    with os.fdopen(handle, "wb") as out:
        write(out)
        out.flush()
        os.fsync(out.fileno())
        source = f"/proc/self/fd/{out.fileno()}"
        if not force:
            _link_new(source, path)
            return
        temporary = _unused_name(path)
        _link(source, temporary)
        _replace(temporary, path)


def _link(source: str | Path, path: Path) -> None:
    """linkat(2) with AT_SYMLINK_FOLLOW, so /proc/self/fd/N links the open file itself.

    os.link only passes that flag when given a directory descriptor (else it calls link(2), which
    would try to link the /proc symlink and fail with EXDEV).
    """
    directory = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.link(source, path.name, src_dir_fd=directory, dst_dir_fd=directory, follow_symlinks=True)
    finally:
        os.close(directory)


def _open_unnamed(directory: Path) -> int | None:
    """A descriptor of a new unnamed file in ``directory``, or None where O_TMPFILE is unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not Path("/proc/self/fd").is_dir():
        return None
    try:
        handle = os.open(directory, flag | os.O_WRONLY, 0o666)  # the umask applies, as for any new file
    except OSError:  # EOPNOTSUPP, EISDIR, EINVAL: a filesystem or kernel without O_TMPFILE
        return None
    return handle


def _link_new(source: str | Path, path: Path) -> None:
    try:
        _link(source, path)
    except FileExistsError:
        raise OutputError(
            f"{path} exists (written meanwhile by another process); pass --force to overwrite it"
        ) from None


def _replace(temporary: Path, path: Path) -> None:
    try:
        _check_replaceable(path, force=True)  # it may have changed while we worked
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _unused_name(path: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    os.unlink(name)
    return Path(name)


def _write_through_part_file(path: Path, write: Callable[[BinaryIO], None], force: bool) -> None:
    """The fallback: a hidden .part file, removed on any failure (SIGTERM and SIGINT included)."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(handle, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual mode
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        if force:
            _replace(temporary, path)
        else:
            _link_new(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_image(image, path: Path, force: bool, notice: Callable[[str], None], *, quality: int | None = None) -> str:
    """Save an image in the format its extension names (see ``image_output``); returns the mode saved.

    Formats without alpha get an RGBA image flattened to RGB, with a notice: the mode returned
    is then RGB, what the file holds.
    """
    from sdcodec.codec.images.image_output import image_file_bytes, output_format

    data, mode = image_file_bytes(image, output_format(Path(path).name), quality=quality, notice=notice)
    write_output(path, lambda out: out.write(data), force)
    return mode
