"""The tiny autoencoders (TAESD, TAEF2): a few MB of weights, a fast stand-in for a full VAE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sdcodec.codec.autoencoders.base import DOWNSCALE, check_latent, check_pixels, compute_dtype
from sdcodec.codec.autoencoders.tae import tae_decoder, tae_encoder
from sdcodec.codec.autoencoders.tiling import run_tiled
from sdcodec.codec.errors import ModelLoadError

TAE_FAMILIES: dict[str, dict[str, Any]] = {
    "taesd": {"latent_space": "sd1", "channels": 4, "pooled": False},
    "taef2": {"latent_space": "flux2", "channels": 32, "pooled": True},
}
_WEIGHT_SUFFIXES = (".pth", ".safetensors")


def find_tae_weights(directory: Path, family: str) -> tuple[Path, Path]:
    """The (encoder, decoder) weight files in ``directory``: ``{family}_encoder.pth`` / ``_decoder.pth``,
    else the only ``*encoder*`` and ``*decoder*`` weight files there."""
    spec = f"{family}:{directory}"
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise ModelLoadError(
            f"cannot load {spec}: {directory} {what}; give the directory holding "
            f"{family}_encoder.pth and {family}_decoder.pth"
        )
    found = []
    for part in ("encoder", "decoder"):
        named = [directory / f"{family}_{part}{suffix}" for suffix in _WEIGHT_SUFFIXES]
        named = [path for path in named if path.is_file()][:1]  # .pth first when both exist
        candidates = named or sorted(
            path
            for path in directory.iterdir()
            if path.is_file() and path.suffix in _WEIGHT_SUFFIXES and part in path.name.lower()
        )
        if len(candidates) != 1:
            problem = "no" if not candidates else f"{len(candidates)}"
            raise ModelLoadError(
                f"cannot load {spec}: {problem} *{part}*.pth weight files in {directory} (expected {family}_{part}.pth)"
            )
        found.append(candidates[0])
    return found[0], found[1]


def load_tae_state_dict(path: Path, spec: str) -> dict[str, torch.Tensor]:
    """A weight file as a float32 state dict (the published files are float16)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch's own message is long and about pickling; the file is simply not weights
        kind = "safetensors" if path.suffix == ".safetensors" else "PyTorch (torch.save)"
        raise ModelLoadError(f"cannot load {spec}: {path} is not a readable {kind} weight file") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"cannot load {spec}: {path} does not hold a state dict of tensors")
    return {key: value.float() for key, value in state.items()}


def load_tae_weights(module: nn.Module, state: dict[str, torch.Tensor], what: str, family: str) -> None:
    """Load a state dict strictly, turning a mismatch into one line that says what did not fit."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [key for key in expected if key in state and state[key].shape != expected[key].shape]
    problems = [
        f"{len(keys)} {label} such as {keys[0]}"
        for keys, label in ((missing, "missing keys"), (unexpected, "unexpected keys"), (wrong_shape, "wrong shapes"))
        if keys
    ]
    if problems:
        raise ModelLoadError(f"cannot load {what} does not fit the {family} architecture ({'; '.join(problems)})")
    module.load_state_dict(state, strict=True)


def split_tae(encoder: nn.Sequential, decoder: nn.Sequential) -> tuple[int, int]:
    """Where the TAE nets stop (encoder) and start (decoder) working at full resolution.

    The blocks at latent resolution may hold a GroupNorm (TAEF2's pooled branch), whose
    statistics span the whole image: tiling them would change every pixel. They are cheap at
    1/8 resolution, so they always run on the whole latent; only the full-resolution, purely
    convolutional parts before (encoder) and after (decoder) them are tiled.
    """
    last_stride = max(i for i, m in enumerate(encoder) if isinstance(m, nn.Conv2d) and m.stride != (1, 1))
    first_upsample = min(i for i, m in enumerate(decoder) if isinstance(m, nn.Upsample))
    return last_stride + 1, first_upsample


class TinyAutoencoder:
    """A TAE-family autoencoder (TAESD, TAEF2) from local weight files.

    Images with more than ``tile_above`` pixels in total are encoded and decoded in tiles of
    ``tile_size`` pixels overlapping by ``tile_overlap`` pixels, blended linearly.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        latent_space: str,
        latent_channels: int,
        name: str,
        device: torch.device | str = "cpu",
        tile_above: int = 1024 * 1024,
        tile_size: int = 768,
        tile_overlap: int = 128,
    ):
        if tile_size % DOWNSCALE or tile_overlap % DOWNSCALE or not 0 <= tile_overlap < tile_size:
            raise ValueError("tile_size and tile_overlap must be multiples of 8 with overlap < size")
        self.name = name
        self.latent_space = latent_space
        self.latent_channels = latent_channels
        self.device = torch.device(device)
        self.dtype = compute_dtype(self.device)
        self.tile_above = tile_above
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.encoder = self._place(encoder)
        self.decoder = self._place(decoder)
        encoder_split, decoder_split = split_tae(encoder, decoder)
        self.encoder_local, self.encoder_global = self.encoder[:encoder_split], self.encoder[encoder_split:]
        self.decoder_global, self.decoder_local = self.decoder[:decoder_split], self.decoder[decoder_split:]

    def _place(self, module: nn.Module) -> nn.Module:
        module = module.eval().requires_grad_(False).to(self.device, self.dtype)
        return module.to(memory_format=torch.channels_last) if self.device.type == "cpu" else module

    @classmethod
    def from_dir(
        cls, directory: str | Path, family: str, *, device: torch.device | str = "cpu", **tiling: int
    ) -> TinyAutoencoder:
        """Load ``taesd`` or ``taef2`` weights from a directory (see ``find_tae_weights``)."""
        if family not in TAE_FAMILIES:
            raise ModelLoadError(f"unknown tiny autoencoder family {family!r} (known: {', '.join(TAE_FAMILIES)})")
        info = TAE_FAMILIES[family]
        directory = Path(directory).expanduser()
        spec = f"{family}:{directory}"
        encoder_path, decoder_path = find_tae_weights(directory, family)
        encoder = tae_encoder(info["channels"], info["pooled"])
        decoder = tae_decoder(info["channels"], info["pooled"])
        for module, path in ((encoder, encoder_path), (decoder, decoder_path)):
            load_tae_weights(module, load_tae_state_dict(path, spec), f"{spec}: {path.name}", family)
        return cls(
            encoder,
            decoder,
            latent_space=info["latent_space"],
            latent_channels=info["channels"],
            name=spec,
            device=device,
            **tiling,
        )

    def _apply(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self.dtype)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return module(x).float().cpu()

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        check_pixels(pixels)
        with torch.inference_mode():
            if pixels.shape[2] * pixels.shape[3] <= self.tile_above:
                return self._apply(self.encoder, pixels).contiguous()
            features = run_tiled(
                lambda tile: self._apply(self.encoder_local, tile),
                pixels,
                tile=self.tile_size,
                overlap=self.tile_overlap,
                scale=1 / DOWNSCALE,
            )
            return self._apply(self.encoder_global, features).contiguous()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        check_latent(latent, self.latent_channels, self.name)
        with torch.inference_mode():
            if latent.shape[2] * latent.shape[3] * DOWNSCALE**2 <= self.tile_above:
                return self._apply(self.decoder, latent).clamp(0, 1).contiguous()
            features = self._apply(self.decoder_global, latent)
            image = run_tiled(
                lambda tile: self._apply(self.decoder_local, tile),
                features,
                tile=self.tile_size // DOWNSCALE,
                overlap=self.tile_overlap // DOWNSCALE,
                scale=DOWNSCALE,
            )
        return image.clamp(0, 1).contiguous()

    def decode_with_grad(self, latent: torch.Tensor) -> torch.Tensor:
        check_latent(latent, self.latent_channels, self.name)
        return self.decoder(latent.to(self.device, self.dtype)).float().clamp(0, 1)

    def weight_modules(self) -> tuple[nn.Module, ...]:
        return (self.encoder, self.decoder)

    def __repr__(self) -> str:
        return f"TinyAutoencoder({self.name!r}, space={self.latent_space}, device={self.device})"
