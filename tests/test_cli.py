"""The command line as a user meets it: exit codes, one-line errors, no partial or clobbered files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sdcodec.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, size=(30, 45, 3), dtype=np.uint8)).save(path)
    return path


def test_encode_info_decode_round_trip(tmp_path, photo, tiny_vae_dir):
    sdz, png = tmp_path / "x.sdz", tmp_path / "x.png"
    assert run("encode", photo, sdz, "--model", tiny_vae_dir, "--quality", 40, "--caption", "noise").exit_code == 0
    result = run("info", sdz, "--json")
    assert result.exit_code == 0
    facts = json.loads(result.stdout)
    assert facts["width"] == 45 and facts["height"] == 30 and facts["latent_space"] == "sd1"
    assert facts["latent_shape"] == [4, 4, 6] and facts["caption"] == "noise"
    assert facts["total_bytes"] == sdz.stat().st_size and facts["bpp"] == pytest.approx(
        8 * facts["total_bytes"] / (45 * 30)
    )
    assert 0 < facts["header_bytes"] < 32 + len("noise") and facts["quant_step"] > 0
    result = run("decode", sdz, png, "--model", tiny_vae_dir, "--restore-steps", 0, "-q")
    assert result.exit_code == 0 and result.stderr == ""
    assert Image.open(png).size == (45, 30)


def test_bpp_ceiling_from_the_cli(tmp_path, photo, tiny_vae_dir):
    sdz = tmp_path / "x.sdz"
    assert run("encode", photo, sdz, "-m", tiny_vae_dir, "--bpp", 1.5).exit_code == 0
    assert 8 * sdz.stat().st_size / (45 * 30) <= 1.5


def test_existing_output_needs_force_and_input_is_never_overwritten(tmp_path, photo, tiny_vae_dir):
    sdz = tmp_path / "x.sdz"
    sdz.write_bytes(b"keep me")
    result = run("encode", photo, sdz, "-m", tiny_vae_dir)
    assert result.exit_code == 1 and "--force" in one_line_error(result)
    assert sdz.read_bytes() == b"keep me"
    assert run("encode", photo, sdz, "-m", tiny_vae_dir, "--force").exit_code == 0
    assert sdz.read_bytes()[:3] == b"SDZ"
    before = photo.read_bytes()
    result = run("encode", photo, photo, "-m", tiny_vae_dir, "--force")
    assert result.exit_code == 2 and photo.read_bytes() == before  # an image name is never encode's output
    unnamed = tmp_path / "photo.bin"  # an image whose name does not say so
    unnamed.write_bytes(before)
    result = run("encode", unnamed, unnamed, "-m", tiny_vae_dir, "--force")
    assert result.exit_code == 1 and unnamed.read_bytes() == before


@pytest.mark.parametrize("kind", ["not-an-image", "truncated-png", "missing"])
def test_bad_input_images_give_exit_1_and_one_line(tmp_path, photo, tiny_vae_dir, kind):
    bad = tmp_path / "bad.png"
    if kind == "not-an-image":
        bad.write_text("hello, I am text")
    elif kind == "truncated-png":
        bad.write_bytes(photo.read_bytes()[:200])
    out = tmp_path / "out.sdz"
    result = run("encode", bad, out, "-m", tiny_vae_dir)
    assert result.exit_code == 1 and "bad.png" in one_line_error(result)
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_corrupt_sdz_gives_exit_1_and_one_line(tmp_path, photo, tiny_vae_dir):
    sdz = tmp_path / "x.sdz"
    run("encode", photo, sdz, "-m", tiny_vae_dir)
    data = bytearray(sdz.read_bytes())
    data[len(data) // 2] ^= 0x40
    sdz.write_bytes(bytes(data))
    for args in (("decode", sdz, tmp_path / "y.png", "-m", tiny_vae_dir), ("info", sdz)):
        result = run(*args)
        assert result.exit_code == 1 and "corrupt" in one_line_error(result)
    assert not (tmp_path / "y.png").exists()
    sdz.write_bytes(bytes(data[:20]))
    assert "truncated" in one_line_error(run("info", sdz))


def test_latent_space_mismatch_from_the_cli(tmp_path, photo, tiny_vae_dir, taef2_spec):
    sdz = tmp_path / "x.sdz"
    run("encode", photo, sdz, "-m", tiny_vae_dir)
    result = run("decode", sdz, tmp_path / "y.png", "--model", taef2_spec)
    assert result.exit_code == 1 and "latent space" in one_line_error(result)


def test_missing_model_names_it_and_how_to_supply_it(tmp_path, photo):
    result = run("encode", photo, tmp_path / "x.sdz", "--model", tmp_path / "no-such-model")
    line = one_line_error(result)
    assert result.exit_code == 1 and "no-such-model" in line and "--model" in line


@pytest.mark.parametrize(
    "args",
    [
        ("encode", "a.png", "b.sdz", "--quality", "0"),
        ("encode", "a.png", "b.sdz", "--quality", "5", "--bpp", "1"),
        ("decode", "a.sdz", "b.png", "--restore-steps", "-1"),
        ("encode", "a.png"),
        ("frobnicate",),
    ],
)
def test_usage_errors_exit_2(args):
    assert run(*args).exit_code == 2


def test_exif_rotated_jpeg_and_grayscale_through_the_cli(tmp_path, tiny_vae_dir):
    jpeg = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.new("RGB", (40, 16), "orange").save(jpeg, exif=exif)
    gray = tmp_path / "gray.png"
    Image.new("L", (17, 9), 128).save(gray)
    for source, size in ((jpeg, (16, 40)), (gray, (17, 9))):
        sdz, png = tmp_path / f"{source.stem}.sdz", tmp_path / f"{source.stem}.out.png"
        assert run("encode", source, sdz, "-m", tiny_vae_dir).exit_code == 0
        assert run("decode", sdz, png, "-m", tiny_vae_dir).exit_code == 0
        assert Image.open(png).size == size


def test_rgba_keeps_alpha_and_jpeg_output_flattens_with_a_notice(tmp_path, tiny_vae_dir):
    rgba = np.zeros((12, 20, 4), np.uint8)
    rgba[..., 0] = 200  # colour: a gray picture would decode as LA
    rgba[..., 3] = np.arange(20, dtype=np.uint8) * 12
    source = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(source)
    sdz = tmp_path / "rgba.sdz"
    run("encode", source, sdz, "-m", tiny_vae_dir)
    assert run("decode", sdz, tmp_path / "out.png", "-m", tiny_vae_dir).exit_code == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png"))[..., 3], rgba[..., 3])
    result = run("decode", sdz, tmp_path / "out.jpg", "-m", tiny_vae_dir)
    assert result.exit_code == 0 and "transparency" in result.stderr


def test_real_subprocess_encode_and_failure(tmp_path, photo, tiny_taesd_spec):
    sdz = tmp_path / "x.sdz"
    ok = subprocess.run(
        [sys.executable, "-m", "sdcodec.cli", "encode", str(photo), str(sdz), "-m", str(tiny_taesd_spec), "-q"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stderr == "" and sdz.exists()
    bad = subprocess.run(
        [sys.executable, "-m", "sdcodec.cli", "decode", str(photo), str(tmp_path / "y.png")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_outputs_get_the_usual_file_mode(tmp_path, photo, tiny_vae_dir):
    import os

    sdz = tmp_path / "x.sdz"
    run("encode", photo, sdz, "-m", tiny_vae_dir)
    umask = os.umask(0)
    os.umask(umask)
    assert sdz.stat().st_mode & 0o777 == 0o666 & ~umask


# --- hostile input (issue 9): checks before work, escaped output, no tracebacks ------------------


def test_caption_is_checked_before_any_model_work(tmp_path, photo):
    result = run("encode", photo, tmp_path / "x.sdz", "--model", tmp_path / "no-such-model", "--caption", "x" * 1025)
    assert result.exit_code == 1
    assert one_line_error(result) == "error: the caption is 1025 bytes of UTF-8; at most 1024 fit in a .sdz file"


def test_bad_output_location_is_found_before_the_model_loads(tmp_path, photo):
    for output, message in ((tmp_path / "missing" / "x.sdz", "does not exist"), (tmp_path, "is a directory")):
        result = run("encode", photo, output, "--model", tmp_path / "no-such-model", "--force")
        assert result.exit_code == 1 and message in one_line_error(result)


def test_info_escapes_control_characters_of_a_hostile_caption(tmp_path):
    from sdcodec.codec.coding import latent_coder

    caption = "ok\x1b[2J\x1b]0;pwned\x07\nnext line\u202eevil\tend"
    sdz = tmp_path / "evil.sdz"
    sdz.write_bytes(latent_coder.encode_latent(np.zeros((4, 2, 2)), step=1.0, caption=caption))
    result = run("info", sdz)
    assert result.exit_code == 0
    assert not any(c in result.stdout for c in "\x1b\x07\u202e\t")
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("caption"))
    assert line.endswith(r"ok\x1b[2J\x1b]0;pwned\x07\nnext line\u202eevil\tend")
    keys = [line.split()[0] for line in result.stdout.splitlines()]
    assert len({len(line) - len(line.lstrip()) + len(key) for line, key in zip(result.stdout.splitlines(), keys)}) == 1
    assert json.loads(run("info", sdz, "--json").stdout)["caption"] == caption  # JSON keeps it exact


def test_max_pixels_refuses_large_inputs_and_files(tmp_path, photo, tiny_vae_dir):
    result = run("encode", photo, tmp_path / "x.sdz", "--model", tiny_vae_dir, "--max-pixels", 1000)
    assert result.exit_code == 1 and "above the ceiling of 1000 pixels" in one_line_error(result)
    assert run("encode", photo, tmp_path / "x.sdz", "--model", tiny_vae_dir).exit_code == 0
    result = run("decode", tmp_path / "x.sdz", tmp_path / "x.png", "--model", tiny_vae_dir, "--max-pixels", 1000)
    assert result.exit_code == 1 and "ceiling" in one_line_error(result)
    assert not (tmp_path / "x.png").exists()


def test_memory_error_is_one_line_without_a_traceback(tmp_path, photo, monkeypatch):
    import sdcodec

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(sdcodec, "encode_image", exhausted)
    result = run("encode", photo, tmp_path / "x.sdz")
    assert result.exit_code == 1
    assert "out of memory" in result.stderr and "Traceback" not in result.stderr


def test_memory_error_under_an_address_space_limit_is_one_line(tmp_path):
    """A real process that runs out of memory (RLIMIT_AS) on a file at the ceiling prints one line."""
    from sdcodec.codec.coding import latent_coder

    big = tmp_path / "big.sdz"
    big.write_bytes(
        latent_coder.encode_latent(np.zeros((32, 256, 256)), step=1.0, latent_space="flux2", width=2048, height=2048)
    )
    code = (
        "import resource, sys\n"
        "from sdcodec import cli\n"
        "from sdcodec.codec import image_codec\n"  # imports first: the limit is for the decode
        "limit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 + (1 << 30)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (resource.getrlimit(resource.RLIMIT_AS)[0], resource.RLIM_INFINITY))\n"
        "import numpy as np\n"
        "real = image_codec.latent_coder.dequantize\n"
        "image_codec.latent_coder.dequantize = lambda *a: (np.ones(1 << 40, dtype=np.uint8), real(*a))[1]\n"
        "sys.argv = ['sdcodec', 'decode', sys.argv[1], sys.argv[2]]\n"
        "cli.main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(big), str(tmp_path / "big.png")],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in __import__("os").environ.items() if k != "SDCODEC_DEBUG"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: out of memory (the input is too large for this machine; see --max-pixels)"
    ]


def test_library_warnings_stay_off_stderr():
    code = (
        "import sys, warnings, logging, cli\n"
        "cli.quiet_libraries()\n"
        "warnings.warn('a library warning')\n"
        "logging.getLogger('diffusers').warning('a library log line')\n"
    )
    import os

    env = {k: v for k, v in os.environ.items() if k != "SDCODEC_DEBUG"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**env, "SDCODEC_DEBUG": "1"}, timeout=60
    )
    assert "a library warning" in loud.stderr


def test_unreadable_input_is_exit_1_with_one_line(tmp_path, photo):
    import os
    import shutil

    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run as another user")
    secret = tmp_path / "secret.png"
    secret.write_bytes(photo.read_bytes())
    secret.chmod(0o600)
    tmp_path.chmod(0o777)
    command = [
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        sys.executable,
        "-c",
        "import sys, cli; sys.argv = ['sdcodec'] + sys.argv[1:]; cli.main()",
        "encode",
        str(secret),
        str(tmp_path / "x.sdz"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=str(__import__("pathlib").Path(__file__).parents[1])
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0].lower()


def test_tune_reaches_the_encoder_and_unknown_tunes_are_usage_errors(tmp_path, photo, tiny_vae_dir):
    plain, tuned = tmp_path / "plain.sdz", tmp_path / "tuned.sdz"
    assert run("encode", photo, plain, "--model", tiny_vae_dir, "--effort", 2, "-q").exit_code == 0
    assert run("encode", photo, tuned, "--model", tiny_vae_dir, "--effort", 2, "--tune", "ssim", "-q").exit_code == 0
    assert plain.read_bytes() != tuned.read_bytes()  # the search optimised another target
    result = run("encode", photo, tmp_path / "x.sdz", "--model", tiny_vae_dir, "--tune", "vmaf")
    assert result.exit_code == 2 and "vmaf" in result.stderr
