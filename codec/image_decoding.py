""".sdz files -> images: parse and entropy-decode, optionally restore with the U-Net, then the VAE decoder.

The decoding half of ``image_codec`` (which encodes): every defect of a file is found by
``unpack_file`` before any model is loaded.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sdcodec import bitstream
from sdcodec.codec import autoencoders, model_specs
from sdcodec.codec.coding import latent_coder
from sdcodec.codec.errors import LatentSpaceMismatch, SdcodecError
from sdcodec.codec.image_codec import RESTORABLE_SPACES, Notice, silent
from sdcodec.codec.images import alpha_plane, image_io, image_metadata


def read_latent(data: bytes, *, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, bitstream.SdzFile]:
    """The dequantized latent (C, h, w) float32 of a file and its parsed header."""
    q, sdz = latent_coder.read_symbols(data, max_pixels=max_pixels)
    return latent_coder.dequantize(q, latent_coder.header_steps(sdz), sdz.recon_offset), sdz


def _decoder_spec(sdz: bitstream.SdzFile, model: str | None, decoder: str | None) -> str:
    if sdz.latent_space == bitstream.RAW_LATENT_SPACE:
        raise SdcodecError("this file holds a raw latent (no latent space recorded); it cannot be decoded to an image")
    return model_specs.decoder_spec(sdz.latent_space, model, decoder)


def _load_restorer(sdz: bitstream.SdzFile, model: str | None, device: str, notice: Notice):
    """The full pipeline that restores this file, or None (after a notice saying why not)."""
    from sdcodec.codec.diffusion.restore import load_restorer

    if model is None and sdz.latent_space not in RESTORABLE_SPACES:
        notice(f"no restoration: no default U-Net for {sdz.latent_space} files; pass --model with a full pipeline")
        return None
    components, reason = load_restorer(model, device=device, latent_space=sdz.latent_space)
    if components is None:
        notice(f"{reason}; decoding without restoration")
    return components


def _restore(latent, q, sdz, data, components, *, steps, consistency, notice) -> torch.Tensor:
    """Run ``steps`` U-Net restoration steps, seeded by the file's bytes (same file, same pixels)."""
    from sdcodec.codec.diffusion.restore import restore_latent

    notice(f"restoring detail with {steps} U-Net step(s) of {components.spec}")
    return restore_latent(
        latent,
        symbols=torch.from_numpy(q),
        quant_step=torch.from_numpy(latent_coder.header_steps(sdz)),
        components=components,
        caption=sdz.caption,
        num_steps=steps,
        guidance=sdz.restore_guidance,
        consistency=consistency,
        seed=zlib.crc32(data),
    )


def unpack_file(data: bytes, *, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS):
    """Everything decoding does before any model work: (symbols, header, latent, alpha or None).

    The alpha plane is part of the file: a defect in it is a ``BitstreamError`` found here, with
    the rest of the file's defects, before a model is loaded (the fuzzer calls this function).
    """
    q, sdz = latent_coder.read_symbols(data, max_pixels=max_pixels)
    alpha = alpha_plane.decode_alpha(sdz.alpha, sdz.width, sdz.height) if sdz.alpha is not None else None
    return q, sdz, latent_coder.dequantize(q, latent_coder.header_steps(sdz), sdz.recon_offset), alpha


def decode_image(
    data: bytes | str | Path,
    *,
    model: str | None = None,
    decoder: str | None = None,
    restore_steps: int | None = None,
    consistency: bool = True,
    device: str = "auto",
    notice: Notice = silent,
    max_pixels: int = bitstream.DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode a .sdz file (its bytes, or a path) to a PIL image (RGB, or RGBA when the file kept an alpha plane;
    L or LA when the source was gray).

    A file that kept an ICC profile gives pixels in that profile, with ``info["icc_profile"]``;
    kept EXIF is in ``info["exif"]`` (both written back by ``image_output``).

    ``decoder`` picks the VAE decoder (any of the file's latent space, e.g. ``taesd:DIR`` for a
    fast preview); ``model`` is the full pipeline used for restoration (and the decoder when
    ``decoder`` is not given). ``restore_steps`` overrides the file's hint (0 = off).
    ``max_pixels`` is the decoding ceiling: larger files raise ``bitstream.TooLargeError`` first.
    Every defect of the file, its alpha plane included, raises a ``bitstream.BitstreamError``
    before any model is loaded.
    """
    data = _sdz_bytes(data)
    q, sdz, latent, alpha = unpack_file(data, max_pixels=max_pixels)
    latent = torch.from_numpy(latent)
    spec = _decoder_spec(sdz, model, decoder)
    steps = sdz.restore_steps if restore_steps is None else restore_steps
    if steps < 0:
        raise SdcodecError(f"restore steps must be 0 or more, got {steps}")
    autoencoder = autoencoders.load_autoencoder(spec, device=device)
    if autoencoder.latent_space != sdz.latent_space:
        raise LatentSpaceMismatch(
            f"the file is in the {sdz.latent_space} latent space but {spec} decodes {autoencoder.latent_space} latents"
        )
    # The restoring pipeline reuses the decoder's VAE when both come from the same SPEC (model_cache).
    restorer = _load_restorer(sdz, model, device, notice) if steps > 0 else None
    if restorer is not None:
        latent = _restore(latent, q, sdz, data, restorer, steps=steps, consistency=consistency, notice=notice)
    notice(f"decoding {sdz.width}x{sdz.height} with {autoencoder.name}")
    image = decoded_image(autoencoder, latent, sdz, alpha)
    return image_metadata.attach_metadata(image, sdz.image_metadata, notice)


def decoded_image(autoencoder, latent: torch.Tensor, sdz: bitstream.SdzFile, alpha=None) -> Image.Image:
    """The autoencoder's image of a (C, h, w) latent at the file's size, in sRGB: RGB(A), or L(A) for a gray file."""
    with torch.inference_mode():
        pixels = autoencoder.decode(latent[None].float())
    image = image_io.to_pil(image_io.crop(pixels, sdz.height, sdz.width), alpha)
    if sdz.gray:  # the source was gray: its luma, without the tints a decoder adds
        image = image_io.to_gray(image)
    return image


def _sdz_bytes(data) -> bytes:
    """The bytes of a .sdz given as bytes (or bytearray, memoryview) or as a path (str, os.PathLike)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (str, os.PathLike)):
        return read_file(data)
    raise TypeError(f"decode_image takes .sdz bytes or a path, not {type(data).__name__}")


def read_file(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SdcodecError(f"cannot read {path}: {exc.strerror or exc}") from None
