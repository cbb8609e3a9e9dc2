"""The invisible watermark the reference Stable Diffusion scripts put on every image they make.

The CompVis/Stability txt2img scripts mark each output with the bytes ``StableDiffusionV1`` using
the invisible-watermark library's ``dwtDct`` method (bits in 4x4 DCT blocks of the Haar DWT band
of the U channel). We mark the same bytes with the same library, but with its ``dwtDctSvd``
method: on Kodak crops (benchmarks/bench_watermark.py) ``dwtDct`` loses the mark on some images
even in a lossless PNG and on most after a q90 JPEG, while ``dwtDctSvd`` keeps all 136 bits in
both. ``detect`` reads both methods, so the reference scripts' images are recognised too (when
their mark survived). The library refuses images under 256x256 pixels; those stay unmarked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

WATERMARK = b"StableDiffusionV1"  # the reference scripts' mark
METHOD = "dwtDctSvd"  # how we mark
DETECTED_METHODS = ("dwtDctSvd", "dwtDct")  # ours, then the reference scripts'
MIN_PIXELS = 256 * 256  # invisible-watermark's own lower bound (width x height)
# Share of the 136 bits that must match. An unmarked image matches about half of them by chance
# (115 or more of 136 fair coins: below 1e-15, for each of the two methods); a JPEG q90 of a marked natural
# image keeps nearly all.
MATCH_THRESHOLD = 0.85


@dataclass
class Detection:
    """What ``detect`` read: whether the mark is there, and how many of its bits matched (best method)."""

    present: bool
    matching_bits: int
    total_bits: int
    method: str  # the invisible-watermark method that read the most matching bits


def can_mark(image: Image.Image) -> bool:
    """Is the image large enough for invisible-watermark (at least 256 x 256 pixels in area)?"""
    return image.width * image.height >= MIN_PIXELS


def marked_output(image: Image.Image, notice) -> Image.Image:
    """``add_watermark`` for a generated output, saying so when the image is too small to carry the mark."""
    if not can_mark(image):
        notice(f"{image.width}x{image.height} is under 256x256 pixels: too small for the invisible watermark")
        return image
    return add_watermark(image)


def add_watermark(image: Image.Image) -> Image.Image:
    """``image`` (RGB) with the reference scripts' invisible mark; images too small to mark come back as they were."""
    from imwatermark import WatermarkEncoder

    if not can_mark(image):
        return image
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", WATERMARK)
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    marked = encoder.encode(bgr, METHOD)
    return Image.fromarray(np.ascontiguousarray(marked[:, :, ::-1]), "RGB")


def detect(image: Image.Image) -> Detection:
    """Look for the mark in ``image``; ``ValueError`` when the image is too small to carry one."""
    from imwatermark import WatermarkDecoder

    if not can_mark(image):
        raise ValueError(f"a {image.width}x{image.height} image is too small to carry the watermark (under 256x256)")
    total = len(WATERMARK) * 8
    expected = np.unpackbits(np.frombuffer(WATERMARK, dtype=np.uint8)).astype(bool)
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    matches = {}
    for method in DETECTED_METHODS:
        bits = np.asarray(WatermarkDecoder("bits", total).decode(bgr, method), dtype=bool)
        matches[method] = int((bits == expected).sum())
    method = max(matches, key=matches.get)
    return Detection(
        present=matches[method] >= MATCH_THRESHOLD * total,
        matching_bits=matches[method],
        total_bits=total,
        method=method,
    )
