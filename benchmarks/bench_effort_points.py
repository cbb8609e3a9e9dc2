"""Rate and quality of a few images at each effort level: a quick look before a full BD-rate run.

    python -m sdcodec.benchmarks.bench_effort_points [--images kodim23,kodim05,kodim13] [--qualities 30,50]
        [--efforts 1,2,4] [--tunes psnr,ssim] [--device cuda] [--crop 512]

Prints bpp, PSNR, MS-SSIM, encode seconds and seconds per megapixel per (image, quality, effort,
tune) on Kodak with TAEF2 (or a centre crop of CROP pixels a side), encoding and decoding through
the public API on the chosen device, with the load average beside each line. A full comparison is
``bench_encoder`` (BD-rate over 24 images); this is what fits in a few minutes of a lent GPU.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from PIL import Image

from sdcodec.benchmarks.bench_encoder import SHARED, measure_point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="kodim23,kodim05,kodim13")
    parser.add_argument("--qualities", default="30,50")
    parser.add_argument("--efforts", default="1,2,4")
    parser.add_argument("--tunes", default="psnr,ssim", help="tunes for efforts above 1")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--crop", type=int, default=0, help="centre crop of this many pixels a side (0: whole image)")
    args = parser.parse_args()
    import sdcodec

    spec = f"taef2:{SHARED / 'weights' / 'taef2'}"
    # load the model, its channel metric and the compiled coders before anything is timed
    sdcodec.encode_image(Image.new("RGB", (64, 64), (128, 128, 128)), model=spec, device=args.device)
    for name in args.images.split(","):
        path = SHARED / "datasets" / "kodak" / f"{name}.png"
        image = Image.open(path).convert("RGB")
        if args.crop:
            left, top = (image.width - args.crop) // 2, (image.height - args.crop) // 2
            image = image.crop((left, top, left + args.crop, top + args.crop))
        reference = np.asarray(image)
        megapixels = reference[..., 0].size / 1e6
        for quality in map(int, args.qualities.split(",")):
            for effort in map(int, args.efforts.split(",")):
                for tune in args.tunes.split(",") if effort > 1 else ["psnr"]:
                    point = measure_point(
                        sdcodec, image, reference, spec, args.device, quality=quality, effort=effort, tune=tune
                    )
                    print(
                        f"{name} q{quality} effort {effort} {tune}: {point['bpp']:.4f} bpp {point['psnr']:.2f} dB "
                        f"ms-ssim {point['ms_ssim']:.4f} {point['encode_s']:.2f} s "
                        f"({point['encode_s'] / megapixels:.1f} s/MP, load {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
