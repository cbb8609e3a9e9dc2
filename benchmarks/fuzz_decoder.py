"""Mutational fuzzing of the .sdz decoder, with the CRC recomputed so mutants reach the entropy decoder.

    python -m benchmarks.fuzz_decoder --mutants 1000000 --jobs 2 [--seed 0] [--out fuzz-out/]

A seed corpus of small valid files (benchmarks/fuzz_corpus.py: every latent space, caption, alpha plane, per-channel steps,
escapes, degenerate shapes) is generated in-process, never committed. Each mutant applies one to
four mutations (bit flips, interesting bytes, varint rewrites of header fields, inserts, deletes,
splices, truncation; for half of the mutants only bits and bytes of the payload); for most of them (``--crc-fraction``, default 0.9) the checksum is then
recomputed, so the mutant passes the container and exercises the payload decoder.

Each worker process runs under an address-space limit (``--memory-mb``) and decodes every mutant
the way ``sdcodec decode`` does before any model work: ``read_symbols`` under the default ceiling,
``dequantize``, and the alpha plane. It records the exception class of each failure and the
time of each input. A failure is:

* an exception that is not a ``BitstreamError`` or ``SdcodecError`` (saved to ``--out``);
* an input that takes over ``--slow-seconds`` (default 1 s) beyond the decode time of its seed;
* a worker's peak RSS above 1 GB (reported).

The harness exits 1 when any failure occurred. ``run_fuzz`` is the same loop in-process, for the
bounded smoke run in the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import multiprocessing
import os
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from sdcodec.benchmarks.fuzz_corpus import make_mutant, seed_corpus

# --- the target -------------------------------------------------------------------------


def decode_without_model(data: bytes) -> None:
    """Everything ``sdcodec decode`` does with a file before loading a model."""
    from sdcodec.codec import image_decoding

    image_decoding.unpack_file(data)


def _expected_errors() -> tuple[type, ...]:
    from sdcodec.bitstream import BitstreamError
    from sdcodec.codec.errors import SdcodecError

    return BitstreamError, SdcodecError


@dataclasses.dataclass
class FuzzStats:
    mutants: int = 0
    crc_recomputed: int = 0
    outcomes: Counter = dataclasses.field(default_factory=Counter)  # "ok" or the exception class name
    unexpected: list = dataclasses.field(default_factory=list)  # (class, message, sha256)
    slow: list = dataclasses.field(default_factory=list)  # (seconds over, seed, sha256)
    slowest_over_seed: float = 0.0
    peak_rss_mb: float = 0.0

    def merge(self, other: FuzzStats) -> None:
        self.mutants += other.mutants
        self.crc_recomputed += other.crc_recomputed
        self.outcomes.update(other.outcomes)
        self.unexpected += other.unexpected
        self.slow += other.slow
        self.slowest_over_seed = max(self.slowest_over_seed, other.slowest_over_seed)
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)


def _seed_times(seeds: dict[str, bytes]) -> dict[str, float]:
    """The decode time of each valid seed (the best of five), the baseline a mutant is measured against."""
    times = {}
    for name, data in seeds.items():
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            decode_without_model(data)
            best = min(best, time.perf_counter() - start)
        times[name] = best
    return times


def run_fuzz(
    mutants: int,
    *,
    seed: int = 0,
    crc_fraction: float = 0.9,
    slow_seconds: float = 1.0,
    out: Path | None = None,
    deadline: float | None = None,
) -> FuzzStats:
    """Fuzz ``mutants`` inputs in this process (stops early at ``deadline``, a perf_counter time)."""
    expected = _expected_errors()
    seeds = seed_corpus()
    names = sorted(seeds)
    baseline = _seed_times(seeds)
    others = list(seeds.values())
    rng = random.Random(seed)
    stats = FuzzStats()
    for _ in range(mutants):
        if deadline is not None and time.perf_counter() > deadline:
            break
        name = rng.choice(names)
        data, recomputed = make_mutant(seeds[name], rng, others, crc_fraction)
        stats.mutants += 1
        stats.crc_recomputed += recomputed
        start = time.perf_counter()
        try:
            decode_without_model(data)
            outcome = "ok"
        except expected as exc:
            outcome = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - this is what the fuzzer looks for
            outcome = f"UNEXPECTED {type(exc).__name__}"
            digest = _save(out, data)
            stats.unexpected.append((type(exc).__name__, str(exc)[:200], digest))
        over = time.perf_counter() - start - baseline[name]
        stats.slowest_over_seed = max(stats.slowest_over_seed, over)
        if over > slow_seconds:
            stats.slow.append((round(over, 3), name, _save(out, data)))
        stats.outcomes[outcome] += 1
    stats.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return stats


def _save(out: Path | None, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()[:16]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{digest}.sdz").write_bytes(data)
    return digest


def _worker(job: tuple[int, int, float, float, str | None, int]) -> FuzzStats:
    mutants, seed, crc_fraction, slow_seconds, out, memory_mb = job
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return run_fuzz(
        mutants, seed=seed, crc_fraction=crc_fraction, slow_seconds=slow_seconds, out=Path(out) if out else None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk", type=int, default=25_000, help="mutants per worker task (one RNG seed each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crc-fraction", type=float, default=0.9)
    parser.add_argument("--slow-seconds", type=float, default=1.0)
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space limit of each worker")
    parser.add_argument("--out", type=Path, default=Path("fuzz-out"), help="where failing inputs are saved")
    args = parser.parse_args(argv)

    chunks = [min(args.chunk, args.mutants - start) for start in range(0, args.mutants, args.chunk)]
    jobs = [
        (n, args.seed * 1_000_003 + i, args.crc_fraction, args.slow_seconds, str(args.out), args.memory_mb)
        for i, n in enumerate(chunks)
    ]
    stats = FuzzStats()
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=4) as pool:
        for done, part in enumerate(pool.imap_unordered(_worker, jobs), 1):
            stats.merge(part)
            print(
                f"[{done}/{len(jobs)}] {stats.mutants} mutants, {len(stats.unexpected)} unexpected, "
                f"{len(stats.slow)} slow, {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    seconds = time.perf_counter() - start
    print(
        f"mutants: {stats.mutants} ({stats.crc_recomputed} with the CRC recomputed) in {seconds:.0f} s, "
        f"{stats.mutants / seconds:.0f}/s with {args.jobs} workers"
    )
    for outcome, count in stats.outcomes.most_common():
        print(f"  {outcome:32s} {count}")
    print(f"unexpected exceptions: {len(stats.unexpected)}")
    for name, message, digest in stats.unexpected[:20]:
        print(f"  {name}: {message} ({args.out / digest}.sdz)")
    print(
        f"inputs over {args.slow_seconds:g} s beyond their seed's decode time: {len(stats.slow)}; "
        f"slowest: {stats.slowest_over_seed:.3f} s over its seed"
    )
    print(f"peak RSS of a worker: {stats.peak_rss_mb:.0f} MB")
    return 1 if stats.unexpected or stats.slow or stats.peak_rss_mb > 1024 else 0


if __name__ == "__main__":
    sys.exit(main())
