"""Loading any image file into the codec's form, padding/cropping, and lossless alpha planes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from sdcodec.bitstream.errors import AlphaPlaneError
from sdcodec.codec.errors import ImageReadError
from sdcodec.codec.images.image_io import (
    LoadedImage,
    crop,
    decode_alpha,
    encode_alpha,
    load_image,
    pad_to_multiple,
    to_pil,
    to_tensor,
)


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(image: Image.Image, path, fmt: str = "PNG", **options):
    image.save(path, fmt, **options)
    return path


# ---------------------------------------------------------------------------------------------
# load_image: modes


def test_odd_size_rgb_png_round_trips_exactly(tmp_path):
    pixels = noise(23, 37)
    loaded = load_image(save(Image.fromarray(pixels), tmp_path / "odd.png"))
    assert isinstance(loaded, LoadedImage)
    assert (loaded.width, loaded.height) == (37, 23)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (23, 37, 3)
    assert np.array_equal(loaded.rgb, pixels)
    assert loaded.alpha is None


def test_one_pixel_image(tmp_path):
    loaded = load_image(save(Image.new("RGB", (1, 1), (10, 200, 30)), tmp_path / "dot.png"))
    assert (loaded.width, loaded.height) == (1, 1)
    assert loaded.rgb.tolist() == [[[10, 200, 30]]]


def test_an_animation_is_its_first_frame_and_says_how_many(tmp_path):
    frames = [Image.new("RGB", (16, 8), (40 * k, 90, 10)) for k in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:2])
    gif, tif = load_image(tmp_path / "anim.gif"), load_image(tmp_path / "pages.tif")
    assert (gif.frames, tif.frames) == (3, 2)
    assert np.array_equal(tif.rgb, np.asarray(frames[0])) and np.abs(gif.rgb.astype(int) - (0, 90, 10)).max() <= 4
    assert load_image(tmp_path / "anim.gif", max_pixels=None).frames == 3
    assert load_image(save(Image.new("RGB", (4, 4)), tmp_path / "still.png")).frames == 1


def test_rgba_keeps_alpha_and_color(tmp_path):
    rgba = noise(20, 30, 4)
    loaded = load_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert np.array_equal(loaded.rgb, rgba[..., :3])
    assert np.array_equal(loaded.alpha, rgba[..., 3])


def test_opaque_alpha_channel_is_dropped(tmp_path):
    rgba = noise(8, 9, 4)
    rgba[..., 3] = 255
    assert load_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "opaque.png")).alpha is None


def test_grayscale_with_alpha_la(tmp_path):
    gray = noise(12, 17, 1)
    alpha = noise(12, 17, 1, seed=1)
    image = Image.merge("LA", (Image.fromarray(gray, "L"), Image.fromarray(alpha, "L")))
    loaded = load_image(save(image, tmp_path / "la.png"))
    assert np.array_equal(loaded.rgb, np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(loaded.alpha, alpha)


def test_grayscale_l_becomes_equal_rgb(tmp_path):
    gray = noise(5, 6, 1)
    loaded = load_image(save(Image.fromarray(gray, "L"), tmp_path / "l.png"))
    assert np.array_equal(loaded.rgb, np.repeat(gray[..., None], 3, axis=2))
    assert loaded.alpha is None


def test_palette_with_transparency(tmp_path):
    palette_image = Image.fromarray(noise(16, 16)).quantize(colors=8)
    indices = np.asarray(palette_image)
    transparent_index = int(indices[0, 0])
    palette_image.info["transparency"] = transparent_index
    loaded = load_image(save(palette_image, tmp_path / "p.png", transparency=transparent_index))
    expected_rgb = np.asarray(palette_image.convert("RGB"))
    assert np.array_equal(loaded.rgb, expected_rgb)
    assert np.array_equal(loaded.alpha == 0, indices == transparent_index)
    assert set(np.unique(loaded.alpha)) <= {0, 255}


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    samples = np.array([[0, 257, 32896], [65535, 1000, 60000]], dtype=np.uint16)
    path = save(Image.fromarray(samples), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")  # really stored as 16-bit
    loaded = load_image(path)
    expected = np.rint(samples / 257).astype(np.uint8)
    assert np.array_equal(loaded.rgb[..., 0], expected)
    assert np.array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])
    assert loaded.rgb.max() == 255  # 65535 -> 255, and 1000 -> 4, not 255 as clipping would give


def test_float_image_in_unit_range_is_scaled():
    values = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32)
    loaded = load_image(Image.fromarray(values, "F"))
    assert loaded.rgb[..., 1].tolist() == [[0, 128], [255, 64]]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:, :8] = (200, 30, 30)
    flat[:, 8:] = (20, 40, 220)
    path = save(Image.fromarray(flat).convert("CMYK"), tmp_path / "cmyk.jpg", "JPEG", quality=95)
    loaded = load_image(path)
    assert loaded.rgb.shape == (16, 16, 3)
    assert np.abs(loaded.rgb[4, 2].astype(int) - (200, 30, 30)).max() < 12
    assert np.abs(loaded.rgb[4, 13].astype(int) - (20, 40, 220)).max() < 12


def test_embedded_srgb_profile_leaves_pixels_alone(tmp_path):
    pixels = noise(10, 10)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    loaded = load_image(save(Image.fromarray(pixels), tmp_path / "tagged.png", icc_profile=profile))
    assert np.abs(loaded.rgb.astype(int) - pixels).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 high; a red block top-left
    pixels[:10, :10] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = save(Image.fromarray(pixels), tmp_path / "rotated.jpg", "JPEG", exif=exif.tobytes(), quality=95)
    loaded = load_image(path)
    assert (loaded.width, loaded.height) == (20, 40)
    assert loaded.rgb[5, 15, 0] > 200 and loaded.rgb[5, 15, 1] < 60  # top-left went to the top-right
    assert loaded.rgb[5, 5, 0] < 60


def test_pil_image_source_is_not_modified():
    image = Image.fromarray(noise(6, 7, 4), "RGBA")
    before = image.tobytes()
    loaded = load_image(image)
    assert loaded.alpha is not None and image.mode == "RGBA" and image.tobytes() == before


# ---------------------------------------------------------------------------------------------
# load_image: failures are one line naming the file


def assert_one_line_error(path, *words):
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message


def test_missing_file(tmp_path):
    assert_one_line_error(tmp_path / "absent.png", "no such file")


def test_non_image_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not an image\n" * 10)
    assert_one_line_error(path, "not an image")


def test_truncated_png(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert_one_line_error(path, "truncated")


def test_truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert_one_line_error(path, "truncated")


def test_directory_is_not_an_image(tmp_path):
    assert_one_line_error(tmp_path, "directory")


# ---------------------------------------------------------------------------------------------
# tensors, padding and cropping


def test_to_tensor_and_back_is_exact():
    pixels = noise(23, 37)
    tensor = to_tensor(pixels)
    assert tensor.shape == (1, 3, 23, 37) and tensor.dtype == torch.float32
    assert 0 <= tensor.min() and tensor.max() <= 1
    assert np.array_equal(np.asarray(to_pil(tensor)), pixels)
    assert np.array_equal(np.asarray(to_pil(pixels)), pixels)


def test_to_pil_with_alpha():
    pixels, alpha = noise(4, 5), noise(4, 5, 1, seed=3)
    image = to_pil(to_tensor(pixels), alpha=alpha)
    assert image.mode == "RGBA"
    assert np.array_equal(np.asarray(image)[..., 3], alpha)


@pytest.mark.parametrize("height,width", [(23, 37), (1, 1), (2, 3), (8, 16), (9, 1), (5, 13)])
def test_pad_then_crop_round_trip(height, width):
    x = torch.rand(1, 3, height, width)
    padded = pad_to_multiple(x)
    assert padded.shape[2] % 8 == 0 and padded.shape[3] % 8 == 0
    assert padded.shape[2] - height < 8 and padded.shape[3] - width < 8
    assert torch.equal(crop(padded, height, width), x)


def test_padding_reflects_when_possible():
    x = torch.arange(6, dtype=torch.float32).reshape(1, 1, 1, 6).expand(1, 1, 6, 6).contiguous()
    padded = pad_to_multiple(x)
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 4, 3]  # mirrored, not repeated
    assert padded[0, 0, 7].tolist() == padded[0, 0, 3].tolist()


def test_padding_replicates_tiny_images():
    x = torch.tensor([[[[0.25]]]]).expand(1, 3, 1, 1)
    padded = pad_to_multiple(x)
    assert padded.shape == (1, 3, 8, 8)
    assert torch.all(padded == 0.25)


# ---------------------------------------------------------------------------------------------
# alpha planes


def soft_disc(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    distance = np.hypot(yy - height / 2, xx - width / 2)
    return np.clip((height / 3 - distance) * 40, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "alpha",
    [
        soft_disc(48, 64),
        (soft_disc(40, 56) > 128).astype(np.uint8) * 255,
        noise(23, 37, 1),
        np.full((5, 7), 128, np.uint8),
        np.zeros((1, 1), np.uint8),
        noise(1, 300, 1),
    ],
    ids=["soft", "binary", "noise", "constant", "1x1", "strip"],
)
def test_alpha_round_trip_is_bit_exact(alpha):
    data = encode_alpha(alpha)
    decoded = decode_alpha(data, alpha.shape[1], alpha.shape[0])
    assert decoded.dtype == np.uint8
    assert np.array_equal(decoded, alpha)


def test_alpha_encoding_is_compact():
    binary = (soft_disc(256, 256) > 128).astype(np.uint8) * 255
    png = io.BytesIO()
    Image.fromarray(binary, "L").save(png, "PNG")
    assert len(encode_alpha(binary)) < len(png.getvalue())  # no worse than a default PNG
    assert len(encode_alpha(np.full((512, 512), 7, np.uint8))) == 2


def test_alpha_size_mismatch_is_refused():
    data = encode_alpha(noise(10, 12, 1))
    with pytest.raises(AlphaPlaneError, match="12x10, the image is 12x11"):
        decode_alpha(data, 12, 11)
    with pytest.raises(AlphaPlaneError, match="not a valid PNG"):
        decode_alpha(b"\x01garbage", 12, 10)


HEIC = Path(__file__).parent / "data" / "kodim23-crop.heic"  # kodim23[160:224, 320:416], pillow-heif quality 90


def test_a_phone_photo_in_heic_reads_like_any_image(kodak_dir):
    """HEIC (pi-heif, libheif's decoder): the pixels of the crop it was made from, to HEVC's loss."""
    loaded = load_image(HEIC)
    assert (loaded.width, loaded.height, loaded.alpha) == (96, 64, None)
    original = np.asarray(Image.open(kodak_dir / "kodim23.png").convert("RGB"))[160:224, 320:416]
    error = np.mean((loaded.rgb.astype(np.float64) - original) ** 2)
    assert 10 * np.log10(255**2 / error) > 35
    with pytest.raises(ImageReadError, match="kodim23-crop.heic"):
        load_image(HEIC, max_pixels=96 * 64 - 1)  # the ceiling is checked on the header's size


def test_a_rotated_heic_is_turned_upright_once(kodak_dir):
    """The same crop with EXIF Orientation 6: libheif turns it and resets the tag, so exif_transpose must not turn it again."""
    loaded = load_image(HEIC.with_name("kodim23-crop-orientation6.heic"))
    upright = np.rot90(np.asarray(Image.open(kodak_dir / "kodim23.png").convert("RGB"))[160:224, 320:416], -1)
    assert loaded.rgb.shape == upright.shape == (96, 64, 3)
    assert 10 * np.log10(255**2 / np.mean((loaded.rgb.astype(np.float64) - upright) ** 2)) > 35


def test_a_directory_of_heic_photos_is_found_by_a_batch(tmp_path):
    from sdcodec.codec.images.batch import expand_inputs

    (tmp_path / "IMG_0001.HEIC").write_bytes(HEIC.read_bytes())
    assert [item.path.name for item in expand_inputs([tmp_path])] == ["IMG_0001.HEIC"]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"hi\n", "not an image file (format not recognised)"),  # DIB's prefix test fails on < 4 bytes
        (b"\x00" * 3, "not an image file (format not recognised)"),
    ],
)
def test_empty_and_tiny_non_images_say_what_they_are(tmp_path, data, reason):
    path = tmp_path / "x.png"
    path.write_bytes(data)
    for source, name in ((path, str(path)), (io.BytesIO(data), "<stream>"), (data, "<bytes>")):
        with pytest.raises(ImageReadError) as caught:
            load_image(source)
        assert str(caught.value) == f"cannot read image {name}: {reason}"
