"""Files built by an attacker: checksums intact, so every defect must be caught past the container."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from sdcodec import bitstream
from sdcodec.bitstream.varint import Reader
from sdcodec.codec.coding import latent_coder


def with_header(data: bytes, **changes) -> bytes:
    """The same file with header fields replaced and the CRC recomputed (as an attacker would)."""
    return bitstream.write_sdz(dataclasses.replace(bitstream.read_sdz(data), **changes))


def with_payload(data: bytes, payload: bytes) -> bytes:
    return with_header(data, payload=payload)


@pytest.fixture(scope="module")
def tiny_file() -> bytes:
    return latent_coder.encode_latent(np.zeros((1, 1, 1)), step=1.0)


def test_declared_latent_above_the_ceiling_is_refused_before_any_allocation(tiny_file):
    bomb = with_header(tiny_file, latent_shape=(1, 8192, 16384), width=1 << 17, height=1 << 16)
    assert len(bomb) < 80
    tracemalloc.start()
    try:
        with pytest.raises(bitstream.TooLargeError, match="ceiling"):
            latent_coder.decode_latent(bomb)
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


def test_ceiling_counts_latent_values_as_well_as_pixels(tiny_file):
    # 1024 channels of a small image: few pixels, too many latent values.
    bomb = with_header(tiny_file, latent_shape=(1024, 256, 256), width=2048, height=2048)
    with pytest.raises(bitstream.TooLargeError, match="latent"):
        latent_coder.decode_latent(bomb)


def test_ceiling_can_be_lowered_and_raised(tiny_file):
    data = latent_coder.encode_latent(np.ones((4, 16, 16)), step=0.5)  # a 128x128 raw latent
    with pytest.raises(bitstream.TooLargeError):
        latent_coder.decode_latent(data, max_pixels=128 * 128 - 1)
    assert latent_coder.decode_latent(data, max_pixels=128 * 128).shape == (4, 16, 16)
    wide = with_header(tiny_file, latent_shape=(1, 9, 1 << 20), width=1 << 20, height=72)
    with pytest.raises(bitstream.TooLargeError):
        latent_coder.decode_latent(wide)
    with pytest.raises(bitstream.PayloadError):  # admitted by a raised ceiling, then the payload is too short
        latent_coder.decode_latent(wide, max_pixels=1 << 27)


@pytest.mark.parametrize("shape", [(1, 1, 1 << 17), (2, 1 << 16, 1), (1, 3, 40000)])
def test_degenerate_shapes_round_trip(shape):
    """One position per wavefront: the worst case of the old per-front loop (minutes for 2**20)."""
    rng = np.random.default_rng(sum(shape))
    latent = np.cumsum(rng.normal(size=shape), axis=2 if shape[2] > 1 else 1)
    data = latent_coder.encode_latent(latent, step=0.5, width=min(8 * shape[2], 1 << 20), height=8 * shape[1])
    q, _ = latent_coder.read_symbols(data)
    np.testing.assert_array_equal(q, latent_coder.quantize(latent, 0.5))


def test_tiny_file_declaring_a_large_shape_fails_fast_with_a_payload_error(tiny_file):
    bomb = with_header(tiny_file, latent_shape=(1, 1, 1 << 20), width=1 << 20, height=8)
    with pytest.raises(bitstream.PayloadError):
        latent_coder.decode_latent(bomb)


def test_payload_ending_in_a_zero_word_is_a_payload_error():
    data = latent_coder.encode_latent(np.random.default_rng(1).normal(size=(2, 6, 6)), step=0.5)
    payload = bitstream.read_sdz(data).payload
    with pytest.raises(bitstream.PayloadError, match="zero word"):
        latent_coder.decode_latent(with_payload(data, payload[:-4] + bytes(4)))


def test_coded_data_left_over_is_a_payload_error():
    """A header declaring fewer positions than were coded leaves ANS state unread: not a valid file."""
    data = latent_coder.encode_latent(np.random.default_rng(2).normal(size=(2, 6, 6)), step=0.5)
    with pytest.raises(bitstream.PayloadError, match="left over"):
        latent_coder.decode_latent(with_header(data, latent_shape=(2, 1, 1), width=8, height=8))


def test_a_word_slipped_into_the_coded_part_is_a_payload_error():
    data = latent_coder.encode_latent(np.random.default_rng(2).normal(size=(2, 6, 6)), step=0.5)
    payload = bitstream.read_sdz(data).payload
    reader = Reader(payload)
    for _ in range(2):  # side information, then the escape stream: length-prefixed sections
        reader.take(reader.uvarint("section length"), "section")
    padded = payload[: reader.pos] + b"\x07\x00\x00\x00" + payload[reader.pos :]
    with pytest.raises(bitstream.PayloadError):
        latent_coder.decode_latent(with_payload(data, padded))


def test_failed_decode_keeps_no_memory(tiny_file):
    """Nothing (no cache of positions or tables) outlives a call, failed or not."""
    bomb = with_header(tiny_file, latent_shape=(1, 1024, 1024), width=8192, height=8192)
    with pytest.raises(bitstream.PayloadError):
        latent_coder.decode_latent(bomb)  # warm-up: numba's compiled code is loaded once
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            with pytest.raises(bitstream.PayloadError):
                latent_coder.decode_latent(bomb)
        assert tracemalloc.get_traced_memory()[0] - before < 1 << 16
    finally:
        tracemalloc.stop()
