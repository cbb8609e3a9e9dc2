"""Image files in and out of the codec: any Pillow image -> 8-bit sRGB + optional alpha -> tensors.

The autoencoders see RGB in [0, 1] with sides padded to a multiple of 8; alpha never goes
through them: it is stored losslessly beside the latent (``codec.alpha_plane``, re-exported
here as ``encode_alpha``/``decode_alpha``).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from sdcodec import bitstream
from sdcodec.codec.errors import ImageReadError
from sdcodec.codec.images import image_metadata
from sdcodec.codec.images.alpha_plane import decode_alpha, encode_alpha, pillow_limit_at_least
from sdcodec.codec.images.heif_input import register_heif_reader

register_heif_reader()  # phone photos (.heic) open like any Pillow format

__all__ = [
    "LoadedImage",
    "load_image",
    "to_tensor",
    "to_pil",
    "to_gray",
    "pad_to_multiple",
    "crop",
    "encode_alpha",
    "decode_alpha",
]

# Pillow modes that carry an alpha channel (premultiplied ones are un-premultiplied by convert).
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
# What a Pillow reader raises when a file is not of its format (Image.open moves on to the next).
_NOT_THIS_FORMAT = (SyntaxError, IndexError, TypeError, struct.error)


@dataclass
class LoadedImage:
    """An image as the codec uses it: upright 8-bit sRGB, alpha kept aside (None when fully opaque)."""

    rgb: np.ndarray  # uint8, (height, width, 3)
    alpha: np.ndarray | None  # uint8, (height, width), or None when every pixel is opaque
    width: int
    height: int
    icc_profile: bytes | None = None  # the input's ICC profile
    icc_applied: bool = False  # whether the pixels were converted to sRGB through it
    exif: bytes | None = None  # the input's EXIF (TIFF bytes), Orientation reset to 1 (image_metadata)
    frames: int = 1  # frames or pages in the input (an animation, a multi-page TIFF); the first is the image
    gray: bool = False  # every pixel has R = G = B (a gray mode, or an RGB file of a gray picture)


def load_image(
    source: str | Path | IO[bytes] | bytes | Image.Image, *, max_pixels: int | None = bitstream.DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Read a file (a path, a binary file object or the file's bytes; or take a Pillow image) and return
    it upright, as 8-bit RGB plus optional alpha.

    ``max_pixels`` is the input ceiling (None: the default, ``bitstream.DEFAULT_MAX_PIXELS``),
    checked on the size the file's header declares before any pixel is decoded. It takes the
    place of Pillow's own guard (``Image.MAX_IMAGE_PIXELS``): a larger explicit ceiling works.
    Raises ImageReadError with one line naming the file for anything unreadable or too large:
    missing, not an image, truncated or corrupt, above the ceiling, or in an unconvertible mode.
    """
    ceiling = bitstream.DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if isinstance(source, (bytes, bytearray, memoryview)):  # an encoded image file's bytes
        source = _named_stream(bytes(source), "<bytes>")
    elif not isinstance(source, (str, os.PathLike, Image.Image)) and not hasattr(source, "read"):
        raise TypeError(
            f"an image is a path, a binary file object, encoded bytes or a PIL image, not {type(source).__name__}"
        )
    if isinstance(source, Image.Image):
        _check_ceiling(source.size, ceiling, "<image>")
        with pillow_limit_at_least(ceiling):
            return _from_pil(source, "<image>")
    name = str(getattr(source, "name", "<stream>")) if hasattr(source, "read") else str(source)
    try:
        with _binary_file(source) as fp, pillow_limit_at_least(ceiling):
            with _open_header(fp, name if isinstance(source, (str, Path)) else "") as image:
                _check_ceiling(image.size, ceiling, name)
                image.load()  # decode everything now, so truncation is caught here
                _check_ceiling(image.size, ceiling, name)  # an animated GIF may grow its canvas on load
                return _from_pil(image, name)
    except ImageReadError:
        raise
    except FileNotFoundError:
        reason = "no such file"
    except IsADirectoryError:
        reason = "is a directory, not an image file"
    except PermissionError:
        reason = "permission denied"
    except UnidentifiedImageError:
        reason = "empty file" if _is_empty(source) else "not an image file (format not recognised)"
    except Image.DecompressionBombError as exc:  # a reader that checks a size of its own (WebP, GIF frames, TIFF)
        reason = f"image too large ({exc}); the ceiling is {ceiling} pixels, raise it with --max-pixels (max_pixels=)"
    except OSError as exc:
        text = str(exc)
        reason = "truncated image file" if "runcated" in text else f"corrupt image data ({text})"
    except Exception as exc:  # Pillow's decoders raise SyntaxError, ValueError, struct.error, EOFError...
        reason = f"corrupt image data ({type(exc).__name__}: {exc})"
    raise ImageReadError(_one_line(f"cannot read image {name}: {reason}"))


def _is_empty(source: str | Path | IO[bytes]) -> bool:
    """Whether the file (a path or a seekable stream) has no bytes: said as such, not as an unknown format."""
    try:
        if hasattr(source, "read"):
            source.seek(0)
            return not source.read(1)
        return os.path.getsize(source) == 0
    except (OSError, ValueError):
        return False


def _named_stream(data: bytes, name: str) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name  # what errors call the image
    return stream


def _check_ceiling(size: tuple[int, int], ceiling: int, name: str) -> None:
    width, height = size
    if width * height > ceiling:
        raise ImageReadError(
            f"cannot read image {name}: {width}x{height} ({width * height} pixels) is above the ceiling of "
            f"{ceiling} pixels; raise it with --max-pixels (max_pixels= in Python)"
        )


@contextlib.contextmanager
def _binary_file(source: str | Path | IO[bytes]) -> Iterator[IO[bytes]]:
    """A seekable binary file for a path (opened and closed here) or a file object (left open)."""
    if not hasattr(source, "read"):
        with open(source, "rb") as fp:
            yield fp
        return
    try:
        source.seek(0)
    except (AttributeError, io.UnsupportedOperation, OSError):
        source = io.BytesIO(source.read())  # a pipe or socket: the readers need to seek
    yield source


def _open_header(fp: IO[bytes], filename: str) -> ImageFile.ImageFile:
    """``Image.open`` without its global size check: find the reader and parse the header, no pixels.

    ``Image.open`` warns above ``Image.MAX_IMAGE_PIXELS`` and refuses above twice that before
    the caller sees the size, so neither the caller's ceiling nor a quiet stderr would hold.
    The readers are tried the way ``Image.open`` tries them: common formats first, then all.
    """
    prefix = fp.read(16)
    tried: set[str] = set()
    for register in (Image.preinit, Image.init):
        register()
        for fmt in [f for f in Image.ID if f not in tried]:
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            try:  # as Image.open, a reader's test of the prefix may fail too (DIB's on fewer than 4 bytes)
                verdict = accept(prefix) if accept else True
                if not verdict or isinstance(verdict, str):  # a string is Pillow's "looks like it, but unsupported"
                    continue
                fp.seek(0)
                return factory(fp, filename)
            except _NOT_THIS_FORMAT:
                continue
    raise UnidentifiedImageError("cannot identify image file")


def _from_pil(image: Image.Image, name: str) -> LoadedImage:
    exif = image_metadata.exif_upright(image)
    frames = max(1, int(getattr(image, "n_frames", 1) or 1))
    try:
        image = ImageOps.exif_transpose(image)  # a transposed copy; the caller's image is untouched
        rgb, alpha, icc_applied = _rgb_and_alpha(image)
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(_one_line(f"cannot read image {name}: cannot convert mode {image.mode} ({exc})")) from None
    if alpha is not None and alpha.min() == 255:
        alpha = None
    height, width = rgb.shape[:2]
    icc = image.info.get("icc_profile") or None
    gray = bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))
    return LoadedImage(np.ascontiguousarray(rgb), alpha, width, height, icc, icc_applied, exif, frames, gray)


def _rgb_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Convert any Pillow mode to (uint8 RGB, uint8 alpha or None, whether the ICC profile was applied)."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return *_high_depth_gray(image), False
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"))
        color, applied = _to_srgb(Image.fromarray(rgba[..., :3]), image.info.get("icc_profile"))
        return np.asarray(color), np.ascontiguousarray(rgba[..., 3]), applied
    if mode == "CMYK" or mode == "RGB":
        color, applied = _to_srgb(image, image.info.get("icc_profile"))
        return np.asarray(color), None, applied
    return np.asarray(image.convert("RGB")), None, False  # 1, L, P, YCbCr, ...


def _high_depth_gray(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit / 32-bit / float grayscale -> 8-bit by scaling the full range (not clipping).

    Integer modes are taken as 16-bit samples (0..65535, what 16-bit PNG and TIFF give);
    float images as [0, 1] when all values lie there, else as 0..255 like Pillow does.
    """
    values = np.asarray(image)
    if image.mode == "F":
        values = np.nan_to_num(values.astype(np.float64))
        scale = 255.0 if values.size and values.min() >= 0 and values.max() <= 1 else 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    else:
        samples = np.clip(values.astype(np.int64), 0, 65535)
        gray = ((samples * 255 + 32767) // 65535).astype(np.uint8)
    alpha = None
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):  # a tRNS gray key: that exact sample value is transparent
        alpha = np.where(values == transparent, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2), alpha


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> tuple[Image.Image, bool]:
    """RGB or CMYK -> sRGB through the embedded ICC profile when there is one (else Pillow's formulas)."""
    if icc_profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"), True
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or unsupported profile: fall back to the plain conversion
    return image.convert("RGB"), False


def _one_line(text: str) -> str:
    return " ".join(text.split())


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1]."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    tensor = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).unsqueeze(0)  # a copy: Pillow's arrays are read-only
    if rgb.dtype == np.uint8:
        return tensor.float() / 255.0
    return tensor.float().clamp(0, 1)


def to_pil(image: torch.Tensor | np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) float tensor in [0, 1], or uint8 (H, W, 3) array -> RGB (RGBA with alpha)."""
    if isinstance(image, torch.Tensor):
        pixels = image.detach().float().cpu()
        if pixels.ndim == 4:
            if pixels.shape[0] != 1:
                raise ValueError(f"expected a single image, got a batch of {pixels.shape[0]}")
            pixels = pixels[0]
        if pixels.ndim != 3 or pixels.shape[0] != 3:
            raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got shape {tuple(image.shape)}")
        rgb = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    else:
        rgb = np.asarray(image)
        if rgb.dtype != np.uint8:
            rgb = np.clip(np.rint(rgb.astype(np.float64) * 255), 0, 255).astype(np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    if alpha is None:
        return Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha shape {alpha.shape} does not match image shape {rgb.shape[:2]}")
    rgba = np.concatenate([rgb, alpha.astype(np.uint8)[..., None]], axis=2)
    return Image.fromarray(np.ascontiguousarray(rgba), "RGBA")


def to_gray(image: Image.Image) -> Image.Image:
    """A decoded RGB / RGBA image as L / LA (Pillow's ITU-R 601-2 luma), its ``info`` kept."""
    gray = image.convert("LA" if image.mode == "RGBA" else "L")
    gray.info.update(image.info)
    return gray


def pad_to_multiple(x: torch.Tensor, multiple: int = 8) -> torch.Tensor:
    """Pad the bottom and right of (..., H, W) up to multiples of ``multiple``.

    Reflection keeps the padding looking like image content; a side shorter than its
    padding (1x1, 2x3, ...) cannot be reflected and is replicated instead.
    """
    height, width = x.shape[-2:]
    pad_h = -height % multiple
    pad_w = -width % multiple
    if pad_h:
        mode = "reflect" if pad_h < height else "replicate"
        x = F.pad(x, (0, 0, 0, pad_h), mode=mode)
    if pad_w:
        mode = "reflect" if pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, 0), mode=mode)
    return x


def crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Undo ``pad_to_multiple``: keep the top-left ``height`` x ``width``."""
    return x[..., :height, :width]
