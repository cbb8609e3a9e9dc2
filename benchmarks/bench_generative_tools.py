"""Cost of inpainting (hence outpainting) and of the invisible watermark on this machine.

Inpainting runs with the full-size SD 1.5 architectures (random weights cost what real ones do,
benchmarks/sd15_random.py) through ``codec.diffusion.inpaint``: VAE encode, the denoising steps
(U-Net batch 2 for classifier-free guidance, latent blending after each) and VAE decode. It is
timed on the whole image and with ``only_masked`` on a small mask, whose box is all that runs.
Outpainting is inpainting of the grown canvas, so it costs what inpainting that size costs.

    python -m benchmarks.bench_generative_tools             # 512x512, 1 step (a few minutes on a CPU)
    python -m benchmarks.bench_generative_tools --steps 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image

from sdcodec.benchmarks.sd15_random import random_sd15_components
from sdcodec.codec.diffusion.inpaint import Canvas, inpaint, mask_box
from sdcodec.codec.diffusion.watermark import add_watermark, detect

KODAK = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "kodak" / "kodim23.png"


def picture(size: int) -> Image.Image:
    if KODAK.exists():
        with Image.open(KODAK) as image:
            return image.convert("RGB").resize((size, size), Image.LANCZOS)
    return Image.effect_noise((size, size), 40).convert("RGB")


def seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="square image side (multiple of 8)")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps per inpaint call")
    parser.add_argument("--mask", type=int, default=96, help="side of the small square mask for --only-masked")
    args = parser.parse_args(argv)

    image = picture(args.size)
    marked = add_watermark(image)
    print(
        f"watermark {args.size}x{args.size}: mark {seconds(lambda: add_watermark(image)):.2f} s, "
        f"detect {seconds(lambda: detect(marked)):.2f} s (found: {detect(marked).present})",
        flush=True,
    )

    build = time.perf_counter()
    components = random_sd15_components(seed=0)
    print(f"build SD 1.5 architectures (random weights): {time.perf_counter() - build:.1f} s", flush=True)
    side, corner = args.mask, (args.size - args.mask) // 2
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (corner, corner, corner + side, corner + side))
    for only_masked in (False, True):
        box = mask_box(mask, 32) if only_masked else (0, 0, *image.size)
        with torch.inference_mode():
            spent = seconds(
                lambda only_masked=only_masked: inpaint(
                    components,
                    "a red ball",
                    Canvas(image=image),
                    mask,
                    seed=0,
                    steps=args.steps,
                    strength=1.0,
                    only_masked=only_masked,
                )
            )
        print(
            f"inpaint {args.size}x{args.size}, {args.steps} step(s), {'only masked' if only_masked else 'whole image'} "
            f"(diffusion on {box[2] - box[0]}x{box[3] - box[1]}): {spent:.1f} s per call",
            flush=True,
        )


if __name__ == "__main__":
    main()
