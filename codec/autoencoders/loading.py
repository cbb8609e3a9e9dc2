"""Model SPEC -> loaded autoencoder, through the process-wide model cache."""

from __future__ import annotations

from sdcodec.codec import model_cache
from sdcodec.codec.autoencoders.base import Autoencoder, resolve_device
from sdcodec.codec.autoencoders.diffusers_vae import DiffusersVAE
from sdcodec.codec.autoencoders.tiny import TinyAutoencoder
from sdcodec.codec.errors import ModelLoadError
from sdcodec.codec.hub import load_diffusers_vae
from sdcodec.codec.model_specs import autoencoder_spec, tae_parts


def load_autoencoder(spec: str | None = None, *, device: str = "auto") -> Autoencoder:
    """Load the autoencoder named by SPEC (default: ``$SDCODEC_MODEL``, else the SD 1.x VAE).

    Loaded once per (spec, device) for the life of the process (``model_cache``). When the full
    pipeline of the same SPEC is already loaded (restoration), its VAE is used, not loaded again.
    """
    spec = autoencoder_spec(spec)
    torch_device = resolve_device(device)
    return model_cache.cached("autoencoder", spec, str(torch_device), lambda: _load(spec, torch_device))


def _load(spec: str, device) -> Autoencoder:
    tae = tae_parts(spec)
    if tae:
        family, path = tae
        if not path:
            raise ModelLoadError(f"cannot load {spec}: give the weights directory, e.g. {family}:DIR")
        return TinyAutoencoder.from_dir(path, family, device=device)
    pipeline = model_cache.peek("pipeline", spec, str(device))
    vae = pipeline.vae if pipeline is not None else load_diffusers_vae(spec)
    return DiffusersVAE(vae, name=spec, device=device)
