"""Entropy models against general lossless coders, on the same integer symbols (issue 15).

    python -m sdcodec.benchmarks.bench_entropy_models [--images 24] [--steps 0.5 1 1.5 2.5]
        [--models 1 2 3] [--no-baselines]

The symbols are the image encoder's, rounded: the TAEF2 latent of each Kodak image, the per-channel
step multipliers every effort level uses (from the model's channel metric, ``model_metric``),
quantized by the project's quantizer at each base step (plain rounding: level 1's RDOQ and
shaping would tune the symbols to one coder). Latents and multipliers are computed once and cached in
benchmarks/cache/ (gitignored), and the symbols of each step are cached there too, as are the
baselines' sizes (JPEG XL at effort 9 takes minutes). Everything is printed as bits per latent
value, summed over the images: each entropy model's payload, static per-channel H0 (plus the
histograms), xz -9e, zstd -19, JPEG XL lossless effort 9 (planes stacked into one image, and
one image per plane), PNG (planes stacked); then encode/decode symbols per second per model.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import time
from pathlib import Path

import numpy as np

from sdcodec.benchmarks.latent_baselines import static_histogram_bits
from sdcodec.codec.coding import symbol_coder
from sdcodec.codec.coding.quantizer import channel_steps, quantize

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CACHE = REPO / "benchmarks" / "cache"
STEPS = (0.5, 1.0, 1.5, 2.5)


# Cache names of this version's symbols: the steps of the model's channel metric (earlier runs: each
# image's 2-probe gains, files without the tag).
SYMBOLS_TAG = "modelsteps"


def kodak_latents_and_multipliers() -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """(TAEF2 latent (C, h, w) float32, step multipliers) for each Kodak image, as encode_image makes them."""
    path = CACHE / f"kodak_taef2_latents_{SYMBOLS_TAG}.npz"
    if path.exists():
        with np.load(path) as stored:
            count = len(stored.files) // 2
            return [(stored[f"latent_{k}"], tuple(int(m) for m in stored[f"mult_{k}"])) for k in range(count)]
    import torch

    from sdcodec.codec import autoencoders as models
    from sdcodec.codec.images import image_io
    from sdcodec.codec.rate_distortion import channel_weighting, model_metric

    autoencoder = models.load_autoencoder(f"taef2:{SHARED / 'weights' / 'taef2'}", device="cpu")
    multipliers = channel_weighting.step_multipliers(np.diag(model_metric.model_metric(autoencoder)))
    out = []
    for image in sorted((SHARED / "datasets" / "kodak").glob("kodim*.png")):
        pixels = image_io.pad_to_multiple(image_io.to_tensor(image_io.load_image(image).rgb))
        with torch.inference_mode():
            latent = autoencoder.encode(pixels)[0]
        out.append((latent.float().numpy(), multipliers))
    CACHE.mkdir(parents=True, exist_ok=True)
    arrays = {f"latent_{k}": lat for k, (lat, _) in enumerate(out)}
    arrays.update({f"mult_{k}": np.array(m, dtype=np.int64) for k, (_, m) in enumerate(out)})
    np.savez(path, **arrays)
    return out


def kodak_symbols(step: float) -> list[np.ndarray]:
    """The quantized symbols (C, h, w) int64 of every Kodak image at base step ``step`` (cached)."""
    path = CACHE / f"kodak_taef2_symbols_{SYMBOLS_TAG}_step{step:g}.npz"
    if path.exists():
        with np.load(path) as stored:
            return [stored[f"q_{k}"] for k in range(len(stored.files))]
    symbols = []
    for latent, multipliers in kodak_latents_and_multipliers():
        steps = channel_steps(step, multipliers, latent.shape[0])
        symbols.append(quantize(latent.astype(np.float64), steps))
    np.savez(path, **{f"q_{k}": q for k, q in enumerate(symbols)})
    return symbols


# --- baselines (sizes in bytes; cached because JPEG XL e9 is slow) -----------------------


def _as_image(q: np.ndarray) -> np.ndarray:
    """Symbols offset to start at 0, as uint8 when they fit, else uint16 (lossless image coders)."""
    shifted = q - q.min()
    return shifted.astype(np.uint8 if shifted.max() < 256 else np.uint16)


def _stacked(q: np.ndarray) -> np.ndarray:
    return _as_image(q.reshape(-1, q.shape[2]))


def baseline_bytes(q: np.ndarray) -> dict[str, float]:
    import imagecodecs

    c, h, w = q.shape
    raw = np.clip(q, -(1 << 15), (1 << 15) - 1).astype(np.int16).tobytes()
    sizes = {
        "H0": static_histogram_bits(q) / 8,
        "xz": len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)),
        "zstd": len(imagecodecs.zstd_encode(raw, level=19)),
        "png": len(imagecodecs.png_encode(_stacked(q), level=9)),
        "jxl_stacked": len(imagecodecs.jpegxl_encode(_stacked(q), lossless=True, effort=9)),
        # Each plane its own image: the header of each counts, as it would in a real file.
        "jxl_planes": sum(len(imagecodecs.jpegxl_encode(_as_image(p), lossless=True, effort=9)) for p in q),
    }
    return sizes


def cached_baselines(step: float, symbols: list[np.ndarray]) -> list[dict[str, float]]:
    path = CACHE / f"kodak_taef2_baselines_{SYMBOLS_TAG}_step{step:g}.json"
    stored = json.loads(path.read_text()) if path.exists() else []
    for q in symbols[len(stored) :]:
        stored.append(baseline_bytes(q))
        path.write_text(json.dumps(stored))
    return stored[: len(symbols)]


# --- the entropy models ------------------------------------------------------------------


def model_run(model: int, symbols: list[np.ndarray]) -> tuple[float, float, float]:
    """(payload bytes, encode seconds, decode seconds) over all images; checks every round trip."""
    total = encode_s = decode_s = 0.0
    symbol_coder.decode_symbols(*_warm(model), model)  # compile outside the timing
    for q in symbols:
        start = time.perf_counter()
        payload, _ = symbol_coder.encode_symbols(q, model)
        encode_s += time.perf_counter() - start
        start = time.perf_counter()
        back = symbol_coder.decode_symbols(payload, q.shape, model)
        decode_s += time.perf_counter() - start
        if not np.array_equal(back, q):
            raise AssertionError(f"model {model} does not round-trip")
        total += len(payload)
    return total, encode_s, decode_s


def _warm(model: int) -> tuple[bytes, tuple[int, int, int]]:
    q = np.arange(2 * 5 * 7).reshape(2, 5, 7) % 5 - 2
    return symbol_coder.encode_symbols(q, model)[0], q.shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="how many Kodak images (default all 24)")
    parser.add_argument("--steps", type=float, nargs="+", default=STEPS, help="base quantization steps")
    parser.add_argument("--models", type=int, nargs="+", default=list(symbol_coder.ENTROPY_MODELS))
    parser.add_argument("--no-baselines", action="store_true", help="only the entropy models")
    args = parser.parse_args()
    columns = [f"model {m}" for m in args.models]
    if not args.no_baselines:
        columns += ["static H0", "xz -9e", "zstd -19", "JXL e9 stacked", "JXL e9 per plane", "PNG"]
    print(f"bits/value, {args.images} Kodak images, TAEF2 symbols (load average {os.getloadavg()[0]:.1f})")
    print("| step | " + " | ".join(columns) + " | " + " | ".join(f"m{m}/m1" for m in args.models[1:]) + " |")
    print("| ---: " * (1 + len(columns) + len(args.models) - 1) + "|")
    speeds = {m: [0.0, 0.0, 0.0] for m in args.models}
    for step in args.steps:
        symbols = kodak_symbols(step)[: args.images]
        values = sum(q.size for q in symbols)
        row = []
        for m in args.models:
            size, enc, dec = model_run(m, symbols)
            row.append(8 * size / values)
            speeds[m][0] += values
            speeds[m][1] += enc
            speeds[m][2] += dec
        ratios = [f"{r / row[0]:.3f}" for r in row[1:]]
        if not args.no_baselines:
            base = cached_baselines(step, symbols)
            for key in ("H0", "xz", "zstd", "jxl_stacked", "jxl_planes", "png"):
                row.append(8 * sum(b[key] for b in base) / values)
        print(f"| {step:g} | " + " | ".join(f"{v:.4f}" for v in row) + " | " + " | ".join(ratios) + " |", flush=True)
    print("| model | encode Msymbols/s | decode Msymbols/s | decode ms per Kodak latent |")
    print("| --- | ---: | ---: | ---: |")
    for m, (n, enc, dec) in speeds.items():
        per_image = 1000 * dec / (len(args.steps) * args.images)
        print(f"| {m} | {n / enc / 1e6:.2f} | {n / dec / 1e6:.2f} | {per_image:.1f} |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
