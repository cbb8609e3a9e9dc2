"""Encoder-side search for the latent whose *quantized* version decodes best (``--effort`` 2 and up).

The decoder is fixed and known at encode time, so the encoder need not send its network's output
rounded: it can search, as mozjpeg's trellis or x264's RDO search within a fixed decoder. Starting
from the encoder's latent z (Yang, Bamler & Mandt, NeurIPS 2020: the amortization and
discretization gaps), Adam minimises

    D(x, G(Q(z))) + lambda * R(Q(z))

where G is the file's own decoder, Q quantizes with the file's per-channel steps, and gradients
pass Q straight through (its forward value is the real rounding, so the loss is measured on what
the file will hold). The first third of the iterations refines z without quantization (the
amortization gap: TAEF2's own round trip is several dB below what its decoder can show).

* D is the ``--tune`` target (``distortion.py``): pixel MSE, or MS-SSIM / LPIPS mixed with MSE,
  normalised to 1 at the start.
* R is a differentiable rate proxy, ``sum log2(1 + |q|)`` over the symbols plus their count,
  scaled so that it equals the real coder's bits at the start (``rate_scale``).
* lambda is the equal-slope point of a uniform quantizer at high rate: dD/dR = -2 ln 2 D, so
  lambda = 2 ln 2 * D(start) / bits(start) (the same slope is assumed for the perceptual targets). The search then trades bits and distortion at the
  operating point's own exchange rate instead of only buying quality with bits.

Deterministic: no random numbers, fixed iteration counts; the same input and settings give the same
latent on the same machine. Images larger than ``TILE`` latent positions per side are refined tile
by tile (each tile with a margin of context that is decoded but not optimised), so memory stays
bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sdcodec.codec.rate_distortion.distortion import make_distortion

TILE = 96  # latent positions per tile side (768 pixels)
MARGIN = 8  # latent positions of context around a tile, decoded but not refined or scored
ADAM_EPS = 1e-8  # torch's default, scaled with the loss (``_loss_scale``)


@dataclass(frozen=True)
class Refinement:
    """How hard to search: iterations of Adam and its step size in units of each channel's step."""

    iterations: int
    learning_rate: float = 0.02  # in quantization steps per iteration (Adam moves every value about this much)


# Measured on a 256x256 crop of kodim23 at step 0.9 (30.63 dB, 0.817 bpp unrefined): level 2 gives
# 32.38 dB at 0.827 bpp, level 3 33.34 dB at 0.829 bpp. Larger rates (0.1-0.25) overshoot.
EFFORTS = {2: Refinement(4, 0.05), 3: Refinement(12, 0.02), 4: Refinement(30, 0.01)}
# At finer steps Adam keeps the step in latent units it has at TUNED_STEP (the geometric mean of the
# channels' steps there): a fixed fraction of a fine step moved the latent too little in the same
# iterations to close the amortization gap, and level 2's PSNR fell as the rate rose above 1.1 bpp.
TUNED_STEP = 0.9
MAX_EFFORT = max(EFFORTS)


def _loss_scale(start_distortion: float, pixel_values: int) -> float:
    """A power of two that lifts the loss's gradients out of fp16's underflow, with Adam's epsilon scaled alike.

    A decoder in fp16 (the default on GPUs) flushes the gradient of a mean over a megapixel (about
    1e-8 a value) to zero, and the search then stands still. Scaling the loss by 2**k makes every
    gradient and Adam moment exactly 2**k (or 4**k) times larger, so with epsilon times 2**k each
    update is the same number: fp32 results are bit-identical to unscaled ones. The scale puts the
    start's per-pixel gradient near 0.01 (2e / (100 D) for an error e of about sqrt(D)).
    """
    return 2.0 ** round(math.log2(pixel_values / (100 * max(start_distortion, 1e-12))))


def _straight_through_round(scaled: torch.Tensor) -> torch.Tensor:
    return scaled + (torch.round(scaled) - scaled).detach()


def _rate_proxy(symbols: torch.Tensor) -> torch.Tensor:
    """Bits-like cost of symbols: log2(1 + |q|) each, plus one per value (a zero still costs a little)."""
    return torch.log2(1 + symbols.abs()).sum() + symbols.numel()


def refine_latent(
    decoder,
    target: torch.Tensor,
    latent: torch.Tensor,
    steps: torch.Tensor,
    start_bits: float,
    refinement: Refinement,
    tune: str = "psnr",
) -> torch.Tensor:
    """The refined latent (C, h, w), on ``latent``'s device, for pixels ``target`` (1, 3, 8h, 8w) in [0, 1].

    ``decoder`` is an autoencoder with ``decode_with_grad``; ``steps`` (C, 1, 1) are the file's
    quantization steps; ``start_bits`` is the real coder's size of the unrefined latent at these
    steps (calibrates the rate proxy).
    """
    if refinement.iterations <= 0:
        return latent
    _, height, width = latent.shape
    device = getattr(decoder, "device", latent.device)  # the search runs where the decoder does (a GPU)
    refined = latent.detach().to(device, torch.float32).clone()
    target, steps = target.to(device), steps.to(device, torch.float32)
    bits_per_value = start_bits / latent.numel()
    for top in range(0, height, TILE):
        for left in range(0, width, TILE):
            region = (slice(top, min(top + TILE, height)), slice(left, min(left + TILE, width)))
            _refine_tile(decoder, target, refined, steps, region, bits_per_value, refinement, tune)
    return refined.to(latent.device)


def _refine_tile(decoder, target, latent, steps, region, bits_per_value, refinement, tune) -> None:
    """Refine ``latent[:, region]`` in place, decoding it with MARGIN positions of context.

    The variable is the tile in units of its channels' steps (times ``stretch`` >= 1 below
    TUNED_STEP), so Adam's step (about ``learning_rate`` per iteration for every value) is in
    quantization steps, and never smaller in latent units than at TUNED_STEP.
    """
    rows, cols = region
    _, height, width = latent.shape
    top, bottom = max(0, rows.start - MARGIN), min(height, rows.stop + MARGIN)
    left, right = max(0, cols.start - MARGIN), min(width, cols.stop + MARGIN)
    context = latent[:, top:bottom, left:right].clone()
    inner = (slice(rows.start - top, rows.stop - top), slice(cols.start - left, cols.stop - left))
    pixels = target[:, :, 8 * rows.start : 8 * rows.stop, 8 * cols.start : 8 * cols.stop].float()
    stretch = max(1.0, TUNED_STEP / float(torch.exp(torch.log(steps).mean())))
    scaled = (context[:, inner[0], inner[1]] / (steps * stretch)).requires_grad_(True)

    def decoded_and_rate(quantize: bool) -> tuple[torch.Tensor, torch.Tensor]:
        symbols = _straight_through_round(scaled * stretch) if quantize else scaled * stretch
        full = context.clone()
        full[:, inner[0], inner[1]] = symbols * steps
        decoded = decoder.decode_with_grad(full[None])
        crop = decoded[:, :, 8 * inner[0].start : 8 * inner[0].stop, 8 * inner[1].start : 8 * inner[1].stop]
        return crop, _rate_proxy(symbols) / symbols.numel()

    def distortion_and_rate(quantize: bool) -> tuple[torch.Tensor, torch.Tensor]:
        crop, rate = decoded_and_rate(quantize)
        return measure(crop, pixels), rate

    with torch.enable_grad():
        with torch.no_grad():
            start_decoded, start_proxy = decoded_and_rate(quantize=True)
        measure = make_distortion(tune, start_decoded, pixels)
        start_distortion = measure(start_decoded, pixels).detach()
        bits_per_proxy = bits_per_value / float(start_proxy)
        rate_weight = 2 * math.log(2) * float(start_distortion) * bits_per_proxy  # distortion per proxy unit
        scale = _loss_scale(float(start_distortion), pixels.numel())
        optimizer = torch.optim.Adam([scaled], lr=refinement.learning_rate, eps=ADAM_EPS * scale)
        continuous = refinement.iterations // 3
        # With the stretched step the search can overshoot where the encoder's latent was already
        # close (a small amortization gap): it then keeps the best quantized iterate it measured,
        # the start included. At and above TUNED_STEP it returns the last iterate, as it always did.
        best = (float(start_distortion + rate_weight * start_proxy), scaled.detach().clone()) if stretch > 1 else None
        for iteration in range(refinement.iterations):
            optimizer.zero_grad()
            distortion, proxy = distortion_and_rate(quantize=iteration >= continuous)
            loss = distortion + (rate_weight * proxy if iteration >= continuous else 0)
            if best is not None and iteration >= continuous and (value := float(loss.detach())) < best[0]:
                best = (value, scaled.detach().clone())
            (loss * scale).backward()
            optimizer.step()
        if best is not None:
            with torch.no_grad():
                distortion, proxy = distortion_and_rate(quantize=True)
            if float(distortion + rate_weight * proxy) > best[0]:
                scaled = best[1]
    latent[:, rows, cols] = scaled.detach() * stretch * steps
