"""A decoded image as the bytes of the file format the user asked for (Pillow does the encoding).

Decoding to a lossy format adds a second lossy step after the codec's own, so it is made
explicit: WebP is written lossless unless an output quality is given; JPEG at quality 95 with
full-resolution chroma (4:4:4); AVIF at quality 90, 4:4:4 (Pillow's AVIF writer has no lossless
mode). ``output_quality`` (1-100) sets the quality of JPEG, WebP and AVIF; PNG, TIFF, BMP and
the other lossless formats have none to set. Formats without alpha get an RGBA image flattened
to RGB, and say so. The image's ICC profile and EXIF are written where the format holds them
(``image_metadata``). No torch.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from sdcodec.codec.images import image_metadata
from sdcodec.codec.images.output_files import OutputError

LOSSY_FORMATS = ("JPEG", "WEBP", "AVIF")  # the formats --output-quality applies to
DEFAULT_QUALITY = {"JPEG": 95, "AVIF": 90}  # WebP's default is lossless
NO_ALPHA_FORMATS = ("JPEG", "BMP", "PPM", "EPS", "PCX")
NO_GRAY_FORMATS = ("WEBP", "AVIF")  # store gray as RGB (their writers convert; done here so the reported mode is true)


def output_format(name: str) -> str:
    """Pillow's format for an output file name or extension ("x.jpg", ".jpg", "jpg"); OutputError if none."""
    if "." not in name:  # a format name: "png"
        extension = f".{name.lower()}"
    else:  # a file name, or a bare extension (which Path would take for a hidden file's name)
        extension = (Path(name).suffix or name).lower()
    image_format = Image.registered_extensions().get(extension)
    if image_format == "SDZ":
        raise OutputError("decode writes an image; use an image extension such as .png for the output")
    if image_format is not None and image_format not in Image.SAVE:
        raise OutputError(f"{image_format} is read but not written here; use an extension such as .png, .webp or .jpg")
    if image_format is None:
        raise OutputError(
            f"cannot tell an image format to write from {name!r}; use an extension such as .png, .webp or .jpg"
        )
    return image_format


def check_quality(image_format: str, quality: int | None) -> None:
    """A quality only where the format has one (a quality for PNG would silently do nothing)."""
    if quality is not None and image_format not in LOSSY_FORMATS:
        raise OutputError(f"--output-quality applies to JPEG, WebP and AVIF output, not {image_format} (lossless)")


def save_options(image_format: str, quality: int | None) -> dict:
    """Pillow ``save`` keywords: lossless where the format allows and no quality was asked for."""
    check_quality(image_format, quality)
    if image_format == "WEBP":
        return {"lossless": True, "quality": 100, "method": 4} if quality is None else {"quality": quality}
    if image_format == "JPEG":
        return {"quality": quality or DEFAULT_QUALITY["JPEG"], "subsampling": 0}
    if image_format == "AVIF":
        return {"quality": quality or DEFAULT_QUALITY["AVIF"], "subsampling": "4:4:4"}
    return {}


def image_file_bytes(
    image: Image.Image, image_format: str, *, quality: int | None = None, notice: Callable[[str], None] = print
) -> tuple[bytes, str]:
    """The encoded file and the mode actually saved (RGB / L when a format without alpha flattened RGBA / LA)."""
    options = save_options(image_format, quality)
    image, metadata_options = image_metadata.for_format(image, image_format, notice)
    options.update(metadata_options)
    if image.mode in ("RGBA", "LA") and image_format in NO_ALPHA_FORMATS:
        notice(f"{image_format} has no alpha channel: the image is saved without its transparency")
        image = image.convert("L" if image.mode == "LA" else "RGB")
    if image.mode in ("L", "LA") and image_format in NO_GRAY_FORMATS:
        image = image.convert("RGB" if image.mode == "L" else "RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue(), image.mode
