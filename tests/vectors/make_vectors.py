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
import struct
from pathlib import Path

import numpy as np

from sdcodec import bitstream
from sdcodec.codec.coding import latent_coder
from sdcodec.codec.images import image_io

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"


def _digest(array: np.ndarray, dtype) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=dtype).tobytes()).hexdigest()


def _s15(values) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def display_p3_profile() -> bytes:
    """A Display P3 matrix/TRC ICC v2 profile (gamma 2.2), byte for byte the same on every run
    (Pillow's ImageCms only builds sRGB, and stamps it with the date)."""
    description = b"Display P3 (sdcodec test)"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(description) + 1) + description + b"\0" + bytes(8 + 3 + 67)
    xyz = {  # D50-adapted Display P3 colorants and the D50 white
        b"wtpt": (0.9642, 1.0, 0.8249),
        b"rXYZ": (0.5151, 0.2412, -0.0011),
        b"gXYZ": (0.2920, 0.6922, 0.0419),
        b"bXYZ": (0.1571, 0.0666, 0.7841),
    }
    gamma = b"curv" + bytes(4) + struct.pack(">IH", 1, round(2.2 * 256)) + bytes(2)
    tags = [(b"desc", desc)] + [(sig, b"XYZ " + bytes(4) + _s15(v)) for sig, v in xyz.items()]
    tags += [(b"rTRC", gamma), (b"gTRC", gamma), (b"bTRC", gamma)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    header = struct.pack(">I", offset + len(body)) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12)
    header += b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4) + _s15((0.9642, 1.0, 0.8249)) + bytes(4 + 16 + 28)
    return header + table + body


# A little-endian TIFF stream with one IFD: Orientation (0x0112) = 1, Make (0x010F) = "sdcodec".
EXIF = (
    b"II*\x00\x08\x00\x00\x00\x02\x00"
    + struct.pack("<HHII", 0x010F, 2, 8, 38)
    + struct.pack("<HHIHH", 0x0112, 3, 1, 1, 0)
)
EXIF += b"\x00\x00\x00\x00sdcodec\x00"


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
    out["sd1-metadata-64x60"] = latent_coder.encode_latent(
        np.random.default_rng(20261204).normal(size=(4, 8, 8)),  # its own stream: earlier files keep theirs
        step=0.4,
        latent_space="sd1",
        width=64,
        height=60,
        metadata=bitstream.pack_metadata(bitstream.ImageMetadata(icc_profile=display_p3_profile(), exif=EXIF)),
    )
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
