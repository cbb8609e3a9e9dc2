"""One archive row's work without Ray (codec/archive/row_work.py): a decode row writes what ``sdcodec decode`` writes."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pyarrow")

import sdcodec  # noqa: E402
from sdcodec.codec.archive.row_work import decode_row  # noqa: E402
from sdcodec.codec.images.image_output import image_file_bytes  # noqa: E402


@pytest.fixture(scope="module")
def transparent_sdz(tmp_path_factory, tiny_taesd_spec):
    """A .sdz of a 40x24 RGBA image whose left half is transparent."""
    rng = np.random.default_rng(5)
    pixels = np.concatenate([rng.integers(0, 256, (24, 40, 3)), np.full((24, 40, 1), 255)], axis=2).astype(np.uint8)
    pixels[:, :20, 3] = 0
    path = tmp_path_factory.mktemp("rows") / "t.sdz"
    path.write_bytes(sdcodec.encode_image(Image.fromarray(pixels), model=tiny_taesd_spec, device="cpu"))
    return path


@pytest.mark.parametrize("extension, quality", [(".jpg", None), (".jpg", 60), (".webp", None), (".png", None)])
def test_a_decode_row_writes_the_clis_bytes_and_notes_what_the_format_lost(
    transparent_sdz, tiny_taesd_spec, tmp_path, extension, quality
):
    options = {"decoder": tiny_taesd_spec, "restore_steps": 0, "device": "cpu"}
    output = tmp_path / f"t{extension}"
    row = decode_row(str(transparent_sdz), str(output), options | {"output_quality": quality})
    assert row["error"] is None and row["bytes"] == output.stat().st_size
    image = sdcodec.decode_image(transparent_sdz.read_bytes(), **options)
    fmt = {".jpg": "JPEG", ".webp": "WEBP", ".png": "PNG"}[extension]
    expected, _ = image_file_bytes(image, fmt, quality=quality, notice=lambda message: None)
    assert output.read_bytes() == expected  # JPEG at 95 4:4:4 and lossless WebP, as the CLI writes them
    if extension == ".jpg":  # JPEG used to fail the row ("cannot write mode RGBA as JPEG")
        assert "JPEG has no alpha channel" in row["notes"]
    else:
        assert row["notes"] is None
        with Image.open(io.BytesIO(expected)) as back:
            saved, decoded = np.asarray(back), np.asarray(image)
        visible = decoded[..., 3] > 0  # lossless WebP may clear the colour of fully transparent pixels
        assert back.mode == "RGBA" and np.array_equal(saved[..., 3], decoded[..., 3])
        assert np.array_equal(saved[visible], decoded[visible])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--format", "xyz"], "cannot tell an image format to write from '.xyz'"),
        (["--format", "ico"], "ICO is an icon format"),
        (["--format", "png", "--output-quality", "80"], "applies to JPEG, WebP and AVIF output, not PNG"),
    ],
)
def test_archive_decode_checks_the_format_and_quality_as_decode_does(tmp_path, arguments, message):
    command = [sys.executable, "-m", "sdcodec.cli", "archive", "decode", str(tmp_path), "--out", str(tmp_path)]
    result = subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in " ".join(result.stderr.split()), result.stderr
