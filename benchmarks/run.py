"""Run the rate-distortion benchmark: sweep every codec on every image, size-match the baselines
to the codec under test, cache each measurement, then write the report.

Protocols:
- sweep: every codec at each of its knobs on every image;
- size-matched (Bühlmann): for each file of the codec under test (`subject`, normally "sdz"), each
  baseline at the highest quality whose file is not larger, found by binary search on its quality.

Each measurement (image x codec x knob) is one JSON file under the cache directory, written
atomically, so an interrupted run resumes where it stopped. The cache key names the image by a
digest of its file and the codec by a digest of its settings and library versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from rich.console import Console

from sdcodec.benchmarks.codecs import CODEC_NAMES, Codec, make_codecs
from sdcodec.benchmarks.metrics import MetricSuite
from sdcodec.codec.errors import ImageReadError, SdcodecError
from sdcodec.codec.progress import Progress

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


@dataclass
class CodecInfo:
    name: str
    label: str
    knobs: list[int]
    cache_id: str
    unavailable: str | None = None
    settings: str = ""  # library versions, chroma subsampling: what a reader needs to judge the comparison
    first_call_s: float | None = None  # warm-up (model loading) before the first timed measurement


@dataclass
class BenchResults:
    """Everything the report needs: per-image records, size matches, codec and metric status."""

    image_dir: str
    images: list[dict]
    codecs: list[CodecInfo]
    subject: str
    records: list[dict] = field(default_factory=list)
    matches: list[dict] = field(default_factory=list)
    metrics_unavailable: dict[str, str] = field(default_factory=dict)
    metric_implementations: dict[str, str] = field(default_factory=dict)
    command: str | None = None  # the CLI line that reproduces the run, when codecs were given by name
    report_path: Path | None = None

    def codec(self, name: str) -> CodecInfo | None:
        return next((info for info in self.codecs if info.name == name), None)


class _Bench:
    """The state of one run: codecs, metrics, cache and progress; methods are the run's steps."""

    def __init__(self, codecs: Sequence[Codec], metrics: MetricSuite, cache: ResultCache, progress: Progress | None):
        self.codecs, self.metrics, self.cache, self.progress = codecs, metrics, cache, progress
        self.warm: dict[str, float] = {}

    def advance(self, description: str) -> None:
        if self.progress:
            self.progress.advance(description)

    def record(self, codec: Codec, image: BenchImage, knob: int) -> dict:
        cached = self.cache.load(image, codec, knob)
        if cached is not None and self.metrics.scored(cached):
            return cached  # else measured again: the cache predates a metric, or another implementation scored it
        if codec.name not in self.warm:
            start = time.perf_counter()
            codec.warmup()
            self.warm[codec.name] = time.perf_counter() - start
            if type(codec).warmup is not Codec.warmup:  # only codecs that load something have a first-call cost
                self.cache.store_warmup_seconds(codec, self.warm[codec.name])
        record = measure(codec, image, knob, self.metrics)
        self.cache.store(image, codec, knob, record)
        sizes = self.cache.sizes(image, codec)
        if sizes.get(knob) != record["bytes"]:
            self.cache.store_sizes(image, codec, {**sizes, knob: record["bytes"]})
        return record

    def size_match(self, codec: Codec, image: BenchImage, target_bytes: int) -> int | None:
        sizes = self.cache.sizes(image, codec)

        def size_of(knob: int) -> int:
            if knob not in sizes:
                sizes[knob] = len(codec.encode(image.image, knob))
                self.cache.store_sizes(image, codec, sizes)
            return sizes[knob]

        return largest_knob_within(size_of, target_bytes, codec.knob_range)


def run_bench(
    image_dir: str | Path | None = None,
    codecs: Sequence[str | Codec] = CODEC_NAMES,
    out_dir: str | Path = "bench-out",
    *,
    model: str | None = None,
    restore_steps: int = 0,
    decoder: str | None = None,
    sdz_knobs: Sequence[int] | None = None,
    sdz_efforts: Sequence[int] = (1,),
    subject: str = "sdz",
    cache_dir: str | Path | None = None,
    max_images: int | None = None,
    crop_image: str | None = None,  # comma-separated image names (file stems) for the crops
    use_lpips: bool = True,
    write: bool = True,
    quiet: bool = False,
) -> BenchResults:
    """Benchmark `codecs` (names or Codec objects) on the images of `image_dir`; report into `out_dir`.

    Raises SdcodecError (one line) for a missing or empty image directory or an unknown codec name.
    Codecs whose library is missing are reported as unavailable, not run. The cache defaults to
    `out_dir/cache`; results are also returned.
    """
    if image_dir is None:
        image_dir = default_image_dir()
        if image_dir is None:
            raise SdcodecError("no image directory given and ../shared/datasets/kodak is not there")
    paths = list_images(image_dir)[:max_images]
    crop_images = [name.strip() for name in crop_image.split(",") if name.strip()] if crop_image else None
    unknown = sorted(set(crop_images or ()) - {path.stem for path in paths})
    if unknown:
        raise SdcodecError(f"--crop-image names no benchmarked image: {', '.join(unknown)}")
    codec_objects = []
    for entry in codecs:  # a name may build several codecs (sdz: one per effort level)
        if isinstance(entry, str):
            codec_objects += make_codecs(
                [entry],
                model=model,
                restore_steps=restore_steps,
                decoder=decoder,
                sdz_knobs=sdz_knobs,
                sdz_efforts=sdz_efforts,
            )
        else:
            codec_objects.append(entry)
    if not codec_objects:
        raise SdcodecError("no codecs to benchmark")
    duplicates = {c.name for c in codec_objects if [d.name for d in codec_objects].count(c.name) > 1}
    if duplicates:
        raise SdcodecError(f"codec listed twice: {', '.join(sorted(duplicates))}")

    out_dir = Path(out_dir)
    cache = ResultCache(cache_dir if cache_dir is not None else out_dir / "cache")
    metrics = MetricSuite.load(use_lpips=use_lpips)
    infos = []
    for c in codec_objects:
        reason = c.unavailable_reason()
        infos.append(CodecInfo(c.name, c.label, list(c.knobs), c.cache_id, reason, "" if reason else c.describe()))
    available = [c for c, info in zip(codec_objects, infos) if info.unavailable is None]
    subject_codec = next((c for c in available if c.name == subject), None)
    baselines = [c for c in available if c is not subject_codec]
    images = [load_image(path) for path in paths]

    results = BenchResults(
        image_dir=str(image_dir),
        images=[{"name": im.name, "width": im.image.width, "height": im.image.height, "key": im.key} for im in images],
        codecs=infos,
        subject=subject,
        metrics_unavailable=dict(metrics.unavailable),
        metric_implementations=metrics.implementations,
        command=reproduce_command(
            image_dir,
            codecs,
            out_dir,
            model=model,
            restore_steps=restore_steps,
            decoder=decoder,
            sdz_knobs=sdz_knobs,
            sdz_efforts=sdz_efforts,
            max_images=max_images,
            cache_dir=cache_dir,
            crop_images=crop_images,
        )
        if all(isinstance(c, str) for c in codecs)
        else None,
    )
    per_image = sum(len(c.knobs) for c in available)
    if subject_codec:
        per_image += len(subject_codec.knobs) * len(baselines)
    # A bar on a terminal, a line every few seconds in a log (codec/progress.py).
    progress = Progress("benchmark", quiet=quiet, console=Console(stderr=True, highlight=False, soft_wrap=True))
    with progress:
        bench = _Bench(codec_objects, metrics, cache, progress)
        progress.update(total=per_image * len(images))
        for image in images:
            for codec in ([subject_codec] if subject_codec else []) + baselines:
                for knob in codec.knobs:
                    bench.advance(f"{image.name} {codec.name} q{knob}")
                    results.records.append({**bench.record(codec, image, knob), "sweep": True})
            if subject_codec:
                _size_match_image(bench, results, subject_codec, baselines, image)
    for codec, info in zip(codec_objects, infos):
        if type(codec).warmup is not Codec.warmup:
            info.first_call_s = cache.warmup_seconds(codec)

    if write:
        from sdcodec.benchmarks.report import make_crops, write_report
        from sdcodec.benchmarks.report_html import write_html

        crops = None
        if images and available:
            crops = make_crops(_crop_targets(images, crop_images), subject_codec, baselines, results, bench, out_dir)
        results.report_path = write_report(results, out_dir, crops_path=crops)
        write_html(out_dir)
    return results


def _crop_targets(images: list[BenchImage], names: list[str] | None, count: int = 4) -> list[BenchImage]:
    """The images named for crops, else `count` images spread evenly over the set."""
    if names:
        return [image for image in images if image.name in names]
    if len(images) <= count:
        return list(images)
    return [images[round(i * (len(images) - 1) / (count - 1))] for i in range(count)]


def _size_match_image(bench: _Bench, results: BenchResults, subject: Codec, baselines, image: BenchImage) -> None:
    """For each subject file of this image, each baseline at the highest quality not larger than it."""
    subject_records = {r["knob"]: r for r in results.records if r["image"] == image.name and r["codec"] == subject.name}
    for subject_knob in subject.knobs:
        target = subject_records[subject_knob]["bytes"]
        for baseline in baselines:
            bench.advance(f"{image.name} {baseline.name} ≤{target}B")
            knob = bench.size_match(baseline, image, target)
            match = {
                "image": image.name,
                "subject_knob": subject_knob,
                "subject_bytes": target,
                "codec": baseline.name,
                "knob": knob,
            }
            if knob is None:
                match["note"] = f"smallest {baseline.name} file is larger than {target} bytes"
            else:
                record = bench.record(baseline, image, knob)
                if not any(_same_point(r, record) for r in results.records):
                    results.records.append({**record, "sweep": False})  # a size-matched point off the sweep
            results.matches.append(match)


def reproduce_command(
    image_dir,
    codecs: Sequence[str],
    out_dir,
    *,
    model: str | None = None,
    restore_steps: int = 0,
    decoder: str | None = None,
    sdz_knobs: Sequence[int] | None = None,
    sdz_efforts: Sequence[int] = (1,),
    max_images: int | None = None,
    cache_dir=None,
    crop_images: Sequence[str] | None = None,
) -> str:
    """The `sdcodec bench` line that repeats a run: every option that shapes the results, defaults
    written out (so a later change of default does not change what the line runs), and the metric
    tool variables that were set, in front."""
    from sdcodec.benchmarks.codecs import SDZ_DEFAULT_KNOBS
    from sdcodec.benchmarks.perceptual import BUTTERAUGLI_ENV, SSIMULACRA2_ENV

    environment = [f"{v}={shlex.quote(os.environ[v])}" for v in (SSIMULACRA2_ENV, BUTTERAUGLI_ENV) if os.environ.get(v)]
    parts = [*environment, "sdcodec bench", shlex.quote(str(image_dir)), "--codecs", ",".join(codecs)]
    if "sdz" in codecs:
        parts += ["--model", shlex.quote(model)] if model else []
        parts += ["--restore-steps", str(restore_steps)]
        parts += ["--decoder", shlex.quote(decoder)] if decoder else []
        parts += [f"--sdz-qualities={','.join(map(str, sdz_knobs or SDZ_DEFAULT_KNOBS))}"]
        parts += ["--effort", ",".join(map(str, sdz_efforts))]
    parts += ["--max-images", str(max_images)] if max_images is not None else []
    parts += ["--cache", shlex.quote(str(cache_dir))] if cache_dir is not None else []
    parts += ["--crop-image", shlex.quote(",".join(crop_images))] if crop_images else []
    return " ".join(parts + ["--out", shlex.quote(str(out_dir))])


def _same_point(a: dict, b: dict) -> bool:
    return a["image"] == b["image"] and a["codec"] == b["codec"] and a["knob"] == b["knob"]
