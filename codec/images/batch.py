"""Which files a batch command works on, and the name each output gets. No torch (Pillow only).

``expand_inputs`` turns what a user typed (files, directories, glob patterns) into a sorted list
of files, each with the path its output keeps below the output directory: a file named directly
keeps its name (``photo.png``), a file found in a directory keeps its path below that directory
(``trip/day1/photo.png`` with ``-r``). ``output_path`` then maps ``photo.png`` to ``photo.sdz``
(or ``photo.sdz`` to ``photo.png``). Used by ``encode``/``decode`` with several inputs and by
archive modes that reuse the same rules.
"""

from __future__ import annotations

import functools
import glob
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sdcodec.codec.errors import SdcodecError

SDZ_SUFFIXES = frozenset({".sdz"})


class BatchInputError(SdcodecError):
    """An input that names nothing (no file, directory or matching pattern)."""


@dataclass(frozen=True)
class InputFile:
    """A file to work on: ``path`` as found, ``relative`` the path its output keeps below the output directory."""

    path: Path
    relative: Path


@functools.cache
def image_suffixes() -> frozenset[str]:
    """Extensions of the image formats Pillow can read (what a directory is searched for when encoding)."""
    from PIL import Image

    from sdcodec.codec.images.heif_input import register_heif_reader

    Image.init()
    register_heif_reader()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN and fmt != "SDZ")


def expand_inputs(
    paths: Sequence[str | Path], recursive: bool = False, *, suffixes: Iterable[str] | None = None
) -> list[InputFile]:
    """Files named by ``paths``: files as given, directories' files (all levels with ``recursive``),
    glob patterns (``*.png``, ``**/*.png``) where no such file exists. A directory contributes only
    files whose extension is in ``suffixes`` (default: the image formats Pillow reads) and no hidden
    names; a file named directly is always taken. Duplicates are dropped, order is kept per
    argument (sorted within one). Raises ``BatchInputError`` for an argument that names nothing.
    """
    wanted = image_suffixes() if suffixes is None else frozenset(s.lower() for s in suffixes)
    found: list[InputFile] = []
    seen: set[Path] = set()
    for argument in map(str, paths):
        for item in _expand_one(argument, recursive, wanted):
            key = item.path.resolve()
            if key not in seen:
                seen.add(key)
                found.append(item)
    return found


def _expand_one(argument: str, recursive: bool, wanted: frozenset[str]) -> list[InputFile]:
    path = Path(argument)
    try:
        if path.is_dir():
            return _directory_files(path, recursive, wanted)
        if path.exists():
            return [InputFile(path, Path(path.name))]
    except PermissionError:
        raise BatchInputError(f"{argument}: permission denied") from None
    if glob.has_magic(argument):
        matches = sorted(Path(m) for m in glob.glob(argument, recursive=True))
        files = [InputFile(m, Path(m.name)) for m in matches if m.is_file()]
        if files:
            return files
        raise BatchInputError(f"{argument}: no file matches this pattern")
    raise BatchInputError(f"{argument}: no such file or directory")


def _directory_files(directory: Path, recursive: bool, wanted: frozenset[str]) -> list[InputFile]:
    candidates = directory.rglob("*") if recursive else directory.iterdir()
    files = []
    for path in candidates:
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue  # hidden files and directories, and the .part files of unfinished outputs
        if path.suffix.lower() in wanted and path.is_file():
            files.append(InputFile(path, relative))
    return sorted(files, key=lambda item: item.relative.as_posix())


def output_path(item: InputFile, output_dir: str | Path, suffix: str) -> Path:
    """Where ``item``'s output goes: its relative path below ``output_dir``, with the new extension."""
    return Path(output_dir) / item.relative.with_suffix(suffix)
