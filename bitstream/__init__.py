"""The .sdz container format: pure Python, no torch (``import bitstream`` stays light)."""

from .ceiling import DEFAULT_MAX_PIXELS
from .container import (
    MAGIC,
    RAW_LATENT_SPACE,
    STEP_SCALE,
    VERSION,
    SdzFile,
    header_size,
    read_sdz,
    step_to_code,
    write_sdz,
)
from .errors import (
    AlphaPlaneError,
    BadMagicError,
    BitstreamError,
    ChecksumError,
    FieldRangeError,
    MetadataError,
    PayloadError,
    TooLargeError,
    TrailingBytesError,
    TruncatedError,
    UnknownVersionError,
)
from .latent_spaces import LATENT_SPACES, LatentSpace
from .metadata import ImageMetadata, pack_metadata, unpack_metadata
from .summary import describe

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAGIC",
    "RAW_LATENT_SPACE",
    "STEP_SCALE",
    "VERSION",
    "SdzFile",
    "header_size",
    "read_sdz",
    "step_to_code",
    "write_sdz",
    "describe",
    "AlphaPlaneError",
    "BadMagicError",
    "BitstreamError",
    "ChecksumError",
    "FieldRangeError",
    "MetadataError",
    "ImageMetadata",
    "pack_metadata",
    "unpack_metadata",
    "PayloadError",
    "TooLargeError",
    "TrailingBytesError",
    "TruncatedError",
    "UnknownVersionError",
    "LATENT_SPACES",
    "LatentSpace",
]
