"""What a generated image says about its model: A1111's ``Model`` name and ``Model hash``.

A1111 names a checkpoint by its file name without the extension and hashes it with SHA-256 of
the whole file, writing the first 10 hex digits. sdcodec loads diffusers pipelines (a folder or
a hub id), which have no single checkpoint file, so:

- ``Model`` is the folder's name, or the hub id's name part (``stable-diffusion-v1-5``);
- ``Model hash`` is the first 10 hex digits of SHA-256 over the weight files generation loads,
  ``unet/``, ``text_encoder/`` then ``vae/``, each part's ``*.safetensors`` files (else its
  ``*.bin`` files) without a variant infix such as ``.fp16.``, in name order, as one stream of
  bytes. It identifies the weights, but it is not the hash A1111 shows for the same model
  converted to one ``.safetensors`` file (different bytes). Hub models are hashed from the local
  Hugging Face cache; when their files are not there, there is no hash (the field is left out).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from sdcodec.codec import model_cache

HASHED_PARTS = ("unet", "text_encoder", "vae")
SHORT_HASH_DIGITS = 10  # A1111's "shorthash"
REMEMBER_FROM_BYTES = 64 << 20  # smaller models are hashed again rather than remembered


def model_name(spec: str) -> str:
    """The name A1111's ``Model:`` field gets: a folder's name, a hub id's last part; never a path."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path.resolve().name
    return spec.rstrip("/").rsplit("/", 1)[-1]


def model_hash(spec: str) -> str | None:
    """A1111-style short hash of the pipeline's weights (see the module doc), or None without local files.

    Computed once per model and remembered in ``hash_cache_file()`` while the files keep their
    size and modification time (hashing SD 1.5's fp32 weights reads 4.3 GB).
    """
    folder = _local_folder(spec)
    if folder is None:
        return None
    files = weight_files(folder)
    if not files:
        return None
    key = cache_key(files)
    return model_cache.cached("model-hash", key, "", lambda: _remembered_hash(key, files))


def cache_key(files: list[Path]) -> str:
    """What a remembered hash is valid for: each file's path, size and modification time."""
    return "|".join(f"{file.resolve()}:{file.stat().st_size}:{file.stat().st_mtime_ns}" for file in files)


def hash_cache_file() -> Path:
    """Where hashes are remembered between runs, as A1111 keeps its cache.json."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sdcodec" / "model-hashes.json"


def _remembered_hash(key: str, files: list[Path]) -> str:
    """The hash remembered for ``key``, else computed and remembered (a cache that cannot be
    read or written only costs the hashing again)."""
    path = hash_cache_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), str):
        return known[key]
    digest = _sha256(files)[:SHORT_HASH_DIGITS]
    if sum(file.stat().st_size for file in files) < REMEMBER_FROM_BYTES:
        return digest  # hashed in moments: not worth a cache entry
    known[key] = digest
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        scratch.write_text(json.dumps(known, indent=0), encoding="utf-8")
        os.replace(scratch, path)
    except OSError:
        pass
    return digest


def weight_files(folder: Path) -> list[Path]:
    """The files ``model_hash`` reads, in the order it reads them."""
    files: list[Path] = []
    for part in HASHED_PARTS:
        for pattern in ("*.safetensors", "*.bin"):
            found = sorted(file for file in (folder / part).glob(pattern) if _without_variant(file))
            if found:
                files += found
                break
    return files


def _without_variant(file: Path) -> bool:
    # 'diffusion_pytorch_model.fp16.safetensors' carries a variant; '...-00001-of-00002.safetensors' does not
    return len(file.name.split(".")) == 2


def _local_folder(spec: str) -> Path | None:
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, local_files_only=True))
    except Exception:  # not in the cache, or not a hub id: no hash rather than a failed generation
        return None


def _sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
