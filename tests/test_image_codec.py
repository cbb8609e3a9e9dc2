"""Images through the whole codec: any size and mode, alpha, rate control, latent spaces."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import sdcodec
from sdcodec import bitstream
from sdcodec.codec.errors import LatentSpaceMismatch, SdcodecError


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    return 10 * np.log10(255**2 / np.mean((x - y) ** 2))


def gradient_image(width: int, height: int, mode: str = "RGB") -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], axis=2)
    return Image.fromarray(rgb.astype(np.uint8), "RGB").convert(mode)


@pytest.mark.parametrize("size", [(1, 1), (37, 23), (64, 48), (9, 70)])
def test_any_size_round_trips_to_the_same_size(tiny_vae_dir, size):
    data = sdcodec.encode_image(gradient_image(*size), model=str(tiny_vae_dir), quality=60)
    header = bitstream.read_sdz(data)
    assert (header.width, header.height) == size and header.latent_space == "sd1"
    assert header.latent_shape == (4, -(-size[1] // 8), -(-size[0] // 8))
    out = sdcodec.decode_image(data, model=str(tiny_vae_dir))
    assert out.size == size and out.mode == ("L" if size == (1, 1) else "RGB")  # one black pixel is gray


def test_alpha_is_restored_exactly(tiny_vae_dir):
    image = gradient_image(40, 24, "RGBA")
    alpha = np.zeros((24, 40), np.uint8)
    alpha[4:20, 5:30] = np.arange(25, dtype=np.uint8) * 10
    image.putalpha(Image.fromarray(alpha))
    data = sdcodec.encode_image(image, model=str(tiny_vae_dir))
    out = sdcodec.decode_image(data, model=str(tiny_vae_dir))
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)


def test_opaque_rgba_stores_no_alpha(tiny_vae_dir):
    data = sdcodec.encode_image(gradient_image(16, 16, "RGBA"), model=str(tiny_vae_dir))
    assert bitstream.read_sdz(data).alpha is None


def test_quality_is_monotone_in_size(tiny_vae_dir):
    image = gradient_image(64, 64)
    sizes = [len(sdcodec.encode_image(image, model=str(tiny_vae_dir), quality=q)) for q in (5, 30, 60, 95)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    steps = [sdcodec.quality_to_step(q) for q in range(1, 101)]
    assert all(a > b for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("ceiling", [0.5, 2.0])
def test_bpp_and_size_are_ceilings(tiny_vae_dir, ceiling):
    image = gradient_image(64, 64)
    data = sdcodec.encode_image(image, model=str(tiny_vae_dir), bpp=ceiling)
    assert 8 * len(data) / (64 * 64) <= ceiling
    budget = len(data) + 37
    assert len(sdcodec.encode_image(image, model=str(tiny_vae_dir), size=budget)) <= budget


def test_conflicting_rate_options_are_refused(tiny_vae_dir):
    with pytest.raises(SdcodecError, match="only one"):
        sdcodec.encode_image(gradient_image(8, 8), model=str(tiny_vae_dir), quality=3, bpp=1.0)


def test_caption_round_trips_and_sd1_files_carry_a_restoration_hint(tiny_vae_dir):
    data = sdcodec.encode_image(gradient_image(16, 16), model=str(tiny_vae_dir), quality=10, caption="un café ☕")
    header = bitstream.read_sdz(data)
    assert header.caption == "un café ☕"
    assert header.has_restore_hints and header.restore_steps == 2  # coarse step -> 2 U-Net steps


def test_latent_space_mismatch_is_refused(tiny_vae_dir, taef2_spec):
    data = sdcodec.encode_image(gradient_image(16, 16), model=str(tiny_vae_dir))
    with pytest.raises(LatentSpaceMismatch, match="sd1.*flux2"):
        sdcodec.decode_image(data, model=taef2_spec)


def test_file_without_hub_default_needs_a_model(taef2_spec):
    data = sdcodec.encode_image(gradient_image(16, 16), model=taef2_spec)
    with pytest.raises(SdcodecError, match="--model"):
        sdcodec.decode_image(data)


def _gray_sources() -> dict:
    gray = gradient_image(24, 16, "L")
    sixteen = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)
    return {"L": gray, "RGB of a gray picture": gray.convert("RGB"), "16-bit gray": sixteen}


@pytest.mark.parametrize("kind", list(_gray_sources()))
def test_a_gray_picture_decodes_gray(tiny_vae_dir, kind):
    """Gray in, gray out (as PNG, cjxl and avifenc keep it): one luma channel, without a decoder's tints."""
    data = sdcodec.encode_image(_gray_sources()[kind], model=str(tiny_vae_dir), quality=60)
    assert bitstream.read_sdz(data).gray and bitstream.describe(data)["gray"]
    out = sdcodec.decode_image(data, model=str(tiny_vae_dir))
    assert out.mode == "L" and out.size == (24, 16)


def test_colour_stays_rgb_and_gray_with_alpha_is_la(tiny_vae_dir):
    colour = sdcodec.encode_image(gradient_image(24, 16), model=str(tiny_vae_dir), quality=60)
    assert not bitstream.read_sdz(colour).gray
    assert sdcodec.decode_image(colour, model=str(tiny_vae_dir)).mode == "RGB"
    image = gradient_image(24, 16, "L").convert("LA")
    alpha = np.zeros((16, 24), np.uint8)
    alpha[2:14, 3:20] = 180
    image.putalpha(Image.fromarray(alpha))
    out = sdcodec.decode_image(sdcodec.encode_image(image, model=str(tiny_vae_dir)), model=str(tiny_vae_dir))
    assert out.mode == "LA"
    np.testing.assert_array_equal(np.asarray(out)[..., 1], alpha)


def test_a_gray_picture_with_an_rgb_profile_stays_rgb(tiny_vae_dir):
    """An ICC profile describes RGB pixels: a file keeping one decodes RGB in it, never gray under it."""
    from PIL import ImageCms

    image = gradient_image(24, 16, "L").convert("RGB")
    image.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = sdcodec.encode_image(image, model=str(tiny_vae_dir), quality=60)
    header = bitstream.read_sdz(data)
    assert header.image_metadata.icc_profile is not None and not header.gray
    assert sdcodec.decode_image(data, model=str(tiny_vae_dir)).mode == "RGB"


def test_pillow_plugin_opens_sdz(tiny_vae_dir, monkeypatch):
    monkeypatch.setenv("SDCODEC_MODEL", str(tiny_vae_dir))
    data = sdcodec.encode_image(gradient_image(24, 16), quality=40)
    image = Image.open(io.BytesIO(data))
    assert image.format == "SDZ" and image.size == (24, 16)
    image.load()
    assert np.asarray(image).shape == (16, 24, 3)
    gray = Image.open(io.BytesIO(sdcodec.encode_image(gradient_image(24, 16, "L"), quality=40)))
    assert gray.mode == "L"
    gray.load()
    assert np.asarray(gray).shape == (16, 24)


@pytest.mark.slow
def test_taef2_on_a_whole_kodak_image_at_08_bpp_reaches_24_db(taef2_spec, kodak_dir):
    """kodim05, the harder of the two once tested (25.4 dB; kodim23 reached 32.3 dB); a crop would not
    prove the figure for a whole image, so it stays whole (about 6 s on one core)."""
    original = Image.open(kodak_dir / "kodim05.png").convert("RGB")
    data = sdcodec.encode_image(original, model=taef2_spec, bpp=0.8)
    assert 8 * len(data) / (original.width * original.height) <= 0.8
    assert psnr(original, sdcodec.decode_image(data, model=taef2_spec)) >= 24.0
