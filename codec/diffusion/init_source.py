"""Where img2img starts: an image, or a .sdz file's latent used as is, and the size it is generated at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image


@dataclass
class InitSource:
    """Where img2img starts: an image, or the latent of a .sdz (used as is, no VAE round trip)."""

    image: Image.Image | None = None
    latent: np.ndarray | None = None  # (C, h, w) float32, scaled units
    latent_space: str | None = None  # the .sdz's latent space
    size: tuple[int, int] | None = None  # (width, height) of the .sdz's image


def read_init(path: str | Path) -> InitSource:
    """Read an img2img input: a .sdz file (recognised by its magic bytes) or any image file."""
    from sdcodec import bitstream
    from sdcodec.codec.image_decoding import read_file, read_latent
    from sdcodec.codec.images import image_io

    data = read_file(path)
    if data.startswith(bitstream.MAGIC):
        latent, header = read_latent(data)
        return InitSource(latent=latent, latent_space=header.latent_space, size=(header.width, header.height))
    loaded = image_io.load_image(path)
    return InitSource(image=Image.fromarray(loaded.rgb, "RGB"))


def starting_point(components, init_image, init_latent, width, height, crop_size):
    """The img2img start (image or latent) at its final size, and the generation size and crop.

    txt2img: 512 x 512 unless asked. An image keeps its size (reflection-padded to multiples of 8,
    cropped back after) unless ``width``/``height`` resize it; a latent fixes the size itself.
    """
    if init_image is not None and init_latent is not None:
        raise ValueError("give init_image or init_latent, not both")
    if init_latent is not None:
        init_latent = torch.as_tensor(init_latent).detach().to("cpu", torch.float32)
        channels = components.unet.config.in_channels
        if init_latent.ndim != 3 or init_latent.shape[0] != channels:
            raise ValueError(f"init_latent must have shape ({channels}, h, w), got {tuple(init_latent.shape)}")
        latent_size = (init_latent.shape[2] * 8, init_latent.shape[1] * 8)
        if (width or latent_size[0], height or latent_size[1]) != latent_size:
            raise ValueError(f"the initial latent is {latent_size[0]}x{latent_size[1]}; width/height cannot change it")
        width, height = latent_size
        if crop_size is not None and not (0 < crop_size[0] <= width and 0 < crop_size[1] <= height):
            raise ValueError(f"crop size {crop_size} does not fit the {width}x{height} latent")
    elif init_image is not None:
        init_image = init_image.convert("RGB")
        if width is None and height is None:
            crop_size = init_image.size
            init_image = _pad_to_multiple_of_8(init_image)
            width, height = init_image.size
        else:
            width = _nearest_multiple_of_8(init_image.width) if width is None else width
            height = _nearest_multiple_of_8(init_image.height) if height is None else height
            crop_size = None
            init_image = init_image.resize((width, height), Image.LANCZOS)
    else:
        width = 512 if width is None else width
        height = 512 if height is None else height
        crop_size = None
    return init_image, init_latent, width, height, crop_size


def _pad_to_multiple_of_8(image: Image.Image) -> Image.Image:
    from sdcodec.codec.images import image_io

    padded = image_io.pad_to_multiple(image_io.to_tensor(np.asarray(image)))
    return image_io.to_pil(padded)


def _nearest_multiple_of_8(size: int) -> int:
    return max(8, round(size / 8) * 8)
