"""The command line as users of cwebp, cjxl and ImageMagick expect it: --version, short usage errors,
``-`` for stdin/stdout, several files per call, progress that suits the terminal (issue 12)."""

from __future__ import annotations

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


def sdcodec_process(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """A real ``sdcodec`` process (bytes in and out: stdout may carry an image)."""
    return subprocess.run(
        [sys.executable, "-m", "sdcodec.cli", *map(str, args)], input=stdin, capture_output=True, timeout=300
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
