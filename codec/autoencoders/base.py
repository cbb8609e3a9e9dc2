"""Autoencoder backends behind one small interface: pixels in [0, 1] <-> latents in diffusion units.

Latents are always in the units the diffusion model sees ("scaled"): for an AutoencoderKL
``(mean - shift_factor) * scaling_factor`` (SD 1.x latents then have std about 1), and the TAE
family outputs those units directly. Encoding takes the latent distribution's mean, never a
sample, so it is deterministic. Inputs may live anywhere; outputs are float32 CPU tensors.
Large images are processed in overlapping tiles so memory stays bounded.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from sdcodec.codec.errors import SdcodecError

DOWNSCALE = 8  # every supported autoencoder maps 8x8 pixels to one latent position


class Autoencoder(Protocol):
    latent_space: str  # a name from bitstream/latent_spaces.py: "sd1", "sdxl", "sd3", "flux1", "flux2"
    latent_channels: int
    name: str  # the SPEC it was loaded from, for messages
    device: torch.device

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) float in [0, 1], H and W multiples of 8 -> (1, C, H/8, W/8) float32."""
        ...

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) float32 -> (N, 3, 8h, 8w) float32 clamped to [0, 1] (N > 1 for small latents)."""
        ...

    def decode_with_grad(self, latent: torch.Tensor) -> torch.Tensor:
        """``decode`` of a small latent (no tiling) that autograd can differentiate w.r.t. the latent."""
        ...

    def weight_modules(self) -> tuple[torch.nn.Module, ...]:
        """The modules holding every weight (encoder and decoder), e.g. to key a per-model cache."""
        ...


def compute_dtype(device: torch.device) -> torch.dtype:
    """fp16 on GPUs (CUDA, MPS), fp32 on CPU."""
    return torch.float32 if device.type == "cpu" else torch.float16


def check_pixels(pixels: torch.Tensor) -> None:
    if pixels.ndim != 4 or pixels.shape[0] != 1 or pixels.shape[1] != 3:
        raise ValueError(f"expected pixels of shape (1, 3, H, W), got {tuple(pixels.shape)}")
    if pixels.shape[2] % DOWNSCALE or pixels.shape[3] % DOWNSCALE:
        raise ValueError(f"image sides must be multiples of {DOWNSCALE} (pad first), got {tuple(pixels.shape[2:])}")


def check_latent(latent: torch.Tensor, channels: int, name: str) -> None:
    """Latents are (N, C, h, w); N > 1 is meant for small latents (e.g. sensitivity probes)."""
    if latent.ndim != 4 or latent.shape[0] < 1 or latent.shape[1] != channels:
        raise ValueError(f"{name} expects a latent of shape (N, {channels}, h, w), got {tuple(latent.shape)}")


# --------------------------------------------------------------------------------------------
# diffusers AutoencoderKL (SD 1.x, SDXL, SD3, FLUX.1) and AutoencoderKLFlux2


def latent_space_of(config: Any, class_name: str = "AutoencoderKL") -> str:
    """Name the latent space of a diffusers VAE from its config.

    Rule: 32 latent channels (or an AutoencoderKLFlux2) -> "flux2"; 16 channels -> "sd3" when
    shift_factor is about 0.0609, "flux1" when about 0.1159; 4 channels -> "sdxl" when
    scaling_factor is about 0.13025, otherwise "sd1" (0.18215, and best effort for other
    4-channel VAEs, which are SD 1.x fine-tunes in practice). Anything else is refused.
    """
    channels = int(config.latent_channels)
    scaling = float(getattr(config, "scaling_factor", None) or 1.0)
    shift = float(getattr(config, "shift_factor", None) or 0.0)
    if class_name == "AutoencoderKLFlux2" or channels == 32:
        return "flux2"
    if channels == 16:
        if abs(shift - 0.0609) < 0.005:
            return "sd3"
        if abs(shift - 0.1159) < 0.005:
            return "flux1"
        raise ValueError(f"16-channel VAE with shift_factor {shift} is neither SD3 (0.0609) nor FLUX.1 (0.1159)")
    if channels == 4:
        return "sdxl" if abs(scaling - 0.13025) < 0.001 else "sd1"
    raise ValueError(f"no known latent space has {channels} channels")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA, else MPS, else CPU; ``cpu``/``cuda[:N]``/``mps`` must be available."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise SdcodecError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SdcodecError("device cuda: no CUDA GPU is available here; use cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SdcodecError("device mps: Apple MPS is not available here; use cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise SdcodecError(f"unsupported device {name!r}; use auto, cpu, cuda or mps")
    return device
