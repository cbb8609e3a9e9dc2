"""A diffusers AutoencoderKL / AutoencoderKLFlux2 behind the ``Autoencoder`` interface."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sdcodec.codec.autoencoders.base import DOWNSCALE, check_latent, check_pixels, compute_dtype, latent_space_of


class DiffusersVAE:
    """A diffusers ``AutoencoderKL`` (or ``AutoencoderKLFlux2``) behind the Autoencoder interface.

    Images whose longer side exceeds ``tile_above`` pixels go through diffusers' own VAE tiling
    (``enable_tiling``, tiles of ``tile_size`` pixels blended over 1/4 of a tile), so memory
    stays bounded for any size.
    """

    def __init__(
        self,
        vae: nn.Module,
        *,
        name: str,
        device: torch.device | str = "cpu",
        tile_above: int = 1024,
        tile_size: int = 512,
    ):
        self.name = name
        self.device = torch.device(device)
        self.dtype = compute_dtype(self.device)
        config = vae.config
        self.latent_channels = int(config.latent_channels)
        self.latent_space = latent_space_of(config, type(vae).__name__)
        self.scaling_factor = float(getattr(config, "scaling_factor", None) or 1.0)
        self.shift_factor = float(getattr(config, "shift_factor", None) or 0.0)
        self.tile_above = tile_above
        self.tile_size = tile_size
        # .half()/.float() rather than .to(dtype): diffusers' ModelMixin.to warns on every dtype cast
        vae = vae.eval().requires_grad_(False).to(self.device)
        self.vae = vae.half() if self.dtype == torch.float16 else vae.float()
        if self.device.type == "cpu":
            self.vae.to(memory_format=torch.channels_last)

    def _set_tiling(self, pixel_height: int, pixel_width: int) -> None:
        if max(pixel_height, pixel_width) > self.tile_above:
            self.vae.enable_tiling()
            self.vae.tile_sample_min_size = self.tile_size
            self.vae.tile_latent_min_size = self.tile_size // DOWNSCALE
        else:
            self.vae.disable_tiling()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cpu" else x

    def _run(self, step: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Run one step; in fp16 a non-finite result (overflow) is retried once in fp32."""
        with torch.inference_mode():
            out = step(self._prepare(x))
            if self.dtype == torch.float16 and not torch.isfinite(out).all():
                self.dtype = torch.float32
                self.vae.float()
                out = step(self._prepare(x))
        return out.float().cpu()

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        check_pixels(pixels)
        self._set_tiling(*pixels.shape[2:])
        mean = self._run(lambda x: self.vae.encode(x * 2 - 1).latent_dist.mean, pixels)
        return ((mean - self.shift_factor) * self.scaling_factor).contiguous()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        check_latent(latent, self.latent_channels, self.name)
        self._set_tiling(latent.shape[2] * DOWNSCALE, latent.shape[3] * DOWNSCALE)
        unscaled = latent.float() / self.scaling_factor + self.shift_factor
        image = self._run(lambda z: self.vae.decode(z).sample, unscaled)
        return ((image + 1) / 2).clamp(0, 1).contiguous()

    def decode_with_grad(self, latent: torch.Tensor) -> torch.Tensor:
        check_latent(latent, self.latent_channels, self.name)
        self.vae.disable_tiling()
        unscaled = latent.to(self.device, self.dtype) / self.scaling_factor + self.shift_factor
        return ((self.vae.decode(unscaled).sample.float() + 1) / 2).clamp(0, 1)

    def weight_modules(self) -> tuple[nn.Module, ...]:
        return (self.vae,)

    def __repr__(self) -> str:
        return f"DiffusersVAE({self.name!r}, space={self.latent_space}, device={self.device})"


# --------------------------------------------------------------------------------------------
# TAE family (TAESD: sd1 space, 4 channels; TAEF2: flux2 space, 32 channels, pooled blocks)
