"""Image quality metrics for the rate-distortion benchmark.

PSNR, SSIM and MS-SSIM are computed here from scikit-image / scipy on 8-bit RGB arrays; MS-SSIM is
also given in dB, -10 log10(1 - MS-SSIM), as CompressAI plots it. SSIMULACRA 2 and Butteraugli come
from `perceptual.py`. LPIPS (AlexNet) and DISTS (VGG16) are optional: it is used only when the `lpips` package imports AND the
ImageNet AlexNet weights are already on disk, because torchvision would otherwise try to
download them and a network with random weights gives meaningless numbers. When it cannot
be used it is reported as unavailable with the reason, never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity
from skimage.transform import downscale_local_mean

# Wang, Simoncelli & Bovik (2003), the weights every MS-SSIM implementation uses.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_GAUSSIAN_SIGMA = 1.5
_WINDOW = 11  # 11x11 Gaussian window, as in the SSIM paper
_K1, _K2 = 0.01, 0.03
_DATA_RANGE = 255.0

# torchvision's ImageNet AlexNet checkpoint (AlexNet_Weights.IMAGENET1K_V1), which lpips loads.
ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"
# torchvision's ImageNet VGG16 checkpoint (VGG16_Weights.IMAGENET1K_V1), which DISTS_pytorch loads.
VGG16_WEIGHTS_FILE = "vgg16-397923af.pth"


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB over all RGB samples of two uint8 images (inf when identical)."""
    _check_pair(reference, distorted)
    mse = np.mean((reference.astype(np.float64) - distorted.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(_DATA_RANGE**2 / mse)


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIM (Gaussian 11x11 window, sigma 1.5, as in the paper), mean over RGB channels."""
    _check_pair(reference, distorted)
    return float(
        structural_similarity(
            reference,
            distorted,
            channel_axis=-1,
            data_range=_DATA_RANGE,
            gaussian_weights=True,
            sigma=_GAUSSIAN_SIGMA,
            use_sample_covariance=False,
        )
    )


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales that fit: the coarsest scale's side must exceed the window (10 * 2**(n-1) < side)."""
    side = min(height, width)
    scales = len(MS_SSIM_WEIGHTS)
    while scales > 1 and side <= (_WINDOW - 1) * 2 ** (scales - 1):
        scales -= 1
    return scales


def ms_ssim(reference: np.ndarray, distorted: np.ndarray, scales: int | None = None) -> tuple[float, int]:
    """Multi-scale SSIM of two uint8 RGB images, mean over channels; returns (value, scales used).

    Five scales with the standard weights; images too small for five use fewer scales with the
    first weights renormalised to sum to one (the scale count is returned so reports can say so).
    Between scales the images are 2x2 average-pooled.
    """
    _check_pair(reference, distorted)
    if scales is None:
        scales = ms_ssim_scales(*reference.shape[:2])
    weights = np.array(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()
    x = reference.astype(np.float64)
    y = distorted.astype(np.float64)
    channel_values = []
    for channel in range(x.shape[2]):
        xc, yc = x[..., channel], y[..., channel]
        value = 1.0
        for scale in range(scales):
            luminance_contrast_structure, contrast_structure = _ssim_terms(xc, yc)
            term = luminance_contrast_structure if scale == scales - 1 else contrast_structure
            value *= max(term, 0.0) ** weights[scale]
            xc, yc = downscale_local_mean(xc, (2, 2)), downscale_local_mean(yc, (2, 2))
        channel_values.append(value)
    return float(np.mean(channel_values)), scales


def _ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two single-channel float images.

    Same filtering as scikit-image's SSIM (Gaussian, reflect, border of half a window cropped),
    so that one scale of MS-SSIM equals `ssim`.
    """
    c1, c2 = (_K1 * _DATA_RANGE) ** 2, (_K2 * _DATA_RANGE) ** 2
    truncate = ((_WINDOW - 1) / 2) / _GAUSSIAN_SIGMA

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma=_GAUSSIAN_SIGMA, truncate=truncate, mode="reflect")

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    pad = (_WINDOW - 1) // 2
    crop = (slice(pad, -pad), slice(pad, -pad))
    return float(np.mean((luminance * contrast_structure)[crop])), float(np.mean(contrast_structure[crop]))


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in dB, -10 log10(1 - MS-SSIM) (inf for identical images), CompressAI's plotting scale."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    if reference.shape != distorted.shape:
        raise ValueError(f"image sizes differ: {reference.shape} vs {distorted.shape}")
    if reference.dtype != np.uint8 or distorted.dtype != np.uint8 or reference.ndim != 3:
        raise ValueError("metrics expect two HxWx3 uint8 RGB arrays")


class Lpips:
    """LPIPS (AlexNet, v0.1) on CPU: lower is better; inputs are uint8 RGB arrays."""

    def __init__(self, model, scale_to_minus_one_one: bool = True):
        self.model = model
        self.scale_to_minus_one_one = scale_to_minus_one_one

    def __call__(self, reference: np.ndarray, distorted: np.ndarray) -> float:
        import torch

        _check_pair(reference, distorted)

        def to_tensor(a: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(a).permute(2, 0, 1)[None].float()
            return t / 127.5 - 1.0 if self.scale_to_minus_one_one else t / 255.0

        with torch.no_grad():
            return float(self.model(to_tensor(reference), to_tensor(distorted)).item())


def _hub_checkpoint(hub_dir: str | Path | None, filename: str) -> Path:
    """Where torchvision keeps an ImageNet checkpoint: torch hub's cache (``hub_dir``, default ``torch.hub.get_dir()``)."""
    if hub_dir is None:
        import torch

        hub_dir = torch.hub.get_dir()
    return Path(hub_dir) / "checkpoints" / filename


def load_lpips(hub_dir: str | Path | None = None) -> tuple[Lpips | None, str | None]:
    """Return (metric, None) when LPIPS can run offline with real weights, else (None, reason).

    The torchvision AlexNet checkpoint must already be in torch hub's cache (``hub_dir``, default
    ``torch.hub.get_dir()``): it is checked before anything is built, so no download is attempted.
    """
    try:
        import lpips
    except ImportError as exc:
        return None, f"the lpips package is not installed ({exc}); pip install lpips"
    weights = _hub_checkpoint(hub_dir, ALEXNET_WEIGHTS_FILE)
    if not weights.is_file():
        return None, f"AlexNet ImageNet weights not found at {weights} (torchvision would download them)"
    try:
        model = lpips.LPIPS(net="alex", verbose=False).eval()
    except Exception as exc:  # any failure to build the network means no trustworthy number
        return None, f"lpips could not load its AlexNet weights: {type(exc).__name__}: {exc}"
    return Lpips(model), None


def load_dists(hub_dir: str | Path | None = None) -> tuple[Lpips | None, str | None]:
    """Return (metric, None) when DISTS can run offline with real weights, else (None, reason).

    DISTS_pytorch ships its own layer weights but builds on torchvision's ImageNet VGG16, which must
    already be in torch hub's cache (checked first, so no download is attempted). Inputs in [0, 1].
    """
    try:
        from DISTS_pytorch import DISTS
    except ImportError as exc:
        return None, f"the DISTS_pytorch package is not installed ({exc}); pip install dists-pytorch"
    weights = _hub_checkpoint(hub_dir, VGG16_WEIGHTS_FILE)
    if not weights.is_file():
        return None, f"VGG16 ImageNet weights not found at {weights} (torchvision would download them)"
    try:
        model = DISTS().eval()
    except Exception as exc:  # any failure to build the network means no trustworthy number
        return None, f"DISTS could not load its weights: {type(exc).__name__}: {exc}"
    return Lpips(model, scale_to_minus_one_one=False), None


@dataclass
class MetricSuite:
    """The metrics of one benchmark run; `unavailable` maps a metric name to why it is missing.

    `implementations` names what computed the metrics whose implementation can vary between machines
    (SSIMULACRA 2's reference tool or Python port, Butteraugli's libjxl version); every record carries
    it, and a cached record scored by other implementations is measured again.
    """

    lpips: Lpips | None = None
    unavailable: dict[str, str] = field(default_factory=dict)
    dists: Lpips | None = None
    ssimulacra2: Callable[[np.ndarray, np.ndarray], float] | None = None
    butteraugli: Callable[[np.ndarray, np.ndarray], tuple[float, float]] | None = None

    @classmethod
    def load(cls, use_lpips: bool = True, hub_dir: str | Path | None = None, perceptual: bool = True) -> MetricSuite:
        """Every metric that can run here; `perceptual=False` leaves out SSIMULACRA 2 and Butteraugli."""
        from sdcodec.benchmarks.perceptual import load_butteraugli, load_ssimulacra2

        loaded, unavailable = {}, {}
        loaders = {"lpips": lambda: load_lpips(hub_dir), "dists": lambda: load_dists(hub_dir)} if use_lpips else {}
        if perceptual:
            loaders |= {"ssimulacra2": load_ssimulacra2, "butteraugli": load_butteraugli}
        for name, loader in loaders.items():
            loaded[name], reason = loader()
            if reason:
                unavailable[name] = reason
        if not use_lpips:
            unavailable |= {"lpips": "disabled", "dists": "disabled"}
        if not perceptual:
            unavailable |= {"ssimulacra2": "disabled", "butteraugli": "disabled"}
        if "butteraugli" in unavailable:
            unavailable["butteraugli_3norm"] = unavailable["butteraugli"]
        return cls(unavailable=unavailable, **loaded)

    @property
    def implementations(self) -> dict[str, str]:
        """Which implementation computed each metric that has several (stored in every record)."""
        metrics = {"ssimulacra2": self.ssimulacra2, "butteraugli": self.butteraugli}
        return {name: metric.implementation for name, metric in metrics.items() if metric is not None}

    def scored(self, record: dict) -> bool:
        """True when a cached record was scored by this suite (same metrics, same implementations)."""
        if record.get("metric_implementations", {}) != self.implementations:
            return False
        return all(record.get(name) is not None for name in self.names if name not in self.unavailable)

    @property
    def names(self) -> list[str]:
        """Every metric this suite reports a column for (unavailable ones are None in results)."""
        return list(HIGHER_IS_BETTER)

    def compute(self, reference: np.ndarray, distorted: np.ndarray) -> dict:
        value, scales = ms_ssim(reference, distorted)
        butteraugli = self.butteraugli(reference, distorted) if self.butteraugli else (None, None)
        return {
            "psnr": psnr(reference, distorted),
            "ssim": ssim(reference, distorted),
            "ms_ssim": value,
            "ms_ssim_db": ms_ssim_db(value),
            "ms_ssim_scales": scales,
            "ssimulacra2": self.ssimulacra2(reference, distorted) if self.ssimulacra2 else None,
            "butteraugli": butteraugli[0],
            "butteraugli_3norm": butteraugli[1],
            "lpips": self.lpips(reference, distorted) if self.lpips else None,
            "dists": self.dists(reference, distorted) if self.dists else None,
            "metric_implementations": self.implementations,
        }


# Direction of each metric: True when a higher value means better quality.
HIGHER_IS_BETTER = {
    "psnr": True,
    "ssim": True,
    "ms_ssim": True,
    "ms_ssim_db": True,
    "ssimulacra2": True,
    "butteraugli": False,
    "butteraugli_3norm": False,
    "lpips": False,
    "dists": False,
}
METRIC_LABELS = {
    "psnr": "PSNR (dB, RGB)",
    "ssim": "SSIM",
    "ms_ssim": "MS-SSIM",
    "ms_ssim_db": "MS-SSIM (dB)",
    "ssimulacra2": "SSIMULACRA 2",
    "butteraugli": "Butteraugli (max)",
    "butteraugli_3norm": "Butteraugli (3-norm)",
    "lpips": "LPIPS (AlexNet)",
    "dists": "DISTS (VGG16)",
}
