"""inpaint, outpaint and upscale end to end through the CLI, on tiny random models.

Random weights draw noise, so the tests check what the tools promise regardless of what is
drawn: where pixels are kept exactly, where they change, output sizes, and one-line errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sdcodec.cli import app
from sdcodec.codec.diffusion.parameters import read_parameters

runner = CliRunner()
FAST = ["--steps", "2", "--seed", "3", "-q", "--no-watermark"]


@pytest.fixture
def picture(tmp_path, kodak_dir) -> tuple[Image.Image, str]:
    """A natural 100x70 picture (sides not multiples of 8, to exercise the padding)."""
    image = Image.open(kodak_dir / "kodim04.png").convert("RGB").resize((100, 70))
    path = tmp_path / "picture.png"
    image.save(path)
    return image, str(path)


def box_mask(size, box) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def run(*args) -> object:
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="session")
def inpaint_pipeline_dir(tiny_pipeline_dir, tmp_path_factory):
    from tiny_sd_tools import make_tiny_inpaint_pipeline

    return make_tiny_inpaint_pipeline(tiny_pipeline_dir, tmp_path_factory.mktemp("tiny-inpaint") / "pipeline")


@pytest.mark.parametrize("checkpoint", ["ordinary", "inpainting"])
def test_inpaint_keeps_the_unmasked_area_and_repaints_the_masked_one(
    checkpoint, picture, tmp_path, tiny_pipeline_dir, inpaint_pipeline_dir
):
    image, image_path = picture
    model = tiny_pipeline_dir if checkpoint == "ordinary" else inpaint_pipeline_dir
    box_mask(image.size, (40, 20, 72, 52)).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    result = run(
        "inpaint", image_path, tmp_path / "mask.png", "a cat", "-o", out, "--model", model, "--mask-blur", "0", *FAST
    )
    assert result.exit_code == 0, result.output
    before, after = np.asarray(image, dtype=np.int16), pixels(out)
    assert after.shape == before.shape
    outside = np.ones(before.shape[:2], bool)
    outside[20:52, 40:72] = False
    assert np.array_equal(after[outside], before[outside])  # pasted back exactly
    assert np.abs(after[20:52, 40:72] - before[20:52, 40:72]).mean() > 10
    assert "Denoising strength: 1, Mask blur: 0, Version:" in read_parameters(out)


def test_mask_blur_softens_the_seam_and_only_masked_works_on_a_box(picture, tmp_path, tiny_pipeline_dir):
    image, image_path = picture
    box_mask(image.size, (80, 8, 96, 24)).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    result = run(
        "inpaint",
        image_path,
        tmp_path / "mask.png",
        "a cat",
        "-o",
        out,
        "--model",
        tiny_pipeline_dir,
        "--mask-blur",
        "4",
        "--scheduler",
        "DPM++ 2M Karras",
        "--only-masked",
        "--padding",
        "8",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    before, after = np.asarray(image, dtype=np.int16), pixels(out)
    changed = np.abs(after - before).sum(axis=2) > 0
    assert changed[8:24, 80:96].mean() > 0.9
    assert changed[4:8, 80:96].any()  # the blurred edge blends a little beyond the mask
    assert not changed[:, :64].any() and not changed[40:].any()  # far outside the mask: untouched
    text = read_parameters(out)
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in text and "Inpaint area: Only masked" in text


def test_inpaint_starts_from_a_sdz_latent(tmp_path, tiny_pipeline_dir):
    sdz, decoded, out = tmp_path / "start.sdz", tmp_path / "decoded.png", tmp_path / "out.png"
    made = run("gen", "a house", "-o", sdz, "--model", tiny_pipeline_dir, "-W", "64", "-H", "48", *FAST)
    assert made.exit_code == 0, made.output
    assert run("decode", sdz, decoded, "--model", tiny_pipeline_dir, "--restore-steps", "0", "-q").exit_code == 0
    box_mask((64, 48), (16, 16, 48, 40)).save(tmp_path / "mask.png")
    result = run(
        "inpaint",
        sdz,
        tmp_path / "mask.png",
        "a cat",
        "-o",
        out,
        "--model",
        tiny_pipeline_dir,
        "--mask-blur",
        "0",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    before, after = pixels(decoded), pixels(out)
    assert after.shape == before.shape == (48, 64, 3)
    assert np.array_equal(after[:16], before[:16])  # the .sdz's own picture where the mask is black
    assert np.abs(after[16:40, 16:48] - before[16:40, 16:48]).mean() > 3


def test_an_inpainting_checkpoint_takes_a_sdz_as_pixels(tmp_path, tiny_pipeline_dir, inpaint_pipeline_dir):
    sdz, out = tmp_path / "start.sdz", tmp_path / "out.png"
    assert run("gen", "a house", "-o", sdz, "--model", tiny_pipeline_dir, "-W", "64", "-H", "48", *FAST).exit_code == 0
    box_mask((64, 48), (16, 16, 48, 40)).save(tmp_path / "mask.png")
    result = run(
        "inpaint", sdz, tmp_path / "mask.png", "a cat", "-o", out, "--model", inpaint_pipeline_dir, "--seed", "3"
    )
    assert result.exit_code == 0, result.output
    assert "an inpainting checkpoint" in result.output and "too small for the invisible watermark" in result.output
    assert Image.open(out).size == (64, 48)


def test_inpaint_errors_are_one_line(picture, tmp_path, tiny_pipeline_dir):
    image, image_path = picture
    Image.new("L", (50, 50), 255).save(tmp_path / "wrong-size.png")
    Image.new("L", image.size, 0).save(tmp_path / "empty.png")
    for mask, message in (("wrong-size.png", "the mask is 50x50 but the image is 100x70"), ("empty.png", "no white")):
        result = run(
            "inpaint", image_path, tmp_path / mask, "x", "-o", tmp_path / "o.png", "--model", tiny_pipeline_dir, *FAST
        )
        assert result.exit_code == 1 and message in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert run("inpaint", image_path, tmp_path / "empty.png", "x", "--strength", "0").exit_code == 2
    assert not (tmp_path / "o.png").exists()


def test_outpaint_grows_the_canvas_and_keeps_the_middle(picture, tmp_path, tiny_pipeline_dir):
    image, image_path = picture
    out = tmp_path / "out.png"
    result = run(
        "outpaint", image_path, "a room", "--extend", "16,32,0,8", "-o", out, "--model", tiny_pipeline_dir, *FAST
    )
    assert result.exit_code == 0, result.output
    after = pixels(out)
    assert after.shape == (70 + 8, 16 + 100 + 32, 3)
    assert "Size: 148x78" in read_parameters(out) and "Outpaint extend: 16,32,0,8" in read_parameters(out)
    blur = 8 * 3  # the default mask blur reaches about three radii
    middle = after[: 70 - blur, 16 + blur : 16 + 100 - blur]
    assert np.array_equal(middle, np.asarray(image, dtype=np.int16)[: 70 - blur, blur : 100 - blur])
    assert run("outpaint", image_path, "x", "--extend", "5,0,0,0").exit_code == 2


def test_outpaint_starts_the_new_area_from_the_stretched_edges():
    from sdcodec.codec.diffusion.outpaint import extended_canvas

    image = Image.new("RGB", (40, 24), (200, 30, 90))
    grown, mask = extended_canvas(image, (8, 0, 16, 0))
    assert grown.size == (48, 40) and mask.size == (48, 40)
    assert np.all(np.asarray(grown) == (200, 30, 90))
    assert np.asarray(mask)[:16].min() == 255 and np.asarray(mask)[16:, 8:].max() == 0


@pytest.fixture(scope="session")
def upscalers(tmp_path_factory):
    from tiny_sd_tools import make_tiny_x2_latent_upscaler, make_tiny_x4_upscaler

    root = tmp_path_factory.mktemp("tiny-upscalers")
    return {2: make_tiny_x2_latent_upscaler(root / "x2"), 4: make_tiny_x4_upscaler(root / "x4")}


@pytest.mark.parametrize("scale", [2, 4])
def test_upscale_with_a_model(scale, upscalers, picture, tmp_path):
    _, image_path = picture
    out = tmp_path / "big.png"
    result = run("upscale", image_path, "a face", "--scale", scale, "--model", upscalers[scale], "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (96 * scale, 64 * scale)  # sides rounded down to multiples of 8 first
    wrong = run(
        "upscale", image_path, "--scale", 6 - scale, "--model", upscalers[scale], "-o", tmp_path / "w.png", *FAST
    )
    assert wrong.exit_code == 1 and f"upscales x{scale}" in wrong.output


def test_upscale_a_sdz_latent_directly_or_decoded_larger(upscalers, tiny_pipeline_dir, tmp_path):
    sdz = tmp_path / "small.sdz"
    assert run("gen", "a house", "-o", sdz, "--model", tiny_pipeline_dir, "-W", "64", "-H", "48", *FAST).exit_code == 0
    latent_out, plain_out = tmp_path / "latent.png", tmp_path / "plain.png"
    result = run("upscale", sdz, "--model", upscalers[2], "-o", latent_out, *FAST)
    assert result.exit_code == 0, result.output
    assert Image.open(latent_out).size == (128, 96)
    result = run(
        "upscale", sdz, "--scale", "4", "--decoder", tiny_pipeline_dir, "-o", plain_out, "--seed", "1", "--no-watermark"
    )
    assert result.exit_code == 0, result.output
    assert "Lanczos" in result.output and Image.open(plain_out).size == (256, 192)


def test_upscale_an_image_needs_a_model(picture, tmp_path):
    _, image_path = picture
    result = run("upscale", image_path, "-o", tmp_path / "o.png", *FAST)
    assert result.exit_code == 1 and "needs --model" in result.output
    assert run("upscale", image_path, "--scale", "3").exit_code == 2
