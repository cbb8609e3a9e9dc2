"""A decoded image as the bytes of the file format the user asked for (Pillow does the encoding).

Decoding to a lossy format adds a second lossy step after the codec's own, so it is made
explicit: WebP is written lossless unless an output quality is given; JPEG at quality 95 with
full-resolution chroma (4:4:4); AVIF at quality 90, 4:4:4 (Pillow's AVIF writer has no lossless
mode). ``output_quality`` (1-100) sets the quality of JPEG, WebP and AVIF; PNG, TIFF, BMP and
the other lossless formats have none to set. Formats without alpha get an RGBA image flattened
to RGB, and GIF a palette of 256 colours, and say so. Formats that cannot hold the picture at all
(1-bit and float formats, icons that resize it, Pillow's save stubs) are refused by name, before
any decoding. The image's ICC profile and EXIF are written where the format holds them
(``image_metadata``). No torch.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from sdcodec.codec.images import image_metadata
from sdcodec.codec.images.output_files import OutputError

LOSSY_FORMATS = ("JPEG", "WEBP", "AVIF")  # the formats --output-quality applies to
DEFAULT_QUALITY = {"JPEG": 95, "AVIF": 90}  # WebP's default is lossless
NO_ALPHA_FORMATS = ("JPEG", "MPO", "BMP", "DIB", "PPM", "EPS", "PCX")
NO_GRAY_FORMATS = ("WEBP", "AVIF", "QOI")  # store gray as RGB (done here so the reported mode is true)
NO_GRAY_ALPHA_FORMATS = ("SGI",)  # gray, colour and colour + alpha, but not gray + alpha: LA is saved as RGBA
PALETTE_FORMATS = ("GIF",)  # at most 256 colours: Pillow's writer reduces RGB / RGBA to a palette
ICON_FORMATS = ("ICO", "ICNS")  # Pillow shrinks the picture to icon sizes (ICO) or stretches it square (ICNS)
NOT_PICTURE_EXTENSIONS = {".pbm": "PBM holds 1-bit images", ".pfm": "PFM holds floating-point images"}
SUGGESTION = "use an extension such as .png, .webp or .jpg"


def palette_notice(image_format: str) -> str:
    """What a palette format does to every colour image (a batch says it once, not once a file)."""
    return f"{image_format} holds at most 256 colours: colour images are saved with a palette"


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
        raise OutputError(f"{image_format} is read but not written here; {SUGGESTION}")
    if image_format is None:
        raise OutputError(f"cannot tell an image format to write from {name!r}; {SUGGESTION}")
    if extension in NOT_PICTURE_EXTENSIONS:
        raise OutputError(f"{NOT_PICTURE_EXTENSIONS[extension]}, not a decoded picture; {SUGGESTION}")
    if image_format in ICON_FORMATS:
        raise OutputError(f"{image_format} is an icon format: it would resize the picture; {SUGGESTION}")
    refusal = _writer_refusal(image_format)
    if refusal:
        raise OutputError(f"{image_format} cannot be written here ({refusal}); {SUGGESTION}")
    return image_format


@functools.cache
def _writer_refusal(image_format: str) -> str | None:
    """Why Pillow cannot write an RGB image as ``image_format`` (1-bit formats, save stubs), or None.

    Asked once per format with a 1x1 image, so the refusal comes before a decode that may take minutes.
    """
    try:
        Image.new("RGB", (1, 1)).save(io.BytesIO(), format=image_format)
    except Exception as exc:  # noqa: BLE001 - any writer failure means the format is unusable here
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def check_quality(image_format: str, quality: int | None) -> None:
    """A quality only where the format has one (a quality for PNG would silently do nothing)."""
    if quality is not None and image_format not in LOSSY_FORMATS:
        kind = "a palette of 256 colours" if image_format in PALETTE_FORMATS else "lossless"
        raise OutputError(f"--output-quality applies to JPEG, WebP and AVIF output, not {image_format} ({kind})")


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
    if image.mode == "LA" and image_format in NO_GRAY_ALPHA_FORMATS:
        image = image.convert("RGBA")
    saved_mode = "P" if image_format in PALETTE_FORMATS else image.mode
    if image_format in PALETTE_FORMATS and image.mode != "L":  # 256 grays fit a palette exactly
        notice(palette_notice(image_format))
        if image.mode == "LA":  # Pillow's GIF writer would drop LA's alpha; RGBA keeps it as a transparent entry
            image = image.convert("RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue(), saved_mode
