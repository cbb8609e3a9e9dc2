"""Restoration as the decoder uses it: the header hint, the override, fallback, caption, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import sdcodec
from sdcodec import bitstream
from sdcodec.cli import app
from sdcodec.codec.coding import latent_coder
from sdcodec.codec.diffusion.restore import restore_latent
from sdcodec.codec.diffusion.sd_pipeline import load_sd_components


def image(width=48, height=32):
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def coarse_file(tiny_pipeline_dir):
    return sdcodec.encode_image(image(), model=str(tiny_pipeline_dir), quality=5, caption="a red barn")


def decode(data, model, **kwargs):
    notices = []
    out = sdcodec.decode_image(data, model=str(model), notice=notices.append, **kwargs)
    return np.asarray(out), notices


def test_encoder_writes_the_hint_and_decoder_follows_it(coarse_file, tiny_pipeline_dir):
    header = bitstream.read_sdz(coarse_file)
    assert header.has_restore_hints and header.restore_steps == 2 and header.caption == "a red barn"
    restored, notices = decode(coarse_file, tiny_pipeline_dir)
    assert any("restoring" in n and "2 U-Net" in n for n in notices)
    plain, notices = decode(coarse_file, tiny_pipeline_dir, restore_steps=0)
    assert not any("restoring" in n for n in notices)
    assert not np.array_equal(restored, plain)


def test_override_changes_the_number_of_steps(coarse_file, tiny_pipeline_dir):
    one, notices = decode(coarse_file, tiny_pipeline_dir, restore_steps=1)
    assert any("1 U-Net" in n for n in notices)
    assert not np.array_equal(one, decode(coarse_file, tiny_pipeline_dir)[0])


def test_same_file_decodes_to_the_same_pixels(coarse_file, tiny_pipeline_dir):
    assert np.array_equal(decode(coarse_file, tiny_pipeline_dir)[0], decode(coarse_file, tiny_pipeline_dir)[0])


def test_caption_conditions_the_restoration(tiny_pipeline_dir):
    with_caption = sdcodec.encode_image(image(), model=str(tiny_pipeline_dir), quality=5, caption="a red barn")
    without = sdcodec.encode_image(image(), model=str(tiny_pipeline_dir), quality=5)
    assert bitstream.read_sdz(without).caption == ""
    assert bitstream.read_sdz(with_caption).payload == bitstream.read_sdz(without).payload
    assert not np.array_equal(decode(with_caption, tiny_pipeline_dir)[0], decode(without, tiny_pipeline_dir)[0])


def test_restored_latent_stays_in_every_channels_bins(coarse_file, tiny_pipeline_dir):
    q, header = latent_coder.read_symbols(coarse_file)
    steps = latent_coder.header_steps(header)
    assert len(set(steps.ravel())) > 1  # the file really has per-channel steps
    latent = torch.from_numpy(latent_coder.dequantize(q, steps, header.recon_offset))
    components = load_sd_components(str(tiny_pipeline_dir), device="cpu")
    restored = restore_latent(
        latent, symbols=torch.from_numpy(q), quant_step=torch.from_numpy(steps), components=components, num_steps=2
    )
    assert not torch.equal(restored, latent)
    np.testing.assert_array_equal(np.rint(restored.double().numpy() / steps), q)


def test_vae_only_model_falls_back_with_a_notice(coarse_file, tiny_vae_dir, tmp_path):
    pixels, notices = decode(coarse_file, tiny_vae_dir)
    assert pixels.shape == (32, 48, 3)
    assert any("no restoration" in n for n in notices)
    sdz = tmp_path / "x.sdz"
    sdz.write_bytes(coarse_file)
    result = CliRunner().invoke(app, ["decode", str(sdz), str(tmp_path / "x.png"), "--model", str(tiny_vae_dir)])
    assert result.exit_code == 0 and "no restoration" in result.stderr
    assert len([line for line in result.stderr.splitlines() if "no restoration" in line]) == 1


def test_restoration_reuses_the_decoders_vae(coarse_file, tiny_pipeline_dir):
    """Decoding with restoration loads the pipeline's VAE once: the decoder and the U-Net share it."""
    from sdcodec.codec.autoencoders import load_autoencoder
    from sdcodec.codec.model_cache import clear_model_cache

    clear_model_cache()
    sdcodec.decode_image(coarse_file, model=str(tiny_pipeline_dir), restore_steps=1, device="cpu")
    decoder = load_autoencoder(str(tiny_pipeline_dir), device="cpu")
    assert load_sd_components(str(tiny_pipeline_dir), device="cpu").vae is decoder.vae
