"""Where a job's inputs are and where their outputs go: local paths, and URIs through pyarrow filesystems.

A source is a file, a directory, a glob (``photos/*.jpg``, ``photos/**/*.png``), a Parquet/CSV
manifest listing paths or URIs (column ``path``, ``uri`` or ``input``; an optional ``output``
column names each output), or a job's own manifest (the files it wrote). Local files, directories
and globs follow the batch mode's rules (``codec.images.batch.expand_inputs``: a directory's
images, every level with ``recursive``, hidden names skipped; a file or glob match keeps its
name, a directory's file its path below the directory). ``s3://``/``gs://`` URIs follow the same
rules through pyarrow, with the credentials of the machines that run the job.
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass

from sdcodec.codec.errors import SdcodecError

SDZ_SUFFIXES = (".sdz",)
MANIFEST_SUFFIXES = (".parquet", ".csv")
MANIFEST_COLUMNS = ("path", "uri", "input")
_GLOB_CHARACTERS = "*?["


@dataclass(frozen=True)
class Row:
    """One unit of work: read ``input``, write ``output`` (both URIs or local paths)."""

    input: str
    output: str


def filesystem_of(uri: str):
    """(pyarrow filesystem, path inside it) for a local path or a URI such as ``s3://bucket/key``."""
    from pyarrow import fs

    if "://" not in uri:
        import os

        return fs.LocalFileSystem(), os.path.abspath(uri)
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad or unreachable URI
        raise SdcodecError(f"cannot open {uri}: {exc}") from None


def _join(base: str, relative: str) -> str:
    return base.rstrip("/") + "/" + relative if base else relative


def _scheme_prefix(uri: str) -> str:
    """``s3://`` for ``s3://bucket/key``, '' for a local path (paths from pyarrow lack the scheme)."""
    return uri.split("://", 1)[0] + "://" if "://" in uri else ""


def _list_files(filesystem, directory: str, recursive: bool) -> list[str]:
    from pyarrow import fs

    selector = fs.FileSelector(directory, recursive=recursive, allow_not_found=True)
    return sorted(info.path for info in filesystem.get_file_info(selector) if info.type == fs.FileType.File)


def _manifest_rows(uri: str) -> list[tuple[str, str]]:
    """(input, output name) for each row of a Parquet/CSV manifest.

    A job's own manifest (it has ``output``, ``sha256`` and ``error`` columns) lists the files that
    job wrote: its sources are the outputs that succeeded, named relative to the manifest's folder,
    so ``archive decode OUT/manifest.parquet`` and ``read_sdz(OUT/manifest.parquet)`` read them.
    """
    import pyarrow.csv
    import pyarrow.parquet

    filesystem, path = filesystem_of(uri)
    try:
        with filesystem.open_input_file(path) as stream:
            table = pyarrow.parquet.read_table(stream) if path.endswith(".parquet") else pyarrow.csv.read_csv(stream)
    except Exception as exc:  # noqa: BLE001 - an unreadable manifest is one line, whatever pyarrow raised
        raise SdcodecError(f"cannot read the manifest {uri}: {exc}") from None
    if {"output", "sha256", "error"} <= set(table.column_names):
        folder = posixpath.dirname(path)
        written = [row["output"] for row in table.select(["output", "error"]).to_pylist() if not row["error"]]
        names = [posixpath.relpath(filesystem_of(output)[1], folder) for output in written]
        return [(o, posixpath.basename(n) if n.startswith("..") else n) for o, n in zip(written, names)]
    column = next((name for name in MANIFEST_COLUMNS if name in table.column_names), None)
    if column is None:
        raise SdcodecError(f"the manifest {uri} has no column named {', '.join(MANIFEST_COLUMNS[:-1])} or input")
    inputs = [str(value) for value in table.column(column).to_pylist()]
    outputs = table.column("output").to_pylist() if "output" in table.column_names else [None] * len(inputs)
    return [(i, o or posixpath.basename(i.split("://")[-1])) for i, o in zip(inputs, outputs)]


def _glob_match(names: list[str], patterns: list[str]) -> bool:
    """Shell glob rules per path segment: ``*`` stays inside a directory, ``**`` spans any number."""
    if not patterns:
        return not names
    if patterns[0] == "**":
        return any(_glob_match(names[i:], patterns[1:]) for i in range(len(names) + 1))
    return bool(names) and fnmatch.fnmatchcase(names[0], patterns[0]) and _glob_match(names[1:], patterns[1:])


def image_suffixes() -> tuple[str, ...]:
    """The extensions a directory is searched for when encoding: the image formats Pillow reads."""
    from sdcodec.codec.images.batch import image_suffixes as pillow_suffixes

    return tuple(sorted(pillow_suffixes()))


def _expand_local(source: str, suffixes: tuple[str, ...], recursive: bool) -> list[tuple[str, str]]:
    from sdcodec.codec.images.batch import expand_inputs

    return [
        (str(item.path.absolute()), item.relative.as_posix())
        for item in expand_inputs([source], recursive, suffixes=suffixes)
    ]


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _expand(source: str, suffixes: tuple[str, ...], recursive: bool) -> list[tuple[str, str]]:
    """(input URI, output name relative to the output directory) for one source."""
    if "://" not in source:
        return _expand_local(source, suffixes, recursive)
    filesystem, path = filesystem_of(source)
    prefix = _scheme_prefix(source)
    if any(c in path for c in _GLOB_CHARACTERS):
        parts = path.split("/")
        first_magic = next(i for i, part in enumerate(parts) if any(c in part for c in _GLOB_CHARACTERS))
        base = "/".join(parts[:first_magic]) or "/"
        deep = "**" in parts or len(parts) - first_magic > 1  # list below base only when the pattern can match there
        listed = _list_files(filesystem, base, recursive=deep)
        matches = [p for p in listed if _glob_match(p.split("/"), parts) and not _hidden(posixpath.relpath(p, base))]
        if not matches:
            raise SdcodecError(f"{source}: no file matches this pattern")
        return [(prefix + p, posixpath.basename(p)) for p in matches]
    from pyarrow import fs

    kind = filesystem.get_file_info(path).type
    if kind == fs.FileType.NotFound:
        raise SdcodecError(f"{source}: no such file or directory")
    if kind == fs.FileType.Directory:
        named = [(p, posixpath.relpath(p, path)) for p in _list_files(filesystem, path, recursive)]
        return [(prefix + p, r) for p, r in named if p.lower().endswith(suffixes) and not _hidden(r)]
    return [(source, posixpath.basename(path))]


def _with_suffix(name: str, suffix: str) -> str:
    stem, _ = posixpath.splitext(name)
    return stem + suffix


def _pairs(sources: list[str], suffixes: tuple[str, ...], recursive: bool) -> list[tuple[str, str]]:
    """(input URI, output name) for every source, manifests read row by row."""
    pairs: list[tuple[str, str]] = []
    for source in sources:
        if source.lower().endswith(MANIFEST_SUFFIXES) and not any(c in source for c in _GLOB_CHARACTERS):
            pairs.extend(_manifest_rows(source))
        else:
            pairs.extend(_expand(source, suffixes, recursive))
    if not pairs:
        raise SdcodecError("no input files found in " + ", ".join(sources))
    return pairs


def list_rows(
    sources: list[str], output_dir: str, *, output_suffix: str, input_suffixes: tuple[str, ...], recursive: bool = False
) -> list[Row]:
    """The (input, output) pairs of a job, in a stable order; two inputs mapping to one output are an error.

    ``input_suffixes`` filters directory listings (a file or glob named explicitly is always taken);
    outputs keep the name the module docstring says, with ``output_suffix``.
    """
    rows, seen = [], {}
    for input_uri, relative in _pairs(sources, input_suffixes, recursive):
        output = relative if "://" in relative or relative.startswith("/") else _join(output_dir, relative)
        output = _with_suffix(output, output_suffix)
        if output in seen and seen[output] != input_uri:
            raise SdcodecError(f"{seen[output]} and {input_uri} would both be written to {output}")
        if output not in seen:
            seen[output] = input_uri
            rows.append(Row(input_uri, output))
    return rows


def list_files(sources: list[str], *, suffixes: tuple[str, ...], recursive: bool = True) -> list[str]:
    """Input URIs only (for readers such as ``read_sdz``), same rules as ``list_rows``."""
    return list(dict.fromkeys(input_uri for input_uri, _ in _pairs(sources, suffixes, recursive)))
