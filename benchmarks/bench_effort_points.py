"""Rate and quality of a few images at each effort level: a quick look before a full BD-rate run.

    python -m sdcodec.benchmarks.bench_effort_points [--images kodim23,kodim05,kodim13] [--qualities 30,50]
        [--efforts 1,2,4] [--tunes psnr,ssim] [--device cuda]

Prints bpp, PSNR, MS-SSIM and encode seconds per (image, quality, effort, tune) on Kodak with TAEF2,
encoding and decoding through the public API on the chosen device. A full comparison is
``bench_encoder`` (BD-rate over 24 images); this is what fits in a few minutes of a lent GPU.
"""

from __future__ import annotations

import argparse

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
    args = parser.parse_args()
    import sdcodec

    spec = f"taef2:{SHARED / 'weights' / 'taef2'}"
    for name in args.images.split(","):
        path = SHARED / "datasets" / "kodak" / f"{name}.png"
        reference = np.asarray(Image.open(path).convert("RGB"))
        for quality in map(int, args.qualities.split(",")):
            for effort in map(int, args.efforts.split(",")):
                for tune in args.tunes.split(",") if effort > 1 else ["psnr"]:
                    point = measure_point(
                        sdcodec, path, reference, spec, args.device, quality=quality, effort=effort, tune=tune
                    )
                    print(
                        f"{name} q{quality} effort {effort} {tune}: {point['bpp']:.4f} bpp {point['psnr']:.2f} dB "
                        f"ms-ssim {point['ms_ssim']:.4f} {point['encode_s']:.2f} s",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
