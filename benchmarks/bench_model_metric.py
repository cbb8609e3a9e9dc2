"""What the model's channel metric costs: measured once per set of weights, then read from its cache.

    python -m sdcodec.benchmarks.bench_model_metric [--models taef2,sd15]

For TAEF2 (real weights in ../shared) and the full-size SD 1.5 VAE architecture (random weights cost
what the real ones do), in one process with one torch thread: seconds to measure the metric (the
first encode with a model on a machine), to hash the weights and read it back (every later
process), and a 512x512 encoder forward for scale. The cache goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _load(name: str):
    from sdcodec.codec import autoencoders

    if name == "taef2":
        return autoencoders.load_autoencoder(f"taef2:{SHARED / 'weights' / 'taef2'}", device="cpu")
    from diffusers import AutoencoderKL

    from sdcodec.benchmarks.sd15_random import sd15_vae_config

    torch.manual_seed(0)
    return autoencoders.DiffusersVAE(AutoencoderKL(**sd15_vae_config()).eval(), name="random SD 1.5 VAE", device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="taef2,sd15")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="sdcodec-metric-")
    from sdcodec.codec.rate_distortion import model_metric

    pixels = torch.from_numpy(np.random.default_rng(0).random((1, 3, 512, 512), dtype=np.float32))
    for name in args.models.split(","):
        autoencoder = _load(name)
        start = time.perf_counter()
        with torch.inference_mode():
            autoencoder.encode(pixels)
        forward = time.perf_counter() - start
        start = time.perf_counter()
        model_metric.model_metric(autoencoder)
        measured = time.perf_counter() - start
        model_metric._IN_PROCESS.clear()  # as a new process: hash the weights, read the cache
        start = time.perf_counter()
        model_metric.model_metric(autoencoder)
        cached = time.perf_counter() - start
        print(
            f"{name}: measure the metric {measured:.1f} s (once per set of weights), read it back {cached:.3f} s, "
            f"512x512 encoder forward {forward:.1f} s (load average {os.getloadavg()[0]:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
