"""Overlapping tiles blended with linear ramps: a network applied to any image size in bounded memory."""

from __future__ import annotations

from collections.abc import Callable

import torch


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``size`` with at least ``overlap`` shared."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def _ramp(length: int, overlap: int) -> torch.Tensor:
    """Blend weights along one tile side: rising linearly over ``overlap`` at both ends, 1 inside."""
    position = torch.arange(length, dtype=torch.float32) + 0.5
    return torch.minimum(position, length - position).div(max(overlap, 1)).clamp(max=1.0)


def run_tiled(
    step: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    scale: float,
) -> torch.Tensor:
    """Apply a local (convolutional) ``step`` to overlapping tiles of ``x`` (1, C, H, W) and blend.

    ``step`` maps a (1, C, h, w) tile to (1, C', h*scale, w*scale); tile and overlap are in
    ``x``'s units. Each output pixel is the weighted mean of the tiles covering it, with weights
    falling linearly towards tile edges (where zero padding differs from the real neighbours),
    so seams do not show. Memory is one tile's activations plus the output.
    """
    height, width = x.shape[-2:]
    tile_h, tile_w = min(tile, height), min(tile, width)
    blend = max(1, round(overlap * scale))
    out = weight = None
    for top in _tile_starts(height, tile, overlap):
        for left in _tile_starts(width, tile, overlap):
            result = step(x[:, :, top : top + tile_h, left : left + tile_w]).float().cpu()
            if out is None:
                out = torch.zeros(1, result.shape[1], round(height * scale), round(width * scale))
                weight = torch.zeros(1, 1, out.shape[2], out.shape[3])
            mask = _ramp(result.shape[2], blend)[:, None] * _ramp(result.shape[3], blend)[None, :]
            rows = slice(round(top * scale), round(top * scale) + result.shape[2])
            cols = slice(round(left * scale), round(left * scale) + result.shape[3])
            out[:, :, rows, cols] += result * mask
            weight[:, :, rows, cols] += mask
    return out / weight
