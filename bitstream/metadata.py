"""The optional metadata section of a .sdz file: the input's ICC profile and EXIF, compressed.

Layout (the bytes of the container's metadata field, flag bit 4; see FORMAT.md §2.5)::

    method       u8       0 stored, 1 zlib (RFC 1950)
    icc_length   uvarint  <= MAX_ICC_BYTES, 0 = no profile
    exif_length  uvarint  <= MAX_EXIF_BYTES, 0 = no EXIF
    body         the rest: icc bytes then exif bytes, stored or as one zlib stream

The blob lengths come before the body, so they are checked before anything is allocated and
the zlib stream is inflated to exactly that many bytes (a zlib bomb stops at the declared size).
The EXIF is a TIFF stream (``II*\\0`` or ``MM\\0*``, no ``Exif\\0\\0`` prefix) whose Orientation
the encoder has reset to 1: the pixels are stored upright. Pure Python, no torch, no Pillow.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .errors import BitstreamError, MetadataError
from .varint import Reader, write_uvarint

MAX_ICC_BYTES = 4 << 20  # 4 MiB: far above any display profile (sRGB is ~0.5-3 KiB)
MAX_EXIF_BYTES = 65527  # what a JPEG APP1 segment can hold after its "Exif\0\0" prefix
METHOD_STORED = 0
METHOD_ZLIB = 1
ICC_HEADER_BYTES = 128
TIFF_HEADERS = (b"II*\x00", b"MM\x00*")


@dataclass(frozen=True)
class ImageMetadata:
    """An image's ICC profile and EXIF (TIFF bytes), each None when absent."""

    icc_profile: bytes | None = None
    exif: bytes | None = None

    def __bool__(self) -> bool:
        return bool(self.icc_profile or self.exif)


def check_icc_profile(icc: bytes) -> None:
    """Size and signature rules of an ICC profile (header size field, ``acsp`` magic); MetadataError."""
    if len(icc) > MAX_ICC_BYTES:
        raise MetadataError(f"ICC profile is {len(icc)} bytes, above the limit of {MAX_ICC_BYTES}")
    if len(icc) < ICC_HEADER_BYTES or icc[36:40] != b"acsp":
        raise MetadataError("ICC profile is not an ICC profile (no 'acsp' signature in a 128-byte header)")
    if int.from_bytes(icc[:4], "big") != len(icc):
        raise MetadataError(f"ICC profile declares {int.from_bytes(icc[:4], 'big')} bytes but holds {len(icc)}")


def check_exif(exif: bytes) -> None:
    """Size and TIFF-header rules of an EXIF blob; MetadataError."""
    if len(exif) > MAX_EXIF_BYTES:
        raise MetadataError(f"EXIF is {len(exif)} bytes, above the limit of {MAX_EXIF_BYTES}")
    if exif[:4] not in TIFF_HEADERS:
        raise MetadataError("EXIF does not start with a TIFF header (II*\\0 or MM\\0*)")


def pack_metadata(metadata: ImageMetadata) -> bytes:
    """The section's bytes: zlib at level 9 when it is smaller than storing, else stored."""
    icc, exif = metadata.icc_profile or b"", metadata.exif or b""
    if not (icc or exif):
        raise MetadataError("metadata section with neither an ICC profile nor EXIF")
    if icc:
        check_icc_profile(icc)
    if exif:
        check_exif(exif)
    raw = icc + exif
    packed = zlib.compress(raw, 9)
    method, body = (METHOD_ZLIB, packed) if len(packed) < len(raw) else (METHOD_STORED, raw)
    out = bytearray([method])
    write_uvarint(len(icc), out)
    write_uvarint(len(exif), out)
    return bytes(out + body)


def unpack_metadata(section: bytes) -> ImageMetadata:
    """Parse and check a section; every defect raises ``MetadataError``."""
    try:
        r = Reader(bytes(section))
        method = r.take(1, "metadata method")[0]
        icc_length = r.uvarint("ICC profile length", MAX_ICC_BYTES)
        exif_length = r.uvarint("EXIF length", MAX_EXIF_BYTES)
    except MetadataError:
        raise
    except BitstreamError as exc:
        raise MetadataError(f"metadata section: {exc}") from None
    total = icc_length + exif_length
    if total == 0:
        raise MetadataError("metadata section holds neither an ICC profile nor EXIF")
    body = bytes(section[r.pos :])
    if method == METHOD_STORED:
        raw = body
    elif method == METHOD_ZLIB:
        raw = _inflate_exactly(body, total)
    else:
        raise MetadataError(f"unknown metadata compression method {method}")
    if len(raw) != total:
        raise MetadataError(f"metadata holds {len(raw)} bytes, its lengths declare {total}")
    icc, exif = raw[:icc_length], raw[icc_length:]
    if icc:
        check_icc_profile(icc)
    if exif:
        check_exif(exif)
    return ImageMetadata(icc_profile=icc or None, exif=exif or None)


def _inflate_exactly(body: bytes, size: int) -> bytes:
    """Inflate at most ``size + 1`` bytes; the stream must end exactly at the end of the body."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(body, size + 1)
    except zlib.error as exc:
        raise MetadataError(f"metadata is not a valid zlib stream ({exc})") from None
    if len(raw) > size:
        raise MetadataError(f"metadata inflates to more than the {size} bytes its lengths declare")
    if not inflater.eof:
        raise MetadataError("metadata zlib stream is truncated")
    if inflater.unused_data:
        raise MetadataError(f"{len(inflater.unused_data)} bytes follow the metadata zlib stream")
    return raw
