"""What tiling costs the tiny autoencoders on large pictures: seconds, peak memory, and the difference.

    python -m sdcodec.benchmarks.bench_tiling [--width 2048] [--height 1536] [--tile 768] [--overlap 128]

kodim23 upscaled (Lanczos) to the size asked for goes through TAEF2's encoder and decoder untiled
and in tiles, each setting in a process of its own (so its peak resident memory is its own); the
tiled decode decodes the untiled encode's latent, so the PSNR between the two decodes is the tiles'
own effect. Also printed: the area the tiles compute relative to the picture's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sdcodec.benchmarks.bench_encoder import SHARED

WEIGHTS = SHARED / "weights" / "taef2"
SOURCE = SHARED / "datasets" / "kodak" / "kodim23.png"


def run_setting(width: int, height: int, tile: int, overlap: int, scratch: Path) -> dict:
    """One process's work: encode and decode (untiled when ``tile`` is 0), timed; files in ``scratch``."""
    import torch
    from PIL import Image

    from sdcodec.codec.autoencoders.tiny import TinyAutoencoder

    tiling = {"tile_above": 1 << 40} if tile == 0 else {"tile_size": tile, "tile_overlap": overlap}
    autoencoder = TinyAutoencoder.from_dir(WEIGHTS, "taef2", **tiling)
    picture = np.array(Image.open(SOURCE).convert("RGB").resize((width, height), Image.LANCZOS))
    pixels = torch.from_numpy(picture).permute(2, 0, 1)[None].float() / 255
    start = time.perf_counter()
    latent = autoencoder.encode(pixels)
    encode_s = time.perf_counter() - start
    if tile == 0:
        np.save(scratch / "latent.npy", latent.numpy())
    start = time.perf_counter()
    decoded = autoencoder.decode(torch.from_numpy(np.load(scratch / "latent.npy")))
    decode_s = time.perf_counter() - start
    image = (decoded[0].permute(1, 2, 0).numpy() * 255).round()
    if tile == 0:
        np.save(scratch / "decoded.npy", image)
    error = np.mean((image - np.load(scratch / "decoded.npy")) ** 2)
    return {
        "encode_s": encode_s,
        "decode_s": decode_s,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "psnr_vs_untiled": float("inf") if error == 0 else float(10 * np.log10(255**2 / error)),
    }


def main() -> None:
    from sdcodec.codec.autoencoders.tiling import tile_layout

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--height", type=int, default=1536)
    parser.add_argument("--tile", type=int, default=768)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--one", nargs=3, metavar=("TILE", "OVERLAP", "SCRATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        tile, overlap, scratch = int(args.one[0]), int(args.one[1]), Path(args.one[2])
        print(json.dumps(run_setting(args.width, args.height, tile, overlap, scratch)))
        return
    tile_w, lefts = tile_layout(args.width, args.tile, args.overlap, 8)
    tile_h, tops = tile_layout(args.height, args.tile, args.overlap, 8)
    area = len(lefts) * tile_w * len(tops) * tile_h / (args.width * args.height)
    print(f"{args.width}x{args.height}: {len(lefts)}x{len(tops)} tiles of {tile_w}x{tile_h}, {area:.2f}x the area")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| setting | encode s | decode s | peak GB | decode vs untiled, dB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as scratch:
        for tile, overlap in ((0, 0), (args.tile, args.overlap)):
            command = [sys.executable, "-m", "sdcodec.benchmarks.bench_tiling", "--width", str(args.width)]
            command += ["--height", str(args.height), "--one", str(tile), str(overlap), scratch]
            row = json.loads(
                subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
            )
            name = "untiled" if tile == 0 else f"tiles {tile}, overlap {overlap}"
            print(
                f"| {name} | {row['encode_s']:.1f} | {row['decode_s']:.1f} | {row['peak_gb']:.2f} "
                f"| {row['psnr_vs_untiled']:.1f} |"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
