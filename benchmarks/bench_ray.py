"""Archive jobs on Ray Data against the single-process loop, and the sizing of a 10-million-image job.

    python -m sdcodec.benchmarks.bench_ray [--images 24] [--cpus 2] [--skip-run] [--skip-sizing]

Part 1 encodes the Kodak images with TAEF2 (CPU) twice, in one run: on a local Ray started with
``--cpus`` CPUs (``ray_jobs.run_job``: one actor per CPU, each with one torch thread, URIs through
the object store) and in one process looping over the same rows (``row_work.encode_row``, torch
with ``--cpus`` threads); both include loading the model and writing the files and manifest rows.
Then it reads the .sdz files back as latents through ``sdcodec.ray.read_sdz`` and through
``SdzLatentDataset``. Prints images/s side by side with the load average.

Part 2 is arithmetic for the README: the SD 1.x VAE's FLOPs at 512x512 counted by
``torch.utils.flop_counter`` on a model built from its config on the meta device (no weights),
the CPU time of level 1's quantizer and entropy coder on a 4x64x64 latent (the channel metric
they use is measured once per model, not per image), and from them the GPUs, CPUs, storage
traffic and object store a 10-million-image encode needs at ``--gpu-tflops`` x ``--utilization``.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
SD_VAE_CONFIG = dict(  # stabilityai/sd-vae-ft-mse's config.json (the SD 1.x VAE)
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512],
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
)


def load_average() -> str:
    return open("/proc/loadavg").read().split()[0]


def run_comparison(count: int, cpus: int) -> None:
    import torch

    import sdcodec.ray
    from sdcodec import SdzLatentDataset
    from sdcodec.codec.archive import inputs, ray_jobs
    from sdcodec.codec.archive.manifest import ManifestWriter
    from sdcodec.codec.archive.row_work import encode_row

    spec = f"taef2:{SHARED / 'weights' / 'taef2'}"
    paths = sorted((SHARED / "datasets" / "kodak").glob("*.png"))[:count]
    options = {"model": spec, "device": "cpu"}
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        print(f"load average before: {load_average()}")
        ray_jobs.start_ray(None, ray_jobs.DEFAULT_OBJECT_STORE_MB, num_cpus=cpus)
        rows = inputs.list_rows([str(p) for p in paths], str(work / "ray"), output_suffix=".sdz", input_suffixes=())
        start = time.perf_counter()
        summary = ray_jobs.run_job("encode", rows, options, str(work / "ray" / "manifest.parquet"), preload=spec)
        ray_seconds = time.perf_counter() - start
        assert summary.failed == 0 and summary.done == len(paths)

        torch.set_num_threads(cpus)
        rows = inputs.list_rows([str(p) for p in paths], str(work / "loop"), output_suffix=".sdz", input_suffixes=())
        start = time.perf_counter()
        with ManifestWriter(str(work / "loop" / "manifest.parquet")) as writer:
            for row in rows:
                writer.write([encode_row(row.input, row.output, options)])
        loop_seconds = time.perf_counter() - start
        assert writer.errors == 0

        start = time.perf_counter()
        ray_latents = sdcodec.ray.read_sdz(str(work / "ray")).take_all()
        read_ray = time.perf_counter() - start
        start = time.perf_counter()
        plain_latents = list(SdzLatentDataset(str(work / "loop")))
        read_plain = time.perf_counter() - start
        assert len(ray_latents) == len(plain_latents) == len(paths)
        print(f"load average after: {load_average()}")
        print(f"\n{len(paths)} Kodak images (768x512), TAEF2 on CPU, {cpus} CPUs")
        print("| pipeline | encode (s) | images/s | read latents (s) | latents/s |")
        print("| --- | ---: | ---: | ---: | ---: |")
        n = len(paths)
        print(
            f"| Ray Data, {cpus} actors | {ray_seconds:.1f} | {n / ray_seconds:.2f} | {read_ray:.2f} | {n / read_ray:.1f} |"
        )
        print(
            f"| one process | {loop_seconds:.1f} | {n / loop_seconds:.2f} | {read_plain:.2f} | {n / read_plain:.1f} |"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def vae_flops(side: int = 512) -> dict[str, float]:
    """FLOPs (multiply-adds count 2) of the SD 1.x VAE's encoder and decoder."""
    import torch
    from diffusers import AutoencoderKL
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        vae = AutoencoderKL(**SD_VAE_CONFIG)
    counts = {}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        latent = vae.encode(torch.empty(1, 3, side, side, device="meta")).latent_dist.mode()
    counts["encoder"] = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        vae.decode(latent)
    counts["decoder"] = counter.get_total_flops()
    return counts


def entropy_coder_seconds(repeats: int = 10) -> tuple[float, float, int]:
    """CPU seconds to quantize and entropy-code a 4x64x64 latent (a 512x512 SD image) as level 1 does, and
    to read it back, and its bytes. The channel metric is a stand-in (unit gains, no coupling): its
    values change which symbols move, not the work."""
    import numpy as np

    from sdcodec import read_latent
    from sdcodec.codec.image_codec import DEFAULT_ENTROPY_MODEL, DEFAULT_RDO_WEIGHT, encode_latent_image

    latent = np.random.default_rng(0).standard_normal((4, 64, 64)).astype(np.float32)
    level1 = dict(rdo_weight=DEFAULT_RDO_WEIGHT, channel_metric=np.eye(4), entropy_model=DEFAULT_ENTROPY_MODEL)
    fields = dict(latent_space="sd1", width=512, height=512, channel_steps=(16,) * 4, **level1)
    data = encode_latent_image(latent, **fields)
    read_latent(data)  # the first call loads the compiled decoder
    start = time.perf_counter()
    for _ in range(repeats):
        encode_latent_image(latent, **fields)
    encode = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for _ in range(repeats):
        read_latent(data)
    return encode, (time.perf_counter() - start) / repeats, len(data)


def sizing(images: float, gpu_tflops: float, utilization: float, input_kb: float) -> None:
    flops = vae_flops()
    code_s, read_s, sdz_bytes = entropy_coder_seconds()
    per_image = flops["encoder"]
    gpu_s = per_image / (gpu_tflops * 1e12 * utilization)
    print(f"\nSD 1.x VAE at 512x512 (FlopCounterMode, meta device), load average {load_average()}")
    for name, value in flops.items():
        print(f"  {name:8s} {value / 1e9:8.1f} GFLOP")
    print(f"  encode = encoder = {per_image / 1e9:.1f} GFLOP per image (the channel metric: once per model)")
    print(
        f"  level 1 quantizer + entropy coder (one CPU core): code {code_s * 1e3:.1f} ms, read back {read_s * 1e3:.1f} ms, {sdz_bytes} bytes"
    )
    gpu_hours = images * gpu_s / 3600
    per_gpu = 1 / gpu_s
    cpu_per_gpu = per_gpu * (code_s + 0.005)  # + about 5 ms to decode a 512x512 JPEG
    print(f"\n{images:.0f} images at {gpu_tflops:.0f} TFLOPS x {utilization:.0%} utilization:")
    print(f"  {gpu_s * 1e3:.2f} GPU-ms per image, {per_gpu:.0f} images/s per GPU, {gpu_hours:.0f} GPU-hours")
    cpu_s = code_s + 0.005
    print(f"  CPU cores per GPU to keep up (entropy coding + JPEG decode): {cpu_per_gpu:.1f}")
    print(
        f"  one actor per GPU: {1 / (gpu_s + cpu_s):.0f} images/s (the GPU waits for the coder); "
        f"--actors-per-gpu {math.ceil((gpu_s + cpu_s) / gpu_s)} keeps it busy"
    )
    print(
        f"  storage per GPU: read {per_gpu * input_kb / 1024:.1f} MB/s ({per_gpu:.0f} GET/s), "
        f"write {per_gpu * sdz_bytes / 1e6:.2f} MB/s; in total {images * input_kb / 1e9:.2f} TB read, "
        f"{images * sdz_bytes / 1e12:.3f} TB written"
    )
    print(f"  object store: rows of about 300 bytes ({images * 300 / 1e9:.1f} GB if all were in flight; blocks stream)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24, help="Kodak images to encode (default all 24)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray and threads of the loop")
    parser.add_argument("--skip-run", action="store_true", help="only the sizing arithmetic")
    parser.add_argument("--skip-sizing", action="store_true", help="only the Ray-against-loop run")
    parser.add_argument("--total", type=float, default=10e6, help="images in the sized job")
    parser.add_argument("--gpu-tflops", type=float, default=989.0, help="dense fp16/bf16 peak (H100 SXM: 989)")
    parser.add_argument("--utilization", type=float, default=0.3, help="fraction of the peak the VAE reaches")
    parser.add_argument("--input-kb", type=float, default=80.0, help="mean input file size (a 512x512 JPEG)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.skip_run:
        run_comparison(args.images, args.cpus)
    if not args.skip_sizing:
        sizing(args.total, args.gpu_tflops, args.utilization, args.input_kb)


if __name__ == "__main__":
    main()
