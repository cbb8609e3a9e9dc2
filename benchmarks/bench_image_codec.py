"""Image codec figures (issue 3): TAEF2 on Kodak at three qualities, rate-control accuracy.

    python -m benchmarks.bench_image_codec [--images N]

Prints a table of mean bpp and PSNR (RGB) at three quality settings, then, for requested
ceilings, the achieved / requested bpp of every file (never above 1, and how far below).
The 2048x2048 memory figure with the full-size SD VAE lives in benchmarks.bench_memory.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

import sdcodec

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
QUALITIES = (20, 35, 50)
CEILINGS = (0.25, 0.5, 1.0)


def psnr(a: Image.Image, b: Image.Image) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b.convert("RGB"), dtype=np.float64)
    return float(10 * np.log10(255**2 / np.mean((x - y) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--model", default=f"taef2:{SHARED / 'weights' / 'taef2'}")
    args = parser.parse_args()
    paths = sorted((SHARED / "datasets" / "kodak").glob("kodim*.png"))[: args.images]
    images = [Image.open(p).convert("RGB") for p in paths]
    print(f"{args.model} on {len(images)} Kodak images")
    print(f"{'setting':>12} {'bpp':>7} {'PSNR dB':>8} {'encode s':>9} {'decode s':>9}")
    for quality in QUALITIES:
        bpps, psnrs, enc, dec = [], [], [], []
        for image in images:
            start = time.perf_counter()
            data = sdcodec.encode_image(image, model=args.model, quality=quality)
            enc.append(time.perf_counter() - start)
            start = time.perf_counter()
            out = sdcodec.decode_image(data, model=args.model)
            dec.append(time.perf_counter() - start)
            bpps.append(8 * len(data) / (image.width * image.height))
            psnrs.append(psnr(image, out))
        print(
            f"{'quality ' + str(quality):>12} {np.mean(bpps):>7.3f} {np.mean(psnrs):>8.2f} {np.mean(enc):>9.2f} {np.mean(dec):>9.2f}"
        )
    print("rate control: achieved / requested bpp")
    for ceiling in CEILINGS:
        ratios = []
        for image in images:
            data = sdcodec.encode_image(image, model=args.model, bpp=ceiling)
            ratios.append(8 * len(data) / (image.width * image.height) / ceiling)
        ratios = np.array(ratios)
        print(
            f"  --bpp {ceiling}: mean {ratios.mean():.4f}, min {ratios.min():.4f}, max {ratios.max():.4f}; "
            f"above the ceiling: {(ratios > 1).sum()}, more than 10% below: {(ratios < 0.9).sum()} of {len(ratios)}"
        )


if __name__ == "__main__":
    main()
