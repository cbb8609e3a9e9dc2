"""The input's ICC profile and EXIF: read on encode, kept in the .sdz, written back on decode.

The codec works in sRGB: ``image_io`` converts the pixels from the input's ICC profile. The
profile is kept only when that conversion used it, and decoding converts the sRGB pixels back
into it, so the output file holds pixels in the profile it declares (as cjxl/avifenc keep the
input's colour space). EXIF is kept with its Orientation set to 1, because the pixels are stored
upright. Metadata the container or an output format cannot hold is dropped with one notice
line, never silently and never at the cost of the image. Pillow (ImageCms, littlecms) does the
colour conversion; ``bitstream.metadata`` the storage. No torch.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image, ImageCms

from sdcodec.bitstream.errors import MetadataError
from sdcodec.bitstream.metadata import ImageMetadata, check_exif, check_icc_profile

Notice = Callable[[str], None]

EXIF_PREFIX = b"Exif\x00\x00"  # what Pillow's Exif.tobytes() and JPEG's APP1 put before the TIFF stream
ORIENTATION_TAG = 0x0112
ICC_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "AVIF")  # Pillow writers that take icc_profile=
EXIF_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "AVIF")  # Pillow writers that take exif=


def exif_upright(image: Image.Image) -> bytes | None:
    """The image's EXIF as TIFF bytes with Orientation reset to 1, or None (no EXIF, or unreadable)."""
    try:
        if not len(image.getexif()):
            return None
        exif = Image.Exif()  # a copy: the image's own EXIF still drives exif_transpose
        exif.load(image.getexif().tobytes())
        if ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        data = exif.tobytes()
    except Exception:  # a malformed EXIF block must not cost the image
        return None
    return data[len(EXIF_PREFIX) :] if data.startswith(EXIF_PREFIX) else data


def icc_colour_space(icc: bytes) -> str:
    """The profile's data colour space signature (bytes 16-19 of its header), e.g. 'RGB', 'CMYK', 'GRAY'."""
    return icc[16:20].decode("latin-1").strip()


def kept_metadata(icc_profile: bytes | None, icc_applied: bool, exif: bytes | None, notice: Notice) -> ImageMetadata:
    """What of an input's metadata a .sdz keeps; each part it cannot keep is dropped with a notice.

    ``icc_applied`` says whether the pixels were converted to sRGB through ``icc_profile``.
    """
    if icc_profile is not None:
        reason = _icc_problem(icc_profile) or (None if icc_applied else "the pixels were not converted through it")
        if reason:
            notice(f"ICC profile dropped: {reason}")
            icc_profile = None
    if exif is not None:
        try:
            check_exif(exif)
        except MetadataError as exc:
            notice(f"EXIF dropped: {exc}")
            exif = None
    return ImageMetadata(icc_profile=icc_profile, exif=exif)


def _icc_problem(icc: bytes) -> str | None:
    try:
        check_icc_profile(icc)
    except MetadataError as exc:
        return str(exc)
    space = icc_colour_space(icc)
    if space != "RGB":
        return f"it describes {space} data and the decoded image is RGB"
    return None


def info_of(metadata: ImageMetadata) -> dict:
    """Pillow ``info`` entries for kept metadata (``icc_profile`` and ``exif``, as Pillow's readers set them)."""
    info = {}
    if metadata.icc_profile is not None:
        info["icc_profile"] = metadata.icc_profile
    if metadata.exif is not None:
        info["exif"] = EXIF_PREFIX + metadata.exif
    return info


def attach_metadata(image: Image.Image, metadata: ImageMetadata, notice: Notice) -> Image.Image:
    """The decoded sRGB image in the file's ICC profile (converted), with the profile and EXIF in ``info``."""
    if metadata.icc_profile is not None:
        reason = _icc_problem(metadata.icc_profile)
        converted = None if reason else _from_srgb(image, metadata.icc_profile)
        if converted is None:
            notice(f"ICC profile dropped: {reason or 'littlecms cannot convert into it'}; the image is sRGB")
        else:
            image = converted
            image.info["icc_profile"] = metadata.icc_profile
    if metadata.exif is not None:
        image.info["exif"] = EXIF_PREFIX + metadata.exif
    return image


def _from_srgb(image: Image.Image, icc: bytes) -> Image.Image | None:
    try:
        target = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        rgb = ImageCms.profileToProfile(image.convert("RGB"), ImageCms.createProfile("sRGB"), target, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    if image.mode == "RGBA":
        rgb.putalpha(image.getchannel("A"))
    return rgb


def for_format(image: Image.Image, image_format: str, notice: Notice) -> tuple[Image.Image, dict]:
    """The image and the Pillow ``save`` keywords that write its metadata in ``image_format``.

    A format without ICC support gets the pixels converted back to sRGB (so colours stay right);
    metadata a format cannot hold is dropped with a notice.
    """
    options = {}
    icc, exif = image.info.get("icc_profile"), image.info.get("exif")
    if icc:
        if image_format in ICC_FORMATS:
            options["icc_profile"] = icc
        else:
            notice(f"{image_format} cannot hold an ICC profile: the image is converted to sRGB and saved without it")
            image = _to_srgb(image, icc)
    if exif:
        if image_format in EXIF_FORMATS:
            options["exif"] = exif
        else:
            notice(f"{image_format} cannot hold EXIF: saved without it")
    return image, options


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    rgb = ImageCms.profileToProfile(image.convert("RGB"), source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    if image.mode == "RGBA":
        rgb.putalpha(image.getchannel("A"))
    return rgb
