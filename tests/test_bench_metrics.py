"""Quality metrics of the benchmark: hand-computed PSNR, MS-SSIM's relation to SSIM, LPIPS availability."""

import math
import sys
import types

import numpy as np
import pytest

from sdcodec.benchmarks import metrics
from sdcodec.benchmarks.metrics import MetricSuite, load_lpips, ms_ssim, ms_ssim_scales, psnr, ssim


def textured(height=48, width=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 128 + 60 * np.sin(x / 5.0)[..., None] * np.cos(y / 7.0)[..., None] * np.array([1.0, 0.6, -0.8])
    return np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


def noisy(image: np.ndarray, sigma: float, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def test_psnr_of_a_one_level_error_everywhere():
    reference = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(reference, reference + 1) == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert psnr(reference, reference) == math.inf


def test_metrics_refuse_mismatched_sizes():
    with pytest.raises(ValueError, match="sizes differ"):
        psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


def test_scale_count_follows_the_smallest_side():
    assert ms_ssim_scales(512, 768) == 5
    assert ms_ssim_scales(161, 400) == 5
    assert ms_ssim_scales(160, 400) == 4
    assert ms_ssim_scales(48, 64) == 3
    assert ms_ssim_scales(12, 12) == 1


def test_one_scale_ms_ssim_is_ssim():
    reference = textured()
    distorted = noisy(reference, 20)
    value, scales = ms_ssim(reference, distorted, scales=1)
    assert scales == 1
    assert value == pytest.approx(ssim(reference, distorted), abs=1e-9)


def test_ms_ssim_uses_fewer_scales_on_small_images_and_orders_distortions():
    reference = textured()
    assert ms_ssim(reference, reference) == (pytest.approx(1.0), 3)
    mild, _ = ms_ssim(reference, noisy(reference, 5))
    strong, _ = ms_ssim(reference, noisy(reference, 40))
    assert 1.0 > mild > strong > 0.0


def test_ms_ssim_on_five_scales():
    reference = textured(176, 192)
    value, scales = ms_ssim(reference, noisy(reference, 10))
    assert scales == 5
    assert 0.5 < value < 1.0


def test_lpips_is_unavailable_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # makes `import lpips` fail
    metric, reason = load_lpips()
    assert metric is None
    assert "not installed" in reason


def fake_lpips_module(constructor):
    module = types.ModuleType("lpips")
    module.LPIPS = constructor
    return module


def test_lpips_is_unavailable_without_alexnet_weights_and_builds_nothing(monkeypatch, tmp_path):
    def must_not_build(**kwargs):
        raise AssertionError("LPIPS must not be built (torchvision would try to download AlexNet)")

    monkeypatch.setitem(sys.modules, "lpips", fake_lpips_module(must_not_build))
    metric, reason = load_lpips(hub_dir=tmp_path)
    assert metric is None
    assert "AlexNet" in reason and str(tmp_path / "checkpoints" / metrics.ALEXNET_WEIGHTS_FILE) in reason


def test_lpips_that_fails_to_load_is_unavailable_not_a_number(monkeypatch, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / metrics.ALEXNET_WEIGHTS_FILE).write_bytes(b"not a checkpoint")

    def broken(**kwargs):
        raise RuntimeError("invalid load key")

    monkeypatch.setitem(sys.modules, "lpips", fake_lpips_module(broken))
    metric, reason = load_lpips(hub_dir=tmp_path)
    assert metric is None
    assert "could not load" in reason and "invalid load key" in reason


def test_suite_reports_lpips_as_none_with_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)
    suite = MetricSuite.load()
    assert "lpips" in suite.unavailable
    reference = textured()
    values = suite.compute(reference, noisy(reference, 10))
    assert values["lpips"] is None
    assert values["ms_ssim_scales"] == 3
    assert values["psnr"] > 20 and 0 < values["ssim"] < 1
