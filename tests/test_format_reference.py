"""bitstream/FORMAT.md is complete: a decoder written from it alone decodes every golden vector.

``format_reference_decoder`` imports nothing from the project, so this test checks the document,
not the code: if it fails while ``test_golden_vectors.py`` passes, the document is wrong.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from sdcodec import bitstream

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import format_reference_decoder as ref  # noqa: E402

VECTORS = HERE / "vectors"
TABLE = json.loads((VECTORS / "vectors.json").read_text())
MODEL_1 = sorted(name for name, entry in TABLE.items() if entry.get("entropy_model", 1) == 1)
MODEL_2 = sorted(name for name, entry in TABLE.items() if entry.get("entropy_model", 1) == 2)


def _digest(array: np.ndarray, dtype) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=dtype).tobytes()).hexdigest()


def _rewrap(body: bytes) -> bytes:
    """``body`` (a file without its CRC) with a correct CRC, so a test reaches the rule it aims at."""
    return body + zlib.crc32(body).to_bytes(4, "big")


def test_every_model_1_vector_is_covered():
    assert len(MODEL_1) >= 7
    assert not any(name.startswith("m2-") for name in MODEL_1)


def test_every_model_2_vector_is_covered():
    on_disk = sorted(path.stem for path in VECTORS.glob("m2-*.sdz"))
    assert len(MODEL_2) >= 7 and MODEL_2 == on_disk


@pytest.mark.parametrize("name", MODEL_1 + MODEL_2)
def test_reference_decoder_matches_the_golden_vector(name):
    expected = TABLE[name]
    data = (VECTORS / f"{name}.sdz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == expected["file_sha256"]
    header, symbols, latent = ref.decode_file(data)
    assert header["latent_space"] == expected["latent_space"]
    assert header["entropy_model"] == expected.get("entropy_model", 1)
    assert list(header["latent_shape"]) == expected["latent_shape"] == list(symbols.shape)
    assert symbols.dtype == np.int64 and latent.dtype == np.float32
    assert _digest(symbols, "<i8") == expected["symbols_sha256"]
    assert _digest(latent, "<f4") == expected["latent_sha256"]


def test_header_fields_of_the_feature_vectors():
    header, _, _ = ref.decode_file((VECTORS / "raw-channel-steps-caption-8x12x20.sdz").read_bytes())
    assert header["caption"] == "a lighthouse at dusk, ünïcödé"
    assert header["channel_steps"] == (16, 8, 24, 32, 16, 12, 40, 255)
    assert (header["has_restore_hints"], header["restore_steps"], header["restore_guidance_tenths"]) == (True, 3, 45)
    header, _, _ = ref.decode_file((VECTORS / "sd1-alpha-64x60.sdz").read_bytes())
    assert (header["width"], header["height"], header["latent_shape"]) == (64, 60, (4, 8, 8))
    assert header["alpha_kind"] in ("constant", "png", "webp")
    header, _, _ = ref.decode_file((VECTORS / "sd1-metadata-64x60.sdz").read_bytes())
    sys.path.insert(0, str(VECTORS))
    from make_vectors import EXIF, display_p3_profile

    assert header["icc_profile"] == display_p3_profile() and header["exif"] == EXIF


@pytest.mark.parametrize(
    "section",
    [b"\x01\x00\x0a" + b"not zlib", b"\x00\x00\x00", b"\x02\x00\x01" + b"x", b"\x01\xff\xff\xff\x7f\x00"],
)
def test_reference_decoder_rejects_bad_metadata_sections(section):
    data = (VECTORS / "raw-4x8x8.sdz").read_bytes()
    flags_at, payload_at = 4, 4 + 1 + 1 + 1 + 1 + 3 + 3 + 1 + 1  # 1-byte varints but the 3-byte step_code
    assert data[flags_at] == 0
    body = data[:flags_at] + b"\x10" + data[flags_at + 1 : payload_at] + bytes([len(section)]) + section
    with pytest.raises(ref.FormatError) as caught:
        ref.decode_file(_rewrap(body + data[payload_at:-4]))
    assert caught.value.kind == "Metadata"


def test_gray_flag_has_no_field_and_excludes_an_icc_profile():
    data = (VECTORS / "raw-4x8x8.sdz").read_bytes()
    assert data[4] == 0
    _, plain, _ = ref.decode_file(data)
    header, symbols, _ = ref.decode_file(_rewrap(data[:4] + b"\x20" + data[5:-4]))
    assert header["gray"] and np.array_equal(symbols, plain)
    assert bitstream.read_sdz(_rewrap(data[:4] + b"\x20" + data[5:-4])).gray
    with_icc = (VECTORS / "sd1-metadata-64x60.sdz").read_bytes()
    assert with_icc[4] & 16 and not with_icc[4] & 32
    gray_with_icc = _rewrap(with_icc[:4] + bytes([with_icc[4] | 32]) + with_icc[5:-4])
    with pytest.raises(ref.FormatError) as caught:
        ref.decode_file(gray_with_icc)
    assert caught.value.kind == "FieldRange"
    with pytest.raises(bitstream.BitstreamError, match="gray image cannot carry an ICC profile"):
        bitstream.read_sdz(gray_with_icc)


def test_listed_decay_rates_follow_from_their_definition():
    assert ref.rates_from_formula() == ref.RATES


@pytest.mark.parametrize(
    "mutate, kind",
    [
        (lambda d: b"SDY" + d[3:], "BadMagic"),
        (lambda d: d[:3] + b"\x02" + d[4:], "UnknownVersion"),
        (lambda d: d[:-1], "Checksum"),  # the declared payload no longer fits: caught as short CRC
        (lambda d: d + b"\x00", "TrailingBytes"),
        (lambda d: d[:-5] + bytes([d[-5] ^ 1]) + d[-4:], "Checksum"),
        (lambda d: _rewrap(d[:4] + b"\x40" + d[5:-4]), "FieldRange"),  # unknown flag bit 6
        (lambda d: _rewrap(d[:5] + b"\x05" + d[6:-4]), "FieldRange"),  # unknown latent space id
    ],
)
def test_reference_decoder_rejects_what_the_document_rejects(mutate, kind):
    data = (VECTORS / "raw-4x8x8.sdz").read_bytes()
    with pytest.raises(ref.FormatError) as caught:
        ref.decode_file(mutate(data))
    if kind == "Checksum":  # truncation is reported as truncation or checksum, depending on where it cuts
        assert caught.value.kind in ("Checksum", "Truncated")
    else:
        assert caught.value.kind == kind


def test_ceiling_is_checked_before_the_payload():
    data = (VECTORS / "raw-zeros-2x40x40.sdz").read_bytes()
    with pytest.raises(ref.FormatError) as caught:
        ref.decode_file(data, max_pixels=1000)
    assert caught.value.kind == "TooLarge"


def test_payload_ending_in_a_zero_word_is_rejected():
    data = (VECTORS / "raw-4x8x8.sdz").read_bytes()
    header = ref.parse_container(data)
    payload = header["payload"] + b"\x00\x00\x00\x00"
    with pytest.raises(ref.FormatError, match="zero word"):
        ref.decode_model1(payload, header["latent_shape"])


@pytest.mark.parametrize("cut", [lambda p: p[:-1], lambda p: p + b"\x00", lambda p: b""])
def test_reference_decoder_rejects_a_cut_or_padded_model_2_payload(cut):
    header = ref.parse_container((VECTORS / "m2-raw-4x8x8.sdz").read_bytes())
    assert header["entropy_model"] == 2
    with pytest.raises(ref.FormatError) as caught:
        ref.decode_model2(cut(header["payload"]), header["latent_shape"])
    assert caught.value.kind == "Payload"
