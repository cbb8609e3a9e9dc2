"""Per-channel quantization steps from the decoder's sensitivity (reverse water-filling).

Latent channels matter very unequally to the decoded pixels (for TAEF2 the squared-error gain
of a unit of noise differs by 50x between channels). For a fixed rate, pixel MSE is lowest
when every channel contributes the same error per bit, i.e. when channel c's step is
proportional to 1 / sqrt(gain_c). The gains are probed at encode time by adding noise to one
channel at a time of a small central crop of the image's own latent and decoding it.
"""

from __future__ import annotations

import numpy as np
import torch

from bitstream.container import CHANNEL_STEP_ONE

PROBE_SIDE = 12  # latent positions per side of the probed crop (96 x 96 pixels)
PROBE_STD = 0.3  # noise in latent units, about the quantization error of a mid-rate step
MULTIPLIER_RANGE = (4, 64)  # steps between 1/4 and 4 times the base step


def _central_crop(latent: torch.Tensor, side: int) -> torch.Tensor:
    _, height, width = latent.shape
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return latent[:, top : top + side, left : left + side]


def channel_gains(autoencoder, latent: torch.Tensor, side: int = PROBE_SIDE) -> np.ndarray:
    """Pixel MSE per unit of latent noise variance, for each channel (C,).

    One batched decode: the clean crop, then one copy per channel with noise in that channel.
    """
    crop = _central_crop(latent.float(), side).contiguous()
    channels = crop.shape[0]
    noise = torch.randn(crop.shape, generator=torch.Generator().manual_seed(0)) * PROBE_STD
    batch = crop.expand(channels + 1, *crop.shape).clone()
    for c in range(channels):
        batch[c + 1, c] += noise[c]
    with torch.inference_mode():
        decoded = autoencoder.decode(batch)
    errors = ((decoded[1:] - decoded[:1]) ** 2).mean(dim=(1, 2, 3)).double().numpy()
    return errors / (noise**2).mean(dim=(1, 2)).double().numpy()


def step_multipliers(gains: np.ndarray) -> tuple[int, ...]:
    """Integer multipliers (units of 1/16) with step_c proportional to 1/sqrt(gain_c), geometric mean 1."""
    gains = np.maximum(gains, 1e-12)
    relative = np.exp(np.log(gains) - np.log(gains).mean())
    multipliers = np.rint(CHANNEL_STEP_ONE / np.sqrt(relative))
    return tuple(int(m) for m in np.clip(multipliers, *MULTIPLIER_RANGE))
