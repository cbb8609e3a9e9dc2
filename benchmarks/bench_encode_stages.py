"""Where a level-1 encode's time goes: the autoencoder forward against everything else.

    python -m benchmarks.bench_encode_stages [--images 6]

Times each stage of ``encode_image`` (effort 1) on Kodak images with TAEF2, in one process so the
shares are ratios measured side by side: image load and padding, the encoder forward, the decoder's
channel metric (the model's, read from its disk cache, as level 1 runs it now; the image's own,
32 probes, as the previous level 1 ran it), and quantization plus entropy coding at quality 50 and
the rate search of ``--bpp 0.5``, each with level 1's quantizer and coder (RDOQ, error shaping,
entropy model 2), the previous level 1's (the same with the image's metric), RDOQ alone (model 1)
and plain rounding (model 1). The one-time measurement of the model's metric is in ``bench_model_metric``.
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
from sdcodec.codec.rate_distortion import channel_weighting, model_metric

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

    warm = np.random.default_rng(0).laplace(size=(32, 16, 16))
    for fields in CODERS.values():  # compile the coders (numba) before anything is timed
        fields = {key: value for key, value in fields.items() if key not in ("metric", "shaped")}
        image_codec.encode_latent_image(warm, latent_space="raw", width=128, height=128, quality=50, **fields)
    model_metric.model_metric(autoencoder)  # measured once per model (bench_model_metric times that), then cached
    for path in paths:
        loaded = timed("load + pad", lambda: image_io.load_image(path))
        pixels = timed("load + pad", lambda: image_io.pad_to_multiple(image_io.to_tensor(loaded.rgb)))
        with torch.inference_mode():
            latent = timed("encoder forward", lambda: autoencoder.encode(pixels)[0])
        model_metric._IN_PROCESS.clear()  # as in a new process: hash the weights, read the cache
        cached = timed("model metric (cache)", lambda: model_metric.model_metric(autoencoder))
        image_metric = timed(
            "probe (32-probe metric, previous level 1)",
            lambda: channel_weighting.channel_metric(autoencoder, latent, probes=32),
        )
        metrics = {"model": cached, "image": image_metric}
        size = dict(latent_space=autoencoder.latent_space, width=loaded.width, height=loaded.height)
        for coder, fields in CODERS.items():
            fields = dict(fields, **size)
            metric = metrics[fields.pop("metric", "model")]
            fields.update(channel_steps=channel_weighting.step_multipliers(np.diag(metric)))
            fields.update(channel_metric=metric if fields.pop("shaped", True) else None)
            for rate_name, rate in RATES.items():
                timed(f"{rate_name}, {coder}", lambda: image_codec.encode_latent_image(latent, **rate, **fields))
    mean = {name: float(np.mean(values)) for name, values in stages.items()}
    forward = mean["encoder forward"]
    print(f"| stage | seconds (mean of {len(paths)}) | / encoder forward |")
    print("| --- | ---: | ---: |")
    for name, seconds in mean.items():
        print(f"| {name} | {seconds:.3f} | {seconds / forward:.2f} |")
    base = mean["load + pad"] + forward

    def total(rate_name, coder):
        probe = {
            "model": mean["model metric (cache)"],
            "image": mean["probe (32-probe metric, previous level 1)"],
        }[CODERS[coder].get("metric", "model")]
        return base + probe + mean[f"{rate_name}, {coder}"]

    for rate_name in RATES:
        for coder in list(CODERS)[1:]:
            print(
                f"level 1 encode with {rate_name}: {DEFAULT} against {coder}: "
                f"{total(rate_name, DEFAULT) / total(rate_name, coder):.3f}x"
            )
    outside = total("quality 50", DEFAULT) - forward
    print(
        f"\nlevel 1 at a quality: {100 * outside / (outside + forward):.1f}% of the encode outside the forward "
        f"(torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f})"
    )


DEFAULT = "shaped, model 2 (level 1)"
LEVEL1 = dict(rdo_weight=image_codec.DEFAULT_RDO_WEIGHT, entropy_model=image_codec.DEFAULT_ENTROPY_MODEL)
# encode_latent_image keywords of each quantizer and coder; "metric": where the channel metric comes from
# (the model's, cached, unless "image": the previous level 1's 32-probe one), "shaped": whether errors are shaped with it
CODERS = {
    DEFAULT: dict(LEVEL1, metric="model"),
    "32-probe metric (previous level 1)": dict(LEVEL1, metric="image"),
    "rdoq, model 1": dict(rdo_weight=image_codec.DEFAULT_RDO_WEIGHT, entropy_model=1, shaped=False),
    "rounding (model 1)": dict(rdo_weight=0.0, entropy_model=1, shaped=False),
}
RATES = {"quality 50": dict(quality=50), "--bpp 0.5": dict(bpp=0.5)}


if __name__ == "__main__":
    main()
