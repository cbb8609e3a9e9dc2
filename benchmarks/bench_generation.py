"""Speed of the generative core with the full-size SD 1.5 architectures on this machine.

Random weights (benchmarks/sd15_random.py) cost exactly what the real ones do. Prints seconds
for the text encoder, per denoising step (one U-Net call per step, batch 2 for classifier-free
guidance), the VAE decode, and the whole generation as ``sdcodec gen`` runs it.

    python -m benchmarks.bench_generation                 # 512x512, 25 steps (minutes on a CPU)
    python -m benchmarks.bench_generation --steps 2       # quick run
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from sdcodec.benchmarks.sd15_random import random_sd15_components
from sdcodec.codec.diffusion.generate import generate
from sdcodec.codec.diffusion.sd_pipeline import encode_prompt

PROMPT = "a photograph of an astronaut riding a horse, (detailed:1.2), sharp focus"
NEGATIVE = "blurry, low quality"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25, help="denoising steps of the timed generation")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--guidance", type=float, default=7.5, help="<= 1 disables classifier-free guidance")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    started = time.perf_counter()
    components = random_sd15_components(seed=0)
    print(f"build SD 1.5 architectures (random weights): {time.perf_counter() - started:.1f} s", flush=True)

    encode_prompt(components, PROMPT, NEGATIVE)  # warm-up
    started = time.perf_counter()
    encode_prompt(components, PROMPT, NEGATIVE)
    text_seconds = time.perf_counter() - started

    marks: list[float] = []

    def step_done(done: int, total: int) -> None:
        marks.append(time.perf_counter())
        previous = marks[-2] if len(marks) > 1 else started
        print(f"  step {done}/{total}: {marks[-1] - previous:.2f} s", flush=True)

    started = time.perf_counter()
    generate(
        components,
        PROMPT,
        negative=NEGATIVE,
        seed=0,
        steps=args.steps,
        guidance=args.guidance,
        width=args.width,
        height=args.height,
        scheduler=args.scheduler,
        progress=step_done,
    )
    total_seconds = time.perf_counter() - started

    # Step n ends at marks[n]; the first step also holds the text encoding and latent setup.
    step_seconds = [b - a for a, b in zip(marks, marks[1:])] or [marks[0] - started - text_seconds]
    mean_step = sum(step_seconds) / len(step_seconds)
    decode_seconds = total_seconds - (marks[-1] - started)
    unet_batch = 2 if args.guidance > 1 else 1
    print(f"generation {args.width}x{args.height}, {args.steps} steps ({args.scheduler}), U-Net batch {unet_batch}:")
    print(f"  text encoder (prompt + negative): {text_seconds:.2f} s")
    print(f"  per denoising step: {mean_step:.2f} s (min {min(step_seconds):.2f}, max {max(step_seconds):.2f})")
    print(f"  VAE decode: {decode_seconds:.2f} s")
    print(f"  whole generation: {total_seconds:.1f} s")
    if args.steps != 25:
        estimate = total_seconds + (25 - args.steps) * mean_step
        print(f"  estimated whole 25-step generation: {estimate:.1f} s")


if __name__ == "__main__":
    main()
