"""Encoder-side search through the decoder: per-channel quantization steps and latent refinement (``--effort``)."""
