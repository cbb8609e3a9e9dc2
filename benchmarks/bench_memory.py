"""Peak memory and time of encode + decode of a 2048x2048 image with the full-size SD VAE (issue 3).

    python -m benchmarks.bench_memory [--side 2048]

The SD 1.x VAE architecture with random weights costs what the real one costs. The image goes
through the same path as `sdcodec encode/decode` (diffusers VAE tiling above 1024 pixels).
Peak RSS is the process's maximum resident set (resource.getrusage).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2048)
    args = parser.parse_args()
    from diffusers import AutoencoderKL

    from sdcodec.benchmarks.sd15_random import sd15_vae_config
    from sdcodec.codec import image_codec
    from sdcodec.codec.autoencoders import DiffusersVAE
    from sdcodec.codec.coding import latent_coder
    from sdcodec.codec.images import image_io

    torch.manual_seed(0)
    autoencoder = DiffusersVAE(AutoencoderKL(**sd15_vae_config()).eval(), name="random SD 1.5 VAE", device="cpu")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, size=(args.side, args.side, 3), dtype=np.uint8))
    start = time.perf_counter()
    pixels = image_io.to_tensor(image_io.load_image(image).rgb)
    with torch.inference_mode():
        latent = autoencoder.encode(pixels)[0]
    data = image_codec.encode_latent_image(latent, latent_space="sd1", width=args.side, height=args.side, quality=50)
    encoded = time.perf_counter()
    with torch.inference_mode():
        decoded = autoencoder.decode(torch.from_numpy(latent_coder.decode_latent(data))[None])
    done = time.perf_counter()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"{args.side}x{args.side} with the full-size SD VAE (random weights), tiled: encode {encoded - start:.1f} s, "
        f"decode {done - encoded:.1f} s, {len(data)} bytes, output {tuple(decoded.shape)}, peak RSS {peak_gb:.2f} GB"
    )


if __name__ == "__main__":
    main()
