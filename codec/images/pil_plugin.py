"""A Pillow plugin: once ``sdcodec`` is imported, ``Image.open("x.sdz")`` reads .sdz files and
``image.save("x.sdz", quality=40)`` writes them.

Opening reads only the header (size, mode, caption). Decoding needs an autoencoder, and a
file from a stranger must not make Pillow download gigabytes of weights, so ``load()``
decodes only with a model the user chose: ``sdcodec.register(model=...)`` (this module's ``configure``; or ``decoder=...``),
else the ``SDCODEC_MODEL`` environment variable; without either it raises OSError. Saving encodes
with that model too (a ``decoder=`` alone cannot encode); ``save``'s keywords are
``encode_image``'s rate and encoder options (``SAVE_OPTIONS``).
"""

from __future__ import annotations

import dataclasses

from PIL import Image, ImageFile

from sdcodec import bitstream
from sdcodec.codec import model_specs
from sdcodec.codec.images import image_metadata

SAVE_OPTIONS = ("quality", "bpp", "size", "psnr", "effort", "tune", "caption", "strip_metadata")
METADATA_OPTIONS = ("exif", "icc_profile")
NOT_CONFIGURED = (
    "no model configured for {} .sdz files in Pillow: call "
    "sdcodec.register(model=SPEC) or set SDCODEC_MODEL (e.g. taesd:DIR, taef2:DIR or a local diffusers VAE)"
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What ``load()`` decodes with; see ``configure``."""

    model: str | None = None
    decoder: str | None = None
    max_pixels: int = bitstream.DEFAULT_MAX_PIXELS
    restore_steps: int | None = 0
    device: str = "auto"


_settings = Settings()


def configure(
    model: str | None = None,
    decoder: str | None = None,
    *,
    max_pixels: int = bitstream.DEFAULT_MAX_PIXELS,
    restore_steps: int | None = 0,
    device: str = "auto",
) -> None:
    """Choose how ``Image.open(...).load()`` decodes .sdz files (``configure()`` alone unsets it).

    ``model`` and ``decoder`` are model SPECs as in ``decode_image`` (a hub id here is the
    user's own choice to download). ``max_pixels`` is the decoding ceiling; note that Pillow's
    own guard (``Image.MAX_IMAGE_PIXELS``) also applies to the declared size at ``Image.open``,
    so a ceiling above it needs that raised too. ``restore_steps``: 0 (the default, a plain
    VAE decode), N, or None for the file's hint (U-Net restoration with ``model``).
    """
    global _settings
    _settings = Settings(model, decoder, max_pixels, restore_steps, device)


def settings() -> Settings:
    """The settings ``load()`` would use now: ``configure``'s, with ``SDCODEC_MODEL`` as the model fallback."""
    model = _settings.model
    if model is None and _settings.decoder is None:
        model = model_specs.env_model()
    return dataclasses.replace(_settings, model=model)


def _accept(prefix: bytes) -> bool:
    return prefix[: len(bitstream.MAGIC)] == bitstream.MAGIC


class SdzImageFile(ImageFile.ImageFile):
    """Reads the header on open (size, mode, caption); decodes the latent on ``load()``."""

    format = "SDZ"
    format_description = "sdcodec Stable Diffusion latent image"

    def _open(self) -> None:
        self._sdz_data = self.fp.read()
        try:
            header = bitstream.read_sdz(self._sdz_data)
        except bitstream.BitstreamError as exc:
            raise SyntaxError(f"not a valid .sdz file: {exc}") from None
        self._size = (header.width, header.height)
        self._mode = ("LA" if header.gray else "RGBA") if header.alpha is not None else ("L" if header.gray else "RGB")
        self.info["caption"] = header.caption
        self.info["latent_space"] = header.latent_space
        self.info.update(image_metadata.info_of(header.image_metadata))
        self.tile = []

    def load(self):
        if self._im is None:
            decoded = _decode(self._sdz_data)
            self.im = decoded.im
            for key in ("icc_profile", "exif"):  # what decoding kept (a profile it cannot use is dropped)
                self.info.pop(key, None)
                if key in decoded.info:
                    self.info[key] = decoded.info[key]
        return Image.Image.load(self)


def _decode(data: bytes) -> Image.Image:
    """Decode with the configured model; every failure is an OSError (Pillow's convention) with one line."""
    from sdcodec.codec.errors import SdcodecError
    from sdcodec.codec.image_decoding import decode_image

    chosen = settings()
    if chosen.model is None and chosen.decoder is None:
        raise OSError(NOT_CONFIGURED.format("decoding"))
    # Restoration without a configured pipeline would fetch the default one: only with ``model``.
    restore_steps = chosen.restore_steps if chosen.model is not None else 0
    try:
        return decode_image(
            data,
            model=chosen.model,
            decoder=chosen.decoder,
            restore_steps=restore_steps,
            device=chosen.device,
            max_pixels=chosen.max_pixels,
        )
    except bitstream.TooLargeError as exc:
        raise OSError(f"cannot decode .sdz: {exc}; in Pillow use sdcodec.register(max_pixels=N)") from exc
    except (bitstream.BitstreamError, SdcodecError) as exc:
        raise OSError(f"cannot decode .sdz: {exc}") from exc


def _save(image: Image.Image, fp, filename) -> None:
    """``image.save("x.sdz", quality=...)``: encode with the configured model; failures are OSError/ValueError."""
    from sdcodec.codec.errors import SdcodecError
    from sdcodec.codec.image_codec import encode_image

    unknown = sorted(set(image.encoderinfo) - set(SAVE_OPTIONS) - set(METADATA_OPTIONS))
    if unknown:
        raise ValueError(f"unknown .sdz save option(s) {', '.join(unknown)}; known: {', '.join(SAVE_OPTIONS)}")
    chosen = settings()
    if chosen.model is None:
        raise OSError(NOT_CONFIGURED.format("encoding"))
    options = {key: image.encoderinfo[key] for key in SAVE_OPTIONS if key in image.encoderinfo}
    metadata = {key: image.encoderinfo[key] for key in METADATA_OPTIONS if key in image.encoderinfo}
    if metadata:  # as Pillow's other writers: save(..., exif=..., icc_profile=...) replaces the image's own
        image = image.copy()
        image.info.update(metadata)
    try:
        data = encode_image(image, model=chosen.model, device=chosen.device, max_pixels=chosen.max_pixels, **options)
    except SdcodecError as exc:
        raise OSError(f"cannot encode .sdz: {exc}") from exc
    fp.write(data)


Image.register_open(SdzImageFile.format, SdzImageFile, _accept)
Image.register_save(SdzImageFile.format, _save)
Image.register_extension(SdzImageFile.format, ".sdz")
