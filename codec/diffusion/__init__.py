"""Stable Diffusion beyond the autoencoder: U-Net restoration at decode, txt2img/img2img, weighted prompts."""
