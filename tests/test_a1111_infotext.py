"""A1111 parity of what gen writes: Model name and hash, prompts from a file, .sdz parameters."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from sdcodec.codec.diffusion import model_identity
from sdcodec.codec.diffusion.generate import generate
from sdcodec.codec.diffusion.model_identity import cache_key, hash_cache_file, model_hash, model_name, weight_files
from sdcodec.codec.diffusion.parameters import (
    caption_parameters,
    caption_prompt,
    parameters_caption,
    parse_parameters,
    read_parameters,
)
from sdcodec.codec.diffusion.prompt_file import parse_prompt_line
from sdcodec.codec.diffusion.restore import restore_latent
from sdcodec.codec.diffusion.sd_pipeline import load_sd_components

SMALL = {"width": 64, "height": 64, "steps": 2}


@pytest.fixture(scope="module")
def components(tiny_pipeline_dir):
    return load_sd_components(str(tiny_pipeline_dir), device="cpu")


# --- Model and Model hash ---------------------------------------------------------------------


def test_model_name_is_a_name_never_a_path(tmp_path):
    (tmp_path / "my-model").mkdir()
    assert model_name(str(tmp_path / "my-model")) == "my-model"
    assert model_name(str(tmp_path / "my-model") + "/") == "my-model"
    assert model_name("stable-diffusion-v1-5/stable-diffusion-v1-5") == "stable-diffusion-v1-5"


def test_model_hash_is_the_short_sha256_of_the_weight_files(tiny_pipeline_dir):
    files = weight_files(tiny_pipeline_dir)
    assert [f.parent.name for f in files] == ["unet", "text_encoder", "vae"]
    expected = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:10]
    assert model_hash(str(tiny_pipeline_dir)) == expected


def test_model_hash_follows_the_weights_and_ignores_variants(tiny_pipeline_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_pipeline_dir, copy)
    original = model_hash(str(copy))
    assert original == model_hash(str(tiny_pipeline_dir))
    shutil.copy(
        copy / "vae" / "diffusion_pytorch_model.safetensors", copy / "vae" / "diffusion_pytorch_model.fp16.safetensors"
    )
    assert model_hash(str(copy)) == original  # a variant file is not what generation loads
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_hash(str(copy)) != original


def test_hashes_are_remembered_between_runs_while_the_files_are_unchanged(tiny_pipeline_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(model_identity, "REMEMBER_FROM_BYTES", 0)  # tiny weights: remember them too
    copy = tmp_path / "copy"
    shutil.copytree(tiny_pipeline_dir, copy)
    digest = model_hash(str(copy))
    stored = json.loads(hash_cache_file().read_text(encoding="utf-8"))
    assert stored == {cache_key(weight_files(copy)): digest}
    # a later run reads the remembered value instead of hashing (shown here by a planted value)
    other = tmp_path / "other"
    shutil.copytree(tiny_pipeline_dir, other)
    stored[cache_key(weight_files(other))] = "0123456789"
    hash_cache_file().write_text(json.dumps(stored), encoding="utf-8")
    assert model_hash(str(other)) == "0123456789"
    hash_cache_file().write_text("not json", encoding="utf-8")  # a damaged cache costs a hash, nothing else
    third = tmp_path / "third"
    shutil.copytree(tiny_pipeline_dir, third)
    assert model_hash(str(third)) == digest


def test_small_models_are_not_remembered(tiny_pipeline_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    copy = tmp_path / "copy"
    shutil.copytree(tiny_pipeline_dir, copy)
    assert model_hash(str(copy)) == model_hash(str(tiny_pipeline_dir))
    assert not hash_cache_file().exists()


def test_a_hub_model_without_local_files_has_no_hash():
    assert model_hash("nobody-here/not-a-cached-model") is None


def test_infotext_has_model_hash_then_model_in_a1111s_order(components, tiny_pipeline_dir):
    (result,) = generate(components, "a cat", seed=4, **SMALL)
    settings = result.parameters.split("\n")[-1]
    digest = model_hash(str(tiny_pipeline_dir))
    assert f"Size: 64x64, Model hash: {digest}, Model: pipeline, Version: " in settings


# --- parameters in a .sdz caption ----------------------------------------------------------------


def test_caption_keeps_as_much_as_fits_and_always_the_prompt_first():
    parameters = "a cat\nNegative prompt: blurry\nSteps: 20, Sampler: DDIM, Seed: 1"
    assert parameters_caption(parameters, "a cat", 1024) == (parameters, None)
    caption, notice = parameters_caption(parameters, "a cat", 50)
    assert caption == "a cat\nSteps: 20, Sampler: DDIM, Seed: 1" and "negative" in notice
    caption, notice = parameters_caption(parameters, "a cat", 4)
    assert caption == "a ca" and "cut" in notice
    caption, _ = parameters_caption("é" * 600 + "\nSteps: 1, Sampler: DDIM, Seed: 1", "é" * 600, 1024)
    assert caption == "é" * 512  # cut at a character boundary


@pytest.mark.parametrize(
    "caption, prompt",
    [
        ("a red barn", "a red barn"),  # an ordinary caption conditions as it is
        ("time: 3pm, place: home, Steps: 4", "time: 3pm, place: home, Steps: 4"),  # one line: not parameters
        ("a cat\nNegative prompt: ugly\nSteps: 20, Sampler: DDIM, Seed: 1", "a cat"),
        ("line one\nline two\nSteps: 20, Sampler: DDIM, Seed: 1", "line one\nline two"),
        ("a [cat:dog:0.5]\nSteps: 4, Sampler: DDIM, Seed: 1", "a dog"),  # as at the last step
    ],
)
def test_restoration_is_conditioned_by_the_prompt_only(caption, prompt):
    assert caption_prompt(caption) == prompt


def test_restoring_a_parameters_caption_equals_restoring_its_prompt(components):
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn((4, 8, 8), generator=generator)
    symbols = torch.round(latent / 2.0)

    def restore(caption):
        return restore_latent(
            latent, symbols=symbols, quant_step=2.0, components=components, caption=caption, guidance=3.0
        )

    parameters = "a red barn\nNegative prompt: fog\nSteps: 20, Sampler: DDIM, CFG scale: 7, Seed: 9"
    assert torch.equal(restore(parameters), restore("a red barn"))
    assert not torch.equal(restore(parameters), restore(parameters.replace("\n", " ")))
    # a caption A1111 could not run as a prompt still restores, read literally
    assert torch.equal(restore("a (b:1.2.3)"), restore(r"a \(b:1.2.3\)"))


# --- prompt files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("a cat, (red:1.2)", {"prompt": "a cat, (red:1.2)"}),
        (
            '--prompt "a dog, night" --negative_prompt blurry ugly --seed 7 --steps 3 --cfg_scale 6.5',
            {"prompt": "a dog, night", "negative": "blurry ugly", "seed": 7, "steps": 3, "guidance": 6.5},
        ),
        (
            '--sampler_name "DPM++ 2M Karras" --width 64 --height 48 --n_iter 2 --prompt a boat',
            {"scheduler": "DPM++ 2M Karras", "width": 64, "height": 48, "num_images": 2, "prompt": "a boat"},
        ),
    ],
)
def test_prompt_lines_read_as_a1111s_prompts_from_file_script(line, expected):
    assert parse_prompt_line(line) == expected


@pytest.mark.parametrize(
    "line, message",
    [
        ("--prompt a --styles x", "unknown option --styles"),
        ("--seed", "needs a value"),
        ("--steps many --prompt a", "needs a int"),
        ('--prompt "unclosed', "quotation"),
        ("a cat --seed 3", "expected an option"),
    ],
)
def test_bad_prompt_lines_are_refused(line, message):
    with pytest.raises(ValueError, match=message):
        parse_prompt_line(line)


@pytest.fixture(scope="module")
def run(tiny_pipeline_dir):
    from typer.testing import CliRunner

    from sdcodec.cli import app

    runner = CliRunner()

    def invoke(*args, model=True):
        extra = ["--model", str(tiny_pipeline_dir), "--device", "cpu"] if model else []
        return runner.invoke(app, [str(a) for a in args] + extra)

    return invoke


def test_cli_gen_runs_every_line_of_a_prompt_file(run, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text('a cat\n\n--prompt "a dog" --negative_prompt blurry --seed 7 --steps 2\n', encoding="utf-8")
    pattern = tmp_path / "out-{n}.png"
    result = run("gen", "--prompt-file", prompts, "-o", pattern, "--seed", 3, "--steps", 1, "-W", 64, "-H", 64, "-q")
    assert result.exit_code == 0, result.output
    first = parse_parameters(read_parameters(tmp_path / "out-1.png"))
    second = parse_parameters(read_parameters(tmp_path / "out-2.png"))
    assert (first["Prompt"], first["Seed"], first["Steps"]) == ("a cat", "3", "1")
    assert (second["Prompt"], second["Negative prompt"], second["Seed"], second["Steps"]) == (
        "a dog",
        "blurry",
        "7",
        "2",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-1.png", "out-2.png", "prompts.txt"]


def test_cli_prompt_file_errors(run, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n--prompt a dog --bogus 1\n", encoding="utf-8")
    both = run("gen", "a cat", "--prompt-file", prompts, "-o", tmp_path / "x.png")
    assert both.exit_code == 2 and "--prompt-file" in both.output
    neither = run("gen", "-o", tmp_path / "x.png")
    assert neither.exit_code == 2
    bad = run("gen", "--prompt-file", prompts, "-o", tmp_path / "x-{n}.png", "--steps", 1, "-W", 64, "-H", 64)
    assert bad.exit_code == 1 and "line 2" in bad.output and "--bogus" in bad.output
    assert not list(tmp_path.glob("x*"))  # nothing generated before the whole file was read
    missing = run("gen", "--prompt-file", tmp_path / "none.txt", "-o", tmp_path / "x.png")
    assert missing.exit_code == 1 and "cannot read" in missing.output


def test_cli_gen_sdz_carries_its_parameters_and_info_shows_them(run, tmp_path):
    out = tmp_path / "cat.sdz"
    result = run("gen", "a [cat:dog:0.5]", "-n", "blurry", "-o", out, "--seed", 11, "--steps", 2, "-W", 64, "-H", 64)
    assert result.exit_code == 0, result.output
    info = run("info", out, "--json", model=False)
    facts = json.loads(info.stdout)
    generation = facts["generation_parameters"]
    assert (generation["Prompt"], generation["Negative prompt"]) == ("a [cat:dog:0.5]", "blurry")
    assert (generation["Seed"], generation["Steps"], generation["Sampler"]) == ("11", "2", "DDIM")
    assert generation["Model"] == "pipeline" and len(generation["Model hash"]) == 10
    assert caption_parameters(facts["caption"]) == generation
    text = run("info", out, model=False).stdout
    assert "generation_parameters" in text and "Seed: 11" in text and "Negative prompt: blurry" in text
    assert "Prompt: a [cat:dog:0.5]" in text  # printed as written (no emoji codes)
    assert caption_parameters("a cat") is None  # an ordinary caption has no generation parameters
