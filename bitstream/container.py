"""The .sdz container: magic, version, a varint header, the payload and a CRC-32.

Layout (version 1)::

    b"SDZ" version:u8
    flags            uvarint  bit0 caption, bit1 restoration hints, bit2 alpha plane,
                              bit3 per-channel step multipliers, bit4 metadata (ICC, EXIF),
                              bit5 gray image (decoders output one luma channel; no field)
    latent_space     uvarint  id from latent_spaces (127 = raw latent, no autoencoder)
    width height     uvarint  original image size in pixels
    C h w            uvarint  latent shape
    step_code        uvarint  quantization step = step_code / 65536
    recon_offset     uvarint  reconstruction point inside the bin, 1/64 of a step towards zero
    [channel_steps]  C x uvarint  channel c's step = step * channel_steps[c] / 16
    entropy_model    uvarint  which context model coded the payload
    [caption]        uvarint length + UTF-8 bytes
    [restore_steps restore_guidance_tenths]  uvarint uvarint
    [alpha]          uvarint length + bytes (lossless alpha plane, see codec/images/alpha_plane.py)
    [metadata]       uvarint length + bytes (ICC profile and EXIF, see metadata.py)
    payload          uvarint length + bytes
    crc32            4 bytes big-endian over everything before it

Every declared length is checked against the bytes that remain before anything is allocated.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from . import latent_spaces
from .ceiling import check_size_limit
from .errors import (
    BadMagicError,
    ChecksumError,
    FieldRangeError,
    TrailingBytesError,
    UnknownVersionError,
)
from .metadata import ImageMetadata, unpack_metadata
from .varint import Reader, write_uvarint

MAGIC = b"SDZ"
VERSION = 1
KNOWN_VERSIONS = (1,)
STEP_SCALE = 1 << 16
RECON_OFFSET_SCALE = 64
RAW_LATENT_SPACE = "raw"
RAW_LATENT_SPACE_ID = 127

MAX_CAPTION_BYTES = 1024
MAX_DIMENSION = 1 << 20  # pixels per side
MAX_CHANNELS = 1024
MAX_LATENT_VALUES = 1 << 27  # the format's hard limit: 512 MiB of float32, a 16k x 16k image at 32 channels
MAX_RESTORE_STEPS = 1000
MAX_RESTORE_GUIDANCE_TENTHS = 1000  # guidance 0.0-100.0 in tenths

_FLAG_CAPTION = 1
_FLAG_RESTORE = 2
_FLAG_ALPHA = 4
_FLAG_CHANNEL_STEPS = 8
_FLAG_METADATA = 16
_FLAG_GRAY = 32
_KNOWN_FLAGS = _FLAG_CAPTION | _FLAG_RESTORE | _FLAG_ALPHA | _FLAG_CHANNEL_STEPS | _FLAG_METADATA | _FLAG_GRAY
CHANNEL_STEP_ONE = 16
MAX_CHANNEL_STEP = 255


@dataclass(frozen=True)
class SdzFile:
    """Everything a .sdz file holds; ``write_sdz`` and ``read_sdz`` are exact inverses."""

    latent_space: str
    width: int
    height: int
    latent_shape: tuple[int, int, int]
    step_code: int
    recon_offset: int
    entropy_model: int
    payload: bytes
    caption: str = ""
    restore_steps: int = 0
    restore_guidance_tenths: int = 10
    has_restore_hints: bool = False
    alpha: bytes | None = None
    channel_steps: tuple[int, ...] = ()  # empty: every channel uses quant_step
    metadata: bytes | None = None  # the packed section (metadata.pack_metadata); see image_metadata
    gray: bool = False  # the source image was gray: decoders output one luma channel (L, or LA with alpha)

    @property
    def image_metadata(self) -> ImageMetadata:
        """The ICC profile and EXIF the file keeps (both None without a metadata section)."""
        return unpack_metadata(self.metadata) if self.metadata is not None else ImageMetadata()

    @property
    def quant_step(self) -> float:
        return self.step_code / STEP_SCALE

    @property
    def channel_quant_steps(self) -> tuple[float, ...]:
        """The quantization step of each latent channel."""
        if not self.channel_steps:
            return (self.quant_step,) * self.latent_shape[0]
        return tuple(self.quant_step * m / CHANNEL_STEP_ONE for m in self.channel_steps)

    @property
    def restore_guidance(self) -> float:
        return self.restore_guidance_tenths / 10


def step_to_code(step: float) -> int:
    """The header's integer form of a quantization step (resolution 1/65536, at least 1)."""
    return max(1, round(step * STEP_SCALE))


def _space_id(name: str) -> int:
    if name == RAW_LATENT_SPACE:
        return RAW_LATENT_SPACE_ID
    return latent_spaces.by_name(name).id


def _space_name(space_id: int) -> str:
    if space_id == RAW_LATENT_SPACE_ID:
        return RAW_LATENT_SPACE
    space = latent_spaces.by_id(space_id)
    if space is None:
        raise FieldRangeError(f"unknown latent space id {space_id} (written by a newer sdcodec?)")
    return space.name


def _validate(f: SdzFile) -> None:
    """Range and consistency rules shared by writer and reader."""
    c, h, w = f.latent_shape
    if not (1 <= f.width <= MAX_DIMENSION and 1 <= f.height <= MAX_DIMENSION):
        raise FieldRangeError(f"image size {f.width}x{f.height} is out of range")
    if not (1 <= c <= MAX_CHANNELS and h >= 1 and w >= 1):
        raise FieldRangeError(f"latent shape {c}x{h}x{w} is out of range")
    if c * h * w > MAX_LATENT_VALUES:
        raise FieldRangeError(f"latent shape {c}x{h}x{w} has more than {MAX_LATENT_VALUES} values")
    if f.latent_space != RAW_LATENT_SPACE:
        space = latent_spaces.by_name(f.latent_space)
        if c != space.channels:
            raise FieldRangeError(f"latent space {space.name} has {space.channels} channels, header says {c}")
        if (h, w) != (-(-f.height // 8), -(-f.width // 8)):
            raise FieldRangeError(f"latent {h}x{w} does not match image {f.width}x{f.height}")
    if f.step_code < 1:
        raise FieldRangeError("quantization step must be positive")
    if not 0 <= f.recon_offset < RECON_OFFSET_SCALE // 2:
        raise FieldRangeError(f"reconstruction offset {f.recon_offset} is out of range")
    if len(f.caption.encode("utf-8")) > MAX_CAPTION_BYTES:
        raise FieldRangeError(f"caption is longer than {MAX_CAPTION_BYTES} bytes")
    if f.channel_steps and (len(f.channel_steps) != c or not all(1 <= m <= MAX_CHANNEL_STEP for m in f.channel_steps)):
        raise FieldRangeError(f"channel step multipliers must be {c} values in 1..{MAX_CHANNEL_STEP}")
    if not 0 <= f.restore_steps <= MAX_RESTORE_STEPS:
        raise FieldRangeError(f"restore steps {f.restore_steps} is out of range")
    if not 0 <= f.restore_guidance_tenths <= MAX_RESTORE_GUIDANCE_TENTHS:
        raise FieldRangeError(
            f"restore guidance {f.restore_guidance} is out of range 0..{MAX_RESTORE_GUIDANCE_TENTHS / 10}"
        )
    if f.metadata is not None:
        kept = unpack_metadata(f.metadata)  # MetadataError for any defect of the section
        if f.gray and kept.icc_profile is not None:
            raise FieldRangeError("a gray image cannot carry an ICC profile (sdcodec keeps RGB profiles only)")


def write_sdz(f: SdzFile) -> bytes:
    _validate(f)
    flags = (
        (_FLAG_CAPTION if f.caption else 0)
        | (_FLAG_RESTORE if f.has_restore_hints else 0)
        | (_FLAG_ALPHA if f.alpha is not None else 0)
        | (_FLAG_CHANNEL_STEPS if f.channel_steps else 0)
        | (_FLAG_METADATA if f.metadata is not None else 0)
        | (_FLAG_GRAY if f.gray else 0)
    )
    out = bytearray(MAGIC)
    out.append(VERSION)
    for value in (
        flags,
        _space_id(f.latent_space),
        f.width,
        f.height,
        *f.latent_shape,
        f.step_code,
        f.recon_offset,
        *f.channel_steps,
        f.entropy_model,
    ):
        write_uvarint(value, out)
    if f.caption:
        caption = f.caption.encode("utf-8")
        write_uvarint(len(caption), out)
        out += caption
    if f.has_restore_hints:
        write_uvarint(f.restore_steps, out)
        write_uvarint(f.restore_guidance_tenths, out)
    if f.alpha is not None:
        write_uvarint(len(f.alpha), out)
        out += f.alpha
    if f.metadata is not None:
        write_uvarint(len(f.metadata), out)
        out += f.metadata
    write_uvarint(len(f.payload), out)
    out += f.payload
    out += zlib.crc32(out).to_bytes(4, "big")
    return bytes(out)


def read_sdz(data: bytes, *, max_pixels: int | None = None) -> SdzFile:
    """Parse and validate a whole file; raises a ``BitstreamError`` subclass for any defect.

    With ``max_pixels``, a file declaring more (see ``check_size_limit``) raises ``TooLargeError``.
    """
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BadMagicError(_not_sdz(data))
    r = Reader(data, len(MAGIC))
    flags, fields = _read_fields(r)
    fields.update(_read_sections(r, flags))
    payload = r.take(r.uvarint("payload length", r.remaining), "payload")
    crc_pos = r.pos
    stored = r.take(4, "checksum")
    if r.remaining:
        raise TrailingBytesError(f"{r.remaining} unexpected bytes after the end of the file")
    if int.from_bytes(stored, "big") != zlib.crc32(data[:crc_pos]):
        raise ChecksumError("checksum mismatch: the file is corrupt")
    f = SdzFile(**fields, payload=payload, has_restore_hints=bool(flags & _FLAG_RESTORE), gray=bool(flags & _FLAG_GRAY))
    try:
        _validate(f)
    except ValueError as exc:  # latent_spaces.by_name on an impossible combination
        raise FieldRangeError(str(exc)) from None
    if max_pixels is not None:
        check_size_limit(f, max_pixels)
    return f


# Signatures of the images people hand to decode by mistake: the error then says what the file is.
IMAGE_SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"GIF8", "GIF"),
    (8, b"WEBP", "WebP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"BM", "BMP"),
    (4, b"ftypavif", "AVIF"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (0, b"\xff\x0a", "JPEG XL"),
    (4, b"JXL ", "JPEG XL"),
)


def _not_sdz(data: bytes) -> str:
    """Why ``data`` is not an .sdz file: empty, an image (by its signature), or unknown magic bytes."""
    if not data:
        return "not an .sdz file (the file is empty)"
    for offset, signature, name in IMAGE_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return f"not an .sdz file: it is an image ({name}); encode makes .sdz files from images"
    return "not an .sdz file (bad magic bytes)"


def _read_fields(r: Reader) -> tuple[int, dict]:
    """The version, the flags, and the fields every file has (with the per-channel steps among them)."""
    version = r.take(1, "format version")[0]
    if version not in KNOWN_VERSIONS:
        raise UnknownVersionError(
            f"unknown .sdz format version {version} (this reader knows version {', '.join(map(str, KNOWN_VERSIONS))})"
        )
    flags = r.uvarint("flags")
    if flags & ~_KNOWN_FLAGS:
        raise FieldRangeError(f"unknown header flags {flags:#x} (written by a newer sdcodec?)")
    fields = {
        "latent_space": _space_name(r.uvarint("latent space id")),
        "width": r.uvarint("width", MAX_DIMENSION),
        "height": r.uvarint("height", MAX_DIMENSION),
        "latent_shape": (
            r.uvarint("latent channels", MAX_CHANNELS),
            r.uvarint("latent height", MAX_DIMENSION),
            r.uvarint("latent width", MAX_DIMENSION),
        ),
        "step_code": r.uvarint("quantization step", 1 << 40),
        "recon_offset": r.uvarint("reconstruction offset", RECON_OFFSET_SCALE),
        "channel_steps": (),
    }
    if flags & _FLAG_CHANNEL_STEPS:
        channels = fields["latent_shape"][0]
        fields["channel_steps"] = tuple(r.uvarint("channel step multiplier", MAX_CHANNEL_STEP) for _ in range(channels))
    fields["entropy_model"] = r.uvarint("entropy model id", 1 << 16)
    return flags, fields


def _read_sections(r: Reader, flags: int) -> dict:
    """The optional sections the flags announce, in their order: caption, restoration hints, alpha, metadata."""
    sections = {"caption": "", "restore_steps": 0, "restore_guidance_tenths": 10, "alpha": None, "metadata": None}
    if flags & _FLAG_CAPTION:
        raw = r.take(r.uvarint("caption length", MAX_CAPTION_BYTES), "caption")
        try:
            sections["caption"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FieldRangeError("caption is not valid UTF-8") from None
    if flags & _FLAG_RESTORE:
        sections["restore_steps"] = r.uvarint("restore steps", MAX_RESTORE_STEPS)
        sections["restore_guidance_tenths"] = r.uvarint("restore guidance", MAX_RESTORE_GUIDANCE_TENTHS)
    if flags & _FLAG_ALPHA:
        sections["alpha"] = r.take(r.uvarint("alpha length", r.remaining), "alpha plane")
    if flags & _FLAG_METADATA:
        sections["metadata"] = r.take(r.uvarint("metadata length", r.remaining), "metadata")
    return sections


def header_size(data: bytes) -> int:
    """Bytes of the file that are not payload (header, length fields, checksum)."""
    return len(data) - len(read_sdz(data).payload)
