"""Run the rate-distortion benchmark: sweep every codec on every image, size-match the baselines
to the codec under test, cache each measurement (benchmarks/measurement.py), then write the report.

Protocols:
- sweep: every codec at each of its knobs on every image;
- size-matched (Bühlmann): for each file of the codec under test (`subject`, normally "sdz"), each
  baseline at the highest quality whose file is not larger, found by binary search on its quality.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from sdcodec.benchmarks.codecs import CODEC_NAMES, Codec, make_codecs
from sdcodec.benchmarks.measurement import (
    BenchImage,
    ResultCache,
    default_image_dir,
    largest_knob_within,
    list_images,
    load_image,
    measure,
)
from sdcodec.benchmarks.metrics import MetricSuite
from sdcodec.codec.errors import SdcodecError
from sdcodec.codec.progress import Progress


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
    unreachable: list[dict] = field(
        default_factory=list
    )  # sweep points the codec refused (a ceiling below its smallest file)
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
    image_dir, paths, crop_images = _image_paths(image_dir, max_images, crop_image)
    sdz_options = dict(model=model, restore_steps=restore_steps, decoder=decoder, sdz_knobs=sdz_knobs)
    sdz_options["sdz_efforts"] = sdz_efforts
    codec_objects = _codec_objects(codecs, sdz_options)
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
    command = None
    if all(isinstance(c, str) for c in codecs):
        where = dict(max_images=max_images, cache_dir=cache_dir, crop_images=crop_images)
        command = reproduce_command(image_dir, codecs, out_dir, **sdz_options, **where)
    results = BenchResults(
        image_dir=str(image_dir),
        images=[{"name": im.name, "width": im.image.width, "height": im.image.height, "key": im.key} for im in images],
        codecs=infos,
        subject=subject,
        metrics_unavailable=dict(metrics.unavailable),
        metric_implementations=metrics.implementations,
        command=command,
    )
    bench = _Bench(codec_objects, metrics, cache, None)
    _sweep(bench, results, images, subject_codec, baselines, quiet)
    for codec, info in zip(codec_objects, infos):
        if type(codec).warmup is not Codec.warmup:
            info.first_call_s = cache.warmup_seconds(codec)
    if write:
        _write(results, bench, images, crop_images, subject_codec, baselines, out_dir)
    return results


def _image_paths(image_dir, max_images: int | None, crop_image: str | None) -> tuple:
    """The image directory (default: Kodak beside the repository), its first `max_images` images, and
    the crop images named, each checked to be among them."""
    if image_dir is None:
        image_dir = default_image_dir()
        if image_dir is None:
            raise SdcodecError("no image directory given and ../shared/datasets/kodak is not there")
    paths = list_images(image_dir)[:max_images]
    crop_images = [name.strip() for name in crop_image.split(",") if name.strip()] if crop_image else None
    unknown = sorted(set(crop_images or ()) - {path.stem for path in paths})
    if unknown:
        raise SdcodecError(f"--crop-image names no benchmarked image: {', '.join(unknown)}")
    return image_dir, paths, crop_images


def _codec_objects(codecs: Sequence[str | Codec], sdz_options: dict) -> list[Codec]:
    """Codec objects for names (a name may build several: sdz, one per effort level) and objects given."""
    codec_objects = []
    for entry in codecs:
        if isinstance(entry, str):
            codec_objects += make_codecs([entry], **sdz_options)
        else:
            codec_objects.append(entry)
    if not codec_objects:
        raise SdcodecError("no codecs to benchmark")
    duplicates = {c.name for c in codec_objects if [d.name for d in codec_objects].count(c.name) > 1}
    if duplicates:
        raise SdcodecError(f"codec listed twice: {', '.join(sorted(duplicates))}")
    return codec_objects


def _sweep(bench: _Bench, results: BenchResults, images, subject_codec, baselines, quiet: bool) -> None:
    """Every codec at every knob on every image, then the size matches; progress on stderr."""
    per_image = sum(len(c.knobs) for c in ([subject_codec] if subject_codec else []) + baselines)
    if subject_codec:
        per_image += len(subject_codec.knobs) * len(baselines)
    # A bar on a terminal, a line every few seconds in a log (codec/progress.py).
    progress = Progress("benchmark", quiet=quiet, console=Console(stderr=True, highlight=False, soft_wrap=True))
    with progress:
        bench.progress = progress
        progress.update(total=per_image * len(images))
        for image in images:
            for codec in ([subject_codec] if subject_codec else []) + baselines:
                for knob in codec.knobs:
                    bench.advance(f"{image.name} {codec.name} q{knob}")
                    try:
                        record = bench.record(codec, image, knob)
                    except SdcodecError as exc:  # e.g. an sdz bpp ceiling below the image's smallest file
                        results.unreachable.append(
                            {"image": image.name, "codec": codec.name, "knob": knob, "reason": str(exc)}
                        )
                        continue
                    results.records.append({**record, "sweep": True})
            if subject_codec:
                _size_match_image(bench, results, subject_codec, baselines, image)


def _write(results, bench, images, crop_images, subject_codec, baselines, out_dir: Path) -> None:
    """The crops montage, report.md with its files, and report.html."""
    from sdcodec.benchmarks.report import write_report
    from sdcodec.benchmarks.report_figures import make_crops
    from sdcodec.benchmarks.report_html import write_html

    crops = None
    if images and (subject_codec or baselines):
        crops = make_crops(_crop_targets(images, crop_images), subject_codec, baselines, results, bench, out_dir)
    results.report_path = write_report(results, out_dir, crops_path=crops)
    write_html(out_dir)


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
    for subject_knob in [knob for knob in subject.knobs if knob in subject_records]:  # unreachable ones have no file
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
