"""The command line as users of cwebp, cjxl and ImageMagick expect it: --version, short usage errors,
``-`` for stdin/stdout, several files per call, progress that suits the terminal (issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import sdcodec
from sdcodec.cli import app

runner = CliRunner()


def run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def sdcodec_process(*args, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    """A real ``sdcodec`` process (bytes in and out: stdout may carry an image)."""
    return subprocess.run(
        [sys.executable, "-m", "sdcodec.cli", *map(str, args)], input=stdin, capture_output=True, timeout=300, cwd=cwd
    )


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)).save(path)
    return path


# --- version and usage errors -------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_prints_the_installed_version(flag):
    result = sdcodec_process(flag)
    assert result.returncode == 0 and result.stdout.decode() == f"sdcodec {sdcodec.__version__}\n"


@pytest.mark.parametrize(
    "args, named",
    [
        (("encode", "a.png", "b.sdz", "--device", "tpu"), "tpu"),
        (("encode", "a.png", "b.sdz", "--bpp", "0"), "--bpp"),
        (("encode", "a.png", "b.sdz", "--bpp", "nan"), "--bpp"),
        (("encode", "a.png", "b.sdz", "--quality", "0"), "--quality"),
        (("encode", "a.png", "b.sdz", "--psnr", "30", "-Q", "40"), "--psnr"),
        (("encode", "a.png", "b.sdz", "--psnr", "0"), "--psnr"),
        (("encode", "a.png", "b.webp"), "b.sdz"),  # a .sdz called b.webp would fool every viewer
        (("encode", "a.sdz", "a.png"), "decode writes images"),
        (("decode", "a.sdz", "b.png", "--device", "gpu"), "gpu"),
        (("gen", "a cat", "--bpp", "-1", "-o", "x.sdz"), "--bpp"),
        (("frobnicate",), "frobnicate"),
    ],
)
def test_usage_errors_are_two_lines_and_exit_2(args, named):
    result = sdcodec_process(*args)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ") and named in lines[0] and "--help" in lines[1]
    assert result.stdout == b""


def test_bpp_help_states_the_range_it_accepts():
    text = run("encode", "--help").stdout
    assert "x>=0.0" not in text and "(> 0)" in text


def test_device_names_torch_knows_pass_the_usage_check(tmp_path, photo, tiny_vae_dir):
    result = run("encode", photo, tmp_path / "x.sdz", "-m", tiny_vae_dir, "--device", "CPU", "-q")
    assert result.exit_code == 0 and (tmp_path / "x.sdz").exists()


def test_info_takes_several_files_and_goes_on_past_a_bad_one(tmp_path):
    """`sdcodec info *.sdz`: a table per file headed by its name, or one JSON line each; a bad file is one line, exit 1."""
    from sdcodec.codec.coding import latent_coder

    names = []
    for width in (16, 24):
        path = tmp_path / f"w{width}.sdz"
        path.write_bytes(latent_coder.encode_latent(np.zeros((4, 2, width // 8)), step=1.0, width=width, height=16))
        names.append(path)
    bad = tmp_path / "bad.sdz"
    bad.write_bytes(b"not sdz")
    result = sdcodec_process("info", names[0], bad, names[1])
    out = result.stdout.decode().splitlines()
    errors = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1 and errors == [f"error: {bad}: not an .sdz file (bad magic bytes)"]
    assert [line.split()[1] for line in out if line.split()[:1] == ["file"]] == [str(names[0]), str(names[1])]
    assert [line.split()[1] for line in out if line.split()[:1] == ["width"]] == ["16", "24"]
    lines = run("info", "--json", *names).stdout.splitlines()
    facts = [json.loads(line) for line in lines]
    assert [(f["file"], f["width"]) for f in facts] == [(str(names[0]), 16), (str(names[1]), 24)]
    assert "file" not in json.loads(run("info", "--json", names[0]).stdout)  # one file: as before


def test_info_columns_line_up(tmp_path):
    """Every value starts in the same column, however long the key (restore_guidance is the longest)."""
    from sdcodec.codec.coding import latent_coder

    sdz = tmp_path / "x.sdz"
    sdz.write_bytes(
        latent_coder.encode_latent(
            np.zeros((4, 2, 2)), step=1.0, latent_space="sd1", width=16, height=16, restore_steps=2, caption="a b"
        )
    )
    lines = run("info", sdz).stdout.splitlines()
    keys = [line.split()[0] for line in lines]
    assert "restore_guidance" in keys and "caption" in keys
    value_columns = {line.index(key) + len(key) + 2 for line, key in zip(lines, keys)}
    assert len(value_columns) == 1, lines
    assert lines[keys.index("caption")].endswith("  a b")


# --- "-" as standard input and output (real processes: the bytes on stdout are the product) -----


def test_stdin_to_stdout_round_trip_keeps_stdout_clean(tmp_path, photo, tiny_taesd_spec):
    """Real processes, since what reaches file descriptor 1 is the product: exactly the file's bytes."""
    assert run("encode", photo, tmp_path / "x.sdz", "-m", tiny_taesd_spec, "-q").exit_code == 0
    encoded = sdcodec_process("encode", "-", "-", "-m", tiny_taesd_spec, stdin=photo.read_bytes(), cwd=tmp_path)
    assert encoded.returncode == 0 and encoded.stdout == (tmp_path / "x.sdz").read_bytes()
    assert b"wrote <stdout>" in encoded.stderr  # the notices went to stderr
    assert not (tmp_path / "-").exists()
    described = sdcodec_process("info", "-", stdin=encoded.stdout)
    assert described.returncode == 0 and b"width  32" in described.stdout
    decoded = sdcodec_process("decode", "-", "-", "-m", tiny_taesd_spec, "--format", "webp", stdin=encoded.stdout)
    assert decoded.returncode == 0 and decoded.stdout[8:12] == b"WEBP"
    with Image.open(__import__("io").BytesIO(decoded.stdout)) as image:
        assert image.format == "WEBP" and image.size == (32, 24)


def test_encode_to_stdout_writes_exactly_the_file(tmp_path, photo, tiny_vae_dir):
    assert run("encode", photo, tmp_path / "x.sdz", "-m", tiny_vae_dir, "-q").exit_code == 0
    piped = run("encode", photo, "-", "-m", tiny_vae_dir, "-q")
    assert piped.exit_code == 0 and piped.stderr == ""
    assert piped.stdout_bytes == (tmp_path / "x.sdz").read_bytes()
    assert not (photo.parent / "-").exists()


def test_decode_to_stdout_is_png_by_default(tmp_path, photo, tiny_vae_dir):
    sdz = tmp_path / "x.sdz"
    run("encode", photo, sdz, "-m", tiny_vae_dir, "-q")
    result = run("decode", sdz, "-", "-m", tiny_vae_dir, "-q")
    assert result.exit_code == 0 and result.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n" and result.stderr == ""


def test_binary_output_is_not_written_to_a_terminal(photo, tiny_vae_dir):
    import os
    import pty

    primary, secondary = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sdcodec.cli", "encode", str(photo), "-", "-m", str(tiny_vae_dir)],
            stdout=secondary,
            stderr=subprocess.PIPE,
            timeout=300,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == 1 and b"terminal" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_stdin_is_one_line_naming_stdin(tiny_vae_dir):
    result = run("encode", "-", "-", "-m", tiny_vae_dir, input=b"not an image")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and result.stdout_bytes == b"" and len(lines) == 1 and "<stdin>" in lines[0]


# --- the Python API -------------------------------------------------------------------------------


def test_decode_image_takes_a_path_and_encode_image_takes_file_bytes(tmp_path, photo, tiny_vae_dir):
    from pathlib import Path

    model = str(tiny_vae_dir)
    data = sdcodec.encode_image(photo.read_bytes(), model=model)  # the PNG file's bytes
    assert data == sdcodec.encode_image(photo, model=model)
    sdz = tmp_path / "x.sdz"
    sdz.write_bytes(data)
    for source in (sdz, str(sdz), data, bytearray(data)):
        assert sdcodec.decode_image(source, model=model).size == (32, 24)
    with pytest.raises(sdcodec.SdcodecError, match="cannot read tmp|no such file|cannot read"):
        sdcodec.decode_image(Path(tmp_path / "missing.sdz"), model=model)
    with pytest.raises(TypeError, match="not int"):
        sdcodec.decode_image(42, model=model)


def test_encode_image_error_on_garbage_bytes_is_short():
    garbage = bytes(range(256)) * 40
    with pytest.raises(sdcodec.ImageReadError) as caught:
        sdcodec.encode_image(garbage, model="no-model-needed-first")
    assert str(caught.value) == "cannot read image <bytes>: not an image file (format not recognised)"
    with pytest.raises(TypeError, match="not int"):
        sdcodec.encode_image(7)


def test_register_gives_the_pillow_plugin_its_model(tmp_path, photo, tiny_vae_dir):
    sdz = tmp_path / "x.sdz"
    sdz.write_bytes(sdcodec.encode_image(photo, model=str(tiny_vae_dir)))
    try:
        sdcodec.register(model=str(tiny_vae_dir))
        with Image.open(sdz) as image:
            image.load()
            assert image.size == (32, 24) and image.mode == "RGB"
    finally:
        sdcodec.register()


def test_pillow_saves_sdz_with_the_registered_model_and_encode_images_options(
    tmp_path, photo, tiny_vae_dir, monkeypatch
):
    monkeypatch.delenv("SDCODEC_MODEL", raising=False)
    image = Image.open(photo)
    with pytest.raises(OSError, match="no model configured for encoding .sdz files in Pillow"):
        image.save(tmp_path / "none.sdz")
    assert not (tmp_path / "none.sdz").exists()
    try:
        sdcodec.register(model=str(tiny_vae_dir))
        exif = Image.Exif()
        exif[0x010F] = "TestCam"
        image.save(tmp_path / "a.sdz", quality=30, caption="a test card", exif=exif.tobytes())
        expected = sdcodec.encode_image(photo, model=str(tiny_vae_dir), quality=30, caption="a test card")
        with Image.open(tmp_path / "a.sdz") as back:
            assert (back.size, back.info["caption"], back.getexif().get(0x010F)) == ((32, 24), "a test card", "TestCam")
        assert (
            sdcodec.read_latent((tmp_path / "a.sdz").read_bytes())[0].tolist()
            == sdcodec.read_latent(expected)[0].tolist()
        )
        with pytest.raises(ValueError, match="unknown .sdz save option.s. qualty; known: quality, bpp"):
            image.save(tmp_path / "b.sdz", qualty=3)
        with pytest.raises(OSError, match="cannot encode .sdz: quality must be between 1 and 100"):
            image.save(tmp_path / "c.sdz", quality=300)
        assert not (tmp_path / "b.sdz").exists() and not (tmp_path / "c.sdz").exists()
    finally:
        sdcodec.register()


# --- decoding to lossy formats --------------------------------------------------------------------


@pytest.fixture
def sdz_file(tmp_path, photo, tiny_vae_dir):
    sdz = tmp_path / "x.sdz"
    assert run("encode", photo, sdz, "-m", tiny_vae_dir, "-q").exit_code == 0
    return sdz


def test_webp_output_is_lossless_unless_a_quality_is_given(tmp_path, sdz_file, tiny_vae_dir):
    lossless, lossy, png = tmp_path / "a.webp", tmp_path / "b.webp", tmp_path / "c.png"
    for output, extra in ((lossless, ()), (lossy, ("--output-quality", 40)), (png, ())):
        assert run("decode", sdz_file, output, "-m", tiny_vae_dir, *extra).exit_code == 0
    assert lossless.read_bytes()[12:16] == b"VP8L" and lossy.read_bytes()[12:16] == b"VP8 "
    np.testing.assert_array_equal(np.asarray(Image.open(lossless)), np.asarray(Image.open(png)))


def test_jpeg_output_quality_is_used_and_stated_in_help(tmp_path, sdz_file, tiny_vae_dir):
    fine, coarse = tmp_path / "fine.jpg", tmp_path / "coarse.jpg"
    assert run("decode", sdz_file, fine, "-m", tiny_vae_dir).exit_code == 0
    assert run("decode", sdz_file, coarse, "-m", tiny_vae_dir, "--output-quality", 20).exit_code == 0
    assert coarse.stat().st_size < fine.stat().st_size
    help_text = " ".join(run("decode", "--help").stdout.split())
    assert "--output-quality" in help_text and "WebP is written lossless" in help_text


def test_output_quality_for_a_lossless_format_is_a_usage_error(tmp_path, sdz_file, tiny_vae_dir):
    result = run("decode", sdz_file, tmp_path / "x.png", "-m", tiny_vae_dir, "--output-quality", 80)
    assert result.exit_code == 2 and "PNG" in result.stderr and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("red, saved", [(200, "RGB"), (0, "L")])  # a gray picture decodes as LA, then L
def test_alpha_file_to_jpeg_reports_the_mode_saved(tmp_path, tiny_vae_dir, red, saved):
    rgba = np.zeros((12, 20, 4), np.uint8)
    rgba[..., 0] = red
    rgba[..., 3] = np.arange(20, dtype=np.uint8) * 12
    source, sdz, jpeg = tmp_path / "rgba.png", tmp_path / "rgba.sdz", tmp_path / "rgba.jpg"
    Image.fromarray(rgba, "RGBA").save(source)
    assert run("encode", source, sdz, "-m", tiny_vae_dir).exit_code == 0
    result = run("decode", sdz, jpeg, "-m", tiny_vae_dir)
    assert result.exit_code == 0 and "transparency" in result.stderr
    wrote = next(line for line in result.stderr.splitlines() if line.startswith("wrote"))
    assert f" {saved} " in wrote and "A " not in wrote and Image.open(jpeg).mode == saved


def test_encoding_an_animation_says_only_its_first_frame_is_kept(tmp_path, tiny_vae_dir):
    frames = [Image.new("RGB", (20, 12), (60 * k, 0, 0)) for k in range(4)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    result = run("encode", tmp_path / "anim.gif", tmp_path / "anim.sdz", "-m", tiny_vae_dir)
    assert result.exit_code == 0, result.output
    assert "4 frames" in result.stderr and "only the first is encoded" in result.stderr
    still = run("encode", tmp_path / "anim.gif", tmp_path / "quiet.sdz", "-m", tiny_vae_dir, "-q")
    assert still.exit_code == 0 and still.stderr == ""
