"""Tiny autoencoders of the TAE family (TAESD, TAEF2), implemented from their published layout.

The networks are plain ``nn.Sequential`` stacks so the original ``*.pth`` state dicts
(madebyollin/taesd) load by index. TAEF2 adds a pooled branch to some residual blocks;
TAESD is the same architecture without it and with a 4-channel latent.
"""

from __future__ import annotations

import torch
from torch import nn


class Clamp(nn.Module):
    """Soft clamp of the latent to about [-3, 3], as the TAE decoders expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Block(nn.Module):
    """Residual block; with ``pooled=True`` a 1x1 bottleneck branch is added to the input first."""

    def __init__(self, n_in: int, n_out: int, pooled: bool = False):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = (
            nn.Sequential(
                nn.Conv2d(n_out, 4 * n_out, 1, bias=False),
                nn.GroupNorm(4, 4 * n_out),
                nn.ReLU(),
                nn.Conv2d(4 * n_out, n_out, 1, bias=False),
            )
            if pooled
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def tae_encoder(latent_channels: int, pooled: bool) -> nn.Sequential:
    """Image in [0, 1] -> latent at 1/8 resolution."""
    return nn.Sequential(
        conv(3, 64),
        Block(64, 64),
        conv(64, 64, stride=2, bias=False),
        Block(64, 64),
        Block(64, 64),
        Block(64, 64),
        conv(64, 64, stride=2, bias=False),
        Block(64, 64),
        Block(64, 64),
        Block(64, 64),
        conv(64, 64, stride=2, bias=False),
        Block(64, 64, pooled),
        Block(64, 64, pooled),
        Block(64, 64, pooled),
        conv(64, latent_channels),
    )


def tae_decoder(latent_channels: int, pooled: bool) -> nn.Sequential:
    """Latent -> image in about [0, 1] (callers clamp)."""
    return nn.Sequential(
        Clamp(),
        conv(latent_channels, 64),
        nn.ReLU(),
        Block(64, 64, pooled),
        Block(64, 64, pooled),
        Block(64, 64, pooled),
        nn.Upsample(scale_factor=2),
        conv(64, 64, bias=False),
        Block(64, 64),
        Block(64, 64),
        Block(64, 64),
        nn.Upsample(scale_factor=2),
        conv(64, 64, bias=False),
        Block(64, 64),
        Block(64, 64),
        Block(64, 64),
        nn.Upsample(scale_factor=2),
        conv(64, 64, bias=False),
        Block(64, 64),
        conv(64, 3),
    )
