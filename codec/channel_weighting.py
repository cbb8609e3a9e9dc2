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

PROBE_SIDE = 16  # latent positions per side of the probed crop (128 x 128 pixels)
PROBE_STD = 0.3  # noise in latent units, about the quantization error of a mid-rate step
MULTIPLIER_RANGE = (4, 64)  # steps between 1/4 and 4 times the base step


def _central_crop(latent: torch.Tensor, side: int) -> torch.Tensor:
    _, height, width = latent.shape
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return latent[:, top : top + side, left : left + side]


def channel_gains(autoencoder, latent: torch.Tensor) -> np.ndarray:
    """Pixel MSE per unit of latent noise variance, for each channel (C,)."""
    crop = _central_crop(latent.float(), PROBE_SIDE)[None]
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(crop.shape, generator=generator) * PROBE_STD
    with torch.inference_mode():
        clean = autoencoder.decode(crop)
        gains = []
        for c in range(crop.shape[1]):
            noisy = crop.clone()
            noisy[:, c] += noise[:, c]
            noise_power = float((noise[:, c] ** 2).mean())
            gains.append(float(((autoencoder.decode(noisy) - clean) ** 2).mean()) / noise_power)
    return np.asarray(gains)


def step_multipliers(gains: np.ndarray) -> tuple[int, ...]:
    """Integer multipliers (units of 1/16) with step_c proportional to 1/sqrt(gain_c), geometric mean 1."""
    gains = np.maximum(gains, 1e-12)
    relative = np.exp(np.log(gains) - np.log(gains).mean())
    multipliers = np.rint(CHANNEL_STEP_ONE / np.sqrt(relative))
    return tuple(int(m) for m in np.clip(multipliers, *MULTIPLIER_RANGE))
