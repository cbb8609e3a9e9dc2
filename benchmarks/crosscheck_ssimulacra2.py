"""Cross-check the `ssimulacra2` Python package against libjxl's reference `ssimulacra2` tool.

    python -m sdcodec.benchmarks.crosscheck_ssimulacra2 [--images 4] [--qualities 10,50,90]

Encodes the first Kodak images as JPEG at a few qualities and prints both scores and their
difference per pair, then the mean and largest absolute difference. The reference tool is the one
the bench would use ($SDCODEC_SSIMULACRA2 or `ssimulacra2` on PATH); without it this says so.
"""

from __future__ import annotations

import argparse
import io
import sys

import numpy as np
from PIL import Image

from sdcodec.benchmarks.measurement import default_image_dir, list_images
from sdcodec.benchmarks.perceptual import SSIMULACRA2_ENV, Ssimulacra2Port, Ssimulacra2Tool, find_tool


def jpeg_round_trip(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--qualities", default="10,50,90")
    parser.add_argument("--image-dir", default=None)
    options = parser.parse_args()
    executable = find_tool(SSIMULACRA2_ENV, "ssimulacra2")
    if executable is None:
        print(f"libjxl's ssimulacra2 tool not found (set ${SSIMULACRA2_ENV}); nothing to cross-check against")
        return 1
    tool, port = Ssimulacra2Tool(executable), Ssimulacra2Port()
    print(f"reference: {tool.implementation}\nport: {port.implementation}\n")
    print("| image | JPEG quality | reference | port | port - reference |\n| --- | ---: | ---: | ---: | ---: |")
    differences = []
    for path in list_images(options.image_dir or default_image_dir())[: options.images]:
        reference = np.asarray(Image.open(path).convert("RGB"))
        for quality in map(int, options.qualities.split(",")):
            distorted = jpeg_round_trip(reference, quality)
            expected, got = tool(reference, distorted), port(reference, distorted)
            differences.append(got - expected)
            print(f"| {path.stem} | {quality} | {expected:.2f} | {got:.2f} | {got - expected:+.2f} |", flush=True)
    absolute = np.abs(differences)
    print(f"\nmean |difference| {absolute.mean():.2f}, largest {absolute.max():.2f} over {len(differences)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
