"""``sdcodec.ray``: .sdz collections as Ray Datasets (``pip install 'sdcodec[ray]'``).

Installed as ``sdcodec.ray`` by ``pyproject.toml``'s package-dir (not a ``ray.py`` at the
repository root, which would shadow the real ``ray`` package for any process started there,
Ray's own workers included).
"""

from __future__ import annotations

from sdcodec.codec.archive.latent_dataset import read_sdz

__all__ = ["read_sdz"]
