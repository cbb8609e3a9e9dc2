"""Where a level-1 encode's time goes: the autoencoder forward against everything else.

    python -m benchmarks.bench_encode_stages [--images 6]

Times each stage of ``encode_image`` (effort 1) on Kodak images with TAEF2, in one process so the
shares are ratios measured side by side: image load and padding, the encoder forward, the
channel-gain probe, the entropy coding at quality 50, and the rate search of ``--bpp 0.5``; the last
two also with plain rounding instead of effort 1's rate-distortion quantization, for its cost.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from sdcodec.codec import autoencoders as models
from sdcodec.codec import image_codec
from sdcodec.codec.images import image_io
from sdcodec.codec.rate_distortion import channel_weighting

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    args = parser.parse_args()
    autoencoder = models.load_autoencoder(f"taef2:{SHARED / 'weights' / 'taef2'}", device="cpu")
    paths = sorted((SHARED / "datasets" / "kodak").glob("*.png"))[: args.images]
    stages: dict[str, list[float]] = {}

    def timed(name, function):
        start = time.perf_counter()
        result = function()
        stages.setdefault(name, []).append(time.perf_counter() - start)
        return result

    for path in paths:
        loaded = timed("load + pad", lambda: image_io.load_image(path))
        pixels = timed("load + pad", lambda: image_io.pad_to_multiple(image_io.to_tensor(loaded.rgb)))
        with torch.inference_mode():
            latent = timed("encoder forward", lambda: autoencoder.encode(pixels)[0])
        multipliers = timed(
            "probe", lambda: channel_weighting.step_multipliers(channel_weighting.channel_gains(autoencoder, latent))
        )
        fields = dict(
            latent_space=autoencoder.latent_space, width=loaded.width, height=loaded.height, channel_steps=multipliers
        )
        rdo = dict(rdo_weight=image_codec.DEFAULT_RDO_WEIGHT)  # what effort 1 does
        timed(
            "entropy coding (quality 50)", lambda: image_codec.encode_latent_image(latent, quality=50, **fields, **rdo)
        )
        timed("rate search (--bpp 0.5)", lambda: image_codec.encode_latent_image(latent, bpp=0.5, **fields, **rdo))
        timed(
            "entropy coding (quality 50), rounding",
            lambda: image_codec.encode_latent_image(latent, quality=50, **fields),
        )
        timed("rate search (--bpp 0.5), rounding", lambda: image_codec.encode_latent_image(latent, bpp=0.5, **fields))
    mean = {name: float(np.mean(values)) for name, values in stages.items()}
    forward = mean["encoder forward"]
    print(f"| stage | seconds (mean of {len(paths)}) | / encoder forward |")
    print("| --- | ---: | ---: |")
    for name, seconds in mean.items():
        print(f"| {name} | {seconds:.3f} | {seconds / forward:.2f} |")
    base = mean["load + pad"] + forward + mean["probe"]
    for name in ("entropy coding (quality 50)", "rate search (--bpp 0.5)"):
        print(
            f"level 1 encode with {name}, RDOQ (rdo_weight {image_codec.DEFAULT_RDO_WEIGHT}) against rounding: "
            f"{(base + mean[name]) / (base + mean[name + ', rounding']):.3f}x"
        )
    outside = mean["load + pad"] + mean["probe"] + mean["entropy coding (quality 50)"]
    print(
        f"\nlevel 1 at a quality: {100 * outside / (outside + forward):.1f}% of the encode outside the forward; "
        f"with --bpp 0.5: {100 * (outside - mean['entropy coding (quality 50)'] + mean['rate search (--bpp 0.5)']) / (outside + forward - mean['entropy coding (quality 50)'] + mean['rate search (--bpp 0.5)']):.1f}% "
        f"(torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
