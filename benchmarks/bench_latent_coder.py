"""Latent coder figures (issue 2): compression against a static histogram coder and zlib, and speed.

    python -m benchmarks.bench_latent_coder [--images N]

Real latents: the TAEF2 encoder (../shared/weights/taef2) on the Kodak images, cached in
benchmarks/cache/. For each step, totals over all images: our file size in bits per latent
value, the ratio to a static per-channel histogram coder (zeroth-order entropy + the cost of
sending the histograms), the ratio to our model's own ideal code length, and zlib -9 over the
same symbols as 8-bit bytes (the lossless stage of Buhlmann's 2022 codec).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sdcodec.benchmarks.latent_baselines import static_histogram_bits, zlib_8bit_bytes
from sdcodec.codec.coding.latent_coder import decode_latent, encode_latent, encode_latent_detailed, quantize

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CACHE = REPO / "benchmarks" / "cache" / "kodak_taef2_latents.npz"
STEPS = (0.8, 1.0, 1.5, 2.0, 2.5, 3.0)


def kodak_taef2_latents() -> list[np.ndarray]:
    if CACHE.exists():
        with np.load(CACHE) as stored:
            return [stored[key] for key in sorted(stored.files, key=lambda k: int(k.split("_")[1]))]
    import torch

    from sdcodec.codec import autoencoders as models
    from sdcodec.codec.images import image_io

    autoencoder = models.load_autoencoder(f"taef2:{SHARED / 'weights' / 'taef2'}", device="cpu")
    latents = []
    for path in sorted((SHARED / "datasets" / "kodak").glob("kodim*.png")):
        pixels = image_io.to_tensor(image_io.load_image(path).rgb)
        with torch.inference_mode():
            latents.append(autoencoder.encode(pixels)[0].numpy())
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, *latents)
    return latents


def compression_table(latents: list[np.ndarray]) -> None:
    print(f"{'step':>5} {'bits/value':>10} {'vs static':>10} {'vs ideal':>9} {'zlib bits/value':>16} {'zlib/ours':>9}")
    for step in STEPS:
        ours = static = ideal = zlib_bits = values = 0.0
        for latent in latents:
            result = encode_latent_detailed(latent, step=step)
            q = quantize(latent.astype(np.float64), result.step)
            ours += 8 * len(result.data)
            ideal += result.ideal_bits
            static += static_histogram_bits(q)
            zlib_bits += 8 * zlib_8bit_bytes(q)
            values += q.size
        print(
            f"{step:>5} {ours / values:>10.3f} {ours / static:>9.3f}x {ours / ideal:>8.4f}x "
            f"{zlib_bits / values:>16.3f} {zlib_bits / ours:>8.2f}x"
        )


def speed(repeats: int = 5) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 128, 128))
    latent = (base + np.roll(base, 1, 1) + np.roll(base, 1, 2)) / 1.7  # spatially correlated, std ~1
    data = encode_latent(latent, step=0.5)
    encode_s = min(_timed(lambda: encode_latent(latent, step=0.5)) for _ in range(repeats))
    decode_s = min(_timed(lambda: decode_latent(data)) for _ in range(repeats))
    print(
        f"4x128x128 latent (a 1024x1024 image), step 0.5, {len(data)} bytes: "
        f"encode {encode_s:.3f} s + decode {decode_s:.3f} s = {encode_s + decode_s:.3f} s (best of {repeats})"
    )


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="how many Kodak images (default all 24)")
    args = parser.parse_args()
    speed()
    latents = kodak_taef2_latents()[: args.images]
    print(f"TAEF2 latents of {len(latents)} Kodak images ({latents[0].shape[0]} channels):")
    compression_table(latents)


if __name__ == "__main__":
    main()
