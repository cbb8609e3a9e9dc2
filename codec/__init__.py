"""sdcodec's Python API: latent-level coding now; image-level coding is added on top."""

from .latent_coder import decode_latent, encode_latent

__all__ = ["encode_latent", "decode_latent"]
