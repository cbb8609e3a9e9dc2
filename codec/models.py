"""Model SPECs -> loaded autoencoders, with one policy for where weights come from.

A SPEC is ``taesd:DIR`` / ``taef2:DIR`` (tiny autoencoder weight files), a local directory in
diffusers layout (an AutoencoderKL, or a full pipeline whose ``vae/`` is used), or a Hugging
Face repo id. Hub ids are looked up in the local Hugging Face cache first; the network is used
only when offline mode is off and the hub answers a quick connection probe, so a machine without
network fails in seconds with one line saying how to supply the model.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from codec.autoencoders import TAE_FAMILIES, Autoencoder, DiffusersVAE, TinyAutoencoder
from codec.errors import ModelLoadError, SdcodecError

DEFAULT_MODEL = "stabilityai/sd-vae-ft-mse"
DEFAULT_DECODERS = {  # latent space -> hub id of its default full decoder
    "sd1": "stabilityai/sd-vae-ft-mse",
    "sdxl": "madebyollin/sdxl-vae-fp16-fix",
}
HUB_PROBE_SECONDS = 3.0


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA, else MPS, else CPU; ``cpu``/``cuda[:N]``/``mps`` must be available."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise SdcodecError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SdcodecError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SdcodecError("--device mps: Apple MPS is not available here; use --device cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise SdcodecError(f"unsupported device {name!r}; use auto, cpu, cuda or mps")
    return device


def load_autoencoder(spec: str | None = None, *, device: str = "auto") -> Autoencoder:
    """Load the autoencoder named by SPEC (default: ``$SDCODEC_MODEL``, else the SD 1.x VAE).

    Loaded models are cached per (spec, device) for the life of the process.
    """
    spec = spec or os.environ.get("SDCODEC_MODEL") or DEFAULT_MODEL
    return _load_autoencoder_cached(spec, str(resolve_device(device)))


@functools.lru_cache(maxsize=8)
def _load_autoencoder_cached(spec: str, device: str) -> Autoencoder:
    family, sep, path = spec.partition(":")
    if sep and family in TAE_FAMILIES:
        if not path:
            raise ModelLoadError(f"cannot load {spec}: give the weights directory, e.g. {family}:DIR")
        return TinyAutoencoder.from_dir(path, family, device=device)
    return DiffusersVAE(load_diffusers_vae(spec), name=spec, device=device)


def clear_model_cache() -> None:
    """Forget loaded models (tests; long-running processes that switch models)."""
    _load_autoencoder_cached.cache_clear()


def default_decoder_spec(latent_space: str) -> str:
    """The hub id of the default decoder for files in ``latent_space``; ModelLoadError where none exists."""
    if latent_space in DEFAULT_DECODERS:
        return DEFAULT_DECODERS[latent_space]
    example = "taef2:DIR (a directory with taef2_encoder.pth/taef2_decoder.pth)" if latent_space == "flux2" else "DIR"
    raise ModelLoadError(f"files in the {latent_space} latent space have no default decoder; "
                         f"pass --model SPEC, e.g. --model {example}")


# --------------------------------------------------------------------------------------------
# diffusers loading: local directory, Hugging Face cache, then (only if reachable) the hub


def how_to_supply(spec: str) -> str:
    return (f"supply it with --model DIR or SDCODEC_MODEL=DIR (a local copy in diffusers layout), "
            f"or put it in the Hugging Face cache on a machine with network (hf download {spec})")


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


def hub_offline() -> bool:
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.is_offline_mode() or value.strip().upper() in {"1", "ON", "YES", "TRUE"}


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Can we open a TCP connection to the hub endpoint within a few seconds?

    huggingface_hub retries a dead network for about 30 s; this probe keeps an offline failure
    fast. Behind a proxy the probe is skipped (the proxy decides) and the hub is assumed reachable.
    """
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    address = (endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80))
    outcome: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(address, timeout=HUB_PROBE_SECONDS).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # DNS lookups ignore socket timeouts
    thread.start()
    thread.join(HUB_PROBE_SECONDS + 1)
    return bool(outcome and outcome[0])


def from_pretrained(cls: Any, spec: str, *, subfolder: str | None = None, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` with this module's sourcing policy and one-line ModelLoadErrors.

    A local directory is loaded as is. A hub id comes from the Hugging Face cache, else from
    the hub when it is allowed (HF_HUB_OFFLINE unset) and reachable. Works for any diffusers /
    transformers class with ``from_pretrained`` (also the pipeline parts: unet, text_encoder...).
    """
    what = f"{spec}/{subfolder}" if subfolder else spec
    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            return _quiet_from_pretrained(cls, str(path), subfolder=subfolder, local_files_only=True, **kwargs)
        except Exception as exc:
            raise ModelLoadError(f"cannot load model {what}: {_reason(exc)}") from None
    if path.exists():
        raise ModelLoadError(f"cannot load model {spec}: {spec} is a file, not a model directory")
    if looks_like_path(spec):
        raise ModelLoadError(f"cannot load model {spec}: no such directory; give a model directory in diffusers "
                             f"layout with --model DIR or SDCODEC_MODEL=DIR, or a Hugging Face repo id")
    try:
        return _quiet_from_pretrained(cls, spec, subfolder=subfolder, local_files_only=True, **kwargs)
    except Exception as exc:
        cache_reason = _reason(exc)
    if hub_offline():
        raise ModelLoadError(f"cannot load model {what}: no such local directory, not in the Hugging Face cache "
                             f"and HF_HUB_OFFLINE is set; {how_to_supply(spec)}")
    if not hub_reachable():
        raise ModelLoadError(f"cannot load model {what}: no such local directory, not in the Hugging Face cache "
                             f"and the hub is unreachable (no network); {how_to_supply(spec)}")
    try:
        return _quiet_from_pretrained(cls, spec, subfolder=subfolder, **kwargs)
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {what} from the hub: {_reason(exc)} "
                             f"(cache: {cache_reason}); {how_to_supply(spec)}") from None


def _quiet_from_pretrained(cls: Any, source: str, **kwargs: Any) -> Any:
    with warnings.catch_warnings():  # library deprecation chatter is not the user's business
        warnings.simplefilter("ignore")
        if kwargs.get("subfolder") is None:
            kwargs.pop("subfolder", None)
        return cls.from_pretrained(source, **kwargs)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def load_diffusers_vae(spec: str) -> Any:
    """The diffusers VAE module named by SPEC: a VAE directory / repo, or a pipeline's ``vae/``."""
    from diffusers import AutoencoderKL, AutoencoderKLFlux2

    classes = {"AutoencoderKL": AutoencoderKL, "AutoencoderKLFlux2": AutoencoderKLFlux2}
    path = Path(spec).expanduser()
    if path.is_dir():
        if is_pipeline_dir(path):
            subfolders: tuple[str | None, ...] = ("vae",)
        elif (path / "config.json").is_file():
            subfolders = (None,)
        else:
            raise ModelLoadError(f"cannot load model {spec}: not a diffusers VAE or Stable Diffusion pipeline "
                                 f"directory (no config.json, model_index.json or vae/config.json)")
    else:
        subfolders = (None, "vae")  # a hub id names a VAE repo or a pipeline repo
    error: ModelLoadError | None = None
    for subfolder in subfolders:
        try:
            config = from_pretrained(_ConfigReader, spec, subfolder=subfolder)
        except ModelLoadError as exc:
            error = error or exc
            continue
        class_name = config.get("_class_name", "AutoencoderKL")
        if class_name not in classes:
            where = f"{spec}/{subfolder}" if subfolder else spec
            raise ModelLoadError(f"cannot load model {where}: it is a {class_name}, not one of "
                                 f"{', '.join(classes)} (for a tiny autoencoder use taesd:DIR or taef2:DIR)")
        return from_pretrained(classes[class_name], spec, subfolder=subfolder)
    assert error is not None
    raise error


class _ConfigReader:
    """Reads a diffusers ``config.json`` through the same sourcing policy as the weights."""

    @staticmethod
    def from_pretrained(source: str, **kwargs: Any) -> dict:
        from diffusers import AutoencoderKL

        return AutoencoderKL.load_config(source, **kwargs)
