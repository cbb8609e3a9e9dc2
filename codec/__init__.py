"""sdcodec's Python API.

``encode_image`` / ``decode_image`` work on images (paths or PIL images) through an autoencoder;
``encode_latent`` / ``decode_latent`` are the latent-level pair under them. Importing ``codec``
also registers a Pillow plugin, so ``Image.open("x.sdz")`` decodes a file.
"""

from . import pil_plugin  # noqa: F401  (registers the .sdz reader with Pillow)
from .errors import ImageReadError, LatentSpaceMismatch, ModelLoadError, SdcodecError
from .image_codec import decode_image, encode_image, encode_latent_image, quality_to_step, read_latent
from .latent_coder import decode_latent, encode_latent

__all__ = [
    "encode_image",
    "decode_image",
    "encode_latent",
    "decode_latent",
    "encode_latent_image",
    "read_latent",
    "quality_to_step",
    "SdcodecError",
    "ImageReadError",
    "ModelLoadError",
    "LatentSpaceMismatch",
]
