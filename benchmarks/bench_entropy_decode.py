"""Entropy decoding's share of a decode, and its cost on degenerate shapes.

    python -m benchmarks.bench_entropy_decode [--images 6] [--save-dir DIR] [--entropy-model N]

Part 1 encodes Kodak images with TAEF2 at the default quality and times, on each file, the
entropy decode (``read_symbols``, best of 3) against the TAEF2 decoder (one pass) in the same
run, so the share is a ratio that survives machine load. Part 2 times latents whose wavefronts
hold one position each (rows and columns) against a square latent of as many values: the cost per
value must not depend on the shape. Prints the 1-minute load average with the figures.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sdcodec.codec import autoencoders as models
from sdcodec.codec.coding import latent_coder

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _best_of(function, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def _recoded(data: bytes, entropy_model: int) -> bytes:
    """The same file with its symbols coded by another entropy model."""
    import dataclasses

    from sdcodec import bitstream

    q, sdz = latent_coder.read_symbols(data)
    payload, _ = latent_coder.encode_symbols(q, entropy_model)
    return bitstream.write_sdz(dataclasses.replace(sdz, entropy_model=entropy_model, payload=payload))


def kodak_share(count: int, save_dir: Path | None, entropy_model: int | None = None) -> None:
    from sdcodec import encode_image

    spec = f"taef2:{SHARED / 'weights' / 'taef2'}"
    autoencoder = models.load_autoencoder(spec, device="cpu")
    paths = sorted((SHARED / "datasets" / "kodak").glob("*.png"))[:count]
    print("| image | latent | entropy decode (s) | TAEF2 decode (s) | share |")
    print("| --- | --- | ---: | ---: | ---: |")
    shares = []
    for path in paths:
        data = encode_image(Image.open(path), model=spec)
        if entropy_model is not None:
            data = _recoded(data, entropy_model)
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            (save_dir / f"{path.stem}.sdz").write_bytes(data)
        latent_coder.read_symbols(data)  # load the compiled kernel once
        entropy = _best_of(lambda: latent_coder.read_symbols(data))
        latent = torch.from_numpy(latent_coder.decode_latent(data))[None]
        start = time.perf_counter()
        with torch.inference_mode():
            autoencoder.decode(latent)
        network = time.perf_counter() - start
        shares.append(entropy / network)
        shape = "x".join(map(str, latent.shape[1:]))
        print(f"| {path.stem} | {shape} | {entropy:.4f} | {network:.2f} | {100 * entropy / network:.2f}% |")
    print(
        f"\nmean share of the entropy decode in a TAEF2 decode: {100 * float(np.mean(shares)):.2f}% "
        f"(load average {os.getloadavg()[0]:.2f})"
    )


def shape_independence(values: int) -> None:
    rng = np.random.default_rng(0)
    side = int(np.sqrt(values))
    print("\n| latent | values | decode (s) | ns per value |")
    print("| --- | ---: | ---: | ---: |")
    for shape in ((1, side, side), (1, 1, values), (1, values, 1)):
        noise = rng.normal(size=shape)  # stationary, so every shape has the same alphabet
        latent = 4 * (noise + np.roll(noise, 1, axis=2 if shape[2] > 1 else 1))
        data = latent_coder.encode_latent(
            latent, step=0.5, width=min(8 * shape[2], 1 << 20), height=min(8 * shape[1], 1 << 20)
        )
        seconds = _best_of(lambda: latent_coder.read_symbols(data))
        size = int(np.prod(shape))
        print(f"| {'x'.join(map(str, shape))} | {size} | {seconds:.4f} | {1e9 * seconds / size:.0f} |")
    print(f"(load average {os.getloadavg()[0]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--values", type=int, default=1 << 17, help="values of each latent in part 2")
    parser.add_argument("--save-dir", type=Path, help="keep the encoded Kodak files here")
    parser.add_argument("--entropy-model", type=int, choices=latent_coder.ENTROPY_MODELS, help="default: new files'")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    kodak_share(args.images, args.save_dir, args.entropy_model)
    shape_independence(args.values)


if __name__ == "__main__":
    main()
