"""Decode time of a 512x512 file with 0, 2 and 4 restoration steps (full-size SD 1.5, random weights).

Random weights (benchmarks/sd15_random.py) cost exactly what the real ones do. The timed decode
is what ``decode_image`` runs after entropy decoding (milliseconds, not counted): restoration
(caption encoding + U-Net steps + bin projection) and the VAE decode. U-Net calls are timed
separately with forward hooks, so their share of the decode is printed too.

    python -m benchmarks.bench_restoration                  # steps 0 2 4 (a few minutes on a CPU)
    python -m benchmarks.bench_restoration --steps 0 2 --caption "a red barn"
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from sdcodec.benchmarks.sd15_random import random_sd15_components
from sdcodec.codec.diffusion.restore import restoration_timestep, restore_latent


class UNetTimer:
    """Accumulates wall time spent inside ``unet.forward`` (pre- and post-forward hooks)."""

    def __init__(self, unet: torch.nn.Module):
        self.seconds = 0.0
        self.calls = 0
        self._started = 0.0
        unet.register_forward_pre_hook(self._before)
        unet.register_forward_hook(self._after)

    def _before(self, module, args):
        self._started = time.perf_counter()

    def _after(self, module, args, output):
        self.seconds += time.perf_counter() - self._started
        self.calls += 1

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} (other jobs slow every row)"
    )
    started = time.perf_counter()
    components = random_sd15_components(seed=0)
    print(f"build SD 1.5 architectures (random weights): {time.perf_counter() - started:.1f} s")
    timer = UNetTimer(components.unet)
    # Warm-up (first-call allocations, kernel selection) on a tiny latent, so the rows compare steps.
    tiny = torch.zeros(4, 8, 8)
    warm = restore_latent(tiny, symbols=tiny, quant_step=args.quant_step, components=components, num_steps=1)
    with torch.no_grad():
        components.vae.decode(warm.unsqueeze(0))

    # A dequantized latent as the decoder sees it: symbols q, reconstruction q * step.
    generator = torch.Generator().manual_seed(0)
    side = args.size // 8
    symbols = torch.round(torch.randn(4, side, side, generator=generator) / args.quant_step)
    latent = symbols * args.quant_step
    t = restoration_timestep(components.scheduler.alphas_cumprod, args.quant_step)
    print(
        f"{args.size}x{args.size} file, latent 4x{side}x{side}, quant step {args.quant_step} "
        f"-> start timestep {t}, caption {args.caption!r}, guidance {args.guidance}"
    )
    rows = []
    for num_steps in args.steps:
        rows.append(_timed_decode(components, timer, latent, symbols, args, num_steps))
        print(f"  {num_steps} steps: {rows[-1][1]:.1f} s", flush=True)
    _print_table(rows)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 2, 4], help="restoration step counts to time")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--quant-step", type=float, default=1.0, help="quantization step in U-Net latent units")
    parser.add_argument("--caption", default="", help="caption stored in the file (empty: no guidance)")
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def _timed_decode(components, timer: UNetTimer, latent, symbols, args, num_steps: int) -> tuple:
    """One row: restoration with ``num_steps`` steps, then the VAE decode; seconds of each and of the U-Net."""
    timer.reset()
    started = time.perf_counter()
    restored = restore_latent(
        latent,
        symbols=symbols,
        quant_step=args.quant_step,
        components=components,
        caption=args.caption,
        num_steps=num_steps,
        guidance=args.guidance,
        seed=0,
    )
    restore_seconds = time.perf_counter() - started
    with torch.no_grad():
        vae = components.vae
        vae.decode(restored.unsqueeze(0) / vae.config.scaling_factor)
    total_seconds = time.perf_counter() - started
    vae_seconds = total_seconds - restore_seconds
    return (num_steps, total_seconds, timer.seconds, timer.calls, restore_seconds, vae_seconds)


def _print_table(rows: list[tuple]) -> None:
    print()
    print("| restore steps | decode s | U-Net s (calls) | U-Net share | other restoration s | VAE decode s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for num_steps, total, unet_seconds, calls, restore_seconds, vae_seconds in rows:
        print(
            f"| {num_steps} | {total:.1f} | {unet_seconds:.1f} ({calls}) | {unet_seconds / total:.0%} | "
            f"{restore_seconds - unet_seconds:.2f} | {vae_seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
