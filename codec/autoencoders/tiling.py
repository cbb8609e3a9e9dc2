"""Overlapping tiles blended with linear ramps: a network applied to any image size in bounded memory."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def tile_layout(size: int, tile: int, overlap: int, align: int = 1) -> tuple[int, list[int]]:
    """The tile length and start offsets along one side: as few tiles of at most ``tile`` as cover
    ``size`` with at least ``overlap`` shared, shrunk to just cover it and spread evenly.

    Fixed-length tiles with the last one pushed back to the edge computed up to 1.7x the image's
    area (a 1536x2048 picture in nine 768x768 tiles); tiles of the length needed compute 1.3x.
    Lengths and starts are multiples of ``align`` (``size`` must be one).
    """
    if size <= tile:
        return size, [0]
    if size % align:
        raise ValueError(f"a side of {size} cannot be tiled in multiples of {align}")
    count = math.ceil((size - overlap) / (tile - overlap))
    while True:
        length = min(tile, -(-(size + (count - 1) * overlap) // (count * align)) * align)
        starts = [round(k * (size - length) / (count - 1) / align) * align for k in range(count)]
        if all(b - a <= length - overlap for a, b in zip(starts, starts[1:])):
            return length, starts
        count += 1  # rounding to ``align`` left a gap too narrow: one tile more


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
    align = max(1, round(1 / scale))  # a tile of the input maps to whole output positions
    tile_h, tops = tile_layout(height, tile, overlap, align)
    tile_w, lefts = tile_layout(width, tile, overlap, align)
    blend = max(1, round(overlap * scale))
    out = weight = None
    for top in tops:
        for left in lefts:
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
