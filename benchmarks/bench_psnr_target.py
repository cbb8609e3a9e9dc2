"""What ``--psnr DB`` writes: bytes, the PSNR reached and the seconds, on Kodak with TAEF2.

    python -m sdcodec.benchmarks.bench_psnr_target [--images 4] [--targets 25,27] [--effort 1] [--code DIR]

For each image and target, ``encode_image(psnr=target)`` is timed (after a warm-up encode that
loads the model), its file decoded and measured, each in a process of its own. With ``--code DIR``
(a checkout of another version, e.g. a worktree of the previous main) the same encodes run through
that version's API too, alternating with this one's, so the two are measured side by side under the
same load; the last lines give the size and time ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sdcodec.benchmarks.bench_encoder import SHARED, load_api
from sdcodec.benchmarks.metrics import psnr

KODAK = SHARED / "datasets" / "kodak"
SPEC = f"taef2:{SHARED / 'weights' / 'taef2'}"


def measure(api, path: Path, target: float, effort: int) -> dict:
    """One ``--psnr`` encode: its bytes, the PSNR of its decoded image, and the encode seconds."""
    reference = np.asarray(Image.open(path).convert("RGB"))
    warm_up = api.encode_image(Image.fromarray(reference[:64, :64]), model=SPEC, quality=50, device="cpu")
    api.decode_image(warm_up, model=SPEC, device="cpu")  # the model and the compiled coders are loaded
    start = time.perf_counter()
    data = api.encode_image(str(path), model=SPEC, psnr=target, effort=effort, device="cpu")
    seconds = time.perf_counter() - start
    decoded = np.asarray(api.decode_image(data, model=SPEC, device="cpu").convert("RGB"))
    return {"bytes": len(data), "psnr": psnr(reference, decoded), "seconds": seconds}


def measure_in_process(path: Path, target: float, effort: int, code: Path | None) -> dict:
    command = [sys.executable, "-m", "sdcodec.benchmarks.bench_psnr_target", "--one", str(path), str(target)]
    command += ["--effort", str(effort)] + (["--code", str(code)] if code else [])
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="the first N Kodak images")
    parser.add_argument("--targets", default="25,27", help="comma-separated PSNR targets in dB")
    parser.add_argument("--effort", type=int, default=1)
    parser.add_argument("--code", type=Path, help="also run this checkout's API, side by side")
    parser.add_argument("--one", nargs=2, metavar=("IMAGE", "TARGET"), help=argparse.SUPPRESS)  # a worker process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(load_api(args.code), Path(args.one[0]), float(args.one[1]), args.effort)))
        return
    targets = [float(t) for t in args.targets.split(",")]
    versions = {"other": args.code, "this": None} if args.code else {"this": None}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    totals = {name: {"bytes": 0, "seconds": 0.0} for name in versions}
    print("| image | target dB | version | bytes | PSNR dB | encode s |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for path in sorted(KODAK.glob("*.png"))[: args.images]:
        for target in targets:
            for name, code in versions.items():
                row = measure_in_process(path, target, args.effort, code)
                totals[name]["bytes"] += row["bytes"]
                totals[name]["seconds"] += row["seconds"]
                print(
                    f"| {path.stem} | {target:g} | {name} | {row['bytes']} | {row['psnr']:.2f} | {row['seconds']:.1f} |"
                )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for name, total in totals.items():
        print(f"{name}: {total['bytes']} bytes, {total['seconds']:.1f} s in all")
    if "other" in totals:
        this, other = totals["this"], totals["other"]
        print(
            f"this / other: bytes {this['bytes'] / other['bytes']:.4f}, time {this['seconds'] / other['seconds']:.2f}x"
        )


if __name__ == "__main__":
    main()
