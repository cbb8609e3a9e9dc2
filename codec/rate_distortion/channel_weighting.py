"""Per-channel quantization steps from the decoder's sensitivity (reverse water-filling).

Latent channels matter very unequally to the decoded pixels (for TAEF2 the squared-error gain
of a unit of noise differs by 50x between channels). For a fixed rate, pixel MSE is lowest
when every channel contributes the same error per bit, i.e. when channel c's step is
proportional to 1 / sqrt(gain_c).

The gain of channel c is the pixel MSE caused by a unit of noise variance in that channel, i.e.
``||J_c||_F^2 / P`` for the decoder's Jacobian block J_c (P pixel values). It is measured on a
central crop of a latent (the encoder measures it once per model on four photographs:
``model_metric``) with Hutchinson's estimator: for random pixel-space
vectors r, ``E ||J_c^T r||^2 = ||J_c||_F^2``, and one backward pass gives ``J^T r`` for every
channel at once. The decoder is not linear over a quantization bin, so the Jacobian is taken at
``POINTS`` noisy copies of the crop (noise of about a quantization error) and averaged: at the
clean latent alone the multipliers cost +1.3% BD-rate on Kodak/TAEF2 against adding noise to
one channel at a time, which took one decode per channel (33 for TAEF2, about 10x the time).
"""

from __future__ import annotations

import numpy as np
import torch

from sdcodec.bitstream.container import CHANNEL_STEP_ONE

PROBE_SIDE = 12  # latent positions per side of the probed crop (96 x 96 pixels)
PROBES = 2  # random vectors of Hutchinson's estimator per point (enough for the gains)
POINTS = 1  # noisy copies of the crop the Jacobian is taken at
PROBE_STD = 0.3  # their noise, in latent units: about the quantization error of a mid-rate step
MULTIPLIER_RANGE = (4, 64)  # steps between 1/4 and 4 times the base step


def _central_crop(latent: torch.Tensor, side: int) -> torch.Tensor:
    _, height, width = latent.shape
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return latent[:, top : top + side, left : left + side]


def channel_metric(
    autoencoder, latent: torch.Tensor, side: int = PROBE_SIDE, probes: int = PROBES, points: int = POINTS
) -> np.ndarray:
    """The decoder's channel metric (C, C): ``sum_p J_p^T J_p / P`` over the crop's positions p.

    Entry (c, d) is the pixel error two unit errors in channels c and d at one position make
    together, beyond their own: the diagonal is the channel gains. Hutchinson's estimator again:
    for a random pixel-space vector r, ``u = J^T r`` has ``E[u_p u_p^T] = J_p^T J_p``, so the pullbacks
    the gains need give the whole matrix (averaged over the crop's positions and the probes).
    Deterministic: the noise and the random vectors come from fixed seeds.
    """
    crop = _central_crop(latent.detach().float(), side).clone()[None]  # clone: not an inference tensor
    generator = torch.Generator().manual_seed(0)
    total = torch.zeros(crop.shape[1], crop.shape[1], dtype=torch.float64)
    for _ in range(points):
        point = (crop + PROBE_STD * torch.randn(crop.shape, generator=generator)).requires_grad_(True)
        with torch.enable_grad():
            pixels = autoencoder.decode_with_grad(point)
            for k in range(probes):
                direction = torch.randn(pixels.shape, generator=generator).to(pixels.device)
                (pullback,) = torch.autograd.grad(pixels, point, direction, retain_graph=k < probes - 1)
                flat = pullback[0].double().cpu().flatten(1)
                total += flat @ flat.T
    return (total / (points * probes * pixels[0].numel())).numpy()


def step_multipliers(gains: np.ndarray) -> tuple[int, ...]:
    """Integer multipliers (units of 1/16) with step_c proportional to 1/sqrt(gain_c), geometric mean 1."""
    gains = np.maximum(gains, 1e-12)
    relative = np.exp(np.log(gains) - np.log(gains).mean())
    multipliers = np.rint(CHANNEL_STEP_ONE / np.sqrt(relative))
    return tuple(int(m) for m in np.clip(multipliers, *MULTIPLIER_RANGE))
