"""Write golden vectors (run once per format change, never to make a test pass).

    python tests/vectors/make_vectors.py [--model 1|2] [--overwrite]

``--model`` picks the entropy model the files are coded with (default 1). Model-2 vectors are
named ``m2-*``; the table entries of the other model are kept, so adding one model's vectors
never touches the other's. Existing .sdz files are never rewritten without ``--overwrite``
(a model's files must keep decoding forever: a new format gets new files, not new bytes).

Each vector is a small .sdz file plus the SHA-256 of its decoded integer symbols (int64,
C order) and of its dequantized latent (float32, C order) in ``vectors.json``. The test
``tests/test_golden_vectors.py`` decodes every file and compares; a change to the entropy
model, its integer tables or the coder's probability quantization shows up there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from sdcodec.codec.coding import latent_coder
from sdcodec.codec.images import image_io

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"


def _digest(array: np.ndarray, dtype) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=dtype).tobytes()).hexdigest()


def _vectors() -> dict[str, bytes]:
    rng = np.random.default_rng(20261123)
    out = {}
    out["raw-4x8x8"] = latent_coder.encode_latent(rng.normal(size=(4, 8, 8)), step=0.5)
    wide = rng.laplace(scale=40.0, size=(3, 16, 16))
    wide[0, 3, 5], wide[1, 0, 0], wide[2, 15, 15] = 9000.0, -12000.0, 70000.0
    out["raw-escapes-3x16x16"] = latent_coder.encode_latent(wide, step=0.25)
    out["raw-channel-steps-caption-8x12x20"] = latent_coder.encode_latent(
        rng.normal(size=(8, 12, 20)) * np.linspace(0.5, 3, 8)[:, None, None],
        step=0.7,
        channel_steps=(16, 8, 24, 32, 16, 12, 40, 255),
        caption="a lighthouse at dusk, ünïcödé",
        restore_steps=3,
        restore_guidance=4.5,
    )
    yy, xx = np.mgrid[0:60, 0:64]
    alpha = np.clip((xx * 4 + yy) % 256, 0, 255).astype(np.uint8)
    out["sd1-alpha-64x60"] = latent_coder.encode_latent(
        rng.normal(size=(4, 8, 8)),
        step=0.4,
        latent_space="sd1",
        width=64,
        height=60,
        alpha=image_io.encode_alpha(alpha),
    )
    out["raw-row-1x1x300"] = latent_coder.encode_latent(np.cumsum(rng.normal(size=(1, 1, 300)), axis=2), step=0.5)
    out["raw-column-2x300x1"] = latent_coder.encode_latent(rng.normal(size=(2, 300, 1)), step=0.3)
    out["raw-zeros-2x40x40"] = latent_coder.encode_latent(np.zeros((2, 40, 40)), step=1.0)
    taef2 = SHARED / "weights" / "taef2"
    kodak = SHARED / "datasets" / "kodak" / "kodim23.png"
    if taef2.is_dir() and kodak.exists():
        from PIL import Image

        import sdcodec

        crop = Image.open(kodak).convert("RGB").crop((200, 100, 328, 196))
        out["flux2-taef2-kodim23-128x96"] = sdcodec.encode_image(crop, model=f"taef2:{taef2}", quality=50)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=int, choices=latent_coder.ENTROPY_MODELS, default=1)
    parser.add_argument("--overwrite", action="store_true", help="rewrite .sdz files that already exist")
    args = parser.parse_args()
    prefix = "" if args.model == 1 else f"m{args.model}-"
    table_path = HERE / "vectors.json"
    table = json.loads(table_path.read_text()) if table_path.exists() else {}
    latent_coder.ENTROPY_MODEL_ID = args.model  # every file below, encode_image's included, uses this model
    for base_name, data in _vectors().items():
        name = prefix + base_name
        path = HERE / f"{name}.sdz"
        if path.exists() and not args.overwrite:
            print(f"{name}: exists, kept")
            continue
        path.write_bytes(data)
        symbols, sdz = latent_coder.read_symbols(data)
        assert sdz.entropy_model == args.model
        latent = latent_coder.decode_latent(data)
        table[name] = {
            "file_sha256": hashlib.sha256(data).hexdigest(),
            "latent_space": sdz.latent_space,
            "latent_shape": list(sdz.latent_shape),
            "symbols_sha256": _digest(symbols, "<i8"),
            "latent_sha256": _digest(latent, "<f4"),
        }
        if args.model != 1:
            table[name]["entropy_model"] = args.model
        print(f"{name}: {len(data)} bytes")
    table_path.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
