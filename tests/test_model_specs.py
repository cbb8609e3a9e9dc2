"""What a model SPEC and SDCODEC_MODEL mean: one set of rules for every command (codec/model_specs.py)."""

from __future__ import annotations

import pytest

from sdcodec.codec import model_specs
from sdcodec.codec.errors import ModelLoadError


@pytest.fixture(autouse=True)
def no_environment_model(monkeypatch):
    monkeypatch.delenv("SDCODEC_MODEL", raising=False)


def test_encoding_takes_the_argument_then_the_environment_then_the_sd_vae(monkeypatch):
    assert model_specs.autoencoder_spec() == model_specs.DEFAULT_MODEL
    monkeypatch.setenv("SDCODEC_MODEL", "taesd:/weights")
    assert model_specs.autoencoder_spec() == "taesd:/weights"
    assert model_specs.autoencoder_spec("taef2:/other") == "taef2:/other"
    monkeypatch.setenv("SDCODEC_MODEL", "   ")
    assert model_specs.autoencoder_spec() == model_specs.DEFAULT_MODEL  # blank is unset


def test_decoding_prefers_the_decoder_then_the_model_then_the_environment_then_the_spaces_default(monkeypatch):
    assert model_specs.decoder_spec("sd1") == model_specs.DEFAULT_DECODERS["sd1"]
    monkeypatch.setenv("SDCODEC_MODEL", "env-vae")
    assert model_specs.decoder_spec("sd1") == "env-vae"
    assert model_specs.decoder_spec("sd1", model="model-dir") == "model-dir"
    assert model_specs.decoder_spec("sd1", model="model-dir", decoder="taesd:/fast") == "taesd:/fast"
    monkeypatch.delenv("SDCODEC_MODEL")
    with pytest.raises(ModelLoadError, match="no default decoder"):
        model_specs.decoder_spec("flux2")


def test_the_environment_names_the_pipeline_only_when_it_is_one(tmp_path, monkeypatch, tiny_pipeline_dir, tiny_vae_dir):
    assert model_specs.pipeline_spec() == model_specs.DEFAULT_SD_MODEL
    monkeypatch.setenv("SDCODEC_MODEL", str(tiny_vae_dir))  # a VAE alone: restoration and gen use SD 1.5
    assert model_specs.pipeline_spec() == model_specs.DEFAULT_SD_MODEL
    monkeypatch.setenv("SDCODEC_MODEL", "taesd:/weights")
    assert model_specs.pipeline_spec() == model_specs.DEFAULT_SD_MODEL
    monkeypatch.setenv("SDCODEC_MODEL", str(tiny_pipeline_dir))
    assert model_specs.pipeline_spec() == str(tiny_pipeline_dir)
    assert model_specs.pipeline_spec("given") == "given"


def test_tiny_autoencoder_specs():
    assert model_specs.tae_parts("taef2:/w") == ("taef2", "/w")
    assert model_specs.tae_parts("taesd:") == ("taesd", "")
    assert model_specs.tae_parts("owner/repo") is None
    assert model_specs.tae_parts("C:/models/vae") is None  # a path with a colon is not a TAE spec


def test_the_tiny_families_named_here_are_the_ones_that_load():
    from sdcodec.codec.autoencoders import TAE_FAMILIES

    assert tuple(TAE_FAMILIES) == model_specs.TAE_FAMILY_NAMES
