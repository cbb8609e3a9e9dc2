"""Images -> .sdz files: load, pad, autoencode, quantize and code the latent (decoding: ``image_decoding``).

The latent is stored in the diffusion model's own units, so a file can be decoded by any
decoder of its latent space and restored by that space's U-Net.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch

from sdcodec import bitstream
from sdcodec.codec import autoencoders
from sdcodec.codec.coding import latent_coder
from sdcodec.codec.errors import SdcodecError
from sdcodec.codec.images import alpha_plane, image_io, image_metadata
from sdcodec.codec.rate_distortion import channel_weighting, latent_refinement, model_metric, psnr_target
from sdcodec.codec.rate_distortion.distortion import check_tune

Notice = Callable[[str], None]

DEFAULT_QUALITY = 50
DEFAULT_EFFORT = 1  # the fast encoder; 2-4 refine the latent through the decoder (see encode_image)
DEFAULT_RDO_WEIGHT = 2.0  # effort 1's rate-distortion quantization (quantizer.rdo_quantize); 0 rounds
# New files code with entropy model 2 (adaptive context mixing: 5-9% fewer bits than model 1 on the
# same symbols; every decoder reads it, its golden vectors are frozen) at every effort.
DEFAULT_ENTROPY_MODEL = 2
# Quality 1..100 maps log-linearly onto the quantization step (latent units, std about 1):
# Q=1 -> 4.0, Q=34 -> 1.0, Q=50 -> about 0.51, Q=100 -> about 0.063. Higher is finer and larger.
_STEP_AT_Q1 = 4.0
_QUALITY_PER_OCTAVE = 16.5
# Latent spaces whose U-Net restoration is supported (the encoder only hints restoration there).
RESTORABLE_SPACES = ("sd1",)


def quality_to_step(quality: int) -> float:
    if not 1 <= quality <= 100:
        raise SdcodecError(f"quality must be between 1 and 100, got {quality}")
    return _STEP_AT_Q1 * 2.0 ** (-(quality - 1) / _QUALITY_PER_OCTAVE)


def silent(message: str) -> None:
    pass


def check_caption(caption: str) -> None:
    """A caption the container can hold (UTF-8, at most MAX_CAPTION_BYTES); checked before any work."""
    try:
        encoded = caption.encode("utf-8")
    except UnicodeEncodeError:  # e.g. a non-UTF-8 command-line argument (surrogate escapes)
        raise SdcodecError("the caption is not valid UTF-8 text") from None
    limit = bitstream.container.MAX_CAPTION_BYTES
    if len(encoded) > limit:
        raise SdcodecError(f"the caption is {len(encoded)} bytes of UTF-8; at most {limit} fit in a .sdz file")


# --- encoding ---------------------------------------------------------------------------


def encode_latent_image(
    latent,
    *,
    latent_space: str,
    width: int,
    height: int,
    quality: int | None = None,
    bpp: float | None = None,
    size: int | None = None,
    caption: str = "",
    alpha: bytes | None = None,
    channel_steps: tuple[int, ...] = (),
    metadata: bitstream.ImageMetadata | None = None,
    gray: bool = False,
    rdo_weight: float = 0.0,
    channel_metric: np.ndarray | None = None,
    entropy_model: int | None = None,
    recon_offset: int | None = None,
) -> bytes:
    """A complete .sdz for an image given by its latent (C, h, w), in the diffusion model's units.

    ``quality`` (1-100), ``bpp`` or ``size`` (bytes) pick the rate; bpp and size are ceilings:
    the result is the best file that fits. Used by ``encode_image`` and by ``gen -o x.sdz``.
    ``metadata`` (ICC profile, EXIF) is stored compressed beside the latent when not empty.
    ``gray`` marks a gray image: decoders give back one luma channel (L, or LA with alpha).
    ``rdo_weight`` > 0 quantizes for rate plus distortion (``quantizer.rdo_quantize``), 0 rounds;
    with it, ``channel_metric`` (C, C; ``channel_weighting.channel_metric``) shapes the errors across channels.
    ``entropy_model`` is the payload's model id (None: the format's default, 1).
    ``recon_offset`` fixes the reconstruction points (1/64 steps towards zero; None fits them to the latent).
    """
    check_caption(caption)
    _check_rate(quality, bpp, size)
    restorable = latent_space in RESTORABLE_SPACES
    fields = dict(
        latent_space=latent_space,
        width=width,
        height=height,
        caption=caption,
        alpha=alpha,
        channel_steps=channel_steps,
        metadata=bitstream.pack_metadata(metadata) if metadata else None,
        gray=gray,
        rdo_weight=rdo_weight,
        channel_metric=channel_metric,
        entropy_model=entropy_model,
        recon_offset=recon_offset,
        # Reserve the restoration hint so a size ceiling accounts for it; any hint value is one byte.
        restore_steps=0 if restorable else None,
    )
    if bpp is not None:
        size = int(bpp * width * height / 8)
    try:
        if size is not None:
            result = latent_coder.encode_latent_detailed(latent, max_bytes=size, **fields)
        else:
            step = quality_to_step(DEFAULT_QUALITY if quality is None else quality)
            result = latent_coder.encode_latent_detailed(latent, step=step, **fields)
    except ValueError as exc:
        raise SdcodecError(str(exc)) from None
    if not restorable:
        return result.data
    from sdcodec.codec.diffusion.restore import recommended_restore_steps

    rms_step = result.step * float(np.sqrt(np.mean((np.asarray(channel_steps or (16,)) / 16.0) ** 2)))
    header = bitstream.read_sdz(result.data)
    return bitstream.write_sdz(dataclasses.replace(header, restore_steps=recommended_restore_steps(rms_step)))


def encode_image(
    image,
    *,
    model: str | None = None,
    quality: int | None = None,
    bpp: float | None = None,
    size: int | None = None,
    psnr: float | None = None,
    caption: str = "",
    device: str = "auto",
    notice: Notice = silent,
    max_pixels: int = bitstream.DEFAULT_MAX_PIXELS,
    effort: int = DEFAULT_EFFORT,
    tune: str = "psnr",
    strip_metadata: bool = False,
    rdo_weight: float = DEFAULT_RDO_WEIGHT,
    entropy_model: int | None = None,
) -> bytes:
    """Encode an image (path, binary file object, encoded file bytes or PIL image) into .sdz bytes with the autoencoder named by ``model``.

    ``max_pixels`` is the input ceiling, checked from the image header before pixels are read
    and before the model is loaded (an oversized image raises ``ImageReadError``).
    ``effort`` 1 sends the encoder's latent quantized for rate plus distortion (each symbol rounded
    or one step nearer zero, then errors shaped across channels with the decoder's channel metric,
    ``quantizer.rdo_quantize``); 2 to 4 search, through the file's own
    decoder, for the latent whose quantized version decodes best (``latent_refinement``), at 4, 12
    and 30 decoder passes (forward and backward). Every decoder reads the result: only the encoder changes.
    At every effort ``quality`` sets the size: levels 2-4 search within level 1's file size at that quality.
    ``psnr`` (dB) instead picks the lowest quality whose level-1 file decodes to at least that PSNR
    (``psnr_target``: about eight encodes and decodes; out of reach, within 0.05 dB of quality 100's, with a notice),
    then the smallest file found by size between it and the quality below (up to three more);
    levels 2-4 search lower qualities' sizes with refined latents: a smaller file at the target.
    ``tune`` is what that search optimises: ``psnr`` (MSE), ``ssim`` (MS-SSIM with some MSE) or
    ``lpips`` (where its weights exist); it changes nothing at effort 1.
    The input's ICC profile and EXIF (Orientation reset to 1) are kept in the file unless
    ``strip_metadata``; what cannot be kept is dropped with a notice (``image_metadata``).
    ``rdo_weight`` scales effort 1's rate-distortion quantization (0 rounds every value, as before).
    ``entropy_model`` picks the payload's model (1 or 2); None takes ``DEFAULT_ENTROPY_MODEL``
    (``effort=1, rdo_weight=0, entropy_model=1`` is the encoder before RDOQ).
    """
    _check_encode_options(effort, tune, caption)
    _check_rate(quality, bpp, size, psnr)
    loaded = image_io.load_image(image, max_pixels=max_pixels)
    autoencoder = autoencoders.load_autoencoder(model, device=device)
    notice(f"encoding {loaded.width}x{loaded.height} with {autoencoder.name}")
    if loaded.frames > 1:
        notice(f"the input has {loaded.frames} frames (an animation or pages): only the first is encoded")
    pixels = image_io.pad_to_multiple(image_io.to_tensor(loaded.rgb))
    with torch.inference_mode():
        latent = autoencoder.encode(pixels)[0]
    metric, multipliers = _decoder_metric(autoencoder, notice)
    alpha = alpha_plane.encode_alpha(loaded.alpha) if loaded.alpha is not None else None
    metadata = None
    if not strip_metadata:
        metadata = image_metadata.kept_metadata(loaded.icc_profile, loaded.icc_applied, loaded.exif, notice)
    fields = dict(
        latent_space=autoencoder.latent_space,
        width=loaded.width,
        height=loaded.height,
        quality=quality,
        bpp=bpp,
        size=size,
        caption=caption,
        alpha=alpha,
        channel_steps=multipliers,
        metadata=metadata,
        # A gray input decodes gray; not under an (RGB) ICC profile, whose pixels are RGB by definition.
        gray=loaded.gray and not (metadata and metadata.icc_profile),
        entropy_model=DEFAULT_ENTROPY_MODEL if entropy_model is None else entropy_model,
    )
    level1 = dict(rdo_weight=rdo_weight, channel_metric=metric)
    if psnr is not None:
        return _encode_for_psnr(autoencoder, pixels, latent, loaded, fields, level1, psnr, effort, tune, notice)
    if effort > 1:
        if bpp is None and size is None:
            # --quality sets the size at every effort: the search spends level 1's bytes at that
            # quality on a better image, so more effort never makes a larger file (as in cwebp -m,
            # cjxl -e) and the lowest qualities reach the lowest rates at every level.
            fields.update(quality=None, size=len(encode_latent_image(latent, **fields, **level1)))
        return _refined_file(autoencoder, pixels, latent, effort, fields, tune, notice)
    return encode_latent_image(latent, **fields, **level1)


def _refined_file(autoencoder, pixels, latent, effort: int, fields: dict, tune: str, notice: Notice) -> bytes:
    """Levels 2-4: the file of the latent refined through the decoder, at the rate ``fields`` set."""
    refinement = latent_refinement.EFFORTS[effort]
    notice(f"refining the latent (effort {effort}: {refinement.iterations} decoder passes, tune {tune})")
    latent = _refined(autoencoder, pixels, latent, refinement, fields, tune)
    # The search measured its latent rounded to the bin centres: the file reconstructs there too
    # (a fitted offset shifts every value it chose: 11% more bits at equal PSNR on level-2 crops).
    return encode_latent_image(latent, **fields, recon_offset=0)


def _encode_for_psnr(autoencoder, pixels, latent, loaded, fields, level1, target, effort, tune, notice) -> bytes:
    """The smallest file found whose decoded image reaches ``target`` dB against the loaded image.

    Level 1: the lowest quality that reaches it. Levels 2-4 then search again below that quality,
    each probe level 1's size at a quality spent on a refined latent (``_refined_file``), so more
    effort makes a smaller file at the target, not a better image at level 1's size.
    """
    from skimage.metrics import peak_signal_noise_ratio

    from sdcodec.codec.image_decoding import decoded_image, read_latent

    source = loaded.rgb[..., 0] if fields["gray"] else loaded.rgb  # a gray file decodes to its luma
    level1_files: dict[int, bytes] = {}

    def level1_at(quality: int) -> bytes:
        if quality not in level1_files:
            level1_files[quality] = encode_latent_image(latent, **{**fields, "quality": quality}, **level1)
        return level1_files[quality]

    def level1_sized(size: int) -> bytes:
        return encode_latent_image(latent, **{**fields, "quality": None, "size": size}, **level1)

    def refined_sized(size: int) -> bytes:
        return _refined_file(
            autoencoder, pixels, latent, effort, {**fields, "quality": None, "size": size}, tune, silent
        )

    def refined_at(quality: int) -> bytes:
        return refined_sized(len(level1_at(quality)))

    def closer(found: psnr_target.PsnrResult, sized_at) -> bytes:
        """Between the found quality and the one below, by byte size: whole qualities overshoot by 0.1-0.3 dB."""
        closest, spent = psnr_target.smallest_size_between(sized_at, psnr_of, target, found)
        if spent:
            notice(
                f"searched {spent} sizes below quality {found.quality}'s {len(found.data)} bytes: "
                f"{len(closest.data)} bytes give {closest.psnr:.2f} dB"
            )
        return closest.data

    def psnr_of(data: bytes) -> float:
        decoded, sdz = read_latent(data)
        image = decoded_image(autoencoder, torch.from_numpy(decoded), sdz)
        return float(peak_signal_noise_ratio(source, np.asarray(image), data_range=255))

    notice(f"searching the lowest quality that reaches {target:g} dB PSNR (an encode and a decode a probe)")
    found = psnr_target.quality_for_psnr(level1_at, psnr_of, target)
    if not found.reached:
        notice(
            f"{target:g} dB PSNR is out of reach for this model: quality {found.quality} gives {found.psnr:.2f} dB, "
            f"within {psnr_target.CEILING_MARGIN} dB of its best"
        )
        return found.data if effort == 1 else refined_at(found.quality)
    notice(f"searched {found.probes} qualities: quality {found.quality} gives {found.psnr:.2f} dB")
    if effort == 1:
        return closer(found, level1_sized)
    notice(f"searching below quality {found.quality} with effort {effort} (a refinement and a decode a probe)")
    better = psnr_target.quality_for_psnr(refined_at, psnr_of, target, highest=found.quality)
    notice(f"searched {better.probes} qualities: quality {better.quality}'s size refined gives {better.psnr:.2f} dB")
    return closer(better, refined_sized)


def level1_quantizer(autoencoder, notice: Notice = silent) -> dict:
    """``encode_latent_image`` keywords of level 1's quantizer for latents of ``autoencoder``'s space.

    Steps and error shaping from the model's channel metric (cached per set of weights), RDOQ,
    entropy model 2: what ``encode_image`` does at effort 1, for a latent that did not come from an
    image (``gen -o x.sdz``).
    """
    metric, multipliers = _decoder_metric(autoencoder, notice)
    return dict(
        channel_steps=multipliers,
        channel_metric=metric,
        rdo_weight=DEFAULT_RDO_WEIGHT,
        entropy_model=DEFAULT_ENTROPY_MODEL,
    )


def _check_rate(quality: int | None, bpp: float | None, size: int | None, psnr: float | None = None) -> None:
    """At most one rate setting, and a usable one (quality's range is checked where it maps to a step)."""
    given = (("quality", quality), ("bpp", bpp), ("size", size), ("psnr", psnr))
    chosen = [name for name, value in given if value is not None]
    if len(chosen) > 1:
        raise SdcodecError(f"give only one of quality, bpp, size and psnr (got {' and '.join(chosen)})")
    if psnr is not None and not (psnr > 0 and math.isfinite(psnr)):
        raise SdcodecError(f"psnr must be a positive number of dB, got {psnr}")
    if bpp is not None and not (bpp > 0 and math.isfinite(bpp)):
        raise SdcodecError(f"bpp must be a positive number, got {bpp}")
    if size is not None and size <= 0:
        raise SdcodecError(f"size must be a positive number of bytes, got {size}")


def _decoder_metric(autoencoder, notice: Notice = silent) -> tuple[np.ndarray, tuple[int, ...]]:
    """(the model's channel metric, per-channel step multipliers from its diagonal, the gains).

    Measured once per model and cached (``model_metric``). Level 1's quantizer also shapes errors
    with the whole metric; with ``rdo_weight=0`` it rounds and ignores it.
    """
    metric = model_metric.model_metric(autoencoder, notice)
    return metric, channel_weighting.step_multipliers(np.diag(metric))


def _check_encode_options(effort: int, tune: str, caption: str) -> None:
    """Refuse, before any image or model is loaded, an effort, tune or caption no encode could use."""
    if not 1 <= effort <= latent_refinement.MAX_EFFORT:
        raise SdcodecError(f"effort must be between 1 and {latent_refinement.MAX_EFFORT}, got {effort}")
    check_tune(tune)
    check_caption(caption)


def _refined(
    autoencoder, pixels: torch.Tensor, latent: torch.Tensor, refinement, fields: dict, tune: str
) -> torch.Tensor:
    """The latent refined at the steps the unrefined one gets (quality, or the rate search's step).

    With --bpp/--size the caller searches the step again on the refined latent, so the ceiling holds.
    """
    start = bitstream.read_sdz(encode_latent_image(latent, **fields))
    steps = torch.from_numpy(latent_coder.header_steps(start)).float()
    bits = 8 * len(start.payload)
    return latent_refinement.refine_latent(autoencoder, pixels, latent, steps, bits, refinement, tune)
