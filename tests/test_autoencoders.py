"""Autoencoder backends and SPEC loading: tiny random diffusers VAEs, real TAEF2 weights, failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tiny_sd import make_tiny_vae, tiny_vae_config

from sdcodec.codec.autoencoders import (
    DiffusersVAE,
    TinyAutoencoder,
    latent_space_of,
    load_autoencoder,
    resolve_device,
    run_tiled,
)
from sdcodec.codec.errors import ModelLoadError, SdcodecError
from sdcodec.codec.images.image_io import load_image, to_tensor
from sdcodec.codec.model_cache import clear_model_cache
from sdcodec.codec.model_specs import default_decoder_spec

SHARED = Path(__file__).parents[2] / "shared"
TAEF2 = SHARED / "weights" / "taef2"
KODAK = SHARED / "datasets" / "kodak"
needs_taef2 = pytest.mark.skipif(not (TAEF2 / "taef2_encoder.pth").is_file(), reason="../shared TAEF2 weights absent")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / torch.mean((a - b) ** 2)))


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_model_cache()
    yield
    clear_model_cache()


@pytest.fixture(scope="module")
def tiny_vae_dir(tmp_path_factory) -> Path:
    return make_tiny_vae(tmp_path_factory.mktemp("tiny") / "vae")


@pytest.fixture(scope="module")
def kodak_crop() -> torch.Tensor:
    if not (KODAK / "kodim23.png").is_file():
        pytest.skip("../shared Kodak images absent")
    return to_tensor(load_image(KODAK / "kodim23.png").rgb)[:, :, 64:320, 192:448].contiguous()


@pytest.fixture(scope="module")
def taef2() -> TinyAutoencoder:
    if not (TAEF2 / "taef2_encoder.pth").is_file():
        pytest.skip("../shared TAEF2 weights absent")
    return TinyAutoencoder.from_dir(TAEF2, "taef2", device="cpu")


# ---------------------------------------------------------------------------------------------
# diffusers AutoencoderKL


def test_tiny_vae_loads_by_path_with_sd1_latents(tiny_vae_dir):
    vae = load_autoencoder(str(tiny_vae_dir), device="cpu")
    assert isinstance(vae, DiffusersVAE)
    assert (vae.latent_space, vae.latent_channels, vae.name) == ("sd1", 4, str(tiny_vae_dir))
    pixels = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    latent = vae.encode(pixels)
    assert latent.shape == (1, 4, 4, 6) and latent.dtype == torch.float32
    assert torch.equal(vae.encode(pixels), latent)  # the mean, not a sample
    image = vae.decode(latent)
    assert image.shape == (1, 3, 32, 48) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1


def test_latents_are_scaled_mean(tiny_vae_dir):
    from diffusers import AutoencoderKL

    raw = AutoencoderKL.from_pretrained(tiny_vae_dir).eval()
    pixels = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mean = raw.encode(pixels * 2 - 1).latent_dist.mean
        expected_image = ((raw.decode(mean).sample + 1) / 2).clamp(0, 1)
    vae = load_autoencoder(str(tiny_vae_dir), device="cpu")
    latent = vae.encode(pixels)
    torch.testing.assert_close(latent, mean * 0.18215, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(vae.decode(latent), expected_image, rtol=1e-4, atol=1e-4)


def test_pipeline_dir_uses_its_vae(tmp_path, tiny_vae_dir):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(tiny_vae_dir, pipeline / "vae")
    (pipeline / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline", "vae": ["diffusers", "AutoencoderKL"]})
    )
    by_pipeline = load_autoencoder(str(pipeline), device="cpu")
    by_path = load_autoencoder(str(tiny_vae_dir), device="cpu")
    pixels = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    assert by_pipeline.latent_space == "sd1"
    assert torch.equal(by_pipeline.encode(pixels), by_path.encode(pixels))


def test_sdxl_space_from_scaling_factor(tmp_path):
    vae = load_autoencoder(str(make_tiny_vae(tmp_path / "xl", scaling_factor=0.13025)), device="cpu")
    assert vae.latent_space == "sdxl"


def test_flux2_vae_class_is_loaded_in_flux2_space(tmp_path):
    from diffusers import AutoencoderKLFlux2

    torch.manual_seed(0)
    config = {key: value for key, value in tiny_vae_config().items() if key != "scaling_factor"}
    config["latent_channels"] = 32
    AutoencoderKLFlux2(**config).save_pretrained(tmp_path / "flux2")
    vae = load_autoencoder(str(tmp_path / "flux2"), device="cpu")
    assert (vae.latent_space, vae.latent_channels) == ("flux2", 32)
    assert vae.encode(torch.rand(1, 3, 16, 24)).shape == (1, 32, 2, 3)


def test_latent_space_rule():
    class Config:
        def __init__(self, channels, scaling=None, shift=None):
            self.latent_channels, self.scaling_factor, self.shift_factor = channels, scaling, shift

    assert latent_space_of(Config(4, 0.18215)) == "sd1"
    assert latent_space_of(Config(4, 0.13025)) == "sdxl"
    assert latent_space_of(Config(16, 1.5305, 0.0609)) == "sd3"
    assert latent_space_of(Config(16, 0.3611, 0.1159)) == "flux1"
    assert latent_space_of(Config(32)) == "flux2"
    with pytest.raises(ValueError):
        latent_space_of(Config(16, 1.0, 0.0))
    with pytest.raises(ValueError):
        latent_space_of(Config(8))


def test_models_are_cached_per_spec_and_device(tiny_vae_dir):
    first = load_autoencoder(str(tiny_vae_dir), device="cpu")
    assert load_autoencoder(str(tiny_vae_dir), device="cpu") is first


def test_default_spec_comes_from_environment(tiny_vae_dir, monkeypatch):
    monkeypatch.setenv("SDCODEC_MODEL", str(tiny_vae_dir))
    assert load_autoencoder(None, device="cpu").name == str(tiny_vae_dir)


def test_diffusers_tiling_keeps_shapes(tiny_vae_dir):
    from diffusers import AutoencoderKL

    module = AutoencoderKL.from_pretrained(tiny_vae_dir)
    vae = DiffusersVAE(module, name="tiled", tile_above=32, tile_size=32)
    pixels = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(3))
    latent = vae.encode(pixels)
    assert vae.vae.use_tiling
    assert latent.shape == (1, 4, 5, 7)
    image = vae.decode(latent)
    assert image.shape == (1, 3, 40, 56) and torch.isfinite(image).all()
    vae.encode(pixels[:, :, :32, :32])
    assert not vae.vae.use_tiling  # small inputs go through in one piece


def test_encode_refuses_unpadded_input(tiny_vae_dir):
    vae = load_autoencoder(str(tiny_vae_dir), device="cpu")
    with pytest.raises(ValueError, match="multiples of 8"):
        vae.encode(torch.rand(1, 3, 20, 24))
    with pytest.raises(ValueError):
        vae.decode(torch.zeros(1, 32, 2, 2))


# ---------------------------------------------------------------------------------------------
# TAE family


@pytest.fixture(scope="module")
def taef2_kodak(taef2, kodak_crop) -> tuple[torch.Tensor, torch.Tensor]:
    """(latent, reconstruction) of the Kodak crop, untiled."""
    latent = taef2.encode(kodak_crop)
    return latent, taef2.decode(latent)


def test_taef2_round_trip_on_kodak(taef2, kodak_crop, taef2_kodak):
    latent, reconstruction = taef2_kodak
    assert (taef2.latent_space, taef2.latent_channels) == ("flux2", 32)
    assert latent.shape == (1, 32, 32, 32)
    assert 0.5 < float(latent.std()) < 1.2  # real latent statistics (README: std about 0.85)
    assert torch.equal(taef2.encode(kodak_crop), latent)
    assert psnr(reconstruction, kodak_crop) > 24


@needs_taef2
def test_taef2_spec_loads_through_models():
    vae = load_autoencoder(f"taef2:{TAEF2}", device="cpu")
    assert isinstance(vae, TinyAutoencoder) and vae.name == f"taef2:{TAEF2}"


def test_tiled_tae_matches_untiled(taef2, kodak_crop, taef2_kodak):
    latent, whole = taef2_kodak
    tiled_tae = TinyAutoencoder(
        taef2.encoder,
        taef2.decoder,
        latent_space="flux2",
        latent_channels=32,
        name="tiled",
        tile_above=0,
        tile_size=160,
        tile_overlap=64,
    )  # 2 x 2 tiles
    tiled = tiled_tae.decode(latent)
    assert (tiled - whole).abs().max() < 0.06
    assert psnr(tiled, whole) > 45  # far below the codec's own error (~30 dB): no visible seams
    tiled_latent = tiled_tae.encode(kodak_crop)
    assert (tiled_latent - latent).abs().mean() < 0.02


def test_run_tiled_blends_to_the_exact_result_for_pointwise_steps():
    x = torch.rand(1, 2, 40, 56)
    out = run_tiled(lambda t: t.repeat_interleave(2, 2).repeat_interleave(2, 3) * 3, x, tile=16, overlap=8, scale=2)
    torch.testing.assert_close(out, x.repeat_interleave(2, 2).repeat_interleave(2, 3) * 3)
    pooled = run_tiled(
        lambda t: torch.nn.functional.avg_pool2d(t, 8), torch.rand(1, 1, 200, 136), tile=64, overlap=16, scale=1 / 8
    )
    assert pooled.shape == (1, 1, 25, 17)  # tiles of the input start and end on whole output positions


def test_tiles_are_few_evenly_spread_and_just_cover_the_side():
    from sdcodec.codec.autoencoders.tiling import tile_layout

    assert tile_layout(1536, 768, 128, 8) == (600, [0, 464, 936])  # was 3 tiles of 768: 1.5x the side
    assert tile_layout(2048, 768, 128, 8) == (768, [0, 640, 1280])
    assert tile_layout(700, 768, 128, 8) == (700, [0])
    for size in range(8, 5000, 8):
        for tile, overlap, align in ((768, 128, 8), (96, 16, 1), (64, 8, 8)):
            length, starts = tile_layout(size, tile, overlap, align)
            assert length <= tile and starts[0] == 0 and starts[-1] + length == size
            assert all(start % align == 0 for start in starts) and (length % align == 0 or length == size)
            assert all(overlap <= a + length - b < length for a, b in zip(starts, starts[1:]))
            fewest = 1 if size <= tile else -(-(size - overlap) // (tile - overlap))
            assert len(starts) <= fewest + 1


def test_tae_directory_with_generic_names(tmp_path):
    from sdcodec.codec.autoencoders.tae import tae_decoder, tae_encoder

    torch.manual_seed(0)
    torch.save(tae_encoder(4, False).half().state_dict(), tmp_path / "my_encoder.pth")
    torch.save(tae_decoder(4, False).half().state_dict(), tmp_path / "my_decoder.pth")
    vae = load_autoencoder(f"taesd:{tmp_path}", device="cpu")
    assert (vae.latent_space, vae.latent_channels) == ("sd1", 4)
    latent = vae.encode(torch.rand(1, 3, 16, 24))
    assert latent.shape == (1, 4, 2, 3)
    assert vae.decode(latent).shape == (1, 3, 16, 24)


# ---------------------------------------------------------------------------------------------
# failures: one line naming the model (and, for hub ids, how to supply it)


def assert_model_error(spec, *words):
    with pytest.raises(ModelLoadError) as info:
        load_autoencoder(spec, device="cpu")
    message = str(info.value)
    assert "\n" not in message and spec.split(":", 1)[-1] in message
    for word in words:
        assert word in message


def test_missing_directory():
    assert_model_error("/nonexistent/sdcodec/vae", "no such directory", "--model")


def test_directory_that_is_not_a_model(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    assert_model_error(str(tmp_path), "not a diffusers")


def test_unreachable_hub_id_fails_with_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_model_error("sdcodec-tests/no-such-vae", "Hugging Face cache", "--model", "SDCODEC_MODEL")


def test_hub_id_without_offline_flag_fails_too():
    # With no network the connection probe fails at once; with network the repo does not exist.
    assert_model_error("sdcodec-tests/no-such-vae-either", "SDCODEC_MODEL")


def test_bad_weight_files(tmp_path):
    (tmp_path / "taef2_encoder.pth").write_bytes(b"not a torch file")
    (tmp_path / "taef2_decoder.pth").write_bytes(b"not a torch file")
    assert_model_error(f"taef2:{tmp_path}", "weight file")


def test_missing_weight_files(tmp_path):
    assert_model_error(f"taef2:{tmp_path}", "taef2_encoder.pth")
    assert_model_error(f"taef2:{tmp_path / 'nope'}", "does not exist")


@needs_taef2
def test_wrong_family_for_weights():
    assert_model_error(f"taesd:{TAEF2}", "does not fit the taesd architecture")


def test_corrupt_diffusers_weights(tmp_path, tiny_vae_dir):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_vae_dir, broken)
    (broken / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)
    assert_model_error(str(broken), "cannot load model")


def test_files_without_a_default_decoder_ask_for_a_model():
    with pytest.raises(ModelLoadError, match="--model"):
        default_decoder_spec("flux2")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected  # CUDA first, then Apple MPS, else the CPU
    with pytest.raises(SdcodecError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SdcodecError, match="no CUDA GPU"):
            resolve_device("cuda")
