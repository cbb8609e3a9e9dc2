"""Hostile images: alpha planes built by an attacker, oversized inputs, and the Pillow plugin's opt-in.

Every defect must raise a typed error before any model is loaded, and a file declaring a huge
size must be refused from its header, with memory that stays small.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import sdcodec
from sdcodec import bitstream
from sdcodec.bitstream.errors import AlphaPlaneError
from sdcodec.codec import autoencoders, hub
from sdcodec.codec.coding import latent_coder
from sdcodec.codec.errors import ImageReadError, ModelLoadError
from sdcodec.codec.images import alpha_plane, pil_plugin
from sdcodec.codec.images.image_io import load_image

REPO = Path(__file__).resolve().parent.parent
UNLOADABLE_MODEL = "taef2:/nonexistent/weights"  # loading this fails: a test passing it must fail earlier


# --- builders -----------------------------------------------------------------------------


def zeros_deflate(n_blocks: int, block_len: int) -> bytes:
    """A valid zlib stream of n_blocks * block_len zero bytes, built without compressing them all.

    After a full flush the compressor forgets its history, so every further block of zeros
    compresses to the same bytes; Adler-32 of n zeros is (n mod 65521) << 16 | 1.
    """
    compressor = zlib.compressobj(9)
    block = bytes(block_len)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    total = n_blocks * block_len
    return first + repeat * (n_blocks - 1) + b"\x03\x00" + (((total % 65521) << 16) | 1).to_bytes(4, "big")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def black_bilevel_png(width: int, height: int) -> bytes:
    """A complete 1-bit PNG of width x height: a few hundred kB that decode to width*height bytes in Pillow."""
    row = 1 + (width + 7) // 8
    rows_per_block = next(n for n in (500, 100, 10, 1) if height % n == 0)
    idat = zeros_deflate(height // rows_per_block, row * rows_per_block)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def gray_rgb(width: int, height: int) -> Image.Image:
    plane = (np.arange(width * height).reshape(height, width) * 7 % 251).astype(np.uint8)
    return Image.fromarray(np.repeat(plane[..., None], 3, axis=2), "RGB")


def lossless_webp(width: int, height: int) -> bytes:
    return encoded(gray_rgb(width, height), "WEBP", lossless=True)


def webp_declaring(width: int, height: int) -> bytes:
    """A real lossless WebP whose VP8L header is edited to declare width x height (libwebp allocates that)."""
    data = bytearray(lossless_webp(16, 12))
    assert data[12:16] == b"VP8L"
    bits = int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1)
    data[21:25] = (bits | (width - 1) | (height - 1) << 14).to_bytes(4, "little")
    return bytes(data)


W, H = 64, 48  # the image size of the files built below


def sdz_with_alpha(alpha: bytes) -> bytes:
    """A valid sd1 .sdz of a W x H image whose alpha plane is ``alpha`` (CRC correct, as an attacker makes it)."""
    latent = np.zeros((4, H // 8, W // 8))
    return latent_coder.encode_latent(latent, step=0.5, latent_space="sd1", width=W, height=H, alpha=alpha)


# --- 1. the alpha plane: validated at parse time, bounded -----------------------------------

DEFECTS = {
    "empty": (b"", "empty"),
    "unknown kind": (b"\x07\x00", "unknown alpha plane encoding 7"),
    "constant without value": (b"\x00", "exactly one value"),
    "constant with two values": (b"\x00\x01\x02", "exactly one value"),
    "corrupt PNG": (b"\x01" + b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "not a valid PNG"),
    "corrupt WebP": (b"\x02RIFF\x00\x00\x00\x00WEBPVP8L" + b"garbage" * 10, "WebP has no readable size"),
    "PNG of the wrong size": (b"\x01" + encoded(Image.new("L", (W, H + 1)), "PNG"), f"declares {W}x{H + 1}"),
    "WebP of the wrong size": (b"\x02" + lossless_webp(W + 1, H), f"declares {W + 1}x{H}"),
    "PNG in a mode the encoder never writes": (b"\x01" + encoded(Image.new("RGB", (W, H)), "PNG"), "mode RGB"),
    "WebP bytes under the PNG kind": (b"\x01" + lossless_webp(W, H), "not a valid PNG"),
    "truncated PNG": (b"\x01" + encoded(gray_rgb(W, H).convert("L"), "PNG")[:-60], "corrupt"),
    "PNG bomb 60000x60000": (b"\x01" + black_bilevel_png(60000, 60000), "declares 60000x60000"),
    "PNG bomb under Pillow's own limit": (b"\x01" + black_bilevel_png(12000, 12000), "declares 12000x12000"),
    "WebP bomb 16384x16384": (b"\x02" + webp_declaring(16384, 16384), "declares 16384x16384"),
}


@pytest.mark.parametrize("alpha, message", DEFECTS.values(), ids=DEFECTS.keys())
def test_every_alpha_defect_is_a_typed_error_raised_before_the_model_loads(alpha, message):
    data = sdz_with_alpha(alpha)
    with pytest.raises(AlphaPlaneError, match=message) as caught:  # not ModelLoadError: the alpha error wins
        sdcodec.decode_image(data, model=UNLOADABLE_MODEL)
    assert isinstance(caught.value, bitstream.BitstreamError)
    assert "\n" not in str(caught.value)


def test_the_unloadable_model_really_cannot_load():
    """The test above means something only if this model spec fails when it is reached."""
    with pytest.raises(ModelLoadError):
        sdcodec.decode_image(sdz_with_alpha(b"\x00\xff"), model=UNLOADABLE_MODEL)


def test_the_bomb_pngs_really_are_bombs():
    bomb = black_bilevel_png(60000, 60000)
    assert len(bomb) < 500_000
    assert PngImagePlugin.PngImageFile(io.BytesIO(bomb)).size == (60000, 60000)  # lazy: header only
    assert zlib.decompressobj().decompress(bomb[33 + 8 : 33 + 8 + 4096], 7501) == bytes(7501)  # real rows of zeros
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert Image.open(io.BytesIO(black_bilevel_png(12000, 12000))).size == (12000, 12000)  # Pillow lets it in


def test_valid_planes_of_every_kind_still_decode_through_a_file(tiny_vae_dir):
    for plane in (
        np.full((H, W), 9, np.uint8),
        (np.indices((H, W)).sum(0) % 2 * 255).astype(np.uint8),
        (np.arange(W * H).reshape(H, W) * 7 % 251).astype(np.uint8),
    ):
        out = sdcodec.decode_image(sdz_with_alpha(alpha_plane.encode_alpha(plane)), model=str(tiny_vae_dir))
        np.testing.assert_array_equal(np.asarray(out)[..., 3], plane)


@pytest.mark.parametrize(
    "make",
    [
        lambda: encoded(gray_rgb(40, 30), "WEBP", lossless=True),
        lambda: encoded(gray_rgb(40, 30), "WEBP", quality=50),
        lambda: encoded(gray_rgb(40, 30), "WEBP", lossless=True, exif=b"Exif\x00\x00"),
    ],
    ids=["VP8L", "VP8", "VP8X"],
)
def test_webp_declared_size_reads_every_layout(make):
    data = make()
    assert alpha_plane.webp_declared_size(data) == Image.open(io.BytesIO(data)).size == (40, 30)


# ru_maxrss would carry the parent's peak across fork and exec; VmHWM is this process's own.
PEAK_KB = """
def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
"""

ALPHA_PROBE = (
    PEAK_KB
    + """
import importlib.util, io, json, sys
spec = importlib.util.spec_from_file_location("alpha_plane", sys.argv[1])
alpha_plane = importlib.util.module_from_spec(spec)
spec.loader.exec_module(alpha_plane)
bomb = sys.stdin.buffer.read()
before = peak_kb()
try:
    alpha_plane.decode_alpha(bomb, 64, 48)
    error = None
except Exception as exc:
    error = type(exc).__name__
grown_kb = peak_kb() - before
print(json.dumps({"error": error, "grown_kb": grown_kb, "torch": "torch" in sys.modules}))
"""
)


needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc")


@needs_proc
def test_alpha_bomb_is_refused_without_torch_and_without_memory():
    bomb = b"\x01" + black_bilevel_png(12000, 12000)  # 144 MB in Pillow's mode 1, as much again as L
    result = subprocess.run(
        [sys.executable, "-c", ALPHA_PROBE, str(REPO / "codec" / "images" / "alpha_plane.py")],
        input=bomb,
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report == {"error": "AlphaPlaneError", "grown_kb": report["grown_kb"], "torch": False}
    assert report["grown_kb"] < 20_000


# --- 2. the input ceiling of encode ----------------------------------------------------------


@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> Path:
    """9000 x 8000 = 72 Mpx, above the default ceiling of 64 Mpx (and under Pillow's own limit)."""
    path = tmp_path_factory.mktemp("big") / "big.png"
    path.write_bytes(black_bilevel_png(9000, 8000))
    return path


def test_an_image_above_the_ceiling_is_refused_from_its_header(big_png):
    with pytest.raises(ImageReadError) as caught:
        load_image(big_png)
    message = str(caught.value)
    assert "9000x8000 (72000000 pixels) is above the ceiling of 67108864 pixels" in message
    assert "--max-pixels" in message and "max_pixels=" in message and "\n" not in message


def test_the_ceiling_beats_the_model_load_in_encode_image(big_png):
    with pytest.raises(ImageReadError, match="above the ceiling"):  # not ModelLoadError
        sdcodec.encode_image(big_png, model=UNLOADABLE_MODEL)


ENCODE_PROBE = (
    PEAK_KB
    + """
import json, sys
import sdcodec
import sdcodec.codec.image_codec  # torch and the models' code load before the measurement
before = peak_kb()
try:
    sdcodec.encode_image(sys.argv[1], model=sys.argv[2])
    error = None
except Exception as exc:
    error = type(exc).__name__
print(json.dumps({"error": error, "grown_kb": peak_kb() - before}))
"""
)


@needs_proc
def test_refusing_an_oversized_image_takes_no_memory(big_png):
    result = subprocess.run(
        [sys.executable, "-c", ENCODE_PROBE, str(big_png), UNLOADABLE_MODEL],
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["error"] == "ImageReadError"
    assert report["grown_kb"] < 20_000  # decoding it would take 72 MB at the very least


def test_a_pillow_image_is_checked_by_its_size():
    image = Image.new("RGB", (100, 50))
    with pytest.raises(ImageReadError, match="100x50 .* above the ceiling of 4999 pixels"):
        load_image(image, max_pixels=4999)
    assert load_image(image, max_pixels=5000).rgb.shape == (50, 100, 3)


@pytest.mark.parametrize("size", [(10000, 10000), (20000, 10000)], ids=["over Pillow's limit", "over twice it"])
def test_pillow_neither_warns_nor_decides_for_images_above_the_ceiling(tmp_path, size):
    path = tmp_path / "huge.png"
    path.write_bytes(black_bilevel_png(*size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the test
        with pytest.raises(ImageReadError, match=f"{size[0]}x{size[1]} .* above the ceiling of 67108864"):
            load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP", "GIF", "JPEG"])
def test_an_explicit_ceiling_above_pillows_own_limit_is_honoured(tmp_path, monkeypatch, fmt):
    path = tmp_path / f"image.{fmt.lower()}"
    gray_rgb(60, 40).save(path, fmt)  # 2400 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path).load()  # Pillow alone refuses it: the ceiling below must override that
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path, max_pixels=3000).rgb.shape == (40, 60, 3)
        with pytest.raises(ImageReadError, match="60x40 .* above the ceiling of 2000"):
            load_image(path, max_pixels=2000)
    assert Image.MAX_IMAGE_PIXELS == 1000  # the global is put back


def test_file_objects_are_read_like_paths(tmp_path):
    data = encoded(gray_rgb(30, 20), "PNG")
    assert load_image(io.BytesIO(data)).rgb.shape == (20, 30, 3)
    with pytest.raises(ImageReadError, match="30x20 .* ceiling of 100"):
        load_image(io.BytesIO(data), max_pixels=100)


# --- 3. the Pillow plugin: decoding is an explicit opt-in -------------------------------------


@pytest.fixture(autouse=True)
def unconfigured_plugin(monkeypatch):
    monkeypatch.delenv("SDCODEC_MODEL", raising=False)
    pil_plugin.configure()
    yield
    pil_plugin.configure()


@pytest.fixture
def no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(autoencoders, "load_autoencoder", refuse)
    monkeypatch.setattr(hub, "from_pretrained", refuse)  # the one way to the hub


@pytest.fixture(scope="module")
def kodak_crop(kodak_dir) -> Image.Image:
    with Image.open(kodak_dir / "kodim23.png") as image:
        return image.convert("RGB").crop((256, 128, 384, 224))  # 128 x 96


@pytest.fixture(scope="module")
def flux2_file(kodak_crop, taef2_spec) -> bytes:
    return sdcodec.encode_image(kodak_crop, model=taef2_spec, quality=60)


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    return 10 * np.log10(255**2 / np.mean((x - y) ** 2))


def test_plugin_decodes_with_the_configured_model(flux2_file, kodak_crop, taef2_spec):
    pil_plugin.configure(model=taef2_spec)
    image = Image.open(io.BytesIO(flux2_file))
    assert image.format == "SDZ" and image.size == (128, 96) and image.info["latent_space"] == "flux2"
    image.load()
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(sdcodec.decode_image(flux2_file, model=taef2_spec)))
    assert psnr(image, kodak_crop) > 24.0


def test_plugin_takes_the_model_from_sdcodec_model(flux2_file, taef2_spec, monkeypatch):
    monkeypatch.setenv("SDCODEC_MODEL", taef2_spec)
    assert Image.open(io.BytesIO(flux2_file)).convert("RGB").size == (128, 96)


def test_unconfigured_plugin_reads_the_header_but_loads_no_model(flux2_file, no_model_loads):
    image = Image.open(io.BytesIO(flux2_file))
    assert image.size == (128, 96)  # opening stays cheap and works
    with pytest.raises(OSError) as caught:
        image.load()
    message = str(caught.value)
    assert "sdcodec.register(model=" in message and "SDCODEC_MODEL" in message and "\n" not in message


def test_plugin_applies_the_decoding_ceiling_before_any_model(flux2_file, taef2_spec, no_model_loads):
    pil_plugin.configure(model=taef2_spec, max_pixels=128 * 96 - 1)
    with pytest.raises(OSError, match="ceiling.*register\\(max_pixels=") as caught:
        Image.open(io.BytesIO(flux2_file)).load()
    assert isinstance(caught.value.__cause__, bitstream.TooLargeError)


def test_plugin_reports_a_corrupt_alpha_plane_before_any_model(taef2_spec, no_model_loads):
    pil_plugin.configure(model=taef2_spec)
    image = Image.open(io.BytesIO(sdz_with_alpha(b"\x01" + black_bilevel_png(60000, 60000))))
    assert image.mode == "RGBA"
    with pytest.raises(OSError, match="alpha plane PNG declares 60000x60000") as caught:
        image.load()
    assert isinstance(caught.value.__cause__, AlphaPlaneError)


def test_plugin_keeps_the_alpha_plane(taef2_spec, kodak_crop):
    alpha = np.zeros((96, 128), np.uint8)
    alpha[10:80, 20:100] = 200
    rgba = kodak_crop.copy()
    rgba.putalpha(Image.fromarray(alpha))
    pil_plugin.configure(model=taef2_spec)
    image = Image.open(io.BytesIO(sdcodec.encode_image(rgba, model=taef2_spec)))
    image.load()
    assert image.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(image)[..., 3], alpha)
