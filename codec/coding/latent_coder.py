"""Latent <-> .sdz bytes: the latent-level API (quantize, entropy-code, wrap in the container).

>>> import numpy as np
>>> latent = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
>>> data = encode_latent(latent, step=0.5)
>>> restored = decode_latent(data)
>>> bool(np.abs(restored - latent).max() <= 0.5)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdcodec import bitstream
from sdcodec.codec.coding.quantizer import (
    as_latent_array,
    best_recon_offset,
    channel_steps,
    dequantize,
    header_steps,
    quantize,
    rdo_quantize,
)
from sdcodec.codec.coding.rate_control import fit_size
from sdcodec.codec.coding.symbol_coder import ENTROPY_MODEL_ID, ENTROPY_MODELS, decode_symbols, encode_symbols

__all__ = [
    "EncodedLatent",
    "encode_latent",
    "encode_latent_detailed",
    "decode_latent",
    "read_symbols",
    "quantize",
    "dequantize",
    "header_steps",
    "channel_steps",
    "encode_symbols",
    "decode_symbols",
    "ENTROPY_MODEL_ID",
    "ENTROPY_MODELS",
]


@dataclass
class EncodedLatent:
    """A finished file with the figures the benchmarks report."""

    data: bytes
    step: float
    ideal_bits: float
    payload_bytes: int


def _encode_at(latent: np.ndarray, step_code: int, fields: dict) -> EncodedLatent:
    step = step_code / bitstream.STEP_SCALE
    multipliers = tuple(fields.get("channel_steps") or ())
    steps = channel_steps(step, multipliers, latent.shape[0])
    q = rdo_quantize(latent, steps, fields.get("rdo_weight") or 0.0, fields.get("channel_metric"))
    entropy_model = fields.get("entropy_model") or ENTROPY_MODEL_ID
    payload, ideal_bits = encode_symbols(q, entropy_model)
    c, h, w = latent.shape
    sdz = bitstream.SdzFile(
        latent_space=fields.get("latent_space", bitstream.RAW_LATENT_SPACE),
        width=fields.get("width") or 8 * w,
        height=fields.get("height") or 8 * h,
        latent_shape=(c, h, w),
        step_code=step_code,
        recon_offset=_recon_offset(latent, q, steps, fields.get("recon_offset")),
        channel_steps=multipliers,
        entropy_model=entropy_model,
        payload=payload,
        caption=fields.get("caption", ""),
        restore_steps=fields.get("restore_steps") or 0,
        restore_guidance_tenths=round(10 * fields.get("restore_guidance", 1.0)),
        has_restore_hints=fields.get("restore_steps") is not None,
        alpha=fields.get("alpha"),
        metadata=fields.get("metadata"),
        gray=bool(fields.get("gray")),
    )
    return EncodedLatent(bitstream.write_sdz(sdz), step, ideal_bits, len(payload))


def _recon_offset(latent: np.ndarray, q: np.ndarray, steps: np.ndarray, chosen: int | None) -> int:
    """The caller's reconstruction offset, or the mean in-bin offset of the symbols (``best_recon_offset``)."""
    if chosen is None:
        return best_recon_offset(latent, q, steps)
    if not 0 <= chosen < bitstream.container.RECON_OFFSET_SCALE // 2:
        raise ValueError(
            f"reconstruction offset must be between 0 and {bitstream.container.RECON_OFFSET_SCALE // 2 - 1}"
        )
    return chosen


def encode_latent_detailed(
    latent, *, step: float | None = None, max_bytes: int | None = None, **fields
) -> EncodedLatent:
    """``encode_latent`` that also returns the step used and the model's ideal code length."""
    array = as_latent_array(latent)
    if (step is None) == (max_bytes is None):
        raise ValueError("give exactly one of step= or max_bytes=")
    if step is not None:
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"quantization step must be a positive number, got {step}")
        return _encode_at(array, bitstream.step_to_code(step), fields)
    multipliers = tuple(fields.get("channel_steps") or ())
    return fit_size(array, int(max_bytes), multipliers, lambda code: _encode_at(array, code, fields))


def encode_latent(latent, *, step: float | None = None, max_bytes: int | None = None, **fields) -> bytes:
    """Quantize and entropy-code a (C, h, w) latent into a complete .sdz file.

    ``step`` is the quantization step in the latent's own units (stored to 1/65536);
    ``max_bytes`` instead searches the step for the smallest-error file that fits.
    Extra keyword ``fields`` fill the container header (latent_space, width, height,
    caption, restore_steps, restore_guidance, alpha, gray, channel_steps: per-channel step
    multipliers in 1/16, so channel c is quantized with ``step * channel_steps[c] / 16``),
    and ``entropy_model`` (1 or 2; default ``ENTROPY_MODEL_ID``) picks the entropy model.
    ``rdo_weight`` (default 0: plain rounding) lets the encoder move a symbol one step towards
    zero where the bits saved outweigh the error added (``quantizer.rdo_quantize``), and with
    ``channel_metric`` (C, C) also shapes the errors across channels; the format and every decoder
    are unchanged. ``recon_offset`` (1/64 steps towards zero) fixes the reconstruction points
    instead of fitting them to the latent (a searched latent was measured at the bin centres: 0).
    """
    return encode_latent_detailed(latent, step=step, max_bytes=max_bytes, **fields).data


def read_symbols(
    data: bytes, *, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, bitstream.SdzFile]:
    """Parse, validate and entropy-decode a file: integer symbols (C, h, w) and the header.

    A file declaring more than ``max_pixels`` image pixels (or a latent larger than a 32-channel
    one of that image) is refused with ``bitstream.TooLargeError`` before anything is allocated.
    """
    sdz = bitstream.read_sdz(data, max_pixels=max_pixels)
    if sdz.entropy_model not in ENTROPY_MODELS:
        raise bitstream.FieldRangeError(f"unknown entropy model {sdz.entropy_model}")
    return decode_symbols(sdz.payload, sdz.latent_shape, sdz.entropy_model), sdz


def decode_latent(data: bytes, *, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The dequantized latent (C, h, w) float32 of a .sdz file; raises ``BitstreamError``.

    ``max_pixels`` is the decoding ceiling (``bitstream.DEFAULT_MAX_PIXELS``, 8192 x 8192).
    """
    q, sdz = read_symbols(data, max_pixels=max_pixels)
    return dequantize(q, header_steps(sdz), sdz.recon_offset)
