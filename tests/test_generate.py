"""The generative core on a tiny random Stable Diffusion pipeline saved to disk and loaded back."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_sd import make_tiny_vae

from sdcodec.codec.diffusion.generate import SCHEDULERS, check_options, generate
from sdcodec.codec.diffusion.generate_files import output_paths
from sdcodec.codec.diffusion.parameters import caption_prompt, image_bytes, parse_parameters, read_parameters
from sdcodec.codec.diffusion.sd_pipeline import encode_prompt, load_sd_components
from sdcodec.codec.errors import ModelLoadError

SMALL = {"width": 64, "height": 64, "steps": 2}


@pytest.fixture(scope="module")
def pipeline_dir(tiny_pipeline_dir):
    return tiny_pipeline_dir


@pytest.fixture(scope="module")
def components(pipeline_dir):
    return load_sd_components(str(pipeline_dir), device="cpu")


def pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


def test_loading_is_cached_per_spec_and_device(pipeline_dir, components):
    assert load_sd_components(str(pipeline_dir), device="cpu") is components
    assert components.latent_space == "sd1"
    assert components.dtype == torch.float32


def test_same_seed_same_pixels_and_different_seed_different(components):
    first = generate(components, "a red cat", seed=42, **SMALL)[0]
    again = generate(components, "a red cat", seed=42, **SMALL)[0]
    other = generate(components, "a red cat", seed=43, **SMALL)[0]
    assert first.image.size == (64, 64)
    assert np.array_equal(pixels(first), pixels(again))
    assert np.abs(pixels(first) - pixels(other)).mean() > 1


def test_random_seed_is_chosen_and_reported(components):
    result = generate(components, "a red cat", **SMALL)[0]
    assert 0 <= result.seed < 2**32
    replay = generate(components, "a red cat", seed=result.seed, **SMALL)[0]
    assert np.array_equal(pixels(result), pixels(replay))
    assert parse_parameters(result.parameters)["Seed"] == str(result.seed)


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_scheduler_runs_and_is_reproducible(components, scheduler):
    a = generate(components, "a house", seed=1, scheduler=scheduler, **SMALL)[0]
    b = generate(components, "a house", seed=1, scheduler=scheduler, **SMALL)[0]
    assert np.array_equal(pixels(a), pixels(b))
    assert parse_parameters(a.parameters)["Sampler"] == SCHEDULERS[scheduler][2]


def test_schedulers_differ(components):
    ddim = generate(components, "a house", seed=1, scheduler="ddim", **SMALL)[0]
    euler_a = generate(components, "a house", seed=1, scheduler="euler-a", **SMALL)[0]
    assert not np.array_equal(pixels(ddim), pixels(euler_a))


def test_negative_prompt_and_emphasis_change_the_output(components):
    plain = generate(components, "a red cat", seed=7, **SMALL)[0]
    negative = generate(components, "a red cat", negative="blurry, dark", seed=7, **SMALL)[0]
    emphasis = generate(components, "a (red:1.6) cat", seed=7, **SMALL)[0]
    assert np.abs(pixels(plain) - pixels(negative)).mean() > 0.5
    assert np.abs(pixels(plain) - pixels(emphasis)).mean() > 0.5


def test_long_prompt_is_encoded_whole_and_generates(components):
    short_cond, _ = encode_prompt(components, "a cat")
    long_prompt = ", ".join(["a highly detailed oil painting of a cat on a windowsill"] * 6)
    long_cond, long_uncond = encode_prompt(components, long_prompt, "blurry")
    assert short_cond.shape[1] == 77
    assert long_cond.shape[1] >= 3 * 77 and long_cond.shape == long_uncond.shape
    result = generate(components, long_prompt, negative="blurry", seed=3, **SMALL)[0]
    assert parse_parameters(result.parameters)["Prompt"] == long_prompt  # recorded uncut


def test_several_images_get_consecutive_seeds_and_match_single_runs(components):
    calls = []
    batch = generate(components, "a tree", seed=100, num_images=2, progress=lambda d, t: calls.append((d, t)), **SMALL)
    assert [r.seed for r in batch] == [100, 101]
    single = generate(components, "a tree", seed=101, **SMALL)[0]
    assert np.array_equal(pixels(batch[1]), pixels(single))
    total = calls[-1][1]
    assert calls == [(done, total) for done in range(1, total + 1)]
    assert total == 2 * SMALL["steps"]


def test_parameters_in_png_are_present_and_parseable(components, tmp_path):
    result = generate(
        components,
        "a (red:1.2) cat, café",
        negative="ugly, bad",
        seed=5,
        guidance=6.5,
        scheduler="euler-a",
        width=64,
        height=48,
        steps=3,
    )[0]
    path = tmp_path / "out.png"
    path.write_bytes(image_bytes(result, ".png"))
    with Image.open(path) as image:
        assert image.size == (64, 48)
        text = image.info["parameters"]
    assert read_parameters(path) == text == result.parameters
    fields = parse_parameters(text)
    assert fields["Prompt"] == "a (red:1.2) cat, café"
    assert fields["Negative prompt"] == "ugly, bad"
    assert fields["Steps"] == "3"
    assert fields["Sampler"] == "Euler a"
    assert fields["CFG scale"] == "6.5"
    assert fields["Seed"] == "5"
    assert fields["Size"] == "64x48"
    assert fields["Model"] == "pipeline"  # the model's name, not its path
    assert re.fullmatch("[0-9a-f]{10}", fields["Model hash"])
    assert "Denoising strength" not in fields
    # the layout prompt readers expect: prompt, then 'Negative prompt:', then the settings line
    lines = text.split("\n")
    assert lines[1] == "Negative prompt: ugly, bad" and lines[2].startswith("Steps: 3, Sampler: Euler a, ")


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_parameters_in_jpeg_and_webp_exif(components, tmp_path, suffix):
    result = generate(components, "a boat", seed=2, **SMALL)[0]
    path = tmp_path / f"out{suffix}"
    path.write_bytes(image_bytes(result, suffix))
    assert read_parameters(path) == result.parameters


def test_parse_parameters_reads_multiline_prompts_and_quoted_values():
    text = 'line one\nline two\nNegative prompt: bad\nworse\nSteps: 20, Sampler: DDIM, Model: "a, b: c", Seed: 1'
    fields = parse_parameters(text)
    assert fields["Prompt"] == "line one\nline two"
    assert fields["Negative prompt"] == "bad\nworse"
    assert fields["Model"] == "a, b: c" and fields["Seed"] == "1"
    assert parse_parameters("just a prompt") == {"Prompt": "just a prompt", "Negative prompt": ""}


def test_latent_output_is_the_latent_the_image_decodes_from(components):
    image = generate(components, "a lake", seed=9, **SMALL)[0]
    latent = generate(components, "a lake", seed=9, output_type="latent", **SMALL)[0]
    assert latent.image is None and latent.latent.shape == (4, 8, 8) and latent.latent.dtype == torch.float32
    vae = components.vae
    with torch.no_grad():
        decoded = vae.decode(latent.latent[None] / vae.config.scaling_factor).sample
    decoded = ((decoded[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()
    assert np.abs(decoded - pixels(image)).max() <= 1


def test_img2img_from_an_image(components):
    source = generate(components, "a cat", seed=11, **SMALL)[0].image
    a = generate(components, "a dog", init_image=source, strength=0.5, seed=1, steps=4)[0]
    b = generate(components, "a dog", init_image=source, strength=0.5, seed=1, steps=4)[0]
    assert a.image.size == source.size
    assert np.array_equal(pixels(a), pixels(b))
    assert parse_parameters(a.parameters)["Denoising strength"] == "0.5"
    # a weaker strength stays closer to the source
    light = generate(components, "a dog", init_image=source, strength=0.25, seed=1, steps=4)[0]
    full = generate(components, "a dog", init_image=source, strength=1.0, seed=1, steps=4)[0]
    src = np.asarray(source, dtype=np.int16)
    assert np.abs(pixels(light) - src).mean() < np.abs(pixels(full) - src).mean()


def test_img2img_keeps_odd_sizes_or_resizes_on_request(components):
    odd = Image.new("RGB", (70, 45), "green")
    kept = generate(components, "x", init_image=odd, seed=1, steps=2)[0]
    assert kept.image.size == (70, 45) and parse_parameters(kept.parameters)["Size"] == "70x45"
    latent = generate(components, "x", init_image=odd, seed=1, steps=2, output_type="latent")[0]
    assert latent.latent.shape == (4, 6, 9) and (latent.width, latent.height) == (70, 45)
    resized = generate(components, "x", init_image=odd, width=32, height=48, seed=1, steps=2)[0]
    assert resized.image.size == (32, 48)
    assert generate(components, "x", init_image=odd, width=32, seed=1, steps=2)[0].image.size == (32, 48)


def test_img2img_from_a_latent(components):
    latent = generate(components, "a cat", seed=11, width=64, height=48, steps=2, output_type="latent")[0].latent
    result = generate(components, "a dog", init_latent=latent.numpy(), strength=0.6, seed=2, steps=3)[0]
    assert result.image.size == (64, 48)
    again = generate(components, "a dog", init_latent=latent, strength=0.6, seed=2, steps=3)[0]
    assert np.array_equal(pixels(result), pixels(again))
    with pytest.raises(ValueError, match="cannot change"):
        generate(components, "a dog", init_latent=latent, width=128, seed=2, steps=3)
    cropped = generate(components, "a dog", init_latent=latent, crop_size=(60, 45), strength=0.6, seed=2, steps=3)[0]
    assert cropped.image.size == (60, 45)
    assert np.array_equal(pixels(cropped), pixels(result)[:45, :60])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"steps": 0}, "steps"),
        ({"width": 60}, "width"),
        ({"height": 0}, "height"),
        ({"scheduler": "heun"}, "unknown sampler"),
        ({"guidance": -1.0}, "guidance"),
        ({"num_images": 0}, "number of images"),
        ({"seed": -5}, "seed"),
        ({"strength": 0.0}, "strength"),
        ({"strength": 1.5}, "strength"),
        ({"strength": 0.01}, "no denoising step"),
    ],
)
def test_bad_options_are_refused(options, message):
    settings = {"steps": 25, "guidance": 7.5, "width": 512, "height": 512, "scheduler": "ddim", **options}
    with pytest.raises(ValueError, match=message):
        check_options(**settings)


def test_output_paths():
    assert [str(p) for p in output_paths("out.png", [7])] == ["out.png"]
    assert [str(p) for p in output_paths("dir/out.png", [7, 8])] == ["dir/out-1.png", "dir/out-2.png"]
    assert [str(p) for p in output_paths("img-{n}-{seed}.png", [7, 8])] == ["img-1-7.png", "img-2-8.png"]
    with pytest.raises(ValueError, match="same file name"):
        output_paths("x-{seed}.png", [7, 7])


def test_unusable_models_give_one_line_errors(tmp_path):
    vae_only = make_tiny_vae(tmp_path / "vae-only")
    for spec in [str(vae_only), str(tmp_path / "missing"), "taesd:" + str(tmp_path)]:
        with pytest.raises(ModelLoadError) as error:
            load_sd_components(spec, device="cpu")
        assert "\n" not in str(error.value) and "--model" in str(error.value)


def test_png_bytes_need_a_known_suffix(components):
    result = generate(components, "a cat", seed=1, **SMALL)[0]
    with pytest.raises(ValueError, match=".png"):
        image_bytes(result, ".bmp")
    assert Image.open(io.BytesIO(image_bytes(result, ".PNG"))).format == "PNG"


# --- the CLI: sdcodec gen / img2img ----------------------------------------------------------


@pytest.fixture(scope="module")
def run(pipeline_dir):
    from typer.testing import CliRunner

    from sdcodec.cli import app

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args] + ["--model", str(pipeline_dir), "--device", "cpu"])

    return invoke


def test_cli_gen_writes_a_png_with_its_parameters(run, tmp_path):
    out = tmp_path / "cat.png"
    result = run(
        "gen",
        "a (red:1.2) cat",
        "-o",
        out,
        "--seed",
        12,
        "--steps",
        2,
        "-W",
        64,
        "-H",
        48,
        "--negative",
        "blurry",
        "--scheduler",
        "euler",
    )
    assert result.exit_code == 0, result.output
    assert "seed 12" in result.stderr and "step 2/2" in result.stderr
    fields = parse_parameters(read_parameters(out))
    assert (fields["Prompt"], fields["Negative prompt"], fields["Seed"]) == ("a (red:1.2) cat", "blurry", "12")
    assert (fields["Steps"], fields["Sampler"], fields["Size"]) == ("2", "Euler", "64x48")
    again = tmp_path / "again.png"
    assert (
        run(
            "gen",
            "a (red:1.2) cat",
            "-o",
            again,
            "--seed",
            12,
            "--steps",
            2,
            "-W",
            64,
            "-H",
            48,
            "--negative",
            "blurry",
            "--scheduler",
            "euler",
            "-q",
        ).exit_code
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


def test_cli_gen_several_images_with_a_pattern_and_a_random_seed(run, tmp_path):
    result = run(
        "gen",
        "a tree",
        "-o",
        tmp_path / "tree-{n}-{seed}.png",
        "--steps",
        1,
        "-W",
        64,
        "-H",
        64,
        "--num-images",
        2,
        "-q",
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and all(n.startswith("tree-") and n.endswith(".png") for n in names)
    seeds = sorted(int(parse_parameters(read_parameters(tmp_path / n))["Seed"]) for n in names)
    assert seeds[1] == seeds[0] + 1
    assert f"tree-1-{seeds[0]}.png" in names


def test_cli_gen_to_sdz_then_decode(run, pipeline_dir, tmp_path):
    from sdcodec.codec.image_decoding import decode_image, read_latent

    out = tmp_path / "cat.sdz"
    result = run("gen", "a cat", "-o", out, "--seed", 3, "--steps", 2, "-W", 64, "-H", 48, "-Q", 90)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    latent, header = read_latent(data)
    assert (header.width, header.height, header.latent_space) == (64, 48, "sd1")
    # the caption holds the generation parameters; their first line, the prompt, conditions restoration
    assert header.caption.split("\n")[0] == "a cat" and caption_prompt(header.caption) == "a cat"
    assert parse_parameters(header.caption)["Seed"] == "3"
    # the stored latent is the generated one, quantized as level 1 quantizes an image's (no decode /
    # re-encode in between): per-channel steps from the VAE's channel metric, model 2
    components = load_sd_components(str(pipeline_dir), device="cpu")
    generated = generate(components, "a cat", seed=3, steps=2, width=64, height=48, output_type="latent")[0].latent
    assert header.channel_steps and header.entropy_model == 2
    steps = np.asarray(header.channel_quant_steps).reshape(-1, 1, 1)
    errors = np.abs(latent - generated.numpy()) / steps  # in each channel's steps
    assert errors.max() <= 2.5 and errors.mean() <= 0.5  # rounding, at most a step by RDOQ and one by shaping
    image = decode_image(data, model=str(pipeline_dir), restore_steps=0, device="cpu")
    assert image.size == (64, 48)


def test_cli_img2img_from_png_and_from_sdz(run, tmp_path):
    source = tmp_path / "source.png"
    Image.new("RGB", (70, 45), (200, 40, 40)).save(source)
    out = tmp_path / "dog.png"
    result = run("img2img", source, "a dog", "-o", out, "--strength", 0.5, "--steps", 4, "--seed", 1)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (70, 45)
    assert parse_parameters(read_parameters(out))["Denoising strength"] == "0.5"

    sdz = tmp_path / "start.sdz"
    assert run("gen", "a cat", "-o", sdz, "--seed", 3, "--steps", 2, "-W", 64, "-H", 48, "-q").exit_code == 0
    from_sdz = tmp_path / "from-sdz.png"
    result = run("img2img", sdz, "a dog", "-o", from_sdz, "--strength", 0.5, "--steps", 4, "--seed", 1, "-q")
    assert result.exit_code == 0, result.output
    assert Image.open(from_sdz).size == (64, 48)
    chained = tmp_path / "chained.sdz"
    assert run("img2img", sdz, "a dog", "-o", chained, "--steps", 4, "--seed", 1, "-q").exit_code == 0
    from sdcodec.codec.image_decoding import read_latent

    assert read_latent(chained.read_bytes())[1].latent_shape == (4, 6, 8)


@pytest.mark.parametrize(
    "args",
    [
        ["gen", "x", "-W", "60"],
        ["gen", "x", "-H", "0"],
        ["gen", "x", "--steps", "0"],
        ["gen", "x", "--scheduler", "heun"],
        ["gen", "x", "--sampler", "Euler a Karras"],
        ["gen", "a (cat:1.2.3)"],
        ["gen", "x", "--negative", "[(b:.):2]"],
        ["gen", "x", "--num-images", "0"],
        ["gen", "x", "--seed", "-1"],
        ["gen", "x", "--guidance", "-2"],
        ["gen", "x", "-o", "x.bmp"],
        ["gen", "x", "-o", "x.png", "--quality", "50"],
        ["gen", "x", "-o", "x.sdz", "--quality", "50", "--bpp", "0.5"],
        ["gen", "x", "--steps", "many"],
        ["img2img", "in.png", "x", "--strength", "0"],
        ["img2img", "in.png", "x", "--strength", "1.5"],
        ["img2img", "in.png", "x", "--strength", "0.01", "--steps", "10"],
        ["img2img", "in.png"],
    ],
)
def test_cli_bad_options_exit_2(run, tmp_path, args):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert not list(tmp_path.iterdir())


def test_cli_runtime_failures_exit_1_with_one_line(run, tmp_path):
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"keep")
    result = run("gen", "x", "-o", existing, "--steps", 1, "-W", 64, "-H", 64)
    assert result.exit_code == 1 and "--force" in result.stderr
    assert existing.read_bytes() == b"keep"
    result = run("img2img", tmp_path / "missing.png", "x", "-o", tmp_path / "out.png")
    assert result.exit_code == 1 and result.stderr.startswith("error")
    result = run("gen", "x", "-o", existing, "--steps", 1, "-W", 64, "-H", 64, "--force", "-q")
    assert result.exit_code == 0 and existing.read_bytes() != b"keep"


def test_cli_interrupted_run_leaves_no_partial_file(run, tmp_path, monkeypatch):
    from sdcodec.codec.images import output_files

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(output_files, "_link", interrupted)  # the moment the finished file would appear
    result = run("gen", "x", "-o", tmp_path / "out.png", "--steps", 1, "-W", 64, "-H", 64, "-q")
    assert result.exit_code == 130
    assert not list(tmp_path.iterdir())


def test_sdz_caption_is_the_prompt_cut_at_a_character_boundary():
    from sdcodec.bitstream.container import MAX_CAPTION_BYTES
    from sdcodec.codec.diffusion.generate_files import sdz_caption

    assert sdz_caption("a cat") == ("a cat", False)
    caption, cut = sdz_caption("a" + "é" * MAX_CAPTION_BYTES)  # 'é' is 2 bytes: the limit falls inside one
    assert cut and caption == "a" + "é" * (MAX_CAPTION_BYTES // 2 - 1)
