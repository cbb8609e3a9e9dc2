"""--psnr: the lowest quality that reaches a PSNR, then the smallest size below it that does (psnr_target, encode_image)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

import sdcodec
from sdcodec.codec.errors import SdcodecError
from sdcodec.codec.rate_distortion.psnr_target import quality_for_psnr, smallest_size_between


def fake_codec(curve):
    """encode_at / psnr_of over a PSNR curve of the quality, counting the probes."""
    calls = []

    def encode_at(quality: int) -> bytes:
        calls.append(quality)
        return bytes([quality])

    return encode_at, lambda data: curve(data[0]), calls


def test_the_lowest_quality_that_reaches_the_target_each_probed_once():
    encode_at, psnr_of, calls = fake_codec(lambda q: 20 + 0.1 * q)
    found = quality_for_psnr(encode_at, psnr_of, 25.0)
    assert (found.quality, found.data, found.reached) == (50, bytes([50]), True)
    assert found.psnr == pytest.approx(25.0) and found.probes == len(calls) == len(set(calls)) <= 8
    assert quality_for_psnr(*fake_codec(lambda q: 20 + 0.1 * q)[:2], 1.0).quality == 1


def test_a_search_below_a_known_quality_probes_only_that_range():
    encode_at, psnr_of, calls = fake_codec(lambda q: 20 + 0.1 * q)
    found = quality_for_psnr(encode_at, psnr_of, 22.0, highest=40)
    assert found.quality == 20 and max(calls) == 40


def test_out_of_reach_settles_near_the_ceiling_not_at_quality_100():
    """An autoencoder's PSNR flattens: above its ceiling, the lowest quality within 0.05 dB of it."""
    encode_at, psnr_of, _ = fake_codec(lambda q: min(30.0, 20 + 0.2 * q))
    found = quality_for_psnr(encode_at, psnr_of, 35.0)
    assert (found.quality, found.reached) == (50, False)


def test_sizes_between_two_qualities_find_a_smaller_file_that_still_reaches_the_target():
    """Quality q reaches the target, q - 1 does not: sizes between them, aimed by interpolation."""
    # quality q's file is 10q bytes, and a file of n bytes decodes to 20 + 0.03 n dB (+ a wiggle)...
    psnr_of = lambda data: 20 + 0.03 * len(data) + (0.02 if len(data) % 2 else 0.0)  # noqa: E731
    found = quality_for_psnr(lambda q: bytes(10 * q), psnr_of, 23.4)
    assert (found.quality, found.below) == (12, (110, pytest.approx(23.3)))  # 23.6 dB at 120 bytes
    sizes = []

    def sized_at(size: int) -> bytes:  # ...and the best file of at most n bytes is n bytes
        sizes.append(size)
        return bytes(size)

    closest, spent = smallest_size_between(sized_at, psnr_of, 23.4, found)
    # aimed at 23.41 dB: 113.7 -> 114 (23.42, reached); 113.67 -> 113 (23.41 with the wiggle, reached);
    # then 113 again, kept below the last hit: 112 (23.36, missed)
    assert sizes == [114, 113, 112] and spent == 3
    assert (len(closest.data), closest.quality, closest.probes) == (113, 12, found.probes + 3)
    assert closest.psnr == pytest.approx(23.41)
    # nothing below the lowest quality, nor below an unreachable target's choice
    lowest = quality_for_psnr(lambda q: bytes(10 * q), psnr_of, 10.0)
    assert lowest.below is None and smallest_size_between(sized_at, psnr_of, 10.0, lowest) == (lowest, 0)
    encode_at, curve, _ = fake_codec(lambda q: 20 + 0.3 * q)
    assert quality_for_psnr(encode_at, curve, 99.0).below is None


def source_crop(kodak_dir) -> Image.Image:
    return Image.open(kodak_dir / "kodim23.png").convert("RGB").crop((256, 128, 384, 224))


def decoded_psnr(data: bytes, source: Image.Image, model: str) -> float:
    decoded = np.asarray(sdcodec.decode_image(data, model=model), dtype=np.float64)
    return 10 * np.log10(255**2 / np.mean((decoded - np.asarray(source, dtype=np.float64)) ** 2))


def test_encode_image_psnr_is_the_lowest_quality_reaching_it(taef2_spec, kodak_dir):
    source, target = source_crop(kodak_dir), 29.0
    notices = []
    data = sdcodec.encode_image(source, model=taef2_spec, psnr=target, notice=notices.append)
    assert decoded_psnr(data, source, taef2_spec) >= target
    quality = int(re.search(r"quality (\d+) gives", " ".join(notices)).group(1))
    at_quality = sdcodec.encode_image(source, model=taef2_spec, quality=quality)
    below = sdcodec.encode_image(source, model=taef2_spec, quality=quality - 1)
    assert decoded_psnr(at_quality, source, taef2_spec) >= target > decoded_psnr(below, source, taef2_spec)
    assert len(below) < len(data) <= len(at_quality)  # between the two qualities by size, when a size reaches it
    if len(data) < len(at_quality):
        assert re.search(
            rf"sizes below quality {quality}'s {len(at_quality)} bytes: {len(data)} bytes", " ".join(notices)
        )
    # level 2 searches again below that quality with refined latents: a smaller file at the target
    refined = sdcodec.encode_image(source, model=taef2_spec, psnr=target, effort=2)
    assert len(refined) < len(data) and decoded_psnr(refined, source, taef2_spec) >= target


def test_psnr_out_of_reach_says_so_and_psnr_excludes_other_rates(taef2_spec, kodak_dir):
    notices = []
    sdcodec.encode_image(source_crop(kodak_dir), model=taef2_spec, psnr=80.0, notice=notices.append)
    assert any("80 dB PSNR is out of reach" in line for line in notices)
    with pytest.raises(SdcodecError, match="only one of"):
        sdcodec.encode_image(source_crop(kodak_dir), model=taef2_spec, psnr=30.0, quality=40)
    with pytest.raises(SdcodecError, match="psnr must be a positive number"):
        sdcodec.encode_image(source_crop(kodak_dir), model=taef2_spec, psnr=float("nan"))
