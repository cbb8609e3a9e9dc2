"""Files written by earlier versions must decode to exactly the same symbols and latents."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from sdcodec.codec.coding import latent_coder

VECTORS = Path(__file__).resolve().parent / "vectors"
TABLE = json.loads((VECTORS / "vectors.json").read_text())


def _digest(array: np.ndarray, dtype) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=dtype).tobytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(TABLE))
def test_golden_vector_decodes_bit_exactly(name):
    expected = TABLE[name]
    data = (VECTORS / f"{name}.sdz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == expected["file_sha256"]
    symbols, sdz = latent_coder.read_symbols(data)
    assert sdz.latent_space == expected["latent_space"]
    assert sdz.entropy_model == expected.get("entropy_model", 1)
    assert list(symbols.shape) == expected["latent_shape"]
    assert _digest(symbols, "<i8") == expected["symbols_sha256"]
    assert _digest(latent_coder.decode_latent(data), "<f4") == expected["latent_sha256"]


@pytest.mark.parametrize("model", [1, 2])
def test_golden_vectors_cover_the_format_features(model):
    entries = {name: entry for name, entry in TABLE.items() if entry.get("entropy_model", 1) == model}
    spaces = {entry["latent_space"] for entry in entries.values()}
    assert {"raw", "sd1"} <= spaces
    names = " ".join(entries)
    for feature in ("escapes", "channel-steps", "caption", "alpha", "metadata", "row", "column", "zeros"):
        assert feature in names
