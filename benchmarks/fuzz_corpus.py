"""The decoder fuzzer's inputs: a seed corpus of small valid .sdz files (every latent space and
header feature, both entropy models) and the mutations applied to them (benchmarks/fuzz_decoder.py)."""

from __future__ import annotations

import random
import zlib

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
