"""SSIMULACRA 2, Butteraugli, MS-SSIM in dB and DISTS availability, on real images.

The SSIMULACRA 2 Python port always runs (the `bench` extra installs it); libjxl's reference tools
run where they are installed (`ssimulacra2`, `butteraugli_main`), else those tests are skipped.
The libjxl values quoted in comments were printed by libjxl 0.11's ssimulacra2 on these images.
"""

import io
import math
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from sdcodec.benchmarks.metrics import MetricSuite, load_dists, ms_ssim_db
from sdcodec.benchmarks.perceptual import (
    BUTTERAUGLI_ENV,
    SSIMULACRA2_ENV,
    Butteraugli,
    Ssimulacra2Port,
    Ssimulacra2Tool,
    load_butteraugli,
    load_ssimulacra2,
)


def photo_like(height=96, width=128) -> np.ndarray:
    """Smooth coloured gradients and a sharp-edged block (no pixel noise, which JPEG would wipe out)."""
    y, x = np.mgrid[0:height, 0:width] / 16.0
    base = 128 + 70 * np.sin(x)[..., None] * np.cos(0.7 * y)[..., None] * np.array([1.0, 0.5, -0.7])
    base[height // 3 : 2 * height // 3, width // 4 : width // 2] += 50
    return np.clip(base, 0, 255).astype(np.uint8)


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


REFERENCE = photo_like()
MILD, STRONG = jpeg(REFERENCE, 90), jpeg(REFERENCE, 5)
needs_ssimulacra2_tool = pytest.mark.skipif(not shutil.which("ssimulacra2"), reason="libjxl's ssimulacra2 not here")
needs_butteraugli = pytest.mark.skipif(not shutil.which("butteraugli_main"), reason="butteraugli_main not here")


def test_ms_ssim_in_db():
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    assert ms_ssim_db(0.9) == pytest.approx(10.0)
    assert ms_ssim_db(1.0) == math.inf


def test_ssimulacra2_port_scores_identical_100_and_orders_distortions():
    metric = Ssimulacra2Port()
    assert metric(REFERENCE, REFERENCE) == pytest.approx(100.0)
    mild, strong = metric(REFERENCE, MILD), metric(REFERENCE, STRONG)
    assert 100.0 > mild > strong
    assert 60.0 < mild < 100.0  # JPEG q90: high quality on SSIMULACRA 2's scale (libjxl: 92)
    assert strong < 30.0  # JPEG q5: low quality (libjxl: 11)


@needs_ssimulacra2_tool
def test_reference_ssimulacra2_scores_identical_100_and_orders_distortions():
    tool = Ssimulacra2Tool(shutil.which("ssimulacra2"))
    assert tool(REFERENCE, REFERENCE) == pytest.approx(100.0, abs=1e-3)
    assert 85.0 < tool(REFERENCE, MILD) < 100.0
    assert tool(REFERENCE, STRONG) < 30.0
    assert tool.implementation.startswith("libjxl ssimulacra2")


@needs_butteraugli
def test_butteraugli_is_zero_for_identical_images_and_grows_with_distortion():
    metric = Butteraugli(shutil.which("butteraugli_main"))
    assert metric(REFERENCE, REFERENCE) == (0.0, 0.0)
    mild_max, mild_norm = metric(REFERENCE, MILD)
    strong_max, strong_norm = metric(REFERENCE, STRONG)
    assert 0.0 < mild_norm <= mild_max
    assert strong_norm > mild_norm and strong_max > mild_max


def test_missing_butteraugli_is_unavailable_with_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv(BUTTERAUGLI_ENV, str(tmp_path / "no-such-tool"))
    metric, reason = load_butteraugli()
    assert metric is None
    assert "apt-get install libjxl-devtools" in reason


def test_ssimulacra2_falls_back_to_the_port_without_the_tool(monkeypatch, tmp_path):
    monkeypatch.setenv(SSIMULACRA2_ENV, str(tmp_path / "no-such-tool"))
    metric, reason = load_ssimulacra2()
    assert reason is None and isinstance(metric, Ssimulacra2Port)
    assert "Python port" in metric.implementation


def test_dists_is_unavailable_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "DISTS_pytorch", None)
    metric, reason = load_dists()
    assert metric is None and "not installed" in reason


def test_suite_scores_every_available_metric_and_names_implementations(monkeypatch, tmp_path):
    monkeypatch.setenv(SSIMULACRA2_ENV, str(tmp_path / "none"))  # the port, on every machine
    suite = MetricSuite.load(use_lpips=False)
    values = suite.compute(REFERENCE, MILD)
    assert values["ms_ssim_db"] == pytest.approx(ms_ssim_db(values["ms_ssim"]))
    assert 60.0 < values["ssimulacra2"] < 100.0
    assert values["ms_ssim_db"] > 10.0
    assert values["metric_implementations"]["ssimulacra2"].startswith("ssimulacra2 ")
    if "butteraugli" in suite.unavailable:
        assert values["butteraugli"] is None and "butteraugli_3norm" in suite.unavailable
    else:
        assert values["butteraugli"] > 0 and values["butteraugli_3norm"] > 0
    assert suite.scored(values)
    other = {**values, "metric_implementations": {**values["metric_implementations"], "ssimulacra2": "other"}}
    assert not suite.scored(other)  # a cached record scored elsewhere is measured again
    assert not suite.scored({**values, "ssimulacra2": None})
