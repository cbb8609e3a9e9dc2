"""Model SPECs: what names a model, the defaults, and what ``SDCODEC_MODEL`` means (one place).

A SPEC is ``taesd:DIR`` / ``taef2:DIR`` (tiny autoencoder weight files), a local directory in
diffusers layout (an AutoencoderKL, or a full pipeline whose ``vae/`` is used), or a Hugging
Face repo id. ``SDCODEC_MODEL`` is the default ``--model`` of every command: the autoencoder
that encodes and decodes, and, when it names a full Stable Diffusion pipeline, the pipeline
for restoration and generation (else those use ``DEFAULT_SD_MODEL``). No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path

from sdcodec.codec.errors import ModelLoadError

ENV_VARIABLE = "SDCODEC_MODEL"
DEFAULT_MODEL = "stabilityai/sd-vae-ft-mse"  # encoding: the SD 1.x VAE
DEFAULT_DECODERS = {  # latent space -> hub id of its default full decoder
    "sd1": "stabilityai/sd-vae-ft-mse",
    "sdxl": "madebyollin/sdxl-vae-fp16-fix",
}
DEFAULT_SD_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # restoration and generation
TAE_FAMILY_NAMES = ("taesd", "taef2")


def env_model() -> str | None:
    """``$SDCODEC_MODEL``, or None when it is unset or blank."""
    return os.environ.get(ENV_VARIABLE, "").strip() or None


def autoencoder_spec(spec: str | None = None) -> str:
    """The autoencoder to encode with: ``spec``, else ``$SDCODEC_MODEL``, else the SD 1.x VAE."""
    return spec or env_model() or DEFAULT_MODEL


def decoder_spec(latent_space: str, model: str | None = None, decoder: str | None = None) -> str:
    """The decoder for a file in ``latent_space``: ``decoder``, ``model``, ``$SDCODEC_MODEL``, else its default."""
    return decoder or model or env_model() or default_decoder_spec(latent_space)


def pipeline_spec(spec: str | None = None) -> str:
    """The full pipeline for restoration and generation: ``spec``, ``$SDCODEC_MODEL`` when it is one, else SD 1.5."""
    if spec:
        return spec
    env = env_model()
    return env if env and is_full_pipeline(env) else DEFAULT_SD_MODEL


def tae_parts(spec: str) -> tuple[str, str] | None:
    """``(family, directory)`` of a ``taesd:DIR`` / ``taef2:DIR`` spec, else None."""
    family, sep, path = spec.partition(":")
    return (family, path) if sep and family in TAE_FAMILY_NAMES else None


def default_decoder_spec(latent_space: str) -> str:
    """The hub id of the default decoder for files in ``latent_space``; ModelLoadError where none exists."""
    if latent_space in DEFAULT_DECODERS:
        return DEFAULT_DECODERS[latent_space]
    example = "taef2:DIR (a directory with taef2_encoder.pth/taef2_decoder.pth)" if latent_space == "flux2" else "DIR"
    raise ModelLoadError(
        f"files in the {latent_space} latent space have no default decoder; pass --model SPEC, e.g. --model {example}"
    )


def how_to_supply(spec: str) -> str:
    """The end of a 'cannot load' message: the ways to give sdcodec a model without a download."""
    return (
        f"supply it with --model DIR or SDCODEC_MODEL=DIR (a local copy in diffusers layout), "
        f"or put it in the Hugging Face cache on a machine with network (hf download {spec})"
    )


def is_pipeline_dir(path: Path) -> bool:
    """A full diffusers pipeline directory (its VAE lives in ``vae/``)."""
    return (path / "model_index.json").is_file() or (path / "vae" / "config.json").is_file()


def looks_like_path(spec: str) -> bool:
    """True when SPEC can only be a filesystem path (not a valid ``owner/name`` hub id)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(spec)
    except HFValidationError:
        return True
    return False


def is_full_pipeline(spec: str) -> bool:
    """True for a local directory with ``unet/``, or a hub repo whose U-Net config is cached.

    A hub repo that is not cached cannot be checked offline; it counts as not a pipeline.
    """
    if tae_parts(spec):
        return False
    path = Path(spec).expanduser()
    if path.is_dir():
        return (path / "unet").is_dir()
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec, "unet/config.json"), str)
    except Exception:  # not a valid repo id either
        return False
