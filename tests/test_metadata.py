"""ICC profile and EXIF: kept in the .sdz (compressed), restored on decode, dropped by --strip (issue 12)."""

from __future__ import annotations

import io
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, features

import sdcodec
from sdcodec import bitstream
from sdcodec.bitstream import metadata as sdz_metadata
from sdcodec.codec.coding import latent_coder
from sdcodec.codec.images.image_output import image_file_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent / "vectors"))
from make_vectors import display_p3_profile  # noqa: E402

ORIENTATION = 0x0112


SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # dated: make it once


def srgb_profile() -> bytes:
    return SRGB_PROFILE


def wide_gamut_profile() -> bytes:
    """A real Display P3 profile (the golden vectors' one, built byte by byte)."""
    return display_p3_profile()


def cmyk_like_profile() -> bytes:
    """A valid profile whose data colour space is Lab (not RGB): must not be attached to RGB pixels."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "SDCodec Camera"  # Make
    exif[0x0131] = "a test"  # Software
    return exif.tobytes()


def photo(width: int = 40, height: int = 24) -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), (xx + yy) * 4 % 256], axis=2)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def png_with(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


# --- the section ------------------------------------------------------------------------------


def test_section_round_trips_and_compresses_a_real_profile():
    icc, exif = srgb_profile(), exif_bytes(1)[6:]
    section = bitstream.pack_metadata(bitstream.ImageMetadata(icc_profile=icc, exif=exif))
    assert section[0] == sdz_metadata.METHOD_ZLIB and len(section) < len(icc) + len(exif)
    assert bitstream.unpack_metadata(section) == bitstream.ImageMetadata(icc, exif)
    only_exif = bitstream.unpack_metadata(bitstream.pack_metadata(bitstream.ImageMetadata(exif=exif)))
    assert only_exif.icc_profile is None and only_exif.exif == exif


def test_container_keeps_the_section_and_old_fields_are_unchanged():
    section = bitstream.pack_metadata(bitstream.ImageMetadata(icc_profile=srgb_profile()))
    data = latent_coder.encode_latent(np.zeros((4, 3, 5)), step=1.0, metadata=section)
    header = bitstream.read_sdz(data)
    assert header.metadata == section and header.image_metadata.icc_profile == srgb_profile()
    assert bitstream.write_sdz(header) == data
    assert data[4] & 16  # flag bit 4
    facts = bitstream.describe(data)
    assert facts["icc_profile_bytes"] == len(srgb_profile()) and facts["metadata_bytes"] == len(section)
    assert facts["exif_bytes"] == 0


def _with_section(section: bytes) -> bytes:
    """A raw-latent file around an arbitrary (possibly hostile) metadata section, CRC correct."""
    good = bitstream.pack_metadata(bitstream.ImageMetadata(exif=exif_bytes(1)[6:]))
    data = latent_coder.encode_latent(np.zeros((1, 2, 2)), step=1.0, metadata=good)
    start = data.index(good)
    body = data[: start - 1] + bytes([len(section)]) + section + data[start + len(good) : -4]
    assert len(section) < 128
    return body + zlib.crc32(body).to_bytes(4, "big")


def _packed(method: int, icc_length: int, exif_length: int, body: bytes) -> bytes:
    out = bytearray([method])
    sdz_metadata.write_uvarint(icc_length, out)
    sdz_metadata.write_uvarint(exif_length, out)
    return bytes(out) + body


TIFF = b"II*\x00\x08\x00\x00\x00\x00\x00"
HOSTILE = {
    "empty section": b"",
    "no blob": _packed(0, 0, 0, b""),
    "truncated lengths": bytes([1, 0x80]),
    "oversized ICC length": _packed(1, sdz_metadata.MAX_ICC_BYTES + 1, 0, b""),
    "oversized EXIF length": _packed(1, 0, sdz_metadata.MAX_EXIF_BYTES + 1, b""),
    "bad compression": _packed(1, 0, len(TIFF), b"not zlib at all"),
    "truncated zlib": _packed(1, 0, len(TIFF), zlib.compress(TIFF)[:-3]),
    "inflates to more than declared": _packed(1, 0, 4, zlib.compress(TIFF)),
    "inflates to less than declared": _packed(1, 0, len(TIFF) + 1, zlib.compress(TIFF)),
    "bytes after the zlib stream": _packed(1, 0, len(TIFF), zlib.compress(TIFF) + b"x"),
    "stored body too short": _packed(0, 0, len(TIFF), TIFF[:-1]),
    "unknown method": _packed(7, 0, len(TIFF), TIFF),
    "EXIF without a TIFF header": _packed(0, 0, 10, b"JFIF......"),
    "ICC without acsp": _packed(0, 100, 0, bytes(100)),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_sections_raise_one_metadata_error(kind):
    data = _with_section(HOSTILE[kind])
    with pytest.raises(bitstream.MetadataError):
        bitstream.read_sdz(data)


def test_a_zlib_bomb_stops_at_the_declared_size():
    bomb = _packed(1, 0, len(TIFF), zlib.compress(TIFF + bytes(50_000_000), 9))
    assert len(bomb) < 100_000
    with pytest.raises(bitstream.MetadataError, match="more than"):
        bitstream.unpack_metadata(bomb)


def test_section_declared_longer_than_the_file_is_refused_before_allocation():
    data = bytearray(_with_section(HOSTILE["no blob"]))
    start = data.index(HOSTILE["no blob"]) - 1
    data[start : start + 1] = b"\xff\xff\xff\x7f"
    with pytest.raises(bitstream.FieldRangeError):
        bitstream.read_sdz(bytes(data))


def test_writer_refuses_what_the_reader_would_refuse():
    with pytest.raises(bitstream.MetadataError):
        bitstream.pack_metadata(bitstream.ImageMetadata(exif=b"II*\x00" + bytes(sdz_metadata.MAX_EXIF_BYTES)))
    with pytest.raises(bitstream.MetadataError):
        bitstream.pack_metadata(bitstream.ImageMetadata())


# --- through the codec --------------------------------------------------------------------------


def test_icc_and_exif_round_trip_through_encode_and_decode(tiny_vae_dir):
    icc = srgb_profile()
    source = png_with(photo(), icc_profile=icc, exif=exif_bytes(6))  # 6: rotate 90 degrees on display
    data = sdcodec.encode_image(source, model=str(tiny_vae_dir))
    kept = bitstream.read_sdz(data).image_metadata
    assert kept.icc_profile == icc
    exif = Image.Exif()
    exif.load(b"Exif\x00\x00" + kept.exif)
    assert exif[ORIENTATION] == 1 and exif[0x010F] == "SDCodec Camera"
    assert (bitstream.read_sdz(data).width, bitstream.read_sdz(data).height) == (24, 40)  # rotated pixels
    out = sdcodec.decode_image(data, model=str(tiny_vae_dir))
    assert out.info["icc_profile"] == icc
    for image_format in ("PNG", "JPEG", "WEBP", "TIFF") + (("AVIF",) if features.check("avif") else ()):
        written, _ = image_file_bytes(out, image_format, notice=pytest.fail)
        with Image.open(io.BytesIO(written)) as reread:
            assert reread.info.get("icc_profile") == icc, image_format
            assert reread.getexif().get(ORIENTATION, 1) == 1, image_format  # AVIF moves it to irot/imir
            assert reread.getexif()[0x010F] == "SDCodec Camera", image_format


def test_a_non_srgb_profile_gets_its_own_pixels_back(tiny_vae_dir):
    """The codec works in sRGB; decoding converts back into the kept profile, so colours match."""
    icc = wide_gamut_profile()
    assert icc != srgb_profile()
    flat = Image.new("RGB", (32, 32), (200, 120, 40))
    data = sdcodec.encode_image(png_with(flat, icc_profile=icc), model=str(tiny_vae_dir), quality=100)
    plain = sdcodec.encode_image(
        png_with(flat, icc_profile=icc), model=str(tiny_vae_dir), quality=100, strip_metadata=True
    )
    assert bitstream.read_sdz(plain).metadata is None
    kept = np.asarray(sdcodec.decode_image(data, model=str(tiny_vae_dir)), dtype=float)
    srgb = np.asarray(sdcodec.decode_image(plain, model=str(tiny_vae_dir)), dtype=float)
    original = np.asarray(flat, dtype=float)
    # the stripped file is the sRGB rendering; the kept one is back in the input's encoding
    assert np.abs(kept - original).mean() < np.abs(srgb - original).mean()


def test_strip_keeps_nothing(tiny_vae_dir):
    source = png_with(photo(), icc_profile=srgb_profile(), exif=exif_bytes(1))
    data = sdcodec.encode_image(source, model=str(tiny_vae_dir), strip_metadata=True)
    assert bitstream.read_sdz(data).metadata is None
    out = sdcodec.decode_image(data, model=str(tiny_vae_dir))
    assert "icc_profile" not in out.info and "exif" not in out.info


def test_unusable_profile_is_dropped_with_one_notice(tiny_vae_dir):
    notices = []
    source = png_with(photo(), icc_profile=cmyk_like_profile())
    data = sdcodec.encode_image(source, model=str(tiny_vae_dir), notice=notices.append)
    assert bitstream.read_sdz(data).metadata is None
    assert [n for n in notices if "ICC" in n] == [n for n in notices if n.startswith("ICC profile dropped: ")]
    assert len([n for n in notices if "ICC" in n]) == 1


def test_format_without_icc_gets_srgb_pixels_and_a_notice(tiny_vae_dir):
    source = png_with(photo(), icc_profile=wide_gamut_profile(), exif=exif_bytes(1))
    out = sdcodec.decode_image(sdcodec.encode_image(source, model=str(tiny_vae_dir)), model=str(tiny_vae_dir))
    notices = []
    written, mode = image_file_bytes(out, "BMP", notice=notices.append)
    assert len(notices) == 2 and "ICC" in notices[0] and "EXIF" in notices[1]
    assert mode == "RGB" and Image.open(io.BytesIO(written)).format == "BMP"


def test_cli_strip_and_info(tmp_path, tiny_vae_dir):
    """In-process through typer's runner: the real-process CLI is covered in test_cli and test_cli_habits."""
    from typer.testing import CliRunner

    from sdcodec.cli import app

    source = tmp_path / "in.png"
    source.write_bytes(png_with(photo(), icc_profile=srgb_profile(), exif=exif_bytes(1)))

    def sdcodec_cli(*args):
        return CliRunner().invoke(app, list(map(str, args)))

    kept, stripped = tmp_path / "kept.sdz", tmp_path / "stripped.sdz"
    assert sdcodec_cli("encode", source, kept, "-m", tiny_vae_dir, "-q").exit_code == 0
    assert sdcodec_cli("encode", source, stripped, "-m", tiny_vae_dir, "-q", "--strip").exit_code == 0
    info = sdcodec_cli("info", kept).stdout
    assert f"icc_profile_bytes  {len(srgb_profile())}" in info
    assert bitstream.read_sdz(kept.read_bytes()).metadata is not None
    assert bitstream.read_sdz(stripped.read_bytes()).metadata is None
    out = tmp_path / "out.jpg"
    assert sdcodec_cli("decode", kept, out, "-m", tiny_vae_dir, "-q").exit_code == 0
    assert Image.open(out).info["icc_profile"] == srgb_profile()


def test_pillow_plugin_reports_the_kept_metadata(tiny_vae_dir, monkeypatch):
    monkeypatch.setenv("SDCODEC_MODEL", str(tiny_vae_dir))
    source = png_with(photo(), icc_profile=wide_gamut_profile(), exif=exif_bytes(1))
    image = Image.open(io.BytesIO(sdcodec.encode_image(source)))
    assert image.info["icc_profile"] == wide_gamut_profile()  # known from the header, before decoding
    image.load()
    assert image.info["icc_profile"] == wide_gamut_profile()
    assert image.getexif()[0x010F] == "SDCodec Camera"


def test_alpha_and_a_profile_come_back_together(tiny_vae_dir):
    image = photo().convert("RGBA")
    alpha = np.tile(np.arange(40, dtype=np.uint8) * 6, (24, 1))
    image.putalpha(Image.fromarray(alpha))
    data = sdcodec.encode_image(png_with(image, icc_profile=wide_gamut_profile()), model=str(tiny_vae_dir))
    out = sdcodec.decode_image(data, model=str(tiny_vae_dir))
    assert out.mode == "RGBA" and out.info["icc_profile"] == wide_gamut_profile()
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)


def test_oversized_exif_is_dropped_with_one_notice_and_the_profile_kept():
    from sdcodec.codec.images import image_metadata

    notices = []
    big = b"II*\x00" + bytes(sdz_metadata.MAX_EXIF_BYTES)
    kept = image_metadata.kept_metadata(srgb_profile(), True, big, notices.append)
    assert kept == bitstream.ImageMetadata(icc_profile=srgb_profile())
    assert len(notices) == 1 and notices[0].startswith("EXIF dropped: ") and "65527" in notices[0]
