"""The .sdz container: exact round trips, compact headers, and every defect caught by class."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdcodec import bitstream
from sdcodec.bitstream import (
    BadMagicError,
    BitstreamError,
    ChecksumError,
    FieldRangeError,
    SdzFile,
    TrailingBytesError,
    UnknownVersionError,
    read_sdz,
    write_sdz,
)


def sample_file(**changes) -> SdzFile:
    fields = dict(
        latent_space="sd1",
        width=512,
        height=512,
        latent_shape=(4, 64, 64),
        step_code=bitstream.step_to_code(0.75),
        recon_offset=9,
        entropy_model=1,
        payload=bytes(range(256)) * 12,
    )
    fields.update(changes)
    return SdzFile(**fields)


def test_round_trip_keeps_every_field():
    f = sample_file(
        caption="a red fox, 狐", restore_steps=2, restore_guidance_tenths=15, has_restore_hints=True, alpha=b"\x01\x02"
    )
    assert read_sdz(write_sdz(f)) == f


def test_header_of_512x512_without_caption_is_under_32_bytes():
    data = write_sdz(sample_file(has_restore_hints=True, restore_steps=2, channel_steps=(12, 20, 16, 25)))
    assert bitstream.header_size(data) < 32


def test_importing_bitstream_does_not_import_torch():
    code = "import sys, bitstream; bitstream.read_sdz; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_version_is_named():
    data = bytearray(write_sdz(sample_file()))
    data[3] = 7
    with pytest.raises(UnknownVersionError, match="version 7"):
        read_sdz(bytes(data))


def test_bad_magic():
    with pytest.raises(BadMagicError):
        read_sdz(b"PNG\x01" + bytes(40))


def test_trailing_bytes_are_reported_as_such():
    with pytest.raises(TrailingBytesError):
        read_sdz(write_sdz(sample_file()) + b"\x00")


def test_checksum_mismatch_in_payload():
    data = bytearray(write_sdz(sample_file()))
    data[len(data) // 2] ^= 0x10
    with pytest.raises(ChecksumError):
        read_sdz(bytes(data))


def test_latent_shape_must_match_image_size():
    with pytest.raises(FieldRangeError):
        write_sdz(sample_file(latent_shape=(4, 64, 65)))


def test_declared_length_beyond_file_is_truncation_not_allocation():
    # A caption length of 2**40 must be refused from the bytes that remain, not allocated.
    out = bytearray(b"SDZ\x01")
    for value in (1, 0, 8, 8, 4, 1, 1, 65536, 0, 1):
        bitstream.varint.write_uvarint(value, out)
    bitstream.varint.write_uvarint(1 << 40, out)
    with pytest.raises(BitstreamError):
        read_sdz(bytes(out))


def test_every_truncation_every_bit_flip_and_appended_bytes_raise_bitstream_error():
    data = write_sdz(sample_file(width=24, height=16, latent_shape=(4, 2, 3), payload=b"abcdefgh", caption="x"))
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            read_sdz(data[:n])
    for i in range(len(data)):
        for bit in range(8):
            corrupt = bytearray(data)
            corrupt[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                read_sdz(bytes(corrupt))
    for extra in (b"\x00", b"garbage", data):
        with pytest.raises(TrailingBytesError):
            read_sdz(data + extra)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.text(max_size=40),
    st.binary(max_size=300),
    st.integers(1, 1 << 30),
    st.integers(0, 31),
)
def test_property_round_trip(width, height, caption, payload, step_code, recon_offset):
    f = sample_file(
        width=width,
        height=height,
        latent_shape=(4, -(-height // 8), -(-width // 8)),
        caption=caption,
        payload=payload,
        step_code=step_code,
        recon_offset=recon_offset,
    )
    assert read_sdz(write_sdz(f)) == f


def test_channel_step_multipliers_round_trip_and_are_validated():
    f = sample_file(channel_steps=(16, 4, 64, 255))
    g = read_sdz(write_sdz(f))
    assert g.channel_steps == (16, 4, 64, 255)
    assert g.channel_quant_steps == pytest.approx((0.75, 0.1875, 3.0, 0.75 * 255 / 16))
    with pytest.raises(FieldRangeError):
        write_sdz(sample_file(channel_steps=(16, 16)))
    with pytest.raises(FieldRangeError):
        write_sdz(sample_file(channel_steps=(16, 0, 16, 16)))


def test_gray_flag_round_trips_and_older_files_read_as_colour():
    from sdcodec.bitstream.errors import FieldRangeError

    assert read_sdz(write_sdz(sample_file(gray=True))).gray is True
    plain = write_sdz(sample_file())
    assert read_sdz(plain).gray is False and plain[4] & 32 == 0  # files without it are unchanged
    assert bitstream.describe(write_sdz(sample_file(gray=True)))["gray"] is True
    profile = bitstream.ImageMetadata(icc_profile=_rgb_icc_profile())
    with pytest.raises(FieldRangeError, match="gray image cannot carry an ICC profile"):
        write_sdz(sample_file(gray=True, metadata=bitstream.pack_metadata(profile)))


def _rgb_icc_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_restore_guidance_above_the_readers_range_is_refused_by_the_writer():
    """The writer must not produce a file that its own reader refuses."""
    assert (
        read_sdz(
            write_sdz(sample_file(has_restore_hints=True, restore_steps=2, restore_guidance_tenths=1000))
        ).restore_guidance
        == 100.0
    )
    with pytest.raises(FieldRangeError, match="restore guidance"):
        write_sdz(sample_file(has_restore_hints=True, restore_steps=2, restore_guidance_tenths=1001))


def test_importing_the_codec_leaves_the_decimal_context_alone():
    import decimal
    import importlib

    from sdcodec.codec.coding import entropy_model

    decimal.getcontext().prec = 7
    try:
        importlib.reload(entropy_model)
        assert decimal.getcontext().prec == 7
    finally:
        decimal.getcontext().prec = 28


def _image_bytes(fmt: str) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: b"", "not an .sdz file (the file is empty)"),
        (lambda: b"SD", "not an .sdz file (bad magic bytes)"),
        (lambda: _image_bytes("PNG"), "not an .sdz file: it is an image (PNG); encode makes .sdz files from images"),
        (lambda: _image_bytes("JPEG"), "not an .sdz file: it is an image (JPEG)"),
        (lambda: _image_bytes("WEBP"), "not an .sdz file: it is an image (WebP)"),
        (lambda: _image_bytes("TIFF"), "not an .sdz file: it is an image (TIFF)"),
        (lambda: _image_bytes("AVIF"), "not an .sdz file: it is an image (AVIF)"),
    ],
)
def test_a_file_that_is_not_sdz_says_what_it_is(make, message):
    with pytest.raises(BadMagicError) as caught:
        bitstream.read_sdz(make())
    assert str(caught.value).startswith(message)
