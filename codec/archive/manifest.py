"""A job's Parquet manifest: one row per input, and which inputs a re-run may skip.

A row records the input and output URIs, the output's size and SHA-256, the .sdz facts (bpp,
latent space and shape; for a decode job those of the input file), what the output format lost
(``notes``, e.g. a JPEG without the alpha plane; none for most rows) and, for a row that failed,
the error in one line instead of the rest. Manifests written before ``notes`` existed read as
rows without notes. A re-run skips an input whose earlier row has no error
and whose output still exists with the recorded SHA-256; everything else is done again.
The manifest is streamed to a temporary file and moved into place when the job ends, also when
it ends by an exception or Ctrl-C, so a stopped job keeps the rows it finished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from sdcodec.codec.archive.inputs import filesystem_of

SCHEMA = pa.schema(
    [
        ("input", pa.string()),
        ("output", pa.string()),
        ("bytes", pa.int64()),
        ("bpp", pa.float64()),
        ("latent_space", pa.string()),
        ("latent_shape", pa.list_(pa.int32())),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("sha256", pa.string()),
        ("error", pa.string()),
        ("notes", pa.string()),
    ]
)
FIELDS = tuple(SCHEMA.names)


def empty_row(input_uri: str, output_uri: str) -> dict:
    """A row with every fact missing (a failure fills ``error``; a success the rest)."""
    return {name: None for name in FIELDS} | {"input": input_uri, "output": output_uri}


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(uri: str) -> list[dict]:
    """The rows of an existing manifest, or [] when there is none yet."""
    from pyarrow import fs

    filesystem, path = filesystem_of(uri)
    if filesystem.get_file_info(path).type == fs.FileType.NotFound:
        return []
    with filesystem.open_input_file(path) as stream:
        return pq.read_table(stream).to_pylist()


def is_intact(row: dict) -> bool:
    """True when the row succeeded and its output still holds exactly the bytes it recorded."""
    if row.get("error") or not row.get("sha256"):
        return False
    filesystem, path = filesystem_of(row["output"])
    try:
        with filesystem.open_input_stream(path) as stream:
            data = stream.read()
    except (OSError, FileNotFoundError):
        return False
    return sha256_of(data) == row["sha256"]


def reusable_rows(previous: Iterable[dict], wanted: dict[str, str]) -> dict[str, dict]:
    """input -> earlier row, for inputs still wanted (same output) whose outputs are intact."""
    return {row["input"]: row for row in previous if wanted.get(row["input"]) == row["output"] and is_intact(row)}


class ManifestWriter:
    """Writes rows in batches to ``uri`` (via ``uri + '.partial'``, moved into place on close)."""

    def __init__(self, uri: str):
        self.filesystem, self.path = filesystem_of(uri)
        self.partial = self.path + ".partial"
        parent = self.path.rsplit("/", 1)[0]
        if parent:
            self.filesystem.create_dir(parent, recursive=True)
        self._stream = self.filesystem.open_output_stream(self.partial)
        self._writer = pq.ParquetWriter(self._stream, SCHEMA)
        self.rows = 0
        self.errors = 0

    def write(self, rows: list[dict]) -> None:
        if rows:
            self._writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            self.rows += len(rows)
            self.errors += sum(1 for row in rows if row.get("error"))

    def close(self) -> None:
        self._writer.close()
        self._stream.close()
        self.filesystem.move(self.partial, self.path)

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
