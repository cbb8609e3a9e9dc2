"""sdcodec: a perceptual image codec on Stable Diffusion's latent space.

The public API, from image to file and back::

    import sdcodec
    data = sdcodec.encode_image("photo.png", model="taef2:DIR", quality=50)
    image = sdcodec.decode_image(data, model="taef2:DIR")

``encode_latent`` / ``decode_latent`` are the latent-level pair under them (numpy only, no
torch). Importing ``sdcodec`` is cheap: torch loads on the first call that needs a model.
It also registers a Pillow plugin, so ``Image.open("x.sdz")`` reads .sdz headers; decoding and
``image.save("x.sdz")`` through Pillow need ``sdcodec.register(model=...)`` (never a download the
user did not ask for).

Layout (one sub-package per stage of the data flow)::

    codec/images           image files in and out: pixels, alpha, EXIF rotation, safe writes
    codec/autoencoders     pixels <-> latent: SD VAEs and tiny autoencoders, model SPECs
    codec/rate_distortion  encoder-side search: per-channel steps, latent refinement (--effort)
    codec/coding           latent <-> symbols <-> payload: quantizer, entropy models (no torch)
    bitstream              the .sdz container (pure Python; bitstream/FORMAT.md)
    codec/diffusion        U-Net restoration at decode, txt2img/img2img generation
    codec/image_codec.py   the pipeline that joins them (encode_image; image_decoding.py: decode_image)
    codec/commands         the command line's commands (cli.py assembles them)
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .codec.errors import ImageReadError, LatentSpaceMismatch, ModelLoadError, SdcodecError

if __name__ == "sdcodec":
    # Registers the .sdz reader with Pillow. Guarded because pytest also imports this file as a
    # package named after the checkout's directory, and a second copy of the plugin module would
    # take over Pillow's registration with its own (unconfigured) settings.
    from .codec.images import pil_plugin as _pil_plugin

    register = _pil_plugin.configure

try:
    __version__ = version("sdcodec")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0+unknown"

_LAZY = {  # public name -> module that defines it (imported on first use: torch is slow to load)
    "encode_image": "sdcodec.codec.image_codec",
    "decode_image": "sdcodec.codec.image_decoding",
    "encode_latent_image": "sdcodec.codec.image_codec",
    "read_latent": "sdcodec.codec.image_decoding",
    "quality_to_step": "sdcodec.codec.image_codec",
    "encode_latent": "sdcodec.codec.coding.latent_coder",
    "decode_latent": "sdcodec.codec.coding.latent_coder",
    "SdzLatentDataset": "sdcodec.codec.archive.latent_dataset",
}

__all__ = [
    *_LAZY,
    "register",
    "SdcodecError",
    "ImageReadError",
    "ModelLoadError",
    "LatentSpaceMismatch",
    "__version__",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sdcodec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
