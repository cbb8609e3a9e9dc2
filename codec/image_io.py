"""Image files in and out of the codec: any Pillow image -> 8-bit sRGB + optional alpha -> tensors.

The autoencoders see RGB in [0, 1] with sides padded to a multiple of 8; alpha never goes
through them: it is stored losslessly beside the latent (``encode_alpha``/``decode_alpha``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from codec.errors import ImageReadError

# Pillow modes that carry an alpha channel (premultiplied ones are un-premultiplied by convert).
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


@dataclass
class LoadedImage:
    """An image as the codec uses it: upright 8-bit sRGB, alpha kept aside (None when fully opaque)."""

    rgb: np.ndarray  # uint8, (height, width, 3)
    alpha: np.ndarray | None  # uint8, (height, width), or None when every pixel is opaque
    width: int
    height: int


def load_image(source: str | Path | Image.Image, *, max_pixels: int | None = None) -> LoadedImage:
    """Read a file (or take a Pillow image) and return it upright, as 8-bit RGB plus optional alpha.

    Raises ImageReadError with one line naming the file for anything unreadable: missing,
    not an image, truncated or corrupt, or in a mode that cannot be converted.
    """
    if isinstance(source, Image.Image):
        return _from_pil(source, "<image>")
    name = str(source)
    try:
        with Image.open(source) as image:
            image.load()  # decode everything now, so truncation is caught here
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
        reason = "not an image file (format not recognised)"
    except Image.DecompressionBombError as exc:
        reason = f"image too large ({exc})"
    except OSError as exc:
        text = str(exc)
        reason = "truncated image file" if "runcated" in text else f"corrupt image data ({text})"
    except Exception as exc:  # Pillow's decoders raise SyntaxError, ValueError, struct.error, EOFError...
        reason = f"corrupt image data ({type(exc).__name__}: {exc})"
    raise ImageReadError(_one_line(f"cannot read image {name}: {reason}"))


def _from_pil(image: Image.Image, name: str) -> LoadedImage:
    try:
        image = ImageOps.exif_transpose(image)  # a transposed copy; the caller's image is untouched
        rgb, alpha = _rgb_and_alpha(image)
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(_one_line(f"cannot read image {name}: cannot convert mode {image.mode} ({exc})")) from None
    if alpha is not None and alpha.min() == 255:
        alpha = None
    height, width = rgb.shape[:2]
    return LoadedImage(rgb=np.ascontiguousarray(rgb), alpha=alpha, width=width, height=height)


def _rgb_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert any Pillow mode to (uint8 RGB, uint8 alpha or None)."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return _high_depth_gray(image)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"))
        color = _to_srgb(Image.fromarray(rgba[..., :3]), image.info.get("icc_profile"))
        return np.asarray(color), np.ascontiguousarray(rgba[..., 3])
    if mode == "CMYK" or mode == "RGB":
        return np.asarray(_to_srgb(image, image.info.get("icc_profile"))), None
    return np.asarray(image.convert("RGB")), None  # 1, L, P, YCbCr, ...


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


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """RGB or CMYK -> sRGB through the embedded ICC profile when there is one (else Pillow's formulas)."""
    if icc_profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or unsupported profile: fall back to the plain conversion
    return image.convert("RGB")


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


# Alpha planes are stored losslessly, as the smallest of a few encodings. The first byte says which.
_ALPHA_CONSTANT = 0  # one more byte: the value every pixel has
_ALPHA_PNG = 1  # a PNG (8-bit gray, or 1-bit when alpha is only 0/255)
_ALPHA_WEBP = 2  # a lossless WebP of the plane repeated in R, G and B
_WEBP_MAX_SIDE = 16383
_WEBP_SLOW_METHOD_MAX_PIXELS = 1 << 20


def encode_alpha(alpha: np.ndarray) -> bytes:
    """uint8 (H, W) alpha -> compact lossless bytes (bit-exact through ``decode_alpha``)."""
    alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
    if alpha.ndim != 2:
        raise ValueError(f"expected an (H, W) alpha plane, got shape {alpha.shape}")
    if alpha.size and (alpha == alpha.flat[0]).all():
        return bytes([_ALPHA_CONSTANT, int(alpha.flat[0])])
    candidates = [bytes([_ALPHA_PNG]) + _save(Image.fromarray(alpha, "L"), "PNG", optimize=True)]
    if np.isin(alpha, (0, 255)).all():
        bilevel = Image.fromarray(alpha, "L").convert("1", dither=Image.Dither.NONE)
        candidates.append(bytes([_ALPHA_PNG]) + _save(bilevel, "PNG", optimize=True))
    if max(alpha.shape) <= _WEBP_MAX_SIDE:
        gray_rgb = Image.fromarray(np.repeat(alpha[..., None], 3, axis=2), "RGB")
        method = 6 if alpha.size <= _WEBP_SLOW_METHOD_MAX_PIXELS else 4  # 6 is ~10% smaller, ~10x slower
        candidates.append(bytes([_ALPHA_WEBP]) + _save(gray_rgb, "WEBP", lossless=True, quality=100, method=method))
    return min(candidates, key=len)


def decode_alpha(data: bytes, width: int, height: int) -> np.ndarray:
    """Inverse of ``encode_alpha``; raises ValueError if the data is not an alpha plane of that size."""
    if not data:
        raise ValueError("alpha plane is empty")
    kind, body = data[0], data[1:]
    if kind == _ALPHA_CONSTANT:
        if len(body) != 1:
            raise ValueError("constant alpha plane must hold exactly one value")
        return np.full((height, width), body[0], dtype=np.uint8)
    if kind not in (_ALPHA_PNG, _ALPHA_WEBP):
        raise ValueError(f"unknown alpha plane encoding {kind}")
    try:
        with Image.open(io.BytesIO(body)) as image:
            image.load()
            if image.mode in ("L", "1"):
                plane = np.asarray(image.convert("L"))
            else:  # WebP: the plane is in each of R, G, B
                plane = np.asarray(image.convert("RGB"))[..., 0]
    except Exception as exc:
        raise ValueError(_one_line(f"alpha plane is corrupt ({exc})")) from None
    if plane.shape != (height, width):
        raise ValueError(f"alpha plane is {plane.shape[1]}x{plane.shape[0]}, expected {width}x{height}")
    return np.ascontiguousarray(plane)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()
