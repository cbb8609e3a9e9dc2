"""The alpha plane of a .sdz file: lossless bytes stored beside the latent.

Decoding treats the bytes as hostile: the embedded PNG or WebP must declare exactly the
file's width x height, checked from its header before a pixel is decoded, so the memory
a plane can take is bounded by the file's (already ceilinged) size. Every defect raises
``bitstream.AlphaPlaneError``. No torch here, so a file can be validated without it.
"""

from __future__ import annotations

import contextlib
import io
import threading

import numpy as np
from PIL import Image, PngImagePlugin, WebPImagePlugin

from sdcodec.bitstream.errors import AlphaPlaneError

# The first byte of the plane says how the rest is encoded.
CONSTANT = 0  # one more byte: the value every pixel has
PNG = 1  # a PNG (8-bit gray, or 1-bit when alpha is only 0/255)
WEBP = 2  # a lossless WebP of the plane repeated in R, G and B

_WEBP_MAX_SIDE = 16383
_WEBP_SLOW_METHOD_MAX_PIXELS = 1 << 20
# What each kind may contain: the Pillow reader and the modes our encoder writes.
_READERS = {PNG: PngImagePlugin.PngImageFile, WEBP: WebPImagePlugin.WebPImageFile}
_MODES = {PNG: ("1", "L"), WEBP: ("RGB", "RGBA")}
_KIND_NAMES = {PNG: "PNG", WEBP: "WebP"}


# --- encoding ---------------------------------------------------------------------------


def encode_alpha(alpha: np.ndarray) -> bytes:
    """uint8 (H, W) alpha -> compact lossless bytes (bit-exact through ``decode_alpha``)."""
    alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
    if alpha.ndim != 2:
        raise ValueError(f"expected an (H, W) alpha plane, got shape {alpha.shape}")
    if alpha.size and (alpha == alpha.flat[0]).all():
        return bytes([CONSTANT, int(alpha.flat[0])])
    candidates = [bytes([PNG]) + _save(Image.fromarray(alpha, "L"), "PNG", optimize=True)]
    if np.isin(alpha, (0, 255)).all():
        bilevel = Image.fromarray(alpha, "L").convert("1", dither=Image.Dither.NONE)
        candidates.append(bytes([PNG]) + _save(bilevel, "PNG", optimize=True))
    if max(alpha.shape) <= _WEBP_MAX_SIDE:
        gray_rgb = Image.fromarray(np.repeat(alpha[..., None], 3, axis=2), "RGB")
        method = 6 if alpha.size <= _WEBP_SLOW_METHOD_MAX_PIXELS else 4  # 6 is ~10% smaller, ~10x slower
        candidates.append(bytes([WEBP]) + _save(gray_rgb, "WEBP", lossless=True, quality=100, method=method))
    return min(candidates, key=len)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# --- decoding ---------------------------------------------------------------------------


def decode_alpha(data: bytes, width: int, height: int) -> np.ndarray:
    """Inverse of ``encode_alpha``: uint8 (height, width); ``AlphaPlaneError`` for any defect.

    ``width`` x ``height`` is the file's size, which the caller has already held under its
    ceiling (``read_symbols`` does); the plane may take no more memory than that size implies.
    """
    if not data:
        raise AlphaPlaneError("alpha plane is empty")
    kind, body = data[0], bytes(data[1:])
    if kind == CONSTANT:
        if len(body) != 1:
            raise AlphaPlaneError(f"constant alpha plane must hold exactly one value, it holds {len(body)} bytes")
        return np.full((height, width), body[0], dtype=np.uint8)
    if kind not in _READERS:
        raise AlphaPlaneError(f"unknown alpha plane encoding {kind} (known: 0 constant, 1 PNG, 2 WebP)")
    with pillow_limit_at_least(width * height):
        return _decode_image_plane(kind, body, width, height)


def _decode_image_plane(kind: int, body: bytes, width: int, height: int) -> np.ndarray:
    """Open the embedded image lazily, check its declared size and mode, and only then decode it."""
    name = _KIND_NAMES[kind]
    if kind == WEBP:
        _expect_size(name, webp_declared_size(body), width, height)  # libwebp allocates its canvas on open
    try:
        image = _READERS[kind](io.BytesIO(body))
    except Exception as exc:  # Pillow's readers raise SyntaxError, OSError, ValueError, DecompressionBombError...
        raise AlphaPlaneError(_one_line(f"alpha plane is not a valid {name} ({type(exc).__name__}: {exc})")) from None
    with image:
        _expect_size(name, image.size, width, height)
        if image.mode not in _MODES[kind]:
            raise AlphaPlaneError(
                f"alpha plane {name} has mode {image.mode}, expected one of {', '.join(_MODES[kind])}"
            )
        try:
            image.load()
            plane = np.asarray(image.convert("L")) if kind == PNG else np.asarray(image)[..., 0]
        except Exception as exc:
            raise AlphaPlaneError(_one_line(f"alpha plane {name} is corrupt ({type(exc).__name__}: {exc})")) from None
    if plane.shape != (height, width):  # a reader that changed its mind about the size while decoding
        raise AlphaPlaneError(f"alpha plane decoded to {plane.shape[1]}x{plane.shape[0]}, expected {width}x{height}")
    return np.ascontiguousarray(plane)


def _expect_size(name: str, size: tuple[int, int] | None, width: int, height: int) -> None:
    if size is None:
        raise AlphaPlaneError(f"alpha plane {name} has no readable size in its header")
    if tuple(size) != (width, height):
        raise AlphaPlaneError(f"alpha plane {name} declares {size[0]}x{size[1]}, the image is {width}x{height}")


def webp_declared_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP declares (what libwebp allocates), read from its first 30 bytes.

    The same three layouts Pillow's reader uses: lossy ``VP8 ``, lossless ``VP8L``, extended ``VP8X``.
    """
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- Pillow's global bomb guard ----------------------------------------------------------

_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def pillow_limit_at_least(pixels: int):
    """Let Pillow's global bomb guard allow ``pixels`` for the duration, when it would not already.

    Our callers have already checked the size against their own ceiling; Pillow's guard
    (``Image.MAX_IMAGE_PIXELS``, a process-wide setting that some of its readers consult)
    must not refuse what the user's explicit ceiling allows. Only then is the global raised,
    under a lock so two of our calls cannot restore it out of order, and it is put back
    unless someone else changed it meanwhile. Other threads see the raised limit meanwhile.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None or pixels <= limit:
        yield
        return
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        raised = pixels if saved is not None else None
        Image.MAX_IMAGE_PIXELS = raised
        try:
            yield
        finally:
            if Image.MAX_IMAGE_PIXELS == raised:
                Image.MAX_IMAGE_PIXELS = saved
