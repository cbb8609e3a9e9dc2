"""One row's work, through sdcodec's public API: read the input, encode or decode it, write the output.

Runs inside a Ray actor (``ray_jobs``) or a plain loop; a failure becomes the row's ``error``
(one line), never an exception, so one corrupt input cannot stop a job.
"""

from __future__ import annotations

import io
import posixpath

import sdcodec
from sdcodec import bitstream
from sdcodec.codec.archive.inputs import filesystem_of
from sdcodec.codec.archive.manifest import empty_row, sha256_of


def read_bytes(uri: str) -> bytes:
    filesystem, path = filesystem_of(uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def write_bytes(uri: str, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` whole: locally via a temporary name and a rename (an object store's put is whole already).

    An existing file is replaced only with ``replace`` (the job's own earlier output, or --force).
    """
    from pyarrow import fs

    filesystem, path = filesystem_of(uri)
    if not replace and filesystem.get_file_info(path).type != fs.FileType.NotFound:
        raise FileExistsError(f"{uri} exists and is not this job's output (--force replaces it)")
    parent = posixpath.dirname(path)
    if parent:
        filesystem.create_dir(parent, recursive=True)
    local = filesystem.type_name == "local"
    target = path + ".partial" if local else path
    with filesystem.open_output_stream(target) as stream:
        stream.write(data)
    if local:
        filesystem.move(target, path)


def _error_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def _sdz_facts(data: bytes) -> dict:
    facts = bitstream.describe(data)
    return {
        "bpp": facts["bpp"],
        "latent_space": facts["latent_space"],
        "latent_shape": facts["latent_shape"],
        "width": facts["width"],
        "height": facts["height"],
    }


def encode_row(input_uri: str, output_uri: str, options: dict, replace: bool = False) -> dict:
    """Encode one image to a .sdz; ``options`` are ``sdcodec.encode_image``'s keyword arguments."""
    row = empty_row(input_uri, output_uri)
    try:
        source = io.BytesIO(read_bytes(input_uri))
        source.name = input_uri  # errors name the input
        data = sdcodec.encode_image(source, **options)
        write_bytes(output_uri, data, replace=replace)
    except Exception as exc:  # noqa: BLE001 - the row records any failure; the job goes on
        return row | {"error": _error_line(exc)}
    return row | _sdz_facts(data) | {"bytes": len(data), "sha256": sha256_of(data)}


def decode_row(input_uri: str, output_uri: str, options: dict, replace: bool = False) -> dict:
    """Decode one .sdz to an image file, written as ``sdcodec decode`` writes it.

    ``options`` go to ``decode_image``, but for ``output_quality`` (decode's --output-quality). The
    format comes from the output's extension; what the format loses (an alpha plane in JPEG, a
    profile it cannot hold) is the row's ``notes``, as the CLI's notices.
    """
    from sdcodec.codec.images.image_output import image_file_bytes, output_format

    row = empty_row(input_uri, output_uri)
    notes: list[str] = []
    decode_options = dict(options)
    quality = decode_options.pop("output_quality", None)
    try:
        data = read_bytes(input_uri)
        facts = _sdz_facts(data)
        image = sdcodec.decode_image(data, **decode_options)
        image_format = output_format(posixpath.basename(output_uri))
        written, _ = image_file_bytes(image, image_format, quality=quality, notice=notes.append)
        write_bytes(output_uri, written, replace=replace)
    except Exception as exc:  # noqa: BLE001 - the row records any failure; the job goes on
        return row | {"error": _error_line(exc)}
    return row | facts | {"bytes": len(written), "sha256": sha256_of(written), "notes": "; ".join(notes) or None}


ROW_FUNCTIONS = {"encode": encode_row, "decode": decode_row}
