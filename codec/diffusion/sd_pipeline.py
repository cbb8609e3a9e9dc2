"""Loading the Stable Diffusion components that generation and restoration share.

A model SPEC is a Hugging Face repo id or a local directory in diffusers layout holding a full
pipeline (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``). Components are
loaded once per (spec, device) and kept for the life of the process, so several images reuse
one load. Weights are sourced as codec.models does for autoencoders: a local directory, else the
Hugging Face cache, else the hub when it answers; otherwise a ``ModelLoadError`` says which model
and how to supply it, within seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from sdcodec.codec import model_cache
from sdcodec.codec.autoencoders.base import compute_dtype, resolve_device
from sdcodec.codec.autoencoders.base import latent_space_of as latent_space_of_config
from sdcodec.codec.diffusion.prompt_weighting import encode_weighted_pair
from sdcodec.codec.errors import ModelLoadError
from sdcodec.codec.hub import from_pretrained
from sdcodec.codec.model_specs import pipeline_spec, tae_parts

PIPELINE_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


@dataclass
class SDComponents:
    """The loaded parts of a Stable Diffusion pipeline, on one device and dtype."""

    unet: torch.nn.Module  # diffusers UNet2DConditionModel
    vae: torch.nn.Module  # diffusers AutoencoderKL
    text_encoder: torch.nn.Module  # transformers CLIPTextModel
    tokenizer: object  # transformers CLIPTokenizer
    scheduler: object  # the pipeline's own diffusers scheduler (its config seeds the others)
    latent_space: str  # bitstream.latent_spaces name, e.g. "sd1"
    spec: str
    device: torch.device
    dtype: torch.dtype


def load_sd_components(spec: str | None = None, *, device: str = "auto") -> SDComponents:
    """Load (once per process) the full pipeline named by ``spec`` onto ``device``.

    fp16 on GPUs, fp32 on CPU. Raises ``ModelLoadError`` with one line when it cannot.
    """
    spec = pipeline_spec(spec)
    torch_device = resolve_device(device)
    return model_cache.cached(
        "pipeline", spec, str(torch_device), lambda: _load(spec, torch_device, compute_dtype(torch_device))
    )


def encode_prompt(components: SDComponents, prompt: str, negative: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """``(cond, uncond)`` text embeddings with emphasis and chunking (see codec.prompt_weighting).

    Both have shape (1, 77 * chunks, dim) and the same number of chunks.
    """
    cond, uncond = encode_weighted_pair(
        components.tokenizer, components.text_encoder, prompt, negative, components.device
    )
    return cond.to(components.dtype), uncond.to(components.dtype)


def latent_space_of(vae) -> str:
    """The bitstream latent-space name of a loaded VAE (rules in codec.autoencoders)."""
    try:
        return latent_space_of_config(vae.config, type(vae).__name__)
    except ValueError as error:
        raise ModelLoadError(f"the pipeline's VAE is in no latent space sdcodec knows ({error})") from None


def _load(spec: str, device: torch.device, dtype: torch.dtype) -> SDComponents:
    if tae_parts(spec):
        raise ModelLoadError(
            f"{spec} is a tiny autoencoder; generation and restoration need a full Stable Diffusion "
            "pipeline (--model DIR or a hub id)"
        )
    path = Path(spec).expanduser()
    if path.is_dir():
        missing = [part + "/" for part in PIPELINE_PARTS if not (path / part).is_dir()]
        if missing:
            raise ModelLoadError(
                f"{spec} is not a full Stable Diffusion pipeline (no {', '.join(missing)}); "
                f"pass one with --model DIR or SDCODEC_MODEL=DIR"
            )
    decoder = model_cache.peek("autoencoder", spec, str(device))  # decode_image loaded this pipeline's VAE already
    unet, vae, text_encoder, tokenizer, scheduler = _load_parts(spec, vae=getattr(decoder, "vae", None))
    for module in (unet, vae, text_encoder):
        module.to(device=device).eval().requires_grad_(False)
        if module.dtype != dtype:
            module.to(dtype=dtype)
    return SDComponents(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        latent_space=latent_space_of(vae),
        spec=spec,
        device=device,
        dtype=dtype,
    )


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence transformers' and diffusers' own progress bars and notices (the CLI reports progress)."""
    import diffusers
    import transformers

    saved = []
    for logging in (transformers.utils.logging, diffusers.utils.logging):
        saved.append((logging, logging.get_verbosity(), logging.is_progress_bar_enabled()))
        logging.set_verbosity_error()
        logging.disable_progress_bar()
    try:
        yield
    finally:
        for logging, verbosity, bars in saved:
            logging.set_verbosity(verbosity)
            if bars:
                logging.enable_progress_bar()


def _load_parts(spec: str, vae=None):
    """Each part through ``codec.hub``'s sourcing policy (local dir, HF cache, then a reachable hub);
    ``vae``, when given, is the pipeline's VAE already in memory."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    with quiet_libraries():
        unet = from_pretrained(UNet2DConditionModel, spec, subfolder="unet")
        vae = vae if vae is not None else from_pretrained(AutoencoderKL, spec, subfolder="vae")
        text_encoder = from_pretrained(CLIPTextModel, spec, subfolder="text_encoder")
        tokenizer = from_pretrained(CLIPTokenizer, spec, subfolder="tokenizer")
        config = from_pretrained(_SchedulerConfig, spec, subfolder="scheduler")
    scheduler_class = getattr(diffusers, config.get("_class_name", ""), diffusers.PNDMScheduler)
    return unet, vae, text_encoder, tokenizer, scheduler_class.from_config(config)


class _SchedulerConfig:
    """Reads a scheduler's config through the same sourcing policy as the weights."""

    @staticmethod
    def from_pretrained(source: str, **kwargs) -> dict:
        from diffusers import DDIMScheduler

        return dict(DDIMScheduler.load_config(source, **kwargs))
