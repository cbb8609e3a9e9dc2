"""The invisible watermark: marked by default, detected after PNG and JPEG q90, absent when asked."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from typer.testing import CliRunner

from sdcodec.cli import app
from sdcodec.codec.diffusion.watermark import add_watermark, detect


@pytest.fixture
def kodak_crop(kodak_dir) -> Image.Image:
    """A natural picture: the mark hides in texture, as it does in generated images."""
    with Image.open(kodak_dir / "kodim01.png") as image:
        return image.convert("RGB").crop((0, 0, 320, 256))


def round_trip(image: Image.Image, fmt: str, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def test_unmarked_image_is_not_detected(kodak_crop):
    assert not detect(kodak_crop).present


@pytest.mark.parametrize("fmt, options", [("PNG", {}), ("JPEG", {"quality": 90})])
def test_mark_survives_png_and_jpeg_q90(kodak_crop, fmt, options):
    marked = add_watermark(kodak_crop)
    assert marked.size == kodak_crop.size and marked.tobytes() != kodak_crop.tobytes()
    found = detect(round_trip(marked, fmt, **options))
    assert found.present and found.matching_bits >= 0.85 * found.total_bits


def test_small_images_are_left_unmarked():
    small = Image.new("RGB", (64, 64), (120, 80, 40))
    assert add_watermark(small) is small
    with pytest.raises(ValueError, match="too small"):
        detect(small)


def test_cli_watermark_exit_status(kodak_crop, tmp_path):
    marked, plain = tmp_path / "marked.jpg", tmp_path / "plain.png"
    add_watermark(kodak_crop).save(marked, quality=90)
    kodak_crop.save(plain)
    runner = CliRunner()
    yes = runner.invoke(app, ["watermark", str(marked)])
    assert yes.exit_code == 0 and "watermark present" in yes.output
    no = runner.invoke(app, ["watermark", str(plain)])
    assert no.exit_code == 3 and "no watermark" in no.output


def test_gen_marks_its_images_unless_told_not_to(tiny_pipeline_dir, tmp_path):
    runner = CliRunner()
    common = ["--model", str(tiny_pipeline_dir), "--steps", "2", "-W", "256", "-H", "256", "--seed", "1", "-q"]
    marked, plain = tmp_path / "marked.png", tmp_path / "plain.png"
    assert runner.invoke(app, ["gen", "a cat", "-o", str(marked), *common]).exit_code == 0
    assert runner.invoke(app, ["gen", "a cat", "-o", str(plain), "--no-watermark", *common]).exit_code == 0
    assert detect(Image.open(marked)).present
    assert not detect(Image.open(plain)).present


def test_gen_says_when_its_image_is_too_small_to_mark(tiny_pipeline_dir, tmp_path):
    common = ["--model", str(tiny_pipeline_dir), "--steps", "1", "-W", "64", "-H", "64", "--seed", "1"]
    result = CliRunner().invoke(app, ["gen", "a cat", "-o", str(tmp_path / "small.png"), *common])
    assert result.exit_code == 0, result.output
    assert "too small for the invisible watermark" in result.output
    quiet = CliRunner().invoke(app, ["gen", "a cat", "-o", str(tmp_path / "q.png"), "--no-watermark", *common])
    assert "watermark" not in quiet.output
