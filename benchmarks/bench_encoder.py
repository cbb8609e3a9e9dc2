"""BD-rate of an encoder setting against a baseline run, on Kodak with TAEF2.

    python -m sdcodec.benchmarks.bench_encoder --label new [--option effort=2] [--code DIR] [--images 24] [--first 0] [--shard 0/2] [--device cuda] [--qualities 20,30,40,50]
    python -m sdcodec.benchmarks.bench_encoder --compare baseline new

Each run encodes every image at four qualities (``--qualities``; before levels 2-4 took level 1's
size at a quality, a searching level needed lower settings to overlap level 1's curve) through the public API (``encode_image`` then
``decode_image``, exactly what ``sdcodec encode``/``decode`` do), records bpp, PSNR, MS-SSIM and
the encode seconds, and writes ``benchmarks/cache/encoder-<label>.json`` (resumable: images
already measured under the label, in any of its files, are skipped). ``--code DIR`` imports the API from another checkout, e.g. a git
worktree of the previous main, so "against the previous main" is measured by the same harness.
``--compare A B`` prints the BD-rate of B against A (per image, then the mean) for PSNR and
MS-SSIM, and the ratio of their encode times; with ``--qualities`` it takes only those points of
each run (e.g. runs of two versions whose qualities map to different rates).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
CACHE = Path(__file__).resolve().parent / "cache"
QUALITIES = (20, 30, 40, 50)


def _path(label: str, shard: str = "", first: int = 0) -> Path:
    part = (f".from{first}" if first else "") + (".shard" + shard.replace("/", "of") if shard else "")
    return CACHE / f"encoder-{label}{part}.json"


def _load(label: str) -> dict:
    """All images of a run, merged over its shards."""
    images = {}
    for path in sorted(CACHE.glob(f"encoder-{label}.json")) + sorted(CACHE.glob(f"encoder-{label}.*.json")):
        images.update(json.loads(path.read_text())["images"])
    return images


def _parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            options[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            options[key] = value
    return options


def load_api(code: Path | None):
    """The encode/decode API of this checkout, or of another one (e.g. the previous main) for side-by-side runs."""
    if code is None:
        import sdcodec

        return sdcodec
    code = code.resolve()
    if (code / "__init__.py").exists():  # the one-package layout: load that checkout as `sdcodec`
        spec = importlib.util.spec_from_file_location(
            "sdcodec", code / "__init__.py", submodule_search_locations=[str(code)]
        )
        module = importlib.util.module_from_spec(spec)
        for name in [name for name in sys.modules if name == "sdcodec" or name.startswith("sdcodec.codec")]:
            del sys.modules[name]
        sys.modules["sdcodec"] = module
        spec.loader.exec_module(module)
        return module
    sys.path.insert(0, str(code))  # the older layout: a top-level `codec` package
    import codec

    return codec


def measure_point(codec, image, reference: np.ndarray, spec: str, device: str, **options) -> dict:
    """Encode (timed) and decode one image (a path or a PIL image) through the API; its quality, bpp, PSNR, MS-SSIM and encode seconds."""
    from sdcodec.benchmarks.metrics import ms_ssim, psnr

    start = time.perf_counter()
    data = codec.encode_image(image if hasattr(image, "size") else str(image), model=spec, device=device, **options)
    seconds = time.perf_counter() - start
    decoded = np.asarray(codec.decode_image(data, model=spec, device=device).convert("RGB"))
    return {
        "quality": options.get("quality"),
        "bpp": 8 * len(data) / reference[..., 0].size,
        "psnr": psnr(reference, decoded),
        "ms_ssim": ms_ssim(reference, decoded)[0],
        "encode_s": seconds,
    }


def run(
    label: str,
    options: dict,
    images: int,
    code: Path | None,
    shard: str = "",
    first: int = 0,
    device: str = "cpu",
    qualities: tuple[int, ...] = QUALITIES,
) -> None:
    import torch
    from PIL import Image

    codec = load_api(code)

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    spec = f"taef2:{SHARED / 'weights' / 'taef2'}"
    path = _path(label, shard, first)
    results = json.loads(path.read_text()) if path.exists() else {"options": options, "code": str(code), "images": {}}
    results["device"] = device
    paths = sorted((SHARED / "datasets" / "kodak").glob("*.png"))[first:images]
    if shard:
        index, count = (int(v) for v in shard.split("/"))
        paths = paths[index::count]
    done = _load(label)  # also the images other shards or runs of this label already measured
    for image_path in paths:
        if image_path.stem in results["images"] or image_path.stem in done:
            continue
        reference = np.asarray(Image.open(image_path).convert("RGB"))
        points = []
        for quality in qualities:
            points.append(measure_point(codec, image_path, reference, spec, device, quality=quality, **options))
        results["images"][image_path.stem] = points
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1))
        best = points[-1]
        print(
            f"{label} {image_path.stem}: q{best['quality']} {best['bpp']:.3f} bpp {best['psnr']:.2f} dB "
            f"(load {os.getloadavg()[0]:.2f})",
            flush=True,
        )


def compare(anchor_label: str, test_label: str, qualities: tuple[int, ...] | None = None) -> None:
    from sdcodec.benchmarks.bdrate import bd_rate

    anchor, test = _load(anchor_label), _load(test_label)
    if qualities:
        anchor, test = (
            {name: [p for p in points if p["quality"] in qualities] for name, points in run.items()}
            for run in (anchor, test)
        )
    common = sorted(set(anchor) & set(test))
    qualities = {
        label: sorted({p["quality"] for n in common for p in run[n]})
        for label, run in (("anchor", anchor), ("test", test))
    }
    print(
        f"BD-rate of {test_label} against {anchor_label} on {len(common)} Kodak images "
        f"(TAEF2, qualities {qualities['anchor']} and {qualities['test']}):"
    )
    for metric in ("psnr", "ms_ssim"):
        values = []
        for name in common:
            a, t = anchor[name], test[name]
            value = bd_rate(
                [p["bpp"] for p in a], [p[metric] for p in a], [p["bpp"] for p in t], [p[metric] for p in t]
            )
            if value is not None:
                values.append(value)
        if not values:
            print(f"  {metric}: no image where both runs' curves overlap")
            continue
        print(
            f"  {metric}: mean {np.mean(values):+.2f}%  (median {np.median(values):+.2f}%, "
            f"range {min(values):+.1f}% .. {max(values):+.1f}%, {len(values)} images"
            + (f"; {len(common) - len(values)} without overlap left out)" if len(values) < len(common) else ")")
        )
    if not common:
        return
    ratio = [sum(p["encode_s"] for p in test[n]) / sum(p["encode_s"] for p in anchor[n]) for n in common]
    print(
        f"  encode time {test_label} / {anchor_label}: {np.mean(ratio):.2f}x (mean over images; runs may differ in load)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label")
    parser.add_argument("--option", action="append", default=[], help="encode_image keyword, e.g. effort=2")
    parser.add_argument(
        "--code", type=Path, help="import the API from this checkout instead (e.g. a worktree of the previous main)"
    )
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--first", type=int, default=0, help="skip the first N images (extend a run in parallel)")
    parser.add_argument("--shard", default="", help="I/N: this process takes every N-th image from the I-th")
    parser.add_argument(
        "--device", default="cpu", help="where encode and decode run (cpu, cuda); compare runs of one device"
    )
    parser.add_argument(
        "--qualities",
        help="comma-separated quality settings (default 20,30,40,50); with --compare, the points compared",
    )
    parser.add_argument("--compare", nargs=2, metavar=("ANCHOR", "TEST"))
    args = parser.parse_args()
    qualities = tuple(int(q) for q in args.qualities.split(",")) if args.qualities else None
    if args.compare:
        compare(*args.compare, qualities)
    else:
        qualities = qualities or QUALITIES
        options = _parse_options(args.option)
        run(args.label, options, args.images, args.code, args.shard, args.first, args.device, qualities)


if __name__ == "__main__":
    main()
