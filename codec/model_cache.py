"""The one in-process model cache: each (kind, spec, device) is loaded once per process.

Autoencoders and full pipelines share it, so ``clear_model_cache()`` forgets both, and a VAE
already loaded as part of a pipeline can be reused instead of read from disk again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MODELS: dict[tuple[str, str, str], Any] = {}


def cached(kind: str, spec: str, device: str, load: Callable[[], Any]) -> Any:
    """The model for (kind, spec, device), calling ``load()`` the first time."""
    key = (kind, spec, device)
    if key not in _MODELS:
        _MODELS[key] = load()
    return _MODELS[key]


def peek(kind: str, spec: str, device: str) -> Any | None:
    """The cached model, or None when it has not been loaded."""
    return _MODELS.get((kind, spec, device))


def clear_model_cache() -> None:
    """Forget loaded models (tests; long-running processes that switch models)."""
    _MODELS.clear()
