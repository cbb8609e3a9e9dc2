"""The one exception family a .sdz reader raises: every defect maps to a subclass."""


class BitstreamError(Exception):
    """Base class: the bytes are not a valid .sdz file."""


class BadMagicError(BitstreamError):
    """The data does not start with the .sdz magic bytes."""


class UnknownVersionError(BitstreamError):
    """The file's format version is not one this reader knows."""


class TruncatedError(BitstreamError):
    """The data ends before the structure it declares."""


class ChecksumError(BitstreamError):
    """The CRC-32 over header and payload does not match: the file is corrupt."""


class TrailingBytesError(BitstreamError):
    """Bytes follow the end of the file's declared structure."""


class FieldRangeError(BitstreamError):
    """A header field is outside its allowed range or inconsistent with another."""


class TooLargeError(FieldRangeError):
    """The declared image or latent is above the decoding ceiling (``max_pixels``)."""


class PayloadError(BitstreamError):
    """The entropy-coded payload cannot be decoded (corrupt or from a foreign encoder)."""


class AlphaPlaneError(PayloadError):
    """The alpha plane is malformed: empty, unknown encoding, corrupt, or not the image's size."""


class MetadataError(BitstreamError):
    """The metadata section (ICC profile, EXIF) is malformed: truncated, oversized, corrupt or empty."""


def error_line(exc: BitstreamError) -> str:
    """The error as one line for a user: "invalid .sdz file: ..." unless the file is not an .sdz at all."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if isinstance(exc, BadMagicError) else f"invalid .sdz file: {message}"
