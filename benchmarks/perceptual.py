"""SSIMULACRA 2 and Butteraugli, the perceptual metrics the JPEG XL and AVIF teams report.

Both run offline, without downloaded weights:
- SSIMULACRA 2: libjxl's reference tool `ssimulacra2` when it is found (Debian 13's `libjxl-devtools`,
  or the path in $SDCODEC_SSIMULACRA2), else the `ssimulacra2` Python package (a NumPy port, installed
  by the `bench` extra). The port is not exact: against libjxl 0.11's tool on Kodak it reads up to
  ~6 points low on heavily compressed images (README, "Perceptual metrics"), so every record says
  which implementation scored it and the report prints it.
- Butteraugli: libjxl's `butteraugli_main` (Debian's `libjxl-devtools`, or $SDCODEC_BUTTERAUGLI);
  there is no maintained Python package. Without it the metric is reported unavailable.

Scale: SSIMULACRA 2 is 100 for identical images, about 90 "visually lossless", 70 high, 50 medium,
30 low quality, and negative for very poor images. Butteraugli is a distance (0 for identical images;
about 1 is the just-noticeable difference); the report gives its max norm and its 3-norm.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SSIMULACRA2_ENV = "SDCODEC_SSIMULACRA2"
BUTTERAUGLI_ENV = "SDCODEC_BUTTERAUGLI"
BUTTERAUGLI_INSTALL = "apt-get install libjxl-devtools (Debian/Ubuntu) provides butteraugli_main"


def find_tool(env_variable: str, name: str) -> str | None:
    """The executable named by the environment variable, else `name` on PATH, else None."""
    override = os.environ.get(env_variable)
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which(name)


def _debian_version(executable: str) -> str | None:
    """'package version' of the Debian package that installed `executable`, when dpkg knows it."""
    try:
        owner = subprocess.run(["dpkg", "-S", executable], capture_output=True, text=True, timeout=10)
        package = owner.stdout.split(":", 1)[0].strip()
        if owner.returncode != 0 or not package:
            return None
        query = ["dpkg-query", "-W", "-f=${Version}", package]
        version = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{package} {version}" if version else None


def _write_ppm(pixels: np.ndarray, directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    Image.fromarray(pixels).save(path, "PPM")
    return path


class _ExternalTool:
    """Runs a libjxl command-line metric on two uint8 RGB arrays written as PPM files."""

    def __init__(self, executable: str):
        self.executable = executable
        version = _debian_version(os.path.realpath(executable))
        self.implementation = f"libjxl {Path(executable).name} ({version or executable})"

    def _run(self, reference: np.ndarray, distorted: np.ndarray, *options: str) -> str:
        with tempfile.TemporaryDirectory(prefix="sdcodec-metric-") as directory:
            paths = [_write_ppm(reference, directory, "a.ppm"), _write_ppm(distorted, directory, "b.ppm")]
            done = subprocess.run([self.executable, *paths, *options], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{self.executable} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        return done.stdout


class Ssimulacra2Tool(_ExternalTool):
    """libjxl's `ssimulacra2 orig distorted`, which prints the score alone."""

    def __call__(self, reference: np.ndarray, distorted: np.ndarray) -> float:
        return float(self._run(reference, distorted).split()[0])


class Ssimulacra2Port:
    """The `ssimulacra2` Python package (NumPy port of libjxl's tool)."""

    def __init__(self):
        import ssimulacra2

        self._compute = ssimulacra2.compute_ssimulacra2
        self.implementation = f"ssimulacra2 {ssimulacra2.__version__} (Python port)"

    def __call__(self, reference: np.ndarray, distorted: np.ndarray) -> float:
        def as_file(pixels: np.ndarray) -> io.BytesIO:  # the package reads images through PIL.Image.open
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "PPM")
            buffer.seek(0)
            return buffer

        return float(self._compute(as_file(reference), as_file(distorted)))


class Butteraugli(_ExternalTool):
    """libjxl's `butteraugli_main orig distorted --pnorm 3`: (max-norm distance, 3-norm)."""

    def __call__(self, reference: np.ndarray, distorted: np.ndarray) -> tuple[float, float]:
        lines = self._run(reference, distorted, "--pnorm", "3").split("\n")
        max_norm = float(lines[0].split()[0])
        p_norm = next(float(line.split(":", 1)[1]) for line in lines if line.startswith("3-norm"))
        return max_norm, p_norm


def load_ssimulacra2() -> tuple[Ssimulacra2Tool | Ssimulacra2Port | None, str | None]:
    """(metric, None): the reference tool when found, else the Python port; (None, reason) when neither."""
    executable = find_tool(SSIMULACRA2_ENV, "ssimulacra2")
    if executable:
        return Ssimulacra2Tool(executable), None
    try:
        return Ssimulacra2Port(), None
    except ImportError:
        return None, "neither libjxl's ssimulacra2 tool nor the ssimulacra2 package; pip install -e '.[bench]'"


def load_butteraugli() -> tuple[Butteraugli | None, str | None]:
    """(metric, None) when libjxl's butteraugli_main is found, else (None, how to install it)."""
    executable = find_tool(BUTTERAUGLI_ENV, "butteraugli_main")
    if executable is None:
        return None, f"butteraugli_main not found (set ${BUTTERAUGLI_ENV} or {BUTTERAUGLI_INSTALL})"
    return Butteraugli(executable), None
