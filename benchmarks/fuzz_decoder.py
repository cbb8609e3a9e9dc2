"""Mutational fuzzing of the .sdz decoder, with the CRC recomputed so mutants reach the entropy decoder.

    python -m benchmarks.fuzz_decoder --mutants 1000000 --jobs 2 [--seed 0] [--out fuzz-out/]

A seed corpus of small valid files (every latent space, caption, alpha plane, per-channel steps,
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
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x3F, 0x40, 0xFE)
INTERESTING_VALUES = (
    0,
    1,
    2,
    7,
    8,
    15,
    16,
    31,
    32,
    127,
    128,
    255,
    256,
    1023,
    1024,
    4095,
    65535,
    65536,
    1 << 20,
    (1 << 20) + 1,
    1 << 26,
    1 << 27,
    (1 << 31) - 1,
    1 << 32,
    1 << 40,
    (1 << 63) - 1,
)


# --- the seed corpus --------------------------------------------------------------------


def seed_corpus() -> dict[str, bytes]:
    """Small valid files covering every header feature and the decoder's special cases."""
    from sdcodec import bitstream
    from sdcodec.codec.coding import latent_coder
    from sdcodec.codec.images import alpha_plane

    rng = np.random.default_rng(0)
    seeds = {}
    seeds["raw"] = latent_coder.encode_latent(rng.normal(size=(4, 8, 8)), step=0.5)
    wide = rng.laplace(scale=30.0, size=(2, 10, 10))
    wide[0, 2, 3], wide[1, 9, 9] = 5000.0, -40000.0
    seeds["escapes"] = latent_coder.encode_latent(wide, step=0.25)
    seeds["channel-steps-caption"] = latent_coder.encode_latent(
        rng.normal(size=(4, 6, 9)), step=0.6, channel_steps=(16, 8, 40, 255), caption="fuzz me", restore_steps=2
    )
    alpha = alpha_plane.encode_alpha((np.arange(48 * 40).reshape(40, 48) % 251).astype(np.uint8))
    seeds["sd1-alpha"] = latent_coder.encode_latent(
        rng.normal(size=(4, 5, 6)), step=0.4, latent_space="sd1", width=48, height=40, alpha=alpha
    )
    bilevel = alpha_plane.encode_alpha(np.where(np.arange(64 * 64).reshape(64, 64) % 7 == 0, 0, 255).astype(np.uint8))
    seeds["flux2-bilevel-alpha"] = latent_coder.encode_latent(
        rng.normal(size=(32, 8, 8)), step=0.8, latent_space="flux2", width=64, height=64, alpha=bilevel
    )
    seeds["sd3"] = latent_coder.encode_latent(
        rng.normal(size=(16, 4, 4)), step=0.3, latent_space="sd3", width=32, height=32
    )
    seeds["row"] = latent_coder.encode_latent(np.cumsum(rng.normal(size=(1, 1, 64)), axis=2), step=0.5)
    seeds["zeros"] = latent_coder.encode_latent(np.zeros((2, 12, 12)), step=1.0)
    # The metadata section (zlib-compressed ICC profile header and EXIF TIFF stream); no rng draw.
    icc = (132).to_bytes(4, "big") + bytes(32) + b"acsp" + bytes(92)
    exif = b"II*\x00\x08\x00\x00\x00\x00\x00" + b"sdcodec" * 4
    section = bitstream.pack_metadata(bitstream.ImageMetadata(icc_profile=icc, exif=exif))
    seeds["metadata"] = latent_coder.encode_latent(np.zeros((1, 4, 4)), step=1.0, metadata=section)
    # Entropy model 2 (adaptive context mixing): its header (channel order, references), escapes,
    # many channels, and the one-position-wide shapes.
    smooth = np.cumsum(np.cumsum(rng.normal(size=(6, 10, 12)), axis=1), axis=2) / 3
    seeds["m2-raw"] = latent_coder.encode_latent(smooth, step=0.5, entropy_model=2)
    seeds["m2-escapes"] = latent_coder.encode_latent(wide, step=0.25, entropy_model=2)
    seeds["m2-flux2"] = latent_coder.encode_latent(
        rng.normal(size=(32, 6, 6)),
        step=0.7,
        latent_space="flux2",
        width=48,
        height=48,
        channel_steps=tuple(range(8, 40)),
        entropy_model=2,
    )
    seeds["m2-row"] = latent_coder.encode_latent(
        np.cumsum(rng.normal(size=(2, 1, 64)), axis=2), step=0.5, entropy_model=2
    )
    seeds["m2-column"] = latent_coder.encode_latent(rng.normal(size=(1, 40, 1)), step=0.3, entropy_model=2)
    return seeds


# --- mutations --------------------------------------------------------------------------


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def mutate(body: bytearray, rng: random.Random, others: list[bytes], payload_start: int = 0) -> None:
    """One random mutation of ``body`` in place (the file without its CRC).

    With ``payload_start`` > 0, only bits and bytes of the payload change (same length), so the
    mutant keeps a valid header and reaches the entropy decoder.
    """
    n = len(body)
    kind = rng.randrange(3) if 0 < payload_start < n else rng.randrange(9)
    position = rng.randrange(payload_start, n) if 0 < payload_start < n else (rng.randrange(n) if n else 0)
    if kind == 0 and n:  # flip one bit
        body[position] ^= 1 << rng.randrange(8)
    elif kind == 1 and n:  # an interesting byte
        body[position] = rng.choice(INTERESTING_BYTES)
    elif kind == 2 and n:  # a random byte
        body[position] = rng.randrange(256)
    elif kind == 3:  # a varint of an interesting value over a header field (the first ~40 bytes)
        where = rng.randrange(min(n, 40)) if n else 0
        value = rng.choice(INTERESTING_VALUES) + rng.choice((-1, 0, 0, 1))
        old_length = 1
        while where + old_length - 1 < n and body[where + old_length - 1] & 0x80:
            old_length += 1
        body[where : where + old_length] = _uvarint(max(0, value))
    elif kind == 4:  # insert random bytes
        body[position:position] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    elif kind == 5 and n:  # delete a run
        del body[position : position + rng.randrange(1, 9)]
    elif kind == 6 and n:  # duplicate a chunk
        chunk = body[position : position + rng.randrange(1, 33)]
        body[position:position] = chunk
    elif kind == 7 and others:  # splice the tail of another seed
        other = rng.choice(others)[:-4]
        body[position:] = other[rng.randrange(len(other)) :]
    elif n:  # truncate
        del body[rng.randrange(n) :]


def payload_start(data: bytes) -> int:
    """Offset of a valid file's payload (the entropy-coded part and its side information)."""
    from sdcodec import bitstream

    return len(data) - 4 - len(bitstream.read_sdz(data).payload)


def make_mutant(seed_file: bytes, rng: random.Random, others: list[bytes], crc_fraction: float) -> tuple[bytes, bool]:
    """A mutant of a seed and whether its CRC was recomputed."""
    recompute = rng.random() < crc_fraction
    body = bytearray(seed_file[:-4] if recompute else seed_file)
    start = payload_start(seed_file) if rng.random() < 0.5 else 0  # half the mutants: payload only
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        mutate(body, rng, others, start)
    if recompute:
        body += zlib.crc32(body).to_bytes(4, "big")
    return bytes(body), recompute


# --- the target -------------------------------------------------------------------------


def decode_without_model(data: bytes) -> None:
    """Everything ``sdcodec decode`` does with a file before loading a model."""
    from sdcodec.codec import image_codec

    image_codec.unpack_file(data)


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
