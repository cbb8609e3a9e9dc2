"""Shared fixtures: tiny random models built once per session, and the real data in ../shared."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED = REPO.parent / "shared"
TAEF2_DIR = SHARED / "weights" / "taef2"
KODAK_DIR = SHARED / "datasets" / "kodak"

sys.path.insert(0, str(TESTS))  # tests import tiny_sd as a plain module


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and spinning threads stall a shared 2-core machine
    (test_restore: 33 s on one thread, 99 s on two). Subprocesses get OMP_NUM_THREADS=1 too."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The suite's own ``XDG_CACHE_HOME`` (per-model channel correlations, model hashes), never the user's;
    subprocesses inherit it, so a model's correlations are measured once per test worker."""
    import os

    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def tiny_vae_dir(tmp_path_factory) -> Path:
    from tiny_sd import make_tiny_vae

    return make_tiny_vae(tmp_path_factory.mktemp("tiny-vae"))


@pytest.fixture(scope="session")
def tiny_taesd_spec(tmp_path_factory) -> str:
    """``taesd:DIR`` with random weights: for tests that start ``sdcodec`` processes or Ray actors,
    which then load no diffusers (about 3 s of CPU less each)."""
    from tiny_sd import make_tiny_taesd

    return make_tiny_taesd(tmp_path_factory.mktemp("tiny-taesd"))


@pytest.fixture(scope="session")
def taef2_spec() -> str:
    if not (TAEF2_DIR / "taef2_encoder.pth").exists():
        pytest.skip("../shared/weights/taef2 is not present")
    return f"taef2:{TAEF2_DIR}"


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    if not KODAK_DIR.is_dir():
        pytest.skip("../shared/datasets/kodak is not present")
    return KODAK_DIR


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory) -> Path:
    from tiny_sd import make_tiny_pipeline

    return make_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipeline")
