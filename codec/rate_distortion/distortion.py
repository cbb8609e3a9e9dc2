"""What the latent search minimises: the ``--tune`` targets, as differentiable distortions.

Mixed targets are normalised by each term's value at the start of the search, so the terms weigh
what their shares say there; the rate trade-off (``latent_refinement``) scales with the start value
in every case:

* ``psnr``: pixel MSE.
* ``ssim``: 0.8 (1 - MS-SSIM) + 0.2 MSE (as avifenc/aomenc's ``--tune ssim``, with some MSE kept
  so colour and flat areas do not drift; MS-SSIM from ``pytorch-msssim``, plain SSIM on crops too
  small for five scales).
* ``lpips``: 0.8 LPIPS (AlexNet) + 0.2 MSE, where the ``lpips`` package and its weights are present.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sdcodec.codec.errors import SdcodecError

TUNES = ("psnr", "ssim", "lpips")
PERCEPTUAL_SHARE = 0.8
MS_SSIM_MIN_SIDE = 161  # five scales of an 11-pixel window: pytorch-msssim's lower bound

Distortion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_tune(tune: str) -> None:
    if tune not in TUNES:
        raise SdcodecError(f"unknown tune {tune!r}; use one of {', '.join(TUNES)}")


def mse(decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((decoded - target) ** 2)


def ssim_loss(decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - MS-SSIM of images in [0, 1] (1 - SSIM where a side is under ``MS_SSIM_MIN_SIDE``)."""
    from pytorch_msssim import ms_ssim, ssim

    decoded = decoded.clamp(0, 1).float()
    if min(decoded.shape[-2:]) >= MS_SSIM_MIN_SIDE:
        return 1 - ms_ssim(decoded, target.float(), data_range=1.0)
    return 1 - ssim(decoded, target.float(), data_range=1.0)


_LPIPS: dict[str, torch.nn.Module] = {}


def lpips_loss(decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS (AlexNet) of images in [0, 1]; SdcodecError in one line where it cannot be had."""
    if "alex" not in _LPIPS:
        try:
            import lpips

            _LPIPS["alex"] = lpips.LPIPS(net="alex", verbose=False).eval().requires_grad_(False)
        except Exception as exc:  # no package, or no AlexNet weights (torchvision downloads them)
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise SdcodecError(
                f"--tune lpips needs the lpips package and its AlexNet weights ({reason}); "
                "pip install 'sdcodec[lpips]' on a machine with network once, or use --tune ssim"
            ) from None
    model = _LPIPS["alex"].to(decoded.device)
    return model(decoded.clamp(0, 1) * 2 - 1, target * 2 - 1, normalize=False).mean()


def make_distortion(tune: str, decoded: torch.Tensor, target: torch.Tensor) -> Distortion:
    """The distortion for ``tune``; mixed ones are normalised at the start point ``decoded`` (1 there).

    ``psnr`` is plain MSE, unnormalised: Adam's epsilon makes the scale matter, and the files of
    ``--effort`` 2-4 stay what they were before the other targets existed.
    """
    check_tune(tune)
    if tune == "psnr":
        return mse
    with torch.no_grad():
        mse_start = float(mse(decoded, target)) or 1e-12
        perceptual = ssim_loss if tune == "ssim" else lpips_loss
        perceptual_start = float(perceptual(decoded, target)) or 1e-12
    share = PERCEPTUAL_SHARE

    def mixed(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return share * perceptual(x, y) / perceptual_start + (1 - share) * mse(x, y) / mse_start

    return mixed
