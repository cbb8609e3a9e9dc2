"""Autoencoder backends behind one small interface: pixels in [0, 1] <-> latents in diffusion units.

Latents are always in the units the diffusion model sees ("scaled"): for an AutoencoderKL
``(mean - shift_factor) * scaling_factor`` (SD 1.x latents then have std about 1), and the TAE
family outputs those units directly. Encoding takes the latent distribution's mean, never a
sample, so it is deterministic. Inputs may live anywhere; outputs are float32 CPU tensors.
Large images are processed in overlapping tiles so memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from codec.errors import ModelLoadError
from codec.tae import tae_decoder, tae_encoder

DOWNSCALE = 8  # every supported autoencoder maps 8x8 pixels to one latent position


class Autoencoder(Protocol):
    latent_space: str  # a name from bitstream/latent_spaces.py: "sd1", "sdxl", "sd3", "flux1", "flux2"
    latent_channels: int
    name: str  # the SPEC it was loaded from, for messages
    device: torch.device

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) float in [0, 1], H and W multiples of 8 -> (1, C, H/8, W/8) float32."""
        ...

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) float32 -> (N, 3, 8h, 8w) float32 clamped to [0, 1] (N > 1 for small latents)."""
        ...

    def decode_with_grad(self, latent: torch.Tensor) -> torch.Tensor:
        """``decode`` of a small latent (no tiling) that autograd can differentiate w.r.t. the latent."""
        ...


def compute_dtype(device: torch.device) -> torch.dtype:
    """fp16 on GPUs (CUDA, MPS), fp32 on CPU."""
    return torch.float32 if device.type == "cpu" else torch.float16


def _check_pixels(pixels: torch.Tensor) -> None:
    if pixels.ndim != 4 or pixels.shape[0] != 1 or pixels.shape[1] != 3:
        raise ValueError(f"expected pixels of shape (1, 3, H, W), got {tuple(pixels.shape)}")
    if pixels.shape[2] % DOWNSCALE or pixels.shape[3] % DOWNSCALE:
        raise ValueError(f"image sides must be multiples of {DOWNSCALE} (pad first), got {tuple(pixels.shape[2:])}")


def _check_latent(latent: torch.Tensor, channels: int, name: str) -> None:
    """Latents are (N, C, h, w); N > 1 is meant for small latents (e.g. sensitivity probes)."""
    if latent.ndim != 4 or latent.shape[0] < 1 or latent.shape[1] != channels:
        raise ValueError(f"{name} expects a latent of shape (N, {channels}, h, w), got {tuple(latent.shape)}")


# --------------------------------------------------------------------------------------------
# diffusers AutoencoderKL (SD 1.x, SDXL, SD3, FLUX.1) and AutoencoderKLFlux2


def latent_space_of(config: Any, class_name: str = "AutoencoderKL") -> str:
    """Name the latent space of a diffusers VAE from its config.

    Rule: 32 latent channels (or an AutoencoderKLFlux2) -> "flux2"; 16 channels -> "sd3" when
    shift_factor is about 0.0609, "flux1" when about 0.1159; 4 channels -> "sdxl" when
    scaling_factor is about 0.13025, otherwise "sd1" (0.18215, and best effort for other
    4-channel VAEs, which are SD 1.x fine-tunes in practice). Anything else is refused.
    """
    channels = int(config.latent_channels)
    scaling = float(getattr(config, "scaling_factor", None) or 1.0)
    shift = float(getattr(config, "shift_factor", None) or 0.0)
    if class_name == "AutoencoderKLFlux2" or channels == 32:
        return "flux2"
    if channels == 16:
        if abs(shift - 0.0609) < 0.005:
            return "sd3"
        if abs(shift - 0.1159) < 0.005:
            return "flux1"
        raise ValueError(f"16-channel VAE with shift_factor {shift} is neither SD3 (0.0609) nor FLUX.1 (0.1159)")
    if channels == 4:
        return "sdxl" if abs(scaling - 0.13025) < 0.001 else "sd1"
    raise ValueError(f"no known latent space has {channels} channels")


class DiffusersVAE:
    """A diffusers ``AutoencoderKL`` (or ``AutoencoderKLFlux2``) behind the Autoencoder interface.

    Images whose longer side exceeds ``tile_above`` pixels go through diffusers' own VAE tiling
    (``enable_tiling``, tiles of ``tile_size`` pixels blended over 1/4 of a tile), so memory
    stays bounded for any size.
    """

    def __init__(
        self,
        vae: nn.Module,
        *,
        name: str,
        device: torch.device | str = "cpu",
        tile_above: int = 1024,
        tile_size: int = 512,
    ):
        self.name = name
        self.device = torch.device(device)
        self.dtype = compute_dtype(self.device)
        config = vae.config
        self.latent_channels = int(config.latent_channels)
        self.latent_space = latent_space_of(config, type(vae).__name__)
        self.scaling_factor = float(getattr(config, "scaling_factor", None) or 1.0)
        self.shift_factor = float(getattr(config, "shift_factor", None) or 0.0)
        self.tile_above = tile_above
        self.tile_size = tile_size
        # .half()/.float() rather than .to(dtype): diffusers' ModelMixin.to warns on every dtype cast
        vae = vae.eval().requires_grad_(False).to(self.device)
        self.vae = vae.half() if self.dtype == torch.float16 else vae.float()
        if self.device.type == "cpu":
            self.vae.to(memory_format=torch.channels_last)

    def _set_tiling(self, pixel_height: int, pixel_width: int) -> None:
        if max(pixel_height, pixel_width) > self.tile_above:
            self.vae.enable_tiling()
            self.vae.tile_sample_min_size = self.tile_size
            self.vae.tile_latent_min_size = self.tile_size // DOWNSCALE
        else:
            self.vae.disable_tiling()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cpu" else x

    def _run(self, step: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Run one step; in fp16 a non-finite result (overflow) is retried once in fp32."""
        with torch.inference_mode():
            out = step(self._prepare(x))
            if self.dtype == torch.float16 and not torch.isfinite(out).all():
                self.dtype = torch.float32
                self.vae.float()
                out = step(self._prepare(x))
        return out.float().cpu()

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        _check_pixels(pixels)
        self._set_tiling(*pixels.shape[2:])
        mean = self._run(lambda x: self.vae.encode(x * 2 - 1).latent_dist.mean, pixels)
        return ((mean - self.shift_factor) * self.scaling_factor).contiguous()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        _check_latent(latent, self.latent_channels, self.name)
        self._set_tiling(latent.shape[2] * DOWNSCALE, latent.shape[3] * DOWNSCALE)
        unscaled = latent.float() / self.scaling_factor + self.shift_factor
        image = self._run(lambda z: self.vae.decode(z).sample, unscaled)
        return ((image + 1) / 2).clamp(0, 1).contiguous()

    def decode_with_grad(self, latent: torch.Tensor) -> torch.Tensor:
        _check_latent(latent, self.latent_channels, self.name)
        self.vae.disable_tiling()
        unscaled = latent.to(self.device, self.dtype) / self.scaling_factor + self.shift_factor
        return ((self.vae.decode(unscaled).sample.float() + 1) / 2).clamp(0, 1)

    def __repr__(self) -> str:
        return f"DiffusersVAE({self.name!r}, space={self.latent_space}, device={self.device})"


# --------------------------------------------------------------------------------------------
# TAE family (TAESD: sd1 space, 4 channels; TAEF2: flux2 space, 32 channels, pooled blocks)

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
        raise ModelLoadError(f"cannot load {spec}: {directory} {what}; give the directory holding "
                             f"{family}_encoder.pth and {family}_decoder.pth")
    found = []
    for part in ("encoder", "decoder"):
        named = [directory / f"{family}_{part}{suffix}" for suffix in _WEIGHT_SUFFIXES]
        named = [path for path in named if path.is_file()][:1]  # .pth first when both exist
        candidates = named or sorted(
            path for path in directory.iterdir()
            if path.is_file() and path.suffix in _WEIGHT_SUFFIXES and part in path.name.lower()
        )
        if len(candidates) != 1:
            problem = "no" if not candidates else f"{len(candidates)}"
            raise ModelLoadError(f"cannot load {spec}: {problem} *{part}*.pth weight files in {directory} "
                                 f"(expected {family}_{part}.pth)")
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


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``size`` with at least ``overlap`` shared."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def _ramp(length: int, overlap: int) -> torch.Tensor:
    """Blend weights along one tile side: rising linearly over ``overlap`` at both ends, 1 inside."""
    position = torch.arange(length, dtype=torch.float32) + 0.5
    return torch.minimum(position, length - position).div(max(overlap, 1)).clamp(max=1.0)


def run_tiled(
    step: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    scale: float,
) -> torch.Tensor:
    """Apply a local (convolutional) ``step`` to overlapping tiles of ``x`` (1, C, H, W) and blend.

    ``step`` maps a (1, C, h, w) tile to (1, C', h*scale, w*scale); tile and overlap are in
    ``x``'s units. Each output pixel is the weighted mean of the tiles covering it, with weights
    falling linearly towards tile edges (where zero padding differs from the real neighbours),
    so seams do not show. Memory is one tile's activations plus the output.
    """
    height, width = x.shape[-2:]
    tile_h, tile_w = min(tile, height), min(tile, width)
    blend = max(1, round(overlap * scale))
    out = weight = None
    for top in _tile_starts(height, tile, overlap):
        for left in _tile_starts(width, tile, overlap):
            result = step(x[:, :, top : top + tile_h, left : left + tile_w]).float().cpu()
            if out is None:
                out = torch.zeros(1, result.shape[1], round(height * scale), round(width * scale))
                weight = torch.zeros(1, 1, out.shape[2], out.shape[3])
            mask = _ramp(result.shape[2], blend)[:, None] * _ramp(result.shape[3], blend)[None, :]
            rows = slice(round(top * scale), round(top * scale) + result.shape[2])
            cols = slice(round(left * scale), round(left * scale) + result.shape[3])
            out[:, :, rows, cols] += result * mask
            weight[:, :, rows, cols] += mask
    return out / weight


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
        return cls(encoder, decoder, latent_space=info["latent_space"], latent_channels=info["channels"],
                   name=spec, device=device, **tiling)

    def _apply(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self.dtype)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return module(x).float().cpu()

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        _check_pixels(pixels)
        with torch.inference_mode():
            if pixels.shape[2] * pixels.shape[3] <= self.tile_above:
                return self._apply(self.encoder, pixels).contiguous()
            features = run_tiled(lambda tile: self._apply(self.encoder_local, tile), pixels,
                                 tile=self.tile_size, overlap=self.tile_overlap, scale=1 / DOWNSCALE)
            return self._apply(self.encoder_global, features).contiguous()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        _check_latent(latent, self.latent_channels, self.name)
        with torch.inference_mode():
            if latent.shape[2] * latent.shape[3] * DOWNSCALE**2 <= self.tile_above:
                return self._apply(self.decoder, latent).clamp(0, 1).contiguous()
            features = self._apply(self.decoder_global, latent)
            image = run_tiled(lambda tile: self._apply(self.decoder_local, tile), features,
                              tile=self.tile_size // DOWNSCALE, overlap=self.tile_overlap // DOWNSCALE,
                              scale=DOWNSCALE)
        return image.clamp(0, 1).contiguous()

    def decode_with_grad(self, latent: torch.Tensor) -> torch.Tensor:
        _check_latent(latent, self.latent_channels, self.name)
        return self.decoder(latent.to(self.device, self.dtype)).float().clamp(0, 1)

    def __repr__(self) -> str:
        return f"TinyAutoencoder({self.name!r}, space={self.latent_space}, device={self.device})"
