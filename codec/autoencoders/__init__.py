"""Pixels <-> latent: the SD VAEs and the tiny autoencoders behind one interface (``Autoencoder``).

``load_autoencoder(spec)`` is the entry point; SPECs are described in ``codec/model_specs.py``.
"""

from sdcodec.codec.autoencoders.base import DOWNSCALE, Autoencoder, compute_dtype, latent_space_of, resolve_device
from sdcodec.codec.autoencoders.diffusers_vae import DiffusersVAE
from sdcodec.codec.autoencoders.loading import load_autoencoder
from sdcodec.codec.autoencoders.tiling import run_tiled
from sdcodec.codec.autoencoders.tiny import TAE_FAMILIES, TinyAutoencoder

__all__ = [
    "DOWNSCALE",
    "Autoencoder",
    "DiffusersVAE",
    "TinyAutoencoder",
    "TAE_FAMILIES",
    "compute_dtype",
    "latent_space_of",
    "load_autoencoder",
    "resolve_device",
    "run_tiled",
]
