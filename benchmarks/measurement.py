"""One benchmark measurement: the test images, encode + decode + score of one image at one knob under a
memory watch, the cache that keeps each measurement, and the binary search that size-matches a baseline.

Each measurement (image x codec x knob) is one JSON file under the cache directory, written
atomically, so an interrupted run resumes where it stopped. The cache key names the image by a
digest of its file and the codec by a digest of its settings and library versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from sdcodec.benchmarks.codecs import Codec
from sdcodec.benchmarks.metrics import MetricSuite
from sdcodec.codec.errors import ImageReadError, SdcodecError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"}
REPO_ROOT = Path(__file__).resolve().parents[1]


def default_image_dir() -> Path | None:
    """../shared/datasets/kodak beside the repository, when it is there."""
    candidate = REPO_ROOT.parent / "shared" / "datasets" / "kodak"
    return candidate if candidate.is_dir() else None


@dataclass
class BenchImage:
    """One test image: its RGB pixels and a cache key that changes when the file changes."""

    path: Path
    key: str
    image: Image.Image
    pixels: np.ndarray

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def pixel_count(self) -> int:
        return self.image.width * self.image.height


def list_images(image_dir: str | Path) -> list[Path]:
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise SdcodecError(f"benchmark image directory not found: {image_dir}")
    paths = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not paths:
        raise SdcodecError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {image_dir}")
    return paths


def load_image(path: Path) -> BenchImage:
    data = path.read_bytes()
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from None
    key = f"{path.stem}-{hashlib.sha1(data).hexdigest()[:10]}"
    return BenchImage(path, key, image, np.asarray(image))


class ResultCache:
    """One JSON file per image x codec x knob, plus a table of probed file sizes per image x codec."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, image: BenchImage, codec: Codec) -> Path:
        return self.root / image.key / codec.cache_id

    def load(self, image: BenchImage, codec: Codec, knob: int) -> dict | None:
        path = self._dir(image, codec) / f"q{knob:03d}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None  # a damaged entry is recomputed

    def store(self, image: BenchImage, codec: Codec, knob: int, record: dict) -> None:
        _write_json_atomic(self._dir(image, codec) / f"q{knob:03d}.json", record)

    def warmup_seconds(self, codec: Codec) -> float | None:
        path = self.root / "warmup" / f"{codec.cache_id}.json"
        return json.loads(path.read_text())["seconds"] if path.is_file() else None

    def store_warmup_seconds(self, codec: Codec, seconds: float) -> None:
        _write_json_atomic(self.root / "warmup" / f"{codec.cache_id}.json", {"seconds": seconds})

    def sizes(self, image: BenchImage, codec: Codec) -> dict[int, int]:
        path = self._dir(image, codec) / "sizes.json"
        try:
            return {int(k): v for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}
        except json.JSONDecodeError:
            return {}

    def store_sizes(self, image: BenchImage, codec: Codec, sizes: dict[int, int]) -> None:
        _write_json_atomic(self._dir(image, codec) / "sizes.json", {str(k): v for k, v in sorted(sizes.items())})


def _write_json_atomic(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=1))
    os.replace(temporary, path)


class MemoryWatch:
    """Peak resident memory of this process while a block runs (sampled every 5 ms by a thread)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.start_mb = self.peak_mb = None
        try:
            import psutil

            self._process = psutil.Process()
        except ImportError:
            self._process = None

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> MemoryWatch:
        if self._process is not None:
            self.start_mb = self.peak_mb = self._rss_mb()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._process is not None:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb())


def measure(codec: Codec, image: BenchImage, knob: int, metrics: MetricSuite) -> dict:
    """Encode, decode and score one image at one knob; the record that is cached and reported."""
    with MemoryWatch() as memory:
        start = time.perf_counter()
        data = codec.encode(image.image, knob)
        encoded = time.perf_counter()
        decoded = codec.decode(data)
        decoded_at = time.perf_counter()
    pixels = np.asarray(decoded.convert("RGB"))
    if pixels.shape != image.pixels.shape:
        raise ValueError(f"{codec.name} decoded {image.name} at {pixels.shape}, expected {image.pixels.shape}")
    return {
        "image": image.name,
        "codec": codec.name,
        "knob": int(knob),
        "width": image.image.width,
        "height": image.image.height,
        "bytes": len(data),
        "bpp": 8.0 * len(data) / image.pixel_count,
        **metrics.compute(image.pixels, pixels),
        "encode_s": encoded - start,
        "decode_s": decoded_at - encoded,
        "peak_rss_mb": memory.peak_mb,
        "rss_increase_mb": None if memory.peak_mb is None else memory.peak_mb - memory.start_mb,
        # other jobs on the machine slow the timings down: keep the 1-minute load average beside them
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def largest_knob_within(size_of: Callable[[int], int], target_bytes: int, knob_range: tuple[int, int]) -> int | None:
    """Highest knob whose file is not larger than target_bytes, by binary search (sizes grow with the knob).

    None when even the lowest knob gives a larger file.
    """
    low, high = knob_range
    if size_of(low) > target_bytes:
        return None
    if size_of(high) <= target_bytes:
        return high
    while high - low > 1:  # invariant: size_of(low) <= target < size_of(high)
        middle = (low + high) // 2
        if size_of(middle) <= target_bytes:
            low = middle
        else:
            high = middle
    return low
