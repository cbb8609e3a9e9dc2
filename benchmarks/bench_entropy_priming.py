"""How much model 2 loses by learning its state from scratch in every file (issue 15's priming bound).

    python -m sdcodec.benchmarks.bench_entropy_priming [--steps 0.5 1] [--pairs 6]

Model 2's counters, mixer and LMS weights start from fixed values in every payload. A format could
instead start them from a state trained on other images (a new model id with trained tables). This
bounds what that would win: Kodak image B coded right after image A in one payload (their symbols
stacked along the height, so B's channels find the state A's left) against B coded alone, for the
pairs (kodim01, kodim02), (kodim03, kodim04), ... of bench_entropy_models' symbols. A state trained
on many images would be more general than one image's, and less fitted to B than A's (same camera
set, same autoencoder, same step): the ratio is an optimistic bound.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from sdcodec.benchmarks.bench_entropy_models import kodak_symbols
from sdcodec.codec.coding import cm_coder


def primed_ratio(first: np.ndarray, second: np.ndarray) -> tuple[int, int]:
    """Bytes of ``second`` coded after ``first`` in one payload, and coded alone."""
    alone_first = len(cm_coder.encode_symbols(first)[0])
    alone_second = len(cm_coder.encode_symbols(second)[0])
    together = len(cm_coder.encode_symbols(np.concatenate([first, second], axis=1))[0])
    return together - alone_first, alone_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--pairs", type=int, default=6, help="pairs of consecutive Kodak images of the same shape")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| step | pair | B after A, bytes | B alone, bytes | ratio |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for step in args.steps:
        symbols = kodak_symbols(step)
        pairs = [(k, k + 1) for k in range(0, len(symbols) - 1, 2) if symbols[k].shape == symbols[k + 1].shape]
        primed_total = alone_total = 0
        for a, b in pairs[: args.pairs]:
            primed, alone = primed_ratio(symbols[a], symbols[b])
            primed_total, alone_total = primed_total + primed, alone_total + alone
            print(f"| {step:g} | kodim{a + 1:02d}, kodim{b + 1:02d} | {primed} | {alone} | {primed / alone:.4f} |")
        print(f"| {step:g} | all | {primed_total} | {alone_total} | **{primed_total / alone_total:.4f}** |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
