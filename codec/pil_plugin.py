"""A Pillow plugin: once ``codec`` is imported, ``Image.open("x.sdz")`` decodes with the default models."""

from __future__ import annotations

from PIL import Image, ImageFile

import bitstream


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
        self._mode = "RGBA" if header.alpha is not None else "RGB"
        self.info["caption"] = header.caption
        self.info["latent_space"] = header.latent_space
        self.tile = []

    def load(self):
        if self._im is None:
            from .image_codec import decode_image

            self.im = decode_image(self._sdz_data).im
        return Image.Image.load(self)


Image.register_open(SdzImageFile.format, SdzImageFile, _accept)
Image.register_extension(SdzImageFile.format, ".sdz")
