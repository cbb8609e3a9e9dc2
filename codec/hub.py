"""Where weights come from: a local directory, the Hugging Face cache, then (only if allowed and
reachable) the hub. A machine without network fails in seconds with one line saying how to
supply the model, instead of huggingface_hub's retries.
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

from sdcodec.codec.errors import ModelLoadError
from sdcodec.codec.model_specs import how_to_supply, is_pipeline_dir, looks_like_path

HUB_PROBE_SECONDS = 3.0


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
        raise ModelLoadError(
            f"cannot load model {spec}: no such directory; give a model directory in diffusers "
            f"layout with --model DIR or SDCODEC_MODEL=DIR, or a Hugging Face repo id"
        )
    try:
        return _quiet_from_pretrained(cls, spec, subfolder=subfolder, local_files_only=True, **kwargs)
    except Exception as exc:
        cache_reason = _reason(exc)
    if hub_offline():
        raise ModelLoadError(
            f"cannot load model {what}: no such local directory, not in the Hugging Face cache "
            f"and HF_HUB_OFFLINE is set; {how_to_supply(spec)}"
        )
    if not hub_reachable():
        raise ModelLoadError(
            f"cannot load model {what}: no such local directory, not in the Hugging Face cache "
            f"and the hub is unreachable (no network); {how_to_supply(spec)}"
        )
    try:
        return _quiet_from_pretrained(cls, spec, subfolder=subfolder, **kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load model {what} from the hub: {_reason(exc)} (cache: {cache_reason}); {how_to_supply(spec)}"
        ) from None


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
            raise ModelLoadError(
                f"cannot load model {spec}: not a diffusers VAE or Stable Diffusion pipeline "
                f"directory (no config.json, model_index.json or vae/config.json)"
            )
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
            raise ModelLoadError(
                f"cannot load model {where}: it is a {class_name}, not one of "
                f"{', '.join(classes)} (for a tiny autoencoder use taesd:DIR or taef2:DIR)"
            )
        return from_pretrained(classes[class_name], spec, subfolder=subfolder)
    assert error is not None
    raise error


class _ConfigReader:
    """Reads a diffusers ``config.json`` through the same sourcing policy as the weights."""

    @staticmethod
    def from_pretrained(source: str, **kwargs: Any) -> dict:
        from diffusers import AutoencoderKL

        return AutoencoderKL.load_config(source, **kwargs)
