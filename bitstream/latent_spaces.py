"""The latent spaces a .sdz payload can live in, with their one-byte ids in the header.

A file may be decoded by any decoder of the same space (e.g. an SD 1.x file by the full
SD VAE or by TAESD); ids are part of the format and never renumbered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LatentSpace:
    id: int
    name: str
    channels: int
    description: str


LATENT_SPACES: tuple[LatentSpace, ...] = (
    LatentSpace(0, "sd1", 4, "Stable Diffusion 1.x/2.x VAE (4 channels)"),
    LatentSpace(1, "sdxl", 4, "Stable Diffusion XL VAE (4 channels)"),
    LatentSpace(2, "sd3", 16, "Stable Diffusion 3 VAE (16 channels)"),
    LatentSpace(3, "flux1", 16, "FLUX.1 VAE (16 channels)"),
    LatentSpace(4, "flux2", 32, "FLUX.2 VAE (32 channels)"),
)

_BY_NAME = {space.name: space for space in LATENT_SPACES}
_BY_ID = {space.id: space for space in LATENT_SPACES}


def by_name(name: str) -> LatentSpace:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise ValueError(f"unknown latent space {name!r} (known: {known})") from None


def by_id(space_id: int) -> LatentSpace | None:
    return _BY_ID.get(space_id)
