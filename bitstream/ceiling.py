"""The decoding ceiling: files that declare more than a reader will allocate are refused first.

Not part of the format (a reader may choose its own ceiling); a guard against decompression
bombs, in the spirit of Pillow's ``MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import TooLargeError

if TYPE_CHECKING:
    from .container import SdzFile

# Files declaring a larger image (or a latent larger than a 32-channel one of such an image) are
# refused before any allocation.
DEFAULT_MAX_PIXELS = 1 << 26  # 67,108,864 pixels, 8192 x 8192


def latent_values_limit(max_pixels: int) -> int:
    """Most latent values a file may declare under a ceiling of ``max_pixels`` image pixels.

    A 32-channel latent at 1/8 of the image's sides: ``32 * max_pixels / 64``.
    """
    return max_pixels // 2


def check_size_limit(f: SdzFile, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a file whose declared image or latent is above the ceiling (a decompression bomb).

    The payload's length is no guide: a few bytes legitimately decode to a large all-zero
    latent, so the ceiling, not the file size, bounds the work a file can ask for.
    """
    c, h, w = f.latent_shape
    if f.width * f.height > max_pixels:
        raise TooLargeError(
            f"image {f.width}x{f.height} is above the ceiling of {max_pixels} pixels (raise it with max_pixels / --max-pixels)"
        )
    if c * h * w > latent_values_limit(max_pixels):
        raise TooLargeError(
            f"latent {c}x{h}x{w} is above the ceiling of {latent_values_limit(max_pixels)} values"
            " (raise it with max_pixels / --max-pixels)"
        )
